"""State-dict keys and shapes at full size (real cogagent-chat-hf config), built on the meta device."""

import json
import sys
import types
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cogagent import CogAgentConfig, CogAgentForCausalLM
from cogagent import cross_visual, modeling_cogagent, visual

GOLDEN = Path(__file__).parent / "data" / "golden"
TOTAL_PARAMETERS = 18_291_033_280  # from cogagent-chat-hf.keys.meta.json


@pytest.fixture(scope="module")
def real_config():
    return CogAgentConfig.from_json_file(GOLDEN / "cogagent-chat-hf.config.json")


@pytest.fixture(scope="module")
def meta_model(real_config):
    with torch.device("meta"):
        return CogAgentForCausalLM(real_config)


@pytest.fixture(scope="module")
def expected_keys():
    return json.loads((GOLDEN / "cogagent-chat-hf.keys.json").read_text())


def tiny_config():
    return CogAgentConfig.from_json_file(GOLDEN / "config.json")


def test_full_size_keys_and_shapes(meta_model, expected_keys):
    state = meta_model.state_dict()
    assert len(expected_keys) == 1879
    assert sorted(set(state) - set(expected_keys)) == []  # unexpected
    assert sorted(set(expected_keys) - set(state)) == []  # missing
    wrong = {k: (list(state[k].shape), v) for k, v in expected_keys.items() if list(state[k].shape) != v}
    assert wrong == {}


def test_full_size_parameter_count(meta_model):
    assert meta_model.num_parameters() == TOTAL_PARAMETERS
    by_group = {}
    for name, p in meta_model.named_parameters():
        group = ".".join(name.split(".")[:2]) if name.startswith("model.") else name.split(".")[0]
        by_group[group] = by_group.get(group, 0) + p.numel()
    assert by_group == {"model.embed_tokens": 131_072_000, "model.layers": 13_287_948_288, "model.norm": 4_096,
                        "model.vision": 4_423_986_688, "model.cross_vision": 316_950_208, "lm_head": 131_072_000}


def test_deterministic_buffers_are_persistent_and_listed(meta_model, expected_keys):
    names = meta_model.deterministic_buffer_names()
    expected = {k for k in expected_keys if k.endswith(("rotary_emb.inv_freq", "rope.freqs_cos", "rope.freqs_sin"))}
    assert len(expected) == 82  # 32 inv_freq + (1 + 24 aliases) * (cos, sin)
    assert names == expected
    state = meta_model.state_dict()
    assert names <= set(state)
    # they are buffers (not parameters) and nothing else is a buffer
    buffer_keys = set()
    for prefix, module in meta_model.named_modules(remove_duplicate=False):
        for name, _ in module.named_buffers(recurse=False):
            buffer_keys.add(f"{prefix}.{name}")
    assert buffer_keys == names
    assert expected_keys["model.cross_vision.vit.model.rope.freqs_cos"] == [6400, 64]


def test_init_deterministic_buffers_after_to_empty_equals_golden():
    """The loader's sequence: meta -> to_empty -> init_deterministic_buffers -> copy checkpoint tensors."""
    with torch.device("meta"):
        model = CogAgentForCausalLM(tiny_config())
    model.to_empty(device="cpu")
    model.init_deterministic_buffers()
    golden = load_file(GOLDEN / "weights.safetensors")
    state = model.state_dict()
    for name in model.deterministic_buffer_names():
        assert torch.equal(state[name], golden[name]), name
    # the shared EVA-L rope stays shared: one tensor behind every alias
    vit = model.model.cross_vision.vit.model
    assert all(block.attn.rope is vit.rope for block in vit.blocks)
    # the rest loads strictly, and the model then matches the golden logits
    model.load_state_dict(golden, strict=True)
    case = load_file(GOLDEN / "case_a_forward.safetensors")
    with torch.no_grad():
        logits = model.eval()(case["input_ids"], case["token_type_ids"], images=case["images"],
                              cross_images=case["cross_images"]).logits
    torch.testing.assert_close(logits, case["logits"], atol=1e-5, rtol=1e-4)


def test_init_deterministic_buffers_device_argument_and_in_place():
    model = CogAgentForCausalLM(tiny_config())
    inv_freq = model.model.layers[0].self_attn.rotary_emb.inv_freq
    inv_freq.zero_()
    model.init_deterministic_buffers()
    assert model.model.layers[0].self_attn.rotary_emb.inv_freq is inv_freq  # recomputed in place
    assert inv_freq[0] == 1.0
    with torch.device("meta"):
        meta = CogAgentForCausalLM(tiny_config())
    meta.init_deterministic_buffers(device="cpu")  # moves just the buffers off meta
    assert meta.model.cross_vision.vit.model.rope.freqs_cos.device.type == "cpu"
    golden = load_file(GOLDEN / "weights.safetensors")
    assert torch.equal(meta.state_dict()["model.cross_vision.vit.model.blocks.2.attn.rope.freqs_sin"],
                       golden["model.cross_vision.vit.model.blocks.2.attn.rope.freqs_sin"])


def test_full_size_rope_tables_are_eva_l(real_config):
    """Full-size values, computed directly (no 18B model needed)."""
    rope = cross_visual.VisionRotaryEmbeddingFast(64, 80, 16)
    assert rope.freqs_cos.shape == (6400, 64)
    # patch (h=0, w=1): the row half is angle 0, the column half starts with t=1/80*16 = 0.2 at frequency 1
    assert torch.equal(rope.freqs_cos[1, :32], torch.ones(32))
    torch.testing.assert_close(rope.freqs_cos[1, 32:34], torch.full((2,), 0.2).cos())
    rotary = modeling_cogagent.RotaryEmbedding(real_config.head_dim)
    assert rotary.inv_freq.shape == (64,)


def test_no_split_modules_name_real_classes(meta_model):
    classes = {type(m).__name__ for m in meta_model.modules()}
    assert set(CogAgentForCausalLM._no_split_modules) <= classes
    assert "CogAgentDecoderLayer" in CogAgentForCausalLM._no_split_modules
    assert {"TransformerLayer", "Block"} <= set(CogAgentForCausalLM._no_split_modules)
    assert visual.TransformerLayer.__name__ == "TransformerLayer" and cross_visual.Block.__name__ == "Block"


def test_from_pretrained_and_save_pretrained_delegate_to_loading(monkeypatch, tmp_path):
    calls = []
    fake = types.ModuleType("cogagent.loading")
    fake.from_pretrained = lambda cls, path, dtype=None, device=None, device_map=None: calls.append(
        ("from", cls, path, dtype, device, device_map)) or "model"
    fake.save_pretrained = lambda model, path, max_shard_bytes: calls.append(("save", model, path, max_shard_bytes))
    monkeypatch.setitem(sys.modules, "cogagent.loading", fake)
    assert CogAgentForCausalLM.from_pretrained(tmp_path, dtype=torch.bfloat16, device="cpu") == "model"
    model = CogAgentForCausalLM(tiny_config())
    model.save_pretrained(tmp_path)
    model.save_pretrained(tmp_path, max_shard_bytes=1000)
    assert calls == [("from", CogAgentForCausalLM, tmp_path, torch.bfloat16, "cpu", None),
                     ("save", model, tmp_path, 5 * 2**30), ("save", model, tmp_path, 1000)]


def test_save_pretrained_method_shards_and_loads_back(tmp_path):
    """The real round trip through the method: max_shard_bytes reaches the writer."""
    model = CogAgentForCausalLM(tiny_config())
    model.load_state_dict(load_file(GOLDEN / "weights.safetensors"))
    written = model.save_pretrained(tmp_path, max_shard_bytes=64 * 1024)
    shards = sorted(p.name for p in tmp_path.glob("model-*-of-*.safetensors"))
    assert len(shards) > 1 and "model.safetensors.index.json" in written
    largest = max(t.numel() * t.element_size() for t in model.state_dict().values())
    for shard in shards:  # a shard exceeds the limit only when it holds one tensor that alone does
        size = sum(t.numel() * t.element_size() for t in load_file(tmp_path / shard).values())
        assert size <= max(64 * 1024, largest)
    again = CogAgentForCausalLM.from_pretrained(tmp_path)
    for key, value in model.state_dict().items():
        assert torch.equal(again.state_dict()[key], value), key


def test_rope_tables_are_left_empty_on_meta_and_computed_otherwise():
    """Building on meta computes no table (the loader fills them); building normally gives the exact tables."""
    with torch.device("meta"):
        rotary = modeling_cogagent.RotaryEmbedding(128)
        rope = cross_visual.VisionRotaryEmbeddingFast(64, 80, 16)
    assert rotary.inv_freq.is_meta and rope.freqs_cos.is_meta and rope.freqs_sin.is_meta
    assert rotary.inv_freq.shape == (64,) and rope.freqs_cos.shape == rope.freqs_sin.shape == (6400, 64)
    assert rotary.inv_freq.dtype == rope.freqs_cos.dtype == torch.float32
    on_cpu = modeling_cogagent.RotaryEmbedding(128)
    expected = 1.0 / 10000.0 ** (torch.arange(0, 128, 2, dtype=torch.float64) / 128)
    torch.testing.assert_close(on_cpu.inv_freq.double(), expected, atol=0, rtol=1e-6)
    cpu_rope = cross_visual.VisionRotaryEmbeddingFast(64, 80, 16)
    cos, sin = cross_visual.rope_2d_tables(64, 80, 16)
    assert torch.equal(cpu_rope.freqs_cos, cos) and torch.equal(cpu_rope.freqs_sin, sin)


def test_config_round_trip(real_config):
    original = json.loads((GOLDEN / "cogagent-chat-hf.config.json").read_text())
    assert real_config.to_dict() == original  # nothing added, nothing lost
    assert real_config.cross_vision_config.width == 1024 and real_config.cross_vision_config.layers == 24
    assert real_config.cross_vision_config.head_width == 64 and real_config.cross_vision_config.patch_size == 14
    assert real_config.cross_vision_config.mlp_ratio == 2.6667 and real_config.cross_vision_config.pt_hw_seq_len == 16
    assert real_config.vision_config.image_size == 224 and real_config.vision_config["patch_size"] == 14
    assert real_config.num_vision_tokens == 258 and real_config.num_cross_tokens == 6400
    assert (real_config.pad_token_id, real_config.bos_token_id, real_config.eos_token_id) == (0, 1, 2)
    assert real_config.template_version == "chat" and real_config.rms_norm_eps == 1e-5
    tiny = tiny_config()
    assert tiny.cross_vision_config.width == 32 and tiny.cross_vision_config.layers == 3
    again = CogAgentConfig.from_dict(tiny.to_dict())
    assert again == tiny
    assert CogAgentConfig.from_dict(json.loads(tiny.to_json_string())) == tiny


def test_default_config_is_cogagent_chat_hf(real_config):
    default = CogAgentConfig()
    for name in ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                 "cross_hidden_size", "cross_image_size", "rms_norm_eps", "vision_config", "cross_vision_config"):
        assert getattr(default, name) == getattr(real_config, name), name
