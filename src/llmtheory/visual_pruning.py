"""The harness of the visual-token pruning chapters (``priortr``, ``clse``): budgets, baselines, references,
evaluation and the efficiency measurement, for the zoo's LLaVA and a real one alike.

A *pruning method* keeps ``k`` of a model's ``n`` visual tokens from decoder layer ``K`` on
(:func:`llmtheory.vlm.forward_dropping_visual_tokens`); the methods compared at equal budgets are

* **FastV** (:func:`fastv_scores`), as its official code ``pkunlp-icler/FastV`` implements it: at layer ``K``,
  the attention weights of layer ``K − 1``, averaged over heads, in the row of the **last** token, ranked over the
  image tokens; the top ``k`` are kept;
* **random** (:func:`random_keep`): ``k`` tokens drawn without replacement, a fresh draw per item;
* **spatial** (:func:`spatial_keep`): ``k`` tokens spread evenly over the patch grid, the token nearest the centre
  of each cell of a coarser grid — the selection analogue of spatial pooling (pooling merges tokens; this keeps
  them, so all methods differ only in *which* tokens survive);

* **VisPruner-style** (:func:`vispruner_keep`, Zhang et al.'s ``VisPruner``, attention-free in the language
  model): half of the budget by the vision encoder's ``[CLS]`` attention, the other half by removing near-duplicates
  from the rest (cosine similarity of the encoder's features, bipartite rounds of at most 8);
* **DART-style** (:func:`dart_keep`, Wen et al.'s ``DART``, "duplication matters more"): a few pivot tokens (largest
  L1 norm; image and text), then for each pivot the visual tokens least similar to it;

and two references that bound every method on a given model and layer: the **floor** (every visual token dropped
at ``K``: what the text positions already know) and the **ceiling** (only the answering patches kept: what a method
that knew where the answer is could do). Accuracy is scored by restricted decoding: the most likely of the answers a
question of that kind can have (:func:`llmtheory.scenes.answers`), so a real chat model is not penalised for
phrasing.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from . import scenes as sc
from .claims import Estimate
from .params import ParameterError, check_int
from .seeding import make_rng
from .vlm import DropContext, decode_step, forward_dropping_visual_tokens, grid_shape

BUDGETS: dict[str, float] = {"1/2": 1 / 2, "1/3": 1 / 3, "2/9": 2 / 9, "1/9": 1 / 9}
"""Shares of the visual tokens kept: LLaVA-1.5's 288, 192, 128 and 64 of 576 (the paper's three and one looser)."""

REAL_PROMPT = "USER: <image>\n{question} Answer with one word. ASSISTANT:"
"""LLaVA-1.5's conversation template, for a model whose tokenizer is not the zoo's."""


def keep_count(n_image: int, share: float) -> int:
    """How many of ``n_image`` visual tokens a budget ``share`` keeps (rounded; at least one)."""
    if not 0 < share <= 1:
        raise ParameterError(f"a budget share must lie in (0, 1]; got {share}")
    return max(1, round(n_image * share))


# --------------------------------------------------------------------------------------------------------------
# Inputs: the zoo's fast path, or any LLaVA processor
# --------------------------------------------------------------------------------------------------------------


def _is_zoo_processor(processor) -> bool:
    from .zoo import vlm as zvlm

    size = getattr(processor.image_processor, "size", {}) or {}
    return zvlm.USER in processor.tokenizer.get_vocab() and size.get("height") == sc.IMAGE_SIZE


def prompt_text(processor, question: str) -> str:
    """The prompt for ``question``: the zoo's template for the zoo's tokenizer, LLaVA-1.5's otherwise (an empty
    question gives the instruction-free prompt of PriorTR-2F)."""
    from .zoo import vlm as zvlm

    if zvlm.USER in processor.tokenizer.get_vocab():
        return zvlm.prompt(question)
    if not question:
        return "USER: <image>\n ASSISTANT:"
    return REAL_PROMPT.format(question=question[:1].upper() + question[1:])


def make_batch(processor, images, questions) -> dict[str, torch.Tensor]:
    """Right-padded model inputs for ``images`` (uint8 arrays) and ``questions`` (strings)."""
    if _is_zoo_processor(processor):
        from .zoo import vlm as zvlm

        return zvlm.make_inputs(processor.tokenizer, images, questions, geometry=zvlm.geometry_of(processor))
    processor.tokenizer.padding_side = "right"  # last_positions assumes right padding
    return dict(
        processor(
            images=list(images),
            text=[prompt_text(processor, q) for q in questions],
            return_tensors="pt",
            padding=True,
        )
    )


def to_model(model, inputs: dict) -> dict:
    """``inputs`` on the model's device, pixel values in its dtype (a float16 LLaVA on a GPU)."""
    return {
        name: value.to(model.device, dtype=model.dtype if name == "pixel_values" else value.dtype)
        for name, value in inputs.items()
    }


def answer_token_ids(processor, kind: str) -> tuple[tuple[str, ...], list[list[int]]]:
    """The answers a question of ``kind`` can have and, for each, the first token of its spellings ("red",
    "Red")."""
    tokenizer = processor.tokenizer
    vocab = tokenizer.get_vocab()
    answers = sc.answers(kind)
    ids = []
    for word in answers:
        if word in vocab:
            ids.append([vocab[word]])
            continue
        variants = {tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in (word, word.capitalize())}
        ids.append(sorted(variants))
    return answers, ids


def restricted_answers(processor, logits: torch.Tensor, kinds: Sequence[str]) -> list[str]:
    """For each row, the answer of its kind with the largest next-token logit (over its spellings)."""
    candidates = {kind: answer_token_ids(processor, kind) for kind in set(kinds)}
    out = []
    for row, kind in zip(logits, kinds, strict=True):
        answers, ids = candidates[kind]
        best = [float(row[i].max()) for i in (torch.tensor(v) for v in ids)]
        out.append(answers[int(np.argmax(best))])
    return out


def answer_patches(cells: Sequence[int], n_image: int, grid: int = sc.GRID) -> tuple[int, ...]:
    """The model's visual tokens (row-major on its ``side × side`` grid) that overlap the squares ``cells``
    (row-major on a ``grid × grid`` partition of the same image; by default the scene's board): the same patches on
    a grid as fine, blocks of them on a finer one, the covering tokens on a coarser one."""
    side = grid_shape(n_image)[0]
    out = set()
    for cell in cells:
        row, col = divmod(int(cell), grid)
        rows = range(math.floor(row * side / grid), math.ceil((row + 1) * side / grid))
        cols = range(math.floor(col * side / grid), math.ceil((col + 1) * side / grid))
        out |= {r * side + c for r in rows for c in cols}
    return tuple(sorted(out))


def item_patches(item, n_image: int) -> tuple[int, ...]:
    """A (scene, question) item's answering patches on a model's grid of ``n_image`` tokens (the question's
    patches are on its scene's :class:`~llmtheory.scenes.Geometry`)."""
    scene, question = item
    return answer_patches(question.patches, n_image, scene.geometry.side)


# --------------------------------------------------------------------------------------------------------------
# Keep rules
# --------------------------------------------------------------------------------------------------------------


def image_attention(context: DropContext) -> torch.Tensor:
    """The attention weights of layer ``K − 1`` onto the image tokens: ``(batch, heads, seq, n_image)``."""
    if not context.attentions:
        raise ParameterError("this keep rule needs attentions=True and a pruning layer K ≥ 1")
    attention = context.attentions[context.layer - 1]
    columns = context.image_positions[:, None, None, :].expand(-1, attention.shape[1], attention.shape[2], -1)
    return attention.gather(-1, columns).float()


def rows_at(attention: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """Row ``positions[b]`` of each batch element: ``(batch, heads, n_image)``."""
    index = positions[:, None, None, None].expand(-1, attention.shape[1], 1, attention.shape[-1])
    return attention.gather(2, index)[:, :, 0]


def fastv_scores(context: DropContext) -> torch.Tensor:
    """FastV's ranking (official ``fastv_inplace``): ``mean over heads of A^{(K−1)}[last, image]``."""
    return rows_at(image_attention(context), context.last_positions).mean(dim=1)


def top_k(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Indices of the ``k`` largest scores of each row, in their original (sorted) order."""
    return scores.topk(k, dim=-1).indices.sort(dim=-1).values


def rule_from_scores(score: Callable[[DropContext], torch.Tensor], k: int) -> Callable[[DropContext], torch.Tensor]:
    """A keep rule for :func:`forward_dropping_visual_tokens`: the top ``k`` of ``score`` inside the same pass."""
    return lambda context: top_k(score(context), k)


def random_keep(rng: np.random.Generator, batch: int, n_image: int, k: int) -> torch.Tensor:
    """``k`` of ``n_image`` tokens drawn without replacement, independently for each row."""
    return torch.tensor(np.sort([rng.choice(n_image, size=k, replace=False) for _ in range(batch)], axis=1))


def spatial_keep(n_image: int, k: int) -> torch.Tensor:
    """``k`` tokens spread over the grid: the nearest free token to the centre of each cell of a near-square
    ``r × c`` grid (``r·c ≥ k``, cells taken in row-major order)."""
    side = grid_shape(n_image)[0]
    check_int("k", k, minimum=1, maximum=n_image)
    rows = max(1, round(math.sqrt(k)))
    cols = math.ceil(k / rows)
    ys, xs = np.divmod(np.arange(n_image), side)
    chosen: list[int] = []
    for i in range(rows):
        for j in range(cols):
            if len(chosen) == k:
                break
            cy, cx = (i + 0.5) * side / rows - 0.5, (j + 0.5) * side / cols - 0.5
            distance = (ys - cy) ** 2 + (xs - cx) ** 2
            distance[chosen] = np.inf
            chosen.append(int(np.argmin(distance)))
    return torch.tensor(sorted(chosen))


@torch.no_grad()
def vision_cues(model, pixel_values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """What VisPruner reads from the vision encoder, at the layer LLaVA takes its features from
    (``vision_feature_layer``): the patch features ``(batch, n_image, channels)`` and the ``[CLS]`` token's attention
    onto the patches, averaged over heads ``(batch, n_image)`` (``[CLS]`` is position 0, as LLaVA's ``"default"``
    strategy drops it)."""
    from .vlm import _Eager

    layer = model.config.vision_feature_layer
    if not isinstance(layer, int):
        raise ParameterError(f"VisPruner needs one vision feature layer; this model uses {layer}")
    with _Eager(model):
        out = model.model.vision_tower(pixel_values.to(model.dtype), output_attentions=True, output_hidden_states=True)
    features = out.hidden_states[layer][:, 1:].float()
    cls_attention = out.attentions[layer][:, :, 0, 1:].float().mean(dim=1)
    return features, cls_attention


def vispruner_keep(features: torch.Tensor, cls_attention: torch.Tensor, k: int, step: int = 8) -> torch.Tensor:
    """VisPruner's selection (official ``encode_images``): the ``⌊k/2⌋`` tokens with the largest ``[CLS]``
    attention (*important*), then, from the rest, near-duplicates removed until ``k − ⌊k/2⌋`` remain (*diverse*): each
    round splits the remaining tokens alternately into ``a`` and ``b`` and drops the at most ``step`` tokens of ``a``
    whose largest cosine similarity to ``b`` is highest. Returns ``(batch, k)`` indices, sorted."""
    batch, n = cls_attention.shape
    check_int("k", k, minimum=1, maximum=n)
    normalised = features / features.norm(dim=-1, keepdim=True)
    important_count = k // 2
    order = cls_attention.argsort(dim=-1, descending=True)
    important, residual = order[:, :important_count], order[:, important_count:]
    rows = torch.arange(batch)[:, None]
    while (r := min(step, residual.shape[1] - (k - important_count))) > 0:
        tokens = normalised[rows, residual]
        a, b = tokens[:, ::2], tokens[:, 1::2]
        # each token of a: its largest similarity to b; the r most duplicated leave
        duplication = (a @ b.transpose(-1, -2)).max(dim=-1).values
        distinct = duplication.argsort(dim=-1, descending=True)[:, r:]
        residual = torch.cat([residual[:, ::2].gather(1, distinct), residual[:, 1::2]], dim=-1)
    return torch.cat([important, residual], dim=-1).sort(dim=-1).values


def dart_pivot_count(k: int) -> int:
    """Pivots of each kind (image, text) for a budget of ``k`` tokens: DART's LLaVA setting keeps 128 tokens with 4
    + 4 pivots, so ``max(1, round(k / 32))``."""
    return max(1, round(k / 32))


def dart_keep(context: DropContext, k: int) -> torch.Tensor:
    """DART's selection (official ``get_retained_image_token``) on the hidden states entering the pruning layer:
    ``p`` image pivots and ``p`` text pivots (the tokens after the image) with the largest L1 norm, then, pivot by
    pivot, the ``⌈(k − p) / 2p⌉`` remaining visual tokens least cosine-similar to it, until ``k`` are kept (the
    official code ranks pivots by the L1 norm of the keys of layer ``K − 1`` and keeps about ``k``; here the hidden
    state's norm, and exactly ``k``). Returns ``(batch, k)`` indices, sorted."""
    hidden = context.hidden[context.layer].float()
    n_image = context.image_positions.shape[1]
    check_int("k", k, minimum=1, maximum=n_image)
    p = min(dart_pivot_count(k), k)
    per_pivot = math.ceil((k - p) / (2 * p)) if k > p else 0
    out = []
    for row in range(hidden.shape[0]):
        image = hidden[row, context.image_positions[row]]
        first_text, last = int(context.image_positions[row, -1]) + 1, int(context.last_positions[row])
        text = hidden[row, first_text : last + 1]
        chosen = image.abs().sum(-1).topk(p).indices.tolist()
        pivots = [image[i] for i in chosen] + [text[i] for i in text.abs().sum(-1).topk(min(p, len(text))).indices]
        for pivot in pivots:
            free = [i for i in range(n_image) if i not in chosen]
            take = min(per_pivot, k - len(chosen), len(free))
            if take <= 0:
                break
            similarity = torch.nn.functional.cosine_similarity(image[free], pivot[None], dim=-1)
            chosen += [free[i] for i in (-similarity).topk(take).indices.tolist()]
        free = [i for i in range(n_image) if i not in chosen]
        chosen += free[: k - len(chosen)]  # only when the pivots ran out before the budget (tiny grids)
        out.append(sorted(chosen))
    return torch.tensor(out, dtype=torch.long, device=hidden.device)


def attention_free_baselines(model) -> list[Method]:
    """The VisPruner-style and DART-style baselines (neither reads the language model's attention). VisPruner's cues
    come from one vision-encoder pass per chunk, kept for the chunk's other budgets (keyed by its inputs)."""
    last: dict = {}

    def vispruner(k, chunk):
        if last.get("inputs") is not chunk.inputs:
            last.update(inputs=chunk.inputs, cues=vision_cues(model, chunk.inputs["pixel_values"]))
        return vispruner_keep(*last["cues"], k).to(chunk.inputs["input_ids"].device)

    def dart(k, chunk):
        return lambda context: dart_keep(context, k)

    return [Method("VisPruner", vispruner), Method("DART", dart)]


# --------------------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    """A pruning method: ``keep(k, chunk)`` returns what :func:`forward_dropping_visual_tokens` keeps for a chunk
    of items (indices, or a rule of the :class:`~llmtheory.vlm.DropContext` when ``attention`` is true)."""

    name: str
    keep: Callable
    attention: bool = False


@dataclass(frozen=True)
class Chunk:
    """A batch of items with its inputs: ``start`` is the index of its first item, ``seed`` the run's seed."""

    items: list
    inputs: dict
    start: int
    n_image: int
    seed: int


def baselines() -> list[Method]:
    """FastV, random and spatial selection."""

    def fastv(k, chunk):
        return rule_from_scores(fastv_scores, k)

    def random(k, chunk):
        rng = make_rng(chunk.seed, "random keep", chunk.start, k)
        return random_keep(rng, len(chunk.items), chunk.n_image, k)

    def spatial(k, chunk):
        return spatial_keep(chunk.n_image, k)

    return [Method("FastV", fastv, attention=True), Method("random", random), Method("spatial", spatial)]


def heldout(kinds: Sequence[str], per_kind: int, seed: int, geometry: sc.Geometry = sc.DEFAULT) -> list:
    """``per_kind`` held-out (scene, question) pairs of each kind (streams the zoo's training never drew), on the
    scenes' ``geometry`` (the same boards in every geometry)."""
    from .zoo.vlm import heldout_items

    return [item for kind in kinds for item in heldout_items(kind, per_kind, seed=seed, geometry=geometry)]


def _forward_grouped(model, inputs: dict, layer: int, keep_lists: list[tuple[int, ...]]) -> list[torch.Tensor]:
    """Last-token logits of each row keeping its own list of visual tokens (rows with equal counts share a pass)."""
    out: list[torch.Tensor | None] = [None] * len(keep_lists)
    for count in sorted({len(k) for k in keep_lists}):
        rows = [i for i, k in enumerate(keep_lists) if len(k) == count]
        sub = {name: value[rows] for name, value in inputs.items()}
        keep = torch.tensor([keep_lists[i] for i in rows], dtype=torch.long).reshape(len(rows), count)
        logits = forward_dropping_visual_tokens(model, sub, layer, keep).last_logits
        for row, i in enumerate(rows):
            out[i] = logits[row]
    return out


def _row(item_index, item, method, budget, k, correct, recall, kept_tokens=()) -> dict:
    _, question = item
    return {
        "item": item_index,
        "kind": question.kind,
        "group": question.group,
        "method": method,
        "budget": budget,
        "kept": k,
        "correct": bool(correct),
        "recall": float(recall),
        "kept_tokens": tuple(int(t) for t in kept_tokens),
    }


def _recall(kept: Sequence[int], target: Sequence[int]) -> float:
    return len(set(map(int, kept)) & set(target)) / len(target) if target else float("nan")


def chunks(model, processor, items: list, batch_size: int, seed: int):
    """The items in batches with their inputs (built once per batch)."""
    from .vlm import image_positions

    for start in range(0, len(items), batch_size):
        part = items[start : start + batch_size]
        inputs = to_model(model, make_batch(processor, [s.image() for s, _ in part], [q.text for _, q in part]))
        n_image = image_positions(model, inputs["input_ids"]).shape[1]
        yield Chunk(part, inputs, start, n_image, seed)


def evaluate(
    model,
    processor,
    items: list,
    layer: int,
    methods: Sequence[Method],
    budgets: dict[str, float],
    *,
    seed: int = 0,
    batch_size: int = 64,
    progress: Callable = lambda x: x,
) -> list[dict]:
    """Accuracy and answering-patch recall of every method at every budget, and of the references (``full``,
    ``floor``: no visual token from ``layer`` on, ``ceiling``: only the answering patches), on the same items.

    One row per item, method and budget (references: budget ``"—"``).
    """
    rows = []
    for chunk in progress(list(chunks(model, processor, items, batch_size, seed))):
        kinds = [q.kind for _, q in chunk.items]
        targets = [item_patches(item, chunk.n_image) for item in chunk.items]
        references = {
            "full": [tuple(range(chunk.n_image))] * len(chunk.items),
            "floor": [()] * len(chunk.items),
            "ceiling": targets,
        }
        for name, keep_lists in references.items():
            logits = torch.stack(_forward_grouped(model, chunk.inputs, layer, keep_lists))
            guesses = restricted_answers(processor, logits, kinds)
            for i, item in enumerate(chunk.items):
                recall = _recall(keep_lists[i], targets[i])
                correct = guesses[i] == item[1].answer
                rows.append(_row(chunk.start + i, item, name, "—", len(keep_lists[i]), correct, recall, keep_lists[i]))
        for budget, share in budgets.items():
            k = keep_count(chunk.n_image, share)
            for method in methods:
                out = forward_dropping_visual_tokens(
                    model, chunk.inputs, layer, method.keep(k, chunk), attentions=method.attention
                )
                guesses = restricted_answers(processor, out.last_logits, kinds)
                for i, item in enumerate(chunk.items):
                    recall = _recall(out.kept[i].tolist(), targets[i])
                    correct = guesses[i] == item[1].answer
                    rows.append(
                        _row(chunk.start + i, item, method.name, budget, k, correct, recall, out.kept[i].tolist())
                    )
    return rows


def depth_curve(model, processor, items: list, *, batch_size: int = 64) -> list[dict]:
    """Accuracy when every visual token is dropped from decoder layer ``K`` on, for ``K = 0 .. layers`` (``K =
    layers``: the full model): where the image information has moved into the text positions."""
    n_layers = model.config.text_config.num_hidden_layers
    rows = []
    for chunk in chunks(model, processor, items, batch_size, 0):
        kinds = [q.kind for _, q in chunk.items]
        for layer in range(n_layers + 1):
            keep = torch.zeros(len(chunk.items), 0, dtype=torch.long)
            out = forward_dropping_visual_tokens(model, chunk.inputs, layer, keep)
            guesses = restricted_answers(processor, out.last_logits, kinds)
            for i, (_, question) in enumerate(chunk.items):
                rows.append({"layer": layer, "kind": question.kind, "group": question.group,
                             "correct": guesses[i] == question.answer})  # fmt: skip
    return rows


# --------------------------------------------------------------------------------------------------------------
# Statistics over items
# --------------------------------------------------------------------------------------------------------------


def accuracy(rows, method: str, budget: str | None = None, group: str | None = None) -> Estimate:
    """Accuracy of ``method`` (at ``budget``; on question ``group``) with its Wilson interval."""
    picked = [r for r in rows if r["method"] == method and budget in (None, r["budget"])]
    picked = [r for r in picked if group in (None, r["group"])]
    if not picked:
        raise ParameterError(f"no rows for method {method!r}, budget {budget!r}, group {group!r}")
    return Estimate.proportion(sum(r["correct"] for r in picked), len(picked))


def _per_item(rows, method: str, budgets: Sequence[str], field: str = "correct") -> np.ndarray:
    """``(items, budgets)`` array of ``field`` for ``method`` (items in order)."""
    table: dict[int, dict[str, float]] = {}
    for r in rows:
        if r["method"] == method and r["budget"] in budgets:
            table.setdefault(r["item"], {})[r["budget"]] = float(r[field])
    return np.array([[table[i][b] for b in budgets] for i in sorted(table)])


def _interval(value: float, draws: np.ndarray) -> Estimate:
    low, high = np.quantile(draws, [0.025, 0.975])
    return Estimate(value, min(value, float(low)), max(value, float(high)))


def _bootstrap(values: np.ndarray, rng: np.random.Generator, n_boot: int) -> Estimate:
    index = rng.integers(len(values), size=(n_boot, len(values)))
    return _interval(float(values.mean()), values[index].mean(axis=1))


def paired_difference(
    rows, a: str, b: str, budgets: Sequence[str], rng: np.random.Generator, n_boot: int = 2000
) -> Estimate:
    """Mean over ``budgets`` of accuracy(a) − accuracy(b), paired by item, with a bootstrap interval over items."""
    return _bootstrap((_per_item(rows, a, budgets) - _per_item(rows, b, budgets)).mean(axis=1), rng, n_boot)


def gap_growth(rows, a: str, b: str, tight: str, loose: str, rng: np.random.Generator, n_boot: int = 2000):
    """(a − b at the ``tight`` budget) − (a − b at the ``loose`` one), paired by item, bootstrap interval."""
    d = _per_item(rows, a, (tight, loose)) - _per_item(rows, b, (tight, loose))
    return _bootstrap(d[:, 0] - d[:, 1], rng, n_boot)


def retention(
    rows, method: str, budget: str, rng: np.random.Generator, n_boot: int = 2000
) -> tuple[Estimate, Estimate]:
    """``method``'s accuracy at ``budget`` as a share of the full model's, and the share of the floor-to-full gap
    it closes, ``(acc − floor) / (full − floor)``; both with bootstrap intervals over items, each draw resampling
    the same items for the method and the references (paired). A draw whose gap is zero counts as closing none."""
    m = _per_item(rows, method, (budget,))[:, 0]
    full, floor = (_per_item(rows, name, ("—",))[:, 0] for name in ("full", "floor"))
    index = rng.integers(len(m), size=(n_boot, len(m)))
    acc, top, bottom = (x[index].mean(axis=1) for x in (m, full, floor))
    with np.errstate(divide="ignore", invalid="ignore"):
        retained = np.where(top > 0, acc / top, 0.0)
        closes = np.where(top > bottom, (acc - bottom) / (top - bottom), 0.0)
    value_retained = m.mean() / full.mean() if full.mean() > 0 else 0.0
    gap = full.mean() - floor.mean()
    value_closes = (m.mean() - floor.mean()) / gap if gap > 0 else 0.0
    return _interval(float(value_retained), retained), _interval(float(value_closes), closes)


def mean_recall(rows, method: str, budget: str) -> Estimate:
    """Mean share of the answering patches among the kept tokens, with a t-interval over items."""
    values = [r["recall"] for r in rows if r["method"] == method and r["budget"] == budget]
    return Estimate.mean_of([v for v in values if not np.isnan(v)])


# --------------------------------------------------------------------------------------------------------------
# Efficiency: FLOPs from the shapes, KV bytes from the cache, and measured time
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shapes:
    """What the cost of the language model depends on (read from ``text_config``)."""

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int

    @classmethod
    def of(cls, model) -> Shapes:
        c = model.config.text_config
        head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
        kv = getattr(c, "num_key_value_heads", None) or c.num_attention_heads
        return cls(c.num_hidden_layers, c.hidden_size, c.num_attention_heads, kv, head_dim, c.intermediate_size)


LLAVA_7B = Shapes(layers=32, hidden=4096, heads=32, kv_heads=32, head_dim=128, intermediate=11008)
"""``llava-hf/llava-1.5-7b-hf``'s language model (Vicuna-7B), from its config."""


def layer_flops(shapes: Shapes, tokens: int) -> int:
    """Multiply–adds × 2 of one decoder layer over ``tokens`` tokens (prefill): the four attention projections,
    the three MLP matrices, and the ``tokens²`` attention scores and weighted sum (FastV's count, the full square)."""
    s = shapes
    projections = s.hidden * s.heads * s.head_dim * 2 + s.hidden * s.kv_heads * s.head_dim * 2
    return 2 * tokens * (projections + 3 * s.hidden * s.intermediate) + 4 * s.heads * s.head_dim * tokens**2


def prefill_flops(shapes: Shapes, sequence: int, n_image: int, layer: int, kept: int) -> int:
    """FLOPs of the language model's prefill when ``n_image − kept`` visual tokens leave at decoder layer ``layer``."""
    short = sequence - n_image + kept
    return layer * layer_flops(shapes, sequence) + (shapes.layers - layer) * layer_flops(shapes, short)


def kv_bytes(shapes: Shapes, tokens: int, bytes_per_number: int = 4) -> int:
    """Bytes of a cache holding ``tokens`` positions in every layer (keys and values)."""
    return 2 * shapes.layers * shapes.kv_heads * shapes.head_dim * tokens * bytes_per_number


def cache_bytes(cache) -> int:
    """Bytes the keys and values of a ``DynamicCache`` really hold."""
    return sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers)


def clock(model) -> Callable[[], float]:
    """The clock the efficiency run reads: on a GPU, wall time after the device's queue has drained; on a CPU, the
    process's CPU time (one torch thread: the work done, not the waiting of a shared machine)."""
    if model.device.type == "cuda":

        def synchronised() -> float:
            torch.cuda.synchronize(model.device)
            return time.perf_counter()

        return synchronised
    return time.process_time


def time_plans(
    model, inputs: dict, layer: int, plans: dict[str, tuple], *, decode_tokens: int, repeats: int, seed: int
) -> list[dict]:
    """Time (:func:`clock`) of the prefill (scoring and pruning included) and per decoded token for each plan
    (``name → (keep, attentions)``, as :func:`forward_dropping_visual_tokens` takes them), with the plans in a
    shuffled order in each repeat so that drifts of the machine favour none; also each plan's cache bytes and
    cached positions per row."""
    rng = make_rng(seed, "timing order")
    now = clock(model)
    names = list(plans)
    rows = []
    for repeat in range(repeats):
        for name in (names[i] for i in rng.permutation(len(names))):
            keep, attentions = plans[name]
            start = now()
            state = forward_dropping_visual_tokens(model, inputs, layer, keep, attentions=attentions, cache=True)
            prefill = now() - start
            held, length = cache_bytes(state.cache), state.attention_mask.shape[1]
            tokens = state.last_logits.argmax(-1)
            start = now()
            for _ in range(decode_tokens):
                state = decode_step(model, state, tokens)
                tokens = state.last_logits.argmax(-1)
            rows.append({"plan": name, "repeat": repeat, "prefill_s": prefill,
                         "decode_s_per_token": (now() - start) / decode_tokens,
                         "kv_bytes": held, "cached_positions": length})  # fmt: skip
    return rows


def time_ratio(timings, plan: str, reference: str, column: str) -> Estimate:
    """Mean over repeats of ``plan``'s time / ``reference``'s time (paired by repeat), t-interval."""
    by = {}
    for r in timings:
        by.setdefault(r["repeat"], {})[r["plan"]] = r[column]
    return Estimate.mean_of([v[plan] / v[reference] for v in by.values()])


def plan_efficiency(timings, shapes: Shapes, sequence: int, n_image: int, layer: int, kept: dict[str, int]):
    """Per plan of :func:`time_plans` (``kept``: plan → visual tokens it keeps from ``layer`` on): the language
    model's prefill GFLOPs (from the shapes), the KV cache held (measured), cached positions per row, and the mean
    prefill and per-token decode times."""
    import pandas as pd

    frame = pd.DataFrame(timings)
    table = frame.groupby("plan").agg(
        kv_kib=("kv_bytes", lambda b: b.iloc[0] / 1024),
        cached=("cached_positions", "first"),
        prefill_ms=("prefill_s", lambda t: 1e3 * t.mean()),
        decode_ms_per_token=("decode_s_per_token", lambda t: 1e3 * t.mean()),
    )
    flops = {plan: prefill_flops(shapes, sequence, n_image, layer, k) / 1e9 for plan, k in kept.items()}
    table.insert(0, "GFLOPs", pd.Series(flops))
    return table.loc[list(kept)]


def caches_hold(timings, shapes: Shapes, batch: int, sequence: int, n_image: int, kept: dict[str, int]) -> bool:
    """Whether every timed cache holds ``sequence − n_image + kept[plan]`` positions per row and
    ``2 · layers · kv_heads · head_dim`` float32 numbers per position and row."""
    expected = {plan: sequence - n_image + k for plan, k in kept.items()}
    return all(
        r["cached_positions"] == expected[r["plan"]] and r["kv_bytes"] == batch * kv_bytes(shapes, expected[r["plan"]])
        for r in timings
    )


# --------------------------------------------------------------------------------------------------------------
# Figures shared by the chapters
# --------------------------------------------------------------------------------------------------------------


def mark_kept(ax, kept: Sequence[int], side: int) -> None:
    """Cyan dots on the patches ``kept`` (row-major indices) of a ``side × side`` map drawn with ``imshow``."""
    ax.plot(*np.array([divmod(p, side)[::-1] for p in kept]).T, "o", ms=3, mfc="cyan", mec="black", mew=0.5)


def frame_map_row(row, example: dict, outlines: Sequence[tuple[str, str]] = (("answer", "#00FF66"),)) -> None:
    """Finish one row of a map figure: no ticks or grid, and each ``(key, colour)`` of ``outlines`` (patches of
    ``example[key]``) outlined on every panel; the first panel is the image, the others ``side × side`` maps."""
    for ax in row:
        ax.set_xticks([]), ax.set_yticks([]), ax.grid(False)
        scale = example["image"].shape[0] / example["side"] if ax is row[0] else 1
        for key, colour in outlines:
            outline_patches(ax, example[key], example["side"], scale, colour)


def outline_patches(ax, patches: Sequence[int], side: int, scale: float, colour: str) -> None:
    """An unfilled square around each patch of a ``side × side`` grid, on an image ``scale`` pixels per patch."""
    from matplotlib.patches import Rectangle

    for patch in patches:
        r, c = divmod(patch, side)
        ax.add_patch(Rectangle((c * scale - 0.5, r * scale - 0.5), scale, scale, fill=False, ec=colour, lw=1.2))


def plot_budget_curves(
    rows,
    order: Sequence[str],
    budgets: dict[str, float],
    colours: dict[str, str],
    references,
    layer: int,
    *,
    height: float,
    dodge: float,
    floor_margin: float | None = None,
):
    """Two panels against the share of visual tokens kept (tighter to the right): each method's accuracy
    (:func:`accuracy`, Wilson 95 % intervals) with the ``references`` (``full``, ``ceiling``, ``floor``) as lines,
    and its mean recall of the answering patches (:func:`mean_recall`). Methods are drawn in ``order``, each shifted
    by ``dodge`` (relative) from the next so that error bars stay apart; ``floor_margin`` sets the accuracy axis to
    start that far below the floor."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, height))
    x = [budgets[b] for b in budgets]
    for offset, method in enumerate(order):
        dodged = [v * (1 + dodge * (offset - len(order) / 2)) for v in x]
        for ax, values in (
            (axes[0], [accuracy(rows, method, b) for b in budgets]),
            (axes[1], [mean_recall(rows, method, b) for b in budgets]),
        ):
            ax.errorbar(
                dodged,
                [c.value for c in values],
                yerr=[[c.value - c.low for c in values], [c.high - c.value for c in values]],
                fmt="o-",
                ms=4,
                capsize=2,
                lw=1.2,
                color=colours[method],
                label=method if ax is axes[0] else None,
            )
    for name, style in (("full", "-"), ("ceiling", ":"), ("floor", "--")):
        axes[0].axhline(references[name], color="black", ls=style, lw=1, label=name)
    axes[0].set(
        xlabel="share of the visual tokens kept", ylabel="accuracy", title=f"Accuracy, pruning at layer {layer}"
    )
    if floor_margin is not None:
        axes[0].set_ylim(bottom=references["floor"] - floor_margin)
    axes[1].set(
        xlabel="share of the visual tokens kept",
        ylabel="answering patches kept (mean share)",
        title="Recall of the answering patches",
    )
    for ax in axes:
        ax.set_xticks(x, list(budgets))
        ax.invert_xaxis()
    axes[0].legend(fontsize=7, ncols=5, loc="upper center", bbox_to_anchor=(1.1, -0.18))
    return fig
