"""PriorTR: prior-corrected visual token reduction (Chen et al., ECCV 2026), as its official code
``CodeChildCZJ/PriorTR`` implements it for LLaVA (``image/LLaVA/llava/vtr/strategy/priortr.py``).

At pruning layer ``K`` the method reads the attention weights of layer ``K − 1`` (the last layer that saw every
token) and, from that one matrix,

1. the **prior** ``Q``: the row of the *null token* (LLaVA's ``"\\n"`` right after the image; under the causal mask
   it sees the image but not the question), over the image tokens (:func:`prior_attention`);
2. the **task attention** ``P``: the row of the last token (``query="last"``) or the mean of the rows from the null
   token to the end of the prompt (``query="question"``, the official default for LLaVA-1.5; it includes the null
   row and the last row) (:func:`task_attention`);
3. both averaged over heads (or their maximum) and renormalised to sum to one, in float32 (:func:`normalise`);
4. the score of each image token, its contribution to the V-information ``S = P · log(P / Q)``
   (:func:`vinfo_scores`, label ``priortr-eq-score``); the top ``k`` tokens are kept and the rest leave every
   later layer (and, for decoding, the cache of every layer).

**PriorTR-2F** (:func:`two_forward_prior`) obtains ``Q`` from an explicit second forward pass without the
instruction. The official default is truncation (``prior_mode="truncate"`` in the Qwen3-VL ``VTRConfig``; the
LLaVA-family ``priortr_2f_llava.py`` keeps ``input_ids[:, :img_pos + 2]``, the image and the newline, for its default
empty ``prior_prompt``): ``mode="truncate"`` here, by causality the same row as the null row, so the same ``Q``, and
on LLaVA the official 2F prior *is* PriorTR's one-pass prior. The non-default template (``mode="template"``: the
prompt with an empty question, whose last token is the assistant tag) is our variant, swept as
:data:`TWO_FORWARD` (``"2F (template, ours)"``) to show what reading the prior from another token does.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .params import Choice, File, Int, Model, Text, check_choice
from .visual_pruning import Method, image_attention, make_batch, rows_at, rule_from_scores, to_model
from .vlm import DropContext, forward_dropping_visual_tokens, last_positions, null_positions

EPS = 1e-10
"""The official code's ε in the renormalisation and inside the logarithm."""
QUERIES = ("question", "last")
TWO_FORWARD = "2F (template, ours)"
"""The name of :func:`two_forward_method` in the sweep: a 2F prior from the template prompt (the official default,
truncation, gives PriorTR's own ``Q``)."""
HEADS = ("mean", "max")


def _over_heads(rows: torch.Tensor, heads: str) -> torch.Tensor:
    """``(batch, heads, n_image)`` → ``(batch, n_image)``."""
    check_choice("heads", heads, HEADS)
    return rows.mean(dim=1) if heads == "mean" else rows.max(dim=1).values


def prior_attention(context: DropContext, heads: str = "mean") -> torch.Tensor:
    """``Q`` of ``priortr-eq-prior``: the null token's attention onto the image at layer ``K − 1`` (step 1),
    aggregated over heads."""
    return _over_heads(rows_at(image_attention(context), context.null_positions), heads)


def task_attention(context: DropContext, query: str = "question", heads: str = "mean") -> torch.Tensor:
    """``P`` of ``priortr-eq-prior``: the last token's row (``"last"``), or the mean of rows ``null .. last``
    (``"question"``) (step 2)."""
    check_choice("query", query, QUERIES)
    attention = image_attention(context)
    if query == "last":
        return _over_heads(rows_at(attention, context.last_positions), heads)
    seq = torch.arange(attention.shape[2], device=attention.device)
    rows = (seq >= context.null_positions[:, None]) & (seq <= context.last_positions[:, None])  # (batch, seq)
    weights = rows.float() / rows.sum(1, keepdim=True)
    return _over_heads(torch.einsum("bhsn,bs->bhn", attention, weights), heads)


def normalise(x: torch.Tensor) -> torch.Tensor:
    """Step 3 (the ``∝`` of ``priortr-eq-prior``): ``x / (Σ x + ε)`` over the image tokens, in float32."""
    x = x.float()
    return x / (x.sum(dim=-1, keepdim=True) + EPS)


def vinfo_scores(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Step 4 (``priortr-eq-score``): ``S_i = P_i · log((P_i + ε) / (Q_i + ε))`` with ``P``, ``Q`` normalised."""
    p, q = normalise(p), normalise(q)
    return p * torch.log((p + EPS) / (q + EPS))


def difference_scores(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """The simpler correction a reader might try first: ``P − Q`` (normalised)."""
    return normalise(p) - normalise(q)


def maps(context: DropContext, query: str = "question", heads: str = "mean") -> dict[str, torch.Tensor]:
    """``P``, ``Q`` (normalised) and ``S`` of every row, from one pass."""
    p, q = task_attention(context, query, heads), prior_attention(context, heads)
    return {"P": normalise(p), "Q": normalise(q), "S": vinfo_scores(p, q)}


def priortr_scores(query: str = "question", heads: str = "mean", score=vinfo_scores) -> Callable:
    """The PriorTR ranking of a pass's :class:`~llmtheory.vlm.DropContext` (``score``: ``vinfo_scores`` or the
    ``difference_scores`` ablation)."""
    return lambda context: score(task_attention(context, query, heads), prior_attention(context, heads))


def task_only_scores(query: str = "question", heads: str = "mean") -> Callable:
    """The ranking by ``P`` alone, from the same rows as PriorTR's ``P`` and no prior: with ``query="last"`` it is
    FastV; with ``"question"`` it separates what the choice of rows does from what dividing by ``Q`` does."""
    return lambda context: normalise(task_attention(context, query, heads))


def methods(query: str = "question", heads: str = "mean") -> list[Method]:
    """PriorTR, its ``P − Q`` ablation and ``P`` alone (PriorTR's rows, no prior) as methods of
    :func:`llmtheory.visual_pruning.evaluate` (one pass each)."""
    rankings = {
        "PriorTR": priortr_scores(query, heads),
        "P − Q": priortr_scores(query, heads, difference_scores),
        "P alone": task_only_scores(query, heads),
    }
    return [Method(name, _rule_of(score), attention=True) for name, score in rankings.items()]


def _rule_of(score: Callable) -> Callable:
    return lambda k, chunk: rule_from_scores(score, k)


@torch.no_grad()
def attention_context(model, inputs: dict, layer: int) -> DropContext:
    """The :class:`~llmtheory.vlm.DropContext` at pruning layer ``layer`` of one pass over ``inputs``."""
    seen = {}

    def capture(context):
        seen["context"] = context
        return None

    forward_dropping_visual_tokens(model, inputs, layer, capture, attentions=True)
    return seen["context"]


def _truncated(model, inputs: dict) -> dict:
    """The prompt cut right after the null token (every row has the same image, so the same null position)."""
    end = int(null_positions(model, inputs["input_ids"]).max()) + 1
    mask = inputs.get("attention_mask", torch.ones_like(inputs["input_ids"]))
    return inputs | {"input_ids": inputs["input_ids"][:, :end], "attention_mask": mask[:, :end]}


@torch.no_grad()
def two_forward_prior(model, processor, inputs: dict, images, layer: int, mode: str = "template", heads="mean"):
    """PriorTR-2F's ``Q``: the **last** token's attention onto the image at layer ``K − 1`` in a second pass without
    the instruction (``mode``: ``"truncate"`` after the null token, or ``"template"``, the prompt with an empty
    question). Returns ``(batch, n_image)``, not normalised."""
    check_choice("mode", mode, ("truncate", "template"))
    if mode == "truncate":
        prior_inputs = _truncated(model, inputs)
    else:
        prior_inputs = to_model(model, make_batch(processor, images, [""] * len(images)))
    context = attention_context(model, prior_inputs, layer)
    last = last_positions(context.attention_mask)
    return _over_heads(rows_at(image_attention(context), last), heads)


def two_forward_method(model, processor, layer: int, query: str = "question", heads: str = "mean") -> Method:
    """PriorTR-2F with the template prompt (ours; :data:`TWO_FORWARD`) as a method: ``Q`` from
    :func:`two_forward_prior` (``mode="template"``; one extra pass per chunk of items),
    ``P`` and the score as PriorTR. The prior of the last chunk is kept for its other budgets (keyed by the chunk's
    inputs themselves, so another chunk never reuses it)."""
    last: dict = {}

    def keep(k, chunk):
        if last.get("inputs") is not chunk.inputs:
            images = [scene.image() for scene, _ in chunk.items]
            q = two_forward_prior(model, processor, chunk.inputs, images, layer, "template", heads)
            last.update(inputs=chunk.inputs, q=q)
        q = last["q"]
        return rule_from_scores(lambda context: vinfo_scores(task_attention(context, query, heads), q), k)

    return Method(TWO_FORWARD, keep, attention=True)


PARAMETERS = {
    "MODEL": Model("a zoo name, a local folder or a Hugging Face LLaVA id"),
    "PRUNE_LAYER": Int(minimum=0),  # 0: chosen on separate items
    "QUERY": Choice(*QUERIES),
    "PER_KIND": Int(minimum=0),  # 0: by scale
    "IMAGE": File("an image file"),
    "QUESTION": Text("a question about IMAGE", empty=False),
}
"""The chapter's parameters besides ``SCALE`` and ``SEED`` (its notebook's ``parameters`` cell), declared once:
the notebook checks them with :func:`llmtheory.params.check_parameters`, the command line before it runs."""
