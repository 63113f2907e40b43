"""The simulated phone's shell: command lines run by a REAL POSIX shell, the way adbd hands them to mksh.

On a phone, ``adb shell "input text 'a b'"`` makes adbd run ``/system/bin/sh -c "input text 'a b'"``; quoting is
then the shell's business, and a string that was escaped wrongly really runs whatever it smuggled in. To test the
actuator's escaping honestly, the simulator does the same: every command line goes to ``/bin/sh -c`` (dash, a
POSIX shell with the same quoting rules as mksh for everything we send), in a sandbox directory, with a PATH that
holds only:

* stub executables named like the phone's tools (``input``, ``screencap``, ``wm``, ``am``, ``settings``,
  ``getprop``, ``dumpsys``, ``cmd``, ``svc``, ``ime``) that relay their argv over a unix socket to the simulator
  and print its answer (stdout, stderr, exit status) -- so what the phone "does" is decided by the argv the
  shell really produced;
* symlinks to a few harmless tools (``cat``, ``ls``, ``touch``, ``sleep``, ``grep``, ...). ``touch`` is there so
  that an injection test can see whether an injected command ran (``; touch pwned`` leaves a file).

Anything else fails as on a device: ``/system/bin/sh: 1: foo: not found``. The environment is built from scratch
(the ``env -i`` idea: only PATH, HOME, TMPDIR, TERM, SHELL, USER are set), the working directory and HOME are
the sandbox's ``sdcard`` directory, every process gets its own process group and is killed after
``timeout_s``. This is a test double, not a security boundary: the shell's own redirections can still write
files the host user may write. The strings it runs are the tests' and the actuator's.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Callable

STUB_COMMANDS = ("input", "screencap", "wm", "am", "settings", "getprop", "dumpsys", "cmd", "svc", "ime")
"""Phone tools answered by the simulator."""

HARMLESS_TOOLS = ("cat", "ls", "touch", "sleep", "true", "false", "head", "tail", "wc", "grep", "tr", "cut",
                  "sort", "uniq", "base64", "id", "uname", "date", "expr", "seq", "od")
"""Host tools linked into the sandbox PATH (toybox has all of them on a phone). Nothing that deletes or rewrites
files, changes permissions, or reaches the network."""

Handler = Callable[[list[str], str], tuple[int, bytes, bytes]]
"""``handler(argv, cwd) -> (exit status, stdout, stderr)``; ``argv[0]`` is the tool's name."""

_REPLY = struct.Struct("<iQI")  # exit status, stdout length, stderr length

_STUB_TEMPLATE = '''#!{python} -IS
# Simulated phone tool: relays its argv to the phone simulator and prints the answer.
import os, socket, struct, sys, json
def main():
    req = json.dumps({{"argv": [os.path.basename(sys.argv[0])] + sys.argv[1:], "cwd": os.getcwd()}}).encode()
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout({timeout!r})
    try:
        s.connect({sock!r})
        s.sendall(struct.pack("<I", len(req)) + req)
        f = s.makefile("rb")
        head = f.read({reply_size})
        if len(head) != {reply_size}:
            raise OSError("short reply")
        rc, nout, nerr = struct.unpack("<iQI", head)
        out = sys.stdout.buffer
        while nout:
            chunk = f.read(min(nout, 1 << 20))
            if not chunk:
                raise OSError("truncated reply")
            out.write(chunk)
            nout -= len(chunk)
        out.flush()
        err = f.read(nerr)
        if err:
            sys.stderr.buffer.write(err)
            sys.stderr.flush()
        return rc
    except OSError as exc:
        name = os.path.basename(sys.argv[0])
        sys.stderr.write("%s: the phone's system service is not responding (%s)\\n" % (name, exc))
        return 1
sys.exit(main())
'''


class _StubServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, path: str, handler: Handler) -> None:
        self.handler = handler
        super().__init__(path, _StubRequest)


class _StubRequest(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        head = _recv_exact(sock, 4)
        if head is None:
            return
        (n,) = struct.unpack("<I", head)
        body = _recv_exact(sock, n)
        if body is None:
            return
        req = json.loads(body)
        argv = [str(a) for a in req.get("argv", [])]
        try:
            rc, out, err = self.server.handler(argv, req.get("cwd", "/"))  # type: ignore[attr-defined]
        except Exception as exc:  # a simulator bug must not hang the shell: report it like a crashed tool
            name = argv[0] if argv else "?"
            rc, out, err = 1, b"", f"{name}: simulator error: {type(exc).__name__}: {exc}\n".encode()
        try:
            sock.sendall(_REPLY.pack(rc, len(out), len(err)))
            if out:
                sock.sendall(out)
            if err:
                sock.sendall(err)
        except OSError:
            pass  # the tool was killed (timeout, host closed the stream)


def _recv_exact(sock: socket.socket, n: int) -> bytes | None:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


class DeviceShell:
    """A sandbox in which command lines run through ``/bin/sh -c`` with the phone's tools on PATH."""

    def __init__(self, handler: Handler, *, timeout_s: float = 30.0, interactive_timeout_s: float = 600.0,
                 root: str | os.PathLike | None = None, tools: tuple[str, ...] = HARMLESS_TOOLS,
                 stubs: tuple[str, ...] = STUB_COMMANDS) -> None:
        self.handler = handler
        self.timeout_s = timeout_s
        self.interactive_timeout_s = interactive_timeout_s
        self._own_root = root is None
        self.root = Path(tempfile.mkdtemp(prefix="phone-")) if root is None else Path(root)
        self.bin_dir = self.root / "bin"
        self.home = self.root / "sdcard"
        self.socket_path = str(self.root / "tools.sock")
        self.sh = shutil.which("dash") or "/bin/sh"
        self._server: _StubServer | None = None
        self._thread: threading.Thread | None = None
        self._procs: set[subprocess.Popen] = set()
        self._lock = threading.Lock()
        self._build(tools, stubs)

    def _build(self, tools: tuple[str, ...], stubs: tuple[str, ...]) -> None:
        self.bin_dir.mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        for name in tools:
            target = shutil.which(name, path="/usr/bin:/bin")
            link = self.bin_dir / name
            if target and not link.exists():
                link.symlink_to(target)
        stub = _STUB_TEMPLATE.format(python=sys.executable, sock=self.socket_path, timeout=self.timeout_s + 30,
                                     reply_size=_REPLY.size)
        for name in stubs:
            path = self.bin_dir / name
            path.write_text(stub)
            path.chmod(0o755)

    @property
    def env(self) -> dict[str, str]:
        return {
            "PATH": str(self.bin_dir),
            "HOME": str(self.home),
            "TMPDIR": str(self.home),
            "TERM": "dumb",
            "SHELL": "/system/bin/sh",
            "USER": "shell",
            "HOSTNAME": "localhost",
        }

    def start(self) -> None:
        if self._server is not None:
            return
        if os.path.exists(self.socket_path):
            os.unlink(self.socket_path)
        self._server = _StubServer(self.socket_path, self.handler)
        os.chmod(self.socket_path, 0o600)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="phone-tools", daemon=True)
        self._thread.start()

    def spawn(self, command: str | None) -> subprocess.Popen:
        """Start ``sh -c command`` (or an interactive ``sh -i`` when ``command`` is None); stdout+stderr merged.

        The caller reads ``proc.stdout``; the process group is killed after the timeout.
        """
        self.start()
        interactive = command is None
        argv = ["/system/bin/sh", "-i"] if interactive else ["/system/bin/sh", "-c", command]
        proc = subprocess.Popen(
            argv, executable=self.sh, cwd=self.home, env=self.env,
            stdin=subprocess.PIPE if interactive else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True, bufsize=0,
        )
        with self._lock:
            self._procs.add(proc)
        timer = threading.Timer(self.interactive_timeout_s if interactive else self.timeout_s, self._expire, (proc,))
        timer.daemon = True
        timer.start()
        threading.Thread(target=self._reap, args=(proc, timer), daemon=True).start()
        return proc

    def _expire(self, proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, 9)
            except (ProcessLookupError, PermissionError):
                pass

    def _reap(self, proc: subprocess.Popen, timer: threading.Timer) -> None:
        proc.wait()
        timer.cancel()
        with self._lock:
            self._procs.discard(proc)

    def run(self, command: str, timeout_s: float | None = None) -> tuple[int, bytes]:
        """Run one command line to completion: ``(exit status, stdout+stderr)``. For tests and the CLI."""
        proc = self.spawn(command)
        try:
            out, _ = proc.communicate(timeout=timeout_s or self.timeout_s + 5)
        except subprocess.TimeoutExpired:
            self._expire(proc)
            out, _ = proc.communicate()
        return proc.returncode, out

    def close(self) -> None:
        with self._lock:
            procs = list(self._procs)
        for p in procs:
            self._expire(p)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "DeviceShell":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()
