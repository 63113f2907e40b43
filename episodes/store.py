"""Episodes on disk: a directory a crash cannot corrupt.

Layout (``FORMAT``)::

    episode.json             task, policy, environment, config, start/end, result (rewritten atomically)
    steps.jsonl              one JSON line per finished step, appended and fsync'ed before the next step starts
    step-NNN.png             the screenshot the model saw at step NNN
    step-NNN.annotated.png   the same with the box and the click point drawn

Every write is either an atomic rename (JSON, PNG) or an fsync'ed append of one whole line, so a ``kill -9`` at
any moment leaves a directory that ``load_episode`` reads back with every completed step. A line cut short by
the kill (the only thing a crash can leave behind) is detected and ignored on read, and reported.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from PIL import Image

FORMAT = "cogagent-episode/1"
EPISODE_FILE = "episode.json"
STEPS_FILE = "steps.jsonl"


class EpisodeError(ValueError):
    """An episode directory that cannot be read or written; the message names the file and what to do."""


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that readers see the old file or the new one, never half of either."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=1)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def save_png_atomic(image: Image.Image, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    with open(tmp, "wb") as fh:
        image.save(fh, format="PNG", compress_level=1)  # level 1: 3-5x faster than default, files ~20% larger
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def step_png_names(index: int) -> tuple[str, str]:
    return f"step-{index:03d}.png", f"step-{index:03d}.annotated.png"


@dataclass
class Episode:
    """An episode read back from disk."""

    path: Path
    meta: dict[str, Any]
    steps: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)

    @property
    def task(self) -> str:
        return str(self.meta.get("task", ""))

    @property
    def result(self) -> dict[str, Any]:
        return dict(self.meta.get("result") or {})

    def screenshot(self, step: dict[str, Any], annotated: bool = False) -> Image.Image:
        """The screenshot of ``step``; a clear error when the file is gone."""
        name = step.get("annotated" if annotated else "screenshot")
        if not name:
            raise EpisodeError(f"step {step.get('index')} of {self.path} records no screenshot")
        file = self.path / name
        if not file.is_file():
            raise EpisodeError(f"{file} is missing: the episode directory was changed after it was written")
        with Image.open(file) as img:
            return img.convert("RGB")

    def iter_steps(self) -> Iterator[dict[str, Any]]:
        return iter(self.steps)


def load_episode(path: str | os.PathLike[str]) -> Episode:
    """Read an episode directory; a half-written last step line is dropped and reported in ``warnings``."""
    root = Path(path)
    if not root.is_dir():
        raise EpisodeError(f"{root} is not a directory: pass the episode directory (it holds {EPISODE_FILE})")
    meta_file = root / EPISODE_FILE
    if not meta_file.is_file():
        raise EpisodeError(f"{root} holds no {EPISODE_FILE}: not an episode directory, or its writer died "
                           "before the first write")
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EpisodeError(f"{meta_file} is not valid JSON ({exc}); the file was edited or damaged") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise EpisodeError(f"{meta_file} is not a {FORMAT} episode (format={meta.get('format') if isinstance(meta, dict) else None!r})")
    steps: list[dict[str, Any]] = []
    warnings: list[str] = []
    steps_file = root / STEPS_FILE
    if steps_file.is_file():
        raw = steps_file.read_bytes()
        lines = raw.split(b"\n")
        complete, tail = lines[:-1], lines[-1]
        if tail.strip():
            warnings.append(f"{STEPS_FILE}: dropped a half-written last line ({len(tail)} bytes)")
        for number, line in enumerate(complete, start=1):
            if not line.strip():
                continue
            try:
                step = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise EpisodeError(f"{steps_file}:{number} is not valid JSON ({exc})") from None
            if not isinstance(step, dict) or "index" not in step:
                raise EpisodeError(f"{steps_file}:{number} is not a step record (no 'index')")
            steps.append(step)
    for step in steps:
        for key in ("screenshot", "annotated"):
            name = step.get(key)
            if name and not (root / name).is_file():
                warnings.append(f"step {step['index']}: {name} is missing")
    return Episode(root, meta, steps, warnings)


class EpisodeWriter:
    """Writes one episode; every method leaves the directory readable if the process dies right after it."""

    def __init__(self, path: Path, meta: dict[str, Any], steps: list[dict[str, Any]] | None = None) -> None:
        self.path = path
        self.meta = meta
        self.steps: list[dict[str, Any]] = list(steps or [])

    @classmethod
    def create(cls, root: str | os.PathLike[str], task: str, **meta: Any) -> "EpisodeWriter":
        """A new episode directory under ``root`` named by time and a short id."""
        base = Path(root)
        base.mkdir(parents=True, exist_ok=True)
        episode_id = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:6]
        path = base / episode_id
        path.mkdir()
        data = {
            "format": FORMAT,
            "id": episode_id,
            "task": task,
            "started_at": time.time(),
            "ended_at": None,
            "result": {"status": "running", "reason": None, "steps": 0},
            **meta,
        }
        writer = cls(path, data)
        write_json_atomic(path / EPISODE_FILE, data)
        return writer

    @classmethod
    def reopen(cls, episode: Episode) -> "EpisodeWriter":
        """Continue writing an existing (interrupted) episode."""
        meta = dict(episode.meta)
        meta.setdefault("resumed_at", [])
        meta["resumed_at"] = [*meta["resumed_at"], time.time()]
        meta["result"] = {**meta.get("result", {}), "status": "running", "reason": None}
        writer = cls(episode.path, meta, episode.steps)
        # Rewrite steps.jsonl without a half-written tail so that new lines start on a clean line.
        if episode.warnings and any("half-written" in w for w in episode.warnings):
            lines = "".join(json.dumps(s, ensure_ascii=False) + "\n" for s in episode.steps)
            tmp = episode.path / f".{STEPS_FILE}.tmp"
            tmp.write_text(lines, encoding="utf-8")
            os.replace(tmp, episode.path / STEPS_FILE)
        write_json_atomic(episode.path / EPISODE_FILE, meta)
        return writer

    @property
    def next_index(self) -> int:
        return len(self.steps)

    def save_screenshots(self, index: int, screenshot: Image.Image, annotated: Image.Image | None) -> tuple[str, str | None]:
        plain, marked = step_png_names(index)
        save_png_atomic(screenshot, self.path / plain)
        if annotated is not None:
            save_png_atomic(annotated, self.path / marked)
            return plain, marked
        return plain, None

    def append_step(self, step: dict[str, Any]) -> None:
        """Append one finished step as one fsync'ed line: after this returns the step survives a crash."""
        line = json.dumps(step, ensure_ascii=False, default=str) + "\n"
        with open(self.path / STEPS_FILE, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            os.fsync(fh.fileno())
        self.steps.append(step)
        self.meta["result"] = {**self.meta.get("result", {}), "steps": len(self.steps)}

    def finish(self, status: str, reason: str | None = None, **extra: Any) -> None:
        self.meta["ended_at"] = time.time()
        self.meta["result"] = {"status": status, "reason": reason, "steps": len(self.steps), **extra}
        write_json_atomic(self.path / EPISODE_FILE, self.meta)

    def update_meta(self, **fields: Any) -> None:
        self.meta.update(fields)
        write_json_atomic(self.path / EPISODE_FILE, self.meta)
