"""Which MiniWoB++ tasks our harness runs, measured: every task page is loaded in a real Chromium through
``MiniWobEnvironment`` and checked, and the scripted solver is run on the tasks it knows.

A task *works* when the harness runs it: the page loads and its episode starts (``genProblem`` does not throw,
``WOB_TASK_READY`` comes), the utterance is not empty, a screenshot of the expected size comes back, the reward
globals are readable and the episode is not over before anyone acted, and the episode does end (here: by the
page's own timer, set short for the survey) with the reward globals saying so -- and the task needs no
interaction that model text cannot express (``NEEDS`` below, each read from the task's source). Working says
nothing about whether any policy can solve it.

    .venv/bin/python benchmarks/miniwob_survey.py [--tasks a,b] [--seeds 5] [--write]

Prints JSON; ``--write`` also writes ``episodes/environments/miniwob_tasks.json`` (the table ``task_names()``
reads). Run over all 130 tasks it takes several minutes (one browser per task).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from episodes.environments import miniwob  # noqa: E402
from episodes.evaluate import run_one, script_policy  # noqa: E402
from episodes.loop import LoopConfig  # noqa: E402

TIMING = ("needs continuous mouse motion or split-second timing that a screenshot-by-screenshot loop cannot "
          "give")
DRAG = ("needs a drag (mouse down, move along a path, up); neither CogAgent dialect has a drag operation, so "
        "no model text can become the actuator's Drag")
NEEDS: dict[str, str] = {
    "chase-circle": TIMING + " (keep the mouse inside a circle that moves for 2 s)",
    "moving-items": TIMING + " (click circles as they slide off the area; the page ends itself after 9.9 s)",
    "hover-shape": TIMING + " (keep hovering a highlight that jumps every 2 s; scored per 100 ms)",
    "simon-says": TIMING + " (the sequence is shown only as blinks during the first seconds)",
    "stock-market": TIMING + " (buy while a price redrawn every 100 ms is under a threshold)",
    "drag-box": DRAG, "drag-circle": DRAG, "drag-cube": DRAG, "drag-items": DRAG, "drag-items-grid": DRAG,
    "drag-shapes": DRAG, "drag-shapes-2": DRAG, "drag-single-shape": DRAG, "drag-sort-numbers": DRAG,
    "draw-circle": DRAG + " (and a freehand circle)", "draw-line": DRAG, "resize-textarea": DRAG,
    "highlight-text": DRAG + " (select a paragraph with the mouse)",
    "highlight-text-2": DRAG + " (select a paragraph with the mouse)",
    "daily-calendar": DRAG + " (an event is made by pressing and dragging over half-hour slots)",
}

SURVEY_EPISODE_S = 3.0
"""The page's own episode timer during the check, so that 'the episode ends' is observed, not assumed."""


def check_task(task: str, seed: int) -> dict[str, Any]:
    row: dict[str, Any] = {"works": False, "reason": None}
    env = miniwob.make(task, episode_seconds=SURVEY_EPISODE_S)
    t0 = time.perf_counter()
    try:
        try:
            actuator = env.reset(seed=seed)
        except Exception as exc:
            row["reason"] = f"page fails to load or its episode does not start: {str(exc)[:300]}"
            return row
        row["load_s"] = round(time.perf_counter() - t0, 2)
        row["utterance"] = env.instruction
        shot = actuator.screenshot()
        row["screenshot"] = list(shot.size)
        expected = [round(v * miniwob.DEFAULT_SCALE) for v in miniwob.TASK_AREA]
        start = env.state()
        row["state_at_start"] = start
        sizes = actuator.page.evaluate("() => [document.documentElement.scrollWidth, "
                                       "document.documentElement.scrollHeight]")
        row["page_css_size"] = sizes
        deadline = time.monotonic() + SURVEY_EPISODE_S + 8
        end = start
        while not end.get("done") and time.monotonic() < deadline:
            actuator.page.wait_for_timeout(250)
            end = env.state()
        row["state_at_end"] = end
        row["page_errors"] = list(env.page_errors)
        problems = []
        if not env.instruction:
            problems.append("utterance empty")
        if row["screenshot"] != expected:
            problems.append(f"screenshot {row['screenshot']} instead of {expected}")
        if not isinstance(start.get("raw_reward"), (int, float)):
            problems.append("reward globals not readable")
        if start.get("done"):
            problems.append("episode over before any action")
        if not end.get("done"):
            problems.append("episode never ended")
        if problems:
            row["reason"] = "; ".join(problems)
        elif task in NEEDS:
            row["reason"] = NEEDS[task]
            row["harness_ok"] = True
        else:
            row["works"] = True
            row["harness_ok"] = True
        return row
    finally:
        env.close()


def run_solver(task: str, seeds: int, out: Path) -> dict[str, Any]:
    loop = LoopConfig(max_steps=10, max_seconds=120, step_timeout_s=60)
    records = [run_one(f"miniwob:{task}", seed, script_policy, out, loop) for seed in range(seeds)]
    return {"episodes": len(records), "successes": sum(r.success for r in records),
            "mean_steps": round(sum(r.steps for r in records) / len(records), 2),
            "failures": [{"seed": r.run, "status": r.status, "reason": (r.reason or "")[:200]}
                         for r in records if not r.success]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tasks", help="comma-separated task names (default: all the package ships)")
    ap.add_argument("--seeds", type=int, default=3, help="scripted episodes per solvable task")
    ap.add_argument("--seed", type=int, default=0, help="seed of the harness check")
    ap.add_argument("--write", action="store_true", help=f"write {miniwob.TASK_TABLE}")
    args = ap.parse_args()
    every = miniwob.all_tasks()
    tasks = [t.strip() for t in args.tasks.split(",")] if args.tasks else every
    unknown = sorted(set(tasks) - set(every))
    if unknown:
        ap.error(f"unknown task(s) {unknown}; the package ships {len(every)} tasks")
    t0 = time.perf_counter()
    table: dict[str, dict[str, Any]] = {}
    for i, task in enumerate(tasks):
        table[task] = check_task(task, args.seed)
        print(f"[{i + 1}/{len(tasks)}] {task}: {'works' if table[task]['works'] else table[task]['reason']}",
              file=sys.stderr, flush=True)
    if args.write:  # run_one checks names against the table, so the verdicts go to disk before the solver runs
        if set(tasks) != set(every):
            ap.error("--write needs the full survey (leave out --tasks)")
        write_table(table, {})
    solved: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="miniwob-survey-") as tmp:
        for task in sorted(set(tasks) & set(miniwob.SOLVERS)):
            if table[task]["works"]:
                solved[task] = run_solver(task, args.seeds, Path(tmp))
                table[task]["scripted"] = solved[task]
                print(f"scripted {task}: {solved[task]['successes']}/{solved[task]['episodes']}", file=sys.stderr,
                      flush=True)
    reasons = Counter()
    for row in table.values():
        if not row["works"]:
            r = row["reason"] or ""
            key = ("timing" if r.startswith(TIMING) else "drag" if r.startswith(DRAG) else r.split(":")[0][:80])
            reasons[key] += 1
    summary = {
        "tasks": len(table), "works": sum(r["works"] for r in table.values()),
        "left_out": sum(not r["works"] for r in table.values()), "left_out_by_reason": dict(reasons),
        "scripted": {"tasks": len(solved), "episodes": sum(s["episodes"] for s in solved.values()),
                     "successes": sum(s["successes"] for s in solved.values()),
                     "per_task": {t: f"{s['successes']}/{s['episodes']}" for t, s in solved.items()}},
        "seconds": round(time.perf_counter() - t0, 1),
    }
    if args.write:
        write_table(table, summary)
    print(json.dumps({"summary": summary, "tasks": table if args.tasks else None}, indent=1, ensure_ascii=False))
    return 0


def write_table(table: dict[str, dict[str, Any]], summary: dict[str, Any]) -> None:
    keep = ("works", "reason", "utterance", "scripted")
    compact = {t: {k: row.get(k) for k in keep if k in ("works", "reason") or row.get(k) is not None}
               for t, row in sorted(table.items())}
    miniwob.TASK_TABLE.write_text(json.dumps(
        {"package": "miniwob " + _version(), "made_by": "benchmarks/miniwob_survey.py --write", "summary": summary,
         "tasks": compact}, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _version() -> str:
    from importlib.metadata import version  # noqa: PLC0415

    return version("miniwob")


if __name__ == "__main__":
    raise SystemExit(main())
