"""Policies: whatever turns (screenshot, task, history) into the model's next turn.

Three sources behind one small interface, so that the loop, the episode format and the evaluation never care
where a turn came from: the in-process CogAgent (``CogAgentPolicy``), any OpenAI-compatible chat-completions
server such as vLLM serving CogAgent-9B or this project's own (``HttpPolicy``), and the recorded turns of an
earlier episode (``ReplayPolicy``). Each returns the raw text as well as the parse, so a step that the model
got wrong can always be looked at as the model wrote it.
"""

from __future__ import annotations

import base64
import io
import json
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

from PIL import Image

from cogagent.grammar import ModelTurn, ParseError, parse
from cogagent.prompts_9b import build_query_9b


class PolicyError(RuntimeError):
    """The policy could not produce a turn at all (server unreachable, replay exhausted): the episode ends."""


@dataclass(frozen=True)
class HistoryItem:
    """One earlier step as the next prompt sees it."""

    query: str
    response: str
    operation: str = ""


@dataclass
class PolicyReply:
    raw_text: str
    turn: ModelTurn | ParseError
    prompt: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


class Policy(Protocol):
    name: str

    def act(self, screenshot: Image.Image, task: str, history: Sequence[HistoryItem]) -> PolicyReply: ...

    def describe(self) -> dict[str, Any]: ...


def agent_query_18b(task: str) -> str:
    """The query CogAgent-18B was tuned on for agent steps (the '(with grounding)' suffix asks for boxes)."""
    from cogagent.prompts import agent_query

    return agent_query(task, grounding=True)


class CogAgentPolicy:
    """The in-process model: prompt -> generate -> decode -> parse."""

    name = "cogagent"

    def __init__(self, model: Any, tokenizer: Any, *, template: str | None = None, max_new_tokens: int = 256,
                 history_steps: int = 4, do_sample: bool = False, temperature: float = 1.0, top_p: float = 1.0,
                 model_path: str | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.template = template
        self.max_new_tokens = max_new_tokens
        self.history_steps = history_steps
        self.sampling = {"do_sample": do_sample, "temperature": temperature, "top_p": top_p}
        self.model_path = model_path

    def describe(self) -> dict[str, Any]:
        cfg = getattr(self.model, "config", None)
        return {"kind": self.name, "path": self.model_path, "template": self.template or getattr(cfg, "template_version", None),
                "max_new_tokens": self.max_new_tokens, **self.sampling}

    def generate_text(self, screenshot: Image.Image, query: str, history: Sequence[tuple[str, str]] = (),
                      template: str | None = None) -> tuple[str, dict[str, float]]:
        import torch

        from cogagent.prompts import build_inputs

        t0 = time.perf_counter()
        inputs = build_inputs(self.tokenizer, query, screenshot, history=list(history),
                              template=template or self.template, config=self.model.config)
        param = next(self.model.parameters())
        prompt_len = inputs["input_ids"].shape[1]
        t1 = time.perf_counter()
        with torch.inference_mode():
            out = self.model.generate(
                inputs["input_ids"].to(param.device), inputs["token_type_ids"].to(param.device),
                attention_mask=inputs["attention_mask"].to(param.device),
                images=inputs["images"].to(param.device, param.dtype),
                cross_images=inputs["cross_images"].to(param.device, param.dtype),
                max_new_tokens=self.max_new_tokens, eos_token_id=self.model.config.eos_token_id, **self.sampling,
            )
        t2 = time.perf_counter()
        new_ids = out[0, prompt_len:].tolist()
        text = self.tokenizer.decode(new_ids, skip_special_tokens=True).strip()
        return text, {"prompt_s": t1 - t0, "generate_s": t2 - t1, "new_tokens": float(len(new_ids))}

    def act(self, screenshot: Image.Image, task: str, history: Sequence[HistoryItem]) -> PolicyReply:
        query = agent_query_18b(task)
        past = [(h.query, h.response) for h in history[-self.history_steps:]] if self.history_steps else []
        text, timings = self.generate_text(screenshot, query, past)
        return PolicyReply(text, parse(text), query, timings)


def image_data_url(image: Image.Image) -> str:
    buf = io.BytesIO()
    image.convert("RGB").save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class HttpPolicy:
    """An OpenAI-compatible ``/v1/chat/completions`` endpoint (vLLM, or any server) with the screenshot inline."""

    name = "http"

    def __init__(self, url: str, *, model: str = "cogagent", api_key: str | None = None, style: str = "18b",
                 platform: str = "WIN", answer_format: str = "Action-Operation-Sensitive", timeout_s: float = 120.0,
                 retries: int = 2, backoff_s: float = 1.0, max_tokens: int = 512, temperature: float = 0.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"server URL must start with http:// or https://, got {url!r}")
        if style not in ("18b", "9b"):
            raise ValueError(f"style must be '18b' or '9b', got {style!r}")
        base = url.rstrip("/")
        self.endpoint = base if base.endswith("/chat/completions") else (
            base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions"))
        self.model, self.api_key, self.style = model, api_key, style
        self.platform, self.answer_format = platform, answer_format
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self.max_tokens, self.temperature = max_tokens, temperature

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name, "endpoint": self.endpoint, "model": self.model, "style": self.style}

    def _messages(self, screenshot: Image.Image, task: str, history: Sequence[HistoryItem]) -> tuple[str, list[dict]]:
        if self.style == "9b":
            query = build_query_9b(task, [(h.operation, h.response) for h in history], self.platform, self.answer_format)
            past: list[dict] = []
        else:
            query = agent_query_18b(task)
            past = []
            for h in history:
                past += [{"role": "user", "content": h.query}, {"role": "assistant", "content": h.response}]
        content = [{"type": "text", "text": query}, {"type": "image_url", "image_url": {"url": image_data_url(screenshot)}}]
        return query, [*past, {"role": "user", "content": content}]

    def complete(self, messages: list[dict]) -> str:
        body = json.dumps({"model": self.model, "messages": messages, "max_tokens": self.max_tokens,
                           "temperature": self.temperature}).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * (2 ** (attempt - 1)) * (0.5 + random.random()))
            request = urllib.request.Request(self.endpoint, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:
                    payload = resp.read(32 * 2**20)
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code} from {self.endpoint}: {exc.read(300).decode('utf-8', 'replace')}"
                if exc.code < 500 and exc.code != 429:
                    raise PolicyError(last) from None  # a client error does not get better by retrying
                continue
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                last = f"cannot reach {self.endpoint}: {reason}"
                continue
            try:
                data = json.loads(payload)
                text = data["choices"][0]["message"]["content"]
            except (json.JSONDecodeError, KeyError, IndexError, TypeError):
                last = f"{self.endpoint} answered something that is not a chat completion: {payload[:200]!r}"
                continue
            if isinstance(text, list):  # some servers answer with content parts
                text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
            if not isinstance(text, str):
                last = f"{self.endpoint} answered a non-text message content: {text!r:.200}"
                continue
            return text
        raise PolicyError(f"{last} (after {self.retries + 1} attempts)")

    def act(self, screenshot: Image.Image, task: str, history: Sequence[HistoryItem]) -> PolicyReply:
        t0 = time.perf_counter()
        query, messages = self._messages(screenshot, task, history)
        text = self.complete(messages)
        return PolicyReply(text, parse(text), query, {"request_s": time.perf_counter() - t0})


class ReplayPolicy:
    """The turns an earlier episode recorded, in order: re-runs an episode without a model."""

    name = "replay"
    inline = True  # answers at once; runs in the loop's thread

    def __init__(self, texts: Sequence[str], source: str = "") -> None:
        self._texts = list(texts)
        self._next = 0
        self.source = source

    @classmethod
    def from_episode(cls, episode: Any) -> "ReplayPolicy":
        texts = [s["raw_text"] for s in episode.steps if s.get("raw_text") is not None and s.get("status") != "parse_failed"]
        return cls(texts, str(episode.path))

    def describe(self) -> dict[str, Any]:
        return {"kind": self.name, "source": self.source, "turns": len(self._texts)}

    def act(self, screenshot: Image.Image, task: str, history: Sequence[HistoryItem]) -> PolicyReply:
        if self._next >= len(self._texts):
            raise PolicyError(f"the recorded episode has no more turns ({len(self._texts)} replayed)")
        text = self._texts[self._next]
        self._next += 1
        return PolicyReply(text, parse(text), "", {"replay_s": 0.0})
