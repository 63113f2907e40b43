"""The attention backends: SDPA, eager and the xformers path (driven on CPU through a stand-in op)."""

import pytest
import torch

from cogagent import attention as attn_mod
from cogagent.attention import attention, select_backend, use_xformers_op
from cogagent.modeling_cogagent import build_attention_bias

try:
    from support.golden import CASE_A, CASE_B, CASE_C, _one_thread, load_case, load_tiny_model
except ImportError:  # tests/ is itself a package
    from tests.support.golden import CASE_A, CASE_B, CASE_C, _one_thread, load_case, load_tiny_model


class StandInXformers:
    """Exact math with xformers' signature; asserts the [B, L, H, D] layout and records every call."""

    def __init__(self, transposed: bool = False):
        self.calls = []
        self.transposed = transposed  # a deliberately wrong op that reads its input as [B, H, L, D]

    def __call__(self, q, k, v, attn_bias=None, p=0.0, scale=None):
        assert p == 0.0 and attn_bias is None
        self.calls.append(tuple(q.shape))
        scale = q.shape[-1] ** -0.5 if scale is None else scale
        eq_scores, eq_out = ("bhqd,bhkd->bhqk", "bhqk,bhkd->bhqd") if self.transposed else \
            ("bqhd,bkhd->bhqk", "bhqk,bkhd->bqhd")
        scores = torch.einsum(eq_scores, q.float() * scale, k.float())
        return torch.einsum(eq_out, scores.softmax(-1), v.float()).to(q.dtype).contiguous()


def random_qkv(B=2, Lq=7, Lk=7, H=3, D=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(B, Lq, H, D, generator=g), torch.randn(B, Lk, H, D, generator=g),
            torch.randn(B, Lk, H, D, generator=g))


def manual_attention(q, k, v, scale=None, bias=None):
    """Reference in the [B, L, H, D] layout, float64."""
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    scores = torch.einsum("bqhd,bkhd->bhqk", q.double() * scale, k.double())
    if bias is not None:
        scores = scores + bias.double()
    return torch.einsum("bhqk,bkhd->bqhd", scores.softmax(-1), v.double()).to(q.dtype)


@pytest.mark.parametrize("implementation", ["sdpa", "eager", "auto"])
def test_backends_agree_with_reference(implementation):
    q, k, v = random_qkv(Lq=5, Lk=9)
    expected = manual_attention(q, k, v, scale=0.3)
    out = attention(q, k, v, scale=0.3, implementation=implementation)
    assert out.shape == q.shape
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("implementation", ["sdpa", "eager"])
def test_causal_and_padded_masks(implementation):
    q, k, v = random_qkv(Lq=6, Lk=6)
    causal = torch.full((6, 6), float("-inf")).triu(1)
    torch.testing.assert_close(attention(q, k, v, causal=True, implementation=implementation),
                               manual_attention(q, k, v, bias=causal), atol=1e-5, rtol=1e-5)
    keep = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    bias = build_attention_bias(keep, 6, 0, torch.float32, torch.device("cpu"))
    out = attention(q, k, v, mask=bias, implementation=implementation)
    torch.testing.assert_close(out, manual_attention(q, k, v, bias=bias), atol=1e-5, rtol=1e-5)
    # decode step against a cache: one query, padded keys
    q1 = q[:, -1:]
    bias1 = build_attention_bias(keep, 1, 5, torch.float32, torch.device("cpu"))
    torch.testing.assert_close(attention(q1, k, v, mask=bias1, implementation=implementation),
                               manual_attention(q1, k, v, bias=bias1), atol=1e-5, rtol=1e-5)


def test_xformers_path_agrees_with_sdpa_and_gets_blhd_layout():
    q, k, v = random_qkv(B=2, Lq=5, Lk=11, H=3, D=8)
    op = StandInXformers()
    with use_xformers_op(op):
        out = attention(q, k, v, scale=0.25, implementation="xformers")
    assert op.calls == [(2, 5, 3, 8)]  # [B, L, H, D] handed over as is
    torch.testing.assert_close(out, attention(q, k, v, scale=0.25, implementation="sdpa"), atol=1e-6, rtol=1e-5)


def test_transposed_layout_would_be_caught():
    """A backend that reads [B, H, L, D] where [B, L, H, D] is given disagrees with SDPA: the checks above would
    fail if the layouts were mixed up."""
    q, k, v = random_qkv(B=2, Lq=6, Lk=6, H=3, D=8)
    with use_xformers_op(StandInXformers(transposed=True)):
        wrong = attention(q, k, v, implementation="xformers")
    assert not torch.allclose(wrong, attention(q, k, v, implementation="sdpa"), atol=1e-3)


def test_auto_uses_xformers_only_on_cuda_and_never_for_masks():
    q, k, v = random_qkv()
    op = StandInXformers()
    with use_xformers_op(op):
        assert select_backend("auto", q, masked=False) == "sdpa"  # CPU tensors
        assert select_backend("xformers", q, masked=True) == "sdpa"  # masks go to SDPA
        assert select_backend("xformers", q, masked=False) == "xformers"
        attention(q, k, v, implementation="auto")
        attention(q, k, v, causal=True, implementation="xformers")
    assert op.calls == []
    if torch.cuda.is_available():
        with use_xformers_op(op):
            assert select_backend("auto", q.cuda(), masked=False) == "xformers"


def test_whole_model_through_xformers_stand_in_matches_golden():
    op = StandInXformers()
    case_a = load_case(CASE_A)
    case_b = load_case(CASE_B)
    with use_xformers_op(op):
        model = load_tiny_model(attn_implementation="xformers")
        with torch.no_grad():
            out = model(case_a["input_ids"], case_a["token_type_ids"], images=case_a["images"],
                        cross_images=case_a["cross_images"])
        ids = model.generate(case_a["input_ids"], case_a["token_type_ids"], images=case_a["images"],
                             cross_images=case_a["cross_images"], max_new_tokens=8)
    torch.testing.assert_close(out.logits, case_a["logits"], atol=1e-5, rtol=1e-4)
    assert torch.equal(ids[:, 14:], case_b["generated_ids"])
    config = model.config
    vc, cc = config.vision_config, config.cross_vision_config
    # every unmasked attention went through the op, with [B, L, H, D] shapes: the low-res encoder layers, the
    # high-res encoder blocks but the last, and the decoder cross attention
    assert (1, vc.num_patches + 1, vc.num_heads, vc.hidden_size // vc.num_heads) in op.calls
    assert (1, config.num_cross_tokens + 1, cc.num_heads, cc.head_width) in op.calls
    assert (1, 14, config.num_attention_heads, config.cross_head_dim) in op.calls
    assert (1, 1, config.num_attention_heads, config.head_dim) in op.calls  # unpadded decode self-attention


def test_eager_model_matches_golden():
    model = load_tiny_model(attn_implementation="eager")
    case_c = load_case(CASE_C)
    with torch.no_grad():
        out = model(case_c["input_ids"], case_c["token_type_ids"], attention_mask=case_c["attention_mask"],
                    images=case_c["images"], cross_images=case_c["cross_images"])
    torch.testing.assert_close(out.logits, case_c["logits"], atol=1e-5, rtol=1e-4)


def test_switching_implementation_at_run_time():
    model = load_tiny_model()
    case_a = load_case(CASE_A)
    results = {}
    for implementation in ("sdpa", "eager"):
        model.config.attn_implementation = implementation
        with torch.no_grad():
            results[implementation] = model(case_a["input_ids"], case_a["token_type_ids"], images=case_a["images"],
                                            cross_images=case_a["cross_images"]).logits
    torch.testing.assert_close(results["sdpa"], results["eager"], atol=1e-5, rtol=1e-4)


def test_xformers_requested_but_missing_is_a_clear_error():
    with use_xformers_op(None):
        with pytest.raises(ValueError, match="xformers is not importable"):
            load_tiny_model(attn_implementation="xformers")
        with pytest.raises(ValueError, match="xformers"):
            attention(*random_qkv(), implementation="xformers")


def test_unknown_implementation():
    with pytest.raises(ValueError, match="attn_implementation"):
        attention(*random_qkv(), implementation="flash")
    with pytest.raises(ValueError, match="attn_implementation"):
        load_tiny_model(attn_implementation="flash")


def test_xformers_import_fails_quietly_here():
    # xformers is an optional [cuda] extra; importing cogagent never needs it
    assert attn_mod._import_xformers_op() is None or callable(attn_mod._import_xformers_op())
