"""A tiny, real Llama-style SentencePiece tokenizer made on the fly (nothing downloaded).

Why this exists: CogAgent uses Vicuna's SentencePiece-BPE tokenizer (32000 pieces, byte fallback, dummy
prefix, ``<unk>``/``<s>``/``</s>`` = 0/1/2). Tests that need a tokenizer the way the real one is shipped -- a
``tokenizer.model`` protobuf plus ``tokenizer_config.json``, loaded and converted by transformers -- can build
one here in well under a second. The model is trained with the normalizer settings of Llama's model
(identity normalization, no whitespace squeezing, dummy prefix on), so ``sentencepiece`` itself gives the
reference ids that transformers 4.36's slow ``LlamaTokenizer`` produced for prompts without special tokens.

Reuse (e.g. for a tiny end-to-end model)::

    try:  # pytest puts tests/ on sys.path (tests/ is not a package); other runners may have the repo root
        from support.tiny_tokenizer import make_tiny_llama_tokenizer
    except ImportError:
        from tests.support.tiny_tokenizer import make_tiny_llama_tokenizer
    tok_dir = make_tiny_llama_tokenizer(tmp_path / "tok")          # vocab 320: unk 0, bos 1, eos 2
    tokenizer = cogagent.tokenizer.load_tokenizer(tok_dir)           # pad falls back to <unk> = 0

The model's ``vocab_size`` must be at least ``vocab_size`` here (the trainer may stop a little below it;
``sentencepiece_processor(...).get_piece_size()`` tells the exact number).
"""

from __future__ import annotations

import functools
import io
import json
from pathlib import Path

# Every distinct character here costs one vocabulary slot (character_coverage=1.0), on top of the 3 special
# pieces and 256 byte pieces: keep the alphabet small so a vocabulary of ~320 still fits. Characters not
# in this text (Chinese, most punctuation) go through byte fallback, which tests want to exercise too.
TRAINING_TEXT = """\
what steps do i need to take to search for the page and click the button at the top
question how many buttons are visible short answer describe the screenshot
answer click the search box then type the query and press enter to open the settings
tap the icon swipe up press home press back task complete type the text into the box
the quick brown fox jumps over the lazy dog 0123456789
"""

#: Pieces every Llama-style tokenizer made here has, in id order.
SPECIAL_PIECES = ("<unk>", "<s>", "</s>")


@functools.lru_cache(maxsize=8)
def train_sentencepiece_model(vocab_size: int = 320, text: str = TRAINING_TEXT) -> bytes:
    """Train a SentencePiece BPE model in memory and return its serialized protobuf.

    Cached: training is deterministic for a given (vocab_size, text), and several tests need the same model.
    """
    import sentencepiece as spm

    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError("training text is empty")
    buffer = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines * 20),
        model_writer=buffer,
        model_type="bpe",
        vocab_size=vocab_size,
        byte_fallback=True,
        character_coverage=1.0,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        hard_vocab_limit=False,
        num_threads=1,
        minloglevel=2,
    )
    return buffer.getvalue()


def sentencepiece_processor(vocab_size: int = 320, text: str = TRAINING_TEXT):
    """The trained model as a ``sentencepiece.SentencePieceProcessor``: the reference encoder."""
    import sentencepiece as spm

    return spm.SentencePieceProcessor(model_proto=train_sentencepiece_model(vocab_size, text))


def make_tiny_llama_tokenizer(
    directory: str | Path,
    *,
    vocab_size: int = 320,
    legacy: bool = False,
    pad_token: str | None = None,
    with_tokenizer_json: bool = False,
    text: str = TRAINING_TEXT,
) -> Path:
    """Write a Llama-style tokenizer directory and return its path.

    The layout mirrors lmsys/vicuna-7b-v1.5: ``tokenizer.model`` + ``tokenizer_config.json``
    (``tokenizer_class`` LlamaTokenizer, ``legacy`` as given; Vicuna 1.5 has ``legacy: false``) +
    ``special_tokens_map.json``. ``pad_token=None`` leaves the pad token unset, as in a bare Llama
    tokenizer; Vicuna's map sets it to ``"<unk>"``. ``with_tokenizer_json=True`` additionally converts the
    model once through transformers and saves ``tokenizer.json``, the form many mirrors ship.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tokenizer.model").write_bytes(train_sentencepiece_model(vocab_size, text))
    special_map: dict[str, str] = {"unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>"}
    if pad_token is not None:
        special_map["pad_token"] = pad_token
    config = {
        "tokenizer_class": "LlamaTokenizer",
        "legacy": legacy,
        "add_bos_token": True,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": 4096,
        **special_map,
    }
    if pad_token is None:
        config["pad_token"] = None
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=1), encoding="utf-8")
    (directory / "special_tokens_map.json").write_text(json.dumps(special_map, indent=1), encoding="utf-8")
    if with_tokenizer_json:
        from transformers import LlamaTokenizer

        converted = LlamaTokenizer.from_pretrained(str(directory), local_files_only=True)
        converted.backend_tokenizer.save(str(directory / "tokenizer.json"))
    return directory
