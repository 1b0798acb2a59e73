"""Sentence-level contextual entrainment (Liu and Chu, 2026) and the heads that cause it, with hooks on real models.

The method, top to bottom, as plain functions:

1. **The measure** (``entrainment-eq-delta``): a sentence s = (s_1 … s_n) is *entrained* when putting it in the
   context raises its own per-token mean log-probability,
   Δ(s) = ℓ(s | c ⊕ s) − ℓ(s | c),  ℓ(s | x) = (1/n) Σ_t log p(s_t | x, s_<t),
   where c ⊕ s is a context that holds s and c one that does not (:func:`sentence_logprobs`, :func:`deltas`).
2. **Head masks through hooks** (``entrainment-eq-mask``): every attention layer's output projection W_O reads the
   concatenated head outputs [z_1 … z_H]; a forward pre-hook multiplies head h's slice by m_h, so that
   W_O [m_1 z_1 … m_H z_H] is the layer's output with head h scaled by m_h. No model code is forked: the same hook
   serves GPT-2 (``attn.c_proj``), Llama, Qwen2, Mistral, Phi-3, Gemma-2 (``self_attn.o_proj``) and GPT-NeoX
   (``attention.dense``) (:func:`output_projections`, :class:`HeadMasker`).
3. **Differentiable head search** (the token-level paper's, Niu et al. 2025, code ``frankniujc/entrainment``): one
   logit α_h per head, initialised N(0, 0.01); a hard Gumbel-sigmoid sample with a straight-through gradient
   (``entrainment-eq-gumbel``, :func:`gumbel_sigmoid`); AdamW at lr 1.0; the loss is an entrainment term minus
   λ·mean σ(α) (λ = 1), which keeps as many heads on as it can (``entrainment-eq-loss``, :func:`search_heads`).
   The heads whose logit ends ≤ 0 are the *entrainment heads*. The token-level paper's entrainment term is a
   cross-entropy between the gold and the distractor token, of order 1; the sentence-level paper's is not
   published. Our reconstruction scores what the evaluation scores: the masked model's Δ (both contexts masked),
   squared and divided by the unmasked model's mean Δ², so that the term starts at 1 and is of the same order as
   the keep term whatever the size of Δ [reconstructed].
4. **Controls**: random head sets of the same size (:func:`random_head_sets`) and heads found by the same search
   on a *null objective* with nothing to remove: each item's "with" context is another item's context without s
   (a derangement of the contexts without s, :func:`null_contexts`), so Δ is 0 in expectation.
5. **An independent check of the hook**: turning off, through the hook, every query head that reads one key-value
   head must equal zeroing that key-value head's rows of the V projection (and their bias) in a copy of the model
   (:func:`zero_value_head`, :func:`mask_parity_errors`). This does not share the hook's slicing of W_O's input, so
   a wrong head order fails it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .params import Int, ListOf, Model, ParameterError, check_float, check_int
from .seeding import make_rng

# --------------------------------------------------------------------------------------------------------------
# 1. The measure: per-token mean log-probability of a sentence after a context
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentenceBatch:
    """Right-padded token ids of ``context ⊕ sentence`` rows and a mask of the sentence's tokens."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    sentence_mask: torch.Tensor
    """1 where the token belongs to the sentence whose log-probability is measured (never the first token)."""


def sentence_batch(tokenizer, contexts: Sequence[str], sentences: Sequence[str]) -> SentenceBatch:
    """Tokenise every ``context ⊕ sentence`` pair (the context with the tokenizer's own special tokens, the sentence
    without), right-padded so that causal positions are the same as unpadded ones."""
    if len(contexts) != len(sentences) or not contexts:
        raise ParameterError(f"contexts and sentences must be non-empty and of equal length; got {len(contexts)}")
    rows, starts = [], []
    for context, sentence in zip(contexts, sentences, strict=True):
        head = tokenizer(context)["input_ids"] if context else [tokenizer.bos_token_id or tokenizer.eos_token_id]
        tail = tokenizer(" " + sentence if context else sentence, add_special_tokens=False)["input_ids"]
        starts.append((len(head), len(head) + len(tail)))
        rows.append(head + tail)
    width = max(map(len, rows))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    ids = torch.full((len(rows), width), int(pad))
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    measured = torch.zeros((len(rows), width))
    for i, (row, (start, end)) in enumerate(zip(rows, starts, strict=True)):
        ids[i, : len(row)] = torch.tensor(row)
        attention[i, : len(row)] = 1
        measured[i, start:end] = 1
    return SentenceBatch(ids, attention, measured)


def _device(model) -> torch.device:
    return next(model.parameters()).device


def token_logprobs(model, batch: SentenceBatch) -> torch.Tensor:
    """log p(x_t | x_<t) of every next token (rows × positions − 1), differentiable; padding is not masked."""
    device = _device(model)
    ids, attention = batch.input_ids.to(device), batch.attention_mask.to(device)
    logits = model(input_ids=ids, attention_mask=attention).logits.float()
    return logits[:, :-1].log_softmax(-1).gather(-1, ids[:, 1:, None])[..., 0]


def mean_logprob(model, batch: SentenceBatch) -> torch.Tensor:
    """ℓ(s | x) = (1/n) Σ_t log p(s_t | x, s_<t) per row (``entrainment-eq-delta``), differentiable."""
    measured = batch.sentence_mask[:, 1:].to(_device(model))
    return (token_logprobs(model, batch) * measured).sum(1) / measured.sum(1)


@torch.no_grad()
def sentence_token_logprobs(model, tokenizer, contexts, sentences, batch_size: int = 256) -> list[np.ndarray]:
    """log p(s_t | context, s_<t) of each sentence token, one array per pair (no gradients)."""
    out = []
    for start in range(0, len(contexts), batch_size):
        batch = sentence_batch(tokenizer, contexts[start : start + batch_size], sentences[start : start + batch_size])
        rows = token_logprobs(model, batch).cpu().numpy()
        out += [row[mask[1:].numpy() > 0] for row, mask in zip(rows, batch.sentence_mask, strict=True)]
    return out


def sentence_logprobs(model, tokenizer, contexts, sentences, batch_size: int = 256) -> np.ndarray:
    """ℓ(s | context) for every pair, batch by batch (no gradients)."""
    return np.array([row.mean() for row in sentence_token_logprobs(model, tokenizer, contexts, sentences, batch_size)])


def deltas(model, tokenizer, sentences, with_contexts, without_contexts, batch_size: int = 256) -> np.ndarray:
    """Δ(s) = ℓ(s | c ⊕ s) − ℓ(s | c) per item (``entrainment-eq-delta``); > 0 means the context entrains s."""
    with_s = sentence_logprobs(model, tokenizer, with_contexts, sentences, batch_size)
    without_s = sentence_logprobs(model, tokenizer, without_contexts, sentences, batch_size)
    return with_s - without_s


# --------------------------------------------------------------------------------------------------------------
# 2. Head masks through forward pre-hooks on the attention output projection
# --------------------------------------------------------------------------------------------------------------

OUTPUT_PROJECTIONS: tuple[str, ...] = (".self_attn.o_proj", ".attn.c_proj", ".attention.dense", ".self_attention.dense")
"""Name endings of the module that applies W_O to the concatenated heads, by layout (Llama/Qwen2/Mistral/Phi-3/
Gemma-2, GPT-2, GPT-NeoX, Falcon/Bloom). The first one a model has is used."""


def output_projections(model) -> list[nn.Module]:
    """The attention output projection of every layer, in layer order; a clear error for an unknown layout."""
    named = dict(model.named_modules())
    for ending in OUTPUT_PROJECTIONS:
        found = [module for name, module in named.items() if name.endswith(ending)]
        if found:
            break
    layers = getattr(model.config, "num_hidden_layers", None)
    if not found or (layers is not None and len(found) != layers):
        raise ParameterError(
            f"MODEL of architecture {model.config.model_type!r}: no attention output projection per layer found "
            f"(looked for modules named *{', *'.join(OUTPUT_PROJECTIONS)}); head masks support these layouts only"
        )
    return found


@dataclass(frozen=True)
class HeadLayout:
    """How many layers and query heads a model has, and the width of one head's slice of W_O's input."""

    layers: int
    heads: int
    head_dim: int

    @property
    def total(self) -> int:
        return self.layers * self.heads


def head_layout(model) -> HeadLayout:
    """Layers, query heads and head width, read from the config and checked against W_O's input width."""
    config = model.config
    heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_head", None)
    projections = output_projections(model)
    first = projections[0]
    width = first.in_features if hasattr(first, "in_features") else first.weight.shape[0]  # GPT-2 Conv1D: (in, out)
    if not heads or width % heads:
        raise ParameterError(f"MODEL of architecture {config.model_type!r}: W_O input {width} is not heads × width")
    return HeadLayout(len(projections), int(heads), width // int(heads))


class HeadMasker:
    """Scales each head's output z_h by m_h before W_O (``entrainment-eq-mask``), with one pre-hook per layer.

    Use as a context manager; set :attr:`mask` to a (layers, heads) tensor (``None`` = no masking). The tensor may
    carry gradients (the head search differentiates through it).
    """

    def __init__(self, model):
        self.model = model
        self.layout = head_layout(model)
        self.mask: torch.Tensor | None = None
        self._handles: list = []

    def _hook(self, layer: int):
        def scale_heads(module, args):
            if self.mask is None:
                return None
            z = args[0]
            # W_O · [m_1 z_1 … m_H z_H]: reshape the last axis to (heads, head width) and scale each head
            heads = z.unflatten(-1, (self.layout.heads, self.layout.head_dim))
            scaled = heads * self.mask[layer].to(z.device, z.dtype)[:, None]
            return (scaled.flatten(-2), *args[1:])

        return scale_heads

    def __enter__(self) -> HeadMasker:
        projections = output_projections(self.model)
        self._handles = [p.register_forward_pre_hook(self._hook(i)) for i, p in enumerate(projections)]
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.mask = None


def heads_off(layout: HeadLayout, heads: Sequence[tuple[int, int]]) -> torch.Tensor:
    """The 0/1 mask with the given ``(layer, head)`` pairs turned off."""
    mask = torch.ones(layout.layers, layout.heads)
    for layer, head in heads:
        mask[layer, head] = 0.0
    return mask


def masked_deltas(model, tokenizer, mask: torch.Tensor | None, sentences, with_contexts, without_contexts,
                  batch_size: int = 256):  # fmt: skip
    """Δ(s) of the model with ``mask`` applied to both contexts: the entrainment left when those heads are off."""
    with HeadMasker(model) as masker:
        masker.mask = mask
        return deltas(model, tokenizer, sentences, with_contexts, without_contexts, batch_size)


# --------------------------------------------------------------------------------------------------------------
# 3. Differentiable head search
# --------------------------------------------------------------------------------------------------------------


def gumbel_sigmoid(logits: torch.Tensor, generator: torch.Generator, temperature: float = 1.0) -> torch.Tensor:
    """A hard 0/1 sample with the straight-through gradient of σ((α + g₁ − g₀)/τ) (``entrainment-eq-gumbel``).

    g₁ − g₀, a difference of two Gumbel variables, is logistic noise log u − log(1 − u); the forward value is the
    threshold at ½ and the backward pass uses the soft sample's gradient, as in Niu et al.'s ``gumbel_sigmoid``.
    """
    u = torch.rand(logits.shape, generator=generator).clamp(1e-6, 1 - 1e-6)
    soft = torch.sigmoid((logits + u.log() - (-u).log1p()) / temperature)
    hard = (soft > 0.5).to(soft.dtype)
    return (hard - soft).detach() + soft


@dataclass(frozen=True)
class SearchResult:
    """The learned head logits, the heads turned off (logit ≤ 0), and the loss and heads-off count per step."""

    logits: torch.Tensor
    off: list[tuple[int, int]]
    loss: np.ndarray
    n_off: np.ndarray

    @property
    def fraction(self) -> float:
        return len(self.off) / self.logits.numel()


def search_heads(
    model,
    tokenizer,
    sentences: Sequence[str],
    with_contexts: Sequence[str],
    without_contexts: Sequence[str],
    *,
    steps: int,
    seed: int,
    learning_rate: float = 1.0,
    keep_weight: float = 1.0,
    batch_size: int = 128,
    progress: bool = False,
) -> SearchResult:
    """Find the entrainment heads by differentiable masking (``entrainment-eq-loss``):

    L(α) = (1/N) Σ_i Δ_m(s_i)² / ((1/N) Σ_i Δ(s_i)²) − λ · (1/|heads|) Σ_h σ(α_h),
    Δ_m(s) = ℓ_m(s | c ⊕ s) − ℓ_m(s | c),

    with m ~ hard Gumbel-sigmoid(α) sampled once per step and applied to both contexts (the quantity the ablation
    measures), and the unmasked mean Δ² (fixed) as the scale, so that the entrainment term starts at 1. λ is
    ``keep_weight``. AdamW at ``learning_rate`` (the paper's 1.0), one mini-batch per step, in turn: the items are
    cut into the fewest mini-batches of at most ``batch_size`` items, of equal sizes (±1), so that no step sees a
    small remainder; the model's weights stay frozen. Heads with α ≤ 0 at the end are off.
    """
    check_int("steps", steps, minimum=1)
    check_int("batch_size", batch_size, minimum=1)
    check_float("keep_weight", keep_weight, minimum=0)
    unmasked = deltas(model, tokenizer, list(sentences), list(with_contexts), list(without_contexts))
    scale = max(float(np.mean(unmasked**2)), 1e-8)  # the entrainment term's value with every head on
    batches = [_paired_batch(tokenizer, *([texts[i] for i in part] for texts in (sentences, with_contexts,
                                                                            without_contexts)))
               for part in minibatches(len(sentences), batch_size)]  # fmt: skip
    generator = torch.Generator().manual_seed(int(make_rng(seed, "entrainment", "search").integers(2**31)))
    with HeadMasker(model) as masker:
        logits = torch.normal(0.0, 0.01, (masker.layout.layers, masker.layout.heads), generator=generator)
        logits.requires_grad_(True)
        optimiser = torch.optim.AdamW([logits], lr=learning_rate)
        frozen = [p.requires_grad for p in model.parameters()]
        for p in model.parameters():
            p.requires_grad_(False)
        losses, n_off = [], []
        try:
            for step in _steps(steps, progress):
                masker.mask = gumbel_sigmoid(logits, generator)
                with_s, without_s = mean_logprob(model, batches[step % len(batches)]).cpu().chunk(2)
                loss = ((with_s - without_s) ** 2).mean() / scale - keep_weight * torch.sigmoid(logits).mean()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                losses.append(loss.item())
                n_off.append(int((logits <= 0).sum()))
        finally:
            for p, flag in zip(model.parameters(), frozen, strict=True):
                p.requires_grad_(flag)
    final = logits.detach()
    off = [(int(i), int(j)) for i, j in torch.nonzero(final <= 0).tolist()]
    return SearchResult(final, off, np.array(losses), np.array(n_off))


def minibatches(n_items: int, batch_size: int) -> list[np.ndarray]:
    """The item indices ``0 … n_items − 1`` cut, in order, into the fewest mini-batches of at most ``batch_size``
    items, of equal sizes (±1): 98 items at ``batch_size=64`` give 49 + 49, not 64 + 34."""
    check_int("batch_size", batch_size, minimum=1)
    return np.array_split(np.arange(n_items), -(-n_items // batch_size))


def _paired_batch(tokenizer, sentences, with_contexts, without_contexts) -> SentenceBatch:
    """One batch: (with-context ⊕ s) rows, then (without-context ⊕ s) rows, so one masked pass gives Δ_m."""
    return sentence_batch(tokenizer, [*with_contexts, *without_contexts], [*sentences, *sentences])


def _steps(steps: int, progress: bool):
    if not progress:
        return range(steps)
    from tqdm.auto import trange

    return trange(steps, desc="head search", leave=False)


def null_contexts(without_contexts: Sequence[str], *, seed: int) -> list[str]:
    """The null objective's "with" contexts: item i gets item π(i)'s context without its sentence (π a derangement
    with a different context), so neither context holds s: Δ is 0 in expectation because the contexts are
    exchangeable, and there is no entrainment for a search to remove."""
    n = len(without_contexts)
    if n < 2 or len(set(without_contexts)) < 2:
        raise ParameterError("the null objective needs at least 2 items with different contexts")
    rng = make_rng(seed, "entrainment", "null")
    while True:
        order = rng.permutation(n)
        if all(without_contexts[j] != without_contexts[i] for i, j in enumerate(order)):
            return [without_contexts[j] for j in order]


def memory_estimate(config, *, batch_size: int, tokens: int, bytes_per_value: int = 4) -> dict[str, float]:
    """Bytes a head search needs, from a config alone: the weights (counted without tied embeddings or grouped
    key-value heads, so an upper estimate) and the activations kept for the backward pass (about 16 hidden-size
    vectors per token and layer, plus the logits), in float32 by default."""
    from .zoo import weight_count_bound

    hidden, layers, vocab = config.hidden_size, config.num_hidden_layers, config.vocab_size
    weights = weight_count_bound(config) * bytes_per_value
    activations = batch_size * tokens * (16 * hidden * layers + 2 * vocab) * bytes_per_value
    return {"weights": float(weights), "activations": float(activations), "total": float(weights + activations)}


def random_head_sets(layout: HeadLayout, size: int, draws: int, *, seed: int) -> list[list[tuple[int, int]]]:
    """``draws`` sets of ``size`` heads drawn uniformly without replacement: the control's distribution."""
    check_int("size", size, minimum=0, maximum=layout.total)
    rng = make_rng(seed, "entrainment", "random-heads", size)
    sets = []
    for _ in range(draws):
        flat = rng.choice(layout.total, size, replace=False)
        sets.append([(int(i) // layout.heads, int(i) % layout.heads) for i in sorted(flat)])
    return sets


def zero_head_weights(model, layer: int, head: int) -> None:
    """Zero head ``head``'s input columns of layer ``layer``'s W_O in place (GPT-2's Conv1D stores W_O transposed):
    the by-hand version of a mask that turns the head off."""
    projection = output_projections(model)[layer]
    width = head_layout(model).head_dim
    cols = slice(head * width, (head + 1) * width)
    with torch.no_grad():
        if hasattr(projection, "in_features"):
            projection.weight[:, cols] = 0
        else:
            projection.weight[cols, :] = 0


VALUE_PROJECTIONS: dict[str, str] = {
    ".self_attn.v_proj": "separate",  # Llama, Qwen2, Mistral, Gemma-2: V alone, key-value head after head
    ".attn.c_attn": "gpt2",  # GPT-2: one Conv1D, outputs [Q | K | V], each heads × width
    ".attention.query_key_value": "neox",  # GPT-NeoX: per head [q k v], head after head
    ".self_attn.qkv_proj": "phi3",  # Phi-3: [Q (heads) | K (kv heads) | V (kv heads)]
}
"""Where each layout keeps the V projection, and how its outputs are ordered."""


def key_value_heads(model) -> int:
    """How many key-value heads a layer has (fewer than query heads under grouped-query attention)."""
    config = model.config
    return int(getattr(config, "num_key_value_heads", None) or head_layout(model).heads)


def query_heads_of(model, kv_head: int) -> list[int]:
    """The query heads that read key-value head ``kv_head``: consecutive groups, as ``repeat_kv`` expands them."""
    group = head_layout(model).heads // key_value_heads(model)
    return list(range(kv_head * group, (kv_head + 1) * group))


def _value_rows(kind: str, layout: HeadLayout, kv_heads: int, kv_head: int) -> slice:
    width = layout.head_dim
    start = {
        "separate": kv_head * width,
        "gpt2": 2 * layout.heads * width + kv_head * width,
        "neox": kv_head * 3 * width + 2 * width,
        "phi3": (layout.heads + kv_heads + kv_head) * width,
    }[kind]
    return slice(start, start + width)


def zero_value_head(model, layer: int, kv_head: int) -> bool:
    """Zero the V projection's outputs (weights and bias) of key-value head ``kv_head`` in layer ``layer``, in
    place; ``False`` (nothing changed) for a layout not in :data:`VALUE_PROJECTIONS`. The head then attends to
    zero vectors, so its output z_h is 0: what the hook's mask does, found without the hook's slicing of W_O."""
    named = dict(model.named_modules())
    for ending, kind in VALUE_PROJECTIONS.items():
        found = [module for name, module in named.items() if name.endswith(ending)]
        if found:
            _zero_outputs(found[layer], _value_rows(kind, head_layout(model), key_value_heads(model), kv_head))
            return True
    return False


def _zero_outputs(projection: nn.Module, rows: slice) -> None:
    with torch.no_grad():
        if hasattr(projection, "in_features"):
            projection.weight[rows, :] = 0
        else:  # GPT-2's Conv1D: weight is (in, out)
            projection.weight[:, rows] = 0
        if projection.bias is not None:
            projection.bias[rows] = 0


@torch.no_grad()
def mask_parity_errors(model, input_ids: torch.Tensor, head: tuple[int, int] = (0, 0)) -> dict[str, float]:
    """How far the hook is from two by-hand ways of turning heads off, as max |Δ logit|, on copies of the model
    (the model itself is left unchanged):

    * ``"ones"``: a mask of ones against no hook;
    * ``"W_O"``: the mask zeroing ``head`` against that head's input columns of W_O zeroed by hand;
    * ``"V"``: the mask zeroing every query head of ``head``'s key-value group against that key-value head's V
      rows zeroed by hand (left out for a layout whose V projection :func:`zero_value_head` does not know).
    """
    import copy

    layout = head_layout(model)
    layer, query = head
    kv_head = query // (layout.heads // key_value_heads(model))
    input_ids = input_ids.to(_device(model))
    plain = model(input_ids=input_ids).logits
    with HeadMasker(model) as masker:
        masker.mask = torch.ones(layout.layers, layout.heads)
        ones = model(input_ids=input_ids).logits
        masker.mask = heads_off(layout, [head])
        hooked = model(input_ids=input_ids).logits
        masker.mask = heads_off(layout, [(layer, h) for h in query_heads_of(model, kv_head)])
        hooked_group = model(input_ids=input_ids).logits
    by_hand = copy.deepcopy(model)
    zero_head_weights(by_hand, layer, query)
    errors = {"ones": (ones - plain).abs().max(), "W_O": (hooked - by_hand(input_ids=input_ids).logits).abs().max()}
    by_hand = copy.deepcopy(model)
    if zero_value_head(by_hand, layer, kv_head):
        errors["V"] = (hooked_group - by_hand(input_ids=input_ids).logits).abs().max()
    return {name: float(e) for name, e in errors.items()}


PARAMETERS = {
    "MODEL": Model(),
    "SIZE_MODELS": ListOf(Model(), what="a non-empty list of zoo names, folders or hub ids"),
    "COPY_MODEL": Model(),
    "BATCH": Int(minimum=1),
}
"""The chapter's parameters besides ``SCALE`` and ``SEED`` (its notebook's ``parameters`` cell), declared once:
the notebook checks them with :func:`llmtheory.params.check_parameters`, the command line before it runs."""
