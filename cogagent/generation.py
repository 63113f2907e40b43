"""Decoding for CogAgent: greedy or sampled (temperature, top-k, top-p), with a KV cache.

One call = one prefill and one single-token step per new token:

* prefill: the prompt with its images; the low-res features go into the image span, the high-res image is encoded
  and every layer's cross-attention K/V are computed and cached. This is the only time images are touched.
* decode: the new token only (token type 0), self-attention K/V appended to a cache preallocated for
  prompt + max_new_tokens, cross-attention K/V reused; position id = previous + 1 (what the official
  ``build_position_ids`` gives a new text token).

Left-padded batches must pass ``attention_mask`` (1 = real token, 0 = padding), as with the official model. A row
that produced EOS is finished: it receives ``pad_token_id`` from then on, and the loop stops when every row is done.

Streamers follow transformers' protocol (``TextStreamer``): ``put(prompt_ids)`` once, then ``put(new_ids)`` with
the ``[B]`` tokens of each step, then ``end()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Union

import torch

__all__ = ["generate", "GenerateOutput", "sample_next_token"]


@dataclass
class GenerateOutput:
    sequences: torch.Tensor  # [B, prompt + new]
    scores: Optional[torch.Tensor] = None  # [B, new, V] float32 raw next-token logits of every step


def _eos_ids(eos_token_id: Union[None, int, Iterable[int]], default: Optional[int]) -> list:
    if eos_token_id is None:
        eos_token_id = default
    if eos_token_id is None:
        return []
    if isinstance(eos_token_id, int):
        return [eos_token_id]
    return [int(t) for t in eos_token_id]


def sample_next_token(logits: torch.Tensor, *, temperature: float = 1.0, top_p: float = 1.0,
                      top_k: Optional[int] = None, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Sample one token per row of ``logits [B, V]`` (float32) after temperature, top-k and nucleus filtering."""
    logits = logits / temperature
    if top_k is not None and 0 < top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        # drop a token when the tokens before it already reach top_p (the most likely token is always kept)
        drop = probs.cumsum(dim=-1) - probs >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator).squeeze(1)


@torch.inference_mode()
def generate(
    model,
    input_ids: torch.Tensor,
    token_type_ids: torch.Tensor,
    attention_mask: Optional[torch.Tensor] = None,
    images: Optional[torch.Tensor] = None,
    cross_images: Optional[torch.Tensor] = None,
    max_new_tokens: int = 256,
    do_sample: bool = False,
    temperature: float = 1.0,
    top_p: float = 1.0,
    top_k: Optional[int] = None,
    eos_token_id: Union[None, int, Iterable[int]] = None,
    pad_token_id: Optional[int] = None,
    streamer=None,
    generator: Optional[torch.Generator] = None,
    output_scores: bool = False,
) -> Union[torch.Tensor, GenerateOutput]:
    """Greedy (default) or sampled decoding with a KV cache; returns ids ``[B, prompt + new]``.

    This is also ``CogAgentForCausalLM.generate`` (``model`` is then the bound model). Images are encoded and the
    cross-attention K/V computed once, at prefill. Left-padded batches pass ``attention_mask``. Rows stop at
    ``eos_token_id`` (default ``config.eos_token_id``; pass ``[]`` to never stop early) and are then filled with
    ``pad_token_id`` (default ``config.pad_token_id``). ``streamer``: ``put(prompt_ids)``, ``put(new_ids)`` per
    step, ``end()`` (transformers' ``TextStreamer`` works). With ``output_scores=True`` returns
    ``GenerateOutput(sequences, scores)``.
    """
    config = model.config
    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be a non-negative integer, got {max_new_tokens!r}")
    if do_sample:
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0 when sampling, got {temperature}")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        if top_k is not None and (not isinstance(top_k, int) or top_k < 0):
            raise ValueError(f"top_k must be a non-negative integer or None, got {top_k!r}")
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
        raise ValueError(f"input_ids must be a tensor [batch, length], got "
                         f"{getattr(input_ids, 'shape', type(input_ids).__name__)}")
    batch, prompt_len = input_ids.shape
    total = prompt_len + max_new_tokens
    if total > config.max_position_embeddings:
        raise ValueError(f"prompt ({prompt_len} tokens) + max_new_tokens ({max_new_tokens}) = {total} exceeds "
                         f"max_position_embeddings {config.max_position_embeddings}; shorten the prompt/history or "
                         f"lower max_new_tokens")
    eos = _eos_ids(eos_token_id, config.eos_token_id)
    pad_token_id = config.pad_token_id if pad_token_id is None else pad_token_id

    if streamer is not None:
        streamer.put(input_ids.cpu())

    cache = model.new_cache(capacity=total)
    out = model(input_ids, token_type_ids, attention_mask=attention_mask, images=images, cross_images=cross_images,
                past_key_values=cache, use_cache=True, logits_to_keep=1)
    device = out.logits.device
    eos_tensor = torch.tensor(eos, dtype=torch.long, device=device)
    finished = torch.zeros(batch, dtype=torch.bool, device=device)
    new_tokens, scores = [], []
    for step in range(max_new_tokens):
        logits = out.logits[:, -1, :]
        if output_scores:
            scores.append(logits)
        if do_sample:
            token = sample_next_token(logits, temperature=temperature, top_p=top_p, top_k=top_k, generator=generator)
        else:
            token = logits.argmax(dim=-1)
        token = torch.where(finished, torch.full_like(token, pad_token_id), token)
        new_tokens.append(token)
        if streamer is not None:
            streamer.put(token.cpu())
        if eos:
            finished |= torch.isin(token, eos_tensor)
            if bool(finished.all()):
                break
        if step + 1 == max_new_tokens:
            break
        step_ids = token[:, None].to(input_ids.device)
        out = model(step_ids, torch.zeros_like(step_ids), past_key_values=cache, use_cache=True)

    if streamer is not None:
        streamer.end()
    new = torch.stack(new_tokens, dim=1).to(input_ids.device) if new_tokens else input_ids.new_zeros(batch, 0)
    sequences = torch.cat((input_ids, new), dim=1)
    if output_scores:
        stacked = torch.stack(scores, dim=1) if scores else out.logits.new_zeros(batch, 0, config.vocab_size)
        return GenerateOutput(sequences=sequences, scores=stacked)
    return sequences
