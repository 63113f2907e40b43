"""Episodes on disk: atomic writes, crash safety with a real kill -9, clear errors on damaged directories."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from PIL import Image

from episodes.store import FORMAT, EpisodeError, EpisodeWriter, load_episode


def _step(i: int) -> dict:
    return {"index": i, "status": "acted", "raw_text": f"step {i} 你好", "action": {"type": "wait", "seconds": 0.0}}


def test_write_and_read_back(tmp_path: Path) -> None:
    w = EpisodeWriter.create(tmp_path, "find the 设置 page", policy={"kind": "replay"})
    img = Image.new("RGB", (40, 30), (10, 20, 30))
    names = w.save_screenshots(0, img, img.copy())
    w.append_step({**_step(0), "screenshot": names[0], "annotated": names[1]})
    w.finish("success", "done")
    ep = load_episode(w.path)
    assert ep.task == "find the 设置 page"
    assert ep.result == {"status": "success", "reason": "done", "steps": 1}
    assert ep.steps[0]["raw_text"] == "step 0 你好"
    assert ep.screenshot(ep.steps[0]).getpixel((5, 5)) == (10, 20, 30)
    assert ep.warnings == []


def test_half_written_last_line_is_dropped_and_reported(tmp_path: Path) -> None:
    w = EpisodeWriter.create(tmp_path, "t")
    w.append_step(_step(0))
    with open(w.path / "steps.jsonl", "a") as fh:
        fh.write('{"index": 1, "status": "ac')  # what a kill in the middle of a write leaves
    ep = load_episode(w.path)
    assert [s["index"] for s in ep.steps] == [0]
    assert any("half-written" in x for x in ep.warnings)
    # Reopening cleans the tail so that the next step starts on its own line.
    again = EpisodeWriter.reopen(ep)
    again.append_step(_step(1))
    assert [s["index"] for s in load_episode(w.path).steps] == [0, 1]


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: (p / "episode.json").unlink(), "holds no episode.json"),
        (lambda p: (p / "episode.json").write_text("{not json"), "not valid JSON"),
        (lambda p: (p / "episode.json").write_text(json.dumps({"format": "other"})), "is not a"),
        (lambda p: (p / "steps.jsonl").write_text('garbage\n{"index": 1}\n'), "steps.jsonl:1"),
        (lambda p: (p / "steps.jsonl").write_text('{"no_index": 1}\n'), "not a step record"),
    ],
)
def test_damaged_episode_gives_clear_error(tmp_path: Path, damage, message: str) -> None:
    w = EpisodeWriter.create(tmp_path, "t")
    w.append_step(_step(0))
    damage(w.path)
    with pytest.raises(EpisodeError, match=message):
        load_episode(w.path)


def test_missing_screenshot_is_a_warning_then_a_clear_error(tmp_path: Path) -> None:
    w = EpisodeWriter.create(tmp_path, "t")
    names = w.save_screenshots(0, Image.new("RGB", (4, 4)), None)
    w.append_step({**_step(0), "screenshot": names[0]})
    (w.path / names[0]).unlink()
    ep = load_episode(w.path)
    assert any("missing" in x for x in ep.warnings)
    with pytest.raises(EpisodeError, match="is missing"):
        ep.screenshot(ep.steps[0])


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(EpisodeError, match="not a directory"):
        load_episode(tmp_path / "nope")


WRITER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from PIL import Image
    from episodes.store import EpisodeWriter
    w = EpisodeWriter.create(sys.argv[1], "crash test")
    print(w.path, flush=True)
    i = 0
    while True:
        img = Image.new("RGB", (320, 200), (i % 255, 0, 0))
        names = w.save_screenshots(i, img, img)
        w.append_step({"index": i, "status": "acted", "screenshot": names[0], "annotated": names[1],
                       "raw_text": "x" * 5000})
        i += 1
    """
)


def test_kill_9_mid_episode_leaves_every_completed_step(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-c", WRITER_SCRIPT, str(tmp_path)], cwd=root,
                            stdout=subprocess.PIPE, text=True)
    try:
        path = Path(proc.stdout.readline().strip())
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # let it write several steps, then kill it wherever it is
            if (path / "steps.jsonl").exists() and (path / "steps.jsonl").stat().st_size > 30_000:
                break
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    ep = load_episode(path)
    assert ep.meta["format"] == FORMAT
    assert len(ep.steps) >= 5
    assert [s["index"] for s in ep.steps] == list(range(len(ep.steps)))
    for step in ep.steps:  # every recorded step's screenshots are whole PNGs
        assert ep.screenshot(step).size == (320, 200)
        assert ep.screenshot(step, annotated=True).size == (320, 200)
    assert ep.result["status"] == "running"  # the writer never finished: resume can tell
