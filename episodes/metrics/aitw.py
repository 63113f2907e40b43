"""Android in the Wild (Rawles et al., 2023): action-type accuracy and action matching.

Records use the field names of the published TFRecords, flattened to JSON (one record per step):
``episode_id``, ``step_id``, ``results/action_type`` (3 TYPE, 4 DUAL_POINT, 5 BACK, 6 HOME, 7 ENTER,
10 TASK_COMPLETE, 11 TASK_IMPOSSIBLE), ``results/yx_touch`` and ``results/yx_lift`` ([y, x] in 0..1),
``results/type_action``, ``image/ui_annotations_positions`` (flat [y, x, h, w, ...] in 0..1), and the
category (``category`` field, or the top-level key when the file is ``{"general": [[step, ...], ...], ...}``).

Matching follows the paper's ``action_matching`` code: types must agree; a dual point is a tap when touch and
lift are within 0.04 of each other, else a swipe; two taps match when both fall in the same UI element box or
lie within 0.14 of each other (normalised distance). Each box is grown as that code grows it: its top-left
moves up and left by 0.7 of its size (not below 0), its size grows by 1.4 times (capped at 1). Two swipes match
when their main axis (vertical or horizontal) is the same -- the code does not compare the direction along
the axis, and neither do we, so scores stay comparable with published ones. Typed text must match exactly
(the task states that rule; the paper's code compares types only).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import DatasetFormatError, Rate, need, numbers, read_records

TYPE, DUAL_POINT, PRESS_BACK, PRESS_HOME, PRESS_ENTER, TASK_COMPLETE, TASK_IMPOSSIBLE = 3, 4, 5, 6, 7, 10, 11
ACTION_TYPES = {TYPE, DUAL_POINT, PRESS_BACK, PRESS_HOME, PRESS_ENTER, TASK_COMPLETE, TASK_IMPOSSIBLE}
TAP_DISTANCE = 0.14
SWIPE_DISTANCE = 0.04
BOX_AUGMENT = 1.4


@dataclass(frozen=True)
class AitwAction:
    action_type: int
    touch: tuple[float, float] = (-1.0, -1.0)  # (y, x) in 0..1
    lift: tuple[float, float] = (-1.0, -1.0)
    text: str = ""


@dataclass(frozen=True)
class AitwStep:
    key: tuple[str, int]
    category: str
    truth: AitwAction
    boxes: tuple[tuple[float, float, float, float], ...]  # (y, x, h, w) in 0..1


def _step(rec: dict[str, Any], category: str, where: str) -> AitwStep:
    kind = need(rec, "results/action_type", int, where)
    if kind not in ACTION_TYPES:
        raise DatasetFormatError(f"{where}: field 'results/action_type' must be one of {sorted(ACTION_TYPES)}, got {kind}")
    touch = lift = (-1.0, -1.0)
    if kind == DUAL_POINT:
        touch = tuple(numbers(need(rec, "results/yx_touch", list, where), 2, "results/yx_touch", where))
        lift = tuple(numbers(need(rec, "results/yx_lift", list, where), 2, "results/yx_lift", where))
    flat = rec.get("image/ui_annotations_positions", [])
    if not isinstance(flat, list) or len(flat) % 4:
        raise DatasetFormatError(f"{where}: field 'image/ui_annotations_positions' must be a flat list of "
                                 "[y, x, h, w] groups")
    boxes = tuple(tuple(float(v) for v in flat[i:i + 4]) for i in range(0, len(flat), 4))
    episode = str(need(rec, "episode_id", (str, int), where))
    return AitwStep((episode, need(rec, "step_id", int, where)), str(rec.get("category", category)),
                    AitwAction(kind, touch, lift, str(rec.get("results/type_action", "") or "")), boxes)  # type: ignore[arg-type]


def load_aitw(path: str | Path, category: str | None = None) -> list[AitwStep]:
    file = Path(path)
    records = read_records(file)
    steps: list[AitwStep] = []
    if len(records) == 1 and all(isinstance(v, list) for v in records[0].values()) and records[0]:
        for cat, episodes in records[0].items():  # {"general": [[step, ...], ...], ...}
            for e, episode in enumerate(episodes):
                for s, rec in enumerate(episode if isinstance(episode, list) else [episode]):
                    if not isinstance(rec, dict):
                        raise DatasetFormatError(f"{file} {cat} episode {e} step {s}: expected an object")
                    steps.append(_step(rec, cat, f"{file} {cat} episode {e} step {s}"))
        return steps
    return [_step(rec, category or "unknown", f"{file} record {i}") for i, rec in enumerate(records)]


def is_tap(action: AitwAction) -> bool:
    return math.dist(action.touch, action.lift) <= SWIPE_DISTANCE


def _in_box(yx: tuple[float, float], box: tuple[float, float, float, float]) -> bool:
    y, x, h, w = box
    dh, dw = BOX_AUGMENT * h, BOX_AUGMENT * w
    top, left = max(0.0, y - dh / 2), max(0.0, x - dw / 2)
    height, width = min(1.0, h + dh), min(1.0, w + dw)
    return top <= yx[0] <= top + height and left <= yx[1] <= left + width


def actions_match(pred: AitwAction, truth: AitwAction, boxes: tuple[tuple[float, float, float, float], ...]) -> bool:
    if pred.action_type != truth.action_type:
        return False
    if truth.action_type == TYPE:
        return pred.text == truth.text
    if truth.action_type != DUAL_POINT:
        return True
    if is_tap(pred) != is_tap(truth):
        return False
    if is_tap(truth):
        if any(_in_box(pred.touch, b) and _in_box(truth.touch, b) for b in boxes):
            return True
        return math.dist(pred.touch, truth.touch) <= TAP_DISTANCE
    dp = (pred.lift[0] - pred.touch[0], pred.lift[1] - pred.touch[1])
    dt = (truth.lift[0] - truth.touch[0], truth.lift[1] - truth.touch[1])
    # argmax over (|dy|, |dx|): ties go to the vertical axis, as numpy's argmax picks the first maximum
    axis_p, axis_t = int(abs(dp[1]) > abs(dp[0])), int(abs(dt[1]) > abs(dt[0]))
    return axis_p == axis_t


def action_from_model(text: str) -> AitwAction | None:
    """CogAgent's phone dialect (``tap [[x,y]]``, ``swipe up``, ...) as an AITW action; None if unusable."""
    from cogagent.grammar import ParseError, parse  # noqa: PLC0415

    turn = parse(text)
    if isinstance(turn, ParseError) or not turn.operations:
        return None
    op = turn.operations[0]
    verb = str(op.verb).upper()
    coords = op.point or (None if op.box is None else ((op.box[0] + op.box[2]) / 2, (op.box[1] + op.box[3]) / 2))
    if verb in ("TAP", "CLICK") and coords is not None:
        yx = (min(max(coords[1], 0), 999) / 1000, min(max(coords[0], 0), 999) / 1000)
        return AitwAction(DUAL_POINT, yx, yx)
    if verb == "SWIPE":  # the finger moves in the named direction
        moves = {"up": ((0.8, 0.5), (0.2, 0.5)), "down": ((0.2, 0.5), (0.8, 0.5)),
                 "left": ((0.5, 0.8), (0.5, 0.2)), "right": ((0.5, 0.2), (0.5, 0.8))}
        if str(op.value).lower() in moves:
            touch, lift = moves[str(op.value).lower()]
            return AitwAction(DUAL_POINT, touch, lift)
        return None
    if verb == "TYPE":
        return AitwAction(TYPE, text=str(op.value or ""))
    if verb == "PRESS":
        return {"back": AitwAction(PRESS_BACK), "home": AitwAction(PRESS_HOME),
                "enter": AitwAction(PRESS_ENTER)}.get(str(op.value).lower())
    if verb in ("TASK_COMPLETE", "END"):
        return AitwAction(TASK_COMPLETE)
    if verb == "TASK_IMPOSSIBLE":
        return AitwAction(TASK_IMPOSSIBLE)
    return None


def score_aitw(steps: list[AitwStep], predictions: dict[tuple[str, int], AitwAction | None]) -> dict[str, Any]:
    groups: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for step in steps:
        pred = predictions.get(step.key)
        type_ok = pred is not None and pred.action_type == step.truth.action_type
        match = pred is not None and actions_match(pred, step.truth, step.boxes)
        for name in (step.category, "overall"):
            groups[name]["type"].append(type_ok)
            groups[name]["match"].append(match)
    return {name: {"action_type_accuracy": Rate(sum(g["type"]), len(g["type"])).to_dict(),
                   "action_matching_accuracy": Rate(sum(g["match"]), len(g["match"])).to_dict()}
            for name, g in sorted(groups.items())}
