"""Widening a GQA model's query heads keeps its function, and a zoo spec can start from another zoo model."""

import dataclasses

import pytest
import torch

from llmtheory import toyworld as tw
from llmtheory import zoo
from llmtheory.params import ParameterError
from llmtheory.seeding import make_rng
from llmtheory.zoo.train import starting_model
from llmtheory.zoo.widen import widen_heads

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def source():
    model, tokenizer = zoo.load("needle-llama-gqa", attn_implementation="eager")
    stack = tw.haystack(tw.make_world(0), make_rng(0, "test_zoo_widen"), n_words=96, depth=0.5)
    ids = tokenizer(stack.prompt, return_tensors="pt")["input_ids"]
    return model, ids


@torch.no_grad()
def test_widened_model_computes_the_same_logits_and_each_copy_attends_like_its_original(source):
    model, ids = source
    widened = widen_heads(model, 8)
    assert widened.config.num_attention_heads == 8 and widened.config.head_dim == 32
    before = model(input_ids=ids, output_attentions=True)
    after = widened(input_ids=ids, output_attentions=True)
    assert (after.logits - before.logits).abs().max() <= 1e-5 * before.logits.abs().max()
    for old, new in zip(before.attentions, after.attentions, strict=True):
        # heads 2j and 2j + 1 read query head j's key-value head: the same pattern as head j
        assert torch.allclose(new, old.repeat_interleave(2, dim=1), atol=1e-6)
    assert model.config.num_attention_heads == 4  # the source is untouched


@torch.no_grad()
def test_noise_breaks_the_tie_deterministically_and_changes_little(source):
    model, ids = source
    a, b, c = (widen_heads(model, 8, noise=0.01, seed=s) for s in (0, 0, 1))
    q = a.model.layers[0].self_attn.q_proj.weight.view(8, 32, -1)
    assert not torch.equal(q[0], q[1])  # the two copies of head 0 now differ
    assert torch.equal(q, b.model.layers[0].self_attn.q_proj.weight.view(8, 32, -1))
    assert not torch.equal(q, c.model.layers[0].self_attn.q_proj.weight.view(8, 32, -1))
    shift = (a(input_ids=ids).logits - model(input_ids=ids).logits).abs().max()
    assert 0 < shift < 0.5


def test_bad_widths_and_families_are_refused(source):
    model, _ = source
    with pytest.raises(ParameterError, match="multiple"):
        widen_heads(model, 6)
    with pytest.raises(ParameterError, match="heads"):
        widen_heads(model, 2)
    gpt2, _ = zoo.load("fact-gpt2-h64")
    with pytest.raises(ParameterError, match="model type"):
        widen_heads(gpt2, 16)


def test_a_spec_starts_from_the_widened_zoo_model_and_must_fit_it(source):
    spec = zoo.SPECS["needle-llama-gqa-4k"]
    assert spec.init_from == "needle-llama-gqa" and spec.heads == 2 * zoo.SPECS[spec.init_from].heads
    tokenizer = tw.build_tokenizer(tw.make_world(spec.world_seed), model_max_length=spec.max_positions)
    start = starting_model(spec, tokenizer)
    expected = widen_heads(source[0], spec.heads, noise=spec.init_noise, seed=spec.seed)
    for got, want in zip(start.parameters(), expected.parameters(), strict=True):
        assert torch.equal(got, want)
    with pytest.raises(ParameterError, match="init_from"):
        starting_model(dataclasses.replace(spec, intermediate=128), tokenizer)
    with pytest.raises(ParameterError, match="rope_theta"):
        starting_model(dataclasses.replace(spec, rope_theta=10_000.0), tokenizer)
