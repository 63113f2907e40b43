"""Loading CogAgent's tokenizer, and encoding prompt text to the ids the model was tuned on.

CogAgent uses the Vicuna-7B-v1.5 tokenizer (a Llama SentencePiece-BPE model, 32000 pieces; ``<unk>``/``<s>``/
``</s>`` = 0/1/2). The user downloads ``lmsys/vicuna-7b-v1.5`` (only the tokenizer files are needed) and
passes its directory; nothing is downloaded here.

**The leading-space trap.** The official code runs on transformers 4.36, where a Llama tokenizer behaves like
SentencePiece itself: the text gets a dummy-prefix ``▁`` in front *always*, so ``" [INST] ..."`` (the chat
template starts with a space) becomes ``▁▁[INST] ...`` and encodes as ``[▁, ▁[, INST, ], ...]``.
transformers 5.x rebuilds every Llama tokenizer with a ``Metaspace`` pre-tokenizer whose prefix is only added
when the text does *not* already start with ``▁``, so the same text loses that first ``▁`` token -- every chat
prompt would be one token off from what the model was tuned on. With ``legacy=True`` the same happens after
every special token inside the text.

:func:`encode_text` fixes this without touching the tokenizer object and without knowing its class: it asks
the tokenizer, with two tiny probes, whether it drops a leading space (at the start of the text, and right
after a special token), and where it does, it puts one extra space in front of each affected span, which
restores exactly the string SentencePiece would have seen. A tokenizer that already keeps the prefix (the
4.36-style ``tokenizer.json`` normalizer ``Prepend("▁")``, or one loaded by a future transformers that fixed
this) answers the probes differently and gets no change.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any, List, Sequence

logger = logging.getLogger(__name__)

#: Files any of which make a directory a tokenizer directory (SentencePiece model or fast tokenizer).
TOKENIZER_FILES = ("tokenizer.model", "tokenizer.json")

_SPIECE_UNDERLINE = "\u2581"
# A probe character that every Llama-style vocabulary can encode (directly or via byte fallback).
_PROBE = "a"


class TokenizerLoadError(ValueError):
    """The tokenizer directory is missing, empty, or its files cannot be read."""


def load_tokenizer(path: str | os.PathLike[str]) -> Any:
    """Load a local Llama-style tokenizer directory (e.g. a download of lmsys/vicuna-7b-v1.5).

    Only local files are read (``local_files_only=True``, no remote code). When the tokenizer has no pad
    token, ``<unk>`` becomes the pad token, as in Vicuna's own ``special_tokens_map.json``: the official
    prompt layout fills the image slots with ``tokenizer.pad_token_id`` (0), so it must not be ``None``.

    Raises :class:`TokenizerLoadError` with what was found and what to do when the directory does not exist,
    holds no tokenizer files, or the files cannot be loaded.
    """
    directory = Path(path).expanduser()
    hint = ("Download the tokenizer of lmsys/vicuna-7b-v1.5 (tokenizer.model, tokenizer_config.json, "
            "special_tokens_map.json) and pass that directory.")
    if not directory.exists():
        raise TokenizerLoadError(f"tokenizer directory {str(directory)!r} does not exist. {hint}")
    if not directory.is_dir():
        raise TokenizerLoadError(f"tokenizer path {str(directory)!r} is a file, not a directory. {hint}")
    present = sorted(p.name for p in directory.iterdir())
    if not any((directory / name).is_file() for name in TOKENIZER_FILES):
        listing = ", ".join(present[:20]) or "nothing"
        raise TokenizerLoadError(
            f"{str(directory)!r} holds no tokenizer file ({' or '.join(TOKENIZER_FILES)}); it contains: "
            f"{listing}. {hint}")

    tokenizer = None
    errors: List[str] = []
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(directory), local_files_only=True, trust_remote_code=False)
    except Exception as exc:  # AutoTokenizer needs a tokenizer_class or config.json; fall back to Llama
        errors.append(f"AutoTokenizer: {type(exc).__name__}: {exc}")
    if tokenizer is None:
        try:
            from transformers import LlamaTokenizerFast

            tokenizer = LlamaTokenizerFast.from_pretrained(str(directory), local_files_only=True)
        except Exception as exc:
            errors.append(f"LlamaTokenizerFast: {type(exc).__name__}: {exc}")
    if tokenizer is None:
        raise TokenizerLoadError(
            f"could not load the tokenizer in {str(directory)!r} (files: {', '.join(present)}): "
            + " | ".join(errors)
            + ". A tokenizer.model needs the sentencepiece and protobuf packages; a corrupt or partial download"
              " must be fetched again.")

    if tokenizer.bos_token_id is None:
        raise TokenizerLoadError(
            f"the tokenizer in {str(directory)!r} has no BOS token; CogAgent's prompt starts with <s> "
            f"(is tokenizer_config.json or special_tokens_map.json missing?). {hint}")
    if tokenizer.pad_token_id is None and tokenizer.unk_token is not None:
        tokenizer.pad_token = tokenizer.unk_token
        logger.info("tokenizer has no pad token; using %r (id %d) as Vicuna does",
                    tokenizer.unk_token, tokenizer.pad_token_id)
    return tokenizer


def _ids(tokenizer: Any, text: str) -> List[int]:
    return list(tokenizer.encode(text, add_special_tokens=False))


def _separator_token(tokenizer: Any) -> str | None:
    """A special token string the tokenizer splits out of text (used to probe behaviour after one)."""
    for name in ("eos_token", "bos_token", "unk_token"):
        token = getattr(tokenizer, name, None)
        if isinstance(token, str) and token and token in _added_token_strings(tokenizer):
            return token
    return None


def _added_token_strings(tokenizer: Any) -> List[str]:
    """The strings the tokenizer matches as whole tokens before normal tokenization (longest first)."""
    added = getattr(tokenizer, "added_tokens_encoder", None) or {}
    return sorted((t for t in added if t), key=len, reverse=True)


def prefix_space_behaviour(tokenizer: Any) -> tuple[bool, bool]:
    """(drops a leading space at the start of text, drops one right after a special token).

    SentencePiece keeps both: ``" a"`` encodes as ``▁▁a``, differently from ``"a"``. A tokenizer for which
    ``encode(" a") == encode("a")`` has swallowed the space into its (conditional) dummy prefix.
    """
    at_start = _ids(tokenizer, " " + _PROBE) == _ids(tokenizer, _PROBE)
    separator = _separator_token(tokenizer)
    after_special = False
    if separator is not None:
        after_special = _ids(tokenizer, separator + " " + _PROBE) == _ids(tokenizer, separator + _PROBE)
    return at_start, after_special


def _restore_prefix_spaces(text: str, added_tokens: Sequence[str], at_start: bool, after_special: bool) -> str:
    """Put one space in front of every span (start of text / after a special token) that starts with a space."""
    if not (at_start or after_special):
        return text
    starts_with_space = (" ", _SPIECE_UNDERLINE)
    if not added_tokens or not after_special:
        return " " + text if at_start and text.startswith(starts_with_space) else text
    pattern = re.compile("(" + "|".join(re.escape(t) for t in added_tokens) + ")")
    pieces = pattern.split(text)  # [text, special, text, special, text, ...]
    out = []
    for index, piece in enumerate(pieces):
        if index % 2 == 0 and piece.startswith(starts_with_space):
            if (index == 0 and at_start) or (index > 0 and after_special):
                piece = " " + piece
        out.append(piece)
    return "".join(out)


def encode_text(tokenizer: Any, text: str) -> List[int]:
    """Ids of ``text`` without BOS/EOS, as the official transformers-4.36 code produced them.

    This is ``tokenizer.encode(text, add_special_tokens=False)`` plus the leading-space repair described in
    the module docstring. As in the official code, special-token strings inside ``text`` (``</s>``) become
    their special ids.
    """
    if not isinstance(text, str):
        raise TypeError(f"text to encode must be a str, got {type(text).__name__}")
    if not text:
        return []
    at_start, after_special = prefix_space_behaviour(tokenizer)
    fixed = _restore_prefix_spaces(text, _added_token_strings(tokenizer), at_start, after_special)
    return _ids(tokenizer, fixed)
