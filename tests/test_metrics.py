"""Offline metrics against values computed by hand in the comments, plus the format errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from episodes.metrics import aitw, mind2web, predictions, screenspot
from episodes.metrics.common import DatasetFormatError


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# --- ScreenSpot -----------------------------------------------------------------------------------------------

def _screenspot(tmp_path: Path) -> Path:
    f = tmp_path / "screenspot_mobile.json"
    f.write_text(json.dumps([
        {"img_filename": "a.png", "bbox": [10, 10, 20, 20], "instruction": "open", "data_type": "text"},
        {"img_filename": "b.png", "bbox": [100, 100, 10, 10], "instruction": "gear", "data_type": "icon"},
        {"img_filename": "c.png", "bbox": [0, 0, 5, 5], "instruction": "x", "data_type": "text"},
    ]))
    return f


def test_screenspot_hand_computed(tmp_path: Path) -> None:
    items = screenspot.load_screenspot(_screenspot(tmp_path))
    # (30, 30) is on the border of [10..30] -> hit; (111, 105) is one pixel right of [100..110] -> miss;
    # record 2 has no prediction -> miss.
    preds = predictions.load_screenspot_predictions(_jsonl(tmp_path / "p.jsonl", [
        {"id": 0, "point": [30, 30]}, {"id": 1, "point": [111, 105]}]))
    scores = screenspot.score_screenspot(items, preds)
    assert scores["overall"] == {"value": pytest.approx(1 / 3, abs=1e-6), "hits": 1, "total": 3}
    assert scores["mobile/text"]["hits"] == 1 and scores["mobile/text"]["total"] == 2
    assert scores["mobile/icon"]["hits"] == 0 and scores["mobile/icon"]["total"] == 1


def test_screenspot_model_output_is_converted_with_the_image_size(tmp_path: Path) -> None:
    items = screenspot.load_screenspot(_screenspot(tmp_path))
    # A 200x100 image: box [[50,100,150,300]] has its centre at (100, 200) per mille -> pixel (20, 20).
    preds = predictions.load_screenspot_predictions(_jsonl(tmp_path / "p.jsonl", [
        {"id": 0, "output": "Grounded Operation:[button] Open -> CLICK at the box [[50,100,150,300]]",
         "image_size": [200, 100]},
        {"id": 1, "output": "I cannot see it", "image_size": [200, 100]}]))
    assert preds["0"] == (20, 20)
    assert preds["1"] is None
    assert screenspot.score_screenspot(items, preds)["overall"]["hits"] == 1


@pytest.mark.parametrize("record, message", [
    ({"bbox": [0, 0, 1, 1], "instruction": "x", "data_type": "text"}, "missing field 'img_filename'"),
    ({"img_filename": "a", "bbox": [0, 0, 1], "instruction": "x", "data_type": "text"}, "list of 4 numbers"),
    ({"img_filename": "a", "bbox": [0, 0, -1, 1], "instruction": "x", "data_type": "text"}, "width and height"),
    ({"img_filename": "a", "bbox": [0, 0, 1, 1], "instruction": "x", "data_type": "widget"}, "'text' or 'icon'"),
])
def test_screenspot_bad_records(tmp_path: Path, record: dict, message: str) -> None:
    f = tmp_path / "screenspot_web.json"
    f.write_text(json.dumps([record]))
    with pytest.raises(DatasetFormatError, match=message):
        screenspot.load_screenspot(f)


def test_screenspot_needs_a_platform(tmp_path: Path) -> None:
    f = tmp_path / "data.json"
    f.write_text(json.dumps([{"img_filename": "a", "bbox": [0, 0, 1, 1], "instruction": "x", "data_type": "text"}]))
    with pytest.raises(DatasetFormatError, match="no platform"):
        screenspot.load_screenspot(f)


def test_empty_predictions_score_zero(tmp_path: Path) -> None:
    items = screenspot.load_screenspot(_screenspot(tmp_path))
    empty = tmp_path / "p.jsonl"
    empty.write_text("")
    assert screenspot.score_screenspot(items, predictions.load_screenspot_predictions(empty))["overall"]["hits"] == 0


# --- Mind2Web -------------------------------------------------------------------------------------------------

def _cand(rect: str) -> dict:
    return {"tag": "button", "attributes": json.dumps({"bounding_box_rect": rect})}


def _mind2web(tmp_path: Path) -> Path:
    d = tmp_path / "test_website"
    d.mkdir()
    f = d / "tasks.json"
    f.write_text(json.dumps([
        {"annotation_id": "A", "confirmed_task": "book", "actions": [
            {"action_uid": "a1", "operation": {"op": "CLICK", "original_op": "CLICK", "value": ""},
             "pos_candidates": [_cand("10,10,100,50")]},
            {"action_uid": "a2", "operation": {"op": "TYPE", "original_op": "TYPE", "value": "new york"},
             "pos_candidates": [_cand("200,200,50,20")]}]},
        {"annotation_id": "B", "confirmed_task": "fly", "actions": [
            {"action_uid": "b1", "operation": {"op": "SELECT", "original_op": "SELECT", "value": "Economy"},
             "pos_candidates": [_cand("0,0,10,10")]}]},
    ]))
    return f


def test_mind2web_hand_computed(tmp_path: Path) -> None:
    steps = mind2web.load_mind2web(_mind2web(tmp_path))
    assert {s.split for s in steps} == {"test_website"}
    preds = predictions.load_mind2web_predictions(_jsonl(tmp_path / "p.jsonl", [
        {"annotation_id": "A", "action_uid": "a1", "op": "CLICK", "point": [50, 30]},
        {"annotation_id": "A", "action_uid": "a2", "op": "TYPE", "value": "new york city", "point": [210, 210]},
    ]))
    s = mind2web.score_mind2web(steps, preds)["overall"]
    # a1: inside, "CLICK" == "CLICK" -> F1 1, step ok. a2: inside; tokens {type,new,york,city} vs {type,new,york}:
    # P = 3/4, R = 1, F1 = 6/7 -> step fails. b1: no prediction -> all wrong.
    assert s["element_accuracy"]["hits"] == 2 and s["element_accuracy"]["total"] == 3
    assert s["operation_f1"] == pytest.approx((1 + 6 / 7 + 0) / 3, abs=1e-6)
    assert s["step_success_rate"]["hits"] == 1
    assert s["task_success_rate"] == {"value": 0.0, "hits": 0, "total": 2}


def test_op_f1_edge_cases() -> None:
    assert mind2web.op_f1("", "") == 1.0
    assert mind2web.op_f1("CLICK", "") == 0.0
    assert mind2web.op_f1("TYPE a a", "TYPE a") == pytest.approx(0.8)  # P = 2/3, R = 1


def test_mind2web_bad_format(tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    f.write_text(json.dumps([{"annotation_id": "A", "actions": [{"action_uid": "1", "pos_candidates": []}]}]))
    with pytest.raises(DatasetFormatError, match="missing field 'operation'"):
        mind2web.load_mind2web(f)
    f.write_text(json.dumps([{"annotation_id": "A", "actions": [
        {"action_uid": "1", "operation": {"op": "CLICK"}, "pos_candidates": [_cand("1,2,3")]}]}]))
    with pytest.raises(DatasetFormatError, match="x,y,width,height"):
        mind2web.load_mind2web(f)


# --- AITW -----------------------------------------------------------------------------------------------------

def _aitw(tmp_path: Path) -> Path:
    tap = lambda y, x: {"results/action_type": 4, "results/yx_touch": [y, x], "results/yx_lift": [y, x]}  # noqa: E731
    f = tmp_path / "aitw_test.json"
    f.write_text(json.dumps({
        "general": [[
            {"episode_id": "e1", "step_id": 0, **tap(0.5, 0.5), "image/ui_annotations_positions": [0.45, 0.45, 0.1, 0.1]},
            {"episode_id": "e1", "step_id": 1, **tap(0.2, 0.2)},
            {"episode_id": "e1", "step_id": 2, "results/action_type": 4, "results/yx_touch": [0.8, 0.5],
             "results/yx_lift": [0.2, 0.5]},
        ]],
        "install": [[
            {"episode_id": "e2", "step_id": 0, "results/action_type": 3, "results/type_action": "hello"},
            {"episode_id": "e2", "step_id": 1, "results/action_type": 6},
        ]],
    }))
    return f


def test_aitw_hand_computed(tmp_path: Path) -> None:
    steps = aitw.load_aitw(_aitw(tmp_path))
    preds = predictions.load_aitw_predictions(_jsonl(tmp_path / "p.jsonl", [
        # 0.1414 away (> 0.14), but both points inside the box grown 1.4x: 0.38..0.62 -> match by the box rule
        {"episode_id": "e1", "step_id": 0, "action_type": 4, "yx_touch": [0.6, 0.6], "yx_lift": [0.6, 0.6]},
        # 0.1414 away and no boxes -> no match
        {"episode_id": "e1", "step_id": 1, "action_type": 4, "yx_touch": [0.3, 0.3], "yx_lift": [0.3, 0.3]},
        # a shorter upward swipe: same axis and direction -> match
        {"episode_id": "e1", "step_id": 2, "action_type": 4, "yx_touch": [0.7, 0.5], "yx_lift": [0.3, 0.5]},
        # text differs in case -> type right, action wrong
        {"episode_id": "e2", "step_id": 0, "action_type": 3, "type_text": "Hello"},
    ]))
    s = aitw.score_aitw(steps, preds)
    assert (s["general"]["action_type_accuracy"]["hits"], s["general"]["action_matching_accuracy"]["hits"]) == (3, 2)
    assert (s["install"]["action_type_accuracy"]["hits"], s["install"]["action_matching_accuracy"]["hits"]) == (1, 0)
    assert s["overall"]["action_matching_accuracy"] == {"value": 0.4, "hits": 2, "total": 5}


def test_aitw_tap_threshold_is_inclusive_at_0_14() -> None:
    t = aitw.AitwAction(4, (0.5, 0.5), (0.5, 0.5))
    assert aitw.actions_match(aitw.AitwAction(4, (0.5, 0.64), (0.5, 0.64)), t, ())
    assert not aitw.actions_match(aitw.AitwAction(4, (0.5, 0.6401), (0.5, 0.6401)), t, ())
    assert not aitw.actions_match(aitw.AitwAction(4, (0.5, 0.5), (0.1, 0.5)), t, ())  # swipe vs tap


def test_aitw_swipes_match_by_main_axis_only_as_the_papers_code_does() -> None:
    up = aitw.AitwAction(4, (0.8, 0.5), (0.2, 0.5))
    assert aitw.actions_match(aitw.AitwAction(4, (0.2, 0.5), (0.8, 0.5)), up, ())  # down vs up: same axis
    assert not aitw.actions_match(aitw.AitwAction(4, (0.5, 0.8), (0.5, 0.2)), up, ())  # horizontal vs vertical


def test_aitw_grown_boxes_are_clipped_at_the_top_left_like_the_papers_code() -> None:
    # box y=0.02 h=0.1: top = max(0, 0.02 - 0.07) = 0, height = 0.1 + 0.14 = 0.24 -> covers y 0..0.24
    # (without the clip it would be -0.05..0.19). The taps below are 0.19 and 0.20 from the truth: box rule only.
    box = (0.02, 0.5, 0.1, 0.1)
    truth = aitw.AitwAction(4, (0.05, 0.55), (0.05, 0.55))
    assert aitw.actions_match(aitw.AitwAction(4, (0.24, 0.55), (0.24, 0.55)), truth, (box,))
    assert not aitw.actions_match(aitw.AitwAction(4, (0.25, 0.55), (0.25, 0.55)), truth, (box,))


def test_aitw_bad_format(tmp_path: Path) -> None:
    f = tmp_path / "a.jsonl"
    _jsonl(f, [{"episode_id": "e", "step_id": 0, "results/action_type": 9}])
    with pytest.raises(DatasetFormatError, match="must be one of"):
        aitw.load_aitw(f)
    _jsonl(f, [{"episode_id": "e", "step_id": 0, "results/action_type": 4, "results/yx_touch": [0.1]}])
    with pytest.raises(DatasetFormatError, match="yx_touch"):
        aitw.load_aitw(f)
    f.write_text("{not json\n")
    with pytest.raises(DatasetFormatError, match="line 1|:1 is not JSON"):
        aitw.load_aitw(f)
