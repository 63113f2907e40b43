"""The confirmation gate: what needs a person, and what each answer does."""

from __future__ import annotations

import pytest

from actuators.actions import Click, TypeText
from episodes.gate import ConsoleConfirmer, Decision, Gate, ScriptedConfirmer


def test_never_mode_lets_ordinary_actions_through() -> None:
    gate = Gate("never")
    check = gate.check(Click((10, 10)), model_sensitive=True, element_text="Delete account")
    assert not check.needs_person
    assert gate.decide(Click((10, 10)), check, {}).verdict == "approve"


def test_password_field_is_gated_even_in_never_mode() -> None:
    gate = Gate("never")
    check = gate.check(TypeText("hunter2", (5, 5)), element={"tag": "input", "type": "password"})
    assert check.needs_person and "password" in check.reasons[0]
    # No person attached: the action is skipped, not performed.
    decision = gate.decide(TypeText("hunter2", (5, 5)), check, {})
    assert decision.verdict == "skip" and decision.action is None
    assert not Gate("never", allow_password_typing=True).check(
        TypeText("x", (5, 5)), element={"type": "password"}).needs_person


@pytest.mark.parametrize("text, hit", [("Delete account", True), ("Pay now", True), ("立即支付", True),
                                       ("Payload viewer", False), ("Search", False), ("Send", True)])
def test_sensitive_words_match_whole_words(text: str, hit: bool) -> None:
    assert Gate("sensitive").check(Click((1, 1)), element_text=text).needs_person is hit


def test_model_sensitive_tag_and_always_mode() -> None:
    assert Gate("sensitive").check(Click((1, 1)), model_sensitive=True).needs_person
    assert not Gate("sensitive").check(Click((1, 1)), model_sensitive=False).needs_person
    assert Gate("always").check(Click((1, 1))).needs_person


def test_bad_mode_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="never, sensitive or always"):
        Gate("sometimes")  # type: ignore[arg-type]


def test_scripted_confirmer_answers_in_order() -> None:
    gate = Gate("always", confirmer=ScriptedConfirmer(["approve", "skip", "stop"]))
    a = Click((3, 4))
    verdicts = [gate.decide(a, gate.check(a), {}).verdict for _ in range(4)]
    assert verdicts == ["approve", "skip", "stop", "stop"]


def test_console_confirmer_edit_retries_on_bad_json_then_takes_the_new_action() -> None:
    answers = iter(["e", "{broken", "e", '{"type": "click", "point": [7, 8]}'])
    said: list[str] = []
    confirmer = ConsoleConfirmer(read=lambda prompt: next(answers), write=said.append)
    decision = confirmer.confirm(Click((1, 1)), ["because"], {})
    assert decision == Decision("edit", Click((7, 8)), "edited by the person")
    assert any("not a valid action" in s for s in said)


def test_console_confirmer_end_of_input_stops() -> None:
    def closed(prompt: str) -> str:
        raise EOFError
    assert ConsoleConfirmer(read=closed, write=lambda s: None).confirm(Click((1, 1)), [], {}).verdict == "stop"
