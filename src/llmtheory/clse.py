"""CLSE: cross-layer spectral evolution for visual token pruning (Chen et al., ECCV 2026), as its official code
``zjubinchen/CLSE`` computes it for LLaVA-1.5 (``LLaVA1.5/llava/model/language_model/tools.py`` and
``clse_model.py``).

For the visual tokens laid out on their ``H × W`` patch grid, at two layers (the language model's input ``X⁰`` and
the output of decoder layer 0, ``X¹``):

1. a 2-D FFT over the grid, **separately for each hidden channel**, centred (``fftshift``)
   (:func:`spectral_residual`, label ``clse-eq-fft``);
2. a Gaussian high-pass mask ``M = 1 − exp(−d² / (2 (r·c)²))`` with ``d`` the distance to the centre of the
   spectrum, ``c = min(H // 2, W // 2)`` and ``r = 0.1`` (:func:`high_pass_mask`, ``clse-eq-mask``);
3. inverse FFT, absolute value, mean over channels: one high-frequency residual ``S`` per token
   (``clse-eq-residual``);
4. the evolution intensity ``I = min(1, |S¹ − S⁰| / (S⁰ + mean(S⁰) + ε))`` (:func:`evolution_intensity`,
   ``clse-eq-intensity``) and the evolution factor ``σ(z(I) / τ)``, ``z`` the z-score over the image and ``τ = 0.1``
   (:func:`evolution_factor`, ``clse-eq-factor``), which ranks the tokens as ``I`` does up to float32 ties (CLSE
   alone, :func:`clse_scores`, ranks by ``I``);
5. **CLSE-Hybrid**, the score the released code uses: the factor times FastV's attention (the last token's row at
   layer ``K − 1``, head mean) (:func:`hybrid_scores`, ``clse-eq-hybrid``);
6. the top ``k`` tokens are kept from decoder index 1 on ("before layer 2", 1-indexed).

The released code prunes in **three stages** (:func:`staged_schedule`): at decoder layers 1, 11 and 21 of 32 it keeps
330, 210 and 62 of LLaVA's 576 tokens for the nominal budget 192 (ratios 1.72, 1.09, 0.32 of the budget); only the
first stage uses the spectral factor, the later two rank by attention alone. The book's chapter compares every
method pruning once, at ``K``, at the same budget, and runs the staged schedule beside them
(:func:`forward_staged`, ``clse_experiment.evaluate_staged``).

**PDrop** (PyramidDrop, Xing et al. 2024, one of the paper's baselines) runs on the same staged pass: the language
model is cut into four stages of equal depth and at the end of each the visual tokens left are ranked by the last
instruction token's attention (head mean) and a share ``λ`` of them dropped (official: layers 8, 16, 24 of 32,
``λ = 0.5``) (:func:`pdrop_layers`, :func:`pdrop_schedule`, :func:`pdrop_matched`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from . import vlm
from .params import Int, Model, ParameterError, Real, check_float, check_int
from .visual_pruning import Method, fastv_scores, rule_from_scores, top_k
from .vlm import DropContext, grid_shape

CUTOFF = 0.1
"""``r``: the Gaussian high-pass's width as a share of the grid's half-size (the official ``cutoff_ratio``)."""
TEMPERATURE = 0.1
"""``τ`` of the evolution factor's sigmoid."""
EPS = 1e-6
"""The official ``epsilon`` of the intensity and the z-score."""
REFERENCE_LAYER = 0
"""``L``: the hidden states entering decoder layer 0 (the input embeddings), compared with the pruning layer's."""
PRUNE_LAYER = 1
"""``K``: the official first pruning point, decoder index 1 (its states are the output of decoder layer 0)."""

OFFICIAL_LAYERS = 32
OFFICIAL_STAGES = (1, 11, 21)
"""Decoder indices of the official three-stage schedule (LLaVA-1.5-7B, 32 layers)."""
OFFICIAL_KEEP = {192: (330, 210, 62), 128: (220, 140, 41), 64: (110, 70, 20)}
"""Visual tokens kept at each stage for the nominal budgets of 576 (``clse_model.py``'s ``token_dict``)."""
STAGE_RATIOS = (1.72, 1.09, 0.32)
"""The official rule for any other budget: ``budget × ratio`` tokens at each stage."""


MEAN_REMOVAL = None
"""The ``cutoff`` of plain mean removal: the limit ``r → 0⁺`` of the mask, zero at the zero frequency and one
everywhere else, so the residual is each token's mean absolute deviation from the grid's mean token."""


def high_pass_mask(height: int, width: int, cutoff: float | None = CUTOFF) -> torch.Tensor:
    """``clse-eq-mask``: ``M[u, v] = 1 − exp(−d² / (2 (r·c)²))`` on the centred spectrum, ``d`` the distance of
    ``(u, v)`` to ``(H // 2, W // 2)``, ``c = min(H // 2, W // 2)``; ``cutoff = 0`` gives all ones (no filter, as in
    the official code); ``cutoff = None`` (:data:`MEAN_REMOVAL`) the limit ``r → 0⁺``: zero at the centre only."""
    centre_h, centre_w = height // 2, width // 2
    if cutoff is MEAN_REMOVAL:
        mask = torch.ones(height, width)
        mask[centre_h, centre_w] = 0.0
        return mask
    check_float("cutoff", cutoff, minimum=0.0)
    if cutoff == 0.0:
        return torch.ones(height, width)
    y, x = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    squared = ((y - centre_h) ** 2 + (x - centre_w) ** 2).float()
    # sigma = r · c: the filter's width scales with the grid, so it is fixed in relative frequency
    return 1 - torch.exp(-squared / (2 * (min(centre_h, centre_w) * cutoff) ** 2))


def spectral_residual(grid: torch.Tensor, cutoff: float | None = CUTOFF) -> torch.Tensor:
    """``clse-eq-fft`` and ``clse-eq-residual``: ``S = mean_c |F⁻¹(M ⊙ F(x_c))|`` per token.

    ``grid``: ``(batch, H, W, channels)`` hidden states of the visual tokens on their patch grid. Returns
    ``(batch, H·W)`` (row-major), in float32.
    """
    batch, height, width, _ = grid.shape
    channels_first = grid.permute(0, 3, 1, 2).float()  # (batch, C, H, W): one 2-D transform per channel
    # F(x_c), centred so that the zero frequency sits at (H // 2, W // 2)
    spectrum = torch.fft.fftshift(torch.fft.fft2(channels_first), dim=(-2, -1))
    filtered = spectrum * high_pass_mask(height, width, cutoff).to(grid.device)
    # F⁻¹(M ⊙ F(x_c)), its modulus, averaged over the channels
    residual = torch.fft.ifft2(torch.fft.ifftshift(filtered, dim=(-2, -1))).abs()
    return residual.mean(dim=1).reshape(batch, height * width)


def evolution_intensity(s_reference: torch.Tensor, s_layer: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """``clse-eq-intensity``: ``I = min(1, |S^K − S^L| / (mean(S^L) + S^L + ε))`` per token (mean over the image)."""
    change = (s_layer - s_reference).abs()
    return torch.clamp(change / (s_reference.mean(dim=-1, keepdim=True) + s_reference + eps), max=1.0)


def evolution_factor(intensity: torch.Tensor, temperature: float = TEMPERATURE, eps: float = EPS) -> torch.Tensor:
    """``clse-eq-factor``: ``σ((I − mean I) / ((std I + ε) τ))`` over the image tokens (unbiased std, as
    ``torch.std``)."""
    mean = intensity.mean(dim=-1, keepdim=True)
    std = intensity.std(dim=-1, keepdim=True) + eps
    return torch.sigmoid((intensity - mean) / std / temperature)


def visual_grid(context: DropContext, layer: int) -> torch.Tensor:
    """The hidden states entering decoder layer ``layer`` at the image positions, on the patch grid:
    ``(batch, H, W, hidden)``."""
    hidden = context.hidden[layer]
    positions = context.image_positions
    picked = hidden.gather(1, positions[..., None].expand(-1, -1, hidden.shape[-1]))
    rows, cols = grid_shape(positions.shape[1])
    return picked.reshape(hidden.shape[0], rows, cols, hidden.shape[-1])


def residuals(context: DropContext, cutoff: float = CUTOFF, reference: int = REFERENCE_LAYER) -> tuple:
    """``(S^L, S^K)``: the residuals at the reference layer and at the pruning layer of ``context``."""
    if context.layer <= reference:
        raise ParameterError(f"the pruning layer ({context.layer}) must come after the reference layer ({reference})")
    return spectral_residual(visual_grid(context, reference), cutoff), spectral_residual(
        visual_grid(context, context.layer), cutoff
    )


def clse_scores(cutoff: float = CUTOFF, reference: int = REFERENCE_LAYER) -> Callable[[DropContext], torch.Tensor]:
    """CLSE as the paper describes it: each visual token's evolution intensity ``I`` between the reference layer and
    the pruning layer. The official ``score_type="clse"`` ranks by the factor ``σ(z(I)/τ)`` instead, the same order
    except that in float32 the sigmoid rounds to exactly 1 for ``z(I) > 1.7``, tying the top tokens, which ``topk``
    then breaks by position. ``cutoff=0``: the no-high-pass ablation; ``cutoff=None``: plain mean removal."""

    def score(context: DropContext) -> torch.Tensor:
        return evolution_intensity(*residuals(context, cutoff, reference))

    return score


def clse_factor(cutoff: float = CUTOFF, reference: int = REFERENCE_LAYER) -> Callable[[DropContext], torch.Tensor]:
    """The evolution factor ``σ(z(I)/τ)`` of each visual token (``clse-eq-factor``)."""
    intensity = clse_scores(cutoff, reference)
    return lambda context: evolution_factor(intensity(context))


def single_layer_scores(cutoff: float = CUTOFF) -> Callable[[DropContext], torch.Tensor]:
    """The one-layer ablation: the high-frequency residual ``S^K`` at the pruning layer alone (no evolution)."""
    return lambda context: spectral_residual(visual_grid(context, context.layer), cutoff)


def hybrid_scores(cutoff: float = CUTOFF, reference: int = REFERENCE_LAYER) -> Callable[[DropContext], torch.Tensor]:
    """``clse-eq-hybrid`` (the official ``score_type="clse_attn"``): evolution factor × FastV's attention (the last
    token's row at layer ``K − 1``, mean over heads)."""
    factor = clse_factor(cutoff, reference)
    return lambda context: factor(context) * fastv_scores(context)


def shuffled_hybrid_scores(seed: int, cutoff: float = CUTOFF) -> Callable[[DropContext], torch.Tensor]:
    """The control of the hybrid: the same factor, its values permuted over each image's tokens (a seeded
    permutation per row), times FastV's attention. It gates attention as sharply but not by the spectrum."""
    factor = clse_factor(cutoff)

    def score(context: DropContext) -> torch.Tensor:
        values = factor(context)
        generator = torch.Generator().manual_seed(seed)
        order = torch.stack([torch.randperm(values.shape[1], generator=generator) for _ in range(len(values))])
        return values.gather(1, order.to(values.device)) * fastv_scores(context)

    return score


def methods(seed: int = 0, cutoff: float = CUTOFF) -> list[Method]:
    """CLSE, CLSE-Hybrid, the ablations (no high-pass, plain mean removal instead of the high-pass, one layer) and
    the hybrid's shuffled-factor control, as methods of :func:`llmtheory.visual_pruning.evaluate` (each one pass,
    scores computed inside it)."""
    rankings = {
        "CLSE": (clse_scores(cutoff), False),
        "CLSE (no high-pass)": (clse_scores(0.0), False),
        MEAN_REMOVED: (clse_scores(MEAN_REMOVAL), False),
        "one layer (S^K)": (single_layer_scores(cutoff), False),
        "CLSE-Hybrid": (hybrid_scores(cutoff), True),
        "Hybrid (shuffled factor)": (shuffled_hybrid_scores(seed, cutoff), True),
    }
    return [Method(name, _rule_of(score), attention=attention) for name, (score, attention) in rankings.items()]


MEAN_REMOVED = "CLSE (mean removal)"
"""The method that replaces the high-pass by plain mean removal (:data:`MEAN_REMOVAL`): on a 6 × 6 grid the same
ranking as CLSE up to float error, on a finer grid the test of what the Gaussian adds."""


def _rule_of(score: Callable) -> Callable:
    return lambda k, chunk: rule_from_scores(score, k)


# --------------------------------------------------------------------------------------------------------------
# The staged schedule of the released code
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """Keep ``kept`` visual tokens from decoder index ``layer`` on, ranked by ``score`` (``"hybrid"`` or
    ``"attention"``)."""

    layer: int
    kept: int
    score: str


def stage_layers(layers: int) -> tuple[int, ...]:
    """The official stage indices 1, 11, 21 of 32 scaled to a model of ``layers`` decoder layers (the first stays at
    1; later ones rounded, strictly increasing, below ``layers``). A model with fewer than four layers gets the
    stages that fit (three layers: 1 and 2)."""
    check_int("layers", layers, minimum=2)
    out = [OFFICIAL_STAGES[0]]
    for index in OFFICIAL_STAGES[1:]:
        following = max(out[-1] + 1, round(index * layers / OFFICIAL_LAYERS))
        if following >= layers:
            break
        out.append(following)
    return tuple(out)


def staged_schedule(n_image: int, layers: int, budget: int) -> list[Stage]:
    """The three stages for a nominal ``budget`` of ``n_image`` tokens: the official counts where LLaVA's 576 tokens
    and a tabulated budget match, else ``round(budget × ratio)`` (capped at the tokens left, at least one)."""
    check_int("budget", budget, minimum=1, maximum=n_image)
    if n_image == 576 and budget in OFFICIAL_KEEP:
        counts = OFFICIAL_KEEP[budget]
    else:
        counts, left = [], n_image
        for ratio in STAGE_RATIOS:
            left = max(1, min(left, round(budget * ratio)))
            counts.append(left)
    scores = ("hybrid", "attention", "attention")
    # strict=False: a model too shallow for three stages keeps the first ones (stage_layers)
    return [Stage(layer, kept, score) for layer, kept, score in zip(stage_layers(layers), counts, scores, strict=False)]


def layer_average(stages: list[Stage], n_image: int, layers: int, count_first: bool = True) -> float:
    """Visual tokens per decoder layer, averaged over the ``layers`` layers: the layers before the first stage see
    all ``n_image`` (``count_first=False``: counted at the last stage's size instead, as the official comment's
    ``(330·10 + 210·10 + 62·12) / 32`` does)."""
    bounds = [s.layer for s in stages] + [layers]
    total = sum(s.kept * (bounds[i + 1] - s.layer) for i, s in enumerate(stages))
    head = stages[0].layer
    total += head * (n_image if count_first else stages[-1].kept)
    return total / layers


STAGE_SCORES = {"hybrid": hybrid_scores, "attention": lambda cutoff: fastv_scores}
"""The rankings a :class:`Stage` may use: CLSE-Hybrid (``clse-eq-hybrid``) or FastV's attention alone."""


@torch.no_grad()
def forward_staged(model, inputs: dict, stages: Sequence[Stage], cutoff: float = CUTOFF) -> tuple:
    """The released staged prefill (``clse_model.py``): at each stage's decoder index the visual tokens still in the
    sequence are ranked by the stage's score (:data:`STAGE_SCORES`; ``"attention"``: the last token's attention at
    the layer before, over the tokens left) and only the top ``stage.kept`` go on. Kept tokens keep their original
    positions (as :func:`llmtheory.vlm.forward_dropping_visual_tokens`, whose layer runner this reuses).

    Returns ``(last_logits, kept)``: the next-word logits at each row's last real token, ``(batch, vocab)``, and per
    stage the grid indices (0..n_image−1, sorted) of the tokens it kept, a list of ``(batch, stage.kept)``.
    """
    layers = model.config.text_config.num_hidden_layers
    starts, counts = [s.layer for s in stages], [s.kept for s in stages]
    if not stages or starts != sorted(set(starts)) or starts[0] < 1 or starts[-1] >= layers:
        raise ParameterError(f"stage layers must increase strictly within [1, {layers}); got {starts}")
    if counts != sorted(counts, reverse=True) or counts[-1] < 1 or any(s.score not in STAGE_SCORES for s in stages):
        raise ParameterError(f"stage counts must not increase and scores be one of {list(STAGE_SCORES)}; got {stages}")
    input_ids = inputs["input_ids"]
    mask = inputs.get("attention_mask", torch.ones_like(input_ids))
    lm = model.model.language_model
    images = vlm.image_positions(model, input_ids)  # sequence positions of the visual tokens still in
    visual = torch.arange(images.shape[1], device=input_ids.device).expand_as(images)  # their grid indices
    kept, done, recorded = [], 0, []
    with vlm._Eager(model):
        hidden = vlm.merged_embeddings(model, input_ids, inputs["pixel_values"])
        positions = torch.arange(input_ids.shape[1], device=input_ids.device).expand_as(input_ids)
        states = [hidden]
        for stage in stages:
            hook = lm.layers[stage.layer - 1].self_attn.register_forward_hook(lambda _m, _a, o: recorded.append(o[1]))
            try:  # the spectral score reads layers 0 and K of the full sequence: states only before the first stage
                hidden = vlm._run_layers(
                    lm, hidden, positions, mask, range(done, stage.layer), states if done == 0 else None
                )
            finally:
                hook.remove()
            context = DropContext(stage.layer, states, [None] * (stage.layer - 1) + [recorded[-1]], images,
                                  images[:, -1] + 1, vlm.last_positions(mask), input_ids, mask)  # fmt: skip
            chosen = top_k(STAGE_SCORES[stage.score](cutoff)(context), stage.kept)  # among the tokens left
            keep_mask = torch.ones_like(mask, dtype=torch.bool)
            keep_mask.scatter_(1, images, False)
            keep_mask.scatter_(1, images.gather(1, chosen), True)
            order = keep_mask.nonzero()[:, 1].reshape(len(mask), -1)
            images = torch.searchsorted(order, images.gather(1, chosen))  # their positions in the shorter sequence
            hidden = hidden.gather(1, order[..., None].expand(-1, -1, hidden.shape[-1]))
            positions, mask = positions.gather(1, order), mask.gather(1, order)
            visual = visual.gather(1, chosen)
            kept.append(visual)
            done = stage.layer
        hidden = vlm._run_layers(lm, hidden, positions, mask, range(done, layers), None)
        logits = model.lm_head(lm.norm(hidden))
    return logits[torch.arange(len(mask), device=mask.device), vlm.last_positions(mask)], kept


PDROP_STAGES = 4
"""PDrop's stages of equal depth (official LLaVA-1.5: layers 0–7, 8–15, 16–23, 24–31)."""
PDROP_LAMBDA = 0.5
"""PDrop's default share of the remaining visual tokens dropped at each stage boundary."""


def pdrop_layers(layers: int, stages: int = PDROP_STAGES) -> tuple[int, ...]:
    """PDrop's stage boundaries, the decoder indices from which each shorter stage runs: ``⌊layers · j / stages⌋``
    for ``j = 1 .. stages − 1`` (32 layers: 8, 16, 24, the official ones; 6 layers: 1, 3, 4), at least 1 and strictly
    increasing; a model too shallow for them all keeps those below ``layers`` (three layers: 1, 2)."""
    check_int("layers", layers, minimum=2)
    out: list[int] = []
    for j in range(1, stages):
        boundary = max(out[-1] + 1 if out else 1, layers * j // stages)
        if boundary >= layers:
            break
        out.append(boundary)
    return tuple(out)


def pdrop_schedule(n_image: int, layers: int, keep_ratio: float = 1 - PDROP_LAMBDA) -> list[Stage]:
    """PDrop's stages (``keep_ratio = 1 − λ``): from boundary ``j`` on, ``round(n_image · keep_ratio^j)`` visual
    tokens (at least one), each stage ranking by the last token's attention (FastV's score, :data:`STAGE_SCORES`
    ``"attention"``)."""
    check_float("keep_ratio", keep_ratio, minimum=0.0, maximum=1.0)
    counts, left = [], n_image
    for j in range(1, len(pdrop_layers(layers)) + 1):
        left = max(1, min(left, round(n_image * keep_ratio**j)))
        counts.append(left)
    return [Stage(layer, kept, "attention") for layer, kept in zip(pdrop_layers(layers), counts, strict=True)]


def pdrop_matched(n_image: int, layers: int, kept: int, prune_layer: int = PRUNE_LAYER) -> list[Stage]:
    """PDrop at the budget of a single-stage method keeping ``kept`` tokens from ``prune_layer`` on, matched by the
    **layer-averaged** count (:func:`layer_average`, every layer counted with the tokens it holds): the
    ``keep_ratio`` on a grid of step 0.001 whose schedule's average is nearest ``(prune_layer · n_image + (layers −
    prune_layer) · kept) / layers`` (ties: the larger ratio)."""
    check_int("kept", kept, minimum=1, maximum=n_image)
    return list(_pdrop_matched(n_image, layers, kept, prune_layer))


@functools.cache
def _pdrop_matched(n_image: int, layers: int, kept: int, prune_layer: int) -> tuple[Stage, ...]:
    target = (prune_layer * n_image + (layers - prune_layer) * kept) / layers
    best = None
    for step in range(1000, 0, -1):
        stages = pdrop_schedule(n_image, layers, step / 1000)
        gap = abs(layer_average(stages, n_image, layers) - target)
        if best is None or gap < best[0] - 1e-12:
            best = (gap, tuple(stages))
    return best[1]


def cutoff_in_cycles(side: int, cutoff: float = CUTOFF) -> float:
    """The high-pass's Gaussian width in cycles per patch: ``r · (side // 2) / side`` (≈ r/2 for every grid)."""
    return cutoff * (side // 2) / side if side > 1 else math.nan


PARAMETERS = {
    "MODEL": Model("a zoo name, a local folder or a Hugging Face LLaVA id"),
    "PRUNE_LAYER": Int(minimum=1),  # CLSE compares layer 0 with layer K ≥ 1
    "CUTOFF": Real(minimum=0.0),
    "PER_KIND": Int(minimum=0),  # 0: by scale
    "FINE_MODEL": Model("the zoo's 12 × 12 VLM (Step 6) or a local folder of one"),
    "FINE_PER_KIND": Int(minimum=0),  # 0: by scale
}
"""The chapter's parameters besides ``SCALE`` and ``SEED`` (its notebook's ``parameters`` cell), declared once:
the notebook checks them with :func:`llmtheory.params.check_parameters`, the command line before it runs."""
