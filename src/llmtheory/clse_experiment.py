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
from .seeding import make_rng
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

ABLATIONS = {
    "CLSE (no high-pass)": clse.clse_scores(0.0),
    clse.MEAN_REMOVED: clse.clse_scores(clse.MEAN_REMOVAL),
    "one layer (S^K)": clse.single_layer_scores(),
}
"""The rankings CLSE is compared with before any accuracy is measured."""


FACTOR = "evolution factor (E)"
"""CLSE's sigmoid factor ranked alone: it orders the tokens as ``I`` does except where it ties at exactly 1."""


def ranking_agreement(
    model, processor, items, layer: int, budgets: dict[str, float], batch_size: int = 64, cutoff: float = clse.CUTOFF
):
    """Per item and budget, the share of the tokens CLSE (high-pass ``cutoff``) keeps that each ablation (and FastV)
    keeps too, the Spearman correlation of the two scores over the image, how many tokens share the other
    score's maximum (the sigmoid factor ``E`` ties at exactly 1), and the item's share of tokens with ``E > 0.5``
    (the factor's "open" tokens, those whose ``I`` is above the image's mean): ``DataFrame`` with columns ``other``,
    ``budget``, ``overlap``, ``spearman``, ``top_ties``, ``factor_open``."""
    rankings = ABLATIONS | {FACTOR: clse.clse_factor(cutoff), "FastV": vp.fastv_scores}
    rows = []
    for chunk in vp.chunks(model, processor, items, batch_size, 0):
        context = attention_context(model, chunk.inputs, layer)
        ours = clse.clse_scores(cutoff)(context)
        open_share = (clse.evolution_factor(ours) > 0.5).float().mean(dim=-1).tolist()
        for name, score in rankings.items():
            other = score(context)
            rho = [spearmanr(a.cpu(), b.cpu()).statistic for a, b in zip(ours, other, strict=True)]
            ties = (other == other.max(dim=-1, keepdim=True).values).sum(dim=-1).tolist()
            for budget, share in budgets.items():
                k = vp.keep_count(chunk.n_image, share)
                a, b = vp.top_k(ours, k), vp.top_k(other, k)
                for i in range(len(a)):
                    overlap = len(set(a[i].tolist()) & set(b[i].tolist())) / k
                    rows.append({"other": name, "budget": budget, "overlap": overlap, "spearman": rho[i],
                                 "top_ties": ties[i], "factor_open": open_share[i]})  # fmt: skip
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
                            "answer": vp.item_patches((scene, question), chunk.n_image)})  # fmt: skip
    return out


MAP_TITLES = {
    "S0": "S at layer 0",
    "SK": "S at layer {layer}",
    "I": "intensity I (CLSE)",
    "FastV": "last-token attention",
}
"""The maps of :func:`example_maps` that :func:`plot_maps` draws, left to right, with their titles."""
MAP_MARKS = {"I": ("CLSE",), "FastV": ("FastV", "CLSE-Hybrid")}
"""The methods whose kept tokens each map shows: the first as cyan dots, the second as white crosses (the hybrid
ranks by ``E · a``, the attention map gated by the factor, so its tokens are drawn on the attention map)."""


def plot_maps(examples: list[dict], layer: int):
    """One row per item of :func:`example_maps`: the image, then the maps of :data:`MAP_TITLES` with the tokens the
    methods of :data:`MAP_MARKS` keep (dots, then crosses), and the answering patches outlined in green."""
    import matplotlib.pyplot as plt

    titles = {name: title.format(layer=layer) for name, title in MAP_TITLES.items()}
    fig, axes = plt.subplots(len(examples), 5, figsize=(10.5, 2.1 * len(examples)))
    for index, (row, ex) in enumerate(zip(axes, examples, strict=True)):
        row[0].imshow(ex["image"])
        row[0].set_ylabel(f"{ex['question'].text}\nanswer: {ex['question'].answer}", fontsize=7)
        for ax, name in zip(row[1:], titles, strict=True):
            ax.imshow(ex[name], cmap="magma")
            marks = MAP_MARKS.get(name, ())
            if index == 0:
                legend = [f"{kind}: {method}" for kind, method in zip(("dots", "crosses"), marks, strict=False)]
                ax.set_title("\n".join([titles[name], *legend]), fontsize=8)
            if marks:
                vp.mark_kept(ax, ex["kept"][marks[0]], ex["side"])
            for method in marks[1:]:
                spots = np.array([divmod(p, ex["side"])[::-1] for p in ex["kept"][method]]).T
                ax.plot(*spots, "x", ms=6, mew=1.5, color="white")
        vp.frame_map_row(row, ex)
    return fig


STAGED = "CLSE-Hybrid (3 stages)"
"""The released procedure's name in the sweep: :func:`llmtheory.clse.forward_staged` with the staged schedule."""
PDROP = "PDrop (4 stages)"
"""PDrop in the sweep: :func:`llmtheory.clse.forward_staged` with :func:`llmtheory.clse.pdrop_matched`'s stages."""


def staged_plans(n_image: int, layers: int, share: float, prune_layer: int = clse.PRUNE_LAYER) -> dict[str, list]:
    """The staged methods' stages at a budget ``share``: the released CLSE-Hybrid (:func:`llmtheory.clse.
    staged_schedule`, the share's ``k`` as its nominal budget) and PDrop at the same layer-averaged count as a
    single-stage method keeping ``k`` from ``prune_layer`` (:func:`llmtheory.clse.pdrop_matched`)."""
    k = vp.keep_count(n_image, share)
    return {
        STAGED: clse.staged_schedule(n_image, layers, k),
        PDROP: clse.pdrop_matched(n_image, layers, k, prune_layer),
    }


def evaluate_staged(
    model,
    processor,
    items,
    budgets: dict[str, float],
    *,
    batch_size: int = 64,
    seed: int = 0,
    cutoff=clse.CUTOFF,
    methods=(STAGED, PDROP),
    prune_layer: int = clse.PRUNE_LAYER,
) -> list[dict]:
    """Rows like :func:`llmtheory.visual_pruning.evaluate`'s for the staged ``methods`` (:func:`staged_plans`): for
    each budget, one staged pass per method answers. ``kept`` is the last stage's count, ``kept_tokens`` the tokens
    it keeps (recall is over those), and ``stage_kept`` lists every stage's count."""
    layers = model.config.text_config.num_hidden_layers
    rows = []
    for chunk in vp.chunks(model, processor, items, batch_size, seed):
        kinds = [q.kind for _, q in chunk.items]
        for (budget, share), method in ((b, m) for b in budgets.items() for m in methods):
            stages = staged_plans(chunk.n_image, layers, share, prune_layer)[method]
            logits, kept = clse.forward_staged(model, chunk.inputs, stages, cutoff)
            guesses = vp.restricted_answers(processor, logits, kinds)
            for i, item in enumerate(chunk.items):
                question = item[1]
                target = vp.item_patches(item, chunk.n_image)
                final = tuple(kept[-1][i].tolist())
                rows.append({"item": chunk.start + i, "kind": question.kind, "group": question.group,
                             "method": method, "budget": budget, "kept": len(final),
                             "correct": guesses[i] == question.answer,
                             "recall": len(set(final) & set(target)) / len(target) if target else float("nan"),
                             "kept_tokens": final, "stage_kept": tuple(s.kept for s in stages)})  # fmt: skip
    return rows


def tidy_legend(fig) -> None:
    """Write the one-layer ablation's ``S^K`` as mathtext :math:`S^{(K)}` in every legend of ``fig``."""
    for legend in [ax.get_legend() for ax in fig.axes if ax.get_legend()] + list(fig.legends):
        for text in legend.get_texts():
            text.set_text(text.get_text().replace("S^K", "$S^{(K)}$"))


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
    STAGED: PALETTE[3],
    clse.MEAN_REMOVED: "#332288",
    PDROP: "#AA4499",
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
    answers = [vp.item_patches(item, n_image) for item in items]
    return [r | {"answer_tokens": answers[r["item"]]} for r in rows]


def fixed_rows(items, tokens, method: str, budget: str, n_image: int) -> list[dict]:
    """Rows (as :func:`with_answers` gives them, no forward pass) for a selection that keeps the same ``tokens`` in
    every item: the positional-bias rule's control, biased by construction (``range(k)``: the top rows)."""
    answers = [vp.item_patches(item, n_image) for item in items]
    return [{"item": i, "method": method, "budget": budget, "kept_tokens": tuple(tokens), "answer_tokens": answer}
            for i, answer in enumerate(answers)]  # fmt: skip


BIASED = ("CLSE", "CLSE-Hybrid", "random", "top rows")
"""The selections whose positional bias the ledger compares with FastV's ("top rows": the control)."""


def positional_bias(rows, items, budget: str, n_image: int, seed: int) -> tuple[dict, dict]:
    """The positional-bias rows' numbers at ``budget``: for each of :data:`BIASED`, ``|FastV's mean shift| − |its
    mean shift|`` (:func:`bias_difference`, one random stream per method) and every mean shift (FastV's included).
    The control, "top rows", keeps the first ``k`` visual tokens of every item (:func:`fixed_rows`)."""
    k = len(next(r["kept_tokens"] for r in rows if r["method"] == "FastV" and r["budget"] == budget))
    rows = rows + fixed_rows(items, range(k), "top rows", budget, n_image)
    gain = {m: bias_difference(rows, m, "FastV", budget, n_image, make_rng(seed, m)) for m in BIASED}
    shift = {m: float(row_shift(rows, m, budget, n_image).mean()) for m in ("FastV", *BIASED)}
    return gain, shift


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
    for item in items:
        counts[list(vp.item_patches(item, n_image))] += 1
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
        estimate = Estimate.mean_of(shift[~np.isnan(shift)])
        out[method] = {"row shift": f"{estimate:+.3f}", "lower half": round(lower, 3)}
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


NEAR_FIRST_STAGE = "2/9"
"""The budget whose share (8/36 = 22%) is nearest the share the paper's "64" keeps at its first stage (19%)."""


def evidence(rows, budgets, rng: np.random.Generator) -> dict:
    """The estimates the ledger judges (paired by item, bootstrap intervals over items)."""
    names = list(budgets)
    tight = names[-1]
    e = {name: vp.accuracy(rows, name) for name in ("full", "floor", "ceiling")} | {"tight": tight}
    for method in COMPARED:
        e[f"{method} − FastV"] = vp.paired_difference(rows, method, "FastV", names, rng)
    for other in ("CLSE (no high-pass)", "one layer (S^K)", "random", "DART", "VisPruner"):
        e[f"CLSE − {other}"] = vp.paired_difference(rows, "CLSE", other, names, rng)
    for method in ("CLSE-Hybrid", "random", STAGED):
        if any(r["method"] == method for r in rows):
            e[f"{method} keeps"], e[f"{method} closes"] = vp.retention(rows, method, tight, rng)
    if any(r["method"] == STAGED for r in rows):
        e[f"{STAGED} − CLSE-Hybrid"] = vp.paired_difference(rows, STAGED, "CLSE-Hybrid", names, rng)
    if NEAR_FIRST_STAGE in budgets:  # the share nearest the paper's first stage of "64" (110/576 = 19%)
        for method in ("CLSE-Hybrid", STAGED):
            if any(r["method"] == method for r in rows):
                e[f"{method} keeps at {NEAR_FIRST_STAGE}"] = vp.retention(rows, method, NEAR_FIRST_STAGE, rng)[0]
    # added later, drawn last so that the estimates above keep their bootstrap draws
    if any(r["method"] == PDROP for r in rows):
        e[f"{PDROP} − FastV"] = vp.paired_difference(rows, PDROP, "FastV", names, rng)
    if any(r["method"] == clse.MEAN_REMOVED for r in rows):
        e[HIGH_PASS_GAIN] = vp.paired_difference(rows, "CLSE", clse.MEAN_REMOVED, names, rng)
    return e


# --------------------------------------------------------------------------------------------------------------
# The finer grid: does the high-pass do more than remove the mean?
# --------------------------------------------------------------------------------------------------------------

FINE_METHODS = ("FastV", "random", "CLSE", clse.MEAN_REMOVED, "CLSE (no high-pass)", "one layer (S^K)", "CLSE-Hybrid")
"""The methods run on the 12 × 12 model: CLSE, its hybrid and its ablations, FastV and random selection."""


def fine_methods(seed: int = 0, cutoff: float = clse.CUTOFF) -> list:
    """:data:`FINE_METHODS` as methods of :func:`llmtheory.visual_pruning.evaluate`."""
    return [m for m in vp.baselines() + clse.methods(seed, cutoff) if m.name in FINE_METHODS]


HIGH_PASS_GAIN = f"CLSE − {clse.MEAN_REMOVED}"
"""The estimate the finer grid is for: what the Gaussian high-pass adds to plain mean removal."""


def fine_evidence(rows, coarse_rows, budgets, rng: np.random.Generator) -> dict:
    """The finer grid's estimates (paired by item, bootstrap intervals over items): the references, CLSE against
    plain mean removal (:data:`HIGH_PASS_GAIN`) on the fine rows and, as the control, on the 6 × 6 rows
    (``coarse_rows``), and CLSE against its other ablations, FastV and random selection."""
    names = list(budgets)
    e = {name: vp.accuracy(rows, name) for name in ("full", "floor", "ceiling")}
    e[HIGH_PASS_GAIN] = vp.paired_difference(rows, "CLSE", clse.MEAN_REMOVED, names, rng)
    e[f"{HIGH_PASS_GAIN} (6 × 6)"] = vp.paired_difference(coarse_rows, "CLSE", clse.MEAN_REMOVED, names, rng)
    for other in ("CLSE (no high-pass)", "one layer (S^K)", "FastV", "random"):
        e[f"CLSE − {other}"] = vp.paired_difference(rows, "CLSE", other, names, rng)
    e["CLSE-Hybrid − FastV"] = vp.paired_difference(rows, "CLSE-Hybrid", "FastV", names, rng)
    for grid, table in (("12 × 12", rows), ("6 × 6", coarse_rows)):
        e[f"answers changed ({grid})"] = answer_changes(table, "CLSE", clse.MEAN_REMOVED, names)
    return e


def answer_changes(rows, a: str, b: str, budgets) -> dict[str, int]:
    """On how many (item, budget) pairs ``a`` and ``b`` answer differently: ``{"pairs", "a right", "b right"}``
    (the last two: pairs where only that method is right)."""
    right = {(r["method"], r["item"], r["budget"]): r["correct"] for r in rows if r["method"] in (a, b)}
    pairs = [(i, budget) for (m, i, budget) in right if m == a and budget in budgets]
    only_a = sum(right[(a, *p)] and not right[(b, *p)] for p in pairs)
    only_b = sum(right[(b, *p)] and not right[(a, *p)] for p in pairs)
    return {"pairs": len(pairs), "a right": only_a, "b right": only_b}


def token_counts(n_image: int, layers: int, prune_layer: int, k: int, stages) -> dict[str, float]:
    """The token arithmetic the ledger reads: the official schedule's per-layer averages (its "192" counted both ways,
    its "64" with layer 0's 576 against FastV keeping 64 from ``K = 2``, the first stage of its "64"), and ours at
    the tightest budget (the staged ``stages``, and one stage keeping ``k`` tokens from ``prune_layer``)."""
    official = clse.staged_schedule(576, clse.OFFICIAL_LAYERS, 192)
    paper_64 = clse.staged_schedule(576, clse.OFFICIAL_LAYERS, 64)
    return {
        "official_as_62": clse.layer_average(official, 576, clse.OFFICIAL_LAYERS, count_first=False),
        "official_all": clse.layer_average(official, 576, clse.OFFICIAL_LAYERS, count_first=True),
        "first_stage_64": paper_64[0].kept,
        "staged_64": clse.layer_average(paper_64, 576, clse.OFFICIAL_LAYERS),
        "fastv_64": (2 * 576 + (clse.OFFICIAL_LAYERS - 2) * 64) / clse.OFFICIAL_LAYERS,
        "ours_staged": clse.layer_average(stages, n_image, layers),
        "ours_single": (n_image * prune_layer + k * (layers - prune_layer)) / layers,
    }


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
