"""The tiny real tokenizer for tests; it lives in ``cogagent.tiny`` so the demo and benchmarks use the same one.

    from support.tiny_tokenizer import make_tiny_llama_tokenizer   # pytest puts tests/ on sys.path
    tok_dir = make_tiny_llama_tokenizer(tmp_path / "tok")           # vocab 320: unk 0, bos 1, eos 2
"""

from cogagent.tiny import (SPECIAL_PIECES, TRAINING_TEXT, make_tiny_llama_tokenizer, sentencepiece_processor,
                           train_sentencepiece_model)

__all__ = ["SPECIAL_PIECES", "TRAINING_TEXT", "make_tiny_llama_tokenizer", "sentencepiece_processor",
           "train_sentencepiece_model"]
