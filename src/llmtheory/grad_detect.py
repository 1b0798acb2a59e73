"""Grad Detect (Kamat, Blake and Werness, 2026): hallucination detection from layer-wise gradients.

The paper's pipeline, top to bottom, as plain functions:

1. **Items and labels** (paper §3, step 4): ask each question once under greedy decoding and label the reply
   *correct*, *incorrect* or *did not answer* (DNA) with a judge (exact match on the toy world,
   :func:`toy_judge`; a normalised alias match for real QA sets, :func:`alias_judge`). Classes are balanced by
   stratified downsampling and the development items split 50/50 into a *reference* and a *training* half
   (:func:`split_items`); we also keep a held-out test split, grouped by entity.
2. **Probe loss** (step 2): teacher-force a fixed probe response r after the instructed chat prompt,
   L(x, r) = −(1/|r|) Σ_t log p(r_t | x, r_<t), on the probe tokens only (:func:`probe_loss`).
3. **Layer gradients** (step 3): for the MLP down-projection W_l of every layer, a forward hook keeps its inputs
   a_t and one backward pass of the whole batch gives the gradients δ_t of its outputs (:func:`probe_activations`);
   the item's gradient ∇_{W_l} L = Σ_t δ_t a_tᵀ is formed only to check the rest (:func:`layer_gradients`,
   :func:`layer_gradients_vmap` is the ``torch.func`` version).
4. **References and features** (steps 5–6): g_{c,r}^(l) = normalised mean gradient of class c over the reference
   half, accumulated as Σ δ aᵀ batch by batch (:func:`class_references`); features s^(l,c) = cos(∇_{W_l} L(x, r′),
   g_{c,r}^(l)), an L×|C| matrix per item, from ⟨G, R⟩ = Σ_t δ_tᵀ R a_t and ‖G‖² = Σ_{t,s} (δ_t·δ_s)(a_t·a_s)
   without forming G (:func:`activation_cosines`). :func:`memory_estimate` says what a run needs before it starts.
5. **Predictor** (steps 7–8): a small transformer encoder over layers, trained with focal loss
   (:class:`LayerEncoder`, :func:`train_predictor`), and a logistic-regression version (:func:`fit_logistic`).

The baselines of the paper's Table 3 run on the same items
(:func:`~llmtheory.grad_detect_experiment.correctness_baselines`): max-softmax confidence
and sequence perplexity of the greedy answer, self-consistency and semantic entropy from sampled answers (with a
pluggable equivalence, :func:`semantic_entropy`), a probe on the last-layer hidden state and Self-Assessment (the
model asked whether its answer is correct). The response task's control is the probability that the first
generated token opens a refusal (:func:`refusal_logprob`, openings in :data:`REFUSAL_OPENINGS`). The same calls
work for a Hugging Face chat model (Llama-like, GPT-2 or GPT-NeoX layouts) and any QA set given as
:class:`QAItem`; a task whose classes are missing is left out with its reason
(:attr:`~llmtheory.grad_detect_experiment.Detection.untestable`). The pipeline on one model, the statistics and the
costs the chapter measures are in :mod:`llmtheory.grad_detect_experiment`.
"""

from __future__ import annotations

import math
import string
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from . import toyworld as tw
from .params import Choice, Int, ListOf, Model, Optional, ParameterError, Real, check_choice, check_int
from .seeding import make_rng

CORRECT, INCORRECT, DNA = "correct", "incorrect", "did-not-answer"
LABELS: tuple[str, ...] = (CORRECT, INCORRECT, DNA)
ANSWERED = "answered"
TASKS: dict[str, tuple[str, ...]] = {
    "correctness": (CORRECT, INCORRECT),
    "response": (ANSWERED, DNA),
    "full": (CORRECT, INCORRECT, DNA),
}
"""The paper's three tasks and their classes (``answered`` = correct or incorrect)."""
PROBES: dict[str, str] = {"positive": tw.PROBE_POSITIVE, "negative": tw.PROBE_NEGATIVE}
"""The two probe responses r+ = "Sure" and r− = "Unfortunately"."""


# --------------------------------------------------------------------------------------------------------------
# 1. Items, prompts, greedy answers and labels
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QAItem:
    """One question with its accepted answers (none for an unanswerable one) and a ``group`` (the entity), so that
    splits never put the same entity on both sides; ``source`` is the frequency bucket or ``"unknown"``."""

    question: str
    answers: tuple[str, ...]
    group: str
    source: str


def toy_items(world: tw.World, templates: Sequence[int] = (0,)) -> list[QAItem]:
    """Questions about every known fact and every never-described entity of the toy world, in each template."""
    items = []
    for template in templates:
        items += [QAItem(f.question(template), (f.answer,), f.entity, f.bucket) for f in world.facts]
        items += [QAItem(q.question(template), (), q.entity, "unknown") for q in world.unknown_queries]
    return items


def qa_items(questions: Sequence[str], answers: Sequence[Sequence[str]]) -> list[QAItem]:
    """Items from a public QA set, e.g. TriviaQA's ``question`` and ``answer["aliases"]``; every question is its
    own group."""
    return [QAItem(q, tuple(a), q, "qa") for q, a in zip(questions, answers, strict=True)]


def prompt_ids(tokenizer, question: str, instruction: str = tw.INSTRUCTION) -> list[int]:
    """Token ids of the chat prompt the paper uses: the instruction, the question, the generation prompt (step 2).

    The text comes from the tokenizer's own chat template, so the same call serves a zoo model and a hub chat
    model; a base model without a template (GPT-2, Pythia) gets ``<instruction> <question>\nAnswer:``.
    """
    if getattr(tokenizer, "chat_template", None) is None:
        return tokenizer(f"{instruction} {question}\nAnswer:")["input_ids"]
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": f"{instruction} {question}"}], add_generation_prompt=True, tokenize=False
    )
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def normalise_answer(reply: str) -> str:
    """Lower case, no punctuation, no articles, single spaces: answers equal after this are one meaning."""
    text = reply.lower().translate(str.maketrans("", "", string.punctuation))
    return " ".join(w for w in text.split() if w not in ("a", "an", "the"))


def toy_judge(reply: str, item: QAItem) -> str:
    """Exact match on the toy world: ``Unfortunately …`` is DNA, ``Sure , <answer> .`` is correct."""
    if tw.is_abstention(reply):
        return DNA
    return CORRECT if tw.parse_answer(reply) in item.answers else INCORRECT


ABSTENTION_PHRASES = ("i do not know", "i dont know", "unfortunately", "i cannot", "i cant", "not sure")


def contains_words(text: str, phrase: str) -> bool:
    """Whether the normalised ``phrase`` occurs in the normalised ``text`` as a run of whole words ("paris" is in
    "it is paris" but not in "a parisian cafe"); an empty phrase occurs nowhere."""
    words, wanted = normalise_answer(text).split(), normalise_answer(phrase).split()
    return bool(wanted) and any(words[i : i + len(wanted)] == wanted for i in range(len(words) - len(wanted) + 1))


def alias_judge(reply: str, item: QAItem) -> str:
    """A judge for real QA sets (TriviaQA-style alias lists): DNA on a refusal phrase, correct when a normalised
    alias occurs in the normalised reply as whole words (:func:`contains_words`). A stand-in for the paper's LLM
    judge, whose prompt is not published."""
    if any(contains_words(reply, p) for p in ABSTENTION_PHRASES):
        return DNA
    return CORRECT if any(contains_words(reply, a) for a in item.answers) else INCORRECT


def model_device(model) -> torch.device:
    """Where the model's weights live (a hub model may sit on a GPU); inputs go there, results come back."""
    return next(model.parameters()).device


def _length_groups(prompts: Sequence[Sequence[int]]) -> dict[int, list[int]]:
    """Item indices by prompt length: batches of equal length need no padding, so every family decodes alike."""
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(len(p), []).append(i)
    return dict(sorted(groups.items()))


@dataclass
class Greedy:
    """Greedy replies with the per-token probabilities the confidence baselines need."""

    replies: list[str]
    max_softmax: np.ndarray
    """Mean over the reply's tokens of the largest next-token probability."""
    perplexity: np.ndarray
    """exp of the mean negative log-probability of the reply's tokens."""
    new_tokens: np.ndarray


@torch.no_grad()
def greedy_answers(model, tokenizer, prompts: Sequence[Sequence[int]], max_new_tokens: int = 8, batch_size: int = 256):
    """Greedy decoding (T = 0, paper step 4) of every prompt, batched by prompt length; returns :class:`Greedy`."""
    n = len(prompts)
    replies, conf, ppl, lengths = [""] * n, np.zeros(n), np.zeros(n), np.zeros(n, dtype=int)
    for _, idx in _length_groups(prompts).items():
        for start in range(0, len(idx), batch_size):
            chunk = idx[start : start + batch_size]
            ids = torch.tensor([prompts[i] for i in chunk], device=model_device(model))
            out = model.generate(
                input_ids=ids,
                attention_mask=torch.ones_like(ids),
                do_sample=False,
                max_new_tokens=max_new_tokens,
                output_logits=True,
                return_dict_in_generate=True,
                pad_token_id=tokenizer.pad_token_id,
            )
            new = out.sequences[:, -len(out.logits) :].cpu()
            logprobs = torch.stack(out.logits, 1).float().log_softmax(-1).cpu()
            chosen = logprobs.gather(-1, new[..., None])[..., 0]
            live = _before_eos(new, tokenizer.eos_token_id)
            count = live.sum(1).clamp(min=1)
            for row, i in enumerate(chunk):
                replies[i] = tokenizer.decode(new[row][live[row]], skip_special_tokens=True)
            conf[chunk] = ((logprobs.max(-1).values.exp() * live).sum(1) / count).numpy()
            ppl[chunk] = torch.exp(-(chosen * live).sum(1) / count).numpy()
            lengths[chunk] = live.sum(1).numpy()
    return Greedy(replies, conf, ppl, lengths)


def _before_eos(tokens: torch.Tensor, eos_token_id) -> torch.Tensor:
    """Mask of generated tokens up to and excluding the first end-of-sequence token."""
    eos = torch.as_tensor(eos_token_id).flatten()
    is_end = torch.isin(tokens, eos)
    return torch.cumsum(is_end.int(), 1) == 0


def label_replies(items: Sequence[QAItem], replies: Sequence[str], judge: Callable = toy_judge) -> np.ndarray:
    """The judge's label (one of :data:`LABELS`) of each greedy reply."""
    return np.array([judge(r, it) for r, it in zip(replies, items, strict=True)])


def task_labels(labels: np.ndarray, task: str) -> np.ndarray:
    """Labels of ``task``: correctness drops DNA items (``""``), response merges correct and incorrect."""
    check_choice("task", task, TASKS)
    if task == "correctness":
        return np.where(labels == DNA, "", labels)
    if task == "response":
        return np.where(labels == DNA, DNA, ANSWERED)
    return labels.copy()


@dataclass(frozen=True)
class Split:
    """Indices of the balanced reference, training and test items of one task."""

    reference: np.ndarray
    training: np.ndarray
    test: np.ndarray


def split_items(
    groups: Sequence[str], labels: np.ndarray, *, seed: int, test_fraction: float = 0.3, key: str = ""
) -> Split:
    """Held-out test groups, then the paper's protocol on the rest (step 4).

    Entities (``groups``) go to the test side with probability ``test_fraction``; on each side the classes are
    balanced by stratified downsampling (items labelled ``""`` are left out); the development side is then split
    50/50, stratified, into the reference half and the training half.
    """
    rng = make_rng(seed, "grad_detect", "split", key)
    names = sorted(set(groups))
    test_groups = {g for g, u in zip(names, rng.random(len(names)), strict=True) if u < test_fraction}
    is_test = np.array([g in test_groups for g in groups])
    classes = sorted(set(labels) - {""})

    def balanced(mask: np.ndarray) -> list[np.ndarray]:
        members = [np.flatnonzero(mask & (labels == c)) for c in classes]
        n = min(len(m) for m in members)
        return [np.sort(rng.choice(m, n, replace=False)) for m in members]

    reference, training = [], []
    for members in balanced(~is_test):
        shuffled = rng.permutation(members)
        reference.append(shuffled[: len(shuffled) // 2])
        training.append(shuffled[len(shuffled) // 2 :])
    test = np.concatenate(balanced(is_test))
    return Split(np.sort(np.concatenate(reference)), np.sort(np.concatenate(training)), np.sort(test))


# --------------------------------------------------------------------------------------------------------------
# 2–3. Probe loss and per-item gradients of the MLP down-projections
# --------------------------------------------------------------------------------------------------------------


def down_projections(model) -> list[nn.Module]:
    """The MLP down-projection of every layer, bottom to top, for the Llama/Qwen2 (``mlp.down_proj``), GPT-2
    (``mlp.c_proj``) and GPT-NeoX (``mlp.dense_4h_to_h``) families, zoo or hub."""
    candidates = (
        ("model", "layers", "down_proj"),
        ("transformer", "h", "c_proj"),
        ("gpt_neox", "layers", "dense_4h_to_h"),
    )
    for trunk, stack, name in candidates:
        layers = getattr(getattr(model, trunk, None), stack, None)
        if layers is not None and all(hasattr(getattr(b, "mlp", None), name) for b in layers):
            return [getattr(b.mlp, name) for b in layers]
    raise ParameterError(
        f"cannot find the MLP down-projections of {type(model).__name__}; supported: Llama-like "
        "(model.layers[i].mlp.down_proj, also Qwen2, Mistral, Gemma), GPT-2 (transformer.h[i].mlp.c_proj) and "
        "GPT-NeoX (gpt_neox.layers[i].mlp.dense_4h_to_h)"
    )


@dataclass(frozen=True)
class ProbeBatch:
    """Prompts followed by a probe response, right-padded; ``probe_mask[b, t]`` marks probe-token targets."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    probe_mask: torch.Tensor


def pad_id(tokenizer) -> int:
    """The token that fills padded positions: the pad token, else end-of-sequence (GPT-2 has no pad token), else 0.
    Padded positions are masked out, so any id will do."""
    for found in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if found is not None:
            return int(found)


def probe_batch(tokenizer, prompts: Sequence[Sequence[int]], probe: str) -> ProbeBatch:
    """Teacher-forced inputs ``prompt + probe`` (paper step 2); padding on the right leaves every item's logits
    exactly as without padding under the causal mask."""
    probe_ids = tokenizer(probe, add_special_tokens=False)["input_ids"]
    rows = [list(p) + probe_ids for p in prompts]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id(tokenizer), dtype=torch.long)
    attention, targets = torch.zeros_like(ids), torch.zeros_like(ids, dtype=torch.bool)
    for b, row in enumerate(rows):
        ids[b, : len(row)] = torch.tensor(row)
        attention[b, : len(row)] = 1
        targets[b, len(row) - len(probe_ids) : len(row)] = True
    return ProbeBatch(ids, attention, targets)


def probe_loss(logits: torch.Tensor, input_ids: torch.Tensor, probe_mask: torch.Tensor) -> torch.Tensor:
    """Eq. ``grad_detect-eq-probe``: L(x, r) = −(1/|r|) Σ_t log p(r_t | x, r_<t) per item (paper step 2): probe
    tokens only.

    ``logits[b, t]`` predicts token ``t + 1``; returns a vector with one loss per item.
    """
    # log p(r_t | x, r_<t): the logits at t − 1 score token t
    logprobs = logits[:, :-1].log_softmax(-1).gather(-1, input_ids[:, 1:, None])[..., 0]
    mask = probe_mask[:, 1:].to(logprobs.dtype)
    # −(1/|r|) Σ_t over the probe tokens only
    return -(logprobs * mask).sum(1) / mask.sum(1)


@torch.no_grad()
def probe_losses(model, tokenizer, prompts, probe: str, batch_size: int = 64) -> np.ndarray:
    """The probe loss (eq. ``grad_detect-eq-probe``) of every prompt (paper step 2), forward passes only (no
    gradient)."""
    out = []
    for start in range(0, len(prompts), batch_size):
        batch = probe_batch(tokenizer, prompts[start : start + batch_size], probe)
        device = model_device(model)
        logits = model(input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device)).logits
        out.append(probe_loss(logits.float(), batch.input_ids.to(device), batch.probe_mask.to(device)).cpu().numpy())
    return np.concatenate(out)


@dataclass(frozen=True)
class LayerActivations:
    """What a forward hook and one backward pass give for one down-projection W_l (paper step 3), per item:
    its inputs a_t (B, T, I) and the gradients δ_t = ∂L/∂y_t of its outputs y_t = W_l a_t (B, T, O). The item's
    gradient ∇_{W_l} L = Σ_t δ_t a_tᵀ is never formed from them unless asked (:func:`layer_gradients`)."""

    inputs: torch.Tensor
    deltas: torch.Tensor


def probe_activations(model, batch: ProbeBatch, layers: Sequence[int] | None = None) -> list[LayerActivations]:
    """a and δ of every requested down-projection (default all layers) for each item of ``batch``: the factors of
    eq. ``grad_detect-eq-outer``.

    One forward–backward pass for the whole batch: the losses of different items do not interact, so the gradient
    of their sum with respect to a layer's *output* holds every item's δ_t (the per-example trick of Goodfellow,
    2015). Backpropagation stops at the lowest requested layer, so the last five layers cost less than all of them.
    Right padding is harmless: a padded position's output does not reach any probe token, so its δ is zero.
    """
    modules = down_projections(model)
    layers = list(range(len(modules))) if layers is None else list(layers)
    captured: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    # a_t: the down-projection's input, y_t = W_l a_t its output, kept by a forward hook
    def keep(index):
        return lambda module, args, output: captured.__setitem__(index, (args[0], output))

    handles = [modules[i].register_forward_hook(keep(i)) for i in layers]
    try:
        with torch.enable_grad():
            device = model_device(model)
            input_ids, probe_mask = batch.input_ids.to(device), batch.probe_mask.to(device)
            logits = model(input_ids=input_ids, attention_mask=batch.attention_mask.to(device)).logits
            losses = probe_loss(logits.float(), input_ids, probe_mask)
            # δ_t = ∂L/∂y_t, every item's at once: the items' losses do not interact
            deltas = torch.autograd.grad(losses.sum(), [captured[i][1] for i in layers])
    finally:
        for handle in handles:
            handle.remove()
    return [LayerActivations(captured[i][0].detach().float(), d.float()) for i, d in zip(layers, deltas, strict=True)]


def layer_gradients(model, batch: ProbeBatch, layers: Sequence[int] | None = None) -> torch.Tensor:
    """The explicit gradients ∇_{W_l} L(x_b, r) = Σ_t δ_{b,t} a_{b,t}ᵀ (eq. ``grad_detect-eq-outer``), flattened
    in out × in layout: shape (B, |layers|, O·I). This is B·L·O·I numbers (0.4 GB per item for Qwen2.5-0.5B): the
    library uses it only to check :func:`activation_cosines`, which needs none of it."""
    with torch.no_grad():
        found = probe_activations(model, batch, layers)
        return torch.stack([torch.einsum("bto,bti->boi", f.deltas, f.inputs).flatten(1) for f in found], 1)


def layer_gradients_vmap(model, batch: ProbeBatch) -> torch.Tensor:
    """The same gradients as :func:`layer_gradients` (all layers), item by item with ``torch.func.vmap(grad(...))``
    over a ``functional_call`` restricted to the down-projection weights (the per-sample recipe of the research
    note). Items of a batch must share one length (no padding): ``vmap`` cannot take data-dependent masks."""
    from torch.func import functional_call, grad, vmap

    if not bool(batch.attention_mask.all()):
        raise ParameterError("layer_gradients_vmap needs a batch of equal-length items (no padding)")
    modules = down_projections(model)
    names = {id(m.weight): None for m in modules}
    params = {n: p.detach() for n, p in model.named_parameters() if id(p) in names}

    def item_loss(weights, ids, probe_mask):
        logits = functional_call(model, weights, (ids[None],), {"use_cache": False}).logits
        return probe_loss(logits, ids[None], probe_mask[None]).sum()

    with warnings.catch_warnings():  # "no batching rule for the fused attention kernel": the slowdown we measure
        warnings.filterwarnings("ignore", message="There is a performance drop")
        inputs = (batch.input_ids.to(model_device(model)), batch.probe_mask.to(model_device(model)))
        grads = vmap(grad(item_loss), in_dims=(None, 0, 0))(params, *inputs)
    # GPT-2's Conv1D stores its weight in × out: transpose to the out × in layout of layer_gradients.
    out = [g if isinstance(m, nn.Linear) else g.transpose(1, 2) for g, m in zip(grads.values(), modules, strict=True)]
    return torch.stack([g.flatten(1) for g in out], 1)


# --------------------------------------------------------------------------------------------------------------
# 4. Class references and cosine features, without forming any item's gradient
# --------------------------------------------------------------------------------------------------------------


def gradient_norms(found: LayerActivations) -> torch.Tensor:
    """‖G_b‖_F with G_b = Σ_t δ_t a_tᵀ, from ‖G‖² = Σ_{t,s} (δ_t·δ_s)(a_t·a_s) (eq. ``grad_detect-eq-norm``):
    two T×T Gram matrices per item instead of an O×I matrix. Shape (B,)."""
    # δ_t·δ_s and a_t·a_s
    gram_d = torch.einsum("bto,bso->bts", found.deltas, found.deltas)
    gram_a = torch.einsum("bti,bsi->bts", found.inputs, found.inputs)
    # ‖G‖_F² = Σ_{t,s} (δ_t·δ_s)(a_t·a_s)
    return (gram_d * gram_a).sum((1, 2)).clamp(min=0).sqrt()


def gradient_inner(found: LayerActivations, references: torch.Tensor) -> torch.Tensor:
    """⟨G_b, R_c⟩ = Σ_t δ_tᵀ R_c a_t (eq. ``grad_detect-eq-norm``) for references (C, O, I): shape (B, C)."""
    # R_c a_t
    projected = torch.einsum("coi,bti->btco", references, found.inputs)
    # Σ_t δ_tᵀ (R_c a_t)
    return torch.einsum("btco,bto->bc", projected, found.deltas)


def activation_cosines(found: Sequence[LayerActivations], references: torch.Tensor) -> torch.Tensor:
    """Eq. ``grad_detect-eq-features``: s^(l,c) = cos(∇_{W_l} L(x, r′), g_{c,r}^(l)) (paper step 6) from a and δ
    alone: references (C, L, O, I) give features (B, L, C)."""
    columns = []
    for layer, f in enumerate(found):
        refs = references[:, layer]
        # cos = ⟨G, g⟩ / (‖G‖_F ‖g‖_F), both parts from eq. grad_detect-eq-norm
        inner = gradient_inner(f, refs)
        norms = gradient_norms(f)[:, None] * refs.flatten(1).norm(dim=1)[None]
        columns.append(inner / norms.clamp(min=1e-30))
    return torch.stack(columns, 1)


def gradient_sums(found: Sequence[LayerActivations], weights: torch.Tensor) -> torch.Tensor:
    """Σ_b w_{b,c} Σ_t δ_{b,t} a_{b,t}ᵀ for every class c and layer: weights (B, C) give (C, L, O, I). A class
    mean of gradients is one O×I matrix per layer: the sum runs over items and positions at once."""
    return torch.stack([torch.einsum("bc,bto,bti->coi", weights, f.deltas, f.inputs) for f in found], 1)


def iterate_activations(model, tokenizer, prompts, probe: str, batch_size: int = 64, layers=None):
    """Yield ``(indices, activations)`` batch by batch: memory grows with the batch, not with the item count."""
    for start in range(0, len(prompts), batch_size):
        index = np.arange(start, min(start + batch_size, len(prompts)))
        batch = probe_batch(tokenizer, [prompts[i] for i in index], probe)
        yield index, probe_activations(model, batch, layers)


def class_members(labels: np.ndarray, classes: Sequence[str]) -> list[np.ndarray]:
    """Boolean membership of each class (:data:`ANSWERED` collects correct and incorrect items)."""
    return [np.isin(labels, (CORRECT, INCORRECT)) if c == ANSWERED else labels == c for c in classes]


def class_references(
    model, tokenizer, prompts, labels: np.ndarray, classes: Sequence[str], probe: str, batch_size: int = 64
) -> torch.Tensor:
    """g_{c,r}^(l) = mean_{i ∈ c} ∇_{W_l} L(x_i, r) / ‖·‖_F over the reference items (paper step 5), the
    references of eq. ``grad_detect-eq-features``: (|C|, L, O, I).

    ``prompts`` and ``labels`` are the reference half; every class needs at least one item (callers drop a task
    whose class is missing, :func:`testable_tasks`).
    """
    members = class_members(labels, classes)
    if not all(m.any() for m in members):
        raise ParameterError(f"every class needs a reference item; counts: {[int(m.sum()) for m in members]}")
    sums = None
    for index, found in iterate_activations(model, tokenizer, prompts, probe, batch_size):
        weights = torch.tensor(
            np.stack([m[index] for m in members], 1), dtype=torch.float32, device=model_device(model)
        )
        # Σ over the class's items and positions of δ_t a_tᵀ, accumulated batch by batch
        part = gradient_sums(found, weights)
        sums = part if sums is None else sums + part
    # the mean, normalised to unit Frobenius norm (the 1/|c| cancels)
    return unit_references(sums)


def unit_references(matrices: torch.Tensor) -> torch.Tensor:
    """Each (class, layer) matrix of (C, L, O, I) scaled to unit Frobenius norm."""
    return matrices / matrices.flatten(2).norm(dim=-1)[..., None, None].clamp(min=1e-30)


def random_references(like: torch.Tensor, *, seed: int) -> torch.Tensor:
    """Unit references of the same shape pointing in random directions: the control of the probe-configuration
    claim (features against them carry no class information)."""
    generator = torch.Generator().manual_seed(int(make_rng(seed, "grad_detect", "random-references").integers(2**31)))
    return unit_references(torch.randn(like.shape, generator=generator)).to(like.device)


def cosine_features(grads: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """Eq. ``grad_detect-eq-features``, s^(l,c) from explicit gradients (B, L, P) and references (C, L, P): features
    (B, L, C). For gradients that
    exist as vectors (the planted exercise) and to check :func:`activation_cosines`."""
    unit = grads / grads.norm(dim=-1, keepdim=True).clamp(min=1e-30)
    return torch.einsum("blp,clp->blc", unit, references / references.norm(dim=-1, keepdim=True))


def gradient_features(model, tokenizer, prompts, references: dict, probe: str, batch_size: int = 64) -> dict:
    """Features of every prompt against several reference sets at once (one backward pass per batch):
    ``{name: array (N, L, C)}``."""
    out = {name: np.zeros((len(prompts), r.shape[1], r.shape[0]), dtype=np.float32) for name, r in references.items()}
    for index, found in iterate_activations(model, tokenizer, prompts, probe, batch_size):
        for name, ref in references.items():
            out[name][index] = activation_cosines(found, ref).cpu().numpy()
    return out


# --------------------------------------------------------------------------------------------------------------
# Memory: what a run needs, printed before it starts
# --------------------------------------------------------------------------------------------------------------


def _meta_model(config):
    """The model of ``config`` on the meta device: shapes and parameter counts without any memory."""
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def down_shape(model) -> tuple[int, int, int]:
    """(layers, out, in) of the down-projections (GPT-2's Conv1D stores in × out)."""
    modules = down_projections(model)
    rows, cols = modules[0].weight.shape
    return (len(modules), rows, cols) if isinstance(modules[0], nn.Linear) else (len(modules), cols, rows)


def memory_estimate(
    model_or_config, *, batch_size: int, tokens: int, reference_classes: int, explicit_items: int = 0
) -> dict[str, float]:
    """Bytes a Grad Detect run needs (float32 weights, activations and references), by part, including the
    explicit per-item gradients of the check cell (``explicit_items`` items, formed twice: batched outer products
    and ``vmap``; the features themselves never form them).

    ``tokens`` is the longest prompt plus probe, ``reference_classes`` the number of (task, probe, class)
    references kept at once. Activations of the forward–backward pass are counted as ~34·h + 5·I values per
    token and layer (attention and MLP intermediates kept for backward, Korthikanti et al., 2022, without the
    attention matrix that fused kernels do not store) plus the logits.
    """
    model = model_or_config if isinstance(model_or_config, nn.Module) else _meta_model(model_or_config)
    config = model.config
    n_layers, out_dim, in_dim = down_shape(model)
    hidden, vocab = config.hidden_size, config.vocab_size
    values = batch_size * tokens
    parts = {
        "weights": 4.0 * sum(p.numel() for p in model.parameters()),
        "activations for backward": 4.0 * values * (n_layers * (34 * hidden + 5 * in_dim) + 3 * vocab),
        "hooked a and δ": 4.0 * values * n_layers * (in_dim + out_dim),
        "class references": 4.0 * reference_classes * n_layers * out_dim * in_dim,
    }
    parts["explicit gradients (check cell)"] = 2 * 4.0 * explicit_items * n_layers * out_dim * in_dim
    parts["total"] = sum(parts.values())
    return parts


def choose_batch_size(
    model_or_config, *, tokens: int, reference_classes: int, budget_bytes: float, largest=256, explicit_items: int = 0
):
    """The largest power-of-two batch whose :func:`memory_estimate` total fits ``budget_bytes`` (at least 1)."""
    batch = largest
    while batch > 1:
        found = memory_estimate(
            model_or_config,
            batch_size=batch,
            tokens=tokens,
            reference_classes=reference_classes,
            explicit_items=explicit_items,
        )
        if found["total"] <= budget_bytes:
            break
        batch //= 2
    return batch


QWEN25_05B = {
    "model_type": "qwen2",
    "vocab_size": 151936,
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "tie_word_embeddings": True,
}
"""The published configuration of Qwen/Qwen2.5-0.5B-Instruct (its ``config.json``), for estimates offline."""


def plan_batch(model, tokenizer, prompts, probe: str, *, reference_classes: int, budget_bytes: float, explicit_items=0):
    """``(batch size, memory estimate by part, tokens)`` for one model and its prompts: the longest prompt plus
    probe sets the tokens, :func:`choose_batch_size` the batch, :func:`memory_estimate` what that batch needs."""
    tokens = max(len(p) for p in prompts) + len(tokenizer(probe, add_special_tokens=False)["input_ids"])
    sizes = {"tokens": tokens, "reference_classes": reference_classes, "explicit_items": explicit_items}
    batch = choose_batch_size(model, budget_bytes=budget_bytes, **sizes)
    return batch, memory_estimate(model, batch_size=batch, **sizes), tokens


def config_from_dict(values: dict):
    """A transformers config from a dict with ``model_type`` (no download)."""
    from transformers import AutoConfig

    values = dict(values)
    return AutoConfig.for_model(values.pop("model_type"), **values)


# --------------------------------------------------------------------------------------------------------------
# 5. Predictors: the paper's layer encoder with focal loss, and logistic regression
# --------------------------------------------------------------------------------------------------------------


class LayerEncoder(nn.Module):
    """The paper's predictor (step 7): a linear map |C| → d per layer, a learned layer-position embedding, a
    transformer encoder over the L layers, mean pooling over layers and a two-layer GELU head. Inputs are
    standardised per layer and class with statistics of the training items (``mean``, ``scale``)."""

    def __init__(self, n_layers: int, n_features: int, n_classes: int, *, width=32, depth=4, heads=4, dropout=0.1):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_layers, n_features))
        self.register_buffer("scale", torch.ones(n_layers, n_features))
        self.embed = nn.Linear(n_features, width)
        self.position = nn.Parameter(torch.zeros(n_layers, width))
        block = nn.TransformerEncoderLayer(width, heads, 2 * width, dropout, batch_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(block, depth, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.Linear(width, width), nn.GELU(), nn.Linear(width, n_classes))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(self.embed((features - self.mean) / self.scale) + self.position)
        return self.head(hidden.mean(1))


def focal_loss(logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Eq. ``grad_detect-eq-focal``: FL = −(1 − p_y)^γ log p_y averaged over the batch (Lin et al., 2017), γ = 2 as
    in the paper (step 8)."""
    logp = logits.log_softmax(-1).gather(-1, targets[:, None])[:, 0]
    return (-((1 - logp.exp()) ** gamma) * logp).mean()


@dataclass(frozen=True)
class PredictorConfig:
    """Training of :class:`LayerEncoder` (paper step 8; widths and learning rate scaled to our toy size)."""

    width: int = 32
    depth: int = 4
    heads: int = 4
    learning_rate: float = 1e-3
    weight_decay: float = 1e-5
    batch_size: int = 32
    max_epochs: int = 100
    patience: int = 15
    validation_fraction: float = 0.2


def train_predictor(features: np.ndarray, targets: np.ndarray, *, seed: int, config: PredictorConfig | None = None):
    """Train :class:`LayerEncoder` with focal loss (eq. ``grad_detect-eq-focal``), AdamW, gradient clipping at 1,
    ReduceLROnPlateau (factor 0.5, patience 5) and early stopping on a validation fifth of the training half; returns
    the best model (eval mode).

    ``targets`` are class indices. Deterministic for a given ``seed``.
    """
    config = config or PredictorConfig()
    rng = make_rng(seed, "grad_detect", "predictor")
    torch.manual_seed(int(rng.integers(2**31)))
    order = rng.permutation(len(targets))
    n_val = max(1, int(round(config.validation_fraction * len(targets))))
    x = torch.tensor(features, dtype=torch.float32)
    y = torch.tensor(targets, dtype=torch.long)
    val, fit = order[:n_val], order[n_val:]
    model = LayerEncoder(x.shape[1], x.shape[2], int(y.max()) + 1, width=config.width, depth=config.depth)
    # Cosines of one layer vary in the second or third decimal: standardise them with training statistics.
    model.mean.copy_(x[fit].mean(0))
    model.scale.copy_(x[fit].std(0).clamp(min=1e-8))
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
    schedule = torch.optim.lr_scheduler.ReduceLROnPlateau(optimiser, factor=0.5, patience=5)
    best, best_state, waited = math.inf, None, 0
    for _ in range(config.max_epochs):
        model.train()
        fit = fit[rng.permutation(len(fit))]
        for start in range(0, len(fit), config.batch_size):
            rows = fit[start : start + config.batch_size]
            optimiser.zero_grad()
            focal_loss(model(x[rows]), y[rows]).backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
        model.eval()
        with torch.no_grad():
            loss = float(focal_loss(model(x[val]), y[val]))
        schedule.step(loss)
        if loss < best - 1e-6:
            best, best_state, waited = loss, {k: v.clone() for k, v in model.state_dict().items()}, 0
        else:
            waited += 1
            if waited >= config.patience:
                break
    model.load_state_dict(best_state)
    return model.eval()


@torch.no_grad()
def predict_proba(model: nn.Module, features: np.ndarray) -> np.ndarray:
    """Class probabilities of a trained :class:`LayerEncoder`."""
    return model(torch.tensor(features, dtype=torch.float32)).softmax(-1).numpy()


def fit_logistic(features: np.ndarray, targets: np.ndarray, *, regularisation: float = 1.0):
    """Logistic regression on the flattened, standardised L×|C| features (our light version of the predictor)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=regularisation, solver="newton-cholesky", max_iter=200)
    )
    return model.fit(features.reshape(len(features), -1), targets)


# --------------------------------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def sample_answers(
    model, tokenizer, prompts, n_samples: int, *, seed: int, max_new_tokens: int = 8, temperature: float = 1.0
) -> list[list[str]]:
    """``n_samples`` replies per prompt by ancestral sampling at ``temperature`` (no top-k, no top-p), seeded."""
    check_int("n_samples", n_samples, minimum=1)
    samples: list[list[str]] = [[] for _ in prompts]
    for length, idx in _length_groups(prompts).items():
        torch.manual_seed(int(make_rng(seed, "grad_detect", "sampling", length).integers(2**31)))
        ids = torch.tensor([prompts[i] for i in idx], device=model_device(model))
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            do_sample=True,
            temperature=temperature,
            top_k=0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            num_return_sequences=n_samples,
            pad_token_id=pad_id(tokenizer),
        )
        new = out[:, length:].cpu()
        live = _before_eos(new, tokenizer.eos_token_id)
        for row in range(len(new)):
            samples[idx[row // n_samples]].append(tokenizer.decode(new[row][live[row]], skip_special_tokens=True))
    return samples


def self_consistency(greedy_reply: str, samples: Sequence[str]) -> float:
    """Share of sampled answers equal (after :func:`normalise_answer`) to the greedy answer (Wang et al., 2023)."""
    target = normalise_answer(greedy_reply)
    return float(np.mean([normalise_answer(s) == target for s in samples]))


def same_normalised_answer(first: str, second: str) -> bool:
    """The offline equivalence of two answers: equal after :func:`normalise_answer` (exact for the toy world's
    single-entity answers)."""
    return normalise_answer(first) == normalise_answer(second)


def entailment_equivalence(entails: Callable[[str, str], bool]) -> Callable[[str, str], bool]:
    """Kuhn et al.'s (2023) equivalence for real runs: two answers mean the same when each entails the other.

    ``entails(premise, hypothesis)`` is any NLI judgement, for example with a hub model::

        nli = transformers.pipeline("text-classification", model="microsoft/deberta-large-mnli")
        entails = lambda p, h: nli({"text": p, "text_pair": h})["label"] == "ENTAILMENT"
        equivalent = gd.entailment_equivalence(entails)

    (the question is usually prepended to both answers before the test, as Kuhn et al. do).
    """
    return lambda first, second: bool(entails(first, second) and entails(second, first))


def semantic_clusters(samples: Sequence[str], equivalent: Callable[[str, str], bool]) -> list[int]:
    """Cluster index of each sample: a sample joins the first cluster whose first member it is equivalent to
    (Kuhn et al., 2023, Algorithm 1), else starts a new one."""
    leaders: list[str] = []
    out = []
    for s in samples:
        found = next((k for k, leader in enumerate(leaders) if equivalent(leader, s)), None)
        if found is None:
            leaders.append(s)
            found = len(leaders) - 1
        out.append(found)
    return out


def semantic_entropy(samples: Sequence[str], equivalent: Callable[[str, str], bool] = same_normalised_answer) -> float:
    """Entropy (nats) of the meaning clusters of the samples (Kuhn et al., 2023); ``equivalent`` decides when two
    answers mean the same (:func:`same_normalised_answer` offline, :func:`entailment_equivalence` for real runs)."""
    counts = np.bincount(semantic_clusters(samples, equivalent)).astype(float)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def sampling_scores(
    greedy_replies: Sequence[str],
    samples: Sequence[Sequence[str]],
    n_consistency: int = 5,
    equivalent: Callable[[str, str], bool] = same_normalised_answer,
):
    """Correctness scores (higher = more likely correct) of the sampling baselines: self-consistency over the first
    ``n_consistency`` samples and minus the semantic entropy of all samples."""
    pairs = zip(greedy_replies, samples, strict=True)
    consistency = np.array([self_consistency(g, s[:n_consistency]) for g, s in pairs])
    entropy = np.array([semantic_entropy(s, equivalent) for s in samples])
    return consistency, -entropy


@torch.no_grad()
def last_hidden_states(model, prompts, batch_size: int = 256) -> np.ndarray:
    """Last-layer hidden state at the prompt's last token (the state that predicts the answer), for the probe."""
    out = np.zeros((len(prompts), model.config.hidden_size), dtype=np.float32)
    for _, idx in _length_groups(prompts).items():
        for start in range(0, len(idx), batch_size):
            chunk = idx[start : start + batch_size]
            ids = torch.tensor([prompts[i] for i in chunk], device=model_device(model))
            hidden = model(input_ids=ids, output_hidden_states=True)
            out[chunk] = hidden.hidden_states[-1][:, -1].float().cpu().numpy()
    return out


@torch.no_grad()
def next_token_logprobs(model, prompts, token_ids: Sequence[int], batch_size: int = 256) -> np.ndarray:
    """log p(first generated token = t | prompt) for each of ``token_ids``: shape (N, len(token_ids))."""
    out = np.zeros((len(prompts), len(token_ids)), dtype=np.float64)
    for _, idx in _length_groups(prompts).items():
        for start in range(0, len(idx), batch_size):
            chunk = idx[start : start + batch_size]
            ids = torch.tensor([prompts[i] for i in chunk], device=model_device(model))
            logprobs = model(input_ids=ids).logits[:, -1].float().log_softmax(-1)
            out[chunk] = logprobs[:, list(token_ids)].cpu().numpy()
    return out


def reply_lead(tokenizer) -> str:
    """What precedes a reply's first word: nothing after a chat template's generation prompt, a space after the
    "Answer:" that :func:`prompt_ids` writes for a model without one (GPT-2's " Yes" is not its "Yes")."""
    return "" if getattr(tokenizer, "chat_template", None) is not None else " "


def first_token_id(tokenizer, word: str) -> int:
    """The first token of ``word`` as a reply would start with it (:func:`reply_lead`), e.g. of "Yes"."""
    ids = tokenizer(reply_lead(tokenizer) + word, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ParameterError(f"the tokenizer turns {word!r} into no tokens")
    return ids[0]


REFUSAL_OPENINGS: tuple[str, ...] = (
    tw.PROBE_NEGATIVE,
    "I don't know",
    "I do not know",
    "I cannot",
    "I'm sorry",
    "Sorry",
)
"""How a refusal may open: the toy world's "Unfortunately" (every zoo refusal starts with it) and the usual openings
of a chat model's refusal. Only their first tokens matter (:func:`refusal_tokens`), so "I" stands for the three
that start with it: on a real model the control also counts replies such as "I think …", an over-count that makes
it a generous baseline, never a stricter one."""


def refusal_tokens(tokenizer, openings: Sequence[str] = REFUSAL_OPENINGS) -> list[int]:
    """The distinct first tokens of the refusal ``openings`` that the vocabulary knows, as a reply would start
    (:func:`reply_lead`).
    Openings the tokenizer maps to its unknown token are dropped: the toy world's word-level vocabulary keeps
    "Unfortunately" and "I" (a word of its refusal's second clause, with which no toy reply opens)."""
    unknown = getattr(tokenizer, "unk_token_id", None)
    tokens: list[int] = []
    for opening in openings:
        ids = tokenizer(reply_lead(tokenizer) + opening, add_special_tokens=False)["input_ids"]
        if ids and ids[0] != unknown and ids[0] not in tokens:
            tokens.append(ids[0])
    if not tokens:
        raise ParameterError(f"openings={tuple(openings)!r}: the tokenizer knows none of these refusal openings")
    return tokens


def refusal_logprob(model, tokenizer, prompts, openings: Sequence[str] = REFUSAL_OPENINGS) -> np.ndarray:
    """The response task's control: log-probability that the reply *starts* like a refusal, i.e. that its first
    token is one of :func:`refusal_tokens` of ``openings`` (log of the summed probability), read from the prompt's
    last position (no gradient, no answer). One feature per item, shape (N, 1)."""
    logprobs = next_token_logprobs(model, prompts, refusal_tokens(tokenizer, openings))
    return np.logaddexp.reduce(logprobs, axis=1, keepdims=True)


SELF_ASSESSMENT_QUESTION = "Is your answer correct? Answer Yes or No."


def self_assessment_prompt(tokenizer, question: str, reply: str, instruction: str = tw.INSTRUCTION) -> list[int]:
    """The chat in which the model is asked about its own answer: question, its greedy reply, then
    :data:`SELF_ASSESSMENT_QUESTION` and the generation prompt (paper's Self-Assessment baseline)."""
    turns = [
        {"role": "user", "content": f"{instruction} {question}"},
        {"role": "assistant", "content": reply},
        {"role": "user", "content": SELF_ASSESSMENT_QUESTION},
    ]
    if getattr(tokenizer, "chat_template", None) is None:
        return tokenizer(f"{instruction} {question}\nAnswer: {reply}\n{SELF_ASSESSMENT_QUESTION}\nAnswer:")["input_ids"]
    text = tokenizer.apply_chat_template(turns, add_generation_prompt=True, tokenize=False)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def self_assessment_tokens(tokenizer) -> tuple[int, int] | None:
    """Token ids of "Yes" and "No", or ``None`` when the vocabulary cannot tell them apart (unknown words)."""
    yes, no = first_token_id(tokenizer, "Yes"), first_token_id(tokenizer, "No")
    unknown = getattr(tokenizer, "unk_token_id", None)
    return None if yes == no or unknown in (yes, no) else (yes, no)


def self_assessment_scores(model, tokenizer, items, replies, instruction: str = tw.INSTRUCTION):
    """log p(Yes) − log p(No) after :func:`self_assessment_prompt` (higher = the model says it is right), or
    ``None`` when the tokenizer has no distinct "Yes" and "No" (the toy world's vocabulary has neither)."""
    tokens = self_assessment_tokens(tokenizer)
    if tokens is None:
        return None
    prompts = [
        self_assessment_prompt(tokenizer, it.question, r, instruction) for it, r in zip(items, replies, strict=True)
    ]
    logprobs = next_token_logprobs(model, prompts, tokens)
    return logprobs[:, 0] - logprobs[:, 1]


# --------------------------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------------------------


def forward_equivalents(model, k_layers: int | None = None) -> float:
    """Cost of Grad Detect in forward passes by the usual count of matrix products: a forward pass is 1, the
    backward pass through the top ``k`` of L layers costs (k/L)·(1 + f) — the input gradients (about one forward)
    plus the weight gradient of the down-projection only, a share f of the layer's matrix-product work."""
    modules = down_projections(model)
    layers = len(modules) if k_layers is None else k_layers
    block = [m for m in _layer_block(model) if isinstance(m, nn.Linear | _conv1d_type())]
    total = sum(m.weight.numel() for m in block)
    share = modules[0].weight.numel() / total
    return 1.0 + layers / len(modules) * (1.0 + share)


def _layer_block(model) -> list[nn.Module]:
    """Modules of the first decoder layer (the one holding the first down-projection)."""
    first = down_projections(model)[0]
    for block in model.modules():
        if hasattr(block, "mlp") and any(m is first for m in block.modules()):
            return list(block.modules())
    raise ParameterError("no decoder layer holds the first down-projection")


def _conv1d_type():
    from transformers.pytorch_utils import Conv1D

    return Conv1D


def sampling_forward_equivalents(prompt_tokens: float, new_tokens: float, n_samples: int) -> float:
    """Cost of ``n_samples`` sampled answers with a KV cache, in forward passes over the prompt: each sample
    processes the prompt once and then one token per step, (T + m)/T of a prompt pass."""
    return n_samples * (prompt_tokens + new_tokens) / prompt_tokens


def auroc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve by the Mann–Whitney rank formula (ties count one half)."""
    from scipy.stats import rankdata

    positive = np.asarray(positive, dtype=bool)
    n1, n0 = positive.sum(), (~positive).sum()
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def planted_detection_auroc(signal: float, *, seed: int, n_per_part: int = 200, n_layers: int = 8, dim: int = 64):
    """Test AUROC of the whole recipe on :func:`planted_gradients`: class references from a reference part,
    cosine features, logistic regression on a training part, scores on a test part."""
    grads, labels = planted_gradients(3 * n_per_part, n_layers, dim, signal=signal, seed=seed)
    reference, training, test = (np.arange(i * n_per_part, (i + 1) * n_per_part) for i in range(3))
    means = torch.stack([grads[reference][labels[reference] == c].mean(0) for c in (0, 1)])
    features = cosine_features(grads, means / means.norm(dim=-1, keepdim=True)).numpy()
    fitted = fit_logistic(features[training], labels[training])
    return auroc(labels[test] == 1, fitted.predict_proba(features[test].reshape(len(test), -1))[:, 1])


def planted_gradients(n_items: int, n_layers: int, dim: int, *, signal: float, seed: int):
    """Synthetic per-layer "gradients" with a planted class direction (for tests and an exercise): item i of class
    y_i ∈ {0, 1} has g_l = signal·u_{l,y_i} + noise. Returns ``(gradients (N, L, P) tensor, labels array)``."""
    rng = make_rng(seed, "grad_detect", "planted")
    directions = rng.normal(size=(2, n_layers, dim))
    labels = rng.integers(2, size=n_items)
    grads = signal * directions[labels] + rng.normal(size=(n_items, n_layers, dim))
    return torch.tensor(grads, dtype=torch.float32), labels


def time_estimate(
    model_or_config, *, n_items: int, prompt_tokens: int, answer_tokens: int, flops_per_second: float
) -> dict[str, float]:
    """Seconds a ``full`` run needs by counted work at an assumed sustained ``flops_per_second`` (2 FLOPs per
    parameter and token for a forward pass): greedy answers, the gradient features (references for 2 probes on
    the reference half, then 2 item probes on every item, each :func:`forward_equivalents` forward passes), and
    the 10 samples of semantic entropy. A lower bound where decoding is limited by memory bandwidth, not FLOPs."""
    model = model_or_config if isinstance(model_or_config, nn.Module) else _meta_model(model_or_config)
    params = sum(p.numel() for p in model.parameters())
    forward = 2.0 * params / flops_per_second  # seconds per token
    passes = forward_equivalents(model)
    probe_tokens = prompt_tokens + 2
    return {
        "greedy answers": n_items * (prompt_tokens + answer_tokens) * forward,
        "gradient features": (2 * n_items / 2 + 2 * n_items) * passes * probe_tokens * forward,
        "semantic entropy (10 samples)": 10 * n_items * (prompt_tokens + answer_tokens) * forward,
    }


def check_equivalence(name: str, value: object) -> object:
    """Semantic entropy's equivalence: a function ``(answer_a, answer_b) -> bool``."""
    if not callable(value):
        raise ParameterError(f"{name}={value!r} must be None or a function (answer_a, answer_b) -> bool")
    return value


PARAMETERS = {
    "MODEL": Model("a zoo name, a local folder or a Hugging Face chat model id"),
    "MODELS": ListOf(Model(), what="a non-empty list of zoo names, folders or hub ids"),
    "ITEM_PROBE": Choice(*PROBES),
    "REFERENCE_PROBE": Choice(*PROBES),
    "MATCHED_K": Int(1, 64),
    "QA_SET": Choice("toyworld", "trivia_qa"),
    "N_QUESTIONS": Int(minimum=100),
    "EQUIVALENCE": Optional(check_equivalence),
    "MEMORY_GB": Real(minimum=0.01),
}
"""The chapter's parameters besides ``SCALE`` and ``SEED`` (its notebook's ``parameters`` cell), declared once:
the notebook checks them with :func:`llmtheory.params.check_parameters`, the command line before it runs."""
