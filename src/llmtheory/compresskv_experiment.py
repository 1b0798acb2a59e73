"""The ``compresskv`` chapter's experiment, apart from the method in :mod:`llmtheory.compresskv`: the toy world's
needle-in-a-haystack prompts, every method at every budget (one question, and several from one cache), where the
heads look and what masking them does, decode timings and the memory and time of a run, the statistics and the
evidence behind the claims, why a claim cannot be tested at this size, the numbers the prose quotes, and the
figures."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from . import zoo
from .compresskv import (
    PREFILL_CHUNK,
    WINDOW,
    Calibration,
    Geometry,
    HeadScores,
    Prefill,
    Scorer,
    _all_kept,
    answer_questions,
    answers_from_plans,
    budget_tokens,
    cache_bytes,
    compress_cache,
    geometry,
    greedy_decode,
    top_heads_overall,
)
from .plotting import PALETTE, set_log_ticks
from .stats import bootstrap_mean

# ----------------------------------------------------------------------------------------------------------------
# The NIAH prompts of the toy world
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

    @property
    def value(self) -> str:
        """The needle's value (what :func:`~llmtheory.compresskv.contains_value` looks for in an answer)."""
        return self.stack.answer


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


def needle_span(tokenizer, context_words: Sequence[str], start: int, length: int) -> tuple[int, int]:
    """Token positions ``[start, end)`` of the needle that starts at word ``start`` of the context (counting the
    special tokens the tokenizer adds in front)."""
    before = len(tokenizer(" ".join(context_words[:start]))["input_ids"]) if start else _prefix_tokens(tokenizer)
    through = len(tokenizer(" ".join(context_words[: start + length]))["input_ids"])
    return before, through


def _prefix_tokens(tokenizer) -> int:
    return len(tokenizer("")["input_ids"])


# ----------------------------------------------------------------------------------------------------------------
# Every method over the budgets
# ----------------------------------------------------------------------------------------------------------------


def random_heads_per_layer(shape: Geometry, k: int, rng: np.random.Generator) -> list[list[int]]:
    """``k`` query heads per layer drawn at random (without replacement within a layer)."""
    return [sorted(int(h) for h in rng.choice(shape.heads, size=k, replace=False)) for _ in range(shape.layers)]


def accuracy_sweep(model, items, states, methods, fractions, calibration: Calibration, scorer: Scorer, progress=None):
    """Every method at every budget below 100% on every item (its prefill in ``states``; one compressed cache per method
    and budget, the methods of a budget decoded in one batch by :func:`~llmtheory.compresskv.answers_from_plans`), and
    ``full`` alone at 100% (every method's 100% plan is the full cache: tested), scored by ``scorer``; item ``i`` uses
    random-head draw ``i`` (so the controls average over draws). Returns a list of row dicts."""
    rows = []
    for index, item, state, fraction, chosen, plans in _plans_by_budget(
        model, items, states, methods, fractions, calibration, progress, draw_per_item=True
    ):
        for method, result in zip(chosen, answers_from_plans(model, state, plans, item, scorer), strict=True):
            rows.append(
                dict(
                    item=index,
                    depth=item.depth,
                    method=method,
                    budget=fraction,
                    tokens=budget_tokens(fraction, state.length),
                    kv_fraction=result.kv_fraction,
                    correct=result.correct,
                    exact=result.exact,
                    kv_bytes=result.kv_bytes,
                )
            )
    return rows


def multi_question_sweep(model, items, states, methods, fractions, calibration: Calibration, progress=None):
    """Several questions about different needles from ONE compressed cache per item and method (the methods of a budget
    in one batch, :func:`~llmtheory.compresskv.answer_questions`; exact match). Returns rows with ``question`` 0 for the
    question in the observation window, 1, 2, ... for the later ones; ``full`` runs at 100% only, the other methods
    below 100%."""
    rows = []
    for index, item, state, fraction, chosen, plans in _plans_by_budget(
        model, items, states, methods, fractions, calibration, progress
    ):
        answers = answer_questions(model, state, plans, item.expected, item.followups)
        rows += [
            dict(item=index, method=method, budget=fraction, question=q, correct=ok)
            for method, outcomes in zip(chosen, answers, strict=True)
            for q, ok in enumerate(outcomes)
        ]
    return rows


def _plans_by_budget(model, items, states, methods, fractions, calibration, progress, draw_per_item=False):
    """For each item and budget: the methods that run there and their plans. ``full`` runs at 100% only and the other
    methods below it (at 100% every method's plan is the full cache: tested), so the full cache is decoded once;
    random heads are draw ``i`` for item ``i`` when ``draw_per_item``, else draw 0. Yields ``(index, item, state,
    fraction, methods, plans)``."""
    shape = geometry(model)
    pairs = list(zip(items, states, strict=True))
    for index, (item, state) in enumerate(progress(pairs) if progress else pairs):
        for fraction in fractions:
            chosen = [m for m in methods if (m == "full") == (fraction >= 1)]
            if chosen:
                draw = index if draw_per_item else 0
                plans = [calibration.plan(method, state, fraction, shape, draw=draw) for method in chosen]
                yield index, item, state, fraction, chosen, plans


# ----------------------------------------------------------------------------------------------------------------
# Where the heads look, and masking them
# ----------------------------------------------------------------------------------------------------------------


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


@torch.no_grad()
def full_cache_correct(model, item: NeedleItem) -> bool:
    """Greedy exact match with the full cache, by teacher forcing: the argmax after the prompt and after each
    expected token is the next expected token (one forward pass; the same verdict as greedy decoding)."""
    ids = torch.tensor([item.prompt + item.expected[:-1]], device=model.device)
    keep = len(item.expected)  # only the answer's logits, not T × vocab of them
    predicted = model(input_ids=ids, logits_to_keep=keep).logits[0, -keep:].argmax(-1).cpu()
    return predicted.tolist() == list(item.expected)


def masking_correct(model, items, heads, attention: str = "sdpa") -> list[bool]:
    """Per item, greedy exact match (full cache) with the given (layer, head) pairs masked, computed with the
    ``attention`` implementation (no attention weights are needed here; SDPA is several times faster than eager
    on CPU)."""
    previous = model.config._attn_implementation
    with contextlib.suppress(ValueError):  # architectures without SDPA (Gemma 2) keep their eager attention
        model.set_attn_implementation(attention)
    try:
        with masked_heads(model, heads):
            return [full_cache_correct(model, item) for item in items]
    finally:
        model.set_attn_implementation(previous)


def masking_experiment(model, items, scores: HeadScores, counts: Sequence[int], seed: int, draws: int):
    """The paper's masking experiment: per item, exact match (full cache) with nothing masked, with the top
    ``count`` SRHs, the top ``count`` traditional retrieval heads, or ``count`` random heads (``draws`` seeded
    draws) masked. Sets always have ``count`` heads; a ranking with fewer than ``count`` positively scored heads
    cannot name a top-``count`` set: its rows say ``testable=False`` and ``correct`` is NaN (not run: each masked
    set costs a forward pass over every prompt). Returns one row per item and mask, ``correct`` as 1.0 or 0.0."""
    from .seeding import make_rng

    shape = geometry(model)
    everyone = [(layer, head) for layer in range(shape.layers) for head in range(shape.heads)]
    masks = [("none", 0, 0, [], True)]
    for count in counts:
        for kind, table in (("SRHs", scores.semantic), ("retrieval heads", scores.traditional)):
            masks.append((kind, count, 0, top_heads_overall(table, count), int((table > 0).sum()) >= count))
        for draw in range(draws):
            pick = make_rng(seed, "random heads", count, draw).permutation(len(everyone))[:count]
            masks.append(("random heads", count, draw, [everyone[i] for i in pick], True))
    rows = []
    for kind, count, draw, heads, testable in masks:
        outcomes = masking_correct(model, items, heads) if testable else [np.nan] * len(items)
        for index, ok in enumerate(outcomes):
            rows.append(dict(kind=kind, heads=count, draw=draw, item=index, correct=float(ok), testable=testable))
    return rows


def masking_summary(masking):
    """Accuracy per mask kind and head count; for random heads the mean and the range over draws."""
    per_draw = masking.groupby(["kind", "heads", "draw"]).agg(
        accuracy=("correct", "mean"), testable=("testable", "all")
    )
    return per_draw.groupby(["kind", "heads"]).agg(
        accuracy=("accuracy", "mean"),
        lowest=("accuracy", "min"),
        highest=("accuracy", "max"),
        draws=("accuracy", "size"),
        testable=("testable", "all"),
    )


# ----------------------------------------------------------------------------------------------------------------
# Decode time, and the memory and time of a run before it runs
# ----------------------------------------------------------------------------------------------------------------


def decode_timing(model, state: Prefill, plans: dict, n_tokens: int, repeats: int, seed: int = 0) -> list[dict]:
    """CPU seconds per decoded token from each plan's compressed cache (``plans``: name →
    :class:`~llmtheory.compresskv.Plan`), and the KV bytes it holds. Each repeat times every plan once, in an order
    shuffled per repeat (seeded by ``seed``), so that neither a change of machine load nor a warm-up favours a plan.
    Returns one row per plan and repeat."""
    from .seeding import make_rng

    rows = []
    names = list(plans)
    for repeat in range(repeats):
        for index in make_rng(seed, "timing order", repeat).permutation(len(names)):
            name, plan = names[index], plans[names[index]]
            if plan.counts is not None:
                raise ValueError(f"plan {name!r} keeps different numbers per KV head; only stack_plans decodes it")
            cache = compress_cache(state.cache, plan.positions)
            held = cache_bytes(cache)
            start = time.process_time()
            greedy_decode(model, cache, [state.next_token], state.length, n_tokens)
            seconds = (time.process_time() - start) / n_tokens
            rows.append(
                dict(
                    plan=name,
                    repeat=repeat,
                    kv_bytes=held,
                    kv_fraction=plan.kv_fraction(state.length),
                    seconds_per_token=seconds,
                )
            )
    return rows


def timing_name(method: str, fraction: float) -> str:
    """The name of a method at a budget in :func:`decode_timing`'s rows, e.g. ``compresskv 1%``."""
    return f"{method} {100 * fraction:g}%"


def time_ratio(timings, plan: str, reference: str):
    """The mean over repeats of ``plan``'s time per token divided by ``reference``'s in the same repeat, with a
    Student-t 95% interval (a :class:`~llmtheory.claims.Estimate`)."""
    from .claims import Estimate

    table = timings.pivot_table(index="repeat", columns="plan", values="seconds_per_token")
    return Estimate.mean_of((table[plan] / table[reference]).to_numpy())


HUB_EXAMPLE = dict(
    name="Qwen/Qwen2.5-0.5B-Instruct",
    layers=24,
    heads=14,
    kv_heads=2,
    head_dim=64,
    hidden=896,
    intermediate=4864,
    vocab=151_936,
)
"""The suggested hub model's shapes (from its published ``config.json``), for the estimate without a download."""


@dataclass(frozen=True)
class Resources:
    """What a run needs: ``weights`` and ``kv`` (full cache of one prompt) in bytes, ``prefill_peak`` (the attention
    statistics, the largest block of weights and the one position's logits of :func:`~llmtheory.compresskv.prefill`),
    ``naive_attention`` (what keeping every layer's H×T×T attention would take), and the floating-point operations of
    one prompt's prefill and of all its decoded tokens."""

    weights: int
    kv: int
    prefill_peak: int
    naive_attention: int
    prefill_flops: float
    decode_flops: float


def resources(shapes: dict, tokens: int, decoded: int, bytes_per_number: int = 4, window: int = WINDOW) -> Resources:
    """Memory and operations of one prompt of ``tokens`` tokens with ``decoded`` greedy tokens in total (all
    methods and budgets), from the shapes of ``shapes`` (keys as :data:`HUB_EXAMPLE`)."""
    layers, heads, kv_heads, head_dim = (shapes[k] for k in ("layers", "heads", "kv_heads", "head_dim"))
    hidden, intermediate, vocab = shapes["hidden"], shapes["intermediate"], shapes["vocab"]
    per_layer = hidden * (heads + 2 * kv_heads) * head_dim + heads * head_dim * hidden + 3 * hidden * intermediate
    parameters = layers * per_layer + vocab * hidden
    attention_flops = 4 * layers * heads * head_dim * tokens * tokens / 2  # QKᵀ and AV, causal half
    stats = 4 * layers * heads * (window + 1) * tokens  # float32 window rows and column sums
    return Resources(
        weights=parameters * bytes_per_number,
        kv=2 * layers * kv_heads * head_dim * tokens * bytes_per_number,
        prefill_peak=stats + 4 * heads * min(PREFILL_CHUNK, tokens) * tokens + 4 * vocab,  # logits_to_keep=1
        naive_attention=4 * layers * heads * tokens * tokens,
        prefill_flops=2 * (layers * per_layer) * tokens + attention_flops,
        decode_flops=decoded * (2 * parameters + 4 * layers * heads * head_dim * tokens),
    )


def decode_cache_share(shapes: dict, tokens: int) -> float:
    """The share of one decoded token's operations (:func:`resources`) spent attending over a cache of ``tokens``
    positions: the part that compression removes. When it is small, decode time cannot show the saving."""
    step = resources(shapes, tokens, 1).decode_flops
    return 4 * shapes["layers"] * shapes["heads"] * shapes["head_dim"] * tokens / step


def model_shapes(model) -> dict:
    """The shapes :func:`resources` needs, read from a loaded model's config."""
    shape, config = geometry(model), model.config
    return dict(
        name=zoo.display_name(getattr(config, "_name_or_path", "")),
        layers=shape.layers,
        heads=shape.heads,
        kv_heads=shape.kv_heads,
        head_dim=shape.head_dim,
        hidden=config.hidden_size,
        intermediate=config.intermediate_size,
        vocab=config.vocab_size,
    )


def measured_flops_per_second(model, state_seconds: float, tokens: int) -> float:
    """This machine's rate on this code path: the operations of one measured prefill over its seconds."""
    return resources(model_shapes(model), tokens, 0).prefill_flops / max(state_seconds, 1e-9)


def plan_estimate(shapes: dict, tokens: int, prompts: int, decoded_per_prompt: int, flops_per_second: float) -> dict:
    """The memory (GB) and time (hours at ``flops_per_second``) of a run of ``prompts`` prompts of ``tokens``
    tokens, each with ``decoded_per_prompt`` decoded tokens over all methods and budgets (:func:`resources`)."""
    need = resources(shapes, tokens, decoded_per_prompt)
    return dict(
        model=shapes.get("name", ""),
        tokens=tokens,
        weights_gb=need.weights / 1e9,
        kv_gb=need.kv / 1e9,
        prefill_gb=need.prefill_peak / 1e9,
        naive_attention_gb=need.naive_attention / 1e9,
        hours=prompts * (need.prefill_flops + need.decode_flops) / flops_per_second / 3600,
    )


# ----------------------------------------------------------------------------------------------------------------
# Statistics and the evidence behind the claims
# ----------------------------------------------------------------------------------------------------------------


def wilson(successes: int, n: int, z: float = 1.96):
    """The Wilson score interval of a proportion, as an :class:`~llmtheory.claims.Estimate`."""
    from .claims import Estimate

    if n == 0:
        return Estimate(0.0, 0.0, 1.0)  # nothing observed: every proportion is possible
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return Estimate(p, min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half)))


def greater_than(x, threshold: float):
    """The rule ``x > threshold`` (strict: a tie is no win); decisive when the whole interval is on one side."""
    from .claims import Estimate, Test

    value, low, high = (x.value, x.low, x.high) if isinstance(x, Estimate) else (float(x),) * 3
    holds = value > threshold
    return Test(bool(holds), bool(low > threshold) if holds else bool(high <= threshold))


def per_item_accuracy(results, method: str, budgets: Sequence[float]) -> np.ndarray:
    """Each item's accuracy of ``method`` averaged over ``budgets`` (items in order)."""
    part = results[(results["method"] == method) & results["budget"].isin(list(budgets))]
    return part.groupby("item")["correct"].mean().sort_index().to_numpy()


def accuracy_at(results, method: str, budget: float):
    """``method``'s accuracy at one budget with its Wilson 95% interval."""
    part = results[(results["method"] == method) & (results["budget"] == budget)]["correct"]
    return wilson(int(part.sum()), len(part))


def paired_difference(results, first: str, second: str, budgets: Sequence[float], rng):
    """Mean accuracy of ``first`` minus ``second`` over ``budgets``, paired by item, with a bootstrap interval."""
    return bootstrap_mean(per_item_accuracy(results, first, budgets) - per_item_accuracy(results, second, budgets), rng)


def best_of_difference(results, method: str, rivals: Sequence[str], budgets: Sequence[float], rng):
    """``method`` minus the better (on average) of ``rivals``, paired by item, with a bootstrap interval."""
    best = max(rivals, key=lambda m: per_item_accuracy(results, m, budgets).mean())
    return paired_difference(results, method, best, budgets, rng), best


def masking_difference(masking, kind: str, rng):
    """Per item, accuracy with the top traditional retrieval heads masked minus accuracy with ``kind`` masked
    (random heads: averaged over draws), averaged over the testable head counts: how much more masking ``kind``
    hurts, with a bootstrap interval over items. ``None`` when no count is testable."""
    testable = masking[(masking["kind"] == "retrieval heads") & masking["testable"]]["heads"].unique()
    testable = [c for c in testable if masking[(masking["kind"] == kind) & (masking["heads"] == c)]["testable"].all()]
    if not testable:
        return None
    part = masking[masking["heads"].isin(testable)]
    by_item = part.groupby(["kind", "heads", "item"])["correct"].mean().unstack("item")
    copy = by_item.loc["retrieval heads"].to_numpy()
    return bootstrap_mean((copy - by_item.loc[kind].to_numpy()).mean(axis=0), rng)


def claim_evidence(results, masking, timings, budgets: Sequence[float], tight: float, rng) -> dict:
    """Every estimate the chapter's claims are judged on, with its interval: accuracies (Wilson), paired
    differences between methods over the budgets ≤ ``tight`` (bootstrap over items), the same for
    ``random-compresskv`` (CompressKV with random heads, the controls), the masking contrast against
    its random-head control, and the decode-time ratios against the full cache (Student-t over repeats)."""
    full_rows = results[results["method"] == "full"]["correct"]
    smallest = min(b for b in budgets if b < 1)
    low = [b for b in budgets if b <= tight]
    rivals = ("snapkv", "pyramidkv")
    shares = results.groupby(["method", "budget"])["kv_fraction"].mean()
    evidence = dict(
        full=wilson(int(full_rows.sum()), len(full_rows)),
        smallest=smallest,
        share_smallest=float(shares["compresskv", smallest]),
        share_tight=float(shares["compresskv", tight]) if tight in budgets else float("nan"),
        tight_mean={
            m: float(per_item_accuracy(results, m, low).mean()) for m in results["method"].unique() if m != "full"
        },
        masking=masking_difference(masking, "SRHs", rng),
        masking_random=masking_difference(masking, "random heads", rng),
        time_ratio=time_ratio(timings, timing_name("compresskv", smallest), "full"),
        time_control=time_ratio(timings, "full (again)", "full"),
    )
    for method in ("compresskv", "random-compresskv"):
        evidence[f"{method}_smallest"] = accuracy_at(results, method, smallest)
        evidence[f"{method}_tight"] = accuracy_at(results, method, tight) if tight in budgets else wilson(0, 0)
        evidence[f"{method}_vs_rivals"], evidence[f"{method}_best_rival"] = best_of_difference(
            results, method, rivals, low, rng
        )
        evidence[f"{method}_vs_cake"] = paired_difference(results, method, "cake", low, rng)
        evidence[f"{method}_vs_adakv"] = paired_difference(results, method, "adakv", low, rng)
    evidence["srh_vs_snapkv"] = paired_difference(results, "srh-selection", "snapkv", low, rng)
    evidence["random_vs_snapkv"] = paired_difference(results, "random-heads", "snapkv", low, rng)
    evidence["budgets_gain"] = paired_difference(results, "compresskv", "srh-selection", low, rng)
    evidence["random_budgets_gain"] = paired_difference(results, "random-compresskv", "random-heads", low, rng)
    evidence["retrieves"] = evidence["full"].value >= 0.5
    return evidence


# ----------------------------------------------------------------------------------------------------------------
# Why a claim cannot be tested, the numbers the prose quotes, and the figures
# ----------------------------------------------------------------------------------------------------------------

ONE_PERCENT = 0.0105
"""The smallest budget judged against the paper's "about 0.7%" must keep at most this share of the KV (1%,
with room for rounding)."""


def not_testable_reasons(evidence: dict, model: str, length: int, needle_need: int, heads: HeadScores) -> dict:
    """Why rows of the ledger cannot be tested, as the ``"; not testable: ..."`` suffix of their ``ours`` text
    (empty when they can): ``untestable`` (the model does not retrieve with its full cache), ``too_coarse`` (the
    smallest budget keeps more than 1% of the KV, or too few positions beyond the window of a ``length``-token
    context to hold ``needle_need`` tokens: the needle plus the pooling kernel), and ``no_copy_sets`` (the masking
    contrast, when no head has a copy-paste score)."""
    e = evidence
    room = budget_tokens(e["smallest"], length) - WINDOW  # positions beyond the window
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


def prose_numbers(evidence: dict, context_tokens: int, heads: HeadScores) -> dict[str, str]:
    """The numbers the chapter's text quotes (glue name → text), from the claims' evidence."""
    e = evidence
    numbers = {
        "smallest_share": f"{e['share_smallest']:.1%}",
        "three_share": f"{e['share_tight']:.1%}",
        "smallest_tokens": str(budget_tokens(e["smallest"], context_tokens)),
        "ckv_smallest": f"{e['compresskv_smallest']:.0%}",
        "ckv_three": f"{e['compresskv_tight']:.0%}",
        "n_copy_heads": str(int((heads.traditional > 0).sum())),
    }
    for method in ("compresskv", "pyramidkv", "snapkv", "adakv", "cake", "streamingllm"):
        numbers[f"tight_{method}"] = f"{e['tight_mean'][method]:.2f}"
    return numbers


def plot_head_map(ax, scores: np.ndarray, title: str, label: str, chosen=None) -> None:
    """A layers × heads map of head scores (Figure 1), the heads of ``chosen[l]`` framed in white; an all-zero
    map gets no colour scale, only the words "no head ever scored"."""
    from matplotlib.patches import Rectangle

    layers, heads = scores.shape
    image = ax.imshow(scores, cmap="viridis" if scores.any() else "Greys", aspect="auto", vmin=0)
    ax.set(title=title, xlabel="query head", xticks=range(heads), yticks=range(layers))
    ax.grid(False)
    if scores.any():
        ax.figure.colorbar(image, ax=ax, shrink=0.85, label=label)
    else:
        ax.text((heads - 1) / 2, (layers - 1) / 2, "no head ever scored", ha="center")
    for layer, framed in enumerate(chosen or []):
        for head in framed:
            ax.add_patch(Rectangle((head - 0.5, layer - 0.5), 1, 1, fill=False, ec="white", lw=2))


def plot_budget_curves(ax, results, methods, budgets, colours: dict, full_accuracy: float) -> None:
    """Accuracy against budget (log axis, % of the KV) for each of ``methods`` with Wilson 95% bars, dodged
    sideways so that the bars stay readable, and the full cache's accuracy as a dashed line (Figure 2)."""
    shown = [b for b in budgets if b < 1]
    for offset, method in enumerate(methods):
        cis = [accuracy_at(results, method, b) for b in shown]
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
    score) or random heads (mean and range over ``draws`` draws) masked
    (:func:`masking_summary`'s ``table``), against the number masked (Figure 4, left)."""
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
    right). ``multi``: the rows of :func:`multi_question_sweep` with an ``asked`` column."""
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
    """What the masking experiment measured, from :func:`masking_summary`: accuracy with
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
