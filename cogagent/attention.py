"""The one attention function every attention in the model goes through.

Callers always pass and get back tensors in the layout ``[batch, length, heads, head_dim]`` (what a linear
projection followed by ``.view`` gives, and what xformers wants). Torch SDPA wants ``[batch, heads, length,
head_dim]``; that transpose happens here and nowhere else.

Backends (``config.attn_implementation``):

* ``"auto"``: xformers' ``memory_efficient_attention`` for unmasked attention on CUDA when xformers imports
  (the encoders and the cross attention: most of CogAgent's attention FLOPs), torch SDPA for everything else.
* ``"sdpa"``: always ``torch.nn.functional.scaled_dot_product_attention``.
* ``"xformers"``: xformers for every unmasked call on any device (a clear error if it is not installed); causal
  and padded attention still go to SDPA, which handles masks natively.
* ``"eager"``: explicit ``softmax(q k^T * scale + mask) v`` with the softmax in float32, as the official code's
  fallback; slow, for debugging and reference.

xformers is an optional extra (``pip install .[cuda]``); its import fails quietly. Tests can swap in a stand-in
op with the same signature ``op(q, k, v, attn_bias=None, p=0.0, scale=None)`` and ``[B, L, H, D]`` layout through
``set_xformers_op`` / ``use_xformers_op``.
"""

from __future__ import annotations

import contextlib
import math
from typing import Callable, Iterator, Optional

import torch
import torch.nn.functional as F

IMPLEMENTATIONS = ("auto", "sdpa", "xformers", "eager")


def _import_xformers_op() -> Optional[Callable]:
    try:
        from xformers.ops import memory_efficient_attention
    except Exception:  # not installed, or a build that does not match this torch: fall back to SDPA
        return None
    return memory_efficient_attention


_xformers_op: Optional[Callable] = _import_xformers_op()


def xformers_available() -> bool:
    return _xformers_op is not None


def set_xformers_op(op: Optional[Callable]) -> Optional[Callable]:
    """Replace the xformers op (``None`` = unavailable). Returns the previous one."""
    global _xformers_op
    previous, _xformers_op = _xformers_op, op
    return previous


@contextlib.contextmanager
def use_xformers_op(op: Optional[Callable]) -> Iterator[None]:
    """``with use_xformers_op(stand_in): ...`` runs the block with ``stand_in`` as xformers' op."""
    previous = set_xformers_op(op)
    try:
        yield
    finally:
        set_xformers_op(previous)


def check_implementation(implementation: str) -> None:
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"attn_implementation {implementation!r} is not one of {IMPLEMENTATIONS}")
    if implementation == "xformers" and _xformers_op is None:
        raise ValueError("attn_implementation='xformers' but xformers is not importable; install the [cuda] extra "
                         "(pip install 'cogagent-runtime[cuda]') or use attn_implementation='auto' or 'sdpa'")


def select_backend(implementation: str, q: torch.Tensor, masked: bool) -> str:
    """Which backend runs a call: 'xformers', 'sdpa' or 'eager'."""
    if implementation == "eager":
        return "eager"
    if implementation == "sdpa" or masked:
        return "sdpa"
    if implementation == "xformers":
        check_implementation(implementation)
        return "xformers"
    if implementation == "auto":
        return "xformers" if (_xformers_op is not None and q.is_cuda) else "sdpa"
    check_implementation(implementation)  # raises
    raise AssertionError("unreachable")


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    scale: Optional[float] = None,
    causal: bool = False,
    mask: Optional[torch.Tensor] = None,
    implementation: str = "auto",
) -> torch.Tensor:
    """Scaled dot-product attention on ``[B, L, H, D]`` tensors; returns ``[B, Lq, H, D]``.

    ``causal``: token i attends to keys j <= i (only for ``Lq == Lk``). ``mask``: an additive float mask
    broadcastable to ``[B, H, Lq, Lk]`` (0 = attend, a large negative number = do not); not with ``causal``.
    ``scale`` defaults to ``head_dim ** -0.5``.
    """
    if causal and mask is not None:
        raise ValueError("pass either causal=True or an explicit mask, not both")
    if causal and q.shape[1] != k.shape[1]:
        raise ValueError("causal=True needs as many queries as keys; build an explicit mask for a KV cache")
    backend = select_backend(implementation, q, masked=causal or mask is not None)

    if backend == "xformers":
        return _xformers_op(q, k, v, attn_bias=None, p=0.0, scale=scale)

    # [B, L, H, D] -> [B, H, L, D]
    q, k, v = q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)
    if backend == "eager":
        out = _eager_attention(q, k, v, scale=scale, causal=causal, mask=mask)
    else:
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal, scale=scale)
    return out.transpose(1, 2)


def _eager_attention(q, k, v, *, scale, causal, mask):
    scale = scale if scale is not None else 1.0 / math.sqrt(q.shape[-1])
    scores = torch.matmul(q * scale, k.transpose(-1, -2))
    if causal:
        lq, lk = scores.shape[-2:]
        future = torch.ones(lq, lk, dtype=torch.bool, device=q.device).triu(1)
        scores = scores.masked_fill(future, torch.finfo(scores.dtype).min)
    if mask is not None:
        scores = scores + mask
    probs = torch.softmax(scores, dim=-1, dtype=torch.float32).to(q.dtype)
    return torch.matmul(probs, v)

