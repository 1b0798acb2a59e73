"""Function-preserving widening of a GQA model's attention: more query heads, the same function.

Under grouped-query attention with ``n`` query heads and ``g`` key-value heads, query head ``h`` reads key-value
head ``h // (n / g)`` (``transformers``' ``repeat_kv`` repeats each key-value head ``n / g`` times in a row).
Widening by a factor ``r`` turns query head ``j`` into heads ``r j, ..., r j + r - 1``; they read key-value head
``(r j + c) // (r n / g) = j // (n / g)``, the original's. Each copy keeps the original's query projection (so
computes the same attention pattern) and gets ``1/r`` of its output-projection columns, so the copies' outputs sum
to the original head's output: the widened model computes the same logits. A small seeded noise on the copies'
query projections breaks the tie, so that training can make the copies differ.
"""

from __future__ import annotations

import copy

import torch

from ..params import ParameterError, check_float, check_int

WIDENABLE = ("llama", "qwen2", "mistral")
"""Model types whose attention modules are ``q_proj`` / ``k_proj`` / ``v_proj`` / ``o_proj`` with ``repeat_kv``."""


def widen_heads(model, heads: int, *, noise: float = 0.0, seed: int = 0):
    """A copy of ``model`` with ``heads`` query heads per layer computing the same function (up to ``noise``).

    ``heads`` must be a multiple of the model's query-head count. ``noise`` is the standard deviation of the
    Gaussian added to each copy's query-projection rows, relative to the standard deviation of that layer's query
    projection (0: exactly the same logits, up to float rounding); it is drawn from a generator seeded with
    ``seed``, so the widened model is deterministic. The input model is left untouched.
    """
    config = model.config
    if config.model_type not in WIDENABLE:
        raise ParameterError(f"widen_heads: model type {config.model_type!r} is not one of {', '.join(WIDENABLE)}")
    old = config.num_attention_heads
    check_int("heads", heads, minimum=old)
    if heads % old:
        raise ParameterError(f"heads={heads} must be a multiple of the model's {old} query heads")
    check_float("noise", noise, minimum=0.0)
    factor = heads // old
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // old
    new_group, old_group = heads // config.num_key_value_heads, old // config.num_key_value_heads
    assert all((factor * j + c) // new_group == j // old_group for j in range(old) for c in range(factor))
    widened_config = copy.deepcopy(config)
    widened_config.num_attention_heads = heads
    widened_config.head_dim = head_dim  # keep the width (the default would become hidden // heads)
    with torch.random.fork_rng():  # the fresh weights are all overwritten; leave the caller's RNG alone
        widened = type(model)(widened_config)
    generator = torch.Generator().manual_seed(seed)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for layer in range(config.num_hidden_layers):
        prefix = f"model.layers.{layer}.self_attn"
        query = state[f"{prefix}.q_proj.weight"].view(old, head_dim, -1).repeat_interleave(factor, 0)
        scale = noise * float(state[f"{prefix}.q_proj.weight"].std())
        query = query + scale * torch.randn(query.shape, generator=generator)
        state[f"{prefix}.q_proj.weight"] = query.reshape(heads * head_dim, -1)
        if f"{prefix}.q_proj.bias" in state:
            bias = state[f"{prefix}.q_proj.bias"].view(old, head_dim).repeat_interleave(factor, 0)
            state[f"{prefix}.q_proj.bias"] = bias.reshape(heads * head_dim)
        output = state[f"{prefix}.o_proj.weight"].view(-1, old, head_dim).repeat_interleave(factor, 1) / factor
        state[f"{prefix}.o_proj.weight"] = output.reshape(-1, heads * head_dim)
    widened.load_state_dict(state)
    widened.generation_config = copy.deepcopy(model.generation_config)
    widened.eval()
    return widened
