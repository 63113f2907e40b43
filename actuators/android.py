"""The Android actuator: a phone driven over ADB with adb-shell (TCP; USB with the ``adb-shell[usb]`` extra).

What it does on the phone, one shell command per action (legacy ``shell:`` service, which every adbd offers):

* screenshot: ``exec:screencap`` (raw; no ``-p``). The phone sends its framebuffer uncompressed -- a header of
  width, height, pixel format and, since Android 10, a colorspace word (12 or 16 bytes; which one is decided by
  the payload size), then the pixel rows -- and we convert it here (PIL's raw decoder for the 32-bit formats,
  numpy for RGB_565). On a real phone this is several times faster than ``screencap -p``, whose PNG encoding
  runs on the phone's CPU. ``screencap: png`` in the config switches to ``-p``.
* geometry: ``wm size`` (physical and override), ``wm density`` and the rotation from ``dumpsys input``
  (``SurfaceOrientation`` / the internal viewport's ``orientation=``; ``settings get system user_rotation`` is the
  fallback) -- read at connect and again whenever the screenshot size changes. Screenshot pixels are what the
  model sees and what actions carry; ``input`` wants logical-display coordinates, which are the override size
  (or the physical size) in the current rotation. The two are scaled per axis, so a phone whose screencap is at
  panel resolution while ``wm size`` has an override still gets taps in the right place.
* actions (points are screenshot pixels, scaled to input coordinates):

  ==============  ===============================================================================================
  Click           ``input tap x y`` (count 2 or 3: that many taps in one shell call; no right/middle button)
  LongPress       ``input swipe x y x y ms`` (a swipe that does not move is a press held for ``ms``)
  Swipe           ``input swipe x1 y1 x2 y2 ms``
  Scroll          ``amount`` swipes. Convention: *Scroll down* = the content moves up = the finger swipes **up**
                  (from below the point to above it); left/right alike. Each swipe covers ``scroll_fraction`` of
                  the screen and keeps ``edge_margin`` away from the edges, where Android's system gestures
                  (notification shade, home, back) live.
  KeyPress        ``input keyevent <code>`` (``ANDROID_KEYCODES``); a chord is ``input keycombination`` (Android
                  13+); a single printable character without a key code is typed as text.
  TypeText        tap ``point`` if given, then ``input text`` (escaped, see ``input_text_commands``), then
                  ``input keyevent 66`` if ``submit``.
  Navigate        ``home``/``back``: key events 3/4; anything else is a URL opened with
                  ``am start -a android.intent.action.VIEW -d <url>`` (``https://`` added when no scheme).
  Wait, End       handled by ``BaseActuator``.
  ==============  ===============================================================================================

Text typing and the device shell: adbd runs the command line with ``/system/bin/sh -c`` (mksh), so a
model-written string must reach ``input text`` as ONE literal argument. Every piece is single-quoted
(``shlex.quote``: ``'`` becomes ``'"'"'``), so spaces, quotes, ``$``, backticks, ``;``, ``&``, ``|``, ``<``, ``>``,
parentheses, globs, ``#``, ``%`` and backslashes are literal. Then Android's own rule: ``input text`` turns every
``%s`` into a space, so spaces are sent as ``%s`` (also safe on old phones whose ``input`` script re-splits its
arguments), and a literal ``%`` followed by ``s`` is cut into two calls (``...%`` then ``s...``) so the pair
never reaches ``input`` together -- ``%s`` in a text is typed literally. Newlines become ``input keyevent 66``
(ENTER) between the parts, tabs ``input keyevent 61``; ``\\r\\n`` and ``\\r`` count as newlines. ``input text``
can type only ASCII (it looks each character up in the virtual keyboard's key map), so any other character is
a clear error -- unless ``unicode_ime: adbkeyboard`` is set and ADBKeyBoard is installed: then all text goes
through ``am broadcast -a ADB_INPUT_B64 --es msg <base64>`` (the connect step selects that input method with
``ime enable``/``ime set``; note that this replaces the phone's keyboard until you switch back).

Connections: every call has a transport timeout (each socket wait), a read timeout (waiting for one expected
packet) and a total command timeout; actions that last (swipes, long presses) extend them by their duration.
A dropped connection (reset, EOF, timeout, garbled packet) is reconnected once. The command is repeated after
the reconnect only when that is harmless: reads (screencap, wm, dumpsys, getprop, settings get), or any command
the phone never started (the drop came before its OPEN was acknowledged). An action that may already have run
is not repeated: the Outcome says the connection dropped mid-action. If the reconnect fails the error names the
phone and the cause (``ActuatorError``; from ``perform`` an error Outcome flagged ``target_error``).

Two adb-shell details handled here: its TCP transport spins (until the read timeout) on a socket the phone
closed, so ours raises at EOF; and it writes the 24-byte header and the payload in two sends without
``TCP_NODELAY``, which costs a 40 ms delayed-ACK stall per command on Linux, so ours sets ``TCP_NODELAY``.
"""

from __future__ import annotations

import base64
import io
import re
import select
import shlex
import socket
import struct
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Literal, Mapping, TypeVar

import numpy as np
from PIL import Image

from .actions import (Action, Click, End, KeyPress, LongPress, Navigate, Scroll, Swipe, TypeText, Wait)
from .base import ActionFailed, ActuatorError, BaseActuator, OutOfBounds

T = TypeVar("T")

ANDROID_KEYCODES: dict[str, int] = {
    "home": 3, "back": 4, "enter": 66, "backspace": 67, "delete": 67, "tab": 61, "app_switch": 187,
    "menu": 82, "volume_up": 24, "volume_down": 25, "power": 26, "search": 84, "up": 19, "down": 20,
    "left": 21, "right": 22, "escape": 111, "space": 62, "pageup": 92, "pagedown": 93, "end": 123,
    "insert": 124, "capslock": 115, "printscreen": 120, "ctrl": 113, "alt": 57, "shift": 59, "meta": 117,
    **{f"f{i}": 130 + i for i in range(1, 13)},
    **{chr(ord("a") + i): 29 + i for i in range(26)},
    **{str(d): 7 + d for d in range(10)},
    ",": 55, ".": 56, "-": 69, "=": 70, "[": 71, "]": 72, "\\": 73, ";": 74, "'": 75, "/": 76, "@": 77,
    "+": 81, "*": 17, "#": 18, "`": 68, " ": 62,
}
"""Vocabulary key -> Android KeyEvent code. ``delete`` and ``backspace`` are both KEYCODE_DEL (67), the key
Android labels Delete and which erases backwards; ``home`` is the phone's Home button, not "line start"."""

ADBKEYBOARD_IME = "com.android.adbkeyboard/.AdbIME"
INPUT_TEXT_MAX_CHARS = 400
"""Characters per ``input text`` call; keeps each command line far below old adbd's 4 KiB OPEN limit."""
BATCH_MAX_BYTES = 3000
"""Longest command line we send in one ``shell:`` OPEN (several ``input`` calls joined with ``&&``)."""
_RC_MARK = "__cogagent_rc="
_ERROR_RE = re.compile(r"(?im)(exception|^error|\berror:|usage:|not found|unknown command|can't find)")

# --- text escaping --------------------------------------------------------------------------------------------


class TextNotTypeable(ActionFailed):
    """The text holds characters Android's ``input text`` cannot type."""


def check_input_text(text: str) -> str:
    """Normalise newlines; raise ``TextNotTypeable`` naming the characters ``input text`` cannot type."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    bad = sorted({c for c in text if not (" " <= c <= "~" or c in "\n\t")})
    if bad:
        shown = ", ".join(repr(c) for c in bad[:10]) + (" ..." if len(bad) > 10 else "")
        raise TextNotTypeable(
            f"Android's `input text` can type only printable ASCII, tab and newline; this text contains {shown}. "
            "Install ADBKeyBoard on the phone and set unicode_ime: adbkeyboard to type any Unicode text")
    return text


def input_text_commands(text: str, max_chars: int = INPUT_TEXT_MAX_CHARS) -> list[str]:
    """Shell command lines that make the phone type ``text`` exactly (see the module docstring).

    >>> for line in input_text_commands("it's 5%s; rm -rf ~"): print(line)
    input text 'it'"'"'s%s5%'
    input text 's;%srm%s-rf%s~'
    """
    text = check_input_text(text)
    out: list[str] = []
    for part in re.split(r"([\n\t])", text):
        if part == "\n":
            out.append("input keyevent 66")
        elif part == "\t":
            out.append("input keyevent 61")
        elif part:
            for piece in _text_pieces(part, max_chars):
                out.append("input text " + shlex.quote(piece.replace(" ", "%s")))
    return out


def _text_pieces(s: str, max_chars: int) -> list[str]:
    """Cut ``s`` so that no piece holds a literal ``%`` directly followed by ``s``, and none is over max_chars."""
    pieces, start = [], 0
    for i in range(1, len(s)):
        if (s[i - 1] == "%" and s[i] == "s") or i - start >= max_chars:
            pieces.append(s[start:i])
            start = i
    pieces.append(s[start:])
    return [p for p in pieces if p]


def adbkeyboard_commands(text: str, max_bytes: int = 1800) -> list[str]:
    """``am broadcast`` command lines that make ADBKeyBoard commit ``text`` (any Unicode), in chunks."""
    out, chunk = [], ""
    for ch in text:
        if len((chunk + ch).encode("utf-8")) > max_bytes:
            out.append(chunk)
            chunk = ""
        chunk += ch
    if chunk:
        out.append(chunk)
    return ["am broadcast -a ADB_INPUT_B64 --es msg " + shlex.quote(base64.b64encode(c.encode()).decode())
            for c in out]


# --- screencap -----------------------------------------------------------------------------------------------
_FORMATS = {1: ("RGBA_8888", 4), 2: ("RGBX_8888", 4), 3: ("RGB_888", 3), 4: ("RGB_565", 2), 5: ("BGRA_8888", 4)}


def _screencap_layout(data: bytes, start: int) -> tuple[int, int, int, int] | None:
    """(width, height, format, pixel offset) if a consistent header starts at ``start``, else None."""
    if len(data) - start < 12:
        return None
    w, h, fmt = struct.unpack_from("<III", data, start)
    if fmt not in _FORMATS or not (0 < w <= 20000 and 0 < h <= 20000):
        return None
    size = w * h * _FORMATS[fmt][1]
    for header in (16, 12):
        if len(data) - start == header + size:
            return w, h, fmt, start + header
    return None


def parse_screencap_raw(data: bytes) -> Image.Image:
    """An RGB image from ``screencap``'s raw output (12-byte header before Android 10, 16 bytes since).

    ``exec:`` merges stderr into stdout, so a phone that prints a warning first (multi-display devices print
    "[Warning] Multiple displays were found ...") puts text before the header; a consistent header within the
    first 4 KiB is accepted.
    """
    if len(data) < 12:
        raise ActionFailed(f"screencap returned {len(data)} bytes, not an image: {data[:200]!r}")
    layout = _screencap_layout(data, 0)
    for start in range(1, min(4096, len(data) - 12)):
        if layout is not None:
            break
        layout = _screencap_layout(data, start)
    if layout is None:
        w, h, fmt = struct.unpack_from("<III", data, 0)
        if fmt not in _FORMATS or not (0 < w <= 20000 and 0 < h <= 20000):
            raise ActionFailed(f"screencap output does not start with an image header (width {w}, height {h}, "
                               f"format {fmt}); first bytes: {data[:80]!r}")
        name, bpp = _FORMATS[fmt]
        size = w * h * bpp
        raise ActionFailed(f"screencap sent {len(data)} bytes for a {w}x{h} {name} image: expected "
                           f"{12 + size} or {16 + size} (was the output cut short, or mixed with messages?)")
    w, h, fmt, offset = layout
    buf = memoryview(data)[offset:]
    if fmt in (1, 2):
        return Image.frombytes("RGB", (w, h), buf, "raw", "RGBX")
    if fmt == 5:
        return Image.frombytes("RGB", (w, h), buf, "raw", "BGRX")
    if fmt == 3:
        return Image.frombytes("RGB", (w, h), buf, "raw", "RGB")
    px = np.frombuffer(buf, dtype="<u2").reshape(h, w)
    r = ((px >> 11) & 0x1F).astype(np.uint8)
    g = ((px >> 5) & 0x3F).astype(np.uint8)
    b = (px & 0x1F).astype(np.uint8)
    rgb = np.stack([(r << 3) | (r >> 2), (g << 2) | (g >> 4), (b << 3) | (b >> 2)], axis=-1)
    return Image.fromarray(rgb, "RGB")


# --- geometry -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ScreenGeometry:
    """How screenshot pixels map to ``input`` coordinates on this phone, and what that was measured from."""

    screen: tuple[int, int]
    input_size: tuple[int, int]
    physical: tuple[int, int] | None = None
    override: tuple[int, int] | None = None
    density: int | None = None
    override_density: int | None = None
    rotation: int = 0

    @property
    def scale(self) -> tuple[float, float]:
        return self.input_size[0] / self.screen[0], self.input_size[1] / self.screen[1]

    def to_input(self, point: tuple[int, int]) -> tuple[int, int]:
        sx, sy = self.scale
        x = min(max(int(round(point[0] * sx)), 0), self.input_size[0] - 1)
        y = min(max(int(round(point[1] * sy)), 0), self.input_size[1] - 1)
        return x, y

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["scale"] = list(self.scale)
        return d


def parse_geometry(screen: tuple[int, int], text: str, rotation_fallback: str | None = None) -> ScreenGeometry:
    """Geometry from ``wm size``, ``wm density`` and ``dumpsys input`` output (and the screenshot size)."""

    def size(label: str) -> tuple[int, int] | None:
        m = re.search(label + r" size:\s*(\d+)\s*x\s*(\d+)", text)
        return (int(m.group(1)), int(m.group(2))) if m else None

    def dens(label: str) -> int | None:
        m = re.search(label + r" density:\s*(\d+)", text)
        return int(m.group(1)) if m else None

    rotation = _parse_rotation(text)
    if rotation is None and rotation_fallback is not None:
        rotation = _parse_rotation_value(rotation_fallback.strip())
    rotation = rotation or 0
    physical, override = size("Physical"), size("Override")
    base = override or physical
    if base is None:
        input_size = screen  # no wm on this device: assume input space == screenshot pixels
    else:
        input_size = (base[1], base[0]) if rotation % 2 else base
        # trust the picture over the orientation report if they disagree (rotation changing mid-measurement)
        if (input_size[0] > input_size[1]) != (screen[0] > screen[1]) and screen[0] != screen[1]:
            input_size = (input_size[1], input_size[0])
    return ScreenGeometry(screen=screen, input_size=input_size, physical=physical, override=override,
                          density=dens("Physical"), override_density=dens("Override"), rotation=rotation)


def _parse_rotation(text: str) -> int | None:
    for pattern in (r"SurfaceOrientation:\s*(\S+)", r"Viewport INTERNAL:[^\n]*?orientation=([^,\s]+)",
                    r"orientation=([^,\s]+)"):
        m = re.search(pattern, text)
        if m:
            value = _parse_rotation_value(m.group(1))
            if value is not None:
                return value
    return None


def _parse_rotation_value(value: str) -> int | None:
    value = value.upper().removeprefix("ROTATION_")
    if not value.isdigit():
        return None
    n = int(value)
    return {0: 0, 1: 1, 2: 2, 3: 3, 90: 1, 180: 2, 270: 3}.get(n)


# --- adb-shell plumbing ---------------------------------------------------------------------------------------
def _adb_shell():
    try:
        from adb_shell import exceptions
        from adb_shell.adb_device import AdbDevice
        from adb_shell.auth.sign_pythonrsa import PythonRSASigner
        from adb_shell.transport.tcp_transport import TcpTransport
    except ImportError as exc:  # pragma: no cover - a dependency of the project
        raise ActuatorError(f"adb-shell is not installed ({exc}): pip install 'adb-shell>=0.4.4'") from exc
    return exceptions, AdbDevice, PythonRSASigner, TcpTransport


def _make_transport_class(TcpTransport):
    class _TcpTransport(TcpTransport):
        """adb-shell's TCP transport, plus: EOF raises, writes are complete, and TCP_NODELAY is on."""

        def connect(self, transport_timeout_s):
            super().connect(transport_timeout_s)
            self._connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def bulk_read(self, numbytes, transport_timeout_s):
            if self._connection is None:
                raise ConnectionResetError(f"not connected to {self._host}:{self._port}")
            data = super().bulk_read(numbytes, transport_timeout_s)
            if not data:
                raise ConnectionResetError(f"{self._host}:{self._port} closed the connection")
            return data

        def bulk_write(self, data, transport_timeout_s):
            if self._connection is None:
                raise ConnectionResetError(f"not connected to {self._host}:{self._port}")
            view, sent = memoryview(data), 0
            while sent < len(view):
                try:
                    sent += super().bulk_write(view[sent:], transport_timeout_s)
                except BlockingIOError:
                    select.select([], [self._connection], [], transport_timeout_s)
            return sent

    return _TcpTransport


def _make_device_class(AdbDevice):
    class _Device(AdbDevice):
        """adb-shell's AdbDevice that notes when the phone acknowledged a stream (the command has started)."""

        command_started = False

        def _open(self, destination, transport_timeout_s, read_timeout_s, timeout_s):
            info = super()._open(destination, transport_timeout_s, read_timeout_s, timeout_s)
            self.command_started = True
            return info

    return _Device


class AndroidActuator(BaseActuator):
    """A phone over ADB. Construction connects (and measures the screen) or raises ``ActuatorError``."""

    name = "android"
    supported = frozenset({Click, LongPress, Swipe, Scroll, KeyPress, TypeText, Navigate, Wait, End})

    def __init__(self, host: str = "127.0.0.1", port: int = 5555, *, transport: Literal["tcp", "usb"] = "tcp",
                 serial: str | None = None, key_path: str | Path | None = None, generate_key: bool = False,
                 connect_timeout_s: float = 5.0, transport_timeout_s: float = 10.0, read_timeout_s: float = 10.0,
                 command_timeout_s: float = 60.0, auth_timeout_s: float = 30.0,
                 screencap: Literal["raw", "png"] = "raw", unicode_ime: Literal["adbkeyboard"] | None = None,
                 settle_s: float = 0.3, scroll_fraction: float = 0.3, scroll_seconds: float = 0.4,
                 edge_margin: float = 0.08, out_of_bounds: OutOfBounds = "refuse", banner: str = "cogagent") -> None:
        super().__init__(out_of_bounds)
        if transport not in ("tcp", "usb"):
            raise ValueError(f"transport must be 'tcp' or 'usb', got {transport!r}")
        if screencap not in ("raw", "png"):
            raise ValueError(f"screencap must be 'raw' or 'png', got {screencap!r}")
        if unicode_ime not in (None, "adbkeyboard"):
            raise ValueError(f"unicode_ime must be null or 'adbkeyboard', got {unicode_ime!r}")
        if not 0.05 <= scroll_fraction <= 0.8:
            raise ValueError(f"scroll_fraction must be between 0.05 and 0.8 of the screen, got {scroll_fraction}")
        if not 0.0 <= edge_margin < 0.3:
            raise ValueError(f"edge_margin must be between 0 and 0.3, got {edge_margin}")
        for n, v in (("connect_timeout_s", connect_timeout_s), ("transport_timeout_s", transport_timeout_s),
                     ("read_timeout_s", read_timeout_s), ("command_timeout_s", command_timeout_s),
                     ("auth_timeout_s", auth_timeout_s)):
            if not v > 0:
                raise ValueError(f"{n} must be a positive number of seconds, got {v!r}")
        self.host, self.port, self.transport, self.serial = host, int(port), transport, serial
        self.connect_timeout_s = connect_timeout_s
        self.transport_timeout_s = transport_timeout_s
        self.read_timeout_s = read_timeout_s
        self.command_timeout_s = command_timeout_s
        self.auth_timeout_s = auth_timeout_s
        self.screencap = screencap
        self.unicode_ime = unicode_ime
        self.settle_s = settle_s
        self.scroll_fraction = scroll_fraction
        self.scroll_seconds = scroll_seconds
        self.edge_margin = edge_margin
        self.banner = banner
        self._exc, AdbDevice, PythonRSASigner, TcpTransport = _adb_shell()
        self._Device = _make_device_class(AdbDevice)
        self._Transport = _make_transport_class(TcpTransport)
        self._link_errors = self._link_error_types()
        self._signers = self._load_keys(key_path, generate_key, PythonRSASigner)
        self._dev: Any = None
        self._lock = threading.RLock()
        self.reconnects = 0
        self._connect()
        self._geometry: ScreenGeometry | None = None
        try:
            self.screenshot()  # validates screencap and measures the screen
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "AndroidActuator":
        """Build from a config mapping (the YAML ``actuator:`` section); unknown keys are an error naming them."""
        import inspect

        params = inspect.signature(cls.__init__).parameters
        accepted = {n for n in params if n != "self"}
        extra = sorted(set(config) - accepted - {"kind", "type"})
        if extra:
            raise ValueError(f"unknown android actuator setting(s) {extra}; accepted: {sorted(accepted)}")
        return cls(**{k: v for k, v in config.items() if k in accepted})

    # --- connection --------------------------------------------------------------------------------------------
    @property
    def target(self) -> str:
        return f"{self.host}:{self.port}" if self.transport == "tcp" else f"USB {self.serial or '(first device)'}"

    def _link_error_types(self) -> tuple[type[BaseException], ...]:
        e = self._exc
        types: list[type[BaseException]] = [OSError, e.TcpTimeoutException, e.AdbTimeoutError,
                                             e.AdbConnectionError, e.InvalidCommandError, e.InvalidChecksumError,
                                             e.InvalidResponseError, struct.error]
        for name in ("UsbReadFailedError", "UsbWriteFailedError"):
            if hasattr(e, name):
                types.append(getattr(e, name))
        return tuple(types)

    @staticmethod
    def _load_keys(key_path, generate_key: bool, PythonRSASigner) -> list[Any] | None:
        if key_path is None:
            if generate_key:
                raise ValueError("generate_key needs key_path: where to write the new key "
                                 "(e.g. ~/.config/cogagent/adbkey)")
            return None
        path = Path(key_path).expanduser()
        if not path.exists():
            if not generate_key:
                raise ActuatorError(f"no ADB key at {path}: set generate_key: true to create one there, or point "
                                    "key_path at an existing key (e.g. ~/.android/adbkey, which adb already uses)")
            from adb_shell.auth.keygen import keygen

            path.parent.mkdir(parents=True, exist_ok=True)
            keygen(str(path))
            path.chmod(0o600)
        if not Path(str(path) + ".pub").exists():
            raise ActuatorError(f"the ADB key {path} has no public half {path}.pub next to it")
        try:
            return [PythonRSASigner.FromRSAKeyPath(str(path))]
        except Exception as exc:
            raise ActuatorError(f"cannot load the ADB key {path}: {exc}") from exc

    def _make_device(self) -> Any:
        if self.transport == "tcp":
            return self._Device(self._Transport(self.host, self.port),
                                default_transport_timeout_s=self.transport_timeout_s, banner=self.banner)
        try:
            from adb_shell.transport.usb_transport import UsbTransport
        except ImportError as exc:
            raise ActuatorError("USB needs the optional extra: pip install 'adb-shell[usb]' "
                                f"(or cogagent-runtime[usb]); import failed: {exc}") from exc
        try:
            usb = UsbTransport.find_adb(self.serial, None, self.transport_timeout_s)
        except Exception as exc:
            which = f" with serial {self.serial}" if self.serial else ""
            raise ActuatorError(f"no Android device found over USB{which}: {exc}. Is USB debugging on, and is "
                                "the adb server (which holds the device) stopped?") from exc
        return self._Device(usb, default_transport_timeout_s=self.transport_timeout_s, banner=self.banner)

    def _connect(self) -> Any:
        dev = self._make_device()
        offered_key = threading.Event()
        try:
            dev.connect(rsa_keys=self._signers, transport_timeout_s=self.connect_timeout_s,
                        auth_timeout_s=self.auth_timeout_s, read_timeout_s=self.connect_timeout_s,
                        auth_callback=lambda _dev: offered_key.set())
        except self._exc.DeviceAuthError as exc:
            dev.close()
            raise ActuatorError(f"the phone at {self.target} requires authorization and no key was given: set "
                                "key_path (with generate_key: true to create one), then accept the prompt on the "
                                "phone") from exc
        except ConnectionRefusedError as exc:
            dev.close()
            raise ActuatorError(f"nothing accepts ADB connections at {self.target} (connection refused): is the "
                                "phone on this network with wireless debugging or `adb tcpip 5555` enabled?") from exc
        except self._link_errors as exc:
            dev.close()
            if offered_key.is_set():
                raise ActuatorError(f"the phone at {self.target} did not accept this computer's key within "
                                    f"{self.auth_timeout_s:g} s: unlock the phone and tap Allow on the "
                                    "'Allow USB debugging?' prompt, then try again") from exc
            raise ActuatorError(f"cannot connect to the phone at {self.target}: {_describe(exc)}") from exc
        self._dev = dev
        if self.unicode_ime == "adbkeyboard":
            out = self._raw_shell(dev, f"ime enable {ADBKEYBOARD_IME}; ime set {ADBKEYBOARD_IME}",
                                  self.transport_timeout_s, self.read_timeout_s)
            if not re.search(r"Input method \S+ selected", out) or "cannot" in out:
                dev.close()
                self._dev = None
                raise ActuatorError(f"unicode_ime is adbkeyboard, but the phone at {self.target} could not select "
                                    f"ADBKeyBoard ({out.strip() or 'no answer'}): install ADBKeyBoard "
                                    "(github.com/senzhk/ADBKeyBoard) on the phone first")
        return dev

    def _raw_shell(self, dev: Any, command: str, transport_s: float, read_s: float) -> str:
        return dev.shell(command, transport_timeout_s=transport_s, read_timeout_s=read_s,
                         timeout_s=self.command_timeout_s)

    def _disconnect(self) -> None:
        if self._dev is not None:
            try:
                self._dev.close()
            except Exception:
                pass
            self._dev = None

    def _call(self, fn: Callable[[Any, float, float], T], what: str, *, idempotent: bool,
              extra_s: float = 0.0) -> T:
        """Run ``fn(device, transport_timeout, read_timeout)``; reconnect once on a dropped link (see module doc)."""
        transport_s = self.transport_timeout_s + extra_s
        read_s = self.read_timeout_s + extra_s
        with self._lock:
            if self._dev is None:
                self._connect()
                self.reconnects += 1
            dev = self._dev
            dev.command_started = False
            try:
                return fn(dev, transport_s, read_s)
            except self._link_errors as exc:
                first, started = exc, dev.command_started
            self._disconnect()
            try:
                dev = self._connect()
                self.reconnects += 1
            except ActuatorError as exc:
                raise ActuatorError(f"lost the connection to the phone at {self.target} during `{_short(what)}` "
                                    f"({_describe(first)}); reconnecting once failed: {exc}") from first
            if started and not idempotent:
                raise ActionFailed(f"the connection to the phone dropped while `{_short(what)}` was running "
                                   f"({_describe(first)}); reconnected, but did not repeat it because it may "
                                   "already have taken effect: check the next screenshot")
            dev.command_started = False
            try:
                return fn(dev, transport_s, read_s)
            except self._link_errors as exc:
                self._disconnect()
                raise ActuatorError(f"the phone at {self.target} dropped the connection again after a reconnect "
                                    f"during `{_short(what)}`: {_describe(exc)}") from exc

    # --- device calls --------------------------------------------------------------------------------------
    def shell(self, command: str, *, idempotent: bool = False, extra_s: float = 0.0) -> str:
        """Run a command line on the phone and return its output (stdout and stderr together).

        ``idempotent=True`` lets a dropped call be repeated after the reconnect (use it for reads).
        """
        return self._call(lambda d, ts, rs: self._raw_shell(d, command, ts, rs), command, idempotent=idempotent,
                          extra_s=extra_s)

    def exec_out(self, command: str, *, idempotent: bool = True, extra_s: float = 0.0) -> bytes:
        """Run a command with the binary-safe ``exec:`` service and return its raw output."""
        return self._call(lambda d, ts, rs: d.exec_out(command, transport_timeout_s=ts, read_timeout_s=rs,
                                                       timeout_s=self.command_timeout_s, decode=False),
                          command, idempotent=idempotent, extra_s=extra_s)

    def _run_commands(self, commands: list[str], *, extra_s: float = 0.0) -> list[str]:
        """Run ``input``/``am`` command lines, batched with ``&&``; raise ``ActionFailed`` if one reports failure."""
        batches: list[list[str]] = [[]]
        for c in commands:
            if batches[-1] and len(" && ".join(batches[-1] + [c])) > BATCH_MAX_BYTES:
                batches.append([])
            batches[-1].append(c)
        for batch in batches:
            line = " && ".join(batch)
            out = self.shell(f"{line}; echo {_RC_MARK}$?", extra_s=extra_s)
            m = re.search(re.escape(_RC_MARK) + r"(\d+)\s*$", out)
            text = out[:m.start()] if m else out
            rc = int(m.group(1)) if m else None
            if rc != 0 or _ERROR_RE.search(text):
                detail = text.strip() or f"exit status {rc}"
                raise ActionFailed(f"the phone refused `{_short(line)}`: {detail[:600]}")
        return commands

    # --- the protocol -----------------------------------------------------------------------------------------
    @property
    def screen_size(self) -> tuple[int, int]:
        if self._geometry is None:
            raise ActuatorError("the phone's screen has not been measured yet")
        return self._geometry.screen

    @property
    def geometry(self) -> ScreenGeometry:
        if self._geometry is None:
            raise ActuatorError("the phone's screen has not been measured yet")
        return self._geometry

    def describe(self) -> dict[str, Any]:
        """What an episode records about this actuator."""
        return {"kind": "android", "target": self.target, "screencap": self.screencap,
                "unicode_ime": self.unicode_ime, "geometry": self.geometry.to_dict(), "reconnects": self.reconnects}

    def screenshot(self) -> Image.Image:
        if self.screencap == "png":
            data = self.exec_out("screencap -p")
            if not data.startswith(b"\x89PNG"):
                raise ActuatorError(f"screencap -p on {self.target} did not return a PNG: {data[:200]!r}")
            image = Image.open(io.BytesIO(data)).convert("RGB")
        else:
            data = self.exec_out("screencap")
            try:
                image = parse_screencap_raw(data)
            except ActionFailed as exc:
                raise ActuatorError(f"screenshot from {self.target} failed: {exc}") from exc
        if self._geometry is None or self._geometry.screen != image.size:
            self._geometry = self._measure(image.size)
        return image

    def _measure(self, screen: tuple[int, int]) -> ScreenGeometry:
        text = self.shell("wm size; wm density; dumpsys input | grep -E 'SurfaceOrientation|orientation='",
                          idempotent=True)
        fallback = None
        if _parse_rotation(text) is None:
            fallback = self.shell("settings get system user_rotation", idempotent=True)
        return parse_geometry(screen, text, fallback)

    def refresh_geometry(self) -> ScreenGeometry:
        """Measure again (after ``wm size``/rotation changes made behind the actuator's back)."""
        self._geometry = self._measure(self.screen_size)
        return self._geometry

    def _perform(self, action: Action) -> dict[str, Any] | None:
        g = self.geometry
        if isinstance(action, Click):
            if action.button != "left":
                raise ActionFailed(f"a phone has no {action.button} button; use long_press for a context menu")
            x, y = g.to_input(action.point)
            cmds = self._run_commands([f"input tap {x} {y}"] * action.count)
        elif isinstance(action, LongPress):
            x, y = g.to_input(action.point)
            ms = int(round(action.seconds * 1000))
            cmds = self._run_commands([f"input swipe {x} {y} {x} {y} {ms}"], extra_s=action.seconds)
        elif isinstance(action, Swipe):
            (x1, y1), (x2, y2) = g.to_input(action.start), g.to_input(action.end)
            ms = max(1, int(round(action.seconds * 1000)))
            cmds = self._run_commands([f"input swipe {x1} {y1} {x2} {y2} {ms}"], extra_s=action.seconds)
        elif isinstance(action, Scroll):
            cmds = self._run_commands(self._scroll_commands(action),
                                      extra_s=action.amount * (self.scroll_seconds + 0.5))
        elif isinstance(action, KeyPress):
            cmds = self._run_commands(self._key_commands(action.keys))
        elif isinstance(action, TypeText):
            cmds = self._type(action)
        elif isinstance(action, Navigate):
            cmds = self._run_commands(self._navigate_commands(action.target))
        else:  # pragma: no cover - BaseActuator refuses unsupported actions before we get here
            raise ActionFailed(f"android actuator cannot perform {action.kind}")
        if self.settle_s:
            time.sleep(self.settle_s)
        return {"commands": cmds}

    def _type(self, action: TypeText) -> list[str]:
        cmds: list[str] = []
        if self.unicode_ime == "adbkeyboard":
            text_cmds = adbkeyboard_commands(action.text.replace("\r\n", "\n"))
        else:
            text_cmds = input_text_commands(action.text)  # raises TextNotTypeable before anything is sent
        if action.point is not None:
            x, y = self.geometry.to_input(action.point)
            cmds += self._run_commands([f"input tap {x} {y}"])
            if self.settle_s:
                time.sleep(self.settle_s)  # let the field take focus and the keyboard come up
        if text_cmds:
            cmds += self._run_commands(text_cmds, extra_s=len(action.text) * 0.05)
        if action.submit:
            cmds += self._run_commands(["input keyevent 66"])
        return cmds

    def _key_commands(self, keys: tuple[str, ...]) -> list[str]:
        codes = []
        for k in keys:
            chord_letter = len(k) == 1 and k.isalpha() and len(keys) > 1  # ctrl+A means the A key
            code = ANDROID_KEYCODES.get(k.lower() if chord_letter else k)
            if code is None and len(k) == 1 and len(keys) == 1:
                return input_text_commands(k)  # a printable character without a key code: type it
            if code is None:
                raise ActionFailed(f"the android actuator has no key code for {k!r}; keys it knows: "
                                   f"{', '.join(sorted(n for n in ANDROID_KEYCODES if len(n) > 1))}")
            codes.append(code)
        if len(codes) == 1:
            return [f"input keyevent {codes[0]}"]
        return ["input keycombination " + " ".join(str(c) for c in codes)]

    def _navigate_commands(self, target: str) -> list[str]:
        low = target.lower()
        if low in ("home", "back"):
            return [f"input keyevent {ANDROID_KEYCODES[low]}"]
        if any(c.isspace() for c in target):
            raise ActionFailed(f"navigate target {target!r} is neither home, back nor a URL")
        url = target if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", target) else "https://" + target
        return ["am start -a android.intent.action.VIEW -d " + shlex.quote(url)]

    def _scroll_commands(self, action: Scroll) -> list[str]:
        w, h = self.screen_size
        cx, cy = action.point if action.point is not None else (w // 2, h // 2)
        vertical = action.direction in ("up", "down")
        length = w if not vertical else h
        dist = self.scroll_fraction * length
        lo, hi = self.edge_margin * length, (1 - self.edge_margin) * length - 1
        centre = cy if vertical else cx
        # "down"/"right": content moves up/left, so the finger travels towards smaller coordinates
        start = centre + dist / 2 if action.direction in ("down", "right") else centre - dist / 2
        end = centre - dist / 2 if action.direction in ("down", "right") else centre + dist / 2
        shift = max(lo - min(start, end), 0) - max(max(start, end) - hi, 0)
        start, end = start + shift, end + shift
        if vertical:
            p1, p2 = (cx, start), (cx, end)
        else:
            p1, p2 = (start, cy), (end, cy)
        (x1, y1), (x2, y2) = self.geometry.to_input(p1), self.geometry.to_input(p2)  # type: ignore[arg-type]
        ms = max(1, int(round(self.scroll_seconds * 1000)))
        return [f"input swipe {x1} {y1} {x2} {y2} {ms}"] * action.amount

    def close(self) -> None:
        with self._lock:
            self._disconnect()


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _short(command: str, limit: int = 160) -> str:
    return command if len(command) <= limit else command[:limit] + f"... ({len(command)} chars)"
