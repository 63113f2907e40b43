"""The bundled web site: the state server over real sockets, and every task solved in a real Chromium.

Each task's scripted solution is performed the way the agent acts -- by pixels: a click lands on the centre of
the element's box and must hit that element on screen (not an overlay, not something off-screen), text is
typed on the keyboard, a page below the fold needs a wheel scroll first. The check must be false before and
after every step but the last, true after the last, and false after the task's scripted wrong attempt.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import time
from html.parser import HTMLParser
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from episodes.webapp import SITE_DIR, WEB_TASKS, Step, WebAppServer, WebTask
from episodes.webapp.server import MAX_BODY_BYTES, MAX_STATE_BYTES, StateError

from playwright import sync_api as playwright_sync

VIEWPORT = {"width": 1280, "height": 800}
QUIET_S = 0.12  # a page is settled when no request was in flight and no frame navigated for this long
SETTLE_CAP_S = 8.0


# -- fixtures -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def server():
    with WebAppServer() as srv:
        yield srv


@pytest.fixture(scope="module")
def browser():
    from actuators.chromium import launch_chromium

    with playwright_sync.sync_playwright() as pw:
        b = launch_chromium(pw)
        try:
            yield b
        finally:
            b.close()


class Tab:
    """One browser context with the page the next step acts on; a new tab takes over, as in the actuator."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
        self.context.set_default_timeout(10_000)
        self.inflight: set[Any] = set()
        self.last_activity = time.monotonic()
        self.pages: list[Any] = []
        self.context.on("request", self._start)
        self.context.on("requestfinished", self._end)
        self.context.on("requestfailed", self._end)
        self.context.on("page", self._new_page)
        self.page = self.context.new_page()

    def _touch(self, *_: Any) -> None:
        self.last_activity = time.monotonic()

    def _start(self, request: Any) -> None:
        self.inflight.add(request)
        self._touch()

    def _end(self, request: Any) -> None:
        self.inflight.discard(request)
        self._touch()

    def _new_page(self, page: Any) -> None:
        self.pages.append(page)
        page.on("framenavigated", self._touch)
        self._touch()

    def settle(self) -> None:
        """Wait until a navigation the last action started (if any) is done and every state post is answered."""
        self._touch()  # the quiet period starts after the action, so a request it starts late is still seen
        deadline = time.monotonic() + SETTLE_CAP_S
        while time.monotonic() < deadline:
            if self.pages and self.pages[-1] is not self.page:
                self.page = self.pages[-1]
            quiet = not self.inflight and time.monotonic() - self.last_activity >= QUIET_S
            if quiet:
                try:
                    ready = self.page.evaluate(
                        "document.readyState === 'complete' && !!window.webapp && window.webapp.pending === 0"
                        " && !window.webapp.leaving")
                except Exception:  # the page is between documents
                    ready = False
                if ready:
                    return
            self.page.wait_for_timeout(20)
        raise AssertionError(f"page {self.page.url} did not settle within {SETTLE_CAP_S}s")

    def goto(self, url: str) -> None:
        self.page.goto(url, wait_until="load")
        self.settle()

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tab(browser):
    t = Tab(browser)
    try:
        yield t
    finally:
        t.close()


# -- performing a step by pixels --------------------------------------------------------------------------
def _point_on(page: Any, selector: str, value: str | None) -> tuple[float, float]:
    """The screen point a pixel agent would click for this element; fails if it is off-screen or covered."""
    loc = page.locator(selector)
    loc.wait_for(state="visible")
    box = loc.bounding_box()
    assert box is not None, f"{selector} has no box"
    fx, fy = (0.5, 0.5) if not value else (float(v) for v in value.split(","))
    x, y = box["x"] + fx * box["width"], box["y"] + fy * box["height"]
    assert 0 <= x < VIEWPORT["width"] and 0 <= y < VIEWPORT["height"], (
        f"{selector} at ({x:.0f},{y:.0f}) is outside the {VIEWPORT} viewport: the task needs a scroll first")
    hit = page.evaluate(
        """([x, y, sel]) => {
             const el = document.querySelector(sel), h = document.elementFromPoint(x, y);
             return !!(el && h && (el === h || el.contains(h)));
           }""",
        [x, y, selector],
    )
    assert hit, f"a click at the centre of {selector} lands on another element (covered by an overlay?)"
    return x, y


def _scroll_into_view(page: Any, selector: str, direction: str) -> None:
    dy = 400 if direction == "down" else -400
    page.mouse.move(VIEWPORT["width"] / 2, VIEWPORT["height"] / 2)
    for _ in range(60):
        box = page.locator(selector).bounding_box()
        if box and box["y"] >= 0 and box["y"] + box["height"] <= VIEWPORT["height"]:
            return
        page.mouse.wheel(0, dy)
        page.wait_for_timeout(60)
    raise AssertionError(f"scrolling {direction} never brought {selector} into view")


def perform(tab: Tab, step: Step) -> None:
    page = tab.page
    if step.kind == "click":
        x, y = _point_on(page, step.selector, step.value)
        page.mouse.click(x, y)
    elif step.kind == "type":
        x, y = _point_on(page, step.selector, None)
        page.mouse.click(x, y)
        page.keyboard.type(step.value)
    elif step.kind == "press":
        page.keyboard.press(step.value)
    elif step.kind == "select":
        _point_on(page, step.selector, None)
        page.locator(step.selector).select_option(label=step.value)
    elif step.kind == "scroll":
        _scroll_into_view(page, step.selector, step.value)
    else:  # pragma: no cover - WebTask validates kinds
        raise AssertionError(f"unknown step kind {step.kind}")
    tab.settle()


def start(server: WebAppServer, tab: Tab, task: WebTask) -> str:
    session = server.new_session(task.name.replace("-", "_") + "_")
    tab.goto(server.page_url(task.start_path, session))
    return session


# -- every task, solved and failed in a real browser ----------------------------------------------------------
@pytest.mark.parametrize("name", list(WEB_TASKS))
def test_task_solution_turns_check_true_only_at_the_end(server, tab, name):
    task = WEB_TASKS[name]
    session = start(server, tab, task)
    assert server.state(session).get("visited"), "the start page recorded no visit: is common.js loaded?"
    assert task.check(server.state(session)) is False
    for i, step in enumerate(task.solution):
        perform(tab, step)
        state = server.state(session)
        if i < len(task.solution) - 1:
            assert task.check(state) is False, f"check already true after step {i} {step}: {state}"
    final = server.state(session)
    assert task.check(final) is True, f"check false after the full solution: {final}"
    assert task.is_done(final) is True
    if "new-tab" in task.tags:
        assert len(tab.context.pages) == 2 and tab.page is not tab.context.pages[0]


@pytest.mark.parametrize("name", [n for n, t in WEB_TASKS.items() if t.wrong])
def test_wrong_attempt_leaves_check_false(server, tab, name):
    task = WEB_TASKS[name]
    session = start(server, tab, task)
    for step in task.wrong:
        perform(tab, step)
    state = server.state(session)
    assert task.check(state) is False, f"the wrong attempt passed the check: {state}"
    # The wrong attempt did record something: the page reacted, the check just rejected it.
    assert set(state) - {"visited"}, f"the wrong attempt recorded nothing: {state}"


def test_wrong_password_then_right_one_logs_in(server, tab):
    task = WEB_TASKS["login"]
    session = start(server, tab, task)
    for step in task.wrong:
        perform(tab, step)
    assert server.state(session)["login"] == {"user": "alice", "ok": False, "failures": 1}
    assert tab.page.locator("#login-error").is_visible()
    # The page cleared the password; the username is still typed in, so clear it as a person would.
    tab.page.locator("#username").fill("")
    for step in task.solution:
        perform(tab, step)
    assert task.check(server.state(session)) is True
    assert tab.page.url.split("?")[0].endswith("/account/welcome.html")


def test_scroll_target_starts_below_the_fold(server, tab):
    task = WEB_TASKS["accept-terms"]
    start(server, tab, task)
    box = tab.page.locator("#accept-terms").bounding_box()
    assert box["y"] > VIEWPORT["height"] * 2, "the accept button must be far below the fold"
    with pytest.raises(AssertionError, match="outside"):
        _point_on(tab.page, "#accept-terms", None)


def test_modal_covers_the_page_until_dismissed(server, tab):
    task = WEB_TASKS["dismiss-cookies"]
    start(server, tab, task)
    with pytest.raises(AssertionError, match="another element"):
        _point_on(tab.page, "#story-library", None)


def test_sessions_do_not_see_each_other(server, browser):
    tabs = [Tab(browser), Tab(browser)]
    try:
        task = WEB_TASKS["set-volume"]
        s1, s2 = start(server, tabs[0], task), start(server, tabs[1], task)
        perform(tabs[0], Step("#volume", "click", "0.8,0.5"))
        perform(tabs[1], Step("#volume", "click", "0.2,0.5"))
        assert server.state(s1)["player"]["volume"] == 80
        assert server.state(s2)["player"]["volume"] == 20
    finally:
        for t in tabs:
            t.close()


def test_each_task_page_fits_the_viewport_width(server, tab):
    for path in sorted({t.start_path for t in WEB_TASKS.values()}):
        tab.goto(server.page_url(path, "fit"))
        width = tab.page.evaluate("document.documentElement.scrollWidth")
        assert width <= VIEWPORT["width"], f"{path} is {width}px wide: it scrolls sideways"


# -- the registry as data ---------------------------------------------------------------------------------
def test_registry_covers_the_required_kinds_of_task():
    assert len(WEB_TASKS) >= 15
    tags = {tag for t in WEB_TASKS.values() for tag in t.tags}
    for needed in ("search", "form", "password", "select", "checkbox", "toggle", "multi-page", "new-tab",
                   "scroll", "chinese", "modal", "date", "number", "todo", "tabs", "slider"):
        assert needed in tags, f"no task tagged {needed}"
    for task in WEB_TASKS.values():
        assert (SITE_DIR / task.start_path.lstrip("/")).is_file() or (
            SITE_DIR / task.start_path.lstrip("/") / "index.html").is_file(), task.start_path
        assert task.instruction.strip() and task.steps_needed == len(task.solution) <= task.max_steps
        if task.language == "zh":
            assert re.search(r"[\u4e00-\u9fff]", task.instruction), task.name


def test_webtask_rejects_bad_definitions():
    with pytest.raises(ValueError, match="start_path"):
        WebTask("x", "do x", "relative.html", bool, 3, 1, (Step("#a", "click"),))
    with pytest.raises(ValueError, match="step kind"):
        WebTask("x", "do x", "/a.html", bool, 3, 1, (Step("#a", "tap"),))
    with pytest.raises(ValueError, match="steps_needed"):
        WebTask("x", "do x", "/a.html", bool, 3, 2, (Step("#a", "click"),))


MALFORMED_STATES: list[Any] = [
    {}, {"visited": {"/": True}}, {"cart": [1]}, {"cart": {"aurora-lamp": True}}, {"cart": {"aurora-lamp": "1"}},
    {"login": "ok"}, {"login": {"ok": "true", "user": "alice"}}, {"todo": {"items": "buy milk"}},
    {"todo": {"items": [None, 3, "x"]}}, {"player": {"volume": "80"}}, {"paper": {"opened": ["cogvlm"]}},
    {"search": None}, {"zh_opened": {"id": 5}}, {"booking": {"booked": True, "checkin": 20240614}},
]


@pytest.mark.parametrize("state", MALFORMED_STATES)
def test_checks_are_false_on_malformed_state(state):
    for task in WEB_TASKS.values():
        assert task.check(state) is False, task.name
        assert task.is_done(state) is False


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=10,
)
keys = st.sampled_from(["cart", "login", "todo", "player", "paper", "search", "settings", "booking", "zh_opened",
                        "zh_settings", "shipping", "security", "billing", "terms", "cookies", "docs_feedback"])


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(keys, json_values, max_size=5))
def test_checks_never_raise_on_any_state(state):
    for task in WEB_TASKS.values():
        assert task.check(state) in (True, False)
    assert all(t.is_done(v) is False for t in WEB_TASKS.values() for v in (None, [], "x", 3))


# -- the site as files ------------------------------------------------------------------------------------
class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in ("href", "src", "action") and value:
                self.refs.append(value)


def test_site_uses_no_external_resources_and_every_local_reference_exists():
    pages = sorted(SITE_DIR.rglob("*.html"))
    assert len(pages) >= 15
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert '<meta charset="utf-8">' in text, page
        parser = _Refs()
        parser.feed(text)
        for ref in parser.refs:
            assert not re.match(r"^(https?:)?//", ref), f"{page.name} loads an external resource {ref}"
            if ref.startswith("#"):
                continue
            target = ref.split("?")[0].split("#")[0]
            path = (SITE_DIR / target.lstrip("/")) if target.startswith("/") else (page.parent / target)
            if path.is_dir():
                path = path / "index.html"
            assert path.is_file(), f"{page.relative_to(SITE_DIR)} refers to missing {ref}"
    for asset in [*SITE_DIR.rglob("*.css"), *SITE_DIR.rglob("*.js"), *pages]:
        text = asset.read_text(encoding="utf-8")
        assert not re.search(r"https?://", text, re.I), f"{asset} names an outside address"
        assert "@import" not in text and "fonts.googleapis" not in text, asset
        assert not re.search(r"Math\.random|setInterval|setTimeout|@keyframes", text), f"{asset} is not deterministic"


# -- the server over real sockets ---------------------------------------------------------------------------
def _raw(server: WebAppServer, data: bytes) -> tuple[int, bytes]:
    """Send bytes as they are (no client-side path cleaning) and read the whole answer."""
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(data)
        chunks = []
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    raw = b"".join(chunks)
    status = int(raw.split(b" ", 2)[1])
    return status, raw.split(b"\r\n\r\n", 1)[1]


def _request(server: WebAppServer, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


def _post_json(server: WebAppServer, session: str, obj: Any) -> tuple[int, Any]:
    status, _, body = _request(server, "POST", f"/api/state/{session}", json.dumps(obj).encode(),
                               {"Content-Type": "application/json"})
    return status, json.loads(body)


@pytest.mark.parametrize("path", ["/../pyproject.toml", "/%2e%2e/%2e%2e/pyproject.toml",
                                  "/search/..%2f..%2fserver.py", "/search/..\\..\\server.py",
                                  "/api/state/../../etc"])
def test_path_traversal_is_refused(server, path):
    status, body = _raw(server, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert status == 400
    assert b"'..'" in body and b"[project]" not in body and b"import" not in body


def test_static_files_and_missing_ones(server):
    status, headers, body = _request(server, "GET", "/")
    assert status == 200 and headers["Content-Type"] == "text/html; charset=utf-8" and b"Lumen Apps" in body
    status, _, body = _request(server, "GET", "/search/")
    assert status == 200 and b"ScholarLite" in body
    status, headers, _ = _request(server, "GET", "/common.js?session=abc")
    assert status == 200 and headers["Content-Type"].startswith("text/javascript")
    status, _, body = _request(server, "GET", "/no/such/page.html")
    assert status == 404 and "no page" in json.loads(body)["error"]
    status, _, _ = _request(server, "GET", "/api/nothing/here")
    assert status == 404


def test_state_merge_delete_reset_and_unknown_session(server):
    sid = server.new_session("merge")
    status, _, body = _request(server, "GET", f"/api/state/{sid}")
    assert status == 200 and json.loads(body) == {}
    assert server.state("never-seen") == {}
    assert _post_json(server, sid, {"a": {"b": 1}, "list": [1, 2]}) == (200, {"a": {"b": 1}, "list": [1, 2]})
    assert _post_json(server, sid, {"a": {"c": "中文"}, "list": [3]})[1] == {"a": {"b": 1, "c": "中文"}, "list": [3]}
    assert _post_json(server, sid, {"a": {"b": None}})[1] == {"a": {"c": "中文"}, "list": [3]}
    assert server.state(sid) == {"a": {"c": "中文"}, "list": [3]}
    copy_ = server.state(sid)
    copy_["a"]["c"] = "changed"
    assert server.state(sid)["a"]["c"] == "中文", "state() must hand out a copy"
    status, _, body = _request(server, "POST", f"/api/reset/{sid}")
    assert status == 200 and server.state(sid) == {}
    _post_json(server, sid, {"x": 1})
    server.reset(sid)
    assert server.state(sid) == {}


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b"[1, 2]", b'"text"', b"null",
                                  b'{"a":' * 5000 + b"1" + b"}" * 5000, b'{"a":' * 40 + b"1" + b"}" * 40])
def test_bad_json_is_400_and_changes_nothing(server, body):
    sid = server.new_session("bad")
    _post_json(server, sid, {"keep": True})
    status, _, answer = _request(server, "POST", f"/api/state/{sid}", body)
    assert status == 400 and json.loads(answer)["error"]
    assert server.state(sid) == {"keep": True}


def test_oversize_body_is_413_and_changes_nothing(server):
    sid = server.new_session("big")
    _post_json(server, sid, {"keep": True})
    payload = json.dumps({"blob": "x" * (MAX_BODY_BYTES + 10)}).encode()
    status, _, answer = _request(server, "POST", f"/api/state/{sid}", payload)
    assert status == 413 and "limit" in json.loads(answer)["error"]
    assert server.state(sid) == {"keep": True}


def test_state_size_is_bounded(server):
    sid = server.new_session("grow")
    chunk = "y" * (MAX_BODY_BYTES - 100)
    statuses = [_post_json(server, sid, {f"k{i}": chunk})[0] for i in range(MAX_STATE_BYTES // len(chunk) + 2)]
    assert statuses[0] == 200 and statuses[-1] == 413
    kept = server.state(sid)
    assert len(json.dumps(kept)) <= MAX_STATE_BYTES and len(kept) == statuses.count(200)


def test_missing_length_bad_session_and_methods(server):
    status, body = _raw(server, b"POST /api/state/abc HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n{}")
    assert status == 411 and b"Content-Length" in body
    status, _ = _raw(server, b"POST /api/state/abc HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                             b"Connection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    assert status == 411
    status, _ = _raw(server, b"POST /api/state/abc HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n"
                             b"Connection: close\r\n\r\n")
    assert status == 400
    for bad in ("bad!id", "x" * 65, "%20"):
        status, _, answer = _request(server, "POST", f"/api/state/{bad}", b"{}")
        assert status == 400 and "session" in json.loads(answer)["error"]
        status, _, _ = _request(server, "GET", f"/api/state/{bad}")
        assert status == 400
    status, _, _ = _request(server, "POST", "/index.html", b"{}")
    assert status == 404
    for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
        status, headers, _ = _request(server, method, "/api/state/abc", b"{}")
        assert status == 405 and headers["Allow"] == "GET, POST"
    status, _, _ = _request(server, "HEAD", "/")
    assert status == 405


def test_server_object_api(tmp_path):
    with pytest.raises(FileNotFoundError, match="index.html"):
        WebAppServer(site_dir=tmp_path)
    with WebAppServer() as srv:
        assert srv.url == srv.base_url + "/" and re.fullmatch(r"http://127\.0\.0\.1:\d+", srv.base_url)
        assert srv.page_url("/shop/product.html?id=x", "s1") == srv.base_url + "/shop/product.html?id=x&session=s1"
        assert srv.page_url("todo/index.html#top", "s1") == srv.base_url + "/todo/index.html?session=s1#top"
        assert srv.new_session() != srv.new_session()
        with pytest.raises(StateError, match="session"):
            srv.page_url("/", "bad id")
        with pytest.raises(StateError):
            srv.state("../x")
        port = srv.port
        with pytest.raises(OSError, match="cannot listen"):
            WebAppServer(port=port)
    srv.close()  # closing twice is harmless
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
