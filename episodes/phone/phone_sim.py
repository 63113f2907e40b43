"""A simulated Android phone: a phone-sized page in Chromium behind a real ADB daemon and a real shell.

The only thing in this project that cannot be real here is the phone, so this test double is real everywhere
else: the actuator talks the ADB wire protocol to ``AdbServer``, command lines are run by a POSIX shell
(``DeviceShell``), and the phone's tools (``input``, ``screencap``, ``wm``, ``am``, ``settings``, ``getprop``,
``dumpsys``, ``cmd``, ``svc``, ``ime``) are answered here with Android's argument syntax and output formats. The
screen is ``pages/phone.html`` rendered by Chromium (Playwright, Debian's binary); touches are dispatched
through Chromium's touch pipeline (CDP ``Input.dispatchTouchEvent``), so a tap hits whatever element is really
under the finger, a swipe really scrolls, and a screencap is the page's real pixels.

Screen geometry (decided so that every number is exact): the panel is 1080 x 2400 pixels, rendered as a
432 x 960 CSS-pixel viewport at device scale factor 2.5, i.e. density 400 dpi (2.5 x 160). ``screencap`` returns
exactly 1080 x 2400 pixels (2400 x 1080 when rotated). ``input`` coordinates are in the logical display space, as
on Android: with ``wm size WxH`` (an override) they are override-space coordinates, scaled here onto the panel,
and with ``user_rotation`` 1 or 3 they are landscape coordinates. ``screencap`` in this simulator always returns
panel pixels (some devices return the override size; the actuator measures both, so it handles either).
180-degree rotations (2, 3) are drawn like 0 and 1.

Use::

    with PhoneSim() as sim:
        port = sim.start()                     # ADB on 127.0.0.1:<port>; ``with sim.start() as port`` also works
        ...AndroidActuator("127.0.0.1", port)...
        sim.state()["dark_mode"]
        sim.reset({"dark_mode": True, "current_screen": "settings.display"})
"""

from __future__ import annotations

import base64
import io
import json
import logging
import queue
import re
import shlex
import shutil
import struct
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable, Iterable

from PIL import Image

from actuators.base import ActuatorError
from actuators.chromium import launch_chromium

from .adb_server import MAX_PAYLOAD, AdbServer
from .device_shell import DeviceShell

log = logging.getLogger(__name__)

PAGES = Path(__file__).resolve().parent / "pages"
PANEL = (1080, 2400)
"""Physical panel size in pixels, natural (portrait) orientation."""
DSF = 2.5
VIEWPORT = (432, 960)
"""CSS pixels; ``VIEWPORT * DSF == PANEL`` exactly."""
DENSITY = 400
"""dpi; Android's density-independent pixel is density / 160 = 2.5 device pixels, the page's DSF."""

PIXEL_FORMAT_RGBA_8888 = 1
COLORSPACE_SRGB = 1

PROPS = {
    "ro.product.model": "CogPhone",
    "ro.product.name": "cogphone_sim",
    "ro.product.device": "cogphone",
    "ro.product.brand": "CogAgent",
    "ro.product.manufacturer": "CogAgent",
    "ro.build.version.release": "14",
    "ro.build.version.sdk": "34",
    "ro.build.type": "user",
    "ro.build.characteristics": "phone",
    "ro.product.cpu.abi": "x86_64",
    "ro.serialno": "COGPHONE0001",
    "ro.sf.lcd_density": str(DENSITY),
    "ro.kernel.qemu": "0",
    "sys.boot_completed": "1",
}

# Android KeyEvent codes the simulator understands (the ones an agent or a person sends).
KEYCODES: dict[str, int] = {
    "UNKNOWN": 0, "SOFT_LEFT": 1, "SOFT_RIGHT": 2, "HOME": 3, "BACK": 4, "CALL": 5, "ENDCALL": 6,
    **{str(d): 7 + d for d in range(10)},
    "STAR": 17, "POUND": 18, "DPAD_UP": 19, "DPAD_DOWN": 20, "DPAD_LEFT": 21, "DPAD_RIGHT": 22, "DPAD_CENTER": 23,
    "VOLUME_UP": 24, "VOLUME_DOWN": 25, "POWER": 26, "CAMERA": 27, "CLEAR": 28,
    **{chr(ord("A") + i): 29 + i for i in range(26)},
    "COMMA": 55, "PERIOD": 56, "ALT_LEFT": 57, "ALT_RIGHT": 58, "SHIFT_LEFT": 59, "SHIFT_RIGHT": 60, "TAB": 61,
    "SPACE": 62, "SYM": 63, "EXPLORER": 64, "ENVELOPE": 65, "ENTER": 66, "DEL": 67, "GRAVE": 68, "MINUS": 69,
    "EQUALS": 70, "LEFT_BRACKET": 71, "RIGHT_BRACKET": 72, "BACKSLASH": 73, "SEMICOLON": 74, "APOSTROPHE": 75,
    "SLASH": 76, "AT": 77, "NUM": 78, "HEADSETHOOK": 79, "FOCUS": 80, "PLUS": 81, "MENU": 82, "NOTIFICATION": 83,
    "SEARCH": 84, "MEDIA_PLAY_PAUSE": 85, "MEDIA_STOP": 86, "MEDIA_NEXT": 87, "MEDIA_PREVIOUS": 88, "MUTE": 91,
    "PAGE_UP": 92, "PAGE_DOWN": 93, "ESCAPE": 111, "FORWARD_DEL": 112, "CTRL_LEFT": 113, "CTRL_RIGHT": 114,
    "CAPS_LOCK": 115, "SCROLL_LOCK": 116, "META_LEFT": 117, "META_RIGHT": 118, "SYSRQ": 120, "BREAK": 121,
    "MOVE_HOME": 122, "MOVE_END": 123, "INSERT": 124, **{f"F{i}": 130 + i for i in range(1, 13)},
    "VOLUME_MUTE": 164, "APP_SWITCH": 187, "BRIGHTNESS_DOWN": 220, "BRIGHTNESS_UP": 221, "SLEEP": 223,
    "WAKEUP": 224,
}
_KEY_TO_BROWSER: dict[int, str] = {
    **{7 + d: str(d) for d in range(10)}, **{29 + i: chr(ord("a") + i) for i in range(26)},
    17: "*", 18: "#", 19: "ArrowUp", 20: "ArrowDown", 21: "ArrowLeft", 22: "ArrowRight", 23: "Enter",
    55: ",", 56: ".", 61: "Tab", 62: " ", 66: "Enter", 67: "Backspace", 68: "`", 69: "-", 70: "=", 71: "[",
    72: "]", 73: "\\", 74: ";", 75: "'", 76: "/", 77: "@", 81: "+", 92: "PageUp", 93: "PageDown",
    111: "Escape", 112: "Delete", 113: "Control", 114: "Control", 115: "CapsLock", 57: "Alt", 58: "Alt",
    59: "Shift", 60: "Shift", 117: "Meta", 118: "Meta", 122: "Home", 123: "End", 124: "Insert",
    **{130 + i: f"F{i}" for i in range(1, 13)},
}
_SCREEN_OFF_KEYS = {24, 25, 26, 164, 223, 224}

INPUT_SOURCES = {"keyboard", "mouse", "joystick", "touchnavigation", "touchpad", "trackball", "stylus", "dpad",
                 "gesture", "touchscreen", "gamepad", "rotaryencoder"}
INPUT_USAGE = """Usage: input [<source>] [-d DISPLAY_ID] <command> [<arg>...]

The commands and default sources are:
      text <string> (Default: touchscreen)
      keyevent [--longpress|--doubletap] <key code number or name> ... (Default: keyboard)
      tap <x> <y> (Default: touchscreen)
      swipe <x1> <y1> <x2> <y2> [duration(ms)] (Default: touchscreen)
      draganddrop <x1> <y1> <x2> <y2> [duration(ms)] (Default: touchscreen)
      press (Default: trackball)
      roll <dx> <dy> (Default: trackball)
      motionevent <DOWN|UP|MOVE|CANCEL> <x> <y> (Default: touchscreen)
      keycombination [-t duration(ms)] <key code 1> <key code 2> ... (Default: keyboard)
"""

ADBKEYBOARD_IME = "com.android.adbkeyboard/.AdbIME"
LATIN_IME = "com.android.inputmethod.latin/.LatinIME"

# screen -> (package, activity) for dumpsys window / am start -n
ACTIVITIES = {
    "home": ("com.android.launcher3", ".Launcher"),
    "recents": ("com.android.launcher3", ".Launcher"),
    "settings": ("com.android.settings", ".Settings"),
    "browser": ("com.android.browser", ".BrowserActivity"),
    "notes": ("com.cogphone.notes", ".NotesActivity"),
    "calculator": ("com.android.calculator2", ".Calculator"),
    "clock": ("com.android.deskclock", ".DeskClock"),
}
PACKAGE_SCREENS = {
    "com.android.settings": "settings", "com.android.browser": "browser", "org.chromium.chrome": "browser",
    "com.android.chrome": "browser", "com.cogphone.notes": "notes", "com.android.calculator2": "calculator",
    "com.google.android.calculator": "calculator", "com.android.deskclock": "clock",
    "com.google.android.deskclock": "clock", "com.android.launcher3": "home",
}
SETTINGS_ACTIONS = {
    "android.settings.SETTINGS": "settings",
    "android.settings.WIFI_SETTINGS": "settings.network",
    "android.settings.WIRELESS_SETTINGS": "settings.network",
    "android.settings.AIRPLANE_MODE_SETTINGS": "settings.network",
    "android.settings.DISPLAY_SETTINGS": "settings.display",
    "android.settings.LOCALE_SETTINGS": "settings.languages",
    "android.settings.APPLICATION_SETTINGS": "settings.apps",
    "android.settings.SOUND_SETTINGS": "settings.sound",
    "android.settings.BATTERY_SAVER_SETTINGS": "settings.battery",
    "android.settings.DEVICE_INFO_SETTINGS": "settings.about",
    "android.settings.LOCATION_SOURCE_SETTINGS": "settings.location",
    "android.settings.BLUETOOTH_SETTINGS": "settings.devices",
}

# settings provider keys that mirror the phone's state: (namespace, key) -> (state key, to_setting, from_setting)
_LINKED: dict[tuple[str, str], tuple[str, Callable[[Any], str], Callable[[str], Any]]] = {
    ("global", "airplane_mode_on"): ("airplane_mode", lambda v: "1" if v else "0", lambda s: int(s) != 0),
    ("global", "wifi_on"): ("wifi", lambda v: "1" if v else "0", lambda s: int(s) != 0),
    ("system", "screen_brightness"): ("brightness", lambda v: str(round(v * 255 / 100)),
                                      lambda s: round(min(255, max(0, int(s))) * 100 / 255)),
    ("system", "screen_brightness_mode"): ("adaptive_brightness", lambda v: "1" if v else "0",
                                           lambda s: int(s) != 0),
    ("secure", "ui_night_mode"): ("dark_mode", lambda v: "2" if v else "1", lambda s: int(s) == 2),
    ("system", "accelerometer_rotation"): ("auto_rotate", lambda v: "1" if v else "0", lambda s: int(s) != 0),
    ("system", "system_locales"): ("language", lambda v: str(v), lambda s: s.split(",")[0]),
    ("system", "volume_music"): ("volume", lambda v: str(v), lambda s: int(s)),
}
_PLAIN_SETTINGS = {
    "system": {"screen_off_timeout": "30000", "font_scale": "1.0", "haptic_feedback_enabled": "1"},
    "secure": {"android_id": "c0a9e2e7f00d0001", "default_input_method": LATIN_IME,
               "enabled_input_methods": LATIN_IME, "location_mode": "3"},
    "global": {"adb_enabled": "1", "development_settings_enabled": "1", "device_name": "CogPhone",
               "bluetooth_on": "0", "mobile_data": "1", "stay_on_while_plugged_in": "0"},
}


class _Usage(Exception):
    """A tool was called wrongly: print this, exit with ``status``."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


# --- the browser, owned by one thread (Playwright's sync API is bound to the thread that started it) ----------
class _Browser:
    def __init__(self, headless: bool, chromium: str | None, timeout_s: float) -> None:
        self.headless = headless
        self.chromium = chromium
        self.timeout_s = timeout_s
        self._q: queue.Queue = queue.Queue()
        self._ready: Future = Future()
        self._thread = threading.Thread(target=self._run, name="phone-browser", daemon=True)
        self.page: Any = None
        self.cdp: Any = None
        self.viewport = VIEWPORT

    def start(self) -> None:
        self._thread.start()
        self._ready.result(timeout=120)

    def _run(self) -> None:
        from playwright.sync_api import sync_playwright

        pw = browser = None
        try:
            pw = sync_playwright().start()
            browser = launch_chromium(pw, headless=self.headless, executable=self.chromium)
            context = browser.new_context(viewport={"width": VIEWPORT[0], "height": VIEWPORT[1]},
                                          device_scale_factor=DSF, has_touch=True, is_mobile=True,
                                          locale="en-US", timezone_id="UTC")
            self.page = context.new_page()
            self.page.set_default_timeout(self.timeout_s * 1000)
            self.cdp = context.new_cdp_session(self.page)
            self.page.goto((PAGES / "phone.html").as_uri())
            self.page.wait_for_function("window.phone !== undefined")
        except BaseException as exc:
            self._ready.set_exception(exc)
            for closer in (browser, pw):
                try:
                    if closer is not None:
                        closer.close() if closer is browser else closer.stop()
                except Exception:
                    pass
            return
        self._ready.set_result(True)
        while True:
            item = self._q.get()
            if item is None:
                break
            fn, fut = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(self))
            except BaseException as exc:
                fut.set_exception(exc)
        try:
            browser.close()
        finally:
            pw.stop()

    def call(self, fn: Callable[["_Browser"], Any], timeout_s: float | None = None) -> Any:
        fut: Future = Future()
        self._q.put((fn, fut))
        return fut.result(timeout=timeout_s or self.timeout_s)

    def close(self) -> None:
        if self._thread.is_alive():
            self._q.put(None)
            self._thread.join(timeout=30)

    # --- in the browser thread --------------------------------------------------------------------------------
    def js(self, expr: str, arg: Any = None) -> Any:
        return self.page.evaluate(expr, arg)

    def touch(self, kind: str, points: Iterable[tuple[float, float]] = ()) -> None:
        self.cdp.send("Input.dispatchTouchEvent",
                      {"type": kind, "touchPoints": [{"x": float(x), "y": float(y)} for x, y in points]})

    def frame(self) -> None:
        """Wait for two animation frames: the page has handled the input and painted the result."""
        self.page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")

    def settle_scroll(self, quiet_ms: float = 150, limit_s: float = 3.0) -> None:
        """Wait until nothing has scrolled for ``quiet_ms`` (a fling has stopped)."""
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if self.page.evaluate("() => window.phone.scrollIdleMs()") >= quiet_ms:
                break
            time.sleep(0.03)
        self.frame()

    def capture_png(self) -> bytes:
        vw, vh = self.viewport
        r = self.cdp.send("Page.captureScreenshot", {
            "format": "png", "optimizeForSpeed": True, "captureBeyondViewport": False, "fromSurface": True,
            "clip": {"x": 0, "y": 0, "width": vw, "height": vh, "scale": DSF},
        })
        return base64.b64decode(r["data"])


class StartedPort(int):
    """The ADB port ``PhoneSim.start`` returns; also a context manager that closes the phone on exit, so both
    ``port = sim.start()`` and ``with sim.start() as port: ...`` work."""

    sim: "PhoneSim"

    def __new__(cls, port: int, sim: "PhoneSim") -> "StartedPort":
        obj = super().__new__(cls, port)
        obj.sim = sim
        return obj

    def __enter__(self) -> int:
        return int(self)

    def __exit__(self, *exc) -> None:
        self.sim.close()


class PhoneSim:
    """The simulated phone. ``start()`` returns the ADB port; ``state()``/``reset()`` for checks and episodes."""

    panel = PANEL
    density = DENSITY

    def __init__(self, *, state: dict[str, Any] | None = None, headless: bool = True,
                 chromium: str | None = None, adbkeyboard: bool = False, screencap_header: int = 16,
                 max_payload: int = MAX_PAYLOAD, shell_timeout_s: float = 30.0,
                 browser_timeout_s: float = 30.0) -> None:
        if screencap_header not in (12, 16):
            raise ValueError("screencap_header must be 12 (Android <= 8) or 16 (with the colorspace field)")
        self.initial_state = dict(state or {})
        self.headless = headless
        self.chromium = chromium
        self.adbkeyboard_installed = adbkeyboard
        self.screencap_header = screencap_header
        self.max_payload = max_payload
        self.shell_timeout_s = shell_timeout_s
        self.browser_timeout_s = browser_timeout_s
        self.commands: list[list[str]] = []
        """argv of every phone tool the shell ran, in order (what the phone was really asked to do)."""
        self.shell_lines: list[tuple[str, str]] = []
        """(service, command line) of every ``shell:``/``exec:`` stream the daemon opened."""
        self.rotation = 0
        self.override_size: tuple[int, int] | None = None
        self.override_density: int | None = None
        self.ime = LATIN_IME
        self.enabled_imes = {LATIN_IME}
        self._plain_settings = {ns: dict(v) for ns, v in _PLAIN_SETTINGS.items()}
        self._lock = threading.Lock()
        self._touch_down: tuple[float, float] | None = None
        self._browser: _Browser | None = None
        self.shell: DeviceShell | None = None
        self.server: AdbServer | None = None
        self.host = "127.0.0.1"
        self.port = 0

    # --- lifecycle ------------------------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0, auth: Any = None,
              accept_new_keys: bool = False) -> StartedPort:
        """Start the screen (Chromium) and the ADB daemon; returns the TCP port (usable as ``with ... as port``).

        ``auth``: ``None`` = no authentication; ``"refuse"`` (or ``[]``) = authentication required and no host
        trusted; a public key (``adbkey.pub`` text, or a path to that file) or a list of them = those hosts are
        trusted. ``accept_new_keys``: tap "Allow" for any key a host offers.
        """
        if self.server is not None:
            return StartedPort(self.port, self)
        if self._browser is None:
            browser = _Browser(self.headless, self.chromium, self.browser_timeout_s)
            try:
                browser.start()
            except ActuatorError:
                raise
            except Exception as exc:
                raise ActuatorError(f"the simulated phone's screen (Chromium) did not start: {exc}") from exc
            self._browser = browser
            self.reset(self.initial_state)
        if self.shell is None:
            self.shell = DeviceShell(self._handle_tool, timeout_s=self.shell_timeout_s)
            self.shell.start()
        self.server = AdbServer(self.shell, auth_keys=_auth_keys(auth), accept_new_keys=accept_new_keys,
                                max_payload=self.max_payload, props={k: PROPS[k] for k in (
                                    "ro.product.name", "ro.product.model", "ro.product.device")},
                                on_shell=self._on_shell)
        self.host = host
        try:
            self.port = self.server.start(host, port)
        except OSError:
            self.server = None
            raise
        return StartedPort(self.port, self)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def sandbox_dir(self) -> Path:
        """The device shell's working directory (``HOME``); where an injected ``touch pwned`` would land."""
        if self.shell is None:
            raise RuntimeError("the phone is not started")
        return self.shell.home

    def stop_server(self) -> None:
        """The phone leaves the network: stop listening and drop every connection (``start_server`` brings it back)."""
        if self.server is not None:
            self.server.stop()

    def start_server(self) -> int:
        """Listen again on the same address (after ``stop_server``)."""
        if self.server is None:
            raise RuntimeError("call start() first")
        return self.server.start(self.host, self.port)

    def set_auth(self, auth: Any = None, accept_new_keys: bool = False) -> None:
        """Change the daemon's authentication (same ``auth`` values as ``start``), for connections from now on."""
        if self.server is None:
            raise RuntimeError("call start() first")
        self.server.set_auth(_auth_keys(auth), accept_new_keys)

    def drop_connections(self) -> int:
        """Cut every ADB connection now (Wi-Fi blinked); the daemon keeps listening."""
        return self.server.drop_connections() if self.server is not None else 0

    def close(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None
        if self.shell is not None:
            self.shell.close()
            self.shell = None
        if self._browser is not None:
            self._browser.close()
            self._browser = None

    def __enter__(self) -> "PhoneSim":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- state ------------------------------------------------------------------------------------------------
    def _b(self) -> _Browser:
        if self._browser is None:
            raise RuntimeError("the phone is not started: call start() first")
        return self._browser

    def state(self) -> dict[str, Any]:
        """The phone's state, read from the page: dark_mode, brightness (0-100), wifi, airplane_mode, language,
        current_screen, and more (screen_on, volume, search_query, note_text, browser_url, popup, focused, ...)."""
        st = self._b().call(lambda b: b.js("() => window.phone.state()"))
        st.update(rotation=self.rotation, override_size=self.override_size, ime=self.ime)
        return st

    def reset(self, state: dict[str, Any] | None = None) -> dict[str, Any]:
        """Back to a known state: defaults, then ``state`` (any keys of ``state()`` that are settings, plus
        ``rotation``). Clears history, popups, text fields and the shell's sandbox directory."""
        st = dict(state or {})
        rotation = int(st.pop("rotation", 0))
        if rotation not in (0, 1, 2, 3):
            raise ValueError("rotation must be 0, 1, 2 or 3")
        with self._lock:
            self.override_size = None
            self.override_density = None
            self.ime = LATIN_IME
            self.enabled_imes = {LATIN_IME}
            self._plain_settings = {ns: dict(v) for ns, v in _PLAIN_SETTINGS.items()}
            self._touch_down = None
        self._set_rotation(rotation)
        if self.shell is not None:
            for child in self.shell.home.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child, ignore_errors=True)
                else:
                    child.unlink(missing_ok=True)
        try:
            self._b().call(lambda b: (b.js("(s) => window.phone.reset(s)", st), b.frame()))
        except Exception as exc:
            raise ValueError(f"cannot reset the phone to {st!r}: {str(exc).splitlines()[0]}") from None
        return self.state()

    def screens(self) -> list[str]:
        """Every ``current_screen`` value the phone has (for ``reset`` and for checks)."""
        return self.evaluate("() => window.phone.screens()")

    def languages(self) -> list[tuple[str, str]]:
        """(code, name) of every language the Languages screen lists; ``state()['language']`` is a code."""
        return [tuple(x) for x in self.evaluate("() => window.phone.languages")]

    def evaluate(self, expression: str, arg: Any = None) -> Any:
        """Evaluate JavaScript in the phone's page (for checks beyond ``state()``)."""
        return self._b().call(lambda b: b.js(expression, arg))

    def screenshot(self) -> Image.Image:
        """The screen as the phone's screencap would return it (RGB), without going through ADB."""
        png = self._b().call(lambda b: (b.frame(), b.capture_png())[1])
        return Image.open(io.BytesIO(png)).convert("RGB")

    def element_center(self, selector: str) -> tuple[int, int]:
        """Screen pixels (input space, no override) of the centre of the first element matching ``selector``."""
        box = self.evaluate(
            "(s) => { const e = document.querySelector(s); if (!e) return null;"
            " const r = e.getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; }", selector)
        if box is None:
            raise LookupError(f"no element matches {selector!r}")
        return round(box[0] * DSF), round(box[1] * DSF)

    # --- geometry --------------------------------------------------------------------------------------------
    def _display_size(self) -> tuple[int, int]:
        """The logical display in input coordinates: the override (or panel) size, rotated."""
        w, h = self.override_size or PANEL
        return (h, w) if self.rotation % 2 else (w, h)

    def _panel_size(self) -> tuple[int, int]:
        return (PANEL[1], PANEL[0]) if self.rotation % 2 else PANEL

    def _to_css(self, x: float, y: float) -> tuple[float, float] | None:
        dw, dh = self._display_size()
        if not (0 <= x < dw and 0 <= y < dh):
            return None  # outside the display: Android delivers it to no window
        pw, ph = self._panel_size()
        return x * pw / dw / DSF, y * ph / dh / DSF

    def _set_rotation(self, rotation: int) -> None:
        self.rotation = rotation
        vp = (VIEWPORT[1], VIEWPORT[0]) if rotation % 2 else VIEWPORT

        def apply(b: _Browser) -> None:
            if b.viewport != vp:
                b.page.set_viewport_size({"width": vp[0], "height": vp[1]})
                b.viewport = vp
                b.frame()

        if self._browser is not None:
            self._browser.call(apply)

    # --- the tools ---------------------------------------------------------------------------------------------
    def _on_shell(self, kind: str, command: str) -> None:
        with self._lock:
            self.shell_lines.append((kind, command))

    def _handle_tool(self, argv: list[str], cwd: str) -> tuple[int, bytes, bytes]:
        with self._lock:
            self.commands.append(list(argv))
        name, args = argv[0], argv[1:]
        handler = getattr(self, f"_tool_{name}", None)
        if handler is None:
            return 127, b"", f"{name}: inaccessible or not found\n".encode()
        try:
            out = handler(args)
        except _Usage as exc:
            return exc.status, b"", (str(exc).rstrip("\n") + "\n").encode()
        if isinstance(out, tuple):
            return out
        if isinstance(out, str):
            out = out.encode()
        return 0, out or b"", b""

    # input ------------------------------------------------------------------------------------------------------
    def _tool_input(self, args: list[str]) -> str:
        if args and args[0] in INPUT_SOURCES:
            args = args[1:]
        if len(args) >= 2 and args[0] == "-d":
            if args[1] not in ("0", "-1"):
                raise _Usage(f"Error: display {args[1]} not found", 255)
            args = args[2:]
        if not args:
            raise _Usage(INPUT_USAGE)
        cmd, rest = args[0], args[1:]
        try:
            if cmd == "text":
                if len(rest) != 1:
                    raise _Usage("Error: Invalid arguments for command: text\n" + INPUT_USAGE)
                self._input_text(rest[0])
            elif cmd == "keyevent":
                self._input_keyevent(rest)
            elif cmd == "tap":
                x, y = _floats(rest, 2, "tap")
                self._gesture(x, y, x, y, 0)
            elif cmd in ("swipe", "draganddrop"):
                if len(rest) not in (4, 5):
                    raise _Usage(f"Error: Invalid arguments for command: {cmd}\n" + INPUT_USAGE)
                x1, y1, x2, y2 = _floats(rest[:4], 4, cmd)
                ms = int(rest[4]) if len(rest) == 5 else (300 if cmd == "swipe" else 1000)
                if ms < 0:
                    ms = 300
                self._gesture(x1, y1, x2, y2, ms, hold_first_ms=600 if cmd == "draganddrop" else 0)
            elif cmd == "motionevent":
                if len(rest) != 3:
                    raise _Usage("Error: Invalid arguments for command: motionevent\n" + INPUT_USAGE)
                x, y = _floats(rest[1:], 2, "motionevent")
                self._motion(rest[0].upper(), x, y)
            elif cmd == "keycombination":
                if rest[:1] == ["-t"]:
                    rest = rest[2:]
                if len(rest) < 2:
                    raise _Usage("Error: keycombination requires at least 2 keycodes\n" + INPUT_USAGE)
                self._keycombination([_keycode(k) for k in rest])
            elif cmd in ("press", "roll"):
                pass  # trackball: nothing on this phone reacts to it
            else:
                raise _Usage(f"Error: Unknown command: {cmd}\n" + INPUT_USAGE)
        except ValueError as exc:
            raise _Usage(f"Exception occurred while executing '{cmd}':\njava.lang.NumberFormatException: {exc}",
                         255) from None
        return ""

    def _gesture(self, x1: float, y1: float, x2: float, y2: float, ms: int, hold_first_ms: int = 0) -> None:
        a, z = self._to_css(x1, y1), self._to_css(x2, y2)
        if a is None:
            return
        if z is None:  # the finger leaves the display: clamp the path's end onto it
            dw, dh = self._display_size()
            z = self._to_css(min(max(x2, 0), dw - 1), min(max(y2, 0), dh - 1))
        moving = abs(a[0] - z[0]) > 0.5 or abs(a[1] - z[1]) > 0.5

        def run(b: _Browser) -> None:
            t0 = time.monotonic()
            b.touch("touchStart", [a])
            if hold_first_ms:
                time.sleep(hold_first_ms / 1000)
            if moving:
                steps = max(2, min(60, ms // 10 or 2))
                for i in range(1, steps + 1):
                    due = t0 + hold_first_ms / 1000 + ms / 1000 * i / steps
                    delay = due - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    f = i / steps
                    b.touch("touchMove", [(a[0] + (z[0] - a[0]) * f, a[1] + (z[1] - a[1]) * f)])
            else:
                delay = t0 + ms / 1000 - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            b.touch("touchEnd")
            if moving:
                b.settle_scroll()
            else:
                b.frame()

        self._b().call(run, timeout_s=self.browser_timeout_s + ms / 1000 + 5)

    def _motion(self, action: str, x: float, y: float) -> None:
        p = self._to_css(x, y)
        with self._lock:
            down = self._touch_down

        def run(b: _Browser) -> None:
            if action == "DOWN" and p is not None:
                b.touch("touchStart", [p])
            elif action == "MOVE" and down is not None and p is not None:
                b.touch("touchMove", [p])
            elif action == "UP" and down is not None:
                b.touch("touchEnd")
                b.settle_scroll()
            elif action == "CANCEL" and down is not None:
                b.touch("touchCancel")
            elif action not in ("DOWN", "MOVE", "UP", "CANCEL"):
                raise _Usage(f"Error: Unknown motionevent action: {action}", 255)

        self._b().call(run)
        with self._lock:
            if action == "DOWN" and p is not None:
                self._touch_down = p
            elif action in ("UP", "CANCEL"):
                self._touch_down = None

    def _input_text(self, raw: str) -> None:
        text = decode_input_text(raw)
        bad = sorted({c for c in text if not (" " <= c <= "~" or c in "\n\t")})
        if bad:  # KeyCharacterMap.getEvents() has no key events for these characters
            raise _Usage(
                "Exception occurred while executing 'text':\njava.lang.NullPointerException: Attempt to get length "
                f"of null array (no key events for {''.join(bad)!r})", 255)
        if not self._screen_on():
            return

        def run(b: _Browser) -> None:
            for part in re.split(r"([\n\t])", text):
                if part == "\n":
                    b.page.keyboard.press("Enter")
                elif part == "\t":
                    b.page.keyboard.press("Tab")
                elif part:
                    b.page.keyboard.type(part)
            b.frame()

        self._b().call(run, timeout_s=self.browser_timeout_s + len(text) * 0.05)

    def _screen_on(self) -> bool:
        return bool(self._b().call(lambda b: b.js("() => window.phone.state().screen_on")))

    def _input_keyevent(self, args: list[str]) -> None:
        longpress = False
        codes: list[int] = []
        i = 0
        while i < len(args):
            a = args[i]
            if a == "--longpress":
                longpress = True
            elif a in ("--doubletap", "--async"):
                pass
            elif a == "--delay":
                i += 1
            else:
                codes.append(_keycode(a))
            i += 1
        if not codes:
            raise _Usage("Error: Invalid arguments for command: keyevent\n" + INPUT_USAGE)
        for code in codes:
            self._key(code, longpress)

    def _key(self, code: int, longpress: bool = False) -> None:
        def run(b: _Browser) -> None:
            on = b.js("() => window.phone.state().screen_on")
            if not on and code not in _SCREEN_OFF_KEYS:
                return
            if code == 3:
                b.js("() => window.phone.home()")
            elif code == 4:
                b.js("() => window.phone.back()")
            elif code == 187:
                b.js("() => window.phone.appSwitch()")
            elif code == 26:
                b.js("() => window.phone.power()")
            elif code == 223:
                b.js("() => window.phone.power(false)")
            elif code == 224:
                b.js("() => window.phone.power(true)")
            elif code in (24, 25):
                b.js("(d) => window.phone.volume(d)", 1 if code == 24 else -1)
            elif code == 164:
                b.js("() => window.phone.set({volume: 0})")
            elif code in (220, 221):
                b.js("(d) => window.phone.set({brightness: window.phone.state().brightness + d})",
                     10 if code == 221 else -10)
            elif code in _KEY_TO_BROWSER:
                key = _KEY_TO_BROWSER[code]
                if longpress:
                    b.page.keyboard.down(key)
                    time.sleep(0.5)
                    b.page.keyboard.up(key)
                else:
                    b.page.keyboard.press(key)
            # other keys (MENU, SEARCH, CALL, media keys, ...) reach no app on this phone
            b.frame()

        self._b().call(run)

    def _keycombination(self, codes: list[int]) -> None:
        keys = [_KEY_TO_BROWSER[c] for c in codes if c in _KEY_TO_BROWSER]

        def run(b: _Browser) -> None:
            for k in keys:
                b.page.keyboard.down(k)
            for k in reversed(keys):
                b.page.keyboard.up(k)
            b.frame()

        self._b().call(run)

    # screencap ---------------------------------------------------------------------------------------------------
    def _tool_screencap(self, args: list[str]) -> tuple[int, bytes, bytes]:
        png = False
        path = None
        i = 0
        while i < len(args):
            a = args[i]
            if a == "-p":
                png = True
            elif a == "-h":
                raise _Usage("usage: screencap [-hp] [-d display-id] [FILENAME]\n   -h: this message\n"
                             "   -p: save the file as a png.\n   -d: specify the display ID to capture")
            elif a == "-d":
                i += 1
                if i >= len(args) or args[i] not in ("0",):
                    raise _Usage(f"Display Id '{args[i] if i < len(args) else ''}' is not valid.")
            elif a.startswith("-"):
                raise _Usage(f"screencap: invalid option -- '{a.lstrip('-')}'")
            else:
                path = a
            i += 1
        if path is not None:
            raise _Usage(f"Error opening file: {path} (Read-only file system): the simulator writes screenshots "
                         "to stdout only (use exec-out screencap)")
        data = self._b().call(lambda b: (b.frame(), b.capture_png())[1])
        if png:
            return 0, data, b""
        return 0, self.raw_screencap(data), b""

    def raw_screencap(self, png: bytes | None = None) -> bytes:
        """What ``screencap`` (no ``-p``) writes: w, h, format (1 = RGBA_8888)[, colorspace], then RGBA rows."""
        if png is None:
            png = self._b().call(lambda b: (b.frame(), b.capture_png())[1])
        im = Image.open(io.BytesIO(png)).convert("RGBA")
        w, h = im.size
        head = struct.pack("<III", w, h, PIXEL_FORMAT_RGBA_8888)
        if self.screencap_header == 16:
            head += struct.pack("<I", COLORSPACE_SRGB)
        return head + im.tobytes()

    # wm ---------------------------------------------------------------------------------------------------------
    def _tool_wm(self, args: list[str]) -> str:
        if not args:
            raise _Usage("Window manager (window) commands:\n  size [reset|WxH|WdpxHdp]\n  density [reset|DENSITY]")
        cmd, rest = args[0], args[1:]
        if rest[:1] == ["-d"]:
            rest = rest[2:]
        if cmd == "size":
            if not rest:
                out = f"Physical size: {PANEL[0]}x{PANEL[1]}\n"
                if self.override_size:
                    out += f"Override size: {self.override_size[0]}x{self.override_size[1]}\n"
                return out
            if rest[0] == "reset":
                self.override_size = None
                return ""
            m = re.fullmatch(r"(\d+)x(\d+)", rest[0])
            if not m:
                raise _Usage(f"Error: bad size {rest[0]}", 255)
            w, h = int(m.group(1)), int(m.group(2))
            if not (100 <= w <= 10000 and 100 <= h <= 10000):
                raise _Usage(f"Error: bad size {rest[0]}", 255)
            self.override_size = None if (w, h) == PANEL else (w, h)
            return ""
        if cmd == "density":
            if not rest:
                out = f"Physical density: {DENSITY}\n"
                if self.override_density:
                    out += f"Override density: {self.override_density}\n"
                return out
            if rest[0] == "reset":
                self.override_density = None
                return ""
            if not rest[0].isdigit() or not 72 <= int(rest[0]) <= 2000:
                raise _Usage(f"Error: bad density {rest[0]}", 255)
            self.override_density = None if int(rest[0]) == DENSITY else int(rest[0])
            return ""
        raise _Usage(f"Unknown command: {cmd}", 255)

    # settings ------------------------------------------------------------------------------------------------------
    def _tool_settings(self, args: list[str]) -> str:
        if args[:1] == ["--user"]:
            args = args[2:]
        if not args:
            raise _Usage("usage:  settings [--user <USER_ID> | current] get namespace key\n"
                         "        settings [--user <USER_ID> | current] put namespace key value\n"
                         "        settings [--user <USER_ID> | current] delete namespace key\n"
                         "        settings [--user <USER_ID> | current] list namespace")
        verb, rest = args[0], args[1:]
        if verb not in ("get", "put", "delete", "list"):
            raise _Usage(f"Invalid command: {verb}")
        if not rest or rest[0] not in ("system", "secure", "global"):
            raise _Usage(f"Invalid namespace '{rest[0] if rest else ''}'")
        ns = rest[0]
        if verb == "list":
            values = dict(self._plain_settings[ns])
            values.update({k: self._get_setting(ns, k) for (n, k) in _LINKED if n == ns})
            values["user_rotation"] = str(self.rotation) if ns == "system" else values.get("user_rotation", "")
            return "".join(f"{k}={v}\n" for k, v in sorted(values.items()) if v != "")
        if len(rest) < 2:
            raise _Usage("Invalid arguments")
        key = rest[1]
        if verb == "get":
            return self._get_setting(ns, key) + "\n"
        if verb == "delete":
            self._plain_settings[ns].pop(key, None)
            return "Deleted 1 rows\n"
        if len(rest) < 3:
            raise _Usage("Invalid arguments")
        self._put_setting(ns, key, rest[2])
        return ""

    def _get_setting(self, ns: str, key: str) -> str:
        if (ns, key) == ("system", "user_rotation"):
            return str(self.rotation)
        if (ns, key) == ("secure", "default_input_method"):
            return self.ime
        link = _LINKED.get((ns, key))
        if link is not None:
            st = self._b().call(lambda b: b.js("() => window.phone.state()"))
            return link[1](st[link[0]])
        return self._plain_settings[ns].get(key, "null")

    def _put_setting(self, ns: str, key: str, value: str) -> None:
        if (ns, key) == ("system", "user_rotation"):
            if value not in ("0", "1", "2", "3"):
                raise _Usage(f"Invalid rotation {value}", 255)
            self._set_rotation(int(value))
            return
        link = _LINKED.get((ns, key))
        if link is not None:
            try:
                v = link[2](value)
            except ValueError:
                raise _Usage(f"Invalid value {value!r} for {ns} {key}", 255) from None
            try:
                self._b().call(lambda b: (b.js("(p) => window.phone.set(p)", {link[0]: v}), b.frame()))
            except Exception as exc:
                raise _Usage(f"Error: {str(exc).splitlines()[0]}", 255) from None
            return
        self._plain_settings[ns][key] = value

    # getprop ----------------------------------------------------------------------------------------------------
    def _tool_getprop(self, args: list[str]) -> str:
        props = dict(PROPS)
        st = self._b().call(lambda b: b.js("() => window.phone.state()"))
        props["persist.sys.locale"] = st["language"]
        if not args:
            return "".join(f"[{k}]: [{v}]\n" for k, v in sorted(props.items()))
        if args[0] in props:
            return props[args[0]] + "\n"
        return (args[1] + "\n") if len(args) > 1 else "\n"

    # dumpsys ----------------------------------------------------------------------------------------------------
    def _tool_dumpsys(self, args: list[str]) -> str:
        if not args:
            return "Currently running services:\n  activity\n  display\n  input\n  input_method\n  window\n"
        service = args[0]
        dw, dh = self._display_size()
        pw, ph = self._panel_size()
        if service == "input":
            return (
                "INPUT MANAGER (dumpsys input)\n\nInput Manager State:\n  Interactive: true\n"
                "  Pointer Speed: 0\n  Show Touches: false\n  Display Viewports:\n"
                f"    Viewport INTERNAL: displayId=0, uniqueId=local:0, port=0, orientation={self.rotation}, "
                f"logicalFrame=[0, 0, {dw}, {dh}], physicalFrame=[0, 0, {pw}, {ph}], "
                f"deviceSize=[{PANEL[0]}, {PANEL[1]}], isActive=[1]\n\nInput Reader State:\n"
                "  Device 2: sim_touchscreen\n    Sources: TOUCHSCREEN\n    Touch Input Mapper (mode - DIRECT):\n"
                f"      SurfaceWidth: {dw}px\n      SurfaceHeight: {dh}px\n      SurfaceLeft: 0\n"
                f"      SurfaceTop: 0\n      SurfaceOrientation: {self.rotation}\n"
            )
        if service == "window":
            st = self._b().call(lambda b: b.js("() => window.phone.state()"))
            screen = st["current_screen"]
            pkg, act = ACTIVITIES.get(screen.split(".")[0], ACTIVITIES["home"])
            if screen.startswith("settings."):
                act = ".SubSettings"
            win = f"Window{{5a1c0de u0 {pkg}/{pkg}{act}}}"
            return (
                "WINDOW MANAGER DISPLAY CONTENTS (dumpsys window displays)\n  Display: mDisplayId=0\n"
                f"    init={PANEL[0]}x{PANEL[1]} {DENSITY}dpi cur={dw}x{dh} app={dw}x{dh} rng={dw}x{dh}\n"
                f"  mCurrentFocus={win}\n  mFocusedApp=ActivityRecord{{77c0ffe u0 {pkg}/{act} t7}}\n"
                f"  mRotation={self.rotation}\n"
            )
        if service == "input_method":
            return f"  mCurSelectedId={self.ime}\n  mEnabledInputMethods={','.join(sorted(self.enabled_imes))}\n"
        return f"Can't find service: {service}\n"

    # am ---------------------------------------------------------------------------------------------------------
    def _tool_am(self, args: list[str]) -> tuple[int, bytes, bytes] | str:
        if not args:
            raise _Usage("Activity manager (activity) commands:\n  start [options] INTENT\n"
                         "  broadcast [options] INTENT\n  force-stop PACKAGE")
        verb, rest = args[0], args[1:]
        if verb in ("start", "start-activity"):
            intent = _parse_intent(rest)
            text = _intent_text(intent)
            screen = self._resolve(intent)
            if screen is None:
                return 1, f"Starting: Intent {{ {text} }}\n".encode(), (
                    f"Error: Activity not started, unable to resolve Intent {{ {text} flg=0x10000000 }}\n").encode()
            if screen.startswith("url:"):
                self._b().call(lambda b: (b.js("(u) => window.phone.openUrl(u)", screen[4:]), b.frame()))
            else:
                self._b().call(lambda b: (b.js("(s) => window.phone.openScreen(s)", screen), b.frame()))
            return f"Starting: Intent {{ {text} }}\n"
        if verb == "broadcast":
            intent = _parse_intent(rest)
            out = f"Broadcasting: Intent {{ act={intent['action']} flg=0x400000 (has extras) }}\n"
            self._adbkeyboard(intent)
            return out + "Broadcast completed: result=0\n"
        if verb == "force-stop":
            if rest and PACKAGE_SCREENS.get(rest[0]) is not None:
                st = self._b().call(lambda b: b.js("() => window.phone.state()"))
                if st["current_screen"].split(".")[0] == PACKAGE_SCREENS[rest[0]]:
                    self._b().call(lambda b: (b.js("() => window.phone.home()"), b.frame()))
            return ""
        raise _Usage(f"Error: unknown command '{verb}'", 255)

    def _resolve(self, intent: dict[str, Any]) -> str | None:
        action, data, comp = intent["action"], intent["data"], intent["component"]
        cats = intent["categories"]
        if comp:
            pkg = comp.split("/")[0]
            screen = PACKAGE_SCREENS.get(pkg)
            if screen == "browser" and data:
                return "url:" + data
            return screen
        if action in SETTINGS_ACTIONS:
            return SETTINGS_ACTIONS[action]
        if action == "android.intent.action.VIEW" and data:
            if re.match(r"(?i)^(https?|about|file|data|javascript):", data) or re.match(
                    r"^[\w.-]+\.[a-z]{2,}(/|$)", data):
                return "url:" + data
            return None
        if action == "android.intent.action.MAIN" and "android.intent.category.HOME" in cats:
            return "home"
        return None

    def _adbkeyboard(self, intent: dict[str, Any]) -> None:
        """ADBKeyBoard's receiver: commits text through the input method (any Unicode) when it is the IME."""
        action = intent["action"]
        if not action.startswith("ADB_") or not self.adbkeyboard_installed or self.ime != ADBKEYBOARD_IME:
            return
        extras = intent["extras"]
        if action == "ADB_INPUT_TEXT":
            text = extras.get("msg", "")
        elif action == "ADB_INPUT_B64":
            try:
                text = base64.b64decode(extras.get("msg", ""), validate=True).decode("utf-8")
            except ValueError:
                return
        elif action == "ADB_INPUT_CODE":
            try:
                self._key(int(extras.get("code", "0")))
            except ValueError:
                pass
            return
        elif action == "ADB_CLEAR_TEXT":
            self._b().call(lambda b: b.js(
                "() => { const e = document.activeElement; if (e && 'value' in e) { e.value = '';"
                " e.dispatchEvent(new Event('input', {bubbles: true})); } }"))
            return
        else:
            return
        if self._screen_on():
            self._b().call(lambda b: (b.js("(t) => window.phone.insertText(t)", text), b.frame()))

    # ime / cmd / svc -----------------------------------------------------------------------------------------------
    def _installed_imes(self) -> list[str]:
        return [LATIN_IME] + ([ADBKEYBOARD_IME] if self.adbkeyboard_installed else [])

    def _tool_ime(self, args: list[str]) -> str:
        if not args:
            raise _Usage("ime <command>:\n  list [-a] [-s]\n  enable [--user <USER_ID>] <ID>\n"
                         "  disable [--user <USER_ID>] <ID>\n  set [--user <USER_ID>] <ID>")
        verb, rest = args[0], [a for a in args[1:] if not a.startswith("-")]
        if verb == "list":
            shown = self._installed_imes() if "-a" in args else sorted(self.enabled_imes)
            return "".join(f"{i}\n" for i in shown)
        if not rest:
            raise _Usage(f"Error: no input method id given to '{verb}'", 255)
        ime = rest[0]
        if verb == "enable":
            if ime not in self._installed_imes():
                return f"Unknown input method {ime} cannot be enabled for user #0\n"
            self.enabled_imes.add(ime)
            return f"Input method {ime}: now enabled for user #0\n"
        if verb == "disable":
            self.enabled_imes.discard(ime)
            if self.ime == ime:
                self.ime = LATIN_IME
            return f"Input method {ime}: now disabled for user #0\n"
        if verb == "set":
            if ime not in self._installed_imes():
                return f"Unknown input method {ime} cannot be selected for user #0\n"
            self.enabled_imes.add(ime)
            self.ime = ime
            return f"Input method {ime} selected for user #0\n"
        raise _Usage(f"Unknown command: {verb}", 255)

    def _tool_cmd(self, args: list[str]) -> tuple[int, bytes, bytes] | str:
        if not args:
            raise _Usage("cmd: No service specified; use -l to list all running services.", 20)
        service, rest = args[0], args[1:]
        if service == "-l":
            return "Currently running services:\n  connectivity\n  input\n  settings\n  uimode\n  wifi\n"
        if service == "input":
            return self._tool_input(rest)
        if service == "settings":
            return self._tool_settings(rest)
        if service == "uimode" and rest[:1] == ["night"]:
            if len(rest) == 1:
                dark = self.state()["dark_mode"]
                return f"Night mode: {'yes' if dark else 'no'}\n"
            if rest[1] not in ("yes", "no", "auto"):
                raise _Usage(f"Error: mode must be 'yes', 'no', or 'auto'", 255)
            dark = rest[1] == "yes"
            self._b().call(lambda b: (b.js("(p) => window.phone.set(p)", {"dark_mode": dark}), b.frame()))
            return f"Night mode: {rest[1]}\n"
        if service == "wifi" and rest[:1] == ["set-wifi-enabled"] and len(rest) == 2:
            on = rest[1] == "enabled"
            self._b().call(lambda b: (b.js("(p) => window.phone.set(p)", {"wifi": on}), b.frame()))
            return ""
        if service == "connectivity" and rest[:1] == ["airplane-mode"]:
            if len(rest) == 1:
                return ("enabled" if self.state()["airplane_mode"] else "disabled") + "\n"
            on = rest[1] == "enable"
            self._b().call(lambda b: (b.js("(p) => window.phone.set(p)", {"airplane_mode": on}), b.frame()))
            return ""
        if service in ("uimode", "wifi", "connectivity"):
            raise _Usage(f"Unknown command: {' '.join(rest)}", 255)
        return 20, b"", f"cmd: Can't find service: {service}\n".encode()

    def _tool_svc(self, args: list[str]) -> str:
        if len(args) >= 2 and args[0] == "wifi" and args[1] in ("enable", "disable"):
            on = args[1] == "enable"
            self._b().call(lambda b: (b.js("(p) => window.phone.set(p)", {"wifi": on}), b.frame()))
            return ""
        if len(args) >= 2 and args[0] == "power" and args[1] == "stayon":
            return ""
        raise _Usage("Available commands:\n    wifi enable|disable\n    power stayon [true|false|usb|ac|wireless]")


# --- helpers ---------------------------------------------------------------------------------------------------
def decode_input_text(text: str) -> str:
    """What Android's ``input text`` types for its argument: ``%s`` becomes a space, everything else is literal.

    This is the exact loop of ``Input.sendText`` / ``InputShellCommand.sendText``: a ``%`` arms an escape, and a
    following ``s`` is replaced by a space (the ``%`` is dropped); any other character disarms it.
    """
    buf = list(text)
    escape = False
    i = 0
    while i < len(buf):
        if escape:
            escape = False
            if buf[i] == "s":
                buf[i] = " "
                del buf[i - 1]
                i -= 1
        if buf[i] == "%":
            escape = True
        i += 1
    return "".join(buf)


def _floats(args: list[str], n: int, cmd: str) -> list[float]:
    if len(args) != n:
        raise _Usage(f"Error: Invalid arguments for command: {cmd}\n" + INPUT_USAGE)
    out = []
    for a in args:
        try:
            out.append(float(a))
        except ValueError:
            raise ValueError(f'For input string: "{a}"') from None
    return out


def _keycode(name: str) -> int:
    if name.lstrip("-").isdigit():
        return int(name)
    key = name.upper()
    key = key[len("KEYCODE_"):] if key.startswith("KEYCODE_") else key
    if key in KEYCODES:
        return KEYCODES[key]
    raise _Usage(f"Error: Unknown keycode: {name}", 255)


def _parse_intent(args: list[str]) -> dict[str, Any]:
    intent: dict[str, Any] = {"action": None, "data": None, "component": None, "categories": [], "extras": {}}
    i = 0
    while i < len(args):
        a = args[i]
        nxt = args[i + 1] if i + 1 < len(args) else None
        if a == "-a":
            intent["action"] = nxt
            i += 2
        elif a == "-d":
            intent["data"] = nxt
            i += 2
        elif a == "-n":
            intent["component"] = nxt
            i += 2
        elif a == "-c":
            intent["categories"].append(nxt)
            i += 2
        elif a in ("-t", "-f", "--user", "-p", "-e", "--receiver-permission"):
            i += 2
        elif a in ("--es", "--ei", "--ez", "--el", "--ef", "--eu", "--esa", "-e"):
            if i + 2 < len(args):
                intent["extras"][args[i + 1]] = args[i + 2]
            i += 3
        elif a.startswith("-"):
            i += 1
        else:
            if intent["data"] is None and ":" in a:
                intent["data"] = a
            elif intent["component"] is None and "/" in a:
                intent["component"] = a
            i += 1
    if intent["action"] is None and intent["component"] is None and intent["data"] is None:
        raise _Usage("Error: Intent does not match any activities: no action, data or component given", 255)
    intent["action"] = intent["action"] or ("android.intent.action.VIEW" if intent["data"] else
                                            "android.intent.action.MAIN")
    return intent


def _intent_text(intent: dict[str, Any]) -> str:
    parts = [f"act={intent['action']}"]
    if intent["categories"]:
        parts.append("cat=[" + ",".join(intent["categories"]) + "]")
    if intent["data"]:
        parts.append(f"dat={intent['data']}")
    if intent["component"]:
        parts.append(f"cmp={intent['component']}")
    return " ".join(parts)


def _auth_keys(auth: Any) -> list[str] | None:
    if auth is None:
        return None
    if isinstance(auth, str) and auth == "refuse":
        return []
    items = [auth] if isinstance(auth, (str, bytes, Path)) else list(auth)
    keys = []
    for item in items:
        if isinstance(item, Path) or (isinstance(item, str) and not item.strip().startswith("QAAAA")
                                      and Path(item).is_file()):
            keys.append(Path(item).read_text())
        else:
            keys.append(item.decode() if isinstance(item, bytes) else item)
    return keys


def format_command(argv: list[str]) -> str:
    """A readable form of one recorded tool call."""
    return " ".join(shlex.quote(a) for a in argv)


def dumps_state(state: dict[str, Any]) -> str:
    return json.dumps(state, ensure_ascii=False, sort_keys=True)
