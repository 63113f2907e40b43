"""CogAgent-9B-20241220 operations: Python-like calls with keyword arguments.

``CLICK(box=[[219,186,311,207]], element_type='Clickable text', element_info='Mark all emails as read')``,
``TYPE(box=..., text='...')``, ``SCROLL_DOWN(box=..., step_count=5)``, ``KEY_PRESS(key='F11')``,
``GESTURE(actions=[KEY_DOWN(key='Lcontrol'), KEY_PRESS(key='A'), KEY_UP(key='Lcontrol')])``,
``LAUNCH(app='Settings', url='None')``, ``QUOTE_TEXT(...)``, ``LLM(...)``, ``END()`` (THUDM/CogAgent
``Action_space_en.md``).

The official client cuts arguments with ``[^,)]+``, which breaks on any comma or parenthesis inside a value.
This reader is a small recursive-descent parser over the text instead (never ``eval``): values are quoted
strings, numbers, ``True``/``False``/``None``, box groups ``[[...;...]]``, lists and nested calls; an unquoted
word is taken as a string with a warning.

Strings: ``\\'`` (or ``\\"`` in a double-quoted string) and ``\\\\`` are escapes; any other backslash is kept as
written, so ``'def f():\\n\\t...'`` keeps its two-character ``\\n`` the way the action-space document shows it.
The model does not always escape an apostrophe inside a value (``'Don't save'``), so a quote closes a string
only where a value can end: before ``,`` and the next argument or item, ``)``, ``]`` or the end of the text.
"""

from __future__ import annotations

import math
import re
from typing import Any

from cogagent.grammar import (
    BOX_GROUP_RE,
    Operation,
    ParseError,
    format_group,
    group_fields,
    is_group_value,
    operation_group,
    parse_group,
)

KNOWN_VERBS = (
    "CLICK", "DOUBLE_CLICK", "RIGHT_CLICK", "HOVER", "TYPE", "SCROLL_UP", "SCROLL_DOWN", "SCROLL_LEFT",
    "SCROLL_RIGHT", "KEY_PRESS", "KEY_DOWN", "KEY_UP", "GESTURE", "LAUNCH", "QUOTE_TEXT", "QUOTE_CLIPBOARD",
    "TEXT_FORMAT", "LLM", "END",
)
"""The 9B action space (Action_space_en.md and the official clients). Other verbs are read too."""
KEY_VERBS = frozenset({"KEY_PRESS", "KEY_DOWN", "KEY_UP"})
MAX_DEPTH = 16
"""Deepest nesting of lists and calls; deeper text is an error, not a stack overflow."""

_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CALL_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*")  # becomes Operation.verb once upper-cased
_WS_RE = re.compile(r"\s*")
# An upper-case call name right before "(": how a 9B operation starts.
_CALL_START_RE = re.compile(r"[A-Z][A-Z0-9_]*[ \t]*\(")
# A known verb glued to "(": enough to read a whole reply with no labels as one operation.
_KNOWN_CALL_RE = re.compile("(?:" + "|".join(KNOWN_VERBS) + r")\(")
# A number: bounded digit runs (int() of a megabyte of digits is slow and Python refuses it; any float's repr
# fits), not glued to a following word character ("5px" is a word).
MAX_DIGITS = 40
_NUMBER_RE = re.compile(rf"-?\d{{1,{MAX_DIGITS}}}(?:\.\d{{1,{MAX_DIGITS}}})?(?:[eE][+-]?\d{{1,3}})?(?![\w.])")
# An unquoted word (or words separated by spaces) up to a delimiter.
_BARE_RE = re.compile(r"[^\s,()\[\]'\"]+(?:[ \t]+[^\s,()\[\]'\"]+)*")
# Where a string's closing quote can stand: before ')' or ']'; before ',' and then a name followed by
# '=', '(' or a delimiter, or a quote, bracket, parenthesis or number; or at the end. The scanned stretch never contains
# a quote or backslash, so checking every quote stays linear in the text.
_CLOSE_FOLLOW_RE = re.compile(r"""\s*(?:[)\]]|,\s*(?:[A-Za-z_]\w*\s*[=(,)\]]|['"\[\])\-\d]|\Z)|\Z)""")
_STRING_STOP_RE = {q: re.compile("[\\\\" + q + "]") for q in "'\""}
_CONSTANTS = {"True": True, "False": False, "None": None}


def detect(text: str, pos: int, end: int) -> str | None:
    """"9b" if an upper-case call starts at ``pos``."""
    return "9b" if _CALL_START_RE.match(text, pos, end) else None


def starts_known_call(text: str, pos: int, end: int) -> bool:
    return _KNOWN_CALL_RE.match(text, pos, end) is not None


def value_key(verb: str) -> str:
    """The keyword argument that is ``Operation.value``: ``key`` for key verbs, ``text`` otherwise."""
    return "key" if verb in KEY_VERBS else "text"


class _Fail(Exception):
    """Internal: unwinds the recursive descent to ``parse_call``, which returns it as a ParseError."""

    def __init__(self, position: int, message: str) -> None:
        super().__init__(message)
        self.position = position
        self.message = message


def parse_call(text: str, pos: int, end: int) -> tuple[Operation, int] | ParseError:
    """Read the call starting at ``pos`` (reading stops at ``end``): (operation, index after its ')')."""
    reader = _Reader(text, end)
    try:
        op, stop = reader.call(pos, 0)
    except _Fail as fail:
        return ParseError(text, fail.position, fail.message)
    return op, stop


class _Reader:
    def __init__(self, text: str, end: int) -> None:
        self.text = text
        self.end = end
        self.warnings: list[str] = []

    def skip(self, pos: int) -> int:
        return _WS_RE.match(self.text, pos, self.end).end()  # type: ignore[union-attr]

    def peek(self, pos: int) -> str:
        return self.text[pos] if pos < self.end else ""

    def call(self, pos: int, depth: int) -> tuple[Operation, int]:
        """NAME(arg=value, ...) -> Operation."""
        if depth > MAX_DEPTH:
            raise _Fail(pos, f"operations nested deeper than {MAX_DEPTH} levels")
        name = _CALL_NAME_RE.match(self.text, pos, self.end)
        if name is None:
            raise _Fail(pos, "expected an operation such as CLICK(box=[[x1,y1,x2,y2]])")
        pos = self.skip(name.end())
        if self.peek(pos) != "(":
            raise _Fail(pos, f"expected '(' after {name.group()}")
        outer_warnings, self.warnings = self.warnings, []
        kwargs: dict[str, Any] = {}
        pos = self.skip(pos + 1)
        while self.peek(pos) != ")":
            if pos >= self.end:
                raise _Fail(pos, f"{name.group()}( is not closed: expected ')'")
            key, value, pos = self.keyword(pos, depth, kwargs)
            kwargs[key] = value
            pos = self.skip(pos)
            if pos >= self.end:
                raise _Fail(pos, f"{name.group()}( is not closed: expected ')'")
            if self.peek(pos) == ",":
                pos = self.skip(pos + 1)
            elif self.peek(pos) != ")":
                raise _Fail(pos, f"expected ',' or ')' after the argument {key} of {name.group()}")
        op = self.operation(name.group(), kwargs)
        self.warnings = outer_warnings
        return op, pos + 1

    def keyword(self, pos: int, depth: int, seen: dict) -> tuple[str, Any, int]:
        key = _NAME_RE.match(self.text, pos, self.end)
        if key is None:
            raise _Fail(pos, "expected an argument name=value (the grammar has no positional arguments)")
        eq = self.skip(key.end())
        if self.peek(eq) != "=":
            raise _Fail(eq, f"expected '=' after {key.group()} (the grammar has no positional arguments)")
        if key.group() in _CONSTANTS:
            raise _Fail(key.start(), f"{key.group()} is a value, not an argument name")
        if key.group() in seen:
            raise _Fail(key.start(), f"the argument {key.group()} is given twice")
        value, pos = self.value(self.skip(eq + 1), depth)
        return key.group(), value, pos

    def operation(self, name: str, kwargs: dict[str, Any]) -> Operation:
        verb = name.upper()
        if verb != name:
            self.warnings.append(f"operation name {name} read as {verb}")
        box = point = None
        if is_group_value(kwargs.get("box")):
            box, point, more = group_fields(kwargs["box"])
            if box is not None or point is not None:
                del kwargs["box"]
                if more:
                    kwargs["more_boxes"] = more
                    self.warnings.append("several boxes in one group: the operation uses the first")
        value = kwargs.pop(value_key(verb)) if isinstance(kwargs.get(value_key(verb)), str) else None
        return Operation(verb, box=box, point=point, value=value, args=kwargs, warnings=tuple(self.warnings))

    def value(self, pos: int, depth: int) -> tuple[Any, int]:
        if depth > MAX_DEPTH:
            raise _Fail(pos, f"values nested deeper than {MAX_DEPTH} levels")
        c = self.peek(pos)
        if c in ("'", '"'):
            return self.string(pos)
        if c == "[":
            return self.group_or_list(pos, depth)
        number = _NUMBER_RE.match(self.text, pos, self.end)
        if number is not None:
            s = number.group()
            if not any(ch in s for ch in ".eE"):
                return int(s), number.end()
            if math.isfinite(float(s)):
                return float(s), number.end()
            self.warnings.append(f"number {s} is out of range: kept as text")
            return s, number.end()
        name = _NAME_RE.match(self.text, pos, self.end)
        if name is not None and self.peek(self.skip(name.end())) == "(":
            return self.call(pos, depth + 1)
        bare = _BARE_RE.match(self.text, pos, self.end)
        if bare is None:
            raise _Fail(pos, "expected a value: a quoted string, a number, True/False/None, [[box]] or a list")
        word = bare.group()
        if word in _CONSTANTS:
            return _CONSTANTS[word], bare.end()
        self.warnings.append(f"unquoted value {word[:40]!r} read as a string")
        return word, bare.end()

    def string(self, pos: int) -> tuple[str, int]:
        quote = self.text[pos]
        stop_re = _STRING_STOP_RE[quote]
        parts: list[str] = []
        i = pos + 1
        while True:
            stop = stop_re.search(self.text, i, self.end)
            if stop is None:
                raise _Fail(pos, "a string is not closed")
            j = stop.start()
            if self.text[j] == "\\":
                escaped = self.peek(j + 1) in (quote, "\\")
                parts.append(self.text[i:j] + (self.text[j + 1] if escaped else "\\"))
                i = j + 2 if escaped else j + 1
                continue
            if _CLOSE_FOLLOW_RE.match(self.text, j + 1, self.end):
                parts.append(self.text[i:j])
                return "".join(parts), j + 1
            self.warnings.append("an unescaped quote inside a string was kept as text")
            parts.append(self.text[i : j + 1])
            i = j + 1

    def group_or_list(self, pos: int, depth: int) -> tuple[Any, int]:
        group = BOX_GROUP_RE.match(self.text, pos, self.end)
        if group is not None:
            rows = parse_group(group.group(1))
            if rows is not None:
                self.warnings.extend(rows[1])
                return rows[0], group.end()
        items = []
        pos = self.skip(pos + 1)
        while self.peek(pos) != "]":
            if pos >= self.end:
                raise _Fail(pos, "a list is not closed: expected ']'")
            item, pos = self.value(pos, depth + 1)
            items.append(item)
            pos = self.skip(pos)
            if pos >= self.end:
                raise _Fail(pos, "a list is not closed: expected ']'")
            if self.peek(pos) == ",":
                pos = self.skip(pos + 1)
            elif self.peek(pos) != "]":
                raise _Fail(pos, "expected ',' or ']' in a list")
        return tuple(items), pos + 1


# --------------------------------------------------------------------------------------------------------------
# format
# --------------------------------------------------------------------------------------------------------------


def format_call(op: Operation) -> str:
    """``VERB(box=[[...]], text|key='...', <other arguments in order>)``."""
    parts = []
    group = operation_group(op)
    if group:
        parts.append("box=" + format_group(group, pad=False))
    if op.value is not None:
        parts.append(f"{value_key(op.verb)}={quote(op.value)}")
    if op.element_role is not None or op.element_text is not None:
        raise ValueError("a 9B operation keeps its element in args (element_type, element_info)")
    for key, value in op.args.items():
        if key == "more_boxes" and group:
            continue
        if not _NAME_RE.fullmatch(key) or key in _CONSTANTS:
            raise ValueError(f"a 9B argument name must be an identifier, got {key!r}")
        if (key == "box" and group) or (key == value_key(op.verb) and op.value is not None):
            raise ValueError(f"{op.verb}: the argument {key} is given both as a field and in args")
        parts.append(f"{key}={format_value(value)}")
    return f"{op.verb}({', '.join(parts)})"


def format_value(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        if len(str(abs(value))) > MAX_DIGITS:
            raise ValueError(f"an integer of more than {MAX_DIGITS} digits has no 9B spelling")
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} has no 9B spelling")
        return repr(value)
    if isinstance(value, str):
        return quote(value)
    if isinstance(value, Operation):
        return format_call(value)
    if isinstance(value, tuple):
        if is_group_value(value):
            return format_group(value, pad=False)
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    raise ValueError(f"{value!r} has no 9B spelling")


def quote(s: str) -> str:
    """Single-quoted with ``\\'`` for quotes; a backslash is doubled only where it would otherwise read as an
    escape (before a quote, a backslash or the closing quote), so ``\\n`` stays two characters."""
    out = []
    for i, ch in enumerate(s):
        if ch == "'":
            out.append("\\'")
        elif ch == "\\" and (i + 1 == len(s) or s[i + 1] in "'\\"):
            out.append("\\\\")
        else:
            out.append(ch)
    return "'" + "".join(out) + "'"
