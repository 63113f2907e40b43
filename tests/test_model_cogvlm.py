"""CogVLM (THUDM/cogvlm-chat-hf): the CogAgent decoder without the cross branch, built from its config.json.

No official CogVLM numbers are available here, so the tiny model is checked against an identity that follows from
the architecture: a CogAgent whose cross-attention output projections and second vision position embedding are
zero computes exactly what a CogVLM with the remaining weights computes.
"""

import copy
import json

import pytest
import torch

from cogagent import CogAgentConfig, CogAgentForCausalLM
from cogagent.modeling_cogagent import CogVLMDecoderLayer, CogVLMForCausalLM

try:
    from support.golden import GOLDEN, _one_thread, case_a, golden_config, golden_config_dict, golden_weights
except ImportError:  # tests/ is itself a package
    from tests.support.golden import GOLDEN, _one_thread, case_a, golden_config, golden_config_dict, golden_weights

COGVLM_CONFIG = GOLDEN.parent / "cogvlm" / "cogvlm-chat-hf.config.json"
# data/cogvlm/README.md: 8 bf16 shards listed on the hub, 4.94 + 4.95 + 4.95 + 4.99 + 4.99 + 4.97 + 4.96 GB + 533 MB
PUBLISHED_CHECKPOINT_BYTES = 35.283e9
ROUNDING_BYTES = 0.04e9


def tiny_cogvlm_dict() -> dict:
    """The golden tiny CogAgent config with the cross branch removed and CogVLM's architecture name."""
    raw = golden_config_dict()
    for key in ("cross_hidden_size", "cross_compute_hidden_size", "cross_image_size", "_patched_eva2_clip_l_sizes"):
        raw.pop(key)
    raw["architectures"] = ["CogVLMForCausalLM"]
    return raw


def is_cross_key(key: str) -> bool:
    return ".cross_attn." in key or "post_cross_attention_layernorm" in key or key.startswith("model.cross_vision.")


@pytest.fixture(scope="module")
def golden_sd():
    return golden_weights()


@pytest.fixture(scope="module")
def cogvlm(golden_sd):
    model = CogVLMForCausalLM(CogAgentConfig.from_dict(tiny_cogvlm_dict())).eval()
    sd = {k: v for k, v in golden_sd.items() if not is_cross_key(k) and k != "model.vision.pos_embed"}
    model.load_state_dict(sd, strict=True)  # exactly the CogAgent weights minus the cross branch and pos_embed
    return model


@pytest.fixture(scope="module")
def cogagent_without_cross(golden_sd):
    model = CogAgentForCausalLM(golden_config()).eval()
    sd = dict(golden_sd)
    for key in sd:
        if key.endswith("cross_attn.dense.weight") or key == "model.vision.pos_embed":
            sd[key] = torch.zeros_like(sd[key])
    model.load_state_dict(sd, strict=True)
    return model


# ------------------------------------------------------------------------------------------------ full size


@pytest.fixture(scope="module")
def full_config():
    return CogAgentConfig.from_json_file(COGVLM_CONFIG)


def expected_parameters(c: CogAgentConfig) -> int:
    """Parameter count from the architecture description alone (weights + biases of every module)."""
    H, I, V, n = c.hidden_size, c.intermediate_size, c.vocab_size, c.num_hidden_layers
    v = c.vision_config
    vh, vi = v.hidden_size, v.intermediate_size
    layer = 2 * (H * 3 * H + H * H) + 2 * 3 * H * I + 2 * H  # two experts (QKV + dense, MLP), two RMSNorms
    vision_layer = (vh * 3 * vh + 3 * vh) + (vh * vh + vh) + (vh * vi + vi) + (vi * vh + vh) + 2 * 2 * vh
    vision = (v.in_channels * v.patch_size ** 2 * vh + vh) + vh + v.num_positions * vh  # patch conv, CLS, positions
    vision += v.num_hidden_layers * vision_layer
    vision += vh * H + 2 * H + 3 * H * I + 2 * H  # GLU: linear_proj, LayerNorm, 3 matrices; BOI, EOI
    return 2 * V * H + H + n * layer + vision


def test_full_size_cogvlm_on_meta_parameter_count(full_config):
    with torch.device("meta"):
        model = CogVLMForCausalLM(full_config)
    count = model.num_parameters()
    assert count == expected_parameters(full_config) == 17_639_685_376
    assert abs(2 * count - PUBLISHED_CHECKPOINT_BYTES) < ROUNDING_BYTES  # bf16 = 2 bytes per parameter
    assert full_config.num_vision_tokens == 35 * 35 + 2


def test_full_size_keys_are_cogagent_keys_minus_the_cross_branch(full_config):
    cogagent_keys = json.loads((GOLDEN / "cogagent-chat-hf.keys.json").read_text())
    with torch.device("meta"):
        state = CogVLMForCausalLM(full_config).state_dict()
    expected = {k for k in cogagent_keys if not is_cross_key(k) and k != "model.vision.pos_embed"}
    assert set(state) == expected
    for key in expected - {"model.vision.patch_embedding.position_embedding.weight"}:
        assert list(state[key].shape) == cogagent_keys[key], key
    assert list(state["model.vision.patch_embedding.position_embedding.weight"].shape) == [1226, 1792]
    assert all(isinstance(layer, CogVLMDecoderLayer) for layer in
               [m for m in CogVLMForCausalLM(CogAgentConfig.from_dict(tiny_cogvlm_dict())).modules()
                if type(m).__name__.endswith("DecoderLayer")])


def test_cogvlm_config_round_trips_without_cross_fields(full_config):
    original = json.loads(COGVLM_CONFIG.read_text())
    assert full_config.is_cogvlm and full_config.cross_image_size is None and full_config.num_cross_tokens == 0
    assert full_config.to_dict() == original
    assert CogAgentConfig.from_dict(full_config.to_dict()) == full_config


# ------------------------------------------------------------------------------------------------ tiny model


def test_tiny_cogvlm_equals_cogagent_with_the_cross_branch_zeroed(cogvlm, cogagent_without_cross, case_a):
    with torch.no_grad():
        got = cogvlm(case_a["input_ids"], case_a["token_type_ids"], images=case_a["images"],
                     output_hidden_states=True)
        want = cogagent_without_cross(case_a["input_ids"], case_a["token_type_ids"], images=case_a["images"],
                                      cross_images=case_a["cross_images"], output_hidden_states=True)
    torch.testing.assert_close(got.logits, want.logits, atol=1e-6, rtol=1e-6)
    for a, b in zip(got.hidden_states, want.hidden_states):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    # and it differs from the real CogAgent (the cross branch matters there), so the identity is not vacuous
    assert not torch.allclose(got.logits, case_a["logits"], atol=1e-3)


def test_tiny_cogvlm_generate_matches_zeroed_cogagent_and_full_recompute(cogvlm, cogagent_without_cross, case_a):
    out = cogvlm.generate(case_a["input_ids"], case_a["token_type_ids"], images=case_a["images"], max_new_tokens=6,
                          eos_token_id=[], output_scores=True)
    ref = cogagent_without_cross.generate(case_a["input_ids"], case_a["token_type_ids"], images=case_a["images"],
                                          cross_images=case_a["cross_images"], max_new_tokens=6, eos_token_id=[])
    assert out.sequences.shape == (1, 14 + 6)
    assert torch.equal(out.sequences, ref)
    # cached decoding == one no-cache forward over prompt + generated tokens
    seq = out.sequences
    tti = torch.cat((case_a["token_type_ids"], torch.zeros(1, 6, dtype=torch.long)), dim=1)
    with torch.no_grad():
        full = cogvlm(seq, tti, images=case_a["images"]).logits
    torch.testing.assert_close(out.scores, full[:, 13:-1], atol=1e-5, rtol=1e-4)


def test_tiny_cogvlm_text_only(cogvlm):
    ids = torch.tensor([[1, 23, 45, 67, 89]])
    out = cogvlm.generate(ids, torch.zeros_like(ids), max_new_tokens=4, eos_token_id=[], output_scores=True)
    with torch.no_grad():
        full = cogvlm(out.sequences, torch.zeros_like(out.sequences)).logits
        no_types = cogvlm(ids).logits  # token_type_ids default to text
    torch.testing.assert_close(out.scores, full[:, 4:-1], atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(no_types[:, -1], out.scores[:, 0], atol=1e-6, rtol=1e-6)


def test_tiny_cogvlm_save_and_load(cogvlm, tmp_path, case_a):
    cogvlm.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["architectures"] == ["CogVLMForCausalLM"] and "cross_image_size" not in saved
    loaded = CogVLMForCausalLM.from_pretrained(tmp_path)
    assert type(loaded) is CogVLMForCausalLM
    with torch.no_grad():
        a = cogvlm(case_a["input_ids"], case_a["token_type_ids"], images=case_a["images"]).logits
        b = loaded(case_a["input_ids"], case_a["token_type_ids"], images=case_a["images"]).logits
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="CogVLMForCausalLM"):
        CogAgentForCausalLM.from_pretrained(tmp_path)


# ------------------------------------------------------------------------------------------------ bad input


def test_cogvlm_bad_input(cogvlm, case_a):
    with pytest.raises(ValueError, match="no high-resolution encoder"):
        cogvlm(case_a["input_ids"], case_a["token_type_ids"], images=case_a["images"],
               cross_images=case_a["cross_images"])
    with pytest.raises(ValueError, match="no images were given"):
        cogvlm(case_a["input_ids"], case_a["token_type_ids"])
    with pytest.raises(ValueError, match="no high-resolution encoder"):
        cogvlm(torch.tensor([[1, 5, 6]]), cross_images=case_a["cross_images"])
    with pytest.raises(ValueError, match="images are"):
        cogvlm(case_a["input_ids"], case_a["token_type_ids"], images=case_a["images"][:, :, :14])


def test_cogvlm_and_cogagent_classes_refuse_each_others_configs():
    cogvlm_config = CogAgentConfig.from_dict(tiny_cogvlm_dict())
    cogagent_config = CogAgentConfig.from_json_file(GOLDEN / "config.json")
    with pytest.raises(ValueError, match="CogVLMForCausalLM"):
        CogAgentForCausalLM(cogvlm_config)
    with pytest.raises(ValueError, match="CogAgentForCausalLM"):
        CogVLMForCausalLM(cogagent_config)


def test_cogvlm_config_with_cross_fields_is_refused():
    raw = tiny_cogvlm_dict()
    raw["cross_image_size"] = 1120
    with pytest.raises(ValueError, match="cross_image_size"):
        CogAgentConfig.from_dict(raw)
    both = copy.deepcopy(tiny_cogvlm_dict())
    both["architectures"] = ["CogVLMForCausalLM", "CogAgentForCausalLM"]
    with pytest.raises(ValueError, match="must name one of"):
        CogAgentConfig.from_dict(both)


def test_cogvlm_device_map_keeps_layers_whole():
    from cogagent import loading

    with torch.device("meta"):
        model = CogVLMForCausalLM(CogAgentConfig.from_dict(tiny_cogvlm_dict()))
    total = sum(t.numel() * 4 for t in model.state_dict().values())
    dm = loading.compute_device_map(model, "sequential", torch.float32,
                                    max_memory={"cuda:0": int(total * 0.6), "cuda:1": total * 2})
    assert set(dm.values()) == {torch.device("cuda", 0), torch.device("cuda", 1)}
    for name, module in model.named_modules():
        if isinstance(module, CogVLMDecoderLayer):
            devices = {loading._device_for(f"{name}.{k}", dm) for k in module.state_dict()}
            assert len(devices) == 1, (name, devices)
