"""The browser actuator against a real Chromium and real pages served over HTTP on 127.0.0.1.

The pages (tests/data/pages) record what really happened in ``window.__events``; the server records every request
it gets (path and Host header), so a navigation that was blocked is one the server never saw. Points are derived
from the page's own element rectangles times the device scale factor, independently of vision.geometry.
"""

from __future__ import annotations

import http.server
import os
import signal
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psutil
import pytest
from PIL import Image

from actuators.actions import (
    Click, Drag, End, Hover, KeyPress, LongPress, Navigate, Scroll, Select, Swipe, TypeText, Wait,
)
from actuators.base import ActuatorError, Outcome
from actuators.browser import BrowserActuator, BrowserConfig, check_url, host_allowed
from actuators.base import ActionFailed

PAGES = Path(__file__).parent / "data" / "pages"


class _Handler(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=str(PAGES), **kwargs)

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):  # noqa: N802 - http.server's name
        self.server.requests.append({"path": self.path, "host": self.headers.get("Host", "")})
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if parts.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", query["to"][0])
            self.end_headers()
            return
        if parts.path == "/delay":
            time.sleep(int(query.get("ms", ["100"])[0]) / 1000)
            body = b"loaded"
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.requests = []
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def base_url(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def browser(server):
    act = BrowserActuator(viewport=(1000, 700), start_url=base_url(server) + "/index.html",
                          allowed_domains=["127.0.0.1"])
    yield act
    act.close()


@pytest.fixture
def index(browser, server):
    """The browser on a fresh index page (one tab)."""
    for p in browser.page.context.pages[:-1]:
        p.close()
    out = browser.perform(Navigate(base_url(server) + "/index.html"))
    assert out.ok, out.error
    return browser


def events(act, type_=None):
    evs = act.page.evaluate("window.__events")
    return [e for e in evs if type_ is None or e["type"] == type_]


def center(act, selector: str, dx: float = 0, dy: float = 0) -> tuple[int, int]:
    """The screenshot pixel at the centre of an element (CSS rect * device scale factor)."""
    r = act.page.evaluate(
        "s => { const r = document.querySelector(s).getBoundingClientRect();"
        " return [r.left + r.width / 2, r.top + r.height / 2]; }", selector)
    dpr = act.config.device_scale_factor
    return (int((r[0] + dx) * dpr), int((r[1] + dy) * dpr))


# --- screenshots and scale -----------------------------------------------------------------------------------
def test_screenshot_is_viewport_size_rgb(index):
    img = index.screenshot()
    assert isinstance(img, Image.Image) and img.mode == "RGB"
    assert img.size == (1000, 700) == index.screen_size
    assert (index.scale.sx, index.scale.sy) == (1.0, 1.0)
    # the black 20x20 corner square is really in the bottom-right pixels
    assert img.getpixel((995, 695)) == (0, 0, 0)
    assert img.getpixel((970, 670)) != (0, 0, 0)


def test_device_scale_factor_two_maps_screenshot_pixels_to_css(server):
    with BrowserActuator(viewport=(600, 400), device_scale_factor=2,
                         start_url=base_url(server) + "/index.html") as act:
        img = act.screenshot()
        assert img.size == (1200, 800) == act.screen_size
        assert (act.scale.sx, act.scale.sy) == (2.0, 2.0)
        # Taking screenshots must not undo the emulation: the page still lays out and draws at 2x.
        assert act.page.evaluate("window.devicePixelRatio") == 2
        # #btn spans CSS x 40..200, y 40..90: screenshot pixels 80..400, 80..180
        out = act.perform(Click((390, 170)))
        assert out.ok, out.error
        clicks = events(act, "click")
        assert [c["id"] for c in clicks] == ["btn"]
        # pixel (390, 170) covers CSS [195, 195.5) x [85, 85.5); MouseEvent.clientX/Y are whole CSS pixels
        assert (clicks[0]["x"], clicks[0]["y"]) == (195, 85)
        # pixel 402 is CSS 201.25: just right of the button, not on it
        act.perform(Click((402, 170)))
        assert events(act, "click")[-1]["id"] != "btn"


# --- clicks --------------------------------------------------------------------------------------------------
def test_click_hits_the_element_under_the_point(index):
    out = index.perform(Click(center(index, "#btn")))
    assert out.ok, out.error
    assert out.info["url"].endswith("/index.html") and out.info["settled"] is True
    clicks = events(index, "click")
    assert len(clicks) == 1 and clicks[0]["id"] == "btn" and clicks[0]["button"] == 0


def test_double_and_right_click(index):
    assert index.perform(Click(center(index, "#plain"), count=2)).ok
    assert [e["id"] for e in events(index, "dblclick")] == ["plain"]
    assert index.perform(Click(center(index, "#btn"), button="right")).ok
    menu = events(index, "contextmenu")
    assert len(menu) == 1 and menu[0]["id"] == "btn" and menu[0]["button"] == 2


def test_hover_long_press_and_drag(index):
    assert index.perform(Hover(center(index, "#hoverbox"))).ok
    assert "hoverbox" in [e["id"] for e in events(index, "mouseover")]
    bg = index.page.evaluate("getComputedStyle(document.getElementById('hoverbox')).backgroundColor")
    assert bg == "rgb(255, 153, 0)"
    assert index.perform(LongPress(center(index, "#press"), seconds=0.5)).ok
    held = events(index, "held")
    assert len(held) == 1 and held[0]["ms"] >= 450
    assert index.perform(Drag(center(index, "#drag-src"), center(index, "#drag-dst"))).ok
    assert events(index, "drop") == [{"type": "drop", "on": "drag-dst"}]


def test_click_link_navigates_and_reports_url(index, server):
    out = index.perform(Click(center(index, "#link2")))
    assert out.ok, out.error
    assert out.info["url"] == base_url(server) + "/page2.html"
    assert out.info["navigated_from"].endswith("/index.html")
    assert index.page.evaluate("document.getElementById('title').textContent") == "Page two"
    back = index.perform(Navigate("back"))
    assert back.ok and back.info["url"].endswith("/index.html")


def test_link_to_new_tab_becomes_active_page(index, server):
    pages_before = len(index.page.context.pages)
    out = index.perform(Click(center(index, "#popup")))
    assert out.ok, out.error
    assert out.info["new_page"] == base_url(server) + "/popup.html"
    assert index.url == base_url(server) + "/popup.html"
    assert len(index.page.context.pages) == pages_before + 1
    shot = index.screenshot()  # the screenshot follows the new tab
    assert shot.size == (1000, 700)
    assert index.page.evaluate("document.getElementById('title').textContent") == "A new tab"


# --- allowed domains -----------------------------------------------------------------------------------------
def _secret_requests(server, name):
    return [r for r in server.requests if name in r["path"]]


def test_click_on_link_to_disallowed_domain_is_blocked(index, server):
    out = index.perform(Click(center(index, "#evil")))
    assert not out.ok
    assert "allowed_domains" in out.error and "localhost" in out.error and "blocked" in out.error
    assert index.url.endswith("/index.html")
    assert _secret_requests(server, "/secret.html") == []


def test_new_tab_to_disallowed_domain_is_blocked_and_closed(index, server):
    pages_before = len(index.page.context.pages)
    out = index.perform(Click(center(index, "#evil-popup")))
    assert not out.ok and "allowed_domains" in out.error
    assert _secret_requests(server, "/secret-tab.html") == []
    assert index.url.endswith("/index.html")
    assert len(index.page.context.pages) == pages_before


def test_server_redirect_to_disallowed_domain_is_left_and_reported(index, server):
    out = index.perform(Click(center(index, "#redirect")))
    assert not out.ok and "allowed_domains" in out.error and "secret-redirect" in out.error
    assert host_allowed(index.url, ["127.0.0.1"])


def test_navigate_to_disallowed_domain_is_refused(index, server):
    n = len(server.requests)
    out = index.perform(Navigate(f"http://localhost:{server.server_address[1]}/secret-nav.html"))
    assert not out.ok and "allowed_domains" in out.error
    assert _secret_requests(server, "secret-nav") == [] and len(server.requests) == n


@pytest.mark.parametrize("url", [
    "javascript:alert(1)", "JavaScript:document.title='x'", "java\nscript:alert(1)", "file:///etc/passwd",
    "data:text/html,<h1>x</h1>", "chrome://settings", "about:blank", "ftp://127.0.0.1/x",
])
def test_navigate_refuses_other_schemes(index, url):
    before = index.url
    out = index.perform(Navigate(url))
    assert not out.ok and "refused URL" in out.error and "only http and https" in out.error
    assert index.url == before
    assert index.page.title() == "Actuator test page"


def test_check_url_rules():
    assert check_url("example.com/a", None) == "https://example.com/a"
    assert check_url("localhost:8000/x", ["localhost"]) == "https://localhost:8000/x"
    assert check_url("http://a.example.com/", ["example.com"]) == "http://a.example.com/"
    with pytest.raises(ActionFailed, match="allowed_domains"):
        check_url("http://badexample.com/", ["example.com"])
    with pytest.raises(ActionFailed, match="no host"):
        check_url("http:///path", None)
    with pytest.raises(ActionFailed, match="empty"):
        check_url(" \n ", None)
    assert host_allowed("http://127.0.0.1:5/x", ["127.0.0.1:5"])
    assert not host_allowed("http://127.0.0.1:6/x", ["127.0.0.1:5"])
    assert host_allowed("about:blank", ["x.org"]) and not host_allowed("file:///etc/passwd", ["x.org"])


# --- typing, keys, select ------------------------------------------------------------------------------------
def test_type_chinese_and_ascii_into_point(index):
    out = index.perform(TypeText("CogVLM 搜索 テスト 😀 ok", point=center(index, "#text")))
    assert out.ok, out.error
    assert index.page.input_value("#text") == "CogVLM 搜索 テスト 😀 ok"
    # ASCII went through real key events
    keys = [e["key"] for e in events(index, "keydown") if not e["ctrl"]]
    assert keys[:6] == list("CogVLM")


def test_type_replaces_prefilled_value_and_submit_presses_enter(index, server):
    assert index.perform(TypeText("new", point=center(index, "#prefilled"))).ok
    assert index.page.input_value("#prefilled") == "new"
    out = index.perform(TypeText("猫", point=center(index, "#search"), submit=True))
    assert out.ok, out.error
    assert urlsplit(out.info["url"]).path == "/submitted.html"
    assert parse_qs(urlsplit(out.info["url"]).query) == {"q": ["猫"]}


def test_type_without_point_goes_to_focused_element_and_keeps_newlines(index):
    index.page.focus("#area")
    assert index.perform(TypeText("line1\n第二行")).ok
    assert index.page.input_value("#area") == "line1\n第二行"


def test_key_press_chord_and_named_keys(index):
    index.perform(TypeText("abc", point=center(index, "#text")))
    assert index.perform(KeyPress(("ctrl", "a"))).ok
    assert index.perform(KeyPress(("backspace",))).ok
    assert index.page.input_value("#text") == ""
    chord = [e for e in events(index, "keydown") if e["key"] == "a" and e["ctrl"]]
    assert len(chord) == 1
    assert index.perform(KeyPress(("shift", "tab"))).ok
    assert [e for e in events(index, "keydown") if e["key"] == "Tab"][-1]["shift"] is True
    out = index.perform(KeyPress(("back",)))
    assert not out.ok and "phone key" in out.error


def test_select_by_label(index):
    out = index.perform(Select(center(index, "#fruit"), "Banana"))
    assert out.ok, out.error
    assert index.page.input_value("#fruit") == "b"
    assert out.info["selected"] == "Banana"
    assert [e["value"] for e in events(index, "change")] == ["b"]
    # whitespace and case are forgiven when the match is unique; Chinese labels work
    assert index.perform(Select(center(index, "#fruit"), "cherry pie")).ok
    assert index.page.input_value("#fruit") == "c"
    assert index.perform(Select(center(index, "#fruit"), "苹果")).ok
    assert index.page.input_value("#fruit") == "z"


def test_select_errors_name_the_problem(index):
    out = index.perform(Select(center(index, "#fruit"), "Mango"))
    assert not out.ok and "'Mango' is not in the <select>" in out.error and "'Banana'" in out.error
    out = index.perform(Select(center(index, "#fruit"), "Durian"))
    assert not out.ok and "disabled" in out.error
    out = index.perform(Select(center(index, "#btn"), "Apple"))
    assert not out.ok and "no <select>" in out.error and "<button>" in out.error
    assert index.page.input_value("#fruit") == "a"


def test_element_info_at_sees_password_fields_and_links(index):
    info = index.element_info_at(center(index, "#password"))
    assert info["tag"] == "input" and info["type"] == "password" and info["editable"] is True
    link = index.element_info_at(center(index, "#link2"))
    assert link["tag"] == "a" and link["href"].endswith("/page2.html") and link["text"] == "Page two"
    index.perform(Click(center(index, "#password")))
    assert index.focused_element_info()["type"] == "password"


# --- scroll --------------------------------------------------------------------------------------------------
def test_scroll_window_and_nested_container(index, server):
    assert index.perform(Navigate(base_url(server) + "/scroll.html")).ok
    out = index.perform(Scroll("down", amount=3, point=(100, 100)))
    assert out.ok, out.error
    assert index.page.evaluate("window.scrollY") == 300
    assert index.perform(Scroll("right", amount=2)).ok
    assert index.page.evaluate("window.scrollX") == 200
    assert index.perform(Scroll("up", amount=1)).ok
    assert index.page.evaluate("window.scrollY") == 200
    # over the fixed nested scroller, that one scrolls and the window does not
    assert index.perform(Scroll("down", amount=2, point=(850, 250))).ok
    assert index.page.evaluate("document.getElementById('inner').scrollTop") == 200
    assert index.page.evaluate("window.scrollY") == 200


# --- settling, navigation ------------------------------------------------------------------------------------
def test_click_waits_for_the_fetch_it_started(index, server):
    assert index.perform(Navigate(base_url(server) + "/slow.html")).ok
    out = index.perform(Click(center(index, "#load")))
    assert out.ok and out.info["settled"] is True
    assert index.page.evaluate("document.getElementById('result').textContent") == "loaded"


def test_navigate_home_back_forward_reload_and_unreachable(index, server):
    assert index.perform(Navigate(base_url(server) + "/page2.html")).ok
    home = index.perform(Navigate("home"))
    assert home.ok and home.info["url"] == base_url(server) + "/index.html"
    assert index.perform(Navigate("back")).info["url"] == base_url(server) + "/page2.html"
    assert index.perform(Navigate("forward")).info["url"] == base_url(server) + "/index.html"
    index.page.evaluate("window.__marker = 1")
    assert index.perform(Navigate("reload")).ok
    assert index.page.evaluate("window.__marker") is None
    # a port nobody listens on: an error Outcome, not an exception
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    out = index.perform(Navigate(f"http://127.0.0.1:{port}/"))
    assert not out.ok and "could not open" in out.error


def test_navigate_home_without_start_url_and_back_without_history(server):
    with BrowserActuator(viewport=(400, 300)) as act:
        out = act.perform(Navigate("home"))
        assert not out.ok and "start_url" in out.error
        out = act.perform(Navigate("back"))
        assert not out.ok and "no previous page" in out.error
        out = act.perform(Navigate("forward"))
        assert not out.ok and "no next page" in out.error


# --- bounds, unsupported, wait/end ---------------------------------------------------------------------------
def test_out_of_bounds_refused_by_default(index):
    out = index.perform(Click((1000, 10)))
    assert not out.ok and "out_of_bounds" in out.flags and "1000x700" in out.error
    assert events(index, "click") == []


def test_out_of_bounds_clamped_when_configured(server):
    with BrowserActuator(viewport=(1000, 700), out_of_bounds="clamp",
                         start_url=base_url(server) + "/index.html") as act:
        out = act.perform(Click((5000, 9000)))
        assert out.ok and "clamped" in out.flags and out.action.point == (999, 699)
        clicks = events(act, "click")
        assert len(clicks) == 1 and clicks[0]["id"] == "corner"


def test_unsupported_swipe_wait_and_end(index):
    out = index.perform(Swipe((10, 10), (10, 300)))
    assert not out.ok and "cannot perform swipe" in out.error
    assert index.perform(Wait(0.05)).ok and index.perform(End("success")).ok
    round_trip = Outcome.from_dict(out.to_dict())
    assert round_trip.error == out.error and round_trip.action == out.action


# --- configuration errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, match", [
    ({"viewport": (10, 10)}, "viewport"),
    ({"viewport": "big"}, "viewport"),
    ({"device_scale_factor": 0}, "device_scale_factor"),
    ({"out_of_bounds": "wrap"}, "out_of_bounds"),
    ({"settle_timeout": -1}, "settle_timeout"),
    ({"allowed_domains": []}, "allowed_domains"),
    ({"start_url": "javascript:alert(1)"}, "scheme"),
    ({"start_url": "http://evil.test/", "allowed_domains": ["127.0.0.1"]}, "allowed_domains"),
])
def test_bad_config_is_rejected_before_launch(kwargs, match):
    with pytest.raises(ValueError, match=match):
        BrowserConfig(**kwargs)


def test_unknown_setting_and_missing_executable():
    with pytest.raises(TypeError, match="unknown browser setting"):
        BrowserActuator(viewprot=(800, 600))
    with pytest.raises(ActuatorError, match="no Chromium executable"):
        BrowserActuator(executable_path="/nonexistent/chromium")


def test_persistent_profile_keeps_local_storage(server, tmp_path):
    url = base_url(server) + "/page2.html"
    with BrowserActuator(BrowserConfig(viewport=(400, 300), start_url=url, user_data_dir=str(tmp_path))) as act:
        act.page.evaluate("localStorage.setItem('k', 'kept')")
    with BrowserActuator(BrowserConfig(viewport=(400, 300), start_url=url, user_data_dir=str(tmp_path))) as act:
        assert act.page.evaluate("localStorage.getItem('k')") == "kept"
        assert act.screenshot().size == (400, 300)


# --- a browser that dies -------------------------------------------------------------------------------------
def _chromium_children() -> set[int]:
    me = psutil.Process(os.getpid())
    return {p.pid for p in me.children(recursive=True)
            if "chrom" in p.name().lower() and not any(a.startswith("--type=") for a in _cmdline(p))}


def _cmdline(p: psutil.Process) -> list[str]:
    try:
        return p.cmdline()
    except psutil.Error:
        return []


def test_killed_browser_gives_clear_errors(server):
    before = _chromium_children()
    act = BrowserActuator(viewport=(400, 300), start_url=base_url(server) + "/page2.html")
    try:
        new = _chromium_children() - before
        assert len(new) == 1, new
        pid = new.pop()
        os.kill(pid, signal.SIGKILL)
        psutil.Process(pid).wait(timeout=10) if psutil.pid_exists(pid) else None
        with pytest.raises(ActuatorError, match="no longer running"):
            act.screenshot()
        out = act.perform(Click((10, 10)))
        assert not out.ok and "target_error" in out.flags and "no longer running" in out.error
    finally:
        act.close()
    act.close()  # closing twice is harmless
    with pytest.raises(ActuatorError, match="closed"):
        act.screenshot()


@pytest.mark.parametrize("dpr", [1, 2])
def test_screenshot_matches_playwright_after_scrolling(server, dpr):
    """Our fast CDP capture shows the same pixels as Playwright's own screenshot, scrolled and at HiDPI."""
    import io

    from PIL import ImageChops
    with BrowserActuator(viewport=(500, 300), device_scale_factor=dpr,
                         start_url=base_url(server) + "/index.html") as act:
        assert act.perform(Scroll("down", amount=2, point=(10, 10))).ok
        assert act.page.evaluate("window.scrollY") > 0
        ours = act.screenshot()
        theirs = Image.open(io.BytesIO(act.page.screenshot(timeout=5000))).convert("RGB")
        assert ours.size == theirs.size == (500 * dpr, 300 * dpr)
        assert ImageChops.difference(ours, theirs).getbbox() is None


def test_page_that_never_quiets_costs_the_bound_not_more(server):
    with BrowserActuator(viewport=(400, 300), settle_timeout=0.5,
                         start_url=base_url(server) + "/busy.html") as act:
        out = act.perform(Click(center(act, "#go")))
        assert out.ok and out.info["settled"] is False
        assert act.page.evaluate("window.__clicked") is True


def test_space_and_single_character_keys_type_into_the_focused_field(index):
    assert index.perform(Click(center(index, "#text"))).ok
    for keys in (("a",), ("space",), ("B",), ("shift", "c")):
        assert index.perform(KeyPress(keys)).ok
    assert index.page.input_value("#text") == "a BC"


# --- pages that never yield ----------------------------------------------------------------------------------
@pytest.mark.timeout(120)  # without the watchdog the click below never returns
def test_click_that_hangs_the_page_is_stopped_and_the_tab_reopened(server):
    url = base_url(server) + "/hang.html"
    with BrowserActuator(viewport=(600, 400), start_url=url, hang_timeout=5, settle_timeout=0.5) as act:
        assert act.page.evaluate("localStorage.loads") == "1"
        out = act.perform(Click(center(act, "#hang")))
        assert not out.ok and "target_error" not in out.flags
        assert "stopped responding" in out.error and "click had not finished after 5 s" in out.error
        assert f"opened again at {url}" in out.error
        # a new renderer, same context: the page ran again and its storage survived
        assert act.page.url == url and act.page.evaluate("localStorage.loads") == "2"
        assert act.screenshot().size == (600, 400)
        assert act.perform(Click(center(act, "#count"))).ok
        assert act.page.evaluate("window.clicks") == 1


@pytest.mark.timeout(120)
def test_page_that_spins_while_loading_leaves_the_tab_on_blank(server, caplog):
    url = base_url(server) + "/hang.html"
    with BrowserActuator(viewport=(600, 400), start_url=url, hang_timeout=5, settle_timeout=0.5) as act:
        # The navigation commits and the new page never finishes loading. Whichever call meets the spinning page
        # first -- the click's settling or the screenshot after it -- is freed, and the reload spins again.
        out = act.perform(Click(center(act, "#spin")))
        with caplog.at_level("WARNING", logger="actuators.browser"):
            shot = act.screenshot()
        assert shot.size == (600, 400)
        assert act.page.url == "about:blank"
        reported = (out.error or "") + caplog.text
        assert "stopped responding" in reported and "hung again while loading" in reported
        assert act.perform(Navigate(url)).ok and act.page.evaluate("localStorage.loads") == "4"  # start, spin, reopen, now


def test_inspecting_a_hung_page_is_a_clear_error(server):
    with BrowserActuator(viewport=(600, 400), start_url=base_url(server) + "/hang.html", hang_timeout=5,
                         settle_timeout=0.5) as act:
        act.page.evaluate("setTimeout(() => { while (true) {} }, 0)")
        with pytest.raises(ActuatorError, match="could not inspect the page: the page stopped responding"):
            act.element_info_at((10, 10))


@pytest.mark.parametrize("bad", [0, -1, 601, "60"])
def test_hang_timeout_must_be_a_sensible_number_of_seconds(bad):
    with pytest.raises(ValueError, match="hang_timeout must be a number of seconds"):
        BrowserConfig(hang_timeout=bad)
