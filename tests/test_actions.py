"""actuators.actions and actuators.base: validation at construction, dict round trips, the shared perform().

``RecordingActuator`` is a minimal concrete ``BaseActuator``: the class is abstract, and what is tested here is
its shared behaviour (support checks, bounds, timing, error capture), not any device.
"""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actuators.actions import (
    ACTION_TYPES, KEY_NAMES, MAX_SECONDS, MAX_TEXT_CHARS, ActionError, Click, Drag, End, Hover, KeyPress,
    LongPress, Navigate, Scroll, Select, Swipe, TypeText, Wait, action_from_dict, normalize_key,
)
from actuators.base import ActionFailed, ActuatorError, BaseActuator, Outcome

EXAMPLES = [
    Click((10, 20)), Click((10, 20), button="right"), Click((1, 2), count=2), LongPress((5, 5), seconds=2.5),
    Hover((0, 0)), TypeText("搜索 CogVLM"), TypeText("x", point=(3, 4), submit=True), TypeText("", submit=True),
    Select((7, 8), "Banana"), KeyPress(("ctrl", "a")), KeyPress(("enter",)), Scroll("down"),
    Scroll("left", amount=7, point=(9, 9)), Swipe((1, 2), (3, 4), seconds=0.5), Drag((1, 1), (50, 60)),
    Navigate("https://example.com/?q=猫"), Navigate("back"), Wait(0.5), End("impossible", "no such setting"),
]


# --- round trips ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("action", EXAMPLES, ids=lambda a: a.kind)
def test_dict_round_trip_through_json(action):
    data = json.loads(json.dumps(action.to_dict(), ensure_ascii=False))
    assert data["type"] == action.kind
    again = action_from_dict(data)
    assert again == action and type(again) is type(action)


def test_every_action_type_is_registered_and_has_an_example():
    assert {a.kind for a in EXAMPLES} == set(ACTION_TYPES)


def test_points_lists_every_touched_point():
    assert Click((1, 2)).points() == ((1, 2),)
    assert Swipe((1, 2), (3, 4)).points() == ((1, 2), (3, 4))
    assert TypeText("a").points() == () and Scroll("up").points() == ()
    assert Drag((0, 0), (5, 5)).with_points({"end": (6, 7)}) == Drag((0, 0), (6, 7))


def test_actions_are_immutable_and_hashable():
    c = Click((1, 2))
    with pytest.raises(Exception):
        c.point = (3, 4)  # type: ignore[misc]
    assert len({c, Click((1, 2)), Click((1, 3))}) == 2


# --- construction validation ---------------------------------------------------------------------------------
def test_points_are_rounded_to_whole_pixels():
    assert Click((10.4, 19.6)).point == (10, 20)
    assert Click([3, 4]).point == (3, 4)


@pytest.mark.parametrize("point", [(1,), (1, 2, 3), None, "12", (1, "2"), (math.nan, 1), (1, math.inf), (True, 1)])
def test_bad_points_are_rejected(point):
    with pytest.raises(ActionError, match="Click.point"):
        Click(point)


@pytest.mark.parametrize("make, field", [
    (lambda: Click((1, 1), button="middle-ish"), "button"),
    (lambda: Click((1, 1), count=0), "count"),
    (lambda: Click((1, 1), count=4), "count"),
    (lambda: Click((1, 1), count=True), "count"),
    (lambda: Click((1, 1), count=2.0), "count"),
    (lambda: LongPress((1, 1), seconds=0.01), "seconds"),
    (lambda: LongPress((1, 1), seconds=MAX_SECONDS + 1), "seconds"),
    (lambda: Wait(-1), "seconds"),
    (lambda: Wait(math.nan), "seconds"),
    (lambda: Wait("1"), "seconds"),
    (lambda: Swipe((1, 1), (2, 2), seconds=0), "seconds"),
    (lambda: TypeText(""), "empty"),
    (lambda: TypeText(5), "string"),  # type: ignore[arg-type]
    (lambda: TypeText("x" * (MAX_TEXT_CHARS + 1)), "at most"),
    (lambda: TypeText("x", submit="yes"), "submit"),  # type: ignore[arg-type]
    (lambda: TypeText("x", point=(1,)), "point"),
    (lambda: Select((1, 1), ""), "option"),
    (lambda: KeyPress(()), "non-empty"),
    (lambda: KeyPress(("ctrl", "shift", "alt", "meta", "a")), "at most 4"),
    (lambda: KeyPress(("hyper",)), "unknown key"),
    (lambda: KeyPress((5,)), "non-empty string"),  # type: ignore[arg-type]
    (lambda: Scroll("sideways"), "direction"),
    (lambda: Scroll("up", amount=0), "amount"),
    (lambda: Scroll("up", amount=51), "amount"),
    (lambda: Scroll("up", amount=1.5), "amount"),  # type: ignore[arg-type]
    (lambda: Navigate(""), "empty"),
    (lambda: End("maybe"), "status"),
    (lambda: End("success", message=None), "message"),  # type: ignore[arg-type]
])
def test_bad_fields_are_rejected_with_the_field_named(make, field):
    with pytest.raises(ActionError, match=field):
        make()


# --- keys ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, canon", [
    ("Enter", "enter"), ("return", "enter"), ("ESC", "escape"), ("Control", "ctrl"), ("cmd", "meta"),
    ("ArrowUp", "up"), ("Page-Up", "pageup"), ("page_down", "pagedown"), ("PgDn", "pagedown"),
    ("Tab ", "tab"), ("F5", "f5"), ("recents", "app_switch"), ("VolumeUp", "volume_up"), ("a", "a"),
    ("A", "A"), ("中", "中"), ("/", "/"),
])
def test_normalize_key(raw, canon):
    assert normalize_key(raw) == canon
    assert normalize_key(raw) in KEY_NAMES or len(normalize_key(raw)) == 1


@pytest.mark.parametrize("raw", ["", "\n", "ctrl+a", "hyper", None, 3])
def test_normalize_key_rejects_with_the_accepted_list(raw):
    with pytest.raises(ActionError, match="key name"):
        normalize_key(raw)  # type: ignore[arg-type]


def test_key_press_accepts_a_single_string_and_folds_aliases():
    assert KeyPress("Return").keys == ("enter",)
    assert KeyPress(["Control", "Shift", "t"]).keys == ("ctrl", "shift", "t")


def test_space_character_folds_to_space_key():
    assert normalize_key(" ") == "space"


# --- action_from_dict errors ---------------------------------------------------------------------------------
@pytest.mark.parametrize("data, match", [
    ([], "JSON object"),
    ({"type": "teleport"}, "unknown action type"),
    ({"point": [1, 2]}, "unknown action type"),
    ({"type": "click", "point": [1, 2], "colour": "red"}, "unknown field"),
    ({"type": "click"}, "click action"),
    ({"type": "click", "point": [1, 2], "count": 9}, "count"),
    ({"type": "navigate", "target": 5}, "string"),
])
def test_action_from_dict_errors(data, match):
    with pytest.raises(ActionError, match=match):
        action_from_dict(data)


def test_action_from_dict_with_unhashable_type_is_an_action_error():
    with pytest.raises(ActionError):
        action_from_dict({"type": ["click"]})


def test_navigate_whitespace_only_is_rejected():
    with pytest.raises(ActionError):
        Navigate("   ")


def test_numpy_integer_points_are_accepted():
    np = pytest.importorskip("numpy")
    assert Click((np.int64(3), np.int32(4))).point == (3, 4)


_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 2000), st.floats(allow_nan=True), st.text(max_size=5),
                   st.lists(st.integers(-5, 2000), max_size=3), st.sampled_from(["down", "enter", "left", "back"]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.fixed_dictionaries(
    {"type": st.sampled_from([*ACTION_TYPES, "nope", ""])},
    optional={k: _VALUES for k in ("point", "text", "keys", "seconds", "target", "direction", "amount", "start",
                                   "end", "option", "count", "button", "submit", "status", "message", "x")},
))
def test_action_from_dict_never_raises_anything_but_action_error(data):
    try:
        action = action_from_dict(data)
    except ActionError:
        return
    assert action_from_dict(action.to_dict()) == action


# --- BaseActuator --------------------------------------------------------------------------------------------
class RecordingActuator(BaseActuator):
    """A 100x50 screen that records what it was asked to do and fails on request."""

    name = "recording"
    supported = frozenset({Click, Swipe, Wait, End})

    def __init__(self, **kw):
        super().__init__(**kw)
        self.done: list = []
        self.fail_with: Exception | None = None

    @property
    def screen_size(self):
        return (100, 50)

    def _perform(self, action):
        if self.fail_with is not None:
            raise self.fail_with
        self.done.append(action)
        return {"n": len(self.done)}


def test_perform_ok_records_timing_and_info():
    act = RecordingActuator()
    out = act.perform(Click((99, 49)))
    assert out.ok and out.error is None and out.flags == () and out.info == {"n": 1}
    assert out.seconds >= 0 and out.started_at > 0
    assert act.done == [Click((99, 49))]


def test_unsupported_action_names_what_is_supported():
    act = RecordingActuator()
    out = act.perform(Hover((1, 1)))
    assert not out.ok and "cannot perform hover" in out.error and "click, end, swipe, wait" in out.error
    assert act.done == []


@pytest.mark.parametrize("action", [Click((100, 10)), Click((-1, 10)), Click((5, 50)), Swipe((1, 1), (1, 99))])
def test_out_of_bounds_refused_by_default(action):
    act = RecordingActuator()
    out = act.perform(action)
    assert not out.ok and out.flags == ("out_of_bounds",) and "100x50" in out.error and "clamp" in out.error
    assert act.done == []


def test_out_of_bounds_clamped_when_asked():
    act = RecordingActuator(out_of_bounds="clamp")
    out = act.perform(Swipe((-5, 10), (500, 500)))
    assert out.ok and out.flags == ("clamped",)
    assert act.done == [Swipe((0, 10), (99, 49))] and out.action == act.done[0]


def test_bad_out_of_bounds_setting():
    with pytest.raises(ValueError, match="refuse"):
        RecordingActuator(out_of_bounds="wrap")


@pytest.mark.parametrize("exc, flags, text", [
    (ActionFailed("no such element"), (), "no such element"),
    (ActuatorError("phone gone"), ("target_error",), "phone gone"),
    (OSError("socket closed"), ("target_error",), "OSError: socket closed"),
])
def test_failures_become_outcomes(exc, flags, text):
    act = RecordingActuator()
    act.fail_with = exc
    out = act.perform(Click((1, 1)))
    assert not out.ok and out.flags == flags and out.error == text


def test_wait_and_end_are_handled_by_the_base():
    act = RecordingActuator()
    out = act.perform(Wait(0.05))
    assert out.ok and out.seconds >= 0.05 and act.done == []
    assert act.perform(End("failure", "stuck")).ok and act.done == []


def test_outcome_round_trip():
    act = RecordingActuator(out_of_bounds="clamp")
    out = act.perform(Click((500, 2)))
    again = Outcome.from_dict(json.loads(json.dumps(out.to_dict())))
    assert again == out


def test_context_manager_closes():
    closed = []

    class Closing(RecordingActuator):
        def close(self):
            closed.append(True)

    with Closing() as act:
        assert isinstance(act, Closing)
    assert closed == [True]


def test_perform_with_a_non_action_is_a_clear_programming_error():
    # A dict is a caller's bug, not a model's or a device's failure: say what to pass instead.
    with pytest.raises(TypeError, match="action_from_dict"):
        RecordingActuator().perform({"type": "click", "point": [1, 1]})  # type: ignore[arg-type]
