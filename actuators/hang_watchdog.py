"""Stops a browser tab whose page never yields, so that no actuator call can block the agent forever.

Why this exists: Playwright gives ``page.evaluate``, CDP calls and mouse or keyboard input no timeout, and all of
them wait for the tab's renderer. A page script that never returns (``while (true) {}`` in a click handler, a
runaway loop in a model-visited site) therefore blocks them for good. Playwright's sync API cannot be called
from another thread, so the only way to free the blocked call is from outside the driver: the watchdog kills
the tab's renderer *process*. Chromium then reports the tab as crashed, the pending call fails at once, and the
browser process with its cookies and storage lives on, so the actuator can open the page again.

Which renderer: the browser is found among this Python process's own descendants by a marker switch it was
started with (``--cogagent-browser-id=...``), and its renderers by ``--type=renderer``. A hung page burns CPU,
so the renderers that used most of a core over a short sample are the ones stopped; if none did (a hang that
waits rather than spins), every renderer of that browser is.
"""

from __future__ import annotations

import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import psutil

MARKER_SWITCH = "--cogagent-browser-id"
BUSY_SHARE = 0.5  # of one core over the sample: a renderer above it is spinning
SAMPLE_SECONDS = 0.3


def new_marker() -> str:
    """A command-line switch that names one browser; Chromium ignores switches it does not know."""
    return f"{MARKER_SWITCH}={uuid.uuid4().hex}"


def browser_renderers(marker: str) -> list[psutil.Process]:
    """The renderer processes of the browser started with ``marker``, looked for under this process only."""
    try:
        family = psutil.Process().children(recursive=True)
    except psutil.Error:
        return []
    roots = [p for p in family if marker in _cmdline(p)]
    renderers: list[psutil.Process] = []
    for root in roots:
        try:
            descendants = root.children(recursive=True)
        except psutil.Error:
            continue
        renderers += [p for p in descendants if "--type=renderer" in _cmdline(p)]
    return renderers


def _cmdline(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())  # Chromium rewrites its argv into one string; joining covers both forms
    except psutil.Error:
        return ""


def _cpu_seconds(p: psutil.Process) -> float | None:
    try:
        t = p.cpu_times()
        return t.user + t.system
    except psutil.Error:
        return None


def busy_renderers(renderers: list[psutil.Process], sample: float = SAMPLE_SECONDS) -> list[psutil.Process]:
    """The renderers that used more than ``BUSY_SHARE`` of a core during ``sample`` seconds."""
    before = {p.pid: _cpu_seconds(p) for p in renderers}
    time.sleep(sample)
    busy = []
    for p in renderers:
        now, then = _cpu_seconds(p), before.get(p.pid)
        if now is not None and then is not None and (now - then) / sample > BUSY_SHARE:
            busy.append(p)
    return busy


def stop_hung_renderers(marker: str) -> list[int]:
    """Kill the spinning renderers of the marked browser (all of its renderers if none spins); their pids."""
    renderers = browser_renderers(marker)
    victims = busy_renderers(renderers) or renderers
    stopped = []
    for p in victims:
        try:
            p.kill()
            stopped.append(p.pid)
        except psutil.Error:
            pass
    return stopped


@dataclass
class Watch:
    """One guarded call: ``fired`` turns true when its deadline passed and the renderers were stopped."""

    seconds: float
    fired: bool = False


class HangWatchdog:
    """Guards calls into one browser: ``with watchdog.watch(60) as w: ...``; after the block, ``w.fired`` says
    whether the call had to be freed by stopping the tab's renderer."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    @contextmanager
    def watch(self, seconds: float) -> Iterator[Watch]:
        w = Watch(seconds)
        done = threading.Event()

        def fire() -> None:
            if done.wait(seconds):
                return
            w.fired = True
            stop_hung_renderers(self.marker)

        timer = threading.Thread(target=fire, name="cogagent-hang-watchdog", daemon=True)
        timer.start()
        try:
            yield w
        finally:
            done.set()
            timer.join()  # a firing watchdog finishes its kill before the caller looks at ``fired``
