"""Fine-tuning CogAgentForCausalLM: full or LoRA, resumable, with a held-out grounding evaluation.

Data: JSON Lines, one example per line, image paths relative to the JSONL file::

    {"image": "images/p12.png", "query": "What steps do I need to take to \\"...\\"?(with grounding)",
     "answer": "Next Action: ...\\nGrounded Operation:[button] Save -> CLICK at the box [[412,530,488,571]]",
     "history": [["<earlier query>", "<earlier answer>"], ...]}        # optional, the chat template's turns

Other keys are ignored (``episodes.synthdata`` adds a ``target`` record). Each sample is laid out exactly as the
official code does (``cogagent.prompts.build_inputs``): the loss is only on the answer tokens and the EOS that
follows them, everything else is -100. A line that is not JSON, lacks a field, names a missing image or has an
answer that ``cogagent.grammar.parse`` cannot read is reported with its line number and skipped or fatal
(``--on-bad-line skip|fail``); an image in another colour mode (RGBA, L, P, 16-bit) is converted to RGB.

Checkpoints (``OUT/checkpoint-NNNNNN``) hold the model in the official layout (config.json + model.safetensors,
LoRA adapters merged in, so ``CogAgentForCausalLM.from_pretrained`` loads it as is), the LoRA adapter weights
(``adapter_model.safetensors``) when training LoRA, the optimizer, scheduler and RNG states and
``trainer_state.json``. ``--resume`` continues from the newest one with the same data order, learning rate and
random state, as if never stopped (``--reschedule`` lets it end at another total: a run cut short or extended,
the learning-rate decay bending to the new end); Ctrl+C saves a checkpoint before exiting. ``OUT/final`` is the last model
(plus the tokenizer files), ``OUT/train_log.jsonl`` the loss curve and ``OUT/eval.json`` the held-out result:
grounding accuracy, i.e. the share of held-out examples whose predicted operation's click point (the centre of
its box, converted to pixels by ``vision.geometry``) falls inside the target box of the reference answer.

CLI::

    python -m cogagent.train --train data/train.jsonl --val data/val.jsonl --out runs/ft \\
        (--model CKPT_DIR | --init-config config.json) --tokenizer TOK_DIR \\
        [--lora --lora-r 8 --lora-alpha 16] [--epochs 1 | --max-steps N] [--batch-size 4 --grad-accum 2] \\
        [--lr 1e-4] [--dtype auto|float32|bfloat16] [--save-every 200] [--resume [CKPT]] [--threads 1]
    python -m cogagent.train --eval-only --val data/val.jsonl --model DIR --tokenizer TOK_DIR
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from PIL import Image

from vision.geometry import ground
from vision.preprocess import load_rgb, resize_square, to_normalized_tensor

from .config import CogAgentConfig
from .dense_grounding import (DenseGroundingHead, DenseTargets, Element, check_elements, dense_loss,
                              target_attention_loss, target_patch_mask)
from .grammar import ParseError, parse
from .modeling_cogagent import CogAgentForCausalLM
from .prompts import IGNORE_INDEX, build_inputs, collate, layout_from_config

logger = logging.getLogger(__name__)

BAD_LINE_POLICIES = ("skip", "fail")
DTYPES = ("auto", "float32", "bfloat16")
#: LoRA targets by default: the decoder's self-attention of both experts and the cross-attention to the
#: high-resolution image (the layers that decide *where* to look).
DEFAULT_LORA_TARGETS = ("language_expert_query_key_value", "vision_expert_query_key_value",
                        "language_expert_dense", "vision_expert_dense", "query", "key_value")
CHECKPOINT_PREFIX = "checkpoint-"
TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


class DataError(ValueError):
    """A training/eval file that cannot be used; the message names the file and line."""


class TrainError(RuntimeError):
    """Training cannot start or continue (bad options, a checkpoint that does not match)."""


# ======================================================================================================== data
@dataclass(frozen=True)
class Example:
    line: int
    image: Path
    query: str
    answer: str
    history: Tuple[Tuple[str, str], ...] = ()
    elements: Optional[Tuple[Element, ...]] = None  # every widget on the screen, for --dense-weight


@dataclass(frozen=True)
class BadLine:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


def _check_record(record: Any, base: Path) -> Tuple[Optional[Example], Optional[str]]:
    if not isinstance(record, dict):
        return None, f"expected a JSON object, got {type(record).__name__}"
    for key in ("image", "query", "answer"):
        if key not in record:
            return None, f"missing field {key!r} (each line needs image, query and answer)"
        if not isinstance(record[key], str) or not record[key].strip():
            return None, f"field {key!r} must be a non-empty string, got {record[key]!r:.60}"
    history = record.get("history") or []
    if not isinstance(history, list) or not all(
            isinstance(t, (list, tuple)) and len(t) == 2 and all(isinstance(s, str) for s in t) for t in history):
        return None, "field 'history' must be a list of [query, answer] string pairs"
    image = Path(record["image"])
    image = image if image.is_absolute() else base / image
    if not image.is_file():
        return None, f"image {record['image']!r} not found (looked at {image})"
    turn = parse(record["answer"])
    if isinstance(turn, ParseError):
        return None, f"answer does not parse in the CogAgent grammar: {turn}"
    elements = None
    if record.get("elements") is not None:
        elements, reason = check_elements(record["elements"])
        if elements is None:
            return None, reason
    return Example(0, image, record["query"], record["answer"], tuple((q, a) for q, a in history), elements), None


def load_jsonl(path: str | os.PathLike[str], on_bad_line: str = "fail") -> Tuple[List[Example], List[BadLine]]:
    """Read and check a JSONL file. ``on_bad_line="fail"`` raises :class:`DataError` at the first bad line;
    ``"skip"`` logs each bad line (``file:line: reason``) and returns them alongside the good examples."""
    if on_bad_line not in BAD_LINE_POLICIES:
        raise ValueError(f"on_bad_line must be one of {BAD_LINE_POLICIES}, got {on_bad_line!r}")
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file {path} does not exist")
    examples: List[Example] = []
    bad: List[BadLine] = []
    with open(path, encoding="utf-8") as f:
        for number, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                example, reason = None, f"not valid JSON ({exc.msg} at column {exc.colno})"
            else:
                example, reason = _check_record(record, path.parent)
            if example is None:
                problem = BadLine(str(path), number, reason or "unusable line")
                if on_bad_line == "fail":
                    raise DataError(f"{problem} (use --on-bad-line skip to leave such lines out)")
                logger.warning("skipping %s", problem)
                bad.append(problem)
                continue
            examples.append(replace(example, line=number))
    if not examples:
        raise DataError(f"{path} holds no usable example ({len(bad)} bad line(s))")
    return examples, bad


class SampleBuilder:
    """Examples -> model inputs in the official layout. Token ids are built once per example; each screenshot is
    resized once and kept as 8-bit pixels (a few hundred kB), then normalised on every use -- bit for bit what
    ``vision.preprocess.preprocess`` gives, at a fraction of the cost and memory of caching float tensors."""

    def __init__(self, tokenizer: Any, config: CogAgentConfig, cache_images: bool = True) -> None:
        self.tokenizer = tokenizer
        self.config = config
        self.layout = layout_from_config(config)
        self.cache_images = cache_images
        self._pixels: Dict[Path, Tuple[Image.Image, Optional[Image.Image], Tuple[int, int]]] = {}
        self._tokens: Dict[Tuple[Path, int, str], Dict[str, torch.Tensor]] = {}

    def resized(self, image: Path) -> Tuple[Image.Image, Optional[Image.Image], Tuple[int, int]]:
        hit = self._pixels.get(image)
        if hit is not None:
            return hit
        rgb = load_rgb(image)  # converts RGBA/L/P/16-bit screenshots to RGB (the official .convert('RGB'))
        small = resize_square(rgb, self.layout.image_size)
        large = resize_square(rgb, self.layout.cross_image_size) if self.layout.cross_image_size else None
        entry = (small, large, rgb.size)
        if self.cache_images:
            self._pixels[image] = entry
        return entry

    def image_size(self, image: Path) -> Tuple[int, int]:
        return self.resized(image)[2]

    def pixels(self, image: Path) -> Dict[str, torch.Tensor]:
        small, large, _ = self.resized(image)
        out = {"images": to_normalized_tensor(small, self.layout.image_size).unsqueeze(0)}
        if large is not None:
            out["cross_images"] = to_normalized_tensor(large, self.layout.cross_image_size).unsqueeze(0)
        return out

    def tokens(self, example: Example, with_answer: bool = True) -> Dict[str, torch.Tensor]:
        key = (example.image, example.line, example.query if with_answer else "\0" + example.query)
        hit = self._tokens.get(key)
        if hit is None:
            small = self.resized(example.image)[0]  # the ids do not depend on the pixels: any image of the size
            full = build_inputs(self.tokenizer, example.query, small, history=list(example.history),
                                config=self.config, answer=example.answer if with_answer else None)
            hit = {k: v for k, v in full.items() if k not in ("images", "cross_images")}
            self._tokens[key] = hit
        return hit

    def sample(self, example: Example, with_answer: bool = True) -> Dict[str, torch.Tensor]:
        return {**self.tokens(example, with_answer), **self.pixels(example.image)}

    def batch(self, examples: Sequence[Example]) -> Dict[str, torch.Tensor]:
        return collate([self.sample(e) for e in examples], self.pad_token_id)

    @property
    def pad_token_id(self) -> int:
        """The tokenizer's pad id, or the model config's when the tokenizer has none."""
        pad = getattr(self.tokenizer, "pad_token_id", None)
        return pad if isinstance(pad, int) else self.layout.pad_token_id


def causal_lm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross entropy over the positions whose label is not -100 (the answer + EOS)."""
    shift_logits = logits[:, :-1].reshape(-1, logits.shape[-1]).float()
    shift_labels = labels[:, 1:].reshape(-1).to(shift_logits.device)
    return F.cross_entropy(shift_logits, shift_labels, ignore_index=IGNORE_INDEX)


# ======================================================================================================== options
@dataclass
class TrainConfig:
    train: Optional[str] = None
    val: Optional[str] = None
    out: str = "runs/train"
    model: Optional[str] = None  # checkpoint to start from
    init_config: Optional[str] = None  # or: a config.json to build a randomly initialised model from
    init_seed: int = 0
    tokenizer: Optional[str] = None
    lora: bool = False
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_targets: Tuple[str, ...] = DEFAULT_LORA_TARGETS
    epochs: float = 1.0
    max_steps: Optional[int] = None  # optimizer steps; overrides epochs
    batch_size: int = 4
    grad_accum: int = 1
    lr: float = 1e-4
    min_lr_ratio: float = 0.1
    warmup_steps: int = 0
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    dtype: str = "auto"
    load_dtype: str = "auto"  # dtype of the frozen base weights under --lora (auto: bf16 where autocast is bf16)
    device: str = "cpu"
    threads: Optional[int] = 1
    seed: int = 0
    save_every: int = 0  # optimizer steps between checkpoints (0: only at the end / on Ctrl+C)
    keep_checkpoints: int = 2
    resume: Optional[str] = None  # "latest" or a checkpoint directory
    reschedule: bool = False  # on resume, accept another --max-steps/--epochs: the schedule bends to the new total
    log_every: int = 10
    on_bad_line: str = "fail"
    eval_limit: Optional[int] = None
    eval_max_new_tokens: int = 96
    eval_only: bool = False
    progress: bool = True
    cache_images: bool = True
    dense_weight: float = 0.0  # weight of the dense grounding loss (cogagent.dense_grounding); 0: off
    dense_background_weight: float = 0.1
    group_by_image: bool = False  # micro-batches of few screenshots, each encoded once (SharedImages)
    gradient_checkpointing: bool = False  # recompute layers in the backward pass (cogagent.checkpointing)
    attention_weight: float = 0.0  # weight of the target-attention loss (AttentionSupervision); 0: off
    attention_heads: int = 0  # cross-attention heads it steers per layer (0: half of them)

    def check(self) -> None:
        need = lambda cond, msg: None if cond else (_ for _ in ()).throw(TrainError(msg))  # noqa: E731
        need(self.on_bad_line in BAD_LINE_POLICIES, f"--on-bad-line must be one of {BAD_LINE_POLICIES}")
        need(self.dtype in DTYPES, f"--dtype must be one of {DTYPES}, got {self.dtype!r}")
        need(self.load_dtype in DTYPES, f"--load-dtype must be one of {DTYPES}, got {self.load_dtype!r}")
        need(self.lora or self.load_dtype != "bfloat16",
             "--load-dtype bfloat16 is for --lora (frozen base weights); full fine-tuning keeps float32 master "
             "weights and trains in bf16 through --dtype")
        need(self.tokenizer, "--tokenizer DIR is required (the model's SentencePiece tokenizer)")
        need(self.eval_only or self.train, "--train FILE is required (or --eval-only with --val)")
        need(not (self.eval_only and not self.val), "--eval-only needs --val FILE")
        need(bool(self.model) != bool(self.init_config),
             "give exactly one of --model CKPT_DIR (fine-tune a checkpoint) or --init-config config.json "
             "(train from random weights)")
        need(not (self.lora and not self.model), "--lora needs a base model (--model CKPT_DIR)")
        for name in ("batch_size", "grad_accum", "lora_r"):
            need(getattr(self, name) > 0, f"--{name.replace('_', '-')} must be positive")
        need(self.epochs > 0 or (self.max_steps or 0) > 0, "--epochs or --max-steps must be positive")
        need(self.lr > 0, "--lr must be positive")
        need(self.attention_weight >= 0 and self.attention_heads >= 0,
             "--attention-weight and --attention-heads must be >= 0")
        need(self.dense_weight >= 0 and self.dense_background_weight >= 0,
             "--dense-weight and --dense-background-weight must be >= 0")


# ======================================================================================================== model
def resolve_amp_dtype(name: str, device: torch.device) -> Optional[torch.dtype]:
    """The autocast dtype: bf16 where the device runs it natively (CUDA with bf16), else none (float32);
    ``bfloat16`` forces CPU autocast too. Master weights and optimizer state stay float32."""
    if name == "float32":
        return None
    if name == "bfloat16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return None


def resolve_load_dtype(cfg: TrainConfig, device: torch.device) -> torch.dtype:
    """The dtype the model's weights are loaded in. Full fine-tuning: float32 master weights, always. LoRA: the
    base is frozen, so it can stay in bf16 -- half the memory (36.6 GB instead of 73 GB for the real CogAgent,
    the difference between fitting one 80 GB GPU or not) -- while the adapters train in float32."""
    if not cfg.lora or cfg.load_dtype == "float32":
        return torch.float32
    if cfg.load_dtype == "bfloat16":
        return torch.bfloat16
    native_bf16 = device.type == "cuda" and resolve_amp_dtype(cfg.dtype, device) == torch.bfloat16
    return torch.bfloat16 if native_bf16 else torch.float32


def add_lora(model: CogAgentForCausalLM, cfg: TrainConfig) -> CogAgentForCausalLM:
    """Inject LoRA adapters (peft) into the matching Linear layers; freeze everything else."""
    try:
        from peft import LoraConfig, inject_adapter_in_model
    except ImportError as exc:  # pragma: no cover - peft is in the train extra
        raise TrainError("LoRA needs peft: pip install -e '.[train]'") from exc
    names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    targets = [t for t in cfg.lora_targets if t in names]
    if not targets:
        raise TrainError(f"none of the LoRA targets {list(cfg.lora_targets)} is a Linear layer of this model; "
                         f"Linear layers are named {sorted(names)}")
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets, bias="none")
    model = inject_adapter_in_model(lora, model)
    for name, param in model.named_parameters():
        param.requires_grad = "lora_" in name
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()  # adapters train in float32 over a bf16 base (peft casts inputs)
    return model


def lora_modules(model: torch.nn.Module) -> Iterator[Tuple[str, Any]]:
    from peft.tuners.lora import LoraLayer

    for name, module in model.named_modules():
        if isinstance(module, LoraLayer):
            yield name, module


def merged_state_dict(model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    """The official state dict of a model with LoRA adapters: ``W + B @ A * scale`` under the official names,
    computed without changing the training model (no merge/unmerge rounding)."""
    state = model.state_dict()
    lora = dict(lora_modules(model)) if any("lora_" in k for k in state) else {}
    out: Dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        if "lora_" in key:
            continue
        out[key.replace(".base_layer.", ".")] = tensor
    for name, module in lora.items():
        weight = module.get_base_layer().weight
        delta = sum((module.get_delta_weight(a) for a in module.active_adapters), torch.zeros_like(weight))
        out[f"{name}.weight"] = (weight.detach() + delta.detach()).to(weight.dtype)
    return out


def export_model(model: CogAgentForCausalLM, path: Path) -> None:
    """Write the official layout (config.json + safetensors) that ``from_pretrained`` loads."""
    if not any("lora_" in k for k in model.state_dict()):
        model.save_pretrained(path)
        return
    with torch.device("meta"):
        plain = CogAgentForCausalLM(model.config)
    plain.load_state_dict(merged_state_dict(model), assign=True, strict=True)
    plain.save_pretrained(path)


def adapter_state(model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    return {k: v.detach().contiguous() for k, v in model.state_dict().items() if "lora_" in k}


# ======================================================================================================== state
@dataclass
class TrainerState:
    step: int = 0  # optimizer steps done
    epoch: int = 0
    position: int = 0  # micro-batches consumed in this epoch
    examples_seen: int = 0
    total_steps: int = 0
    elapsed_s: float = 0.0
    log: List[Dict[str, float]] = field(default_factory=list)


def _epoch_order(n: int, seed: int, epoch: int, groups: Optional[Sequence[Any]] = None) -> List[int]:
    """A random permutation of the examples; with ``groups`` (one key per example, e.g. its screenshot), the
    groups come in random order with each group's examples together (and shuffled), so a micro-batch spans few
    screenshots and :class:`SharedImages` encodes each of them once."""
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    if groups is None:
        return torch.randperm(n, generator=g).tolist()
    members: Dict[Any, List[int]] = {}
    for index, key in enumerate(groups):
        members.setdefault(key, []).append(index)
    keys = list(members)
    order: List[int] = []
    for k in torch.randperm(len(keys), generator=g).tolist():
        inside = members[keys[k]]
        order += [inside[i] for i in torch.randperm(len(inside), generator=g).tolist()]
    return order


def batches_from(state: TrainerState, n: int, batch_size: int, seed: int,
                 groups: Optional[Sequence[Any]] = None) -> Iterator[List[int]]:
    """Micro-batches of example indices, epoch after epoch, starting where ``state`` says; each epoch's order
    comes from (seed, epoch) alone, so a resumed run sees exactly the batches the uninterrupted run would."""
    per_epoch = math.ceil(n / batch_size)
    while True:
        order = _epoch_order(n, seed, state.epoch, groups)
        while state.position < per_epoch:
            index = state.position
            state.position += 1
            yield order[index * batch_size:(index + 1) * batch_size]
        state.epoch += 1
        state.position = 0


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, total: int):
    """Linear warm-up, then cosine decay to ``min_lr_ratio`` of the peak."""
    def factor(step: int) -> float:
        if cfg.warmup_steps and step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        progress = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def find_latest_checkpoint(out: Path) -> Optional[Path]:
    found = sorted(p for p in out.glob(CHECKPOINT_PREFIX + "*") if (p / "trainer_state.json").is_file())
    return found[-1] if found else None


def save_checkpoint(out: Path, model: CogAgentForCausalLM, optimizer, scheduler, state: TrainerState,
                    cfg: TrainConfig, dense: Optional["DenseSupervision"] = None) -> Path:
    """Write ``OUT/checkpoint-NNNNNN`` atomically (a temporary directory renamed at the end), then drop the
    oldest beyond ``keep_checkpoints``."""
    from safetensors.torch import save_file

    final = out / f"{CHECKPOINT_PREFIX}{state.step:06d}"
    tmp = out / f".tmp-{final.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    export_model(model, tmp)
    if cfg.lora:
        save_file(adapter_state(model), str(tmp / "adapter_model.safetensors"))
        (tmp / "adapter_config.json").write_text(json.dumps(
            {"peft_type": "LORA", "r": cfg.lora_r, "lora_alpha": cfg.lora_alpha, "lora_dropout": cfg.lora_dropout,
             "target_modules": list(cfg.lora_targets), "base_model": cfg.model}, indent=1), encoding="utf-8")
    torch.save({"optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "torch_rng": torch.get_rng_state(), "python_rng": random.getstate(),
                "dense_head": dense.head.state_dict() if dense else None}, tmp / "training_state.pt")
    (tmp / "trainer_state.json").write_text(json.dumps(
        {"state": asdict(state), "config": asdict(cfg)}, indent=1, default=str), encoding="utf-8")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    if cfg.keep_checkpoints > 0:
        older = sorted(p for p in out.glob(CHECKPOINT_PREFIX + "*") if p != final)
        for stale in older[:max(0, len(older) - (cfg.keep_checkpoints - 1))]:
            shutil.rmtree(stale, ignore_errors=True)
    return final


# ======================================================================================================== evaluation
def _click_point(text: str, size: Tuple[int, int]) -> Tuple[Optional[Tuple[int, int]], Optional[str]]:
    turn = parse(text)
    if isinstance(turn, ParseError) or turn.operation is None:
        return None, None
    op = turn.operation
    coords = op.box or op.point
    if coords is None:
        return None, op.verb
    g = ground(coords, size)
    return (g.point.x, g.point.y), op.verb


def _target_box(answer: str, size: Tuple[int, int]) -> Tuple[Optional[Tuple[int, int, int, int]], Optional[str]]:
    turn = parse(answer)
    if isinstance(turn, ParseError) or turn.operation is None or turn.operation.box is None:
        return None, None
    b = ground(turn.operation.box, size).box
    return (b.x1, b.y1, b.x2, b.y2), turn.operation.verb


@torch.no_grad()
def evaluate_grounding(model: CogAgentForCausalLM, builder: SampleBuilder, examples: Sequence[Example],
                       max_new_tokens: int = 96, limit: Optional[int] = None,
                       on_item: Optional[Callable[[int, int], None]] = None) -> Dict[str, Any]:
    """Greedy-decode each held-out example; score the click point against the reference answer's box.

    ``accuracy`` = clicks inside the target box / examples with a target box. ``verb_accuracy`` also needs the
    operation verb (CLICK/TYPE/SELECT) to match; ``parse_rate`` is the share of outputs the grammar read."""
    was_training = model.training
    model.eval()
    items = [e for e in examples if _target_box(e.answer, builder.image_size(e.image))[0] is not None]
    items = items[:limit] if limit else items
    inside = verb_ok = parsed = 0
    samples = []
    device = model.device
    for index, example in enumerate(items):
        size = builder.image_size(example.image)
        box, verb = _target_box(example.answer, size)
        inputs = builder.sample(example, with_answer=False)
        ids = model.generate(inputs["input_ids"].to(device), inputs["token_type_ids"].to(device),
                             attention_mask=inputs["attention_mask"].to(device),
                             images=inputs["images"].to(device, model.dtype),
                             cross_images=inputs["cross_images"].to(device, model.dtype)
                             if "cross_images" in inputs else None,
                             max_new_tokens=max_new_tokens)
        text = builder.tokenizer.decode(ids[0, inputs["input_ids"].shape[1]:].tolist(), skip_special_tokens=True)
        point, pred_verb = _click_point(text.strip(), size)
        parsed += point is not None
        hit = point is not None and box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]
        inside += hit
        verb_ok += hit and pred_verb == verb
        if len(samples) < 5:
            samples.append({"line": example.line, "output": text.strip(), "target": list(box), "hit": hit})
        if on_item:
            on_item(index + 1, len(items))
    if was_training:
        model.train()
    n = len(items)
    return {"examples": n, "accuracy": round(inside / n, 4) if n else 0.0,
            "verb_accuracy": round(verb_ok / n, 4) if n else 0.0, "parse_rate": round(parsed / n, 4) if n else 0.0,
            "inside": inside, "samples": samples}


# ======================================================================================================== training
def _load_tokenizer(path: str) -> Any:
    from .tokenizer import load_tokenizer

    return load_tokenizer(path)


def _progress(enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]}"), TextColumn("lr {task.fields[lr]}"), TimeElapsedColumn(),
                    TimeRemainingColumn(), disable=not enabled, transient=False)


def enable_gradient_checkpointing(model: torch.nn.Module) -> None:
    """On the CogAgent itself, also when it sits inside a LoRA wrapper."""
    next(m for m in model.modules() if isinstance(m, CogAgentForCausalLM)).gradient_checkpointing_enable()


def build_model(cfg: TrainConfig, resume_dir: Optional[Path], device: torch.device) -> CogAgentForCausalLM:
    if resume_dir is not None and not cfg.lora:
        return CogAgentForCausalLM.from_pretrained(resume_dir, dtype=torch.float32, device=device)
    if cfg.model:
        return CogAgentForCausalLM.from_pretrained(cfg.model, dtype=resolve_load_dtype(cfg, device), device=device)
    config = CogAgentConfig.from_json_file(cfg.init_config)
    torch.manual_seed(cfg.init_seed)
    return CogAgentForCausalLM(config).to(device)


class SharedImages:
    """Encodes each distinct screenshot of a micro-batch once. Examples of one page share a screenshot, and the
    high-resolution encoder is most of a tiny model's step (about 65 % at 448 px); hooks on both encoders run
    them on the distinct images and index the result back to one row per example, so gradients still flow from
    every example (indexing sums them). Training only; the model's code is untouched."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.first: Optional[torch.Tensor] = None
        self.inverse: Optional[torch.Tensor] = None
        for name, module in model.named_modules():
            if name.endswith("model.vision") or name.endswith("cross_vision"):
                module.register_forward_pre_hook(self._unique)
                module.register_forward_hook(self._expand)

    def set_batch(self, images: Sequence[Path], device: torch.device) -> None:
        seen: Dict[Path, int] = {}
        first, inverse = [], []
        for row, image in enumerate(images):
            if image not in seen:
                seen[image] = len(first)
                first.append(row)
            inverse.append(seen[image])
        self.first = torch.tensor(first, device=device)
        self.inverse = torch.tensor(inverse, device=device)

    def _unique(self, _module, args):
        # training passes only: the held-out evaluation (no grad) encodes its own images, one row each
        if self.first is None or not torch.is_grad_enabled() or args[0].shape[0] != self.inverse.shape[0]:
            return None
        return (args[0].index_select(0, self.first.to(args[0].device)),) + tuple(args[1:])

    def _expand(self, _module, _args, output):
        if self.first is None or not torch.is_grad_enabled() or output.shape[0] != self.first.shape[0]:
            return None
        return output.index_select(0, self.inverse.to(output.device))


class DenseSupervision:
    """The dense grounding loss wired to a model: a hook keeps the cross encoder's output of the current forward
    pass, and :meth:`loss` scores it against each example's ``elements`` (see ``cogagent.dense_grounding``)."""

    def __init__(self, model: torch.nn.Module, tokenizer: Any, builder: SampleBuilder, cfg: TrainConfig,
                 device: torch.device) -> None:
        encoders = [m for name, m in model.named_modules() if name.endswith("cross_vision")]
        if not encoders:
            raise TrainError("--dense-weight needs a CogAgent with a high-resolution (cross) encoder; this model "
                             "has none (CogVLM)")
        config = builder.config
        self.builder = builder
        self.cfg = cfg
        self.features: Optional[torch.Tensor] = None
        encoders[0].register_forward_hook(
            lambda _m, _i, out: setattr(self, "features", out) if torch.is_grad_enabled() else None)
        self.embeddings = next(m for name, m in model.named_modules() if name.endswith("embed_tokens")).weight
        self.head = DenseGroundingHead(config.cross_hidden_size, config.hidden_size).to(device)
        self.tokenizer = tokenizer
        self.background_id = builder.pad_token_id
        self.targets: Optional[DenseTargets] = None
        self._cache: Dict[Path, Tuple[torch.Tensor, torch.Tensor]] = {}

    def _targets(self, example: Example, grid: int) -> Tuple[torch.Tensor, torch.Tensor]:
        hit = self._cache.get(example.image)
        if hit is None:
            if self.targets is None:
                self.targets = DenseTargets(self.tokenizer, grid, self.embeddings.shape[0], self.background_id)
            hit = self.targets.build(example.elements or (), self.builder.image_size(example.image))
            # soft targets are mostly zeros; keep them sparse in the cache (many screenshots, 1024 x V each)
            hit = (hit[0].to_sparse(), hit[1])
            self._cache[example.image] = hit
        return hit[0].to_dense(), hit[1]

    def loss(self, examples: Sequence[Example]) -> Optional[torch.Tensor]:
        """The dense loss of the forward pass just run, over the examples that carry ``elements``."""
        features, self.features = self.features, None
        seen: set = set()
        rows = []
        for i, e in enumerate(examples):  # one row per screenshot: its elements and features are the same
            if e.elements is not None and e.image not in seen:
                seen.add(e.image)
                rows.append(i)
        if features is None or not rows:
            return None
        grid = int(round(math.sqrt(features.shape[1])))
        pairs = [self._targets(examples[i], grid) for i in rows]
        targets = torch.stack([t for t, _ in pairs])
        is_element = torch.stack([m for _, m in pairs])
        logits = self.head(features[rows], self.embeddings)
        return dense_loss(logits, targets, is_element, self.cfg.dense_background_weight)


class AttentionSupervision:
    """Where the answer is written, the first ``--attention-heads`` heads of every cross-attention layer are told
    to look at the target's patches (``cogagent.dense_grounding.target_attention_loss``). Hooks keep each layer's
    queries and keys of the current forward pass; the target box is read from the answer itself."""

    def __init__(self, model: torch.nn.Module, builder: SampleBuilder, cfg: TrainConfig) -> None:
        layers = [m for name, m in model.named_modules() if name.endswith("cross_attn")]
        if not layers:
            raise TrainError("--attention-weight needs a CogAgent with cross-attention; this model has none (CogVLM)")
        self.builder = builder
        self.heads = cfg.attention_heads or max(1, layers[0].num_heads // 2)
        if self.heads > layers[0].num_heads:
            raise TrainError(f"--attention-heads {self.heads} exceeds the model's {layers[0].num_heads} heads")
        self.captured: List[Tuple[torch.Tensor, torch.Tensor]] = []
        for layer in layers:
            layer.register_forward_hook(self._capture)
        # Each forward starts afresh: checkpointed layers run these hooks again while they are recomputed in the
        # backward pass, and what they capture then must not reach the next step's loss.
        model.register_forward_pre_hook(lambda *_: self.captured.clear())
        self._masks: Dict[Tuple[Path, str], torch.Tensor] = {}

    def _capture(self, module, args, _output) -> None:
        if not torch.is_grad_enabled():
            return  # evaluation and generation: nothing to steer, and nothing to keep alive
        hidden, keys = args[0], args[1][0]
        B, L, _ = hidden.shape
        self.captured.append((module.query(hidden).view(B, L, module.num_heads, module.cross_head_dim), keys))

    def _mask(self, example: Example, grid: int) -> torch.Tensor:
        key = (example.image, example.answer)
        hit = self._masks.get(key)
        if hit is None:
            box, _ = _target_box(example.answer, self.builder.image_size(example.image))
            hit = target_patch_mask(box, self.builder.image_size(example.image), grid) if box else \
                torch.zeros(grid * grid, dtype=torch.bool)
            self._masks[key] = hit
        return hit

    def loss(self, examples: Sequence[Example], labels: torch.Tensor) -> Optional[torch.Tensor]:
        captured, self.captured = self.captured, []
        if not captured:
            return None
        grid = int(round(math.sqrt(captured[0][1].shape[1])))
        targets = torch.stack([self._mask(e, grid) for e in examples]).to(captured[0][1].device)
        positions = torch.zeros_like(labels, dtype=torch.bool)
        positions[:, :-1] = labels[:, 1:] != IGNORE_INDEX  # the hidden state at t writes answer token t+1
        losses = [target_attention_loss(q, k, positions.to(q.device), targets.to(q.device), self.heads)
                  for q, k in captured]
        return torch.stack([x.to(losses[0].device) for x in losses]).mean()


def train(cfg: TrainConfig, on_step: Optional[Callable[[TrainerState, float], None]] = None) -> Dict[str, Any]:
    """Run training (and the held-out evaluation) as ``cfg`` says; returns a summary dict.

    ``on_step(state, loss)`` is called after every optimizer step (a KeyboardInterrupt raised there is handled
    like Ctrl+C: a checkpoint is saved and the run stops, to be continued with ``resume``)."""
    cfg.check()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device(cfg.device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _load_tokenizer(cfg.tokenizer)

    if cfg.eval_only:
        model = build_model(cfg, None, device)
        builder = SampleBuilder(tokenizer, model.config, cfg.cache_images)
        val, bad = load_jsonl(cfg.val, cfg.on_bad_line)
        result = evaluate_grounding(model, builder, val, cfg.eval_max_new_tokens, cfg.eval_limit)
        result["bad_lines"] = [str(b) for b in bad]
        (out / "eval.json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        return {"eval": result}

    resume_dir: Optional[Path] = None
    if cfg.resume:
        resume_dir = find_latest_checkpoint(out) if cfg.resume == "latest" else Path(cfg.resume)
        if resume_dir is None:
            raise TrainError(f"--resume: no checkpoint in {out} (looked for {CHECKPOINT_PREFIX}*/trainer_state.json)")
        if not (resume_dir / "trainer_state.json").is_file():
            raise TrainError(f"--resume: {resume_dir} is not a checkpoint (no trainer_state.json)")

    examples, bad = load_jsonl(cfg.train, cfg.on_bad_line)
    model = build_model(cfg, resume_dir, device)
    if cfg.lora:
        torch.manual_seed(cfg.seed)  # the adapters' initial values depend on the seed alone
        model = add_lora(model, cfg)
        if resume_dir is not None:
            from safetensors.torch import load_file

            missing = model.load_state_dict(load_file(str(resume_dir / "adapter_model.safetensors")), strict=False)
            if missing.unexpected_keys:
                raise TrainError(f"{resume_dir}: adapter keys that this model lacks: {missing.unexpected_keys[:5]}")
    model.train()
    if cfg.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    builder = SampleBuilder(tokenizer, model.config, cfg.cache_images)
    shared = SharedImages(model) if cfg.group_by_image else None  # its hooks first: the dense hook sees every row
    dense = DenseSupervision(model, tokenizer, builder, cfg, device) if cfg.dense_weight > 0 else None
    attend = AttentionSupervision(model, builder, cfg) if cfg.attention_weight > 0 else None
    params = [p for p in model.parameters() if p.requires_grad] + (list(dense.head.parameters()) if dense else [])
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))
    per_epoch = math.ceil(math.ceil(len(examples) / cfg.batch_size) / cfg.grad_accum)
    total = cfg.max_steps or max(1, int(round(cfg.epochs * per_epoch)))
    scheduler = make_scheduler(optimizer, cfg, total)
    state = TrainerState(total_steps=total)
    if resume_dir is not None:
        saved = json.loads((resume_dir / "trainer_state.json").read_text(encoding="utf-8"))
        state = TrainerState(**saved["state"])
        if state.total_steps != total and not cfg.reschedule:
            raise TrainError(f"--resume: the checkpoint was made for {state.total_steps} steps, these options give "
                             f"{total}; use the same data, --epochs/--max-steps, --batch-size and --grad-accum, or "
                             f"add --reschedule to run to {total} steps from here")
        if total <= state.step:
            raise TrainError(f"--resume: the checkpoint is at step {state.step}, already at or past the {total} "
                             f"steps these options give; ask for more steps")
        state.total_steps = total  # the cosine decay now ends at the new total (the factor is read every step)
        blob = torch.load(resume_dir / "training_state.pt", weights_only=False)
        optimizer.load_state_dict(blob["optimizer"])
        scheduler.load_state_dict(blob["scheduler"])
        torch.set_rng_state(blob["torch_rng"])
        random.setstate(blob["python_rng"])
        if dense is not None and blob.get("dense_head"):
            dense.head.load_state_dict(blob["dense_head"])
    else:
        torch.manual_seed(cfg.seed)
        random.seed(cfg.seed)
    amp = resolve_amp_dtype(cfg.dtype, device)
    log_file = out / "train_log.jsonl"
    batches = batches_from(state, len(examples), cfg.batch_size, cfg.seed,
                           [e.image for e in examples] if cfg.group_by_image else None)
    started = time.perf_counter() - state.elapsed_s
    interrupted = False
    window: List[float] = []
    dense_window: List[float] = []
    attention_window: List[float] = []
    last_checkpoint: Optional[Path] = None

    with _progress(cfg.progress) as progress:
        bar = progress.add_task("train", total=total, completed=state.step, loss="-", lr="-")
        try:
            while state.step < total:
                step_loss = step_dense = step_attention = 0.0
                for _ in range(cfg.grad_accum):
                    indices = next(batches)
                    chosen = [examples[i] for i in indices]
                    batch = builder.batch(chosen)
                    batch = {k: v.to(device) for k, v in batch.items()}
                    labels = batch.pop("labels")
                    if shared is not None:
                        shared.set_batch([e.image for e in chosen], device)
                    with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                        logits = model(**batch).logits
                    loss = causal_lm_loss(logits, labels)
                    total_loss = loss
                    if dense is not None:
                        extra = dense.loss(chosen)
                        if extra is not None:
                            total_loss = total_loss + cfg.dense_weight * extra
                            step_dense += extra.item() / cfg.grad_accum
                    if attend is not None:
                        extra = attend.loss(chosen, labels)
                        if extra is not None:
                            total_loss = total_loss + cfg.attention_weight * extra
                            step_attention += extra.item() / cfg.grad_accum
                    (total_loss / cfg.grad_accum).backward()
                    step_loss += loss.item() / cfg.grad_accum
                    state.examples_seen += len(indices)
                if cfg.max_grad_norm:
                    torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                state.step += 1
                window.append(step_loss)
                dense_window.append(step_dense)
                attention_window.append(step_attention)
                lr = scheduler.get_last_lr()[0]
                progress.update(bar, advance=1, loss=f"{step_loss:.4f}", lr=f"{lr:.2e}")
                if state.step % cfg.log_every == 0 or state.step == total:
                    entry = {"step": state.step, "loss": round(sum(window) / len(window), 5), "lr": lr,
                             "examples": state.examples_seen, "elapsed_s": round(time.perf_counter() - started, 1)}
                    if dense is not None:
                        entry["dense_loss"] = round(sum(dense_window) / len(dense_window), 5)
                    if attend is not None:
                        entry["attention_loss"] = round(sum(attention_window) / len(attention_window), 5)
                    state.log.append(entry)
                    with open(log_file, "a", encoding="utf-8") as f:
                        f.write(json.dumps(entry) + "\n")
                    window.clear()
                    dense_window.clear()
                    attention_window.clear()
                state.elapsed_s = time.perf_counter() - started
                if on_step:
                    on_step(state, step_loss)
                if cfg.save_every and state.step % cfg.save_every == 0 and state.step < total:
                    last_checkpoint = save_checkpoint(out, model, optimizer, scheduler, state, cfg, dense)
        except KeyboardInterrupt:
            interrupted = True
    state.elapsed_s = time.perf_counter() - started
    last_checkpoint = save_checkpoint(out, model, optimizer, scheduler, state, cfg, dense)
    summary: Dict[str, Any] = {"steps": state.step, "total_steps": total, "examples_seen": state.examples_seen,
                               "seconds": round(state.elapsed_s, 1), "checkpoint": str(last_checkpoint),
                               "bad_lines": [str(b) for b in bad], "interrupted": interrupted,
                               "final_loss": state.log[-1]["loss"] if state.log else None}
    if interrupted:
        print(f"interrupted at step {state.step}/{total}; checkpoint saved to {last_checkpoint}. "
              f"Continue with the same command plus --resume.", file=sys.stderr)
        return summary
    final = out / "final"
    export_model(model, final)
    for name in TOKENIZER_FILES:
        src = Path(cfg.tokenizer) / name
        if src.is_file():
            shutil.copy2(src, final / name)
    summary["final"] = str(final)
    if cfg.val:
        val, val_bad = load_jsonl(cfg.val, cfg.on_bad_line)
        with _progress(cfg.progress) as progress:
            bar = progress.add_task("held-out eval", total=min(len(val), cfg.eval_limit or len(val)), loss="-",
                                    lr="-")
            result = evaluate_grounding(model, SampleBuilder(tokenizer, model.config, cfg.cache_images), val,
                                        cfg.eval_max_new_tokens, cfg.eval_limit,
                                        on_item=lambda i, n: progress.update(bar, completed=i))
        result["bad_lines"] = [str(b) for b in val_bad]
        (out / "eval.json").write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        summary["eval"] = result
    return summary


# ======================================================================================================== CLI
def parse_args(argv: Optional[Sequence[str]] = None) -> TrainConfig:
    d = TrainConfig()
    ap = argparse.ArgumentParser(prog="python -m cogagent.train",
                                 description="Fine-tune CogAgent (full or LoRA) on a JSONL grounding dataset.",
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--train", help="training JSONL ({image, query, answer[, history]} per line)")
    ap.add_argument("--val", help="held-out JSONL, evaluated at the end (grounding accuracy)")
    ap.add_argument("--out", default=d.out, help="output directory (checkpoints, final/, train_log.jsonl, eval.json)")
    ap.add_argument("--model", help="checkpoint directory to fine-tune (official layout)")
    ap.add_argument("--init-config", help="config.json of a model to train from random weights")
    ap.add_argument("--init-seed", type=int, default=d.init_seed)
    ap.add_argument("--tokenizer", help="tokenizer directory (tokenizer.model ...)")
    ap.add_argument("--lora", action="store_true", help="train LoRA adapters (peft) instead of all weights")
    ap.add_argument("--lora-r", type=int, default=d.lora_r)
    ap.add_argument("--lora-alpha", type=int, default=d.lora_alpha)
    ap.add_argument("--lora-dropout", type=float, default=d.lora_dropout)
    ap.add_argument("--lora-targets", default=",".join(d.lora_targets), help="comma-separated Linear layer names")
    ap.add_argument("--epochs", type=float, default=d.epochs)
    ap.add_argument("--max-steps", type=int, help="optimizer steps (overrides --epochs)")
    ap.add_argument("--batch-size", type=int, default=d.batch_size, help="examples per micro-batch")
    ap.add_argument("--grad-accum", type=int, default=d.grad_accum, help="micro-batches per optimizer step")
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--min-lr-ratio", type=float, default=d.min_lr_ratio)
    ap.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    ap.add_argument("--weight-decay", type=float, default=d.weight_decay)
    ap.add_argument("--max-grad-norm", type=float, default=d.max_grad_norm)
    ap.add_argument("--load-dtype", choices=DTYPES, default=d.load_dtype,
                    help="dtype of the frozen base weights with --lora (auto: bfloat16 on a CUDA GPU with bf16, "
                         "else float32); adapters always train in float32")
    ap.add_argument("--dtype", choices=DTYPES, default=d.dtype,
                    help="auto: bf16 autocast on a GPU that has it, float32 otherwise")
    ap.add_argument("--device", default=d.device)
    ap.add_argument("--threads", type=int, default=d.threads, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--save-every", type=int, default=d.save_every, help="optimizer steps between checkpoints")
    ap.add_argument("--keep-checkpoints", type=int, default=d.keep_checkpoints)
    ap.add_argument("--resume", nargs="?", const="latest", help="continue from the newest checkpoint in --out "
                                                               "(or the given checkpoint directory)")
    ap.add_argument("--reschedule", action="store_true",
                    help="with --resume: run to a different --max-steps/--epochs than the checkpoint was made for; "
                         "the learning-rate decay continues from the current step toward the new end")
    ap.add_argument("--log-every", type=int, default=d.log_every)
    ap.add_argument("--on-bad-line", choices=BAD_LINE_POLICIES, default=d.on_bad_line)
    ap.add_argument("--eval-limit", type=int, help="evaluate only the first N held-out examples")
    ap.add_argument("--eval-max-new-tokens", type=int, default=d.eval_max_new_tokens)
    ap.add_argument("--eval-only", action="store_true", help="only run the held-out evaluation of --model")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--no-image-cache", action="store_true", help="re-read screenshots every time (less memory)")
    ap.add_argument("--dense-weight", type=float, default=d.dense_weight,
                    help="weight of the dense grounding loss on lines that carry 'elements' (0: off); see "
                         "cogagent.dense_grounding")
    ap.add_argument("--dense-background-weight", type=float, default=d.dense_background_weight,
                    help="weight of patches that show no widget in the dense loss")
    ap.add_argument("--attention-weight", type=float, default=d.attention_weight,
                    help="weight of the loss that steers cross-attention to the target's patches while the answer "
                         "is written (0: off); see cogagent.dense_grounding.target_attention_loss")
    ap.add_argument("--attention-heads", type=int, default=d.attention_heads,
                    help="cross-attention heads per layer it steers (0: half of them)")
    ap.add_argument("--group-by-image", action="store_true",
                    help="batch examples of the same screenshot together and encode each screenshot once")
    ap.add_argument("--gradient-checkpointing", action="store_true",
                    help="recompute each layer in the backward pass instead of keeping its activations: far less "
                         "memory (what the real model needs on one GPU) for about a third more compute")
    a = ap.parse_args(argv)
    return TrainConfig(
        train=a.train, val=a.val, out=a.out, model=a.model, init_config=a.init_config, init_seed=a.init_seed,
        tokenizer=a.tokenizer, lora=a.lora, lora_r=a.lora_r, lora_alpha=a.lora_alpha, lora_dropout=a.lora_dropout,
        lora_targets=tuple(t.strip() for t in a.lora_targets.split(",") if t.strip()), epochs=a.epochs,
        max_steps=a.max_steps, batch_size=a.batch_size, grad_accum=a.grad_accum, lr=a.lr,
        min_lr_ratio=a.min_lr_ratio, warmup_steps=a.warmup_steps, weight_decay=a.weight_decay,
        max_grad_norm=a.max_grad_norm, dtype=a.dtype, load_dtype=a.load_dtype, device=a.device,
        threads=a.threads or None, seed=a.seed,
        save_every=a.save_every, keep_checkpoints=a.keep_checkpoints, resume=a.resume, reschedule=a.reschedule, log_every=a.log_every,
        on_bad_line=a.on_bad_line, eval_limit=a.eval_limit, eval_max_new_tokens=a.eval_max_new_tokens,
        eval_only=a.eval_only, progress=not a.no_progress, cache_images=not a.no_image_cache,
        dense_weight=a.dense_weight, dense_background_weight=a.dense_background_weight,
        group_by_image=a.group_by_image, gradient_checkpointing=a.gradient_checkpointing,
        attention_weight=a.attention_weight, attention_heads=a.attention_heads)


def main(argv: Optional[Sequence[str]] = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    try:
        cfg = parse_args(argv)
        summary = train(cfg)
    except (DataError, TrainError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, ensure_ascii=False, default=str))
    return 0 if not summary.get("interrupted") else 130


if __name__ == "__main__":
    raise SystemExit(main())
