"""Benchmark: save / load / prefill / greedy decode of a random-weight CogAgent, printed as JSON.

Default model: a "small" config that keeps the real sequence shapes of cogagent-chat-hf (224 px low-res image ->
256 patches + BOI + EOI = 258 image tokens; 1120 px high-res image -> 6,400 cross tokens; patch 14) with narrow
widths and few layers, so the whole run fits in a few minutes on 2 CPU cores. ``--config`` takes any CogAgent
config.json instead (e.g. the real one, on a machine that can hold it).

Every figure that involves memory is taken in a fresh child process, because peak RSS (``VmHWM``) is a
high-water mark for the whole process: the parent, which builds and saves the random model, would pollute it.
In each child the high-water mark is reset (``/proc/self/clear_refs`` = 5) after the imports, so "above
baseline" means "caused by the measured step".

    python benchmarks/bench_model.py                       # small model, float32, CPU
    python benchmarks/bench_model.py --dtype bfloat16 --max-new-tokens 16 --out runs/bench.json
    python benchmarks/bench_model.py --memory-check-gb 1.0  # >= 1 GB checkpoint: peak load RSS / checkpoint bytes
"""

from __future__ import annotations

import argparse
import copy
import gc
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Narrow widths, real sequence shapes. cross_hidden_size == cross encoder width and cross_compute_hidden_size ==
# cross_hidden_size are required by the architecture (see shared/golden/README.md, "Patches").
SMALL_CONFIG: dict[str, Any] = {
    "architectures": ["CogAgentForCausalLM"],
    "vocab_size": 32000,
    "hidden_size": 256,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "intermediate_size": 688,
    "cross_hidden_size": 64,
    "cross_compute_hidden_size": 64,
    "cross_image_size": 1120,
    "max_position_embeddings": 2048,
    "rms_norm_eps": 1e-05,
    "hidden_act": "silu",
    "initializer_range": 0.02,
    "template_version": "chat",
    "pad_token_id": 0,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "tie_word_embeddings": False,
    "use_cache": True,
    "vision_config": {
        "dropout_prob": 0.0,
        "hidden_act": "gelu",
        "hidden_size": 128,
        "image_size": 224,
        "in_channels": 3,
        "intermediate_size": 512,
        "layer_norm_eps": 1e-06,
        "num_heads": 2,
        "num_hidden_layers": 2,
        "num_positions": 257,
        "patch_size": 14,
    },
    "_patched_eva2_clip_l_sizes": {
        "embed_dim": 32,
        "layers": 3,
        "width": 64,
        "head_width": 32,
        "mlp_ratio": 2.6667,
        "patch_size": 14,
        "pt_hw_seq_len": 16,
    },
}


def memory_check_config(target_bytes: int, bytes_per_param: int) -> dict[str, Any]:
    """A config whose checkpoint holds at least ``target_bytes``: grow the decoder depth of a mid-width model.

    Small image sizes keep the random init and save quick; the tensor mix (many matrices of a few MB, two
    embedding-sized ones) resembles the real checkpoint's, which matters for the transient memory of loading.
    """
    cfg = copy.deepcopy(SMALL_CONFIG)
    cfg.update(hidden_size=1024, num_attention_heads=8, intermediate_size=2816, cross_image_size=224)
    cfg["vision_config"].update(hidden_size=256, intermediate_size=1024, image_size=112, num_positions=65)
    h, i = cfg["hidden_size"], cfg["intermediate_size"]
    # per decoder layer: 2 experts x (qkv 3h^2 + dense h^2 + mlp 3hi) + cross attn (q, kv, dense) + norms
    per_layer = 2 * (4 * h * h + 3 * h * i) + 2 * 64 * h + 2 * 64 * 64
    fixed = 2 * cfg["vocab_size"] * h + 4 * 2**20  # embed + lm_head + encoders (rough)
    layers = max(1, -(-(target_bytes // bytes_per_param - fixed) // per_layer))
    cfg["num_hidden_layers"] = int(layers)
    return cfg


# ---------------------------------------------------------------------------------------------- measuring


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0). Without it the baseline is the earlier high-water mark."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _checkpoint_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.suffix in (".safetensors", ".bin"))


def _baseline() -> tuple[int, bool]:
    gc.collect()
    reset = _reset_peak()
    base = _status_bytes("VmRSS") if reset else _status_bytes("VmHWM")
    return base, reset


def _warm_up(dtype: str | None, device: str) -> int:
    """Pay the process's one-time costs before the baseline and return their RSS (reported separately).

    They do not scale with the checkpoint: importing safetensors, the first matmul (maps the BLAS/oneDNN kernels
    and thread pools) and the first compute op on a meta tensor (torch runs those through its Python reference
    kernels, tens of MB on first use; the model itself no longer computes anything on meta, its RoPE tables are
    created empty there, but the warm-up keeps the baseline comparable with earlier runs).
    """
    import safetensors.torch  # noqa: F401
    import torch

    before = _status_bytes("VmRSS")
    a = torch.ones(64, 64, dtype=getattr(torch, dtype or "float32"), device=device)
    (a @ a).sum().item()
    torch.nn.functional.layer_norm(a, (64,)).sum().item()
    m = torch.ones(8, device="meta")
    _ = (10000.0 ** (torch.arange(0, 8, 2, device="meta").float() / 8)) * m[:4]
    return _status_bytes("VmRSS") - before


def child_load(path: Path, dtype: str | None, device: str) -> dict[str, Any]:
    """Measured in its own process: from_pretrained only."""
    import torch

    from cogagent.modeling_cogagent import CogAgentForCausalLM

    warm = _warm_up(dtype, device)
    base, reset = _baseline()
    t0 = time.perf_counter()
    model = CogAgentForCausalLM.from_pretrained(path, dtype=dtype, device=device)
    load_s = time.perf_counter() - t0
    peak = _status_bytes("VmHWM")
    after = _status_bytes("VmRSS")
    ckpt = _checkpoint_bytes(path)
    model_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    del model
    return {
        "checkpoint_bytes": ckpt,
        "model_bytes_loaded": model_bytes,
        "load_seconds": round(load_s, 4),
        "load_baseline_rss_bytes": base,
        "load_peak_rss_bytes": peak,
        "load_peak_rss_above_baseline_bytes": peak - base,
        "load_peak_rss_ratio_to_checkpoint": round((peak - base) / ckpt, 4),
        "load_rss_after_bytes": after - base,
        "hwm_reset": reset,
        "one_time_warm_up_rss_bytes": warm,
        "torch_threads": torch.get_num_threads(),
    }


def build_inputs(config: Any, text_len: int, seed: int = 0) -> dict[str, Any]:
    """The official single-image layout: [bos] + [pad]*N_vis + text ids, token types [0]+[1]*N_vis+[0]*text."""
    import torch

    g = torch.Generator().manual_seed(seed)
    n_vis = config.num_vision_tokens
    text = torch.randint(3, config.vocab_size, (text_len,), generator=g)
    input_ids = torch.cat([torch.tensor([config.bos_token_id]), torch.full((n_vis,), config.pad_token_id), text])
    token_type_ids = torch.cat([torch.zeros(1), torch.ones(n_vis), torch.zeros(text_len)]).long()
    image = config.vision_config.image_size
    return {
        "input_ids": input_ids[None],
        "token_type_ids": token_type_ids[None],
        "attention_mask": torch.ones(1, input_ids.numel(), dtype=torch.long),
        "images": torch.randn(1, 3, image, image, generator=g),
        "cross_images": torch.randn(1, 3, config.cross_image_size, config.cross_image_size, generator=g),
    }


class _Stamps:
    """A generate() streamer that only records when each put() happens: the first put is the prompt, the second
    the first generated token (end of prefill), each later one a decode step."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def put(self, _ids: Any) -> None:
        self.times.append(time.perf_counter())

    def end(self) -> None:
        pass


def child_generate(path: Path, dtype: str | None, device: str, max_new_tokens: int, text_len: int) -> dict[str, Any]:
    """Measured in its own process: load, then two greedy generations (cold, then warm) of max_new_tokens.

    Prefill = call -> first new token (image encoders, cross K/V, prompt through the decoder); decode tokens/s =
    tokens after the first / time between the first and the last token (cached single-token steps).
    """
    import torch

    from cogagent.modeling_cogagent import CogAgentForCausalLM

    model = CogAgentForCausalLM.from_pretrained(path, dtype=dtype, device=device)
    inputs = build_inputs(model.config, text_len)
    dev = torch.device(device)
    mdtype = next(model.parameters()).dtype
    inputs = {k: (v.to(dev, mdtype) if k in ("images", "cross_images") else v.to(dev)) for k, v in inputs.items()}
    base, reset = _baseline()
    runs = []
    for _ in range(2):
        stamps = _Stamps()
        with torch.inference_mode():
            t0 = time.perf_counter()
            # eos_token_id=[]: random weights may emit EOS early; the benchmark wants exactly max_new_tokens steps
            seq = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=[],
                                 streamer=stamps)
            if dev.type == "cuda":
                torch.cuda.synchronize(dev)
            total = time.perf_counter() - t0
        token_times = stamps.times[1:]
        n_new = int(seq.shape[1] - inputs["input_ids"].shape[1])
        assert n_new == len(token_times) == max_new_tokens, (n_new, len(token_times))
        decode = token_times[-1] - token_times[0]
        runs.append({
            "prefill_seconds": round(token_times[0] - t0, 4),
            "decode_tokens_per_s": round((n_new - 1) / decode, 3) if n_new > 1 and decode > 0 else None,
            "generate_seconds": round(total, 4),
            "ids": seq[0, -n_new:].tolist(),
        })
    peak = _status_bytes("VmHWM")
    cold, warm = runs
    return {
        "prompt_tokens": int(inputs["input_ids"].shape[1]),
        "image_tokens": int(model.config.num_vision_tokens),
        "cross_tokens": int(model.config.num_cross_tokens),
        "text_tokens": text_len,
        "new_tokens": max_new_tokens,
        "prefill_seconds": warm["prefill_seconds"],
        "prefill_seconds_cold": cold["prefill_seconds"],
        "decode_tokens_per_s": warm["decode_tokens_per_s"],
        "decode_tokens_per_s_cold": cold["decode_tokens_per_s"],
        "generate_seconds": warm["generate_seconds"],
        "greedy_ids_repeatable": cold["ids"] == warm["ids"],
        "gen_baseline_rss_bytes": base,
        "gen_peak_rss_bytes": peak,
        "gen_peak_rss_above_baseline_bytes": peak - base,
        "hwm_reset": reset,
    }


def _run_child(args: list[str], threads: int | None) -> dict[str, Any]:
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, str(Path(__file__).resolve()), *args] + (["--threads", str(threads)] if threads else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"child {args[0]} failed (rc {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def build_and_save(cfg: dict[str, Any], path: Path, dtype: str, max_shard_bytes: int, seed: int = 0) -> float:
    """Random-weight model -> save_pretrained. Returns the save time. Built on meta and filled directly in the
    target dtype, so a 1 GB checkpoint does not need 2 GB of float32 init in the parent."""
    import torch

    from cogagent.config import CogAgentConfig
    from cogagent.loading import materialize, resolve_dtype
    from cogagent.modeling_cogagent import CogAgentForCausalLM

    config = CogAgentConfig.from_dict(cfg)
    with torch.device("meta"):
        model = CogAgentForCausalLM(config)
    det = model.deterministic_buffer_names()
    materialize(model, resolve_dtype(dtype) or torch.float32, torch.device("cpu"), keep_dtype=det)
    model.init_deterministic_buffers()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and name.endswith("weight"):  # norm scales
                p.fill_(1.0)
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    t0 = time.perf_counter()
    model.save_pretrained(path, max_shard_bytes=max_shard_bytes)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, help="CogAgent config.json (default: built-in small config)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--text-tokens", type=int, default=40, help="text tokens after the image tokens")
    ap.add_argument("--max-shard-bytes", type=int, default=None, help="shard size for save_pretrained")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--memory-check-gb", type=float, default=None,
                    help="write a checkpoint of at least this many GB and report peak load RSS / checkpoint bytes")
    ap.add_argument("--workdir", type=Path, default=None, help="where to write the checkpoint (default: a temp dir)")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    # internal: measured steps in child processes
    ap.add_argument("--_child", choices=["load", "generate"], help=argparse.SUPPRESS)
    ap.add_argument("--_path", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    if args._child == "load":
        print(json.dumps(child_load(args._path, args.dtype, args.device)))
        return 0
    if args._child == "generate":
        print(json.dumps(child_generate(args._path, args.dtype, args.device, args.max_new_tokens, args.text_tokens)))
        return 0

    work = Path(tempfile.mkdtemp(prefix="cogagent-bench-", dir=args.workdir))
    ckpt = work / "ckpt"
    try:
        common = ["--dtype", args.dtype, "--device", args.device, "--_path", str(ckpt)]
        result: dict[str, Any] = {
            "torch_version": torch.__version__,
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "torch_threads": args.threads or torch.get_num_threads(),
            "device": args.device,
            "dtype": args.dtype,
        }
        if args.memory_check_gb is not None:
            bpp = torch.finfo(getattr(torch, args.dtype)).bits // 8
            cfg = memory_check_config(int(args.memory_check_gb * 1e9), bpp)
            shard = args.max_shard_bytes or 5 * 2**30
            result["mode"] = "memory-check"
            result["memory_check_layers"] = cfg["num_hidden_layers"]
            result["save_seconds"] = round(build_and_save(cfg, ckpt, args.dtype, shard), 3)
            result["shards"] = len(list(ckpt.glob("*.safetensors")))
            result.update(_run_child(["--_child", "load", *common], args.threads))
            result["target_ratio"] = 1.25
            result["within_target"] = result["load_peak_rss_ratio_to_checkpoint"] < 1.25
        else:
            cfg = json.loads(args.config.read_text()) if args.config else SMALL_CONFIG
            shard = args.max_shard_bytes or 5 * 2**30
            result["mode"] = "model"
            result["config"] = str(args.config) if args.config else "built-in small (224 px / 1120 px, patch 14)"
            result["save_seconds"] = round(build_and_save(cfg, ckpt, args.dtype, shard), 3)
            result.update(_run_child(["--_child", "load", *common], args.threads))
            result.update(_run_child(["--_child", "generate", *common, "--max-new-tokens", str(args.max_new_tokens),
                                      "--text-tokens", str(args.text_tokens)], args.threads))
        text = json.dumps(result, indent=2)
        print(text)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text + "\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
