"""AdaQ, the method: query–frame similarities from a dual encoder, and the frame samplers that turn them into a
budget of K frames — AdaQ's adaptive quasi-Gaussian sampling and its baselines (uniform, top-k, BOLT-style
inverse-transform sampling, an AKS-like relevance/coverage split) — plus the oracle-coverage reader.

Only the paper's abstract is known (Zhang … Ji, arXiv 2606.24187). What it states: frame selection as
*quasi-Gaussian sampling*, training-free, aiming at "the optimal 3-σ interval" per example (narrow for a local
query, wide for a global one), with **one hyper-parameter**. A secondary summary adds that the variance of the
query–frame similarities sets a temperature. Everything beyond that is **our reconstruction**, marked as such:

* eq. ``adaq-eq-similarity``: cosine similarities s_t between the query and each frame (any CLIP-like model);
* eq. ``adaq-eq-weights`` (reconstructed): p_t ∝ exp(z_t / τ) with z the standardised similarities and the
  temperature τ = λ/σ_s set by their spread σ_s, that is a softmax of the raw similarities at temperature λ;
* eq. ``adaq-eq-quantiles`` (reconstructed): the K frames are the quasi-random (stratified) quantiles of p, so that
  a flat p gives the uniform grid and a peaked p a tight cluster;
* eq. ``adaq-eq-interval``: the 3-σ interval read off p as a quasi-Gaussian over time, μ ± 3σ of the frame index.

The chapter's videos, readers (the zoo VLM among them), sweeps and claims live in :mod:`llmtheory.adaq_experiment`.
"""

from __future__ import annotations

import numpy as np
import torch

from .params import Int, Model, ParameterError, Real, Text, check_int

SAMPLERS: tuple[str, ...] = ("uniform", "top-k", "bolt", "aks", "adaq")
"""The frame samplers compared at equal budgets, in the order the chapter shows them."""
BOLT_ALPHA = 2.0
"""BOLT's default exponent on min–max normalised similarities (BOLT's own default is not verified). The chapter
calibrates α on its calibration videos as it does λ (``adaq_experiment.ALPHA_GRID``); this value is the fallback."""
AKS_THRESHOLD = 3.0
"""AKS-like split: keep a segment's top frames when their mean standardised similarity exceeds the segment's mean by
this many standard deviations of the whole video (set before any run)."""
AKS_DEPTH = 5
"""AKS-like split: at most this many halvings."""
STANDARDISED_LAMBDA = 1.0
"""λ of the standardised reading (``standardised_weights``), fixed before its first run."""

PARAMETERS = {
    "CLIP_MODEL": Model(),
    "VLM_MODEL": Model(),
    "LAMBDA": Real(minimum=0.0, maximum=10.0),
    "N_FRAMES": Int(minimum=0, maximum=4096),
    "NOISE": Real(minimum=0.0, maximum=0.3),
    "VIDEO": Text(what='"" (no real video) or the path of a video file or a .npy array of frames (T, H, W, 3)'),
    "QUERY": Text(what="the question asked of VIDEO (any text; unused without VIDEO)"),
}
"""The chapter's parameters besides ``SCALE`` and ``SEED`` (its notebook's ``parameters`` cell)."""


# ---------------------------------------------------------------------------------------------------------
# Similarities (eq. adaq-eq-similarity)


def _pooled(output) -> torch.Tensor:
    """The projected embedding of ``get_*_features``: a tensor (transformers 4) or ``.pooler_output`` (5)."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def pixel_values(processor, frames) -> torch.Tensor:
    """The processor's ``pixel_values`` for ``frames`` (``uint8``, ``(T, H, W, 3)``). When the image processor only
    rescales and normalises (no resizing or cropping, frames already at its size: the zoo's), the same arithmetic
    runs on the whole array at once (a test checks it equals the processor's output); otherwise the processor runs
    (a hub CLIP resizes to 224 pixels)."""
    images = getattr(processor, "image_processor", processor)
    frames = np.asarray(frames)
    size = getattr(images, "size", None) or {}
    plain = not getattr(images, "do_resize", True) and not getattr(images, "do_center_crop", True)
    if plain and (size.get("height"), size.get("width")) == frames.shape[1:3]:
        x = frames.astype(np.float32) * np.float32(images.rescale_factor)
        x = (x - np.asarray(images.image_mean, np.float32)) / np.asarray(images.image_std, np.float32)
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    return processor(images=list(frames), return_tensors="pt")["pixel_values"]


@torch.no_grad()
def frame_embeddings(model, processor, frames, batch_size: int = 64) -> torch.Tensor:
    """Unit-norm image embeddings ``(T, d)`` of ``frames`` (``uint8`` arrays, ``(T, H, W, 3)``) through the dual
    encoder's vision tower; ``processor`` resizes and normalises as the model expects (:func:`pixel_values`)."""
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    parts = []
    for start in range(0, len(frames), batch_size):
        pixels = pixel_values(processor, frames[start : start + batch_size]).to(device=device, dtype=dtype)
        parts.append(_pooled(model.get_image_features(pixel_values=pixels)).float().cpu())
    return torch.nn.functional.normalize(torch.cat(parts), dim=-1)


def text_padding(model) -> bool | str:
    """How to pad query texts for ``model``: ``"max_length"`` for SigLIP-family models (their training padding; the
    Hugging Face SigLIP docs ask for it), ``True`` (to the longest text) otherwise."""
    model_type = str(getattr(getattr(model, "config", None), "model_type", ""))
    return "max_length" if model_type.startswith("siglip") else True


@torch.no_grad()
def text_embeddings(model, processor, texts) -> torch.Tensor:
    """Unit-norm text embeddings ``(n, d)`` of ``texts`` through the dual encoder's text tower. SigLIP-style models
    were trained on texts padded to the maximum length, so they get ``padding="max_length"`` (:func:`text_padding`)."""
    device = next(model.parameters()).device
    tokens = processor(text=list(texts), return_tensors="pt", padding=text_padding(model))
    inputs = {k: v.to(device) for k, v in tokens.items() if k in ("input_ids", "attention_mask")}
    return torch.nn.functional.normalize(_pooled(model.get_text_features(**inputs)).float().cpu(), dim=-1)


def similarities(frame_emb: torch.Tensor, query_emb: torch.Tensor) -> np.ndarray:
    """Eq. ``adaq-eq-similarity``: s_t = ⟨f_t, q⟩ / (‖f_t‖ ‖q‖), the cosine similarity of every frame embedding with
    the query's; ``(T,)`` for one query ``(d,)``, ``(n, T)`` for ``n`` queries."""
    f = torch.nn.functional.normalize(frame_emb.float(), dim=-1)
    q = torch.nn.functional.normalize(query_emb.float(), dim=-1)
    return (q @ f.T).numpy().astype(np.float64)


def standardise(s: np.ndarray) -> np.ndarray:
    """z_t = (s_t − mean s) / std s (all zeros for a constant curve)."""
    s = np.asarray(s, float)
    spread = s.std()
    return np.zeros_like(s) if spread == 0 else (s - s.mean()) / spread


# ---------------------------------------------------------------------------------------------------------
# Turning a distribution over frames into K distinct frames


def _check_budget(n: int, k: int) -> None:
    check_int("k", k, minimum=1, maximum=n)


def _distinct(targets, n: int) -> np.ndarray:
    """Distinct frames from wished-for ``targets`` (in order): a frame already taken moves to the nearest free one,
    right first then left (so that wishes piled on one frame become a contiguous block around it)."""
    taken = np.zeros(n, bool)
    for t in targets:
        for d in range(n):
            candidates = (t + d, t - d) if d else (t,)
            free = [c for c in candidates if 0 <= c < n and not taken[c]]
            if free:
                taken[free[0]] = True
                break
    return np.flatnonzero(taken)


def quantile_frames(p: np.ndarray, k: int) -> np.ndarray:
    """Eq. ``adaq-eq-quantiles`` (reconstructed): the frames at the stratified quantiles u_i = (i + ½)/K of the
    distribution ``p`` over frames — frame t is chosen for u_i when CDF(t − 1) < u_i ≤ CDF(t) — made distinct by
    :func:`_distinct`. Quasi-random (a low-discrepancy, deterministic version of drawing K frames from p): a flat p
    gives the uniform grid, a peaked p a block around its peak. Returns sorted frame indices."""
    p = np.asarray(p, float)
    n = len(p)
    _check_budget(n, k)
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.sum() <= 0:
        raise ParameterError("p must be finite, non-negative weights with a positive sum")
    cdf = np.cumsum(p / p.sum())
    u = (np.arange(k) + 0.5) / k
    wished = np.minimum(np.searchsorted(cdf, u, side="left"), n - 1)
    return _distinct(wished, n)


# ---------------------------------------------------------------------------------------------------------
# The samplers: each returns K distinct, sorted frame indices


def uniform(n: int, k: int) -> np.ndarray:
    """K frames evenly spaced over ``n``: the quantile frames of the flat distribution (every n/K frames)."""
    return quantile_frames(np.ones(n), k)


def top_k(s: np.ndarray, k: int) -> np.ndarray:
    """The K frames of highest similarity (ties to the earlier frame), sorted in time: hard keyframe selection."""
    s = np.asarray(s, float)
    _check_budget(len(s), k)
    return np.sort(np.argsort(-s, kind="stable")[:k])


def bolt_weights(s: np.ndarray, alpha: float = BOLT_ALPHA) -> np.ndarray:
    """BOLT's sampling weights: min–max normalised similarities raised to ``alpha`` (α = 0: uniform)."""
    s = np.asarray(s, float)
    span = s.max() - s.min()
    normalised = np.ones_like(s) if span == 0 else (s - s.min()) / span
    w = normalised**alpha
    return w if w.sum() > 0 else np.ones_like(s)


def bolt(s: np.ndarray, k: int, alpha: float = BOLT_ALPHA) -> np.ndarray:
    """BOLT-style inverse-transform sampling: the quantile frames (:func:`quantile_frames`) of ``bolt_weights``."""
    return quantile_frames(bolt_weights(s, alpha), k)


def aks(s: np.ndarray, k: int, threshold: float = AKS_THRESHOLD, depth: int = AKS_DEPTH) -> np.ndarray:
    """An AKS-like split of relevance and coverage (after Adaptive Keyframe Sampling's judge-and-split): a segment
    with budget k keeps its top-k frames when their mean standardised similarity exceeds the segment's mean by
    ``threshold`` (relevance: a few frames stand out), or when it cannot be split further; otherwise it halves the
    segment and the budget (coverage) and judges each half."""
    z = standardise(s)
    _check_budget(len(z), k)

    def select(lo: int, hi: int, budget: int, level: int) -> list[int]:
        if budget == 0:
            return []
        segment = z[lo:hi]
        best = np.argsort(-segment, kind="stable")[:budget]
        relevant = segment[best].mean() - segment.mean() >= threshold
        if relevant or level >= depth or budget == 1 or hi - lo < 2 * budget:
            return [lo + int(i) for i in best]
        mid = (lo + hi) // 2
        left = (budget + 1) // 2
        return select(lo, mid, left, level + 1) + select(mid, hi, budget - left, level + 1)

    return np.sort(np.array(select(0, len(z), k, 0), dtype=np.int64))


def adaq_weights(s: np.ndarray, lam: float) -> np.ndarray:
    """Eq. ``adaq-eq-weights`` (reconstructed): p_t = exp(z_t / τ) / Σ_u exp(z_u / τ) with z the standardised
    similarities and the temperature τ = λ / σ_s set by their spread σ_s — that is, p_t ∝ exp((s_t − s̄) / λ), a
    softmax of the raw similarities at temperature λ (in cosine units). A curve with a large spread (a clear peak)
    is sharpened, a flat one stays flat. ``lam = inf`` gives the flat distribution, ``lam = 0`` all mass on the
    (first) best frame."""
    s = np.asarray(s, float)
    if lam == 0:
        p = np.zeros_like(s)
        p[int(np.argmax(s))] = 1.0
        return p
    if not lam > 0:
        raise ParameterError(f"lam must be ≥ 0 (or inf), got {lam}")
    logits = (s - s.mean()) / lam
    w = np.exp(logits - logits.max())
    return w / w.sum()


def standardised_weights(s: np.ndarray, lam: float) -> np.ndarray:
    """The other reading of eq. ``adaq-eq-weights`` that the chapter measures: p_t ∝ exp(z_t / λ) on the standardised
    similarities (temperature λ·σ_s on the raw ones). Invariant to the embedding model's scale, but blind to the
    spread that distinguishes a peaked curve from a flat one."""
    return adaq_weights(standardise(s), lam)


def adaq(s: np.ndarray, k: int, lam: float) -> np.ndarray:
    """AdaQ as reconstructed here: the quasi-random quantile frames (eq. ``adaq-eq-quantiles``) of the
    variance-tempered softmax of eq. ``adaq-eq-weights``, with its single hyper-parameter λ.

    Limits (tested): λ → ∞ gives :func:`uniform`; λ → 0 gives the K frames nearest the most similar frame (a
    contiguous block around it), the hard-selection end of the family."""
    return quantile_frames(adaq_weights(s, lam), k)


def select(sampler: str, s: np.ndarray, k: int, *, lam: float, alpha: float = BOLT_ALPHA) -> np.ndarray:
    """K frames by ``sampler`` (one of :data:`SAMPLERS`, or ``"adaq-z"``: the standardised reading at
    :data:`STANDARDISED_LAMBDA`) from similarities ``s``."""
    if sampler == "uniform":
        return uniform(len(s), k)
    if sampler == "top-k":
        return top_k(s, k)
    if sampler == "bolt":
        return bolt(s, k, alpha)
    if sampler == "aks":
        return aks(s, k)
    if sampler == "adaq":
        return adaq(s, k, lam)
    if sampler == "adaq-z":
        return quantile_frames(standardised_weights(s, STANDARDISED_LAMBDA), k)
    raise ParameterError(f"sampler={sampler!r} is not one of {', '.join(SAMPLERS)}")


def interval(p: np.ndarray) -> tuple[int, int]:
    """Eq. ``adaq-eq-interval``: the 3-σ interval of a distribution over frames read as a quasi-Gaussian,
    [μ − 3σ, μ + 3σ] with μ and σ the mean and standard deviation of the frame index under ``p``, clipped to the
    video (a flat ``p`` over T frames has σ = T/√12, so its interval is the whole video)."""
    p = np.asarray(p, float) / np.sum(p)
    t = np.arange(len(p))
    mu = float(p @ t)
    sigma = float(np.sqrt(p @ (t - mu) ** 2))
    return max(0, int(np.floor(mu - 3 * sigma))), min(len(p) - 1, int(np.ceil(mu + 3 * sigma)))


# ---------------------------------------------------------------------------------------------------------
# The oracle-coverage reader


def covered_windows(frames, windows) -> int:
    """How many evidence ``windows`` (each a ``(start, stop)`` range of frames) hold at least one selected frame."""
    frames = np.asarray(frames)
    return sum(bool(np.any((frames >= start) & (frames < stop))) for start, stop in windows)


def oracle_correct(frames, windows, needed: int | None = None) -> bool:
    """The oracle-coverage reader: right when the selected frames cover at least ``needed`` of the evidence
    windows (default: all of them). A local query has one window; a global one, M windows of which it needs m."""
    needed = len(windows) if needed is None else needed
    return covered_windows(frames, windows) >= needed
