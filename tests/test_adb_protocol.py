"""The simulated phone's ADB daemon against real clients: adb-shell, raw sockets, and Debian's ``adb`` binary.

The daemon is the one test double in the Android path, so these tests pin it to the wire protocol the real
clients speak: framing, checksums, the handshake with and without RSA authentication, stream flow control,
payload limits, binary-safe ``exec:`` and the real shell behind ``shell:``.
"""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from adb_shell import constants as adb_constants
from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.adb_message import AdbMessage
from adb_shell.auth.keygen import keygen
from adb_shell.auth.sign_pythonrsa import PythonRSASigner
from adb_shell.exceptions import AdbTimeoutError, DeviceAuthError, TcpTimeoutException
from cryptography.hazmat.primitives import serialization

from episodes.phone.adb_server import (A_AUTH, A_CLSE, A_CNXN, A_OKAY, A_OPEN, A_WRTE, AdbServer,
                                       checksum, pack_message, parse_adb_public_key, wait_for)
from episodes.phone.device_shell import DeviceShell


# --- a device with a scripted tool handler (fast: no browser) ---------------------------------------------------
class Tools:
    """A tool handler whose answers the tests choose; records argv."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.blob = bytes(range(256)) * 4096  # 1 MiB, every byte value

    def __call__(self, argv: list[str], cwd: str) -> tuple[int, bytes, bytes]:
        self.calls.append(argv)
        if argv[0] == "screencap":
            return 0, self.blob, b""
        if argv[0] == "getprop":
            return 0, b"CogPhone\n", b""
        return 0, ("argv=" + repr(argv[1:]) + "\n").encode(), b""


@pytest.fixture()
def tools():
    return Tools()


@pytest.fixture()
def shell(tools):
    sh = DeviceShell(tools, timeout_s=10)
    sh.start()
    yield sh
    sh.close()


@pytest.fixture()
def make_server(shell):
    servers: list[AdbServer] = []

    def make(**kw) -> AdbServer:
        srv = AdbServer(shell, **kw)
        srv.start()
        servers.append(srv)
        return srv

    yield make
    for s in servers:
        s.stop()


@pytest.fixture()
def keys(tmp_path):
    keygen(str(tmp_path / "k1"))
    keygen(str(tmp_path / "k2"))
    return {name: (PythonRSASigner.FromRSAKeyPath(str(tmp_path / name)), (tmp_path / f"{name}.pub").read_text())
            for name in ("k1", "k2")}


def client(port: int, timeout: float = 5.0) -> AdbDeviceTcp:
    return AdbDeviceTcp("127.0.0.1", port, default_transport_timeout_s=timeout)


class Raw:
    """A bare-socket ADB host, for what adb-shell cannot be made to do (withhold OKAYs, send bad frames)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)

    def send(self, command: int, arg0: int, arg1: int, data: bytes = b"", *, check: int | None = None,
             magic: int | None = None) -> None:
        head = struct.pack("<6I", command, arg0, arg1, len(data), checksum(data) if check is None else check,
                           (command ^ 0xFFFFFFFF) if magic is None else magic)
        self.sock.sendall(head + data)

    def recv(self, timeout: float = 5.0) -> tuple[int, int, int, bytes] | None:
        self.sock.settimeout(timeout)
        head = self._exact(24)
        if head is None:
            return None
        cmd, a0, a1, n, check, magic = struct.unpack("<6I", head)
        assert magic == cmd ^ 0xFFFFFFFF
        data = self._exact(n) if n else b""
        assert checksum(data) == check, "the device must send the true byte sum"
        return cmd, a0, a1, data

    def _exact(self, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf

    def handshake(self, maxdata: int = 1 << 20) -> bytes:
        self.send(A_CNXN, 0x01000001, maxdata, b"host::features=cmd\0")
        cmd, _, _, banner = self.recv()
        assert cmd == A_CNXN
        return banner

    def close(self) -> None:
        self.sock.close()


# --- framing and keys -------------------------------------------------------------------------------------------
def test_message_framing_matches_adb_shell():
    for cmd, name in ((A_CNXN, b"CNXN"), (A_OPEN, b"OPEN"), (A_WRTE, b"WRTE"), (A_OKAY, b"OKAY"),
                      (A_CLSE, b"CLSE"), (A_AUTH, b"AUTH")):
        data = b"shell:echo hi\0" if name == b"OPEN" else b""
        assert pack_message(cmd, 7, 9, data) == AdbMessage(name, 7, 9, data).pack() + data
    blob = bytes(range(256)) * 1000
    assert checksum(blob) == sum(blob) & 0xFFFFFFFF


def test_public_key_parsing_matches_the_private_key(tmp_path):
    keygen(str(tmp_path / "adbkey"))
    pub = parse_adb_public_key((tmp_path / "adbkey.pub").read_text())
    priv = serialization.load_pem_private_key((tmp_path / "adbkey").read_bytes(), password=None)
    assert pub.public_numbers() == priv.public_key().public_numbers()
    with pytest.raises(ValueError, match="not an ADB public key"):
        parse_adb_public_key("ssh-rsa AAAAB3NzaC1yc2E= someone@host")


# --- handshake and services with adb-shell --------------------------------------------------------------------
def test_connect_without_auth_runs_a_real_shell(make_server, tools):
    srv = make_server()
    dev = client(srv.port)
    assert dev.connect(auth_timeout_s=2)
    assert dev.available
    assert dev.shell("echo hi") == "hi\n"
    assert dev.shell("echo $((6 * 7)); x=ab; echo ${x}c") == "42\nabc\n"  # a real POSIX shell
    assert "not found" in dev.shell("definitely_not_a_tool")
    assert dev.shell("getprop ro.product.model") == "CogPhone\n"
    assert dev.shell("input text 'a b;c'") == "argv=['text', 'a b;c']\n"
    assert tools.calls[-1] == ["input", "text", "a b;c"]
    dev.close()
    assert srv.banner.startswith(b"device::ro.product.name=")
    assert b"shell_v2" not in srv.banner


def test_exec_out_is_binary_safe(make_server, tools):
    srv = make_server()
    dev = client(srv.port)
    dev.connect()
    data = dev.exec_out("screencap", decode=False)
    assert data == tools.blob
    dev.close()


def test_large_output_is_split_at_the_devices_max_payload(make_server, tools):
    srv = make_server(max_payload=4096)
    dev = client(srv.port)
    dev.connect()
    chunks = list(dev._streaming_service(b"exec", b"screencap", decode=False))  # one item per WRTE
    assert b"".join(chunks) == tools.blob
    assert max(len(c) for c in chunks) <= 4096
    assert len(chunks) >= len(tools.blob) // 4096
    assert srv.stats.max_wrte_sent <= 4096
    dev.close()


def test_large_output_honours_the_hosts_smaller_max_payload(make_server, tools, monkeypatch):
    srv = make_server()  # the device offers 1 MiB; the host asks for 2 KiB
    monkeypatch.setattr(adb_constants, "MAX_ADB_DATA", 2048)
    dev = client(srv.port)
    dev.connect()
    chunks = list(dev._streaming_service(b"exec", b"screencap", decode=False))
    assert b"".join(chunks) == tools.blob
    assert max(len(c) for c in chunks) <= 2048
    dev.close()


def test_wrte_waits_for_okay(make_server):
    """Flow control: the device sends the next WRTE only after the host acknowledged the previous one."""
    srv = make_server(max_payload=4096)
    raw = Raw(srv.port)
    raw.handshake(maxdata=4096)
    raw.send(A_OPEN, 5, 0, b"exec:screencap\0")
    cmd, dev_id, host_id, _ = raw.recv()
    assert (cmd, host_id) == (A_OKAY, 5)
    cmd, a0, a1, data = raw.recv()
    assert (cmd, a0, a1, len(data)) == (A_WRTE, dev_id, 5, 4096)
    with pytest.raises(socket.timeout):
        raw.recv(timeout=0.5)  # no OKAY from us: nothing more may come
    raw.send(A_OKAY, 5, dev_id)
    cmd, _, _, data = raw.recv()
    assert cmd == A_WRTE and len(data) == 4096
    raw.close()


def test_unknown_service_is_refused_with_clse(make_server):
    srv = make_server()
    raw = Raw(srv.port)
    raw.handshake()
    for service in (b"sync:\0", b"reboot:\0", b"shell,v2,raw:echo hi\0"):
        raw.send(A_OPEN, 9, 0, service)
        assert raw.recv() == (A_CLSE, 0, 9, b"")
    raw.close()


def test_interactive_shell_reads_what_the_host_writes(make_server):
    srv = make_server()
    raw = Raw(srv.port)
    raw.handshake()
    raw.send(A_OPEN, 3, 0, b"shell:\0")
    cmd, dev_id, _, _ = raw.recv()
    assert cmd == A_OKAY
    raw.send(A_WRTE, 3, dev_id, b"echo inter$((1+1))active\nexit\n")
    out, closed = b"", False
    deadline = time.monotonic() + 10
    while not closed and time.monotonic() < deadline:
        msg = raw.recv()
        assert msg is not None
        if msg[0] == A_WRTE:
            out += msg[3]
            raw.send(A_OKAY, 3, dev_id)
        closed = msg[0] == A_CLSE
    assert closed and b"inter2active" in out
    raw.close()


def test_zero_checksum_is_accepted_and_a_wrong_one_closes(make_server):
    srv = make_server()
    raw = Raw(srv.port)
    raw.send(A_CNXN, 0x01000001, 1 << 20, b"host::\0", check=0)  # newer hosts send 0
    assert raw.recv()[0] == A_CNXN
    raw.send(A_OPEN, 4, 0, b"shell:echo ok\0", check=12345)
    assert raw.recv() is None  # connection closed, nothing ran
    raw.close()
    raw = Raw(srv.port)
    raw.send(A_CNXN, 0x01000000, 4096, b"host::\0", magic=0)  # bad magic
    assert raw.recv() is None
    raw.close()


# --- authentication -----------------------------------------------------------------------------------------
def test_auth_accepts_a_trusted_key_after_trying_an_untrusted_one(make_server, keys):
    srv = make_server(auth_keys=[keys["k1"][1]])
    dev = client(srv.port)
    assert dev.connect(rsa_keys=[keys["k2"][0], keys["k1"][0]], auth_timeout_s=2)
    assert dev.shell("echo authorized") == "authorized\n"
    assert srv.stats.auth_failures == 1  # k2's signature was rejected, a fresh token followed
    assert srv.stats.offered_keys == []  # k1's signature sufficed, no public key was offered
    dev.close()


def test_auth_refused_fails_cleanly(make_server, keys):
    srv = make_server(auth_keys=[])  # authentication required; nobody taps "Allow"
    dev = client(srv.port, timeout=2)
    with pytest.raises((TcpTimeoutException, AdbTimeoutError)):  # the client's own auth timeout, not a hang
        dev.connect(rsa_keys=[keys["k1"][0]], auth_timeout_s=1, read_timeout_s=2)
    assert not dev.available
    assert srv.stats.offered_keys and srv.stats.offered_keys[0].split()[0] == keys["k1"][1].split()[0]
    assert srv.stats.opens == []
    dev.close()
    with pytest.raises(DeviceAuthError):
        client(srv.port).connect(rsa_keys=None, auth_timeout_s=1)


def test_auth_allow_prompt_accepts_and_remembers_the_key(make_server, keys):
    srv = make_server(auth_keys=[], accept_new_keys=True)
    dev = client(srv.port)
    assert dev.connect(rsa_keys=[keys["k2"][0]], auth_timeout_s=2)
    assert len(srv.stats.offered_keys) == 1
    dev.close()
    srv.accept_new_keys = False
    dev = client(srv.port)
    assert dev.connect(rsa_keys=[keys["k2"][0]], auth_timeout_s=2)  # now by signature
    assert len(srv.stats.offered_keys) == 1
    assert dev.shell("echo again") == "again\n"
    dev.close()


# --- the device shell ---------------------------------------------------------------------------------------
def test_device_shell_really_runs_injected_commands(shell):
    """The negative control for the injection tests: an unescaped string DOES run what it smuggles in."""
    rc, out = shell.run("input text hello; touch pwned")
    assert rc == 0 and (shell.home / "pwned").exists()
    rc, out = shell.run("input text 'hello; touch pwned2'")
    assert not (shell.home / "pwned2").exists()
    assert out == b"argv=['text', 'hello; touch pwned2']\n"


def test_device_shell_environment_is_minimal(shell):
    rc, out = shell.run('echo "$PATH|$HOME|$VIRTUAL_ENV|$PYTHONPATH|$LD_PRELOAD"; pwd')
    path, home, *rest = out.decode().splitlines()[0].split("|")
    assert path == str(shell.bin_dir) and home == str(shell.home) and rest == ["", "", ""]
    assert out.decode().splitlines()[1] == str(shell.home)
    for tool in ("rm", "python3", "curl", "chmod", "mv", "dd"):
        rc, out = shell.run(f"{tool} --help")
        assert rc == 127 and b"not found" in out, tool
    assert sorted(p.name for p in shell.bin_dir.iterdir() if not p.is_symlink()) == sorted(
        ("am", "cmd", "dumpsys", "getprop", "ime", "input", "screencap", "settings", "svc", "wm"))


def test_device_shell_times_out(tools):
    with DeviceShell(tools, timeout_s=1) as sh:
        rc, _ = sh.run("sleep 30", timeout_s=120)  # only the shell's own 1 s watchdog can end it early
        assert rc == -9  # killed by SIGKILL, not finished


# --- Debian's adb binary against the real simulated phone ------------------------------------------------------
def _adb_binary() -> str | None:
    return shutil.which("adb") or next((p for p in ("/usr/lib/android-sdk/platform-tools/adb",) if os.path.exists(p)),
                                       None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def phone():
    from episodes.phone import PhoneSim

    sim = PhoneSim()
    sim.start()
    yield sim
    sim.close()


@pytest.fixture()
def adb(tmp_path):
    binary = _adb_binary()
    if binary is None:
        pytest.skip("Debian's adb is not installed (apt-get install adb)")
    port = _free_port()
    home = tmp_path / "adbhome"
    home.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "ADB_VENDOR_KEYS": str(home),
           "ANDROID_SDK_HOME": str(home), "ANDROID_USER_HOME": str(home / ".android"),
           "ANDROID_ADB_SERVER_PORT": str(port), "TMPDIR": str(tmp_path)}

    def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([binary, "-P", str(port), *args], env=env, capture_output=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)

    r = run("start-server")
    assert r.returncode == 0, r.stderr
    run.home = home  # type: ignore[attr-defined]
    yield run
    run("kill-server", timeout=30)


def test_debian_adb_connect_shell_and_exec_out_screencap(adb, phone):
    phone.reset()
    serial = phone.address
    r = adb("connect", serial)
    assert r.returncode == 0 and b"connected to" in r.stdout, r.stdout + r.stderr
    assert adb("-s", serial, "wait-for-device", timeout=30).returncode == 0
    devices = adb("devices", "-l").stdout.decode()
    assert f"{serial}" in devices and "device product:cogphone_sim model:CogPhone" in devices
    r = adb("-s", serial, "shell", "echo", "hi")
    assert (r.returncode, r.stdout) == (0, b"hi\n")
    r = adb("-s", serial, "shell", "wm size; settings get global airplane_mode_on")
    assert r.stdout == b"Physical size: 1080x2400\n0\n"
    r = adb("-s", serial, "exec-out", "screencap")
    assert r.returncode == 0
    w, h, fmt, colorspace = struct.unpack_from("<4I", r.stdout)
    assert (w, h, fmt, colorspace) == (1080, 2400, 1, 1) and len(r.stdout) == 16 + w * h * 4
    pixels = np.frombuffer(r.stdout, np.uint8, offset=16).reshape(h, w, 4)
    assert (pixels[..., 3] == 255).all()
    assert np.array_equal(pixels[..., :3], np.asarray(phone.screenshot()))  # the page's real pixels
    r = adb("-s", serial, "exec-out", "screencap -p")
    assert r.stdout.startswith(b"\x89PNG\r\n\x1a\n")
    # a tap sent by adb lands on the page
    x, y = phone.element_center('[data-app="settings"]')
    assert adb("-s", serial, "shell", f"input tap {x} {y}").returncode == 0
    assert phone.state()["current_screen"] == "settings"
    adb("disconnect", serial)


def test_debian_adb_is_unauthorized_until_its_key_is_trusted(adb, phone):
    serial = phone.address
    try:
        phone.set_auth("refuse")
        r = adb("connect", serial)
        assert b"failed to authenticate" in r.stdout or b"unauthorized" in adb("devices").stdout
        assert wait_for(lambda: b"unauthorized" in adb("devices").stdout, 10)
        r = adb("-s", serial, "shell", "echo", "hi")
        assert r.returncode != 0 and b"unauthorized" in r.stderr
        adb("disconnect", serial)
        pub = Path(adb.home, ".android", "adbkey.pub").read_text()  # type: ignore[attr-defined]
        phone.set_auth([pub])
        r = adb("connect", serial)
        assert b"connected to" in r.stdout, r.stdout + r.stderr
        assert wait_for(lambda: f"{serial}\tdevice".encode() in adb("devices").stdout, 10)
        r = adb("-s", serial, "shell", "echo", "hi")
        assert (r.returncode, r.stdout) == (0, b"hi\n")
        adb("disconnect", serial)
    finally:
        phone.set_auth(None)
