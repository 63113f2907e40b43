"""From the model's typed operation (0-999 coordinates) to an action in this screen's pixels.

This is the one place where the grammar's verbs meet the actuators' vocabulary, so the mapping choices that
the datasets imply live here, written down once: a box is acted on at its centre; a phone ``swipe up`` moves
the finger up (the content scrolls down, as AITW records it); a web ``TYPE`` clicks the box first; Mind2Web's
``ENTER`` was folded into CLICK by the grammar; CogAgent-9B's ``SCROLL_DOWN(step_count=n)`` scrolls n steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from actuators.actions import (Action, ActionError, Click, End, Hover, KeyPress, LongPress, Navigate, Scroll,
                               Select, Swipe, TypeText, Wait)
from vision.geometry import Grounding, ground


class ConversionError(ValueError):
    """The operation parsed but cannot become an action (no box where one is needed, an unknown verb)."""


@dataclass(frozen=True)
class Converted:
    action: Action
    grounding: Grounding | None


SWIPE_SPAN = 0.4
"""A direction-only swipe covers this fraction of the screen, centred: long enough to scroll, short of a fling."""


def _grounding(op: Any, size: tuple[int, int], required: bool) -> Grounding | None:
    coords = op.box if op.box is not None else op.point
    if coords is None:
        if required:
            raise ConversionError(f"{op.verb} needs a box or point, and the model gave none")
        return None
    try:
        return ground(list(coords), size)
    except ValueError as exc:
        raise ConversionError(f"{op.verb}: unusable coordinates {coords!r}: {exc}") from None


def _keys(value: str) -> tuple[str, ...]:
    """``'Ctrl+A'`` -> ``('Ctrl', 'a')``: in a chord a letter names the key, not an upper-case character."""
    parts = [p.strip() for p in str(value).replace(" + ", "+").split("+") if p.strip()] or [str(value)]
    if len(parts) > 1:
        parts = [p.lower() if len(p) == 1 and p.isalpha() else p for p in parts]
    return tuple(parts)


def _direction_swipe(direction: str, size: tuple[int, int], centre: tuple[int, int] | None = None) -> Swipe:
    w, h = size
    cx, cy = centre or (w // 2, h // 2)
    dx, dy = int(w * SWIPE_SPAN / 2), int(h * SWIPE_SPAN / 2)
    moves = {"up": ((cx, cy + dy), (cx, cy - dy)), "down": ((cx, cy - dy), (cx, cy + dy)),
             "left": ((cx + dx, cy), (cx - dx, cy)), "right": ((cx - dx, cy), (cx + dx, cy))}
    if direction not in moves:
        raise ConversionError(f"swipe direction must be up, down, left or right, got {direction!r}")
    (x1, y1), (x2, y2) = moves[direction]
    clip = lambda x, y: (min(max(x, 0), w - 1), min(max(y, 0), h - 1))  # noqa: E731
    return Swipe(clip(x1, y1), clip(x2, y2), 0.3)


def operation_to_action(op: Any, size: tuple[int, int]) -> Converted:
    """``op`` is a ``cogagent.grammar.Operation``; ``size`` the screenshot's (width, height) in pixels."""
    verb = str(op.verb).upper()
    value = op.value if op.value is not None else ""
    args = dict(getattr(op, "args", None) or {})
    try:
        if verb == "CLICK" and str(args.get("original_op", "")).upper() == "ENTER":
            g = _grounding(op, size, True)  # Mind2Web's ENTER on an element: focus it and press Enter
            return Converted(TypeText("", g.point.as_tuple(), submit=True), g)
        if verb in ("CLICK", "TAP", "DOUBLE_CLICK", "RIGHT_CLICK"):
            g = _grounding(op, size, True)
            count, button = (2, "left") if verb == "DOUBLE_CLICK" else (1, "right" if verb == "RIGHT_CLICK" else "left")
            return Converted(Click(g.point.as_tuple(), button, count), g)
        if verb == "HOVER":
            g = _grounding(op, size, True)
            return Converted(Hover(g.point.as_tuple()), g)
        if verb in ("LONG_PRESS", "LLONG_PRESS"):
            g = _grounding(op, size, True)
            return Converted(LongPress(g.point.as_tuple(), 1.0), g)
        if verb == "TYPE":
            g = _grounding(op, size, False)
            text = str(value or args.get("text", ""))
            submit = text.endswith("\n")
            return Converted(TypeText(text.rstrip("\n") if submit else text, g.point.as_tuple() if g else None, submit), g)
        if verb == "SELECT":
            g = _grounding(op, size, True)
            return Converted(Select(g.point.as_tuple(), str(value or args.get("option", ""))), g)
        if verb.startswith("SCROLL_"):
            g = _grounding(op, size, False)
            steps = args.get("step_count", 3)
            try:
                steps = max(1, min(int(steps), 50))
            except (TypeError, ValueError):
                raise ConversionError(f"{verb}: step_count must be a whole number, got {steps!r}") from None
            return Converted(Scroll(verb.removeprefix("SCROLL_").lower(), steps, g.point.as_tuple() if g else None), g)
        if verb == "SWIPE":
            g = _grounding(op, size, False)
            return Converted(_direction_swipe(str(value).lower(), size, g.point.as_tuple() if g else None), g)
        if verb == "KEY_PRESS":
            return Converted(KeyPress(_keys(value or args.get("key", ""))), None)
        if verb == "PRESS":
            key = str(value).lower().strip()
            if key in ("home", "back"):
                return Converted(Navigate(key), None)
            return Converted(KeyPress(_keys(key)), None)
        if verb == "LAUNCH":
            target = args.get("url") or value or args.get("app")
            if not target:
                raise ConversionError("LAUNCH needs an app or url")
            return Converted(Navigate(str(target)), None)
        if verb == "WAIT":
            return Converted(Wait(1.0), None)
        if verb in ("END", "TASK_COMPLETE"):
            return Converted(End("success", str(value or "")), None)
        if verb == "TASK_IMPOSSIBLE":
            return Converted(End("impossible", str(value or "")), None)
    except ActionError as exc:
        raise ConversionError(f"{verb}: {exc}") from None
    raise ConversionError(f"the runtime has no action for the operation {verb!r}")
