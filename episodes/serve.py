"""``run_agent.py serve``: the in-process CogAgent behind an OpenAI-compatible ``/v1/chat/completions``.

One GPU holds the model; any number of agent loops (on this machine or others, each with its own browser or
phone) reach it with ``--server http://HOST:PORT/v1``. Requests take the screenshot as an ``image_url`` data
URL in the last user message and earlier user/assistant text turns as the chat history, which is what
``HttpPolicy`` and most OpenAI clients send. Requests are served one at a time on the model (a lock); the HTTP
side is threaded so that slow uploads do not hold the model.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image, UnidentifiedImageError

MAX_BODY_BYTES = 32 * 2**20


class RequestError(ValueError):
    """A request the server cannot answer; becomes an HTTP 400 with the message."""


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    raise RequestError("message content must be a string or a list of content parts")


def _image_of(content: Any) -> Image.Image:
    parts = [p for p in content if isinstance(p, dict) and p.get("type") == "image_url"] if isinstance(content, list) else []
    if len(parts) != 1:
        raise RequestError("the last user message must hold exactly one image_url part (the screenshot)")
    url = (parts[0].get("image_url") or {}).get("url", "")
    if not isinstance(url, str) or not url.startswith("data:image/") or ";base64," not in url:
        raise RequestError("image_url must be a data URL (data:image/png;base64,...); remote URLs are not fetched")
    try:
        data = base64.b64decode(url.split(";base64,", 1)[1], validate=True)
        with Image.open(io.BytesIO(data)) as img:
            return img.convert("RGB")
    except (binascii.Error, UnidentifiedImageError, OSError) as exc:
        raise RequestError(f"the image could not be decoded: {exc}") from None


def parse_request(body: dict[str, Any]) -> tuple[str, Image.Image, list[tuple[str, str]], dict[str, Any]]:
    """(query, screenshot, history pairs, generation options) from a chat-completions request body."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestError("'messages' must be a non-empty list")
    last = messages[-1]
    if not isinstance(last, dict) or last.get("role") != "user":
        raise RequestError("the last message must come from the user")
    query = _text_of(last.get("content")).strip()
    if not query:
        raise RequestError("the last user message has no text")
    image = _image_of(last.get("content"))
    history: list[tuple[str, str]] = []
    pending: str | None = None
    for message in messages[:-1]:
        role = message.get("role") if isinstance(message, dict) else None
        if role == "system":
            continue
        if role == "user":
            pending = _text_of(message.get("content"))
        elif role == "assistant" and pending is not None:
            history.append((pending, _text_of(message.get("content"))))
            pending = None
    options: dict[str, Any] = {}
    if "max_tokens" in body:
        if not isinstance(body["max_tokens"], int) or not 1 <= body["max_tokens"] <= 4096:
            raise RequestError("'max_tokens' must be a whole number from 1 to 4096")
        options["max_new_tokens"] = body["max_tokens"]
    temperature = body.get("temperature", 0.0)
    if not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
        raise RequestError("'temperature' must be between 0 and 2")
    if temperature > 0:
        options.update(do_sample=True, temperature=float(temperature), top_p=float(body.get("top_p", 1.0)))
    return query, image, history, options


class ModelServer:
    def __init__(self, policy: Any, model_name: str = "cogagent", host: str = "127.0.0.1", port: int = 8000) -> None:
        self.policy = policy
        self.model_name = model_name
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/") in ("/v1/models", "/models"):
                    self._json(200, {"object": "list", "data": [{"id": server.model_name, "object": "model"}]})
                else:
                    self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})

            def do_POST(self) -> None:  # noqa: N802
                if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                    self._json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                try:
                    length = int(self.headers.get("Content-Length", ""))
                except ValueError:
                    self._json(411, {"error": {"message": "Content-Length is required", "type": "invalid_request_error"}})
                    return
                if not 0 < length <= MAX_BODY_BYTES:
                    self._json(413, {"error": {"message": f"body must be 1 to {MAX_BODY_BYTES} bytes",
                                               "type": "invalid_request_error"}})
                    return
                try:
                    body = json.loads(self.rfile.read(length))
                    if not isinstance(body, dict):
                        raise RequestError("the body must be a JSON object")
                    self._json(200, server.complete(body))
                except (json.JSONDecodeError, UnicodeDecodeError):
                    self._json(400, {"error": {"message": "the body is not JSON", "type": "invalid_request_error"}})
                except RequestError as exc:
                    self._json(400, {"error": {"message": str(exc), "type": "invalid_request_error"}})

            def _json(self, status: int, obj: Any) -> None:
                data = json.dumps(obj, ensure_ascii=False).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        self.host, self.port = self.httpd.server_address[:2]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        query, image, history, options = parse_request(body)
        with self.lock:
            saved = (self.policy.max_new_tokens, dict(self.policy.sampling))
            try:
                self.policy.max_new_tokens = options.pop("max_new_tokens", self.policy.max_new_tokens)
                self.policy.sampling.update(options)
                text, timings = self.policy.generate_text(image, query, history)
            finally:
                self.policy.max_new_tokens, self.policy.sampling = saved[0], saved[1]
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
                "model": self.model_name,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"completion_tokens": int(timings.get("new_tokens", 0))}}

    def serve_in_background(self) -> threading.Thread:
        thread = threading.Thread(target=self.httpd.serve_forever, daemon=True, name="model-server")
        thread.start()
        return thread

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
