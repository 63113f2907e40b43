"""A throw-away X server (Xvfb) for tests and benchmarks: ``with Xvfb(1280, 800) as x: ...``.

``Xvfb`` starts ``Xvfb -displayfd FD -screen 0 WxHxD -nolisten tcp -noreset``: with ``-displayfd`` the server itself picks a
free display number and writes it to the pipe only once it accepts connections, so there is no race between two
tests choosing the same ``:N`` and no guessing how long to wait. The helper then checks that a client really
connects (``xdpyinfo`` when x11-utils is installed, otherwise an X11 connection handshake on the socket
``/tmp/.X11-unix/XN``), creates an empty Xauthority file in a private temporary directory (python-xlib, and so
pyautogui, refuses to start without one; an empty file is right for a server without access control), and -- in
the ``with`` block, or between ``start()`` and ``stop()`` -- sets ``DISPLAY`` and ``XAUTHORITY`` in
``os.environ``, putting back what was there before when it stops. ``env()`` gives the same variables for a
subprocess without touching ``os.environ`` (use ``Xvfb(..., set_environ=False)`` for that style).

``kill()`` ends the server abruptly (SIGKILL), to test what clients do when their display goes away.

For pytest::

    @pytest.fixture(scope="module")
    def xvfb():
        with Xvfb(1024, 768) as x:
            yield x

or ``xvfb_fixture(width, height, scope)`` below, which builds exactly that fixture.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator


class XvfbError(RuntimeError):
    """Xvfb is missing, did not start, or did not accept connections; the message holds its own error output."""


def x11_handshake(display_number: int, timeout: float = 2.0) -> str | None:
    """Open the X11 connection setup on ``/tmp/.X11-unix/X<N>``; ``None`` if the server answers, else the reason."""
    request = struct.pack("<cxHHHHxx", b"l", 11, 0, 0, 0)  # little-endian, protocol 11.0, no authorization
    last = "no socket"
    for address in (f"\0/tmp/.X11-unix/X{display_number}", f"/tmp/.X11-unix/X{display_number}"):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(address)
            sock.sendall(request)
            reply = sock.recv(1)
            if reply in (b"\x00", b"\x01", b"\x02"):  # Failed (e.g. auth), Success, Authenticate: it is alive
                return None
            last = "the server closed the connection"
        except OSError as exc:
            last = str(exc) or type(exc).__name__
        finally:
            sock.close()
    return last


class Xvfb:
    """One Xvfb server. ``display`` (``":N"``) and ``number`` are set once ``start()`` returns."""

    def __init__(self, width: int = 1280, height: int = 800, depth: int = 24, *, extra_args: tuple[str, ...] = (),
                 start_timeout: float = 15.0, set_environ: bool = True, xvfb: str | None = None) -> None:
        self.width, self.height, self.depth = width, height, depth
        self.extra_args = tuple(extra_args)
        self.start_timeout = start_timeout
        self.set_environ = set_environ
        self.executable = xvfb or shutil.which("Xvfb")
        self.proc: subprocess.Popen | None = None
        self.number: int | None = None
        self.display: str | None = None
        self.tmpdir: Path | None = None
        self.xauthority: Path | None = None
        self._saved_env: dict[str, str | None] | None = None
        self._log: Any = None

    # --- lifecycle --------------------------------------------------------------------------------------------
    def start(self) -> "Xvfb":
        if self.proc is not None:
            raise XvfbError("this Xvfb is already started")
        if not self.executable:
            raise XvfbError("Xvfb is not installed: apt-get install -y xvfb")
        self.tmpdir = Path(tempfile.mkdtemp(prefix="xvfb-"))
        self.xauthority = self.tmpdir / "Xauthority"
        self.xauthority.touch(mode=0o600)
        self._log = open(self.tmpdir / "xvfb.log", "w+b")
        read_fd, write_fd = os.pipe()
        # -noreset: without it the server resets (closing and reopening its listeners) whenever its last client
        # disconnects -- our own readiness check, for one -- and a client connecting in that moment is refused.
        cmd = [self.executable, "-displayfd", str(write_fd), "-screen", "0",
               f"{self.width}x{self.height}x{self.depth}", "-nolisten", "tcp", "-noreset", *self.extra_args]
        try:
            self.proc = subprocess.Popen(cmd, pass_fds=(write_fd,), stdin=subprocess.DEVNULL,
                                         stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as exc:
            os.close(read_fd)
            os.close(write_fd)
            self._cleanup_files()
            raise XvfbError(f"could not run {self.executable}: {exc}") from exc
        os.close(write_fd)
        try:
            self.number = self._read_display_number(read_fd)
        except XvfbError:
            self.stop()
            raise
        finally:
            os.close(read_fd)
        self.display = f":{self.number}"
        try:
            self._wait_accepting()
        except XvfbError:
            self.stop()
            raise
        if self.set_environ:
            self._saved_env = {k: os.environ.get(k) for k in ("DISPLAY", "XAUTHORITY")}
            os.environ.update(self.env_vars())
        return self

    def _read_display_number(self, read_fd: int) -> int:
        deadline = time.monotonic() + self.start_timeout
        data = b""
        while not data.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                raise XvfbError(f"Xvfb did not report a display within {self.start_timeout}s: {self.output()}")
            ready, _, _ = select.select([read_fd], [], [], min(left, 0.1))
            if ready:
                chunk = os.read(read_fd, 64)
                if not chunk:  # the server closed the pipe: it exited
                    break
                data += chunk
            elif self.proc is not None and self.proc.poll() is not None:
                break
        try:
            return int(data.strip())
        except ValueError:
            code = self.proc.poll() if self.proc else None
            raise XvfbError(f"Xvfb exited (status {code}) before accepting connections: {self.output()}") from None

    def _wait_accepting(self) -> None:
        assert self.number is not None
        deadline = time.monotonic() + self.start_timeout
        xdpyinfo = shutil.which("xdpyinfo")
        reason = "not tried"
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise XvfbError(f"Xvfb exited with {self.proc.returncode}: {self.output()}")
            if xdpyinfo:
                try:
                    res = subprocess.run([xdpyinfo, "-display", f":{self.number}"], env=self.env(),
                                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=5)
                    if res.returncode == 0:
                        return
                    reason = res.stderr.decode(errors="replace").strip()
                except subprocess.TimeoutExpired:
                    reason = "xdpyinfo timed out"
            else:
                reason = x11_handshake(self.number) or ""
                if not reason:
                    return
            time.sleep(0.05)
        raise XvfbError(f"Xvfb :{self.number} does not accept connections ({reason}): {self.output()}")

    def restart(self, width: int | None = None, height: int | None = None) -> None:
        """Kill the server and start a new one on the same display number (and Xauthority file), maybe resized:
        what a client sees when the X server it was using restarts."""
        assert self.number is not None and self.tmpdir is not None, "start() the server first"
        self.kill()
        self.width, self.height = width or self.width, height or self.height
        read_fd, write_fd = os.pipe()
        cmd = [self.executable, f":{self.number}", "-displayfd", str(write_fd), "-screen", "0",
               f"{self.width}x{self.height}x{self.depth}", "-nolisten", "tcp", "-noreset", *self.extra_args]
        self.proc = subprocess.Popen(cmd, pass_fds=(write_fd,), stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        os.close(write_fd)
        try:
            number = self._read_display_number(read_fd)
        finally:
            os.close(read_fd)
        if number != self.number:
            raise XvfbError(f"restarted Xvfb took :{number}, not :{self.number}")
        self._wait_accepting()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """End the server at once (SIGKILL) but keep the environment set: clients now have a dead display."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            self.proc = None
        if self._saved_env is not None:
            for key, value in self._saved_env.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
            self._saved_env = None
        self._cleanup_files()

    def _cleanup_files(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.tmpdir is not None:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None

    # --- information ------------------------------------------------------------------------------------------
    def env_vars(self) -> dict[str, str]:
        assert self.display is not None and self.xauthority is not None, "start() the server first"
        return {"DISPLAY": self.display, "XAUTHORITY": str(self.xauthority)}

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """``base`` (default: ``os.environ``) with this server's DISPLAY and XAUTHORITY, for a subprocess."""
        out = dict(os.environ if base is None else base)
        if self.number is not None:
            out["DISPLAY"] = f":{self.number}"
        if self.xauthority is not None:
            out["XAUTHORITY"] = str(self.xauthority)
        return out

    def output(self) -> str:
        """What the server wrote to stdout/stderr so far (its last 2,000 characters)."""
        if self._log is None:
            return ""
        self._log.flush()
        self._log.seek(0)
        text = self._log.read().decode(errors="replace")
        return text[-2000:].strip()

    def __enter__(self) -> "Xvfb":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"Xvfb({self.display or 'not started'}, {self.width}x{self.height}x{self.depth})"


def xvfb_fixture(width: int = 1280, height: int = 800, scope: str = "module"):
    """A pytest fixture (assign it to a name in a test module) yielding a started ``Xvfb``.

    No Xvfb installed is an error (``XvfbError`` says what to install), not a skip: a skipped test would stand in
    for a feature that was never checked.
    """
    import pytest

    @pytest.fixture(scope=scope)
    def _xvfb() -> Iterator[Xvfb]:
        with Xvfb(width, height) as server:
            yield server

    return _xvfb
