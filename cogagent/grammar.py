"""CogAgent's output grammar: the model's free text <-> typed operations, and back.

CogAgent writes text, not JSON. Three agent dialects and plain answers come out of it:

* ``18b-web`` (CogAgent-18B, Mind2Web style)::

      Plan: 1. ...
      Next Action: Move the cursor to the search bar and type 'CogVLM'.
      Grounded Operation:[combobox] Search -> TYPE: CogVLM at the box [[212,498,787,564]]

* ``18b-phone`` (CogAgent-18B, AITW style): ``Grounded Operation: tap [[780,862]]``, ``type "..."``,
  ``press home|back|enter``, ``swipe up|down|left|right``, ``task complete``, ``task impossible``;
* ``9b`` (CogAgent-9B-20241220): ``Status:`` / ``Plan:`` / ``Action:`` lines, a Python-like call
  ``Grounded Operation: CLICK(box=[[219,186,311,207]], element_type='...', element_info='...')`` and a
  sensitivity tag line ``<<一般操作>>`` (ordinary) / ``<<敏感操作>>`` (sensitive);
* ``qa``: anything without agent structure is an answer; the boxes it quotes are collected for drawing.

``parse`` never raises on model text: what cannot be read comes back as a ``ParseError`` value carrying the
text and the character offset, so one bad generation never ends an episode. ``format`` writes a turn back in
its dialect; ``parse(format(turn)) == turn`` (``raw`` and ``warnings`` are not compared), and for canonical
real outputs ``format(parse(text)) == text``.

What ``format`` normalises (the parser reads all of these, the formatter writes one spelling):

* field labels: ``[Plan]:`` / ``[Next Action]:`` / ``[Operation]:`` (paper figures) become ``Plan:`` /
  ``Next Action:`` / ``Grounded Operation:``; an 18B ``Action:`` becomes ``Next Action:``; an unlabelled
  sentence before the first label (figures) gets the action label; fields go one per line (a mid-line
  ``... steps. Next Action:`` moves to its own line) and lose surrounding whitespace; a bare operation (a 9B
  history step) gets its ``Grounded Operation:`` label (``format_operation`` writes it bare);
* 18B web: ``Grounded Operation:[`` with no space and one space after ``[role]`` (Mind2Web itself writes two);
  18B phone and 9B: one space after ``Grounded Operation:``;
* coordinates: three digits, zero padded, in 18B (``087``); plain integers in 9B (``[[0,86,999,932]]``);
  decimal figure coordinates (``[[0.512, 0.403]]``) become thousandths;
* 9B calls: ``box`` first, then ``text``/``key``, then the other arguments in the order written; strings in
  single quotes with ``\\'`` and ``\\\\`` escapes; ``<<General Operation>>``-style unknown tags are kept as written;
* phone: verbs in lower case (``Press Enter`` -> ``press enter``), no final full stop.

The coordinates are the model's 0-999 scale exactly as written: out-of-range values and swapped corners are
kept and flagged in ``Operation.warnings``; ``vision.geometry`` clamps and converts to pixels.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Mapping

__all__ = [
    "DIALECTS",
    "SENSITIVITY_TAGS",
    "Box",
    "ModelTurn",
    "Operation",
    "ParseError",
    "Point",
    "find_boxes",
    "format",
    "format_operation",
    "format_turn",
    "parse",
]

Box = tuple[int, int, int, int]
"""(x1, y1, x2, y2) on the model's 0-999 scale, per axis of the image it saw."""
Point = tuple[int, int]
"""(x, y) on the model's 0-999 scale."""

DIALECTS = ("18b-web", "18b-phone", "9b", "qa")
SENSITIVITY_TAGS: dict[str, bool] = {"<<一般操作>>": False, "<<敏感操作>>": True}
"""CogAgent-9B's sensitivity tags and whether the step is sensitive (needs a person's confirmation)."""
_TAG_OF_SENSITIVE = {sensitive: tag for tag, sensitive in SENSITIVITY_TAGS.items()}

COORD_MAX = 999
_VERB_RE = re.compile(r"[A-Z][A-Z0-9_]*")


# --------------------------------------------------------------------------------------------------------------
# Typed results
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParseError:
    """Model text that could not be read: a value, never raised, so the agent loop decides what to do."""

    text: str
    position: int
    """Character offset into ``text`` where reading failed."""
    message: str

    def __str__(self) -> str:
        excerpt = self.text[max(0, self.position - 20) : self.position + 40].replace("\n", "\\n")
        return f"{self.message} (at character {self.position}: ...{excerpt}...)"


@dataclass(frozen=True)
class Operation:
    """One grounded operation, in any dialect.

    ``verb`` is canonical upper case (CLICK, TYPE, SELECT, HOVER, TAP, LONG_PRESS, PRESS, SWIPE, TASK_COMPLETE,
    TASK_IMPOSSIBLE, KEY_PRESS, SCROLL_DOWN, LAUNCH, END, ...). ``value`` is the typed text, the selected
    option, the key or the swipe direction. ``args`` holds every other keyword argument as written (9B:
    ``element_type``, ``element_info``, ``step_count``, ``app``, ...; GESTURE's ``actions`` are nested
    ``Operation`` values) plus two bookkeeping keys: ``original_op`` (an 18B web ENTER folded into CLICK) and
    ``more_boxes`` (the rest of a ``[[a,b,c,d;e,f,g,h]]`` group; ``box`` is its first member).
    """

    verb: str
    box: Box | None = None
    point: Point | None = None
    element_role: str | None = None
    element_text: str | None = None
    value: str | None = None
    args: dict[str, Any] = field(default_factory=dict, hash=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)
    """How the text was read (decimal coordinates, unquoted values, ...) and geometry the consumer must fix."""

    def __post_init__(self) -> None:
        if not isinstance(self.verb, str) or not _VERB_RE.fullmatch(self.verb):
            raise ValueError(f"Operation.verb must be upper-case letters, digits and '_', got {self.verb!r}")
        _set(self, "box", _coords(self.box, 4, "box"))
        _set(self, "point", _coords(self.point, 2, "point"))
        for name in ("element_role", "element_text", "value"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise ValueError(f"Operation.{name} must be a string or None, got {getattr(self, name)!r}")
        if not isinstance(self.args, Mapping):
            raise ValueError(f"Operation.args must be a mapping, got {type(self.args).__name__}")
        _set(self, "args", {_arg_name(k): _freeze(v) for k, v in self.args.items()})
        _set(self, "warnings", _unique(tuple(self.warnings) + self._geometry_warnings()))

    def _geometry_warnings(self) -> tuple[str, ...]:
        out = []
        for name in ("box", "point"):
            coords = getattr(self, name)
            if coords is not None and any(c < 0 or c > COORD_MAX for c in coords):
                out.append(f"{name} {list(coords)} has coordinates outside 0-{COORD_MAX}")
        if self.box is not None and (self.box[0] > self.box[2] or self.box[1] > self.box[3]):
            out.append(f"box {list(self.box)} has swapped corners (x1 > x2 or y1 > y2)")
        return tuple(out)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict (tuples become lists, nested operations dicts) for episode logs."""
        return {
            "verb": self.verb,
            "box": list(self.box) if self.box is not None else None,
            "point": list(self.point) if self.point is not None else None,
            "element_role": self.element_role,
            "element_text": self.element_text,
            "value": self.value,
            "args": {k: _thaw(v) for k, v in self.args.items()},
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Operation":
        """Inverse of ``to_dict``; unknown keys are an error (a typo in a log must not vanish silently)."""
        unknown = set(data) - _OPERATION_KEYS
        if unknown:
            raise ValueError(f"Operation dict has unknown key(s) {sorted(unknown)}; known: {sorted(_OPERATION_KEYS)}")
        if "verb" not in data:
            raise ValueError("Operation dict needs a 'verb'")
        return cls(
            verb=data["verb"],
            box=data.get("box"),
            point=data.get("point"),
            element_role=data.get("element_role"),
            element_text=data.get("element_text"),
            value=data.get("value"),
            args=data.get("args") or {},
            warnings=tuple(data.get("warnings") or ()),
        )


_OPERATION_KEYS = {"verb", "box", "point", "element_role", "element_text", "value", "args", "warnings"}


@dataclass(frozen=True)
class ModelTurn:
    """One model reply, read.

    ``next_action`` is 18B's "Next Action" and 9B's "Action". ``sensitive`` comes from the 9B tag
    (``<<敏感操作>>`` True, ``<<一般操作>>`` False, otherwise None); ``sensitivity_tag`` is the tag as written
    (also ``<<END>>`` or an unknown tag). ``answer`` is the text of a plain QA reply. ``boxes`` lists every
    4-number box quoted anywhere in the text, in order, repeats included (for drawing).
    """

    dialect: str
    plan: str | None = None
    next_action: str | None = None
    operations: tuple[Operation, ...] = ()
    sensitive: bool | None = None
    status: str | None = None
    answer: str | None = None
    boxes: tuple[Box, ...] = ()
    sensitivity_tag: str | None = None
    raw: str = field(default="", compare=False)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.dialect not in DIALECTS:
            raise ValueError(f"ModelTurn.dialect must be one of {DIALECTS}, got {self.dialect!r}")
        ops = tuple(self.operations)
        if not all(isinstance(op, Operation) for op in ops):
            raise ValueError("ModelTurn.operations must hold Operation values")
        _set(self, "operations", ops)
        _set(self, "boxes", tuple(_coords(b, 4, "boxes[i]") for b in self.boxes))
        for name in ("plan", "next_action", "status", "answer", "sensitivity_tag"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise ValueError(f"ModelTurn.{name} must be a string or None, got {getattr(self, name)!r}")
        self._settle_sensitivity()
        _set(self, "warnings", _unique(tuple(self.warnings)))

    def _settle_sensitivity(self) -> None:
        """Keep ``sensitive`` and the written tag consistent: either one determines the other."""
        if self.sensitive is not None and not isinstance(self.sensitive, bool):
            raise ValueError(f"ModelTurn.sensitive must be True, False or None, got {self.sensitive!r}")
        tag = self.sensitivity_tag
        if tag in SENSITIVITY_TAGS:
            if self.sensitive is not None and self.sensitive != SENSITIVITY_TAGS[tag]:
                raise ValueError(f"ModelTurn.sensitive={self.sensitive} contradicts the tag {tag}")
            _set(self, "sensitive", SENSITIVITY_TAGS[tag])
        elif tag is None and self.sensitive is not None:
            _set(self, "sensitivity_tag", _TAG_OF_SENSITIVE[self.sensitive])
        elif tag is not None and self.sensitive is not None:
            raise ValueError(f"ModelTurn.sensitive must be None with the tag {tag!r}")

    @property
    def operation(self) -> Operation | None:
        """The first (in practice the only) operation, or None."""
        return self.operations[0] if self.operations else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "dialect": self.dialect,
            "status": self.status,
            "plan": self.plan,
            "next_action": self.next_action,
            "operations": [op.to_dict() for op in self.operations],
            "sensitive": self.sensitive,
            "sensitivity_tag": self.sensitivity_tag,
            "answer": self.answer,
            "boxes": [list(b) for b in self.boxes],
            "raw": self.raw,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ModelTurn":
        unknown = set(data) - _TURN_KEYS
        if unknown:
            raise ValueError(f"ModelTurn dict has unknown key(s) {sorted(unknown)}; known: {sorted(_TURN_KEYS)}")
        if "dialect" not in data:
            raise ValueError("ModelTurn dict needs a 'dialect'")
        return cls(
            dialect=data["dialect"],
            status=data.get("status"),
            plan=data.get("plan"),
            next_action=data.get("next_action"),
            operations=tuple(Operation.from_dict(op) for op in data.get("operations") or ()),
            sensitive=data.get("sensitive"),
            sensitivity_tag=data.get("sensitivity_tag"),
            answer=data.get("answer"),
            boxes=tuple(data.get("boxes") or ()),
            raw=data.get("raw") or "",
            warnings=tuple(data.get("warnings") or ()),
        )


_TURN_KEYS = {
    "dialect", "status", "plan", "next_action", "operations", "sensitive", "sensitivity_tag", "answer", "boxes",
    "raw", "warnings",
}


def _set(obj: object, name: str, value: Any) -> None:
    object.__setattr__(obj, name, value)


def _unique(items: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _coords(value: Any, n: int, name: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        coords = tuple(value)
    except TypeError:
        raise ValueError(f"{name} must be {n} integers, got {value!r}") from None
    if len(coords) != n or not all(isinstance(c, int) and not isinstance(c, bool) for c in coords):
        raise ValueError(f"{name} must be {n} integers, got {value!r}")
    return coords


def _arg_name(key: Any) -> str:
    if not isinstance(key, str) or not key:
        raise ValueError(f"Operation.args keys must be non-empty strings, got {key!r}")
    return key


def _freeze(value: Any) -> Any:
    """Argument values are immutable: lists become tuples, dicts (from JSON) become nested Operations."""
    if value is None or isinstance(value, (str, bool, int, float, Operation)):
        return value
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, Mapping):
        return Operation.from_dict(value)
    raise ValueError(f"Operation.args values must be str, number, bool, None, lists or operations, got {value!r}")


def _thaw(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    if isinstance(value, Operation):
        return value.to_dict()
    return value


# --------------------------------------------------------------------------------------------------------------
# Boxes: "[[x1,y1,x2,y2]]", points "[[x,y]]", groups "[[a,b,c,d;e,f,g,h]]"
# --------------------------------------------------------------------------------------------------------------

# A box group: "[[" anything without brackets "]]". The inside is checked by parse_group, so this pattern has
# one unbounded class between fixed delimiters (linear time, no backtracking blow-up).
BOX_GROUP_RE = re.compile(r"\[\[([^\[\]]*)\]\]")
# One coordinate: an optional minus, at most 9 digits (longer runs are not coordinates and would only
# strain int()), an optional decimal part (paper figures print 0-1 fractions).
_COORD_RE = re.compile(r"-?\d{1,9}(?:\.\d{1,9})?")


def parse_group(inner: str) -> tuple[tuple[tuple[int, ...], ...], tuple[str, ...]] | None:
    """The inside of ``[[...]]`` as boxes/points, or None if it is not numbers separated by ',' and ';'.

    Decimal coordinates all within [0, 1] are fractions of the image (paper figures): they become thousandths.
    Other decimals are rounded. Either way a warning says so.
    """
    rows = []
    for part in inner.split(";"):
        coords = [c.strip() for c in part.split(",")]
        if not all(_COORD_RE.fullmatch(c) for c in coords):
            return None
        rows.append(coords)
    if not any("." in c for row in rows for c in row):
        return tuple(tuple(int(c) for c in row) for row in rows), ()
    values = [[Decimal(c) for c in row] for row in rows]
    if all(0 <= v <= 1 for row in values for v in row):
        scaled = tuple(tuple(int((v * 1000).to_integral_value()) for v in row) for row in values)
        return scaled, (f"decimal coordinates [[{inner}]] read as fractions of the image (x1000)",)
    rounded = tuple(tuple(int(v.to_integral_value()) for v in row) for row in values)
    return rounded, (f"decimal coordinates [[{inner}]] rounded to integers",)


def find_boxes(text: str) -> tuple[Box, ...]:
    """Every 4-number box quoted in ``text`` (groups split), in order of appearance, repeats kept."""
    out: list[Box] = []
    for m in BOX_GROUP_RE.finditer(text):
        group = parse_group(m.group(1))
        if group is not None:
            out.extend(row for row in group[0] if len(row) == 4)  # type: ignore[misc]
    return tuple(out)


def group_fields(rows: tuple[tuple[int, ...], ...]) -> tuple[Box | None, Point | None, tuple | None]:
    """A box group as operation fields: its first member is the box (4 numbers) or point (2 numbers); the
    rest, if any, is returned for ``args['more_boxes']``. (None, None, None) if the first member is neither."""
    first, rest = rows[0], rows[1:] or None
    if len(first) == 4:
        return first, None, rest  # type: ignore[return-value]
    if len(first) == 2:
        return None, first, rest  # type: ignore[return-value]
    return None, None, None


def operation_group(op: Operation) -> tuple[tuple[int, ...], ...]:
    """The box group an operation was grounded with: its box or point, then ``args['more_boxes']``."""
    first = op.box if op.box is not None else op.point
    if first is None:
        return ()
    more = op.args.get("more_boxes")
    if isinstance(more, tuple) and all(_is_int_row(r) for r in more):
        return (first, *more)
    return (first,)


def _is_int_row(row: Any) -> bool:
    return isinstance(row, tuple) and bool(row) and all(isinstance(c, int) and not isinstance(c, bool) for c in row)


def is_group_value(value: Any) -> bool:
    """Whether an argument value is written as a ``[[...;...]]`` group (a non-empty tuple of integer rows)."""
    return isinstance(value, tuple) and bool(value) and all(_is_int_row(r) for r in value)


def format_group(rows: tuple[tuple[int, ...], ...], pad: bool) -> str:
    """``[[a,b,c,d;e,f,g,h]]``; ``pad`` writes three digits (18B style, ``087``)."""
    fmt = (lambda c: f"{c:03d}") if pad else str
    return "[[" + ";".join(",".join(fmt(c) for c in row) for row in rows) + "]]"


# --------------------------------------------------------------------------------------------------------------
# Fields: "Status:", "Plan:", "Next Action:"/"Action:", "Grounded Operation:", then the 9B sensitivity tag
# --------------------------------------------------------------------------------------------------------------

# A field label. At the start of a line: "Plan:", or "[Plan]:" as the paper's figures print it. Mid-line, only
# the two unmistakable labels and only after a sentence end ("...steps. Next Action: Click"): OCR'd and
# re-flowed outputs lose the line break. Each alternative is a fixed word list, so matching is linear.
_LABEL_RE = re.compile(
    r"^[ \t]*(?:\[(?P<bracketed>Status|Plan|Next Action|Action|Grounded Operation|Operation)\]"
    r"|(?P<plain>Status|Plan|Next Action|Action|Grounded Operation))[ \t]*:"
    r"|(?<=[.!?。])[ \t]+(?P<inline>Next Action|Grounded Operation)[ \t]*:",
    re.MULTILINE,
)
_FIELD_OF_LABEL = {
    "Status": "status", "Plan": "plan", "Next Action": "next_action", "Action": "next_action",
    "Grounded Operation": "operation", "Operation": "operation",
}
# Fields come in this order; a label that would go backwards is text inside the current field (a plan that
# quotes "Plan:"), which also keeps a label inside a later field from splitting it.
_RANK = {"status": 0, "plan": 1, "next_action": 2, "operation": 3}
_TAG_MAX = 64


def _split_tag(text: str) -> tuple[int, str | None]:
    """(end of the body, trailing ``<<...>>`` tag or None). The tag ends the text on a line of its own, as
    9B writes it, or right after the operation's ``)``; ``a <<b>>`` in an answer or a Status line is text."""
    end = len(text.rstrip())
    if not text.endswith(">>", 0, end):
        return end, None
    start = text.rfind("<<", max(0, end - _TAG_MAX), end - 2)
    if start < 0:
        return end, None
    inner = text[start + 2 : end - 2]
    line_start = text.rfind("\n", 0, start) + 1
    before = text[line_start:start].rstrip()
    if not inner or any(c in "<>\n" for c in inner) or (before and not before.endswith(")")):
        return end, None
    return start, text[start:end]


class _Fields:
    """What a walk over the labels collects."""

    def __init__(self) -> None:
        self.text: dict[str, str] = {}
        self.ops: list[Operation] = []
        self.op_dialect: str | None = None
        self.action_label: str | None = None
        self.first_label: int | None = None


def _walk_fields(text: str, body_end: int, dialect: str) -> _Fields | ParseError:
    fields = _Fields()
    rank = -1
    consumed = 0  # an operation may span labels (a 9B string with a newline): labels before this are text
    pending: tuple[str, int] | None = None  # the field whose text runs up to the next label

    def close(stop: int) -> ParseError | None:
        if pending is None:
            return None
        kind, start = pending
        if kind != "tail":
            fields.text[kind] = text[start:stop].strip()
            return None
        leftover = text[start:stop].strip()
        if leftover in ("", ".", "。"):
            return None
        where = start + (len(text[start:stop]) - len(text[start:stop].lstrip()))
        return ParseError(text, where, f"unexpected text after the operation: {leftover[:60]!r}")

    for m in _LABEL_RE.finditer(text, 0, body_end):
        if m.start() < consumed:
            continue
        label = m.group("bracketed") or m.group("plain") or m.group("inline")
        kind = _FIELD_OF_LABEL[label]
        if _RANK[kind] < rank or (_RANK[kind] == rank and kind != "operation"):
            continue
        error = close(m.start())
        if error is not None:
            return error
        if fields.first_label is None:
            fields.first_label = m.start()
        rank = _RANK[kind]
        if kind == "next_action":
            fields.action_label = label
        if kind != "operation":
            pending = (kind, m.end())
            continue
        result = _operation_at(text, m.end(), body_end, dialect, fields.op_dialect)
        if isinstance(result, ParseError):
            return result
        op, op_dialect, consumed = result
        fields.ops.append(op)
        fields.op_dialect = op_dialect
        pending = ("tail", consumed)
    error = close(body_end)
    return error if error is not None else fields


def _operation_at(
    text: str, start: int, end: int, dialect: str, seen_dialect: str | None
) -> tuple[Operation, str, int] | ParseError:
    """Read the operation after a ``Grounded Operation:`` label: (operation, its dialect, where it ends)."""
    pos = start
    while pos < end and text[pos].isspace():
        pos += 1
    if pos >= end:
        return ParseError(text, start, "'Grounded Operation:' is followed by no operation")
    op_dialect = dialect if dialect != "auto" else _grammar_9b.detect(text, pos, end) or _grammar_18b.detect(
        text, pos, end
    )
    if seen_dialect is not None and op_dialect != seen_dialect:
        return ParseError(text, pos, f"a {op_dialect} operation after a {seen_dialect} one in the same reply")
    if op_dialect == "9b":
        result = _grammar_9b.parse_call(text, pos, end)
        return result if isinstance(result, ParseError) else (result[0], op_dialect, result[1])
    if op_dialect not in ("18b-web", "18b-phone"):
        return ParseError(text, pos, f"a {op_dialect} reply has no grounded operations")
    line_end = text.find("\n", pos, end)
    line_end = end if line_end < 0 else line_end
    parse_line = _grammar_18b.parse_web if op_dialect == "18b-web" else _grammar_18b.parse_phone
    op = parse_line(text, pos, line_end)
    return op if isinstance(op, ParseError) else (op, op_dialect, line_end)


# --------------------------------------------------------------------------------------------------------------
# parse
# --------------------------------------------------------------------------------------------------------------


def parse(text: str, dialect: str = "auto") -> ModelTurn | ParseError:
    """Read one model reply. ``dialect`` is ``"auto"`` or one of ``DIALECTS``; with ``"auto"`` the operation's
    syntax decides, then a Status line or sensitivity tag (9B), then the action label (9B's ``Action:``);
    a reply with fields but no operation, no Status and a ``Next Action:`` reads as ``18b-web`` (the two 18B
    dialects differ only in their operations: pass ``dialect="18b-phone"`` when you know better).

    Never raises for any string; returns ``ParseError`` for an empty reply or a malformed operation.
    """
    if dialect != "auto" and dialect not in DIALECTS:
        raise ValueError(f"dialect must be 'auto' or one of {DIALECTS}, got {dialect!r}")
    if not isinstance(text, str):
        raise TypeError(f"parse() reads model text (str), got {type(text).__name__}")
    if not text.strip():
        return ParseError(text, 0, "empty model output: nothing to parse")
    if dialect == "qa":
        return _answer(text)
    body_end, tag = _split_tag(text)
    fields = _walk_fields(text, body_end, dialect)
    if isinstance(fields, ParseError):
        return fields
    if fields.first_label is None:
        return _unlabelled(text, body_end, tag, dialect)
    return _turn_from_fields(text, fields, tag, dialect)


def _turn_from_fields(text: str, fields: _Fields, tag: str | None, dialect: str) -> ModelTurn:
    warnings = []
    next_action = fields.text.get("next_action")
    leading = text[: fields.first_label].strip()
    if leading and next_action is None:
        next_action = leading
        warnings.append("unlabelled text before the first field read as the next action")
    elif leading:
        warnings.append(f"unlabelled text before the first field ignored: {leading[:60]!r}")
    if dialect == "auto":
        if fields.op_dialect is not None:
            dialect = fields.op_dialect
        elif tag is not None or "status" in fields.text or fields.action_label == "Action":
            dialect = "9b"
        else:
            dialect = "18b-web"
    return ModelTurn(
        dialect=dialect,
        status=fields.text.get("status"),
        plan=fields.text.get("plan"),
        next_action=next_action,
        operations=tuple(fields.ops),
        boxes=find_boxes(text),
        raw=text,
        warnings=tuple(warnings) + _tag_warnings(tag),
        **_sensitivity(tag),
    )


def _sensitivity(tag: str | None) -> dict[str, Any]:
    return {"sensitivity_tag": tag, "sensitive": SENSITIVITY_TAGS.get(tag) if tag else None}


def _tag_warnings(tag: str | None) -> tuple[str, ...]:
    if tag is None or tag in SENSITIVITY_TAGS or tag == "<<END>>":
        return ()
    return (f"unknown sensitivity tag {tag}: sensitivity unknown",)


def _unlabelled(text: str, body_end: int, tag: str | None, dialect: str) -> ModelTurn | ParseError:
    """No field labels: a bare operation (history steps, quoted snippets) or, under "auto", an answer."""
    start = len(text) - len(text.lstrip())
    if dialect == "auto":
        found = _bare_operation(text, start, body_end)
        if found is None:
            return _answer(text)
        if isinstance(found, ParseError):
            return found
        op_dialect, (op, op_end) = found
    else:
        op_dialect = dialect
        result = _operation_at(text, start, body_end, dialect, None)
        if isinstance(result, ParseError):
            return ParseError(
                text, result.position, f"no Plan/Action/Grounded Operation field and not a {dialect} operation: "
                f"{result.message}"
            )
        op, _, op_end = result
    leftover = text[op_end:body_end]
    if leftover.strip() not in ("", ".", "。"):
        where = op_end + len(leftover) - len(leftover.lstrip())
        return ParseError(text, where, f"unexpected text after the operation: {leftover.strip()[:60]!r}")
    return ModelTurn(
        dialect=op_dialect, operations=(op,), boxes=find_boxes(text), raw=text,
        warnings=_tag_warnings(tag), **_sensitivity(tag),
    )


def _bare_operation(text: str, start: int, end: int):
    """Under "auto", a whole reply that is one operation: a known 9B call (a broken one is an error), an 18B
    web operation starting with ``[role]``, or a lower-case phone operation. None means: an answer."""
    if _grammar_9b.starts_known_call(text, start, end):
        result = _grammar_9b.parse_call(text, start, end)
        return result if isinstance(result, ParseError) else ("9b", result)
    line_end = text.find("\n", start, end)
    if line_end >= 0 and text[line_end:end].strip():
        return None
    line_end = end if line_end < 0 else line_end
    if text.startswith("[", start):
        op = _grammar_18b.parse_web(text, start, line_end)
        return None if isinstance(op, ParseError) else ("18b-web", (op, line_end))
    if _grammar_18b.starts_phone_verb(text, start, lower_case_only=True):
        op = _grammar_18b.parse_phone(text, start, line_end)
        return None if isinstance(op, ParseError) else ("18b-phone", (op, line_end))
    return None


def _answer(text: str) -> ModelTurn:
    return ModelTurn(dialect="qa", answer=text.strip(), boxes=find_boxes(text), raw=text)


# --------------------------------------------------------------------------------------------------------------
# format
# --------------------------------------------------------------------------------------------------------------


def format_turn(turn: ModelTurn) -> str:
    """Write a turn back as the model would, in its dialect (see the module docstring for the spelling).

    Raises ``ValueError`` for a turn its dialect cannot express (a phone operation in a web turn, a 9B argument
    named like no identifier): that is a programming error, not model text.
    """
    if turn.dialect == "qa":
        return turn.answer or ""
    lines = []
    if turn.status is not None:
        lines.append(f"Status: {turn.status}")
    if turn.plan is not None:
        lines.append(f"Plan: {turn.plan}")
    if turn.next_action is not None:
        label = "Action" if turn.dialect == "9b" else "Next Action"
        lines.append(f"{label}: {turn.next_action}")
    for op in turn.operations:
        space = "" if turn.dialect == "18b-web" else " "
        lines.append(f"Grounded Operation:{space}{format_operation(op, turn.dialect)}")
    if turn.sensitivity_tag is not None:
        lines.append(turn.sensitivity_tag)
    return "\n".join(lines)


def format_operation(op: Operation, dialect: str) -> str:
    """One operation without its label, as 9B's "History steps" quote them (``CLICK(box=[[...]], ...)``)."""
    if dialect == "9b":
        return _grammar_9b.format_call(op)
    if dialect == "18b-web":
        return _grammar_18b.format_web(op)
    if dialect == "18b-phone":
        return _grammar_18b.format_phone(op)
    raise ValueError(f"operations are written in 18b-web, 18b-phone or 9b, not {dialect!r}")


format = format_turn  # noqa: A001 - the public name the design uses; shadows the builtin only in this module


# The dialect readers use the types above; importing them last keeps that one-way at import time.
from cogagent import grammar_18b as _grammar_18b  # noqa: E402
from cogagent import grammar_9b as _grammar_9b  # noqa: E402
