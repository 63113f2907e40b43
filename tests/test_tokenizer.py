"""cogagent.tokenizer: loading, and ids equal to the official transformers-4.36 ids under transformers 5.

Two independent references:
* ``data/prompts/cases.json``: ids the official ``build_conversation_input_ids`` produced under transformers
  4.36 with the real 32000-token tokenizer in ``data/prompts/tokenizer`` (copied from shared/golden/prompts);
* the ``sentencepiece`` library itself on a tiny model trained here (tests/support/tiny_tokenizer.py): what
  transformers 4.36's slow ``LlamaTokenizer`` (the class the official demos load Vicuna's tokenizer with) did
  -- SentencePiece on every span between special tokens; ``legacy=True``: each span with SentencePiece's
  dummy prefix; ``legacy=False`` (Vicuna 1.5's setting): a ``▁`` in front of the first span only.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from transformers import PreTrainedTokenizerFast

from cogagent.tokenizer import TokenizerLoadError, encode_text, load_tokenizer, prefix_space_behaviour

try:  # pytest puts tests/ on sys.path (tests/ is not a package); other runners have the repo root
    from support.tiny_tokenizer import make_tiny_llama_tokenizer, train_sentencepiece_model
except ImportError:  # pragma: no cover
    from tests.support.tiny_tokenizer import make_tiny_llama_tokenizer, train_sentencepiece_model

DATA = Path(__file__).parent / "data" / "prompts"
CASES = json.loads((DATA / "cases.json").read_text(encoding="utf-8"))
IMAGE_SLOTS = 1 + CASES["image_tokens"]  # BOS + 258 placeholders come before the prompt ids
SPECIAL_IDS = {"<unk>": 0, "<s>": 1, "</s>": 2}


@pytest.fixture(scope="module")
def golden_tokenizer():
    return load_tokenizer(DATA / "tokenizer")


# ---------------------------------------------------------------- the real 32000-token tokenizer
@pytest.mark.parametrize("case", CASES["cases"], ids=[c["template"] for c in CASES["cases"]])
def test_prompt_ids_equal_official_ids(golden_tokenizer, case):
    assert encode_text(golden_tokenizer, case["prompt_text"]) == case["input_ids"][IMAGE_SLOTS:]


def test_the_trap_exists_and_is_detected(golden_tokenizer):
    """transformers 5 drops the leading ▁ of the chat prompt; encode_text puts it back."""
    chat = next(c for c in CASES["cases"] if c["template"] == "chat")
    official = chat["input_ids"][IMAGE_SLOTS:]
    raw = golden_tokenizer.encode(chat["prompt_text"], add_special_tokens=False)
    assert raw == official[1:], "the installed transformers no longer drops the leading ▁: re-check the trap"
    assert golden_tokenizer.convert_ids_to_tokens(official[:1]) == ["\u2581"]
    assert prefix_space_behaviour(golden_tokenizer) == (True, True)  # legacy=True: after specials too


def test_tokenizer_that_keeps_the_prefix_is_left_alone():
    """The same tokenizer.json read without transformers' Llama rebuild keeps 4.36's Prepend normalizer."""
    keeping = PreTrainedTokenizerFast(tokenizer_file=str(DATA / "tokenizer" / "tokenizer.json"))
    assert prefix_space_behaviour(keeping) == (False, False)
    for case in CASES["cases"]:
        assert encode_text(keeping, case["prompt_text"]) == case["input_ids"][IMAGE_SLOTS:]


def test_loaded_ids_and_pad(golden_tokenizer):
    assert (golden_tokenizer.bos_token_id, golden_tokenizer.eos_token_id, golden_tokenizer.pad_token_id) == (1, 2, 0)


# ---------------------------------------------------------------- tiny SentencePiece tokenizers
def _sentencepiece(vocab_size: int, dummy_prefix: bool):
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto()
    proto.ParseFromString(train_sentencepiece_model(vocab_size))
    proto.normalizer_spec.add_dummy_prefix = dummy_prefix
    return spm.SentencePieceProcessor(model_proto=proto.SerializeToString())


def reference_ids(text: str, legacy: bool, vocab_size: int) -> list[int]:
    """transformers 4.36 slow LlamaTokenizer, modelled with the sentencepiece library."""
    with_prefix = _sentencepiece(vocab_size, dummy_prefix=True)
    without_prefix = _sentencepiece(vocab_size, dummy_prefix=False)
    spans = re.split("(<unk>|<s>|</s>)", text)
    ids: list[int] = []
    for index, span in enumerate(spans):
        if index % 2:
            ids.append(SPECIAL_IDS[span])
        elif not span:
            continue
        elif legacy:
            ids += with_prefix.encode(span)
        elif index == 0:
            ids += without_prefix.encode("\u2581" + span)
        else:
            ids += without_prefix.encode(span)
    return ids


TEXTS = [
    " [INST] what steps do i need to take to \"search\"?(with grounding) [/INST] ",
    "<EOI>Question: how many buttons are visible? Short answer:",
    "describe the screenshot.",
    "  two leading spaces",
    "a  b   c",
    " ",
    "   ",
    "\u2581literal underline",
    "\n newline first",
    "x\ny\n",
    "\u641c\u7d22 \u4e2d\u6587 text",  # byte fallback
    "\t tab",
    "hi</s> there",
    "</s> x",
    " </s>  y</s>z",
    "<s>start with special",
    "a<unk> b<s>",
]


@pytest.fixture(scope="module", params=[(False, False, 400), (True, False, 400), (False, True, 400),
                                        (True, True, 400), (False, False, 320)],
                ids=["vicuna-style", "legacy", "vicuna-style+json", "legacy+json", "vocab320"])
def tiny(request, tmp_path_factory):
    legacy, with_json, vocab_size = request.param
    directory = make_tiny_llama_tokenizer(tmp_path_factory.mktemp("tok"), vocab_size=vocab_size, legacy=legacy,
                                          with_tokenizer_json=with_json)
    return load_tokenizer(directory), legacy, vocab_size


@pytest.mark.parametrize("text", TEXTS)
def test_tiny_tokenizer_matches_sentencepiece(tiny, text):
    tokenizer, legacy, vocab_size = tiny
    assert encode_text(tokenizer, text) == reference_ids(text, legacy, vocab_size)


def test_tiny_tokenizer_needs_the_repair(tiny):
    """Without the repair transformers 5 gives other ids for a text that starts with a space."""
    tokenizer, legacy, vocab_size = tiny
    text = TEXTS[0]
    assert tokenizer.encode(text, add_special_tokens=False) != reference_ids(text, legacy, vocab_size)
    assert prefix_space_behaviour(tokenizer) == (True, legacy)


FRAGMENTS = [" ", "  ", "a", "b", "the", "s", "\u2581", "\n", "[", "/", "]", "?", "\u4e2d", "\u00e9", "0",
             "</s>", "<s>", "<unk>"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=12).map("".join))
def test_tiny_tokenizer_matches_sentencepiece_on_any_text(tiny, text):
    tokenizer, legacy, vocab_size = tiny
    assert encode_text(tokenizer, text) == reference_ids(text, legacy, vocab_size)


def test_missing_pad_token_falls_back_to_unk(tmp_path):
    without = load_tokenizer(make_tiny_llama_tokenizer(tmp_path / "a"))
    assert without.pad_token == "<unk>" and without.pad_token_id == 0
    given_pad = load_tokenizer(make_tiny_llama_tokenizer(tmp_path / "b", pad_token="<unk>"))
    assert given_pad.pad_token_id == 0
    assert (without.bos_token_id, without.eos_token_id) == (1, 2)


# ---------------------------------------------------------------- bad input
def test_missing_directory(tmp_path):
    with pytest.raises(TokenizerLoadError, match="does not exist.*vicuna"):
        load_tokenizer(tmp_path / "nowhere")


def test_path_is_a_file(tmp_path):
    target = tmp_path / "tokenizer.json"
    target.write_text("{}")
    with pytest.raises(TokenizerLoadError, match="is a file, not a directory"):
        load_tokenizer(target)


def test_directory_without_tokenizer_files(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(TokenizerLoadError, match="holds no tokenizer file.*config.json"):
        load_tokenizer(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TokenizerLoadError, match="contains: nothing"):
        load_tokenizer(empty)


def test_corrupt_tokenizer_model(tmp_path):
    (tmp_path / "tokenizer.model").write_bytes(b"\x00\x01 not a sentencepiece model" * 20)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "LlamaTokenizer"}))
    with pytest.raises(TokenizerLoadError, match="could not load the tokenizer"):
        load_tokenizer(tmp_path)


def test_corrupt_tokenizer_json(tmp_path):
    (tmp_path / "tokenizer.json").write_text("{ this is not json")
    with pytest.raises(TokenizerLoadError, match="could not load the tokenizer"):
        load_tokenizer(tmp_path)


def test_tokenizer_json_without_its_config_has_no_bos(tmp_path):
    shutil.copy(DATA / "tokenizer" / "tokenizer.json", tmp_path / "tokenizer.json")
    with pytest.raises(TokenizerLoadError, match="no BOS token"):
        load_tokenizer(tmp_path)


def test_encode_text_input(golden_tokenizer):
    assert encode_text(golden_tokenizer, "") == []
    with pytest.raises(TypeError, match="must be a str"):
        encode_text(golden_tokenizer, b"bytes")
    with pytest.raises(TypeError, match="must be a str"):
        encode_text(golden_tokenizer, None)
