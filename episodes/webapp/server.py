"""A tiny threaded HTTP server for the bundled web apps, with a per-session state store the pages write into.

Why a state store: a task's success must be read from what the user actually did on the page (the query they
searched, the option they saved, the button they pressed), not guessed from a screenshot. Each page posts small
JSON facts to ``/api/state/<session>``; the server deep-merges them into that session's state; a task's
``check`` reads the state back. The session id travels in the page URL (``?session=abc``) and ``site/common.js``
carries it from page to page, so many episodes can share one server without seeing each other's state.

Endpoints (nothing else; only GET and POST):

- ``GET /<path>``: a static file from ``site/`` (a folder serves its ``index.html``).
- ``POST /api/state/<session>``: body is a JSON object, deep-merged into the session's state: objects merge key
  by key, any other value replaces, ``null`` deletes the key. Answers the new state.
- ``GET /api/state/<session>``: the session's state (``{}`` for a session never seen).
- ``POST /api/reset/<session>``: forget the session's state.

Bad input gets a clear status and a JSON ``{"error": ...}``: a malformed session id, bad JSON or a non-object
body -> 400, a path with ``..`` -> 400, a missing file -> 404, a body without ``Content-Length`` -> 411, a body
over ``MAX_BODY_BYTES`` or a state that would grow past ``MAX_STATE_BYTES`` -> 413 (state unchanged), other
methods -> 405.

Settling: a page posts its state with ``fetch`` right in the event handler, and a page that navigates away waits
for its posts first. A caller that checks state right after an action should first let the page settle: the
pages expose ``window.webapp`` with ``pending`` (state requests in flight, counted from the moment a handler
makes one) and ``leaving`` (set when the document starts navigating away); settled is
``document.readyState == "complete" && window.webapp && webapp.pending === 0 && !webapp.leaving`` on the
page now in front, after a short quiet period with no request in flight (so a new tab or a navigation the
action started is seen). ``tests/test_webapp.py``'s ``Tab.settle`` is a worked example.

Use::

    with WebAppServer() as server:           # port 0: a free port on 127.0.0.1
        sid = server.new_session()
        page.goto(server.page_url("/search/index.html", sid))
        ...
        server.state(sid)                    # {"search": {"query": "CogVLM"}, ...}

By hand: ``python -m episodes.webapp.server --port 8000`` and open the printed address.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import mimetypes
import re
import threading
from collections import OrderedDict
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

SITE_DIR = Path(__file__).resolve().parent / "site"
"""The static pages. Plain files, no build step: also what a synthetic-data generator reads widgets from."""

MAX_BODY_BYTES = 64 * 1024
"""Largest POST body accepted; a page's state post is a few hundred bytes."""

MAX_STATE_BYTES = 256 * 1024
"""Largest state one session may hold (as JSON); a post that would pass it is refused and changes nothing."""

MAX_DEPTH = 32
"""Deepest nesting of objects and lists a state post may have; pages post two or three levels."""

MAX_SESSIONS = 1024
"""Sessions kept at once; the least recently written is forgotten first, so a long-lived server stays small."""

SESSION_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
"""Session ids: short and URL-safe, so they can sit in a query string and a path segment unescaped."""

_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}


class StateError(ValueError):
    """A state post that cannot be applied; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def deep_merge(into: dict[str, Any], update: dict[str, Any]) -> None:
    """Merge ``update`` into ``into`` in place: objects merge key by key, ``None`` deletes, anything else replaces.

    Deep rather than shallow so that two pages (or two widgets on one page) can each record their own sub-key
    of, say, ``settings`` without reading the other's first.
    """
    for key, value in update.items():
        if value is None:
            into.pop(key, None)
        elif isinstance(value, dict) and isinstance(into.get(key), dict):
            deep_merge(into[key], value)
        elif isinstance(value, dict):
            fresh: dict[str, Any] = {}
            deep_merge(fresh, value)
            into[key] = fresh
        else:
            into[key] = copy.deepcopy(value)


class StateStore:
    """Per-session JSON state, thread-safe, bounded in size and in number of sessions."""

    def __init__(self, max_sessions: int = MAX_SESSIONS, max_state_bytes: int = MAX_STATE_BYTES) -> None:
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.max_sessions = max_sessions
        self.max_state_bytes = max_state_bytes

    def get(self, session: str) -> dict[str, Any]:
        """A deep copy of the session's state; ``{}`` for a session never written."""
        _check_session(session)
        with self._lock:
            return copy.deepcopy(self._sessions.get(session, {}))

    def merge(self, session: str, update: dict[str, Any]) -> dict[str, Any]:
        """Deep-merge ``update`` into the session's state and return the new state; all or nothing."""
        _check_session(session)
        if not isinstance(update, dict):
            raise StateError(HTTPStatus.BAD_REQUEST, f"state must be a JSON object, got {type(update).__name__}")
        if _depth(update) > MAX_DEPTH:
            raise StateError(HTTPStatus.BAD_REQUEST, f"state is nested deeper than {MAX_DEPTH} levels")
        with self._lock:
            merged = copy.deepcopy(self._sessions.get(session, {}))
            deep_merge(merged, update)
            size = len(json.dumps(merged, ensure_ascii=False).encode("utf-8"))
            if size > self.max_state_bytes:
                raise StateError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                                 f"session state would be {size} bytes, over the {self.max_state_bytes} limit; "
                                 "reset the session or post less")
            self._sessions[session] = merged
            self._sessions.move_to_end(session)
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
            return copy.deepcopy(merged)

    def reset(self, session: str) -> None:
        _check_session(session)
        with self._lock:
            self._sessions.pop(session, None)


def _depth(value: Any) -> int:
    """Nesting depth, counted without recursion so a hostile body cannot exhaust the stack here."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in node)
    return deepest


def _check_session(session: str) -> None:
    if not isinstance(session, str) or not SESSION_RE.match(session):
        raise StateError(HTTPStatus.BAD_REQUEST,
                         f"bad session id {session!r}: use 1-64 characters from A-Z a-z 0-9 _ -")


class _Handler(BaseHTTPRequestHandler):
    """Static files plus the state API; every answer is small and closes nothing it did not open."""

    server: "_Server"
    protocol_version = "HTTP/1.1"
    server_version = "CogAgentWebApp/1.0"

    # -- dispatch -------------------------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self._path()
        if path is None:
            return
        if path.startswith("/api/"):
            parts = path.split("/")
            if len(parts) == 4 and parts[2] == "state":
                self._api(lambda: self.server.store.get(parts[3]))
            else:
                self._error(HTTPStatus.NOT_FOUND, f"no API endpoint GET {path}")
            return
        self._static(path)

    def do_POST(self) -> None:  # noqa: N802
        path = self._path()
        if path is None:
            return
        parts = path.split("/")
        if len(parts) != 4 or parts[1] != "api" or parts[2] not in ("state", "reset"):
            self._drain()
            self._error(HTTPStatus.NOT_FOUND,
                        f"no API endpoint POST {path}: use /api/state/<session> or /api/reset/<session>")
            return
        session = parts[3]
        if parts[2] == "reset":
            self._drain()
            self._api(lambda: (self.server.store.reset(session), {})[1])
            return
        body = self._read_body()
        if body is None:
            return
        try:
            update = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            self._error(HTTPStatus.BAD_REQUEST, f"body is not valid UTF-8 JSON: {exc}")
            return
        self._api(lambda: self.server.store.merge(session, update))

    def _not_allowed(self) -> None:
        self._drain()
        self._error(HTTPStatus.METHOD_NOT_ALLOWED, f"method {self.command} is not allowed: use GET or POST",
                    extra_headers={"Allow": "GET, POST"})

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _not_allowed  # noqa: N815

    # -- pieces ---------------------------------------------------------------------------------------------
    def _path(self) -> str | None:
        """The decoded request path, or ``None`` after answering 400 for a traversal attempt."""
        raw = urlsplit(self.path).path
        path = unquote(raw)
        segments = path.replace("\\", "/").split("/")
        if not path.startswith("/") or ".." in segments or "\x00" in path:
            self._drain()
            self._error(HTTPStatus.BAD_REQUEST, f"bad path {raw!r}: '..' segments are not allowed")
            return None
        return path

    def _static(self, path: str) -> None:
        root = self.server.site_dir
        target = (root / path.lstrip("/")).resolve()
        if target.is_dir():
            target = target / "index.html"
        if path == "/favicon.ico" and not target.is_file():
            # Browsers ask for it on every site; an empty answer keeps a 404 out of every episode's console.
            self._send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
            return
        if not target.is_relative_to(root) or not target.is_file():
            self._error(HTTPStatus.NOT_FOUND, f"no page at {path}")
            return
        data = target.read_bytes()
        ctype = _CONTENT_TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        self._send(HTTPStatus.OK, data, ctype)

    def _read_body(self) -> bytes | None:
        """The request body within ``MAX_BODY_BYTES``, or ``None`` after answering the error."""
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            self._error(HTTPStatus.LENGTH_REQUIRED, "chunked bodies are not accepted: send Content-Length")
            return None
        length_text = self.headers.get("Content-Length")
        if length_text is None:
            self._error(HTTPStatus.LENGTH_REQUIRED, "POST needs a Content-Length header")
            return None
        try:
            length = int(length_text)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self._error(HTTPStatus.BAD_REQUEST, f"bad Content-Length {length_text!r}")
            return None
        if length > MAX_BODY_BYTES:
            # Do not read a large body: answer and drop the connection instead.
            self.close_connection = True
            self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                        f"body of {length} bytes is over the {MAX_BODY_BYTES}-byte limit")
            return None
        return self.rfile.read(length)

    def _drain(self) -> None:
        """Read a small body we do not need so the keep-alive connection stays in step; drop it if large."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if 0 < length <= MAX_BODY_BYTES:
            self.rfile.read(length)
        elif length != 0 or self.headers.get("Transfer-Encoding"):
            self.close_connection = True

    def _api(self, fn: Any) -> None:
        try:
            result = fn()
        except StateError as exc:
            self._error(exc.status, str(exc))
            return
        self._json(HTTPStatus.OK, result)

    def _json(self, status: int, obj: Any, extra_headers: dict[str, str] | None = None) -> None:
        body = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        self._send(status, body, "application/json; charset=utf-8", extra_headers)

    def _error(self, status: int, message: str, extra_headers: dict[str, str] | None = None) -> None:
        self._json(status, {"error": message}, extra_headers)

    def _send(self, status: int, body: bytes, ctype: str, extra_headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (extra_headers or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib signature)
        if self.server.verbose:
            super().log_message(format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], site_dir: Path, store: StateStore, verbose: bool) -> None:
        self.site_dir = site_dir
        self.store = store
        self.verbose = verbose
        super().__init__(address, _Handler)


class WebAppServer:
    """The bundled site on ``host:port`` (port 0: any free port), served from a background thread.

    It starts listening when built, so ``url`` is valid at once; ``close()`` (or leaving the ``with`` block)
    stops it and frees the port. State lives in memory and ends with the server.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, site_dir: str | Path | None = None,
                 verbose: bool = False) -> None:
        root = Path(site_dir).resolve() if site_dir is not None else SITE_DIR
        if not (root / "index.html").is_file():
            raise FileNotFoundError(f"no web site at {root}: expected an index.html there")
        self.store = StateStore()
        try:
            self._httpd = _Server((host, port), root, self.store, verbose)
        except OSError as exc:
            raise OSError(f"cannot listen on {host}:{port}: {exc}; pick another port or 0 for any free one") from exc
        self.host, self.port = self._httpd.server_address[:2]
        self._ids = itertools.count(1)
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"webapp-{self.port}", daemon=True)
        self._thread.start()
        self._closed = False

    @property
    def base_url(self) -> str:
        """``http://host:port`` with no trailing slash, to put a site path after."""
        host = f"[{self.host}]" if ":" in str(self.host) else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The home page."""
        return self.base_url + "/"

    def page_url(self, path: str = "/", session: str | None = None) -> str:
        """The full address of a site page, with ``?session=`` added (kept after any query the path has)."""
        if not path.startswith("/"):
            path = "/" + path
        if session is None:
            return self.base_url + path
        _check_session(session)
        base, sep, fragment = path.partition("#")
        joiner = "&" if "?" in base else "?"
        return f"{self.base_url}{base}{joiner}session={quote(session)}{sep}{fragment}"

    def new_session(self, prefix: str = "s") -> str:
        """A fresh session id, unique within this server (counter-based, so runs are reproducible)."""
        return f"{prefix}{next(self._ids)}"

    def state(self, session: str) -> dict[str, Any]:
        """What the pages recorded for ``session`` (a copy); ``{}`` if nothing was."""
        return self.store.get(session)

    def reset(self, session: str) -> None:
        """Forget everything recorded for ``session``."""
        self.store.reset(session)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> "WebAppServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"WebAppServer({self.base_url}, closed={self._closed})"


def main(argv: list[str] | None = None) -> None:
    """Serve the site in the foreground, for looking at the pages by hand."""
    parser = argparse.ArgumentParser(description="Serve the bundled CogAgent web apps on 127.0.0.1.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    server = WebAppServer(args.host, args.port, verbose=True)
    print(f"serving {SITE_DIR} at {server.url} (Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    main()
