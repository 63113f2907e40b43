"""CogAgent prompt templates and the official token layout (``build_conversation_input_ids``).

Layout of one sample with an image (cogagent-chat-hf: 224 px / patch 14 -> 256 patches + BOI + EOI = 258)::

    input_ids      = [bos] + [pad] * N_vis + text_ids (+ answer_ids + [eos])
    token_type_ids = [0]   + [1]   * N_vis + [0] * len(text_ids ...)
    attention_mask = 1 everywhere;  labels (only with an answer) = -100 up to the answer, then answer_ids + [eos]

``N_vis = (image_size // patch_size) ** 2 + 2``. The pad ids are placeholders: the model replaces the
embeddings of every ``token_type_ids == 1`` position by the image features. ``text_ids`` is the whole prompt
encoded as ONE string without special tokens, and the answer is encoded separately -- both through
:func:`cogagent.tokenizer.encode_text`, which reproduces the transformers-4.36 ids (leading-``▁`` trap).

Templates (``config.template_version`` by default, "chat" for cogagent-chat-hf):

* ``base``:     ``query``
* ``chat``:     ``" [INST] "`` + ``q + " [/INST] " + r + " [INST] "`` per history turn + ``query + " [/INST] "``
* ``chat_old``: ``"<EOI>Question: "`` + ``q + " Answer: " + r + "\\nQuestion: "`` per turn + ``query + " Answer:"``
* ``vqa``:      ``"<EOI>Question: " + query + " Short answer:"`` -- history is ignored, as in the official code;
  this is the template of cogagent-vqa-hf and the one for single-shot screenshot question answering.

Text only (``image=None``) is NOT supported by the official code (it crashes). Here it gives
``[bos] + text_ids`` with all token types 0 and no ``images``/``cross_images`` keys: the model must then be
called without images (no vision tokens, no cross-attention input), which the official model cannot do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import torch

from cogagent.tokenizer import encode_text
from vision.preprocess import ImageInput, preprocess

TEMPLATE_VERSIONS = ("base", "chat", "chat_old", "vqa")
LANGUAGE_TOKEN_TYPE = 0
VISION_TOKEN_TYPE = 1
IGNORE_INDEX = -100

History = Sequence[Tuple[str, str]]


def agent_query(task: str, grounding: bool = True) -> str:
    """The GUI-agent query CogAgent-18B was tuned on (its README): ask for the steps to do ``task``.

    With ``grounding`` the model answers with Plan / Next Action / Grounded Operation and box coordinates.
    """
    if not isinstance(task, str) or not task.strip():
        raise ValueError(f"task must be a non-empty string, got {task!r}")
    query = f'What steps do I need to take to "{task}"?'
    return query + "(with grounding)" if grounding else query


def _check_history(history: Optional[History]) -> List[Tuple[str, str]]:
    if history is None:
        return []
    if isinstance(history, (str, bytes)):
        raise TypeError("history must be a sequence of (query, response) pairs, not a string")
    pairs = []
    for index, turn in enumerate(history):
        if not isinstance(turn, (tuple, list)) or len(turn) != 2:
            raise ValueError(f"history[{index}] must be a (query, response) pair, got {turn!r}")
        old_query, response = turn
        if not isinstance(old_query, str) or not isinstance(response, str):
            raise TypeError(f"history[{index}] must hold two strings, got "
                            f"({type(old_query).__name__}, {type(response).__name__})")
        pairs.append((old_query, response))
    return pairs


def build_prompt(query: str, history: Optional[History] = (), template: str = "chat") -> str:
    """The prompt text of one template (see the module docstring), exactly as the official functions."""
    if not isinstance(query, str):
        raise TypeError(f"query must be a str, got {type(query).__name__}")
    if template not in TEMPLATE_VERSIONS:
        raise ValueError(f"unknown template {template!r}; use one of {', '.join(TEMPLATE_VERSIONS)}")
    turns = _check_history(history)
    if template == "base":
        return query
    if template == "vqa":
        return "<EOI>Question: " + query + " Short answer:"
    if template == "chat_old":
        prompt = "<EOI>Question: "
        for old_query, response in turns:
            prompt += old_query + " Answer: " + response + "\nQuestion: "
        return prompt + query + " Answer:"
    prompt = " [INST] "
    for old_query, response in turns:
        prompt += old_query + " [/INST] " + response + " [INST] "
    return prompt + query + " [/INST] "


@dataclass(frozen=True)
class PromptLayout:
    """The few config values the layout needs (read by duck typing from any config object)."""

    image_size: int = 224
    patch_size: int = 14
    cross_image_size: Optional[int] = 1120  # None: no high-resolution branch (CogVLM)
    template_version: str = "chat"
    bos_token_id: int = 1
    pad_token_id: int = 0
    eos_token_id: int = 2

    @property
    def num_vision_tokens(self) -> int:
        """Low-res patches + BOI + EOI."""
        return (self.image_size // self.patch_size) ** 2 + 2


#: cogagent-chat-hf's values, used when no config is given.
COGAGENT_CHAT_LAYOUT = PromptLayout()


def _field(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    if hasattr(obj, name):
        return getattr(obj, name)
    try:
        return obj[name]
    except (TypeError, KeyError, IndexError):
        return default


def layout_from_config(config: Any = None) -> PromptLayout:
    """A :class:`PromptLayout` from a CogAgentConfig-like object (or dict); ``None`` -> cogagent-chat-hf.

    Reads ``vision_config.image_size``/``patch_size`` (attribute or ``["..."]``), ``cross_image_size``,
    ``template_version``, ``bos/pad/eos_token_id``.
    """
    if config is None:
        return COGAGENT_CHAT_LAYOUT
    if isinstance(config, PromptLayout):
        return config
    vision = _field(config, "vision_config")
    if vision is None:
        raise ValueError("config has no vision_config; pass a CogAgent config (or None for cogagent-chat-hf)")
    image_size = _field(vision, "image_size")
    patch_size = _field(vision, "patch_size")
    for name, value in (("vision_config.image_size", image_size), ("vision_config.patch_size", patch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"config {name} must be a positive integer, got {value!r}")
    default = COGAGENT_CHAT_LAYOUT
    layout = PromptLayout(
        image_size=image_size,
        patch_size=patch_size,
        cross_image_size=_field(config, "cross_image_size", None),
        template_version=_field(config, "template_version", None) or default.template_version,
        bos_token_id=_int_or(_field(config, "bos_token_id"), default.bos_token_id),
        pad_token_id=_int_or(_field(config, "pad_token_id"), default.pad_token_id),
        eos_token_id=_int_or(_field(config, "eos_token_id"), default.eos_token_id),
    )
    if layout.template_version not in TEMPLATE_VERSIONS:
        raise ValueError(f"config template_version {layout.template_version!r} is not one of "
                         f"{', '.join(TEMPLATE_VERSIONS)}")
    return layout


def _int_or(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _token_id(tokenizer: Any, name: str, fallback: int) -> int:
    """The tokenizer's id (what the official code uses), or the config's when the tokenizer has none."""
    value = getattr(tokenizer, name, None)
    return value if isinstance(value, int) else fallback


def build_inputs(
    tokenizer: Any,
    query: str,
    image: Optional[ImageInput],
    history: Optional[History] = (),
    template: Optional[str] = None,
    config: Any = None,
    answer: Optional[str] = None,
    *,
    dtype: torch.dtype = torch.float32,
    device: Optional[Union[str, torch.device]] = None,
) -> Dict[str, torch.Tensor]:
    """One sample in the official layout: ``input_ids``, ``token_type_ids``, ``attention_mask`` [1, L] long,
    ``images`` [1,3,s,s] and ``cross_images`` [1,3,S,S] (``dtype``), plus ``labels`` [1, L] with ``answer``.

    ``image`` is a PIL image or a path (``vision.preprocess``); ``None`` gives the text-only layout (module
    docstring). ``template`` defaults to the config's ``template_version``. ``config=None`` means
    cogagent-chat-hf (224/14, 1120, "chat"). BOS/pad/EOS ids come from the tokenizer, as in the official code,
    falling back to the config's where the tokenizer has none.
    """
    layout = layout_from_config(config)
    template = template or layout.template_version
    if answer is not None and not isinstance(answer, str):
        raise TypeError(f"answer must be a str or None, got {type(answer).__name__}")
    text = build_prompt(query, history, template)

    bos = _token_id(tokenizer, "bos_token_id", layout.bos_token_id)
    input_ids: List[int] = [bos]
    token_type_ids: List[int] = [LANGUAGE_TOKEN_TYPE]
    pixels: Dict[str, torch.Tensor] = {}
    if isinstance(image, (list, tuple)):
        raise TypeError("build_inputs takes one image per sample (the official layout has a single image); "
                        "build one sample per image and batch them with collate()")
    if image is not None:
        pixels = preprocess(image, layout.image_size, layout.cross_image_size, dtype=dtype, device=device)
        pad = _token_id(tokenizer, "pad_token_id", layout.pad_token_id)
        input_ids += [pad] * layout.num_vision_tokens
        token_type_ids += [VISION_TOKEN_TYPE] * layout.num_vision_tokens

    text_ids = encode_text(tokenizer, text)
    answer_ids: List[int] = []
    if answer is not None:
        answer_ids = encode_text(tokenizer, answer) + [_token_id(tokenizer, "eos_token_id", layout.eos_token_id)]
    input_ids += text_ids + answer_ids
    token_type_ids += [LANGUAGE_TOKEN_TYPE] * (len(text_ids) + len(answer_ids))

    def long(values: List[int]) -> torch.Tensor:
        return torch.tensor([values], dtype=torch.long, device=device)

    out = {
        "input_ids": long(input_ids),
        "token_type_ids": long(token_type_ids),
        "attention_mask": long([1] * len(input_ids)),
    }
    if answer is not None:
        out["labels"] = long([IGNORE_INDEX] * (len(input_ids) - len(answer_ids)) + answer_ids)
    out.update(pixels)
    return out


_SEQUENCE_KEYS = ("input_ids", "token_type_ids", "attention_mask")


def collate(batch: Sequence[Mapping[str, torch.Tensor]], pad_token_id: int) -> Dict[str, torch.Tensor]:
    """Left-pad several :func:`build_inputs` results into one batch (golden case c's layout).

    Pads get ``pad_token_id``, token type 0, attention mask 0 and label -100; ``images``/``cross_images``
    are concatenated along the batch axis. Left padding keeps every prompt's last token in the last column,
    where generation continues. The model must be given this ``attention_mask`` (the official ``generate``
    otherwise assumes all ones).
    """
    if isinstance(pad_token_id, bool) or not isinstance(pad_token_id, int) or pad_token_id < 0:
        raise ValueError(f"pad_token_id must be a non-negative integer, got {pad_token_id!r}")
    items = list(batch)
    if not items:
        raise ValueError("collate needs at least one sample")
    rows: List[Dict[str, torch.Tensor]] = []
    for index, item in enumerate(items):
        missing = [key for key in _SEQUENCE_KEYS if key not in item]
        if missing:
            raise ValueError(f"sample {index} lacks {missing}; pass the dicts build_inputs returns")
        row = {}
        for key in _SEQUENCE_KEYS + ("labels",):
            if key not in item:
                continue
            tensor = item[key]
            if tensor.dim() == 2 and tensor.shape[0] == 1:
                tensor = tensor[0]
            if tensor.dim() != 1:
                raise ValueError(f"sample {index} {key} must have shape [1, L] or [L], got {tuple(item[key].shape)}")
            row[key] = tensor
        lengths = {row[key].shape[0] for key in row}
        if len(lengths) != 1:
            raise ValueError(f"sample {index} has sequences of different lengths {sorted(lengths)}")
        rows.append(row)

    for key in ("labels", "images", "cross_images"):
        present = [key in item for item in items]
        if any(present) and not all(present):
            raise ValueError(f"either every sample or none must have {key!r}; mixing samples with and without "
                             f"it cannot form one batch")

    max_len = max(row["input_ids"].shape[0] for row in rows)
    fill = {"input_ids": pad_token_id, "token_type_ids": LANGUAGE_TOKEN_TYPE, "attention_mask": 0,
            "labels": IGNORE_INDEX}
    out: Dict[str, torch.Tensor] = {}
    for key in _SEQUENCE_KEYS + ("labels",):
        if key not in rows[0]:
            continue
        padded = []
        for row in rows:
            tensor = row[key]
            pad = torch.full((max_len - tensor.shape[0],), fill[key], dtype=tensor.dtype, device=tensor.device)
            padded.append(torch.cat([pad, tensor]))
        out[key] = torch.stack(padded)
    for key in ("images", "cross_images"):
        if key in items[0]:
            shapes = {tuple(item[key].shape[1:]) for item in items}
            if len(shapes) != 1:
                raise ValueError(f"{key} of the samples differ in shape {sorted(shapes)}")
            out[key] = torch.cat([item[key] for item in items], dim=0)
    return out
