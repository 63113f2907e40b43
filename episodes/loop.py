"""The closed loop: observe -> prompt -> generate -> parse -> gate -> act -> record, one step at a time.

Each step is written to disk (screenshot, annotated screenshot, one JSON line) before the next begins, so the
episode survives anything that happens later. The loop ends on the model's End / task complete / task
impossible, on a budget (steps, wall clock, per-step time), on output that keeps failing to parse, on a policy
or target that is gone, or on Ctrl+C; every ending writes its reason into episode.json.
"""

from __future__ import annotations

import concurrent.futures
import time
from dataclasses import dataclass
from typing import Any, Callable

from PIL import Image

from actuators.actions import Action, End
from actuators.base import ActuatorError, Outcome
from cogagent.grammar import ModelTurn, ParseError, format as format_turn
from .annotate import annotate_step
from .convert import ConversionError, Converted, operation_to_action
from .gate import Gate
from .policies import HistoryItem, Policy, PolicyError, PolicyReply
from .store import Episode, EpisodeWriter


@dataclass
class LoopConfig:
    max_steps: int = 15
    max_seconds: float = 900.0
    step_timeout_s: float = 600.0
    parse_retries: int = 2

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ValueError(f"max_steps must be at least 1, got {self.max_steps}")
        if self.max_seconds <= 0 or self.step_timeout_s <= 0:
            raise ValueError("max_seconds and step_timeout_s must be positive")
        if self.parse_retries < 0:
            raise ValueError(f"parse_retries must be 0 or more, got {self.parse_retries}")


@dataclass
class EpisodeResult:
    status: str
    reason: str | None
    steps: int
    path: str

    @property
    def success(self) -> bool:
        return self.status == "success"


StepCallback = Callable[[dict[str, Any]], None]


class _StepTimeout(Exception):
    pass


def _call_with_timeout(fn: Callable[[], PolicyReply], seconds: float, inline: bool = False) -> PolicyReply:
    """Run the policy with a deadline. A local model cannot be interrupted mid-generate, so on timeout the
    worker thread is abandoned (it finishes in the background) and the episode ends; nothing waits on it.
    ``inline`` policies (scripted ones that read the live page through Playwright, whose objects belong to this
    thread) answer at once and run here."""
    if inline:
        return fn()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="policy")
    future = pool.submit(fn)
    try:
        return future.result(timeout=seconds)
    except concurrent.futures.TimeoutError:
        raise _StepTimeout(f"the policy gave no answer within {seconds:g} s") from None
    finally:
        pool.shutdown(wait=False)


def _element_at(actuator: Any, action: Action) -> dict[str, Any]:
    probe = getattr(actuator, "element_info_at", None)
    point = getattr(action, "point", None)
    if probe is None or point is None:
        return {}
    try:
        return dict(probe(point) or {})
    except Exception as exc:  # the probe is advisory: the gate still works on the model's own words
        return {"probe_error": str(exc)}


def _operation_text(turn: ModelTurn) -> str:
    try:
        return format_turn(turn).split("Grounded Operation:")[-1].strip()
    except Exception:
        return ""


HISTORY_STATUSES = ("acted", "skipped", "takeover", "action_failed")
"""Steps the model took a turn in that the next prompt should know about."""


def _history_item(step: dict[str, Any]) -> HistoryItem:
    return HistoryItem(step.get("query", ""), step.get("raw_text") or "", step.get("operation_text", ""))


def run_episode(policy: Policy, actuator: Any, task: str, writer: EpisodeWriter, config: LoopConfig,
                gate: Gate | None = None, on_step: StepCallback | None = None,
                done_check: Callable[[], bool] | None = None) -> EpisodeResult:
    """Drive ``actuator`` with ``policy`` until the task ends; ``writer`` already holds any earlier steps.

    ``done_check`` is an environment's own success test: when given, it ends the episode as soon as the task
    is done, and it -- not the agent's claim -- decides whether an ended episode succeeded.
    """
    gate = gate or Gate("never")
    history = [_history_item(s) for s in writer.steps if s.get("status") in HISTORY_STATUSES]
    started = time.monotonic()

    def finish(final: str, why: str | None) -> EpisodeResult:
        writer.finish(final, why)
        return EpisodeResult(final, why, len(writer.steps), str(writer.path))

    try:
        while True:
            if len(writer.steps) >= config.max_steps:
                return finish("max_steps", f"the step budget of {config.max_steps} ran out")
            if time.monotonic() - started > config.max_seconds:
                return finish("timeout", f"the wall-clock budget of {config.max_seconds:g} s ran out")
            step = _run_step(policy, actuator, task, writer, config, gate, history)
            if on_step:
                on_step(step)
            status = step["status"]
            if status == "ended":
                end = step["action"]
                claimed = {"success": "success", "impossible": "impossible"}.get(end["status"], "failure")
                if done_check is not None and claimed == "success" and not done_check():
                    return finish("failure", "the agent said the task is done, but the environment disagrees")
                return finish(claimed, end.get("message") or f"the agent ended the task ({end['status']})")
            if status in ("parse_failed", "policy_error", "policy_timeout", "stopped", "target_error"):
                reasons = {"parse_failed": "failed", "policy_error": "error", "policy_timeout": "timeout",
                           "stopped": "stopped", "target_error": "error"}
                return finish(reasons[status], step.get("error"))
            if status in HISTORY_STATUSES:
                history.append(_history_item(step))
                if done_check is not None and done_check():
                    return finish("success", "the environment reports the task done")
    except KeyboardInterrupt:
        return finish("interrupted", "stopped with Ctrl+C; run 'resume' to continue")
    except Exception as exc:
        finish("error", f"{type(exc).__name__}: {exc}")
        raise


def _run_step(policy: Policy, actuator: Any, task: str, writer: EpisodeWriter, config: LoopConfig,
              gate: Gate, history: list[HistoryItem]) -> dict[str, Any]:
    index = writer.next_index
    t_step = time.perf_counter()
    step: dict[str, Any] = {"index": index, "started_at": time.time(), "attempts": [], "timings": {}}

    t0 = time.perf_counter()
    try:
        screenshot = actuator.screenshot()
    except ActuatorError as exc:
        return _record(writer, step, None, None, "target_error", error=f"screenshot failed: {exc}", t_step=t_step)
    step["timings"]["screenshot_s"] = time.perf_counter() - t0
    step["screen_size"] = list(screenshot.size)

    reply: PolicyReply | None = None
    converted: Converted | None = None
    turn: ModelTurn | None = None
    for attempt in range(config.parse_retries + 1):
        t0 = time.perf_counter()
        try:
            reply = _call_with_timeout(lambda: policy.act(screenshot, task, history), config.step_timeout_s,
                                       bool(getattr(policy, "inline", False)))
        except _StepTimeout as exc:
            return _record(writer, step, screenshot, None, "policy_timeout", error=str(exc), t_step=t_step)
        except PolicyError as exc:
            return _record(writer, step, screenshot, None, "policy_error", error=str(exc), t_step=t_step)
        step["timings"][f"policy_s_{attempt}" if attempt else "policy_s"] = time.perf_counter() - t0
        step["query"], step["raw_text"], step["policy_timings"] = reply.prompt, reply.raw_text, reply.timings
        problem = _usable(reply.turn)
        if problem is None:
            turn = reply.turn  # type: ignore[assignment]
            try:
                converted = operation_to_action(turn.operations[0], screenshot.size)
                break
            except ConversionError as exc:
                problem = str(exc)
        step["attempts"].append({"raw_text": reply.raw_text, "error": problem})
    if converted is None or turn is None:
        errors = "; ".join(a["error"] for a in step["attempts"])
        return _record(writer, step, screenshot, None, "parse_failed",
                       error=f"model output unusable after {config.parse_retries + 1} attempt(s): {errors}",
                       t_step=t_step, turn=reply.turn if reply else None)

    step["turn"] = turn.to_dict()
    step["operation_text"] = _operation_text(turn)
    action = converted.action
    if converted.grounding is not None:
        step["grounding"] = {"point": list(converted.grounding.point.as_tuple()),
                             "box": list(converted.grounding.box.as_tuple()) if converted.grounding.box else None,
                             "norm": list(converted.grounding.norm), "issues": list(converted.grounding.issues)}
    if isinstance(action, End):
        return _record(writer, step, screenshot, converted, "ended", action=action, t_step=t_step)

    op = turn.operations[0]
    element = _element_at(actuator, action)
    check = gate.check(action, model_sensitive=turn.sensitive, element_text=op.element_text or "", element=element)
    decision = gate.decide(action, check, {"task": task, "turn": turn, "element": element})
    step["gate"] = {"reasons": list(check.reasons), **decision.to_dict(), "element": element}
    if decision.verdict == "stop":
        return _record(writer, step, screenshot, converted, "stopped", action=action,
                       error=decision.note or "stopped at the confirmation gate", t_step=t_step)
    if decision.verdict in ("skip", "takeover"):
        return _record(writer, step, screenshot, converted, "skipped" if decision.verdict == "skip" else "takeover",
                       action=action, t_step=t_step)
    if decision.verdict == "edit" and decision.action is not None:
        action = decision.action

    t0 = time.perf_counter()
    outcome: Outcome = actuator.perform(action)
    step["timings"]["act_s"] = time.perf_counter() - t0
    status = "acted" if outcome.ok else "action_failed"
    return _record(writer, step, screenshot, converted, status, action=outcome.action, outcome=outcome,
                   error=outcome.error, t_step=t_step)


def _usable(turn: ModelTurn | ParseError) -> str | None:
    if isinstance(turn, ParseError):
        return f"does not parse at character {turn.position}: {turn.message}"
    if not turn.operations:
        return "no grounded operation in the answer"
    return None


def _record(writer: EpisodeWriter, step: dict[str, Any], screenshot: Image.Image | None, converted: Converted | None,
            status: str, *, action: Action | None = None, outcome: Outcome | None = None, error: str | None = None,
            t_step: float, turn: Any = None) -> dict[str, Any]:
    step["status"] = status
    step["action"] = action.to_dict() if action is not None else None
    step["outcome"] = outcome.to_dict() if outcome is not None else None
    step["error"] = error
    if turn is not None and "turn" not in step:
        step["turn"] = turn.to_dict() if hasattr(turn, "to_dict") else {"error": str(turn)}
    if screenshot is not None:
        t0 = time.perf_counter()
        annotated = annotate_step(screenshot, converted.grounding if converted else None, action)
        step["screenshot"], step["annotated"] = writer.save_screenshots(step["index"], screenshot, annotated)
        step["timings"]["record_s"] = time.perf_counter() - t0
    step["timings"]["total_s"] = time.perf_counter() - t_step
    writer.append_step(step)
    return step


def resume_from(episode: Episode) -> EpisodeWriter:
    """A writer that continues ``episode`` where it stopped; finished episodes are refused."""
    status = episode.result.get("status")
    if status not in ("running", "interrupted", "timeout", "max_steps", "error"):
        raise ValueError(f"{episode.path} already ended with status {status!r}; nothing to resume")
    return EpisodeWriter.reopen(episode)
