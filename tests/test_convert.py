"""Model operations (0-999) to pixel actions: one mapping per verb, checked by hand on a 1000x800 screen."""

from __future__ import annotations

import pytest

from actuators.actions import Click, End, Hover, KeyPress, LongPress, Navigate, Scroll, Select, Swipe, TypeText, Wait
from cogagent.grammar import parse
from episodes.convert import ConversionError, operation_to_action

SIZE = (1000, 800)  # x scales by 1, y by 0.8: pixel = floor((v + 0.5) / 1000 * size)


def act(text: str):
    turn = parse(text)
    return operation_to_action(turn.operations[0], SIZE).action


@pytest.mark.parametrize("text, expected", [
    # box centre in 0-999 space (150, 150) -> (150, floor(150.5 * 0.8) = 120)
    ("Grounded Operation:[button] OK -> CLICK at the box [[100,100,200,200]]", Click((150, 120))),
    ("Grounded Operation:[link] Home -> HOVER at the box [[100,100,200,200]]", Hover((150, 120))),
    ("Grounded Operation:[textbox] Search -> TYPE: CogVLM at the box [[100,100,200,200]]",
     TypeText("CogVLM", (150, 120))),
    ("Grounded Operation:[combobox] Size -> SELECT: Large at the box [[100,100,200,200]]", Select((150, 120), "Large")),
    ("Grounded Operation:[textbox] Search -> ENTER at the box [[100,100,200,200]]", TypeText("", (150, 120), True)),
    ("Grounded Operation: tap [[500,500]]", Click((500, 400))),
    ("Grounded Operation: press home", Navigate("home")),
    ("Grounded Operation: press back", Navigate("back")),
    ("Grounded Operation: press enter", KeyPress(("enter",))),
    ("Grounded Operation: task complete", End("success")),
    ("Grounded Operation: task impossible", End("impossible")),
    ("Action: x\nGrounded Operation: DOUBLE_CLICK(box=[[100,100,200,200]], element_info='a')", Click((150, 120), count=2)),
    ("Action: x\nGrounded Operation: RIGHT_CLICK(box=[[100,100,200,200]], element_info='a')", Click((150, 120), "right")),
    ("Action: x\nGrounded Operation: TYPE(box=[[100,100,200,200]], text='hi, (you)', element_info='a')",
     TypeText("hi, (you)", (150, 120))),
    ("Action: x\nGrounded Operation: SCROLL_DOWN(box=[[0,0,999,999]], step_count=5, element_info='page')",
     Scroll("down", 5, (500, 400))),  # centre 499.5 -> floor(500.0) = 500; y floor(400.0) = 400
    ("Action: x\nGrounded Operation: KEY_PRESS(key='Ctrl+A')", KeyPress(("ctrl", "a"))),
    ("Action: x\nGrounded Operation: LAUNCH(url='https://example.com')", Navigate("https://example.com")),
    ("Action: x\nGrounded Operation: END()", End("success")),
])
def test_each_verb_maps_to_its_action(text: str, expected) -> None:
    assert act(text) == expected


def test_phone_swipe_up_moves_the_finger_up_through_the_centre() -> None:
    swipe = act("Grounded Operation: swipe up")
    assert isinstance(swipe, Swipe)
    assert swipe.start == (500, 560) and swipe.end == (500, 240)  # 0.4 of the height, centred


def test_out_of_range_boxes_are_clamped_and_reported() -> None:
    turn = parse("Grounded Operation:[button] OK -> CLICK at the box [[900,900,1500,1200]]")
    converted = operation_to_action(turn.operations[0], SIZE)
    assert converted.action == Click((950, 760))  # centre 949.5 of (900..999): floor(950.0), floor(950 * 0.8)
    assert any("clamped" in issue for issue in converted.grounding.issues)


@pytest.mark.parametrize("text, message", [
    ("Action: x\nGrounded Operation: CLICK(element_info='no box')", "needs a box"),
    ("Action: x\nGrounded Operation: SCROLL_DOWN(step_count='many')", "step_count"),
    ("Action: x\nGrounded Operation: KEY_PRESS(key='Hyper')", "unknown key"),
    ("Action: x\nGrounded Operation: QUOTE_TEXT(box=[[1,2,3,4]], element_info='x')", "no action for the operation"),
    ("Action: x\nGrounded Operation: LAUNCH()", "LAUNCH needs"),
])
def test_operations_that_cannot_become_actions_say_why(text: str, message: str) -> None:
    turn = parse(text)
    with pytest.raises(ConversionError, match=message):
        operation_to_action(turn.operations[0], SIZE)


def test_wait_and_long_press() -> None:
    assert act("Action: x\nGrounded Operation: WAIT()") == Wait(1.0)
    turn = parse("Action: x\nGrounded Operation: LONG_PRESS(box=[[100,100,200,200]], element_info='a')")
    assert operation_to_action(turn.operations[0], SIZE).action == LongPress((150, 120), 1.0)
