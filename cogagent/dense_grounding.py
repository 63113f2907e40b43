"""Dense grounding supervision for training: every high-resolution patch learns which widget it shows.

Why: an answer such as ``[button] Save -> CLICK at the box [[412,530,488,571]]`` gives the encoders a dozen
digit tokens of signal per example, and the signal reaches the pixels only through the decoder's attention.
Encoders that start from random weights barely move under it (the first tiny model learned the grammar and the
widget kinds, never where things were). The pages we train on know far more: the box, kind and label of every
widget on the screen (``elements`` in ``episodes.synthdata``'s JSONL). This module turns that into one target per
patch of the cross (high-resolution) encoder's grid -- the tokens of the widget's ``[kind] label`` as the grammar
writes it, or "nothing" -- and scores the patch features against the decoder's own token embeddings through one
linear map. Matching a patch to the instruction's words then becomes what the decoder's cross-attention already
computes (a dot product of a query from text with a key from a patch), which is why the signal transfers.

It is a training-time auxiliary loss only: the head is not part of the model, checkpoints exported for inference
are the plain CogAgent (``config.json`` + ``model.safetensors``) and load with ``from_pretrained`` as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .tokenizer import encode_text

Box = Tuple[int, int, int, int]


@dataclass(frozen=True)
class Element:
    """One widget on a screenshot: the grammar's kind word (``button``, ``textbox``...), label, pixel box."""

    kind: str
    label: str
    box_px: Box


def check_elements(value: Any) -> Tuple[Optional[Tuple[Element, ...]], Optional[str]]:
    """``elements`` of a JSONL record -> elements, or the reason it is unusable (for a line-numbered error)."""
    if not isinstance(value, list):
        return None, f"field 'elements' must be a list of {{kind, label, box_px}} objects, got {type(value).__name__}"
    out = []
    for i, e in enumerate(value):
        if not isinstance(e, dict) or not isinstance(e.get("kind"), str) or not isinstance(e.get("label"), str):
            return None, f"elements[{i}] must be an object with string 'kind' and 'label'"
        box = e.get("box_px")
        if (not isinstance(box, list) or len(box) != 4 or not all(isinstance(v, int) for v in box)
                or box[2] < box[0] or box[3] < box[1]):
            return None, f"elements[{i}].box_px must be [x1, y1, x2, y2] integers with x1<=x2, y1<=y2, got {box!r}"
        out.append(Element(e["kind"], e["label"], tuple(box)))  # type: ignore[arg-type]
    return tuple(out), None


def patch_owner(elements: Sequence[Element], size: Tuple[int, int], grid: int) -> List[int]:
    """For each patch of a ``grid x grid`` view of a ``size`` screenshot (row-major, the encoder's order), the
    index of the element it shows, or -1. The encoder sees the screen squashed to a square, so a patch covers
    ``W/grid x H/grid`` screen pixels; a patch belongs to an element when its centre lies in the element's box.
    An element too small to hold any patch centre (a checkbox, a thin link) gets the patch under its own centre,
    so no widget is invisible to the loss. Later elements win overlaps (they are drawn on top)."""
    W, H = size
    owner = [-1] * (grid * grid)
    for index, e in enumerate(elements):
        x1, y1, x2, y2 = e.box_px
        c1, c2 = int((x1 * grid) // W), int((x2 * grid) // W)
        r1, r2 = int((y1 * grid) // H), int((y2 * grid) // H)
        hit = False
        for r in range(max(r1, 0), min(r2, grid - 1) + 1):
            cy = (r + 0.5) * H / grid
            if not y1 <= cy <= y2 + 1:
                continue
            for c in range(max(c1, 0), min(c2, grid - 1) + 1):
                cx = (c + 0.5) * W / grid
                if x1 <= cx <= x2 + 1:
                    owner[r * grid + c] = index
                    hit = True
        if not hit:
            r = min(int(((y1 + y2) / 2 * grid) // H), grid - 1)
            c = min(int(((x1 + x2) / 2 * grid) // W), grid - 1)
            owner[r * grid + c] = index
    return owner


class DenseTargets:
    """Builds (and caches per screenshot) the soft per-patch target distributions over the vocabulary."""

    def __init__(self, tokenizer: Any, grid: int, vocab_size: int, background_id: int) -> None:
        self.tokenizer = tokenizer
        self.grid = grid
        self.vocab_size = vocab_size
        self.background_id = background_id
        self._words: dict = {}

    def words(self, e: Element) -> List[int]:
        key = (e.kind, e.label)
        ids = self._words.get(key)
        if ids is None:
            ids = [i for i in encode_text(self.tokenizer, f"[{e.kind}] {e.label}") if 0 <= i < self.vocab_size]
            self._words[key] = ids = ids or [self.background_id]
        return ids

    def build(self, elements: Sequence[Element], size: Tuple[int, int]) -> Tuple[torch.Tensor, torch.Tensor]:
        """-> (targets [P, V] rows summing to 1, is_element [P] bool)."""
        owner = patch_owner(elements, size, self.grid)
        P = self.grid * self.grid
        target = torch.zeros(P, self.vocab_size)
        target[:, self.background_id] = 1.0
        rows = [self.words(e) for e in elements]
        for p, index in enumerate(owner):
            if index >= 0:
                ids = rows[index]
                target[p, self.background_id] = 0.0
                target[p, ids] += 1.0 / len(ids)
        return target, torch.tensor([o >= 0 for o in owner])


class DenseGroundingHead(nn.Module):
    """Patch feature -> decoder embedding space; logits are dot products with the token embeddings (tied, so the
    encoder learns to speak the decoder's vocabulary)."""

    def __init__(self, cross_hidden_size: int, hidden_size: int) -> None:
        super().__init__()
        self.proj = nn.Linear(cross_hidden_size, hidden_size)

    def forward(self, features: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
        return self.proj(features.float()) @ embeddings.float().t()


def dense_loss(logits: torch.Tensor, targets: torch.Tensor, is_element: torch.Tensor,
               background_weight: float) -> torch.Tensor:
    """Soft-target cross entropy per patch; element patches weigh 1, background patches ``background_weight``
    (most of a page is background: unweighted, "nothing" would drown the widgets)."""
    per_patch = F.cross_entropy(logits.flatten(0, 1), targets.flatten(0, 1).to(logits.device), reduction="none")
    weights = torch.where(is_element.flatten().to(logits.device), 1.0, background_weight)
    return (per_patch * weights).sum() / weights.sum()


def target_patch_mask(box_px: Box, size: Tuple[int, int], grid: int) -> torch.Tensor:
    """[P] bool: the patches of the target's box (by :func:`patch_owner`'s rule)."""
    return torch.tensor([o == 0 for o in patch_owner([Element("", "", box_px)], size, grid)])


def target_attention_loss(query: torch.Tensor, keys: torch.Tensor, positions: torch.Tensor,
                          targets: torch.Tensor, heads: int) -> torch.Tensor:
    """Mean of -log(attention mass on the target's patches) over the answer positions and the first ``heads``
    heads of one cross-attention layer.

    Why: a decoder learns to *read* a box from the patch it attends to only once it attends there, and learns
    to attend there only once reading pays off; from random encoders that loop barely starts. Telling some
    heads where the target is, while the answer is written, breaks it: those heads' values then carry the
    target's position, which the digits can be read from. ``query [B, L, H, D]``, ``keys [B, Lc, H, D]``,
    ``positions [B, L]`` bool (answer tokens), ``targets [B, Lc]`` bool (rows without a target: all False)."""
    rows = targets.any(-1) & positions.any(-1)
    if not bool(rows.any()):
        return query.new_zeros(())
    q, k = query[rows][:, :, :heads].float(), keys[rows][:, :, :heads].float()
    scores = torch.einsum("blhd,bchd->bhlc", q, k) / math.sqrt(q.shape[-1])
    log_attn = scores.log_softmax(-1)
    on_target = log_attn.masked_fill(~targets[rows][:, None, None, :], float("-inf")).logsumexp(-1)  # [b, h, L]
    pos = positions[rows][:, None, :].expand_as(on_target)
    return -(on_target[pos]).mean()
