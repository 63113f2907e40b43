"""CogAgent configuration, read from the official ``config.json`` of THUDM/cogagent-chat-hf.

Field names are the official ones (``configuration_cogagent.py`` + ``config.json``). Two things the official
config leaves implicit are explicit here:

* ``vision_config`` (the low-res EVA2-CLIP-E encoder) is a dataclass. It still answers ``vision_config["image_size"]``
  like the official dict does.
* the high-res EVA2-CLIP-L cross encoder sizes are hard-coded in the official ``cross_visual.py``. Here they are
  ``cross_vision_config`` with the EVA2-CLIP-L values as defaults. A config.json that carries
  ``_patched_eva2_clip_l_sizes`` (the tiny golden test models) overrides them, and ``to_dict`` writes that key back
  only when the sizes differ from EVA2-CLIP-L. So the real config.json round-trips unchanged.

CogVLM (THUDM/cogvlm-chat-hf, ``architectures: ["CogVLMForCausalLM"]``) is the same decoder without the
high-resolution cross branch; its config.json has no ``cross_*`` fields. Read here it has ``cross_hidden_size``,
``cross_compute_hidden_size`` and ``cross_image_size`` = None (``is_cogvlm`` is True), and writes none of them back.

Not official: ``attn_implementation`` ("auto" | "sdpa" | "xformers" | "eager"), see ``cogagent/attention.py``.
"""

from __future__ import annotations

import copy
import json
import os
from dataclasses import dataclass, field, fields
from typing import Any, Dict, Optional, Union

ARCHITECTURE = "CogAgentForCausalLM"
COGVLM_ARCHITECTURE = "CogVLMForCausalLM"
ARCHITECTURES = (ARCHITECTURE, COGVLM_ARCHITECTURE)
CROSS_FIELDS = ("cross_hidden_size", "cross_compute_hidden_size", "cross_image_size")
MODEL_TYPE = "cogagent"
TEMPLATE_VERSIONS = ("base", "chat", "chat_old", "vqa")
ATTN_IMPLEMENTATIONS = ("auto", "sdpa", "xformers", "eager")
SUPPORTED_ACTIVATIONS = ("silu", "gelu")

# Keys that a config.json must have (the official class has defaults for the rest, but the reference cannot even
# build a model without vision_config; a file missing these is not a CogAgent config).
REQUIRED_FIELDS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                   "vision_config")
REQUIRED_VISION_FIELDS = ("hidden_size", "image_size", "intermediate_size", "num_heads", "num_hidden_layers",
                          "patch_size")

PATCHED_CROSS_SIZES_KEY = "_patched_eva2_clip_l_sizes"


class _DictAccess:
    """Lets a dataclass be read like the official dict: ``cfg["image_size"]``, ``cfg.get("x", default)``."""

    def __getitem__(self, key: str) -> Any:
        if key not in self._field_names():
            raise KeyError(key)
        return getattr(self, key)

    def __contains__(self, key: str) -> bool:
        return key in self._field_names()

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self._field_names() else default

    def keys(self):
        return self._field_names()

    @classmethod
    def _field_names(cls):
        return tuple(f.name for f in fields(cls))

    def to_dict(self) -> Dict[str, Any]:
        return {name: getattr(self, name) for name in self._field_names()}


@dataclass
class VisionConfig(_DictAccess):
    """Low-res encoder (EVA2-CLIP-E in cogagent-chat-hf). Defaults = the real config.json."""

    dropout_prob: float = 0.0
    hidden_act: str = "gelu"
    hidden_size: int = 1792
    image_size: int = 224
    in_channels: int = 3
    intermediate_size: int = 15360
    layer_norm_eps: float = 1e-6
    num_heads: int = 16
    num_hidden_layers: int = 63
    num_positions: int = 257
    patch_size: int = 14

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


@dataclass
class CrossVisionConfig(_DictAccess):
    """High-res encoder (EVA2-CLIP-L). Defaults = the sizes hard-coded in the official cross_visual.py.

    ``embed_dim`` is the size of the (unused) CLIP head; the image size is ``CogAgentConfig.cross_image_size``.
    """

    embed_dim: int = 768
    layers: int = 24
    width: int = 1024
    head_width: int = 64
    mlp_ratio: float = 2.6667
    patch_size: int = 14
    pt_hw_seq_len: int = 16
    layer_norm_eps: float = 1e-6

    @property
    def num_heads(self) -> int:
        return self.width // self.head_width

    @property
    def mlp_hidden_size(self) -> int:
        return int(self.width * self.mlp_ratio)


_DEFAULT_CROSS = CrossVisionConfig()


@dataclass
class CogAgentConfig:
    """Configuration of ``CogAgentForCausalLM``. ``CogAgentConfig()`` is cogagent-chat-hf at full size."""

    vocab_size: int = 32000
    hidden_size: int = 4096
    cross_hidden_size: Optional[int] = 1024  # None for CogVLM (all three)
    cross_compute_hidden_size: Optional[int] = 1024
    cross_image_size: Optional[int] = 1120
    intermediate_size: int = 11008
    num_hidden_layers: int = 32
    num_attention_heads: int = 32
    hidden_act: str = "silu"
    max_position_embeddings: int = 2048
    initializer_range: float = 0.02
    rms_norm_eps: float = 1e-5  # config.json value (the official class default is 1e-6, config.json says 1e-5)
    template_version: str = "chat"
    pad_token_id: int = 0
    bos_token_id: int = 1
    eos_token_id: int = 2
    tie_word_embeddings: bool = False
    use_cache: bool = True
    architectures: list = field(default_factory=lambda: [ARCHITECTURE])
    torch_dtype: Optional[str] = None
    vision_config: VisionConfig = field(default_factory=VisionConfig)
    cross_vision_config: CrossVisionConfig = field(default_factory=CrossVisionConfig)
    attn_implementation: str = "auto"
    # Keys of config.json we do not interpret (auto_map, transformers_version, ...), kept for a faithful to_dict().
    extra: Dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.is_cogvlm:  # no high-resolution branch: the cross sizes mean nothing, and are not written back
            for name in CROSS_FIELDS:
                setattr(self, name, None)
        if isinstance(self.vision_config, dict):
            self.vision_config = _dataclass_from_dict(VisionConfig, self.vision_config, "vision_config")
        if isinstance(self.cross_vision_config, dict):
            self.cross_vision_config = _dataclass_from_dict(
                CrossVisionConfig, self.cross_vision_config, "cross_vision_config")
        self.validate()

    # ------------------------------------------------------------------ derived sizes
    @property
    def is_cogvlm(self) -> bool:
        """CogVLM: the CogAgent decoder without cross attention and without the high-resolution encoder."""
        return COGVLM_ARCHITECTURE in (self.architectures or ())

    @property
    def architecture(self) -> str:
        return COGVLM_ARCHITECTURE if self.is_cogvlm else ARCHITECTURE

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @property
    def cross_head_dim(self) -> int:
        return self.cross_compute_hidden_size // self.num_attention_heads

    @property
    def num_vision_tokens(self) -> int:
        """Tokens one low-res image occupies in the sequence: patches + BOI + EOI (258 for 224/14)."""
        return self.vision_config.num_patches + 2

    @property
    def num_cross_tokens(self) -> int:
        """Tokens the high-res encoder yields per image (6400 for 1120/14; 0 for CogVLM, which has none)."""
        if self.is_cogvlm:
            return 0
        return (self.cross_image_size // self.cross_vision_config.patch_size) ** 2

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise ValueError naming the first inconsistency."""

        def need(cond: bool, msg: str):
            if not cond:
                raise ValueError(f"invalid CogAgent config: {msg}")

        need(isinstance(self.architectures, list) and len(set(self.architectures) & set(ARCHITECTURES)) == 1,
             f"architectures {self.architectures!r} must name one of {ARCHITECTURES}")
        sizes = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                 "max_position_embeddings") + (() if self.is_cogvlm else CROSS_FIELDS)
        for name in sizes:
            value = getattr(self, name)
            need(isinstance(value, int) and not isinstance(value, bool) and value > 0,
                 f"{name} must be a positive integer, got {value!r}")
        need(self.hidden_size % self.num_attention_heads == 0,
             f"hidden_size {self.hidden_size} is not divisible by num_attention_heads {self.num_attention_heads}")
        need(self.head_dim % 2 == 0, f"head_dim {self.head_dim} must be even for rotary embeddings")
        need(self.hidden_act in SUPPORTED_ACTIVATIONS,
             f"hidden_act {self.hidden_act!r} is not supported (use one of {SUPPORTED_ACTIVATIONS})")
        need(self.rms_norm_eps > 0, f"rms_norm_eps must be > 0, got {self.rms_norm_eps}")
        need(self.template_version in TEMPLATE_VERSIONS,
             f"template_version {self.template_version!r} is not one of {TEMPLATE_VERSIONS}")
        need(self.attn_implementation in ATTN_IMPLEMENTATIONS,
             f"attn_implementation {self.attn_implementation!r} is not one of {ATTN_IMPLEMENTATIONS}")
        for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
            value = getattr(self, name)
            need(value is None or (isinstance(value, int) and 0 <= value < self.vocab_size),
                 f"{name} {value!r} is outside the vocabulary [0, {self.vocab_size})")

        v = self.vision_config
        for name in ("hidden_size", "image_size", "in_channels", "intermediate_size", "num_heads",
                     "num_hidden_layers", "num_positions", "patch_size"):
            value = getattr(v, name)
            need(isinstance(value, int) and value > 0,
                 f"vision_config.{name} must be a positive integer, got {value!r}")
        need(v.hidden_size % v.num_heads == 0,
             f"vision_config.hidden_size {v.hidden_size} is not divisible by vision_config.num_heads {v.num_heads}")
        need(v.image_size % v.patch_size == 0,
             f"vision_config.image_size {v.image_size} is not a multiple of vision_config.patch_size {v.patch_size}")
        need(v.num_positions == v.num_patches + 1,
             f"vision_config.num_positions {v.num_positions} must be (image_size // patch_size)**2 + 1 "
             f"= {v.num_patches + 1}")
        need(v.hidden_act in SUPPORTED_ACTIVATIONS,
             f"vision_config.hidden_act {v.hidden_act!r} is not supported (use one of {SUPPORTED_ACTIVATIONS})")

        if self.is_cogvlm:
            return
        c = self.cross_vision_config
        for name in ("embed_dim", "layers", "width", "head_width", "patch_size", "pt_hw_seq_len"):
            value = getattr(c, name)
            need(isinstance(value, int) and value > 0,
                 f"cross encoder {name} must be a positive integer, got {value!r}")
        need(c.layers >= 2, f"cross encoder layers must be >= 2 (the last block is never run), got {c.layers}")
        need(c.width % c.head_width == 0,
             f"cross encoder width {c.width} is not divisible by head_width {c.head_width}")
        need(c.head_width % 4 == 0, f"cross encoder head_width {c.head_width} must be a multiple of 4 (2-D RoPE)")
        need(self.cross_image_size % c.patch_size == 0,
             f"cross_image_size {self.cross_image_size} is not a multiple of the cross encoder patch size "
             f"{c.patch_size}")
        need(self.cross_hidden_size == c.width,
             f"cross_hidden_size {self.cross_hidden_size} must equal the cross encoder width {c.width} "
             f"(its output feeds cross_attn.key_value)")
        need(self.cross_compute_hidden_size == self.cross_hidden_size,
             f"cross_compute_hidden_size {self.cross_compute_hidden_size} must equal cross_hidden_size "
             f"{self.cross_hidden_size} (the official CrossAttention reshapes its context with cross_hidden_size)")
        need(self.cross_compute_hidden_size % self.num_attention_heads == 0,
             f"cross_compute_hidden_size {self.cross_compute_hidden_size} is not divisible by num_attention_heads "
             f"{self.num_attention_heads}")

    # ------------------------------------------------------------------ (de)serialisation
    @classmethod
    def from_dict(cls, config: Dict[str, Any], **overrides: Any) -> "CogAgentConfig":
        """Build from a config.json dict. Raises ValueError for another architecture or missing fields."""
        if not isinstance(config, dict):
            raise ValueError(f"a CogAgent config must be a JSON object, got {type(config).__name__}")
        config = copy.deepcopy(config)
        config.update(overrides)

        architectures = config.get("architectures")
        if architectures is not None and (not isinstance(architectures, list)
                                          or not set(architectures) & set(ARCHITECTURES)):
            raise ValueError(f"config.json describes architectures {architectures}, not {ARCHITECTURE} or "
                             f"{COGVLM_ARCHITECTURE}; point at a CogAgent checkpoint (e.g. THUDM/cogagent-chat-hf) "
                             f"or a CogVLM one (THUDM/cogvlm-chat-hf)")
        if architectures is not None and COGVLM_ARCHITECTURE in architectures:
            stray = [k for k in CROSS_FIELDS + (PATCHED_CROSS_SIZES_KEY, "cross_vision_config")
                     if config.get(k) is not None]
            if stray:
                raise ValueError(f"config.json says {COGVLM_ARCHITECTURE} (no high-resolution branch) but sets "
                                 f"{stray}; a CogAgent config must say architectures [\"{ARCHITECTURE}\"]")
        model_type = config.get("model_type")
        if model_type is not None and model_type != MODEL_TYPE:
            raise ValueError(f"config.json has model_type {model_type!r}, expected {MODEL_TYPE!r} (or none)")
        missing = [k for k in REQUIRED_FIELDS if k not in config]
        if missing:
            raise ValueError(f"config.json is missing required CogAgent field(s) {missing}")
        vision = config["vision_config"]
        if not isinstance(vision, dict):
            raise ValueError(f"vision_config must be an object, got {type(vision).__name__}")
        missing = [k for k in REQUIRED_VISION_FIELDS if k not in vision]
        if missing:
            raise ValueError(f"config.json vision_config is missing required field(s) {missing}")

        patched = config.pop(PATCHED_CROSS_SIZES_KEY, None)
        if patched is not None and "cross_vision_config" not in config:
            known = set(CrossVisionConfig._field_names())
            config["cross_vision_config"] = {k: v for k, v in patched.items() if k in known}

        known = {f.name for f in fields(cls)} - {"extra"}
        kwargs = {k: v for k, v in config.items() if k in known}
        extra = {k: v for k, v in config.items() if k not in known}
        extra.update(config.get("extra", {}) or {})
        try:
            return cls(**kwargs, extra=extra)
        except TypeError as exc:  # e.g. an unknown key inside vision_config
            raise ValueError(f"invalid CogAgent config: {exc}") from None

    @classmethod
    def from_json_file(cls, path: Union[str, os.PathLike]) -> "CogAgentConfig":
        """Read a config.json file (or the config.json inside a checkpoint directory)."""
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, "config.json")
        try:
            with open(path, "r", encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            raise ValueError(f"no config.json at {path}") from None
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from None
        try:
            return cls.from_dict(data)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None

    from_pretrained = from_json_file

    def to_dict(self) -> Dict[str, Any]:
        """A config.json dict: the official fields, ``_patched_eva2_clip_l_sizes`` when the cross encoder is not
        EVA2-CLIP-L, and the unknown keys that were read in."""
        out: Dict[str, Any] = dict(copy.deepcopy(self.extra))
        for f in fields(self):
            if f.name in ("extra", "vision_config", "cross_vision_config"):
                continue
            value = getattr(self, f.name)
            if (f.name, value) in (("torch_dtype", None), ("attn_implementation", "auto")):
                continue  # not written when unset, so the official config.json round-trips unchanged
            if self.is_cogvlm and f.name in CROSS_FIELDS:
                continue  # CogVLM's config.json has none
            out[f.name] = copy.deepcopy(value)
        out["vision_config"] = self.vision_config.to_dict()
        if self.cross_vision_config != _DEFAULT_CROSS and not self.is_cogvlm:
            out[PATCHED_CROSS_SIZES_KEY] = self.cross_vision_config.to_dict()
        return dict(sorted(out.items()))

    def to_json_string(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def to_json_file(self, path: Union[str, os.PathLike]) -> None:
        with open(path, "w", encoding="utf-8") as f:
            f.write(self.to_json_string())


def _dataclass_from_dict(cls, data: Dict[str, Any], what: str):
    known = set(cls._field_names())
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"invalid CogAgent config: unknown {what} field(s) {unknown}")
    return cls(**data)
