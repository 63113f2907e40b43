"""``python -m episodes.phone [--port 5555]``: run the simulated phone for a person (or ``adb``) to try."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from .phone_sim import PhoneSim


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m episodes.phone", description=__doc__)
    ap.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=5555, help="TCP port for ADB (0 = any free port; default 5555)")
    ap.add_argument("--auth-key", action="append", metavar="ADBKEY.PUB",
                    help="require ADB authentication and trust this public key (repeatable)")
    ap.add_argument("--allow-new-keys", action="store_true",
                    help="require authentication, and accept any key a host offers (a person tapping Allow)")
    ap.add_argument("--state", default="{}", help='initial state as JSON, e.g. \'{"dark_mode": true}\'')
    ap.add_argument("--adbkeyboard", action="store_true", help="install the ADBKeyBoard input method")
    ap.add_argument("--headed", action="store_true", help="show the phone's Chromium window (needs a display)")
    args = ap.parse_args(argv)
    try:
        state = json.loads(args.state)
    except json.JSONDecodeError as exc:
        ap.error(f"--state is not JSON: {exc}")
    auth = args.auth_key if args.auth_key else ("refuse" if args.allow_new_keys else None)
    sim = PhoneSim(state=state, headless=not args.headed, adbkeyboard=args.adbkeyboard)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        port = sim.start(args.host, args.port, auth=auth, accept_new_keys=args.allow_new_keys)
        print(f"Simulated phone ready at {args.host}:{port}  (try: adb connect {args.host}:{port})", flush=True)
        print("Press Ctrl-C to stop.", flush=True)
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
    finally:
        sim.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
