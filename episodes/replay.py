"""Replay: perform an episode's recorded actions again, without a model, and say where the screen differs.

The actions are replayed as performed (pixels), not re-derived from the model text, so a replay tests the
environment and the actuator, not the model. Before each action the current screenshot is compared with the
one recorded at that step; steps whose mean pixel difference is above the threshold are reported, which is
how a person finds where a site changed or a run went another way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from actuators.actions import End, action_from_dict

from .store import Episode, EpisodeError


@dataclass
class ReplayStep:
    index: int
    status: str
    difference: float | None
    differs: bool
    error: str | None = None


@dataclass
class ReplayReport:
    steps: list[ReplayStep] = field(default_factory=list)
    threshold: float = 0.02

    @property
    def differing(self) -> list[int]:
        return [s.index for s in self.steps if s.differs]

    @property
    def failed(self) -> list[int]:
        return [s.index for s in self.steps if s.status == "failed"]

    def to_dict(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "differing_steps": self.differing, "failed_steps": self.failed,
                "steps": [s.__dict__ for s in self.steps]}


def image_difference(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference in [0, 1] over RGB; images of different sizes differ completely."""
    if a.size != b.size:
        return 1.0
    x = np.asarray(a.convert("RGB"), dtype=np.int16)
    y = np.asarray(b.convert("RGB"), dtype=np.int16)
    return float(np.abs(x - y).mean() / 255.0)


def replay_episode(episode: Episode, actuator: Any, threshold: float = 0.02, settle_s: float = 0.0) -> ReplayReport:
    """Re-execute every recorded action on ``actuator`` (already at the episode's start state)."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
    report = ReplayReport(threshold=threshold)
    for step in episode.steps:
        data = step.get("action")
        if not data or step.get("status") not in ("acted", "ended", "action_failed"):
            continue
        try:
            action = action_from_dict(data)
        except ValueError as exc:
            raise EpisodeError(f"step {step['index']} of {episode.path} holds an unreadable action: {exc}") from None
        now = actuator.screenshot()
        try:
            recorded = episode.screenshot(step)
            diff = image_difference(now, recorded)
        except EpisodeError:
            diff = None
        differs = diff is None or diff > threshold
        if isinstance(action, End):
            report.steps.append(ReplayStep(step["index"], "ended", diff, differs))
            break
        outcome = actuator.perform(action)
        if settle_s:
            time.sleep(settle_s)
        report.steps.append(ReplayStep(step["index"], "ok" if outcome.ok else "failed", diff, differs, outcome.error))
    return report
