"""MiniWoB++ (the PyPI package ``miniwob``) as an environment suite: ``miniwob:<task>``.

The package ships its 130 task pages as static files; its own driver is Selenium, which we do not use. We
serve the pages from a small local HTTP server and drive them with our ``BrowserActuator`` (Playwright), so a
MiniWoB episode exercises exactly the path a model's run takes: screenshot -> text -> grammar -> geometry ->
real mouse and keyboard events. The task's own JavaScript (``core.js``) decides success: ``WOB_DONE_GLOBAL``
and ``WOB_RAW_REWARD_GLOBAL`` are read from the page, never inferred from what the agent did.

Why these settings:

* The task area is 160x210 CSS pixels, far too small for a screenshot model; the viewport is exactly that area
  and the device scale factor (3 by default) makes the screenshot 480x630, so the text is legible while the
  page's own layout (and so its reward logic) is untouched.
* Pages ship with episode limits of 7-30 s, tuned for RL agents acting in milliseconds; a model step takes
  seconds, so ``core.EPISODE_MAX_TIME`` is raised (10 minutes by default) before the episode starts.
* Which tasks are offered (``task_names()``) comes from ``miniwob_tasks.json``, written by
  ``benchmarks/miniwob_survey.py``, which loads every page and records why a task is left out.

``MiniWobScriptPolicy`` solves a handful of simple tasks from the utterance and the live DOM, writing
CogAgent-18B's web dialect with boxes measured on the page, so a scripted run checks the harness end to end.
"""

from __future__ import annotations

import http.server
import json
import mimetypes
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable, Sequence
from urllib.parse import unquote, urlsplit

from PIL import Image

from actuators.base import BaseActuator
from vision.geometry import box_to_norm

from ..policies import HistoryItem, PolicyError, PolicyReply

TASK_TABLE = Path(__file__).with_name("miniwob_tasks.json")
"""The survey's verdict on every task (``works`` and, for those left out, ``reason``)."""

TASK_AREA = (160, 210)
"""MiniWoB's task area in CSS pixels (``#wrap`` in core.css); every task in ``html/miniwob`` uses it."""

DEFAULT_SCALE = 3.0
DEFAULT_EPISODE_SECONDS = 600.0
READY_TIMEOUT_S = 10.0
GENERIC_INSTRUCTION = "Complete the MiniWoB++ task shown in the yellow box at the top of the page."


class MiniWobError(RuntimeError):
    """The MiniWoB page could not be set up (package missing, page broken, episode would not start)."""


# --- the static file server ----------------------------------------------------------------------------------

def html_root() -> Path:
    """The ``html/`` directory of the installed ``miniwob`` package."""
    try:
        import miniwob  # noqa: PLC0415
    except ImportError:
        raise MiniWobError("the MiniWoB++ suite needs the miniwob package: pip install 'miniwob>=1.1' "
                           "(or pip install 'cogagent-runtime[eval]')") from None
    root = Path(miniwob.__file__).resolve().parent / "html"
    if not (root / "core" / "core.js").is_file():
        raise MiniWobError(f"{root} has no core/core.js: the miniwob package is incomplete; reinstall it")
    return root


class _StaticHandler(http.server.BaseHTTPRequestHandler):
    """GET/HEAD of regular files under ``root`` only: no listings, no writes, no way out of ``root``."""

    root: Path
    server_version = "miniwob-static"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
        pass  # tests and surveys make hundreds of requests; nobody reads them

    def _resolve(self) -> tuple[int, Path | None]:
        raw = urlsplit(self.path).path
        path = unquote(raw)
        if "\x00" in path or "\\" in path:
            return 400, None
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if any(p == ".." for p in parts):
            return 403, None
        target = self.root.joinpath(*parts).resolve() if parts else self.root
        if not target.is_relative_to(self.root):  # a symlink that points out of the tree
            return 403, None
        if not target.is_file():
            return 404, None
        return 200, target

    def _serve(self, body: bool) -> None:
        code, target = self._resolve()
        if target is None:
            self.send_error(code)
            return
        try:
            data = target.read_bytes()
        except OSError:
            self.send_error(404)
            return
        ctype = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self._serve(True)

    def do_HEAD(self) -> None:  # noqa: N802
        self._serve(False)


class MiniWobServer:
    """The package's ``html/`` directory on ``127.0.0.1`` (port chosen by the OS), in a daemon thread."""

    host = "127.0.0.1"

    def __init__(self, root: Path | None = None) -> None:
        self.root = (root or html_root()).resolve()
        handler = type("Handler", (_StaticHandler,), {"root": self.root})
        self._httpd = http.server.ThreadingHTTPServer((self.host, 0), handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="miniwob-http", daemon=True)
        self._thread.start()
        self._closed = False

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return f"http://{self.netloc}/{path.lstrip('/')}"

    def task_url(self, task: str) -> str:
        return self.url(f"miniwob/{task}.html")

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(timeout=5)

    def __enter__(self) -> "MiniWobServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


_server: MiniWobServer | None = None
_server_lock = threading.Lock()


def shared_server() -> MiniWobServer:
    """One server per process, started on first use: episodes only read static files, so they can share it."""
    global _server
    with _server_lock:
        if _server is None or _server._closed:
            _server = MiniWobServer()
        return _server


# --- the task table ------------------------------------------------------------------------------------------

def all_tasks() -> list[str]:
    """Every task page the package ships (``html/miniwob/*.html``)."""
    return sorted(p.stem for p in (html_root() / "miniwob").glob("*.html"))


def task_table() -> dict[str, dict[str, Any]]:
    """The survey's record: task -> {"works": bool, "reason": str | None, ...}."""
    try:
        data = json.loads(TASK_TABLE.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MiniWobError(f"{TASK_TABLE} is missing: run benchmarks/miniwob_survey.py to write it") from None
    return dict(data["tasks"])


def task_names() -> list[str]:
    """The tasks the harness runs here (loads, starts, has an utterance and a readable reward, can end, and
    needs no interaction that model text cannot express); see ``task_table()`` for the others and why."""
    return sorted(t for t, row in task_table().items() if row.get("works"))


# --- the environment -----------------------------------------------------------------------------------------

_START_JS = """
([maxMs, seed, mode]) => {
  core.EPISODE_MAX_TIME = maxMs;
  if (seed !== null) Math.seedrandom(seed);
  core.setDataMode(mode);
  core.startEpisodeReal();
  // The reward HUD sits right of the 160 px task area; hidden, the page is no wider than the viewport, so
  // nothing (a focused dialog, say) can scroll the task sideways out of the screenshot.
  core.hideDisplay();
  window.scrollTo(0, 0);
  return true;
}
"""
_STATE_JS = """
() => ({done: !!WOB_DONE_GLOBAL, reward: Number(WOB_REWARD_GLOBAL), raw_reward: Number(WOB_RAW_REWARD_GLOBAL),
        reason: WOB_REWARD_REASON === null || WOB_REWARD_REASON === undefined ? null : String(WOB_REWARD_REASON),
        episode_id: WOB_EPISODE_ID})
"""


class MiniWobEnvironment:
    """One MiniWoB task; each ``reset`` opens a fresh browser on the task page and starts a seeded episode."""

    def __init__(self, task: str, server: MiniWobServer | None = None, *, episode_seconds: float =
                 DEFAULT_EPISODE_SECONDS, data_mode: str = "train", max_steps: int = 10,
                 device_scale_factor: float = DEFAULT_SCALE, **browser: Any) -> None:
        if not isinstance(episode_seconds, (int, float)) or not 1 <= episode_seconds <= 86_400:
            raise ValueError(f"episode_seconds must be between 1 and 86400, got {episode_seconds!r}")
        if data_mode not in ("train", "test", "default"):
            raise ValueError(f"data_mode must be 'train', 'test' or 'default', got {data_mode!r}")
        self.task = task
        self.name = f"miniwob:{task}"
        self.instruction = GENERIC_INSTRUCTION
        self.fields: dict[str, Any] = {}
        self.max_steps = int(max_steps)
        self.episode_seconds = float(episode_seconds)
        self.data_mode = data_mode
        self.server = server or shared_server()
        self.browser_options = {"viewport": TASK_AREA, "device_scale_factor": device_scale_factor, **browser}
        self.actuator: Any = None
        self.seed: int | None = None
        self.page_errors: list[str] = []

    def reset(self, seed: int | None = None) -> BaseActuator:
        from actuators.browser import BrowserActuator, BrowserConfig  # noqa: PLC0415

        self.close()
        self.seed = seed
        self.page_errors = []
        self.instruction = GENERIC_INSTRUCTION
        self.actuator = BrowserActuator(BrowserConfig(start_url=self.server.task_url(self.task),
                                                      allowed_domains=(self.server.netloc,),
                                                      **self.browser_options))
        page = self.actuator.page
        page.on("pageerror", lambda exc: self.page_errors.append(str(exc)[:300]))
        timeout_ms = READY_TIMEOUT_S * 1000
        try:
            # window.onload shows the START cover; that is when core and genProblem are both defined.
            page.wait_for_function("() => typeof core !== 'undefined' && typeof genProblem === 'function' && "
                                   "!!document.getElementById('sync-task-cover')", timeout=timeout_ms)
            page.evaluate(_START_JS, [int(self.episode_seconds * 1000), seed, self.data_mode])
            page.wait_for_function("() => WOB_TASK_READY === true", timeout=timeout_ms)
            said = page.evaluate("() => core.getUtterance()")
        except Exception as exc:
            errors = f"; page errors: {self.page_errors}" if self.page_errors else ""
            raise MiniWobError(f"{self.name}: the episode did not start: {str(exc).splitlines()[0]}{errors}") from exc
        # core.getUtterance() is a string, except in tasks that return {utterance, fields} (the *-nl-turk ones).
        if isinstance(said, dict):
            self.fields = dict(said.get("fields") or {})
            said = said.get("utterance", "")
        self.instruction = " ".join(str(said or "").split())
        return self.actuator

    def state(self) -> dict[str, Any]:
        """The page's reward globals; ``{}`` when there is no page (not reset, or closed)."""
        if self.actuator is None:
            return {}
        return dict(self.actuator.page.evaluate(_STATE_JS))

    def is_successful(self) -> bool:
        try:
            s = self.state()
        except Exception:  # the page is gone or navigated away from the task: not a success
            return False
        return bool(s.get("done")) and float(s.get("raw_reward", 0)) > 0

    def info(self) -> dict[str, Any]:
        try:
            s = self.state()
        except Exception as exc:
            s = {"error": f"could not read the reward: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"}
        return {"task": self.task, "seed": self.seed, "utterance": self.instruction, "fields": self.fields,
                "done": s.get("done"), "reward": s.get("reward"), "raw_reward": s.get("raw_reward"),
                "reason": s.get("reason"), "state": s, "page_errors": list(self.page_errors),
                **({"error": s["error"]} if "error" in s else {})}

    def close(self) -> None:
        if self.actuator is not None:
            try:
                self.actuator.close()
            finally:
                self.actuator = None


def make(task: str, **options: Any) -> MiniWobEnvironment:
    return MiniWobEnvironment(task, **options)


# --- the scripted policy -------------------------------------------------------------------------------------

_FIND_JS = """
({sel, text, part}) => {
  const norm = s => (s || '').replace(/\\s+/g, ' ').trim();
  const shown = e => { const r = e.getBoundingClientRect(); const st = getComputedStyle(e);
    return r.width > 0 && r.height > 0 && st.visibility !== 'hidden' && st.display !== 'none'; };
  const out = [];
  for (const el of document.querySelectorAll(sel)) {
    if (text !== null && norm(el.textContent) !== text) continue;
    const t = part ? el.querySelector(part) : el;
    if (!t || !shown(t)) continue;
    const r = t.getBoundingClientRect();
    out.push({x: r.left, y: r.top, w: r.width, h: r.height, tag: t.tagName.toLowerCase(),
              type: (t.getAttribute('type') || '').toLowerCase(), checked: !!t.checked,
              value: t.value === undefined ? null : String(t.value),
              label: (el !== t ? norm(el.textContent)
                      : ['INPUT', 'TEXTAREA', 'SELECT'].includes(t.tagName)
                        ? norm(t.getAttribute('aria-label') || t.getAttribute('placeholder') || t.id)
                        : norm(t.textContent || t.getAttribute('title'))).slice(0, 40)});
  }
  return out;
}
"""

ROLES = {"input": "textbox", "textarea": "textbox", "select": "combobox", "a": "link", "button": "button"}
INPUT_ROLES = {"checkbox": "checkbox", "radio": "radio", "password": "textbox", "text": "textbox"}


class Step:
    """What the script does next: ``verb`` (CLICK, TYPE, SELECT) on ``element`` (a found DOM box)."""

    def __init__(self, verb: str, element: dict[str, Any], value: str = "", why: str = "") -> None:
        self.verb, self.element, self.value, self.why = verb, element, value, why


Look = Callable[..., list[dict[str, Any]]]
Solver = Callable[[Look, str, dict[str, Any]], "Step | None"]


def _quoted(utterance: str) -> list[str]:
    return re.findall(r'"([^"]*)"', utterance)


def _one(look: Look, sel: str, text: str | None = None, part: str | None = None) -> dict[str, Any]:
    found = look(sel, text, part)
    if not found:
        raise PolicyError(f"nothing matches {sel!r}" + (f" with text {text!r}" if text is not None else "")
                          + " on the page")
    return found[0]


def _submit(look: Look, label: str = "Submit") -> Step:
    return Step("CLICK", _one(look, "#area button", label), why=f"press {label}")


def _click_button(look: Look, u: str, memo: dict[str, Any]) -> Step | None:
    if memo.get("done"):
        return None
    memo["done"] = True
    return Step("CLICK", _one(look, "#area button", _quoted(u)[0]))


def _click_link(look: Look, u: str, memo: dict[str, Any]) -> Step | None:
    if memo.get("done"):
        return None
    memo["done"] = True
    return Step("CLICK", _one(look, "#area .alink", _quoted(u)[0]))


def _click_dialog(look: Look, u: str, memo: dict[str, Any]) -> Step | None:
    if memo.get("done"):
        return None
    memo["done"] = True
    return Step("CLICK", _one(look, ".ui-dialog-titlebar-close"), why="close the dialog with its x")


def _focus_text(look: Look, u: str, memo: dict[str, Any]) -> Step | None:
    if memo.get("done"):
        return None
    memo["done"] = True
    return Step("CLICK", _one(look, "#area input[type=text]"), why="focus the text box")


def _click_test(look: Look, u: str, memo: dict[str, Any]) -> Step | None:
    if memo.get("done"):
        return None
    memo["done"] = True
    return Step("CLICK", _one(look, "#area button"))


def _click_button_sequence(look: Look, u: str, memo: dict[str, Any]) -> Step | None:
    order = memo.setdefault("order", ["ONE", "TWO"])
    if not order:
        return None
    return Step("CLICK", _one(look, "#area button", order.pop(0)))


def _click_tab(look: Look, u: str, memo: dict[str, Any]) -> Step | None:
    if memo.get("done"):
        return None
    memo["done"] = True
    tab = re.search(r"Tab #(\d+)", u)
    if not tab:
        raise PolicyError(f"no tab number in {u!r}")
    return Step("CLICK", _one(look, "#area ul a", f"Tab #{tab.group(1)}"))


def _fill(look: Look, fields: Sequence[tuple[str, str]], memo: dict[str, Any], button: str) -> Step | None:
    """Type each (selector, text) into its field, then press ``button``."""
    at = memo.setdefault("at", 0)
    memo["at"] = at + 1
    if at < len(fields):
        sel, text = fields[at]
        return Step("TYPE", _one(look, sel), text)
    if at == len(fields):
        return _submit(look, button)
    return None


def _enter_text(look: Look, u: str, memo: dict[str, Any]) -> Step | None:
    return _fill(look, [("#tt", _quoted(u)[0])], memo, "Submit")


def _login_user(look: Look, u: str, memo: dict[str, Any]) -> Step | None:
    user, password = _quoted(u)[:2]
    return _fill(look, [("#username", user), ("#password", password)], memo, "Login")


def _enter_password(look: Look, u: str, memo: dict[str, Any]) -> Step | None:
    password = _quoted(u)[0]
    return _fill(look, [("#password", password), ("#verify", password)], memo, "Submit")


def _choices(u: str) -> list[str]:
    m = re.match(r"Select (.*) and click Submit\.$", u)
    if not m:
        raise PolicyError(f"cannot read the choices from {u!r}")
    return [] if m.group(1) == "nothing" else [s.strip() for s in m.group(1).split(",")]


def _click_checkboxes(look: Look, u: str, memo: dict[str, Any]) -> Step | None:
    if memo.get("submitted"):
        return None
    want = set(_choices(u))
    for box in look("#boxes label", None, "input"):  # re-read every step: toggle what is still wrong
        if (box["label"] in want) != box["checked"]:
            return Step("CLICK", box, why=("tick " if not box["checked"] else "untick ") + box["label"])
    memo["submitted"] = True
    return _submit(look)


def _click_option(look: Look, u: str, memo: dict[str, Any]) -> Step | None:
    if memo.get("submitted"):
        return None
    (name,) = _choices(u)
    radio = _one(look, "#boxes label", name, "input")
    if not radio["checked"]:
        return Step("CLICK", radio, why=f"choose {name}")
    memo["submitted"] = True
    return _submit(look)


def _choose_list(look: Look, u: str, memo: dict[str, Any]) -> Step | None:
    m = re.match(r"Select (.*) from the list and click Submit\.$", u)
    if not m:
        raise PolicyError(f"cannot read the item from {u!r}")
    at = memo.setdefault("at", 0)
    memo["at"] = at + 1
    if at == 0:
        return Step("SELECT", _one(look, "#area select"), m.group(1))
    return _submit(look) if at == 1 else None


def _use_autocomplete(look: Look, u: str, memo: dict[str, Any]) -> Step | None:
    quoted = _quoted(u)
    start, end = quoted[0], (quoted[1] if len(quoted) > 1 else "")
    stage = memo.setdefault("stage", "type")
    if stage == "type":
        memo["stage"] = "pick"
        return Step("TYPE", _one(look, "#tags"), start, why=f"type the start {start!r} to open the suggestions")
    if stage == "pick":
        memo["stage"] = "submit"
        waiter = memo["wait"]
        waiter("ul.ui-autocomplete li")  # suggestions come after the widget's search delay (300 ms)
        for item in look("ul.ui-autocomplete li"):
            if item["label"].startswith(start) and item["label"].endswith(end):
                if item["y"] + item["h"] <= TASK_AREA[1]:
                    return Step("CLICK", item, why=f"pick the suggestion {item['label']}")
                return Step("TYPE", _one(look, "#tags"), item["label"], why="the suggestion is below the page")
        raise PolicyError(f"no suggestion starts with {start!r} and ends with {end!r}")
    if stage == "submit":
        memo["stage"] = "end"
        return _submit(look)
    return None


SOLVERS: dict[str, Solver] = {
    "click-button": _click_button,
    "click-link": _click_link,
    "click-dialog": _click_dialog,
    "focus-text": _focus_text,
    "click-test": _click_test,
    "click-button-sequence": _click_button_sequence,
    "click-tab": _click_tab,
    "enter-text": _enter_text,
    "login-user": _login_user,
    "enter-password": _enter_password,
    "click-checkboxes": _click_checkboxes,
    "click-option": _click_option,
    "choose-list": _choose_list,
    "use-autocomplete": _use_autocomplete,
}
"""Tasks with a scripted solution; each reads the utterance and the live page, never the task's answer."""


class MiniWobScriptPolicy:
    """Writes each step of a scripted solution as CogAgent-18B would, with boxes measured on the live page."""

    name = "script"
    inline = True  # reads the page through Playwright objects that belong to the loop's thread

    def __init__(self, env: MiniWobEnvironment) -> None:
        if env.task not in SOLVERS:
            raise PolicyError(f"no scripted solution for {env.name}; scripted tasks: {', '.join(sorted(SOLVERS))}")
        self.env = env
        self.solver = SOLVERS[env.task]
        self.memo: dict[str, Any] = {"wait": self._wait}

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name, "task": self.env.name}

    def _look(self, sel: str, text: str | None = None, part: str | None = None) -> list[dict[str, Any]]:
        return list(self.env.actuator.page.evaluate(_FIND_JS, {"sel": sel, "text": text, "part": part}))

    def _wait(self, sel: str, timeout_s: float = 3.0) -> None:
        try:
            self.env.actuator.page.wait_for_selector(sel, state="visible", timeout=timeout_s * 1000)
        except Exception:
            pass  # the solver then finds nothing and says so

    def _text(self, step: Step, shot_size: tuple[int, int]) -> str:
        e = step.element
        css = self.env.actuator.scale  # screenshot pixels per CSS pixel, as measured by the actuator
        w, h = shot_size
        x1, y1 = max(0.0, e["x"] * css.sx), max(0.0, e["y"] * css.sy)
        x2, y2 = min(w - 1.0, (e["x"] + e["w"]) * css.sx - 1), min(h - 1.0, (e["y"] + e["h"]) * css.sy - 1)
        box = box_to_norm((x1, y1, x2, y2), shot_size)
        target = f"[[{box[0]:03d},{box[1]:03d},{box[2]:03d},{box[3]:03d}]]"
        role = INPUT_ROLES.get(e["type"], "textbox") if e["tag"] == "input" else ROLES.get(e["tag"], e["tag"])
        if e["tag"] == "span" or (e["tag"] == "a" and role == "link"):
            role = "link"
        label = e["label"] or role
        label = label.replace("\n", " ").replace("->", "-")
        plan = f"Plan: {step.why or 'Do what the task says'} to: {self.env.instruction[:100]}\n"
        if step.verb == "TYPE":
            return (f"{plan}Next Action: Type '{step.value}' into the {label}.\n"
                    f"Grounded Operation:[{role}] {label} -> TYPE: {step.value} at the box {target}")
        if step.verb == "SELECT":
            return (f"{plan}Next Action: Choose {step.value} in the list.\n"
                    f"Grounded Operation:[{role}] {label} -> SELECT: {step.value} at the box {target}")
        return f"{plan}Next Action: Click {label}.\nGrounded Operation:[{role}] {label} -> CLICK at the box {target}"

    def next_text(self, shot_size: tuple[int, int]) -> str:
        try:
            step = self.solver(self._look, self.env.instruction, self.memo)
        except (IndexError, ValueError) as exc:
            raise PolicyError(f"{self.env.name}: cannot read the task from {self.env.instruction!r}: {exc}") from exc
        if step is None:
            return "Action: The task is complete.\nGrounded Operation: END()\n<<一般操作>>"
        return self._text(step, shot_size)

    def act(self, screenshot: Image.Image, task: str, history: Sequence[HistoryItem]) -> PolicyReply:
        from cogagent.grammar import parse  # noqa: PLC0415

        t0 = time.perf_counter()
        text = self.next_text(screenshot.size)
        return PolicyReply(text, parse(text), task, {"script_s": time.perf_counter() - t0})
