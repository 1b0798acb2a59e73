"""The ``clse`` chapter's experiment: does the grid let the spectral score differ from its ablations, where the kept
tokens sit, the efficiency run and the estimates the claims ledger judges. The method is in :mod:`llmtheory.clse`,
the shared harness (baselines, references, evaluation, timing) in :mod:`llmtheory.visual_pruning`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from . import clse
from . import visual_pruning as vp
from .claims import Estimate
from .plotting import PALETTE
from .priortr import attention_context
from .vlm import grid_shape

PUBLISHED = pd.DataFrame(
    {
        "FastV": (92.1, 87.2, 78.0),
        "PDrop": (96.9, 95.3, 77.0),
        "SparseVLM": (96.3, 93.7, 84.3),
        "FiCoCo-V": (96.2, 94.3, 89.8),
        "CLSE": (99.4, 98.1, 94.8),
    },
    index=pd.Index([192, 128, 64], name="tokens kept of 576"),
)
"""The paper's LLaVA-1.5-7B table: relative performance over 9 benchmarks, % of the full model (research note)."""

ABLATIONS = {"CLSE (no high-pass)": clse.clse_scores(0.0), "one layer (S^K)": clse.single_layer_scores()}
"""The rankings CLSE is compared with before any accuracy is measured."""


FACTOR = "evolution factor (E)"
"""CLSE's sigmoid factor ranked alone: it orders the tokens as ``I`` does except where it ties at exactly 1."""


def ranking_agreement(
    model, processor, items, layer: int, budgets: dict[str, float], batch_size: int = 64, cutoff: float = clse.CUTOFF
):
    """Per item and budget, the share of the tokens CLSE (high-pass ``cutoff``) keeps that each ablation (and FastV)
    keeps too, the Spearman correlation of the two scores over the image, and how many tokens share the other
    score's maximum (the sigmoid factor ``E`` ties at exactly 1): ``DataFrame`` with columns ``other``, ``budget``,
    ``overlap``, ``spearman``, ``top_ties``."""
    rankings = ABLATIONS | {FACTOR: clse.clse_factor(cutoff), "FastV": vp.fastv_scores}
    rows = []
    for chunk in vp.chunks(model, processor, items, batch_size, 0):
        context = attention_context(model, chunk.inputs, layer)
        ours = clse.clse_scores(cutoff)(context)
        for name, score in rankings.items():
            other = score(context)
            rho = [spearmanr(a.cpu(), b.cpu()).statistic for a, b in zip(ours, other, strict=True)]
            ties = (other == other.max(dim=-1, keepdim=True).values).sum(dim=-1).tolist()
            for budget, share in budgets.items():
                k = vp.keep_count(chunk.n_image, share)
                a, b = vp.top_k(ours, k), vp.top_k(other, k)
                for i in range(len(a)):
                    overlap = len(set(a[i].tolist()) & set(b[i].tolist())) / k
                    rows.append(
                        {"other": name, "budget": budget, "overlap": overlap, "spearman": rho[i], "top_ties": ties[i]}
                    )
    return pd.DataFrame(rows)


def agreement_table(agreement: pd.DataFrame) -> pd.DataFrame:
    """Mean overlap of the kept sets per budget and mean Spearman correlation, per compared ranking."""
    table = agreement.pivot_table(index="other", columns="budget", values="overlap", aggfunc="mean")
    table["Spearman"] = agreement.groupby("other")["spearman"].mean()
    return table


def dc_removal_gap(model, processor, items, layer: int) -> float:
    """Largest difference, relative to the largest residual, between CLSE's high-pass residual and the mean over
    channels of ``|x − grid mean of x|`` (what removing the zero frequency alone leaves), at both layers."""
    chunk = next(vp.chunks(model, processor, items, len(items), 0))
    context = attention_context(model, chunk.inputs, layer)
    worst = 0.0
    for index in (clse.REFERENCE_LAYER, layer):
        grid = clse.visual_grid(context, index).float()
        centred = (grid - grid.mean(dim=(1, 2), keepdim=True)).abs().mean(dim=-1).flatten(1)
        residual = clse.spectral_residual(grid)
        worst = max(worst, float((residual - centred).abs().max() / residual.abs().max()))
    return worst


def example_maps(model, processor, items, layer: int, share: float, cutoff: float = clse.CUTOFF) -> list[dict]:
    """For a few items: ``S⁰``, ``S^K``, ``I`` and FastV's attention on the patch grid, with the tokens CLSE,
    CLSE-Hybrid and FastV keep at ``share``."""
    chunk = next(vp.chunks(model, processor, items, len(items), 0))
    context = attention_context(model, chunk.inputs, layer)
    s0, sk = clse.residuals(context, cutoff)
    maps = {"S0": s0, "SK": sk, "I": clse.evolution_intensity(s0, sk), "FastV": vp.fastv_scores(context)}
    hybrid = clse.hybrid_scores(cutoff)(context)
    side = grid_shape(chunk.n_image)[0]
    k = vp.keep_count(chunk.n_image, share)
    out = []
    for i, (scene, question) in enumerate(items):
        grids = {name: m[i].reshape(side, side).cpu().numpy() for name, m in maps.items()}
        ranked = {"CLSE": maps["I"], "FastV": maps["FastV"], "CLSE-Hybrid": hybrid}
        kept = {name: vp.top_k(m[i : i + 1], k)[0].tolist() for name, m in ranked.items()}
        out.append(grids | {"image": scene.image(), "question": question, "side": side, "kept": kept,
                            "answer": vp.answer_patches(question.patches, chunk.n_image)})  # fmt: skip
    return out


MAP_TITLES = {
    "S0": "S at layer 0",
    "SK": "S at layer {layer}",
    "I": "intensity I (CLSE)",
    "FastV": "last-token attention",
}
"""The maps of :func:`example_maps` that :func:`plot_maps` draws, left to right, with their titles."""
MAP_MARKS = {"I": "CLSE", "FastV": "FastV", "SK": "CLSE-Hybrid"}
"""The method whose kept tokens each map shows as dots."""


def plot_maps(examples: list[dict], layer: int):
    """One row per item of :func:`example_maps`: the image, then the maps of :data:`MAP_TITLES` with the tokens the
    method of :data:`MAP_MARKS` keeps as dots, and the answering patches outlined in green."""
    import matplotlib.pyplot as plt

    titles = {name: title.format(layer=layer) for name, title in MAP_TITLES.items()}
    fig, axes = plt.subplots(len(examples), 5, figsize=(10.5, 2.1 * len(examples)))
    for index, (row, ex) in enumerate(zip(axes, examples, strict=True)):
        row[0].imshow(ex["image"])
        row[0].set_ylabel(f"{ex['question'].text}\nanswer: {ex['question'].answer}", fontsize=7)
        for ax, name in zip(row[1:], titles, strict=True):
            ax.imshow(ex[name], cmap="magma")
            if index == 0:
                ax.set_title(
                    titles[name] + (f"\n(dots: {MAP_MARKS[name]} keeps)" if name in MAP_MARKS else ""), fontsize=8
                )
            if name in MAP_MARKS:
                vp.mark_kept(ax, ex["kept"][MAP_MARKS[name]], ex["side"])
        vp.frame_map_row(row, ex)
    return fig


METHOD_COLOURS = {
    "FastV": PALETTE[1],
    "random": "#999999",
    "spatial": PALETTE[4],
    "VisPruner": PALETTE[5],
    "DART": PALETTE[6],
    "one layer (S^K)": "#BBBBBB",
    "CLSE (no high-pass)": "#666666",
    "CLSE": PALETTE[0],
    "Hybrid (shuffled factor)": "#CC99BB",
    "CLSE-Hybrid": PALETTE[2],
}
"""The colour of each method in the chapter's figures."""


# --------------------------------------------------------------------------------------------------------------
# Positional bias: where the kept tokens sit
# --------------------------------------------------------------------------------------------------------------


def _mean_row(tokens, side: int) -> float:
    return float(np.mean([t // side for t in tokens]) / (side - 1)) if len(tokens) else float("nan")


def row_shift(rows, method: str, budget: str, n_image: int) -> np.ndarray:
    """Per item: the mean grid row of the tokens ``method`` kept minus the mean row of the answering patches (rows of
    :func:`with_answers`), both as a share of the grid's height (positive: kept tokens sit lower, later in the
    sequence)."""
    side = grid_shape(n_image)[0]
    out = []
    for r in rows:
        if r["method"] == method and r["budget"] == budget:
            answer = _mean_row(r["answer_tokens"], side)
            out.append(_mean_row(r["kept_tokens"], side) - answer)
    return np.array(out)


def with_answers(rows, items, n_image: int) -> list[dict]:
    """The rows with each item's answering patches (on the model's grid) added as ``answer_tokens``."""
    answers = [vp.answer_patches(q.patches, n_image) for _, q in items]
    return [r | {"answer_tokens": answers[r["item"]]} for r in rows]


def keep_frequency(rows, method: str, budget: str, n_image: int) -> np.ndarray:
    """How often each grid cell is kept by ``method`` at ``budget``, over the items: ``(side, side)``."""
    side = grid_shape(n_image)[0]
    counts = np.zeros(n_image)
    picked = [r for r in rows if r["method"] == method and r["budget"] == budget]
    for r in picked:
        counts[list(r["kept_tokens"])] += 1
    return (counts / max(len(picked), 1)).reshape(side, side)


def answer_frequency(items, n_image: int) -> np.ndarray:
    """How often each grid cell holds an answering patch, over the items: ``(side, side)``."""
    side = grid_shape(n_image)[0]
    counts = np.zeros(n_image)
    for _, question in items:
        counts[list(vp.answer_patches(question.patches, n_image))] += 1
    return (counts / len(items)).reshape(side, side)


def bias_difference(rows, a: str, b: str, budget: str, n_image: int, rng, n_boot: int = 2000) -> Estimate:
    """``|mean shift of b| − |mean shift of a|`` (:func:`row_shift`), bootstrap over items (paired): positive when
    ``a``'s kept tokens sit closer to the answers' rows than ``b``'s on average."""
    shift_a, shift_b = row_shift(rows, a, budget, n_image), row_shift(rows, b, budget, n_image)
    keep = ~(np.isnan(shift_a) | np.isnan(shift_b))
    shift_a, shift_b = shift_a[keep], shift_b[keep]
    index = rng.integers(len(shift_a), size=(n_boot, len(shift_a)))
    draws = np.abs(shift_b[index].mean(axis=1)) - np.abs(shift_a[index].mean(axis=1))
    value = float(abs(shift_b.mean()) - abs(shift_a.mean()))
    low, high = np.quantile(draws, [0.025, 0.975])
    return Estimate(value, min(value, float(low)), max(value, float(high)))


def bias_table(rows, methods, budget: str, n_image: int) -> pd.DataFrame:
    """Per method at ``budget``: the mean row shift (t-interval over items) and the share of kept tokens in the
    lower half of the grid."""
    side = grid_shape(n_image)[0]
    out = {}
    for method in methods:
        shift = row_shift(rows, method, budget, n_image)
        kept = [t for r in rows if r["method"] == method and r["budget"] == budget for t in r["kept_tokens"]]
        lower = np.mean([t // side >= side / 2 for t in kept]) if kept else float("nan")
        out[method] = {"row shift": str(Estimate.mean_of(shift[~np.isnan(shift)])), "lower half": round(lower, 3)}
    return pd.DataFrame(out).T


# --------------------------------------------------------------------------------------------------------------
# Efficiency and the ledger's estimates
# --------------------------------------------------------------------------------------------------------------


def timing_plans(n_image: int, share: float, cutoff: float = clse.CUTOFF) -> tuple[dict[str, tuple], dict[str, int]]:
    """The plans the efficiency run times and the visual tokens each keeps: the full model twice (the control),
    CLSE (spectral scores in the pass), CLSE-Hybrid (eager attention as well) and a fixed set of as many tokens."""
    k = vp.keep_count(n_image, share)
    plans = {
        "full": (None, False),
        "full (again)": (None, False),
        "CLSE": (vp.rule_from_scores(clse.clse_scores(cutoff), k), False),
        "CLSE-Hybrid": (vp.rule_from_scores(clse.hybrid_scores(cutoff), k), True),
        "fixed tokens": (torch.arange(k), False),
    }
    return plans, {"full": n_image, "full (again)": n_image, "CLSE": k, "CLSE-Hybrid": k, "fixed tokens": k}


COMPARED = ("CLSE", "CLSE-Hybrid", "Hybrid (shuffled factor)", "random", "spatial", "VisPruner", "DART")
"""Methods whose paired difference from FastV the ledger and the text read."""


def evidence(rows, budgets, rng: np.random.Generator) -> dict:
    """The estimates the ledger judges (paired by item, bootstrap intervals over items)."""
    names = list(budgets)
    tight = names[-1]
    e = {name: vp.accuracy(rows, name) for name in ("full", "floor", "ceiling")} | {"tight": tight}
    for method in COMPARED:
        e[f"{method} − FastV"] = vp.paired_difference(rows, method, "FastV", names, rng)
    for other in (*ABLATIONS, "random", "DART", "VisPruner"):
        e[f"CLSE − {other}"] = vp.paired_difference(rows, "CLSE", other, names, rng)
    for method in ("CLSE-Hybrid", "random"):
        e[f"{method} keeps"], e[f"{method} closes"] = vp.retention(rows, method, tight, rng)
    return e


def stage_table(n_image: int, layers: int, budgets=(192, 128, 64)) -> pd.DataFrame:
    """The official three-stage schedule for LLaVA-1.5-7B (576 tokens, 32 layers) at its nominal budgets, with the
    per-layer averages counted both ways."""
    out = {}
    for budget in budgets:
        stages = clse.staged_schedule(n_image, layers, round(budget * n_image / 576))
        out[budget] = {
            "stages (layer: kept)": ", ".join(f"{s.layer}: {s.kept}" for s in stages),
            "average, layer 0 as the last stage (official)": clse.layer_average(stages, n_image, layers, False),
            "average, layer 0 with every token": clse.layer_average(stages, n_image, layers, True),
        }
    return pd.DataFrame(out).T.rename_axis("nominal budget of 576")
