"""Gradient checkpointing: the same loss and gradients as a plain backward pass, far fewer activations kept, and
training with every extra loss (dense, target attention, shared screenshots, LoRA) unchanged by it."""

from __future__ import annotations

import pytest
import torch

from cogagent.config import CogAgentConfig
from cogagent.modeling_cogagent import CogAgentForCausalLM
from cogagent.tokenizer import load_tokenizer
from cogagent.train import SampleBuilder, causal_lm_loss, load_jsonl, train

try:
    from support.train_setup import base_cfg, setup  # noqa: F401  (setup is a module fixture)
except ImportError:  # run from the repository root as tests.test_checkpointing
    from tests.support.train_setup import base_cfg, setup  # noqa: F401


def _batch(setup):  # noqa: F811
    model = CogAgentForCausalLM(CogAgentConfig.from_json_file(setup / "config.json"))
    builder = SampleBuilder(load_tokenizer(setup / "tok"), model.config)
    examples, _ = load_jsonl(setup / "data" / "small.jsonl")
    return model, builder.batch(examples[:3])


def _loss_grads_saved(model, batch, checkpointing: bool):
    """Loss, every gradient, and the bytes autograd kept for the backward pass."""
    model.gradient_checkpointing_enable(checkpointing)
    model.train()
    model.zero_grad()
    batch = dict(batch)
    labels = batch.pop("labels")
    saved = []

    def pack(t):
        saved.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = causal_lm_loss(model(**batch).logits, labels)
    kept = sum(saved)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}, kept


def test_checkpointing_gives_the_same_gradients_and_keeps_far_less(setup):  # noqa: F811
    model, batch = _batch(setup)
    torch.manual_seed(0)
    loss, grads, kept = _loss_grads_saved(model, batch, False)
    loss_cp, grads_cp, kept_cp = _loss_grads_saved(model, batch, True)
    torch.testing.assert_close(loss_cp, loss, rtol=0, atol=1e-6)
    assert grads.keys() == grads_cp.keys() and len(grads) > 50
    for name in grads:
        torch.testing.assert_close(grads_cp[name], grads[name], rtol=1e-5, atol=1e-7, msg=name)
    # Every layer of all three stacks now keeps only its input (layer internals are not saved).
    assert kept_cp < kept / 3, (kept_cp, kept)


def test_checkpointing_is_inert_outside_training(setup):  # noqa: F811
    model, batch = _batch(setup)
    batch.pop("labels")
    model.eval()
    with torch.no_grad():
        plain = model(**batch).logits
        model.gradient_checkpointing_enable()
        assert torch.equal(model(**batch).logits, plain)
        ids = model.generate(batch["input_ids"][:1], batch["token_type_ids"][:1], images=batch["images"][:1],
                             cross_images=batch["cross_images"][:1], max_new_tokens=4)
        model.gradient_checkpointing_enable(False)
        assert torch.equal(model.generate(batch["input_ids"][:1], batch["token_type_ids"][:1],
                                          images=batch["images"][:1], cross_images=batch["cross_images"][:1],
                                          max_new_tokens=4), ids)


@pytest.mark.parametrize("lora", [False, True])
def test_training_with_every_extra_loss_is_unchanged_by_checkpointing(setup, lora):  # noqa: F811
    """Three steps with the dense and target-attention losses on shared screenshots: the hooks of those losses
    run again while checkpointed layers are recomputed, and must not leak into the next step."""
    extra = {}
    if lora:
        torch.manual_seed(4)
        CogAgentForCausalLM(CogAgentConfig.from_json_file(setup / "config.json")).save_pretrained(setup / "cp-base")
        extra = dict(init_config=None, model=str(setup / "cp-base"), lora=True, lr=1e-2)
    options = dict(max_steps=3, batch_size=2, dense_weight=1.0, attention_weight=1.0, group_by_image=True, **extra)
    name = "lora" if lora else "full"
    plain = train(base_cfg(setup, f"cp-plain-{name}", **options))
    recomputed = train(base_cfg(setup, f"cp-recomputed-{name}", gradient_checkpointing=True, **options))
    a = CogAgentForCausalLM.from_pretrained(plain["final"]).state_dict()
    b = CogAgentForCausalLM.from_pretrained(recomputed["final"]).state_dict()
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=1e-6, msg=key)
