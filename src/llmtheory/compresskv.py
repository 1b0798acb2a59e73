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

The chapter's experiment (the toy world's prompts, every method over the budgets, head masking, timings, the
statistics behind the claims) is in :mod:`llmtheory.compresskv_experiment`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .params import Int, Text

WINDOW = 8
"""SnapKV's observation window ``w``: the last prompt queries, whose keys are always kept."""
POOL_KERNEL = 5
"""SnapKV's average-pooling kernel over positions."""
SINKS = 4
"""StreamingLLM's attention sinks (the first tokens)."""
PYRAMID_BETA = 20
"""PyramidKV's ratio between the largest and the smallest layer budget (KVCache-Factory's ``beta``)."""
CAKE_GAMMA = 200.0
"""CAKE's weight of the attention variance in its eviction score (its code's default)."""
CAKE_TAU = (1.0, 1.0)
"""CAKE's exponents ``1/τ₁, 1/τ₂`` of dispersion and shift; its authors tune them per model and budget, we use 1."""
ADAKV_FLOOR = 0.2
"""AdaKV's safeguard ``α``: every KV head selects at least ``α`` times the layer's mean selectable budget (its
code's default, ``floor_alpha``)."""
METHODS = (
    "full",
    "streamingllm",
    "h2o",
    "snapkv",
    "pyramidkv",
    "adakv",
    "cake",
    "srh-selection",
    "random-heads",
    "error-budgets",
    "compresskv",
    "random-compresskv",
)
"""Every method :func:`select_positions` knows; ``srh-selection`` and ``error-budgets`` are CompressKV's two
components alone (the ablation): SRH scoring with uniform budgets, and SnapKV scoring with error-aware budgets;
``random-heads`` and ``random-compresskv`` are the controls, ``srh-selection`` and ``compresskv`` with randomly
drawn heads in place of the SRHs."""


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
STATS_ATTENTION = "compresskv_prefill"
"""The attention implementation :func:`prefill` runs under: it keeps the window's rows and the column sums only."""
CALIBRATION_ATTENTION = "compresskv_calibration"
"""The attention implementation :func:`eviction_errors` runs under: full-cache output plus each layer's
compressed output from the same inputs."""
PADDED_ATTENTION = "compresskv_padded"
"""The attention implementation batched decoding (:func:`answers_from_plans`) runs under: several compressed copies
of one prompt's cache side by side, each row's padding masked."""
PREFILL_CHUNK = 256
"""Queries per block when :func:`prefill` computes attention: memory ``heads × 256 × T`` instead of ``heads × T²``."""


def attention_rows(query, key, attention_mask, first: int, scaling: float, softcap: float | None = None):
    """Softmax attention of ``query`` (batch, heads, n, d) over ``key`` (batch, heads, K, d), the queries being
    rows ``first, first + 1, ...`` of the layer's mask: eager attention's weights (with Gemma 2's logit soft-capping
    when ``softcap`` is set). A missing mask means causal, the queries being the last ``n`` positions."""
    scores = torch.matmul(query, key.transpose(2, 3)) * scaling
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    n, keys = query.shape[-2], key.shape[-2]
    if attention_mask is None:
        rows = torch.arange(keys - n, keys, device=query.device)[:, None]
        scores = scores.masked_fill(torch.arange(keys, device=query.device)[None] > rows, float("-inf"))
    else:
        mask = _fit_mask(attention_mask[..., first : first + n, :], keys)
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    return F.softmax(scores, dim=-1, dtype=torch.float32).to(query.dtype)


def _fit_mask(mask: torch.Tensor, keys: int) -> torch.Tensor:
    """``mask``'s last ``keys`` columns (zero-padded, "visible", on the left when it has fewer), as
    :func:`attention_rows` aligns it with the keys."""
    return mask[..., -keys:] if mask.shape[-1] >= keys else F.pad(mask, (keys - mask.shape[-1], 0))


def _expand_kv(query, key, value):
    groups = query.shape[1] // key.shape[1]
    return key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)


def _scaling(module, scaling):
    return module.scaling if scaling is None else scaling


def ragged_eager_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Eager attention whose mask is fitted to this layer's key length.

    ``transformers`` builds one mask for all layers from layer 0's cache length; with per-layer budgets a layer
    may hold fewer or more keys. Every cached key is visible to the new queries, so the mask is cut (or padded with
    zeros, "visible") on the left, which keeps its causal part over the new tokens on the right. Returns the output
    (batch, n, heads, d) and the weights, like ``transformers``' eager attention.
    """
    key, value = _expand_kv(query, key, value)
    weights = attention_rows(query, key, attention_mask, 0, _scaling(module, scaling), kwargs.get("softcap"))
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


def padded_eager_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Eager attention over a batch of differently compressed caches of one prompt (:func:`stack_plans`): row ``r``
    sees in KV head ``g`` the slots its plan keeps there (``valid[l][r, g]``, the recorder's) and, causally, the
    tokens fed since; never its padding. ``transformers``' own mask (one for the whole batch) is not used."""
    valid = _ACTIVE[-1][module.layer_idx].to(key.device)  # (rows, kv_heads, slots)
    rows, heads, n = valid.shape[0], query.shape[1], query.shape[-2]
    fresh = key.shape[-2] - valid.shape[-1]
    causal = torch.arange(fresh, device=key.device)[None] <= torch.arange(fresh - n, fresh, device=key.device)[:, None]
    kept = valid.repeat_interleave(heads // valid.shape[1], dim=1)  # each query head sees its KV head's slots
    mask = torch.cat([kept[:, :, None, :].expand(-1, -1, n, -1), causal.expand(rows, heads, -1, -1)], dim=-1)
    key, value = _expand_kv(query, key, value)
    weights = attention_rows(query, key, mask, 0, _scaling(module, scaling), kwargs.get("softcap"))
    return torch.matmul(weights, value).transpose(1, 2).contiguous(), weights


def _register(name: str, function) -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface, eager_mask

    AttentionInterface.register(name, function)
    if name not in ALL_MASK_ATTENTION_FUNCTIONS:
        AttentionMaskInterface.register(name, eager_mask)


def use_ragged_attention(model):
    """Switch ``model`` to :func:`ragged_eager_attention` (eager, so attention weights are returned) and return
    it. Needed by any method whose layers keep different budgets (PyramidKV, CompressKV)."""
    _register(RAGGED_ATTENTION, ragged_eager_attention)
    model.set_attn_implementation(RAGGED_ATTENTION)
    return model


_ACTIVE: list = []
"""The recorder of the :func:`prefill` or :func:`eviction_errors` call in progress (innermost last)."""


@contextlib.contextmanager
def _attention_implementation(model, name: str, function, recorder):
    previous = model.config._attn_implementation
    _register(name, function)
    model.set_attn_implementation(name)
    _ACTIVE.append(recorder)
    try:
        yield recorder
    finally:
        _ACTIVE.pop()
        model.set_attn_implementation(previous)


@dataclass
class _WindowStats:
    window: int
    rows: dict
    columns: dict


def window_stats_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Attention for :func:`prefill`: blocks of :data:`PREFILL_CHUNK` queries against the keys they can see,
    recording the column sums of the weights (H2O) and the last ``window`` rows (SnapKV's observation window); the
    layer's H×T×T weights never exist at once. A block skips the keys after its last query (causally masked, their
    weights are exactly zero), which halves the work of a long prefill."""
    stats = _ACTIVE[-1]
    key, value = _expand_kv(query, key, value)
    scaling, softcap = _scaling(module, scaling), kwargs.get("softcap")
    n, past = query.shape[-2], key.shape[-2] - query.shape[-2]
    columns = torch.zeros(query.shape[1], key.shape[-2])
    outputs = []
    for first in range(0, n, PREFILL_CHUNK):
        block = query[:, :, first : first + PREFILL_CHUNK]
        visible = past + first + block.shape[-2]  # keys after the block's last query are masked
        mask = None if attention_mask is None else _fit_mask(attention_mask, key.shape[-2])[..., :visible]
        weights = attention_rows(block, key[:, :, :visible], mask, first, scaling, softcap)
        columns[:, :visible] += weights[0].float().sum(dim=-2).cpu()
        outputs.append(torch.matmul(weights, value[:, :, :visible]))
    window = min(stats.window, n)
    rows = attention_rows(query[:, :, n - window :], key, attention_mask, n - window, scaling, softcap)
    stats.rows[module.layer_idx] = rows[0].float().cpu()
    stats.columns[module.layer_idx] = columns
    return torch.cat(outputs, dim=-2).transpose(1, 2).contiguous(), None


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
    """Run the prompt but its last token through ``model`` and keep what the methods need: per layer, the
    window's attention rows and the column sums of all rows (:func:`window_stats_attention`, blocks of queries
    against all keys, so memory grows as ``heads × T`` per layer, not ``heads × T²``)."""
    ids = torch.as_tensor(list(input_ids), dtype=torch.long, device=model.device)[None]
    if ids.shape[1] < window + 2:
        raise ValueError(f"a prompt of {ids.shape[1]} tokens is shorter than the window ({window}) plus two")
    stats = _WindowStats(window, {}, {})
    with _attention_implementation(model, STATS_ATTENTION, window_stats_attention, stats):
        out = model(input_ids=ids[:, :-1], use_cache=True, logits_to_keep=1)  # no T × vocab logits
    layers = geometry(model).layers
    if sorted(stats.rows) != list(range(layers)):
        raise ValueError(f"the attention statistics of layers {sorted(stats.rows)} came back, not of all {layers}")
    return Prefill(
        cache=out.past_key_values,
        window_attention=torch.stack([stats.rows[layer] for layer in range(layers)]),
        accumulated_attention=torch.stack([stats.columns[layer] for layer in range(layers)]),
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
        # the B_l kept positions of each KV head, gathered along the sequence axis of keys and values
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


def stack_plans(cache, plans: Sequence) -> tuple[object, list[torch.Tensor]]:
    """Several compressed copies of one prompt's ``cache`` as one batch, row ``r`` holding in layer ``l`` the
    positions ``plans[r].positions[l]`` (each :class:`Plan`), padded to the layer's longest plan by repeating
    its last position. Returns the ``DynamicCache`` and, per layer, which slots each KV head keeps, (rows,
    kv_heads, slots): what :func:`padded_eager_attention` masks with (a head-wise plan's own padding included)."""
    from transformers import DynamicCache

    stacked, valid = DynamicCache(), []
    for layer_index, layer in enumerate(cache.layers):
        kept = [plan.positions[layer_index].to(layer.keys.device) for plan in plans]
        slots = max(k.shape[-1] for k in kept)
        index = torch.stack([torch.cat([k, k[:, -1:].expand(-1, slots - k.shape[-1])], dim=-1) for k in kept])
        gather = index[..., None].expand(-1, -1, -1, layer.keys.shape[-1])
        rows = len(plans)
        keys = torch.gather(layer.keys.expand(rows, -1, -1, -1), 2, gather)
        stacked.update(keys, torch.gather(layer.values.expand(rows, -1, -1, -1), 2, gather), layer_index)
        counts = torch.stack([plan.head_counts(layer_index) for plan in plans])  # (rows, kv_heads)
        valid.append(torch.arange(slots)[None, None] < counts[..., None])
    return stacked, valid


@contextlib.contextmanager
def _stacked_cache(model, state: Prefill, plans: Sequence):
    cache, valid = stack_plans(state.cache, plans)
    with _attention_implementation(model, PADDED_ATTENTION, padded_eager_attention, valid):
        yield cache


@torch.no_grad()
def greedy_decode(model, cache, tokens: Sequence[int], position: int, max_new_tokens: int) -> list[int]:
    """Feed ``tokens`` (one forward pass) at positions ``position, position + 1, ...``, then greedily generate
    ``max_new_tokens`` tokens one at a time; returns the generated ids. ``cache`` grows in place.

    Step-by-step decoding with explicit positions: ``generate`` would re-index positions from the cache length,
    which is wrong for a compressed RoPE cache.
    """
    return decode_rows(model, cache, [list(tokens)], position, max_new_tokens)[0]


@torch.no_grad()
def decode_rows(model, cache, rows: Sequence[Sequence[int]], position: int, max_new_tokens: int) -> list[list[int]]:
    """:func:`greedy_decode` of a batch: row ``r`` feeds ``rows[r]`` (all of one length) into row ``r`` of
    ``cache`` at the same positions, then every row generates ``max_new_tokens`` greedy tokens."""
    logits = _forward(model, cache, torch.tensor([list(r) for r in rows], device=model.device), position)
    position += len(rows[0])
    generated: list[torch.Tensor] = []
    while len(generated) < max_new_tokens:
        generated.append(logits.argmax(-1))
        if len(generated) == max_new_tokens:
            break
        logits = _forward(model, cache, generated[-1][:, None].to(model.device), position)
        position += 1
    return torch.stack(generated, dim=1).tolist() if generated else [[] for _ in rows]


def _forward(model, cache, ids: torch.Tensor, position: int) -> torch.Tensor:
    """The next-token logits of each row after feeding ``ids`` (rows, n) at positions ``position, ...``."""
    positions = torch.arange(position, position + ids.shape[1], device=model.device)
    out = model(input_ids=ids, past_key_values=cache, position_ids=positions.expand(ids.shape[0], -1), use_cache=True)
    return out.logits[:, -1].float().cpu()


def _step(model, cache, token: int, position: int) -> torch.Tensor:
    return _forward(model, cache, torch.tensor([[token]], device=model.device), position)[0]


# ----------------------------------------------------------------------------------------------------------------
# Budgets
# ----------------------------------------------------------------------------------------------------------------


def round_budgets(raw: Sequence[float], total: int, floor: int, cap: int, importance: Sequence[float]) -> list[int]:
    """Integer budgets near ``raw`` with ``floor ≤ B_l ≤ cap`` summing exactly to ``total`` (the rounding and
    clipping of eq. ``compresskv-eq-budget``).

    Round and clip, then fix the residual greedily by importance (CompressKV's rule): add one position at a time to
    the most important layer below its cap, or remove one from the least important layer above its floor.
    """
    layers = len(raw)
    if not floor * layers <= total <= cap * layers:
        raise ValueError(f"a total of {total} cannot be split over {layers} layers within [{floor}, {cap}]")
    # round, then clip to [m, cap]
    budgets = [int(min(max(round(b), floor), cap)) for b in raw]
    # the residual: one position at a time, to the most important layer (or from the least important)
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
    """Eq. ``compresskv-eq-budget``: CompressKV's layer budgets from normalised eviction errors ``w_l``:
    ``B_l = m + round(w_l (L·B − m·L))``, clipped to ``[m, 3B]`` (and to the context), residuals fixed greedily
    by ``w_l`` (:func:`round_budgets`). The paper's floor ``m = 32`` (for budgets of 128 and more) is scaled down
    to the window here by default, since our budgets are a few tokens to a few hundred.
    """
    layers = len(layer_weights)
    average = min(average, length)
    minimum = min(minimum, average)
    weights = np.asarray(layer_weights, dtype=float)
    # w_l = E_l / Σ E_l'
    weights = weights / weights.sum()
    total = average * layers
    # B_l = m + w_l (L·B̄ − m·L), before rounding
    raw = minimum + weights * (total - minimum * layers)
    # clipped to [m, 3B̄] (and to the context)
    cap = min(length, max(int(cap_ratio * average), average))
    return round_budgets(raw.tolist(), total, minimum, cap, importance=weights.tolist())


# ----------------------------------------------------------------------------------------------------------------
# Scores and selection
# ----------------------------------------------------------------------------------------------------------------


def snapkv_scores(window_attention: torch.Tensor, kernel: int = POOL_KERNEL) -> torch.Tensor:
    """Eq. ``compresskv-eq-snapkv``, SnapKV's vote: the attention the window's queries give each prefix position,
    summed over the window, then average-pooled over positions (kernel ``kernel``, stride 1, zero padding).
    Returns (..., heads, T − w)."""
    window = window_attention.shape[-2]
    # Σ_{i=T−w}^{T−1} a_{i,j} for j < T − w
    votes = window_attention[..., : window_attention.shape[-1] - window].sum(dim=-2)
    flat = votes.reshape(-1, 1, votes.shape[-1])
    # pool_5: average over the neighbouring positions
    pooled = F.avg_pool1d(flat, kernel_size=kernel, stride=1, padding=kernel // 2, count_include_pad=True)
    return pooled.reshape(votes.shape)


def per_kv_head(scores: torch.Tensor, kv_heads: int) -> torch.Tensor:
    """Average query-head scores (heads, n) within each GQA group: (kv_heads, n)."""
    return scores.reshape(kv_heads, -1, scores.shape[-1]).mean(dim=1)


def cake_preferences(window_attention: torch.Tensor, window: int = WINDOW, tau=CAKE_TAU) -> np.ndarray:
    """CAKE's layer preferences ``P_l = D_l^{1/τ₁} · V_l^{1/τ₂}`` (Qin et al., ICLR 2025): ``D_l`` the entropy of
    the window's attention to the prefix (spatial dispersion), ``V_l`` its variance over the window's queries
    summed over positions and heads (temporal shift). ``window_attention``: (layers, heads, w, T)."""
    prefix = window_attention[..., : window_attention.shape[-1] - window]
    dispersion = -(prefix * torch.log(prefix + 1e-10)).sum(dim=(1, 2, 3))
    shift = prefix.var(dim=-2).sum(dim=(1, 2))
    return (dispersion ** (1 / tau[0]) * shift ** (1 / tau[1])).numpy()


def adakv_head_budgets(votes: torch.Tensor, selectable: int, floor: float = ADAKV_FLOOR) -> list[int]:
    """Eq. ``compresskv-eq-adakv``, AdaKV's budgets across the KV heads of one layer (Feng et al., 2024,
    Algorithm 1 with its safeguard, as in its code): the layer's ``G·(B − w)`` best votes among all ``G`` heads'
    ``votes`` (G, T − w) at once; head ``g`` wins ``n_g`` of them and selects ``B_g = α(B − w) + (1 − α) n_g``
    positions, rounded to sum to ``G·(B − w)`` (:func:`round_budgets`; its code rounds each head alone)."""
    heads, prefix = votes.shape
    total = heads * selectable
    # n_g: how many of the layer's top G·(B − w) votes are head g's
    winners = torch.topk(votes.reshape(-1), total).indices // prefix
    wins = torch.bincount(winners, minlength=heads).double()
    # B_g = α(B − w) + (1 − α) n_g
    raw = floor * selectable + (1 - floor) * wins
    return round_budgets(raw.tolist(), total, int(floor * selectable), prefix, importance=wins.tolist())


def headwise_positions(votes: torch.Tensor, head_budgets: Sequence[int], length: int, window: int = WINDOW):
    """Each KV head ``g``'s ``head_budgets[g]`` best-voted prefix positions plus the window, padded to the longest
    head by repeating its last position: (kv_heads, slots) and the kept count of each head, (kv_heads,)."""
    rows = [top_positions(votes[g : g + 1], b + window, length, window)[0] for g, b in enumerate(head_budgets)]
    slots = max(len(row) for row in rows)
    padded = torch.stack([torch.cat([row, row[-1:].expand(slots - len(row))]) for row in rows])
    return padded, torch.tensor([len(row) for row in rows])


def cake_budgets(average: int, preferences: Sequence[float], length: int, window: int = WINDOW) -> list[int]:
    """CAKE's budgets: the selectable total ``L·(B − w)`` split in proportion to the preferences, plus each
    layer's window, capped at the context (rounding residuals by preference, :func:`round_budgets`)."""
    layers = len(preferences)
    average = min(average, length)
    share = np.asarray(preferences, dtype=float) / np.sum(preferences)
    raw = window + share * (average - window) * layers
    return round_budgets(raw.tolist(), average * layers, window, length, importance=share.tolist())


def cake_scores(window_attention: torch.Tensor, gamma: float = CAKE_GAMMA, kernel: int = POOL_KERNEL) -> torch.Tensor:
    """CAKE's eviction indicator: the mean attention over the window's queries plus ``γ`` times its variance
    (tokens whose importance shifts over time), on the prefix, average-pooled. (heads, w, T) → (heads, T − w)."""
    window = window_attention.shape[-2]
    prefix = window_attention[..., : window_attention.shape[-1] - window]
    score = prefix.mean(dim=-2) + gamma * prefix.var(dim=-2)
    pooled = F.avg_pool1d(score[:, None], kernel_size=kernel, stride=1, padding=kernel // 2, count_include_pad=True)
    return pooled[:, 0]


def top_positions(scores: torch.Tensor, budget: int, length: int, window: int = WINDOW) -> torch.Tensor:
    """The ``budget − w`` best-scored prefix positions of each row of ``scores`` (groups, T − w), plus the window's
    ``w`` positions, sorted: (groups, budget). Ties go to the earlier position."""
    groups = scores.shape[0]
    window_positions = torch.arange(length - window, length).expand(groups, -1)
    # the top B_l − w votes, then the observation window itself
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
    """A method's choice: ``budgets[l]`` positions kept in layer ``l`` by each KV head (on average over them),
    ``positions[l]`` of shape (kv_heads, budgets[l]). When the KV heads of a layer keep different numbers
    (AdaKV), ``counts[l][g]`` is head ``g``'s, ``positions[l][g, :counts[l][g]]`` its positions, and the rest of
    the row pads by repeating the last: such a plan is decoded through :func:`stack_plans`, which masks it."""

    method: str
    budgets: list[int]
    positions: list[torch.Tensor]
    counts: list[torch.Tensor] | None = None

    def head_counts(self, layer: int) -> torch.Tensor:
        """Positions each KV head of ``layer`` keeps: (kv_heads,)."""
        if self.counts is not None:
            return self.counts[layer]
        heads, kept = self.positions[layer].shape
        return torch.full((heads,), kept)

    def kept_entries(self) -> int:
        """Key (or value) vectors the plan keeps, over all layers and KV heads."""
        return sum(int(self.head_counts(layer).sum()) for layer in range(len(self.positions)))

    def kv_fraction(self, length: int) -> float:
        """The share of the context's KV this plan keeps."""
        return sum(self.budgets) / (len(self.budgets) * length)


def layer_budgets(
    method: str,
    average: int,
    shape: Geometry,
    length: int,
    layer_weights: Sequence[float] | None = None,
    state: Prefill | None = None,
) -> list[int]:
    """The budgets per layer of ``method`` for an average budget ``average`` (sum ``L·average``); the whole
    context in every layer when ``average`` reaches it. CAKE reads its preferences from ``state``."""
    if method == "full" or average >= length:
        return uniform_budgets(length, shape.layers, length)
    if method == "pyramidkv":
        return pyramid_budgets(average, shape.layers, length)
    if method == "cake":
        return cake_budgets(average, cake_preferences(state.window_attention), length)
    if method in ("compresskv", "error-budgets", "random-compresskv"):
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
    random_heads: Sequence[Sequence[int]] | None = None,
    layer_weights: Sequence[float] | None = None,
    window: int = WINDOW,
) -> Plan:
    """The positions ``method`` keeps in each layer and KV head for an average budget of ``average`` tokens.

    * ``streamingllm``: sinks and the most recent tokens;
    * ``h2o``: the window and the heavy hitters of the accumulated attention (per KV head, KVCache-Factory's
      variant of H2O);
    * ``snapkv``: the window and the top pooled window votes, per KV head (scores averaged over its query heads);
    * ``pyramidkv``: SnapKV's selection with pyramidal layer budgets;
    * ``adakv``: SnapKV's votes with AdaKV's head-wise budgets inside each layer (:func:`adakv_head_budgets`);
    * ``cake``: CAKE's eviction indicator (:func:`cake_scores`) with its preference-proportional budgets;
    * ``srh-selection``: the pooled window votes averaged over the layer's semantic retrieval heads
      ``semantic_heads[l]`` only, the same positions for every KV head of the layer (uniform budgets);
    * ``random-heads``: the same with ``random_heads[l]`` in place of the SRHs (the control);
    * ``error-budgets``: SnapKV's selection with CompressKV's error-aware budgets (``layer_weights``);
    * ``compresskv``: SRH selection with error-aware budgets;
    * ``random-compresskv``: the same with ``random_heads[l]`` in place of the SRHs (the control of the claims).
    """
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not one of {METHODS}")
    length = state.length
    average = max(min(average, length), window)
    budgets = layer_budgets(method, average, shape, length, layer_weights, state)
    chosen_heads = {
        "srh-selection": semantic_heads,
        "compresskv": semantic_heads,
        "random-heads": random_heads,
        "random-compresskv": random_heads,
    }
    if method in chosen_heads and chosen_heads[method] is None:
        raise ValueError(f"{method} needs {'random_heads' if method.startswith('random') else 'semantic_heads'}")
    positions, counts = [], []
    # the positions each layer keeps within its budget B_l (eq. compresskv-eq-budget for the error-aware methods)
    for layer, budget in enumerate(budgets):
        count = None
        if method == "full" or budget >= length:
            kept = all_positions(length, shape.kv_heads)
        elif method == "adakv":
            votes = per_kv_head(snapkv_scores(state.window_attention[layer]), shape.kv_heads)
            head_budgets = adakv_head_budgets(votes, budget - window)
            kept, count = headwise_positions(votes, head_budgets, length, window)
        elif method == "streamingllm":
            kept = streaming_positions(budget, length, shape.kv_heads, window)
        elif method == "h2o":
            heavy = per_kv_head(state.accumulated_attention[layer, :, : length - window], shape.kv_heads)
            kept = top_positions(heavy, budget, length, window)
        elif method == "cake":
            kept = top_positions(
                per_kv_head(cake_scores(state.window_attention[layer]), shape.kv_heads), budget, length
            )
        elif method in ("snapkv", "pyramidkv", "error-budgets"):
            # v_j of eq. compresskv-eq-snapkv, averaged over each KV head's query heads
            votes = per_kv_head(snapkv_scores(state.window_attention[layer]), shape.kv_heads)
            kept = top_positions(votes, budget, length, window)
        else:  # srh-selection, random-heads, compresskv, random-compresskv
            # v_j averaged over the layer's semantic retrieval heads only (or the random control heads)
            votes = snapkv_scores(state.window_attention[layer])[list(chosen_heads[method][layer])].mean(dim=0)
            kept = top_positions(votes[None], budget, length, window).expand(shape.kv_heads, -1).clone()
        positions.append(kept)
        counts.append(count if count is not None else torch.full((shape.kv_heads,), kept.shape[-1]))
    headwise = any(len(set(count.tolist())) > 1 for count in counts)
    return Plan(method, budgets, positions, counts if headwise else None)


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
    """SRH and traditional retrieval scores of one NIAH example (the paper's detection, one sample): the inner sums
    of eqs. ``compresskv-eq-srh`` and ``compresskv-eq-retrieval``.

    The greedy answer ``generated`` is fed after the prompt ``input_ids`` (teacher forcing reproduces the greedy
    run); at each step whose generated token occurs in the needle span ``[start, end)``, every head adds the
    attention its query gives the whole span (semantic), and ``1/|needle|`` if its most attended position is a
    needle token equal to the generated token (traditional, copy-paste).
    """
    steps = len(generated)
    ids = torch.as_tensor(list(input_ids) + list(generated[:-1]), dtype=torch.long)
    cache = compress_cache(state.cache, _all_kept(state))
    # teacher-force the greedy answer on the full cache: the attention rows a^{(l,h)}_{t,·} of every answer step t
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
    # the steps t with y_t ∈ N
    for step, token in enumerate(generated):
        if token not in needle_ids:
            continue
        attention = rows[:, :, step, :]
        # s^SRH: Σ_{j∈N} a_{t,j}, the mass on the whole needle
        semantic += attention[..., start:end].sum(-1)
        # s^ret: 1/|N| when j*_t = argmax_j a_{t,j} is a needle token equal to y_t
        top = attention.argmax(-1)
        traditional += ((top >= start) & (top < end) & (ids[top] == token)).float() / (end - start)
    return semantic.numpy(), traditional.numpy()


def retrieval_head_scores(model, items, states, *, recall_threshold: float = 0.5) -> HeadScores:
    """The paper's head detection over NIAH examples (:class:`~llmtheory.compresskv_experiment.NeedleItem` and their
    :class:`Prefill`), eqs. ``compresskv-eq-srh`` and ``compresskv-eq-retrieval``: greedy answers with the full cache;
    examples whose answer has ROUGE-1 recall above ``recall_threshold`` against the needle's key and value (the set
    ``D``) are scored with :func:`head_scores_one` and averaged (the ``1/|D|``)."""
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


def top_heads_per_layer(scores: np.ndarray, k: int) -> list[list[int]]:
    """The ``k`` best heads of each layer (the paper ranks heads within each layer), best first."""
    return [[int(h) for h in np.argsort(-row, kind="stable")[:k]] for row in scores]


def top_heads_overall(scores: np.ndarray, k: int) -> list[tuple[int, int]]:
    """The ``k`` best (layer, head) pairs over the whole model, best first (ties: the earlier head). Always ``k``
    heads; whether the ranking really names them is for the caller to check (how many heads score above zero)."""
    flat = [int(i) for i in np.argsort(-scores.ravel(), kind="stable")[:k]]
    return [(i // scores.shape[1], i % scores.shape[1]) for i in flat]


# ----------------------------------------------------------------------------------------------------------------
# Error-aware layer budgets: offline eviction errors
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class _Calibration:
    keep: Sequence[torch.Tensor]
    context: int
    errors: dict


def calibration_attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
    """Attention for :func:`eviction_errors`: the full-cache output (returned, so it flows on to the next layer)
    and, from the same queries, the output over this layer's kept positions plus the new tokens; records each new
    token's relative error after ``o_proj``."""
    calibration = _ACTIVE[-1]
    full, _ = ragged_eager_attention(module, query, key, value, attention_mask, scaling, **kwargs)
    kept = calibration.keep[module.layer_idx].to(key.device)
    fresh = torch.arange(calibration.context, key.shape[-2], device=key.device).expand(kept.shape[0], -1)
    index = torch.cat([kept, fresh], dim=-1)  # (kv_heads, B_l + new tokens)
    gather = index[None, :, :, None].expand(key.shape[0], -1, -1, key.shape[-1])
    mask = attention_mask
    if mask is not None:  # each KV head's own columns, repeated over its query heads
        mask = mask[..., -key.shape[-2] :].expand(-1, key.shape[1], -1, -1)
        mask = torch.gather(mask, 3, index[None, :, None, :].expand(mask.shape[0], -1, mask.shape[2], -1))
        mask = mask.repeat_interleave(query.shape[1] // key.shape[1], dim=1)
    compressed, _ = ragged_eager_attention(
        module, query, torch.gather(key, 2, gather), torch.gather(value, 2, gather), mask, scaling, **kwargs
    )
    batch, n = query.shape[0], query.shape[-2]
    o_full = module.o_proj(full.reshape(batch, n, -1))[0].float()
    o_compressed = module.o_proj(compressed.reshape(batch, n, -1))[0].float()
    calibration.errors[module.layer_idx] = ((o_compressed - o_full).norm(dim=-1) / (o_full.norm(dim=-1) + 1e-6)).cpu()
    return full, None


@torch.no_grad()
def eviction_errors(model, state: Prefill, plan: Plan, tokens: Sequence[int]) -> np.ndarray:
    """CompressKV's offline layer error for one sample ({eq}`compresskv-eq-error`):
    ``E_l = Σ_t ‖o_t^comp − o_t^full‖ / (‖o_t^full‖ + ε)``, with ``o`` layer ``l``'s attention output after
    ``o_proj`` while ``tokens`` are fed after the prompt.

    As in the official calibration, each layer is measured in isolation: the model runs on the full cache, and
    at every layer the compressed output is computed from the *same* full-cache queries over the positions
    ``plan`` keeps in that layer, while the full-cache output flows on. A layer's error therefore does not depend
    on how the other layers are compressed."""
    cache = compress_cache(state.cache, _all_kept(state))
    calibration = _Calibration(plan.positions, state.length, {})
    with _attention_implementation(model, CALIBRATION_ATTENTION, calibration_attention, calibration):
        model(
            input_ids=torch.tensor([list(tokens)], device=model.device),
            past_key_values=cache,
            position_ids=torch.arange(state.length, state.length + len(tokens), device=model.device)[None],
            use_cache=True,
        )
    return np.array([float(calibration.errors[layer].sum()) for layer in range(len(plan.positions))])


def _all_kept(state: Prefill) -> list[torch.Tensor]:
    return [all_positions(state.length, layer.keys.shape[1]) for layer in state.cache.layers]


def layer_weights_from_errors(errors: np.ndarray) -> np.ndarray:
    """Sum the per-sample errors (samples, layers) and L1-normalise: the layer weights ``w_l`` of
    eq. ``compresskv-eq-error`` (one dataset)."""
    total = np.asarray(errors, dtype=float).sum(axis=0)
    return total / total.sum()


# ----------------------------------------------------------------------------------------------------------------
# Decoding from compressed caches, and NIAH scoring
# ----------------------------------------------------------------------------------------------------------------


def normalize_answer(text: str) -> str:
    """LongBench's answer normalisation (from SQuAD): lower case, no punctuation, no articles, single spaces."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(word for word in text.split() if word not in ("a", "an", "the"))


_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def contains_value(answer: str, value: str) -> bool:
    """LongBench-style NIAH scoring: the needle's value, normalised, occurs as a run of whole words in the
    normalised answer. The toy's exact match (``Sure , <key> <value>``) is one instance of it."""
    words, wanted = normalize_answer(answer).split(), normalize_answer(value).split()
    return bool(wanted) and any(words[i : i + len(wanted)] == wanted for i in range(len(words) - len(wanted) + 1))


@dataclass(frozen=True)
class Scorer:
    """How an answer is decoded and scored: at least ``min_new_tokens`` greedy tokens (a real model's answer is
    longer than the toy's ``Sure , <key> <value>``), decoded with ``tokenizer`` and scored by
    :func:`contains_value`."""

    tokenizer: object
    min_new_tokens: int = 0

    def new_tokens(self, item) -> int:
        return max(len(item.expected), self.min_new_tokens)

    def correct(self, item, generated: Sequence[int]) -> bool:
        return contains_value(self.tokenizer.decode(list(generated)), item.value)


@dataclass(frozen=True)
class Answer:
    """One decoded answer: the generated ids, whether they contain the needle's value (:class:`Scorer`), whether
    they are exactly the expected ids, and the KV held."""

    generated: list[int]
    correct: bool
    exact: bool
    kv_bytes: int
    kv_fraction: float


def answers_from_plans(model, state: Prefill, plans: Sequence, item, scorer: Scorer) -> list[Answer]:
    """Decode greedily from the cache each of ``plans`` compresses, all in one batch (:func:`stack_plans`: the same
    tokens as one plan at a time, with one forward pass per step for all), and score the answers to ``item``."""
    with _stacked_cache(model, state, plans) as cache:
        rows = decode_rows(model, cache, [[state.next_token]] * len(plans), state.length, scorer.new_tokens(item))
    element = state.cache.layers[0].keys.element_size() * state.cache.layers[0].keys.shape[-1]
    return [
        Answer(
            generated=generated,
            correct=scorer.correct(item, generated),
            exact=generated[: len(item.expected)] == list(item.expected),
            kv_bytes=2 * element * plan.kept_entries(),  # keys and values
            kv_fraction=plan.kv_fraction(state.length),
        )
        for plan, generated in zip(plans, rows, strict=True)
    ]


def answer_from_plan(model, state: Prefill, plan: Plan, item, scorer: Scorer) -> Answer:
    """Decode greedily from the cache compressed by ``plan`` and score the answer to ``item``."""
    return answers_from_plans(model, state, [plan], item, scorer)[0]


def answer_questions(
    model,
    state: Prefill,
    plans: Sequence,
    first_expected: Sequence[int],
    followups: Sequence[tuple[list[int], list[int]]],
) -> list[list[bool]]:
    """Several questions from ONE compressed cache per plan (query-agnostic for all but the first), all plans in
    one batch (:func:`stack_plans`): decode the first answer, then for each ``(question_ids, expected_ids)`` feed
    the question turn and decode its answer. The model's own answers stay in the cache. Returns, per plan, exact
    match per question."""
    outcomes: list[list[bool]] = [[] for _ in plans]
    with _stacked_cache(model, state, plans) as cache:
        position, feeds = state.length, [[state.next_token]] * len(plans)
        for question, expected in [([], list(first_expected)), *followups]:
            rows = [feed + list(question) for feed in feeds]
            generated = decode_rows(model, cache, rows, position, len(expected))
            for outcome, answer in zip(outcomes, generated, strict=True):
                outcome.append(answer == list(expected))
            position += len(rows[0]) + len(expected) - 1
            feeds = [[answer[-1]] for answer in generated]
    return outcomes


# ----------------------------------------------------------------------------------------------------------------
# Budgets as shares of the KV, and CompressKV's calibrated plans
# ----------------------------------------------------------------------------------------------------------------


def budget_tokens(fraction: float, length: int, window: int = WINDOW) -> int:
    """The average per-layer budget for a share ``fraction`` of a context of ``length`` tokens (at least the
    window plus two tokens, at most the context)."""
    return int(min(length, max(window + 2, round(fraction * length))))


@dataclass(frozen=True)
class Calibration:
    """What the offline steps found: ``semantic_heads[l]`` (the layer's top SRHs), ``random_heads`` (as many heads
    per layer drawn at random, the control: one draw ``random_heads[l]``, or several draws ``random_heads[d][l]``),
    and ``layer_weights[fraction]`` (error-aware weights per budget)."""

    semantic_heads: list[list[int]]
    random_heads: list[list[int]]
    layer_weights: dict

    def random_draw(self, draw: int) -> list[list[int]]:
        """The random head set of draw ``draw`` (cycling through the draws; a single draw serves every ``draw``)."""
        several = isinstance(self.random_heads[0][0], (list, tuple))
        return self.random_heads[draw % len(self.random_heads)] if several else self.random_heads

    def plan(self, method: str, state: Prefill, fraction: float, shape: Geometry, draw: int = 0) -> Plan:
        """``method``'s plan for ``state`` at a budget of ``fraction`` of its KV (random heads of draw ``draw``)."""
        return select_positions(
            method,
            state,
            budget_tokens(fraction, state.length),
            shape,
            semantic_heads=self.semantic_heads,
            random_heads=self.random_draw(draw),
            layer_weights=self.layer_weights.get(fraction),
        )


def calibrate_layer_weights(model, items, states, semantic_heads, fraction: float) -> np.ndarray:
    """CompressKV's offline step for one budget: each layer's isolated eviction error (:func:`eviction_errors`)
    with SRH-selected, uniformly budgeted caches, while each calibration item's answer is fed, summed over items
    and L1-normalised."""
    shape = geometry(model)
    errors = []
    for item, state in zip(items, states, strict=True):
        average = budget_tokens(fraction, state.length)
        plan = select_positions("srh-selection", state, average, shape, semantic_heads=semantic_heads)
        errors.append(eviction_errors(model, state, plan, [state.next_token, *item.expected[:-1]]))
    return layer_weights_from_errors(np.stack(errors))


# ----------------------------------------------------------------------------------------------------------------
# The chapter's parameters
# ----------------------------------------------------------------------------------------------------------------

PARAMETERS = {
    "MODEL": Text('a zoo name, a local folder, a Hugging Face GQA model id, or "" (the tier\'s zoo model)'),
    "N_WORDS": Int(0, 16_384),
    "MASK_WORDS": Int(0, 16_384),
    "N_DISTRACTORS": Int(0, 64),
    "SRH_PER_LAYER": Int(minimum=0),
    "DECODE_TOKENS": Int(0, 256),
}
"""The chapter's parameters besides ``SCALE`` and ``SEED`` (its notebook's ``parameters`` cell), declared once: the
notebook checks them with :func:`llmtheory.params.check_parameters`, the command line before it runs. ``MODEL = ""``
and the sizes 0 mean "by scale" (the notebook's validation cell resolves them)."""
