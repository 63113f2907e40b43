"""High-resolution image encoder of CogAgent: EVA2-CLIP-L (1120x1120, patch 14 -> 6400 tokens of width 1024).

Names follow the official ``cross_visual.py`` (``model.cross_vision.vit.model.blocks.N.attn.q_proj`` ...).
What matters for the numbers:

* pre-norm blocks with sub-LN: ``x += proj(inner_attn_ln(attn(norm1(x))))``, ``x += w3(ffn_ln(silu(w1 h) * w2 h))``
  with ``h = norm2(x)``; q and v have a bias (``q_bias``, ``v_bias``), k has none; all LayerNorms eps 1e-6;
* 2-D RoPE (``VisionRotaryEmbeddingFast``) on every token except CLS, rotating interleaved (even, odd) pairs; one
  rope module is shared by all blocks, so its ``freqs_cos/freqs_sin`` appear in the state dict under
  ``vit.model.rope`` and under every ``blocks.N.attn.rope``;
* the LAST block is never executed (the official forward skips it), and the final ``norm`` and ``head`` are unused;
  their parameters exist so that the checkpoint loads without unexpected keys;
* output = tokens without CLS ``+ cross_vision.pos_embed``.

Sizes come from ``config.cross_vision_config`` (EVA2-CLIP-L by default), the image size from
``config.cross_image_size``.
"""

from __future__ import annotations

from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .attention import attention
from .checkpointing import run_layer
from .config import CogAgentConfig
from .visual import check_image_tensor, deterministic_buffer


def rope_2d_tables(head_dim: int, grid: int, pt_seq_len: int, theta: float = 10000.0,
                   device: Optional[torch.device] = None) -> Tuple[torch.Tensor, torch.Tensor]:
    """cos/sin tables ``[grid*grid, head_dim]`` of EVA's 2-D RoPE, float32.

    Half of the head dimension encodes the patch row, half the column; within each half, frequency ``i`` covers the
    interleaved pair (2i, 2i+1). Positions are rescaled to the pre-training grid: ``t = arange(grid)/grid*pt_seq_len``.
    """
    dim = head_dim // 2
    freqs = 1.0 / (theta ** (torch.arange(0, dim, 2, device=device)[: dim // 2].to(torch.float32) / dim))
    t = torch.arange(grid, device=device).to(torch.float32) / grid * pt_seq_len
    freqs = (t[:, None] * freqs[None, :]).repeat_interleave(2, dim=-1)  # [grid, dim]
    rows = freqs[:, None, :].expand(grid, grid, dim)
    cols = freqs[None, :, :].expand(grid, grid, dim)
    angles = torch.cat((rows, cols), dim=-1).reshape(grid * grid, 2 * dim)
    return angles.cos(), angles.sin()


def rotate_half_pairs(x: torch.Tensor) -> torch.Tensor:
    """``[x0, x1, x2, x3, ...] -> [-x1, x0, -x3, x2, ...]``."""
    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(-1)
    return torch.stack((-x2, x1), dim=-1).flatten(-2)


class VisionRotaryEmbeddingFast(nn.Module):
    deterministic_buffers = ("freqs_cos", "freqs_sin")

    def __init__(self, head_dim: int, grid: int, pt_seq_len: int):
        super().__init__()
        self.head_dim, self.grid, self.pt_seq_len = head_dim, grid, pt_seq_len
        shape = (grid * grid, head_dim)
        self.register_buffer("freqs_cos", deterministic_buffer(shape, self.compute_buffers, "freqs_cos"),
                             persistent=True)
        self.register_buffer("freqs_sin", deterministic_buffer(shape, self.compute_buffers, "freqs_sin"),
                             persistent=True)

    def compute_buffers(self, device=None):
        cos, sin = rope_2d_tables(self.head_dim, self.grid, self.pt_seq_len, device=device)
        return {"freqs_cos": cos, "freqs_sin": sin}

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """``t [B, grid*grid, H, head_dim]`` (patch tokens only, no CLS) -> rotated, in t's dtype.

        The product is taken in float32 against the float32 tables and cast back once. That is what the official
        code ends up with too (its float32 tables promote a bf16 ``t`` to float32, and its caller casts the result
        back with ``.type_as(v)``), but here the dtype contract holds at this function's boundary."""
        cos = self.freqs_cos.to(device=t.device, dtype=torch.float32)[:, None, :]  # broadcast over heads
        sin = self.freqs_sin.to(device=t.device, dtype=torch.float32)[:, None, :]
        tf = t.float()
        return (tf * cos + rotate_half_pairs(tf) * sin).to(t.dtype)


class PatchEmbed(nn.Module):
    def __init__(self, image_size: int, patch_size: int, in_chans: int, embed_dim: int):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    def __init__(self, dim: int, num_heads: int, rope: VisionRotaryEmbeddingFast, eps: float,
                 root_config: CogAgentConfig):
        super().__init__()
        self.root_config = root_config
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.q_bias = nn.Parameter(torch.zeros(dim))
        self.v_bias = nn.Parameter(torch.zeros(dim))
        self.inner_attn_ln = nn.LayerNorm(dim, eps=eps)
        self.proj = nn.Linear(dim, dim)
        self.rope = rope  # shared with the other blocks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, _ = x.shape
        q = F.linear(x, self.q_proj.weight, self.q_bias).view(B, N, self.num_heads, self.head_dim)
        k = self.k_proj(x).view(B, N, self.num_heads, self.head_dim)
        v = F.linear(x, self.v_proj.weight, self.v_bias).view(B, N, self.num_heads, self.head_dim)
        # RoPE on the patch tokens; the CLS token (index 0) is left as it is.
        q = torch.cat((q[:, :1], self.rope(q[:, 1:])), dim=1).type_as(v)
        k = torch.cat((k[:, :1], self.rope(k[:, 1:])), dim=1).type_as(v)
        out = attention(q, k, v, scale=self.scale, implementation=self.root_config.attn_implementation)
        return self.proj(self.inner_attn_ln(out.reshape(B, N, -1)))


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int, eps: float):
        super().__init__()
        self.w1 = nn.Linear(dim, hidden)
        self.w2 = nn.Linear(dim, hidden)
        self.ffn_ln = nn.LayerNorm(hidden, eps=eps)
        self.w3 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w3(self.ffn_ln(F.silu(self.w1(x)) * self.w2(x)))


class Block(nn.Module):
    def __init__(self, dim: int, num_heads: int, mlp_hidden: int, rope: VisionRotaryEmbeddingFast, eps: float,
                 root_config: CogAgentConfig):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, num_heads, rope, eps, root_config)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = SwiGLU(dim, mlp_hidden, eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.norm1.weight.device)  # blocks of a model split over devices hand over here
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class EVAVisionTransformer(nn.Module):
    def __init__(self, config: CogAgentConfig):
        super().__init__()
        c = config.cross_vision_config
        self.image_size = config.cross_image_size
        self.in_channels = config.vision_config.in_channels
        grid = config.cross_image_size // c.patch_size
        eps = c.layer_norm_eps
        self.patch_embed = PatchEmbed(config.cross_image_size, c.patch_size, self.in_channels, c.width)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.width))
        self.pos_embed = nn.Parameter(torch.zeros(1, grid * grid + 1, c.width))
        self.rope = VisionRotaryEmbeddingFast(c.head_width, grid, c.pt_hw_seq_len)
        self.blocks = nn.ModuleList(
            [Block(c.width, c.num_heads, c.mlp_hidden_size, self.rope, eps, config) for _ in range(c.layers)])
        self.norm = nn.LayerNorm(c.width, eps=eps)  # unused by CogAgent (features are taken before it)
        self.head = nn.Linear(c.width, c.embed_dim)  # unused CLIP head
        self.gradient_checkpointing = False  # see cogagent.checkpointing

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """All token features ``[B, 1 + grid*grid, width]`` after every block but the last."""
        x = self.patch_embed(images)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1) + self.pos_embed
        for block in self.blocks[:-1]:  # the official forward skips the last block
            x = run_layer(block, self.gradient_checkpointing, x)
        return x


class Eva2LargeEncoder(nn.Module):
    def __init__(self, config: CogAgentConfig):
        super().__init__()
        self.model = EVAVisionTransformer(config)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)[:, 1:]  # drop CLS


class CrossVisionModel(nn.Module):
    def __init__(self, config: CogAgentConfig):
        super().__init__()
        self.vit = Eva2LargeEncoder(config)
        self.pos_embed = nn.Parameter(torch.zeros(config.num_cross_tokens, config.cross_vision_config.width))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``cross_images [B, 3, cross_image_size, cross_image_size]`` -> ``[B, num_cross_tokens, width]``."""
        vit = self.vit.model
        check_image_tensor(images, channels=vit.in_channels, size=vit.image_size, batch=None, what="cross_images")
        images = images.to(device=self.pos_embed.device, dtype=self.pos_embed.dtype)
        return self.vit(images).to(self.pos_embed.device) + self.pos_embed.unsqueeze(0)
