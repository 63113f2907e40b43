"""The simulated phone as an environment suite: ``phone:<task>``, checked against the phone's Settings state.

Each environment owns one ``PhoneSim`` (a Chromium-rendered phone behind a real ADB server on 127.0.0.1) and
drives it through the real ``AndroidActuator``, so a phone episode here exercises exactly the path a real
phone would: adb-shell, raw screencap, ``input tap`` and friends.

``PhoneScriptPolicy`` writes each step of a task's solution the way CogAgent-18B does on phones (the AITW
dialect: ``Grounded Operation: tap [[x,y]]``, ``swipe up``), with the point measured from the phone's page.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from PIL import Image

from actuators.base import BaseActuator
from vision.geometry import point_to_norm

from ..policies import HistoryItem, PolicyReply


@dataclass(frozen=True)
class PhoneTask:
    name: str
    instruction: str
    initial: dict[str, Any]
    check: Callable[[dict[str, Any]], bool]
    solution: tuple[str, ...]  # CSS selectors to tap, in order; "selector@fx" taps at a fraction of its width
    max_steps: int = 10
    tags: tuple[str, ...] = field(default_factory=tuple)


SETTINGS = '[data-app="settings"]'

PHONE_TASKS: dict[str, PhoneTask] = {t.name: t for t in (
    PhoneTask("light-mode", "Turn the phone to light mode", {"dark_mode": True},
              lambda s: s.get("dark_mode") is False, (SETTINGS, "#set-display", "#row-dark")),
    PhoneTask("dark-mode", "Switch on the dark theme", {"dark_mode": False},
              lambda s: s.get("dark_mode") is True, (SETTINGS, "#set-display", "#row-dark")),
    PhoneTask("wifi-off", "Turn Wi-Fi off", {"wifi": True},
              lambda s: s.get("wifi") is False, (SETTINGS, "#set-network", "#row-wifi")),
    PhoneTask("airplane-on", "Turn on airplane mode", {"airplane_mode": False},
              lambda s: s.get("airplane_mode") is True, (SETTINGS, "#set-network", "#row-airplane")),
    PhoneTask("brightness-max", "Raise the screen brightness to the maximum", {"brightness": 40},
              lambda s: s.get("brightness") == 100, (SETTINGS, "#set-display", "#brightness@1.0")),
    PhoneTask("language-chinese", "Change the phone's language to Simplified Chinese", {"language": "en-US"},
              lambda s: s.get("language") == "zh-CN",
              (SETTINGS, "#set-system", "#row-languages", '[data-lang="zh-CN"]'), max_steps=12),
)}


def task_names() -> list[str]:
    return sorted(PHONE_TASKS)


class PhoneEnvironment:
    def __init__(self, task: PhoneTask, **actuator_options: Any) -> None:
        self.task = task
        self.name = f"phone:{task.name}"
        self.instruction = task.instruction
        self.max_steps = task.max_steps
        self.actuator_options = actuator_options
        self.sim: Any = None
        self.actuator: Any = None

    def reset(self, seed: int | None = None) -> BaseActuator:
        from actuators.android import AndroidActuator  # noqa: PLC0415

        from ..phone.phone_sim import PhoneSim  # noqa: PLC0415

        if self.actuator is not None:
            self.actuator.close()
        if self.sim is None:
            self.sim = PhoneSim()
            self.port = self.sim.start()
        self.sim.reset(dict(self.task.initial))
        self.actuator = AndroidActuator("127.0.0.1", self.port, **self.actuator_options)
        return self.actuator

    def state(self) -> dict[str, Any]:
        return self.sim.state() if self.sim is not None else {}

    def is_successful(self) -> bool:
        try:
            return bool(self.task.check(self.state()))
        except Exception:  # a phone that cannot be read is not a task done
            return False

    def info(self) -> dict[str, Any]:
        state = self.state()
        return {"state": {k: state.get(k) for k in ("dark_mode", "wifi", "airplane_mode", "brightness", "language",
                                                     "current_screen")}}

    def close(self) -> None:
        if self.actuator is not None:
            self.actuator.close()
            self.actuator = None
        if self.sim is not None:
            self.sim.close()
            self.sim = None


def make(task: str, **options: Any) -> PhoneEnvironment:
    return PhoneEnvironment(PHONE_TASKS[task], **options)


class PhoneScriptPolicy:
    """Taps through a task's solution, scrolling (``swipe up``) while the next target is below the fold."""

    name = "script"
    inline = True  # reads the phone's page between steps; answers at once

    def __init__(self, env: PhoneEnvironment) -> None:
        self.env = env
        self.position = 0

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name, "task": self.env.name}

    def _target(self, spec: str) -> tuple[tuple[int, int], bool]:
        selector, _, fraction = spec.partition("@")
        rect = self.env.sim.evaluate(
            "(s) => { const e = document.querySelector(s); if (!e) return null; const r = e.getBoundingClientRect();"
            " return [r.left, r.top, r.width, r.height, window.innerHeight]; }", selector)
        if rect is None:
            return (0, 0), False
        left, top, width, height, view_h = rect
        visible = top >= 0 and top + height <= view_h * 0.92  # clear of the navigation bar
        fx = float(fraction) if fraction else 0.5
        scale = self.env.actuator.screen_size[0] / self.env.sim.evaluate("() => window.innerWidth")
        x = min(left + fx * width, left + width - 1)
        return (round(x * scale), round((top + height / 2) * scale)), visible

    def act(self, screenshot: Image.Image, task: str, history: Sequence[HistoryItem]) -> PolicyReply:
        from cogagent.grammar import parse  # noqa: PLC0415

        t0 = time.perf_counter()
        solution = self.env.task.solution
        if self.position >= len(solution):
            text = "Next Action: The task is complete.\nGrounded Operation: task complete"
        else:
            point, visible = self._target(solution[self.position])
            if not visible:
                text = "Next Action: Scroll down to find the next item.\nGrounded Operation: swipe up"
            else:
                self.position += 1
                x, y = point_to_norm(point, screenshot.size)
                text = f"Next Action: Tap the next item.\nGrounded Operation: tap [[{x:03d},{y:03d}]]"
        text = f"Plan: {task}.\n{text}"
        return PolicyReply(text, parse(text), task, {"script_s": time.perf_counter() - t0})
