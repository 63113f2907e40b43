"""Finding and launching Debian's Chromium through Playwright, the one way every part of the project does it.

Playwright's own browser download cannot run on these machines, so we always pass ``executable_path``; the
flags keep Chromium from reaching for Google's services, which a closed network answers with a storm of
refused connections and slow starts.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from .base import ActuatorError

CHROMIUM_CANDIDATES = (
    "/usr/lib/chromium/chromium",  # Debian's real binary (the /usr/bin one is a shell wrapper)
    "/usr/lib/chromium-browser/chromium-browser",
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
)

CHROMIUM_ARGS = (
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-default-apps",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
)


def find_chromium(explicit: str | None = None) -> str:
    """The Chromium binary to run: ``explicit``, ``$COGAGENT_CHROMIUM``, or the first Debian location found."""
    usable = lambda c: bool(c) and Path(c).is_file() and os.access(c, os.X_OK)  # noqa: E731
    if explicit:  # asked for by name: that one or an error, never silently another browser
        if usable(explicit):
            return explicit
        raise ActuatorError(f"no Chromium executable at {explicit!r}: install it (apt-get install chromium) "
                            "or pass the path of a Chromium binary")
    for candidate in (os.environ.get("COGAGENT_CHROMIUM"), *CHROMIUM_CANDIDATES):
        if usable(candidate):
            return candidate
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    raise ActuatorError("Chromium was not found: install it with 'apt-get install -y chromium' "
                        "or set COGAGENT_CHROMIUM to the browser binary")


def launch_chromium(playwright: Any, headless: bool = True, executable: str | None = None,
                    extra_args: tuple[str, ...] = (), timeout_ms: float = 30_000) -> Any:
    """A Playwright ``Browser`` on Debian's Chromium; errors become ``ActuatorError`` with the reason."""
    path = find_chromium(executable)
    try:
        return playwright.chromium.launch(
            executable_path=path, headless=headless, args=[*CHROMIUM_ARGS, *extra_args], timeout=timeout_ms
        )
    except Exception as exc:  # Playwright raises its own Error type with the browser's stderr inside
        raise ActuatorError(f"Chromium at {path} did not start: {str(exc).splitlines()[0]}") from exc
