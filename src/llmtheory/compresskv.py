"""CompressKV: semantic-retrieval-head-guided KV-cache compression with error-aware layer budgets.

Lin, Wang, Kondrateva, Shi, Li, Zhang, *CompressKV: Semantic-Retrieval-Guided KV-Cache Compression for
Resource-Efficient Long-Context LLM Inference* (arXiv 2606.24467; code ``TUDa-HWAI/CompressKV``), and the baselines
it compares with, written here from their published descriptions (``kvpress`` is not installed and there is no
network where the book is built). Everything works on a real ``transformers`` causal LM with grouped-query attention
(GQA) and its ``DynamicCache``; the model's shapes are read from ``model.config``.

The protocol (one prompt of ``T + 1`` tokens):

1. **prefill** the first ``T`` tokens with eager attention (:func:`prefill`), keeping the attention of the last
   ``window`` queries (SnapKV, PyramidKV, CompressKV) and the column sums of all queries (H2O);
2. a method chooses, per layer ``l`` and per KV head, ``B_l`` positions to keep (:func:`select_positions`);
   :func:`compress_cache` builds a new ``DynamicCache`` holding only those keys and values;
3. the last prompt token and every answer token are decoded one at a time from the compressed cache at their
   *original* positions ``T, T + 1, ...`` (:func:`greedy_decode`), so every answer token depends on it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

WINDOW = 8
"""SnapKV's observation window ``w``: the last prompt queries, whose keys are always kept."""
POOL_KERNEL = 5
"""SnapKV's average-pooling kernel over positions."""
SINKS = 4
"""StreamingLLM's attention sinks (the first tokens)."""
PYRAMID_BETA = 20
"""PyramidKV's ratio between the largest and the smallest layer budget (KVCache-Factory's ``beta``)."""
METHODS = (
    "full",
    "streamingllm",
    "h2o",
    "snapkv",
    "pyramidkv",
    "srh-selection",
    "error-budgets",
    "compresskv",
)
"""Every method :func:`select_positions` knows; ``srh-selection`` and ``error-budgets`` are CompressKV's two
components alone (the ablation): SRH scoring with uniform budgets, and SnapKV scoring with error-aware budgets."""


@dataclass(frozen=True)
class Geometry:
    """The attention shapes of a model: ``layers`` decoder layers of ``heads`` query heads over ``kv_heads`` KV
    heads of width ``head_dim`` (query head ``h`` reads KV head ``h // (heads // kv_heads)``)."""

    layers: int
    heads: int
    kv_heads: int
    head_dim: int

    @property
    def group_size(self) -> int:
        return self.heads // self.kv_heads


def geometry(model) -> Geometry:
    """The :class:`Geometry` of ``model``, from its config."""
    config = model.config
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return Geometry(config.num_hidden_layers, heads, getattr(config, "num_key_value_heads", heads), head_dim)


# ----------------------------------------------------------------------------------------------------------------
# Prefill, cache surgery and decoding
# ----------------------------------------------------------------------------------------------------------------

RAGGED_ATTENTION = "compresskv_eager"
"""The attention implementation :func:`use_ragged_attention` registers: eager attention that accepts layers
holding different numbers of cached positions."""


def ragged_eager_attention(module, query, key, value, attention_mask, **kwargs):
    """Eager attention whose mask is fitted to this layer's key length.

    ``transformers`` builds one mask for all layers from layer 0's cache length; with per-layer budgets a layer
    may hold fewer or more keys. Every cached key is visible to the new queries, so the mask is cut (or padded with
    zeros, "visible") on the left, which keeps its causal part over the new tokens on the right.
    """
    from transformers.models.llama.modeling_llama import eager_attention_forward

    if attention_mask is not None:
        keys, columns = key.shape[-2], attention_mask.shape[-1]
        attention_mask = attention_mask[..., -keys:] if columns >= keys else F.pad(attention_mask, (keys - columns, 0))
    return eager_attention_forward(module, query, key, value, attention_mask, **kwargs)


def use_ragged_attention(model):
    """Switch ``model`` to :func:`ragged_eager_attention` (eager, so attention weights are returned) and return
    it. Needed by any method whose layers keep different budgets (PyramidKV, CompressKV)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface, eager_mask

    AttentionInterface.register(RAGGED_ATTENTION, ragged_eager_attention)
    if RAGGED_ATTENTION not in ALL_MASK_ATTENTION_FUNCTIONS:
        AttentionMaskInterface.register(RAGGED_ATTENTION, eager_mask)
    model.set_attn_implementation(RAGGED_ATTENTION)
    return model


@dataclass
class Prefill:
    """The full cache of a context of ``length`` tokens and the attention statistics the methods score with.

    ``window_attention[l, h, i, j]``: attention of query ``length - window + i`` to key ``j`` in layer ``l``, head
    ``h`` (the softmax over all ``length`` keys, causal inside the window: SnapKV's observation window).
    ``accumulated_attention[l, h, j]``: the attention key ``j`` received from all queries (H2O's score).
    ``next_token`` is the prompt's last token, decoded first at position ``length``.
    """

    cache: object
    window_attention: torch.Tensor
    accumulated_attention: torch.Tensor
    next_token: int
    length: int


@torch.no_grad()
def prefill(model, input_ids: Sequence[int], window: int = WINDOW) -> Prefill:
    """Run the prompt but its last token through ``model`` (eager attention) and keep what the methods need."""
    ids = torch.as_tensor(list(input_ids), dtype=torch.long, device=model.device)[None]
    if ids.shape[1] < window + 2:
        raise ValueError(f"a prompt of {ids.shape[1]} tokens is shorter than the window ({window}) plus two")
    out = model(input_ids=ids[:, :-1], use_cache=True, output_attentions=True)
    if out.attentions is None or out.attentions[0] is None:
        raise ValueError('attention weights are missing: load the model with attn_implementation="eager"')
    attentions = [a[0].float().cpu() for a in out.attentions]  # each (heads, T, T)
    return Prefill(
        cache=out.past_key_values,
        window_attention=torch.stack([a[:, -window:, :] for a in attentions]),
        accumulated_attention=torch.stack([a.sum(dim=1) for a in attentions]),
        next_token=int(ids[0, -1]),
        length=ids.shape[1] - 1,
    )


def compress_cache(cache, keep: Sequence[torch.Tensor]):
    """A new ``DynamicCache`` holding, in layer ``l`` and KV head ``g``, only positions ``keep[l][g]``.

    ``keep[l]`` has shape (kv_heads, B_l); the keys already carry their rotary positions, so nothing else changes.
    """
    from transformers import DynamicCache

    compressed = DynamicCache()
    for layer_index, (layer, positions) in enumerate(zip(cache.layers, keep, strict=True)):
        index = positions.to(layer.keys.device)[None, :, :, None]
        index = index.expand(layer.keys.shape[0], -1, -1, layer.keys.shape[-1])
        compressed.update(torch.gather(layer.keys, 2, index), torch.gather(layer.values, 2, index), layer_index)
    return compressed


def cache_bytes(cache) -> int:
    """Bytes of keys and values the cache holds."""
    return sum(t.numel() * t.element_size() for layer in cache.layers for t in (layer.keys, layer.values))


def cache_lengths(cache) -> list[int]:
    """Positions held per layer."""
    return [int(layer.keys.shape[2]) for layer in cache.layers]


@torch.no_grad()
def greedy_decode(model, cache, tokens: Sequence[int], position: int, max_new_tokens: int) -> list[int]:
    """Feed ``tokens`` (one forward pass) at positions ``position, position + 1, ...``, then greedily generate
    ``max_new_tokens`` tokens one at a time; returns the generated ids. ``cache`` grows in place.

    Step-by-step decoding with explicit positions: ``generate`` would re-index positions from the cache length,
    which is wrong for a compressed RoPE cache.
    """
    out = model(
        input_ids=torch.tensor([list(tokens)], device=model.device),
        past_key_values=cache,
        position_ids=torch.arange(position, position + len(tokens), device=model.device)[None],
        use_cache=True,
    )
    logits = out.logits[0, -1].float().cpu()
    position += len(tokens)
    generated: list[int] = []
    while len(generated) < max_new_tokens:
        token = int(logits.argmax())
        generated.append(token)
        if len(generated) == max_new_tokens:
            break
        logits = _step(model, cache, token, position)
        position += 1
    return generated


def _step(model, cache, token: int, position: int) -> torch.Tensor:
    out = model(
        input_ids=torch.tensor([[token]], device=model.device),
        past_key_values=cache,
        position_ids=torch.tensor([[position]], device=model.device),
        use_cache=True,
    )
    return out.logits[0, -1].float().cpu()


# ----------------------------------------------------------------------------------------------------------------
# Budgets
# ----------------------------------------------------------------------------------------------------------------


def round_budgets(raw: Sequence[float], total: int, floor: int, cap: int, importance: Sequence[float]) -> list[int]:
    """Integer budgets near ``raw`` with ``floor ≤ B_l ≤ cap`` summing exactly to ``total``.

    Round and clip, then fix the residual greedily by importance (CompressKV's rule): add one position at a time to
    the most important layer below its cap, or remove one from the least important layer above its floor.
    """
    layers = len(raw)
    if not floor * layers <= total <= cap * layers:
        raise ValueError(f"a total of {total} cannot be split over {layers} layers within [{floor}, {cap}]")
    budgets = [int(min(max(round(b), floor), cap)) for b in raw]
    order = sorted(range(layers), key=lambda i: (-importance[i], i))
    while sum(budgets) < total:
        budgets[next(i for i in order if budgets[i] < cap)] += 1
    while sum(budgets) > total:
        budgets[next(i for i in reversed(order) if budgets[i] > floor)] -= 1
    return budgets


def uniform_budgets(average: int, layers: int, length: int) -> list[int]:
    """Every layer keeps ``average`` positions (capped at the context length)."""
    return [min(average, length)] * layers


def pyramid_budgets(
    average: int, layers: int, length: int, window: int = WINDOW, beta: int = PYRAMID_BETA
) -> list[int]:
    """PyramidKV's budgets: the selected part decreases linearly from layer 0 to the last layer.

    As in KVCache-Factory: ``min = (B − w)/β``, ``max = 2(B − w) − min`` (``max`` capped at ``T − w``, ``min``
    then raised to keep the mean), layer ``l`` selects ``max − l·(max − min)/(L − 1)``, plus the window. Rounded
    so that the budgets sum to ``L·B``.
    """
    average = min(average, length)
    selectable = average - window
    low = selectable / beta
    high = 2 * selectable - low
    if high > length - window:
        high = length - window
        low = 2 * selectable - high
    step = (high - low) / max(layers - 1, 1)
    raw = [window + high - layer * step for layer in range(layers)]
    return round_budgets(raw, average * layers, window, length, importance=[-i for i in range(layers)])


def error_aware_budgets(
    average: int, layer_weights: Sequence[float], length: int, minimum: int = WINDOW, cap_ratio: float = 3.0
) -> list[int]:
    """CompressKV's layer budgets from normalised eviction errors ``w_l``:
    ``B_l = m + round(w_l (L·B − m·L))``, clipped to ``[m, 3B]`` (and to the context), residuals fixed greedily
    by ``w_l`` (:func:`round_budgets`). The paper's floor ``m = 32`` (for budgets of 128 and more) is scaled down
    to the window here by default, since our budgets are a few tokens to a few hundred.
    """
    layers = len(layer_weights)
    average = min(average, length)
    minimum = min(minimum, average)
    weights = np.asarray(layer_weights, dtype=float)
    weights = weights / weights.sum()
    total = average * layers
    raw = minimum + weights * (total - minimum * layers)
    cap = min(length, max(int(cap_ratio * average), average))
    return round_budgets(raw.tolist(), total, minimum, cap, importance=weights.tolist())


# ----------------------------------------------------------------------------------------------------------------
# Scores and selection
# ----------------------------------------------------------------------------------------------------------------


def snapkv_scores(window_attention: torch.Tensor, kernel: int = POOL_KERNEL) -> torch.Tensor:
    """SnapKV's vote: the attention the window's queries give each prefix position, summed over the window, then
    average-pooled over positions (kernel ``kernel``, stride 1, zero padding). Returns (..., heads, T − w)."""
    window = window_attention.shape[-2]
    votes = window_attention[..., : window_attention.shape[-1] - window].sum(dim=-2)
    flat = votes.reshape(-1, 1, votes.shape[-1])
    pooled = F.avg_pool1d(flat, kernel_size=kernel, stride=1, padding=kernel // 2, count_include_pad=True)
    return pooled.reshape(votes.shape)


def per_kv_head(scores: torch.Tensor, kv_heads: int) -> torch.Tensor:
    """Average query-head scores (heads, n) within each GQA group: (kv_heads, n)."""
    return scores.reshape(kv_heads, -1, scores.shape[-1]).mean(dim=1)


def top_positions(scores: torch.Tensor, budget: int, length: int, window: int = WINDOW) -> torch.Tensor:
    """The ``budget − w`` best-scored prefix positions of each row of ``scores`` (groups, T − w), plus the window's
    ``w`` positions, sorted: (groups, budget). Ties go to the earlier position."""
    groups = scores.shape[0]
    window_positions = torch.arange(length - window, length).expand(groups, -1)
    chosen = torch.topk(scores, budget - window, dim=-1, sorted=True).indices if budget > window else None
    kept = window_positions if chosen is None else torch.cat([chosen, window_positions], dim=-1)
    return kept.sort(dim=-1).values


def streaming_positions(budget: int, length: int, groups: int, window: int = WINDOW, sinks: int = SINKS):
    """StreamingLLM: the first ``sinks`` positions (attention sinks) and the most recent ``budget − sinks``
    (``sinks`` shrinks when the budget leaves no room beside the window)."""
    sinks = max(0, min(sinks, budget - window))
    kept = torch.cat([torch.arange(sinks), torch.arange(length - (budget - sinks), length)])
    return kept.expand(groups, -1).clone()


def all_positions(length: int, groups: int) -> torch.Tensor:
    return torch.arange(length).expand(groups, -1).clone()


@dataclass(frozen=True)
class Plan:
    """A method's choice: ``budgets[l]`` positions kept in layer ``l`` (every KV head), ``positions[l]`` of shape
    (kv_heads, budgets[l])."""

    method: str
    budgets: list[int]
    positions: list[torch.Tensor]

    def kv_fraction(self, length: int) -> float:
        """The share of the context's KV this plan keeps."""
        return sum(self.budgets) / (len(self.budgets) * length)


def layer_budgets(
    method: str, average: int, shape: Geometry, length: int, layer_weights: Sequence[float] | None = None
) -> list[int]:
    """The budgets per layer of ``method`` for an average budget ``average`` (sum ``L·average``); the whole
    context in every layer when ``average`` reaches it."""
    if method == "full" or average >= length:
        return uniform_budgets(length, shape.layers, length)
    if method == "pyramidkv":
        return pyramid_budgets(average, shape.layers, length)
    if method in ("compresskv", "error-budgets"):
        if layer_weights is None:
            raise ValueError(f"{method} needs layer_weights (from eviction_errors)")
        return error_aware_budgets(average, layer_weights, length)
    return uniform_budgets(average, shape.layers, length)


def select_positions(
    method: str,
    state: Prefill,
    average: int,
    shape: Geometry,
    *,
    semantic_heads: Sequence[Sequence[int]] | None = None,
    layer_weights: Sequence[float] | None = None,
    window: int = WINDOW,
) -> Plan:
    """The positions ``method`` keeps in each layer and KV head for an average budget of ``average`` tokens.

    * ``streamingllm``: sinks and the most recent tokens;
    * ``h2o``: the window and the heavy hitters of the accumulated attention (per KV head, KVCache-Factory's
      variant of H2O);
    * ``snapkv``: the window and the top pooled window votes, per KV head (scores averaged over its query heads);
    * ``pyramidkv``: SnapKV's selection with pyramidal layer budgets;
    * ``srh-selection``: the pooled window votes averaged over the layer's semantic retrieval heads
      ``semantic_heads[l]`` only, the same positions for every KV head of the layer (uniform budgets);
    * ``error-budgets``: SnapKV's selection with CompressKV's error-aware budgets (``layer_weights``);
    * ``compresskv``: both.
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {METHODS}")
    length = state.length
    average = max(min(average, length), window)
    budgets = layer_budgets(method, average, shape, length, layer_weights)
    positions = []
    for layer, budget in enumerate(budgets):
        if method == "full" or budget >= length:
            kept = all_positions(length, shape.kv_heads)
        elif method == "streamingllm":
            kept = streaming_positions(budget, length, shape.kv_heads, window)
        elif method == "h2o":
            heavy = per_kv_head(state.accumulated_attention[layer, :, : length - window], shape.kv_heads)
            kept = top_positions(heavy, budget, length, window)
        elif method in ("snapkv", "pyramidkv", "error-budgets"):
            votes = per_kv_head(snapkv_scores(state.window_attention[layer]), shape.kv_heads)
            kept = top_positions(votes, budget, length, window)
        else:  # srh-selection, compresskv
            if semantic_heads is None:
                raise ValueError(f"{method} needs semantic_heads (from retrieval_head_scores)")
            votes = snapkv_scores(state.window_attention[layer])[list(semantic_heads[layer])].mean(dim=0)
            kept = top_positions(votes[None], budget, length, window).expand(shape.kv_heads, -1).clone()
        positions.append(kept)
    return Plan(method, budgets, positions)


# ----------------------------------------------------------------------------------------------------------------
# Semantic and traditional retrieval heads
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeadScores:
    """Per (layer, head): ``semantic`` is the SRH score (mean attention mass on the needle span at steps that
    generate a needle token), ``traditional`` the copy-paste retrieval score; ``used`` examples passed the
    ROUGE-1 recall filter."""

    semantic: np.ndarray
    traditional: np.ndarray
    used: int


def rouge1_recall(generated: Sequence[int], reference: Sequence[int]) -> float:
    """ROUGE-1 recall: the share of the reference's tokens (with multiplicity) found in the generated ones."""
    pool = list(generated)
    hits = 0
    for token in reference:
        if token in pool:
            pool.remove(token)
            hits += 1
    return hits / max(len(reference), 1)


@torch.no_grad()
def head_scores_one(
    model, input_ids: Sequence[int], state: Prefill, needle: tuple[int, int], generated: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """SRH and traditional retrieval scores of one NIAH example (the paper's detection, one sample).

    The greedy answer ``generated`` is fed after the prompt ``input_ids`` (teacher forcing reproduces the greedy
    run); at each step whose generated token occurs in the needle span ``[start, end)``, every head adds the
    attention its query gives the whole span (semantic), and ``1/|needle|`` if its most attended position is a
    needle token equal to the generated token (traditional, copy-paste).
    """
    steps = len(generated)
    ids = torch.as_tensor(list(input_ids) + list(generated[:-1]), dtype=torch.long)
    cache = compress_cache(state.cache, _all_kept(state))
    positions = torch.arange(state.length, state.length + steps, device=model.device)[None]
    out = model(
        input_ids=ids[None, state.length :].to(model.device),
        past_key_values=cache,
        position_ids=positions,
        output_attentions=True,
    )
    rows = torch.stack([a[0].float().cpu() for a in out.attentions])  # (layers, heads, steps, T + steps)
    start, end = needle
    needle_ids = ids[start:end].tolist()
    semantic = torch.zeros(rows.shape[:2])
    traditional = torch.zeros(rows.shape[:2])
    for step, token in enumerate(generated):
        if token not in needle_ids:
            continue
        attention = rows[:, :, step, :]
        semantic += attention[..., start:end].sum(-1)
        top = attention.argmax(-1)
        traditional += ((top >= start) & (top < end) & (ids[top] == token)).float() / (end - start)
    return semantic.numpy(), traditional.numpy()


def needle_span(tokenizer, context_words: Sequence[str], start: int, length: int) -> tuple[int, int]:
    """Token positions ``[start, end)`` of the needle that starts at word ``start`` of the context (counting the
    special tokens the tokenizer adds in front)."""
    before = len(tokenizer(" ".join(context_words[:start]))["input_ids"]) if start else _prefix_tokens(tokenizer)
    through = len(tokenizer(" ".join(context_words[: start + length]))["input_ids"])
    return before, through


def _prefix_tokens(tokenizer) -> int:
    return len(tokenizer("")["input_ids"])


def retrieval_head_scores(model, items, states, *, recall_threshold: float = 0.5) -> HeadScores:
    """The paper's head detection over NIAH examples (:class:`NeedleItem` and their :class:`Prefill`): greedy
    answers with the full cache; examples whose answer has ROUGE-1 recall above ``recall_threshold`` against the
    needle's key and value are scored with :func:`head_scores_one` and averaged."""
    shape = geometry(model)
    semantic = np.zeros((shape.layers, shape.heads))
    traditional = np.zeros_like(semantic)
    used = 0
    for item, state in zip(items, states, strict=True):
        cache = compress_cache(state.cache, _all_kept(state))
        generated = greedy_decode(model, cache, [state.next_token], state.length, len(item.expected))
        if rouge1_recall(generated, item.answer) <= recall_threshold:
            continue
        s, t = head_scores_one(model, item.prompt, state, item.needle, generated)
        semantic += s
        traditional += t
        used += 1
    return HeadScores(semantic / max(used, 1), traditional / max(used, 1), used)


@torch.no_grad()
def answer_focus(model, item, state: Prefill, layer: int, head: int) -> int:
    """The position that ``(layer, head)`` attends to most at the step generating the last expected answer token
    (the value), with the answer teacher-forced after the prompt: where a retrieval head actually looks."""
    steps = len(item.expected)
    cache = compress_cache(state.cache, _all_kept(state))
    tokens = torch.tensor([[state.next_token, *item.expected[:-1]]], device=model.device)
    positions = torch.arange(state.length, state.length + steps, device=model.device)[None]
    out = model(input_ids=tokens, past_key_values=cache, position_ids=positions, output_attentions=True)
    return int(out.attentions[layer][0, head, -1].argmax())


def top_heads_per_layer(scores: np.ndarray, k: int) -> list[list[int]]:
    """The ``k`` best heads of each layer (the paper ranks heads within each layer), best first."""
    return [[int(h) for h in np.argsort(-row, kind="stable")[:k]] for row in scores]


def top_heads_overall(scores: np.ndarray, k: int) -> list[tuple[int, int]]:
    """The ``k`` best (layer, head) pairs over the whole model (for the masking experiment); only heads with a
    positive score count, so fewer than ``k`` come back when fewer heads ever scored."""
    flat = [int(i) for i in np.argsort(-scores.ravel(), kind="stable")[:k] if scores.ravel()[i] > 0]
    return [(i // scores.shape[1], i % scores.shape[1]) for i in flat]


@contextlib.contextmanager
def masked_heads(model, heads: Sequence[tuple[int, int]]):
    """Zero the outputs of the given (layer, query head) pairs before the output projection, for the duration of
    the ``with`` block (the head-masking experiment)."""
    shape = geometry(model)
    by_layer: dict[int, list[int]] = {}
    for layer, head in heads:
        by_layer.setdefault(layer, []).append(head)

    def hook_for(layer_heads):
        def zero_heads(module, args):
            hidden = args[0].clone()
            for head in layer_heads:
                hidden[..., head * shape.head_dim : (head + 1) * shape.head_dim] = 0
            return (hidden, *args[1:])

        return zero_heads

    handles = [
        model.model.layers[layer].self_attn.o_proj.register_forward_pre_hook(hook_for(layer_heads))
        for layer, layer_heads in by_layer.items()
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


# ----------------------------------------------------------------------------------------------------------------
# Error-aware layer budgets: offline eviction errors
# ----------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def attention_outputs(model, cache, tokens: Sequence[int], position: int) -> torch.Tensor:
    """Every layer's attention output (after ``o_proj``) for ``tokens`` fed after ``cache`` at their original
    positions: (layers, len(tokens), hidden). ``cache`` grows in place."""
    captured: list[torch.Tensor] = []
    handles = [
        layer.self_attn.register_forward_hook(lambda module, args, output: captured.append(output[0][0]))
        for layer in model.model.layers
    ]
    try:
        positions = torch.arange(position, position + len(tokens), device=model.device)[None]
        tokens = torch.tensor([list(tokens)], device=model.device)
        model(input_ids=tokens, past_key_values=cache, position_ids=positions, use_cache=True)
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack(captured).float().cpu()


def eviction_errors(model, state: Prefill, plan: Plan, tokens: Sequence[int], eps: float = 1e-6) -> np.ndarray:
    """CompressKV's offline layer error for one sample: ``E_l = Σ_t ‖o_t^comp − o_t^full‖ / (‖o_t^full‖ + ε)``,
    with ``o`` layer ``l``'s attention output after ``o_proj`` while decoding ``tokens`` from the full cache and
    from the cache compressed by ``plan`` (all layers compressed at once)."""
    full = attention_outputs(model, compress_cache(state.cache, _all_kept(state)), tokens, state.length)
    compressed = attention_outputs(model, compress_cache(state.cache, plan.positions), tokens, state.length)
    return ((compressed - full).norm(dim=-1) / (full.norm(dim=-1) + eps)).sum(dim=-1).numpy()


def _all_kept(state: Prefill) -> list[torch.Tensor]:
    return [all_positions(state.length, layer.keys.shape[1]) for layer in state.cache.layers]


def layer_weights_from_errors(errors: np.ndarray) -> np.ndarray:
    """Sum the per-sample errors (samples, layers) and L1-normalise: the layer weights ``w_l`` (one dataset)."""
    total = np.asarray(errors, dtype=float).sum(axis=0)
    return total / total.sum()


# ----------------------------------------------------------------------------------------------------------------
# Evaluation
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One decoded answer: the generated ids, whether they match the expected ids, and the KV held."""

    generated: list[int]
    correct: bool
    kv_bytes: int
    kv_fraction: float


def answer_from_plan(model, state: Prefill, plan: Plan, expected: Sequence[int]) -> Answer:
    """Decode ``len(expected)`` tokens greedily from the cache compressed by ``plan``; exact match with
    ``expected``."""
    cache = compress_cache(state.cache, plan.positions)
    held = cache_bytes(cache)
    generated = greedy_decode(model, cache, [state.next_token], state.length, len(expected))
    return Answer(
        generated=generated,
        correct=generated == list(expected),
        kv_bytes=held,
        kv_fraction=plan.kv_fraction(state.length),
    )


def answer_questions(
    model, state: Prefill, plan: Plan, first_expected: Sequence[int], followups: Sequence[tuple[list[int], list[int]]]
) -> list[bool]:
    """Several questions from ONE compressed cache (query-agnostic for all but the first): decode the first
    answer, then for each ``(question_ids, expected_ids)`` feed the question turn and decode its answer. The
    model's own answers stay in the cache. Returns exact match per question."""
    cache = compress_cache(state.cache, plan.positions)
    position = state.length
    outcomes = []
    feed = [state.next_token]
    for question, expected in [([], list(first_expected)), *followups]:
        tokens = feed + list(question)
        generated = greedy_decode(model, cache, tokens, position, len(expected))
        outcomes.append(generated == list(expected))
        position += len(tokens) + len(generated) - 1
        feed = [generated[-1]]
    return outcomes


def decode_timing(model, state: Prefill, plan: Plan, n_tokens: int, repeats: int = 3) -> tuple[float, float]:
    """Median wall and CPU seconds per decoded token from the cache compressed by ``plan`` (``n_tokens`` greedy
    tokens, ``repeats`` runs)."""
    walls, cpus = [], []
    for _ in range(repeats):
        cache = compress_cache(state.cache, plan.positions)
        wall, cpu = time.perf_counter(), time.process_time()
        greedy_decode(model, cache, [state.next_token], state.length, n_tokens)
        walls.append((time.perf_counter() - wall) / n_tokens)
        cpus.append((time.process_time() - cpu) / n_tokens)
    return float(np.median(walls)), float(np.median(cpus))


# ----------------------------------------------------------------------------------------------------------------
# The chapter's experiments on toy-world haystacks
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NeedleItem:
    """One NIAH prompt as token ids: the expected answer ids (``Sure , <key> <value>``), the key and value alone
    (``answer``, for the ROUGE filter), the needle's depth and token span, and follow-up questions
    ``(question turn ids, expected answer ids)`` about other needles."""

    prompt: list[int]
    expected: list[int]
    answer: list[int]
    depth: float
    needle: tuple[int, int]
    followups: list[tuple[list[int], list[int]]]
    stack: object


def needle_items(
    world,
    tokenizer,
    rng: np.random.Generator,
    *,
    n: int,
    n_words: int,
    depth: float,
    n_distractors: int,
    n_followups: int = 0,
) -> list[NeedleItem]:
    """``n`` haystacks (:func:`llmtheory.toyworld.haystack`) with the needle at ``depth``, as token ids; with
    ``n_followups``, each also asks about that many other needles of its context, one chat turn after another."""
    from . import toyworld as tw

    items = []
    for _ in range(n):
        stack = tw.haystack(world, rng, n_words=n_words, depth=depth, n_distractors=n_distractors)
        words = stack.context.split()
        others = sorted(set(words) & set(world.haystack_keys) - {stack.key})
        followups = []
        for key in [str(k) for k in rng.choice(others, size=min(n_followups, len(others)), replace=False)]:
            start = words.index(key)
            value = " ".join(words[start + 1 : words.index(".", start)])
            turn = f". {tw.EOS} {tw.USER} {tw.NEEDLE_QUESTION.format(key=key)} {tw.ASSISTANT}"
            followups.append((_ids(tokenizer, turn), _ids(tokenizer, f"{tw.PROBE_POSITIVE} , {key} {value}")))
        items.append(
            NeedleItem(
                prompt=tokenizer(stack.prompt)["input_ids"],
                expected=_ids(tokenizer, f"{tw.PROBE_POSITIVE} , {stack.key} {stack.answer}"),
                answer=_ids(tokenizer, f"{stack.key} {stack.answer}"),
                depth=stack.depth,
                needle=needle_span(tokenizer, words, stack.needle_start, stack.needle_length),
                followups=followups,
                stack=stack,
            )
        )
    return items


def _ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def budget_tokens(fraction: float, length: int, window: int = WINDOW) -> int:
    """The average per-layer budget for a share ``fraction`` of a context of ``length`` tokens (at least the
    window plus two tokens, at most the context)."""
    return int(min(length, max(window + 2, round(fraction * length))))


def calibrate_layer_weights(model, items, states, semantic_heads, fraction: float) -> np.ndarray:
    """CompressKV's offline step for one budget: eviction errors (:func:`eviction_errors`) of SRH-selected caches
    with uniform budgets, while decoding each calibration item's answer, summed and L1-normalised."""
    shape = geometry(model)
    errors = []
    for item, state in zip(items, states, strict=True):
        average = budget_tokens(fraction, state.length)
        plan = select_positions("srh-selection", state, average, shape, semantic_heads=semantic_heads)
        errors.append(eviction_errors(model, state, plan, [state.next_token, *item.expected[:-1]]))
    return layer_weights_from_errors(np.stack(errors))


def accuracy_sweep(model, items, methods, fractions, semantic_heads, layer_weights, progress=None):
    """Exact match of every method at every budget on every item (one prefill per item, one compressed cache per
    method and budget; ``full`` only at 100%). ``layer_weights[fraction]`` are the calibrated weights. Returns a
    list of row dicts."""
    shape = geometry(model)
    rows = []
    for index, item in enumerate(progress(items) if progress else items):
        state = prefill(model, item.prompt)
        for fraction in fractions:
            average = budget_tokens(fraction, state.length)
            for method in methods:
                if method == "full" and fraction < 1:
                    continue  # the full cache does not depend on the budget: run it once, at 100%
                plan = select_positions(
                    method,
                    state,
                    average,
                    shape,
                    semantic_heads=semantic_heads,
                    layer_weights=layer_weights.get(fraction),
                )
                result = answer_from_plan(model, state, plan, item.expected)
                rows.append(
                    dict(
                        item=index,
                        depth=item.depth,
                        method=method,
                        budget=fraction,
                        tokens=average,
                        kv_fraction=result.kv_fraction,
                        correct=result.correct,
                        kv_bytes=result.kv_bytes,
                    )
                )
    return rows


def multi_question_sweep(model, items, methods, fractions, semantic_heads, layer_weights, progress=None):
    """Several questions about different needles from ONE compressed cache per item (:func:`answer_questions`).
    Returns rows with ``question`` 0 for the question in the observation window, 1, 2, ... for the later ones;
    ``full`` runs at 100% only, the other methods below 100%."""
    shape = geometry(model)
    rows = []
    for index, item in enumerate(progress(items) if progress else items):
        state = prefill(model, item.prompt)
        for fraction in fractions:
            average = budget_tokens(fraction, state.length)
            for method in methods:
                if fraction >= 1 and method != "full" or method == "full" and fraction < 1:
                    continue  # at 100% every method is the full cache (checked in the NIAH sweep): run it once
                plan = select_positions(
                    method,
                    state,
                    average,
                    shape,
                    semantic_heads=semantic_heads,
                    layer_weights=layer_weights.get(fraction),
                )
                outcomes = answer_questions(model, state, plan, item.expected, item.followups)
                rows += [
                    dict(item=index, method=method, budget=fraction, question=q, correct=ok)
                    for q, ok in enumerate(outcomes)
                ]
    return rows


@torch.no_grad()
def full_cache_correct(model, item: NeedleItem) -> bool:
    """Greedy exact match with the full cache, by teacher forcing: the argmax after the prompt and after each
    expected token is the next expected token (one forward pass; the same verdict as greedy decoding)."""
    ids = torch.tensor([item.prompt + item.expected[:-1]], device=model.device)
    predicted = model(input_ids=ids).logits[0, -len(item.expected) :].argmax(-1).cpu()
    return predicted.tolist() == list(item.expected)


def masking_accuracy(model, items, heads, attention: str = "sdpa") -> float:
    """NIAH accuracy (full cache) with the given (layer, head) pairs masked, computed with the ``attention``
    implementation (no attention weights are needed here; SDPA is several times faster than eager on CPU)."""
    previous = model.config._attn_implementation
    model.set_attn_implementation(attention)
    try:
        with masked_heads(model, heads):
            return float(np.mean([full_cache_correct(model, item) for item in items]))
    finally:
        model.set_attn_implementation(previous)


def masking_experiment(model, items, scores: HeadScores, counts: Sequence[int], seed: int, draws: int = 3):
    """The paper's masking experiment: NIAH accuracy (full cache) with the top ``count`` SRHs, the top ``count``
    traditional retrieval heads, or ``count`` random heads (mean of ``draws`` seeded draws) masked. Returns rows
    with the accuracy, its drop from the unmasked model, and how many heads were masked (only heads with a
    positive score count as top heads)."""
    from .seeding import make_rng

    shape = geometry(model)
    everyone = [(layer, head) for layer in range(shape.layers) for head in range(shape.heads)]
    baseline = masking_accuracy(model, items, [])
    rows = []
    for count in counts:
        picks = [make_rng(seed, "random heads", count, d).permutation(len(everyone))[:count] for d in range(draws)]
        random_accuracy = np.mean([masking_accuracy(model, items, [everyone[i] for i in p]) for p in picks])
        semantic = top_heads_overall(scores.semantic, count)
        traditional = top_heads_overall(scores.traditional, count)
        for kind, accuracy, masked in (
            ("SRHs", masking_accuracy(model, items, semantic), len(semantic)),
            ("retrieval heads", masking_accuracy(model, items, traditional), len(traditional)),
            ("random heads", random_accuracy, count),
        ):
            rows.append(
                dict(heads=count, kind=kind, masked=masked, accuracy=float(accuracy), drop=float(baseline - accuracy))
            )
    return rows
