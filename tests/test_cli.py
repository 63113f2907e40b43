"""The command line as a person uses it: real subprocesses, one clear line on errors a person can act on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path = ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(ROOT / "run_agent.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def _one_clear_line(proc: subprocess.CompletedProcess, *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    text = " ".join(proc.stderr.split())
    for needle in needles:
        assert needle in text, proc.stderr


def test_no_weights_at_the_path(tmp_path: Path) -> None:
    tok = tmp_path / "tok"
    tok.mkdir()
    proc = run("run", "--env", "browser", "--task", "x", "--model", str(tmp_path / "nope"), "--tokenizer", str(tok))
    _one_clear_line(proc, "error:", "nope")


def test_no_model_and_no_server() -> None:
    _one_clear_line(run("run", "--env", "browser", "--task", "x"), "--model", "--server")


def test_missing_tokenizer(tmp_path: Path) -> None:
    model = tmp_path / "m"
    model.mkdir()
    _one_clear_line(run("run", "--env", "browser", "--task", "x", "--model", str(model)), "tokenizer")


def test_bad_config_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("loop:\n  max_step: 3\n")
    _one_clear_line(run("--config", str(cfg), "report", str(tmp_path)), "unknown key 'loop.max_step'")


def test_report_of_a_directory_that_is_not_an_episode(tmp_path: Path) -> None:
    _one_clear_line(run("report", str(tmp_path)), "episode.json")


def test_unknown_suite_task_lists_the_valid_ones() -> None:
    _one_clear_line(run("eval", "--suite", "web:no-such-task", "--script"), "no-such-task", "login")


def test_eval_offline_wrong_format_names_the_field(tmp_path: Path) -> None:
    data = tmp_path / "screenspot_web.json"
    data.write_text(json.dumps([{"img_filename": "a.png", "instruction": "x", "data_type": "text"}]))
    preds = tmp_path / "p.jsonl"
    preds.write_text("")
    _one_clear_line(run("eval-offline", "--dataset", "screenspot", str(data), "--predictions", str(preds)),
                    "missing field 'bbox'")


def test_phone_unreachable() -> None:
    proc = run("run", "--env", "android", "--task", "x", "--server", "http://127.0.0.1:9/v1",
               "--host", "127.0.0.1", "--port", "9")
    _one_clear_line(proc, "error:", "127.0.0.1")


def test_no_display_for_desktop() -> None:
    env_display = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    proc = subprocess.run([sys.executable, str(ROOT / "run_agent.py"), "run", "--env", "desktop", "--task", "x",
                           "--server", "http://127.0.0.1:9/v1"], cwd=ROOT, env=env_display,
                          capture_output=True, text=True, timeout=120)
    _one_clear_line(proc, "DISPLAY")


def test_ask_with_the_tiny_model_prints_an_answer(tmp_path: Path) -> None:
    from PIL import Image

    from cogagent.tiny import make_tiny_checkpoint

    root = make_tiny_checkpoint(tmp_path / "tiny", image_size=28, cross_image_size=56)
    image = tmp_path / "shot.png"
    Image.new("RGB", (64, 48), (255, 255, 255)).save(image)
    proc = run("ask", str(image), "What is on the screen?", "--model", str(root / "model"), "--tokenizer",
               str(root / "tokenizer"), "--max-new-tokens", "8", "--dtype", "float32")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip()  # nonsense, but an answer
    _one_clear_line(run("ask", str(tmp_path / "none.png"), "q", "--server", "http://127.0.0.1:9"), "no image at")


def test_demo_main_job(tmp_path: Path) -> None:
    """The shipped tiny model (models/tiny-cogagent-web) solves the demo task, by the site's own state: a
    regression test of the weights in the repository as much as of the loop."""
    proc = run("demo", "--out", str(tmp_path / "demo"), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    episode = summary["tiny_model_episode"]
    assert episode["status"] == "success" and episode["reason"] == "the environment reports the task done"
    assert summary["replay"]["task_done"] is True
    for report in summary["reports"].values():
        assert Path(report).is_file()


def test_demo_with_a_random_model_fails_honestly(tmp_path: Path) -> None:
    proc = run("demo", "--out", str(tmp_path / "demo"), "--random-model", "--steps", "3", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)
    assert summary["tiny_model_episode"]["status"] in ("failed", "max_steps")
    _one_clear_line(run("demo", "--out", str(tmp_path / "x"), "--model", str(tmp_path)), "no config.json there")
