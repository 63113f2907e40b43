"""Low-resolution image encoder of CogAgent: EVA2-CLIP-E (224x224, patch 14) plus the GLU adapter into the LLM.

Module and parameter names follow the official ``visual.py`` so that checkpoint keys load as they are
(``model.vision.patch_embedding.proj.weight``, ``model.vision.transformer.layers.N.attention.query_key_value``,
``model.vision.linear_proj.gate_proj``, ``model.vision.boi`` ...).

Output of ``EVA2CLIPModel``: ``[B, num_patches + 2, llm_hidden]`` = ``[BOI, projected patches, EOI]``; these rows
replace the embeddings of the image span (``token_type_ids == 1``) of the prompt.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .attention import attention
from .checkpointing import run_layer
from .config import CogAgentConfig, VisionConfig


def activation(name: str):
    """The two activations CogAgent uses: exact GELU (erf) and SiLU."""
    return {"gelu": F.gelu, "silu": F.silu}[name]


def check_image_tensor(images: torch.Tensor, *, channels: int, size: int, batch: Optional[int], what: str) -> None:
    """ValueError unless ``images`` is a float tensor ``[batch, channels, size, size]`` (any batch if None)."""
    hint = (f"expected {what} as a float tensor [{'batch' if batch is None else f'batch={batch}'}, {channels}, "
            f"{size}, {size}] (see vision.preprocess)")
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"{what} must be a torch.Tensor, got {type(images).__name__}; {hint}")
    if images.dim() != 4:
        raise ValueError(f"{what} has shape {tuple(images.shape)}; {hint}")
    if not images.is_floating_point():
        raise ValueError(f"{what} has dtype {images.dtype}; {hint} holding normalized pixels")
    b, c, h, w = images.shape
    if c != channels:
        raise ValueError(f"{what} has {c} channels; {hint} (convert the screenshot to RGB)")
    if (h, w) != (size, size):
        raise ValueError(f"{what} are {h}x{w} pixels, the model takes {size}x{size}; {hint}")
    if batch is not None and b != batch:
        raise ValueError(f"{what} holds {b} images for a batch of {batch} sequences; {hint} (one image per sequence)")


def deterministic_buffer(shape: Tuple[int, ...], compute: Callable[..., Dict[str, torch.Tensor]],
                         name: Optional[str] = None) -> torch.Tensor:
    """A float32 buffer that is a pure function of the config (a RoPE table), created where factories create
    tensors now (``torch.device(...)`` context / default device).

    On the meta device it stays empty: computing it there costs nothing useful but runs torch's Python
    reference kernels (about a second and tens of MB of RSS for the full-size model), and the loader fills it
    with ``init_deterministic_buffers`` after materialising the model anyway. Anywhere else it is computed
    right away, so a model built normally is complete.
    """
    empty = torch.empty(shape, dtype=torch.float32)
    if empty.is_meta:
        return empty
    values = compute(device=empty.device)
    return values[name] if name is not None else next(iter(values.values()))


class PatchEmbedding(nn.Module):
    def __init__(self, config: VisionConfig):
        super().__init__()
        self.proj = nn.Conv2d(config.in_channels, config.hidden_size, kernel_size=config.patch_size,
                              stride=config.patch_size)
        self.cls_embedding = nn.Parameter(torch.zeros(1, config.hidden_size))
        self.position_embedding = nn.Embedding(config.num_positions, config.hidden_size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.proj(images).flatten(2).transpose(1, 2)  # [B, patches, D]
        cls = self.cls_embedding.expand(x.shape[0], -1, -1)
        x = torch.cat((cls, x), dim=1)
        return x + self.position_embedding.weight.unsqueeze(0)


class Attention(nn.Module):
    def __init__(self, config: VisionConfig, root_config: CogAgentConfig):
        super().__init__()
        self.root_config = root_config  # read at call time: attn_implementation can change after construction
        self.num_heads = config.num_heads
        self.head_dim = config.hidden_size // config.num_heads
        self.scale = self.head_dim ** -0.5
        self.query_key_value = nn.Linear(config.hidden_size, config.hidden_size * 3)
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, _ = x.shape
        q, k, v = self.query_key_value(x).view(B, L, 3, self.num_heads, self.head_dim).unbind(2)
        out = attention(q, k, v, scale=self.scale, implementation=self.root_config.attn_implementation)
        return self.dense(out.reshape(B, L, -1))


class MLP(nn.Module):
    def __init__(self, config: VisionConfig):
        super().__init__()
        self.act = activation(config.hidden_act)
        self.fc1 = nn.Linear(config.hidden_size, config.intermediate_size)
        self.fc2 = nn.Linear(config.intermediate_size, config.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class TransformerLayer(nn.Module):
    """Post-norm block: the LayerNorms apply to each branch's OUTPUT before the residual add."""

    def __init__(self, config: VisionConfig, root_config: CogAgentConfig):
        super().__init__()
        self.input_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = Attention(config, root_config)
        self.mlp = MLP(config)
        self.post_attention_layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.input_layernorm.weight.device)  # blocks of a model split over devices hand over here
        x = x + self.input_layernorm(self.attention(x))
        return x + self.post_attention_layernorm(self.mlp(x))


class Transformer(nn.Module):
    def __init__(self, config: VisionConfig, root_config: CogAgentConfig):
        super().__init__()
        self.layers = nn.ModuleList([TransformerLayer(config, root_config) for _ in range(config.num_hidden_layers)])
        self.gradient_checkpointing = False  # see cogagent.checkpointing

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = run_layer(layer, self.gradient_checkpointing, x)
        return x


class GLU(nn.Module):
    """Adapter from the vision width to the LLM width: linear -> LayerNorm -> GELU -> SwiGLU MLP."""

    def __init__(self, config: CogAgentConfig, in_features: int):
        super().__init__()
        self.linear_proj = nn.Linear(in_features, config.hidden_size, bias=False)
        self.norm1 = nn.LayerNorm(config.hidden_size)  # eps 1e-5: the nn.LayerNorm default, as official
        self.dense_h_to_4h = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.dense_4h_to_h = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.gelu(self.norm1(self.linear_proj(x)))
        return self.dense_4h_to_h(F.silu(self.gate_proj(x)) * self.dense_h_to_4h(x))


class EVA2CLIPModel(nn.Module):
    def __init__(self, config: CogAgentConfig):
        super().__init__()
        vision_config = config.vision_config
        self.vision_config = vision_config
        self.patch_embedding = PatchEmbedding(vision_config)
        self.transformer = Transformer(vision_config, config)
        self.linear_proj = GLU(config, in_features=vision_config.hidden_size)
        self.boi = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        self.eoi = nn.Parameter(torch.zeros(1, 1, config.hidden_size))
        if config.is_cogvlm:  # CogVLM's encoder has no second position embedding after the transformer
            self.register_parameter("pos_embed", None)
        else:
            self.pos_embed = nn.Parameter(torch.zeros(vision_config.num_patches, vision_config.hidden_size))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``images [B, 3, image_size, image_size]`` (normalized) -> ``[B, num_patches + 2, llm_hidden]``."""
        vc = self.vision_config
        check_image_tensor(images, channels=vc.in_channels, size=vc.image_size, batch=None, what="images")
        images = images.to(device=self.boi.device, dtype=self.boi.dtype)
        x = self.patch_embedding(images)
        x = self.transformer(x)
        x = x[:, 1:].to(self.boi.device)  # drop CLS; back from the last block's device
        if self.pos_embed is not None:
            x = x + self.pos_embed.unsqueeze(0)
        x = self.linear_proj(x)
        boi = self.boi.expand(x.shape[0], -1, -1)
        eoi = self.eoi.expand(x.shape[0], -1, -1)
        return torch.cat((boi, x, eoi), dim=1)
