"""Numerical parity with the official cogagent-chat-hf code on the tiny golden model (tests/data/golden)."""

import json

import pytest
import torch

from cogagent.modeling_cogagent import ExpertRouting, build_position_ids, get_expert_mask

try:
    from support.golden import GOLDEN, case_a, case_b, case_c, close, model
except ImportError:  # tests/ is itself a package
    from tests.support.golden import GOLDEN, case_a, case_b, case_c, close, model


@pytest.fixture(scope="module")
def manifest():
    return json.loads((GOLDEN / "manifest.json").read_text())


# ------------------------------------------------------------------------------------------ case a: one forward


def test_position_ids_and_expert_mask(case_a, case_c):
    assert torch.equal(build_position_ids(case_a["token_type_ids"], case_a["attention_mask"]), case_a["position_ids"])
    assert torch.equal(build_position_ids(case_c["token_type_ids"], case_c["attention_mask"]), case_c["position_ids"])
    assert torch.equal(get_expert_mask(case_a["token_type_ids"]).long(), case_a["vision_expert_mask"])
    # the image span of case a is the same in every row -> routed by slicing, not by a boolean mask
    routing = ExpertRouting.from_token_type_ids(case_a["token_type_ids"])
    assert routing.mask is None and routing.span == (1, 6)  # BOI + 4 patches; EOI (index 6) is language


def test_encoders_match(model, case_a):
    with torch.no_grad():
        close(model.model.vision(case_a["images"]), case_a["vision_features"])
        close(model.model.cross_vision(case_a["cross_images"]), case_a["cross_features"])


def test_case_a_logits_and_hidden_states(model, case_a):
    with torch.no_grad():
        out = model(case_a["input_ids"], case_a["token_type_ids"], attention_mask=case_a["attention_mask"],
                    images=case_a["images"], cross_images=case_a["cross_images"], output_hidden_states=True)
    assert out.logits.dtype == torch.float32
    close(out.logits, case_a["logits"])
    n_layers = model.config.num_hidden_layers
    assert len(out.hidden_states) == n_layers + 1
    for i, hidden in enumerate(out.hidden_states):
        close(hidden, case_a[f"hidden_states.{i}"])


def test_case_a_without_mask_with_explicit_positions(model, case_a):
    with torch.no_grad():
        out = model(case_a["input_ids"], case_a["token_type_ids"], position_ids=case_a["position_ids"],
                    images=case_a["images"], cross_images=case_a["cross_images"])
    close(out.logits, case_a["logits"])


def test_case_a_logits_to_keep(model, case_a):
    with torch.no_grad():
        out = model(case_a["input_ids"], case_a["token_type_ids"], images=case_a["images"],
                    cross_images=case_a["cross_images"], logits_to_keep=1)
    assert out.logits.shape == (1, 1, model.config.vocab_size)
    close(out.logits, case_a["logits"][:, -1:])


def test_same_layout_batch_uses_span_routing_and_matches_single_rows(model, case_a, case_c):
    """Batch of two prompts with the image at the same place: sliced routing, rows equal to single-row runs."""
    ids = case_a["input_ids"].repeat(2, 1)
    ids[1, 7:] = torch.tensor([120, 70, 297, 93, 9, 10, 11])
    tti = case_a["token_type_ids"].repeat(2, 1)
    images, cross = case_c["images"], case_c["cross_images"]
    with torch.no_grad():
        both = model(ids, tti, images=images, cross_images=cross).logits
        for row in range(2):
            single = model(ids[row:row + 1], tti[row:row + 1], images=images[row:row + 1],
                           cross_images=cross[row:row + 1]).logits
            close(both[row:row + 1], single)


def test_span_and_mask_routing_agree():
    torch.manual_seed(0)
    tti = torch.tensor([[0, 1, 1, 1, 1, 0, 0], [0, 1, 1, 1, 1, 0, 0]])
    x = torch.randn(2, 7, 5)
    vision, language = torch.nn.Linear(5, 3), torch.nn.Linear(5, 3)
    span = ExpertRouting.from_token_type_ids(tti)
    mask = ExpertRouting(mask=get_expert_mask(tti))
    assert span.span == (1, 4)
    with torch.no_grad():
        close(span(x, vision, language), mask(x, vision, language))
        expected = language(x)
        expected[:, 1:4] = vision(x[:, 1:4])
        close(span(x, vision, language), expected)


# ------------------------------------------------------------------------------------------ case c: left padding


def test_case_c_left_padded_batch(model, case_c):
    with torch.no_grad():
        out = model(case_c["input_ids"], case_c["token_type_ids"], attention_mask=case_c["attention_mask"],
                    images=case_c["images"], cross_images=case_c["cross_images"])
    real = case_c["attention_mask"].bool()
    close(out.logits[real], case_c["logits"][real])
    close(out.logits, case_c["logits"])  # the pad rows too: same masking arithmetic as the official code
    close(out.logits[0, 3:], case_c["unpadded_logits_0"][0])
    close(out.logits[1], case_c["unpadded_logits_1"][0])


def test_case_c_unpadded_row(model, case_c):
    with torch.no_grad():
        out = model(case_c["input_ids"][:1, 3:], case_c["token_type_ids"][:1, 3:], images=case_c["images"][:1],
                    cross_images=case_c["cross_images"][:1])
    close(out.logits, case_c["unpadded_logits_0"])


# ------------------------------------------------------------------------------------------ generation


def test_case_b_greedy_generate(model, case_a, case_b, manifest):
    out = model.generate(case_a["input_ids"], case_a["token_type_ids"], case_a["attention_mask"],
                         images=case_a["images"], cross_images=case_a["cross_images"], max_new_tokens=8,
                         do_sample=False, output_scores=True)
    prompt_len = case_a["input_ids"].shape[1]
    assert torch.equal(out.sequences[:, :prompt_len], case_a["input_ids"])
    assert torch.equal(out.sequences[:, prompt_len:], case_b["generated_ids"])
    assert out.sequences[0, prompt_len:].tolist() == manifest["cases"]["b_generate"]["generated_ids"]
    close(out.scores, case_b["step_logits"])
    close(out.scores, case_b["full_recompute_step_logits"])


def test_case_b_plain_tensor_result(model, case_a, case_b):
    ids = model.generate(case_a["input_ids"], case_a["token_type_ids"], images=case_a["images"],
                         cross_images=case_a["cross_images"], max_new_tokens=8)
    assert isinstance(ids, torch.Tensor) and ids.shape == (1, 14 + 8)
    assert torch.equal(ids[:, 14:], case_b["generated_ids"])


def test_case_c_greedy_generate_left_padded(model, case_c, manifest):
    out = model.generate(case_c["input_ids"], case_c["token_type_ids"], case_c["attention_mask"],
                         images=case_c["images"], cross_images=case_c["cross_images"], max_new_tokens=8,
                         output_scores=True)
    assert torch.equal(out.sequences[:, 14:], case_c["generated_ids"])
    assert out.sequences[:, 14:].tolist() == manifest["cases"]["c_batch2_leftpad"]["generated_ids"]
    close(out.scores, case_c["step_logits"])


def test_manual_cached_decode_matches_golden_steps(model, case_a, case_b):
    """forward(use_cache=True) then one token at a time with past_key_values (no images, no mask, no positions)."""
    generated = case_b["generated_ids"]
    with torch.no_grad():
        out = model(case_a["input_ids"], case_a["token_type_ids"], images=case_a["images"],
                    cross_images=case_a["cross_images"], use_cache=True)
        cache = out.past_key_values
        steps = [out.logits[:, -1]]
        positions = []
        for k in range(generated.shape[1] - 1):
            positions.append(cache.next_position_ids.clone())
            token = generated[:, k:k + 1]
            out = model(token, torch.zeros_like(token), past_key_values=cache, use_cache=True)
            steps.append(out.logits[:, -1])
    close(torch.stack(steps, dim=1), case_b["step_logits"])
    assert torch.cat(positions, dim=1).tolist() == case_b["step_position_ids"][:, :-1].tolist()
    assert cache.length == case_a["input_ids"].shape[1] + generated.shape[1] - 1


def test_manual_decode_left_padded_with_explicit_masks(model, case_c):
    generated = case_c["generated_ids"]
    mask = case_c["attention_mask"]
    with torch.no_grad():
        out = model(case_c["input_ids"], case_c["token_type_ids"], attention_mask=mask, images=case_c["images"],
                    cross_images=case_c["cross_images"], use_cache=True)
        cache, steps = out.past_key_values, [out.logits[:, -1]]
        for k in range(3):
            token = generated[:, k:k + 1]
            mask = torch.cat((mask, torch.ones_like(token)), dim=1)
            position = case_c["step_position_ids"][:, k:k + 1]  # position of generated token k
            out = model(token, torch.zeros_like(token), attention_mask=mask, position_ids=position,
                        past_key_values=cache, use_cache=True)
            steps.append(out.logits[:, -1])
    close(torch.stack(steps, dim=1), case_c["step_logits"][:, :4])


def test_images_encoded_and_cross_kv_computed_once_per_generate(model, case_a):
    calls = {"vision": 0, "cross_vision": 0, "key_value": 0, "decoder_steps": 0}

    def counter(name):
        def hook(module, args, output):
            calls[name] += 1
        return hook

    handles = [model.model.vision.register_forward_hook(counter("vision")),
               model.model.cross_vision.register_forward_hook(counter("cross_vision")),
               model.model.layers[0].register_forward_hook(counter("decoder_steps"))]
    handles += [layer.cross_attn.key_value.register_forward_hook(counter("key_value"))
                for layer in model.model.layers]
    try:
        model.generate(case_a["input_ids"], case_a["token_type_ids"], images=case_a["images"],
                       cross_images=case_a["cross_images"], max_new_tokens=6)
    finally:
        for handle in handles:
            handle.remove()
    assert calls["vision"] == 1
    assert calls["cross_vision"] == 1
    assert calls["key_value"] == model.config.num_hidden_layers  # once per layer, not once per token
    assert calls["decoder_steps"] == 6  # prefill + 5 single-token steps


def test_streamer_protocol(model, case_a, case_b):
    class Recorder:
        def __init__(self):
            self.events = []

        def put(self, value):
            self.events.append(("put", value.clone()))

        def end(self):
            self.events.append(("end", None))

    recorder = Recorder()
    ids = model.generate(case_a["input_ids"], case_a["token_type_ids"], images=case_a["images"],
                         cross_images=case_a["cross_images"], max_new_tokens=4, streamer=recorder)
    kinds = [kind for kind, _ in recorder.events]
    assert kinds == ["put"] * 5 + ["end"]
    assert torch.equal(recorder.events[0][1], case_a["input_ids"])
    assert [v.tolist() for _, v in recorder.events[1:5]] == [[t] for t in case_b["generated_ids"][0, :4].tolist()]
    assert ids[0, 14:].tolist() == case_b["generated_ids"][0, :4].tolist()


def test_transformers_text_streamer(model, case_a, case_b):
    from transformers import TextStreamer

    class ListTokenizer:
        def decode(self, ids, **kwargs):
            return "".join(f"<{i}>" for i in ids)

    printed = []

    class Capture(TextStreamer):
        def on_finalized_text(self, text, stream_end=False):
            printed.append(text)

    model.generate(case_a["input_ids"], case_a["token_type_ids"], images=case_a["images"],
                   cross_images=case_a["cross_images"], max_new_tokens=3, streamer=Capture(ListTokenizer(),
                                                                                           skip_prompt=True))
    expected = "".join(f"<{i}>" for i in case_b["generated_ids"][0, :3].tolist())
    assert "".join(printed) == expected


def test_eos_stops_rows_and_pads_finished(model, case_c):
    # In case c, row 0 emits 123 at step 1 and row 1 emits 123 at step 6: treat 123 as EOS.
    out = model.generate(case_c["input_ids"], case_c["token_type_ids"], case_c["attention_mask"],
                         images=case_c["images"], cross_images=case_c["cross_images"], max_new_tokens=8,
                         eos_token_id=123, pad_token_id=0)
    new = out[:, 14:]
    assert new.shape[1] == 7  # stops once both rows are done
    assert new[0].tolist() == [9, 123, 0, 0, 0, 0, 0]
    assert new[1].tolist() == case_c["generated_ids"][1, :7].tolist()
    # a single row stops at its EOS
    single = model.generate(case_c["input_ids"][:1], case_c["token_type_ids"][:1], case_c["attention_mask"][:1],
                            images=case_c["images"][:1], cross_images=case_c["cross_images"][:1],
                            max_new_tokens=8, eos_token_id=[123, 5])
    assert single[0, 14:].tolist() == [9, 123]


def test_sampling(model, case_a, case_b):
    args = (case_a["input_ids"], case_a["token_type_ids"])
    kwargs = dict(images=case_a["images"], cross_images=case_a["cross_images"], max_new_tokens=8, do_sample=True)
    # a tiny nucleus keeps only the most likely token: sampling equals greedy
    ids = model.generate(*args, top_p=1e-6, **kwargs)
    assert torch.equal(ids[:, 14:], case_b["generated_ids"])
    ids = model.generate(*args, top_k=1, temperature=0.7, **kwargs)
    assert torch.equal(ids[:, 14:], case_b["generated_ids"])
    # same generator seed, same sample; tokens stay in the vocabulary
    first = model.generate(*args, temperature=1.5, generator=torch.Generator().manual_seed(3), **kwargs)
    second = model.generate(*args, temperature=1.5, generator=torch.Generator().manual_seed(3), **kwargs)
    assert torch.equal(first, second)
    assert int(first.max()) < model.config.vocab_size


def test_concatenated_cache_equals_preallocated(model, case_a, case_b):
    """forward's default cache grows by concatenation; generate preallocates. Both give the golden steps."""
    cache = model.new_cache(capacity=case_a["input_ids"].shape[1] + 8)
    with torch.no_grad():
        out = model(case_a["input_ids"], case_a["token_type_ids"], images=case_a["images"],
                    cross_images=case_a["cross_images"], past_key_values=cache, use_cache=True)
        token = case_b["generated_ids"][:, :1]
        out = model(token, torch.zeros_like(token), past_key_values=cache, use_cache=True)
    close(out.logits[:, -1], case_b["step_logits"][:, 1])
    assert cache.keys[0].shape[1] == case_a["input_ids"].shape[1] + 8  # allocated once, filled in place


def test_chunked_continuation_matches_full_recompute(model, case_a, case_b):
    """Continue with several new tokens at once (explicit causal mask with a cache offset)."""
    generated = case_b["generated_ids"]
    with torch.no_grad():
        out = model(case_a["input_ids"], case_a["token_type_ids"], images=case_a["images"],
                    cross_images=case_a["cross_images"], use_cache=True)
        chunk = generated[:, :4]
        out = model(chunk, torch.zeros_like(chunk), past_key_values=out.past_key_values, use_cache=True)
    close(out.logits, case_b["full_recompute_step_logits"][:, 1:5])
