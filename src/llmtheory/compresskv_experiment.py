"""The ``compresskv`` chapter's experiment helpers: why a claim cannot be tested at this size, the numbers its prose
quotes, and its figures. The method and the measurements are in :mod:`llmtheory.compresskv`."""

from __future__ import annotations

from . import compresskv as ckv
from .plotting import PALETTE, set_log_ticks

ONE_PERCENT = 0.0105
"""The smallest budget judged against the paper's "about 0.7%" must keep at most this share of the KV (1%,
with room for rounding)."""


def not_testable_reasons(evidence: dict, model: str, length: int, needle_need: int, heads: ckv.HeadScores) -> dict:
    """Why rows of the ledger cannot be tested, as the ``"; not testable: ..."`` suffix of their ``ours`` text
    (empty when they can): ``untestable`` (the model does not retrieve with its full cache), ``too_coarse`` (the
    smallest budget keeps more than 1% of the KV, or too few positions beyond the window of a ``length``-token
    context to hold ``needle_need`` tokens: the needle plus the pooling kernel), and ``no_copy_sets`` (the masking
    contrast, when no head has a copy-paste score)."""
    e = evidence
    room = ckv.budget_tokens(e["smallest"], length) - ckv.WINDOW  # positions beyond the window
    if e["share_smallest"] > ONE_PERCENT:
        too_coarse = f"; not testable: the smallest budget keeps {e['share_smallest']:.1%} > 1% of the KV"
    elif room < needle_need:
        too_coarse = (
            f"; not testable: {room} positions beyond the window cannot hold a needle plus the pooling kernel "
            f"({needle_need})"
        )
    else:
        too_coarse = ""
    full = e["full"].value
    return dict(
        untestable="" if e["retrieves"] else f"; not testable: {model} answers only {full:.0%} with its full cache",
        too_coarse=too_coarse,
        no_copy_sets=f"no count has that many heads with a copy score ({int((heads.traditional > 0).sum())} have one)",
    )


def prose_numbers(evidence: dict, context_tokens: int, heads: ckv.HeadScores) -> dict[str, str]:
    """The numbers the chapter's text quotes (glue name → text), from the claims' evidence."""
    e = evidence
    numbers = {
        "smallest_share": f"{e['share_smallest']:.1%}",
        "three_share": f"{e['share_tight']:.1%}",
        "smallest_tokens": str(ckv.budget_tokens(e["smallest"], context_tokens)),
        "ckv_smallest": f"{e['compresskv_smallest']:.0%}",
        "ckv_three": f"{e['compresskv_tight']:.0%}",
        "n_copy_heads": str(int((heads.traditional > 0).sum())),
    }
    for method in ("compresskv", "pyramidkv", "snapkv", "cake", "streamingllm"):
        numbers[f"tight_{method}"] = f"{e['tight_mean'][method]:.2f}"
    return numbers


def plot_budget_curves(ax, results, methods, budgets, colours: dict, full_accuracy: float) -> None:
    """Accuracy against budget (log axis, % of the KV) for each of ``methods`` with Wilson 95% bars, dodged
    sideways so that the bars stay readable, and the full cache's accuracy as a dashed line (Figure 2)."""
    shown = [b for b in budgets if b < 1]
    for offset, method in enumerate(methods):
        cis = [ckv.accuracy_at(results, method, b) for b in shown]
        x = [100 * b * (1 + 0.03 * (offset - len(methods) / 2)) for b in shown]  # dodge the error bars
        low, high = [c.value - c.low for c in cis], [c.high - c.value for c in cis]
        ax.errorbar(x, [c.value for c in cis], yerr=[low, high], fmt="o-", ms=4, capsize=2, lw=1.2,
                    color=colours[method], label=method)  # fmt: skip
    ax.axhline(full_accuracy, color="grey", ls="--", label="full cache")
    set_log_ticks(ax, [100 * b for b in shown])
    ax.set(xlabel="KV budget (% of the context's KV)", ylim=(-0.03, 1.03))
    ax.legend(fontsize=7, ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.18))


def plot_masking(ax, table, counts, draws: int) -> None:
    """NIAH accuracy with the top SRHs, the top copy-paste heads (only at the counts where that many heads have a
    score) or random heads (mean and range over ``draws`` draws) masked (:func:`~llmtheory.compresskv.
    masking_summary`'s ``table``), against the number masked (Figure 4, left)."""
    for kind, colour in zip(("SRHs", "retrieval heads"), PALETTE, strict=False):
        part = table.loc[kind].query("testable")
        if len(part):
            ax.plot(part.index, part["accuracy"], "o-", color=colour, label=f"mask top {kind}")
        else:
            ax.plot([], [], " ", label=f"top {kind}: too few with a score")
    random_part = table.loc["random heads"]
    ax.fill_between(random_part.index, random_part["lowest"], random_part["highest"], color=PALETTE[2], alpha=0.25)
    ax.plot(random_part.index, random_part["accuracy"], "s--", color=PALETTE[2],
            label=f"mask random heads (mean, range of {draws} draws)")  # fmt: skip
    ax.axhline(table.loc[("none", 0), "accuracy"], color="grey", ls="--", label="no mask")
    ax.set(xlabel="heads masked", ylabel="NIAH accuracy (full cache)", title="Masking heads", xticks=list(counts))
    ax.set_ylim(-0.03, 1.03)
    ax.legend(fontsize=7)


def plot_multi(ax, multi, budgets, colours: dict) -> None:
    """Exact-match accuracy of the first question (solid, in the observation window) and of the follow-up
    questions (dashed) answered from one compressed cache, against budget; grey lines: the full cache (Figure 4,
    right). ``multi``: the rows of :func:`~llmtheory.compresskv.multi_question_sweep` with an ``asked`` column."""
    curves = multi.query("method != 'full'").groupby(["asked", "method", "budget"])["correct"].mean()
    styles = (("first (in the window)", "o-", "-"), ("follow-ups", "s--", "--"))
    for method in ("streamingllm", "snapkv", "pyramidkv", "compresskv"):
        for asked, style, _ in styles:
            part = curves[asked][method]
            label = method if asked.startswith("first") else None
            ax.plot(100 * part.index, part.values, style, color=colours[method], label=label)
    full = multi.query("method == 'full'").groupby("asked")["correct"].mean()
    for asked, _, line in styles:
        ax.axhline(full[asked], color="grey", ls=line, lw=1)
    ax.plot([], [], "k-", label="first question")
    ax.plot([], [], "k--", label="follow-up questions")
    set_log_ticks(ax, [100 * b for b in budgets if b < 1])
    ax.set(xlabel="KV budget (% of the context's KV)", ylabel="exact-match accuracy", ylim=(-0.03, 1.03))
    ax.set_title("Several questions, one cache")
    ax.legend(fontsize=7, ncols=3, loc="upper center", bbox_to_anchor=(0.5, -0.2))


def masking_accuracies(table) -> str:
    """What the masking experiment measured, from :func:`~llmtheory.compresskv.masking_summary`: accuracy with
    nothing masked, then per head count with the top SRHs and with random heads masked (mean over draws), e.g.
    "no mask 1.00; SRHs 1.00 / 0.75 (1 / 2 heads); random heads 1.00 / 1.00"."""
    counts = sorted(c for c in table.loc["SRHs"].index)
    kinds = [
        f"{kind} " + " / ".join(f"{table.loc[(kind, c), 'accuracy']:.2f}" for c in counts)
        for kind in ("SRHs", "random heads")
    ]
    return (
        f"accuracy with no mask {table.loc[('none', 0), 'accuracy']:.2f}; masked: "
        + "; ".join(kinds)
        + (f" ({' / '.join(map(str, counts))} heads)")
    )
