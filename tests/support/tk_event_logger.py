"""A real Tk window that logs every input event it receives, as JSON lines, for actuator tests.

Run it as a program (with the project's Python: tkinter is part of the standard library)::

    python tests/support/tk_event_logger.py LOG.jsonl [--geometry WxH+X+Y]

It opens one undecorated (``overrideredirect``) window at ``+0+0`` that fills the screen unless ``--geometry``
says otherwise, so window coordinates and screen coordinates are related by the logged window origin alone --
no window manager moves it or adds a title bar. Inside, at fixed places (``place``), are:

- ``entry``: an Entry; every change of its text is logged as ``{"type": "entry_text", "text": ...}``, which is how
  a test reads back typed Unicode (``你好，世界``) exactly as the widget holds it;
- ``text``: a multi-line Text; its content is logged as ``text_text`` when it changes;
- ``canvas``: a Canvas for clicks, drags, hover motion and wheel events;
- ``listbox``: a Listbox of 200 lines (scrolls with the wheel; its first visible line is logged as ``listbox_view``);
- ``ok`` and ``cancel``: Buttons; pressing one logs ``{"type": "button", "name": ...}``.

Every ButtonPress/ButtonRelease (with the button number: 4/5 are the vertical wheel and 6/7 the horizontal wheel
on X11), Motion, KeyPress/KeyRelease (keysym, char, state), MouseWheel, Enter/Leave, FocusIn and double/triple
click is written as one JSON object per line and flushed at once, so a test can tail the file while the window
runs. Each record holds the widget name, widget-relative ``x``/``y`` and screen ``x_root``/``y_root``.

When the window is mapped and laid out, the program writes a ``layout`` record with every widget's screen box
(``{"entry": [x, y, w, h], ...}``) and prints ``READY`` on stdout. It exits on SIGTERM, and with
``--exit-on-stdin-eof`` also when its stdin closes (so it cannot outlive the test that started it).

``TkLogger`` (below) starts the program as a subprocess and gives tests ``wait_for`` over the log.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

def _layout(width: int, height: int) -> dict[str, tuple[int, int, int, int]]:
    """Where each widget goes, in window coordinates, as (x, y, w, h): a fixed plan that scales with the window."""
    col = width // 2
    return {
        "entry": (20, 20, col - 40, 32),
        "text": (20, 70, col - 40, 120),
        "ok": (20, 210, 100, 36),
        "cancel": (140, 210, 100, 36),
        "listbox": (20, 266, col - 40, max(60, height - 286)),
        "canvas": (col, 0, width - col, height),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("log", help="file to write JSON lines to (truncated at start)")
    parser.add_argument("--geometry", default=None, help="WxH+X+Y of the window; default: the whole screen at +0+0")
    parser.add_argument("--exit-on-stdin-eof", action="store_true",
                        help="exit when stdin closes (so the window dies with the test that started it)")
    args = parser.parse_args(argv)

    import tkinter as tk  # imported here so that importing this module (for TkLogger) needs no display

    log = open(args.log, "w", encoding="utf-8", buffering=1)

    def write(record: dict[str, Any]) -> None:
        record.setdefault("t", time.monotonic())  # CLOCK_MONOTONIC is system-wide: comparable with the test's
        log.write(json.dumps(record, ensure_ascii=False) + "\n")
        log.flush()

    root = tk.Tk(className="TkEventLogger")
    root.title("tk event logger")
    root.overrideredirect(True)
    if args.geometry:
        root.geometry(args.geometry)
        size_part = args.geometry.split("+")[0]
        width, height = (int(v) for v in size_part.split("x"))
    else:
        width, height = root.winfo_screenwidth(), root.winfo_screenheight()
        root.geometry(f"{width}x{height}+0+0")

    widgets: dict[str, Any] = {}
    entry_var = tk.StringVar(master=root, name="entry_var")
    widgets["entry"] = tk.Entry(root, name="entry", textvariable=entry_var, font=("DejaVu Sans", 14))
    widgets["text"] = tk.Text(root, name="text", font=("DejaVu Sans", 12), undo=False)
    widgets["ok"] = tk.Button(root, name="ok", text="OK", command=lambda: write({"type": "button", "name": "ok"}))
    widgets["cancel"] = tk.Button(
        root, name="cancel", text="Cancel", command=lambda: write({"type": "button", "name": "cancel"})
    )
    widgets["listbox"] = tk.Listbox(root, name="listbox", font=("DejaVu Sans", 12))
    for i in range(200):
        widgets["listbox"].insert("end", f"line {i:03d}")
    widgets["canvas"] = tk.Canvas(root, name="canvas", background="white", highlightthickness=0)
    for name, (x, y, w, h) in _layout(width, height).items():
        widgets[name].place(x=x, y=y, width=w, height=h)

    entry_var.trace_add("write", lambda *_: write({"type": "entry_text", "text": entry_var.get()}))

    def text_changed(_event: Any) -> None:
        txt = widgets["text"]
        if txt.edit_modified():
            write({"type": "text_text", "text": txt.get("1.0", "end-1c")})
            txt.edit_modified(False)

    widgets["text"].bind("<<Modified>>", text_changed)

    last_view = [None]

    def listbox_view() -> None:
        first = widgets["listbox"].nearest(0)
        if first != last_view[0]:
            last_view[0] = first
            write({"type": "listbox_view", "first": first})

    def widget_name(w: Any) -> str:
        return str(w).rsplit(".", 1)[-1] or "root"

    mouse = ("x", "y", "x_root", "y_root", "state")
    fields = {
        "ButtonPress": (*mouse, "num"), "ButtonRelease": (*mouse, "num"), "Motion": mouse,
        "DoubleClick": (*mouse, "num"), "TripleClick": (*mouse, "num"), "MouseWheel": (*mouse, "delta"),
        "Enter": mouse, "Leave": mouse, "FocusIn": (),
        "KeyPress": ("keysym", "keycode", "char", "state"), "KeyRelease": ("keysym", "keycode", "char", "state"),
    }

    def logger(kind: str) -> Callable[[Any], None]:
        def handle(event: Any) -> None:
            rec: dict[str, Any] = {"type": kind, "widget": widget_name(event.widget)}
            for attr in fields[kind]:
                value = getattr(event, attr, None)
                if value is not None and value != "??":
                    rec[attr] = value
            write(rec)
            if kind == "MouseWheel" or (kind == "ButtonRelease" and rec.get("num") in (4, 5)):
                root.after(30, listbox_view)

        return handle

    # A private bind tag first in every widget's list: the logger sees each event before any class binding
    # (which may "break"), so nothing a widget does can hide an event from the log.
    sequences = {
        "ButtonPress": "<ButtonPress>", "ButtonRelease": "<ButtonRelease>", "Motion": "<Motion>",
        "KeyPress": "<KeyPress>", "KeyRelease": "<KeyRelease>", "MouseWheel": "<MouseWheel>",
        "Enter": "<Enter>", "Leave": "<Leave>", "FocusIn": "<FocusIn>",
    }
    for kind, seq in sequences.items():
        root.bind_class("EventLog", seq, logger(kind), add="+")
    # Multi-clicks in their own tag: within one tag Tk fires only the most specific match.
    root.bind_class("EventLogMulti", "<Double-ButtonPress>", logger("DoubleClick"), add="+")
    root.bind_class("EventLogMulti", "<Triple-ButtonPress>", logger("TripleClick"), add="+")
    for w in (root, *widgets.values()):
        w.bindtags(("EventLog", "EventLogMulti", *w.bindtags()))

    def on_term(*_: Any) -> None:
        root.after(0, root.destroy)

    signal.signal(signal.SIGTERM, on_term)

    def watch_stdin() -> None:  # the parent closing our stdin (or dying) ends the window
        try:
            sys.stdin.read()
        except Exception:
            pass
        try:
            root.after(0, root.destroy)
        except Exception:
            os._exit(0)

    if args.exit_on_stdin_eof:
        threading.Thread(target=watch_stdin, daemon=True).start()

    def ready() -> None:
        root.update_idletasks()
        boxes = {
            name: [w.winfo_rootx(), w.winfo_rooty(), w.winfo_width(), w.winfo_height()]
            for name, w in widgets.items()
        }
        write({
            "type": "layout",
            "window": [root.winfo_rootx(), root.winfo_rooty(), root.winfo_width(), root.winfo_height()],
            "screen": [root.winfo_screenwidth(), root.winfo_screenheight()],
            "widgets": boxes,
        })
        print("READY", flush=True)

    root.wait_visibility()
    root.update()
    root.after(50, ready)

    def tick() -> None:  # signal handlers run between bytecodes: a periodic no-op keeps SIGTERM prompt
        root.after(200, tick)

    tick()
    root.mainloop()
    log.close()
    return 0


class TkLogger:
    """The logger window as a subprocess: ``start()`` waits for READY; ``wait_for`` polls the JSON-lines log."""

    def __init__(self, log_path: str | os.PathLike, env: dict[str, str] | None = None,
                 geometry: str | None = None, python: str | None = None) -> None:
        self.log_path = Path(log_path)
        self.env = dict(os.environ if env is None else env)
        self.geometry = geometry
        self.python = python or sys.executable
        self.proc: subprocess.Popen | None = None
        self.layout: dict[str, Any] = {}

    def start(self, timeout: float = 20.0) -> "TkLogger":
        cmd = [self.python, str(Path(__file__).resolve()), str(self.log_path), "--exit-on-stdin-eof"]
        if self.geometry:
            cmd += ["--geometry", self.geometry]
        self.proc = subprocess.Popen(cmd, env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = [""]

        def read_ready() -> None:
            assert self.proc is not None and self.proc.stdout is not None
            line[0] = self.proc.stdout.readline()

        reader = threading.Thread(target=read_ready, daemon=True)
        reader.start()
        reader.join(timeout)
        if line[0].strip() != "READY":
            err = ""
            if self.proc.poll() is not None and self.proc.stderr is not None:
                err = self.proc.stderr.read()
            self.stop()
            raise RuntimeError(f"Tk event logger did not become ready within {timeout}s: {err.strip()[-2000:]}")
        self.layout = self.wait_for(lambda r: r["type"] == "layout", timeout=5)
        return self

    def records(self) -> list[dict[str, Any]]:
        if not self.log_path.exists():
            return []
        out = []
        with open(self.log_path, encoding="utf-8") as fh:
            for line in fh:
                if line.endswith("\n"):
                    out.append(json.loads(line))
        return out

    def mark(self) -> int:
        """The number of records so far: pass it to ``since`` / ``wait_for`` to look only at what comes after."""
        return len(self.records())

    def since(self, mark: int) -> list[dict[str, Any]]:
        return self.records()[mark:]

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 5.0,
                 after: int = 0) -> dict[str, Any]:
        """The first record after index ``after`` matching ``predicate``; ``TimeoutError`` listing the tail if none."""
        deadline = time.monotonic() + timeout
        while True:
            recs = self.records()[after:]
            for rec in recs:
                if predicate(rec):
                    return rec
            if time.monotonic() > deadline:
                tail = "\n".join(json.dumps(r, ensure_ascii=False) for r in recs[-15:])
                raise TimeoutError(f"no matching event within {timeout}s; last records:\n{tail}")
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"Tk event logger exited with {self.proc.returncode}")
            time.sleep(0.02)

    def center(self, widget: str) -> tuple[int, int]:
        x, y, w, h = self.layout["widgets"][widget]
        return x + w // 2, y + h // 2

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                if self.proc.stdin:
                    self.proc.stdin.close()
            except OSError:
                pass
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream:
                stream.close()
        self.proc = None

    def __enter__(self) -> "TkLogger":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(main())
