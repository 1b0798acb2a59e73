"""The ``priortr`` chapter's experiment: the pruning layer, the prior's evidence, example maps, the efficiency
run and the estimates the claims ledger judges. The method itself is in :mod:`llmtheory.priortr`, the shared
harness (baselines, references, evaluation) in :mod:`llmtheory.visual_pruning`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy.stats import spearmanr

from . import priortr as pt
from . import visual_pruning as vp
from .claims import Estimate
from .plotting import PALETTE
from .vlm import grid_shape

MIN_GAP = 0.20
"""The pruning layer must leave at least this much accuracy between the full model and the floor."""
KNOWS_GAP = 0.10
"""Below this gap between the full model and the floor on the test items, the image does not matter to the model
and the accuracy claims are not testable (a random model's gap is about zero)."""


PUBLISHED = pd.DataFrame(
    {
        "FastV": (89.8, 85.1, 70.7),
        "PDrop": (96.0, 92.7, 74.4),
        "SparseVLM": (97.4, 91.2, 81.4),
        "PruMerge": (89.1, 85.3, 83.0),
        "VisPruner": (98.5, 96.6, 91.7),
        "PriorTR": (99.5, 98.2, 94.5),
    },
    index=pd.Index([192, 128, 64], name="tokens kept of 576"),
)
"""The paper's LLaVA-1.5-7B table: average over 12 benchmarks, % of the full model (via the research note; CLSE's
row is left out, it averages other benchmarks)."""


def depth_table(depth_rows) -> pd.DataFrame:
    """Accuracy by layer ``K`` at which every visual token is dropped, per question group and overall."""
    frame = pd.DataFrame(depth_rows)
    table = frame.pivot_table(index="layer", columns="group", values="correct", aggfunc="mean")
    table["all"] = frame.groupby("layer")["correct"].mean()
    return table


def choose_layer(depth_rows, min_gap: float = MIN_GAP) -> int:
    """The deepest ``K ≥ 1`` at which dropping every visual token costs at least ``min_gap`` of the full model's
    accuracy (K = 1 when none does: the model does not use the image, and the comparisons are not testable)."""
    overall = depth_table(depth_rows)["all"]
    full = overall.iloc[-1]
    deep_enough = [k for k in overall.index[1:-1] if full - overall[k] >= min_gap]
    return int(max(deep_enough)) if deep_enough else 1


def prior_evidence(model, processor, items, layer: int, batch_size: int = 64, query: str = "question") -> dict:
    """Per item, the Spearman correlation of ``Q`` with ``P`` (the last token's row, and the ``question`` mean),
    the control (``P`` against the prior of the *next* item's image), and the largest difference between the null
    row's ``Q`` and the ``Q`` of a second pass truncated after the null token (PriorTR-2F, ``truncate``).

    Where ``Q`` sits, per item: whether its largest token is the logo's (``prior on logo``) and the chance of that
    for a token drawn uniformly from the occupied patches, shapes and logo (``logo chance``), whether it is on an
    occupied patch (``prior on object``), ``Q``'s mass there (``prior mass on objects``), their share of the
    patches (``object share``) and ``Q``'s largest share (``prior peak share``). For local questions, the rank
    (1 = first) of the best answering patch under ``S`` (``priortr-eq-score``) and under ``P`` alone (``answer
    rank S``, ``answer rank P``; NaN for global ones), with ``P`` from the rows ``query``; and each item's
    ``kind``."""
    keys = ("last", "question", "other image", "prior on logo", "logo chance", "prior on object",
            "prior mass on objects", "prior peak share", "object share", "answer rank S", "answer rank P",
            "kind")  # fmt: skip
    out = {key: [] for key in keys} | {"max_difference": 0.0}
    for chunk in vp.chunks(model, processor, items, batch_size, 0):
        context = pt.attention_context(model, chunk.inputs, layer)
        q = pt.prior_attention(context)
        p_last, p_question = pt.task_attention(context, "last"), pt.task_attention(context, "question")
        q_share, p = pt.normalise(q).cpu(), pt.normalise(pt.task_attention(context, query)).cpu()
        s = pt.vinfo_scores(pt.task_attention(context, query), q).cpu()
        other = q.roll(1, dims=0)
        for i, (scene, question) in enumerate(chunk.items):
            out["last"].append(spearmanr(p_last[i].cpu(), q[i].cpu()).statistic)
            out["question"].append(spearmanr(p_question[i].cpu(), q[i].cpu()).statistic)
            out["other image"].append(spearmanr(p_last[i].cpu(), other[i].cpu()).statistic)
            logo = vp.answer_patches((scene.logo.patch,), chunk.n_image) if scene.logo else ()
            objects = sorted(set(vp.answer_patches(scene.occupied, chunk.n_image)) | set(logo))
            peak = int(q_share[i].argmax())
            out["prior on logo"].append(peak in logo)
            out["logo chance"].append(len(logo) / len(objects) if objects else 0.0)
            out["prior on object"].append(peak in objects)
            out["prior mass on objects"].append(float(q_share[i, objects].sum()))
            out["prior peak share"].append(float(q_share[i].max()))
            out["object share"].append(len(objects) / chunk.n_image)
            answer = list(vp.answer_patches(question.patches, chunk.n_image))
            for name, score in (("answer rank S", s[i]), ("answer rank P", p[i])):
                rank = int((score > score[answer].max()).sum()) + 1
                out[name].append(rank if question.group == "local" else np.nan)
            out["kind"].append(question.kind)
        images = [scene.image() for scene, _ in chunk.items]
        second = pt.two_forward_prior(model, processor, chunk.inputs, images, layer, "truncate")
        out["max_difference"] = max(out["max_difference"], float((second - q).abs().max()))
    for key in ("last", "question", "other image"):
        out[key] = np.nan_to_num(np.array(out[key], dtype=float))  # a constant row has no rank correlation: 0
    return out


def example_maps(model, processor, items, layer: int, query: str = "question") -> list[dict]:
    """``P``, ``Q``, ``S`` and the last row's ``P`` (FastV's ranking) on the patch grid for a few items, with what
    the figure marks (the answering patches, the logo, the tokens PriorTR and FastV keep at 1/9)."""
    chunk = next(vp.chunks(model, processor, items, len(items), 0))
    context = pt.attention_context(model, chunk.inputs, layer)
    fastv = vp.fastv_scores(context)
    maps = pt.maps(context, query) | {"P_last": pt.normalise(fastv)}
    side = grid_shape(chunk.n_image)[0]
    out = []
    for i, (scene, question) in enumerate(items):
        grids = {name: m[i].reshape(side, side).cpu().numpy() for name, m in maps.items()}
        k = vp.keep_count(chunk.n_image, 1 / 9)
        out.append(grids | {"image": scene.image(), "question": question, "side": side,
                            "answer": vp.answer_patches(question.patches, chunk.n_image),
                            "logo": vp.answer_patches((scene.logo.patch,), chunk.n_image) if scene.logo else (),
                            "kept_priortr": vp.top_k(maps["S"][i : i + 1], k)[0].tolist(),
                            "kept_fastv": vp.top_k(fastv[i : i + 1], k)[0].tolist()})  # fmt: skip
    return out


MAP_TITLES = {"Q": "prior Q (null token)", "P_last": "last row (FastV)", "P": "task P ({query})", "S": "S = P log(P/Q)"}
"""The maps of :func:`example_maps` that :func:`plot_maps` draws, left to right, with their titles."""


def plot_maps(examples: list[dict], query: str):
    """One row per item of :func:`example_maps`: the image, then the maps of :data:`MAP_TITLES` (``S`` on a
    diverging scale), the tokens FastV and PriorTR keep at 1/9 as dots, the answering patches outlined in green and
    the logo in white."""
    import matplotlib.pyplot as plt

    titles = {name: title.format(query=query) for name, title in MAP_TITLES.items()}
    fig, axes = plt.subplots(len(examples), 5, figsize=(10.5, 2.1 * len(examples)))
    for index, (row, ex) in enumerate(zip(axes, examples, strict=True)):
        row[0].imshow(ex["image"])
        row[0].set_ylabel(f"{ex['question'].text}\nanswer: {ex['question'].answer}", fontsize=7)
        for ax, name in zip(row[1:], titles, strict=True):
            limit = abs(ex["S"]).max()
            ax.imshow(
                ex[name], **({"cmap": "coolwarm", "vmin": -limit, "vmax": limit} if name == "S" else {"cmap": "magma"})
            )
            if index == 0:
                ax.set_title(titles[name], fontsize=8)
        for ax, kept in ((row[2], ex["kept_fastv"]), (row[4], ex["kept_priortr"])):
            vp.mark_kept(ax, kept, ex["side"])
        vp.frame_map_row(row, ex, (("answer", "#00FF66"), ("logo", "white")))
    return fig


METHOD_COLOURS = {
    "FastV": PALETTE[1],
    "random": "#999999",
    "spatial": PALETTE[4],
    "VisPruner": PALETTE[6],
    "DART": "#8C510A",  # brown: black is the full model's line
    "P alone": PALETTE[5],
    "P − Q": PALETTE[3],
    "PriorTR": PALETTE[0],
    pt.TWO_FORWARD: PALETTE[2],
}
"""The colour of each method in the chapter's figures."""


def by_kind(rows, budget: str, intervals: bool = False) -> pd.DataFrame:
    """Accuracy by question kind and group (local, global) of every method at ``budget`` and of the references;
    with ``intervals``, as text with its Wilson interval over the items of that cell."""
    frame = pd.DataFrame(rows)
    picked = frame[(frame["budget"] == budget) | (frame["budget"] == "—")]
    tables = []
    for column in ("kind", "group"):
        grouped = picked.groupby(["method", column])["correct"]
        cells = grouped.agg(lambda c: Estimate.proportion(int(c.sum()), len(c)))
        tables.append(cells.unstack(column))
    table = pd.concat(tables, axis=1)
    return table.map(lambda e: f"{e:.2f}") if intervals else table.map(lambda e: e.value)


def knows_the_image(rows, min_gap: float = KNOWS_GAP) -> bool:
    """Whether the full model beats the floor (no visual token from K on) by ``min_gap``: else pruning methods
    cannot differ and the accuracy claims are not testable."""
    return vp.accuracy(rows, "full").value - vp.accuracy(rows, "floor").value >= min_gap


COMPARED = ("PriorTR", "P alone", "P − Q", "random")
"""The methods whose paired difference from FastV the ledger reads (``P alone``: PriorTR's rows without the prior)."""


ATTENTION_FREE = ("VisPruner", "DART")
"""The attention-free baselines of :func:`llmtheory.visual_pruning.attention_free_baselines`, compared with FastV
and PriorTR when the sweep ran them."""


def evidence(rows, budgets, rng: np.random.Generator) -> dict:
    """The estimates the ledger judges (paired by item, bootstrap intervals over items). The gap's growth is
    measured from 1/3 (the paper's 192 of 576) to the tightest budget. VisPruner and DART are compared with FastV
    and PriorTR when the sweep ran them."""
    names = list(budgets)
    tight, loose = names[-1], ("1/3" if "1/3" in names else names[0])
    e = {name: vp.accuracy(rows, name) for name in ("full", "floor", "ceiling")} | {"tight": tight, "loose": loose}
    for method in COMPARED:
        e[f"{method} − FastV"] = vp.paired_difference(rows, method, "FastV", names, rng)
        e[f"{method} − FastV growth"] = vp.gap_growth(rows, method, "FastV", tight, loose, rng)
    swept = {r["method"] for r in rows}
    for method in (m for m in ATTENTION_FREE if m in swept):
        e[f"{method} − FastV"] = vp.paired_difference(rows, method, "FastV", names, rng)
    for other in ("P alone", "P − Q", pt.TWO_FORWARD, *(m for m in ATTENTION_FREE if m in swept)):
        e[f"PriorTR − {other}"] = vp.paired_difference(rows, "PriorTR", other, names, rng)
    for method in ("PriorTR", "random"):
        for budget in ("1/3", tight):
            e[f"{method}@{budget}"] = vp.accuracy(rows, method, budget)
            e[f"{method} keeps@{budget}"], e[f"{method} closes@{budget}"] = vp.retention(rows, method, budget, rng)
    return e


GAP_NAMES = {
    "PriorTR − FastV": "priortr_vs_fastv",
    "P alone − FastV": "alone_vs_fastv",
    "P − Q − FastV": "pq_vs_fastv",
    "random − FastV": "random_vs_fastv",
    "PriorTR − P alone": "priortr_vs_alone",
    "PriorTR − P − Q": "priortr_vs_difference",
    f"PriorTR − {pt.TWO_FORWARD}": "one_vs_two",
    "VisPruner − FastV": "vispruner_vs_fastv",
    "DART − FastV": "dart_vs_fastv",
    "PriorTR − VisPruner": "priortr_vs_vispruner",
    "PriorTR − DART": "priortr_vs_dart",
}
"""The paired accuracy differences of :func:`evidence` that the prose quotes, and their names there (``—`` for a
method the sweep did not run)."""


def _mean(values, spec: str) -> str:
    """The mean of the finite ``values`` with its t-interval, as text (``—`` when there are none)."""
    values = [v for v in np.asarray(values, dtype=float) if np.isfinite(v)]
    return f"{Estimate.mean_of(values):{spec}}" if len(values) > 1 else "—"


def _share(flags) -> str:
    """A proportion with its Wilson interval, as text."""
    flags = [bool(f) for f in flags]
    return f"{Estimate.proportion(sum(flags), len(flags)):.0%}" if flags else "—"


RECALL_NAMES = {
    "FastV": "recall_fastv",
    "random": "recall_random",
    "P alone": "recall_alone",
    "PriorTR": "recall_priortr",
}
"""The methods whose recall of the answering patches at the loose budget the prose quotes, and their names there."""


def prose_numbers(e: dict, correlation: dict, rows, budgets, prior: dict) -> dict[str, str]:
    """The numbers the chapter's prose quotes (``{glue:text}`` names → text) from the :func:`evidence` ``e``, the
    mean Spearman ``correlation`` of ``P`` with ``Q`` and :func:`prior_evidence` ``prior``: the loose budget, the
    references' accuracies, the paired differences of :data:`GAP_NAMES`, local and global accuracy of the full model
    and the ceiling at the tightest budget, recall at the loose budget (:data:`RECALL_NAMES`), the `logo` accuracy of
    PriorTR and P alone at Table 1's budget (the second tightest), where the prior sits (on the logo, against the
    chance of a random occupied patch, and whether its Wilson interval lies above that chance; on the objects) and
    the rank of the answering patch under ``S`` and ``P``."""
    out = {"loose_budget": e["loose"]}
    out |= {f"acc_{name}": f"{e[name].value:.0%}" for name in ("full", "floor", "ceiling")}
    out |= {f"pq_{name}": f"{correlation[name].value:.2f}" for name in ("last", "question")}
    out |= {name: f"{e[key]:+.3f}" if key in e else "—" for key, name in GAP_NAMES.items()}
    local_global = by_kind(rows, list(budgets)[-1])
    for name in ("full", "ceiling"):
        out |= {f"{name}_{column}": f"{local_global.loc[name, column]:.0%}" for column in ("local", "global", "count")}
    for method, name in RECALL_NAMES.items():
        out[name] = f"{vp.mean_recall(rows, method, e['loose']):.0%}"
    table_budget = list(budgets)[-2] if len(budgets) > 1 else list(budgets)[-1]
    logo = by_kind(rows, table_budget, intervals=True)
    out["table_budget"] = table_budget
    for method, name in (("PriorTR", "logo_priortr"), ("P alone", "logo_alone")):
        out[name] = logo.loc[method, "logo"] if "logo" in logo.columns else "—"
    out["q_logo"] = _share(prior["prior on logo"])
    out["q_logo_chance"] = f"{np.mean(prior['logo chance']):.0%}"
    on_logo = [bool(f) for f in prior["prior on logo"]]
    favoured = on_logo and Estimate.proportion(sum(on_logo), len(on_logo)).low > np.mean(prior["logo chance"])
    out["logo_favoured"] = "favours it over a random occupied patch" if favoured else "does not favour it"
    out["q_on_objects"] = _share(prior["prior on object"])
    out["q_mass_objects"] = _mean(prior["prior mass on objects"], ".0%")
    out["objects_share"] = f"{np.mean(prior['object share']):.1%}"
    out["q_peak"] = _mean(prior["prior peak share"], ".2f")
    kinds = np.asarray(prior["kind"])
    for group, picked in (("local", np.ones(len(kinds), dtype=bool)), ("logo", kinds == "logo")):
        for score in ("S", "P"):
            out[f"rank_{score.lower()}_{group}"] = _mean(np.asarray(prior[f"answer rank {score}"])[picked], ".1f")
    return out


def timing_plans(model, inputs: dict, n_image: int, share: float) -> dict[str, tuple]:
    """The plans the efficiency run times: the full model twice (the control), PriorTR's rule (scores and pruning
    in the pass), and a fixed set of as many tokens (pruning without scoring)."""
    k = vp.keep_count(n_image, share)
    return {
        "full": (None, False),
        "full (again)": (None, False),
        "PriorTR": (vp.rule_from_scores(pt.priortr_scores(), k), True),
        "fixed tokens": (torch.arange(k), False),
    }


def kept_by_plan(n_image: int, share: float) -> dict[str, int]:
    """The visual tokens each plan of :func:`timing_plans` keeps: all for the two full runs, ``k`` for PriorTR and
    the fixed-token plan (for :func:`llmtheory.visual_pruning.plan_efficiency` and ``caches_hold``)."""
    k = vp.keep_count(n_image, share)
    return {"full": n_image, "full (again)": n_image, "PriorTR": k, "fixed tokens": k}


def full_tier_memory(n_image: int = 576, text_tokens: int = 40, layer: int = 3, batch: int = 1) -> dict:
    """What a ``full`` run on ``llava-hf/llava-1.5-7b-hf`` in float16 holds: weights (7.06 billion parameters, from
    its config), the KV cache of one prompt, and the one eager attention matrix PriorTR reads (layer K − 1)."""
    s = vp.LLAVA_7B
    sequence = n_image + text_tokens
    weights = 7.06e9 * 2
    return {
        "weights_gb": weights / 1e9,
        "kv_gb": batch * vp.kv_bytes(s, sequence, 2) / 1e9,
        "attention_gb": batch * s.heads * sequence**2 * 2 / 1e9,
        "flops_full_t": vp.prefill_flops(s, sequence, n_image, layer, n_image) / 1e12,
        "flops_64_t": vp.prefill_flops(s, sequence, n_image, layer, 64) / 1e12,
    }


def photo_maps(model, processor, path: str, question: str, layer: int, query: str = "question") -> dict:
    """``P``, ``Q`` and ``S`` on the patch grid for an image file (a photograph for a real LLaVA)."""
    from PIL import Image

    from . import scenes as sc

    image = Image.open(path).convert("RGB")
    if vp._is_zoo_processor(processor):
        image = image.resize((sc.IMAGE_SIZE, sc.IMAGE_SIZE))
    array = np.asarray(image)
    inputs = vp.to_model(model, vp.make_batch(processor, [array], [question]))
    context = pt.attention_context(model, inputs, layer)
    side = grid_shape(int(context.image_positions.shape[1]))[0]
    return {name: m[0].reshape(side, side).float().cpu().numpy() for name, m in pt.maps(context, query).items()} | {
        "image": array,
        "side": side,
    }
