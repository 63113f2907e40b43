"""Tiny random-weight CogAgents with a tiny real tokenizer: for the demo, benchmarks and tests.

The real CogAgent is 36.6 GB and never on these machines; a tiny model with the same architecture, the real
sequence shapes (224 px -> 258 vision tokens, 1120 px -> 6,400 cross tokens) and a real SentencePiece tokenizer
exercises every code path -- loading, prompting, generation, decoding, parsing -- in seconds on a CPU.
Its output is nonsense, and everything that consumes it must treat it as such.

The tokenizer: CogAgent uses Vicuna's SentencePiece-BPE tokenizer (32000 pieces, byte fallback, dummy prefix,
``<unk>``/``<s>``/``</s>`` = 0/1/2). ``make_tiny_llama_tokenizer`` builds one laid out the same way -- a
``tokenizer.model`` protobuf plus ``tokenizer_config.json`` -- trained in well under a second with the normalizer
settings of Llama's model, so ``sentencepiece`` itself gives the ids transformers 4.36's slow ``LlamaTokenizer``
produced.
"""

from __future__ import annotations

import functools
import io
import json
from pathlib import Path
from typing import Any

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


def tiny_config_dict(vocab_size: int = 320, image_size: int = 224, cross_image_size: int = 1120,
                     hidden_size: int = 64, layers: int = 2) -> dict:
    """A config.json for a tiny CogAgent: official field names, narrow widths, the real image sizes."""
    patch = 14
    return {
        "architectures": ["CogAgentForCausalLM"],
        "vocab_size": vocab_size, "hidden_size": hidden_size, "num_attention_heads": 4,
        "num_hidden_layers": layers, "intermediate_size": hidden_size * 2,
        "cross_hidden_size": 32, "cross_compute_hidden_size": 32, "cross_image_size": cross_image_size,
        "max_position_embeddings": 2048, "rms_norm_eps": 1e-5, "hidden_act": "silu", "initializer_range": 0.02,
        "template_version": "chat", "pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2,
        "tie_word_embeddings": False, "use_cache": True,
        "vision_config": {"dropout_prob": 0.0, "hidden_act": "gelu", "hidden_size": 32, "image_size": image_size,
                          "in_channels": 3, "intermediate_size": 64, "layer_norm_eps": 1e-6, "num_heads": 2,
                          "num_hidden_layers": 2, "num_positions": (image_size // patch) ** 2 + 1,
                          "patch_size": patch},
        "_patched_eva2_clip_l_sizes": {"embed_dim": 24, "layers": 3, "width": 32, "head_width": 16,
                                       "mlp_ratio": 2.6667, "patch_size": patch, "pt_hw_seq_len": 16},
    }


def make_tiny_checkpoint(directory: str | Path, seed: int = 0, std: float = 0.02, **config: Any) -> Path:
    """Write ``directory/model`` (config.json + model.safetensors, random weights) and ``directory/tokenizer``.

    Returns ``directory``. Reuses what is there when the config matches, so repeated demo runs start at once.
    """
    import torch

    from .config import CogAgentConfig
    from .modeling_cogagent import CogAgentForCausalLM

    root = Path(directory)
    make_tiny_llama_tokenizer(root / "tokenizer")
    vocab = sentencepiece_processor().get_piece_size()
    wanted = tiny_config_dict(vocab_size=max(vocab, 320), **config)
    model_dir = root / "model"
    cfg_file = model_dir / "config.json"
    if cfg_file.is_file() and (model_dir / "model.safetensors").is_file():
        if CogAgentConfig.from_json_file(cfg_file).to_dict() == CogAgentConfig.from_dict(wanted).to_dict():
            return root
    torch.manual_seed(seed)
    model = CogAgentForCausalLM(CogAgentConfig.from_dict(wanted))
    with torch.no_grad():
        buffers = model.deterministic_buffer_names()
        for name, tensor in model.state_dict().items():
            if name not in buffers and tensor.is_floating_point():
                tensor.normal_(0.0, std)
    model.save_pretrained(model_dir)
    return root


# ------------------------------------------------------------------------------------------------------------
# A tiny CogAgent that is meant to be *trained* (models/tiny-cogagent-web): a tokenizer fitted to the texts it
# will read and write, and a config with narrow widths and small images so that CPU training is feasible.
# ------------------------------------------------------------------------------------------------------------
def tokenizer_text_from_jsonl(*paths: str | Path, limit: int = 20000) -> str:
    """The prompt and answer texts of training JSONL files (plus the built-in text), one per line: what a
    tokenizer for the tiny trained model is fitted on. Digits are split by the trainer (``split_digits``), so
    coordinates become three digit tokens each, as in Llama's tokenizer."""
    from .prompts import build_prompt

    lines: list[str] = TRAINING_TEXT.splitlines()
    seen: set[str] = set()
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for raw in f:
                if not raw.strip():
                    continue
                record = json.loads(raw)
                for text in (build_prompt(record.get("query", "")), record.get("answer", "")):
                    for line in str(text).splitlines():
                        if line.strip() and line not in seen:
                            seen.add(line)
                            lines.append(line)
                if len(seen) >= limit:
                    break
    return "\n".join(lines) + "\n"


def make_trained_tokenizer(directory: str | Path, text: str, vocab_size: int = 1024) -> Path:
    """A Llama-style tokenizer directory (same layout as ``make_tiny_llama_tokenizer``) fitted on ``text``;
    pad = ``<unk>`` as in Vicuna's map, so the image slots get id 0."""
    return make_tiny_llama_tokenizer(directory, vocab_size=vocab_size, text=text, pad_token="<unk>")


def web_config_dict(vocab_size: int, image_size: int = 224, cross_image_size: int = 448, hidden_size: int = 192,
                    layers: int = 4, heads: int = 4, vision_width: int = 96, vision_layers: int = 3,
                    cross_width: int = 64, cross_layers: int = 4) -> dict:
    """config.json of the trainable tiny CogAgent: CogAgent's architecture (EVA-E-style low-res encoder, EVA-L
    style high-res cross encoder, visual-expert decoder with cross-attention), narrow widths, small images."""
    patch = 14
    return {
        "architectures": ["CogAgentForCausalLM"],
        "vocab_size": vocab_size, "hidden_size": hidden_size, "num_attention_heads": heads,
        "num_hidden_layers": layers, "intermediate_size": hidden_size * 8 // 3 // 8 * 8,
        "cross_hidden_size": cross_width, "cross_compute_hidden_size": cross_width,
        "cross_image_size": cross_image_size, "max_position_embeddings": 2048, "rms_norm_eps": 1e-5,
        "hidden_act": "silu", "initializer_range": 0.02, "template_version": "chat", "pad_token_id": 0,
        "bos_token_id": 1, "eos_token_id": 2, "tie_word_embeddings": False, "use_cache": True,
        "vision_config": {"dropout_prob": 0.0, "hidden_act": "gelu", "hidden_size": vision_width,
                          "image_size": image_size, "in_channels": 3, "intermediate_size": vision_width * 4,
                          "layer_norm_eps": 1e-6, "num_heads": max(1, vision_width // 32),
                          "num_hidden_layers": vision_layers, "num_positions": (image_size // patch) ** 2 + 1,
                          "patch_size": patch},
        "_patched_eva2_clip_l_sizes": {"embed_dim": cross_width, "layers": cross_layers, "width": cross_width,
                                       "head_width": 32 if cross_width % 32 == 0 else 16,
                                       "mlp_ratio": 2.6667, "patch_size": patch, "pt_hw_seq_len": 16},
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m cogagent.tiny web-init``: the tokenizer and config.json a trainable tiny CogAgent starts from."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m cogagent.tiny")
    sub = ap.add_subparsers(dest="command", required=True)
    init = sub.add_parser("web-init", help="fit a tokenizer on training JSONL and write a tiny web config.json")
    init.add_argument("--data", nargs="+", required=True, help="training JSONL file(s)")
    init.add_argument("--tokenizer-out", required=True)
    init.add_argument("--config-out", required=True)
    init.add_argument("--vocab-size", type=int, default=1024)
    init.add_argument("--image-size", type=int, default=224)
    init.add_argument("--cross-image-size", type=int, default=448)
    init.add_argument("--hidden-size", type=int, default=192)
    init.add_argument("--layers", type=int, default=4)
    args = ap.parse_args(argv)
    tok = make_trained_tokenizer(args.tokenizer_out, tokenizer_text_from_jsonl(*args.data), args.vocab_size)
    import sentencepiece as spm

    pieces = spm.SentencePieceProcessor(model_file=str(tok / "tokenizer.model")).get_piece_size()
    config = web_config_dict(max(pieces, args.vocab_size), image_size=args.image_size,
                             cross_image_size=args.cross_image_size, hidden_size=args.hidden_size, layers=args.layers)
    Path(args.config_out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.config_out).write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    print(json.dumps({"tokenizer": str(tok), "pieces": pieces, "config": args.config_out}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
