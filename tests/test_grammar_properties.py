"""Property tests for cogagent.grammar: any string in gives a value out, and generated turns survive
format -> parse and a JSON log unchanged.

The generated field texts avoid the label words (Status, Plan, Action, Operation) and '<' '>' (the tag),
because a field that contains its own label is ambiguous to any reader; everything else (quotes, brackets,
colons, backslashes, Chinese, boxes inside text) is fair game.
"""

from __future__ import annotations

import dataclasses
import json
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cogagent import grammar
from cogagent.grammar import ModelTurn, Operation, ParseError, find_boxes, parse
from cogagent.grammar_9b import KNOWN_VERBS, quote, value_key

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --------------------------------------------------------------------------------------------------------------
# any string in, a value out
# --------------------------------------------------------------------------------------------------------------

FRAGMENTS = [
    "Status:", "Plan:", "Next Action:", "Action:", "Grounded Operation:", "[Operation]:", "\n", " ", "  ", ". ",
    "[", "]", "[[", "]]", "(", ")", "'", '"', "\\", ",", ";", ":", "=", "->", "→", " at the box ", "<<", ">>",
    "<<一般操作>>", "<<END>>", "CLICK(", "TYPE(", "GESTURE(actions=[", "KEY_PRESS(key=", "box=[[", "text='",
    "element_info='", "[link] ", "[combobox]  ", "-> CLICK", "-> TYPE: ", "tap ", "type \"", "press ", "swipe ",
    "task complete", "0", "087", "999", "1000", "-5", "0.5", "1,2,3,4", "1,2", "True", "None", "点击", "…",
]
fuzz_text = st.one_of(
    st.text(max_size=300),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), max_size=60).map("".join),
)


@SETTINGS
@given(text=fuzz_text, dialect=st.sampled_from(["auto", *grammar.DIALECTS]))
def test_any_text_gives_a_turn_or_an_error(text, dialect):
    result = parse(text, dialect=dialect)
    assert isinstance(result, (ModelTurn, ParseError))
    if isinstance(result, ParseError):
        assert result.text == text and 0 <= result.position <= len(text) and result.message
    else:
        assert result.raw == text
        assert dialect == "auto" or result.dialect == dialect


@SETTINGS
@given(text=fuzz_text)
def test_what_parses_formats_and_reads_back_the_same(text):
    """Whatever the parser accepts, the formatter can write, and the parser reads that back unchanged."""
    turn = parse(text)
    if isinstance(turn, ModelTurn):
        assert_same_content(parse(grammar.format(turn), dialect=turn.dialect), turn)


def assert_same_content(again: ModelTurn, turn: ModelTurn) -> None:
    """Equal except ``boxes``, which lists boxes as spelled in the text: a 9B argument written
    ``[[1,2,3,4],]`` is no box group in the original but is written back as the group ``[[1,2,3,4]]``, and
    text before the first label that the turn has no field for is dropped."""
    assert dataclasses.replace(again, boxes=turn.boxes) == turn


# --------------------------------------------------------------------------------------------------------------
# generated turns
# --------------------------------------------------------------------------------------------------------------

_LABEL_WORDS = re.compile(r"Status|Plan|Action|Operation")
_CHARS = "abcXYZ 019.,:;?!'\"()[]{}-_/…“”点击设置"
_LINE_CHARS = _CHARS + "\t"


def _clean(s: str) -> bool:
    return not _LABEL_WORDS.search(s)


line_text = st.text(alphabet=_LINE_CHARS, max_size=30).map(str.strip).filter(_clean)
block_text = st.text(alphabet=_CHARS + "\n", max_size=60).map(str.strip).filter(_clean)
coordinate = st.integers(min_value=-50, max_value=1500)
box = st.tuples(coordinate, coordinate, coordinate, coordinate)
point = st.tuples(coordinate, coordinate)
upper_verb = st.from_regex(r"[A-Z][A-Z_]{0,8}", fullmatch=True)


@st.composite
def grounding(draw, allow_none=True):
    """(box, point, more_boxes): a box or point, sometimes with more boxes in the same group."""
    kind = draw(st.sampled_from(["none", "box", "point"] if allow_none else ["box", "point"]))
    if kind == "none":
        return None, None, None
    more = draw(st.none() | st.lists(box, min_size=1, max_size=2).map(tuple))
    return (draw(box), None, more) if kind == "box" else (None, draw(point), more)


def _op(verb, grounded=(None, None, None), **fields) -> Operation:
    box_, point_, more = grounded
    args = dict(fields.pop("args", {}))
    if more:
        args["more_boxes"] = more
    return Operation(verb, box=box_, point=point_, args=args, **fields)


@st.composite
def web_operation(draw):
    role = draw(st.none() | st.text(alphabet=_LINE_CHARS.replace("[", "").replace("]", ""), max_size=12))
    element = None if role is None else draw(line_text.filter(lambda s: "at the box" not in s))
    verb = draw(st.sampled_from(["CLICK", "TYPE", "SELECT", "HOVER", "ENTER"]) | upper_verb)
    value = draw(st.none() | line_text.filter(lambda s: "at the box" not in s))
    args = {"original_op": "ENTER"} if verb == "ENTER" else {}
    return _op("CLICK" if verb == "ENTER" else verb, draw(grounding()), element_role=role, element_text=element,
               value=value, args=args)


@st.composite
def phone_operation(draw):
    kind = draw(st.sampled_from(["TAP", "LONG_PRESS", "DOUBLE_TAP", "TYPE", "PRESS", "SWIPE", "TASK"]))
    if kind in ("TAP", "LONG_PRESS", "DOUBLE_TAP"):
        return _op(kind, draw(grounding(allow_none=False)))
    if kind == "TYPE":
        return Operation("TYPE", value=draw(st.text(alphabet=_LINE_CHARS, max_size=30)))
    if kind == "PRESS":
        return Operation("PRESS", value=draw(st.sampled_from(["home", "back", "enter", "recent_apps"])))
    if kind == "SWIPE":
        return _op("SWIPE", draw(grounding()), value=draw(st.sampled_from(["up", "down", "left", "right"])))
    return Operation(draw(st.sampled_from(["TASK_COMPLETE", "TASK_IMPOSSIBLE"])))


any_string = st.text(max_size=40)  # 9B strings are quoted: anything goes, newlines and quotes included
arg_name = st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True)
scalar = st.one_of(
    any_string, st.integers(min_value=-(10**39), max_value=10**39), st.booleans(), st.none(),
    st.floats(allow_nan=False, allow_infinity=False),
)


@st.composite
def call_operation(draw, depth=0):
    verb = draw(st.sampled_from(KNOWN_VERBS) | st.from_regex(r"[A-Z][A-Z0-9_]{0,10}", fullmatch=True))
    value = draw(st.none() | any_string)
    values = scalar | st.lists(scalar, max_size=3).map(tuple) | st.lists(box, min_size=1, max_size=2).map(tuple)
    if depth < 2:
        values = values | st.lists(call_operation(depth=depth + 1), max_size=2).map(tuple)
    reserved = {"box", "more_boxes", value_key(verb)}
    args = draw(st.dictionaries(arg_name.filter(lambda k: k not in reserved), values, max_size=4))
    return _op(verb, draw(grounding()), value=value, args=args)


@st.composite
def model_turn(draw, dialect):
    """A turn of one dialect that ``parse`` can tell apart under "auto" (see ``identifiable``)."""
    if dialect == "qa":
        answer = "The answer " + draw(st.text(alphabet=_CHARS.replace(":", "") + "\n", max_size=60).filter(_clean))
        return _with_boxes(ModelTurn("qa", answer=answer.strip()))
    operation = {"18b-web": web_operation(), "18b-phone": phone_operation(), "9b": call_operation()}[dialect]
    fields = {
        "plan": draw(st.none() | block_text),
        "next_action": draw(st.none() | block_text),
        "operations": tuple(draw(st.lists(operation, max_size=2))),
    }
    if dialect == "9b":
        fields["status"] = draw(st.none() | line_text)
        tag = draw(st.sampled_from([None, "<<一般操作>>", "<<敏感操作>>", "<<END>>", "<<General Operation>>"]))
        fields["sensitivity_tag"] = tag
    turn = ModelTurn(dialect, **fields)
    if not (turn.plan is not None or turn.next_action is not None or turn.operations or turn.status is not None):
        turn = dataclasses.replace(turn, next_action="Go.")
    return _with_boxes(turn)


def _with_boxes(turn: ModelTurn) -> ModelTurn:
    """``boxes`` lists the boxes quoted anywhere in the text: take them from the written text."""
    return dataclasses.replace(turn, boxes=find_boxes(grammar.format(turn)))


def identifiable(turn: ModelTurn) -> bool:
    """Whether "auto" can name the dialect: a 9B turn needs an operation, Status, tag or Action line; an 18B
    phone turn needs a phone operation (without one it reads as web)."""
    if turn.dialect == "9b":
        return bool(turn.operations) or turn.status is not None or turn.sensitivity_tag is not None \
            or turn.next_action is not None
    if turn.dialect == "18b-phone":
        return bool(turn.operations)
    return True


any_turn = st.sampled_from(grammar.DIALECTS).flatmap(model_turn)


@SETTINGS
@given(turn=any_turn)
def test_generated_turn_round_trips_through_its_text(turn):
    text = grammar.format(turn)
    assert parse(text, dialect=turn.dialect) == turn
    if identifiable(turn):
        assert parse(text) == turn


@SETTINGS
@given(turn=any_turn)
def test_generated_turn_round_trips_through_a_json_log(turn):
    turn = parse(grammar.format(turn), dialect=turn.dialect)  # with raw text and warnings filled in
    back = ModelTurn.from_dict(json.loads(json.dumps(turn.to_dict())))
    assert back == turn and back.raw == turn.raw and back.warnings == turn.warnings


@SETTINGS
@given(value=st.text())
def test_any_string_survives_9b_quoting(value):
    op = parse(f"LLM(prompt={quote(value)}, output='x')").operation
    assert op.args == {"prompt": value, "output": "x"}


@SETTINGS
@given(boxes=st.lists(st.lists(st.integers(0, 999), min_size=4, max_size=4).map(tuple), min_size=1, max_size=4),
       padded=st.booleans(), words=line_text)
def test_box_groups_anywhere_in_text_are_found(boxes, padded, words):
    group = grammar.format_group(tuple(boxes), pad=padded)
    assert find_boxes(f"{words} {group}. {words}") == tuple(boxes)


@st.composite
def damaged_reply(draw):
    """A well-formed reply with a few characters inserted, deleted or spliced in: what a sampling hiccup does."""
    text = grammar.format(draw(any_turn))
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(text)))
        edit = draw(st.sampled_from(["insert", "delete", "splice"]))
        if edit == "insert":
            text = text[:i] + draw(st.text(max_size=3)) + text[i:]
        elif edit == "delete":
            text = text[:i] + text[i + draw(st.integers(1, 5)) :]
        else:
            text = text[:i] + draw(st.sampled_from(FRAGMENTS)) + text[i:]
    return text


@SETTINGS
@given(text=damaged_reply())
def test_damaged_reply_gives_a_value_that_round_trips(text):
    turn = parse(text)
    assert isinstance(turn, (ModelTurn, ParseError))
    if isinstance(turn, ModelTurn):
        assert_same_content(parse(grammar.format(turn), dialect=turn.dialect), turn)
