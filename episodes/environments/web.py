"""The bundled web site as an environment suite: ``web:<task>`` for every task in ``episodes.webapp.tasks``.

Each reset opens a fresh session on the site (its own state on the server) in a fresh browser limited to the
site's host, so a run cannot wander off to the internet and runs never see each other's state.

``WebScriptPolicy`` solves a task from its scripted solution, writing CogAgent's own words (the 18B web dialect,
with boxes measured from the live page), so a scripted run exercises the grammar, the coordinate conversion
and the actuator exactly as a model's run does.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from PIL import Image

from actuators.base import BaseActuator
from vision.geometry import box_to_norm

from ..policies import HistoryItem, PolicyError, PolicyReply
from ..webapp.server import WebAppServer
from ..webapp.tasks import WEB_TASKS, WebTask

_shared_server: WebAppServer | None = None


def shared_server() -> WebAppServer:
    """One site server per process: sessions keep runs apart, and a server costs a port and a thread."""
    global _shared_server
    if _shared_server is None or getattr(_shared_server, "_closed", False):
        _shared_server = WebAppServer()
    return _shared_server


def task_names() -> list[str]:
    return sorted(WEB_TASKS)


class WebEnvironment:
    def __init__(self, task: WebTask, server: WebAppServer | None = None, **browser: Any) -> None:
        self.task = task
        self.name = f"web:{task.name}"
        self.instruction = task.instruction
        self.max_steps = task.max_steps
        self.server = server or shared_server()
        self.browser_options = browser
        self.session: str | None = None
        self.actuator: Any = None

    def reset(self, seed: int | None = None) -> BaseActuator:
        from actuators.browser import BrowserActuator, BrowserConfig  # noqa: PLC0415

        self.close_actuator()
        self.session = self.server.new_session()
        url = self.server.page_url(self.task.start_path, self.session)
        options = {"viewport": (1280, 800), **self.browser_options}
        self.actuator = BrowserActuator(BrowserConfig(start_url=url, allowed_domains=(str(self.server.host),),
                                                      **options))
        return self.actuator

    def is_successful(self) -> bool:
        return self.session is not None and self.task.is_done(self.server.state(self.session))

    def info(self) -> dict[str, Any]:
        return {"session": self.session, "state": self.server.state(self.session) if self.session else {},
                "url": getattr(self.actuator, "url", None) if self.actuator else None}

    def close_actuator(self) -> None:
        if self.actuator is not None:
            self.actuator.close()
            self.actuator = None

    def close(self) -> None:
        self.close_actuator()


def make(task: str, **options: Any) -> WebEnvironment:
    return WebEnvironment(WEB_TASKS[task], **options)


ROLE_BY_TAG = {"input": "textbox", "textarea": "textbox", "select": "combobox", "a": "link", "button": "button",
               "range": "slider"}


class WebScriptPolicy:
    """Writes each step of a task's scripted solution as CogAgent-18B would, from the live page's boxes."""

    name = "script"
    inline = True  # answers at once; runs in the loop's thread

    def __init__(self, env: WebEnvironment) -> None:
        self.env = env
        self.position = 0

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name, "task": self.env.name}

    def _element(self, selector: str) -> tuple[tuple[float, float, float, float], str, str, bool]:
        page = self.env.actuator.page
        handle = page.locator(selector).first
        handle.wait_for(state="attached", timeout=5000)
        rect = handle.bounding_box(timeout=5000)
        if rect is None:
            raise PolicyError(f"{selector} is not displayed on {page.url}")
        # the element's role and accessible name, as a person (and CogAgent's web data) would name it: a form
        # control by its <label>, a checkbox as a checkbox, a dropdown by its label and not its option list
        info = handle.evaluate(
            "e => { const tag = e.tagName.toLowerCase(); const type = (e.getAttribute('type') || '').toLowerCase();"
            " const kind = e.getAttribute('role') || (tag === 'input' && ['checkbox', 'radio', 'range'].includes(type)"
            " ? type : tag === 'label' && e.querySelector('input[type=checkbox]') ? 'switch' : tag);"
            " const named = e.labels && e.labels.length ? (e.labels[0].innerText.split('\\n')"
            ".find(t => t.trim()) || '') : '';"
            " const text = tag === 'select' ? '' : e.innerText;"
            " return [kind, (e.getAttribute('aria-label') || named || text || e.placeholder || "
            "(tag === 'input' && !['checkbox', 'radio'].includes(type) ? e.value : '') || e.name || '')"
            ".replace(/\\s+/g, ' ').trim().slice(0, 40)]; }")
        viewport = page.viewport_size
        visible = rect["y"] >= 0 and rect["y"] + rect["height"] <= viewport["height"]
        return (rect["x"], rect["y"], rect["x"] + rect["width"], rect["y"] + rect["height"]), info[0], info[1], visible

    def _text(self, step: Any, shot_size: tuple[int, int]) -> str:
        """The 18B web dialect for clicks, typing and selects (what CogAgent-18B writes)."""
        (x1, y1, x2, y2), tag, label, _ = self._element(step.selector)
        css = self.env.actuator.scale  # screenshot pixels per CSS pixel, as measured by the actuator
        if step.kind == "click" and step.value:  # a click at a fraction of the element (a slider)
            fx, fy = (float(v) for v in step.value.split(","))
            cx, cy = x1 + fx * (x2 - x1), y1 + fy * (y2 - y1)
            x1, y1, x2, y2 = cx - 2, cy - 2, cx + 2, cy + 2
        box = box_to_norm((x1 * css.sx, y1 * css.sy, (x2 - 1) * css.sx, (y2 - 1) * css.sy), shot_size)
        role = ROLE_BY_TAG.get(tag, tag)
        target = f"[[{box[0]:03d},{box[1]:03d},{box[2]:03d},{box[3]:03d}]]"
        label = label.replace("\n", " ") or role
        plan = f"Plan: Follow the steps to {self.env.instruction[:80]}.\n"
        if step.kind == "type":
            return (f"{plan}Next Action: Type '{step.value}' into the {label} field.\n"
                    f"Grounded Operation:[{role}] {label} -> TYPE: {step.value} at the box {target}")
        if step.kind == "select":
            return (f"{plan}Next Action: Choose {step.value}.\n"
                    f"Grounded Operation:[{role}] {label} -> SELECT: {step.value} at the box {target}")
        return f"{plan}Next Action: Click {label}.\nGrounded Operation:[{role}] {label} -> CLICK at the box {target}"

    def _next_text(self, shot_size: tuple[int, int]) -> str:
        """Key presses, scrolling and the end have no 18B web form: those are written in the 9B dialect."""
        solution = self.env.task.solution
        while self.position < len(solution):
            step = solution[self.position]
            if step.kind == "scroll":
                if not self._element(step.selector)[3]:
                    return ("Action: Scroll down to find the target.\n"
                            "Grounded Operation: SCROLL_DOWN(box=[[0,0,999,999]], step_count=5, element_info='page')"
                            "\n<<一般操作>>")
                self.position += 1  # in view now: go on with the next step
                continue
            self.position += 1
            if step.kind == "press":
                return f"Action: Press {step.value}.\nGrounded Operation: KEY_PRESS(key='{step.value}')\n<<一般操作>>"
            return self._text(step, shot_size)
        return "Action: The task is complete.\nGrounded Operation: END()\n<<一般操作>>"

    def act(self, screenshot: Image.Image, task: str, history: Sequence[HistoryItem]) -> PolicyReply:
        from cogagent.grammar import parse  # noqa: PLC0415

        t0 = time.perf_counter()
        text = self._next_text(screenshot.size)
        return PolicyReply(text, parse(text), task, {"script_s": time.perf_counter() - t0})
