"""Held-out generated pages as an environment suite: ``synth:pNNN``, one grounding step on a page never trained on.

Why: the grounding target of the fine-tuning work (act on the right widget of a page the model has never seen)
measured the way the agent really runs -- the page live in Chromium, the model's whole loop, the actuator's
real click or typing -- and judged by the page itself, not by box arithmetic on a screenshot.

Pages: ``episodes.synthdata.PageMaker`` with its own seed per task (``HELD_OUT_SEED``; training data is made
with ``--seed`` 0 and 7, other random streams), served over HTTP on 127.0.0.1. The task is the page's first
single-step target that is wholly on screen and not a password field (typing a password is gated, which is not
what this suite measures). One step: ``max_steps`` is 1.

Judged by the page's own state after the step: ``is_successful`` when the target widget shows the step done
(it received the click, holds the typed value, shows the chosen option). ``info()["hit_target"]`` is the
looser grounding measure: the action reached the target widget at all (clicked it, typed something into it,
changed its option), whatever the value.
"""

from __future__ import annotations

import http.server
import random
import re
import threading
import time
from functools import lru_cache
from typing import Any, Sequence

from PIL import Image

from actuators.base import BaseActuator
from vision.geometry import box_to_norm

from ..policies import HistoryItem, PolicyReply
from ..synthdata import SITE_CSS, VIEWPORT, Page, PageMaker, Step, format_answer, pixel_box, visible_boxes

HELD_OUT_SEED = 90_210
N_TASKS = 200

_NAME = re.compile(r"^p(\d{3})$")

_STATE_JS = """(wid) => {
  const e = document.getElementById(wid);
  return {clicks: window.__clicks || [], value: e ? (e.value ?? null) : null,
          option: e && e.tagName === 'SELECT' ? e.options[e.selectedIndex].text : null,
          index: e && e.tagName === 'SELECT' ? e.selectedIndex : null};
}"""



def task_names() -> list[str]:
    return [f"p{i:03d}" for i in range(N_TASKS)]


@lru_cache(maxsize=N_TASKS)
def page_for(index: int) -> Page:
    """Task ``index``'s page: its own random stream, so any task can be made alone and always the same."""
    return PageMaker(random.Random(HELD_OUT_SEED * 1_000 + index), SITE_CSS.read_text(encoding="utf-8")).page()


class _PageServer(http.server.ThreadingHTTPServer):
    """Serves ``/pNNN.html``: each generated page, made on request."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self._thread = threading.Thread(target=self.serve_forever, name="synth-pages", daemon=True)
        self._thread.start()

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        match = re.fullmatch(r"/p(\d{3})\.html", self.path.split("?", 1)[0])
        if not match or int(match.group(1)) >= N_TASKS:
            self.send_error(404, "no such generated page")
            return
        body = page_for(int(match.group(1))).html.encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


_server: _PageServer | None = None
_server_lock = threading.Lock()


def page_server() -> _PageServer:
    """One page server per process (a port and a thread), started on first use."""
    global _server
    with _server_lock:
        if _server is None:
            _server = _PageServer()
        return _server


class SynthEnvironment:
    def __init__(self, index: int, **browser: Any) -> None:
        self.index = index
        self.page = page_for(index)
        self.name = f"synth:p{index:03d}"
        self.max_steps = 1
        self.browser_options = browser
        self.actuator: Any = None
        self.target_box: tuple[int, int, int, int] | None = None
        # the instruction is known before any page is shown: the first target that can be a task at all
        candidates = [(i, s) for i, s in self.page.extra if not _is_password(s)]
        if not candidates:  # the page's only targets were password fields: click one of its other widgets
            steps = [Step(w, "CLICK") for w in self.page.widgets if w.kind not in ("field", "select")]
            candidates = [(s.describe().rstrip("."), s) for s in steps]
        self._candidates = candidates or list(self.page.extra)
        self.instruction: str
        self.step: Step
        self.instruction, self.step = self._candidates[0]

    def reset(self, seed: int | None = None) -> BaseActuator:
        from actuators.browser import BrowserActuator, BrowserConfig  # noqa: PLC0415

        self.close()
        server = page_server()
        self.actuator = BrowserActuator(BrowserConfig(
            start_url=f"{server.origin}/p{self.index:03d}.html", allowed_domains=("127.0.0.1",),
            viewport=VIEWPORT, **self.browser_options))
        boxes = visible_boxes(self.actuator.page, VIEWPORT)
        for instruction, step in self._candidates:  # the first target wholly on screen
            if step.widget.wid in boxes:
                self.instruction, self.step = instruction, step
                self.target_box = pixel_box(boxes[step.widget.wid])
                break
        return self.actuator

    def _state(self) -> dict[str, Any]:
        if self.actuator is None:
            return {}
        try:
            return self.actuator.page.evaluate(_STATE_JS, self.step.widget.wid)
        except Exception:  # a page that cannot be read shows nothing done
            return {}

    def _judge(self) -> tuple[bool, bool]:
        """(done, hit): the step done on the target; the action reached the target at all."""
        state, step = self._state(), self.step
        if not state:
            return False, False
        wid = step.widget.wid
        if step.verb == "TYPE":
            value = state.get("value") or ""
            return value == step.value, bool(value)
        if step.verb == "SELECT":
            return state.get("option") == step.value, bool(state.get("index"))
        hit = wid in state.get("clicks", [])
        return hit, hit

    def is_successful(self) -> bool:
        return self._judge()[0]

    def info(self) -> dict[str, Any]:
        done, hit = self._judge()
        step = self.step
        return {"target": {"id": step.widget.wid, "kind": step.widget.kind, "label": step.widget.label,
                           "verb": step.verb, "value": step.value},
                "target_box_px": list(self.target_box) if self.target_box else None, "done": done,
                "hit_target": hit}

    def close(self) -> None:
        if self.actuator is not None:
            self.actuator.close()
            self.actuator = None


def _is_password(step: Step) -> bool:
    return step.widget.kind == "field" and step.widget.label == "Password"


def make(task: str, **options: Any) -> SynthEnvironment:
    match = _NAME.match(task)
    if not match:
        raise ValueError(f"synth tasks are named p000..p{N_TASKS - 1:03d}, got {task!r}")
    return SynthEnvironment(int(match.group(1)), **options)


class SynthScriptPolicy:
    """The right answer in the training data's own words (``synthdata.format_answer``) with the live box."""

    name = "script"
    inline = True

    def __init__(self, env: SynthEnvironment) -> None:
        self.env = env

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name, "task": self.env.name}

    def act(self, screenshot: Image.Image, task: str, history: Sequence[HistoryItem]) -> PolicyReply:
        from cogagent.grammar import parse  # noqa: PLC0415

        t0 = time.perf_counter()
        if self.env.target_box is None:
            text = "Action: The target is not on the screen.\nGrounded Operation: END()\n<<一般操作>>"
        else:
            text = format_answer(self.env.step, box_to_norm(self.env.target_box, screenshot.size))
        return PolicyReply(text, parse(text), task, {"script_s": time.perf_counter() - t0})
