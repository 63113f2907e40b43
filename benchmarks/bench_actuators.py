"""Actuator latency: screenshot and every action, per target, as JSON on stdout.

    python benchmarks/bench_actuators.py [--targets browser,desktop,android] [--repeats 20] [--out result.json]

Each target is one function returning a dict of measurements; add a target by writing ``bench_<name>()`` and
registering it in ``TARGETS`` (the marked places below). An action's latency is ``Outcome.seconds`` -- the whole
``perform()``, including the actuator's wait for the screen to settle -- because that is what the agent loop
pays per step. Figures are medians and 90th percentiles in milliseconds.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import platform
import statistics
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actuators.actions import (  # noqa: E402
    Action, Click, Drag, Hover, KeyPress, LongPress, Navigate, Scroll, Select, TypeText,
)

BENCH_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>bench</title>
<style>body{margin:0;height:4000px;font:16px sans-serif} .a{position:absolute}</style></head><body>
<button class="a" id="b" style="left:40px;top:40px;width:160px;height:50px">Button</button>
<input class="a" id="t" style="left:40px;top:120px;width:300px;height:30px">
<select class="a" id="s" style="left:40px;top:180px;width:200px;height:30px">
<option>Apple</option><option>Banana</option><option>Cherry</option></select>
<div class="a" id="d" style="left:400px;top:40px;width:80px;height:80px;background:#9c9"></div>
<a class="a" href="/two" style="left:40px;top:240px">next page</a>
<p class="a" style="left:40px;top:300px;width:900px">The quick brown fox jumps over the lazy dog. 敏捷的棕色狐狸跳过了懒狗。</p>
</body></html>"""
PAGE_TWO = "<!doctype html><html><body><h1>two</h1></body></html>"


def _summary(values: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values)
    return {
        "median_ms": round(statistics.median(ms), 2),
        "p90_ms": round(ms[min(len(ms) - 1, int(0.9 * len(ms)))], 2),
        "min_ms": round(ms[0], 2),
        "n": len(ms),
    }


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        body = (PAGE_TWO if self.path.startswith("/two") else BENCH_PAGE).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _serve() -> tuple[http.server.ThreadingHTTPServer, str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd, f"http://127.0.0.1:{httpd.server_address[1]}"


# --- browser -------------------------------------------------------------------------------------------------
def bench_browser(repeats: int = 20) -> dict[str, Any]:
    from actuators.browser import BrowserActuator

    httpd, base = _serve()
    out: dict[str, Any] = {}
    try:
        for dpr in (1, 2):
            t0 = time.perf_counter()
            act = BrowserActuator(viewport=(1280, 800), device_scale_factor=dpr, start_url=base + "/")
            launch = time.perf_counter() - t0
            try:
                act.screenshot()  # warm
                shots = []
                for _ in range(max(repeats, 30)):
                    t = time.perf_counter()
                    act.screenshot()
                    shots.append(time.perf_counter() - t)
                entry: dict[str, Any] = {
                    "screen_size": list(act.screen_size),
                    "launch_ms": round(launch * 1000, 1),
                    "screenshot": _summary(shots),
                }
                if dpr == 1:
                    entry["actions"] = _browser_actions(act, base, repeats)
                out[f"1280x800@{dpr}x"] = entry
            finally:
                act.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    return out


def _browser_actions(act: Any, base: str, repeats: int) -> dict[str, Any]:
    s = act.scale.sx  # screenshot pixels per CSS pixel

    def px(x: float, y: float) -> tuple[int, int]:
        return (int(x * s), int(y * s))

    cases: dict[str, Callable[[], Action]] = {
        "click": lambda: Click(px(120, 65)),
        "double_click": lambda: Click(px(120, 65), count=2),
        "right_click": lambda: Click(px(120, 65), button="right"),
        "hover": lambda: Hover(px(440, 80)),
        "long_press_0.1s": lambda: LongPress(px(440, 80), seconds=0.1),
        "drag": lambda: Drag(px(420, 60), px(600, 300)),
        "type_text_ascii_20": lambda: TypeText("CogAgent runtime 123", point=px(190, 135)),
        "type_text_chinese_10": lambda: TypeText("敏捷的棕色狐狸跳过了", point=px(190, 135)),
        "key_press_chord": lambda: KeyPress(("ctrl", "a")),
        "key_press_enter": lambda: KeyPress(("enter",)),
        "select": lambda: Select(px(140, 195), "Banana"),
        "scroll_down_3": lambda: Scroll("down", amount=3, point=px(640, 400)),
        "scroll_up_3": lambda: Scroll("up", amount=3, point=px(640, 400)),
    }
    results: dict[str, Any] = {}
    for name, make in cases.items():
        times, settled, errors = [], 0, []
        for _ in range(repeats):
            o = act.perform(make())
            times.append(o.seconds)
            settled += bool(o.info.get("settled"))
            if not o.ok:
                errors.append(o.error)
        results[name] = {**_summary(times), "settled": settled, "errors": errors[:3]}
    nav, back, errors = [], [], []
    for _ in range(repeats):
        o = act.perform(Navigate(base + "/two"))
        nav.append(o.seconds)
        errors += [] if o.ok else [o.error]
        o = act.perform(Navigate("back"))
        back.append(o.seconds)
        errors += [] if o.ok else [o.error]
    results["navigate_url"] = _summary(nav)
    results["navigate_back"] = _summary(back)
    results["navigate_errors"] = errors[:3]
    return results


def bench_desktop_target(repeats: int = 20) -> dict[str, Any]:
    """Xvfb + a real Tk window (benchmarks/bench_desktop.py)."""
    from bench_desktop import bench_desktop  # noqa: PLC0415 - a sibling script in benchmarks/

    return bench_desktop(repeats=repeats)


def bench_android_target(repeats: int = 20) -> dict[str, Any]:
    """The simulated phone over the real ADB protocol (benchmarks/bench_android.py)."""
    from bench_android import bench_android  # noqa: PLC0415

    return bench_android(repeat=repeats)

TARGETS: dict[str, Callable[..., dict[str, Any]]] = {
    "browser": bench_browser,
    "desktop": bench_desktop_target,
    "android": bench_android_target,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="browser,desktop,android", help=f"comma-separated, from: {', '.join(TARGETS)}")
    ap.add_argument("--repeats", type=int, default=20, help="runs per action (screenshots: at least 30)")
    ap.add_argument("--out", help="also write the JSON to this file")
    args = ap.parse_args(argv)
    names = [t.strip() for t in args.targets.split(",") if t.strip()]
    unknown = [n for n in names if n not in TARGETS]
    if unknown or not names:
        ap.error(f"unknown target(s) {unknown}; available: {', '.join(TARGETS)}")
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    report: dict[str, Any] = {
        "host": {"platform": platform.platform(), "python": platform.python_version()},
        "repeats": args.repeats,
        "targets": {},
    }
    for name in names:
        try:  # libraries that print (python-xlib's xauth warnings) must not break the JSON on stdout
            with contextlib.redirect_stdout(sys.stderr):
                report["targets"][name] = TARGETS[name](repeats=args.repeats)
        except Exception as exc:  # one target that cannot run (no phone, no display) does not hide the others
            report["targets"][name] = {"error": f"{type(exc).__name__}: {exc}"}
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
