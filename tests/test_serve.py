"""The project's own OpenAI-compatible endpoint, serving the tiny CogAgent, driven by the real HttpPolicy."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from cogagent.grammar import ModelTurn, ParseError
from episodes.policies import CogAgentPolicy, HistoryItem, HttpPolicy, PolicyError, image_data_url
from episodes.serve import ModelServer


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> ModelServer:
    from cogagent import CogAgentForCausalLM
    from cogagent.tiny import make_tiny_checkpoint
    from cogagent.tokenizer import load_tokenizer

    root = make_tiny_checkpoint(tmp_path_factory.mktemp("tiny"), image_size=28, cross_image_size=56)
    model = CogAgentForCausalLM.from_pretrained(root / "model", dtype="float32").eval()
    srv = ModelServer(CogAgentPolicy(model, load_tokenizer(root / "tokenizer"), max_new_tokens=6), port=0)
    srv.serve_in_background()
    yield srv
    srv.close()


def _post(url: str, body: bytes) -> tuple[int, dict]:
    req = urllib.request.Request(url + "/chat/completions", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_http_policy_gets_the_models_answer(server: ModelServer) -> None:
    shot = Image.new("RGB", (200, 120), (255, 255, 255))
    policy = HttpPolicy(server.url, retries=0, max_tokens=4)
    reply = policy.act(shot, "open settings", [HistoryItem("q", "r")])
    assert isinstance(reply.turn, (ModelTurn, ParseError))
    assert server.policy.max_new_tokens == 6  # a request's max_tokens does not leak into the next one
    server.policy.max_new_tokens = 4
    try:  # greedy decoding: what came over HTTP is what the model writes for the same prompt and image
        direct, _ = server.policy.generate_text(shot, 'What steps do I need to take to "open settings"?(with grounding)',
                                                [("q", "r")])
    finally:
        server.policy.max_new_tokens = 6
    assert reply.raw_text == direct


def test_models_route(server: ModelServer) -> None:
    with urllib.request.urlopen(server.url + "/models", timeout=10) as resp:
        assert json.loads(resp.read())["data"][0]["id"] == "cogagent"


@pytest.mark.parametrize("body, message", [
    (b"not json", "not JSON"),
    (b"[]", "JSON object"),
    (json.dumps({"messages": []}).encode(), "non-empty list"),
    (json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode(), "exactly one image_url"),
    (json.dumps({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "http://example.com/a.png"}}]}]}).encode(),
     "remote URLs are not fetched"),
    (json.dumps({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}).encode(),
     "could not be decoded"),
    (json.dumps({"max_tokens": 0, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "hi"},
        {"type": "image_url", "image_url": {"url": image_data_url(Image.new("RGB", (4, 4)))}}]}]}).encode(),
     "max_tokens"),
])
def test_bad_requests_get_a_400_that_says_why(server: ModelServer, body: bytes, message: str) -> None:
    status, data = _post(server.url, body)
    assert status == 400 and message in data["error"]["message"]


def test_a_client_error_is_not_retried_by_the_policy(server: ModelServer) -> None:
    policy = HttpPolicy(server.url, retries=3, max_tokens=0)  # the server refuses max_tokens 0
    with pytest.raises(PolicyError, match="HTTP 400.*max_tokens"):
        policy.act(Image.new("RGB", (8, 8)), "t", [])
