"""A CogAgent split over devices: what each layer / block receives is moved to its own device.

This machine has no GPU, so two kinds of evidence stand in for a real two-GPU run:

* accelerate's real ``dispatch_model`` hooks (``AlignDevicesHook`` on every placed module, ``io_same_device`` on
  the top) attached with ``force_hooks=True`` to a CPU-only device map: the hooks change how every module is
  called (arguments re-sent through ``send_to_device``, objects with a ``.to`` method moved by the hook), and the
  golden numbers and greedy ids must survive that exactly;
* torch's ``FakeTensorMode``, which can hold tensors "on" ``cuda:0`` and ``cuda:1`` without CUDA and raises on
  every op that mixes devices, exactly like CUDA would: the decoder stack, split over the two fake GPUs with the
  per-call inputs (rope, masks, routing, high-res features) and the KV cache built on the first, must run a
  prefill and a cached decode step without a device mismatch, and leave every layer's cache on its own device.

What these cannot show (real kernels, real transfers, stream ordering) needs a machine with two GPUs.
"""

import pytest
import torch
from accelerate import dispatch_model
from torch._subclasses.fake_tensor import FakeTensorMode

from cogagent import CogAgentForCausalLM
from cogagent.loading import _skip_weight_init, materialize
from cogagent.modeling_cogagent import (CogAgentCache, CogAgentOutput, ExpertRouting, LayerInputs,
                                        build_attention_bias, build_position_ids, get_expert_mask)

try:
    from support.golden import ATOL, RTOL, _one_thread, case_a, case_b, case_c, golden_config, load_tiny_model
except ImportError:  # tests/ is itself a package
    from tests.support.golden import ATOL, RTOL, _one_thread, case_a, case_b, case_c, golden_config, load_tiny_model


# ------------------------------------------------------------------------------------ accelerate's hooks, on CPU

# one entry per decoder layer and per encoder / head module, as from_pretrained(device_map="auto") makes them
HOOKED_MAP = {"model.embed_tokens": "cpu", "model.layers.0": "cpu", "model.layers.1": "cpu", "model.norm": "cpu",
              "model.vision": "cpu", "model.cross_vision": "cpu", "lm_head": "cpu"}


@pytest.fixture(scope="module")
def hooked_model():
    model = dispatch_model(load_tiny_model(), device_map=HOOKED_MAP, main_device="cpu", force_hooks=True)
    return model


def test_hooks_are_attached(hooked_model):
    """Guards the tests below: without hooks they would test nothing beyond the golden tests."""
    assert hasattr(hooked_model, "_hf_hook") and hooked_model._hf_hook.io_same_device
    for name in HOOKED_MAP:
        assert hasattr(hooked_model.get_submodule(name), "_hf_hook"), name
    # submodules with their own weights get execution-device hooks too (they re-send their arguments)
    assert hasattr(hooked_model.model.layers[0].self_attn, "_hf_hook")
    assert hasattr(hooked_model.model.layers[0].mlp.vision_mlp, "_hf_hook")


def test_hooked_forward_matches_golden(hooked_model, case_a, case_c):
    with torch.no_grad():
        out = hooked_model(case_a["input_ids"], case_a["token_type_ids"], attention_mask=case_a["attention_mask"],
                           images=case_a["images"], cross_images=case_a["cross_images"], output_hidden_states=True)
        padded = hooked_model(case_c["input_ids"], case_c["token_type_ids"], attention_mask=case_c["attention_mask"],
                              images=case_c["images"], cross_images=case_c["cross_images"])
    assert isinstance(out, CogAgentOutput)
    torch.testing.assert_close(out.logits, case_a["logits"], atol=ATOL, rtol=RTOL)
    for i, hidden in enumerate(out.hidden_states):
        torch.testing.assert_close(hidden, case_a[f"hidden_states.{i}"], atol=ATOL, rtol=RTOL)
    torch.testing.assert_close(padded.logits, case_c["logits"], atol=ATOL, rtol=RTOL)


def test_hooked_generate_ids_exact(hooked_model, case_a, case_b, case_c):
    out = hooked_model.generate(case_a["input_ids"], case_a["token_type_ids"], case_a["attention_mask"],
                                images=case_a["images"], cross_images=case_a["cross_images"], max_new_tokens=8,
                                output_scores=True)
    assert torch.equal(out.sequences[:, 14:], case_b["generated_ids"])
    torch.testing.assert_close(out.scores, case_b["step_logits"], atol=ATOL, rtol=RTOL)
    batch = hooked_model.generate(case_c["input_ids"], case_c["token_type_ids"], case_c["attention_mask"],
                                  images=case_c["images"], cross_images=case_c["cross_images"], max_new_tokens=8)
    assert torch.equal(batch[:, 14:], case_c["generated_ids"])


def test_hooked_model_with_mask_routing_matches_unhooked(hooked_model, case_c):
    """Rows with their image at different places route by a boolean mask (a tensor inside ExpertRouting)."""
    ids, tti = case_c["input_ids"].clone(), case_c["token_type_ids"].clone()
    mask = case_c["attention_mask"]
    assert ExpertRouting.from_token_type_ids(tti).mask is not None
    plain = load_tiny_model()
    with torch.no_grad():
        expected = plain(ids, tti, attention_mask=mask, images=case_c["images"],
                         cross_images=case_c["cross_images"]).logits
        got = hooked_model(ids, tti, attention_mask=mask, images=case_c["images"],
                           cross_images=case_c["cross_images"]).logits
    torch.testing.assert_close(got, expected, atol=0, rtol=0)


# ------------------------------------------------------------------------------------ per-call inputs and outputs


def _layer_inputs(L=5, B=2, D=8, with_mask=True):
    tti = torch.tensor([[0, 1, 1, 1, 0], [1, 1, 1, 0, 0]])[:B, :L]
    routing = ExpertRouting(mask=get_expert_mask(tti)) if with_mask else ExpertRouting(span=(1, 3))
    cos, sin = torch.randn(B, L, 1, D), torch.randn(B, L, 1, D)
    bias = build_attention_bias(torch.ones(B, L), L, 0, torch.float32, torch.device("cpu"))
    return LayerInputs(routing=routing, rope=(cos, sin), bias=bias, encoder_outputs=torch.randn(B, 3, 4))


def test_layer_inputs_move_every_tensor_once_per_device():
    """The meta device is a second real device on a CPU-only machine: good enough to see what moves."""
    inputs = _layer_inputs()
    here = inputs.to("cpu")
    assert here is inputs.to(torch.device("cpu"))
    assert here.rope[0] is inputs.rope[0] and here.encoder_outputs is inputs.encoder_outputs  # nothing copied
    assert here.routing is inputs.routing and here.bias is inputs.bias
    moved = inputs.to("meta")
    assert moved is inputs.to("meta")  # memoized: the second layer on a device gets the same copy
    assert moved.device == torch.device("meta")
    tensors = [moved.rope[0], moved.rope[1], moved.bias, moved.encoder_outputs, moved.routing.mask]
    assert all(t.is_meta for t in tensors)
    assert moved.to("cpu") is here  # and back without copying again
    # image features built on another device than the rope tables go to the layer's device too
    features = torch.ones(1, 2, 3, device="meta")
    split = LayerInputs(routing=ExpertRouting(), rope=inputs.rope, encoder_outputs=features)
    assert split.device == torch.device("cpu")
    on_meta = split.to("meta")
    assert on_meta.rope[0].is_meta and on_meta.encoder_outputs is features
    assert moved.causal == inputs.causal and moved.routing.span == inputs.routing.span
    # accelerate's send_to_device calls .to(device, non_blocking=...)
    assert inputs.to("meta", non_blocking=True) is moved


def test_routing_to_device():
    span = ExpertRouting(span=(1, 4))
    assert span.to("meta") is span  # no tensor to move
    masked = ExpertRouting(mask=torch.tensor([[False, True, True, False]]))
    assert masked.to("cpu") is masked
    assert masked.to("meta").mask.is_meta and masked.to("meta").span is None


def test_output_to_device_keeps_the_cache_where_it_is():
    cache = CogAgentCache(2)
    cache.keys[0] = torch.ones(1, 3, 2, 4)
    out = CogAgentOutput(logits=torch.ones(1, 3, 7), past_key_values=cache, hidden_states=(torch.ones(1, 3, 8),))
    moved = out.to("meta")
    assert moved.logits.is_meta and moved.hidden_states[0].is_meta
    assert moved.past_key_values is cache and not cache.keys[0].is_meta


# ------------------------------------------------------------------------------------ two fake GPUs

# Fake devices of type "meta" with two indices: FakeTensorMode checks device agreement by type and index for every
# op, whatever the type, but on a CPU-only torch build it cannot run some ops (in-place copies, SDPA) for fake
# "cuda" tensors, while it runs all of them for fake "meta:N" tensors.
DEV0, DEV1 = "meta:0", "meta:1"
FAKE_GPU_MAP = {"model.embed_tokens": DEV0, "model.layers.0": DEV0, "model.layers.1": DEV1,
                "model.norm": DEV1, "model.vision": DEV0, "model.cross_vision": DEV1, "lm_head": DEV1}


@pytest.fixture()
def fake_split_model():
    """The tiny model with its tensors on fake cuda:0 / cuda:1 (shapes and devices only, no data)."""
    with torch.device("meta"), _skip_weight_init():
        model = CogAgentForCausalLM(golden_config()).eval()
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    device_map = {k: torch.device(v) for k, v in FAKE_GPU_MAP.items()}
    with mode, torch.no_grad():
        # (the RoPE tables stay unfilled: fake tensors carry no values, and in-place copies on a fake CUDA device
        # need a CUDA build)
        materialize(model, torch.float32, device_map=device_map, keep_dtype=model.deterministic_buffer_names())
    return model, mode


def test_fake_tensors_catch_a_device_mismatch(fake_split_model):
    """The fake GPUs are strict: a layer's attention fed inputs from the other device fails. So the test below
    would fail if the decoder layer did not move what it receives."""
    model, mode = fake_split_model
    layer1 = model.model.layers[1]
    assert layer1.input_layernorm.weight.device == torch.device(DEV1)
    with mode, torch.no_grad():
        hidden = torch.randn(1, 5, model.config.hidden_size, device=DEV0)
        rope = model.model.layers[0].self_attn.rotary_emb(torch.arange(5)[None].to(DEV0))
        inputs = LayerInputs(routing=ExpertRouting(), rope=rope, causal=True)
        with pytest.raises(RuntimeError, match="devices"):
            layer1.self_attn(layer1.input_layernorm(hidden.to(DEV1)), inputs, None)


def test_decoder_split_over_two_fake_gpus_prefill_and_decode(fake_split_model, case_a):
    model, mode = fake_split_model
    config = model.config
    dev0, dev1 = torch.device(DEV0), torch.device(DEV1)
    # host-side bookkeeping on real tensors, as CogAgentModel.forward does it (data-dependent: not fakeable; for the
    # same reason the routing is a span here, not a boolean mask)
    tti = case_a["token_type_ids"].repeat(2, 1)
    mask = torch.ones_like(tti)
    mask[0, :1] = 0  # an explicit padding bias rather than SDPA's causal flag
    B, L = tti.shape
    routing = ExpertRouting.from_token_type_ids(tti)
    assert routing.span is not None
    positions = build_position_ids(tti, mask)
    layer_devices = [layer.input_layernorm.weight.device for layer in model.model.layers]
    assert layer_devices == [dev0, dev1]

    with mode, torch.no_grad():
        # prefill: everything model-level on the first GPU, the high-res features where the cross encoder is
        hidden = torch.randn(B, L, config.hidden_size, device=dev0)
        pos = positions.to(dev0)
        rope = model.model.layers[0].self_attn.rotary_emb(pos)
        bias = build_attention_bias(mask, L, 0, torch.float32, dev0)
        encoder = torch.randn(B, config.num_cross_tokens, config.cross_hidden_size, device=dev1)
        inputs = LayerInputs(routing=routing, rope=rope, bias=bias, encoder_outputs=encoder)
        cache = CogAgentCache(config.num_hidden_layers)
        out, all_hidden = model.model.run_layers(hidden, inputs, cache, output_hidden_states=True)
        assert out.device == model.model.norm.weight.device == dev1
        assert [h.device for h in all_hidden] == [dev0, dev0, dev1]  # layer inputs as handed over, final norm
        for i, device in enumerate(layer_devices):
            assert cache.keys[i].device == cache.values[i].device == device
            assert cache.cross[i][0].device == cache.cross[i][1].device == device
        assert set(inputs._copies) == {dev0, dev1}  # one copy per device, not per layer
        logits = model.lm_head(out.to(model.lm_head.weight.device))
        assert logits.shape == (B, L, config.vocab_size)
        cache.length = L

        # one cached decode step: the new token's inputs start on the first GPU again
        step_hidden = torch.randn(B, 1, config.hidden_size, device=dev0)
        step_rope = model.model.layers[0].self_attn.rotary_emb(pos[:, -1:] + 1)
        step = LayerInputs(routing=ExpertRouting(), rope=step_rope)
        out, _ = model.model.run_layers(step_hidden, step, cache)
        assert out.device == dev1
        for i, device in enumerate(layer_devices):
            assert cache.keys[i].shape[1] == L + 1 and cache.keys[i].device == device
