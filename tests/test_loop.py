"""The closed loop against a real Chromium on the bundled site: endings, retries, the gate, what is recorded."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import pytest
from PIL import Image

from actuators.browser import BrowserActuator, BrowserConfig
from cogagent.grammar import parse
from episodes.gate import Decision, Gate, ScriptedConfirmer
from episodes.loop import LoopConfig, resume_from, run_episode
from episodes.policies import HistoryItem, PolicyError, PolicyReply, ReplayPolicy
from episodes.report import write_report
from episodes.store import EpisodeWriter, load_episode
from episodes.webapp.server import WebAppServer

LOGIN_CLICK = "Plan: log in.\nNext Action: Click Log in.\nGrounded Operation:[button] Log in -> CLICK at the box [[{box}]]"


@pytest.fixture(scope="module")
def server() -> WebAppServer:
    with WebAppServer() as srv:
        yield srv


@pytest.fixture()
def browser(server: WebAppServer):
    session = server.new_session()
    with BrowserActuator(BrowserConfig(start_url=server.page_url("/account/login.html", session),
                                       viewport=(800, 600), allowed_domains=("127.0.0.1",))) as actuator:
        actuator.session = session
        yield actuator


def _box(actuator: BrowserActuator, selector: str) -> str:
    from vision.geometry import box_to_norm

    r = actuator.page.locator(selector).bounding_box()
    s = actuator.scale
    b = box_to_norm((r["x"] * s.sx, r["y"] * s.sy, (r["x"] + r["width"] - 1) * s.sx,
                     (r["y"] + r["height"] - 1) * s.sy), actuator.screen_size)
    return ",".join(f"{v:03d}" for v in b)


def _type(actuator: BrowserActuator, selector: str, text: str) -> str:
    return f"Grounded Operation:[textbox] field -> TYPE: {text} at the box [[{_box(actuator, selector)}]]"


def test_replayed_turns_log_in_and_every_step_is_on_disk(browser: BrowserActuator, server, tmp_path: Path) -> None:
    texts = [_type(browser, "#username", "alice"), _type(browser, "#password", "sunflower42"),
             LOGIN_CLICK.format(box=_box(browser, "#login-button")), "Grounded Operation: task complete"]
    writer = EpisodeWriter.create(tmp_path, "log in as alice")
    confirmer = ScriptedConfirmer(["approve"])  # the password field asks a person, even in 'never' mode
    result = run_episode(ReplayPolicy(texts), browser, "log in as alice", writer, LoopConfig(max_steps=6),
                         Gate("never", confirmer=confirmer))
    assert result.status == "success", result.reason
    from episodes.webapp.tasks import WEB_TASKS
    assert WEB_TASKS["login"].is_done(server.state(browser.session))  # the site itself says alice is logged in
    assert len(confirmer.asked) == 1 and "password" in confirmer.asked[0][1][0]
    ep = load_episode(result.path)
    assert [s["status"] for s in ep.steps] == ["acted", "acted", "acted", "ended"]
    assert ep.steps[1]["gate"]["reasons"] and ep.steps[1]["gate"]["verdict"] == "approve"
    for step in ep.steps:
        assert (ep.path / step["screenshot"]).is_file() and (ep.path / step["annotated"]).is_file()
        assert step["timings"]["total_s"] > 0
    assert ep.steps[0]["action"]["type"] == "type_text" and ep.steps[0]["action"]["text"] == "alice"
    report = write_report(ep.path).read_text()
    assert "log in as alice" in report and report.count("data:image/png;base64,") == 4


def test_unparseable_output_is_retried_then_fails_with_every_attempt_kept(browser, tmp_path: Path) -> None:
    garbage = ["", "[[[[", "Grounded Operation:[button] X -> FROB at the box [[1,2,3,4]]"]
    writer = EpisodeWriter.create(tmp_path, "t")
    result = run_episode(ReplayPolicy(garbage), browser, "t", writer, LoopConfig(parse_retries=2))
    assert result.status == "failed" and "after 3 attempt" in result.reason
    step = load_episode(result.path).steps[0]
    assert step["status"] == "parse_failed" and len(step["attempts"]) == 3
    assert [a["raw_text"] for a in step["attempts"]] == garbage
    assert (Path(result.path) / step["screenshot"]).is_file()  # the screenshot the model failed on is kept


class SlowPolicy:
    name = "slow"

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name}

    def act(self, screenshot: Image.Image, task: str, history: Sequence[HistoryItem]) -> PolicyReply:
        time.sleep(3)
        return PolicyReply("x", parse("x"))


class BrokenPolicy(SlowPolicy):
    def act(self, screenshot, task, history):
        raise PolicyError("cannot reach http://127.0.0.1:9/v1/chat/completions: connection refused")


class InterruptedPolicy(SlowPolicy):
    def __init__(self) -> None:
        self.calls = 0

    def act(self, screenshot, task, history):
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        return PolicyReply("Grounded Operation: WAIT()", parse("Grounded Operation: WAIT()"))


def test_step_timeout_and_policy_error_end_the_episode_with_the_reason(browser, tmp_path: Path) -> None:
    r = run_episode(SlowPolicy(), browser, "t", EpisodeWriter.create(tmp_path, "t"), LoopConfig(step_timeout_s=0.5))
    assert r.status == "timeout" and "0.5 s" in r.reason
    r = run_episode(BrokenPolicy(), browser, "t", EpisodeWriter.create(tmp_path, "t"), LoopConfig())
    assert r.status == "error" and "connection refused" in r.reason
    assert load_episode(r.path).steps[0]["status"] == "policy_error"


def test_ctrl_c_saves_the_episode_and_resume_continues_it(browser, tmp_path: Path) -> None:
    writer = EpisodeWriter.create(tmp_path, "t")
    result = run_episode(InterruptedPolicy(), browser, "t", writer, LoopConfig(max_steps=3))
    assert result.status == "interrupted"
    ep = load_episode(result.path)
    assert len(ep.steps) == 1 and ep.result["status"] == "interrupted"
    resumed = run_episode(ReplayPolicy(["Grounded Operation: task complete"]), browser, "t", resume_from(ep),
                          LoopConfig(max_steps=3))
    assert resumed.status == "success"
    assert [s["index"] for s in load_episode(result.path).steps] == [0, 1]
    with pytest.raises(ValueError, match="already ended"):
        resume_from(load_episode(result.path))


def test_step_budget(browser, tmp_path: Path) -> None:
    waits = ["Grounded Operation: WAIT()"] * 5
    r = run_episode(ReplayPolicy(waits), browser, "t", EpisodeWriter.create(tmp_path, "t"), LoopConfig(max_steps=2))
    assert r.status == "max_steps" and r.steps == 2


def test_gate_stop_skip_and_edit(browser, server, tmp_path: Path) -> None:
    click = LOGIN_CLICK.format(box=_box(browser, "#login-button"))
    gate = Gate("always", confirmer=ScriptedConfirmer(["skip", Decision("edit", None), "stop"]))
    r = run_episode(ReplayPolicy([click] * 3), browser, "t", EpisodeWriter.create(tmp_path, "t"), LoopConfig(), gate)
    assert r.status == "stopped"
    assert [s["status"] for s in load_episode(r.path).steps] == ["skipped", "acted", "stopped"]
    # An edit with a new action performs that action instead of the model's.
    from actuators.actions import TypeText
    point = tuple(load_episode(r.path).steps[0]["grounding"]["point"])
    edit = Decision("edit", TypeText("bob", point=None), "typed by hand")
    gate = Gate("always", confirmer=ScriptedConfirmer([edit, "stop"]))
    r = run_episode(ReplayPolicy([click] * 2), browser, "t", EpisodeWriter.create(tmp_path, "t"), LoopConfig(), gate)
    assert load_episode(r.path).steps[0]["action"] == {"type": "type_text", "text": "bob", "point": None, "submit": False}
    assert point  # the model's click point was recorded with the grounding


@pytest.mark.parametrize("text", [
    "我不知道该怎么做",  # another language, no operation
    "x" * 200_000,  # huge
    "Grounded Operation:[button] OK -> CLICK at the box [[1500,-20,2000,99999]]",  # out of range: clamped
    "Grounded Operation:[button] OK -> CLICK at the box [[[[1,2]],3,4]]",  # nested brackets
])
def test_hostile_model_text_is_a_recorded_step_not_a_crash(browser, tmp_path: Path, text: str) -> None:
    r = run_episode(ReplayPolicy([text] * 3), browser, "t", EpisodeWriter.create(tmp_path, "t"),
                    LoopConfig(max_steps=1, parse_retries=2))
    ep = load_episode(r.path)
    assert r.status in ("failed", "max_steps")
    assert ep.steps and ep.steps[0]["status"] in ("parse_failed", "acted", "action_failed")
    if "1500" in text:
        assert ep.steps[0]["grounding"]["issues"]  # clamping is recorded with the step


def test_replay_reports_steps_whose_screen_differs(server: WebAppServer, tmp_path: Path) -> None:
    from episodes.environments.web import WebEnvironment
    from episodes.replay import replay_episode
    from episodes.webapp.tasks import WEB_TASKS

    recorded = load_episode(Path(__file__).resolve().parents[1] / "episodes" / "demo_data" / "search-cogvlm")
    env = WebEnvironment(WEB_TASKS["search-cogvlm"], server=server)
    try:
        same = replay_episode(recorded, env.reset())
        assert same.failed == [] and env.is_successful()
        # The same actions on another page: the first screen is not the recorded one, and it says so.
        other = WebEnvironment(WEB_TASKS["login"], server=server)
        try:
            moved = replay_episode(recorded, other.reset())
        finally:
            other.close()
    finally:
        env.close()
    assert 0 in moved.differing and moved.steps[0].difference > moved.threshold
    with pytest.raises(ValueError, match="threshold"):
        replay_episode(recorded, None, threshold=2.0)
