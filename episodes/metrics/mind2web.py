"""Mind2Web (Deng et al., 2023) step metrics for a screenshot agent: element accuracy, operation F1, step SR.

Published format: JSON arrays of tasks ``{"annotation_id", "confirmed_task", "website", "domain", "actions":
[{"action_uid", "operation": {"op", "original_op", "value"}, "pos_candidates": [{"attributes": "<JSON string
with bounding_box_rect 'x,y,w,h'>"}, ...]}]}``; the split (test_task / test_website / test_domain) is the
directory or file name, or given. For an agent that clicks on pixels rather than picking DOM nodes, an element
is correct when the predicted point lies in a positive candidate's bounding box (the SeeClick protocol).

* operation F1: token F1 between ``"OP value"`` strings (``"CLICK"`` for clicks), Mind2Web's own definition;
* step success: element correct and operation F1 == 1;
* task success: every step of the task successful.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .common import DatasetFormatError, Rate, need, read_records
from .screenspot import inside

SPLITS = ("test_task", "test_website", "test_domain", "train")


@dataclass(frozen=True)
class Mind2WebStep:
    key: tuple[str, str]  # (annotation_id, action_uid)
    split: str
    task: str
    op: str
    value: str
    boxes: tuple[tuple[float, float, float, float], ...]  # pixel boxes of the positive candidates


def _op_string(op: str, value: str) -> str:
    op = op.upper().strip()
    return op if op == "CLICK" or not value.strip() else f"{op} {value.strip()}"


def op_f1(pred: str, truth: str) -> float:
    """Token-level F1 over whitespace tokens, case-insensitive (as Mind2Web's evaluation computes it)."""
    p, t = pred.lower().split(), truth.lower().split()
    if not p or not t:
        return float(p == t)
    common = sum((Counter(p) & Counter(t)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(p), common / len(t)
    return 2 * precision * recall / (precision + recall)


def _candidate_box(cand: Any, where: str) -> tuple[float, float, float, float] | None:
    attrs = cand.get("attributes") if isinstance(cand, dict) else None
    if isinstance(attrs, str):
        try:
            attrs = json.loads(attrs)
        except json.JSONDecodeError:
            raise DatasetFormatError(f"{where}: pos_candidates[].attributes is not a JSON string") from None
    rect = (attrs or {}).get("bounding_box_rect") if isinstance(attrs, dict) else None
    if rect is None:
        return None
    try:
        x, y, w, h = (float(v) for v in str(rect).split(","))
    except ValueError:
        raise DatasetFormatError(f"{where}: bounding_box_rect must be 'x,y,width,height', got {rect!r}") from None
    return (x, y, x + w, y + h)


def load_mind2web(path: str | Path, split: str | None = None) -> list[Mind2WebStep]:
    file = Path(path)
    split = split or next((s for s in SPLITS if s in str(file)), "unknown")
    steps = []
    for i, task in enumerate(read_records(file)):
        where = f"{file} task {i}"
        annotation = need(task, "annotation_id", str, where)
        text = str(task.get("confirmed_task", ""))
        for j, action in enumerate(need(task, "actions", list, where)):
            w = f"{where} action {j}"
            if not isinstance(action, dict):
                raise DatasetFormatError(f"{w}: expected an object")
            operation = need(action, "operation", dict, w)
            op = need(operation, "op", str, f"{w} operation")
            boxes = tuple(b for b in (_candidate_box(c, w) for c in need(action, "pos_candidates", list, w)) if b)
            steps.append(Mind2WebStep((annotation, need(action, "action_uid", str, w)), split, text, op,
                                      str(operation.get("value") or ""), boxes))
    return steps


@dataclass(frozen=True)
class StepPrediction:
    op: str | None
    value: str
    point: tuple[float, float] | None


def score_mind2web(steps: list[Mind2WebStep], predictions: dict[tuple[str, str], StepPrediction]) -> dict[str, Any]:
    """Per split and overall; a missing prediction counts as wrong on every metric."""
    by_split: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    tasks: dict[tuple[str, str], list[bool]] = defaultdict(list)
    for step in steps:
        pred = predictions.get(step.key)
        element = bool(pred and any(inside(pred.point, b) for b in step.boxes))
        f1 = op_f1(_op_string(pred.op or "", pred.value), _op_string(step.op, step.value)) if pred and pred.op else 0.0
        success = element and f1 == 1.0
        for split in (step.split, "overall"):
            by_split[split]["element"].append(element)
            by_split[split]["f1"].append(f1)
            by_split[split]["step"].append(success)
        tasks[(step.split, step.key[0])].append(success)
    out: dict[str, Any] = {}
    for split, m in sorted(by_split.items()):
        task_ok = [all(v) for (s, _), v in tasks.items() if split in (s, "overall")]
        out[split] = {
            "element_accuracy": Rate(sum(m["element"]), len(m["element"])).to_dict(),
            "operation_f1": round(sum(m["f1"]) / len(m["f1"]), 6) if m["f1"] else 0.0,
            "step_success_rate": Rate(sum(m["step"]), len(m["step"])).to_dict(),
            "task_success_rate": Rate(sum(task_ok), len(task_ok)).to_dict(),
        }
    return out
