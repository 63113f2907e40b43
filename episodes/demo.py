"""The main job on a fresh machine, honestly: what the runtime does when no real CogAgent is at hand.

1. The tiny CogAgent trained by this project (``models/tiny-cogagent-web``: CogAgent's architecture at 5 M
   parameters, see its TRAINING.md for what it can and cannot do) drives a real Chromium on the bundled search
   task, step by step, and the site's own state says whether the task got done. ``--model DIR`` runs another
   checkpoint (with its tokenizer in the same directory); ``--random-model`` a random-weight one, whose
   nonsense the loop records, retries and ends as failed -- what it must do with a model that writes nonsense.
2. A recorded episode of the same task (made by the suite's scripted policy, shipped in ``episodes/demo_data``)
   is replayed action by action on a fresh page, and the site's own state says whether the task got done.
3. Both episodes get an HTML report; the paths are printed.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rich.console import Console

from .environments.web import WebEnvironment, shared_server
from .gate import Gate
from .loop import LoopConfig, run_episode
from .replay import replay_episode
from .report import write_report
from .store import EpisodeWriter, load_episode
from .webapp.tasks import WEB_TASKS

DEMO_TASK = "search-cogvlm"
RECORDED = Path(__file__).resolve().parent / "demo_data" / DEMO_TASK
SHIPPED_MODEL = Path(__file__).resolve().parent.parent / "models" / "tiny-cogagent-web"

console = Console(stderr=True, highlight=False)


def run_demo(out: Path, steps: int = 6, model_dir: Path | None = SHIPPED_MODEL) -> int:
    """``model_dir=None``: a random-weight tiny CogAgent instead of a trained one."""
    import torch

    from cogagent import CogAgentForCausalLM
    from cogagent.tiny import make_tiny_checkpoint
    from cogagent.tokenizer import load_tokenizer

    from .cli import print_json
    from .commands import step_printer
    from .policies import CogAgentPolicy

    out.mkdir(parents=True, exist_ok=True)
    task = WEB_TASKS[DEMO_TASK]
    if model_dir is None:
        console.rule("1/3  a tiny random-weight CogAgent drives Chromium (expect nonsense)")
        ckpt = make_tiny_checkpoint(out / "tiny-cogagent")
        model_dir, tokenizer_dir, max_new_tokens = ckpt / "model", ckpt / "tokenizer", 40
    else:
        console.rule(f"1/3  the tiny CogAgent in {model_dir} drives Chromium")
        tokenizer_dir, max_new_tokens = model_dir, 96
    torch.manual_seed(0)
    model = CogAgentForCausalLM.from_pretrained(model_dir, dtype="float32", device="cpu").eval()
    policy = CogAgentPolicy(model, load_tokenizer(tokenizer_dir), max_new_tokens=max_new_tokens,
                            model_path=str(model_dir))
    env = WebEnvironment(task)
    try:
        actuator = env.reset()
        writer = EpisodeWriter.create(out / "episodes", task.instruction, policy=policy.describe(),
                                      env={"kind": f"web:{DEMO_TASK}"})
        live = run_episode(policy, actuator, task.instruction, writer,
                           LoopConfig(max_steps=steps, parse_retries=max(0, steps - 1)), Gate("sensitive"),
                           step_printer, done_check=env.is_successful)
    finally:
        env.close()
    console.print(f"tiny model: {live.status} -- {live.reason}; the site says the task is "
                  f"{'[green]done[/green]' if live.status == 'success' else '[red]not done[/red]'}")

    console.rule("2/3  a recorded episode of the same task, replayed on a fresh page")
    recorded = load_episode(RECORDED)
    copy = out / "episodes" / f"recorded-{DEMO_TASK}"
    if not copy.exists():
        shutil.copytree(RECORDED, copy)
    env = WebEnvironment(task)
    try:
        actuator = env.reset()
        replay = replay_episode(recorded, actuator)
        done = env.is_successful()
    finally:
        env.close()
        shared_server().close()
    for s in replay.steps:
        diff = "-" if s.difference is None else f"{s.difference:.4f}"
        console.print(f"step {s.index}: {s.status:<6} screen difference {diff}{'  (differs)' if s.differs else ''}")
    console.print(f"replayed {len(replay.steps)} actions; the site says the task is "
                  f"{'[green]done[/green]' if done else '[red]not done[/red]'}")

    console.rule("3/3  reports")
    reports = {"tiny_model": str(write_report(live.path)), "recorded": str(write_report(copy))}
    print_json({"tiny_model_episode": {"status": live.status, "reason": live.reason, "steps": live.steps,
                                       "path": live.path},
                "replay": {"task_done": done, **replay.to_dict()}, "reports": reports})
    return 0 if done else 1
