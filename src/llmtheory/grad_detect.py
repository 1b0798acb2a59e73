"""Grad Detect (Kamat, Blake and Werness, 2026): hallucination detection from layer-wise gradients.

The paper's pipeline, top to bottom, as plain functions:

1. **Items and labels** (paper §3, step 4): ask each question once under greedy decoding and label the reply
   *correct*, *incorrect* or *did not answer* (DNA) with a judge (exact match on the toy world,
   :func:`toy_judge`; a normalised alias match for real QA sets, :func:`alias_judge`). Classes are balanced by
   stratified downsampling and the development items split 50/50 into a *reference* and a *training* half
   (:func:`split_items`); we also keep a held-out test split, grouped by entity.
2. **Probe loss** (step 2): teacher-force a fixed probe response r after the instructed chat prompt,
   L(x, r) = −(1/|r|) Σ_t log p(r_t | x, r_<t), on the probe tokens only (:func:`probe_loss`).
3. **Layer gradients** (step 3): ∇_{W_l} L for the MLP down-projection W_l of every layer l, per item, from one
   forward–backward pass of the whole batch (:func:`layer_gradients`; :func:`layer_gradients_vmap` is the
   ``torch.func`` version).
4. **References and features** (steps 5–6): g_{c,r}^(l) = normalised mean gradient of class c over the reference
   half (:func:`class_references`); features s^(l,c) = cos(∇_{W_l} L(x, r′), g_{c,r}^(l)), an L×|C| matrix per
   item (:func:`cosine_features`).
5. **Predictor** (steps 7–8): a small transformer encoder over layers, trained with focal loss
   (:class:`LayerEncoder`, :func:`train_predictor`), and a logistic-regression version (:func:`fit_logistic`).

The baselines of the paper's Table 3 run on the same items: max-softmax confidence and sequence perplexity of the
greedy answer, self-consistency and semantic entropy from sampled answers (:func:`sampling_scores`), and a probe on
the last-layer hidden state (:func:`last_hidden_states`). The same calls work for a Hugging Face chat model
(Llama, Qwen2, GPT-2 or GPT-NeoX family) and any QA set given as :class:`QAItem`.
"""

from __future__ import annotations

import math
import string
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from . import toyworld as tw
from .params import ParameterError, check_choice, check_int
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


def alias_judge(reply: str, item: QAItem) -> str:
    """A judge for real QA sets (TriviaQA-style alias lists): DNA on a refusal phrase, correct when a normalised
    alias occurs in the normalised reply. A stand-in for the paper's LLM judge, whose prompt is not published."""
    said = normalise_answer(reply)
    if any(p in said for p in ABSTENTION_PHRASES):
        return DNA
    return CORRECT if any(normalise_answer(a) and normalise_answer(a) in said for a in item.answers) else INCORRECT


def _device(model) -> torch.device:
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
            ids = torch.tensor([prompts[i] for i in chunk], device=_device(model))
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


def probe_batch(tokenizer, prompts: Sequence[Sequence[int]], probe: str) -> ProbeBatch:
    """Teacher-forced inputs ``prompt + probe`` (paper step 2); padding on the right leaves every item's logits
    exactly as without padding under the causal mask."""
    probe_ids = tokenizer(probe, add_special_tokens=False)["input_ids"]
    rows = [list(p) + probe_ids for p in prompts]
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), tokenizer.pad_token_id, dtype=torch.long)
    attention, targets = torch.zeros_like(ids), torch.zeros_like(ids, dtype=torch.bool)
    for b, row in enumerate(rows):
        ids[b, : len(row)] = torch.tensor(row)
        attention[b, : len(row)] = 1
        targets[b, len(row) - len(probe_ids) : len(row)] = True
    return ProbeBatch(ids, attention, targets)


def probe_loss(logits: torch.Tensor, input_ids: torch.Tensor, probe_mask: torch.Tensor) -> torch.Tensor:
    """L(x, r) = −(1/|r|) Σ_t log p(r_t | x, r_<t) per item (paper step 2): probe tokens only.

    ``logits[b, t]`` predicts token ``t + 1``; returns a vector with one loss per item.
    """
    logprobs = logits[:, :-1].log_softmax(-1).gather(-1, input_ids[:, 1:, None])[..., 0]
    mask = probe_mask[:, 1:].to(logprobs.dtype)
    return -(logprobs * mask).sum(1) / mask.sum(1)


@torch.no_grad()
def probe_losses(model, tokenizer, prompts, probe: str, batch_size: int = 64) -> np.ndarray:
    """The probe loss of every prompt (paper step 2), forward passes only (no gradient)."""
    out = []
    for start in range(0, len(prompts), batch_size):
        batch = probe_batch(tokenizer, prompts[start : start + batch_size], probe)
        device = _device(model)
        logits = model(input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device)).logits
        out.append(probe_loss(logits.float(), batch.input_ids.to(device), batch.probe_mask.to(device)).cpu().numpy())
    return np.concatenate(out)


def _weight_gradient(module: nn.Module, inputs: torch.Tensor, output_grads: torch.Tensor) -> torch.Tensor:
    """Per-item gradient of a down-projection weight from its inputs a and output gradients δ: Σ_t δ_t a_tᵀ,
    in the weight's own layout (``nn.Linear``: out × in; GPT-2's ``Conv1D``: in × out)."""
    if isinstance(module, nn.Linear):
        return torch.einsum("bto,bti->boi", output_grads, inputs)
    return torch.einsum("bti,bto->bio", inputs, output_grads)


def layer_gradients(model, batch: ProbeBatch, layers: Sequence[int] | None = None) -> torch.Tensor:
    """∇_{W_l} L(x_b, r) for each item b and each layer l in ``layers`` (default all): shape (B, |layers|, P).

    One forward–backward pass for the whole batch (paper step 3). The losses of different items do not interact,
    so the gradient of their sum with respect to a layer's *output* holds every item's δ_t; the weight gradient of
    item b is then Σ_t δ_{b,t} a_{b,t}ᵀ with a the layer's input (the per-example trick of Goodfellow, 2015).
    Backpropagation stops at the lowest requested layer, so the last five layers cost less than all of them.
    """
    modules = down_projections(model)
    layers = list(range(len(modules))) if layers is None else list(layers)
    captured: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def keep(index):
        return lambda module, args, output: captured.__setitem__(index, (args[0], output))

    handles = [modules[i].register_forward_hook(keep(i)) for i in layers]
    try:
        with torch.enable_grad():
            device = _device(model)
            input_ids, probe_mask = batch.input_ids.to(device), batch.probe_mask.to(device)
            logits = model(input_ids=input_ids, attention_mask=batch.attention_mask.to(device)).logits
            losses = probe_loss(logits.float(), input_ids, probe_mask)
            deltas = torch.autograd.grad(losses.sum(), [captured[i][1] for i in layers])
    finally:
        for handle in handles:
            handle.remove()
    with torch.no_grad():
        pairs = zip(layers, deltas, strict=True)
        grads = [_weight_gradient(modules[i], captured[i][0].float(), d.float()).flatten(1) for i, d in pairs]
    return torch.stack(grads, 1)


def layer_gradients_vmap(model, batch: ProbeBatch) -> torch.Tensor:
    """The same gradients as :func:`layer_gradients` (all layers), item by item with ``torch.func.vmap(grad(...))``
    over a ``functional_call`` restricted to the down-projection weights (the per-sample recipe of the research
    note). Items of a batch must share one length (no padding): ``vmap`` cannot take data-dependent masks."""
    from torch.func import functional_call, grad, vmap

    if not bool(batch.attention_mask.all()):
        raise ParameterError("layer_gradients_vmap needs a batch of equal-length items (no padding)")
    names = {id(m.weight): None for m in down_projections(model)}
    params = {n: p.detach() for n, p in model.named_parameters() if id(p) in names}

    def item_loss(weights, ids, probe_mask):
        logits = functional_call(model, weights, (ids[None],), {"use_cache": False}).logits
        return probe_loss(logits, ids[None], probe_mask[None]).sum()

    with warnings.catch_warnings():  # "no batching rule for the fused attention kernel": the slowdown we measure
        warnings.filterwarnings("ignore", message="There is a performance drop")
        inputs = (batch.input_ids.to(_device(model)), batch.probe_mask.to(_device(model)))
        grads = vmap(grad(item_loss), in_dims=(None, 0, 0))(params, *inputs)
    return torch.stack([g.flatten(1) for g in grads.values()], 1)


# --------------------------------------------------------------------------------------------------------------
# 4. Class references and cosine features
# --------------------------------------------------------------------------------------------------------------


def iterate_gradients(model, tokenizer, prompts, probe: str, batch_size: int = 64, layers=None):
    """Yield ``(indices, gradients)`` batch by batch, so features never need every gradient in memory."""
    for start in range(0, len(prompts), batch_size):
        index = np.arange(start, min(start + batch_size, len(prompts)))
        batch = probe_batch(tokenizer, [prompts[i] for i in index], probe)
        yield index, layer_gradients(model, batch, layers)


def class_references(
    model, tokenizer, prompts, labels: np.ndarray, classes: Sequence[str], probe: str, batch_size: int = 64
) -> torch.Tensor:
    """g_{c,r}^(l) = mean_{i ∈ c} ∇_{W_l} L(x_i, r) / ‖·‖₂ over the reference items (paper step 5): (|C|, L, P).

    ``prompts`` and ``labels`` are the reference half; :data:`ANSWERED` collects correct and incorrect items.
    """
    members = [np.isin(labels, (CORRECT, INCORRECT)) if c == ANSWERED else labels == c for c in classes]
    if not all(m.any() for m in members):
        raise ParameterError(f"every class needs a reference item; counts: {[int(m.sum()) for m in members]}")
    sums = None
    for index, grads in iterate_gradients(model, tokenizer, prompts, probe, batch_size):
        weights = torch.tensor(np.stack([m[index] for m in members]), dtype=grads.dtype, device=grads.device)
        part = torch.einsum("cb,blp->clp", weights, grads)
        sums = part if sums is None else sums + part
    means = sums / torch.tensor([m.sum() for m in members], dtype=sums.dtype, device=sums.device)[:, None, None]
    return means / means.norm(dim=-1, keepdim=True)


def cosine_features(grads: torch.Tensor, references: torch.Tensor) -> torch.Tensor:
    """s^(l,c) = cos(∇_{W_l} L(x, r′), g_{c,r}^(l)) (paper step 6): gradients (B, L, P) and references (C, L, P)
    give features (B, L, C)."""
    unit = grads / grads.norm(dim=-1, keepdim=True).clamp(min=1e-30)
    return torch.einsum("blp,clp->blc", unit, references / references.norm(dim=-1, keepdim=True))


def gradient_features(model, tokenizer, prompts, references: dict[str, torch.Tensor], probe: str, batch_size=64):
    """Features of every prompt against several reference sets at once (one gradient pass):
    ``{name: array (N, L, C)}``."""
    out = {name: np.zeros((len(prompts), r.shape[1], r.shape[0]), dtype=np.float32) for name, r in references.items()}
    for index, grads in iterate_gradients(model, tokenizer, prompts, probe, batch_size):
        for name, ref in references.items():
            out[name][index] = cosine_features(grads, ref).cpu().numpy()
    return out


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
    """FL = −(1 − p_y)^γ log p_y averaged over the batch (Lin et al., 2017), γ = 2 as in the paper (step 8)."""
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
    """Train :class:`LayerEncoder` with focal loss, AdamW, gradient clipping at 1, ReduceLROnPlateau (factor 0.5,
    patience 5) and early stopping on a validation fifth of the training half; returns the best model (eval mode).

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
        ids = torch.tensor([prompts[i] for i in idx], device=_device(model))
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            do_sample=True,
            temperature=temperature,
            top_k=0,
            top_p=1.0,
            max_new_tokens=max_new_tokens,
            num_return_sequences=n_samples,
            pad_token_id=tokenizer.pad_token_id,
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


def semantic_entropy(samples: Sequence[str]) -> float:
    """Entropy (nats) of the meaning clusters of the samples (Kuhn et al., 2023), with equivalence = the same
    normalised answer, exact for the single-entity answers of the toy world."""
    counts = np.array(list(Counter(normalise_answer(s) for s in samples).values()), dtype=float)
    p = counts / counts.sum()
    return float(-(p * np.log(p)).sum())


def sampling_scores(greedy_replies: Sequence[str], samples: Sequence[Sequence[str]], n_consistency: int = 5):
    """Correctness scores (higher = more likely correct) of the sampling baselines: self-consistency over the first
    ``n_consistency`` samples and minus the semantic entropy of all samples."""
    pairs = zip(greedy_replies, samples, strict=True)
    consistency = np.array([self_consistency(g, s[:n_consistency]) for g, s in pairs])
    entropy = np.array([semantic_entropy(s) for s in samples])
    return consistency, -entropy


@torch.no_grad()
def last_hidden_states(model, prompts, batch_size: int = 256) -> np.ndarray:
    """Last-layer hidden state at the prompt's last token (the state that predicts the answer), for the probe."""
    out = np.zeros((len(prompts), model.config.hidden_size), dtype=np.float32)
    for _, idx in _length_groups(prompts).items():
        for start in range(0, len(idx), batch_size):
            chunk = idx[start : start + batch_size]
            ids = torch.tensor([prompts[i] for i in chunk], device=_device(model))
            hidden = model(input_ids=ids, output_hidden_states=True)
            out[chunk] = hidden.hidden_states[-1][:, -1].float().cpu().numpy()
    return out


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


# --------------------------------------------------------------------------------------------------------------
# The whole pipeline on one model
# --------------------------------------------------------------------------------------------------------------


@dataclass
class Answers:
    """The greedy answers to ``items`` and their judge labels (paper step 4)."""

    items: list[QAItem]
    prompts: list[list[int]]
    greedy: Greedy
    labels: np.ndarray

    @property
    def groups(self) -> list[str]:
        return [it.group for it in self.items]


def answer_and_label(
    model,
    tokenizer,
    items: Sequence[QAItem],
    *,
    judge: Callable = toy_judge,
    instruction: str = tw.INSTRUCTION,
    max_new_tokens: int = 8,
) -> Answers:
    """Build the instructed chat prompts, decode greedily and label every reply with ``judge``."""
    prompts = [prompt_ids(tokenizer, it.question, instruction) for it in items]
    greedy = greedy_answers(model, tokenizer, prompts, max_new_tokens=max_new_tokens)
    return Answers(list(items), prompts, greedy, label_replies(items, greedy.replies, judge))


@dataclass
class Detection:
    """The split of each task, the class references ``references[(task, reference_probe)]`` (|C|, L, P) and the
    cosine features ``features[(task, item_probe, reference_probe)]`` of every item, (N, L, |C|), for one model
    and one split seed."""

    answers: Answers
    splits: dict[str, Split]
    references: dict[tuple[str, str], torch.Tensor]
    features: dict[tuple[str, str, str], np.ndarray]

    def task_data(self, task: str, part: str, probes: tuple[str, str] = ("positive", "positive")):
        """``(features, class indices)`` of one split part (``"reference"``, ``"training"`` or ``"test"``)."""
        rows = getattr(self.splits[task], part)
        classes = TASKS[task]
        y = np.array([classes.index(v) for v in task_labels(self.answers.labels, task)[rows]])
        return self.features[(task, *probes)][rows], y


def detection_features(
    model,
    tokenizer,
    answers: Answers,
    *,
    seed: int,
    tasks: Sequence[str] = tuple(TASKS),
    item_probes: Sequence[str] = ("positive", "negative"),
    reference_probes: Sequence[str] = ("positive", "negative"),
    batch_size: int = 64,
) -> Detection:
    """Balanced splits → class references on the reference half → cosine features of every item (steps 4–6), for
    every task and every pair (item probe r′, reference probe r)."""
    labels, prompts = answers.labels, answers.prompts
    splits = {t: split_items(answers.groups, task_labels(labels, t), seed=seed, key=t) for t in tasks}
    references = {}
    for task in tasks:
        rows = splits[task].reference
        for probe in reference_probes:
            references[(task, probe)] = class_references(
                model, tokenizer, [prompts[i] for i in rows], labels[rows], TASKS[task], PROBES[probe], batch_size
            )
    features = {}
    for item_probe in item_probes:
        found = gradient_features(model, tokenizer, prompts, references, PROBES[item_probe], batch_size)
        features.update({(task, item_probe, ref_probe): f for (task, ref_probe), f in found.items()})
    return Detection(answers, splits, references, features)


def auroc(positive: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve by the Mann–Whitney rank formula (ties count one half)."""
    from scipy.stats import rankdata

    positive = np.asarray(positive, dtype=bool)
    n1, n0 = positive.sum(), (~positive).sum()
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def cluster_bootstrap_auroc(
    positive: np.ndarray, scores: dict[str, np.ndarray], groups: Sequence[str], *, seed: int, n_boot: int = 1000
) -> dict[str, np.ndarray]:
    """AUROC of each score on bootstrap resamples of whole entities (the items of one entity are not independent):
    ``{name: array (n_boot,)}``; the resamples are shared by all scores, so differences are paired."""
    rng = make_rng(seed, "grad_detect", "bootstrap")
    groups = np.asarray(groups)
    names = np.array(sorted(set(groups)))
    members = [np.flatnonzero(groups == g) for g in names]
    out = {k: np.zeros(n_boot) for k in scores}
    b = 0
    while b < n_boot:
        rows = np.concatenate([members[j] for j in rng.integers(len(names), size=len(names))])
        if positive[rows].all() or not positive[rows].any():
            continue
        for k, s in scores.items():
            out[k][b] = auroc(positive[rows], s[rows])
        b += 1
    return out


def layer_ablation(
    detections: Sequence[Detection], n_layers: int, *, task: str = "correctness", probes=("positive", "positive")
) -> list[dict]:
    """Test accuracy of the logistic-regression predictor on the last k and on the first k layers, for every k
    (the paper's Table 7), one row per split seed, side and k."""
    rows = []
    for seed, detection in enumerate(detections):
        x_train, y_train = detection.task_data(task, "training", probes)
        x_test, y_test = detection.task_data(task, "test", probes)
        for k in range(1, n_layers + 1):
            for side in ("last", "first"):
                layers = list(range(n_layers - k, n_layers)) if side == "last" else list(range(k))
                fitted = fit_logistic(x_train[:, layers], y_train)
                accuracy = float((fitted.predict(x_test[:, layers].reshape(len(x_test), -1)) == y_test).mean())
                rows.append({"split": seed, "side": side, "k": k, "accuracy": accuracy})
    return rows


def measure_costs(
    model,
    tokenizer,
    prompts,
    references: torch.Tensor,
    *,
    probe: str = tw.PROBE_POSITIVE,
    last_k: int = 5,
    max_new_tokens: int = 8,
    seed: int = 0,
) -> list[dict]:
    """Wall and CPU seconds per item (one item at a time, median over ``prompts``) of one forward pass over the
    prompt, of Grad Detect on all layers and on the last ``last_k`` (probe forward–backward plus cosine features),
    of the greedy answer, and of 5 and 10 sampled answers."""
    import time

    n_layers = references.shape[1]
    top = list(range(n_layers - last_k, n_layers))

    def grad_detect(prompt, layers):
        grads = layer_gradients(model, probe_batch(tokenizer, [prompt], probe), layers)
        return cosine_features(grads, references[:, layers if layers is not None else slice(None)])

    methods = {
        "forward pass": lambda p: model(input_ids=torch.tensor([p], device=_device(model))),
        "Grad Detect, all layers": lambda p: grad_detect(p, None),
        f"Grad Detect, last {last_k} layers": lambda p: grad_detect(p, top),
        "greedy answer": lambda p: greedy_answers(model, tokenizer, [p], max_new_tokens=max_new_tokens),
        "self-consistency (5 samples)": lambda p: sample_answers(model, tokenizer, [p], 5, seed=seed),
        "semantic entropy (10 samples)": lambda p: sample_answers(model, tokenizer, [p], 10, seed=seed),
    }
    on_gpu = _device(model).type == "cuda"
    rows = []
    for name, method in methods.items():
        walls, cpus = [], []
        for prompt in prompts:
            wall, cpu = time.perf_counter(), time.process_time()
            with torch.no_grad() if name == "forward pass" else torch.enable_grad():
                method(prompt)
            if on_gpu:
                torch.cuda.synchronize()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        rows.append({"method": name, "wall_ms": 1e3 * np.median(walls), "cpu_ms": 1e3 * np.median(cpus)})
    return rows
