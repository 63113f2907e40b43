"""cogagent.prompts: templates, the official token layout, batching.

References: ``data/prompts/cases.json`` (official ids, real 32000-token tokenizer) and
``data/prompts/golden_layout.json`` (golden set A's case a / case c layout tensors, made by the official
``build_conversation_input_ids`` with a stand-in tokenizer whose ``encode`` returned fixed ids; the
``ScriptedTokenizer`` below is that same stand-in).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from PIL import Image
from transformers import LlamaTokenizer, PreTrainedTokenizerFast

from cogagent.prompts import (
    COGAGENT_CHAT_LAYOUT,
    IGNORE_INDEX,
    agent_query,
    build_inputs,
    build_prompt,
    collate,
    layout_from_config,
)
from cogagent.tokenizer import encode_text, load_tokenizer
from vision.preprocess import preprocess

try:  # pytest puts tests/ on sys.path (tests/ is not a package); other runners have the repo root
    from support.tiny_tokenizer import make_tiny_llama_tokenizer
except ImportError:  # pragma: no cover
    from tests.support.tiny_tokenizer import make_tiny_llama_tokenizer

DATA = Path(__file__).parent / "data" / "prompts"
CASES = json.loads((DATA / "cases.json").read_text(encoding="utf-8"))
GOLDEN = json.loads((DATA / "golden_layout.json").read_text(encoding="utf-8"))
TINY_CONFIG = {"vision_config": {"image_size": GOLDEN["image_size"], "patch_size": GOLDEN["patch_size"]},
               "cross_image_size": 56, "template_version": "chat",
               "bos_token_id": 1, "pad_token_id": 0, "eos_token_id": 2}


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(DATA / "tokenizer")


@pytest.fixture(scope="module")
def screenshot():
    image = Image.new("RGB", (64, 36), (240, 240, 240))
    image.paste((20, 90, 200), (10, 10, 40, 20))
    return image


class ScriptedTokenizer:
    """The golden data's stand-in: ``encode`` returns fixed ids for the prompt, code points for anything else."""

    bos_token_id, pad_token_id, eos_token_id = 1, 0, 2

    def __init__(self, scripted: dict[str, list[int]]):
        self.scripted = scripted

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        assert add_special_tokens is False
        return list(self.scripted.get(text, [ord(ch) for ch in text]))


# ---------------------------------------------------------------- official ids
@pytest.mark.parametrize("case", CASES["cases"], ids=[c["template"] for c in CASES["cases"]])
def test_official_layout_and_ids(tokenizer, screenshot, case):
    assert build_prompt(case["query"], case["history"], case["template"]) == case["prompt_text"]
    out = build_inputs(tokenizer, case["query"], screenshot, case["history"], case["template"])
    length = len(case["input_ids"])
    assert out["input_ids"].tolist() == [case["input_ids"]]
    assert out["token_type_ids"].tolist() == [case["token_type_ids"]]
    assert out["attention_mask"].tolist() == [[1] * length]
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert out[key].dtype == torch.long and out[key].shape == (1, length)
    assert out["images"].shape == (1, 3, 224, 224) and out["cross_images"].shape == (1, 3, 1120, 1120)
    assert "labels" not in out


def test_agent_query_is_the_official_one():
    chat = next(c for c in CASES["cases"] if c["template"] == "chat")
    assert agent_query("Search for CogVLM") == chat["query"]
    assert agent_query("Search for CogVLM", grounding=False) == 'What steps do I need to take to "Search for CogVLM"?'
    for bad in ("", "   ", None, 3):
        with pytest.raises(ValueError, match="task"):
            agent_query(bad)


def test_default_template_is_the_configs(tokenizer, screenshot):
    chat = next(c for c in CASES["cases"] if c["template"] == "chat")
    assert build_inputs(tokenizer, chat["query"], screenshot)["input_ids"].tolist() == [chat["input_ids"]]
    old = next(c for c in CASES["cases"] if c["template"] == "chat_old")
    config = {**TINY_CONFIG, "vision_config": {"image_size": 224, "patch_size": 14}, "template_version": "chat_old"}
    assert build_inputs(tokenizer, old["query"], screenshot, config=config)["input_ids"].tolist() == [old["input_ids"]]


# ---------------------------------------------------------------- templates with history
def test_chat_history():
    history = [("q1", "r1"), ("q2", "r2")]
    assert build_prompt("now", history, "chat") == " [INST] q1 [/INST] r1 [INST] q2 [/INST] r2 [INST] now [/INST] "


def test_chat_old_history():
    assert build_prompt("now", [("q1", "r1")], "chat_old") == "<EOI>Question: q1 Answer: r1\nQuestion: now Answer:"


def test_vqa_and_base_ignore_history():
    assert build_prompt("now", [("q1", "r1")], "vqa") == "<EOI>Question: now Short answer:"
    assert build_prompt("now", [("q1", "r1")], "base") == "now"


def test_history_ids_are_one_encoding_of_the_whole_prompt(tokenizer, screenshot):
    history = [("What is shown?", "A login page."), ("Where is the button?", "At [[100,200,300,400]].")]
    out = build_inputs(tokenizer, "Click it.", screenshot, history, "chat")
    text = build_prompt("Click it.", history, "chat")
    assert out["input_ids"][0, 259:].tolist() == encode_text(tokenizer, text)


# ---------------------------------------------------------------- golden layout (set A, cases a and c)
def _golden_sample(text_ids: list[int]):
    query = "q"
    prompt = build_prompt(query, (), "chat")
    tokenizer = ScriptedTokenizer({prompt: text_ids})
    image = Image.new("RGB", (30, 20), (1, 2, 3))
    return build_inputs(tokenizer, query, image, config=TINY_CONFIG)


def test_golden_case_a_layout():
    case = GOLDEN["case_a"]
    out = _golden_sample(case["text_ids"][0])
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert out[key].tolist() == case[key]
    assert out["images"].shape == (1, 3, 28, 28) and out["cross_images"].shape == (1, 3, 56, 56)


def test_golden_case_c_left_padding():
    case = GOLDEN["case_c"]
    batch = collate([_golden_sample(ids) for ids in case["text_ids"]], pad_token_id=GOLDEN["pad_token_id"])
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert batch[key].tolist() == case[key]
        assert batch[key].dtype == torch.long
    assert batch["images"].shape == (2, 3, 28, 28) and batch["cross_images"].shape == (2, 3, 56, 56)


# ---------------------------------------------------------------- answers, text only, configs
def test_answer_appends_ids_eos_and_labels(tokenizer, screenshot):
    answer = "Plan: 1. Type 'CogVLM' into the search box."
    query = agent_query("Search for CogVLM")
    out = build_inputs(tokenizer, query, screenshot, answer=answer)
    # an independent path to the answer ids: the same vocabulary read with 4.36's Prepend normalizer
    keeping = PreTrainedTokenizerFast(tokenizer_file=str(DATA / "tokenizer" / "tokenizer.json"))
    answer_ids = keeping.encode(answer, add_special_tokens=False) + [2]
    prompt_ids = build_inputs(tokenizer, query, screenshot)["input_ids"][0].tolist()
    assert out["input_ids"][0].tolist() == prompt_ids + answer_ids
    assert out["labels"][0].tolist() == [IGNORE_INDEX] * len(prompt_ids) + answer_ids
    assert out["token_type_ids"][0, len(prompt_ids):].tolist() == [0] * len(answer_ids)
    assert out["labels"].shape == out["input_ids"].shape and out["labels"].dtype == torch.long


def test_text_only_layout(tokenizer):
    out = build_inputs(tokenizer, "Hello", None)
    ids = encode_text(tokenizer, build_prompt("Hello", (), "chat"))
    assert out["input_ids"].tolist() == [[1] + ids]
    assert out["token_type_ids"].tolist() == [[0] * (1 + len(ids))]
    assert out["attention_mask"].tolist() == [[1] * (1 + len(ids))]
    assert "images" not in out and "cross_images" not in out


def test_vqa_for_screenshot_question_answering(tokenizer, screenshot):
    vqa = next(c for c in CASES["cases"] if c["template"] == "vqa")
    out = build_inputs(tokenizer, vqa["query"], screenshot, [("ignored", "ignored")], template="vqa")
    assert out["input_ids"].tolist() == [vqa["input_ids"]]


def test_config_duck_typing():
    from cogagent.config import CogAgentConfig

    assert layout_from_config(None) == COGAGENT_CHAT_LAYOUT
    assert layout_from_config(CogAgentConfig()) == COGAGENT_CHAT_LAYOUT
    as_objects = SimpleNamespace(vision_config=SimpleNamespace(image_size=28, patch_size=14), cross_image_size=56,
                                 template_version="vqa", bos_token_id=5, pad_token_id=6, eos_token_id=7)
    layout = layout_from_config(as_objects)
    assert (layout.num_vision_tokens, layout.cross_image_size, layout.template_version) == (6, 56, "vqa")
    assert (layout.bos_token_id, layout.pad_token_id, layout.eos_token_id) == (5, 6, 7)
    assert layout_from_config(TINY_CONFIG).num_vision_tokens == 6
    assert COGAGENT_CHAT_LAYOUT.num_vision_tokens == 258


def test_no_cross_branch_means_no_cross_images(tokenizer, screenshot):
    cogvlm_like = {**TINY_CONFIG, "cross_image_size": None}
    out = build_inputs(tokenizer, "hi", screenshot, config=cogvlm_like)
    assert "cross_images" not in out and out["images"].shape == (1, 3, 28, 28)


def test_tokenizer_without_pad_uses_configs_pad(tmp_path, screenshot):
    raw = LlamaTokenizer.from_pretrained(str(make_tiny_llama_tokenizer(tmp_path / "tok")), local_files_only=True)
    assert raw.pad_token_id is None
    config = {**TINY_CONFIG, "pad_token_id": 3}
    out = build_inputs(raw, "what is on the page", screenshot, config=config)
    assert out["input_ids"][0, :7].tolist() == [1, 3, 3, 3, 3, 3, 3]
    assert out["input_ids"][0, 7:].tolist() == encode_text(raw, build_prompt("what is on the page"))


def test_image_path_dtype_and_pixels(tmp_path, tokenizer, screenshot):
    path = tmp_path / "shot.png"
    screenshot.save(path)
    out = build_inputs(tokenizer, "hi", path, config=TINY_CONFIG, dtype=torch.bfloat16)
    expected = preprocess(screenshot, 28, 56)
    assert out["images"].dtype == torch.bfloat16
    assert torch.equal(out["images"], expected["images"].to(torch.bfloat16))
    assert torch.equal(out["cross_images"], expected["cross_images"].to(torch.bfloat16))
    assert out["input_ids"].dtype == torch.long


# ---------------------------------------------------------------- collate
def test_collate_labels_and_text_only(tokenizer):
    short = build_inputs(tokenizer, "a", None, answer="b")
    long = build_inputs(tokenizer, "a longer question here", None, answer="b")
    batch = collate([short, long], pad_token_id=0)
    pad = long["input_ids"].shape[1] - short["input_ids"].shape[1]
    assert pad > 0
    assert batch["labels"][0, :pad].tolist() == [IGNORE_INDEX] * pad
    assert batch["labels"][0, pad:].tolist() == short["labels"][0].tolist()
    assert batch["input_ids"][0, :pad].tolist() == [0] * pad
    assert batch["attention_mask"][0].tolist() == [0] * pad + [1] * short["input_ids"].shape[1]
    assert torch.equal(batch["input_ids"][1], long["input_ids"][0])
    assert "images" not in batch


def test_collate_accepts_1d_rows():
    row = {"input_ids": torch.tensor([1, 5]), "token_type_ids": torch.tensor([0, 0]),
           "attention_mask": torch.tensor([1, 1])}
    assert collate([row], pad_token_id=0)["input_ids"].tolist() == [[1, 5]]


def test_collate_bad_input(tokenizer, screenshot):
    with_image = build_inputs(tokenizer, "a", screenshot, config=TINY_CONFIG)
    text_only = build_inputs(tokenizer, "a", None, config=TINY_CONFIG)
    with pytest.raises(ValueError, match="at least one"):
        collate([], pad_token_id=0)
    with pytest.raises(ValueError, match="'images'"):
        collate([with_image, text_only], pad_token_id=0)
    with pytest.raises(ValueError, match="'labels'"):
        collate([build_inputs(tokenizer, "a", None, answer="b"), text_only], pad_token_id=0)
    for bad in (-1, None, 1.5, True):
        with pytest.raises(ValueError, match="pad_token_id"):
            collate([text_only], pad_token_id=bad)
    with pytest.raises(ValueError, match="lacks"):
        collate([{"input_ids": torch.ones(1, 3, dtype=torch.long)}], pad_token_id=0)
    uneven = dict(text_only, attention_mask=torch.ones(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="different lengths"):
        collate([uneven], pad_token_id=0)
    other_size = build_inputs(tokenizer, "a", screenshot, config={**TINY_CONFIG, "cross_image_size": 42})
    with pytest.raises(ValueError, match="differ in shape"):
        collate([with_image, other_size], pad_token_id=0)
    with pytest.raises(ValueError, match="shape"):
        collate([dict(text_only, input_ids=torch.ones(2, 2, 2, dtype=torch.long))], pad_token_id=0)


# ---------------------------------------------------------------- bad input
def test_bad_template(tokenizer):
    with pytest.raises(ValueError, match="unknown template 'llama'"):
        build_inputs(tokenizer, "a", None, template="llama")
    with pytest.raises(ValueError, match="template_version 'nope'"):
        build_inputs(tokenizer, "a", None, config={**TINY_CONFIG, "template_version": "nope"})


@pytest.mark.parametrize("history,error", [
    ("q and r", TypeError),
    ([("only one",)], ValueError),
    ([("q", "r", "extra")], ValueError),
    ([("q", 3)], TypeError),
    ([None], ValueError),
])
def test_bad_history(tokenizer, history, error):
    with pytest.raises(error, match="history"):
        build_inputs(tokenizer, "a", None, history)


def test_bad_query_and_answer(tokenizer):
    with pytest.raises(TypeError, match="query must be a str"):
        build_inputs(tokenizer, None, None)
    with pytest.raises(TypeError, match="answer must be a str"):
        build_inputs(tokenizer, "a", None, answer=5)


def test_bad_config(tokenizer, screenshot):
    with pytest.raises(ValueError, match="vision_config"):
        build_inputs(tokenizer, "a", screenshot, config={"cross_image_size": 56})
    with pytest.raises(ValueError, match="patch_size"):
        build_inputs(tokenizer, "a", screenshot, config={**TINY_CONFIG, "vision_config": {"image_size": 28}})
    with pytest.raises(ValueError, match="image_size"):
        layout_from_config({"vision_config": {"image_size": -28, "patch_size": 14}})


def test_bad_image_reaches_a_clear_error(tokenizer, tmp_path):
    with pytest.raises(FileNotFoundError):
        build_inputs(tokenizer, "a", tmp_path / "missing.png")
    with pytest.raises(TypeError, match="PIL.Image.Image or a path"):
        build_inputs(tokenizer, "a", 123)
    with pytest.raises(TypeError, match="one image per sample"):
        build_inputs(tokenizer, "a", [Image.new("RGB", (8, 8))] * 2)
