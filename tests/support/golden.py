"""The tiny golden CogAgent of tests/data/golden: its config, weights, recorded cases and the model built from them.

Every model test reads these files the same way, so how they are read lives here once. The fixtures are imported by
name into the test modules that use them: pytest registers an imported fixture as that module's own, so each module
still gets its own module-scoped copy and nothing is applied to a module that does not import it (the reason this
is not a conftest.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict

import pytest
import torch
from safetensors.torch import load_file

from cogagent import CogAgentConfig, CogAgentForCausalLM

GOLDEN = Path(__file__).parent.parent / "data" / "golden"
ATOL, RTOL = 1e-5, 1e-4  # parity with the official cogagent-chat-hf code, float32

# the recorded cases (tests/data/golden/<name>.safetensors)
CASE_A = "case_a_forward"  # one forward: logits, hidden states, encoder features
CASE_B = "case_b_generate"  # greedy generation from the case-a prompt: ids and step logits
CASE_C = "case_c_batch2_leftpad"  # a left-padded batch of two


def golden_config_dict() -> dict:
    """The tiny model's config.json as a dict (tests edit it to make bad or CogVLM configs)."""
    return json.loads((GOLDEN / "config.json").read_text())


def golden_config(**overrides) -> CogAgentConfig:
    return CogAgentConfig.from_dict(golden_config_dict(), **overrides)


def golden_weights() -> Dict[str, torch.Tensor]:
    return load_file(GOLDEN / "weights.safetensors")


def load_case(name: str) -> Dict[str, torch.Tensor]:
    return load_file(GOLDEN / f"{name}.safetensors")


def load_tiny_model(**overrides) -> CogAgentForCausalLM:
    """The golden model in float32, eval mode; ``overrides`` change config fields (e.g. ``attn_implementation``)."""
    model = CogAgentForCausalLM(golden_config(**overrides)).eval()
    model.load_state_dict(golden_weights(), strict=True)
    return model


def close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual, expected, atol=ATOL, rtol=RTOL)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: one thread avoids OpenMP contention on a busy machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def model() -> CogAgentForCausalLM:
    return load_tiny_model()


@pytest.fixture(scope="module")
def case_a() -> Dict[str, torch.Tensor]:
    return load_case(CASE_A)


@pytest.fixture(scope="module")
def case_b() -> Dict[str, torch.Tensor]:
    return load_case(CASE_B)


@pytest.fixture(scope="module")
def case_c() -> Dict[str, torch.Tensor]:
    return load_case(CASE_C)
