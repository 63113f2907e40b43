"""Policies: the HTTP policy against a real server on 127.0.0.1, the in-process tiny CogAgent, replay."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image

from cogagent.grammar import ModelTurn, ParseError
from cogagent.prompts_9b import build_query_9b
from episodes.policies import CogAgentPolicy, HistoryItem, HttpPolicy, PolicyError, ReplayPolicy

ANSWER = "Plan: x.\nNext Action: click.\nGrounded Operation:[button] OK -> CLICK at the box [[100,100,200,200]]"


class Script:
    """What the fake endpoint answers, in order: (status, body, delay seconds)."""

    def __init__(self, replies: list[tuple[int, bytes, float]]) -> None:
        self.replies = replies
        self.requests: list[dict] = []


def _server(script: Script) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"]))
            script.requests.append({"path": self.path, "body": json.loads(body), "auth": self.headers.get("Authorization")})
            status, payload, delay = script.replies.pop(0) if script.replies else (500, b"no more", 0.0)
            time.sleep(delay)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            try:
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _ok(text: str) -> bytes:
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]}).encode()


@pytest.fixture()
def shot() -> Image.Image:
    return Image.new("RGB", (320, 200), (200, 220, 240))


def test_http_policy_sends_the_screenshot_and_parses_the_answer(shot: Image.Image) -> None:
    script = Script([(200, _ok(ANSWER), 0.0)])
    server = _server(script)
    try:
        policy = HttpPolicy(f"http://127.0.0.1:{server.server_port}/v1", api_key="k", retries=0)
        reply = policy.act(shot, "press OK", [HistoryItem("q0", "r0")])
    finally:
        server.shutdown()
    assert isinstance(reply.turn, ModelTurn) and reply.turn.operations[0].verb == "CLICK"
    req = script.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer k"
    messages = req["body"]["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    image_part = messages[-1]["content"][1]
    assert image_part["image_url"]["url"].startswith("data:image/png;base64,")
    assert messages[-1]["content"][0]["text"] == 'What steps do I need to take to "press OK"?(with grounding)'


def test_http_policy_9b_style_puts_history_in_the_query(shot: Image.Image) -> None:
    script = Script([(200, _ok("Action: x\nGrounded Operation: END()\n<<一般操作>>"), 0.0)])
    server = _server(script)
    try:
        policy = HttpPolicy(f"http://127.0.0.1:{server.server_port}", style="9b", platform="Mac", retries=0)
        policy.act(shot, "mark all as read", [HistoryItem("", "Click it", "CLICK(box=[[1,2,3,4]])")])
    finally:
        server.shutdown()
    text = script.requests[0]["body"]["messages"][0]["content"][0]["text"]
    assert text == build_query_9b("mark all as read", [("CLICK(box=[[1,2,3,4]])", "Click it")], "Mac")
    assert text == ("Task: mark all as read\nHistory steps: \n0. CLICK(box=[[1,2,3,4]])\tClick it\n"
                    "(Platform: Mac)\n(Answer in Action-Operation-Sensitive format.)")


def test_http_policy_retries_server_errors_and_garbage_then_succeeds(shot: Image.Image) -> None:
    script = Script([(503, b"busy", 0.0), (200, b"<html>not json</html>", 0.0), (200, _ok(ANSWER), 0.0)])
    server = _server(script)
    try:
        policy = HttpPolicy(f"http://127.0.0.1:{server.server_port}/v1", retries=2, backoff_s=0.01)
        assert isinstance(policy.act(shot, "t", []).turn, ModelTurn)
    finally:
        server.shutdown()
    assert len(script.requests) == 3


def test_http_policy_gives_up_with_a_clear_error(shot: Image.Image) -> None:
    script = Script([(400, b'{"error": "bad model name"}', 0.0)])
    server = _server(script)
    try:
        with pytest.raises(PolicyError, match="HTTP 400.*bad model name"):
            HttpPolicy(f"http://127.0.0.1:{server.server_port}/v1", retries=3).act(shot, "t", [])
        assert len(script.requests) == 1  # a client error is not retried
        script.replies = [(200, _ok(ANSWER), 2.0), (200, _ok(ANSWER), 2.0)]
        with pytest.raises(PolicyError, match="after 2 attempts"):
            HttpPolicy(f"http://127.0.0.1:{server.server_port}/v1", timeout_s=0.3, retries=1,
                       backoff_s=0.01).act(shot, "t", [])
    finally:
        server.shutdown()
    with pytest.raises(PolicyError, match="cannot reach"):  # nothing listens there any more
        HttpPolicy(f"http://127.0.0.1:{server.server_port}/v1", retries=0, timeout_s=2).act(shot, "t", [])
    with pytest.raises(ValueError, match="http:// or https://"):
        HttpPolicy("ftp://example.com")


def test_replay_policy_runs_out_with_a_clear_error(shot: Image.Image) -> None:
    policy = ReplayPolicy(["nonsense ]]"])
    assert isinstance(policy.act(shot, "t", []).turn, (ModelTurn, ParseError))
    with pytest.raises(PolicyError, match="no more turns"):
        policy.act(shot, "t", [])


def test_tiny_cogagent_policy_generates_and_never_raises_on_its_nonsense(tmp_path: Path, shot: Image.Image) -> None:
    import torch

    from cogagent import CogAgentForCausalLM
    from cogagent.tiny import make_tiny_checkpoint
    from cogagent.tokenizer import load_tokenizer

    root = make_tiny_checkpoint(tmp_path / "tiny", image_size=28, cross_image_size=56)
    model = CogAgentForCausalLM.from_pretrained(root / "model", dtype="float32").eval()
    policy = CogAgentPolicy(model, load_tokenizer(root / "tokenizer"), max_new_tokens=12, history_steps=1)
    torch.manual_seed(0)
    reply = policy.act(shot, "search for CogVLM", [HistoryItem("q", "r"), HistoryItem("q2", "r2")])
    again = policy.act(shot, "search for CogVLM", [HistoryItem("q", "r"), HistoryItem("q2", "r2")])
    assert reply.raw_text == again.raw_text  # greedy: the same screenshot and prompt give the same text
    assert isinstance(reply.turn, (ModelTurn, ParseError))
    assert reply.timings["new_tokens"] >= 1 and reply.timings["generate_s"] > 0
    assert policy.describe()["kind"] == "cogagent"
