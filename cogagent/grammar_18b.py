"""CogAgent-18B operations: the Mind2Web web form and the AITW phone form (one line each).

Web:   ``[role] element text -> VERB[: value] at the box [[x1,y1,x2,y2]]``
       (``[combobox]  Search -> TYPE: CogVLM at the box [[212,498,787,564]]``; the ``[role] text ->`` part may
       be missing; ENTER is folded into CLICK as Mind2Web does, keeping ``args['original_op'] = 'ENTER'``).
Phone: ``tap [[x,y]]``, ``long press [[x,y]]``, ``double tap [[x,y]]``, ``type "text"``, ``press home``,
       ``swipe up``, ``task complete``, ``task impossible``.

Element text is free: it may hold ``:``, ``?``, commas, parentheses, ``->`` and a ``...`` truncation, so the
web reader cuts from the ends inward: the box suffix from the right, then the leftmost arrow that is followed
by an upper-case verb and then ``:`` or nothing. Every scan is a plain ``find`` or an anchored match, so a
megabyte of arrows or brackets is read in linear time.
"""

from __future__ import annotations

import re

from cogagent.grammar import (
    BOX_GROUP_RE,
    Operation,
    ParseError,
    format_group,
    group_fields,
    operation_group,
    parse_group,
)

WEB_VERBS = ("CLICK", "TYPE", "SELECT", "HOVER", "ENTER")
"""Mind2Web's operations; any other upper-case word after an arrow is read too (and kept as written)."""
WEB_FOLDED = {"ENTER": "CLICK"}
"""Mind2Web evaluates ENTER on an element as CLICK on it; the written op stays in ``args['original_op']``."""
WEB_ARG_KEYS = frozenset({"original_op", "more_boxes"})

PHONE_POINT_VERBS = {"tap": "TAP", "long press": "LONG_PRESS", "double tap": "DOUBLE_TAP"}
PHONE_WORDS = {verb: word for word, verb in PHONE_POINT_VERBS.items()}

# "[role]" then the spaces after it (Mind2Web writes two, CogAgent's README one).
_ROLE_RE = re.compile(r"\[([^\[\]\n]*)\][ \t]*")
# An arrow between the element and the operation; the paper's OCR also shows a Unicode arrow.
_ARROW_RE = re.compile(r"->|→")
# After an arrow: an upper-case verb, then ':' (a value follows) or the end of the operation.
_ARROW_VERB_RE = re.compile(r"(?:->|→)[ \t]*([A-Z][A-Z_]*)[ \t]*(?=:|\Z)")
# An operation with no element: "CLICK", "TYPE: text".
_BARE_VERB_RE = re.compile(r"([A-Z][A-Z_]*)[ \t]*(?=:|\Z)")
# What follows the last "at the box": one box group and at most a full stop.
_BOX_TAIL_RE = re.compile(r"[ \t]*(\[\[[^\[\]]*\]\])[ \t]*\.?")
_AT_THE_BOX = "at the box"

# Phone operations (case-insensitive words, as the figures capitalise them: "Press Enter").
_PHONE_POINT_RE = re.compile(r"(tap|long[ _]press|double[ _]tap)[ \t]*(\[\[[^\[\]]*\]\])", re.I)
_PHONE_TYPE_QUOTED_RE = re.compile(r"type[ \t]*:?[ \t]*([\"'])(.*)\1", re.I)  # greedy: up to the LAST quote
_PHONE_TYPE_BARE_RE = re.compile(r"type[ \t]*:?[ \t]+(\S.*)", re.I)
_PHONE_PRESS_RE = re.compile(r"press[ \t]+([A-Za-z_]+)", re.I)
_PHONE_SWIPE_RE = re.compile(r"swipe[ \t]+(up|down|left|right)(?:[ \t]*(\[\[[^\[\]]*\]\]))?", re.I)
_PHONE_TASK_RE = re.compile(r"task[ \t]+(complete|impossible)", re.I)
_PHONE_START_RE = re.compile(r"(?:tap|long[ _]press|double[ _]tap|type|press|swipe|task)\b", re.I)


def detect(text: str, pos: int, end: int) -> str:
    """The 18B dialect of an operation starting at ``pos``: a phone verb word, else web."""
    return "18b-phone" if starts_phone_verb(text, pos) else "18b-web"


def starts_phone_verb(text: str, pos: int, lower_case_only: bool = False) -> bool:
    """Whether a phone verb starts here. An ALL-CAPS word (``TYPE:``) is a web verb, not a phone one."""
    m = _PHONE_START_RE.match(text, pos)
    if m is None or m.group().isupper():
        return False
    return not lower_case_only or m.group().islower()


# --------------------------------------------------------------------------------------------------------------
# web
# --------------------------------------------------------------------------------------------------------------


def parse_web(text: str, start: int, end: int) -> Operation | ParseError:
    """Read ``text[start:end]`` (one line) as a web operation; positions in errors index ``text``."""
    line = text[start:end].rstrip()
    warnings: list[str] = []
    head, group_text, group_at = _split_box_suffix(line)
    role = None
    pos = 0
    role_match = _ROLE_RE.match(head)
    if role_match:
        role, pos = role_match.group(1), role_match.end()
    element_text = None
    verb_match = None if role is not None else _BARE_VERB_RE.match(head)
    if verb_match is None:
        verb_match = _first_arrow_verb(head, pos)
        if verb_match is None:
            return ParseError(
                text, start + pos,
                "expected a web operation such as '[button] Search -> CLICK at the box [[x1,y1,x2,y2]]'",
            )
        element_text = head[pos : verb_match.start()].strip()
    written_verb = verb_match.group(1)
    after = head[verb_match.end() :]
    value = after[1:].strip() if after.startswith(":") else None
    if written_verb in ("TYPE", "SELECT") and value is None:
        warnings.append(f"{written_verb} without a value")
    box = point = more = None
    if group_text is not None:
        group = parse_group(group_text[2:-2])
        if group is None:
            return ParseError(text, start + group_at, f"the box {group_text[:40]} is not numbers")
        box, point, more = group_fields(group[0])
        if box is None and point is None:
            return ParseError(text, start + group_at, f"a box needs 4 numbers (or a point 2): {group_text[:40]}")
        warnings.extend(group[1])
    args: dict = {}
    verb = WEB_FOLDED.get(written_verb, written_verb)
    if verb != written_verb:
        args["original_op"] = written_verb
    if more:
        args["more_boxes"] = more
        warnings.append("several boxes in one group: the operation uses the first")
    return Operation(
        verb=verb, box=box, point=point, element_role=role, element_text=element_text, value=value,
        args=args, warnings=tuple(warnings),
    )


def _split_box_suffix(line: str) -> tuple[str, str | None, int]:
    """(operation without its box, ``[[...]]`` or None, offset of the group). Only the LAST "at the box" can
    start the suffix, so a value that says "at the box office" stays in the value; it follows a space or the
    ':' of an empty value (``TYPE:at the box [[...]]``)."""
    at = line.rfind(_AT_THE_BOX)
    if at < 0 or (at > 0 and not (line[at - 1].isspace() or line[at - 1] == ":")):
        return line, None, 0
    tail = _BOX_TAIL_RE.fullmatch(line, at + len(_AT_THE_BOX))
    if tail is None:
        return line, None, 0
    return line[:at].rstrip(), tail.group(1), tail.start(1)


def _first_arrow_verb(head: str, pos: int) -> re.Match | None:
    """The leftmost arrow followed by a verb and then ':' or the end: element text may contain arrows that
    are not followed by an operation, and a typed value is free text after the verb."""
    while True:
        arrow = _ARROW_RE.search(head, pos)
        if arrow is None:
            return None
        m = _ARROW_VERB_RE.match(head, arrow.start())
        if m is not None:
            return m
        pos = arrow.end()


def format_web(op: Operation) -> str:
    """``[role] text -> VERB: value at the box [[087,675,817,695]]``; a role is written with its text (empty
    if None), text without a role as ``text -> VERB``."""
    unknown = set(op.args) - WEB_ARG_KEYS
    if unknown:
        raise ValueError(f"an 18B web operation cannot carry the arguments {sorted(unknown)}")
    if op.element_role is not None and any(c in op.element_role for c in "[]\n"):
        raise ValueError(f"element role {op.element_role!r} cannot hold brackets or newlines")
    prefix = ""
    if op.element_role is not None:
        prefix = f"[{op.element_role}] {op.element_text or ''} -> "
    elif op.element_text is not None:
        prefix = f"{op.element_text} -> "
    out = prefix + str(op.args.get("original_op", op.verb))
    if op.value is not None:
        out += f": {op.value}"
    group = operation_group(op)
    if group:
        out += f" {_AT_THE_BOX} " + format_group(group, pad=True)
    return out


# --------------------------------------------------------------------------------------------------------------
# phone
# --------------------------------------------------------------------------------------------------------------


def parse_phone(text: str, start: int, end: int) -> Operation | ParseError:
    """Read ``text[start:end]`` (one line) as a phone operation; a final full stop is tolerated."""
    line = text[start:end].strip()
    op = _phone(line)
    if op is None and line.endswith((".", "。")):
        op = _phone(line[:-1].rstrip())
    if op is None:
        return ParseError(
            text, start, "expected a phone operation: tap [[x,y]], type \"text\", press home|back|enter, "
            "swipe up|down|left|right, task complete or task impossible",
        )
    return op


def _phone(line: str) -> Operation | ParseError | None:
    m = _PHONE_POINT_RE.fullmatch(line)
    if m:
        return _grounded(PHONE_POINT_VERBS[m.group(1).lower().replace("_", " ")], m.group(2), None)
    m = _PHONE_TYPE_QUOTED_RE.fullmatch(line)
    if m:
        return Operation("TYPE", value=m.group(2))
    m = _PHONE_TYPE_BARE_RE.fullmatch(line)
    if m:
        return Operation("TYPE", value=m.group(1).strip(), warnings=("typed text without quotes",))
    m = _PHONE_PRESS_RE.fullmatch(line)
    if m:
        return Operation("PRESS", value=m.group(1).lower())
    m = _PHONE_SWIPE_RE.fullmatch(line)
    if m:
        direction = m.group(1).lower()
        return _grounded("SWIPE", m.group(2), direction) if m.group(2) else Operation("SWIPE", value=direction)
    m = _PHONE_TASK_RE.fullmatch(line)
    if m:
        return Operation("TASK_" + m.group(1).upper())
    return None


def _grounded(verb: str, group_text: str, value: str | None) -> Operation | None:
    group = parse_group(BOX_GROUP_RE.fullmatch(group_text).group(1))  # type: ignore[union-attr]
    if group is None:
        return None
    box, point, more = group_fields(group[0])
    if box is None and point is None:
        return None
    warnings = list(group[1])
    args = {}
    if more:
        args["more_boxes"] = more
        warnings.append("several boxes in one group: the operation uses the first")
    return Operation(verb, box=box, point=point, value=value, args=args, warnings=tuple(warnings))


def format_phone(op: Operation) -> str:
    """``tap [[780,862]]``, ``type "text"``, ``press home``, ``swipe up``, ``task complete``."""
    unknown = set(op.args) - {"more_boxes"}
    if unknown or op.element_role is not None or op.element_text is not None:
        raise ValueError(f"an 18B phone operation has no element or arguments: {op}")
    group = operation_group(op)
    if op.verb in PHONE_WORDS and group and op.value is None:
        return f"{PHONE_WORDS[op.verb]} {format_group(group, pad=True)}"
    if op.verb == "TYPE" and op.value is not None and "\n" not in op.value and not group:
        return f'type "{op.value}"'
    if op.verb == "PRESS" and op.value is not None and re.fullmatch(r"[a-z_]+", op.value) and not group:
        return f"press {op.value}"
    if op.verb == "SWIPE" and op.value in ("up", "down", "left", "right"):
        return f"swipe {op.value}" + (f" {format_group(group, pad=True)}" if group else "")
    if op.verb in ("TASK_COMPLETE", "TASK_IMPOSSIBLE") and op.value is None and not group:
        return op.verb.lower().replace("_", " ")
    raise ValueError(f"no 18B phone spelling for {op}")
