"""The annotated screenshot of a step: the model's box and the action actually performed, drawn once."""

from __future__ import annotations

from PIL import Image

from actuators.actions import Action
from vision.draw import draw_action
from vision.geometry import Grounding


def annotate_step(screenshot: Image.Image, grounding: Grounding | None, action: Action | None) -> Image.Image | None:
    """None when there is nothing to draw (the model's output did not become an action)."""
    if action is None:
        return None
    box = grounding.box.as_tuple() if grounding is not None and grounding.box is not None else None
    return draw_action(screenshot, action.to_dict(), box=box)
