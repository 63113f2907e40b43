"""Checkpoint loading and saving for CogAgent (official Hugging Face layout, no renaming table).

Why this module exists instead of ``transformers.PreTrainedModel.from_pretrained``: the official checkpoint is
36.6 GB of bf16 in 8 safetensors shards, and a naive ``load_state_dict(load_file(...))`` holds two copies of it
in host memory (the model's freshly initialised weights plus the loaded dict). Here the model is built on the
``meta`` device (no storage at all), given uninitialised storage on the target device(s), and filled one tensor
at a time from memory-mapped shards, so host memory stays near one copy of the weights. Nothing is initialised
randomly and then thrown away, which also makes loading fast.

Formats read, in order of preference inside a directory:

1. ``model.safetensors``
2. ``model.safetensors.index.json`` + ``model-0000i-of-0000n.safetensors`` (the official layout)
3. ``model-0000i-of-0000n.safetensors`` without an index (all n shards must be present)
4. ``pytorch_model.bin.index.json`` + ``pytorch_model-0000i-of-0000n.bin``, or the shards without an index
5. ``pytorch_model.bin``

``.bin`` files are pickles; they are read with ``torch.load(weights_only=True, mmap=True)``, which refuses any
pickle that would need to run code. Such a file is rejected with a :class:`CheckpointError` that says why and
how to convert it, rather than falling back to an unsafe load.

Every problem with the files on disk (missing config, config of another architecture, missing or truncated
shard, missing / unexpected / mis-shaped keys, a pickle that is not plain weights) raises
:class:`CheckpointError`, a ``ValueError``, whose message says what is wrong and what to do.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import torch
from torch import nn


__all__ = [
    "CheckpointError",
    "SAFE_WEIGHTS_NAME",
    "SAFE_WEIGHTS_INDEX_NAME",
    "WEIGHTS_NAME",
    "WEIGHTS_INDEX_NAME",
    "CONFIG_NAME",
    "resolve_dtype",
    "resolve_device",
    "find_checkpoint_files",
    "read_checkpoint_metadata",
    "compute_device_map",
    "from_pretrained",
    "save_pretrained",
    "load_checkpoint_into_model",
    "shard_name",
]

CONFIG_NAME = "config.json"
SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
WEIGHTS_NAME = "pytorch_model.bin"
WEIGHTS_INDEX_NAME = "pytorch_model.bin.index.json"

_SAFE_SHARD_RE = re.compile(r"^model-(\d{5})-of-(\d{5})\.safetensors$")
_BIN_SHARD_RE = re.compile(r"^pytorch_model-(\d{5})-of-(\d{5})\.bin$")

# How many bytes may be read through one safetensors memory map before it is closed and reopened. Pages read
# through a file mapping count in the process's resident set until the mapping goes away, so reading a 5 GB
# shard through one mapping would put 5 GB of page cache on top of the 5 GB copied into the model. Reopening
# every so often keeps that extra at most this much (plus one tensor); reopening costs one header parse.
_MAX_MAPPED_BYTES = 64 * 2**20
# Tensors larger than this are copied in blocks of rows, so a 500 MB embedding never needs a 500 MB temporary.
_CHUNK_BYTES = 32 * 2**20

_DTYPE_NAMES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "fp32": torch.float32,
    "float": torch.float32,
    "bfloat16": torch.bfloat16,
    "bf16": torch.bfloat16,
    "float16": torch.float16,
    "fp16": torch.float16,
    "half": torch.float16,
}

# safetensors header dtype strings -> torch dtypes (only the ones a model checkpoint can hold)
_ST_DTYPES: dict[str, torch.dtype] = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}
if hasattr(torch, "float8_e4m3fn"):
    _ST_DTYPES["F8_E4M3"] = torch.float8_e4m3fn
    _ST_DTYPES["F8_E5M2"] = torch.float8_e5m2


class CheckpointError(ValueError):
    """A checkpoint directory cannot be loaded as asked; the message says what is wrong and what to do.

    ``missing``, ``unexpected`` and ``mismatched`` hold the offending key names when the problem is a key
    mismatch between the checkpoint and the model (empty otherwise), so callers can act on them.
    """

    def __init__(
        self,
        message: str,
        *,
        missing: Iterable[str] = (),
        unexpected: Iterable[str] = (),
        mismatched: Iterable[str] = (),
    ) -> None:
        super().__init__(message)
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.mismatched = list(mismatched)


# ----------------------------------------------------------------------------------------------- dtype/device


def resolve_dtype(dtype: torch.dtype | str | None) -> torch.dtype | None:
    """Turn a user dtype (torch.dtype, "bf16", "float16", "auto", None) into a torch.dtype or None (= keep)."""
    if dtype is None:
        return None
    if isinstance(dtype, torch.dtype):
        if not dtype.is_floating_point:
            raise ValueError(f"dtype must be a floating point type for model weights, got {dtype}")
        return dtype
    if isinstance(dtype, str):
        name = dtype.strip().lower().removeprefix("torch.")
        if name == "auto":
            return None
        if name in _DTYPE_NAMES:
            return _DTYPE_NAMES[name]
    raise ValueError(
        f"unknown dtype {dtype!r}: use a torch dtype or one of "
        f"{sorted(_DTYPE_NAMES)} (or None / 'auto' to keep the checkpoint's dtype)"
    )


def resolve_device(device: torch.device | str | int | None) -> torch.device:
    """Parse and check a device, so that "cuda" on a CPU-only build fails here and not deep inside a copy."""
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)  # accepts "cpu", "cuda", "cuda:1", 0, torch.device
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"invalid device {device!r}: {exc}. Use 'cpu', 'cuda' or 'cuda:N'.") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device {str(dev)!r} requested but CUDA is not available in this process "
                f"(torch {torch.__version__}); load with device='cpu' or install a CUDA build of torch"
            )
        index = 0 if dev.index is None else dev.index
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"device {str(dev)!r} requested but only {torch.cuda.device_count()} CUDA device(s) are visible; "
                f"use an index below {torch.cuda.device_count()} or check CUDA_VISIBLE_DEVICES"
            )
        dev = torch.device("cuda", index)
    elif dev.type not in ("cpu", "mps", "xpu"):
        raise ValueError(f"device {str(dev)!r} is not supported for loading weights; use 'cpu' or 'cuda[:N]'")
    return dev


def check_dtype_supported(dtype: torch.dtype, device: torch.device) -> None:
    """Fail early, with a clear message, when ``device`` cannot run matrix products in ``dtype``.

    Support is probed rather than assumed from a table, because it depends on the torch build and the hardware
    (torch 2.13 on x86 CPUs runs float16 and bfloat16 matmuls, convolutions, layer norm and SDPA — slowly where
    the CPU lacks native support; older CUDA GPUs lack bfloat16).
    """
    if device.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        raise ValueError(
            f"{torch.cuda.get_device_name(device)} does not support bfloat16; load with dtype='float16' or 'float32'"
        )
    try:
        a = torch.ones(4, 4, dtype=dtype, device=device)
        (a @ a).sum().item()
        torch.nn.functional.layer_norm(a, (4,)).sum().item()
    except (RuntimeError, NotImplementedError) as exc:
        raise ValueError(
            f"dtype {dtype} cannot run on device {device} with torch {torch.__version__} ({exc}); "
            f"load with dtype='float32' on this device"
        ) from None


def _precision_eps(dtype: torch.dtype) -> float:
    return torch.finfo(dtype).eps if dtype.is_floating_point else 0.0


# --------------------------------------------------------------------------------------------- config checks


def _load_config(cls: type, path: Path) -> Any:
    """Read config.json and refuse configs of other architectures before anything is allocated."""
    config_file = path / CONFIG_NAME
    if not config_file.is_file():
        raise CheckpointError(
            f"{config_file} not found: a CogAgent checkpoint directory needs the config.json that ships with the "
            f"weights (e.g. from THUDM/cogagent-chat-hf); copy it next to the weight files"
        )
    try:
        raw = json.loads(config_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"{config_file} is not valid JSON ({exc}); re-download it or restore it from the original checkpoint"
        ) from None
    if not isinstance(raw, dict):
        raise CheckpointError(f"{config_file} must hold a JSON object, found {type(raw).__name__}")
    expected = getattr(cls, "_checkpoint_architecture", cls.__name__)
    archs = raw.get("architectures")
    if archs is not None and (not isinstance(archs, list) or expected not in archs):
        raise CheckpointError(
            f"{config_file} describes a {archs} checkpoint, not {expected}: load it with the class it names "
            f"(CogAgentForCausalLM for THUDM/cogagent-chat-hf / cogagent-vqa-hf, CogVLMForCausalLM for "
            f"THUDM/cogvlm-chat-hf), or point at a {expected} directory"
        )
    missing_fields = [f for f in ("vision_config", "hidden_size") if f not in raw]
    if missing_fields:
        raise CheckpointError(
            f"{config_file} lacks the CogAgent fields {missing_fields} (model_type={raw.get('model_type')!r}): "
            f"it is not a CogAgent config; use the config.json shipped with the CogAgent weights"
        )
    config_cls = getattr(cls, "config_class", None)
    if config_cls is None:
        from cogagent.config import CogAgentConfig as config_cls  # lazy: config.py is another module's job
    try:
        return config_cls.from_json_file(str(config_file))
    except CheckpointError:
        raise
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise CheckpointError(
            f"{config_file} is not a valid {config_cls.__name__} ({exc}); fix the file or use the config.json "
            f"that ships with the weights"
        ) from None


# ------------------------------------------------------------------------------------------ finding the files


@dataclass(frozen=True)
class TensorInfo:
    """Where one checkpoint tensor lives and what it looks like, read from headers only."""

    file: Path
    shape: tuple[int, ...]
    dtype: torch.dtype


def shard_name(index: int, total: int, fmt: str = "safetensors") -> str:
    """Official shard file name, e.g. ``model-00001-of-00008.safetensors``."""
    if fmt == "safetensors":
        return f"model-{index:05d}-of-{total:05d}.safetensors"
    return f"pytorch_model-{index:05d}-of-{total:05d}.bin"


def _read_index(index_file: Path) -> dict[str, str]:
    try:
        data = json.loads(index_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{index_file} is not valid JSON ({exc}); re-download it") from None
    weight_map = data.get("weight_map") if isinstance(data, dict) else None
    if not isinstance(weight_map, dict) or not weight_map:
        raise CheckpointError(f"{index_file} has no 'weight_map' object; re-download it")
    for key, fname in weight_map.items():
        if not isinstance(fname, str) or os.path.basename(fname) != fname or fname in ("", ".", ".."):
            raise CheckpointError(
                f"{index_file} maps {key!r} to {fname!r}, which is not a plain file name in the checkpoint "
                f"directory; re-download the index"
            )
    return weight_map


def _check_shard_set(path: Path, names: list[str], pattern: re.Pattern[str], listed_by: str) -> None:
    """Shard names carry their count (``-of-00008``): use it to report shards missing from the directory."""
    missing = [n for n in names if not (path / n).is_file()]
    totals = {int(m.group(2)) for n in names if (m := pattern.match(n))}
    if len(totals) == 1:
        total = totals.pop()
        stem = names[0].split("-")[0]
        ext = names[0].rsplit(".", 1)[1]
        expected = {f"{stem}-{i:05d}-of-{total:05d}.{ext}" for i in range(1, total + 1)}
        missing += sorted(n for n in expected - set(names) if not (path / n).is_file())
    if missing:
        raise CheckpointError(
            f"{len(missing)} shard file(s) listed by {listed_by} are missing from {path}: {_first(missing)}; "
            f"the download is incomplete: fetch the missing shard(s) again"
        )


def find_checkpoint_files(path: str | os.PathLike[str]) -> tuple[str, list[Path], dict[str, str] | None]:
    """Locate the weight files of a checkpoint directory.

    Returns ``(format, files, weight_map)`` where format is "safetensors" or "bin", files are in shard order and
    weight_map is the index's key -> file name map (None without an index).
    """
    path = Path(path)
    if (path / SAFE_WEIGHTS_NAME).is_file():
        return "safetensors", [path / SAFE_WEIGHTS_NAME], None
    for fmt, index_name, pattern in (
        ("safetensors", SAFE_WEIGHTS_INDEX_NAME, _SAFE_SHARD_RE),
        ("bin", WEIGHTS_INDEX_NAME, _BIN_SHARD_RE),
    ):
        index_file = path / index_name
        if index_file.is_file():
            weight_map = _read_index(index_file)
            names = sorted(set(weight_map.values()))
            _check_shard_set(path, names, pattern, index_name)
            return fmt, [path / n for n in names], weight_map
        shards = sorted(p.name for p in path.iterdir() if pattern.match(p.name))
        if shards:
            _check_shard_set(path, shards, pattern, "the shard names (no index file)")
            return fmt, [path / n for n in shards], None
    if (path / WEIGHTS_NAME).is_file():
        return "bin", [path / WEIGHTS_NAME], None
    present = sorted(p.name for p in path.iterdir())
    raise CheckpointError(
        f"no weights found in {path} (files: {_first(present)}); expected {SAFE_WEIGHTS_NAME}, "
        f"{SAFE_WEIGHTS_INDEX_NAME} with its shards, {WEIGHTS_INDEX_NAME} with its shards, or {WEIGHTS_NAME}"
    )


def _first(items: Iterable[str], n: int = 10) -> str:
    items = list(items)
    shown = ", ".join(items[:n])
    return shown + (f", ... ({len(items)} in all)" if len(items) > n else "")


# --------------------------------------------------------------------------------- reading tensor metadata


def _safetensors_header(file: Path) -> dict[str, TensorInfo]:
    """Parse a safetensors header and check the file is as long as the header says.

    Done by hand (the format is 8 bytes of little-endian header length, a JSON header, then the data) so that a
    truncated file is reported before any memory is committed, with a message a user can act on.
    """
    size = file.stat().st_size
    with open(file, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise CheckpointError(f"{file} is truncated ({size} bytes, no header); download it again")
        (n,) = struct.unpack("<Q", head)
        if n > 100 * 2**20 or 8 + n > size:
            raise CheckpointError(
                f"{file} is truncated or not a safetensors file (header of {n} bytes announced, file has "
                f"{size} bytes); download it again"
            )
        try:
            header = json.loads(fh.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{file} has a corrupt safetensors header ({exc}); download it again") from None
    out: dict[str, TensorInfo] = {}
    data_end = 0
    for key, info in header.items():
        if key == "__metadata__":
            continue
        try:
            dtype = _ST_DTYPES[info["dtype"]]
            shape = tuple(int(s) for s in info["shape"])
            begin, end = (int(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{file}: header entry {key!r} is malformed or has an unsupported dtype ({exc})")
        data_end = max(data_end, end)
        out[key] = TensorInfo(file, shape, dtype)
    if 8 + n + data_end > size:
        raise CheckpointError(
            f"{file} is truncated: its header describes {8 + n + data_end} bytes but the file has {size} "
            f"(the copy or download was cut short); download this file again"
        )
    return out


_UNSAFE_PICKLE_HINT = (
    "it is a pickle that needs more than plain tensors to load, and unpickling it would let the file run "
    "arbitrary code on this machine, so it is refused. If you trust its origin, convert it once to safetensors "
    "in a separate, sandboxed step (e.g. torch.load(..., weights_only=False) then "
    "safetensors.torch.save_file(state_dict, 'model.safetensors')) and load the safetensors file instead"
)


def _load_bin(file: Path) -> Mapping[str, torch.Tensor]:
    """Open a ``.bin`` state dict memory-mapped and weights-only (no code runs; tensors are read lazily)."""
    try:
        is_zip = zipfile.is_zipfile(file)
        obj = torch.load(file, map_location="cpu", weights_only=True, mmap=is_zip)
    except pickle.UnpicklingError as exc:
        if "weights_only" in str(exc) or "Weights only" in str(exc) or "Unsupported global" in str(exc):
            raise CheckpointError(f"{file}: {_UNSAFE_PICKLE_HINT}. (torch said: {str(exc).splitlines()[0]})") from None
        raise CheckpointError(f"{file} is corrupt or truncated ({exc}); download it again") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as exc:
        raise CheckpointError(
            f"{file} is corrupt or truncated and cannot be read ({str(exc).splitlines()[0]}); download it again"
        ) from None
    if not isinstance(obj, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()
    ):
        raise CheckpointError(
            f"{file} does not hold a flat state dict (name -> tensor) but a {type(obj).__name__}; save "
            f"model.state_dict() (or convert to safetensors) instead"
        )
    return obj


def read_checkpoint_metadata(
    fmt: str, files: list[Path], weight_map: dict[str, str] | None
) -> dict[str, TensorInfo]:
    """Key -> (file, shape, dtype) for the whole checkpoint, reading headers only (no tensor data)."""
    infos: dict[str, TensorInfo] = {}
    for file in files:
        if fmt == "safetensors":
            part = _safetensors_header(file)
        else:
            sd = _load_bin(file)
            part = {k: TensorInfo(file, tuple(v.shape), v.dtype) for k, v in sd.items()}
            del sd
        dup = sorted(set(part) & set(infos))
        if dup:
            raise CheckpointError(
                f"{len(dup)} key(s) appear in more than one weight file ({file.name} and others): {_first(dup)}; "
                f"the directory mixes two checkpoints: keep only one set of files"
            )
        infos.update(part)
    if weight_map is not None:
        wrong = [k for k, f in weight_map.items() if k not in infos or infos[k].file.name != f]
        if wrong:
            raise CheckpointError(
                f"the index lists {len(wrong)} key(s) that are not in the shard it names: {_first(wrong)}; the "
                f"index and the shards come from different downloads: fetch them again together"
            )
    return infos


def _nbytes(info: TensorInfo) -> int:
    numel = 1
    for dim in info.shape:
        numel *= dim
    return numel * info.dtype.itemsize


def _checkpoint_dtype(
    infos: Mapping[str, TensorInfo], skip: set[str], config: Any
) -> torch.dtype:
    """The dtype to keep when the caller asked for none: the weights' own, else config.torch_dtype, else fp32."""
    by_bytes: dict[torch.dtype, int] = {}
    for key, info in infos.items():
        if key in skip or not info.dtype.is_floating_point:
            continue
        numel = 1
        for s in info.shape:
            numel *= s
        by_bytes[info.dtype] = by_bytes.get(info.dtype, 0) + numel
    config_dtype = getattr(config, "torch_dtype", None)
    if isinstance(config_dtype, str):
        config_dtype = _DTYPE_NAMES.get(config_dtype.lower().removeprefix("torch."))
    if len(by_bytes) == 1:
        return next(iter(by_bytes))
    if isinstance(config_dtype, torch.dtype) and (not by_bytes or config_dtype in by_bytes):
        return config_dtype
    if by_bytes:
        return max(by_bytes, key=by_bytes.get)  # type: ignore[arg-type]
    return torch.float32


# ------------------------------------------------------------------------------------------- the key check


def check_keys(
    model_shapes: Mapping[str, tuple[int, ...]],
    infos: Mapping[str, TensorInfo],
    optional: set[str],
    model_name: str,
) -> None:
    """Raise one error naming every missing, unexpected and mis-shaped key (first 10 of each, and counts)."""
    missing = [k for k in model_shapes if k not in infos and k not in optional]
    unexpected = [k for k in infos if k not in model_shapes]
    mismatched = [
        k for k in model_shapes if k in infos and tuple(infos[k].shape) != tuple(model_shapes[k])
    ]
    kind_mismatch = [
        k
        for k in model_shapes
        if k in infos and k not in mismatched and not infos[k].dtype.is_floating_point
    ]
    if not (missing or unexpected or mismatched or kind_mismatch):
        return
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing key(s) (in the model, not in the checkpoint): {_first(missing)}")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected key(s) (in the checkpoint, not in the model): {_first(unexpected)}")
    if mismatched:
        shown = [f"{k} (checkpoint {list(infos[k].shape)} vs model {list(model_shapes[k])})" for k in mismatched]
        parts.append(f"{len(mismatched)} mis-shaped key(s): {_first(shown)}")
    if kind_mismatch:
        shown = [f"{k} ({infos[k].dtype})" for k in kind_mismatch]
        parts.append(f"{len(kind_mismatch)} key(s) stored with a non-floating dtype: {_first(shown)}")
    raise CheckpointError(
        f"the checkpoint does not match {model_name}: " + "; ".join(parts) + ". Check that config.json belongs to "
        "these weights (num_hidden_layers, hidden_size, vision_config, cross_image_size) and that the weights "
        "use the official CogAgent key names",
        missing=missing,
        unexpected=unexpected,
        mismatched=mismatched + kind_mismatch,
    )


# ------------------------------------------------------------------------------------------ materialising


def _named_tensor_slots(model: nn.Module) -> Iterator[tuple[str, nn.Module, str, torch.Tensor, bool]]:
    """Every (full name, owner module, attribute, tensor, is_param), aliases included (shared modules)."""
    for mod_name, module in model.named_modules(remove_duplicate=False):
        prefix = mod_name + "." if mod_name else ""
        for name, p in module._parameters.items():
            if p is not None:
                yield prefix + name, module, name, p, True
        for name, b in module._buffers.items():
            if b is not None:
                yield prefix + name, module, name, b, False


def _device_for(name: str, device_map: Mapping[str, torch.device]) -> torch.device:
    """Longest device_map prefix (module name) that owns ``name``."""
    parts = name.split(".")
    for i in range(len(parts), -1, -1):
        prefix = ".".join(parts[:i])
        if prefix in device_map:
            return device_map[prefix]
    raise CheckpointError(f"device_map does not place {name!r}; give a device for it or for one of its parents")


def materialize(
    model: nn.Module,
    dtype: torch.dtype,
    device: torch.device | None = None,
    device_map: Mapping[str, torch.device] | None = None,
    keep_dtype: set[str] = frozenset(),  # type: ignore[assignment]
) -> None:
    """Replace every meta tensor by uninitialised storage on its device; floating ones in ``dtype``.

    Unlike ``Module.to_empty`` this keeps tied tensors tied (one new tensor per original, by identity) and can
    place each module on its own device. Names in ``keep_dtype`` (the deterministic buffers) keep the dtype the
    model created them with, so rotary tables stay float32 in a bf16 model.
    """
    new: dict[int, torch.Tensor] = {}
    for full, module, attr, t, is_param in list(_named_tensor_slots(model)):
        if id(t) not in new:
            dev = device if device_map is None else _device_for(full, device_map)
            want = dtype if t.is_floating_point() and full not in keep_dtype else t.dtype
            empty = torch.empty(t.shape, dtype=want, device=dev)
            new[id(t)] = nn.Parameter(empty, requires_grad=t.requires_grad) if is_param else empty
        if is_param:
            module._parameters[attr] = new[id(t)]  # type: ignore[assignment]
        else:
            module._buffers[attr] = new[id(t)]


# -------------------------------------------------------------------------------------------- device maps

_AUTO_STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")


def _normalise_memory_keys(max_memory: Mapping[Any, Any] | None) -> dict[Any, Any] | None:
    """accelerate wants GPU indices as ints; accept "cuda:1" / torch.device too."""
    if max_memory is None:
        return None
    out: dict[Any, Any] = {}
    for k, v in max_memory.items():
        if isinstance(k, str) and k.startswith("cuda"):
            k = torch.device(k).index or 0
        elif isinstance(k, torch.device):
            k = (k.index or 0) if k.type == "cuda" else k.type
        out[k] = v
    return out


def _as_device(value: Any) -> torch.device:
    if isinstance(value, int):
        return torch.device("cuda", value)
    if value in ("disk", "meta"):
        raise CheckpointError(
            f"device_map puts weights on {value!r}: offloading to disk is not supported here; give a max_memory "
            f"that fits the model on the GPUs and CPU, or add GPUs"
        )
    return torch.device(value)


def compute_device_map(
    model: nn.Module,
    device_map: str | Mapping[str, Any],
    dtype: torch.dtype,
    max_memory: Mapping[Any, Any] | None = None,
) -> dict[str, torch.device]:
    """Decide where every module goes, never splitting a decoder layer or an encoder block.

    ``model`` is the meta-device model. "auto"/"balanced"/"balanced_low_0"/"sequential" ask accelerate
    (``infer_auto_device_map`` with ``no_split_module_classes=model._no_split_modules``; "auto"/"balanced*" first
    balance ``max_memory`` across the GPUs like transformers does). A dict is taken as given but checked: it
    must place every tensor and must not split a no-split module across devices.

    Tensors shared between modules (the EVA2-CLIP-L 2-D RoPE tables belong to one module that every cross
    encoder block references) must live on one device: when aliases would land on different devices, the
    smallest module holding all of them is moved whole to the device of its first part.
    """
    no_split = list(getattr(model, "_no_split_modules", None) or [])
    if isinstance(device_map, str):
        if device_map not in _AUTO_STRATEGIES:
            raise ValueError(f"device_map={device_map!r}: use one of {_AUTO_STRATEGIES} or a dict module -> device")
        from accelerate.utils import get_balanced_memory, infer_auto_device_map

        mm = _normalise_memory_keys(max_memory)
        if device_map != "sequential":
            mm = get_balanced_memory(
                model,
                max_memory=mm,
                no_split_module_classes=no_split,
                dtype=dtype,
                low_zero=device_map == "balanced_low_0",
            )
        raw = infer_auto_device_map(model, max_memory=mm, no_split_module_classes=no_split, dtype=dtype)
    elif isinstance(device_map, Mapping):
        raw = dict(device_map)
    else:
        raise ValueError(f"device_map must be a strategy name or a dict, got {type(device_map).__name__}")
    dm: dict[str, torch.device] = {k: _as_device(v) for k, v in raw.items()}

    slots = list(_named_tensor_slots(model))
    unplaced = []
    for full, *_ in slots:
        try:
            _device_for(full, dm)
        except CheckpointError:
            unplaced.append(full)
    if unplaced:
        raise CheckpointError(f"device_map leaves {len(unplaced)} tensor(s) unplaced: {_first(unplaced)}")

    # Shared tensors: keep every alias on one device.
    groups: dict[int, list[str]] = {}
    for full, _m, _a, t, _p in slots:
        groups.setdefault(id(t), []).append(full)
    for names in groups.values():
        if len({_device_for(n, dm) for n in names}) > 1:
            common = os.path.commonprefix([n.split(".") for n in names])
            prefix = ".".join(common)
            target = _device_for(names[0], dm)
            dm = {k: v for k, v in dm.items() if not (k == prefix or k.startswith(prefix + ".") or prefix == "")}
            dm[prefix] = target
            if prefix == "":
                dm = {"": target}

    # A module that owns tensors directly (EVA2CLIPModel's boi/eoi/pos_embed, CrossVisionModel's pos_embed) uses
    # them in its own forward together with its children's outputs; accelerate's hooks only move module inputs,
    # so such a module is kept whole, on the device that already holds most of its bytes.
    for mod_name, module in model.named_modules():
        own = [n for n, t in list(module._parameters.items()) + list(module._buffers.items()) if t is not None]
        if not own or not mod_name or not any(True for _ in module.children()):
            continue
        sizes: dict[torch.device, int] = {}
        for sub, _m, _a, t, _p in _named_tensor_slots(module):
            dev = _device_for(f"{mod_name}.{sub}", dm)
            sizes[dev] = sizes.get(dev, 0) + t.numel() * t.element_size()
        if len(sizes) > 1:
            target = max(sizes, key=sizes.get)  # type: ignore[arg-type]
            dm = {k: v for k, v in dm.items() if not (k == mod_name or k.startswith(mod_name + "."))}
            dm[mod_name] = target

    # No decoder layer / encoder block may straddle devices.
    split = []
    for mod_name, module in model.named_modules():
        if type(module).__name__ in no_split:
            devs = {_device_for(f"{mod_name}.{sub}", dm) for sub, *_ in _named_tensor_slots(module)}
            if len(devs) > 1:
                split.append(f"{mod_name} ({', '.join(sorted(map(str, devs)))})")
    if split:
        raise CheckpointError(
            f"device_map splits {len(split)} module(s) that must stay on one device: {_first(split)}; "
            f"map each decoder layer / encoder block to a single device"
        )
    return dm


# --------------------------------------------------------------------------------------------- filling


def _read_budgets(total_bytes: int) -> tuple[int, int]:
    """(max bytes read per mapping, max bytes per piece), scaled down for small checkpoints so that the
    transient overhead stays a small fraction of the checkpoint whatever its size."""
    mapped = min(_MAX_MAPPED_BYTES, max(4 * 2**20, total_bytes // 32))
    chunk = min(_CHUNK_BYTES, max(2**20, total_bytes // 64))
    return mapped, chunk


def _iter_checkpoint_tensors(
    fmt: str, files: list[Path], wanted: set[str], total_bytes: int = 0
) -> Iterator[tuple[str, slice | None, torch.Tensor]]:
    """Yield ``(key, rows, cpu_tensor)`` pieces: ``rows`` is the slice of the first dimension the piece covers
    (None = the whole tensor). Each piece must be consumed before the next is asked for.

    safetensors: large tensors come in row blocks of at most ``_CHUNK_BYTES`` read through ``get_slice``, and the
    memory map is reopened after every ``_MAX_MAPPED_BYTES`` read, so the transient host memory is bounded by
    those two constants whatever the tensor and shard sizes are. ``.bin``: whole tensors from a memory-mapped,
    weights-only ``torch.load`` (one shard mapped at a time).
    """
    if fmt == "safetensors":
        from safetensors import SafetensorError, safe_open

        max_mapped, chunk_bytes = _read_budgets(total_bytes)
        for file in files:
            header = _safetensors_header(file)
            pieces: list[tuple[str, slice | None]] = []
            for key, info in header.items():
                if key not in wanted:
                    continue
                numel = 1
                for dim in info.shape:
                    numel *= dim
                nbytes = numel * info.dtype.itemsize
                if nbytes <= chunk_bytes or len(info.shape) == 0 or info.shape[0] <= 1:
                    pieces.append((key, None))
                    continue
                row_bytes = max(1, nbytes // info.shape[0])
                step = max(1, chunk_bytes // row_bytes)
                pieces.extend((key, slice(a, min(a + step, info.shape[0]))) for a in range(0, info.shape[0], step))
            i = 0
            while i < len(pieces):
                mapped = 0
                try:
                    with safe_open(str(file), framework="pt", device="cpu") as fh:
                        while i < len(pieces) and mapped < max_mapped:
                            key, rows = pieces[i]
                            t = fh.get_tensor(key) if rows is None else fh.get_slice(key)[rows]
                            mapped += t.numel() * t.element_size()
                            yield key, rows, t
                            del t
                            i += 1
                except (OSError, RuntimeError, SafetensorError) as exc:
                    raise CheckpointError(f"{file} could not be read ({exc}); download it again") from None
    else:
        for file in files:
            sd = _load_bin(file)
            for key in list(sd):
                if key in wanted:
                    yield key, None, sd[key]
            del sd


def load_checkpoint_into_model(
    model: nn.Module,
    fmt: str,
    files: list[Path],
    infos: Mapping[str, TensorInfo],
    deterministic: set[str],
) -> list[str]:
    """Copy checkpoint tensors into the materialised model, one at a time, casting on the fly.

    A deterministic buffer stored at lower precision than the model keeps it (e.g. a bf16 copy of the float32
    RoPE table) is not copied: the recomputed exact table is the same function of the config, unrounded.
    Returns the keys that were filled from the checkpoint.
    """
    targets = model.state_dict(keep_vars=True)
    wanted = {k for k in infos if k in targets}
    for k in list(wanted):
        if k in deterministic and _precision_eps(infos[k].dtype) > _precision_eps(targets[k].dtype):
            wanted.discard(k)
    filled = []
    with torch.no_grad():
        total = sum(_nbytes(infos[k]) for k in wanted)
        for key, rows, src in _iter_checkpoint_tensors(fmt, files, wanted, total):
            dst = targets[key] if rows is None else targets[key][rows]
            if tuple(src.shape) != tuple(dst.shape):  # headers were checked; a file changed under us
                raise CheckpointError(f"{key}: shape {list(src.shape)} in the file, {list(dst.shape)} in the model")
            dst.copy_(src)
            if rows is None or rows.stop == targets[key].shape[0]:
                filled.append(key)
    not_filled = sorted(wanted - set(filled))
    if not_filled:
        raise CheckpointError(f"{len(not_filled)} tensor(s) could not be read from the files: {_first(not_filled)}")
    return filled


# ------------------------------------------------------------------------------------------- entry points

_INIT_FUNCTIONS = (
    "normal_", "uniform_", "trunc_normal_", "constant_", "zeros_", "ones_", "eye_", "dirac_", "orthogonal_",
    "kaiming_uniform_", "kaiming_normal_", "xavier_uniform_", "xavier_normal_", "sparse_",
)


@contextlib.contextmanager
def _skip_weight_init() -> Iterator[None]:
    """Make ``torch.nn.init`` a no-op while the meta model is built.

    Random init of meta tensors computes nothing, but torch runs it through its Python reference kernels, whose
    first use imports torch._refs/_prims: about 3 s and 80 MB of RSS for weights that the checkpoint overwrites
    anyway (transformers' ``no_init_weights`` does the same). Restored on exit, even on error.
    """
    saved = {name: getattr(torch.nn.init, name) for name in _INIT_FUNCTIONS if hasattr(torch.nn.init, name)}

    def skip(tensor: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        return tensor

    try:
        for name in saved:
            setattr(torch.nn.init, name, skip)
        yield
    finally:
        for name, fn in saved.items():
            setattr(torch.nn.init, name, fn)



def from_pretrained(
    cls: type,
    path: str | os.PathLike[str],
    dtype: torch.dtype | str | None = None,
    device: torch.device | str | int | None = None,
    device_map: str | Mapping[str, Any] | None = None,
    *,
    max_memory: Mapping[Any, Any] | None = None,
) -> nn.Module:
    """Build ``cls(config)`` on the meta device and fill it from the checkpoint directory ``path``.

    dtype: None keeps the checkpoint's (its floating weights' dtype, else ``torch_dtype`` of config.json), or a
    torch dtype / "float32" / "bfloat16" / "bf16" / "float16" / "fp16". Deterministic buffers (RoPE tables,
    ``cls.deterministic_buffer_names()``) keep the model's own dtype (float32).
    device: "cpu" (default), "cuda", "cuda:1", ... ; ignored when ``device_map`` is given.
    device_map: "auto" (or "balanced", "balanced_low_0", "sequential") or a dict module name -> device; spreads
    the model over GPUs through accelerate without splitting ``cls._no_split_modules``. ``max_memory`` (e.g.
    ``{0: "20GiB", 1: "20GiB", "cpu": "64GiB"}``) bounds each device, as in accelerate.

    Deterministic buffers are used when present in the checkpoint and recomputed when absent; any other
    missing, unexpected or mis-shaped key raises :class:`CheckpointError` naming the keys, before any memory for
    the weights is committed. Returns the model in eval mode.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint directory {path} does not exist; pass the directory holding config.json")
    if not path.is_dir():
        raise CheckpointError(
            f"{path} is a file; pass the checkpoint directory (holding config.json and the weight files) instead"
        )
    want_dtype = resolve_dtype(dtype)
    target_device = resolve_device(device) if device_map is None else None

    config = _load_config(cls, path)
    fmt, files, weight_map = find_checkpoint_files(path)
    infos = read_checkpoint_metadata(fmt, files, weight_map)

    with torch.device("meta"), _skip_weight_init():
        model = cls(config)
    meta_sd = model.state_dict()
    deterministic = set(model.deterministic_buffer_names()) if hasattr(model, "deterministic_buffer_names") else set()
    check_keys({k: tuple(v.shape) for k, v in meta_sd.items()}, infos, deterministic, cls.__name__)

    if want_dtype is None:
        want_dtype = _checkpoint_dtype(infos, deterministic, config)

    resolved_map = None
    if device_map is not None:
        resolved_map = compute_device_map(model, device_map, want_dtype, max_memory)
        for dev in set(resolved_map.values()):
            resolve_device(dev)
            check_dtype_supported(want_dtype, dev)
    else:
        assert target_device is not None
        check_dtype_supported(want_dtype, target_device)

    materialize(model, want_dtype, target_device, resolved_map, keep_dtype=deterministic)
    if hasattr(model, "init_deterministic_buffers"):
        model.init_deterministic_buffers(device=target_device)
    load_checkpoint_into_model(model, fmt, files, infos, deterministic)

    if hasattr(model, "config"):
        try:
            model.config.torch_dtype = str(want_dtype).removeprefix("torch.")
        except AttributeError:
            pass
    model.eval()
    if resolved_map is not None and len(set(resolved_map.values())) > 1:
        from accelerate import dispatch_model

        model = dispatch_model(model, device_map={k: str(v) for k, v in resolved_map.items()})
    if resolved_map is not None:
        model.hf_device_map = {k: str(v) for k, v in resolved_map.items()}  # type: ignore[attr-defined]
    return model


def _storage_key(t: torch.Tensor) -> tuple[str, int]:
    return (str(t.device), t.untyped_storage().data_ptr())


def save_pretrained(
    model: nn.Module,
    path: str | os.PathLike[str],
    max_shard_bytes: int = 5 * 2**30,
) -> list[str]:
    """Write config.json and the weights in the official layout; returns the file names written.

    One file (``model.safetensors``) when everything fits in ``max_shard_bytes``, else
    ``model-0000i-of-0000n.safetensors`` shards (a tensor larger than the limit gets a shard of its own) plus
    ``model.safetensors.index.json``. Every state_dict key is written, aliases of a shared tensor included (as
    the official checkpoints do); safetensors refuses tensors that share storage, so repeats are cloned. Files
    are written under a temporary name and renamed, and stale weight files of an earlier save are removed, so a
    reader never sees a half-written or mixed checkpoint.
    """
    if not isinstance(max_shard_bytes, int) or max_shard_bytes <= 0:
        raise ValueError(f"max_shard_bytes must be a positive int, got {max_shard_bytes!r}")
    from safetensors.torch import save_file

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = model.state_dict()

    shards: list[list[str]] = []
    current: list[str] = []
    current_bytes = 0
    for key, t in state.items():
        nbytes = t.numel() * t.element_size()
        if current and current_bytes + nbytes > max_shard_bytes:
            shards.append(current)
            current, current_bytes = [], 0
        current.append(key)
        current_bytes += nbytes
    if current or not shards:
        shards.append(current)

    names = [SAFE_WEIGHTS_NAME] if len(shards) == 1 else [shard_name(i + 1, len(shards)) for i in range(len(shards))]
    seen: set[tuple[str, int]] = set()
    total = 0
    for name, keys in zip(names, shards):
        tensors: dict[str, torch.Tensor] = OrderedDict()
        for key in keys:
            t = state[key].detach()
            sk = _storage_key(t)
            whole = t.is_contiguous() and t.untyped_storage().nbytes() == t.numel() * t.element_size()
            if sk in seen or not whole:
                t = t.clone(memory_format=torch.contiguous_format)
            seen.add(sk)
            tensors[key] = t.to("cpu")
            total += t.numel() * t.element_size()
        tmp = path / (name + ".tmp")
        save_file(tensors, str(tmp), metadata={"format": "pt"})
        os.replace(tmp, path / name)
        del tensors

    written = list(names)
    if len(shards) > 1:
        index = {
            "metadata": {"total_size": total},
            "weight_map": {k: n for n, keys in zip(names, shards) for k in keys},
        }
        _write_json(path / SAFE_WEIGHTS_INDEX_NAME, index)
        written.append(SAFE_WEIGHTS_INDEX_NAME)

    config = getattr(model, "config", None)
    if config is not None:
        cfg = dict(config.to_dict())
        dtypes = {t.dtype for t in state.values() if t.is_floating_point()}
        params = {p.dtype for p in model.parameters() if p.is_floating_point()}
        main = params.pop() if len(params) == 1 else (dtypes.pop() if len(dtypes) == 1 else None)
        if main is not None:
            cfg["torch_dtype"] = str(main).removeprefix("torch.")
        arch = getattr(type(model), "_checkpoint_architecture", type(model).__name__)
        cfg.setdefault("architectures", [arch])
        _write_json(path / CONFIG_NAME, cfg)
        written.append(CONFIG_NAME)

    # Remove weight files of an earlier save that the new layout does not use (a stale model.safetensors would
    # otherwise shadow the new shards, a stale index would name files that are gone).
    keep = set(written)
    for p in path.iterdir():
        stale = p.name in (SAFE_WEIGHTS_NAME, SAFE_WEIGHTS_INDEX_NAME) or _SAFE_SHARD_RE.match(p.name)
        if stale and p.name not in keep:
            p.unlink()
    return written


def _write_json(file: Path, obj: Any) -> None:
    tmp = file.with_name(file.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n", encoding="utf-8")
    os.replace(tmp, file)


def _json_default(o: Any) -> Any:
    if isinstance(o, torch.dtype):
        return str(o).removeprefix("torch.")
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"config value of type {type(o).__name__} is not JSON serialisable")
