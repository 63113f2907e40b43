"""The desktop actuator: pyautogui input and mss screenshots on an X11 display (a real session or Xvfb).

Coordinates. Actions carry screenshot pixels. pyautogui moves the pointer in the X server's root-window
coordinates, which are what ``pyautogui.size()`` reports. On X11 these are normally the same pixels that mss
captures, but under a scaling compositor (XWayland with fractional scaling, ``xrandr --scale``) they are not, so
the ratio is *measured* when the actuator starts -- screenshot size (mss, the whole X screen) over
``pyautogui.size()`` -- and every point goes through ``screenshot_to_logical``. It is measured again when the
actuator reconnects (a screenshot failed on a live server: it restarted, or the screen shrank); a screen that
grows keeps being captured at its old size until a new actuator is made.

Text. pyautogui's ``write`` sends keysyms that exist in the keymap and assumes a US layout for shifted
symbols; it cannot type Chinese. So text goes out one of three ways (``text_input``):

- ``"xdotool"``: ``xdotool type --delay MS -- TEXT``. Layout-aware for characters the keymap has (it finds the
  key and modifiers itself). For characters the keymap lacks (CJK), plain xdotool rebinds one scratch keycode
  per character, and an application reads the keymap *lazily*, when it handles the event: one that lags (it
  renders a CJK glyph for the first time) reads a later binding and shows the wrong character -- our own tests
  got ``你世世世界`` for ``你好，世界``. So before calling xdotool the actuator binds each such character to its
  own spare keycode (one with no keysyms) and leaves the bindings in place until the characters are needed no
  more (``close()`` removes them): xdotool finds them in the keymap, rebinds nothing, and there is no race.
  Text with more distinct such characters than spare keycodes (Xvfb has about 19) is typed in chunks with a
  pause between them. Works in terminals, where Ctrl+V does not paste.
- ``"clipboard"``: ``xclip -selection clipboard`` holds the text (read back to make sure it is served), then the
  paste chord (``paste_keys``, default Ctrl+V) is pressed: the application receives the whole string at once,
  exactly. It replaces what was in the clipboard, and needs an application that pastes on that chord.
- ``"auto"`` (default): ASCII text through xdotool, anything else through the clipboard (one atomic paste, no
  keymap changes at all); falling back to the other tool (or to pyautogui for ASCII) when one is missing.
- ``"pyautogui"``: ``pyautogui.write``, ASCII only, no subprocess.

Model text is untrusted: it is passed to xdotool and xclip as a list argument / stdin, never through a shell,
after ``--`` so a leading ``-`` is text, not an option. Control characters other than newline, tab and carriage
return are refused.

The display. pyautogui (through python-xlib) connects to ``$DISPLAY`` when it is imported and needs an existing
Xauthority file (``$XAUTHORITY`` or ``~/.Xauthority``). It is imported here lazily, against this actuator's
display; a missing display or Xauthority file is an ``ActuatorError`` that says what to do. pyautogui is a
process-wide singleton: an actuator rebinds it to its own display before each action, so several actuators (on
several displays) can take turns in one process. A display that went away (server killed) is found by an X11
handshake with a timeout, so a screenshot raises ``ActuatorError`` and an action returns an error ``Outcome``
instead of hanging or failing with python-xlib's internal errors.

Subprocesses (xdotool, xclip) are always run with an argument list and a timeout.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import math
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from PIL import Image

from .actions import (
    Action, ActionError, Click, Drag, End, Hover, KeyPress, LongPress, Point, Scroll, TypeText, Wait, normalize_key,
)
from .base import ActionFailed, ActuatorError, BaseActuator, OutOfBounds

log = logging.getLogger(__name__)

TEXT_INPUTS = ("auto", "xdotool", "clipboard", "pyautogui")

# Canonical key names (actions.KEY_NAMES) -> pyautogui key names. Single characters map to themselves.
PYAUTOGUI_KEYS: dict[str, str] = {
    "enter": "enter", "tab": "tab", "escape": "escape", "backspace": "backspace", "delete": "delete",
    "space": "space", "insert": "insert", "up": "up", "down": "down", "left": "left", "right": "right",
    "home": "home", "end": "end", "pageup": "pageup", "pagedown": "pagedown",
    "ctrl": "ctrl", "alt": "alt", "shift": "shift", "meta": "winleft",
    "capslock": "capslock", "printscreen": "printscreen", "menu": "apps",
    **{f"f{i}": f"f{i}" for i in range(1, 13)},
}

# Phone keys a desktop has no equivalent for; the Outcome says what to use instead.
NO_DESKTOP_KEY: dict[str, str] = {
    "back": "a desktop has no back key; in a browser press alt+left",
    "app_switch": "a desktop has no app-switch key; press alt+tab",
    "volume_up": "volume keys are not available through the X keyboard here",
    "volume_down": "volume keys are not available through the X keyboard here",
    "power": "a desktop actuator does not press a power key",
    "search": "a desktop has no search key",
}

MODIFIERS = frozenset({"ctrl", "alt", "shift", "meta"})

_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

# pyautogui and the process environment are process-wide: one lock around importing and rebinding them.
_X_LOCK = threading.RLock()


# --- geometry --------------------------------------------------------------------------------------------------
def screenshot_to_logical(point: Point, scale: tuple[float, float], origin: tuple[int, int] = (0, 0),
                          logical_size: tuple[int, int] | None = None) -> tuple[int, int]:
    """The logical (pyautogui) pixel that holds the centre of screenshot pixel ``point``.

    ``scale`` is screenshot pixels per logical pixel on each axis (2.0 on a 200% HiDPI screen); ``origin`` is
    the screenshot's top-left corner in physical root-window pixels (non-zero when one monitor of several is
    captured). The result is clamped into ``logical_size`` when it is given.
    """
    sx, sy = scale
    if not (sx > 0 and sy > 0 and math.isfinite(sx) and math.isfinite(sy)):
        raise ValueError(f"scale must be two positive numbers, got {scale!r}")
    x = math.floor((origin[0] + point[0] + 0.5) / sx)
    y = math.floor((origin[1] + point[1] + 0.5) / sy)
    if logical_size is not None:
        x = min(max(x, 0), logical_size[0] - 1)
        y = min(max(y, 0), logical_size[1] - 1)
    return x, y


# --- the X server ----------------------------------------------------------------------------------------------
def _parse_display(name: str) -> tuple[str, int]:
    m = re.fullmatch(r"(?P<host>[^:]*):(?P<num>\d+)(?:\.\d+)?", name.strip())
    if not m:
        raise ActuatorError(f"DISPLAY {name!r} is not an X display name like ':0' or 'host:1'")
    return m.group("host"), int(m.group("num"))


def probe_display(name: str, timeout: float = 2.0) -> str | None:
    """``None`` when an X server answers the connection setup on ``name`` within ``timeout``; else the reason.

    A real handshake, not just a socket that exists: a killed server leaves its socket file behind. Any reply
    (even "authorization refused") counts as alive; no reply in time counts as unreachable, so nothing hangs.
    """
    host, num = _parse_display(name)
    request = struct.pack("<cxHHHHxx", b"l", 11, 0, 0, 0)
    if host in ("", "unix"):
        targets: list[tuple[int, Any]] = [
            (socket.AF_UNIX, f"\0/tmp/.X11-unix/X{num}"), (socket.AF_UNIX, f"/tmp/.X11-unix/X{num}")
        ]
    else:
        targets = [(socket.AF_INET, (host, 6000 + num))]
    reason = "no server"
    for family, address in targets:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
            sock.sendall(request)
            if sock.recv(1) in (b"\x00", b"\x01", b"\x02"):
                return None
            reason = "the server closed the connection without answering"
        except socket.timeout:
            reason = f"no answer within {timeout:g}s"
        except OSError as exc:
            reason = exc.strerror or str(exc) or type(exc).__name__
        finally:
            sock.close()
    return reason


def _resolve_xauthority(explicit: str | None, create: bool) -> tuple[str, bool]:
    """The Xauthority file to use and whether it was created now; ``ActuatorError`` saying what to do if none."""
    if explicit:
        path, source = Path(explicit).expanduser(), "the xauthority setting"
    elif os.environ.get("XAUTHORITY"):
        path, source = Path(os.environ["XAUTHORITY"]), "XAUTHORITY"
    else:
        try:
            path, source = Path.home() / ".Xauthority", "~/.Xauthority"
        except RuntimeError:
            raise ActuatorError("no Xauthority file: HOME is not set and neither is XAUTHORITY; set XAUTHORITY to "
                                "an existing file (an empty one is enough for Xvfb)") from None
    if path.is_file():
        return str(path), False
    if create:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
        except FileExistsError:
            pass
        except OSError as exc:
            raise ActuatorError(f"could not create the Xauthority file {path}: {exc}") from exc
        log.warning("created an empty Xauthority file at %s (create_xauthority is on)", path)
        return str(path), True
    if source == "~/.Xauthority":
        raise ActuatorError(
            f"no Xauthority file ({path} does not exist and XAUTHORITY is not set); pyautogui's X library will not "
            "connect without one: for Xvfb run `touch ~/.Xauthority`, on a desktop session set XAUTHORITY to the "
            "session's cookie file, or set create_xauthority: true in the desktop actuator config"
        )
    raise ActuatorError(f"the Xauthority file {path} named by {source} does not exist: create it (`touch {path}` "
                        "is enough for Xvfb) or point XAUTHORITY at the X session's cookie file")


def _retry(fn: Any, seconds: float = 1.0) -> Any:
    """Call ``fn`` again for up to ``seconds`` if it raises: an Xvfb started without ``-noreset`` resets (and
    refuses connections for a moment) each time its last client leaves -- our own liveness probe, for one."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return fn()
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class _Env:
    """Temporarily set DISPLAY / XAUTHORITY in ``os.environ`` (python-xlib reads them when it connects)."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.saved: dict[str, str | None] = {}

    def __enter__(self) -> None:
        self.saved = {k: os.environ.get(k) for k in self.values}
        os.environ.update(self.values)

    def __exit__(self, *exc: Any) -> None:
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _import_pyautogui(env: dict[str, str]) -> Any:
    with _X_LOCK, _Env(env):
        try:
            pyautogui = _retry(lambda: importlib.import_module("pyautogui"))
        except ImportError as exc:
            raise ActuatorError(f"pyautogui is not installed ({exc}): pip install pyautogui python-xlib") from exc
        except Exception as exc:  # python-xlib's connection/auth errors, raised at import time
            raise ActuatorError(f"pyautogui could not connect to X display {env['DISPLAY']}: "
                                f"{type(exc).__name__}: {exc}") from exc
    return pyautogui


def _pyautogui_display_name(pyautogui: Any) -> str | None:
    backend = getattr(pyautogui, "_pyautogui_x11", None) or getattr(pyautogui, "platformModule", None)
    disp = getattr(backend, "_display", None)
    try:
        return disp.get_display_name() if disp is not None else None
    except Exception:
        return None


def _pyautogui_connection_dead(pyautogui: Any) -> bool:
    """True when pyautogui's X connection has failed or its server closed it (EOF waiting on the socket).

    python-xlib, asked to talk on such a connection, may raise an odd error or wait for a reply forever; this
    looks at the socket without sending anything.
    """
    backend = getattr(pyautogui, "_pyautogui_x11", None)
    disp = getattr(backend, "_display", None)
    conn = getattr(disp, "display", None)
    if conn is None:
        return True
    if getattr(conn, "socket_error", None) is not None:
        return True
    sock = getattr(conn, "socket", None)
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if readable:
            return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True
    return False


def _bind_pyautogui(pyautogui: Any, env: dict[str, str]) -> None:
    """Point pyautogui's X11 backend (a module-level connection and keymap) at ``env['DISPLAY']``.

    pyautogui 0.9.x opens its connection and reads the keymap when ``pyautogui._pyautogui_x11`` is imported;
    reloading that module with DISPLAY set is the one way to move it to another display (or to reconnect after
    the server restarted) that keeps its keymap consistent with the new server.
    """
    with _X_LOCK:
        backend = getattr(pyautogui, "_pyautogui_x11", None)
        if backend is None:
            raise ActuatorError("pyautogui has no X11 backend on this platform; the desktop actuator needs X11")
        old = getattr(backend, "_display", None)
        with _Env(env):
            try:
                _retry(lambda: importlib.reload(backend))
            except Exception as exc:
                raise ActuatorError(f"pyautogui could not connect to X display {env['DISPLAY']}: "
                                    f"{type(exc).__name__}: {exc}") from exc
        if old is not None and old is not backend._display:
            try:
                old.close()
            except Exception:
                pass
        pyautogui.platformModule = backend
        w, h = backend._size()
        pyautogui.FAILSAFE_POINTS[:] = [(0, 0), (0, h - 1), (w - 1, 0), (w - 1, h - 1)]


class DesktopActuator(BaseActuator):
    """Mouse and keyboard on an X display through pyautogui; screenshots through mss (PIL RGB)."""

    name = "desktop"
    supported = frozenset({Click, Hover, TypeText, KeyPress, Scroll, Drag, LongPress, Wait, End})

    def __init__(
        self,
        *,
        display: str | None = None,
        xauthority: str | None = None,
        create_xauthority: bool = False,
        failsafe: bool = True,
        out_of_bounds: OutOfBounds = "refuse",
        monitor: int = 0,
        text_input: str = "auto",
        type_delay_ms: int = 12,
        paste_keys: tuple[str, ...] = ("ctrl", "v"),
        focus_settle_seconds: float = 0.05,
        settle_seconds: float = 0.05,
        drag_seconds: float = 0.3,
        chunk_pause_seconds: float = 0.3,
        command_timeout: float = 10.0,
        probe_timeout: float = 2.0,
    ) -> None:
        """
        display: X display name; default ``$DISPLAY``.  xauthority: Xauthority file; default ``$XAUTHORITY`` or
        ``~/.Xauthority``; ``create_xauthority`` creates an empty one when it is missing (off: a missing file is an
        error saying what to do).  failsafe: pyautogui's fail-safe (a person moving the mouse into a screen
        corner stops the agent: the next action fails); the actuator itself never parks the pointer on a corner.
        monitor: mss monitor index; 0 is the whole X screen.  text_input: auto | xdotool | clipboard | pyautogui
        (see the module docstring).  type_delay_ms: xdotool's delay between keys.  paste_keys: the chord that
        pastes in the target application.  focus_settle_seconds: pause between the focusing click and typing.
        settle_seconds: pause after each action before it counts as done.  drag_seconds: how long a drag takes
        to move.  chunk_pause_seconds: pause between xdotool chunks when the spare keycodes are too few for the
        text's characters (see the module docstring).  command_timeout: limit for each xdotool / xclip call
        (typing adds time per character).  probe_timeout: limit for the X handshake that checks whether the
        display is alive.
        """
        super().__init__(out_of_bounds=out_of_bounds)
        if text_input not in TEXT_INPUTS:
            raise ValueError(f"text_input must be one of {', '.join(TEXT_INPUTS)}, got {text_input!r}")
        if not isinstance(monitor, int) or monitor < 0:
            raise ValueError(f"monitor must be a monitor index >= 0, got {monitor!r}")
        for label, value in (("type_delay_ms", type_delay_ms), ("focus_settle_seconds", focus_settle_seconds),
                             ("settle_seconds", settle_seconds), ("drag_seconds", drag_seconds),
                             ("chunk_pause_seconds", chunk_pause_seconds)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value <= 60_000:
                raise ValueError(f"{label} must be a non-negative number, got {value!r}")
        for label, value in (("command_timeout", command_timeout), ("probe_timeout", probe_timeout)):
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
                raise ValueError(f"{label} must be a positive number of seconds, got {value!r}")
        self.failsafe = bool(failsafe)
        self.monitor = monitor
        self.text_input = text_input
        self.type_delay_ms = int(type_delay_ms)
        try:
            self.paste_keys = tuple(normalize_key(k) for k in paste_keys)
        except ActionError as exc:
            raise ValueError(f"paste_keys: {exc}") from None
        self.focus_settle_seconds = float(focus_settle_seconds)
        self.settle_seconds = float(settle_seconds)
        self.drag_seconds = float(drag_seconds)
        self.chunk_pause_seconds = float(chunk_pause_seconds)
        self.command_timeout = float(command_timeout)
        self.probe_timeout = float(probe_timeout)
        self.notes: list[str] = []
        self._closed = False
        self._sct: Any = None
        self._needs_rebind = False
        self._bound_keys: dict[int, int] = {}  # spare keycode -> keysym we bound to it (xdotool text)

        name = display or os.environ.get("DISPLAY")
        if not name:
            raise ActuatorError(
                "no X display: DISPLAY is not set; start an X server (e.g. `Xvfb :99 -screen 0 1280x800x24 "
                "-nolisten tcp &` then `export DISPLAY=:99`) or set display in the desktop actuator config"
            )
        _parse_display(name)
        self.display = name
        self.xauthority, created = _resolve_xauthority(xauthority, create_xauthority)
        if created:
            self.notes.append(f"created empty Xauthority file {self.xauthority}")
        self._env = {"DISPLAY": self.display, "XAUTHORITY": self.xauthority}
        reason = probe_display(self.display, self.probe_timeout)
        if reason:
            raise ActuatorError(
                f"cannot reach X display {self.display} ({reason}): is the X server running? Start one (e.g. "
                f"`Xvfb {self.display} -screen 0 1280x800x24 -nolisten tcp &`) or set DISPLAY to a running display"
            )
        self.xdotool = shutil.which("xdotool")
        self.xclip = shutil.which("xclip")
        self._pg = _import_pyautogui(self._env)
        self._pg.PAUSE = 0
        self._connect()

    @classmethod
    def from_config(cls, config: dict[str, Any] | None) -> "DesktopActuator":
        """Build from a config mapping (the ``desktop:`` section of an actuator YAML); unknown keys are errors."""
        config = dict(config or {})
        known = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
        unknown = sorted(set(config) - set(known))
        if unknown:
            raise ValueError(f"unknown desktop actuator setting(s) {unknown}; known: {', '.join(known)}")
        if "paste_keys" in config:
            config["paste_keys"] = tuple(config["paste_keys"])
        return cls(**config)

    # --- connection and measurement -----------------------------------------------------------------------------
    def _connect(self) -> None:
        """(Re)open mss and bind pyautogui to this display, then measure the screenshot/logical ratio."""
        import mss

        if self._sct is not None:
            try:
                self._sct.close()
            except Exception:
                pass
            self._sct = None
        try:
            self._sct = _retry(lambda: mss.MSS(display=self.display))
            monitors = self._sct.monitors
        except Exception as exc:
            raise ActuatorError(f"mss could not open X display {self.display}: {type(exc).__name__}: {exc}") from exc
        if self.monitor >= len(monitors):
            raise ActuatorError(f"monitor {self.monitor} does not exist on {self.display}: it has monitors 0 (all) "
                                f"to {len(monitors) - 1}")
        self._bind()
        self._measure(dict(monitors[self.monitor]), dict(monitors[0]))

    def _bind(self) -> None:
        with _X_LOCK:
            if self._needs_rebind or _pyautogui_display_name(self._pg) != self.display:
                _bind_pyautogui(self._pg, self._env)
            self._needs_rebind = False
            self._pg.PAUSE = 0
            self._pg.FAILSAFE = self.failsafe

    def _measure(self, monitor: dict[str, int], screen: dict[str, int]) -> None:
        logical_w, logical_h = self._pg.size()
        self._monitor = {k: monitor[k] for k in ("left", "top", "width", "height")}
        self._size = (monitor["width"], monitor["height"])
        self.logical_size = (int(logical_w), int(logical_h))
        self.scale = (screen["width"] / logical_w, screen["height"] / logical_h)
        self.origin = (monitor["left"], monitor["top"])

    @property
    def screen_size(self) -> tuple[int, int]:
        return self._size

    def to_logical(self, point: Point) -> tuple[int, int]:
        """Screenshot pixels -> pyautogui coordinates, by the measured ratio."""
        return screenshot_to_logical(point, self.scale, self.origin, self.logical_size)

    def _gone(self, during: str, exc: BaseException | None = None) -> ActuatorError | None:
        reason = probe_display(self.display, self.probe_timeout)
        if reason is None:
            return None
        cause = f"; {during} failed with {type(exc).__name__}: {exc}" if exc is not None else ""
        return ActuatorError(f"X display {self.display} went away ({reason}){cause}; restart the X server "
                             "(e.g. Xvfb) and the desktop actuator")

    # --- protocol -------------------------------------------------------------------------------------------------
    def screenshot(self) -> Image.Image:
        if self._closed:
            raise ActuatorError("the desktop actuator is closed")
        try:
            shot = self._sct.grab(self._monitor)
        except Exception as exc:
            gone = self._gone("the screenshot", exc)
            if gone:
                raise gone from exc
            try:  # the server is there but our connection is not (it restarted, or shrank): reconnect once
                self._needs_rebind = True
                self._connect()
                shot = self._sct.grab(self._monitor)
            except ActuatorError:
                raise
            except Exception as exc2:
                raise ActuatorError(f"screenshot of X display {self.display} failed after reconnecting: "
                                    f"{type(exc2).__name__}: {exc2}") from exc2
        return Image.frombytes("RGB", shot.size, shot.raw, "raw", "BGRX")  # BGRX in memory; no extra copy

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bound_keys and not self._needs_rebind and probe_display(self.display, self.probe_timeout) is None:
            try:
                self._unbind_keys()
            except Exception:
                pass
        if self._sct is not None:
            try:
                self._sct.close()
            except Exception:
                pass
            self._sct = None

    def _perform(self, action: Action) -> dict[str, Any] | None:
        if self._closed:
            raise ActuatorError("the desktop actuator is closed")
        pg = self._pg
        # A cheap handshake first (well under a millisecond on a local socket): python-xlib's connection to a
        # server that died can block forever in its next reply wait, so it must not be touched at all then.
        gone = self._gone(action.kind)
        if gone:
            self._needs_rebind = True
            raise gone
        if self._needs_rebind or _pyautogui_connection_dead(pg):  # the server restarted under us: reconnect
            before = self._size
            self._needs_rebind = True
            self._connect()
            if self._size != before:
                raise ActionFailed(
                    f"the X server on {self.display} restarted with a {self._size[0]}x{self._size[1]} screen "
                    f"(it was {before[0]}x{before[1]}); take a new screenshot before acting on it"
                )
        try:
            self._bind()
            info = self._do(action)
        except (ActionFailed, ActuatorError):
            raise
        except pg.FailSafeException as exc:
            raise ActionFailed(
                "pyautogui fail-safe: the mouse pointer is in a corner of the screen, the signal a person gives "
                "to stop the agent; move it away to go on, or set failsafe: false in the desktop config"
            ) from exc
        except Exception as exc:
            gone = self._gone(action.kind, exc)
            if gone:
                raise gone from exc
            self._needs_rebind = True  # the server is there; our connection may not be: rebind before the next
            raise
        if self.settle_seconds:
            time.sleep(self.settle_seconds)
        return info

    # --- actions --------------------------------------------------------------------------------------------------
    def _point(self, point: Point, info: dict[str, Any], key: str = "logical") -> tuple[int, int]:
        x, y = self.to_logical(point)
        if self.failsafe and (x, y) in self._pg.FAILSAFE_POINTS:
            # Never park the pointer on a fail-safe corner ourselves: that signal belongs to the person.
            w, h = self.logical_size
            x = 1 if x == 0 else w - 2
            y = 1 if y == 0 else h - 2
            info["failsafe_nudged"] = True
        info.setdefault(key, [x, y])
        return x, y

    def _do(self, action: Action) -> dict[str, Any]:
        pg = self._pg
        info: dict[str, Any] = {}
        if isinstance(action, Click):
            x, y = self._point(action.point, info)
            pg.click(x, y, clicks=action.count, interval=0.0, button=action.button)
        elif isinstance(action, Hover):
            x, y = self._point(action.point, info)
            pg.moveTo(x, y)
        elif isinstance(action, TypeText):
            self._check_text(action.text)
            if action.point is not None:
                x, y = self._point(action.point, info)
                pg.click(x, y)
                if self.focus_settle_seconds:
                    time.sleep(self.focus_settle_seconds)
            if action.text:
                info["text_input"] = self._type(action.text)
            if action.submit:
                pg.press("enter")
        elif isinstance(action, KeyPress):
            info.update(self._keys(action.keys))
        elif isinstance(action, Scroll):
            w, h = self.screen_size
            x, y = self._point(action.point if action.point is not None else (w // 2, h // 2), info)
            if action.direction == "up":
                pg.scroll(action.amount, x, y)
            elif action.direction == "down":
                pg.scroll(-action.amount, x, y)
            elif action.direction == "right":
                pg.hscroll(action.amount, x, y)
            else:
                pg.hscroll(-action.amount, x, y)
        elif isinstance(action, Drag):
            x0, y0 = self._point(action.start, info, "logical_start")
            x1, y1 = self._point(action.end, info, "logical_end")
            pg.mouseDown(x0, y0, button="left")
            try:
                pg.moveTo(x1, y1, duration=self.drag_seconds)
            finally:
                self._release(x1, y1)
        elif isinstance(action, LongPress):
            x, y = self._point(action.point, info)
            pg.mouseDown(x, y, button="left")
            try:
                time.sleep(action.seconds)
            finally:
                self._release(x, y)
        elif isinstance(action, (Wait, End)):  # handled by BaseActuator.perform; here for completeness
            pass
        else:  # pragma: no cover - the supported set keeps others out
            raise ActionFailed(f"desktop actuator cannot perform {action.kind}")
        return info

    def _release(self, x: int, y: int) -> None:
        """Release the left button even when the move before failed, so no button stays held down."""
        if probe_display(self.display, self.probe_timeout) is not None:
            return  # the display died mid-action: its connection must not be touched (see _perform)
        self._pg.mouseUp(x, y, button="left")

    # --- keys ----------------------------------------------------------------------------------------------------
    def _keycode(self, key: str) -> int | None:
        mapping = getattr(self._pg._pyautogui_x11, "keyboardMapping", {})
        return mapping.get(key)

    def _keys(self, keys: tuple[str, ...]) -> dict[str, Any]:
        names: list[str] = []
        chord = len(keys) > 1
        for key in keys:
            if key in NO_DESKTOP_KEY:
                raise ActionFailed(f"key {key!r}: {NO_DESKTOP_KEY[key]}")
            if len(key) == 1:
                name = key.lower() if chord and key.isalpha() and key.isascii() else key
            else:
                name = PYAUTOGUI_KEYS.get(key, key)
            if not self._keycode(name):
                if not chord and len(key) == 1:  # a lone character the keymap lacks: type it instead
                    return {"text_input": self._type(key)}
                raise ActionFailed(f"key {key!r} has no key on this X display's keyboard map"
                                   + ("; a chord can only use keys on the keyboard" if chord else ""))
            names.append(name)
        if chord:
            self._pg.hotkey(*names)
        else:
            self._pg.press(names[0])
        return {"pyautogui_keys": names}

    # --- text ----------------------------------------------------------------------------------------------------
    @staticmethod
    def _check_text(text: str) -> None:
        bad = _CONTROL_CHARS.search(text)
        if bad:
            raise ActionFailed(f"text holds the control character {bad.group()!r} at position {bad.start()}; "
                               "only printable text, newline and tab can be typed")

    def _type(self, text: str) -> str:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        method = self.text_input
        if method == "auto":
            if text.isascii():
                method = "xdotool" if self.xdotool else "pyautogui"
            else:
                method = "clipboard" if self.xclip else "xdotool"
        if method == "pyautogui":
            if not text.isascii():
                raise ActionFailed("text_input: pyautogui types ASCII only; this text is not ASCII: use "
                                   "text_input auto, xdotool or clipboard")
            self._pg.write(text, interval=0.0)
        elif method == "xdotool":
            if not self.xdotool:
                raise ActionFailed("xdotool is not installed (apt-get install -y xdotool); it is needed to type "
                                   "non-ASCII text, or set text_input: clipboard")
            self._xdotool_type(text)
        else:
            self._paste(text)
        return method

    def _xdotool_type(self, text: str) -> None:
        chunks = self._chunks(text) if not text.isascii() else [(text, set())]
        for i, (chunk, needed) in enumerate(chunks):
            if needed:
                if i:
                    time.sleep(self.chunk_pause_seconds)  # let the application read the previous bindings
                self._bind_keys(needed)
            timeout = self.command_timeout + len(chunk) * (self.type_delay_ms / 1000.0 + 0.005) * 2
            self._run([self.xdotool, "type", "--delay", str(self.type_delay_ms), "--", chunk], timeout)

    # Characters the keymap lacks get spare keycodes of their own before xdotool runs (see the module docstring).
    @staticmethod
    def _keysym(char: str) -> int:
        cp = ord(char)
        return cp if 0x20 <= cp <= 0x7E or 0xA0 <= cp <= 0xFF else 0x01000000 | cp

    def _keymap(self) -> tuple[Any, int, list[list[int]]]:
        disp = self._pg._pyautogui_x11._display
        first = disp.display.info.min_keycode
        count = disp.display.info.max_keycode - first + 1
        return disp, first, [list(row) for row in disp.get_keyboard_mapping(first, count)]

    def _chunks(self, text: str) -> list[tuple[str, set[str]]]:
        """Split ``text`` so that each piece's characters missing from the keymap fit in the spare keycodes."""
        _, first, rows = self._keymap()
        ours = set(self._bound_keys)
        present = {ks for i, row in enumerate(rows) if first + i not in ours for ks in row if ks}
        spare = sum(1 for i, row in enumerate(rows) if not any(row) or first + i in ours)
        missing = {c for c in text if c not in "\n\t" and self._keysym(c) not in present}
        if not missing:
            return [(text, set())]
        if spare == 0:  # no spare keycode: leave it to xdotool's own scratch keycode (racy, see above)
            self.notes.append("no spare keycodes: xdotool rebinds its scratch keycode for non-ASCII text")
            return [(text, set())]
        chunks: list[tuple[str, set[str]]] = []
        start, needed = 0, set()
        for i, c in enumerate(text):
            if c in missing and c not in needed:
                if len(needed) == spare:
                    chunks.append((text[start:i], needed))
                    start, needed = i, set()
                needed.add(c)
        chunks.append((text[start:], needed))
        return chunks

    def _bind_keys(self, chars: set[str]) -> None:
        disp, first, rows = self._keymap()
        wanted = {self._keysym(c) for c in chars}
        have = {ks for ks in self._bound_keys.values()}
        free = [first + i for i, row in enumerate(rows) if not any(row) and first + i not in self._bound_keys]
        reusable = [kc for kc, ks in self._bound_keys.items() if ks not in wanted]
        for ks in wanted - have:
            kc = free.pop() if free else reusable.pop()
            disp.change_keyboard_mapping(kc, [(ks, ks)])
            self._bound_keys[kc] = ks
        disp.sync()

    def _unbind_keys(self) -> None:
        if not self._bound_keys:
            return
        disp = self._pg._pyautogui_x11._display
        if _pyautogui_display_name(self._pg) == self.display:
            for kc in self._bound_keys:
                disp.change_keyboard_mapping(kc, [(0, 0)])
            disp.sync()
        self._bound_keys.clear()

    def _paste(self, text: str) -> None:
        if not self.xclip:
            raise ActionFailed("xclip is not installed (apt-get install -y xclip); it is needed for "
                               "text_input clipboard, or set text_input: xdotool")
        data = text.encode("utf-8")
        # xclip forks a child that keeps serving the selection: its output must not go to a pipe we wait on.
        with tempfile.TemporaryFile() as err:
            try:
                res = subprocess.run([self.xclip, "-selection", "clipboard", "-i"], input=data, env=self._sub_env(),
                                     stdout=subprocess.DEVNULL, stderr=err, timeout=self.command_timeout)
            except subprocess.TimeoutExpired:
                raise ActionFailed(f"xclip did not take the text within {self.command_timeout:g}s") from None
            if res.returncode != 0:
                err.seek(0)
                self._subprocess_failed("xclip", res.returncode, err.read())
        # Make sure the clipboard now serves this text before pasting (xclip owns it asynchronously).
        deadline = time.monotonic() + min(2.0, self.command_timeout)
        got = b""
        while True:
            res = self._run([self.xclip, "-selection", "clipboard", "-o"], self.command_timeout, check=False)
            got = res.stdout
            if got == data or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        if got != data:
            raise ActionFailed("the clipboard did not take the text (xclip -o read back something else)")
        self._keys(self.paste_keys)

    def _sub_env(self) -> dict[str, str]:
        return {**os.environ, **self._env}

    def _run(self, args: list[str], timeout: float, check: bool = True) -> subprocess.CompletedProcess:
        try:
            res = subprocess.run(args, env=self._sub_env(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, timeout=timeout)
        except subprocess.TimeoutExpired:
            gone = self._gone(Path(args[0]).name)
            if gone:
                raise gone from None
            raise ActionFailed(f"{Path(args[0]).name} did not finish within {timeout:g}s") from None
        if check and res.returncode != 0:
            self._subprocess_failed(Path(args[0]).name, res.returncode, res.stderr)
        return res

    def _subprocess_failed(self, tool: str, code: int, stderr: bytes) -> None:
        gone = self._gone(tool)
        if gone:
            raise gone
        lines = stderr.decode(errors="replace").strip().splitlines()
        raise ActionFailed(f"{tool} failed (exit {code}): {lines[-1] if lines else 'no message'}")

    def __repr__(self) -> str:
        return (f"DesktopActuator({self.display}, {self._size[0]}x{self._size[1]}, scale={self.scale}, "
                f"text_input={self.text_input})")
