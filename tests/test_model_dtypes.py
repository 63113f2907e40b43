"""float32, bfloat16 and float16 on CPU; RMSNorm and RoPE stay in float32."""

import pytest
import torch

from cogagent.modeling_cogagent import RMSNorm, RotaryEmbedding

try:
    from support.golden import CASE_B, _one_thread, case_a, case_c, load_case, load_tiny_model
except ImportError:  # tests/ is itself a package
    from tests.support.golden import CASE_B, _one_thread, case_a, case_c, load_case, load_tiny_model


@pytest.mark.parametrize("dtype,atol", [(torch.bfloat16, 0.03), (torch.float16, 0.005)])
def test_half_precision_forward_close_to_golden(dtype, atol, case_a, case_c):
    model = load_tiny_model().to(dtype)
    assert model.dtype == dtype
    with torch.no_grad():
        out = model(case_a["input_ids"], case_a["token_type_ids"], images=case_a["images"],
                    cross_images=case_a["cross_images"], output_hidden_states=True)
        padded = model(case_c["input_ids"], case_c["token_type_ids"], attention_mask=case_c["attention_mask"],
                       images=case_c["images"], cross_images=case_c["cross_images"])
    assert out.logits.dtype == torch.float32  # logits are always float32
    assert all(h.dtype == dtype for h in out.hidden_states)
    torch.testing.assert_close(out.logits, case_a["logits"], atol=atol, rtol=0)
    real = case_c["attention_mask"].bool()
    assert torch.isfinite(padded.logits).all()
    torch.testing.assert_close(padded.logits[real], case_c["logits"][real], atol=atol, rtol=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_generate(dtype, case_a, case_c):
    model = load_tiny_model().to(dtype)
    ids = model.generate(case_a["input_ids"], case_a["token_type_ids"], images=case_a["images"],
                         cross_images=case_a["cross_images"], max_new_tokens=8)
    assert ids.shape == (1, 22) and ids.dtype == torch.long
    # greedy ids of the first steps survive half precision on this tiny model (margins >= 4e-3)
    golden = load_case(CASE_B)["generated_ids"]
    assert ids[0, 14:17].tolist() == golden[0, :3].tolist()
    batch = model.generate(case_c["input_ids"], case_c["token_type_ids"], case_c["attention_mask"],
                           images=case_c["images"], cross_images=case_c["cross_images"], max_new_tokens=4)
    assert batch.shape == (2, 18)


def test_float32_images_are_cast_to_the_model_dtype(case_a):
    model = load_tiny_model().to(torch.bfloat16)
    with torch.no_grad():
        features = model.model.vision(case_a["images"])  # float32 pixels into a bfloat16 encoder
        cross = model.model.cross_vision(case_a["cross_images"].double())
    assert features.dtype == torch.bfloat16 and cross.dtype == torch.bfloat16


def test_rmsnorm_computes_in_float32():
    norm = RMSNorm(64, eps=1e-5).to(torch.bfloat16)
    torch.nn.init.normal_(norm.weight, 1.0, 0.1)
    x = (torch.randn(3, 64) * 300).to(torch.bfloat16)
    out = norm(x)
    assert out.dtype == torch.bfloat16
    x64 = x.double()
    expected = norm.weight.double() * x64 / torch.sqrt(x64.pow(2).mean(-1, keepdim=True) + 1e-5)
    # one bfloat16 rounding of the float32 result, no more
    torch.testing.assert_close(out.double(), expected, atol=0, rtol=2 ** -8)


def test_rope_positions_exact_in_bfloat16():
    """The official code builds cos/sin in the model dtype: in bfloat16 positions above 256 get rounded. Here the
    angles are float32 even when the inv_freq buffer was cast to bfloat16."""
    rope32 = RotaryEmbedding(128)
    rope16 = RotaryEmbedding(128).to(torch.bfloat16)
    assert rope16.inv_freq.dtype == torch.bfloat16
    positions = torch.tensor([[0, 1, 257, 1001, 2047]])
    cos32, sin32 = rope32(positions)
    cos16, sin16 = rope16(positions)
    assert cos16.dtype == torch.float32
    assert torch.equal(cos16, cos32) and torch.equal(sin16, sin32)


def test_eva_rope_keeps_the_activation_dtype():
    """bf16 activations times the float32 2-D RoPE tables: computed in float32, returned in bf16 (one rounding)."""
    from cogagent.cross_visual import VisionRotaryEmbeddingFast, rope_2d_tables

    rope = VisionRotaryEmbeddingFast(16, 4, 16)
    assert rope.freqs_cos.dtype == torch.float32
    t = torch.randn(2, 16, 3, 16).to(torch.bfloat16)
    out = rope(t)
    assert out.dtype == torch.bfloat16 and out.shape == t.shape
    cos, sin = (x.double()[:, None, :] for x in rope_2d_tables(16, 4, 16))
    t64 = t.double()
    rotated = torch.stack((-t64[..., 1::2], t64[..., 0::2]), dim=-1).flatten(-2)  # (x0, x1) -> (-x1, x0)
    expected = t64 * cos + rotated * sin
    torch.testing.assert_close(out.double(), expected, atol=1e-6, rtol=2 ** -8)
    assert rope(t.float()).dtype == torch.float32
