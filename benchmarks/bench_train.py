"""Training throughput (examples/s, full fine-tuning and LoRA) and the tiny model's agent-step latency on CPU.

Prints one JSON object. ``full_grouped_dense`` is the recipe of the shipped model (screenshots shared within a
batch, dense grounding loss). Uses the trained tiny model in ``models/tiny-cogagent-web`` (or ``--model``), and the
examples of ``--data`` (a JSONL in ``cogagent.train``'s format) or, without it, a few freshly generated pages
(``episodes.synthdata``, a real Chromium).

    .venv/bin/python benchmarks/bench_train.py [--model DIR] [--data train.jsonl] [--steps 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cogagent.modeling_cogagent import CogAgentForCausalLM  # noqa: E402
from cogagent.tokenizer import load_tokenizer  # noqa: E402
from cogagent.train import (DenseSupervision, SampleBuilder, SharedImages, TrainConfig, add_lora,  # noqa: E402
                            causal_lm_loss, enable_gradient_checkpointing, load_jsonl)


def train_throughput(model_dir: Path, tokenizer, examples, batch_size: int, steps: int, lora: bool,
                     grouped: bool = False, checkpointed: bool = False) -> dict:
    """``grouped``: the recipe of the shipped model -- a batch drawn from few screenshots, each encoded once
    (``--group-by-image``), plus the dense grounding loss (``--dense-weight``). ``checkpointed``:
    ``--gradient-checkpointing``. ``saved_activation_mb`` is what autograd keeps for the backward pass of one
    step (the memory that checkpointing saves)."""
    model = CogAgentForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if lora:
        model = add_lora(model, TrainConfig(tokenizer="x", model=str(model_dir), lora=True))
    if checkpointed:
        enable_gradient_checkpointing(model)
    model.train()
    builder = SampleBuilder(tokenizer, model.config)
    shared = SharedImages(model) if grouped else None
    dense = DenseSupervision(model, tokenizer, builder, TrainConfig(tokenizer="x", dense_weight=1.0),
                             torch.device("cpu")) if grouped else None
    params = [p for p in model.parameters() if p.requires_grad] + (list(dense.head.parameters()) if dense else [])
    opt = torch.optim.AdamW(params, lr=1e-4)
    pool = sorted(examples, key=lambda e: str(e.image)) if grouped else examples  # grouped: same screenshots together
    batch_examples = [pool[i % len(pool)] for i in range(batch_size)]
    for e in batch_examples:  # warm the image cache: steady-state training reads cached pixels
        builder.sample(e)
    times = []
    saved_bytes: list = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved_bytes.append(t.numel() * t.element_size())
        return t

    for step in range(steps + 1):
        t0 = time.perf_counter()
        batch = builder.batch(batch_examples)
        labels = batch.pop("labels")
        if shared is not None:
            shared.set_batch([e.image for e in batch_examples], torch.device("cpu"))
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t) if step == 0 else contextlib.nullcontext():
            loss = causal_lm_loss(model(**batch).logits, labels)
            if dense is not None:
                extra = dense.loss(batch_examples)
                loss = loss + extra if extra is not None else loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if step:  # the first step pays one-time allocation costs
            times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    return {"batch_size": batch_size, "steps": steps, "step_s_median": round(median, 4),
            "examples_per_s": round(batch_size / median, 3), "trainable_params": sum(p.numel() for p in params),
            "screenshots_per_batch": len({e.image for e in batch_examples}),
            "seq_len": int(batch["input_ids"].shape[1]), "saved_activation_mb": round(sum(saved_bytes) / 2**20, 1)}


@torch.inference_mode()
def step_latency(model_dir: Path, tokenizer, examples, repeats: int, max_new_tokens: int) -> dict:
    model = CogAgentForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    builder = SampleBuilder(tokenizer, model.config)
    prefill, generate, new_tokens = [], [], []
    for i in range(repeats + 1):
        example = examples[i % len(examples)]
        t0 = time.perf_counter()
        inputs = builder.sample(example, with_answer=False)
        t1 = time.perf_counter()
        model(**inputs, logits_to_keep=1)
        t2 = time.perf_counter()
        out = model.generate(inputs["input_ids"], inputs["token_type_ids"], attention_mask=inputs["attention_mask"],
                             images=inputs["images"], cross_images=inputs.get("cross_images"),
                             max_new_tokens=max_new_tokens)
        t3 = time.perf_counter()
        if i:
            prefill.append(t2 - t1)
            generate.append(t3 - t2 + (t1 - t0))
            new_tokens.append(out.shape[1] - inputs["input_ids"].shape[1])
    return {"repeats": repeats, "prefill_ms_median": round(1000 * statistics.median(prefill), 2),
            "agent_step_ms_median": round(1000 * statistics.median(generate), 2),
            "agent_step_ms_max": round(1000 * max(generate), 2), "new_tokens_mean": statistics.mean(new_tokens),
            "params": model.num_parameters()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "tiny-cogagent-web"))
    ap.add_argument("--tokenizer", help="default: the model directory")
    ap.add_argument("--data", help="JSONL examples (default: generate 3 pages with Chromium)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--max-new-tokens", type=int, default=80)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model_dir = Path(args.model)
    tokenizer = load_tokenizer(args.tokenizer or model_dir)
    with tempfile.TemporaryDirectory() as tmp:
        data = args.data
        if not data:
            from episodes.synthdata import generate

            generate(tmp, n=3, seed=123, val_fraction=0.0, progress=False, all_targets=True)
            data = str(Path(tmp) / "train.jsonl")
        examples, _ = load_jsonl(data, "skip")
        result = {
            "benchmark": "train", "model": str(model_dir), "threads": args.threads, "torch": torch.__version__,
            "machine": platform.machine(), "cpu_count": __import__("os").cpu_count(),
            "full_finetune": train_throughput(model_dir, tokenizer, examples, args.batch_size, args.steps, False),
            "lora": train_throughput(model_dir, tokenizer, examples, args.batch_size, args.steps, True),
            "full_grouped_dense": train_throughput(model_dir, tokenizer, examples, args.batch_size, args.steps, False,
                                                   grouped=True),
            "full_finetune_checkpointed": train_throughput(model_dir, tokenizer, examples, args.batch_size,
                                                           args.steps, False, checkpointed=True),
            "lora_checkpointed": train_throughput(model_dir, tokenizer, examples, args.batch_size, args.steps, True,
                                                  checkpointed=True),
            "agent_step": step_latency(model_dir, tokenizer, examples, args.repeats, args.max_new_tokens),
        }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
