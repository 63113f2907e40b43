"""A device-side ADB daemon (what ``adbd`` does on a phone) speaking the real wire protocol over TCP.

It exists so that the simulated phone is reached the way a real one is: the real client library (adb-shell) and
Debian's ``adb`` binary connect to it, authenticate, open streams and read command output, and nothing in the
actuator knows it is not talking to a phone. Facts it follows (AOSP ``adb/protocol.txt`` and ``adb.cpp``):

* every message is a 24-byte little-endian header -- command, arg0, arg1, data_length, data_check, magic
  (``command ^ 0xffffffff``) -- followed by ``data_length`` bytes of payload;
* ``data_check`` is the byte sum of the payload for protocol version 0x01000000; from 0x01000001
  ("skip checksum") a sender may put 0 there. We always *send* the true sum (valid for every client) and accept
  either a correct sum or 0 (newer hosts send 0 once both sides speak 0x01000001);
* handshake: the host sends ``CNXN(version, maxdata, "host::...")``; without authentication the device answers
  ``CNXN(version, maxdata, "device::ro.product.name=..;ro.product.model=..;ro.product.device=..;features=..")``.
  With authentication the device answers ``AUTH(TOKEN, 0, <20 random bytes>)``; the host answers
  ``AUTH(SIGNATURE, 0, sig)`` (RSA PKCS#1 v1.5 over the token, taken as a SHA-1 digest); a signature that matches
  no trusted key gets a fresh token; finally the host sends ``AUTH(RSAPUBLICKEY, 0, "<base64 key> user@host\\0")``
  and the phone shows the "Allow USB debugging?" prompt. Here ``accept_new_keys`` is that person tapping
  "Allow"; without it the device stays silent, as a phone nobody looks at does, and the host times out;
* the negotiated payload limit is ``min(host maxdata, device maxdata)``; no WRTE we send is larger;
* streams: ``OPEN(host_id, 0, "service\\0")`` -> ``OKAY(dev_id, host_id)`` (or ``CLSE(0, host_id)`` for a service
  we do not offer); output goes as ``WRTE(dev_id, host_id, data)`` and the device sends the next WRTE only after
  the host's ``OKAY`` for the previous one (flow control); the end is ``CLSE(dev_id, host_id)``. Data the host
  writes to a stream is acknowledged with ``OKAY``.

Services: ``shell:<command>`` and ``exec:<command>`` run the command through the device shell with stdout and
stderr on the stream (what adbd does for the legacy, non-``shell_v2`` protocol: raw, no pty, no ``\\r\\n``
translation); ``exec:`` is binary-safe, which ``exec-out screencap`` needs. ``shell:`` with no command is a
minimal interactive shell (a real ``sh`` reading the stream, no pty). We do not announce ``shell_v2``, so both
adb-shell and the ``adb`` binary use the legacy framing. Other services (``sync:``, ``reboot:``, ``root:``, ...)
are refused with CLSE, which ``adb`` reports as an error.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import selectors
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Protocol

import numpy as np
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

log = logging.getLogger(__name__)


def _cmd(name: bytes) -> int:
    return struct.unpack("<I", name)[0]


A_SYNC = _cmd(b"SYNC")
A_CNXN = _cmd(b"CNXN")
A_AUTH = _cmd(b"AUTH")
A_OPEN = _cmd(b"OPEN")
A_OKAY = _cmd(b"OKAY")
A_CLSE = _cmd(b"CLSE")
A_WRTE = _cmd(b"WRTE")
A_STLS = _cmd(b"STLS")
COMMAND_NAMES = {v: k for k, v in {
    "SYNC": A_SYNC, "CNXN": A_CNXN, "AUTH": A_AUTH, "OPEN": A_OPEN, "OKAY": A_OKAY, "CLSE": A_CLSE,
    "WRTE": A_WRTE, "STLS": A_STLS}.items()}

VERSION_MIN = 0x01000000
VERSION_SKIP_CHECKSUM = 0x01000001
MAX_PAYLOAD_V1 = 4 * 1024
MAX_PAYLOAD = 1024 * 1024
AUTH_TOKEN = 1
AUTH_SIGNATURE = 2
AUTH_RSAPUBLICKEY = 3
TOKEN_SIZE = 20
HEADER = struct.Struct("<6I")

DEFAULT_PROPS = {
    "ro.product.name": "cogphone_sim",
    "ro.product.model": "CogPhone",
    "ro.product.device": "cogphone",
}
DEFAULT_FEATURES = ("cmd",)
"""Announced device features. No ``shell_v2``: both clients then use the legacy shell framing we implement."""


class ProtocolError(Exception):
    """The peer broke the wire protocol; the connection is closed."""


def checksum(data: bytes) -> int:
    """The ADB payload check: the sum of all bytes, modulo 2**32."""
    if not data:
        return 0
    return int(np.frombuffer(data, dtype=np.uint8).sum(dtype=np.uint64)) & 0xFFFFFFFF


def pack_message(command: int, arg0: int, arg1: int, data: bytes = b"") -> bytes:
    return HEADER.pack(command, arg0 & 0xFFFFFFFF, arg1 & 0xFFFFFFFF, len(data), checksum(data),
                       command ^ 0xFFFFFFFF) + data


# --- keys ------------------------------------------------------------------------------------------------------
def parse_adb_public_key(key: str | bytes) -> rsa.RSAPublicKey:
    """A public key in Android's ``adbkey.pub`` format (base64 of ``struct RSAPublicKey``, then `` user@host``).

    The struct is ``uint32 len_words; uint32 n0inv; uint8 n[len*4] (little endian); uint8 rr[len*4];
    uint32 exponent``.
    """
    if isinstance(key, bytes):
        key = key.decode("ascii", "replace")
    token = key.strip().strip("\0").split()[0] if key.strip().strip("\0") else ""
    try:
        blob = base64.b64decode(token, validate=True)
        (words,) = struct.unpack_from("<I", blob, 0)
        size = words * 4
        if words == 0 or len(blob) != 8 + 2 * size + 4:
            raise ValueError(f"struct size {len(blob)} does not match {words} modulus words")
        n = int.from_bytes(blob[8:8 + size], "little")
        (e,) = struct.unpack_from("<I", blob, 8 + 2 * size)
        return rsa.RSAPublicNumbers(e, n).public_key()
    except Exception as exc:
        raise ValueError(f"not an ADB public key ({exc}): {token[:40]!r}...") from None


def verify_token_signature(key: rsa.RSAPublicKey, token: bytes, signature: bytes) -> bool:
    """True if ``signature`` is ``token`` signed the way adb hosts do (PKCS#1 v1.5, token taken as a SHA-1 digest)."""
    try:
        key.verify(signature, token, padding.PKCS1v15(), Prehashed(hashes.SHA1()))
        return True
    except (InvalidSignature, ValueError):
        return False


# --- what runs a service ---------------------------------------------------------------------------------------
class ShellBackend(Protocol):
    """Starts device shell processes; ``DeviceShell`` is the one we use."""

    def spawn(self, command: str | None) -> subprocess.Popen: ...


@dataclass
class Fault:
    """A fault to inject on the next OPEN whose service starts with ``prefix``: drop the connection ``before``
    the command runs (it never runs) or ``after`` it ran (its output is lost)."""

    prefix: str
    when: str = "before"


@dataclass
class ServerStats:
    connections: int = 0
    opens: list[str] = field(default_factory=list)
    max_wrte_sent: int = 0
    wrte_sent: int = 0
    offered_keys: list[str] = field(default_factory=list)
    auth_failures: int = 0


class AdbServer:
    """The device side of ADB over TCP on ``host:port`` (port 0 picks a free one; ``start`` returns it).

    ``auth_keys``: ``None`` = no authentication (like ``ro.adb.secure=0``); a list of public keys in
    ``adbkey.pub`` format = authentication required and these hosts trusted (an empty list trusts nobody).
    ``accept_new_keys``: a person taps "Allow" for any key a host offers.
    """

    def __init__(self, shell: ShellBackend, *, auth_keys: Iterable[str] | None = None,
                 accept_new_keys: bool = False, max_payload: int = MAX_PAYLOAD,
                 version: int = VERSION_SKIP_CHECKSUM, props: dict[str, str] | None = None,
                 features: Iterable[str] = DEFAULT_FEATURES, write_ack_timeout_s: float = 60.0,
                 on_shell: Callable[[str, str], None] | None = None) -> None:
        if not 256 <= max_payload <= MAX_PAYLOAD:
            raise ValueError(f"max_payload must be between 256 and {MAX_PAYLOAD} bytes, got {max_payload}")
        self.shell = shell
        self.auth_required = auth_keys is not None
        self._trusted: list[tuple[str, rsa.RSAPublicKey]] = []
        for k in auth_keys or ():
            self.trust_key(k)
        self.accept_new_keys = accept_new_keys
        self.max_payload = max_payload
        self.version = version
        self.props = dict(DEFAULT_PROPS if props is None else props)
        self.features = tuple(features)
        self.write_ack_timeout_s = write_ack_timeout_s
        self.on_shell = on_shell
        self.stats = ServerStats()
        self.faults: list[Fault] = []
        self.host = "127.0.0.1"
        self.port = 0
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._conns: set[_Connection] = set()
        self._lock = threading.Lock()

    # --- configuration ---------------------------------------------------------------------------------------
    def trust_key(self, key: str | bytes) -> None:
        text = key.decode("ascii", "replace") if isinstance(key, bytes) else key
        self._trusted.append((text.strip().strip("\0"), parse_adb_public_key(text)))
        self.auth_required = True

    def set_auth(self, auth_keys: Iterable[str] | None, accept_new_keys: bool = False) -> None:
        """Change who may connect (applies to connections made from now on)."""
        trusted = [(k.strip().strip("\0"), parse_adb_public_key(k)) for k in (auth_keys or ())]
        self._trusted = trusted
        self.auth_required = auth_keys is not None
        self.accept_new_keys = accept_new_keys

    @property
    def banner(self) -> bytes:
        props = "".join(f"{k}={v};" for k, v in self.props.items())
        return f"device::{props}features={','.join(self.features)}".encode()

    def inject_fault(self, prefix: str, when: str = "before") -> None:
        if when not in ("before", "after"):
            raise ValueError("when must be 'before' or 'after'")
        with self._lock:
            self.faults.append(Fault(prefix, when))

    def _take_fault(self, service: str) -> Fault | None:
        with self._lock:
            for f in self.faults:
                if service.startswith(f.prefix):
                    self.faults.remove(f)
                    return f
        return None

    # --- lifecycle -------------------------------------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        if self._listener is not None:
            return self.port
        lst = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            lst.bind((host, port))
        except OSError as exc:
            lst.close()
            raise OSError(f"cannot listen on {host}:{port}: {exc}") from exc
        lst.listen(16)
        lst.setblocking(False)
        self.host, self.port = host, lst.getsockname()[1]
        self._listener = lst
        self._stopping.clear()
        self._accept_thread = threading.Thread(target=self._accept_loop, name=f"adbd-accept-{self.port}",
                                               daemon=True)
        self._accept_thread.start()
        return self.port

    def _accept_loop(self) -> None:
        sel = selectors.DefaultSelector()
        assert self._listener is not None
        sel.register(self._listener, selectors.EVENT_READ)
        try:
            while not self._stopping.is_set():
                if not sel.select(timeout=0.1):
                    continue
                try:
                    sock, addr = self._listener.accept()
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    break
                sock.setblocking(True)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn = _Connection(self, sock, addr)
                with self._lock:
                    self._conns.add(conn)
                    self.stats.connections += 1
                conn.start()
        finally:
            sel.close()

    def drop_connections(self) -> int:
        """Close every client connection (the phone's Wi-Fi blinked); keep listening. Returns how many."""
        with self._lock:
            conns = list(self._conns)
        for c in conns:
            c.close()
        return len(conns)

    def stop(self) -> None:
        """Stop listening and drop every connection (the phone went away)."""
        self._stopping.set()
        if self._accept_thread is not None:
            self._accept_thread.join(timeout=5)
            self._accept_thread = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        self.drop_connections()

    def _forget(self, conn: "_Connection") -> None:
        with self._lock:
            self._conns.discard(conn)

    @property
    def connection_count(self) -> int:
        with self._lock:
            return len(self._conns)


class _Connection(threading.Thread):
    """One host connection: reads packets, runs the handshake, owns the streams."""

    def __init__(self, server: AdbServer, sock: socket.socket, addr) -> None:
        super().__init__(name=f"adbd-conn-{addr[1]}", daemon=True)
        self.server = server
        self.sock = sock
        self.addr = addr
        self.online = False
        self.version = VERSION_MIN
        self.max_payload = MAX_PAYLOAD_V1
        self.token = b""
        self.streams: dict[int, _Stream] = {}
        self.next_id = 1
        self.send_lock = threading.Lock()
        self.closed = threading.Event()

    # --- io --------------------------------------------------------------------------------------------------
    def send(self, command: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        msg = pack_message(command, arg0, arg1, data)
        with self.send_lock:
            if self.closed.is_set():
                raise ConnectionResetError("connection closed")
            self.sock.sendall(msg)

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(min(n - len(buf), 1 << 20))
            if not chunk:
                raise ConnectionResetError("host closed the connection")
            buf += chunk
        return bytes(buf)

    def _read_packet(self) -> tuple[int, int, int, bytes]:
        cmd, a0, a1, length, check, magic = HEADER.unpack(self._recv_exact(HEADER.size))
        if magic != cmd ^ 0xFFFFFFFF:
            raise ProtocolError(f"bad magic {magic:#x} for command {cmd:#x}")
        if cmd not in COMMAND_NAMES:
            raise ProtocolError(f"unknown command {cmd:#x}")
        limit = max(self.server.max_payload, MAX_PAYLOAD) if not self.online else self.max_payload
        if length > limit:
            raise ProtocolError(f"{COMMAND_NAMES[cmd]} payload of {length} bytes exceeds the {limit}-byte limit")
        data = self._recv_exact(length) if length else b""
        if data and check != 0 and check != checksum(data):
            raise ProtocolError(f"{COMMAND_NAMES[cmd]} payload checksum {check} != {checksum(data)}")
        if data and check == 0 and self.online and self.version < VERSION_SKIP_CHECKSUM:
            raise ProtocolError("zero checksum from a host that negotiated protocol version 0x01000000")
        return cmd, a0, a1, data

    # --- main loop -------------------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            while not self.closed.is_set():
                cmd, a0, a1, data = self._read_packet()
                log.debug("%s <- %s(%#x, %#x, %r)", self.name, COMMAND_NAMES[cmd], a0, a1, data[:80])
                self._dispatch(cmd, a0, a1, data)
        except (OSError, ProtocolError, struct.error) as exc:
            if not self.closed.is_set():
                log.debug("%s: closing: %s", self.name, exc)
        finally:
            self.close()

    def _dispatch(self, cmd: int, a0: int, a1: int, data: bytes) -> None:
        if cmd == A_CNXN:
            self._on_connect(a0, a1, data)
        elif cmd == A_AUTH:
            self._on_auth(a0, data)
        elif not self.online:
            log.debug("%s: ignoring %s before the connection is authorized", self.name, COMMAND_NAMES[cmd])
        elif cmd == A_OPEN:
            self._on_open(a0, data)
        elif cmd == A_OKAY:
            s = self.streams.get(a1)
            if s is not None and s.remote_id == a0:
                s.on_okay()
        elif cmd == A_WRTE:
            s = self.streams.get(a1)
            if s is None:
                self.send(A_CLSE, 0, a0)  # write to a stream we do not have: tell the host it is gone
            else:
                s.on_write(data)
                self.send(A_OKAY, s.local_id, s.remote_id)
        elif cmd == A_CLSE:
            s = self.streams.pop(a1, None)
            if s is not None:
                s.on_host_close()
        # SYNC and STLS are not used over TCP by the hosts we serve; ignore them.

    # --- handshake -------------------------------------------------------------------------------------------
    def _on_connect(self, version: int, maxdata: int, banner: bytes) -> None:
        if self.online:  # a host re-sending CNXN restarts the connection, as adbd does
            self._close_streams()
            self.online = False
        self.version = min(version, self.server.version)
        self.max_payload = max(256, min(maxdata or MAX_PAYLOAD_V1, self.server.max_payload))
        log.debug("%s: host banner %r, version %#x, max payload %d", self.name, banner, version, maxdata)
        if self.server.auth_required:
            self._send_token()
        else:
            self._go_online()

    def _send_token(self) -> None:
        self.token = secrets.token_bytes(TOKEN_SIZE)
        self.send(A_AUTH, AUTH_TOKEN, 0, self.token)

    def _go_online(self) -> None:
        self.online = True
        self.send(A_CNXN, self.server.version, self.server.max_payload, self.server.banner)

    def _on_auth(self, kind: int, data: bytes) -> None:
        if self.online or not self.server.auth_required:
            return
        if kind == AUTH_SIGNATURE:
            if self.token and any(verify_token_signature(k, self.token, data) for _, k in self.server._trusted):
                self._go_online()
            else:
                self.server.stats.auth_failures += 1
                self._send_token()
        elif kind == AUTH_RSAPUBLICKEY:
            text = data.rstrip(b"\0").decode("ascii", "replace")
            self.server.stats.offered_keys.append(text)
            if self.server.accept_new_keys:
                try:
                    self.server.trust_key(text)
                except ValueError as exc:
                    log.debug("%s: unusable public key: %s", self.name, exc)
                    return
                self._go_online()
            # else: the "Allow USB debugging?" prompt is never answered; the host times out.
        else:
            raise ProtocolError(f"unknown AUTH type {kind}")

    # --- streams ---------------------------------------------------------------------------------------------
    def _on_open(self, remote_id: int, data: bytes) -> None:
        service = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
        self.server.stats.opens.append(service)
        if remote_id == 0:
            raise ProtocolError("OPEN with local-id 0")
        kind, command = _parse_service(service)
        if kind is None:
            log.debug("%s: refusing service %r", self.name, service)
            self.send(A_CLSE, 0, remote_id)
            return
        fault = self.server._take_fault(service)
        if fault is not None and fault.when == "before":
            self.close()
            return
        if self.server.on_shell is not None:
            self.server.on_shell(kind, command or "")
        try:
            proc = self.server.shell.spawn(command)
        except Exception as exc:  # the shell could not start: the service fails
            log.warning("%s: cannot start %r: %s", self.name, service, exc)
            self.send(A_CLSE, 0, remote_id)
            return
        local_id = self.next_id
        self.next_id += 1
        stream = _Stream(self, local_id, remote_id, proc, interactive=command is None,
                         drop_after=fault is not None)
        self.streams[local_id] = stream
        self.send(A_OKAY, local_id, remote_id)
        stream.start()

    def stream_finished(self, stream: "_Stream") -> None:
        if self.streams.get(stream.local_id) is stream:
            del self.streams[stream.local_id]

    def _close_streams(self) -> None:
        for s in list(self.streams.values()):
            s.on_host_close()
        self.streams.clear()

    def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._close_streams()
        self.server._forget(self)


def _parse_service(service: str) -> tuple[str | None, str | None]:
    """``("shell"|"exec", command or None)``, or ``(None, None)`` for a service we do not offer."""
    if service.startswith("exec:"):
        return "exec", service[5:]
    if service.startswith("shell:") or service.startswith("shell,"):
        head, _, command = service.partition(":")
        args = head.split(",")[1:]
        if "v2" in args:  # we did not announce shell_v2; a host asking for it gets a refusal
            return None, None
        return "shell", command if command else None
    return None, None


class _Stream(threading.Thread):
    """One open service: pumps the process's output to the host as WRTE packets under flow control."""

    def __init__(self, conn: _Connection, local_id: int, remote_id: int, proc: subprocess.Popen,
                 interactive: bool, drop_after: bool = False) -> None:
        super().__init__(name=f"adbd-stream-{local_id}", daemon=True)
        self.conn = conn
        self.local_id = local_id
        self.remote_id = remote_id
        self.proc = proc
        self.interactive = interactive
        self.drop_after = drop_after
        self.can_write = threading.Event()
        self.can_write.set()
        self.host_closed = threading.Event()
        self._stdin_lock = threading.Lock()

    def run(self) -> None:
        fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        try:
            if self.drop_after:  # injected fault: let the command finish, lose its output and the connection
                while os.read(fd, 1 << 16):
                    pass
                self.proc.wait()
                self.conn.close()
                return
            while not self.host_closed.is_set():
                data = self._read_chunk(fd, self.conn.max_payload)
                if not data:
                    break
                if not self.can_write.wait(self.conn.server.write_ack_timeout_s):
                    log.warning("%s: host did not acknowledge a WRTE in time; closing", self.name)
                    self.conn.close()
                    return
                if self.host_closed.is_set():
                    break
                self.can_write.clear()
                self.conn.send(A_WRTE, self.local_id, self.remote_id, data)
                st = self.conn.server.stats
                st.wrte_sent += 1
                st.max_wrte_sent = max(st.max_wrte_sent, len(data))
            if not self.host_closed.is_set():
                self.proc.wait()
                self.conn.stream_finished(self)
                self.conn.send(A_CLSE, self.local_id, self.remote_id)
        except OSError:
            pass
        finally:
            self._kill()
            for f in (self.proc.stdin, self.proc.stdout):
                if f is not None:
                    try:
                        f.close()
                    except OSError:
                        pass

    @staticmethod
    def _read_chunk(fd: int, limit: int) -> bytes:
        """Up to ``limit`` bytes: block for the first, then take what is already there (fewer, fuller WRTEs)."""
        try:
            data = os.read(fd, limit)
        except OSError:
            return b""
        if not data:
            return b""
        buf = bytearray(data)
        sel = selectors.DefaultSelector()
        try:
            sel.register(fd, selectors.EVENT_READ)
            while len(buf) < limit and sel.select(timeout=0):
                more = os.read(fd, limit - len(buf))
                if not more:
                    break
                buf += more
        finally:
            sel.close()
        return bytes(buf)

    def on_okay(self) -> None:
        self.can_write.set()

    def on_write(self, data: bytes) -> None:
        if not self.interactive or self.proc.stdin is None:
            return  # legacy raw shell: the command's stdin is not connected; acknowledge and drop
        threading.Thread(target=self._feed, args=(data,), daemon=True).start()

    def _feed(self, data: bytes) -> None:
        with self._stdin_lock:
            try:
                self.proc.stdin.write(data)  # type: ignore[union-attr]
                self.proc.stdin.flush()  # type: ignore[union-attr]
            except (OSError, ValueError):
                pass

    def on_host_close(self) -> None:
        """The host closed the stream (or the connection died): stop the command; ``run`` cleans up."""
        self.host_closed.set()
        self.can_write.set()
        self._signal()

    def _signal(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, 9)
            except (ProcessLookupError, PermissionError):
                pass

    def _kill(self) -> None:
        self._signal()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def wait_for(predicate: Callable[[], bool], timeout_s: float = 5.0, interval_s: float = 0.02) -> bool:
    """Poll ``predicate`` until true or the timeout; a helper for tests and the CLI."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()
