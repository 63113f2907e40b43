"""AndroidActuator against the simulated phone, over the real ADB protocol and a real device shell.

The phone's screen is a page in Chromium; every check here reads the page's real state or real pixels after
the actuator's ``input``/``screencap``/``am`` commands went through adb-shell, the ADB daemon and ``/bin/sh``.
"""

from __future__ import annotations

import base64
import re
import shlex
import socket
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actuators.actions import (Click, Drag, End, Hover, KeyPress, LongPress, Navigate, Scroll, Select, Swipe,
                               TypeText, Wait)
from actuators.android import (ANDROID_KEYCODES, AndroidActuator, ScreenGeometry, adbkeyboard_commands,
                               input_text_commands, parse_geometry, parse_screencap_raw)
from actuators.base import ActuatorError
from episodes.phone import PhoneSim, decode_input_text
from episodes.phone.device_shell import DeviceShell

LIGHT_BG = (247, 249, 255)
DARK_BG = (17, 20, 24)


@pytest.fixture(scope="module")
def sim():
    phone = PhoneSim()
    phone.start()
    yield phone
    phone.close()


@pytest.fixture(scope="module")
def act(sim):
    a = AndroidActuator("127.0.0.1", sim.port, settle_s=0, transport_timeout_s=30, read_timeout_s=30)
    yield a
    a.close()


@pytest.fixture(autouse=True)
def fresh(request):
    if "sim" in request.fixturenames:
        phone = request.getfixturevalue("sim")
        phone.reset()
        phone.commands.clear()
    yield


def tool_calls(sim: PhoneSim, name: str = "input") -> list[list[str]]:
    return [c for c in sim.commands if c[0] == name]


def sandbox_files(sim: PhoneSim) -> list[str]:
    return sorted(p.name for p in sim.sandbox_dir.iterdir())


# --- screenshots and geometry ------------------------------------------------------------------------------------
def test_screenshot_is_the_phones_real_pixels(sim, act):
    img = act.screenshot()
    assert img.size == act.screen_size == (1080, 2400) and img.mode == "RGB"
    assert np.array_equal(np.asarray(img), np.asarray(sim.screenshot()))
    g = act.geometry
    assert (g.physical, g.override, g.density, g.rotation, g.scale) == ((1080, 2400), None, 400, 0, (1.0, 1.0))
    assert act.describe()["geometry"]["input_size"] == (1080, 2400)


def test_png_screencap_and_12_byte_header_give_the_same_image(sim, act):
    raw = np.asarray(act.screenshot())
    png = AndroidActuator("127.0.0.1", sim.port, screencap="png", settle_s=0)
    try:
        assert np.array_equal(np.asarray(png.screenshot()), raw)
    finally:
        png.close()
    sim.screencap_header = 12  # Android <= 9: no colorspace word
    try:
        assert np.array_equal(np.asarray(act.screenshot()), raw)
    finally:
        sim.screencap_header = 16


def test_tapping_the_dark_theme_toggle_changes_real_pixels(sim, act):
    assert act.perform(Click(sim.element_center('[data-app="settings"]'))).ok
    assert sim.state()["current_screen"] == "settings"
    assert act.perform(Click(sim.element_center("#set-display"))).ok
    assert sim.state()["current_screen"] == "settings.display"
    probe = (40, 2280)  # page background below the last row
    assert act.screenshot().getpixel(probe) == LIGHT_BG
    out = act.perform(Click(sim.element_center("#row-dark")))
    assert out.ok and out.info["commands"] == ["input tap %d %d" % sim.element_center("#row-dark")]
    assert sim.state()["dark_mode"] is True
    assert act.screenshot().getpixel(probe) == DARK_BG
    assert act.shell("settings get secure ui_night_mode", idempotent=True).strip() == "2"
    act.perform(Click(sim.element_center("#row-dark")))
    assert sim.state()["dark_mode"] is False and act.screenshot().getpixel(probe) == LIGHT_BG


def test_network_toggles(sim, act):
    sim.reset({"current_screen": "settings.network"})
    act.perform(Click(sim.element_center("#row-wifi")))
    assert sim.state()["wifi"] is False
    act.perform(Click(sim.element_center("#row-wifi")))
    act.perform(Click(sim.element_center("#row-airplane")))
    s = sim.state()
    assert s["airplane_mode"] is True and s["wifi"] is False  # airplane mode turns the Wi-Fi radio off
    assert act.shell("settings get global airplane_mode_on", idempotent=True).strip() == "1"
    act.perform(Click(sim.element_center("#row-airplane")))
    s = sim.state()
    assert s["airplane_mode"] is False and s["wifi"] is True


def test_language_list_scroll_and_pick(sim, act):
    sim.reset({"current_screen": "settings.system"})
    act.perform(Click(sim.element_center("#row-languages")))
    assert sim.state()["current_screen"] == "settings.languages"
    act.perform(Click(sim.element_center('[data-lang="es-ES"]')))
    assert sim.state()["language"] == "es-ES"
    assert sim.evaluate("() => document.querySelector('#scr-languages .appbar').textContent.trim()") == "Idiomas"
    assert act.shell("getprop persist.sys.locale", idempotent=True).strip() == "es-ES"
    assert act.perform(Scroll("down", amount=3)).ok  # the last languages are below the fold
    x, y = sim.element_center('[data-lang="ar-EG"]')
    assert y < 2400 - 60
    act.perform(Click((x, y)))
    assert sim.state()["language"] == "ar-EG"


def test_brightness_slider_by_swipe_and_tap(sim, act):
    sim.reset({"current_screen": "settings.display", "brightness": 50})
    left, top, width, height = sim.evaluate(
        "() => { const r = document.querySelector('#brightness').getBoundingClientRect();"
        " return [r.left, r.top, r.width, r.height]; }")
    y = round((top + height / 2) * 2.5)
    thumb = round((left + width * 0.5) * 2.5)
    assert act.perform(Swipe((thumb, y), (round(left * 2.5) + 2, y), 0.4)).ok
    assert sim.state()["brightness"] <= 5
    assert act.perform(Click((round((left + width * 0.9) * 2.5), y))).ok
    assert 80 <= sim.state()["brightness"] <= 100


def test_system_keys_and_navigation(sim, act):
    sim.reset({"current_screen": "settings.display"})
    assert act.perform(KeyPress(("back",))).ok
    assert sim.state()["current_screen"] == "settings"
    assert act.perform(Navigate("home")).ok
    assert sim.state()["current_screen"] == "home"
    sim.reset({"current_screen": "settings.languages"})
    assert act.perform(Navigate("back")).ok
    assert sim.state()["current_screen"] == "settings.system"
    assert act.perform(KeyPress(("app_switch",))).ok
    assert sim.state()["current_screen"] == "recents"
    assert act.perform(KeyPress(("home",))).ok
    assert sim.state()["current_screen"] == "home"
    assert [c[2] for c in tool_calls(sim)] == ["4", "3", "4", "187", "3"]


def test_scroll_convention_and_swipe(sim, act):
    sim.reset({"current_screen": "settings"})
    assert act.perform(Scroll("down", amount=2)).ok  # content moves up: the list scrolls towards its end
    down = sim.state()["scroll_top"]
    assert down > 300
    swipes = tool_calls(sim)
    assert len(swipes) == 2
    x1, y1, x2, y2 = map(int, swipes[0][2:6])
    assert x1 == x2 == 540 and y1 > y2  # the finger moved up
    assert 0.08 * 2400 <= min(y1, y2) and max(y1, y2) <= 0.92 * 2400  # away from the gesture edges
    assert act.perform(Scroll("up", amount=1)).ok
    assert sim.state()["scroll_top"] < down
    assert act.perform(Swipe((540, 600), (540, 1900), 0.3)).ok  # finger down: content back to the top
    assert sim.state()["scroll_top"] == 0


def test_scroll_at_a_point_near_the_edge_keeps_its_length(sim, act):
    sim.reset({"current_screen": "settings"})
    assert act.perform(Scroll("down", amount=1, point=(540, 2390))).ok
    x1, y1, x2, y2 = map(int, tool_calls(sim)[0][2:6])
    assert y1 <= 0.92 * 2400 and y1 - y2 == round(0.3 * 2400)


def test_long_press_opens_the_app_menu_and_a_tap_does_not(sim, act):
    icon = sim.element_center('[data-app="browser"]')
    assert act.perform(LongPress(icon, seconds=0.8)).ok
    s = sim.state()
    assert s["popup"] == "app:browser" and s["current_screen"] == "home"
    assert tool_calls(sim)[-1] == ["input", "swipe", *map(str, icon), *map(str, icon), "800"]
    act.perform(KeyPress(("back",)))
    assert sim.state()["popup"] is None
    act.perform(Click(icon))
    assert sim.state()["current_screen"] == "browser" and sim.state()["popup"] is None


def test_double_click_is_two_taps_and_other_buttons_are_refused(sim, act):
    sim.reset({"current_screen": "calculator"})
    assert act.perform(Click(sim.element_center('[data-calc="7"]'), count=2)).ok
    assert sim.state()["calc_display"] == "77"
    assert len(tool_calls(sim)) == 2
    out = act.perform(Click((100, 100), button="right"))
    assert not out.ok and "long_press" in out.error


def test_unsupported_actions_and_bounds_are_clear_errors(sim, act):
    for action in (Hover((10, 10)), Drag((10, 10), (20, 20)), Select((10, 10), "x")):
        out = act.perform(action)
        assert not out.ok and "cannot perform" in out.error and "supports" in out.error
    out = act.perform(Click((1080, 10)))
    assert not out.ok and "outside the 1080x2400 screen" in out.error
    assert act.perform(Wait(0.01)).ok and act.perform(End()).ok
    assert sim.commands == []


def test_type_into_search_and_submit(sim, act):
    sim.reset({"current_screen": "settings"})
    out = act.perform(TypeText("dark theme", point=sim.element_center("#settings-search"), submit=True))
    assert out.ok, out.error
    assert out.info["commands"][1:] == ["input text dark%stheme", "input keyevent 66"]
    s = sim.state()
    assert s["search_query"] == "dark theme" and s["current_screen"] == "settings.display"


def test_key_chord_uses_keycombination(sim, act):
    sim.reset({"current_screen": "notes", "note_text": "hello"})
    act.perform(Click(sim.element_center("#note")))
    out = act.perform(KeyPress(("ctrl", "a")))
    assert out.ok and out.info["commands"] == ["input keycombination 113 29"]
    act.perform(TypeText("bye"))
    assert sim.state()["note_text"] == "bye"
    out = act.perform(KeyPress(("ctrl", "é")))
    assert not out.ok and "no key code" in out.error


def test_every_vocabulary_key_has_an_android_code():
    from actuators.actions import KEY_NAMES

    assert KEY_NAMES <= set(ANDROID_KEYCODES)
    assert (ANDROID_KEYCODES["home"], ANDROID_KEYCODES["back"], ANDROID_KEYCODES["enter"],
            ANDROID_KEYCODES["delete"], ANDROID_KEYCODES["app_switch"]) == (3, 4, 66, 67, 187)


# --- text: typed literally, never run ---------------------------------------------------------------------------
INJECTION = [
    "hello world", "it's", 'say "hi"', "$HOME", "${PATH:-x}", "`touch pwned`", "$(touch pwned)",
    "; touch pwned", "a && touch pwned", "a || touch pwned", "a | touch pwned", "a & touch pwned &",
    "first\ntouch pwned\nthird", "100%s sure", "%s", "%%s%", "50% off", "%", "s%s%ss",
    "back\\slash \\n \\", "a'b\"c'd", "'; touch pwned; echo '", "\"; touch pwned; echo \"",
    "* ? [a-z] ~ ~root", "#not a comment", "(subshell) {brace}", "<in >out 2>&1", "  two  spaces  ",
    "-n", "!history", "exit", "\\'", "$((1+1))", "x\r\ny",
]


@pytest.mark.parametrize("text", INJECTION)
def test_text_is_typed_literally_and_never_executed(sim, act, text):
    sim.reset({"current_screen": "notes"})
    out = act.perform(TypeText(text, point=sim.element_center("#note")))
    assert out.ok, out.error
    assert sim.state()["note_text"] == text.replace("\r\n", "\n")
    assert sandbox_files(sim) == []  # no injected `touch pwned` (or `> out`) ran
    assert {c[0] for c in sim.commands} == {"input"}
    typed = "".join(decode_input_text(c[2]) if c[1] == "text" else "\n" for c in tool_calls(sim)[1:])
    assert typed == text.replace("\r\n", "\n")


def test_tab_is_sent_as_the_tab_key(sim, act):
    sim.reset({"current_screen": "notes"})
    out = act.perform(TypeText("a\tb", point=sim.element_center("#note")))
    assert out.ok and out.info["commands"][1:] == ["input text a", "input keyevent 61", "input text b"]


def test_non_ascii_text_is_a_clear_error_and_nothing_is_sent(sim, act):
    sim.reset({"current_screen": "notes"})
    out = act.perform(TypeText("café 中文", point=sim.element_center("#note")))
    assert not out.ok and "printable ASCII" in out.error and "'中'" in out.error and "adbkeyboard" in out.error
    assert sim.commands == []  # refused before even the focusing tap


def test_long_text_is_split_across_calls(sim, act):
    sim.reset({"current_screen": "notes"})
    text = ("lorem ipsum %s dolor; " * 25).strip()  # 524 characters: more than one 400-character call
    out = act.perform(TypeText(text, point=sim.element_center("#note")))
    assert out.ok
    assert len(tool_calls(sim)) > 3
    assert sim.state()["note_text"] == text


def test_adbkeyboard_types_unicode(sim):
    sim.adbkeyboard_installed = True
    try:
        ime = AndroidActuator("127.0.0.1", sim.port, unicode_ime="adbkeyboard", settle_s=0)
        try:
            sim.reset({"current_screen": "notes"})
            sim.ime = "com.android.adbkeyboard/.AdbIME"  # reset() restored the default keyboard
            text = "你好, wörld ✓ $(touch pwned) 'q' 100%s\nline two"
            out = ime.perform(TypeText(text, point=sim.element_center("#note")))
            assert out.ok, out.error
            assert sim.state()["note_text"] == text
            assert sandbox_files(sim) == []
            assert out.info["commands"][1].startswith("am broadcast -a ADB_INPUT_B64 --es msg ")
        finally:
            ime.close()
    finally:
        sim.adbkeyboard_installed = False
        sim.reset()
    with pytest.raises(ActuatorError, match="install ADBKeyBoard"):
        AndroidActuator("127.0.0.1", sim.port, unicode_ime="adbkeyboard", settle_s=0)


ascii_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126) | st.just("\n"), max_size=60)


@given(ascii_text)
@settings(max_examples=400)
def test_escaping_round_trips_through_shell_parsing(text):
    typed = ""
    for cmd in input_text_commands(text, max_chars=7):
        argv = shlex.split(cmd)
        assert argv[0] == "input" and len(argv) == 3, cmd
        typed += decode_input_text(argv[2]) if argv[1] == "text" else {"66": "\n", "61": "\t"}[argv[2]]
    assert typed == text


@given(ascii_text.filter(lambda t: t.strip()))
@settings(max_examples=30, deadline=None)
def test_escaping_round_trips_through_the_real_device_shell(text):
    seen: list[list[str]] = []

    def handler(argv, cwd):
        seen.append(argv)
        return 0, b"", b""

    with DeviceShell(handler, timeout_s=20) as sh:
        for cmd in input_text_commands(text):
            rc, out = sh.run(cmd)
            assert rc == 0 and out == b"", (cmd, out)
        assert not any(sh.home.iterdir())
    typed = "".join(decode_input_text(a[2]) if a[1] == "text" else "\n" for a in seen)
    assert typed == text


def test_adbkeyboard_commands_chunk_and_round_trip():
    text = "中文 " * 1000
    cmds = adbkeyboard_commands(text)
    assert len(cmds) > 1 and all(len(c) < 3000 for c in cmds)
    decoded = "".join(base64.b64decode(shlex.split(c)[-1]).decode() for c in cmds)
    assert decoded == text


# --- navigation to URLs ----------------------------------------------------------------------------------------
def test_navigate_url_is_passed_literally(sim, act):
    url = "https://example.com/search?q=$(touch pwned)&x=`id`;y='1' #frag"
    out = act.perform(Navigate(url.replace(" ", "%20")))
    assert out.ok, out.error
    s = sim.state()
    assert s["current_screen"] == "browser" and s["browser_url"] == url.replace(" ", "%20")
    assert sandbox_files(sim) == []
    out = act.perform(Navigate("example.org/page"))
    assert out.ok and sim.state()["browser_url"] == "https://example.org/page"
    out = act.perform(Navigate("not a url"))
    assert not out.ok and "neither home, back nor a URL" in out.error


# --- geometry: override size and rotation -------------------------------------------------------------------------
def test_wm_size_override_is_measured_and_taps_still_land(sim, act):
    try:
        act.shell("wm size 540x1200")
        g = act.refresh_geometry()
        assert g.override == (540, 1200) and g.input_size == (540, 1200) and g.scale == (0.5, 0.5)
        icon = sim.element_center('[data-app="settings"]')  # screenshot pixels
        out = act.perform(Click(icon))
        assert out.ok and out.info["commands"] == [f"input tap {round(icon[0] / 2)} {round(icon[1] / 2)}"]
        assert sim.state()["current_screen"] == "settings"
    finally:
        act.shell("wm size reset")
        act.refresh_geometry()


def test_rotation_is_followed(sim, act):
    try:
        act.shell("settings put system user_rotation 1")
        img = act.screenshot()
        assert img.size == (2400, 1080) == act.screen_size
        g = act.geometry
        assert g.rotation == 1 and g.input_size == (2400, 1080)
        act.perform(Click(sim.element_center('[data-app="notes"]')))
        assert sim.state()["current_screen"] == "notes"
    finally:
        sim.reset()
        assert act.screenshot().size == (1080, 2400)
        assert act.geometry.rotation == 0


def test_parse_geometry_variants():
    text = "Physical size: 1080x2400\nOverride size: 720x1600\nPhysical density: 420\nOverride density: 320\n"
    g = parse_geometry((1080, 2400), text + "      SurfaceOrientation: 0\n")
    assert g.input_size == (720, 1600) and g.scale == (720 / 1080, 1600 / 2400) and g.override_density == 320
    assert g.to_input((1079, 2399)) == (719, 1599)
    g = parse_geometry((2400, 1080), text + "Viewport INTERNAL: displayId=0, orientation=ROTATION_90, x\n")
    assert g.rotation == 1 and g.input_size == (1600, 720)
    g = parse_geometry((2400, 1080), "Physical size: 1080x2400\n", rotation_fallback="1\n")
    assert g.rotation == 1 and g.input_size == (2400, 1080)
    g = parse_geometry((2400, 1080), "Physical size: 1080x2400\n")  # no rotation found: trust the picture
    assert g.input_size == (2400, 1080)
    g = parse_geometry((800, 600), "wm: not found\n")
    assert g.input_size == (800, 600) and g.physical is None
    assert isinstance(g, ScreenGeometry)


def test_parse_screencap_raw_formats():
    w, h = 3, 2
    rgba = np.arange(w * h * 4, dtype=np.uint8).reshape(h, w, 4)
    for header in (struct.pack("<III", w, h, 1), struct.pack("<IIII", w, h, 1, 1)):
        img = parse_screencap_raw(header + rgba.tobytes())
        assert np.array_equal(np.asarray(img), rgba[..., :3])
    bgra = rgba[..., [2, 1, 0, 3]]
    assert np.array_equal(np.asarray(parse_screencap_raw(struct.pack("<IIII", w, h, 5, 1) + bgra.tobytes())),
                          rgba[..., :3])
    rgb = rgba[..., :3]
    assert np.array_equal(np.asarray(parse_screencap_raw(struct.pack("<III", w, h, 3) + rgb.tobytes())), rgb)
    px565 = np.array([[0xF800, 0x07E0, 0x001F], [0xFFFF, 0x0000, 0x8410]], dtype="<u2")
    img = np.asarray(parse_screencap_raw(struct.pack("<III", w, h, 4) + px565.tobytes()))
    assert img[0, 0].tolist() == [255, 0, 0] and img[0, 1].tolist() == [0, 255, 0]
    assert img[0, 2].tolist() == [0, 0, 255] and img[1, 0].tolist() == [255, 255, 255]
    warning = b"[Warning] Multiple displays were found, but no display id was specified!\n"
    img = parse_screencap_raw(warning + struct.pack("<IIII", w, h, 1, 1) + rgba.tobytes())
    assert np.array_equal(np.asarray(img), rgba[..., :3])
    from actuators.base import ActionFailed

    with pytest.raises(ActionFailed, match="expected"):
        parse_screencap_raw(struct.pack("<III", w, h, 1) + rgba.tobytes()[:-5])
    with pytest.raises(ActionFailed, match="image header"):
        parse_screencap_raw(b"/system/bin/sh: screencap: not found\n")


# --- dropped connections ----------------------------------------------------------------------------------------
def test_dropped_connection_is_reconnected_and_the_action_done_once(sim, act):
    before = act.reconnects
    assert sim.drop_connections() >= 1
    out = act.perform(Click(sim.element_center('[data-app="settings"]')))
    assert out.ok, out.error
    assert act.reconnects == before + 1
    assert sim.state()["current_screen"] == "settings" and len(tool_calls(sim)) == 1


def test_drop_before_the_command_started_is_retried(sim, act):
    sim.server.inject_fault("shell:input tap", when="before")
    out = act.perform(Click(sim.element_center('[data-app="notes"]')))
    assert out.ok, out.error
    assert sim.state()["current_screen"] == "notes" and len(tool_calls(sim)) == 1


def test_drop_mid_action_is_reported_not_repeated(sim, act):
    sim.server.inject_fault("shell:input tap", when="after")
    out = act.perform(Click(sim.element_center('[data-app="clock"]')))
    assert not out.ok and "dropped while" in out.error and "did not repeat" in out.error
    assert sim.state()["current_screen"] == "clock" and len(tool_calls(sim)) == 1  # it ran, exactly once
    assert act.perform(KeyPress(("home",))).ok  # the reconnected link works
    assert sim.state()["current_screen"] == "home"


def test_phone_gone_is_a_clear_error_then_recovers(sim, act):
    sim.stop_server()
    try:
        out = act.perform(Click(sim.element_center('[data-app="settings"]')))
        assert not out.ok and "target_error" in out.flags
        assert "reconnecting once failed" in out.error and sim.address in out.error
        with pytest.raises(ActuatorError, match="connection refused"):
            act.screenshot()
    finally:
        sim.start_server()
    assert act.screenshot().size == (1080, 2400)
    assert act.perform(Click(sim.element_center('[data-app="settings"]'))).ok
    assert sim.state()["current_screen"] == "settings"


def test_nothing_listening_is_a_clear_error():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ActuatorError, match="connection refused"):
        AndroidActuator("127.0.0.1", port, connect_timeout_s=2)


# --- authentication ---------------------------------------------------------------------------------------------
def test_auth_with_a_generated_key(sim, tmp_path):
    key = tmp_path / "config" / "adbkey"
    try:
        sim.set_auth("refuse")
        with pytest.raises(ActuatorError, match="requires authorization and no key"):
            AndroidActuator("127.0.0.1", sim.port, connect_timeout_s=3)
        with pytest.raises(ActuatorError, match="tap Allow"):
            AndroidActuator("127.0.0.1", sim.port, key_path=key, generate_key=True, auth_timeout_s=1,
                            connect_timeout_s=3)
        assert key.exists() and Path(str(key) + ".pub").exists()
        sim.set_auth([Path(str(key) + ".pub").read_text()])
        a = AndroidActuator("127.0.0.1", sim.port, key_path=key, settle_s=0)
        try:
            assert a.screenshot().size == (1080, 2400)
        finally:
            a.close()
    finally:
        sim.set_auth(None)


def test_config_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="unknown android actuator setting"):
        AndroidActuator.from_config({"host": "127.0.0.1", "prot": 5555})
    with pytest.raises(ActuatorError, match="no ADB key"):
        AndroidActuator("127.0.0.1", 1, key_path=tmp_path / "missing")
    with pytest.raises(ValueError, match="screencap"):
        AndroidActuator("127.0.0.1", 1, screencap="jpeg")  # type: ignore[arg-type]
    with pytest.raises(ActuatorError, match="USB needs the optional extra|no Android device found over USB"):
        AndroidActuator(transport="usb")


def test_sim_reset_and_settings_round_trip(sim, act):
    s = sim.reset({"dark_mode": True, "brightness": 20, "wifi": False, "language": "zh-CN",
                   "current_screen": "settings.display"})
    assert (s["dark_mode"], s["brightness"], s["wifi"], s["language"], s["current_screen"]) == (
        True, 20, False, "zh-CN", "settings.display")
    assert act.shell("settings get system screen_brightness", idempotent=True).strip() == str(round(20 * 255 / 100))
    assert act.shell("getprop persist.sys.locale", idempotent=True).strip() == "zh-CN"
    act.shell("settings put global airplane_mode_on 1; cmd uimode night no")
    s = sim.state()
    assert s["airplane_mode"] is True and s["dark_mode"] is False
    assert re.search(r"mCurrentFocus=.*com\.android\.settings", act.shell("dumpsys window", idempotent=True))
    with pytest.raises(ValueError, match="unknown state key"):
        sim.reset({"dark_mod": True})
    for screen in sim.screens():  # every screen can be reset to, and reports itself
        assert sim.reset({"current_screen": screen})["current_screen"] == screen
    assert ("zh-CN", "中文 (简体)") in sim.languages()
