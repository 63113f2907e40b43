"""The shared setup of the training tests: a few real generated pages (Chromium-rendered), a tokenizer fitted on
them, and a tiny config with small images (fast on CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cogagent.tiny import make_trained_tokenizer, tokenizer_text_from_jsonl, web_config_dict
from cogagent.tokenizer import load_tokenizer
from cogagent.train import TrainConfig


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """Four-ish generated examples, a tokenizer fitted on them, and a tiny config (small images: fast)."""
    from episodes import synthdata

    root = tmp_path_factory.mktemp("train")
    synthdata.generate(root / "data", n=2, seed=3, val_fraction=0.0, progress=False)
    lines = (root / "data" / "train.jsonl").read_text(encoding="utf-8").splitlines()[:4]
    (root / "data" / "small.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    tok_dir = make_trained_tokenizer(root / "tok", tokenizer_text_from_jsonl(root / "data" / "small.jsonl"), 400)
    vocab = load_tokenizer(tok_dir).vocab_size if hasattr(load_tokenizer(tok_dir), "vocab_size") else 400
    config = web_config_dict(max(vocab, 400), image_size=56, cross_image_size=56, hidden_size=64, layers=2, heads=2,
                             vision_width=32, vision_layers=1, cross_width=32, cross_layers=2)
    (root / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return root


def base_cfg(root: Path, out: str, **kw) -> TrainConfig:
    options = dict(train=str(root / "data" / "small.jsonl"), out=str(root / out), init_config=str(root / "config.json"),
                   tokenizer=str(root / "tok"), batch_size=2, max_steps=4, lr=3e-3, progress=False, threads=1)
    options.update(kw)
    return TrainConfig(**options)
