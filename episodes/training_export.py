"""Recorded episodes -> training JSONL for ``cogagent.train``: fine-tune the model on demonstrations of your app.

Why: the cheapest teacher for an app is someone (or a script) doing the task once while the runtime records it.
Every episode on disk already holds what a training line needs: the screenshot the policy saw, the task, and
the turn it wrote in CogAgent's grammar. This module writes each acted step as one line, with the query and
history built exactly as ``CogAgentPolicy`` builds them at inference (the 18B agent query of the task, and the
last ``history_steps`` earlier turns of the same episode), so what the model is trained on is what it will be
asked. By default only successful episodes are exported: a failed demonstration teaches failure. Steps whose turn
holds no operation in the grammar, or whose screenshot is missing, are left out.

    python -m episodes.training_export runs/eval/*/episodes/* --out demos.jsonl [--all] [--history-steps 4]
        [--drop-plan]

Image paths are absolute, so the JSONL can live anywhere; the screenshots stay in the episode directories.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Iterable, Sequence

from cogagent.grammar import ParseError, parse
from cogagent.prompts import agent_query

from .store import EpisodeError, load_episode

ACTED = "acted"


def without_plan(answer: str) -> str:
    """The turn without its ``Plan:`` line. A scripted demonstration's plan restates the task word for word; a
    small model spends most of its capacity copying it, and the grammar does not need it."""
    return "\n".join(line for line in answer.split("\n") if not line.startswith("Plan:"))


def episode_lines(path: str | Path, history_steps: int = 4, only_successful: bool = True,
                  drop_plan: bool = False) -> list[dict[str, Any]]:
    """The training lines of one episode directory (empty when it is not exported: failed, or no acted step)."""
    episode = load_episode(path)
    if only_successful and (episode.meta.get("result") or {}).get("status") != "success":
        return []
    task = episode.meta.get("task") or ""
    if not task:
        raise EpisodeError(f"{episode.path}: the episode names no task; it cannot become training data")
    query = agent_query(task)
    lines: list[dict[str, Any]] = []
    past: list[list[str]] = []
    for step in episode.steps:
        if step.get("status") != ACTED:
            continue
        answer = step.get("raw_text") or ""
        if drop_plan:
            answer = without_plan(answer)
        image = episode.path / (step.get("screenshot") or "")
        turn = parse(answer) if answer else None
        if turn is None or isinstance(turn, ParseError) or not turn.operations or not image.is_file():
            continue  # nothing to imitate: no operation in the grammar, or the screenshot is gone
        history = [list(h) for h in past[-history_steps:]] if history_steps else []
        lines.append({"image": str(image.resolve()), "query": query, "answer": answer, "history": history,
                      "source": {"episode": str(episode.path), "step": step.get("index")}})
        past.append([query, answer])
    return lines


def export(paths: Iterable[str | Path], out: str | Path, history_steps: int = 4,
           only_successful: bool = True, drop_plan: bool = False) -> dict[str, int]:
    """Write the lines of every episode under ``paths`` (episode directories, or directories holding them)."""
    counts = {"episodes": 0, "exported_episodes": 0, "lines": 0}
    rows: list[dict[str, Any]] = []
    for root in paths:
        root = Path(root)
        dirs = [root] if (root / "episode.json").is_file() else sorted(p.parent for p in root.rglob("episode.json"))
        if not dirs:
            raise EpisodeError(f"{root} holds no episode (no episode.json under it)")
        for d in dirs:
            counts["episodes"] += 1
            lines = episode_lines(d, history_steps, only_successful, drop_plan)
            counts["exported_episodes"] += bool(lines)
            rows += lines
    if not rows:
        raise EpisodeError("no step to export: no successful episode with an acted step (use --all to include "
                           "failed episodes)")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    tmp.replace(out)
    counts["lines"] = len(rows)
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m episodes.training_export", description=__doc__.split("\n\n")[0])
    ap.add_argument("episodes", nargs="+", help="episode directories, or directories that hold them")
    ap.add_argument("--out", required=True, help="the JSONL file to write")
    ap.add_argument("--history-steps", type=int, default=4, help="earlier turns kept in each line's history")
    ap.add_argument("--all", action="store_true", help="export failed episodes too")
    ap.add_argument("--drop-plan", action="store_true", help="leave the 'Plan:' line out of every turn")
    args = ap.parse_args(argv)
    try:
        counts = export(args.episodes, args.out, args.history_steps, not args.all, args.drop_plan)
    except EpisodeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
