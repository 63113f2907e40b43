"""The typed action vocabulary every actuator speaks.

Actions are immutable and validated when they are built, so a malformed action (a negative duration, an empty
key list, an unknown scroll direction) is rejected where it is made -- by the grammar-to-action conversion or a
person editing an action at the confirmation gate -- not halfway through a device call.

All coordinates are pixels of the actuator's own screenshot (what the model saw, after the 0-999 -> pixel
conversion in ``vision.geometry``). Each actuator maps screenshot pixels to its own input space (CSS pixels,
X11 logical pixels, Android touch coordinates); keeping one space here means the episode log can be replayed
on any actuator of the same kind and screen size.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Union

Point = tuple[int, int]
"""(x, y) in screenshot pixels."""

MAX_TEXT_CHARS = 10_000
"""Longest text a TypeText may carry; longer model output is almost surely a runaway generation."""

MAX_SECONDS = 60.0
"""Longest wait, press or swipe an action may ask for; a model-written hour-long wait is an error, not a plan."""

KEY_NAMES: frozenset[str] = frozenset(
    {
        "enter", "tab", "escape", "backspace", "delete", "space", "insert",
        "up", "down", "left", "right", "home", "end", "pageup", "pagedown",
        "ctrl", "alt", "shift", "meta",
        "capslock", "printscreen",
        *(f"f{i}" for i in range(1, 13)),
        # Phone keys: an actuator that has no such key says so in its Outcome.
        "back", "menu", "app_switch", "volume_up", "volume_down", "power", "search",
    }
)
"""Named keys, beside single printable characters. Lower case; aliases are folded by ``normalize_key``."""

KEY_ALIASES: dict[str, str] = {
    "return": "enter", "esc": "escape", "del": "delete", "control": "ctrl", "cmd": "meta",
    "command": "meta", "super": "meta", "win": "meta", "option": "alt", "arrowup": "up",
    "arrowdown": "down", "arrowleft": "left", "arrowright": "right", "page_up": "pageup",
    "page_down": "pagedown", "pgup": "pageup", "pgdn": "pagedown", "spacebar": "space",
    "recent": "app_switch", "recents": "app_switch", "volumeup": "volume_up", "volumedown": "volume_down",
}

ScrollDirection = Literal["up", "down", "left", "right"]
EndStatus = Literal["success", "failure", "impossible"]


class ActionError(ValueError):
    """An action that cannot be built: the message says which field was wrong and what is accepted."""


def normalize_key(name: str) -> str:
    """Fold a key name to the canonical vocabulary, or raise ``ActionError`` naming the accepted keys."""
    if not isinstance(name, str) or not name:
        raise ActionError(f"key name must be a non-empty string, got {name!r}")
    if name == " ":
        return "space"
    if len(name) == 1 and name.isprintable():
        return name
    low = name.strip().lower().replace("-", "_") if len(name.strip()) > 1 else name.strip()
    low = KEY_ALIASES.get(low, KEY_ALIASES.get(low.replace("_", ""), low))
    if low in KEY_NAMES:
        return low
    raise ActionError(
        f"unknown key name {name!r}: use a single character or one of {', '.join(sorted(KEY_NAMES))}"
    )


def _point(value: Any, field: str) -> Point:
    try:
        x, y = value
    except (TypeError, ValueError):
        raise ActionError(f"{field} must be an (x, y) pair of pixels, got {value!r}") from None
    out = []
    for v in (x, y):
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v):
            raise ActionError(f"{field} must hold two finite numbers, got {value!r}")
        out.append(int(round(v)))
    return (out[0], out[1])


def _seconds(value: Any, field: str, minimum: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ActionError(f"{field} must be a number of seconds, got {value!r}")
    if not minimum <= value <= MAX_SECONDS:
        raise ActionError(f"{field} must be between {minimum} and {MAX_SECONDS} seconds, got {value}")
    return float(value)


def _text(value: Any, field: str, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise ActionError(f"{field} must be a string, got {type(value).__name__}")
    if not allow_empty and not value:
        raise ActionError(f"{field} must not be empty")
    if len(value) > MAX_TEXT_CHARS:
        raise ActionError(f"{field} is {len(value)} characters; at most {MAX_TEXT_CHARS} are accepted")
    return value


@dataclass(frozen=True)
class _Action:
    """Shared serialisation: ``{"type": <kind>, **fields}`` with points as lists."""

    kind: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.kind}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    def points(self) -> tuple[Point, ...]:
        """Every screen point the action touches (for bounds checks and drawing)."""
        return tuple(
            getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name in ("point", "start", "end") and getattr(self, f.name) is not None
        )

    def with_points(self, mapping: dict[str, Point]) -> "_Action":
        """A copy with some point fields replaced (used when clamping into the screen)."""
        return dataclasses.replace(self, **mapping)


@dataclass(frozen=True)
class Click(_Action):
    kind: ClassVar[str] = "click"
    point: Point
    button: Literal["left", "right", "middle"] = "left"
    count: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "point", _point(self.point, "Click.point"))
        if self.button not in ("left", "right", "middle"):
            raise ActionError(f"Click.button must be left, right or middle, got {self.button!r}")
        if isinstance(self.count, bool) or not isinstance(self.count, int) or not 1 <= self.count <= 3:
            raise ActionError(f"Click.count must be 1, 2 or 3, got {self.count!r}")


@dataclass(frozen=True)
class LongPress(_Action):
    kind: ClassVar[str] = "long_press"
    point: Point
    seconds: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "point", _point(self.point, "LongPress.point"))
        object.__setattr__(self, "seconds", _seconds(self.seconds, "LongPress.seconds", 0.1))


@dataclass(frozen=True)
class Hover(_Action):
    kind: ClassVar[str] = "hover"
    point: Point

    def __post_init__(self) -> None:
        object.__setattr__(self, "point", _point(self.point, "Hover.point"))


@dataclass(frozen=True)
class TypeText(_Action):
    """Type ``text``; when ``point`` is given, click it first (focus); ``submit`` presses Enter after."""

    kind: ClassVar[str] = "type_text"
    text: str
    point: Point | None = None
    submit: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", _text(self.text, "TypeText.text", allow_empty=self.submit))
        if self.point is not None:
            object.__setattr__(self, "point", _point(self.point, "TypeText.point"))
        if not isinstance(self.submit, bool):
            raise ActionError(f"TypeText.submit must be true or false, got {self.submit!r}")


@dataclass(frozen=True)
class Select(_Action):
    """Choose ``option`` (by its visible label) in the select element under ``point``."""

    kind: ClassVar[str] = "select"
    point: Point
    option: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "point", _point(self.point, "Select.point"))
        object.__setattr__(self, "option", _text(self.option, "Select.option"))


@dataclass(frozen=True)
class KeyPress(_Action):
    """Press ``keys`` together as one chord (``("ctrl", "a")``), or one key (``("enter",)``)."""

    kind: ClassVar[str] = "key_press"
    keys: tuple[str, ...]

    def __post_init__(self) -> None:
        keys = (self.keys,) if isinstance(self.keys, str) else self.keys
        if not isinstance(keys, (tuple, list)) or not keys:
            raise ActionError(f"KeyPress.keys must be a non-empty list of key names, got {self.keys!r}")
        if len(keys) > 4:
            raise ActionError(f"KeyPress.keys holds {len(keys)} keys; a chord has at most 4")
        object.__setattr__(self, "keys", tuple(normalize_key(k) for k in keys))


@dataclass(frozen=True)
class Scroll(_Action):
    """Scroll ``amount`` steps (one wheel notch / one swipe each) in ``direction``, at ``point`` or the centre."""

    kind: ClassVar[str] = "scroll"
    direction: ScrollDirection
    amount: int = 3
    point: Point | None = None

    def __post_init__(self) -> None:
        if self.direction not in ("up", "down", "left", "right"):
            raise ActionError(f"Scroll.direction must be up, down, left or right, got {self.direction!r}")
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or not 1 <= self.amount <= 50:
            raise ActionError(f"Scroll.amount must be a whole number of steps from 1 to 50, got {self.amount!r}")
        if self.point is not None:
            object.__setattr__(self, "point", _point(self.point, "Scroll.point"))


@dataclass(frozen=True)
class Swipe(_Action):
    kind: ClassVar[str] = "swipe"
    start: Point
    end: Point
    seconds: float = 0.3

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _point(self.start, "Swipe.start"))
        object.__setattr__(self, "end", _point(self.end, "Swipe.end"))
        object.__setattr__(self, "seconds", _seconds(self.seconds, "Swipe.seconds", 0.01))


@dataclass(frozen=True)
class Drag(_Action):
    kind: ClassVar[str] = "drag"
    start: Point
    end: Point

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _point(self.start, "Drag.start"))
        object.__setattr__(self, "end", _point(self.end, "Drag.end"))


@dataclass(frozen=True)
class Navigate(_Action):
    """Go to a URL, or ``"back"`` / ``"home"`` (browser history; the phone's back and home)."""

    kind: ClassVar[str] = "navigate"
    target: str

    def __post_init__(self) -> None:
        target = _text(self.target, "Navigate.target").strip()
        if not target:
            raise ActionError("Navigate.target must be a URL, 'back' or 'home', got only whitespace")
        object.__setattr__(self, "target", target)


@dataclass(frozen=True)
class Wait(_Action):
    kind: ClassVar[str] = "wait"
    seconds: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "seconds", _seconds(self.seconds, "Wait.seconds"))


@dataclass(frozen=True)
class End(_Action):
    """The episode is over: the agent says it succeeded, failed, or that the task cannot be done."""

    kind: ClassVar[str] = "end"
    status: EndStatus = "success"
    message: str = ""

    def __post_init__(self) -> None:
        if self.status not in ("success", "failure", "impossible"):
            raise ActionError(f"End.status must be success, failure or impossible, got {self.status!r}")
        object.__setattr__(self, "message", _text(self.message, "End.message", allow_empty=True))


Action = Union[Click, LongPress, Hover, TypeText, Select, KeyPress, Scroll, Swipe, Drag, Navigate, Wait, End]

ACTION_TYPES: dict[str, type] = {
    cls.kind: cls
    for cls in (Click, LongPress, Hover, TypeText, Select, KeyPress, Scroll, Swipe, Drag, Navigate, Wait, End)
}


def action_from_dict(data: dict[str, Any]) -> Action:
    """Rebuild an action from ``to_dict`` output; unknown types and fields are errors that name them."""
    if not isinstance(data, dict):
        raise ActionError(f"an action must be a JSON object, got {type(data).__name__}")
    kind = data.get("type")
    cls = ACTION_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ActionError(f"unknown action type {kind!r}: expected one of {', '.join(ACTION_TYPES)}")
    names = {f.name for f in dataclasses.fields(cls)}
    extra = sorted(set(data) - names - {"type"})
    if extra:
        raise ActionError(f"{kind} action has unknown field(s) {extra}; its fields are {sorted(names)}")
    kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in data.items() if k != "type"}
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise ActionError(f"{kind} action: {exc}") from None
