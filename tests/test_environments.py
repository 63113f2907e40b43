"""Environment suites end to end: the real loop, real Chromium, the simulated phone over real ADB, and eval."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from episodes.environments.base import TaskNotFound, list_tasks, make_env, parse_spec
from episodes.evaluate import run_one, run_suite, script_policy, summarize
from episodes.loop import LoopConfig
from episodes.random_policy import RandomPolicy
from episodes.store import load_episode

ROOT = Path(__file__).resolve().parents[1]


def test_registry_lists_and_rejects_names() -> None:
    assert len(list_tasks("web")) >= 15 and "login" in list_tasks("web")
    assert {"light-mode", "wifi-off", "brightness-max", "language-chinese"} <= set(list_tasks("phone"))
    with pytest.raises(TaskNotFound, match="valid tasks: .*login"):
        parse_spec("web:logn")
    with pytest.raises(TaskNotFound, match="choose one of .*miniwob.*phone.*web"):
        make_env("nosuite:x")


@pytest.mark.parametrize("task", ["web:login", "web:accept-terms", "web:docs-new-tab", "web:zh-search"])
def test_scripted_web_tasks_succeed_by_the_sites_own_state(tmp_path: Path, task: str) -> None:
    record = run_one(task, 0, script_policy, tmp_path, LoopConfig(max_steps=12))
    assert record.success, record.reason
    ep = load_episode(record.path)
    assert ep.meta["environment_result"]["success"] is True
    if task == "web:login":  # the password step went through the gate, which asked and logged it
        gated = [s for s in ep.steps if (s.get("gate") or {}).get("reasons")]
        assert gated and "password" in gated[0]["gate"]["reasons"][0]


@pytest.mark.parametrize("task, expected", [
    ("web:settings-toggles", ["[checkbox] Email notifications -> CLICK", "[switch] Dark mode -> CLICK",
                              "[button] Save changes -> CLICK"]),
    ("web:select-country", ["[combobox] Country -> SELECT: Canada", "[button] Save -> CLICK"]),
    ("web:billing-annual", ["[tab] Billing -> CLICK", "[radio] Annual", "[button] Update plan -> CLICK"]),
])
def test_scripted_turns_name_elements_by_role_and_label(tmp_path: Path, task: str, expected: list[str]) -> None:
    """The demonstrations become training data (episodes.training_export): they must name a control by its
    label and role, as CogAgent's own web data does, not by its option list or its value."""
    record = run_one(task, 0, script_policy, tmp_path, LoopConfig(max_steps=6))
    assert record.success, record.reason
    turns = [s["raw_text"] for s in load_episode(record.path).steps]
    assert len(turns) == len(expected)
    for turn, text in zip(turns, expected):
        assert text in turn, turn


def test_random_clicks_do_not_solve_a_task(tmp_path: Path) -> None:
    record = run_one("web:login", 0, lambda env: RandomPolicy(seed=1), tmp_path, LoopConfig(max_steps=2))
    assert not record.success and record.status == "max_steps"


@pytest.mark.parametrize("task", ["phone:light-mode", "phone:language-chinese"])
def test_scripted_phone_tasks_succeed_through_real_adb(tmp_path: Path, task: str) -> None:
    env = make_env(task)
    try:
        env.reset()
        assert not env.is_successful()  # the start state is not already the goal
    finally:
        env.close()
    record = run_one(task, 0, script_policy, tmp_path, LoopConfig(max_steps=12))
    assert record.success, record.reason
    assert record.info["final_state"]["current_screen"].startswith("settings")


def test_a_crashing_worker_episode_is_marked_failed_and_the_others_go_on(tmp_path: Path) -> None:
    def factory(env):
        if env.name == "web:todo-add":
            raise RuntimeError("worker crashed")
        return script_policy(env)

    records = run_suite(["web:todo-add", "web:todo-complete"], factory, tmp_path, LoopConfig(max_steps=6), workers=2)
    by_task = {r.task: r for r in records}
    assert by_task["web:todo-add"].status == "error" and "worker crashed" in by_task["web:todo-add"].reason
    assert by_task["web:todo-complete"].success
    summary = summarize(records)
    assert summary["success_rate"] == 0.5 and summary["errors"] == 1


def test_eval_command_prints_a_summary_and_writes_every_episode(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    proc = subprocess.run([sys.executable, str(ROOT / "run_agent.py"), "eval", "--suite", "web:todo-add,set-volume",
                           "--script", "--workers", "2", "--out", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["success_rate"] == 1.0 and summary["episodes"] == 2
    assert summary["step_latency_s"]["count"] >= 2 and summary["step_latency_s"]["p50"] > 0
    assert json.loads((out / "summary.json").read_text())["tasks"].keys() == {"web:todo-add", "web:set-volume"}
    assert len(list(out.glob("*/episode.json"))) == 2


def test_eval_on_ray_runs_the_same_episodes(tmp_path: Path) -> None:
    import ray

    from episodes.evaluate import run_suite_ray

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        records = run_suite_ray(["web:todo-complete"], {"kind": "script"}, tmp_path, LoopConfig(max_steps=6), 1)
    finally:
        ray.shutdown()
    assert [r.success for r in records] == [True]
    assert load_episode(records[0].path).meta["environment_result"]["success"] is True


# --- synth: held-out generated pages, judged by the page --------------------------------------------------------
@pytest.mark.parametrize("task", ["synth:p000", "synth:p004", "synth:p006", "synth:p017"])  # button select type switch
def test_scripted_synth_steps_are_done_on_the_target_by_the_pages_own_state(tmp_path: Path, task: str) -> None:
    records = run_suite([task], script_policy, tmp_path, LoopConfig(max_steps=3))
    summary = summarize(records)
    assert summary["success_rate"] == 1.0 and summary["hit_target_rate"] == 1.0, records[0]
    meta = json.loads((Path(records[0].path) / "episode.json").read_text())
    assert meta["environment_result"]["done"] and meta["environment_result"]["target_box_px"]


class _Says:
    """A policy that writes one fixed answer (a model that is right or wrong in a known way)."""

    inline = True

    def __init__(self, text_for) -> None:
        self.text_for = text_for

    def describe(self) -> dict:
        return {"kind": "fixed"}

    def act(self, screenshot, task, history):
        from cogagent.grammar import parse
        from episodes.policies import PolicyReply

        text = self.text_for(screenshot)
        return PolicyReply(text, parse(text), task)


def test_synth_judges_the_value_and_the_place_apart(tmp_path: Path) -> None:
    from episodes.environments.synth import SynthScriptPolicy

    def wrong_value(env):
        right = SynthScriptPolicy(env)
        return _Says(lambda shot: right.act(shot, "", []).raw_text.replace(f"TYPE: {env.step.value}", "TYPE: nope"))

    typed = summarize(run_suite(["synth:p006"], wrong_value, tmp_path / "a", LoopConfig(max_steps=1)))
    assert typed["success_rate"] == 0.0 and typed["hit_target_rate"] == 1.0  # right field, wrong text

    corner = "Next Action: Click.\nGrounded Operation:[button] x -> CLICK at the box [[990,990,999,999]]"
    missed = summarize(run_suite(["synth:p000"], lambda env: _Says(lambda shot: corner), tmp_path / "b",
                                 LoopConfig(max_steps=1)))
    assert missed["success_rate"] == 0.0 and missed["hit_target_rate"] == 0.0


def test_synth_pages_are_fixed_and_not_the_training_streams() -> None:
    from episodes.environments.synth import HELD_OUT_SEED, make, page_for

    assert page_for(3).html == page_for(3).html and page_for(3).html != page_for(4).html
    assert HELD_OUT_SEED not in (0, 7)  # the seeds of the shipped model's training data
    assert all(make(f"p{i:03d}").step.widget.label != "Password" for i in range(200))
    with pytest.raises(TaskNotFound, match="unknown task"):
        make_env("synth:p999")
