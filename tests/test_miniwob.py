"""MiniWoB++ in a real Chromium: the static server over real sockets, episodes started in the task pages, and
the scripted policy run through the real loop (grammar -> geometry -> BrowserActuator), with success read from
the page's own reward globals.

Each test owns its environment (and so its browser) and closes it; the one thing shared is the file server,
which serves static files only.
"""

from __future__ import annotations

import http.client
import json
import os
import re
from pathlib import Path
from typing import Any, Sequence

import pytest
from PIL import Image

from episodes.environments import miniwob
from episodes.environments.base import TaskNotFound, list_tasks, make_env, parse_spec
from episodes.evaluate import run_one, script_policy
from episodes.loop import LoopConfig
from episodes.policies import HistoryItem, PolicyError, PolicyReply

LOOP = LoopConfig(max_steps=8, max_seconds=120, step_timeout_s=60)


def _get(server: miniwob.MiniWobServer, raw_path: str, method: str = "GET") -> tuple[int, bytes]:
    """A request with the path sent exactly as written (http.client does not normalise it)."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request(method, raw_path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


@pytest.fixture()
def env_factory():
    made: list[miniwob.MiniWobEnvironment] = []

    def make(task: str, **options: Any) -> miniwob.MiniWobEnvironment:
        env = miniwob.make(task, **options)
        made.append(env)
        return env

    yield make
    for env in made:
        env.close()


# --- the file server -----------------------------------------------------------------------------------------

def test_server_serves_the_package_pages() -> None:
    root = miniwob.html_root()
    with miniwob.MiniWobServer() as server:
        for rel in ("core/core.js", "miniwob/click-button.html", "core/core.css"):
            status, body = _get(server, "/" + rel)
            assert status == 200
            assert body == (root / rel).read_bytes()
        assert _get(server, "/miniwob/no-such-task.html")[0] == 404
        assert _get(server, "/miniwob/")[0] == 404  # no directory listings
        assert _get(server, "/core/core.js", "POST")[0] == 501  # static files only


def test_server_refuses_paths_out_of_its_root() -> None:
    root = miniwob.html_root()
    outside = root.parent / "__init__.py"  # the package's own module, one level above html/
    assert outside.is_file()
    with miniwob.MiniWobServer() as server:
        for raw in ("/../__init__.py", "/miniwob/../../__init__.py", "/%2e%2e/__init__.py",
                    "/miniwob/..%2f..%2f__init__.py", "/core/%2E%2E/%2E%2E/__init__.py", "/..\\__init__.py",
                    "/core/core.js%00.html"):
            status, body = _get(server, raw)
            assert status in (400, 403, 404), raw
            assert body != outside.read_bytes(), raw


def test_server_refuses_a_symlink_that_leaves_its_root(tmp_path: Path) -> None:
    root, secret = tmp_path / "root", tmp_path / "secret.txt"
    root.mkdir()
    secret.write_text("not for the browser")
    (root / "page.html").write_text("<p>hi</p>")
    os.symlink(secret, root / "link.txt")
    with miniwob.MiniWobServer(root) as server:
        assert _get(server, "/page.html") == (200, b"<p>hi</p>")
        status, body = _get(server, "/link.txt")
        assert status == 403 and b"not for the browser" not in body


# --- the registry --------------------------------------------------------------------------------------------

def test_task_table_covers_every_page_and_says_why_a_task_is_left_out() -> None:
    table = miniwob.task_table()
    assert sorted(table) == miniwob.all_tasks()
    assert len(table) == 130
    works = miniwob.task_names()
    assert works and set(works) < set(table)
    for task, row in table.items():
        assert row["works"] == (task in works)
        if not row["works"]:
            assert isinstance(row["reason"], str) and row["reason"], task
    assert set(miniwob.SOLVERS) <= set(works)
    assert list_tasks("miniwob") == works
    assert parse_spec("miniwob:click-button,enter-text") == ["miniwob:click-button", "miniwob:enter-text"]


def test_unknown_task_lists_the_valid_ones() -> None:
    with pytest.raises(TaskNotFound) as err:
        make_env("miniwob:nope")
    message = str(err.value)
    assert "nope" in message and "click-button" in message and "enter-text" in message
    left_out = next(t for t, row in miniwob.task_table().items() if not row["works"])
    with pytest.raises(TaskNotFound):
        make_env(f"miniwob:{left_out}")  # left out by the survey: not offered


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="episode_seconds"):
        miniwob.make("click-button", episode_seconds=0)
    with pytest.raises(ValueError, match="data_mode"):
        miniwob.make("click-button", data_mode="exam")
    env = miniwob.make("click-button")  # no browser until reset
    assert not env.is_successful() and env.info()["done"] is None
    assert env.instruction == miniwob.GENERIC_INSTRUCTION
    no_script = next(t for t in miniwob.task_names() if t not in miniwob.SOLVERS)
    with pytest.raises(PolicyError, match="no scripted solution"):
        miniwob.MiniWobScriptPolicy(miniwob.make(no_script))


# --- episodes ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("task", ["click-button", "login-user"])
def test_reset_starts_a_seeded_episode(env_factory, task: str) -> None:
    env = env_factory(task, episode_seconds=120)
    actuator = env.reset(seed=7)
    page = actuator.page
    query = " ".join(page.evaluate("() => document.getElementById('query').textContent").split())
    assert env.instruction and env.instruction == query
    assert env.name == f"miniwob:{task}"
    shot = actuator.screenshot()
    css = page.evaluate("() => [window.innerWidth, window.innerHeight]")
    assert css == list(miniwob.TASK_AREA)
    scale = miniwob.DEFAULT_SCALE
    assert shot.size == (round(css[0] * scale), round(css[1] * scale)) == actuator.screen_size
    assert actuator.scale.sx == actuator.scale.sy == scale
    assert page.evaluate("() => core.EPISODE_MAX_TIME") == 120_000
    assert not env.is_successful()
    info = env.info()
    assert info["done"] is False and info["raw_reward"] == 0 and info["seed"] == 7
    first = env.instruction
    env.reset(seed=7)  # same seed, same problem
    assert env.instruction == first


def test_utterance_given_as_an_object_is_read(env_factory) -> None:
    task = "email-inbox-nl-turk"  # its core.getUtterance() returns {utterance, fields} in train mode
    if not miniwob.task_table()[task]["works"]:
        pytest.fail(f"{task} is left out by the survey: {miniwob.task_table()[task]['reason']}")
    env = env_factory(task)
    actuator = env.reset(seed=1)
    raw = actuator.page.evaluate("() => core.getUtterance()")
    assert isinstance(raw, dict)
    assert env.instruction == " ".join(raw["utterance"].split()) and env.instruction
    assert env.fields == raw["fields"] and env.fields


@pytest.mark.parametrize("task", sorted(miniwob.SOLVERS))
def test_scripted_policy_solves_its_tasks_through_the_loop(task: str, tmp_path: Path) -> None:
    record = run_one(f"miniwob:{task}", 0, script_policy, tmp_path, LOOP)
    assert record.status == "success", record.reason
    assert record.success
    meta = json.loads((Path(record.path) / "episode.json").read_text(encoding="utf-8"))
    result = meta["environment_result"]
    assert result["success"] and result["done"] and result["raw_reward"] > 0
    steps = [json.loads(line) for line in (Path(record.path) / "steps.jsonl").read_text().splitlines()]
    assert steps and all(re.search(r"Grounded Operation:\[\w+\] .* -> (CLICK|TYPE: .*|SELECT: .*) at the box "
                                   r"\[\[\d{3},\d{3},\d{3},\d{3}\]\]", s["raw_text"]) for s in steps)


class _WrongButton:
    """Clicks a button whose text is not the one the utterance names, in CogAgent-18B's words."""

    name = "wrong"
    inline = True

    def __init__(self, env: miniwob.MiniWobEnvironment) -> None:
        self.env = env

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name}

    def act(self, screenshot: Image.Image, task: str, history: Sequence[HistoryItem]) -> PolicyReply:
        from cogagent.grammar import parse

        want = re.search(r'"(.*)"', self.env.instruction).group(1)
        rects = self.env.actuator.page.evaluate(
            "want => [...document.querySelectorAll('#area button')].filter(b => b.textContent.trim() !== want)"
            ".map(b => { const r = b.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })", want)
        if history or not rects:
            text = "Action: stop.\nGrounded Operation: END()\n<<一般操作>>"
        else:
            w, h = screenshot.size
            x1, y1, x2, y2 = rects[0]
            s = self.env.actuator.scale
            box = [int(x1 * s.sx / w * 1000), int(y1 * s.sy / h * 1000), int((x2 * s.sx - 1) / w * 1000),
                   int((y2 * s.sy - 1) / h * 1000)]
            text = ("Plan: click.\nNext Action: Click the button.\nGrounded Operation:[button] b -> CLICK at the box "
                    f"[[{box[0]:03d},{box[1]:03d},{box[2]:03d},{box[3]:03d}]]")
        return PolicyReply(text, parse(text), task)


def test_a_wrong_click_is_no_success(tmp_path: Path) -> None:
    seen: list[bool] = []

    def factory(env: miniwob.MiniWobEnvironment) -> _WrongButton:
        want = re.search(r'"(.*)"', env.instruction).group(1)
        others = env.actuator.page.evaluate(
            "want => [...document.querySelectorAll('#area button')].filter(b => b.textContent.trim() !== want).length",
            want)
        seen.append(others > 0)
        return _WrongButton(env)

    # A seed whose page has a button other than the named one (most do); the first such is used.
    for seed in range(6):
        record = run_one("miniwob:click-button", seed, factory, tmp_path, LOOP)
        if seen[-1]:
            break
    assert seen[-1], "no seed in 0-5 gave a wrong button to click"
    assert not record.success
    result = json.loads((Path(record.path) / "episode.json").read_text())["environment_result"]
    assert result["done"] is True and result["raw_reward"] < 0 and result["success"] is False
