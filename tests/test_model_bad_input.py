"""Every bad input is a ValueError that says what is wrong and what to do, never a crash deep in torch."""

import json

import pytest
import torch

from cogagent import CogAgentConfig, CogAgentForCausalLM
from cogagent import modeling_cogagent

try:
    from support.golden import (CASE_A, _one_thread, golden_config, golden_config_dict, load_case,
                                load_tiny_model, model)
except ImportError:  # tests/ is itself a package
    from tests.support.golden import (CASE_A, _one_thread, golden_config, golden_config_dict, load_case,
                                      load_tiny_model, model)


@pytest.fixture(scope="module")
def case():
    return load_case(CASE_A)


def run(model, case, **changes):
    kwargs = dict(input_ids=case["input_ids"], token_type_ids=case["token_type_ids"], images=case["images"],
                  cross_images=case["cross_images"])
    kwargs.update(changes)
    with torch.no_grad():
        return model(**kwargs)


# ------------------------------------------------------------------------------------------ images


@pytest.mark.parametrize("name,bad,message", [
    ("images", lambda t: t[:, :, :20, :20], r"images are 20x20 pixels, the model takes 28x28"),
    ("images", lambda t: t[:, :1], r"images has 1 channels.*RGB"),
    ("images", lambda t: torch.cat((t, t[:, :1]), dim=1), r"images has 4 channels"),
    ("images", lambda t: t[0], r"images has shape \(3, 28, 28\)"),
    ("images", lambda t: t.repeat(2, 1, 1, 1), r"images holds 2 images for a batch of 1"),
    ("images", lambda t: (t * 255).to(torch.uint8), r"images has dtype torch.uint8"),
    ("images", lambda t: t.numpy(), r"images must be a torch.Tensor"),
    ("cross_images", lambda t: t[:, :, :28, :28], r"cross_images are 28x28 pixels, the model takes 56x56"),
    ("cross_images", lambda t: t[:, :2], r"cross_images has 2 channels"),
])
def test_bad_image_tensors(model, case, name, bad, message):
    with pytest.raises(ValueError, match=message):
        run(model, case, **{name: bad(case[name])})


def test_encoders_called_directly_check_their_input(model, case):
    with pytest.raises(ValueError, match="28x28"):
        model.model.vision(case["images"][:, :, :14, :14])
    with pytest.raises(ValueError, match="channels"):
        model.model.cross_vision(case["cross_images"][:, :1])


def test_text_only_input_is_a_clear_error(model, case):
    text = torch.tensor([[1, 223, 116, 129]])
    with pytest.raises(ValueError, match="text-only input is not supported"):
        with torch.no_grad():
            model(text, torch.zeros_like(text))
    with pytest.raises(ValueError, match="needs cross_images"):
        run(model, case, cross_images=None)
    with pytest.raises(ValueError, match="needs images"):
        run(model, case, images=None)
    with pytest.raises(ValueError, match="text-only"):
        model.generate(text, torch.zeros_like(text), max_new_tokens=2)


def test_images_need_token_type_ids(model, case):
    with pytest.raises(ValueError, match="token_type_ids are required"):
        run(model, case, token_type_ids=None)


# ------------------------------------------------------------------------------------------ token layout


def test_image_span_of_the_wrong_length(model, case):
    tti = case["token_type_ids"].clone()
    tti[0, 6] = 0  # 5 image tokens where the config needs 6
    with pytest.raises(ValueError, match=r"marks 5 image tokens, but one image takes 6 tokens"):
        run(model, case, token_type_ids=tti)
    longer = case["token_type_ids"].clone()
    longer[0, 7] = 1
    with pytest.raises(ValueError, match=r"marks 7 image tokens"):
        run(model, case, token_type_ids=longer)
    none = torch.zeros_like(case["token_type_ids"])
    with pytest.raises(ValueError, match=r"marks 0 image tokens"):
        run(model, case, token_type_ids=none)


def test_image_span_not_contiguous(model, case):
    tti = case["token_type_ids"].clone()
    tti[0, 3] = 0
    tti[0, 8] = 1
    with pytest.raises(ValueError, match="not contiguous"):
        run(model, case, token_type_ids=tti)


def test_token_type_values_and_shapes(model, case):
    tti = case["token_type_ids"].clone()
    tti[0, 10] = 2
    with pytest.raises(ValueError, match=r"may only hold 0 \(text\) and 1 \(image\), found \[2\]"):
        run(model, case, token_type_ids=tti)
    with pytest.raises(ValueError, match="token_type_ids has shape"):
        run(model, case, token_type_ids=case["token_type_ids"][:, :-1])
    with pytest.raises(ValueError, match="attention_mask has shape"):
        run(model, case, attention_mask=torch.ones(1, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="position_ids has shape"):
        run(model, case, position_ids=torch.arange(5)[None])


def test_input_ids_checks(model, case):
    ids = case["input_ids"].clone()
    ids[0, -1] = model.config.vocab_size
    with pytest.raises(ValueError, match=r"outside the vocabulary \[0, 300\)"):
        run(model, case, input_ids=ids)
    with pytest.raises(ValueError, match="integer tensor"):
        run(model, case, input_ids=case["input_ids"].float())
    with pytest.raises(ValueError, match="integer tensor"):
        run(model, case, input_ids=case["input_ids"][0])


def test_sequence_longer_than_max_position_embeddings(case):
    model = load_tiny_model(max_position_embeddings=12)  # the case-a prompt has 14 tokens
    with pytest.raises(ValueError, match="14 tokens is longer than max_position_embeddings 12"):
        run(model, case)
    model = load_tiny_model(max_position_embeddings=16)
    with pytest.raises(ValueError, match=r"14 tokens\) \+ max_new_tokens \(8\) = 22 exceeds max_position_embeddings"):
        model.generate(case["input_ids"], case["token_type_ids"], images=case["images"],
                       cross_images=case["cross_images"], max_new_tokens=8)
    # and continuing a cache past the limit
    out = run(model, case, use_cache=True)
    token = torch.tensor([[5, 6, 7]])
    with pytest.raises(ValueError, match="17 tokens is longer than max_position_embeddings 16"):
        with torch.no_grad():
            model(token, torch.zeros_like(token), past_key_values=out.past_key_values)


def test_continuation_misuse(model, case):
    out = run(model, case, use_cache=True)
    token = torch.tensor([[5]])
    with pytest.raises(ValueError, match="images are encoded by the first call"):
        with torch.no_grad():
            model(token, torch.zeros_like(token), images=case["images"], cross_images=case["cross_images"],
                  past_key_values=out.past_key_values)
    with pytest.raises(ValueError, match="CogAgentCache"):
        with torch.no_grad():
            model(token, torch.zeros_like(token), past_key_values=((torch.zeros(1),),))
    with pytest.raises(ValueError, match=r"expected \(1, 15\) \(cached \+ new tokens\)"):
        with torch.no_grad():
            model(token, torch.zeros_like(token), attention_mask=torch.ones(1, 1), past_key_values=out.past_key_values)


def test_generate_argument_checks(model, case):
    args = (case["input_ids"], case["token_type_ids"])
    kwargs = dict(images=case["images"], cross_images=case["cross_images"])
    with pytest.raises(ValueError, match="max_new_tokens"):
        model.generate(*args, max_new_tokens=-1, **kwargs)
    with pytest.raises(ValueError, match="temperature"):
        model.generate(*args, max_new_tokens=2, do_sample=True, temperature=0.0, **kwargs)
    with pytest.raises(ValueError, match="top_p"):
        model.generate(*args, max_new_tokens=2, do_sample=True, top_p=0.0, **kwargs)


# ------------------------------------------------------------------------------------------ dtypes


def test_unsupported_model_dtype(case):
    model = load_tiny_model().to(torch.float64)
    with pytest.raises(ValueError, match="float64 is not supported; use one of float32, bfloat16, float16"):
        run(model, case)


def test_dtype_the_device_cannot_run(monkeypatch, case):
    """Older torch builds lack float16 matmul on CPU: that must be a clear error, not a RuntimeError deep inside."""

    def probe(dtype, device):
        if dtype == torch.float16 and device.type == "cpu":
            raise RuntimeError('"addmm_impl_cpu_" not implemented for \'Half\'')

    monkeypatch.setattr(modeling_cogagent, "_probe_matmul", probe)
    modeling_cogagent._dtype_support_error.cache_clear()
    try:
        model = load_tiny_model().to(torch.float16)
        with pytest.raises(ValueError, match="torch.float16 is not supported on cpu by this torch build"):
            run(model, case)
        run(load_tiny_model(), case)  # float32 still fine
    finally:
        modeling_cogagent._dtype_support_error.cache_clear()


def test_meta_model_cannot_run(case):
    with torch.device("meta"):
        model = CogAgentForCausalLM(golden_config())
    with pytest.raises(ValueError, match="meta device"):
        run(model, case)


# ------------------------------------------------------------------------------------------ configs


def test_config_of_another_architecture(tmp_path):
    llama = {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
             "num_attention_heads": 32, "num_hidden_layers": 32, "intermediate_size": 11008, "vocab_size": 32000}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(llama))
    with pytest.raises(ValueError, match=r"architectures \['LlamaForCausalLM'\], not CogAgentForCausalLM"):
        CogAgentConfig.from_json_file(path)
    with pytest.raises(ValueError, match="model_type 'llama'"):
        CogAgentConfig.from_dict({**golden_config_dict(), "model_type": "llama"})


def test_config_missing_fields(tmp_path):
    data = golden_config_dict()
    del data["vision_config"]
    with pytest.raises(ValueError, match=r"missing required CogAgent field\(s\) \['vision_config'\]"):
        CogAgentConfig.from_dict(data)
    data = golden_config_dict()
    del data["vision_config"]["patch_size"]
    with pytest.raises(ValueError, match=r"vision_config is missing required field\(s\) \['patch_size'\]"):
        CogAgentConfig.from_dict(data)
    with pytest.raises(ValueError, match="no config.json"):
        CogAgentConfig.from_json_file(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        CogAgentConfig.from_json_file(tmp_path)


@pytest.mark.parametrize("change,message", [
    ({"cross_hidden_size": 64}, "cross_hidden_size 64 must equal the cross encoder width 32"),
    ({"cross_compute_hidden_size": 16}, "cross_compute_hidden_size 16 must equal cross_hidden_size 32"),
    ({"hidden_size": 66}, "hidden_size 66 is not divisible by num_attention_heads 4"),
    ({"cross_image_size": 50}, "cross_image_size 50 is not a multiple of the cross encoder patch size 14"),
    ({"template_version": "chatml"}, "template_version 'chatml'"),
    ({"hidden_act": "relu"}, "hidden_act 'relu' is not supported"),
    ({"eos_token_id": 300}, "eos_token_id 300 is outside the vocabulary"),
    ({"vision_config": {**golden_config_dict()["vision_config"], "num_positions": 7}},
     r"num_positions 7 must be \(image_size // patch_size\)\*\*2 \+ 1 = 5"),
    ({"vision_config": {**golden_config_dict()["vision_config"], "image_size": 30}},
     "image_size 30 is not a multiple"),
    ({"vision_config": {**golden_config_dict()["vision_config"], "colour": 1}}, r"unknown vision_config field"),
])
def test_inconsistent_configs(change, message):
    with pytest.raises(ValueError, match=message):
        CogAgentConfig.from_dict({**golden_config_dict(), **change})
