"""A uniformly random clicker: the floor any agent's success rate should be read against."""

from __future__ import annotations

import random
from typing import Any, Sequence

from PIL import Image

from cogagent.grammar import parse

from .policies import HistoryItem, PolicyReply


class RandomPolicy:
    name = "random"
    inline = True  # answers at once; runs in the loop's thread

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self._rng = random.Random(seed)

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name, "seed": self.seed}

    def act(self, screenshot: Image.Image, task: str, history: Sequence[HistoryItem]) -> PolicyReply:
        x, y = self._rng.randrange(20, 980), self._rng.randrange(20, 980)
        text = (f"Plan: Click somewhere.\nNext Action: Click at random.\n"
                f"Grounded Operation:[button] random -> CLICK at the box [[{x - 10:03d},{y - 10:03d},{x + 10:03d},{y + 10:03d}]]")
        return PolicyReply(text, parse(text), task, {})
