"""The command line behind ``run_agent.py``: argument parsing and the error boundary, nothing else.

Errors a person can act on (no weights at the path, no tokenizer, no Chromium, no DISPLAY, phone unreachable,
a damaged episode, a bad config) print one line that says what to do and exit with status 2 -- no traceback.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from rich.console import Console

from actuators.base import ActuatorError

from .config import ConfigError, load_config
from .policies import PolicyError
from .store import EpisodeError

console = Console(stderr=True, highlight=False)

USER_ERRORS: tuple[type[BaseException], ...] = (ActuatorError, ConfigError, EpisodeError, FileNotFoundError,
                                                 PolicyError, ValueError, PermissionError)  # DatasetFormatError is a ValueError


def _add_policy_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("policy (a local model or a server)")
    g.add_argument("--model", help="local CogAgent checkpoint directory (config.json + safetensors)")
    g.add_argument("--tokenizer", help="local tokenizer directory (lmsys/vicuna-7b-v1.5)")
    g.add_argument("--server", help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    g.add_argument("--server-style", choices=("18b", "9b"), help="prompt layout the served model expects")
    g.add_argument("--dtype", choices=("float32", "bfloat16", "float16"))
    g.add_argument("--device", help="cpu, cuda, cuda:1 ...")
    g.add_argument("--device-map", help="'auto' to spread the model over all GPUs (accelerate)")
    g.add_argument("--max-new-tokens", type=int)


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-steps", type=int)
    p.add_argument("--max-seconds", type=float)
    p.add_argument("--confirm", choices=("never", "sensitive", "always"))
    p.add_argument("--out", help="directory that receives episode directories (default: runs)")
    p.add_argument("--url", help="browser: the page to start on")
    p.add_argument("--allowed-domain", action="append", dest="allowed_domains",
                   help="browser: a domain the agent may visit (repeat for several); default any")
    p.add_argument("--headed", action="store_true", help="browser: show the window (needs a display)")
    p.add_argument("--host", help="android: adb host (TCP)")
    p.add_argument("--port", type=int, help="android: adb port")
    p.add_argument("--serial", help="android: HOST:PORT as adb prints it")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="run_agent.py", description="CogAgent GUI-agent runtime")
    parser.add_argument("--config", action="append", default=[], help="YAML settings file (repeatable)")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the agent on a task")
    run.add_argument("--env", choices=("browser", "desktop", "android"), required=True)
    run.add_argument("--task", required=True)
    _add_policy_args(run)
    _add_run_args(run)

    ask = sub.add_parser("ask", help="answer a question about a screenshot")
    ask.add_argument("image")
    ask.add_argument("question")
    ask.add_argument("--template", choices=("chat", "chat_old", "vqa", "base"))
    ask.add_argument("--out", help="where to write the image with the answer's boxes drawn")
    _add_policy_args(ask)

    replay = sub.add_parser("replay", help="re-execute an episode's actions without a model")
    replay.add_argument("episode")
    replay.add_argument("--env", choices=("browser", "desktop", "android"))
    replay.add_argument("--threshold", type=float, default=0.02)
    _add_run_args(replay)

    report = sub.add_parser("report", help="write the HTML report of an episode")
    report.add_argument("episode")
    report.add_argument("--out")

    resume = sub.add_parser("resume", help="continue an interrupted episode")
    resume.add_argument("episode")
    _add_policy_args(resume)
    _add_run_args(resume)

    serve = sub.add_parser("serve", help="serve the local model as an OpenAI-compatible chat-completions endpoint")
    _add_policy_args(serve)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--name", default="cogagent", help="the model name the endpoint reports")

    demo = sub.add_parser("demo", help="the main job on a fresh machine: a real episode, a replay, a report")
    demo.add_argument("--out", default="runs/demo")
    demo.add_argument("--steps", type=int, default=6, help="steps the tiny model may take")
    demo.add_argument("--model", dest="demo_model", help="a CogAgent checkpoint directory with its tokenizer "
                                                         "(default: models/tiny-cogagent-web)")
    demo.add_argument("--random-model", action="store_true", help="a random-weight tiny CogAgent instead")

    from .eval_cli import add_eval_commands  # noqa: PLC0415 - keeps evaluation's imports out of other commands

    add_eval_commands(sub)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    get = lambda name: getattr(args, name, None)  # noqa: E731
    serial = get("serial")
    host, port = get("host"), get("port")
    if serial:
        host, _, p = serial.rpartition(":")
        if not host or not p.isdigit():
            raise ValueError(f"--serial must look like HOST:PORT, got {serial!r}")
        port = int(p)
    return {
        "model.path": get("model"), "model.tokenizer": get("tokenizer"), "model.dtype": get("dtype"),
        "model.device": get("device"), "model.device_map": get("device_map"),
        "model.max_new_tokens": get("max_new_tokens"), "server.url": get("server"),
        "server.style": get("server_style"), "loop.max_steps": get("max_steps"),
        "loop.max_seconds": get("max_seconds"), "confirm": get("confirm"), "out": get("out"),
        "browser.allowed_domains": get("allowed_domains"), "browser.headless": False if get("headed") else None,
        "android.host": host, "android.port": port,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, _overrides(args))
        handler = getattr(args, "handler", None)
        if handler is None:
            from . import commands  # noqa: PLC0415

            handler = getattr(commands, "cmd_" + args.command.replace("-", "_"))
        return int(handler(args, config) or 0)
    except KeyboardInterrupt:
        console.print("[yellow]stopped[/yellow]")
        return 130
    except USER_ERRORS as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        return 2


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=1, default=str) + "\n")
    sys.stdout.flush()
