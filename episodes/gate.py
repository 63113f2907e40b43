"""The confirmation gate between what the model wants and what the actuator does.

Model-written text is untrusted. Before an action runs, the gate decides whether a person must confirm it:
``never`` (fully autonomous), ``sensitive`` (the 9B model's own sensitive tag, typing into a password field,
or an element whose text matches a configurable word list such as pay/delete/send), or ``always``. The person
can approve, skip the action, edit it (type a new action as JSON), take over (do it by hand, then continue),
or stop the episode. Typing into a password field is gated even in ``never`` mode unless explicitly allowed,
because a model that leaks a password into the wrong field cannot take it back.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Protocol, Sequence

from actuators.actions import Action, ActionError, TypeText, action_from_dict

ConfirmMode = Literal["never", "sensitive", "always"]
Verdict = Literal["approve", "skip", "edit", "takeover", "stop"]

DEFAULT_SENSITIVE_WORDS: tuple[str, ...] = (
    "pay", "payment", "purchase", "buy", "checkout", "order", "delete", "remove", "erase", "send", "submit payment",
    "transfer", "confirm", "unsubscribe", "sign out", "log out", "uninstall", "reset", "format",
    "支付", "付款", "购买", "删除", "发送", "转账", "确认",
)


@dataclass(frozen=True)
class GateCheck:
    """Why an action needs a person: empty ``reasons`` means it may run without asking."""

    reasons: tuple[str, ...] = ()

    @property
    def needs_person(self) -> bool:
        return bool(self.reasons)


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    action: Action | None = None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "action": self.action.to_dict() if self.action else None, "note": self.note}


class Confirmer(Protocol):
    """Asks a person (or a script standing in for one) about one action."""

    def confirm(self, action: Action, reasons: Sequence[str], context: dict[str, Any]) -> Decision: ...


@dataclass
class Gate:
    mode: ConfirmMode = "sensitive"
    sensitive_words: tuple[str, ...] = DEFAULT_SENSITIVE_WORDS
    allow_password_typing: bool = False
    confirmer: Confirmer | None = None
    _patterns: list[re.Pattern[str]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in ("never", "sensitive", "always"):
            raise ValueError(f"confirm mode must be never, sensitive or always, got {self.mode!r}")
        self._patterns = [
            re.compile(rf"(?<!\w){re.escape(w)}(?!\w)" if w.isascii() else re.escape(w), re.IGNORECASE)
            for w in self.sensitive_words
        ]

    def check(self, action: Action, *, model_sensitive: bool | None = None, element_text: str = "",
              element: dict[str, Any] | None = None) -> GateCheck:
        """Reasons a person must confirm ``action``; ``element`` is what the actuator found under the point."""
        reasons: list[str] = []
        if isinstance(action, TypeText) and element and _is_password_field(element) and not self.allow_password_typing:
            reasons.append("types into a password field")
        if self.mode == "always":
            reasons.append("confirm mode is 'always'")
        elif self.mode == "sensitive":
            if model_sensitive:
                reasons.append("the model marked this operation sensitive")
            texts = [element_text, *(str((element or {}).get(k) or "") for k in ("text", "label", "value"))]
            for pattern in self._patterns:
                hit = next((t for t in texts if t and pattern.search(t)), None)
                if hit:
                    reasons.append(f"element text {hit[:60]!r} matches the sensitive word {pattern.pattern!r}")
                    break
        return GateCheck(tuple(reasons))

    def decide(self, action: Action, check: GateCheck, context: dict[str, Any]) -> Decision:
        if not check.needs_person:
            return Decision("approve", action)
        if self.confirmer is None:
            return Decision("skip", None, "needs confirmation but no person is attached: " + "; ".join(check.reasons))
        return self.confirmer.confirm(action, check.reasons, context)


def _is_password_field(element: dict[str, Any]) -> bool:
    kind = str(element.get("type") or "").lower()
    autocomplete = str(element.get("autocomplete") or "").lower()
    return kind == "password" or "password" in autocomplete


class ScriptedConfirmer:
    """Answers from a list of decisions, in order; for tests and unattended runs that pre-approve."""

    def __init__(self, verdicts: Sequence[Verdict | Decision]) -> None:
        self._queue = list(verdicts)
        self.asked: list[tuple[Action, tuple[str, ...]]] = []

    def confirm(self, action: Action, reasons: Sequence[str], context: dict[str, Any]) -> Decision:
        self.asked.append((action, tuple(reasons)))
        if not self._queue:
            return Decision("stop", None, "scripted confirmer ran out of answers")
        item = self._queue.pop(0)
        if isinstance(item, Decision):
            return item
        return Decision(item, action if item in ("approve", "takeover") else None)


class ApproveAll:
    """Approves everything and keeps a record: for unattended evaluation, where the gate's questions are
    still asked and logged with each step, but no person is there to answer them."""

    def __init__(self) -> None:
        self.asked: list[tuple[Action, tuple[str, ...]]] = []

    def confirm(self, action: Action, reasons: Sequence[str], context: dict[str, Any]) -> Decision:
        self.asked.append((action, tuple(reasons)))
        return Decision("approve", action, "approved unattended (evaluation)")


class ConsoleConfirmer:
    """Asks on the terminal. Reading stdin is injectable so that the prompt itself can be tested."""

    CHOICES = "[a]pprove, [s]kip, [e]dit, [t]ake over, [q] stop? (a/s/e/t/q)"

    def __init__(self, read: Callable[[str], str] = input, write: Callable[[str], Any] | None = None) -> None:
        self._read = read
        self._write = write or (lambda text: print(text, file=sys.stderr))

    def confirm(self, action: Action, reasons: Sequence[str], context: dict[str, Any]) -> Decision:
        self._write(f"\nThe agent wants to: {json.dumps(action.to_dict(), ensure_ascii=False)}")
        for reason in reasons:
            self._write(f"  - needs confirmation: {reason}")
        while True:
            try:
                answer = self._read(self.CHOICES + " ").strip().lower()
            except EOFError:
                return Decision("stop", None, "no answer on standard input")
            if answer in ("a", "approve", "y", "yes"):
                return Decision("approve", action)
            if answer in ("s", "skip", "n", "no"):
                return Decision("skip", None, "skipped by the person")
            if answer in ("q", "stop"):
                return Decision("stop", None, "stopped by the person")
            if answer in ("t", "takeover", "take over"):
                self._read("Do it by hand now, then press Enter to continue ")
                return Decision("takeover", None, "done by the person")
            if answer in ("e", "edit"):
                raw = self._read("New action as JSON (e.g. {\"type\": \"click\", \"point\": [10, 20]}): ")
                try:
                    return Decision("edit", action_from_dict(json.loads(raw)), "edited by the person")
                except (json.JSONDecodeError, ActionError) as exc:
                    self._write(f"  not a valid action: {exc}")
                    continue
            self._write("  please answer a, s, e, t or q")
