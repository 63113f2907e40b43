"""The desktop actuator against a real X server (Xvfb) and a real Tk window that logs every event it receives.

The Tk window fills the screen at +0+0 without decorations, so a screenshot pixel, a pyautogui coordinate and the
window's root coordinates are the same numbers (the measured ratio is 1.0) and assertions compare the logged
``x_root``/``y_root`` with the action's point directly; widget-relative ``x``/``y`` are checked against the
layout the window reports.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from actuators.actions import (
    Click, Drag, End, Hover, KeyPress, LongPress, Navigate, Scroll, Select, Swipe, TypeText, Wait,
)
from actuators.base import ActuatorError
from actuators.desktop import DesktopActuator, probe_display, screenshot_to_logical

try:
    from support.tk_event_logger import TkLogger
    from support.xvfb import Xvfb
except ImportError:  # tests/ is itself a package
    from tests.support.tk_event_logger import TkLogger
    from tests.support.xvfb import Xvfb

W, H = 1024, 768


@pytest.fixture(scope="module")
def xvfb():
    with Xvfb(W, H) as server:
        yield server


@pytest.fixture(scope="module")
def tk(xvfb, tmp_path_factory):
    logger = TkLogger(tmp_path_factory.mktemp("tk") / "events.jsonl", env=xvfb.env())
    with logger:
        yield logger


@pytest.fixture(scope="module")
def act(xvfb, tk):
    actuator = DesktopActuator(failsafe=False, settle_seconds=0.0)
    yield actuator
    actuator.close()


@pytest.fixture(autouse=True)
def quiet_window(request):
    """Start each window test after the window has gone quiet, so no late event of the last test lands in it."""
    if "tk" in request.fixturenames:
        tk = request.getfixturevalue("tk")
        deadline, count, since = time.monotonic() + 3.0, tk.mark(), time.monotonic()
        while time.monotonic() < deadline and time.monotonic() - since < 0.15:
            time.sleep(0.03)
            now = tk.mark()
            if now != count:
                count, since = now, time.monotonic()
    yield


def perform_ok(actuator, action):
    outcome = actuator.perform(action)
    assert outcome.ok, outcome.error
    return outcome


def entry_text(tk) -> str:
    texts = [r["text"] for r in tk.records() if r["type"] == "entry_text"]
    return texts[-1] if texts else ""


def clear_entry(act, tk) -> None:
    perform_ok(act, Click(tk.center("entry")))
    if entry_text(tk):
        mark = tk.mark()
        perform_ok(act, KeyPress(("ctrl", "/")))  # Tk's Entry: select all
        perform_ok(act, KeyPress(("delete",)))
        tk.wait_for(lambda r: r["type"] == "entry_text" and r["text"] == "", after=mark)


def wait_entry(tk, expected: str, mark: int, timeout: float = 5.0) -> None:
    tk.wait_for(lambda r: r["type"] == "entry_text" and r["text"] == expected, after=mark, timeout=timeout)


# --- measurement and geometry ------------------------------------------------------------------------------------
def test_measured_ratio_and_screenshot(act, tk):
    assert act.screen_size == (W, H)
    assert act.logical_size == (W, H)
    assert act.scale == (1.0, 1.0)  # mss and pyautogui agree on Xvfb: measured, not assumed
    img = act.screenshot()
    assert img.mode == "RGB" and img.size == (W, H)
    cx, cy = tk.center("canvas")
    assert img.getpixel((cx, cy)) == (255, 255, 255)  # the Tk canvas's white background is really on screen
    x, y, w, h = tk.layout["widgets"]["ok"]
    assert img.getpixel((x + 5, y + h // 2)) != (255, 255, 255)


def test_screenshot_to_logical_with_ratio_two():
    assert screenshot_to_logical((100, 100), (2.0, 2.0)) == (50, 50)
    assert screenshot_to_logical((101, 101), (2.0, 2.0)) == (50, 50)  # both physical pixels of logical 50
    assert screenshot_to_logical((0, 0), (2.0, 2.0)) == (0, 0)
    assert screenshot_to_logical((2559, 1599), (2.0, 2.0)) == (1279, 799)
    assert screenshot_to_logical((100, 30), (2.0, 1.0)) == (50, 30)  # per axis
    assert screenshot_to_logical((2, 2), (1.5, 1.5)) == (1, 1)  # pixel 2..3 lies in logical 1 (1.5..3.0)
    assert screenshot_to_logical((10, 10), (2.0, 2.0), origin=(1920, 0)) == (965, 5)  # second monitor
    assert screenshot_to_logical((5000, -5), (2.0, 2.0), logical_size=(1280, 800)) == (1279, 0)
    with pytest.raises(ValueError):
        screenshot_to_logical((1, 1), (0.0, 1.0))


def test_actuator_converts_points_by_its_measured_scale(act, tk):
    """Wiring: with a scale of 2 (as measured on a 200% screen) a click lands at half the screenshot point."""
    saved = act.scale, act.logical_size, act._size
    act.scale, act.logical_size, act._size = (2.0, 2.0), (W, H), (2 * W, 2 * H)
    try:
        mark = tk.mark()
        out = perform_ok(act, Click((1400, 700)))
        assert out.info["logical"] == [700, 350]
        press = tk.wait_for(lambda r: r["type"] == "ButtonPress", after=mark)
        assert (press["x_root"], press["y_root"]) == (700, 350)
        tk.wait_for(lambda r: r["type"] == "ButtonRelease", after=mark)
    finally:
        act.scale, act.logical_size, act._size = saved


# --- mouse ---------------------------------------------------------------------------------------------------------
def test_click_lands_at_window_coordinates(act, tk):
    cx, cy, _, _ = tk.layout["widgets"]["canvas"]
    mark = tk.mark()
    perform_ok(act, Click((cx + 123, cy + 201)))
    press = tk.wait_for(lambda r: r["type"] == "ButtonPress", after=mark)
    release = tk.wait_for(lambda r: r["type"] == "ButtonRelease" and r["t"] >= press["t"], after=mark)
    assert press["widget"] == "canvas" and press["num"] == 1
    assert (press["x"], press["y"]) == (123, 201)
    assert (press["x_root"], press["y_root"]) == (cx + 123, cy + 201)
    assert release["num"] == 1 and (release["x"], release["y"]) == (123, 201)


def test_button_click_fires_the_button(act, tk):
    mark = tk.mark()
    perform_ok(act, Click(tk.center("ok")))
    tk.wait_for(lambda r: r["type"] == "button" and r["name"] == "ok", after=mark)


@pytest.mark.parametrize("button,num", [("right", 3), ("middle", 2)])
def test_right_and_middle_click(act, tk, button, num):
    mark = tk.mark()
    perform_ok(act, Click((700, 500), button=button))
    press = tk.wait_for(lambda r: r["type"] == "ButtonPress", after=mark)
    assert press["num"] == num and (press["x_root"], press["y_root"]) == (700, 500)
    tk.wait_for(lambda r: r["type"] == "ButtonRelease" and r["num"] == num, after=mark)


@pytest.mark.parametrize("count,multi", [(2, "DoubleClick"), (3, "TripleClick")])
def test_double_and_triple_click(act, tk, count, multi):
    time.sleep(0.6)  # let Tk's multi-click window from earlier clicks expire
    mark = tk.mark()
    perform_ok(act, Click((650, 450), count=count))
    tk.wait_for(lambda r: r["type"] == multi, after=mark)
    presses = [r for r in tk.since(mark) if r["type"] == "ButtonPress"]
    assert len(presses) == count and all(p["num"] == 1 and (p["x_root"], p["y_root"]) == (650, 450) for p in presses)


def test_hover_moves_without_pressing(act, tk):
    mark = tk.mark()
    perform_ok(act, Hover((800, 222)))
    motion = tk.wait_for(lambda r: r["type"] == "Motion" and (r["x_root"], r["y_root"]) == (800, 222), after=mark)
    assert motion["widget"] == "canvas"
    time.sleep(0.1)
    assert not [r for r in tk.since(mark) if r["type"] in ("ButtonPress", "ButtonRelease")]


def test_drag_presses_moves_and_releases(act, tk):
    mark = tk.mark()
    perform_ok(act, Drag((600, 100), (900, 600)))
    release = tk.wait_for(lambda r: r["type"] == "ButtonRelease", after=mark)
    recs = tk.since(mark)
    press = next(r for r in recs if r["type"] == "ButtonPress")
    assert press["num"] == 1 and (press["x_root"], press["y_root"]) == (600, 100)
    assert (release["x_root"], release["y_root"]) == (900, 600)
    between = recs[recs.index(press):recs.index(release)]
    held = [r for r in between if r["type"] == "Motion" and r["state"] & 0x100]  # Button1Mask: moved while held
    assert len(held) >= 3
    assert (held[-1]["x_root"], held[-1]["y_root"]) == (900, 600)


def test_long_press_holds_the_button(act, tk):
    mark = tk.mark()
    perform_ok(act, LongPress((700, 650), seconds=0.5))
    release = tk.wait_for(lambda r: r["type"] == "ButtonRelease", after=mark)
    press = next(r for r in tk.since(mark) if r["type"] == "ButtonPress")
    assert release["t"] - press["t"] >= 0.45
    assert (press["x_root"], press["y_root"]) == (release["x_root"], release["y_root"]) == (700, 650)


# --- scroll --------------------------------------------------------------------------------------------------------
def test_scroll_down_and_up_at_point(act, tk):
    lx, ly = tk.center("listbox")
    mark = tk.mark()
    perform_ok(act, Scroll("down", 3, point=(lx, ly)))
    view = tk.wait_for(lambda r: r["type"] == "listbox_view" and r["first"] > 0, after=mark)
    wheel = [r for r in tk.since(mark) if r["type"] == "ButtonPress"]
    assert [r["num"] for r in wheel] == [5, 5, 5]  # X11 wheel-down is button 5: amount = wheel clicks
    assert all(r["widget"] == "listbox" and (r["x_root"], r["y_root"]) == (lx, ly) for r in wheel)
    mark = tk.mark()
    perform_ok(act, Scroll("up", 2, point=(lx, ly)))
    tk.wait_for(lambda r: r["type"] == "listbox_view" and r["first"] < view["first"], after=mark)
    assert [r["num"] for r in tk.since(mark) if r["type"] == "ButtonPress"] == [4, 4]


def test_horizontal_scroll(act, tk):
    # pyautogui sends X buttons 7 (right) and 6 (left); Tk 8.6 reports them as Shift + wheel buttons 5 and 4.
    for direction, num in (("right", 5), ("left", 4)):
        mark = tk.mark()
        perform_ok(act, Scroll(direction, 2, point=(760, 300)))
        tk.wait_for(lambda r: r["type"] == "ButtonRelease", after=mark)
        time.sleep(0.05)
        presses = [r for r in tk.since(mark) if r["type"] == "ButtonPress"]
        assert len(presses) == 2
        assert all(r["num"] == num and r["state"] & 1 for r in presses), presses


def test_scroll_without_point_uses_screen_centre(act, tk):
    mark = tk.mark()
    out = perform_ok(act, Scroll("down", 1))
    assert out.info["logical"] == [W // 2, H // 2]
    press = tk.wait_for(lambda r: r["type"] == "ButtonPress", after=mark)
    assert (press["x_root"], press["y_root"]) == (W // 2, H // 2) and press["num"] == 5


# --- keyboard and text ---------------------------------------------------------------------------------------------
def test_type_ascii_into_entry(act, tk):
    clear_entry(act, tk)
    mark = tk.mark()
    text = "Hello, World! 0123 ~`!@#$%^&*()_+-=[]{};':\",./<>?|\\"
    out = perform_ok(act, TypeText(text, point=tk.center("entry")))
    assert out.info["text_input"] == "xdotool"
    wait_entry(tk, text, mark)


def test_type_chinese_into_entry(act, tk):
    clear_entry(act, tk)
    mark = tk.mark()
    out = perform_ok(act, TypeText("你好，世界", point=tk.center("entry")))
    assert out.info["text_input"] == "clipboard"
    wait_entry(tk, "你好，世界", mark)


def spare_keycodes(env) -> set[int]:
    out = subprocess.run(["xmodmap", "-pke"], env=env, capture_output=True, text=True, timeout=10, check=True).stdout
    return {int(line.split()[1]) for line in out.splitlines() if line.split("=", 1)[1].strip() == ""}


def test_type_chinese_with_xdotool(xvfb, tk, act):
    """xdotool mode binds each CJK character to a spare keycode of its own first: no scratch-keycode race."""
    clear_entry(act, tk)
    spare_before = spare_keycodes(xvfb.env())
    text = "搜索 CogVLM 你好，世界！Grüße"
    with DesktopActuator(failsafe=False, settle_seconds=0.0, text_input="xdotool") as xdo:
        mark = tk.mark()
        out = perform_ok(xdo, TypeText(text, point=tk.center("entry")))
        assert out.info["text_input"] == "xdotool"
        wait_entry(tk, text, mark)
        assert len(spare_before - spare_keycodes(xvfb.env())) == len(set("搜索你好，世界！üß"))
    assert spare_keycodes(xvfb.env()) == spare_before  # close() gave the keycodes back


def test_xdotool_text_with_more_characters_than_spare_keycodes(xvfb, tk, act):
    clear_entry(act, tk)
    spare = len(spare_keycodes(xvfb.env()))
    text = "".join(chr(0x4E00 + 37 * i) for i in range(spare + 7))  # more distinct CJK characters than keycodes
    with DesktopActuator(failsafe=False, settle_seconds=0.0, text_input="xdotool", chunk_pause_seconds=0.2) as xdo:
        assert len(xdo._chunks(text)) == 2
        mark = tk.mark()
        perform_ok(xdo, TypeText(text, point=tk.center("entry")))
        wait_entry(tk, text, mark, timeout=15)


def test_untrusted_text_is_typed_literally(xvfb, tk, act):
    """No shell, no option parsing: a leading dash, quotes and shell syntax arrive as typed characters."""
    text = "--help; $(touch /tmp/pwned) `id` 'q' \"d\" && exit"
    for mode in ("xdotool", "clipboard"):
        clear_entry(act, tk)
        with DesktopActuator(failsafe=False, settle_seconds=0.0, text_input=mode) as typer:
            mark = tk.mark()
            perform_ok(typer, TypeText(text, point=tk.center("entry")))
            wait_entry(tk, text, mark)
    assert not os.path.exists("/tmp/pwned")


def test_type_text_submit_presses_enter(act, tk):
    clear_entry(act, tk)
    mark = tk.mark()
    perform_ok(act, TypeText("go", point=tk.center("entry"), submit=True))
    wait_entry(tk, "go", mark)
    ret = tk.wait_for(lambda r: r["type"] == "KeyPress" and r["keysym"] == "Return", after=mark)
    assert ret["widget"] == "entry"
    last_char = max(i for i, r in enumerate(tk.since(mark)) if r["type"] == "entry_text")
    assert tk.since(mark).index(ret) > last_char  # Enter after the text


def test_type_multiline_into_text_widget(act, tk):
    mark = tk.mark()
    perform_ok(act, TypeText("line one\nline two\tend", point=tk.center("text")))
    tk.wait_for(lambda r: r["type"] == "text_text" and r["text"] == "line one\nline two\tend", after=mark)


def test_control_characters_are_refused(act, tk):
    mark = tk.mark()
    out = act.perform(TypeText("a\x1b[2Jb"))
    assert not out.ok and "control character" in out.error
    time.sleep(0.1)
    assert not [r for r in tk.since(mark) if r["type"] == "KeyPress"]


def test_ctrl_a_chord(act, tk):
    clear_entry(act, tk)
    mark = tk.mark()
    perform_ok(act, TypeText("abc", point=tk.center("entry")))
    wait_entry(tk, "abc", mark)
    mark = tk.mark()
    out = perform_ok(act, KeyPress(("ctrl", "A")))  # an upper-case letter in a chord means the key, not shift
    assert out.info["pyautogui_keys"] == ["ctrl", "a"]
    a = tk.wait_for(lambda r: r["type"] == "KeyPress" and r["keysym"] == "a", after=mark)
    assert a["state"] & 4 and not a["state"] & 1  # Control held, Shift not
    keys = [r["keysym"] for r in tk.since(mark) if r["type"] == "KeyPress"]
    assert keys == ["Control_L", "a"]
    # Tk's Entry reads Ctrl+A as "to line start": typing now inserts at the front, so the chord really arrived
    mark = tk.mark()
    perform_ok(act, TypeText("X"))
    wait_entry(tk, "Xabc", mark)


@pytest.mark.parametrize("key,keysym", [
    ("escape", "Escape"), ("tab", "Tab"), ("f5", "F5"), ("meta", "Super_L"), ("pagedown", "Next"),
    ("menu", "Menu"), ("A", "A"), ("/", "slash"),
])
def test_single_keys(act, tk, key, keysym):
    perform_ok(act, Click(tk.center("canvas")))
    mark = tk.mark()
    perform_ok(act, KeyPress((key,)))
    tk.wait_for(lambda r: r["type"] == "KeyPress" and r["keysym"] == keysym, after=mark)
    tk.wait_for(lambda r: r["type"] == "KeyRelease" and r["keycode"] != 50, after=mark)  # not Shift_L's release
    presses = [r["keysym"] for r in tk.since(mark) if r["type"] == "KeyPress"]
    assert presses == (["Shift_L", keysym] if keysym == "A" else [keysym])


def test_three_key_chord(act, tk):
    perform_ok(act, Click(tk.center("canvas")))
    mark = tk.mark()
    perform_ok(act, KeyPress(("ctrl", "shift", "t")))
    tk.wait_for(lambda r: r["type"] == "KeyRelease" and r["keysym"] == "Control_L", after=mark)
    presses = [(r["keysym"], r["state"] & 5) for r in tk.since(mark) if r["type"] == "KeyPress"]
    assert presses[:2] == [("Control_L", 0), ("Shift_L", 4)]
    assert presses[2][0] in ("T", "t") and presses[2][1] == 5


def test_lone_character_outside_the_keymap_is_typed(act, tk):
    clear_entry(act, tk)
    mark = tk.mark()
    out = perform_ok(act, KeyPress(("é",)))
    assert out.info["text_input"] == "clipboard"
    wait_entry(tk, "é", mark)


def test_phone_keys_are_refused_with_a_reason(act):
    for key, words in (("back", "alt+left"), ("app_switch", "alt+tab"), ("power", "power")):
        out = act.perform(KeyPress((key,)))
        assert not out.ok and words in out.error


# --- what the actuator refuses -------------------------------------------------------------------------------------
@pytest.mark.parametrize("action", [Select((10, 10), "x"), Swipe((1, 1), (50, 50)), Navigate("https://example.com")])
def test_unsupported_actions(act, action):
    out = act.perform(action)
    assert not out.ok and f"cannot perform {action.kind}" in out.error and "supports: click" in out.error


def test_wait_and_end(act):
    out = perform_ok(act, Wait(0.05))
    assert out.seconds >= 0.05
    perform_ok(act, End("success", "done"))


def test_out_of_bounds_refused_by_default(act, tk):
    mark = tk.mark()
    out = act.perform(Click((W + 10, 100)))
    assert not out.ok and "outside the 1024x768 screen" in out.error and out.flags == ("out_of_bounds",)
    time.sleep(0.1)
    assert not [r for r in tk.since(mark) if r["type"] == "ButtonPress"]


def test_out_of_bounds_clamped_when_configured(xvfb, tk, act):
    with DesktopActuator(failsafe=False, settle_seconds=0.0, out_of_bounds="clamp") as clamp:
        mark = tk.mark()
        out = clamp.perform(Click((W + 500, 300)))
        assert out.ok and out.flags == ("clamped",) and out.info["logical"] == [W - 1, 300]
        press = tk.wait_for(lambda r: r["type"] == "ButtonPress", after=mark)
        assert (press["x_root"], press["y_root"]) == (W - 1, 300)


def test_failsafe(xvfb, tk, act):
    with DesktopActuator(failsafe=True, settle_seconds=0.0, out_of_bounds="clamp") as safe:
        # The actuator never parks the pointer on a corner itself (that signal belongs to a person) ...
        out = safe.perform(Click((-20, -20)))
        assert out.ok and out.info["failsafe_nudged"] and out.info["logical"] == [1, 1]
        assert safe.perform(Hover((700, 300))).ok
        # ... but a person moving the mouse into a corner stops the next action.
        subprocess.run(["xdotool", "mousemove", "0", "0"], env=xvfb.env(), check=True, timeout=10)
        out = safe.perform(Click((700, 300)))
        assert not out.ok and "fail-safe" in out.error
        subprocess.run(["xdotool", "mousemove", "500", "500"], env=xvfb.env(), check=True, timeout=10)
        assert safe.perform(Click((700, 300))).ok


# --- a missing or dead display ---------------------------------------------------------------------------------
def test_no_display_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    with pytest.raises(ActuatorError, match="DISPLAY is not set.*Xvfb"):
        DesktopActuator()


def test_no_xauthority_is_a_clear_error(xvfb, monkeypatch, tmp_path):
    monkeypatch.setenv("DISPLAY", xvfb.display)
    monkeypatch.delenv("XAUTHORITY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(ActuatorError, match=r"no Xauthority file.*touch ~/\.Xauthority.*XAUTHORITY"):
        DesktopActuator()
    assert not (tmp_path / ".Xauthority").exists()  # nothing created behind the user's back
    missing = tmp_path / "nope" / "cookie"
    monkeypatch.setenv("XAUTHORITY", str(missing))
    with pytest.raises(ActuatorError, match="nope/cookie named by XAUTHORITY does not exist"):
        DesktopActuator()


def test_create_xauthority_when_configured(xvfb, monkeypatch, tmp_path):
    monkeypatch.setenv("DISPLAY", xvfb.display)
    monkeypatch.delenv("XAUTHORITY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    with DesktopActuator(create_xauthority=True, failsafe=False) as made:
        assert (tmp_path / ".Xauthority").is_file()
        assert oct((tmp_path / ".Xauthority").stat().st_mode & 0o777) == "0o600"
        assert made.notes and "created" in made.notes[0]
        assert made.screenshot().size == (W, H)


def test_unreachable_display_is_a_clear_error(xvfb, monkeypatch):
    monkeypatch.setenv("DISPLAY", ":4242")
    with pytest.raises(ActuatorError, match="cannot reach X display :4242"):
        DesktopActuator()
    assert probe_display(xvfb.display) is None


def test_unknown_setting_is_an_error():
    with pytest.raises(ValueError, match="unknown desktop actuator setting.*bogus"):
        DesktopActuator.from_config({"bogus": 1})
    with pytest.raises(ValueError, match="text_input"):
        DesktopActuator.from_config({"text_input": "telepathy"})


@pytest.mark.timeout(120)  # a hang (python-xlib waiting on a dead server) fails here instead of stalling
def test_display_killed_mid_run(act, tk):
    with Xvfb(640, 480) as doomed:
        dying = DesktopActuator(failsafe=False, settle_seconds=0.0)
        assert dying.screenshot().size == (640, 480)
        assert dying.perform(Click((10, 10))).ok
        doomed.kill()
        with pytest.raises(ActuatorError, match=f"X display {doomed.display} went away.*restart the X server"):
            dying.screenshot()
        for action in (Click((10, 10)), TypeText("hello"), TypeText("你好"), KeyPress(("enter",)), Scroll("down", 1),
                       Drag((1, 1), (50, 50))):
            out = dying.perform(action)
            assert not out.ok and "went away" in out.error and "target_error" in out.flags, (action, out.error)
        dying.close()
    # the actuator on the live display takes pyautogui back and goes on working
    mark = tk.mark()
    perform_ok(act, Click((777, 333)))
    press = tk.wait_for(lambda r: r["type"] == "ButtonPress", after=mark)
    assert (press["x_root"], press["y_root"]) == (777, 333)


@pytest.mark.timeout(120)
def test_display_restarted_reconnects_and_remeasures(act, tk):
    with Xvfb(640, 480) as server:
        with DesktopActuator(failsafe=False, settle_seconds=0.0) as again:
            assert again.screenshot().size == (640, 480)
            assert again.perform(Click((10, 10))).ok
            server.restart()
            # the old connection is dead: the action notices without touching it, reconnects, and goes on
            out = again.perform(Hover((600, 400)))
            assert out.ok, out.error
            assert again.screenshot().size == (640, 480)
            server.restart(800, 600)
            # a screenshot reconnects and measures the new screen again
            img = again.screenshot()
            assert img.size == (800, 600) and again.screen_size == (800, 600) and again.scale == (1.0, 1.0)
            assert again.perform(Click((790, 590))).ok
            server.restart(1024, 768)
            # an action meant for the old screen is refused when the screen it would land on changed size
            out = again.perform(Click((100, 100)))
            assert not out.ok and "restarted with a 1024x768 screen" in out.error and "new screenshot" in out.error
            assert again.screenshot().size == (1024, 768)
            assert again.perform(Click((1000, 700))).ok
    mark = tk.mark()
    perform_ok(act, Click((555, 444)))
    press = tk.wait_for(lambda r: r["type"] == "ButtonPress", after=mark)
    assert (press["x_root"], press["y_root"]) == (555, 444)
