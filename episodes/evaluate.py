"""``run_agent.py eval``: run task suites end to end, K episodes at a time, every episode written to disk.

Locally, K worker threads each own their target (K browsers, K phones) while sharing one policy: a local model
is used by one worker at a time (a lock), which keeps one copy of the weights and lets the actuators' work
overlap with generation. Across machines, ``--ray`` hands the same episodes to a Ray cluster (each Ray task
builds its own environment; use a served model or a scripted/replay policy there). A worker whose episode
crashes marks that episode failed with the reason and goes on with the next.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import threading
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

from PIL import Image

from .environments.base import Environment, make_env, parse_spec
from .gate import ApproveAll, Gate
from .loop import LoopConfig, run_episode
from .policies import HistoryItem, Policy, PolicyReply, ReplayPolicy
from .store import EpisodeWriter, load_episode

PolicyFactory = Callable[[Environment], Policy]


@dataclass
class EpisodeRecord:
    task: str
    run: int
    success: bool
    status: str
    reason: str | None
    steps: int
    seconds: float
    step_seconds: list[float] = field(default_factory=list)
    path: str | None = None
    info: dict[str, Any] = field(default_factory=dict)


class LockedPolicy:
    """One policy shared by several workers, used by one at a time (one model copy in memory)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.name = policy.name
        self.inline = bool(getattr(policy, "inline", False))
        self._lock = threading.Lock()

    def describe(self) -> dict[str, Any]:
        return self.policy.describe()

    def act(self, screenshot: Image.Image, task: str, history: Sequence[HistoryItem]) -> PolicyReply:
        with self._lock:
            return self.policy.act(screenshot, task, history)


def run_one(task: str, run: int, policy_factory: PolicyFactory, out_dir: Path, loop: LoopConfig,
            env_options: dict[str, Any] | None = None) -> EpisodeRecord:
    """One episode of ``task``; never raises: a crash is a failed record with the reason."""
    t0 = time.perf_counter()
    env: Environment | None = None
    writer: EpisodeWriter | None = None
    try:
        env = make_env(task, **(env_options or {}))
        actuator = env.reset(seed=run)
        policy = policy_factory(env)
        writer = EpisodeWriter.create(out_dir, env.instruction, env={"kind": task, "run": run},
                                      policy=policy.describe(), config={"loop": asdict(loop)})
        budget = dataclasses.replace(loop, max_steps=min(loop.max_steps, env.max_steps))
        gate = Gate("never", confirmer=ApproveAll())  # asked and logged; nobody is there to answer
        result = run_episode(policy, actuator, env.instruction, writer, budget, gate, done_check=env.is_successful)
        success = env.is_successful()
        info = env.info()
        writer.update_meta(environment_result={"success": success, **{k: v for k, v in info.items() if k != "state"}})
        steps = [float((s.get("timings") or {}).get("total_s", 0.0)) for s in writer.steps]
        return EpisodeRecord(task, run, success, result.status, result.reason, result.steps,
                             time.perf_counter() - t0, steps, result.path,
                             {"final_state": info.get("state"),
                              **({"hit_target": bool(info["hit_target"])} if "hit_target" in info else {})})
    except Exception as exc:  # a crashed worker episode: recorded, and the others go on
        reason = f"{type(exc).__name__}: {exc}"
        if writer is not None:
            try:
                writer.finish("error", reason, traceback=traceback.format_exc(limit=5))
            except OSError:
                pass
        return EpisodeRecord(task, run, False, "error", reason, len(writer.steps) if writer else 0,
                             time.perf_counter() - t0, [], str(writer.path) if writer else None)
    finally:
        if env is not None:
            try:
                env.close()
            except Exception:
                pass


def percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summarize(records: list[EpisodeRecord]) -> dict[str, Any]:
    steps = [s for r in records for s in r.step_seconds]
    per_task: dict[str, list[EpisodeRecord]] = {}
    for r in records:
        per_task.setdefault(r.task, []).append(r)
    return {
        "episodes": len(records),
        "success_rate": round(sum(r.success for r in records) / len(records), 4) if records else 0.0,
        "mean_steps": round(statistics.fmean(r.steps for r in records), 3) if records else 0.0,
        "step_latency_s": {"p50": round(percentile(steps, 0.5), 4), "p90": round(percentile(steps, 0.9), 4),
                           "p99": round(percentile(steps, 0.99), 4), "count": len(steps)},
        "errors": sum(r.status == "error" for r in records),
        **_hit_rate(records),
        "tasks": {t: {"success_rate": round(sum(r.success for r in rs) / len(rs), 4),
                      "mean_steps": round(statistics.fmean(r.steps for r in rs), 3),
                      "statuses": sorted({r.status for r in rs})} for t, rs in sorted(per_task.items())},
    }


def _hit_rate(records: list[EpisodeRecord]) -> dict[str, Any]:
    """Suites that judge grounding apart from success (``synth``): the share of episodes whose action reached
    the target at all."""
    judged = [r.info["hit_target"] for r in records if "hit_target" in r.info]
    return {"hit_target_rate": round(sum(judged) / len(judged), 4), "hit_target_judged": len(judged)} if judged else {}


def run_suite(tasks: list[str], policy_factory: PolicyFactory, out_dir: Path, loop: LoopConfig, episodes: int = 1,
              workers: int = 1, env_options: dict[str, Any] | None = None,
              on_record: Callable[[EpisodeRecord], None] | None = None) -> list[EpisodeRecord]:
    if workers < 1 or episodes < 1:
        raise ValueError("--workers and --episodes must be at least 1")
    jobs = [(task, run) for run in range(episodes) for task in tasks]
    records: list[EpisodeRecord] = []

    def work(job: tuple[str, int]) -> EpisodeRecord:
        record = run_one(job[0], job[1], policy_factory, out_dir, loop, env_options)
        if on_record:
            on_record(record)
        return record

    if workers == 1:
        return [work(j) for j in jobs]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="eval") as pool:
        records = list(pool.map(work, jobs))
    return records


def run_suite_ray(tasks: list[str], policy_spec: dict[str, Any], out_dir: Path, loop: LoopConfig, episodes: int,
                  address: str | None = None) -> list[EpisodeRecord]:
    """The same episodes as Ray tasks; ``address=None`` starts a local Ray instance."""
    try:
        import ray  # noqa: PLC0415
    except ImportError:
        raise ValueError("--ray needs Ray: pip install 'cogagent-runtime[ray]'") from None
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    remote = ray.remote(_ray_episode)
    futures = [remote.remote(task, run, policy_spec, str(out_dir), asdict(loop))
               for run in range(episodes) for task in tasks]
    return [EpisodeRecord(**r) for r in ray.get(futures)]


def _ray_episode(task: str, run: int, policy_spec: dict[str, Any], out_dir: str, loop: dict[str, Any]) -> dict:
    record = run_one(task, run, policy_factory_from_spec(policy_spec), Path(out_dir), LoopConfig(**loop))
    return asdict(record)


def policy_factory_from_spec(spec: dict[str, Any]) -> PolicyFactory:
    """``{"kind": "script"}``, ``{"kind": "replay", "dir": ...}``, ``{"kind": "server", ...}``, ``{"kind": "model"}``."""
    kind = spec["kind"]
    if kind == "script":
        return script_policy
    if kind == "replay":
        return replay_policy_factory(Path(spec["dir"]))
    if kind == "random":
        from .random_policy import RandomPolicy  # noqa: PLC0415

        return lambda env: RandomPolicy(seed=spec.get("seed", 0))
    if kind in ("server", "model"):
        from .targets import make_policy  # noqa: PLC0415

        shared = LockedPolicy(make_policy(spec["config"]))
        return lambda env: shared
    raise ValueError(f"unknown policy kind {kind!r}")


def script_policy(env: Environment) -> Policy:
    suite = env.name.split(":", 1)[0]
    if suite == "web":
        from .environments.web import WebScriptPolicy  # noqa: PLC0415

        return WebScriptPolicy(env)  # type: ignore[arg-type]
    if suite == "phone":
        from .environments.phone import PhoneScriptPolicy  # noqa: PLC0415

        return PhoneScriptPolicy(env)  # type: ignore[arg-type]
    if suite == "miniwob":
        from .environments.miniwob import MiniWobScriptPolicy  # noqa: PLC0415

        return MiniWobScriptPolicy(env)  # type: ignore[arg-type]
    if suite == "synth":
        from .environments.synth import SynthScriptPolicy  # noqa: PLC0415

        return SynthScriptPolicy(env)  # type: ignore[arg-type]
    raise ValueError(f"no scripted policy for suite {suite!r}")


def replay_policy_factory(root: Path) -> PolicyFactory:
    """Replays, for each task, the recorded episode of that task found under ``root``."""
    by_task: dict[str, Path] = {}
    for meta in sorted(root.rglob("episode.json")):
        try:
            data = json.loads(meta.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        kind = (data.get("env") or {}).get("kind")
        if isinstance(kind, str) and ":" in kind:
            by_task.setdefault(kind, meta.parent)
    if not by_task:
        raise ValueError(f"no recorded suite episodes under {root} (episode.json with env.kind 'suite:task')")

    def factory(env: Environment) -> Policy:
        if env.name not in by_task:
            raise ValueError(f"no recorded episode of {env.name} under {root}")
        return ReplayPolicy.from_episode(load_episode(by_task[env.name]))

    return factory


# --- command line ----------------------------------------------------------------------------------------------

def add_eval_suite_command(sub: Any) -> None:
    p = sub.add_parser("eval", help="run task suites (web, miniwob, phone) and print success rates")
    p.add_argument("--suite", action="append", required=True,
                   help="SUITE or SUITE:task1,task2 (repeatable); an unknown name lists the valid ones")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--script", action="store_true", help="the suites' scripted solutions (checks the harness)")
    g.add_argument("--random", action="store_true", help="a uniformly random clicker (the floor)")
    g.add_argument("--replay", help="replay recorded episodes found under this directory")
    p.add_argument("--model")
    p.add_argument("--tokenizer")
    p.add_argument("--server")
    p.add_argument("--server-style", choices=("18b", "9b"))
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"))
    p.add_argument("--device")
    p.add_argument("--device-map")
    p.add_argument("--max-new-tokens", type=int)
    p.add_argument("--episodes", type=int, default=1, help="episodes per task")
    p.add_argument("--workers", type=int, default=1, help="episodes at a time (each with its own target)")
    p.add_argument("--ray", nargs="?", const="local", help="run on Ray: 'local' or a cluster address")
    p.add_argument("--max-steps", type=int)
    p.add_argument("--out", help="directory for the episodes and summary.json (default: runs/eval-<time>)")
    p.set_defaults(handler=cmd_eval)


def cmd_eval(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from rich.table import Table  # noqa: PLC0415

    from .cli import console, print_json  # noqa: PLC0415

    tasks = [t for spec in args.suite for t in parse_spec(spec)]
    if args.script:
        spec: dict[str, Any] = {"kind": "script"}
    elif args.random:
        spec = {"kind": "random"}
    elif args.replay:
        spec = {"kind": "replay", "dir": args.replay}
    elif config["server"]["url"]:
        spec = {"kind": "server", "config": config}
    elif config["model"]["path"]:
        spec = {"kind": "model", "config": config}
    else:
        raise ValueError("choose a policy: --script, --random, --replay DIR, --server URL, or --model DIR --tokenizer DIR")
    out = Path(args.out or Path(config["out"]) / time.strftime("eval-%Y%m%d-%H%M%S"))
    loop = LoopConfig(**config["loop"])

    def show(r: EpisodeRecord) -> None:
        mark = "[green]ok[/green]" if r.success else "[red]fail[/red]"
        console.print(f"{r.task:<32} run {r.run}  {mark}  {r.status:<10} {r.steps} steps  {r.seconds:.1f}s"
                      + (f"  [dim]{(r.reason or '')[:90]}[/dim]" if not r.success else ""), soft_wrap=True)

    if args.ray:
        if spec["kind"] == "model":
            raise ValueError("--ray runs episodes on other machines: serve the model (--server) instead of --model")
        records = run_suite_ray(tasks, spec, out, loop, args.episodes, None if args.ray == "local" else args.ray)
        for r in records:
            show(r)
    else:
        records = run_suite(tasks, policy_factory_from_spec(spec), out, loop, args.episodes, args.workers,
                            on_record=show)
    summary = {"policy": spec["kind"], "tasks": len(tasks), "out": str(out), **summarize(records)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False), encoding="utf-8")
    table = Table(title=f"{spec['kind']} policy: {summary['success_rate']:.0%} of {len(records)} episodes")
    for col in ("task", "success", "mean steps", "status"):
        table.add_column(col)
    for task, row in summary["tasks"].items():
        table.add_row(task, f"{row['success_rate']:.0%}", str(row["mean_steps"]), ",".join(row["statuses"]))
    console.print(table)
    print_json(summary)
    return 0
