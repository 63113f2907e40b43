"""What each ``run_agent.py`` command does, in terms of the episodes package's parts."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .cli import console, print_json
from .gate import DEFAULT_SENSITIVE_WORDS, ConsoleConfirmer, Gate
from .loop import EpisodeResult, LoopConfig, resume_from, run_episode
from .replay import replay_episode
from .report import write_report
from .store import EpisodeWriter, load_episode
from .targets import make_actuator, make_policy


def step_printer(step: dict[str, Any]) -> None:
    """One line per step, as it is recorded."""
    action = step.get("action") or {}
    what = action.get("type", "-")
    where = action.get("point") or action.get("start") or ""
    extra = action.get("text") or action.get("option") or action.get("target") or action.get("direction") or ""
    secs = (step.get("timings") or {}).get("total_s", 0.0)
    colour = {"acted": "green", "ended": "green", "skipped": "yellow", "takeover": "yellow"}.get(step["status"], "red")
    detail = f" {json.dumps(extra, ensure_ascii=False)[:50]}" if extra else ""
    error = f"  [dim]{str(step.get('error'))[:120]}[/dim]" if step.get("error") else ""
    console.print(f"step {step['index']:>3}  [{colour}]{step['status']:<13}[/{colour}] {what} {where}{detail}"
                  f"  ({secs:.2f}s){error}", soft_wrap=True)


def make_gate(config: dict[str, Any], interactive: bool | None = None) -> Gate:
    interactive = sys.stdin.isatty() if interactive is None else interactive
    return Gate(config["confirm"], tuple(config["sensitive_words"] or DEFAULT_SENSITIVE_WORDS),
                bool(config["allow_password_typing"]), ConsoleConfirmer() if interactive else None)


def _finish(result: EpisodeResult) -> int:
    report = write_report(result.path)
    print_json({"status": result.status, "reason": result.reason, "steps": result.steps,
                "episode": result.path, "report": str(report)})
    return 0 if result.success else 1


def cmd_run(args: argparse.Namespace, config: dict[str, Any]) -> int:
    policy = make_policy(config)
    gate = make_gate(config)
    with make_actuator(args.env, config, args.url) as actuator:
        writer = EpisodeWriter.create(config["out"], args.task, policy=policy.describe(),
                                      env={"kind": args.env, "url": args.url, "screen_size": list(actuator.screen_size)},
                                      config=config)
        console.print(f"episode {writer.path}")
        result = run_episode(policy, actuator, args.task, writer, LoopConfig(**config["loop"]), gate, step_printer)
    return _finish(result)


def cmd_resume(args: argparse.Namespace, config: dict[str, Any]) -> int:
    episode = load_episode(args.episode)
    env = episode.meta.get("env", {})
    saved = episode.meta.get("config") or {}
    for key in ("model", "server"):  # the policy the episode ran with, unless flags say otherwise
        for k, v in (saved.get(key) or {}).items():
            if config[key].get(k) is None:
                config[key][k] = v
    writer = resume_from(episode)
    policy = make_policy(config)
    with make_actuator(env.get("kind", "browser"), config, args.url or env.get("url")) as actuator:
        console.print(f"resuming {writer.path} at step {writer.next_index}")
        result = run_episode(policy, actuator, episode.task, writer, LoopConfig(**config["loop"]),
                             make_gate(config), step_printer)
    return _finish(result)


def cmd_replay(args: argparse.Namespace, config: dict[str, Any]) -> int:
    episode = load_episode(args.episode)
    env = episode.meta.get("env", {})
    kind = args.env or env.get("kind", "browser")
    with make_actuator(kind, config, args.url or env.get("url")) as actuator:
        report = replay_episode(episode, actuator, args.threshold)
    print_json(report.to_dict())
    return 0 if not report.failed else 1


def cmd_report(args: argparse.Namespace, config: dict[str, Any]) -> int:
    path = write_report(args.episode, args.out)
    print(path)
    return 0


def cmd_ask(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from PIL import Image

    from cogagent.grammar import find_boxes
    from vision.draw import annotate
    from vision.geometry import ground

    from .policies import HttpPolicy, image_data_url

    image_path = Path(args.image)
    if not image_path.is_file():
        raise FileNotFoundError(f"no image at {image_path}")
    with Image.open(image_path) as img:
        image = img.convert("RGB")
    policy = make_policy(config)
    if isinstance(policy, HttpPolicy):
        content = [{"type": "text", "text": args.question}, {"type": "image_url", "image_url": {"url": image_data_url(image)}}]
        text = policy.complete([{"role": "user", "content": content}])
    else:
        text, _ = policy.generate_text(image, args.question, template=args.template)
    print(text)
    boxes = [ground(list(b), image.size) for b in find_boxes(text)]
    if boxes:
        drawn = annotate(image, boxes=[(g.box.as_tuple(), None) for g in boxes if g.box is not None])
        out = Path(args.out) if args.out else image_path.with_name(image_path.stem + ".answer.png")
        drawn.save(out)
        print(out)
    return 0


def cmd_serve(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from .serve import ModelServer
    from .targets import load_local_model

    from .policies import CogAgentPolicy

    if config["server"]["url"]:
        raise ValueError("serve runs a local model: pass --model DIR --tokenizer DIR, not --server")
    model, tokenizer = load_local_model(config["model"])
    m = config["model"]
    policy = CogAgentPolicy(model, tokenizer, template=m["template"], max_new_tokens=int(m["max_new_tokens"]),
                            model_path=str(m["path"]))
    server = ModelServer(policy, args.name, args.host, args.port)
    console.print(f"serving {m['path']} at {server.url} (Ctrl+C to stop)")
    try:
        server.httpd.serve_forever()
    finally:
        server.close()
    return 0


def cmd_demo(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from .demo import SHIPPED_MODEL, run_demo

    model = None if args.random_model else Path(args.demo_model) if args.demo_model else SHIPPED_MODEL
    if model is not None and not (model / "config.json").is_file():
        raise ValueError(f"--model {model}: no config.json there; pass a checkpoint directory that also holds its "
                         "tokenizer (as models/tiny-cogagent-web does)")
    return run_demo(Path(args.out), args.steps, model)
