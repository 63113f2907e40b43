"""The browser actuator: Playwright's sync API driving Debian's Chromium.

Coordinates: actions carry screenshot pixels. The screenshot is ``viewport * device_scale_factor`` pixels; the
ratio to CSS pixels is *measured* once at start (size of a real screenshot / the viewport Playwright reports) in
a ``vision.geometry.ScreenScale``, and a point goes to the centre of the CSS area that the pixel covers.

Settling: after every action the page is given until ``settle_timeout`` (2 s by default) to become quiet: no
requests in flight (counted from Playwright's request events) and no DOM mutation or scroll event for
``settle_quiet_ms``. A page that never quiets (an animation, a long poll) costs the bound, never more; there is no
fixed sleep.

Screenshots: CDP ``Page.captureScreenshot`` with ``optimizeForSpeed`` (PNG, lossless). Headless Chromium captures at
CSS size unless the capture is clipped with a ``scale``, so at a device scale factor other than 1 the clip follows
the visual viewport (one extra CDP call). Playwright's ``page.screenshot`` is the fallback.

New tabs: a tab opened by the action (a ``target=_blank`` link, ``window.open``, a ctrl-click) becomes the active
page and ``Outcome.info["new_page"]`` names its URL; an init script counts such requests so that settling waits
for the tab's page event only when one is coming.

TypeText with a point clicks it first and, when the focused element is editable, selects its content so that
the text replaces it (``clear_before_type``); printable ASCII is sent as key events, anything else (Chinese,
emoji, newlines) inserted as text, as an IME does.

Navigate: a URL (no scheme means https), ``back``, ``forward``, ``reload`` or ``home`` (the ``start_url``).

Safety: ``Navigate`` only accepts http and https (``javascript:``, ``file:``, ``data:``, ``chrome:``, ``about:``
are refused). With ``allowed_domains`` every navigation request (any frame, any tab) to another host is aborted
by a context route, and a page that ends up elsewhere anyway (a server redirect, which routes do not see) is sent
back; the action's Outcome is an error that names the blocked URL.

Scroll: one step is one mouse-wheel notch of ``SCROLL_STEP_PX`` (100) CSS pixels, at the action's point (the
centre of the viewport when none), so nested scroll containers under the point scroll as a user's would.

Timeouts: every Playwright call that takes a ``timeout`` gets one. ``page.evaluate``, ``CDPSession.send`` and
mouse or keyboard input take none in Playwright: they return or fail as soon as the browser answers or dies (the
pipe closes), which is what the crash test checks, but a page script that never yields blocks them for good. So
every action, screenshot and page inspection runs under ``actuators.hang_watchdog``: after ``hang_timeout``
seconds (60 by default) the tab's renderer process is stopped, the blocked call fails at once, and the tab is
opened again at the same URL in the same browser context (cookies and storage kept). The action's Outcome says
so; a tab that hangs again while loading is left on ``about:blank``.
"""

from __future__ import annotations

import base64
import io
import logging
import os
import re
import threading
import time
from dataclasses import dataclass, fields
from typing import Any, Callable, Sequence, TypeVar
from urllib.parse import urlsplit

from PIL import Image

from vision.geometry import ScreenScale

from .actions import (
    Action, Click, Drag, End, Hover, KeyPress, LongPress, Navigate, Scroll, Select, TypeText, Wait,
)
from .base import ActionFailed, ActuatorError, BaseActuator, OutOfBounds
from .chromium import CHROMIUM_ARGS, find_chromium, launch_chromium
from .hang_watchdog import HangWatchdog, new_marker

logger = logging.getLogger(__name__)
T = TypeVar("T")


class TabHung(ActionFailed):
    """A call into the page did not return within ``hang_timeout``; the tab was stopped and opened again."""

SCROLL_STEP_PX = 100
"""CSS pixels per scroll step (one wheel notch in Chromium on Linux is 100 px)."""

ALLOWED_SCHEMES = ("http", "https")

KEY_MAP: dict[str, str] = {
    "enter": "Enter", "tab": "Tab", "escape": "Escape", "backspace": "Backspace", "delete": "Delete",
    "space": "Space", "insert": "Insert", "up": "ArrowUp", "down": "ArrowDown", "left": "ArrowLeft",
    "right": "ArrowRight", "home": "Home", "end": "End", "pageup": "PageUp", "pagedown": "PageDown",
    "ctrl": "Control", "alt": "Alt", "shift": "Shift", "meta": "Meta", "capslock": "CapsLock",
    "printscreen": "PrintScreen", **{f"f{i}": f"F{i}" for i in range(1, 13)},
}
"""Canonical key names of ``actions.KEY_NAMES`` -> Playwright key names. Phone keys have no browser key."""

PHONE_KEYS = frozenset({"back", "menu", "app_switch", "volume_up", "volume_down", "power", "search"})

_QUIET_JS = """
async ({quietMs, timeoutMs}) => {
  const start = performance.now();
  let last = start;
  const bump = () => { last = performance.now(); };
  const obs = new MutationObserver(bump);
  obs.observe(document, {subtree: true, childList: true, attributes: true, characterData: true});
  window.addEventListener('scroll', bump, {capture: true, passive: true});
  const popups = () => { const n = window.__cogagentPopups || 0; window.__cogagentPopups = 0; return n; };
  try {
    while (true) {
      const now = performance.now();
      if (now - last >= quietMs) return [true, popups()];
      if (now - start >= timeoutMs) return [false, popups()];
      await new Promise(r => setTimeout(r, Math.min(quietMs, 25)));
    }
  } finally {
    obs.disconnect();
    window.removeEventListener('scroll', bump, {capture: true});
  }
}
"""

_INIT_JS = """
(() => {
  // Count requests for a new tab, so that settling knows to wait for the tab's page event.
  const mark = () => { window.__cogagentPopups = (window.__cogagentPopups || 0) + 1; };
  const open = window.open;
  window.open = function (...args) { mark(); return open.apply(this, args); };
  const opensTab = (e) => {
    const a = e.target && e.target.closest ? e.target.closest('a[href], area[href]') : null;
    if (!a) return false;
    const t = (a.getAttribute('target') || '').toLowerCase();
    return (t && !['_self', '_top', '_parent'].includes(t)) || e.ctrlKey || e.metaKey || e.shiftKey || e.button === 1;
  };
  document.addEventListener('click', e => { if (opensTab(e)) mark(); }, true);
  document.addEventListener('auxclick', e => { if (opensTab(e)) mark(); }, true);
  document.addEventListener('submit', e => { const t = (e.target.getAttribute('target') || '').toLowerCase();
    if (t && !['_self', '_top', '_parent'].includes(t)) mark(); }, true);
})();
"""

_ELEMENT_INFO_JS = """
([x, y, focused]) => {
  let el = focused ? document.activeElement : document.elementFromPoint(x, y);
  if (!el) return null;
  while (el.shadowRoot && el.shadowRoot.activeElement && focused) el = el.shadowRoot.activeElement;
  const link = el.closest ? el.closest('a[href]') : null;
  const text = (el.innerText || el.value || el.getAttribute('aria-label') || el.getAttribute('alt') || '')
    .toString().trim().replace(/\\s+/g, ' ').slice(0, 200);
  const r = el.getBoundingClientRect();
  return {
    tag: el.tagName.toLowerCase(),
    type: (el.getAttribute('type') || '').toLowerCase() || null,
    role: el.getAttribute('role'),
    id: el.id || null,
    name: el.getAttribute('name'),
    text: text,
    href: link ? link.href : null,
    editable: !!(el.isContentEditable || ['input', 'textarea'].includes(el.tagName.toLowerCase())),
    autocomplete: el.getAttribute('autocomplete'),
    rect: [r.left, r.top, r.width, r.height],
  };
}
"""

_SELECT_AT_JS = """
([x, y]) => {
  const el = document.elementFromPoint(x, y);
  if (!el) return {found: null};
  const sel = el.closest('select') || (el.tagName === 'LABEL' && el.control && el.control.tagName === 'SELECT'
                                        ? el.control : null);
  if (!sel) return {found: el.tagName.toLowerCase()};
  window.__cogagentSelect = sel;
  return {found: 'select', disabled: sel.disabled,
          options: Array.from(sel.options).map(o => ({label: o.label, value: o.value, disabled: o.disabled}))};
}
"""

_IS_EDITABLE_JS = """
() => { const el = document.activeElement;
  return !!el && (el.isContentEditable || el.tagName === 'TEXTAREA' ||
                  (el.tagName === 'INPUT' && !['button','submit','checkbox','radio','file','image','reset','range',
                                                'color'].includes((el.type || '').toLowerCase()))); }
"""


@dataclass
class BrowserConfig:
    """Settings of one browser actuator; every field has a working default."""

    viewport: tuple[int, int] = (1280, 800)
    device_scale_factor: float = 1.0
    start_url: str | None = None
    user_data_dir: str | None = None
    allowed_domains: tuple[str, ...] | None = None
    headless: bool = True
    executable_path: str | None = None
    settle_timeout: float = 2.0
    settle_quiet_ms: int = 50
    action_timeout: float = 5.0
    navigation_timeout: float = 15.0
    hang_timeout: float = 60.0
    out_of_bounds: OutOfBounds = "refuse"
    clear_before_type: bool = True
    locale: str | None = None
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        try:
            w, h = self.viewport
        except (TypeError, ValueError):
            raise ValueError(f"viewport must be (width, height) in CSS pixels, got {self.viewport!r}") from None
        if not all(isinstance(v, int) and not isinstance(v, bool) and 100 <= v <= 10_000 for v in (w, h)):
            raise ValueError(f"viewport must be two whole numbers from 100 to 10000, got {self.viewport!r}")
        self.viewport = (w, h)
        if not isinstance(self.device_scale_factor, (int, float)) or not 0.25 <= self.device_scale_factor <= 5:
            raise ValueError(f"device_scale_factor must be between 0.25 and 5, got {self.device_scale_factor!r}")
        for name in ("settle_timeout", "action_timeout", "navigation_timeout"):
            v = getattr(self, name)
            if not isinstance(v, (int, float)) or not 0 <= v <= 300:
                raise ValueError(f"{name} must be a number of seconds from 0 to 300, got {v!r}")
        if not isinstance(self.hang_timeout, (int, float)) or not 0 < self.hang_timeout <= 600:
            raise ValueError(f"hang_timeout must be a number of seconds above 0 and at most 600 (how long one "
                             f"action or screenshot may take before the tab is judged hung), got "
                             f"{self.hang_timeout!r}")
        if self.out_of_bounds not in ("refuse", "clamp"):
            raise ValueError(f"out_of_bounds must be 'refuse' or 'clamp', got {self.out_of_bounds!r}")
        if self.allowed_domains is not None:
            if isinstance(self.allowed_domains, str):
                self.allowed_domains = (self.allowed_domains,)
            doms = tuple(str(d).strip().lower().lstrip(".") for d in self.allowed_domains)
            if not doms or not all(doms):
                raise ValueError("allowed_domains must be a non-empty list of host names (or None for any)")
            self.allowed_domains = doms
        if self.start_url is not None:
            try:
                check_url(self.start_url, self.allowed_domains)
            except ActionFailed as exc:
                raise ValueError(f"start_url: {exc}") from None


def _strip_controls(url: str) -> str:
    # The URL parser drops tabs and newlines anywhere, so "java\nscript:" is javascript: -- check what it sees.
    return re.sub(r"[\t\n\r]", "", url).strip()


def check_url(url: str, allowed_domains: Sequence[str] | None) -> str:
    """The URL to load, or ``ActionFailed`` saying why not (scheme other than http(s), or a disallowed host).

    A URL with no scheme (``example.com/path``) is read as https, as a browser's address bar would.
    """
    raw = _strip_controls(url)
    if not raw:
        raise ActionFailed("empty URL")
    m = re.match(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):", raw)
    if m and not re.match(r"^[^:/?#]+:\d+(?:[/?#]|$)", raw):  # "localhost:8000/x" has a port, not a scheme
        scheme = m.group(1).lower()
        if scheme not in ALLOWED_SCHEMES:
            raise ActionFailed(
                f"refused URL {url[:200]!r}: scheme {scheme!r} is not allowed; only http and https pages are opened"
            )
        full = raw
    else:
        full = "https://" + raw.lstrip("/")
    parts = urlsplit(full)
    if not parts.hostname:
        raise ActionFailed(f"refused URL {url[:200]!r}: it has no host name")
    if allowed_domains is not None and not host_allowed(full, allowed_domains):
        raise ActionFailed(
            f"refused URL {full[:200]!r}: host {parts.hostname!r} is not in allowed_domains "
            f"{list(allowed_domains)}"
        )
    return full


def host_allowed(url: str, allowed_domains: Sequence[str] | None) -> bool:
    """Whether ``url``'s host is one of ``allowed_domains`` or a subdomain of one (an entry with a port must
    match it too). Non-network URLs (about:blank, data:, blob:, the browser's own error page) are not
    navigations away and pass."""
    if allowed_domains is None:
        return True
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return False
    if parts.scheme not in ALLOWED_SCHEMES:
        return parts.scheme in ("about", "data", "blob", "chrome-error")
    for entry in allowed_domains:
        name, _, want_port = entry.partition(":") if not entry.startswith("[") else (entry, "", "")
        if host == name or host.endswith("." + name):
            if not want_port:
                return True
            default = 443 if parts.scheme == "https" else 80
            if str(port or default) == want_port:
                return True
    return False


class _PlaywrightHandle:
    """One Playwright driver per thread, shared by every actuator in it (the sync API refuses a second one)."""

    _lock = threading.Lock()
    _local = threading.local()

    @classmethod
    def acquire(cls) -> Any:
        from playwright.sync_api import sync_playwright

        with cls._lock:
            state = getattr(cls._local, "state", None)
            if state is None:
                try:
                    pw = sync_playwright().start()
                except Exception as exc:
                    raise ActuatorError(f"Playwright could not start: {exc}") from exc
                state = cls._local.state = [pw, 0]
            state[1] += 1
            return state[0]

    @classmethod
    def release(cls) -> None:
        with cls._lock:
            state = getattr(cls._local, "state", None)
            if state is None:
                return
            state[1] -= 1
            if state[1] <= 0:
                cls._local.state = None
                try:
                    state[0].stop()
                except Exception:
                    pass


class BrowserActuator(BaseActuator):
    """A Chromium tab the agent drives. ``BrowserActuator(viewport=(1280, 800), start_url=...)`` or
    ``BrowserActuator(BrowserConfig(...))``; use as a context manager or call ``close()``."""

    name = "browser"
    supported = frozenset({Click, LongPress, Hover, TypeText, Select, KeyPress, Scroll, Drag, Navigate, Wait, End})

    def __init__(self, config: BrowserConfig | None = None, **kwargs: Any) -> None:
        if config is not None and kwargs:
            raise TypeError("pass either a BrowserConfig or keyword settings, not both")
        if config is None:
            names = {f.name for f in fields(BrowserConfig)}
            unknown = sorted(set(kwargs) - names)
            if unknown:
                raise TypeError(f"unknown browser setting(s) {unknown}; known: {sorted(names)}")
            if "viewport" in kwargs and isinstance(kwargs["viewport"], list):
                kwargs["viewport"] = tuple(kwargs["viewport"])
            config = BrowserConfig(**kwargs)
        super().__init__(out_of_bounds=config.out_of_bounds)
        self.config = config
        self._pw: Any = None
        self._browser: Any = None
        self._context: Any = None
        self._page: Any = None
        self._cdp: Any = None
        self._dead: str | None = None
        self._closed = False
        self._inflight: set[Any] = set()
        self._new_pages: list[Any] = []
        self._tracked: list[Any] = []
        self._blocked: list[tuple[str, Any]] = []
        self._scale: ScreenScale | None = None
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    # --- life cycle -------------------------------------------------------------------------------------------
    def _start(self) -> None:
        c = self.config
        if c.executable_path and not (os.path.isfile(c.executable_path) and os.access(c.executable_path, os.X_OK)):
            # find_chromium would quietly fall back to another browser; a named binary that is missing is an error
            raise ActuatorError(f"no Chromium executable at {c.executable_path!r}: install it (apt-get install "
                                "chromium) or pass the path of a Chromium binary")
        marker = new_marker()  # lets the watchdog find this browser's renderer processes
        self._watchdog = HangWatchdog(marker)
        self._pw = _PlaywrightHandle.acquire()
        opts: dict[str, Any] = {
            "viewport": {"width": c.viewport[0], "height": c.viewport[1]},
            "device_scale_factor": c.device_scale_factor,
        }
        if c.locale:
            opts["locale"] = c.locale
        if c.user_data_dir:
            # A persistent profile needs launch_persistent_context, which launch_chromium does not wrap; use the
            # same binary lookup and flags so it is the same browser.
            path = find_chromium(c.executable_path)
            try:
                self._context = self._pw.chromium.launch_persistent_context(
                    c.user_data_dir, executable_path=path, headless=c.headless,
                    args=[*CHROMIUM_ARGS, *c.extra_args, marker], timeout=30_000, **opts,
                )
            except Exception as exc:
                raise ActuatorError(
                    f"Chromium at {path} did not start with profile {c.user_data_dir}: {str(exc).splitlines()[0]}"
                ) from exc
            self._context.on("close", lambda *_: self._mark_dead("the browser context closed"))
        else:
            self._browser = launch_chromium(self._pw, headless=c.headless, executable=c.executable_path,
                                            extra_args=(*c.extra_args, marker))
            self._browser.on("disconnected", lambda *_: self._mark_dead("Chromium disconnected"))
            self._context = self._browser.new_context(**opts)
        self._context.set_default_timeout(c.action_timeout * 1000)
        self._context.set_default_navigation_timeout(c.navigation_timeout * 1000)
        self._context.on("page", self._on_new_page)
        self._context.add_init_script(_INIT_JS)
        if c.allowed_domains is not None:
            self._context.route("**/*", self._route)
        page = self._context.pages[0] if self._context.pages else self._context.new_page()
        self._new_pages.clear()
        self._activate(page)
        if c.start_url:
            url = check_url(c.start_url, c.allowed_domains)
            try:
                self._guarded("opening start_url", lambda: (page.goto(
                    url, timeout=c.navigation_timeout * 1000, wait_until="domcontentloaded"), self._settle()))
            except Exception as exc:
                raise ActuatorError(f"could not open start_url {url}: {str(exc).splitlines()[0]}") from exc
        shot = self.screenshot()
        self._scale = ScreenScale.measure(shot.size, self._viewport())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for thing in (self._context, self._browser):
            if thing is not None:
                try:
                    thing.close()
                except Exception:
                    pass
        if self._pw is not None:
            self._pw = None
            _PlaywrightHandle.release()

    def _mark_dead(self, why: str) -> None:
        if not self._closed and self._dead is None:
            self._dead = why

    def _on_new_page(self, page: Any) -> None:
        self._new_pages.append(page)
        self._track(page)

    def _track(self, page: Any) -> None:
        """Count the requests in flight of whichever page is active (background tabs do not hold settling)."""
        if any(p is page for p in self._tracked):
            return
        self._tracked.append(page)

        def started(req: Any) -> None:
            if page is self._page:
                self._inflight.add(req)

        def ended(req: Any) -> None:
            self._inflight.discard(req)

        page.on("request", started)
        page.on("requestfinished", ended)
        page.on("requestfailed", ended)
        page.on("close", lambda *_: self._tracked.remove(page) if page in self._tracked else None)

    def _activate(self, page: Any) -> None:
        if page is not self._page:
            self._track(page)
            self._page = page
            self._cdp = None
            self._inflight.clear()
        try:
            page.bring_to_front()
        except Exception:
            pass

    def _route(self, route: Any) -> None:
        req = route.request
        try:
            if req.is_navigation_request() and not host_allowed(req.url, self.config.allowed_domains):
                try:
                    page = req.frame.page
                except Exception:
                    page = None
                self._blocked.append((req.url, page))
                route.abort("blockedbyclient")
                return
            route.fallback()
        except Exception:  # the page went away while routing; nothing to do
            pass

    # --- state for the loop -----------------------------------------------------------------------------------
    @property
    def page(self) -> Any:
        """The active Playwright ``Page`` (a new tab opened by a click becomes it)."""
        return self._page

    @property
    def url(self) -> str:
        self._require_alive()
        return self._page.url

    @property
    def scale(self) -> ScreenScale:
        """Screenshot pixels per CSS pixel, measured at start."""
        assert self._scale is not None
        return self._scale

    @property
    def screen_size(self) -> tuple[int, int]:
        if self._scale is not None:
            return self._scale.screenshot_size
        w, h = self.config.viewport
        return (round(w * self.config.device_scale_factor), round(h * self.config.device_scale_factor))

    def _require_alive(self) -> None:
        if self._closed:
            raise ActuatorError("this browser actuator is closed; start a new one")
        if self._dead is not None or (self._browser is not None and not self._browser.is_connected()):
            raise ActuatorError(
                f"Chromium is no longer running ({self._dead or 'disconnected'}); it crashed or was killed: "
                "close this actuator and start a new one"
            )
        if self._page.is_closed():
            pages = [p for p in self._context.pages if not p.is_closed()]
            if not pages:
                raise ActuatorError("every tab of the browser is closed; start a new actuator")
            self._activate(pages[-1])

    def _gone(self, exc: Exception) -> ActuatorError:
        """Turn a Playwright failure on a dead browser into the one clear error."""
        self._mark_dead(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return ActuatorError(
            f"Chromium is no longer running ({self._dead}); it crashed or was killed: "
            "close this actuator and start a new one"
        )

    def _browser_alive(self, exc: BaseException | None = None) -> bool:
        """False once Chromium is gone; ``exc`` (the failure just seen) counts when it says the target closed."""
        if self._dead is not None:
            return False
        if exc is not None and (type(exc).__name__ == "TargetClosedError"
                                or "has been closed" in str(exc) or "Target closed" in str(exc)):
            if self._page is None or self._page.is_closed() or self._browser is None \
                    or not self._browser.is_connected():
                return False
        if self._browser is not None:
            return self._browser.is_connected()
        try:
            self._context.pages  # noqa: B018 - touching the context pumps its events
            return self._dead is None
        except Exception:
            return False

    # --- hung pages ---------------------------------------------------------------------------------------------
    def _guarded(self, what: str, call: Callable[[], T]) -> T:
        """Run a call into the page under the hang watchdog. When the watchdog had to stop the tab, the tab is
        opened again and ``TabHung`` says what happened, whatever the call itself returned or raised."""
        with self._watchdog.watch(self.config.hang_timeout) as watch:
            try:
                result = call()
            except Exception:
                if not watch.fired:
                    raise
        if not watch.fired:
            return result
        where = self._reopen_after_hang()
        raise TabHung(f"the page stopped responding: {what} had not finished after {watch.seconds:g} s (a script "
                      f"on the page never yields); its renderer was stopped and the tab {where}")

    def _replace_tab(self) -> None:
        """Close the active tab (stopped or stuck) and make a new blank one in the same context active."""
        try:
            self._page.close()
        except Exception:
            pass
        if not self._browser_alive():
            raise self._gone(RuntimeError("the browser exited while a hung tab was stopped"))
        self._activate(self._context.new_page())
        self._new_pages.clear()

    def _reopen_after_hang(self) -> str:
        """Replace the stopped tab by a new one at the same URL (same context: cookies and storage kept). A page
        that hangs again while loading is left for ``about:blank``. Returns where the tab is, in words."""
        url = self._page.url
        self._replace_tab()
        if urlsplit(url).scheme not in ALLOWED_SCHEMES or not host_allowed(url, self.config.allowed_domains):
            return "was opened again on about:blank"
        with self._watchdog.watch(self.config.hang_timeout) as watch:
            try:
                self._page.goto(url, timeout=self.config.navigation_timeout * 1000, wait_until="commit")
                self._settle()
                self._page.evaluate("0")  # a page that spins while loading blocks here until the watch fires
                failed = None
            except Exception as exc:
                failed = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if watch.fired or failed:
            self._replace_tab()
            why = "it hung again while loading" if watch.fired else f"reloading it failed: {failed}"
            return f"was opened on about:blank ({why}; it was at {url})"
        return f"was opened again at {url}"

    def element_info_at(self, point: Sequence[float] | None = None, focused: bool = False) -> dict[str, Any] | None:
        """What is under a screenshot ``point`` (or the focused element when ``focused``): tag, type, role, id,
        name, text, href, editable, autocomplete. ``type == "password"`` is what the confirmation gate looks for."""
        self._require_alive()
        x, y = self.scale.to_input(point) if point is not None else (0.0, 0.0)
        try:
            return self._guarded("inspecting the page",
                                 lambda: self._page.evaluate(_ELEMENT_INFO_JS, [x, y, bool(focused)]))
        except TabHung as exc:
            raise ActuatorError(f"could not inspect the page: {exc}") from exc
        except Exception as exc:
            if not self._browser_alive():
                raise self._gone(exc) from exc
            raise ActuatorError(f"could not inspect the page: {str(exc).splitlines()[0]}") from exc

    def focused_element_info(self) -> dict[str, Any] | None:
        return self.element_info_at(None, focused=True)

    # --- screenshot -------------------------------------------------------------------------------------------
    def screenshot(self) -> Image.Image:
        """The active tab's viewport as an RGB image of ``viewport * device_scale_factor`` pixels. A tab that
        hangs is stopped and opened again (see the module docstring), and the reopened tab is what is returned
        (``about:blank`` when the page hung again while loading); a warning is logged."""
        self._require_alive()
        try:
            return self._guarded("a screenshot", self._screenshot_unwatched)
        except TabHung as exc:
            logger.warning("%s", exc)
        try:
            return self._guarded("a screenshot", self._screenshot_unwatched)
        except TabHung as exc:
            raise ActuatorError(f"{exc}; it hung again at once: close this actuator and start a new one") from exc

    def _screenshot_unwatched(self) -> Image.Image:
        try:
            if self.config.device_scale_factor != 1:
                # A scaled CDP capture from our own session clears the device-metrics emulation Playwright set on
                # its session (the page then reports devicePixelRatio 1 and lays out at 1x), so scaled screens go
                # through Playwright's screenshot, which keeps the emulation.
                raw = self._page.screenshot(type="png", timeout=self.config.action_timeout * 1000)
            else:
                if self._cdp is None:
                    self._cdp = self._context.new_cdp_session(self._page)
                data = self._cdp.send("Page.captureScreenshot", self._capture_params())["data"]
                raw = base64.b64decode(data)
        except Exception as exc:
            if not self._browser_alive(exc):
                raise self._gone(exc) from exc
            self._cdp = None
            try:  # a detached CDP session (page swapped under us): Playwright's own screenshot still works
                raw = self._page.screenshot(timeout=self.config.action_timeout * 1000)
            except Exception as exc2:
                if not self._browser_alive(exc2):
                    raise self._gone(exc2) from exc2
                raise ActuatorError(f"screenshot failed: {str(exc2).splitlines()[0]}") from exc2
        img = Image.open(io.BytesIO(raw))
        if img.mode != "RGB":
            return img.convert("RGB")
        img.load()
        return img

    def _capture_params(self) -> dict[str, Any]:
        """CDP capture settings for an unscaled screen: PNG, the encoder's fast path."""
        return {"format": "png", "optimizeForSpeed": True}

    def _viewport(self) -> tuple[int, int]:
        vp = self._page.viewport_size
        return (vp["width"], vp["height"]) if vp else self.config.viewport

    # --- actions ----------------------------------------------------------------------------------------------
    def _css(self, point: Sequence[float]) -> tuple[float, float]:
        return self.scale.to_input(point)

    def _perform(self, action: Action) -> dict[str, Any] | None:
        self._require_alive()
        return self._guarded(action.kind, lambda: self._perform_unwatched(action))

    def _perform_unwatched(self, action: Action) -> dict[str, Any] | None:
        self._new_pages.clear()
        self._blocked.clear()
        before_url = self._page.url
        try:
            info = self._do(action) or {}
        except ActionFailed:
            raise
        except Exception as exc:
            if not self._browser_alive(exc):
                raise self._gone(exc) from exc
            raise
        if not self._browser_alive():
            raise self._gone(RuntimeError("browser exited during the action"))
        return self._after(action, before_url, info)

    def _after(self, action: Action, before_url: str, info: dict[str, Any]) -> dict[str, Any]:
        """Settle, follow a new tab, enforce allowed_domains, and report where the page is."""
        timeout_ms = self.config.navigation_timeout * 1000
        settled, popups = self._settle()
        if popups and not self._new_pages:
            # The page asked for a new tab (window.open, a target=_blank link); its page event can lag the click
            # on a busy machine, so wait for it -- but only when one was asked for.
            try:
                self._context.wait_for_event("page", timeout=max(self.config.settle_timeout, 0.5) * 1000)
            except Exception:
                pass
        opened = [p for p in self._new_pages if not p.is_closed()]
        for page in opened:
            try:  # let its first navigation commit or fail, so a blocked one is known before we decide
                page.wait_for_load_state("domcontentloaded", timeout=timeout_ms)
            except Exception:
                pass
        keep = []
        for page in opened:
            blocked_here = any(pg is page for _, pg in self._blocked)
            failed = page.is_closed() or page.url.startswith("chrome-error:")
            if blocked_here or (self._blocked and (failed or page.url in ("", "about:blank"))):
                try:  # a tab opened only to reach a blocked site: close it
                    page.close()
                except Exception:
                    pass
            elif not page.is_closed():
                keep.append(page)
        if keep:
            page = keep[-1]
            self._activate(page)
            settled = self._settle()[0] and settled
            info["new_page"] = page.url
        self._require_alive()
        url = self._page.url
        left = not host_allowed(url, self.config.allowed_domains)
        # A blocked navigation leaves the tab on Chromium's error page: go back to where it was.
        stranded = bool(self._blocked) and url.startswith("chrome-error:")
        if left or stranded:
            if left:  # reached despite the route (a server redirect, which routes do not see)
                self._blocked.append((url, self._page))
            try:
                if self._page.go_back(timeout=timeout_ms) is None:
                    self._page.goto(before_url if host_allowed(before_url, self.config.allowed_domains)
                                    else "about:blank", timeout=timeout_ms)
            except Exception:
                self._page.goto("about:blank", timeout=timeout_ms)
            self._settle()
            url = self._page.url
        if self._blocked:
            raise ActionFailed(
                f"{action.kind} led to {self._blocked[0][0][:200]}, outside allowed_domains "
                f"{list(self.config.allowed_domains or ())}: the navigation was blocked; the page is at {url}"
            )
        info["url"] = url
        info["settled"] = settled
        if url != before_url:
            info["navigated_from"] = before_url
        return info

    def _settle(self) -> tuple[bool, int]:
        """Wait until no request is in flight and the DOM has been quiet for ``settle_quiet_ms``, at most
        ``settle_timeout``. Returns whether it settled within the bound, and how many new tabs the page asked
        for meanwhile (counted by ``_INIT_JS``)."""
        deadline = time.monotonic() + self.config.settle_timeout
        popups = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False, popups
            try:
                self._page.wait_for_load_state("domcontentloaded", timeout=max(1.0, remaining * 1000))
                quiet, asked = self._page.evaluate(
                    _QUIET_JS, {"quietMs": self.config.settle_quiet_ms, "timeoutMs": remaining * 1000}
                )
                popups += asked
            except Exception as exc:
                if not self._browser_alive(exc) or self._page.is_closed():
                    return False, popups
                if "Timeout" in type(exc).__name__:
                    return False, popups
                continue  # the document changed under the evaluate (a navigation): look again
            if quiet and not self._inflight:
                return True, popups
            if quiet:  # DOM quiet but requests in flight; let their events arrive
                self._page.wait_for_timeout(min(25.0, max(1.0, (deadline - time.monotonic()) * 1000)))

    def _do(self, action: Action) -> dict[str, Any] | None:
        page = self._page
        mouse = page.mouse
        if isinstance(action, Click):
            x, y = self._css(action.point)
            mouse.click(x, y, button=action.button, click_count=action.count)
            return None
        if isinstance(action, Hover):
            mouse.move(*self._css(action.point))
            return None
        if isinstance(action, LongPress):
            mouse.move(*self._css(action.point))
            mouse.down()
            page.wait_for_timeout(action.seconds * 1000)
            mouse.up()
            return None
        if isinstance(action, Drag):
            mouse.move(*self._css(action.start))
            mouse.down()
            mouse.move(*self._css(action.end), steps=10)
            mouse.up()
            return None
        if isinstance(action, Scroll):
            return self._scroll(action)
        if isinstance(action, TypeText):
            return self._type(action)
        if isinstance(action, KeyPress):
            return self._key(action)
        if isinstance(action, Select):
            return self._select(action)
        if isinstance(action, Navigate):
            return self._navigate(action)
        raise ActionFailed(f"browser actuator cannot perform {action.kind}")  # pragma: no cover - supported set

    def _scroll(self, action: Scroll) -> dict[str, Any]:
        w, h = self.screen_size
        point = action.point if action.point is not None else (w // 2, h // 2)
        self._page.mouse.move(*self._css(point))
        d = action.amount * SCROLL_STEP_PX
        dx, dy = {"up": (0, -d), "down": (0, d), "left": (-d, 0), "right": (d, 0)}[action.direction]
        self._page.mouse.wheel(dx, dy)
        return {"wheel_css_px": [dx, dy]}

    def _type(self, action: TypeText) -> dict[str, Any]:
        page = self._page
        info: dict[str, Any] = {}
        if action.point is not None:
            page.mouse.click(*self._css(action.point))
            if self.config.clear_before_type and page.evaluate(_IS_EDITABLE_JS):
                page.keyboard.press("Control+A")
                info["cleared"] = True
        # Printable ASCII goes through key events (pages listen to keydown/keyup); everything else -- Chinese,
        # emoji, newlines -- is inserted as text, which is what an IME does.
        for chunk in re.findall(r"[\x20-\x7e]+|[^\x20-\x7e]+", action.text):
            if chunk[0].isascii() and chunk[0].isprintable():
                page.keyboard.type(chunk)
            else:
                page.keyboard.insert_text(chunk)
        if action.submit:
            page.keyboard.press("Enter")
        return info

    def _key(self, action: KeyPress) -> dict[str, Any]:
        names = []
        for k in action.keys:
            if k in PHONE_KEYS:
                hint = " (use navigate back)" if k == "back" else ""
                raise ActionFailed(f"key {k!r} is a phone key; a browser has no such key{hint}")
            if len(action.keys) > 1 and len(k) == 1 and k.isascii() and k.isalnum():
                # In a chord, name the physical key (KeyA, Digit5) so that Shift changes what it types the way a
                # keyboard does; Playwright's "Shift+a" would type "a".
                names.append(f"Key{k.upper()}" if k.isalpha() else f"Digit{k}")
            else:
                names.append(KEY_MAP.get(k, k))
        self._page.keyboard.press("+".join(names))
        return {"keys": names}

    def _select(self, action: Select) -> dict[str, Any]:
        x, y = self._css(action.point)
        found = self._page.evaluate(_SELECT_AT_JS, [x, y])
        if found.get("found") != "select":
            what = f"<{found['found']}>" if found.get("found") else "nothing"
            raise ActionFailed(f"no <select> element at {action.point} (found {what}); SELECT needs a native "
                               "select box at the point")
        if found.get("disabled"):
            raise ActionFailed(f"the <select> at {action.point} is disabled")
        options = found["options"]
        labels = [o["label"] for o in options]

        def norm(s: str) -> str:
            return " ".join(s.split()).casefold()

        want = action.option
        index = next((i for i, o in enumerate(options) if o["label"] == want), None)
        if index is None:
            matches = [i for i, o in enumerate(options) if norm(o["label"]) == norm(want)]
            index = matches[0] if len(matches) == 1 else None
        if index is None:
            raise ActionFailed(f"option {want!r} is not in the <select> at {action.point}; its options are "
                               f"{labels}")
        if options[index]["disabled"]:
            raise ActionFailed(f"option {labels[index]!r} of the <select> at {action.point} is disabled")
        handle = self._page.evaluate_handle("() => window.__cogagentSelect")
        try:
            el = handle.as_element()
            if el is None:
                raise ActionFailed("the <select> element went away before it could be set")
            el.select_option(index=index, timeout=self.config.action_timeout * 1000)
        finally:
            handle.dispose()
        return {"selected": labels[index], "value": options[index]["value"]}

    def _navigate(self, action: Navigate) -> dict[str, Any]:
        page = self._page
        timeout = self.config.navigation_timeout * 1000
        target = action.target
        try:
            if target.lower() == "back":
                before = page.url
                if page.go_back(timeout=timeout, wait_until="commit") is None and page.url == before:
                    raise ActionFailed("there is no previous page in this tab's history")
                return {}
            if target.lower() == "forward":
                before = page.url
                if page.go_forward(timeout=timeout, wait_until="commit") is None and page.url == before:
                    raise ActionFailed("there is no next page in this tab's history")
                return {}
            if target.lower() in ("reload", "refresh"):
                page.reload(timeout=timeout, wait_until="commit")
                return {}
            if target.lower() == "home":
                if not self.config.start_url:
                    raise ActionFailed("navigate home needs a start_url in the browser settings")
                url = check_url(self.config.start_url, self.config.allowed_domains)
            else:
                url = check_url(target, self.config.allowed_domains)
            page.goto(url, timeout=timeout, wait_until="commit")
        except ActionFailed:
            raise
        except Exception as exc:
            if not self._browser_alive():
                raise
            raise ActionFailed(f"could not open {target[:200]!r}: {str(exc).splitlines()[0]}") from exc
        return {}
