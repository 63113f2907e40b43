"""cogagent.train on real generated examples (Chromium-rendered pages) with a real tiny CogAgent and tokenizer."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from cogagent.config import CogAgentConfig
from cogagent.modeling_cogagent import CogAgentForCausalLM
from cogagent.prompts import IGNORE_INDEX
from cogagent.tokenizer import load_tokenizer
from cogagent.train import (DataError, SampleBuilder, TrainConfig, TrainError, add_lora, causal_lm_loss,
                            export_model, load_jsonl, train)
from vision.preprocess import preprocess

try:
    from support.train_setup import base_cfg, setup  # noqa: F401  (setup is a module fixture)
except ImportError:  # pragma: no cover - run from the repository root as a package
    from tests.support.train_setup import base_cfg, setup  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent


def dataset_loss(model: CogAgentForCausalLM, builder: SampleBuilder, examples) -> float:
    model.eval()
    with torch.no_grad():
        batch = builder.batch(examples)
        labels = batch.pop("labels")
        return causal_lm_loss(model(**batch).logits, labels).item()


def test_labels_cover_only_the_answer_and_eos(setup):
    tokenizer = load_tokenizer(setup / "tok")
    config = CogAgentConfig.from_json_file(setup / "config.json")
    examples, _ = load_jsonl(setup / "data" / "small.jsonl")
    builder = SampleBuilder(tokenizer, config)
    for example in examples:
        sample = builder.sample(example)
        ids, labels = sample["input_ids"][0], sample["labels"][0]
        kept = (labels != IGNORE_INDEX).nonzero().flatten()
        start = int(kept[0])
        assert kept.tolist() == list(range(start, ids.shape[0]))  # one span, to the end
        assert int(labels[-1]) == tokenizer.eos_token_id
        assert torch.equal(labels[start:], ids[start:])
        assert tokenizer.decode(labels[start:-1].tolist(), skip_special_tokens=True).strip() == example.answer
        assert (sample["token_type_ids"][0][labels != IGNORE_INDEX] == 0).all()  # never on image slots
    batch = builder.batch(examples[:2])  # left padding: pads are -100 too
    assert ((batch["attention_mask"] == 0) <= (batch["labels"] == IGNORE_INDEX)).all()


def test_full_finetuning_lowers_the_loss_and_reloads_identically(setup):
    cfg = base_cfg(setup, "full", max_steps=6)
    examples, _ = load_jsonl(cfg.train)
    torch.manual_seed(cfg.init_seed)
    start = CogAgentForCausalLM(CogAgentConfig.from_json_file(cfg.init_config))
    builder = SampleBuilder(load_tokenizer(cfg.tokenizer), start.config)
    before = dataset_loss(start, builder, examples)
    summary = train(cfg)
    trained = CogAgentForCausalLM.from_pretrained(summary["final"])
    after = dataset_loss(trained, builder, examples)
    assert after < before - 0.5, (before, after)
    assert (Path(summary["final"]) / "tokenizer.model").is_file()
    log = [json.loads(line) for line in (setup / "full" / "train_log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 6

    # A checkpoint written by export_model (the official layout) gives identical logits after from_pretrained.
    export_model(trained, setup / "full" / "again")
    reloaded = CogAgentForCausalLM.from_pretrained(setup / "full" / "again")
    batch = builder.batch(examples[:2])
    batch.pop("labels")
    with torch.no_grad():
        assert torch.equal(trained(**batch).logits, reloaded(**batch).logits)


def test_lora_lowers_the_loss_and_exports_merged_weights(setup):
    torch.manual_seed(5)
    base = CogAgentForCausalLM(CogAgentConfig.from_json_file(setup / "config.json"))
    base.save_pretrained(setup / "base")
    # A random base model's output hardly depends on its attention layers: adapt the LM head as well here.
    cfg = base_cfg(setup, "lora", init_config=None, model=str(setup / "base"), lora=True, lora_r=4, lora_alpha=8,
                   lr=1e-2, max_steps=6, lora_targets=TrainConfig().lora_targets + ("lm_head",))
    examples, _ = load_jsonl(cfg.train)
    builder = SampleBuilder(load_tokenizer(cfg.tokenizer), base.config)
    before = dataset_loss(base, builder, examples)
    summary = train(cfg)
    merged = CogAgentForCausalLM.from_pretrained(summary["final"])
    after = dataset_loss(merged, builder, examples)
    assert after < before - 0.2, (before, after)

    base_sd, merged_sd = base.state_dict(), merged.state_dict()
    assert base_sd.keys() == merged_sd.keys()  # official names, no lora_ / base_layer keys
    changed = {k.rsplit(".", 2)[-2] for k in base_sd if not torch.equal(base_sd[k], merged_sd[k])}
    assert changed and changed <= set(cfg.lora_targets)  # only the adapted layers moved
    checkpoint = Path(summary["checkpoint"])
    assert all("lora_" in k for k in load_file(str(checkpoint / "adapter_model.safetensors")))

    # The merged export computes what the adapted model computes.
    adapted = add_lora(CogAgentForCausalLM.from_pretrained(setup / "base"), cfg)
    adapted.load_state_dict(load_file(str(checkpoint / "adapter_model.safetensors")), strict=False)
    adapted.eval()
    batch = builder.batch(examples[:2])
    batch.pop("labels")
    with torch.no_grad():
        torch.testing.assert_close(adapted(**batch).logits, merged(**batch).logits, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("lora", [False, True])
def test_interrupted_run_resumes_to_the_same_result(setup, lora):
    extra = dict(init_config=None, model=str(setup / "resume-base"), lora=True, lr=1e-2) if lora else {}
    if lora:
        torch.manual_seed(9)
        CogAgentForCausalLM(CogAgentConfig.from_json_file(setup / "config.json")).save_pretrained(setup / "resume-base")
    name = "lora" if lora else "full"
    straight = train(base_cfg(setup, f"straight-{name}", max_steps=5, warmup_steps=2, **extra))

    def stop_at_two(state, loss):
        if state.step == 2:
            raise KeyboardInterrupt

    cut = train(base_cfg(setup, f"cut-{name}", max_steps=5, warmup_steps=2, **extra), on_step=stop_at_two)
    assert cut["interrupted"] and cut["steps"] == 2 and "final" not in cut
    saved = json.loads((Path(cut["checkpoint"]) / "trainer_state.json").read_text())["state"]
    assert saved["step"] == 2 and saved["examples_seen"] == 4
    resumed = train(base_cfg(setup, f"cut-{name}", max_steps=5, warmup_steps=2, resume="latest", **extra))
    assert resumed["steps"] == 5 and resumed["examples_seen"] == straight["examples_seen"]
    a = load_file(str(Path(straight["final"]) / "model.safetensors"))
    b = load_file(str(Path(resumed["final"]) / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_resume_with_another_length_needs_reschedule_and_bends_the_schedule(setup):
    def stop_at_two(state, loss):
        if state.step == 2:
            raise KeyboardInterrupt

    planned = dict(max_steps=6, warmup_steps=1, log_every=1)
    straight = train(base_cfg(setup, "sched-straight", **planned))
    train(base_cfg(setup, "sched-cut", **planned), on_step=stop_at_two)
    with pytest.raises(TrainError, match="made for 6 steps.*--reschedule"):
        train(base_cfg(setup, "sched-cut", **{**planned, "max_steps": 4}, resume="latest"))
    with pytest.raises(TrainError, match="already at or past"):
        train(base_cfg(setup, "sched-cut", **{**planned, "max_steps": 2}, resume="latest", reschedule=True))
    shorter = train(base_cfg(setup, "sched-cut", **{**planned, "max_steps": 4}, resume="latest", reschedule=True))
    assert shorter["steps"] == 4

    def lr_at(run: str, step: int) -> float:
        rows = [json.loads(x) for x in (setup / run / "train_log.jsonl").read_text().splitlines()]
        return next(r["lr"] for r in rows if r["step"] == step)

    assert lr_at("sched-cut", 2) == lr_at("sched-straight", 2)  # the same run up to the cut
    assert lr_at("sched-cut", 4) < lr_at("sched-straight", 4)  # then decaying toward the nearer end
    assert straight["steps"] == 6


def test_resume_without_a_checkpoint_is_an_error(setup):
    with pytest.raises(TrainError, match="no checkpoint"):
        train(base_cfg(setup, "empty", resume="latest"))


def test_bad_lines_are_reported_with_line_numbers(setup, tmp_path):
    good = json.loads((setup / "data" / "small.jsonl").read_text().splitlines()[0])
    good["image"] = str(setup / "data" / good["image"])
    rows = [
        json.dumps(good),
        "{not json",
        json.dumps({**good, "image": "nowhere.png"}),
        json.dumps({**good, "answer": "Grounded Operation:[button] Save -> CLICK at the box [[1,2"}),
        json.dumps({k: v for k, v in good.items() if k != "query"}),
        json.dumps({**good, "history": "not a list"}),
        json.dumps(good),
    ]
    data = tmp_path / "bad.jsonl"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.jsonl:2: not valid JSON"):
        load_jsonl(data, "fail")
    examples, bad = load_jsonl(data, "skip")
    assert [e.line for e in examples] == [1, 7]
    assert [b.line for b in bad] == [2, 3, 4, 5, 6]
    reasons = [b.reason for b in bad]
    assert "nowhere.png" in reasons[1] and "not found" in reasons[1]
    assert "does not parse in the CogAgent grammar" in reasons[2]
    assert "missing field 'query'" in reasons[3] and "history" in reasons[4]

    # The CLI: fatal by default (exit 2, the line named), skipped with --on-bad-line skip.
    args = [sys.executable, "-m", "cogagent.train", "--train", str(data), "--out", str(tmp_path / "run"),
            "--init-config", str(setup / "config.json"), "--tokenizer", str(setup / "tok"), "--max-steps", "1",
            "--batch-size", "2", "--no-progress"]
    proc = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "bad.jsonl:2:" in proc.stderr, proc.stderr
    proc = subprocess.run(args + ["--on-bad-line", "skip"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 1 and len(summary["bad_lines"]) == 5 and ":4:" in summary["bad_lines"][2]


@pytest.mark.parametrize("mode", ["RGBA", "L", "P", "I;16"])
def test_images_of_another_mode_are_converted(setup, tmp_path, mode):
    good = json.loads((setup / "data" / "small.jsonl").read_text().splitlines()[0])
    with Image.open(setup / "data" / good["image"]) as img:
        rgb = img.convert("RGB").resize((320, 200))
    odd = rgb.convert("I;16") if mode == "I;16" else rgb.convert(mode)
    odd.save(tmp_path / "odd.png")
    with Image.open(tmp_path / "odd.png") as check:
        assert check.mode == mode
    (tmp_path / "odd.jsonl").write_text(json.dumps({**good, "image": "odd.png"}) + "\n", encoding="utf-8")
    examples, _ = load_jsonl(tmp_path / "odd.jsonl")
    config = CogAgentConfig.from_json_file(setup / "config.json")
    builder = SampleBuilder(load_tokenizer(setup / "tok"), config)
    pixels = builder.pixels(examples[0].image)
    with Image.open(tmp_path / "odd.png") as img:
        expected_rgb = img.convert("RGB") if mode != "I;16" else None
    if expected_rgb is not None:  # what the official .convert("RGB") gives
        expected = preprocess(expected_rgb, 56, 56)
        assert torch.equal(pixels["images"], expected["images"])
        assert torch.equal(pixels["cross_images"], expected["cross_images"])
    assert pixels["images"].shape == (1, 3, 56, 56) and torch.isfinite(pixels["images"]).all()
    summary = train(base_cfg(setup, f"mode-{mode.replace(';', '')}", train=str(tmp_path / "odd.jsonl"), max_steps=1,
                             batch_size=1))
    assert summary["steps"] == 1


def test_lora_over_a_bfloat16_base_trains_float32_adapters_and_exports_bfloat16(setup):
    torch.manual_seed(5)
    CogAgentForCausalLM(CogAgentConfig.from_json_file(setup / "config.json")).save_pretrained(setup / "bf16-base")
    cfg = base_cfg(setup, "lora-bf16", init_config=None, model=str(setup / "bf16-base"), lora=True, lr=1e-2,
                   load_dtype="bfloat16", max_steps=6, log_every=1, gradient_checkpointing=True)
    wrapped = add_lora(CogAgentForCausalLM.from_pretrained(setup / "bf16-base", dtype=torch.bfloat16), cfg)
    dtypes = {("lora_" in n, p.dtype) for n, p in wrapped.named_parameters()}
    assert dtypes == {(True, torch.float32), (False, torch.bfloat16)}  # adapters float32 over a bf16 base
    seen = {}

    def look(state, loss):
        seen.setdefault("loss", []).append(loss)

    summary = train(cfg, on_step=look)
    assert all(math.isfinite(x) for x in seen["loss"]) and seen["loss"][-1] < seen["loss"][0]
    final = CogAgentForCausalLM.from_pretrained(summary["final"])
    assert final.dtype == torch.bfloat16  # the frozen base's dtype, adapters merged in
    base = CogAgentForCausalLM.from_pretrained(setup / "bf16-base")
    moved = [k for k, v in final.state_dict().items() if not torch.equal(v, base.state_dict()[k].to(v.dtype))]
    assert moved and all(any(t in k for t in cfg.lora_targets) for k in moved)


def test_bfloat16_base_weights_are_refused_for_full_fine_tuning(setup):
    with pytest.raises(TrainError, match="--load-dtype bfloat16 is for --lora"):
        train(base_cfg(setup, "full-bf16", load_dtype="bfloat16"))
