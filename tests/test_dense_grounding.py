"""The dense grounding loss and shared-screenshot batching of cogagent.train, on hand-computed grids and a real
tiny CogAgent (the setup fixture of test_train renders real pages with Chromium)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cogagent.config import CogAgentConfig
from cogagent.dense_grounding import (DenseTargets, Element, check_elements, dense_loss, patch_owner,
                                      target_attention_loss, target_patch_mask)
from cogagent.modeling_cogagent import CogAgentForCausalLM
from cogagent.tokenizer import encode_text, load_tokenizer
from cogagent.train import (DataError, SampleBuilder, SharedImages, TrainError, _epoch_order, causal_lm_loss,
                            load_jsonl, train)

try:
    from support.train_setup import base_cfg, setup  # noqa: F401  (setup is a module fixture)
except ImportError:  # pragma: no cover - run from the repository root as a package
    from tests.support.train_setup import base_cfg, setup  # noqa: F401


def test_patches_belong_to_the_element_whose_box_holds_their_centre():
    # 100x100 screen, 4x4 grid: patch centres at 12.5, 37.5, 62.5, 87.5 on each axis
    big = Element("button", "Save", (0, 0, 49, 49))  # holds the centres of patches (0,0) (0,1) (1,0) (1,1)
    tiny = Element("checkbox", "Dark mode", (64, 64, 70, 70))  # holds no centre: gets the patch under its centre
    owner = patch_owner([big, tiny], (100, 100), 4)
    assert [p for p, o in enumerate(owner) if o == 0] == [0, 1, 4, 5]
    assert [p for p, o in enumerate(owner) if o == 1] == [2 * 4 + 2]
    assert owner.count(-1) == 16 - 5


def test_non_square_screens_map_per_axis():
    # 1280x800 squashed to an 8x8 grid: a patch is 160 px wide and 100 px tall
    owner = patch_owner([Element("link", "Help", (1120, 0, 1279, 99))], (1280, 800), 8)
    assert [p for p, o in enumerate(owner) if o == 0] == [7]


def test_later_elements_win_overlaps():
    owner = patch_owner([Element("button", "A", (0, 0, 99, 99)), Element("button", "B", (0, 0, 30, 30))],
                        (100, 100), 4)
    assert owner[0] == 1 and owner[5] == 0


def test_targets_are_the_widgets_words_or_background(setup):  # noqa: F811
    tokenizer = load_tokenizer(setup / "tok")
    elements = [Element("button", "Save", (0, 0, 49, 49))]
    targets = DenseTargets(tokenizer, grid=4, vocab_size=tokenizer.vocab_size, background_id=0)
    soft, is_element = targets.build(elements, (100, 100))
    assert soft.shape == (16, tokenizer.vocab_size)
    assert torch.allclose(soft.sum(-1), torch.ones(16))
    assert is_element.tolist() == [p in (0, 1, 4, 5) for p in range(16)]
    words = encode_text(tokenizer, "[button] Save")
    assert set(soft[0].nonzero().flatten().tolist()) == set(words)
    assert soft[2, 0] == 1.0 and soft[2].sum() == 1.0


def test_background_weight_scales_the_empty_patches():
    logits = torch.zeros(1, 2, 3)
    targets = torch.tensor([[[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]])
    logits[0, 0, 1] = 5.0  # the element patch is right, the background patch is uniform
    right = torch.nn.functional.cross_entropy(logits[0, 0], targets[0, 0]).item()
    uniform = torch.log(torch.tensor(3.0)).item()
    assert dense_loss(logits, targets, torch.tensor([[True, False]]), 0.0).item() == pytest.approx(right)
    assert dense_loss(logits, targets, torch.tensor([[True, False]]), 1.0).item() == pytest.approx(
        (right + uniform) / 2)


@pytest.mark.parametrize("value, reason", [
    ("x", "must be a list"),
    ([{"kind": "button"}], "string 'kind' and 'label'"),
    ([{"kind": "button", "label": "Go", "box_px": [1, 2, 3]}], "box_px"),
    ([{"kind": "button", "label": "Go", "box_px": [5, 2, 3, 4]}], "x1<=x2"),
])
def test_bad_elements_are_explained(value, reason):
    elements, why = check_elements(value)
    assert elements is None and reason in why


def test_bad_elements_line_is_reported_with_its_number(setup, tmp_path):  # noqa: F811
    lines = (setup / "data" / "small.jsonl").read_text(encoding="utf-8").splitlines()
    bad = json.loads(lines[1])
    bad["elements"] = [{"kind": "button", "label": "Go", "box_px": [1, 2]}]
    bad["image"] = str((setup / "data" / bad["image"]).resolve())
    path = tmp_path / "bad.jsonl"
    path.write_text(lines[0].replace('"images/', '"' + str(setup / "data" / "images") + "/") + "\n"
                    + json.dumps(bad) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad.jsonl:2: elements\[0\].box_px"):
        load_jsonl(path)


def test_grouped_order_is_a_permutation_with_each_screenshot_together():
    groups = ["a", "b", "a", "c", "b", "a", "c", "d"]
    order = _epoch_order(len(groups), seed=3, epoch=1, groups=groups)
    assert sorted(order) == list(range(len(groups)))
    keys = [groups[i] for i in order]
    runs = [k for i, k in enumerate(keys) if i == 0 or keys[i - 1] != k]
    assert len(runs) == len(set(groups))  # each screenshot's examples are contiguous
    assert order == _epoch_order(len(groups), seed=3, epoch=1, groups=groups)  # deterministic (resumable)
    assert order != _epoch_order(len(groups), seed=3, epoch=2, groups=groups)


def test_shared_images_give_the_same_loss_and_gradients(setup):  # noqa: F811
    """Encoding a repeated screenshot once must not change the maths, only the cost."""
    tokenizer = load_tokenizer(setup / "tok")
    config = CogAgentConfig.from_json_file(setup / "config.json")
    examples, _ = load_jsonl(setup / "data" / "small.jsonl")
    same = [e for e in examples if e.image == examples[0].image]
    other = [e for e in examples if e.image != examples[0].image]
    chosen = (same * 2)[:2] + other[:1]
    assert len({e.image for e in chosen}) < len(chosen)
    builder = SampleBuilder(tokenizer, config)

    def loss_and_grads(model, shared):
        batch = builder.batch(chosen)
        labels = batch.pop("labels")
        if shared is not None:
            shared.set_batch([e.image for e in chosen], torch.device("cpu"))
        loss = causal_lm_loss(model(**batch).logits, labels)
        model.zero_grad()
        loss.backward()
        return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    torch.manual_seed(0)
    plain = CogAgentForCausalLM(config)
    twin = CogAgentForCausalLM(config)
    twin.load_state_dict(plain.state_dict())
    calls = []
    twin.model.cross_vision.register_forward_hook(lambda _m, i, _o: calls.append(i[0].shape[0]))
    shared = SharedImages(twin)
    ref_loss, ref_grads = loss_and_grads(plain, None)
    loss, grads = loss_and_grads(twin, shared)
    assert calls == [len({e.image for e in chosen})]  # the encoder saw each screenshot once
    assert loss == pytest.approx(ref_loss, abs=1e-6)
    assert ref_grads.keys() == grads.keys()
    for name, g in ref_grads.items():
        assert torch.allclose(g, grads[name], atol=1e-6, rtol=1e-4), name


def test_dense_training_lowers_the_dense_loss_and_exports_a_plain_model(setup):  # noqa: F811
    cfg = base_cfg(setup, "dense", max_steps=8, batch_size=4, dense_weight=1.0, group_by_image=True, log_every=1)
    summary = train(cfg)
    log = [json.loads(line) for line in (setup / "dense" / "train_log.jsonl").read_text().splitlines()]
    assert all("dense_loss" in entry for entry in log)
    assert log[-1]["dense_loss"] < log[0]["dense_loss"]
    saved = set(load_file(str(Path(summary["final"]) / "model.safetensors")))
    plain = CogAgentForCausalLM(CogAgentConfig.from_json_file(setup / "config.json"))
    assert saved == set(plain.state_dict())  # the head stays out of the export: the plain architecture
    CogAgentForCausalLM.from_pretrained(summary["final"])


def test_dense_head_is_restored_on_resume(setup):  # noqa: F811
    full = train(base_cfg(setup, "dense-full", max_steps=4, batch_size=2, dense_weight=1.0, group_by_image=True))
    calls = []

    def stop_after_two(state, _loss):
        calls.append(state.step)
        if state.step == 2:
            raise KeyboardInterrupt

    first = train(base_cfg(setup, "dense-resumed", max_steps=4, batch_size=2, dense_weight=1.0,
                           group_by_image=True), on_step=stop_after_two)
    assert first["interrupted"]
    resumed = train(base_cfg(setup, "dense-resumed", max_steps=4, batch_size=2, dense_weight=1.0,
                             group_by_image=True, resume="latest"))
    a = CogAgentForCausalLM.from_pretrained(full["final"]).state_dict()
    b = CogAgentForCausalLM.from_pretrained(resumed["final"]).state_dict()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6), name


def test_target_attention_loss_is_zero_on_target_and_log_share_when_uniform():
    B, L, Lc, H, D = 1, 3, 4, 2, 8
    keys = torch.zeros(B, Lc, H, D)
    keys[0, 2, :, 0] = 1.0  # only patch 2 has a key the query can find
    query = torch.zeros(B, L, H, D)
    positions = torch.tensor([[False, True, True]])
    targets = torch.tensor([[False, False, True, False]])
    uniform = target_attention_loss(query, keys, positions, targets, heads=2)
    assert uniform.item() == pytest.approx(math.log(4.0), rel=1e-5)  # -log(1/4): one of four patches
    query[0, :, 0, 0] = 100.0  # head 0 looks at patch 2 only; head 1 stays uniform
    assert target_attention_loss(query, keys, positions, targets, heads=1).item() == pytest.approx(0.0, abs=1e-4)
    assert target_attention_loss(query, keys, positions, targets, heads=2).item() == pytest.approx(
        math.log(4.0) / 2, rel=1e-4)
    none = target_attention_loss(query, keys, positions, torch.zeros_like(targets), heads=2)
    assert none.item() == 0.0  # no target on the screen: nothing to steer


def test_target_patch_mask_matches_the_box():
    mask = target_patch_mask((0, 0, 49, 49), (100, 100), 4)
    assert mask.nonzero().flatten().tolist() == [0, 1, 4, 5]


def test_attention_training_steers_cross_attention_to_the_target(setup):  # noqa: F811
    cfg = base_cfg(setup, "attention", max_steps=8, batch_size=4, attention_weight=1.0, log_every=1, lr=1e-2)
    train(cfg)
    log = [json.loads(line) for line in (setup / "attention" / "train_log.jsonl").read_text().splitlines()]
    assert all("attention_loss" in entry for entry in log)
    assert log[-1]["attention_loss"] < log[0]["attention_loss"]


def test_attention_heads_beyond_the_model_are_an_error(setup):  # noqa: F811
    with pytest.raises(TrainError, match="exceeds the model's 2 heads"):
        train(base_cfg(setup, "attention-bad", attention_weight=1.0, attention_heads=3))


def test_training_hooks_keep_nothing_during_evaluation(setup):  # noqa: F811
    """The held-out evaluation runs on the trained model with the hooks still attached: they must neither keep
    tensors from generation nor remap its batches."""
    from cogagent.train import AttentionSupervision

    tokenizer = load_tokenizer(setup / "tok")
    config = CogAgentConfig.from_json_file(setup / "config.json")
    examples, _ = load_jsonl(setup / "data" / "small.jsonl")
    model = CogAgentForCausalLM(config)
    builder = SampleBuilder(tokenizer, config)
    shared = SharedImages(model)
    shared.set_batch([examples[0].image, examples[0].image], torch.device("cpu"))
    attend = AttentionSupervision(model, builder, base_cfg(setup, "unused", attention_weight=1.0))
    sample = builder.sample(examples[0], with_answer=False)
    with torch.no_grad():
        model.generate(sample["input_ids"], sample["token_type_ids"], attention_mask=sample["attention_mask"],
                       images=sample["images"], cross_images=sample["cross_images"], max_new_tokens=3)
    assert attend.captured == []
    batch = builder.batch(examples[:2])
    batch.pop("labels")
    model(**batch)  # a training pass is captured, one entry per cross-attention layer
    assert len(attend.captured) == config.num_hidden_layers
