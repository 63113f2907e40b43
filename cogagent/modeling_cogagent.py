"""CogAgent-18B (THUDM/cogagent-chat-hf) in plain PyTorch.

A Vicuna-7B style decoder with three CogAgent additions:

* a *visual expert* in every layer: tokens of the image span use their own QKV, attention output and MLP weights
  (``vision_expert_*``, ``vision_mlp``), the other tokens the language ones. Routing rule (official
  ``get_expert_mask``): token i is a vision-expert token iff ``token_type[i] == 1 and token_type[i+1] == 1``, so BOI
  and the patches go to the vision expert and EOI goes to the language expert;
* *cross attention* in every layer from the hidden states to the high-resolution image features (EVA2-CLIP-L,
  ``cross_visual.py``); its keys and values depend only on the image, so they are computed once per image and kept
  in the cache while decoding;
* the low-resolution image features (EVA2-CLIP-E, ``visual.py``) replace the embeddings of the image span, and all
  patches of an image share ONE rotary position (``build_position_ids``).

Sequence layout (``cogagent.prompts`` builds it): ``[BOS] [BOI, patches..., EOI] text...`` with ``token_type_ids``
``0, 1 * (patches + 2), 0...``.

Parameter names equal the official checkpoint's keys (``model.layers.N.self_attn.vision_expert_query_key_value``,
``model.vision...``, ``model.cross_vision.vit.model...``, ``lm_head``), so a checkpoint loads with no renaming.

``CogVLMForCausalLM`` (THUDM/cogvlm-chat-hf) is the same model without the cross attention and the high-resolution
encoder, chosen by the config's ``architectures``.

Split over devices (``device_map``, accelerate hooks, or by hand), every decoder layer and encoder block moves what
it receives to its own device: the hidden states, and the per-call ``LayerInputs`` (rope tables, masks, expert
routing, high-res features; copied once per device per call). Each layer's KV-cache entries are created on, and
stay on, that layer's device. Logits come back on the device of the caller's ``input_ids``.

Differences from the official code (none changes float32 numbers beyond rounding):

* images are tensors ``[B, 3, H, W]`` (one image per sequence) instead of nested lists;
* vision-expert routing slices the contiguous image span when every row has it at the same place and uses boolean
  masks only otherwise (left padding of unequal prompts);
* rotary cos/sin are always computed in float32 (the official code computes them in the model dtype, which in
  bfloat16 rounds positions above 256); the product is cast back to the model dtype;
* the KV cache is a ``CogAgentCache`` object (optionally preallocated), not a tuple of tuples;
* text-only input raises a ValueError: every decoder layer cross-attends to the high-resolution image, and the
  official code crashes without one (``linear(): argument 'input' must be Tensor, not NoneType``);
* bad inputs raise ValueError with what is wrong and what to do.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from . import generation
from .attention import attention, check_implementation
from .checkpointing import run_layer
from .config import CogAgentConfig
from .cross_visual import CrossVisionModel
from .visual import EVA2CLIPModel, activation, check_image_tensor, deterministic_buffer

LANGUAGE_TOKEN_TYPE = 0
VISION_TOKEN_TYPE = 1
SUPPORTED_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


# ----------------------------------------------------------------------------------------------------------------
# Small building blocks
# ----------------------------------------------------------------------------------------------------------------


class RMSNorm(nn.Module):
    """``w * x / sqrt(mean(x^2) + eps)``, computed in float32 and cast back, as the official code."""

    def __init__(self, hidden_size: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(hidden_size))
        self.variance_epsilon = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.to(torch.float32)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.variance_epsilon)
        return (self.weight * x).to(dtype)


class RotaryEmbedding(nn.Module):
    """Rotate-half (non-interleaved) RoPE, base 10000, over the full head dimension."""

    deterministic_buffers = ("inv_freq",)

    def __init__(self, dim: int, base: float = 10000.0):
        super().__init__()
        self.dim, self.base = dim, base
        self.register_buffer("inv_freq", deterministic_buffer((dim // 2,), self.compute_buffers), persistent=True)

    def compute_buffers(self, device=None) -> Dict[str, torch.Tensor]:
        exponents = torch.arange(0, self.dim, 2, device=device, dtype=torch.int64).to(torch.float32) / self.dim
        return {"inv_freq": 1.0 / (self.base ** exponents)}

    def forward(self, position_ids: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``position_ids [B, L]`` -> float32 ``cos, sin`` of shape ``[B, L, 1, dim]`` (broadcast over heads)."""
        inv_freq = self.inv_freq
        if inv_freq.dtype != torch.float32:  # a bfloat16 copy would shift every frequency; recompute exactly
            inv_freq = self.compute_buffers(device=position_ids.device)["inv_freq"]
        angles = position_ids[..., None].to(torch.float32) * inv_freq.to(position_ids.device)
        emb = torch.cat((angles, angles), dim=-1)[:, :, None, :]
        return emb.cos(), emb.sin()


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """``x [B, L, H, D]``; computed in float32, returned in x's dtype."""
    xf = x.float()
    return (xf * cos + rotate_half(xf) * sin).to(x.dtype)


class MLP(nn.Module):
    def __init__(self, config: CogAgentConfig):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)
        self.act_fn = activation(config.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(self.act_fn(self.gate_proj(x)) * self.up_proj(x))


# ----------------------------------------------------------------------------------------------------------------
# Token bookkeeping: expert routing, position ids, attention masks, image spans
# ----------------------------------------------------------------------------------------------------------------


def get_expert_mask(token_type_ids: torch.Tensor) -> torch.Tensor:
    """bool ``[B, L]``: True where the vision expert runs (a vision token followed by a vision token)."""
    vision = torch.zeros_like(token_type_ids, dtype=torch.bool)
    vision[:, :-1] = (token_type_ids[:, :-1] == VISION_TOKEN_TYPE) & (token_type_ids[:, 1:] == VISION_TOKEN_TYPE)
    return vision


@dataclass(frozen=True)
class ExpertRouting:
    """Which positions go to the vision expert: nowhere, one span ``[start, end)`` shared by all rows, or a mask."""

    span: Optional[Tuple[int, int]] = None
    mask: Optional[torch.Tensor] = None  # bool [B, L]

    @classmethod
    def from_token_type_ids(cls, token_type_ids: torch.Tensor, device: Optional[torch.device] = None
                            ) -> "ExpertRouting":
        """Decided on the host (one small copy per prefill); ``device`` is where a mask, if needed, goes."""
        device = device if device is not None else token_type_ids.device
        vision = get_expert_mask(token_type_ids.detach().cpu())
        if not bool(vision.any()):
            return cls()
        if bool((vision == vision[0]).all()):
            idx = vision[0].nonzero().flatten()
            start, end = int(idx[0]), int(idx[-1]) + 1
            if end - start == idx.numel():
                return cls(span=(start, end))
        return cls(mask=vision.to(device))

    def to(self, device: Union[str, torch.device], non_blocking: bool = False) -> "ExpertRouting":
        """This routing with its mask (if any) on ``device``; a span needs no tensor and is returned as is."""
        if self.mask is None or self.mask.device == torch.device(device):
            return self
        return ExpertRouting(span=self.span, mask=self.mask.to(device, non_blocking=non_blocking))

    def __call__(self, x: torch.Tensor, vision_fn: Callable, language_fn: Callable) -> torch.Tensor:
        """Apply ``vision_fn`` to vision-expert tokens and ``language_fn`` to the rest of ``x [B, L, D]``."""
        if self.span is None and self.mask is None:
            return language_fn(x)
        if self.span is not None:
            s, e = self.span
            vision_out = vision_fn(x[:, s:e])
            language_out = language_fn(torch.cat((x[:, :s], x[:, e:]), dim=1))
            return torch.cat((language_out[:, :s], vision_out, language_out[:, s:]), dim=1)
        mask = self.mask.to(x.device)
        vision_out = vision_fn(x[mask])
        language_out = language_fn(x[~mask])
        out = vision_out.new_empty(x.shape[:-1] + vision_out.shape[-1:])
        out[mask] = vision_out
        out[~mask] = language_out
        return out


def build_position_ids(token_type_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """The official rule: BOS 0, BOI 1, every image patch 2, EOI 3, text 4, 5, ...; pads (mask 0) get 0.

    A vision token starts a new position when its left neighbour is language; BOI and EOI (vision tokens next to
    language) count as language.
    """
    tmp = token_type_ids.clone()
    if attention_mask is not None:
        tmp[~attention_mask.bool()] = -1
    is_boi_eoi = torch.zeros_like(tmp, dtype=torch.bool)
    is_boi_eoi[:, 1:] |= (tmp[:, 1:] == VISION_TOKEN_TYPE) & (tmp[:, :-1] == LANGUAGE_TOKEN_TYPE)
    is_boi_eoi[:, 0] |= tmp[:, 0] == VISION_TOKEN_TYPE
    is_boi_eoi[:, :-1] |= (tmp[:, :-1] == VISION_TOKEN_TYPE) & (tmp[:, 1:] == LANGUAGE_TOKEN_TYPE)
    is_boi_eoi[:, -1] |= tmp[:, -1] == VISION_TOKEN_TYPE
    tmp[is_boi_eoi] = LANGUAGE_TOKEN_TYPE
    y = torch.zeros_like(tmp, dtype=torch.long)
    y[:, 1:] = (tmp[:, 1:] == LANGUAGE_TOKEN_TYPE) | (
        (tmp[:, 1:] == VISION_TOKEN_TYPE) & (tmp[:, :-1] == LANGUAGE_TOKEN_TYPE))
    return y.cumsum(dim=-1)


def build_attention_bias(attention_mask: torch.Tensor, q_len: int, past_len: int, dtype: torch.dtype,
                         device: torch.device) -> torch.Tensor:
    """Additive mask ``[B, 1, q_len, past_len + q_len]`` like the official ``_prepare_decoder_attention_mask``:
    ``finfo.min`` on padded keys plus ``finfo.min`` on future keys (-inf where both apply)."""
    min_value = torch.finfo(dtype).min
    keep = attention_mask.to(device=device, dtype=torch.bool)[:, None, None, :]
    bias = torch.zeros(keep.shape, dtype=dtype, device=device).masked_fill(~keep, min_value)
    if q_len > 1:
        future = torch.full((q_len, past_len + q_len), min_value, dtype=dtype, device=device).triu(past_len + 1)
        bias = bias + future
    return bias


def find_image_spans(token_type_ids: torch.Tensor, num_vision_tokens: int) -> List[Tuple[int, int]]:
    """``[start, end)`` of the image span of every row; ValueError unless each row has exactly one contiguous span of
    ``num_vision_tokens`` tokens of type 1 and no other type than 0/1."""
    tti = token_type_ids.detach().cpu()
    bad = (tti != LANGUAGE_TOKEN_TYPE) & (tti != VISION_TOKEN_TYPE)
    if bool(bad.any()):
        raise ValueError(f"token_type_ids may only hold {LANGUAGE_TOKEN_TYPE} (text) and {VISION_TOKEN_TYPE} "
                         f"(image), found {sorted(set(tti[bad].tolist()))}")
    spans = []
    for row, types in enumerate(tti):
        idx = (types == VISION_TOKEN_TYPE).nonzero().flatten()
        if idx.numel() != num_vision_tokens:
            raise ValueError(
                f"token_type_ids row {row} marks {idx.numel()} image tokens, but one image takes "
                f"{num_vision_tokens} tokens with this config ((image_size // patch_size)**2 + 2 for BOI/EOI); build "
                f"the prompt for this model's config (cogagent.prompts) with exactly one image per sequence")
        start, end = int(idx[0]), int(idx[-1]) + 1
        if end - start != num_vision_tokens:
            raise ValueError(f"token_type_ids row {row}: the {num_vision_tokens} image tokens are not contiguous "
                             f"(they span positions {start}..{end - 1}); the image must be one block of tokens")
        spans.append((start, end))
    return spans


# ----------------------------------------------------------------------------------------------------------------
# KV cache
# ----------------------------------------------------------------------------------------------------------------


class CogAgentCache:
    """Per layer: self-attention keys/values ``[B, L, H, D]`` and the cross-attention keys/values of the image.

    With ``capacity`` (``generate`` passes prompt + max_new_tokens) the self-attention buffers are allocated once
    and filled in place; without it they grow by concatenation. The cross-attention K/V are computed at prefill
    and never again. The cache also remembers the padding mask and the next position id, so a decode step only
    needs the new token ids.

    Each layer's tensors live on that layer's device (a model split over GPUs). The cache deliberately has no
    ``.to()``: accelerate's hooks move every argument that has one, which would gather all layers' keys/values
    onto one device at every step.
    """

    def __init__(self, num_layers: int, capacity: Optional[int] = None):
        self.num_layers = num_layers
        self.capacity = capacity
        self.length = 0  # tokens cached so far
        self.keys: List[Optional[torch.Tensor]] = [None] * num_layers
        self.values: List[Optional[torch.Tensor]] = [None] * num_layers
        self.cross: List[Optional[Tuple[torch.Tensor, torch.Tensor]]] = [None] * num_layers
        self.attention_mask: Optional[torch.Tensor] = None  # [B, length], None = no padding
        self.next_position_ids: Optional[torch.Tensor] = None  # [B, 1]

    def update(self, layer: int, key: torch.Tensor, value: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """Append this step's ``key/value [B, L, H, D]`` of ``layer``; return all keys/values so far."""
        start, end = self.length, self.length + key.shape[1]
        if self.capacity is None:
            if self.keys[layer] is None:
                self.keys[layer], self.values[layer] = key.contiguous(), value.contiguous()
            else:
                self.keys[layer] = torch.cat((self.keys[layer], key), dim=1)
                self.values[layer] = torch.cat((self.values[layer], value), dim=1)
            return self.keys[layer], self.values[layer]
        if end > self.capacity:
            raise ValueError(f"the KV cache holds {self.capacity} tokens; {end} were asked for")
        if self.keys[layer] is None:
            shape = (key.shape[0], self.capacity) + tuple(key.shape[2:])
            self.keys[layer] = key.new_empty(shape)
            self.values[layer] = value.new_empty(shape)
        self.keys[layer][:, start:end] = key
        self.values[layer][:, start:end] = value
        return self.keys[layer][:, :end], self.values[layer][:, :end]


@dataclass
class CogAgentOutput:
    logits: torch.Tensor  # [B, L, V] float32, on the device of the caller's input_ids
    past_key_values: Optional[CogAgentCache] = None
    hidden_states: Optional[Tuple[torch.Tensor, ...]] = None  # input of each layer, then the final normed state

    def to(self, device: Union[str, torch.device], non_blocking: bool = False) -> "CogAgentOutput":
        """Logits and hidden states on ``device``; the cache stays where its layers are.

        accelerate's top-level hook (``io_same_device``) calls this to hand the output back on the caller's device;
        moving the cache would copy every layer's keys/values to one device at every step."""
        hidden = None if self.hidden_states is None else tuple(
            h.to(device, non_blocking=non_blocking) for h in self.hidden_states)
        return CogAgentOutput(logits=self.logits.to(device, non_blocking=non_blocking),
                              past_key_values=self.past_key_values, hidden_states=hidden)


@dataclass
class LayerInputs:
    """What every decoder layer of one forward call reads besides the hidden states, built once per call.

    A model may be split over devices (``from_pretrained(device_map=...)``, accelerate's ``dispatch_model``, or a
    hand-made ``layers[i].to("cuda:1")``). Each layer calls ``.to(its device)``: the copy for a device is made
    once per call and shared by all layers there, so the rope tables, masks and high-res image features cross
    each device boundary once, not once per layer. accelerate's hooks call ``.to`` on the arguments that have one,
    so hooked and unhooked models take the same path.
    """

    routing: ExpertRouting
    rope: Tuple[torch.Tensor, torch.Tensor]  # float32 cos, sin [B, L, 1, head_dim]
    causal: bool = False
    bias: Optional[torch.Tensor] = None  # additive self-attention mask [B, 1, L, past + L]
    encoder_outputs: Optional[torch.Tensor] = None  # high-res features [B, Lc, cross_hidden]; prefill only
    _copies: Dict[torch.device, "LayerInputs"] = field(default_factory=dict, repr=False, compare=False)

    @property
    def device(self) -> torch.device:
        """Where the per-token tensors (rope, mask) were built; the image features may live elsewhere."""
        return self.rope[0].device

    def to(self, device: Union[str, torch.device], non_blocking: bool = False) -> "LayerInputs":
        """These inputs with every tensor on ``device``; tensors already there are shared, not copied."""
        device = torch.device(device)
        copy = self._copies.get(device)
        if copy is not None:
            return copy

        def move(t: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
            return None if t is None else t.to(device, non_blocking=non_blocking)

        rope = (move(self.rope[0]), move(self.rope[1]))
        copy = self._copies.get(rope[0].device)  # "cuda" and "cuda:0" name the same device
        if copy is None:
            copy = LayerInputs(routing=self.routing.to(rope[0].device, non_blocking), rope=rope, causal=self.causal,
                               bias=move(self.bias), encoder_outputs=move(self.encoder_outputs),
                               _copies=self._copies)
            self._copies[rope[0].device] = copy
        self._copies[device] = copy
        return copy


# ----------------------------------------------------------------------------------------------------------------
# Decoder
# ----------------------------------------------------------------------------------------------------------------


class VisionExpertAttention(nn.Module):
    def __init__(self, config: CogAgentConfig, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.hidden_size = config.hidden_size
        self.num_heads = config.num_attention_heads
        self.head_dim = config.head_dim
        self.rotary_emb = RotaryEmbedding(self.head_dim)
        self.vision_expert_query_key_value = nn.Linear(self.hidden_size, self.hidden_size * 3, bias=False)
        self.vision_expert_dense = nn.Linear(self.hidden_size, self.hidden_size, bias=False)
        self.language_expert_query_key_value = nn.Linear(self.hidden_size, self.hidden_size * 3, bias=False)
        self.language_expert_dense = nn.Linear(self.hidden_size, self.hidden_size, bias=False)

    def forward(self, hidden_states: torch.Tensor, inputs: LayerInputs, cache: Optional[CogAgentCache]
                ) -> torch.Tensor:
        """``inputs`` on this module's device (the decoder layer moves them)."""
        B, L, _ = hidden_states.shape
        routing = inputs.routing
        qkv = routing(hidden_states, self.vision_expert_query_key_value, self.language_expert_query_key_value)
        q, k, v = qkv.view(B, L, 3, self.num_heads, self.head_dim).unbind(2)
        cos, sin = inputs.rope
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        if cache is not None:  # this layer's keys/values are created, and stay, on this layer's device
            k, v = cache.update(self.layer_idx, k, v)
        out = attention(q, k, v, causal=inputs.causal, mask=inputs.bias,
                        implementation=self.config.attn_implementation)
        return routing(out.reshape(B, L, self.hidden_size), self.vision_expert_dense, self.language_expert_dense)


class CrossAttention(nn.Module):
    """Queries from the text/image tokens, keys/values from the high-res encoder output; no mask, no RoPE."""

    def __init__(self, config: CogAgentConfig):
        super().__init__()
        self.config = config
        self.num_heads = config.num_attention_heads
        self.cross_hidden_size = config.cross_hidden_size
        self.cross_compute_hidden_size = config.cross_compute_hidden_size
        self.cross_head_dim = config.cross_head_dim
        self.query = nn.Linear(config.hidden_size, self.cross_compute_hidden_size, bias=False)
        self.key_value = nn.Linear(self.cross_hidden_size, self.cross_compute_hidden_size * 2, bias=False)
        self.dense = nn.Linear(self.cross_compute_hidden_size, config.hidden_size, bias=False)

    def project_key_value(self, encoder_outputs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``encoder_outputs [B, Lc, cross_hidden]`` -> keys, values ``[B, Lc, H, cross_head_dim]`` (once per image)."""
        B, Lc, _ = encoder_outputs.shape
        k, v = self.key_value(encoder_outputs).view(B, Lc, 2, self.num_heads, self.cross_head_dim).unbind(2)
        return k.contiguous(), v.contiguous()

    def forward(self, hidden_states: torch.Tensor, cross_kv: Tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        B, L, _ = hidden_states.shape
        q = self.query(hidden_states).view(B, L, self.num_heads, self.cross_head_dim)
        out = attention(q, *cross_kv, implementation=self.config.attn_implementation)
        return self.dense(out.reshape(B, L, self.cross_compute_hidden_size))


class VisionExpertMLP(nn.Module):
    def __init__(self, config: CogAgentConfig):
        super().__init__()
        self.language_mlp = MLP(config)
        self.vision_mlp = MLP(config)

    def forward(self, x: torch.Tensor, routing: ExpertRouting) -> torch.Tensor:
        return routing(x, self.vision_mlp, self.language_mlp)


class CogAgentDecoderLayer(nn.Module):
    def __init__(self, config: CogAgentConfig, layer_idx: int):
        super().__init__()
        self.layer_idx = layer_idx
        self.self_attn = VisionExpertAttention(config, layer_idx)
        self.has_cross_attention = not config.is_cogvlm
        if self.has_cross_attention:
            self.cross_attn = CrossAttention(config)
        self.mlp = VisionExpertMLP(config)
        self.input_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        if self.has_cross_attention:
            self.post_cross_attention_layernorm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)

    def forward(self, x: torch.Tensor, inputs: LayerInputs, cache: Optional[CogAgentCache]) -> torch.Tensor:
        """One layer. ``x`` and ``inputs`` may come from another device (a model split over GPUs): both are moved to
        this layer's device first; the layer's cache entries are created here and stay here."""
        device = self.input_layernorm.weight.device
        x = x.to(device)
        inputs = inputs.to(device)
        x = x + self.self_attn(self.input_layernorm(x), inputs, cache)
        if not self.has_cross_attention:  # CogVLM
            return x + self.mlp(self.post_attention_layernorm(x), inputs.routing)

        cross_kv = cache.cross[self.layer_idx] if cache is not None else None
        if cross_kv is None:
            if inputs.encoder_outputs is None:
                raise ValueError(f"decoder layer {self.layer_idx} has no cross-attention keys/values: pass "
                                 f"cross_images with the first call, and the cache it returned afterwards")
            cross_kv = self.cross_attn.project_key_value(inputs.encoder_outputs)
            if cache is not None:
                cache.cross[self.layer_idx] = cross_kv
        x = x + self.cross_attn(self.post_cross_attention_layernorm(x), cross_kv)

        return x + self.mlp(self.post_attention_layernorm(x), inputs.routing)


class CogVLMDecoderLayer(CogAgentDecoderLayer):
    """CogVLM's layer: the CogAgent layer without cross attention (the config decides; this class only carries the
    official name, which ``_no_split_modules`` refers to)."""


class CogAgentModel(nn.Module):
    def __init__(self, config: CogAgentConfig):
        super().__init__()
        self.config = config
        layer_cls = CogVLMDecoderLayer if config.is_cogvlm else CogAgentDecoderLayer
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size, config.pad_token_id)
        self.layers = nn.ModuleList([layer_cls(config, i) for i in range(config.num_hidden_layers)])
        self.gradient_checkpointing = False  # see cogagent.checkpointing
        self.norm = RMSNorm(config.hidden_size, eps=config.rms_norm_eps)
        self.vision = EVA2CLIPModel(config)
        if not config.is_cogvlm:
            self.cross_vision = CrossVisionModel(config)

    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
        images: Optional[torch.Tensor] = None,
        cross_images: Optional[torch.Tensor] = None,
        past_key_values: Optional[CogAgentCache] = None,
        use_cache: bool = False,
        output_hidden_states: bool = False,
    ) -> Tuple[torch.Tensor, Optional[CogAgentCache], Optional[Tuple[torch.Tensor, ...]]]:
        """Returns the final (normed) hidden states, the cache, and optionally every layer's input."""
        config = self.config
        device, dtype = self.embed_tokens.weight.device, self.embed_tokens.weight.dtype
        check_implementation(config.attn_implementation)
        check_dtype_supported(dtype, device)
        cache = past_key_values
        if cache is not None and not isinstance(cache, CogAgentCache):
            raise ValueError("past_key_values must be the CogAgentCache returned by a previous call "
                             f"(got {type(cache).__name__})")
        past_len = cache.length if cache is not None else 0
        token_type_ids, attention_mask, has_padding = self._check_tokens(
            input_ids, token_type_ids, attention_mask, images, cache)
        B, L = input_ids.shape

        hidden = self.embed_tokens(input_ids.to(device))
        if past_len == 0 and config.is_cogvlm and images is None:
            # CogVLM without an image: plain text (the official CogVLM allows it, CogAgent cannot)
            if cross_images is not None:
                raise ValueError("CogVLM has no high-resolution encoder: do not pass cross_images")
            if bool((token_type_ids == VISION_TOKEN_TYPE).any()):
                raise ValueError("token_type_ids mark image tokens but no images were given; pass images "
                                 f"[B, 3, {config.vision_config.image_size}, {config.vision_config.image_size}] or "
                                 f"build a text-only prompt (all token types 0)")
            encoder_outputs = None
            if position_ids is None:
                position_ids = build_position_ids(token_type_ids, attention_mask)
            routing = ExpertRouting()
        elif past_len == 0:
            # prefill: image features into the image span, high-res image through the cross encoder
            spans, token_types_host = self._check_images(images, cross_images, token_type_ids)
            self.place_image_features(hidden, self.vision(images).to(device=device, dtype=dtype), spans)
            encoder_outputs = None
            if not config.is_cogvlm:
                encoder_outputs = self.cross_vision(cross_images).to(dtype)  # moved to each layer's device once
            if position_ids is None:
                position_ids = build_position_ids(token_type_ids, attention_mask)
            routing = ExpertRouting.from_token_type_ids(token_types_host, device)
        else:
            # continuation: the image lives in the cache (its tokens' K/V, the cross-attention K/V)
            if images is not None or cross_images is not None:
                raise ValueError("images are encoded by the first call; with past_key_values pass only the new "
                                 "text tokens")
            encoder_outputs = None
            if position_ids is None:
                if cache.next_position_ids is None:
                    raise ValueError("past_key_values has no position bookkeeping; pass position_ids")
                position_ids = cache.next_position_ids + torch.arange(L, device=cache.next_position_ids.device)
            # A lone new token is always a language-expert token (the rule needs a following vision token).
            routing = ExpertRouting() if L == 1 else ExpertRouting.from_token_type_ids(token_type_ids, device)
        if tuple(position_ids.shape) != (B, L):
            raise ValueError(f"position_ids has shape {tuple(position_ids.shape)}, expected {(B, L)}")
        position_ids = position_ids.to(device)

        # self-attention masking: SDPA's causal fast path unless padding or a cache offset needs explicit biases
        causal, bias = False, None
        if has_padding:
            bias = build_attention_bias(attention_mask, L, past_len, dtype, device)
        elif L > 1 and past_len == 0:
            causal = True
        elif L > 1:
            bias = build_attention_bias(torch.ones(B, past_len + L, device=device), L, past_len, dtype, device)

        if use_cache and cache is None:
            cache = CogAgentCache(config.num_hidden_layers)
        rope = self.layers[0].self_attn.rotary_emb(position_ids)  # the same in every layer: computed once
        rope = (rope[0].to(device), rope[1].to(device))
        inputs = LayerInputs(routing=routing, rope=rope, causal=causal, bias=bias, encoder_outputs=encoder_outputs)
        hidden, all_hidden = self.run_layers(hidden, inputs, cache, output_hidden_states)

        if cache is not None:
            cache.length = past_len + L
            cache.attention_mask = attention_mask if has_padding else None
            cache.next_position_ids = position_ids[:, -1:] + 1
        return hidden, cache, all_hidden

    def run_layers(self, hidden: torch.Tensor, inputs: LayerInputs, cache: Optional[CogAgentCache],
                   output_hidden_states: bool = False) -> Tuple[torch.Tensor, Optional[Tuple[torch.Tensor, ...]]]:
        """Every decoder layer, then the final norm. Returns the normed hidden states (on the norm's device) and,
        if asked, each layer's input followed by the normed output."""
        all_hidden = () if output_hidden_states else None
        recompute = self.gradient_checkpointing and cache is None  # a cache is filled during the forward: never
        for layer in self.layers:
            if output_hidden_states:
                all_hidden += (hidden,)
            hidden = run_layer(layer, recompute, hidden, inputs, cache)
        hidden = self.norm(hidden.to(self.norm.weight.device))
        if output_hidden_states:
            all_hidden += (hidden,)
        return hidden, all_hidden

    def _check_tokens(self, input_ids, token_type_ids, attention_mask, images, cache):
        """Validate ids, token types and mask; returns ``token_type_ids, attention_mask, has_padding`` where the mask
        covers cached + new tokens (None when nothing is padded)."""
        config = self.config
        if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2 or input_ids.is_floating_point():
            raise ValueError(f"input_ids must be an integer tensor [batch, length], got "
                             f"{getattr(input_ids, 'shape', type(input_ids).__name__)}")
        B, L = input_ids.shape
        if L == 0:
            raise ValueError("input_ids is empty (length 0)")
        lo, hi = torch.stack(torch.aminmax(input_ids)).tolist()  # one device sync
        if lo < 0 or hi >= config.vocab_size:
            raise ValueError(f"input_ids hold ids outside the vocabulary [0, {config.vocab_size}): min {lo}, "
                             f"max {hi}; was the prompt tokenized with this model's tokenizer?")
        past_len = cache.length if cache is not None else 0
        if past_len + L > config.max_position_embeddings:
            raise ValueError(f"sequence of {past_len + L} tokens is longer than max_position_embeddings "
                             f"{config.max_position_embeddings}; shorten the prompt/history or ask for fewer new "
                             f"tokens")

        if token_type_ids is None:
            if images is not None:
                raise ValueError("token_type_ids are required with images: they mark where the image tokens go")
            token_type_ids = torch.zeros_like(input_ids)
        if tuple(token_type_ids.shape) != (B, L):
            raise ValueError(f"token_type_ids has shape {tuple(token_type_ids.shape)}, input_ids {(B, L)}; "
                             f"they must match")
        token_type_ids = token_type_ids.to(input_ids.device)

        if attention_mask is not None:
            if tuple(attention_mask.shape) != (B, past_len + L):
                raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}; expected "
                                 f"{(B, past_len + L)} (cached + new tokens)")
            return token_type_ids, attention_mask, not bool(attention_mask.bool().all())
        if cache is not None and cache.attention_mask is not None:  # the cache remembers the padding
            mask = torch.cat((cache.attention_mask, cache.attention_mask.new_ones(B, L)), dim=1)
            return token_type_ids, mask, True
        return token_type_ids, None, False

    def _check_images(self, images, cross_images, token_type_ids):
        """Validate both image tensors against the config and find each row's image span (host copy of types)."""
        config, vc = self.config, self.config.vision_config
        if config.is_cogvlm:
            if cross_images is not None:
                raise ValueError("CogVLM has no high-resolution encoder: pass only images, not cross_images")
            B = token_type_ids.shape[0]
            check_image_tensor(images, channels=vc.in_channels, size=vc.image_size, batch=B, what="images")
            token_types_host = token_type_ids.cpu()
            return find_image_spans(token_types_host, config.num_vision_tokens), token_types_host
        if images is None or cross_images is None:
            missing = "images and cross_images" if images is None and cross_images is None else (
                "images" if images is None else "cross_images")
            raise ValueError(
                f"CogAgent needs {missing}: every decoder layer cross-attends to the high-resolution image and the "
                f"prompt holds one low-resolution image span, so text-only input is not supported (the official "
                f"model crashes on it too). Pass images [B, 3, {vc.image_size}, {vc.image_size}] and cross_images "
                f"[B, 3, {config.cross_image_size}, {config.cross_image_size}] (vision.preprocess), e.g. of a blank "
                f"screenshot")
        B = token_type_ids.shape[0]
        check_image_tensor(images, channels=vc.in_channels, size=vc.image_size, batch=B, what="images")
        check_image_tensor(cross_images, channels=vc.in_channels, size=config.cross_image_size, batch=B,
                           what="cross_images")
        token_types_host = token_type_ids.cpu()
        return find_image_spans(token_types_host, config.num_vision_tokens), token_types_host

    def place_image_features(self, embeds: torch.Tensor, features: torch.Tensor,
                             spans: Sequence[Tuple[int, int]]) -> None:
        """Write ``features[b]`` over ``embeds[b, start:end]`` for every row's image span (in place)."""
        if len(set(spans)) == 1:
            start, end = spans[0]
            embeds[:, start:end] = features
        else:
            for row, (start, end) in enumerate(spans):
                embeds[row, start:end] = features[row]


class CogAgentForCausalLM(nn.Module):
    """CogAgent with the LM head. ``CogAgentForCausalLM(config)`` builds it (use the meta device for full size)."""

    # Modules accelerate must keep whole when splitting over devices (device_map="auto"). The cross encoder is kept
    # whole because its blocks share one rope module; it is small (0.3 B parameters).
    _no_split_modules = ["CogAgentDecoderLayer", "TransformerLayer", "Block", "CrossVisionModel"]

    def __init__(self, config: CogAgentConfig):
        super().__init__()
        expected = getattr(type(self), "_checkpoint_architecture", type(self).__name__)
        if config.architecture != expected:
            raise ValueError(f"this config describes {config.architecture}; build it with that class "
                             f"(cogagent.modeling_cogagent.{config.architecture}), not {type(self).__name__}")
        if config.attn_implementation == "xformers":
            check_implementation("xformers")
        self.config = config
        self.model = CogAgentModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        if config.tie_word_embeddings:
            self.lm_head.weight = self.model.embed_tokens.weight
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """The official init (normal(0, initializer_range) for linear/embedding weights); a checkpoint overwrites it."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)

    # ------------------------------------------------------------------ properties
    @property
    def dtype(self) -> torch.dtype:
        return self.lm_head.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def gradient_checkpointing_enable(self, enabled: bool = True) -> None:
        """Recompute each decoder and encoder layer in the backward pass instead of keeping its activations
        (``cogagent.checkpointing``): the memory that fine-tuning the real model needs, for about a third more
        compute. Training only; generation and evaluation are unchanged."""
        for module in self.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = enabled

    # ------------------------------------------------------------------ forward / generate
    def forward(
        self,
        input_ids: torch.Tensor,
        token_type_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        position_ids: Optional[torch.Tensor] = None,
        images: Optional[torch.Tensor] = None,
        cross_images: Optional[torch.Tensor] = None,
        past_key_values: Optional[CogAgentCache] = None,
        use_cache: bool = False,
        output_hidden_states: bool = False,
        logits_to_keep: int = 0,
    ) -> CogAgentOutput:
        """One forward pass.

        First call (prefill): ``input_ids/token_type_ids [B, L]`` with one image span per row, ``images [B, 3, h, w]``
        and ``cross_images [B, 3, H, W]``; ``attention_mask [B, L]`` for padded batches; position ids follow the
        official rule when not given. With ``use_cache=True`` the returned ``past_key_values`` continues the
        sequence: pass it back with only the new tokens (token type 0) and no images; ``attention_mask`` then covers
        cached + new tokens, or can be left out (the cache remembers the padding).
        ``logits_to_keep=n`` computes logits for the last n positions only (0 = all).
        """
        hidden, cache, all_hidden = self.model(
            input_ids, token_type_ids, attention_mask=attention_mask, position_ids=position_ids, images=images,
            cross_images=cross_images, past_key_values=past_key_values, use_cache=use_cache,
            output_hidden_states=output_hidden_states)
        if logits_to_keep:
            hidden = hidden[:, -logits_to_keep:]
        # logits go back to where the ids came from, wherever lm_head is (a model split over devices)
        logits = self.lm_head(hidden.to(self.lm_head.weight.device)).float().to(input_ids.device)
        return CogAgentOutput(logits=logits, past_key_values=cache, hidden_states=all_hidden)

    # Greedy or sampled decoding with a KV cache: the function in cogagent/generation.py, bound as a method
    # (model.generate(input_ids, token_type_ids, ...)); its signature and docstring live there.
    generate = generation.generate

    def new_cache(self, capacity: Optional[int] = None) -> CogAgentCache:
        return CogAgentCache(self.config.num_hidden_layers, capacity)

    # ------------------------------------------------------------------ deterministic buffers
    def deterministic_buffer_names(self) -> Set[str]:
        """state_dict keys of buffers computed from the config (RoPE tables), under every alias."""
        names = set()
        for prefix, module in self.named_modules(remove_duplicate=False):
            for name in getattr(module, "deterministic_buffers", ()):
                names.add(f"{prefix}.{name}" if prefix else name)
        return names

    @torch.no_grad()
    def init_deterministic_buffers(self, device: Optional[Union[str, torch.device]] = None) -> None:
        """(Re)compute every deterministic buffer, in place where possible, keeping each buffer's dtype.

        ``device`` defaults to where each buffer already is (after ``to_empty(device=...)``)."""
        for module in self.modules():  # shared modules (the EVA-L rope) are visited once
            if not hasattr(module, "deterministic_buffers"):
                continue
            for name, old in list(module.named_buffers(recurse=False)):
                if name not in module.deterministic_buffers:
                    continue
                target = torch.device(device) if device is not None else old.device
                new = module.compute_buffers(device=target)[name].to(old.dtype)
                if old.device == target and not old.is_meta:
                    old.copy_(new)
                else:
                    module.register_buffer(name, new, persistent=True)

    # ------------------------------------------------------------------ loading / saving (cogagent/loading.py)
    @classmethod
    def from_pretrained(cls, path, dtype=None, device=None, device_map=None) -> "CogAgentForCausalLM":
        from .loading import from_pretrained as _fp

        return _fp(cls, path, dtype=dtype, device=device, device_map=device_map)

    def save_pretrained(self, path, max_shard_bytes: int = 5 * 2**30) -> List[str]:
        """Write config.json and the weights in the official layout (``model.safetensors``, or shards of at most
        ``max_shard_bytes`` plus an index); returns the file names written. See ``cogagent.loading``."""
        from .loading import save_pretrained as _sp

        return _sp(self, path, max_shard_bytes=max_shard_bytes)


class CogVLMForCausalLM(CogAgentForCausalLM):
    """CogVLM (THUDM/cogvlm-chat-hf): the CogAgent decoder without cross attention and without the high-resolution
    encoder; one 490 px image (35 x 35 patches + BOI + EOI = 1,227 tokens) through the same EVA2-CLIP-E (minus its
    second ``pos_embed``). Parameter names are the official ones. Images are optional: without them the input is
    plain text (all token types 0). Calls take no ``cross_images``."""

    _checkpoint_architecture = "CogVLMForCausalLM"
    _no_split_modules = ["CogVLMDecoderLayer", "TransformerLayer"]


# ----------------------------------------------------------------------------------------------------------------
# dtype support
# ----------------------------------------------------------------------------------------------------------------


def _probe_matmul(dtype: torch.dtype, device: torch.device) -> None:
    """Run a tiny linear + layer norm in ``dtype`` on ``device`` (raises RuntimeError where unsupported)."""
    x = torch.ones(2, 8, dtype=dtype, device=device)
    F.layer_norm(F.linear(x, x), (2,))


@functools.lru_cache(maxsize=None)
def _dtype_support_error(dtype: torch.dtype, device_type: str, device_index: Optional[int]) -> Optional[str]:
    if dtype not in SUPPORTED_DTYPES:
        return (f"model dtype {dtype} is not supported; use one of float32, bfloat16, float16 "
                f"(e.g. from_pretrained(path, dtype=torch.bfloat16))")
    if device_type == "meta":
        return "the model is on the meta device (no weights); load it with from_pretrained or call to_empty first"
    try:
        _probe_matmul(dtype, torch.device(device_type, device_index) if device_index is not None
                      else torch.device(device_type))
    except RuntimeError as exc:
        return (f"{dtype} is not supported on {device_type} by this torch build ({exc}); use torch.float32 on "
                f"{device_type}, or torch.bfloat16 / torch.float16 on a GPU")
    return None


def check_dtype_supported(dtype: torch.dtype, device: torch.device) -> None:
    """ValueError if this torch cannot run the model's matmuls in ``dtype`` on ``device`` (checked once)."""
    error = _dtype_support_error(dtype, device.type, device.index)
    if error is not None:
        raise ValueError(error)
