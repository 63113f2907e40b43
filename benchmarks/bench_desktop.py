"""Latency of the desktop actuator on Xvfb with a real Tk window: ``python benchmarks/bench_desktop.py`` prints JSON.

For each action two figures, both medians in milliseconds over ``repeats`` runs:
- ``*_ms``: how long ``perform()`` took (``settle_seconds`` is 0, so this is the actuator's own cost);
- ``*_delivered_ms``: from just before ``perform()`` to the moment the Tk window logged the last event the
  action causes (the button release, the key release, the text read back from the Entry) -- what the next
  screenshot can see at the earliest. Both processes stamp ``time.monotonic()``, one system-wide clock.

``bench_desktop()`` returns the same dict, for ``benchmarks/bench_actuators.py`` to fold in.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from actuators.actions import Click, KeyPress, Scroll, TypeText  # noqa: E402
from actuators.desktop import DesktopActuator  # noqa: E402
from tests.support.tk_event_logger import TkLogger  # noqa: E402
from tests.support.xvfb import Xvfb  # noqa: E402


def _ms(values: list[float]) -> float:
    return round(statistics.median(values) * 1000.0, 3)


def bench_desktop(width: int = 1280, height: int = 800, repeats: int = 30) -> dict[str, Any]:
    """Medians (ms) of screenshot, click, type, key and scroll latency on a fresh Xvfb with the Tk logger window."""
    out: dict[str, Any] = {"screen": [width, height], "repeats": repeats}
    with tempfile.TemporaryDirectory() as tmp, Xvfb(width, height) as xvfb, \
            TkLogger(Path(tmp) / "events.jsonl", env=xvfb.env()) as tk:
        act = DesktopActuator(failsafe=False, settle_seconds=0.0)
        xdo = DesktopActuator(failsafe=False, settle_seconds=0.0, text_input="xdotool")
        try:
            out["scale"] = list(act.scale)
            act.screenshot()  # warm-up
            shots = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                act.screenshot()
                shots.append(time.perf_counter() - t0)
            out["screenshot_ms"] = _ms(shots)

            def measure(name: str, actuator: DesktopActuator, make: Callable[[int], Any],
                        done: Callable[[dict], bool], n: int, before: Callable[[], None] | None = None,
                        count: int = 1) -> None:
                """Time ``n`` actions; delivery ends at the ``count``-th log record matching ``done``."""
                took, delivered = [], []
                for i in range(n):
                    if before:
                        before()
                    time.sleep(0.05)  # let the window go quiet
                    mark = tk.mark()
                    action = make(i)
                    start = time.monotonic()
                    outcome = actuator.perform(action)
                    if not outcome.ok:
                        raise RuntimeError(f"{name}: {outcome.error}")
                    deadline = time.monotonic() + 10
                    while True:
                        hits = [r for r in tk.since(mark) if done(r)]
                        if len(hits) >= count:
                            break
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"{name}: the window did not log the action's events")
                        time.sleep(0.002)
                    took.append(outcome.seconds)
                    delivered.append(hits[count - 1]["t"] - start)
                out[f"{name}_ms"] = _ms(took)
                out[f"{name}_delivered_ms"] = _ms(delivered)

            cx, cy, cw, ch = tk.layout["widgets"]["canvas"]
            measure("click", act, lambda i: Click((cx + 20 + (i * 7) % (cw - 40), cy + 20 + (i * 13) % (ch - 40))),
                    lambda r: r["type"] == "ButtonRelease", repeats)

            entry = tk.center("entry")

            def clear() -> None:
                act.perform(KeyPress(("ctrl", "/")))
                act.perform(KeyPress(("delete",)))

            act.perform(Click(entry))
            ascii_text = "CogAgent types this!"  # 20 characters
            measure("type_ascii20_xdotool", act, lambda i: TypeText(ascii_text),
                    lambda r: r["type"] == "entry_text" and r["text"] == ascii_text, max(5, repeats // 3), clear)
            zh = "你好，世界"
            measure("type_zh5_clipboard", act, lambda i: TypeText(zh),
                    lambda r: r["type"] == "entry_text" and r["text"] == zh, max(5, repeats // 3), clear)
            measure("type_zh5_xdotool", xdo, lambda i: TypeText(zh),
                    lambda r: r["type"] == "entry_text" and r["text"] == zh, max(5, repeats // 3), clear)
            measure("key", act, lambda i: KeyPress(("end",)),
                    lambda r: r["type"] == "KeyRelease" and r["keysym"] == "End", repeats)
            measure("key_chord", act, lambda i: KeyPress(("ctrl", "a")),
                    lambda r: r["type"] == "KeyRelease" and r["keysym"] == "Control_L", repeats)
            lb = tk.center("listbox")
            measure("scroll3", act, lambda i: Scroll("down" if i % 2 == 0 else "up", 3, point=lb),
                    lambda r: r["type"] == "ButtonRelease" and r["num"] in (4, 5), repeats, count=3)
        finally:
            xdo.close()
            act.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=800)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    print(json.dumps(bench_desktop(args.width, args.height, args.repeats), indent=2))


if __name__ == "__main__":
    main()
