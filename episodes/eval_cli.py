"""``run_agent.py eval-offline`` (dataset metrics) and ``eval`` (task suites): argument parsing and wiring."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .metrics.common import DatasetFormatError

DATASETS = ("mind2web", "aitw", "screenspot")


def add_eval_commands(sub: Any) -> None:
    off = sub.add_parser("eval-offline", help="score predictions on Mind2Web / AITW / ScreenSpot files")
    off.add_argument("--dataset", choices=DATASETS, required=True)
    off.add_argument("path", help="the dataset file (in the format the dataset publishes)")
    off.add_argument("--predictions", help="JSON Lines of predictions (see episodes/metrics/predictions.py)")
    off.add_argument("--images", help="directory of the dataset's screenshots (to run a model on them)")
    off.add_argument("--split", help="mind2web: test_task | test_website | test_domain (default: from the path)")
    off.add_argument("--platform", help="screenspot: mobile | desktop | web (default: from the file name)")
    off.add_argument("--category", help="aitw: category of flat record files")
    off.add_argument("--write-predictions", help="where to save the predictions a model made")
    off.add_argument("--limit", type=int, help="score only the first N records (with a model)")
    for name, kw in (("--model", {}), ("--tokenizer", {}), ("--server", {}), ("--dtype", {}), ("--device", {}),
                     ("--device-map", {}), ("--max-new-tokens", {"type": int}), ("--server-style", {})):
        off.add_argument(name, **kw)
    off.set_defaults(handler=cmd_eval_offline)
    try:
        from .evaluate import add_eval_suite_command  # noqa: PLC0415
    except ImportError:
        return
    add_eval_suite_command(sub)


def _predict_screenspot(items: list[Any], images: Path, policy: Any, limit: int | None) -> list[dict[str, Any]]:
    from PIL import Image  # noqa: PLC0415

    out = []
    for item in items[:limit] if limit else items:
        file = images / item.image
        if not file.is_file():
            raise DatasetFormatError(f"screenshot {file} for record {item.key} is missing (check --images)")
        with Image.open(file) as img:
            shot = img.convert("RGB")
        reply = policy.act(shot, item.instruction, [])
        out.append({"id": item.key, "output": reply.raw_text, "image_size": list(shot.size)})
    return out


def cmd_eval_offline(args: argparse.Namespace, config: dict[str, Any]) -> int:
    from .cli import print_json  # noqa: PLC0415
    from .metrics import aitw, mind2web, predictions, screenspot  # noqa: PLC0415

    if not args.predictions and not (config["model"]["path"] or config["server"]["url"]):
        raise ValueError("give --predictions FILE, or a model (--model DIR --tokenizer DIR, or --server URL) "
                         "with --images DIR to make them")
    pred_file = args.predictions
    if not pred_file:
        if args.dataset != "screenspot":
            raise ValueError(f"running a model is supported for screenspot; for {args.dataset}, make predictions "
                             "with your pipeline and pass --predictions (the format is in episodes/metrics/predictions.py)")
        if not args.images:
            raise ValueError("--images DIR is needed to run a model on the screenshots")
        from .targets import make_policy  # noqa: PLC0415

        items = screenspot.load_screenspot(args.path, args.platform)
        made = _predict_screenspot(items, Path(args.images), make_policy(config), args.limit)
        pred_file = args.write_predictions or str(Path(config["out"]) / "screenspot_predictions.jsonl")
        Path(pred_file).parent.mkdir(parents=True, exist_ok=True)
        Path(pred_file).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in made), encoding="utf-8")
        items = items[: args.limit] if args.limit else items
    if args.dataset == "screenspot":
        items = screenspot.load_screenspot(args.path, args.platform) if args.predictions else items
        scores = screenspot.score_screenspot(items, predictions.load_screenspot_predictions(pred_file))
    elif args.dataset == "mind2web":
        scores = mind2web.score_mind2web(mind2web.load_mind2web(args.path, args.split),
                                         predictions.load_mind2web_predictions(pred_file))
    else:
        scores = aitw.score_aitw(aitw.load_aitw(args.path, args.category), predictions.load_aitw_predictions(pred_file))
    print_json({"dataset": args.dataset, "path": args.path, "predictions": pred_file, "scores": scores})
    return 0

