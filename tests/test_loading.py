"""Checkpoint loading / saving on real files: the golden tiny CogAgent weights, written in every supported layout
and broken in every way the loader promises to report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from cogagent import loading
from cogagent.config import CogAgentConfig
from cogagent.loading import CheckpointError, from_pretrained, save_pretrained
from cogagent.modeling_cogagent import CogAgentForCausalLM

GOLDEN = Path(__file__).parent / "data" / "golden"


def _meta_model() -> CogAgentForCausalLM:
    config = CogAgentConfig.from_json_file(GOLDEN / "config.json")
    with torch.device("meta"):
        return CogAgentForCausalLM(config)


DET = _meta_model().deterministic_buffer_names()  # state_dict keys of the RoPE tables, every alias



@pytest.fixture(scope="module")
def golden_sd() -> dict[str, torch.Tensor]:
    return load_file(str(GOLDEN / "weights.safetensors"))


@pytest.fixture(scope="module")
def golden_config() -> dict:
    return json.loads((GOLDEN / "config.json").read_text())


def make_dir(tmp: Path, sd: dict[str, torch.Tensor] | None = None, config: dict | None = None) -> Path:
    """A checkpoint directory holding config.json and (optionally) a model.safetensors of ``sd``."""
    tmp.mkdir(parents=True, exist_ok=True)
    if config is None:
        shutil.copy(GOLDEN / "config.json", tmp / "config.json")
    else:
        (tmp / "config.json").write_text(json.dumps(config))
    if sd is not None:
        save_file({k: v.contiguous() for k, v in sd.items()}, str(tmp / "model.safetensors"))
    return tmp


@pytest.fixture()
def golden_dir(tmp_path: Path) -> Path:
    d = make_dir(tmp_path / "ckpt")
    shutil.copy(GOLDEN / "weights.safetensors", d / "model.safetensors")
    return d


def assert_state_equal(model: torch.nn.Module, sd: dict[str, torch.Tensor], dtype: torch.dtype | None = None) -> None:
    got = model.state_dict()
    assert set(got) == set(sd)
    for k, v in sd.items():
        want = v if dtype is None or k in DET else v.to(dtype)
        assert got[k].dtype == want.dtype, k
        assert torch.equal(got[k].cpu(), want), k


def write_bin_shards(d: Path, sd: dict[str, torch.Tensor], n: int) -> None:
    keys = list(sd)
    per = -(-len(keys) // n)
    weight_map = {}
    for i in range(n):
        name = f"pytorch_model-{i + 1:05d}-of-{n:05d}.bin"
        part = {k: sd[k].clone() for k in keys[i * per:(i + 1) * per]}
        torch.save(part, d / name)
        weight_map.update({k: name for k in part})
    (d / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))


# ----------------------------------------------------------------------------------------- round trips


def test_single_safetensors_loads_exactly(golden_dir, golden_sd):
    model = CogAgentForCausalLM.from_pretrained(golden_dir)
    assert isinstance(model, CogAgentForCausalLM)
    assert not model.training
    assert_state_equal(model, golden_sd)
    # shared EVA-L rope module stays shared after materialisation
    vit = model.model.cross_vision.vit.model
    assert all(block.attn.rope is vit.rope for block in vit.blocks)


def test_loaded_model_reproduces_golden_logits(golden_dir):
    case = load_file(str(GOLDEN / "case_a_forward.safetensors"))
    model = from_pretrained(CogAgentForCausalLM, golden_dir)
    with torch.no_grad():
        out = model(
            input_ids=case["input_ids"],
            token_type_ids=case["token_type_ids"],
            attention_mask=case["attention_mask"],
            images=case["images"],
            cross_images=case["cross_images"],
        )
    logits = out.logits if hasattr(out, "logits") else out[0]
    torch.testing.assert_close(logits, case["logits"], atol=1e-5, rtol=1e-4)


def test_save_pretrained_shards_round_trip(tmp_path, golden_dir, golden_sd):
    model = from_pretrained(CogAgentForCausalLM, golden_dir)
    out = tmp_path / "saved"
    written = save_pretrained(model, out, max_shard_bytes=200_000)
    shards = sorted(p.name for p in out.glob("model-*.safetensors"))
    n = len(shards)
    assert n >= 3
    assert shards == [f"model-{i:05d}-of-{n:05d}.safetensors" for i in range(1, n + 1)]
    assert not (out / "model.safetensors").exists()
    assert set(written) == set(shards) | {"model.safetensors.index.json", "config.json"}
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"]) == set(golden_sd)  # every alias of the shared rope buffers is stored
    assert set(index["weight_map"].values()) == set(shards)
    stored = {}
    for s in shards:
        stored.update(load_file(str(out / s)))
    assert index["metadata"]["total_size"] == sum(t.numel() * t.element_size() for t in stored.values())
    for k, v in golden_sd.items():
        assert torch.equal(stored[k], v), k
    assert_state_equal(from_pretrained(CogAgentForCausalLM, out), golden_sd)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["architectures"] == ["CogAgentForCausalLM"]
    assert cfg["torch_dtype"] == "float32"
    assert cfg["_patched_eva2_clip_l_sizes"]["width"] == 32


def test_save_pretrained_single_file_and_stale_files_removed(tmp_path, golden_dir, golden_sd):
    model = from_pretrained(CogAgentForCausalLM, golden_dir)
    out = tmp_path / "saved"
    save_pretrained(model, out, max_shard_bytes=200_000)
    assert (out / "model.safetensors.index.json").exists()
    written = save_pretrained(model, out)  # default 5 GiB: one file; the old shards and index must go
    assert sorted(written) == ["config.json", "model.safetensors"]
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    assert_state_equal(from_pretrained(CogAgentForCausalLM, out), golden_sd)
    # and the other way round: a stale single file must not shadow new shards
    save_pretrained(model, out, max_shard_bytes=300_000)
    assert not (out / "model.safetensors").exists()
    assert_state_equal(from_pretrained(CogAgentForCausalLM, out), golden_sd)


def test_save_pretrained_rejects_bad_shard_size(tmp_path, golden_dir):
    model = from_pretrained(CogAgentForCausalLM, golden_dir)
    for bad in (0, -5, 1.5):
        with pytest.raises(ValueError, match="max_shard_bytes"):
            save_pretrained(model, tmp_path / "x", max_shard_bytes=bad)


def test_bin_shards_with_index(tmp_path, golden_sd):
    d = make_dir(tmp_path / "bin")
    write_bin_shards(d, golden_sd, 3)
    assert_state_equal(from_pretrained(CogAgentForCausalLM, d), golden_sd)


def test_single_pytorch_model_bin(tmp_path, golden_sd):
    d = make_dir(tmp_path / "bin1")
    torch.save(dict(golden_sd), d / "pytorch_model.bin")
    assert_state_equal(from_pretrained(CogAgentForCausalLM, d), golden_sd)


def test_legacy_non_zip_bin_is_read_without_mmap(tmp_path, golden_sd):
    d = make_dir(tmp_path / "legacy")
    torch.save(dict(golden_sd), d / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    assert_state_equal(from_pretrained(CogAgentForCausalLM, d), golden_sd)


def test_safetensors_shards_without_index(tmp_path, golden_dir, golden_sd):
    out = tmp_path / "noindex"
    save_pretrained(from_pretrained(CogAgentForCausalLM, golden_dir), out, max_shard_bytes=400_000)
    (out / "model.safetensors.index.json").unlink()
    assert_state_equal(from_pretrained(CogAgentForCausalLM, out), golden_sd)


def test_deterministic_buffers_recomputed_when_absent(tmp_path, golden_sd):
    assert any("rotary_emb.inv_freq" in k for k in DET) and any("rope.freqs_cos" in k for k in DET)
    stripped = {k: v for k, v in golden_sd.items() if k not in DET}
    assert len(stripped) < len(golden_sd)
    d = make_dir(tmp_path / "nobuf", stripped)
    model = from_pretrained(CogAgentForCausalLM, d)
    got = model.state_dict()
    for k in DET:
        torch.testing.assert_close(got[k], golden_sd[k], atol=1e-6, rtol=0)  # recomputed = reference's tables
    for k in stripped:
        assert torch.equal(got[k], golden_sd[k]), k


def test_chunked_reads_cover_large_tensors(tmp_path, golden_sd, monkeypatch):
    """Force tiny read budgets so every multi-row tensor is copied in row blocks through reopened maps."""
    monkeypatch.setattr(loading, "_CHUNK_BYTES", 1000)
    monkeypatch.setattr(loading, "_MAX_MAPPED_BYTES", 5000)
    monkeypatch.setattr(loading, "_read_budgets", lambda total: (5000, 1000))
    d = make_dir(tmp_path / "chunks", golden_sd)
    assert_state_equal(from_pretrained(CogAgentForCausalLM, d, dtype="bfloat16"), golden_sd, torch.bfloat16)
    assert_state_equal(from_pretrained(CogAgentForCausalLM, d), golden_sd)


# --------------------------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize(
    "dtype,expected",
    [("bfloat16", torch.bfloat16), ("bf16", torch.bfloat16), ("fp16", torch.float16), ("float16", torch.float16),
     (torch.bfloat16, torch.bfloat16), ("float32", torch.float32)],
)
def test_dtype_cast(golden_dir, golden_sd, dtype, expected):
    model = from_pretrained(CogAgentForCausalLM, golden_dir, dtype=dtype)
    assert {p.dtype for p in model.parameters()} == {expected}
    assert_state_equal(model, golden_sd, expected)
    assert all(model.state_dict()[k].dtype == torch.float32 for k in DET)  # RoPE tables stay exact
    assert model.config.torch_dtype == str(expected).removeprefix("torch.")


def test_dtype_none_keeps_checkpoint_dtype(tmp_path, golden_sd):
    bf = {k: (v if k in DET else v.to(torch.bfloat16)) for k, v in golden_sd.items()}
    d = make_dir(tmp_path / "bf16", bf)
    model = from_pretrained(CogAgentForCausalLM, d)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    for k, v in bf.items():
        assert torch.equal(model.state_dict()[k], v), k


def test_dtype_none_mixed_checkpoint_uses_config_torch_dtype(tmp_path, golden_sd, golden_config):
    names = list(golden_sd)
    mixed = {k: (v.to(torch.float16) if i % 2 else v) for i, (k, v) in enumerate(golden_sd.items())}
    assert len({mixed[k].dtype for k in names}) == 2
    d = make_dir(tmp_path / "mixed", mixed, {**golden_config, "torch_dtype": "float16"})
    model = from_pretrained(CogAgentForCausalLM, d)
    assert {p.dtype for p in model.parameters()} == {torch.float16}


def test_low_precision_stored_buffers_are_recomputed_exactly(tmp_path, golden_sd):
    """A bf16 copy of a RoPE table is accepted but the exact float32 table is kept (same function, no rounding)."""
    bf = {k: v.to(torch.bfloat16) for k, v in golden_sd.items()}
    d = make_dir(tmp_path / "bfall", bf)
    model = from_pretrained(CogAgentForCausalLM, d, dtype="float32")
    sd = model.state_dict()
    for k in DET:
        torch.testing.assert_close(sd[k], golden_sd[k], atol=1e-6, rtol=0)
        assert not torch.equal(sd[k], bf[k].float()) or torch.equal(golden_sd[k], bf[k].float())


@pytest.mark.parametrize("bad", ["float8", "int8", "bfloat", torch.int32, 3])
def test_bad_dtype_is_clear_error(golden_dir, bad):
    with pytest.raises(ValueError, match="dtype"):
        from_pretrained(CogAgentForCausalLM, golden_dir, dtype=bad)


def test_cuda_without_gpu_is_clear_error(golden_dir):
    if torch.cuda.is_available():
        pytest.skip("this check is about machines without CUDA")
    with pytest.raises(ValueError, match="CUDA is not available"):
        from_pretrained(CogAgentForCausalLM, golden_dir, device="cuda:1")


def test_bad_device_string(golden_dir):
    with pytest.raises(ValueError, match="device"):
        from_pretrained(CogAgentForCausalLM, golden_dir, device="gpu0")


# --------------------------------------------------------------------------------------- broken inputs


def test_missing_key_is_named(tmp_path, golden_sd):
    victim = "model.layers.1.mlp.vision_mlp.up_proj.weight"
    d = make_dir(tmp_path / "m", {k: v for k, v in golden_sd.items() if k != victim})
    with pytest.raises(CheckpointError, match="1 missing key") as err:
        from_pretrained(CogAgentForCausalLM, d)
    assert victim in str(err.value)
    assert err.value.missing == [victim]


def test_many_missing_keys_show_first_ten_and_count(tmp_path, golden_sd):
    victims = [k for k in golden_sd if k.startswith("model.layers.")]
    n = len([k for k in victims if k not in DET])
    assert n > 10
    d = make_dir(tmp_path / "m", {k: v for k, v in golden_sd.items() if k not in victims})
    with pytest.raises(CheckpointError) as err:
        from_pretrained(CogAgentForCausalLM, d)
    msg = str(err.value)
    assert f"{n} missing key(s)" in msg and f"({n} in all)" in msg
    assert len(err.value.missing) == n


def test_unexpected_key_is_named(tmp_path, golden_sd):
    d = make_dir(tmp_path / "u", {**golden_sd, "model.layers.7.extra.weight": torch.zeros(3)})
    with pytest.raises(CheckpointError, match="unexpected") as err:
        from_pretrained(CogAgentForCausalLM, d)
    assert "model.layers.7.extra.weight" in str(err.value)
    assert err.value.unexpected == ["model.layers.7.extra.weight"]


def test_misshaped_key_is_named_with_shapes(tmp_path, golden_sd):
    victim = "lm_head.weight"
    bad = dict(golden_sd)
    bad[victim] = torch.zeros(bad[victim].shape[0] + 1, bad[victim].shape[1])
    d = make_dir(tmp_path / "s", bad)
    with pytest.raises(CheckpointError, match="mis-shaped") as err:
        from_pretrained(CogAgentForCausalLM, d)
    assert victim in str(err.value) and "[301, 64]" in str(err.value)
    assert err.value.mismatched == [victim]


def test_misshaped_deterministic_buffer_is_an_error(tmp_path, golden_sd):
    victim = "model.layers.0.self_attn.rotary_emb.inv_freq"
    bad = {**golden_sd, victim: torch.zeros(3)}
    d = make_dir(tmp_path / "sb", bad)
    with pytest.raises(CheckpointError, match="mis-shaped") as err:
        from_pretrained(CogAgentForCausalLM, d)
    assert victim in str(err.value)


def test_truncated_single_file(tmp_path, golden_dir):
    f = golden_dir / "model.safetensors"
    data = f.read_bytes()
    f.write_bytes(data[:-1000])
    with pytest.raises(CheckpointError, match="truncated") as err:
        from_pretrained(CogAgentForCausalLM, golden_dir)
    assert "model.safetensors" in str(err.value) and "download" in str(err.value)


def test_truncated_shard(tmp_path, golden_dir):
    out = tmp_path / "sh"
    save_pretrained(from_pretrained(CogAgentForCausalLM, golden_dir), out, max_shard_bytes=300_000)
    victim = sorted(out.glob("model-*.safetensors"))[1]
    victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated") as err:
        from_pretrained(CogAgentForCausalLM, out)
    assert victim.name in str(err.value)


def test_file_shorter_than_header(tmp_path, golden_dir):
    (golden_dir / "model.safetensors").write_bytes(b"\x10\x00")
    with pytest.raises(CheckpointError, match="truncated"):
        from_pretrained(CogAgentForCausalLM, golden_dir)


def test_garbage_header(tmp_path, golden_dir):
    (golden_dir / "model.safetensors").write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{oops" + b"\x00" * 20)
    with pytest.raises(CheckpointError, match="corrupt safetensors header"):
        from_pretrained(CogAgentForCausalLM, golden_dir)


def test_missing_shard_listed_by_index(tmp_path, golden_dir):
    out = tmp_path / "sh"
    save_pretrained(from_pretrained(CogAgentForCausalLM, golden_dir), out, max_shard_bytes=300_000)
    victim = sorted(out.glob("model-*.safetensors"))[-1]
    victim.unlink()
    with pytest.raises(CheckpointError, match="missing") as err:
        from_pretrained(CogAgentForCausalLM, out)
    assert victim.name in str(err.value) and "model.safetensors.index.json" in str(err.value)


def test_missing_shard_without_index(tmp_path, golden_dir):
    out = tmp_path / "sh"
    save_pretrained(from_pretrained(CogAgentForCausalLM, golden_dir), out, max_shard_bytes=300_000)
    (out / "model.safetensors.index.json").unlink()
    victim = sorted(out.glob("model-*.safetensors"))[0]
    victim.unlink()
    with pytest.raises(CheckpointError, match="missing") as err:
        from_pretrained(CogAgentForCausalLM, out)
    assert victim.name in str(err.value)


def test_index_names_wrong_shard(tmp_path, golden_dir):
    out = tmp_path / "sh"
    save_pretrained(from_pretrained(CogAgentForCausalLM, golden_dir), out, max_shard_bytes=300_000)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    key = next(k for k, v in index["weight_map"].items() if v == shards[0])
    index["weight_map"][key] = shards[1]
    (out / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="not in the shard") as err:
        from_pretrained(CogAgentForCausalLM, out)
    assert key in str(err.value)


def test_index_with_path_outside_directory(tmp_path, golden_dir):
    out = tmp_path / "sh"
    save_pretrained(from_pretrained(CogAgentForCausalLM, golden_dir), out, max_shard_bytes=300_000)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    key = next(iter(index["weight_map"]))
    index["weight_map"][key] = "../elsewhere.safetensors"
    (out / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(CheckpointError, match="not a plain file name"):
        from_pretrained(CogAgentForCausalLM, out)


def test_invalid_index_json(tmp_path, golden_dir):
    (golden_dir / "model.safetensors").unlink()
    (golden_dir / "model.safetensors.index.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        from_pretrained(CogAgentForCausalLM, golden_dir)


def test_duplicate_key_across_shards(tmp_path, golden_sd):
    d = make_dir(tmp_path / "dup")
    keys = list(golden_sd)
    save_file({k: golden_sd[k] for k in keys[:10]}, str(d / "model-00001-of-00002.safetensors"))
    save_file({k: golden_sd[k].clone() for k in keys[5:]}, str(d / "model-00002-of-00002.safetensors"))
    with pytest.raises(CheckpointError, match="more than one weight file"):
        from_pretrained(CogAgentForCausalLM, d)


def test_missing_config(tmp_path, golden_dir):
    (golden_dir / "config.json").unlink()
    with pytest.raises(CheckpointError, match="config.json not found"):
        from_pretrained(CogAgentForCausalLM, golden_dir)


def test_config_of_other_architecture(tmp_path, golden_dir):
    llama = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 64, "vocab_size": 300}
    (golden_dir / "config.json").write_text(json.dumps(llama))
    with pytest.raises(CheckpointError, match="LlamaForCausalLM") as err:
        from_pretrained(CogAgentForCausalLM, golden_dir)
    assert "CogAgent" in str(err.value)


def test_config_without_architectures_or_vision(tmp_path, golden_dir):
    (golden_dir / "config.json").write_text(json.dumps({"hidden_size": 64, "model_type": "gpt2"}))
    with pytest.raises(CheckpointError, match="not a CogAgent config"):
        from_pretrained(CogAgentForCausalLM, golden_dir)


def test_config_invalid_json(tmp_path, golden_dir):
    (golden_dir / "config.json").write_text("{'single': quotes}")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        from_pretrained(CogAgentForCausalLM, golden_dir)


def test_config_rejected_by_config_class(tmp_path, golden_dir, golden_config):
    (golden_dir / "config.json").write_text(json.dumps({**golden_config, "hidden_size": 63}))
    with pytest.raises(CheckpointError, match="not a valid CogAgentConfig"):
        from_pretrained(CogAgentForCausalLM, golden_dir)


def test_no_weights(tmp_path):
    d = make_dir(tmp_path / "empty")
    (d / "README.md").write_text("hi")
    with pytest.raises(CheckpointError, match="no weights found") as err:
        from_pretrained(CogAgentForCausalLM, d)
    assert "README.md" in str(err.value)


def test_path_missing_or_a_file(tmp_path, golden_dir):
    with pytest.raises(CheckpointError, match="does not exist"):
        from_pretrained(CogAgentForCausalLM, tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="is a file"):
        from_pretrained(CogAgentForCausalLM, golden_dir / "model.safetensors")


class NotAWeight:
    """Any class outside torch's weights-only allow-list: unpickling it would import and run our code."""

    def __init__(self) -> None:
        self.payload = 1


def test_pickle_needing_code_is_refused(tmp_path, golden_sd):
    d = make_dir(tmp_path / "evil")
    torch.save({**golden_sd, "extra": NotAWeight()}, d / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="arbitrary code") as err:
        from_pretrained(CogAgentForCausalLM, d)
    assert "safetensors" in str(err.value)


def test_pickle_of_non_state_dict_is_refused(tmp_path):
    d = make_dir(tmp_path / "list")
    torch.save([torch.zeros(2)], d / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="flat state dict"):
        from_pretrained(CogAgentForCausalLM, d)


def test_truncated_bin(tmp_path, golden_sd):
    d = make_dir(tmp_path / "tbin")
    torch.save(dict(golden_sd), d / "pytorch_model.bin")
    data = (d / "pytorch_model.bin").read_bytes()
    (d / "pytorch_model.bin").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        from_pretrained(CogAgentForCausalLM, d)


def test_missing_bin_shard(tmp_path, golden_sd):
    d = make_dir(tmp_path / "mbin")
    write_bin_shards(d, golden_sd, 3)
    (d / "pytorch_model-00002-of-00003.bin").unlink()
    with pytest.raises(CheckpointError, match="pytorch_model-00002-of-00003.bin"):
        from_pretrained(CogAgentForCausalLM, d)


# ------------------------------------------------------------------------------------------ device maps


def _module_bytes(model: torch.nn.Module) -> int:
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        if id(t) not in seen:
            seen.add(id(t))
            total += t.numel() * 4
    return total


def _assert_never_splits(model: torch.nn.Module, dm: dict[str, torch.device]) -> set[torch.device]:
    no_split = set(model._no_split_modules)
    assert no_split
    checked = 0
    for name, module in model.named_modules():
        if type(module).__name__ in no_split:
            devices = {loading._device_for(f"{name}.{n}", dm) for n, _ in module.state_dict().items()}
            assert len(devices) == 1, (name, devices)
            checked += 1
    assert checked >= model.config.num_hidden_layers
    # modules that use their own tensors next to their children's outputs are whole
    for name in ("model.vision", "model.cross_vision"):
        module = model.get_submodule(name)
        assert len({loading._device_for(f"{name}.{n}", dm) for n in module.state_dict()}) == 1, name
    # every alias of a shared tensor on one device
    groups: dict[int, set] = {}
    for full, _m, _a, t, _p in loading._named_tensor_slots(model):
        groups.setdefault(id(t), set()).add(loading._device_for(full, dm))
    assert all(len(g) == 1 for g in groups.values())
    return set(dm.values())


@pytest.mark.parametrize("strategy", ["auto", "sequential", "balanced"])
@pytest.mark.parametrize("fraction", [0.55, 0.7, 0.85])
def test_auto_device_map_splits_only_at_block_boundaries(strategy, fraction):
    model = _meta_model()
    total = _module_bytes(model)
    mem = {"cuda:0": int(total * fraction), "cuda:1": total * 2}
    dm = loading.compute_device_map(model, strategy, torch.float32, max_memory=mem)
    devices = _assert_never_splits(model, dm)
    assert devices <= {torch.device("cuda", 0), torch.device("cuda", 1)}
    if strategy == "sequential":
        assert devices == {torch.device("cuda", 0), torch.device("cuda", 1)}


def test_device_map_keeps_shared_rope_with_its_blocks():
    """A split inside the cross encoder would leave blocks apart from the rope module they share."""
    model = _meta_model()
    dm = {
        "model.embed_tokens": "cuda:0", "model.layers": "cuda:0", "model.norm": "cuda:0", "model.vision": "cuda:0",
        "model.cross_vision.pos_embed": "cuda:1",
        "model.cross_vision.vit.model.patch_embed": "cuda:0", "model.cross_vision.vit.model.cls_token": "cuda:0",
        "model.cross_vision.vit.model.pos_embed": "cuda:0", "model.cross_vision.vit.model.rope": "cuda:0",
        "model.cross_vision.vit.model.blocks.0": "cuda:0", "model.cross_vision.vit.model.blocks.1": "cuda:1",
        "model.cross_vision.vit.model.blocks.2": "cuda:1", "model.cross_vision.vit.model.norm": "cuda:1",
        "model.cross_vision.vit.model.head": "cuda:1", "lm_head": "cuda:1",
    }
    out = loading.compute_device_map(model, dm, torch.float32)
    _assert_never_splits(model, out)
    assert loading._device_for("model.cross_vision.vit.model.blocks.2.attn.proj.weight", out) == torch.device("cuda", 0)
    assert loading._device_for("lm_head.weight", out) == torch.device("cuda", 1)


def test_device_map_dict_splitting_a_layer_is_refused():
    model = _meta_model()
    dm = {"": "cuda:0", "model.layers.1.mlp": "cuda:1"}
    with pytest.raises(CheckpointError, match="model.layers.1"):
        loading.compute_device_map(model, dm, torch.float32)


def test_device_map_disk_and_unplaced_are_refused():
    model = _meta_model()
    with pytest.raises(CheckpointError, match="disk"):
        loading.compute_device_map(model, {"": "cpu", "lm_head": "disk"}, torch.float32)
    with pytest.raises(CheckpointError, match="unplaced"):
        loading.compute_device_map(model, {"model": "cpu"}, torch.float32)
    with pytest.raises(ValueError, match="device_map"):
        loading.compute_device_map(model, "everywhere", torch.float32)


def test_device_map_too_small_for_model_is_refused():
    model = _meta_model()
    with pytest.raises(CheckpointError, match="offloading to disk is not supported"):
        loading.compute_device_map(model, "sequential", torch.float32, max_memory={0: 1000, 1: 1000})


def test_device_map_dict_on_cpu_loads(golden_dir, golden_sd):
    dm = {"model.embed_tokens": "cpu", "model.layers": "cpu", "model.norm": "cpu", "model.vision": "cpu",
          "model.cross_vision": "cpu", "lm_head": "cpu"}
    model = CogAgentForCausalLM.from_pretrained(golden_dir, device_map=dm)
    assert_state_equal(model, golden_sd)
    assert model.hf_device_map["lm_head"] == "cpu"
