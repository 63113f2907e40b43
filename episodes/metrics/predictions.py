"""Reading prediction files for the offline metrics, and making them with a policy.

One JSON Lines format for all three datasets, each line keyed like the dataset's own records:

* ScreenSpot: ``{"id": <record index in the dataset file>, ...}``
* Mind2Web:   ``{"annotation_id": ..., "action_uid": ..., ...}``
* AITW:       ``{"episode_id": ..., "step_id": ..., ...}``

and holding either the model's raw ``"output"`` text (with ``"image_size": [w, h]`` for pixel datasets, since
the model writes 0-999 coordinates) or the already-decoded prediction (ScreenSpot ``"point"`` in pixels;
Mind2Web ``"op"``, ``"value"``, ``"point"``; AITW ``"action_type"``, ``"yx_touch"``, ``"yx_lift"``,
``"type_text"``). A malformed line is an error naming the line and the field; a prediction the model got
wrong (unparseable output) is a miss, not an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .aitw import AitwAction, action_from_model
from .common import DatasetFormatError, model_point, need, numbers, read_records
from .mind2web import StepPrediction


def _size(rec: dict[str, Any], where: str) -> tuple[int, int]:
    w, h = numbers(need(rec, "image_size", list, where), 2, "image_size", where)
    if w <= 0 or h <= 0:
        raise DatasetFormatError(f"{where}: field 'image_size' must be positive, got {[w, h]}")
    return int(w), int(h)


def _point(rec: dict[str, Any], where: str) -> tuple[float, float] | None:
    if rec.get("point") is None:
        return None
    x, y = numbers(rec["point"], 2, "point", where)
    return (x, y)


def load_screenspot_predictions(path: str | Path) -> dict[str, tuple[float, float] | None]:
    out: dict[str, tuple[float, float] | None] = {}
    for i, rec in enumerate(read_records(path)):
        where = f"{path} line {i + 1}"
        key = str(need(rec, "id", (int, str), where))
        if "output" in rec:
            out[key] = model_point(str(rec["output"]), _size(rec, where))[1]
        else:
            out[key] = _point(rec, where)
    return out


def load_mind2web_predictions(path: str | Path) -> dict[tuple[str, str], StepPrediction]:
    out: dict[tuple[str, str], StepPrediction] = {}
    for i, rec in enumerate(read_records(path)):
        where = f"{path} line {i + 1}"
        key = (str(need(rec, "annotation_id", str, where)), str(need(rec, "action_uid", str, where)))
        if "output" in rec:
            verb, point, value = model_point(str(rec["output"]), _size(rec, where))
            verb = "CLICK" if verb in ("HOVER", "TAP") else verb
            out[key] = StepPrediction(verb, value, point)
        else:
            out[key] = StepPrediction(str(need(rec, "op", str, where)).upper(), str(rec.get("value") or ""),
                                      _point(rec, where))
    return out


def load_aitw_predictions(path: str | Path) -> dict[tuple[str, int], AitwAction | None]:
    out: dict[tuple[str, int], AitwAction | None] = {}
    for i, rec in enumerate(read_records(path)):
        where = f"{path} line {i + 1}"
        key = (str(need(rec, "episode_id", (str, int), where)), int(need(rec, "step_id", int, where)))
        if "output" in rec:
            out[key] = action_from_model(str(rec["output"]))
            continue
        kind = need(rec, "action_type", int, where)
        touch = tuple(numbers(rec.get("yx_touch", [-1, -1]), 2, "yx_touch", where))
        lift = tuple(numbers(rec.get("yx_lift", [-1, -1]), 2, "yx_lift", where))
        out[key] = AitwAction(kind, touch, lift, str(rec.get("type_text") or ""))  # type: ignore[arg-type]
    return out
