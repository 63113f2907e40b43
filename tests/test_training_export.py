"""episodes.training_export on the recorded demo episode (real files) and copies of it edited to fail."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cogagent.prompts import agent_query
from cogagent.train import load_jsonl
from episodes.store import EpisodeError
from episodes.training_export import episode_lines, export

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "episodes" / "demo_data" / "search-cogvlm"


def test_each_acted_step_becomes_a_line_with_the_policys_query_and_history(tmp_path):
    lines = episode_lines(DEMO)
    steps = [json.loads(s) for s in (DEMO / "steps.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(lines) == len(steps) == 3
    task = json.loads((DEMO / "episode.json").read_text(encoding="utf-8"))["task"]
    for i, line in enumerate(lines):
        assert line["query"] == agent_query(task)
        assert line["answer"] == steps[i]["raw_text"]
        assert Path(line["image"]).is_absolute() and Path(line["image"]).name == steps[i]["screenshot"]
        assert line["history"] == [[agent_query(task), steps[j]["raw_text"]] for j in range(i)]
    assert episode_lines(DEMO, history_steps=1)[2]["history"] == [[agent_query(task), steps[1]["raw_text"]]]
    out = tmp_path / "demo.jsonl"
    assert export([DEMO], out) == {"episodes": 1, "exported_episodes": 1, "lines": 3}
    examples, bad = load_jsonl(out)  # what cogagent.train reads
    assert len(examples) == 3 and not bad


def test_failed_episodes_are_left_out_unless_asked(tmp_path):
    failed = tmp_path / "failed"
    shutil.copytree(DEMO, failed)
    meta = json.loads((failed / "episode.json").read_text(encoding="utf-8"))
    meta["result"]["status"] = "failed"
    (failed / "episode.json").write_text(json.dumps(meta), encoding="utf-8")
    assert episode_lines(failed) == []
    assert len(episode_lines(failed, only_successful=False)) == 3
    with pytest.raises(EpisodeError, match="no successful episode"):
        export([tmp_path], tmp_path / "out.jsonl")
    assert export([tmp_path], tmp_path / "out.jsonl", only_successful=False)["lines"] == 3


def test_unparseable_turns_and_missing_screenshots_are_skipped(tmp_path):
    ep = tmp_path / "ep"
    shutil.copytree(DEMO, ep)
    steps = [json.loads(s) for s in (ep / "steps.jsonl").read_text(encoding="utf-8").splitlines()]
    steps[0]["raw_text"] = "I would rather not."
    (ep / "steps.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps), encoding="utf-8")
    (ep / steps[2]["screenshot"]).unlink()
    lines = episode_lines(ep)
    assert [Path(line["image"]).name for line in lines] == [steps[1]["screenshot"]]


def test_cli_exports_and_explains_bad_input(tmp_path):
    out = tmp_path / "x.jsonl"
    ok = subprocess.run([sys.executable, "-m", "episodes.training_export", str(DEMO), "--out", str(out)],
                        cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and json.loads(ok.stdout)["lines"] == 3 and out.is_file()
    bad = subprocess.run([sys.executable, "-m", "episodes.training_export", str(tmp_path / "nothing-here"),
                          "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "holds no episode" in bad.stderr


def test_drop_plan_leaves_a_turn_that_still_parses_with_the_same_operation():
    from cogagent.grammar import parse

    plain, dropped = episode_lines(DEMO), episode_lines(DEMO, drop_plan=True)
    assert len(plain) == len(dropped)
    for a, b in zip(plain, dropped):
        assert a["answer"].startswith("Plan:") and "Plan:" not in b["answer"]
        assert parse(b["answer"]).operations == parse(a["answer"]).operations
        assert all("Plan:" not in answer for _, answer in b["history"])
