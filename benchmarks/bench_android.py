"""Latency of the Android actuator against the simulated phone (real ADB protocol, real shell, Chromium screen).

``python benchmarks/bench_android.py [--repeat N]`` prints JSON: the median (and min/max) seconds of a
screenshot with raw ``screencap`` and with ``screencap -p``, a tap, a swipe, typing text, a key event, and a bare
shell round trip, plus where a raw screenshot's time goes (the simulator producing the frame vs. the ADB transfer
and the conversion in Python). What these numbers mean for a real phone: the ADB and Python parts carry over;
the device parts do not -- on a phone, ``screencap -p`` pays for PNG encoding on the phone's CPU (which is why
raw is the default there), while here the simulated screen is a Chromium capture that is PNG either way, so raw
costs an extra PNG decode on the simulator side and 10 MB instead of ~0.1 MB on the wire.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actuators.actions import Click, KeyPress, Swipe, TypeText  # noqa: E402
from actuators.android import AndroidActuator, parse_screencap_raw  # noqa: E402
from episodes.phone import PhoneSim  # noqa: E402


def _timed(fn: Callable[[], Any], repeat: int, before: Callable[[], Any] | None = None) -> dict[str, float]:
    fn()  # warm up
    samples = []
    for _ in range(repeat):
        if before is not None:
            before()
        t0 = time.perf_counter()
        result = fn()
        samples.append(time.perf_counter() - t0)
        if hasattr(result, "ok") and not result.ok:
            raise RuntimeError(f"benchmark action failed: {result.error}")
    return {"median_s": round(statistics.median(samples), 4), "min_s": round(min(samples), 4),
            "max_s": round(max(samples), 4), "n": repeat}


def bench_android(repeat: int = 10) -> dict[str, Any]:
    """Run the benchmark and return its results (medians in seconds)."""
    results: dict[str, Any] = {}
    with PhoneSim() as sim:
        t0 = time.perf_counter()
        port = sim.start()
        results["sim_start_s"] = round(time.perf_counter() - t0, 3)
        t0 = time.perf_counter()
        act = AndroidActuator("127.0.0.1", port, settle_s=0.0)
        results["actuator_connect_s"] = round(time.perf_counter() - t0, 3)
        png = AndroidActuator("127.0.0.1", port, settle_s=0.0, screencap="png")
        try:
            results["screenshot_raw"] = _timed(act.screenshot, repeat)
            results["screenshot_png"] = _timed(png.screenshot, repeat)
            raw = act.exec_out("screencap")
            results["screencap_bytes"] = {"raw": len(raw), "png": len(png.exec_out("screencap -p"))}
            results["screenshot_raw_parts"] = {
                "device_frame": _timed(lambda: sim.raw_screencap(), repeat),  # simulator: capture + RGBA
                "adb_exec_out": _timed(lambda: act.exec_out("screencap"), repeat),  # frame + transfer
                "parse_in_python": _timed(lambda: parse_screencap_raw(raw), repeat),
            }
            results["shell_roundtrip"] = _timed(lambda: act.shell("echo hi", idempotent=True), repeat)
            empty = (540, 1750)  # home-screen wallpaper: a tap there changes nothing
            results["tap"] = _timed(lambda: act.perform(Click(empty)), repeat, before=sim.reset)
            results["swipe_100ms"] = _timed(lambda: act.perform(Swipe((540, 1500), (540, 1200), 0.1)), repeat)
            results["keyevent"] = _timed(lambda: act.perform(KeyPress(("home",))), repeat)
            note = None

            def to_notes():
                nonlocal note
                sim.reset({"current_screen": "notes"})
                note = sim.element_center("#note")
                act.perform(Click(note))

            text = "Hello world, 20 ch."
            results["text_20_chars"] = _timed(lambda: act.perform(TypeText(text)), repeat, before=to_notes)
        finally:
            png.close()
            act.close()
    results["environment"] = {"cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2),
                               "repeat": repeat}
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=10, help="samples per measurement (default 10)")
    args = ap.parse_args(argv)
    print(json.dumps(bench_android(args.repeat), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
