"""Build a zoo model from its :class:`~llmtheory.zoo.specs.ZooSpec`, train it on the toy world, measure it, save it.

Deterministic: weights are initialised under ``torch.manual_seed(spec.seed)`` inside ``torch.random.fork_rng``
(the caller's global state is untouched), data come from numpy Generators keyed by the spec's seed, there is no
dropout, and training runs on one thread. Evaluation during training uses its own streams, so how often it runs
does not change the weights.
"""

from __future__ import annotations

import csv
import json
import math
import platform
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from .. import toyworld as tw
from ..params import ParameterError, check_choice
from ..seeding import make_rng
from .evaluate import fact_report, needle_dialogue_report, needle_report
from .specs import FAMILIES, TASKS, ZooSpec


def build_config(spec: ZooSpec, tokenizer):
    """The ``transformers`` config of ``spec`` (a real architecture class: Llama, GPT-2, GPT-NeoX or Qwen2)."""
    check_choice("family", spec.family, FAMILIES)
    ids = dict(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    if spec.family in ("llama", "qwen2"):
        from transformers import LlamaConfig, Qwen2Config

        config_class = LlamaConfig if spec.family == "llama" else Qwen2Config
        if spec.head_dim is not None:
            ids["head_dim"] = spec.head_dim
        return config_class(
            hidden_size=spec.hidden,
            intermediate_size=spec.intermediate,
            num_hidden_layers=spec.layers,
            num_attention_heads=spec.heads,
            num_key_value_heads=spec.kv_heads,
            max_position_embeddings=spec.max_positions,
            rope_theta=spec.rope_theta,
            tie_word_embeddings=True,
            attention_dropout=0.0,
            **ids,
        )
    if spec.family == "gpt2":
        from transformers import GPT2Config

        return GPT2Config(
            n_embd=spec.hidden,
            n_inner=spec.intermediate,
            n_layer=spec.layers,
            n_head=spec.heads,
            n_positions=spec.max_positions,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            **ids,
        )
    from transformers import GPTNeoXConfig

    return GPTNeoXConfig(
        hidden_size=spec.hidden,
        intermediate_size=spec.intermediate,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        max_position_embeddings=spec.max_positions,
        rope_theta=spec.rope_theta,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        **ids,
    )


def build_model(spec: ZooSpec, tokenizer):
    """A freshly initialised ``AutoModelForCausalLM`` for ``spec`` (seeded, without touching global RNG state)."""
    from transformers import AutoModelForCausalLM

    return initialise(AutoModelForCausalLM, build_config(spec, tokenizer), spec.seed, tokenizer)


def starting_model(spec: ZooSpec, tokenizer):
    """The model training starts from: :func:`build_model`'s, or with ``spec.init_from`` the weights of that zoo
    model, widened to ``spec.heads`` query heads by :func:`llmtheory.zoo.widen.widen_heads` (deterministic).

    The spec must describe the source otherwise (family, sizes, RoPE, vocabulary): the weights are loaded into
    :func:`build_model`'s architecture, strictly, and the result must compute what the widened source computes.
    """
    model = build_model(spec, tokenizer)
    if spec.init_from is None:
        return model
    from . import load
    from .widen import widen_heads

    source, _ = load(spec.init_from)
    if spec.heads != source.config.num_attention_heads:
        source = widen_heads(source, spec.heads, noise=spec.init_noise, seed=spec.seed)
    try:
        model.load_state_dict(source.state_dict())
    except RuntimeError as error:
        raise ParameterError(f"init_from={spec.init_from!r} does not fit spec {spec.name!r}: {error}") from None
    probe = torch.arange(min(64, len(tokenizer)))[None]
    with torch.no_grad():
        same = torch.allclose(model(input_ids=probe).logits, source(input_ids=probe).logits, atol=1e-5)
    if not same:
        raise ParameterError(
            f"init_from={spec.init_from!r}: spec {spec.name!r} computes something else from the "
            "same weights (check rope_theta and the family)"
        )
    return model


def initialise(auto_class, config, seed: int, tokenizer):
    """``auto_class.from_config(config)`` under ``torch.manual_seed(seed)`` inside ``fork_rng`` (the caller's RNG
    state is untouched), with the tokenizer's special-token ids in its generation config."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = auto_class.from_config(config)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    return model


def _batch(
    tokenizer, texts: list[str], targets: list[list[bool]] | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Right-padded ids, attention mask and labels (padding ignored), so positions start at 0 in every row.

    With ``targets`` (one flag per word of each text; the word-level tokenizer gives one token per word after
    ``<bos>``), only the flagged tokens carry a label: the loss is on them alone.
    """
    ids = tokenizer(texts)["input_ids"]
    width = max(len(x) for x in ids)
    batch = torch.full((len(ids), width), tokenizer.pad_token_id, dtype=torch.long)
    for i, x in enumerate(ids):
        batch[i, : len(x)] = torch.tensor(x)
    mask = (batch != tokenizer.pad_token_id).long()
    labels = batch.masked_fill(mask == 0, -100)
    if targets is not None:
        keep = torch.zeros_like(mask, dtype=torch.bool)
        for i, flags in enumerate(targets):
            if len(flags) + 1 != len(ids[i]):
                raise ValueError(f"text {i}: {len(flags)} target flags for {len(ids[i]) - 1} word tokens")
            keep[i, 1 : len(ids[i])] = torch.tensor(flags, dtype=torch.bool)
        labels = labels.masked_fill(~keep, -100)
    return batch, mask, labels


def encode_example(tokenizer, prompt: str, target: str) -> tuple[list[int], int]:
    """The ids of ``prompt`` (encoded alone, as at inference) followed by ``" " + target`` and ``<eos>``, and how
    many of them are the prompt's (a conditional model's training example: summary, story)."""
    prompt_ids = tokenizer(prompt)["input_ids"]
    target_ids = tokenizer(" " + target)["input_ids"] + [tokenizer.eos_token_id]
    return prompt_ids + target_ids, len(prompt_ids)


def conditional_batch(tokenizer, examples: Sequence[tuple[str, str]]) -> dict:
    """Left-padded ids of (prompt, target) pairs (every target ends in the last column), attention mask, positions
    counted from each row's first token, and the labels of the last ``logits_to_keep`` columns: the loss is on the
    target and ``<eos>`` only, and only those columns go through the output layer."""
    encoded = [encode_example(tokenizer, p, t) for p, t in examples]
    width = max(len(ids) for ids, _ in encoded)
    keep = max(len(ids) - n_prompt for ids, n_prompt in encoded) + 1  # the target's columns and the one before
    ids = torch.full((len(encoded), width), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full_like(ids, -100)
    for i, (row, n_prompt) in enumerate(encoded):
        ids[i, width - len(row) :] = torch.tensor(row)
        labels[i, width - len(row) + n_prompt :] = torch.tensor(row[n_prompt:])
    mask = (torch.arange(width)[None, :] >= (width - torch.tensor([len(r) for r, _ in encoded]))[:, None]).long()
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    return {"input_ids": ids, "attention_mask": mask, "position_ids": positions, "labels": labels[:, -keep:],
            "logits_to_keep": keep}  # fmt: skip


def training_texts(spec: ZooSpec, world: tw.World, rng: np.random.Generator, step: int) -> list[str]:
    """The texts of training step ``step`` (the curriculum decides context length and batch size for needles)."""
    check_choice("task", spec.task, TASKS)
    if spec.task == "facts":
        if step < spec.induction_steps:  # induction heads first, as the needle model's card found, then the facts
            return [tw.repeated_sequence_text(world, rng, 64) for _ in range(spec.batch_size)]
        kinds, weights = zip(*spec.mix, strict=True)
        p = np.asarray(weights) / np.sum(weights)
        return [tw.training_text(world, rng, kinds[int(k)]) for k in rng.choice(len(kinds), spec.batch_size, p=p)]
    boundary, stage = 0.0, spec.curriculum[-1]
    for candidate in spec.curriculum:
        boundary += candidate[0]
        if step < boundary * spec.steps:
            stage = candidate
            break
    _, n_words, batch_size, *shares = stage
    n_copy = int(round((shares[0] if shares else spec.copy_fraction) * batch_size))
    n_repeat = int(round((shares[1] if len(shares) > 1 else 0.0) * batch_size))
    return (
        [tw.repeated_sequence_text(world, rng, n_words) for _ in range(n_repeat)]
        + [tw.needle_copy_text(world, rng, n_words) for _ in range(n_copy)]
        + [tw.haystack_training_text(world, rng, n_words) for _ in range(batch_size - n_copy - n_repeat)]
    )


def learning_rate(spec: ZooSpec, step: int) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak; a staged README summarizer (one with stages in its
    ``curriculum``, :func:`llmtheory.metagente_lm.staged`) keeps its peak after the warm-up."""
    if step < spec.warmup:
        return spec.learning_rate * (step + 1) / spec.warmup
    if spec.task == "readme_summaries" and spec.curriculum:
        return spec.learning_rate
    progress = (step - spec.warmup) / max(spec.steps - spec.warmup, 1)
    return spec.learning_rate * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


def measure(spec: ZooSpec, model, tokenizer, world: tw.World, quick: bool) -> dict:
    """The task metrics of ``spec`` (``quick``: a small sample, for the training log)."""
    if spec.task == "facts":
        return fact_report(model, tokenizer, world, per_bucket=48 if quick else None)
    n_words = max(stage[1] for stage in spec.curriculum)
    if quick:  # the log follows retrieval at a quarter of the final length (cheap), the card measures the full one
        return needle_report(model, tokenizer, world, n_words=max(n_words // 4, 64), per_depth=4)
    report = needle_report(model, tokenizer, world, n_words=n_words, per_depth=20)
    for shorter in (256, 512, 1024, 2048):  # the card also shows how retrieval holds up at shorter contexts
        if shorter < n_words:
            short = needle_report(model, tokenizer, world, n_words=shorter, per_depth=20)
            report[f"mean_{shorter}_words"] = short["mean"]
    dialogue = needle_dialogue_report(model, tokenizer, world, n_words=n_words, n_contexts=20, questions=3)
    return report | {f"dialogue_{k}": v for k, v in dialogue.items()}


def headline(spec: ZooSpec, metrics: dict) -> dict:
    """The few numbers shown on the progress bar."""
    if spec.task == "facts":
        keys = ("exact_frequent", "exact_rare", "abstain_unknown")
        return {k.replace("exact_", "").replace("abstain_", "abst_"): round(metrics[k], 2) for k in keys}
    return {"retrieval": round(metrics["mean"], 2)}


@dataclass
class TrainResult:
    spec: object
    """The :class:`~llmtheory.zoo.specs.ZooSpec` (or :class:`~llmtheory.zoo.vlm.VLMSpec`) that was trained."""
    metrics: dict
    log: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0
    cpu_seconds: float = 0.0
    total_seconds: float = 0.0
    parameters: int = 0


@contextmanager
def torch_threads(threads: int):
    """Run the block with ``threads`` torch threads (1 reproduces the checkpoints), then restore the count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass
class Optimisation:
    """What :func:`optimise` leaves: the log rows, the seconds spent in training steps, and the CPU clock at start."""

    log: list[dict]
    train_seconds: float
    cpu_start: float

    def result(self, spec, model, metrics: dict, started: float) -> TrainResult:
        """The :class:`TrainResult` of this run: its final ``metrics``, times since ``started`` (perf_counter)."""
        return TrainResult(
            spec=spec,
            metrics=metrics,
            log=self.log,
            train_seconds=self.train_seconds,
            cpu_seconds=time.process_time() - self.cpu_start,
            total_seconds=time.perf_counter() - started,
            parameters=sum(p.numel() for p in model.parameters()),
        )


def optimise(
    spec,
    model,
    batch_at: Callable[[int], dict],
    quick_metrics: Callable[[], dict],
    shown: Callable[[dict], dict],
    *,
    progress: bool,
) -> Optimisation:
    """The training loop of every zoo model: ``spec.steps`` steps of AdamW (betas 0.9/0.98, ``spec.weight_decay``)
    at :func:`learning_rate`, gradients clipped to norm 1.

    ``batch_at(step)`` gives the model's keyword arguments (labels included) for that step; every
    ``spec.eval_every`` steps and at the end, ``quick_metrics()`` adds a row to the log and ``shown(metrics)``
    picks the numbers for the progress bar.
    """
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=spec.learning_rate, weight_decay=spec.weight_decay, betas=(0.9, 0.98)
    )
    log: list[dict] = []
    losses: list[float] = []
    train_seconds = 0.0
    cpu_start = time.process_time()
    bar = tqdm(range(spec.steps), desc=spec.name, disable=not progress, mininterval=2.0)
    for step in bar:
        tick = time.perf_counter()
        model.train()
        batch = batch_at(step)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(spec, step)
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
        train_seconds += time.perf_counter() - tick
        if (step + 1) % spec.eval_every == 0 or step + 1 == spec.steps:
            metrics = quick_metrics()
            row = {
                "step": step + 1,
                "loss": float(np.mean(losses[-spec.eval_every :])),
                "seconds": round(train_seconds, 1),
                "cpu_seconds": round(time.process_time() - cpu_start, 1),
            }
            row |= {k: round(v, 4) for k, v in metrics.items()}
            log.append(row)
            bar.set_postfix(loss=f"{row['loss']:.3f}", **shown(metrics))
            tqdm.write(f"[{spec.name}] step {step + 1}: loss {row['loss']:.3f} " + json.dumps(shown(metrics)))
    return Optimisation(log=log, train_seconds=train_seconds, cpu_start=cpu_start)


def train(spec: ZooSpec, out_dir: Path | None = None, *, progress: bool = True, threads: int = 1) -> TrainResult:
    """Train ``spec`` from scratch (or from ``spec.init_from``); if ``out_dir`` is given, save the model,
    tokenizer, log and card there."""
    start_total = time.perf_counter()
    with torch_threads(threads):
        world = tw.make_world(spec.world_seed)
        tokenizer = tw.build_tokenizer(world, model_max_length=spec.max_positions)
        model = starting_model(spec, tokenizer)
        rng = make_rng(spec.seed, "zoo", "train", spec.task)

        def batch_at(step: int) -> dict:
            texts = training_texts(spec, world, rng, step)
            copying = spec.retrieval_loss or step < spec.induction_steps
            targets = [tw.needle_training_targets(world, t) for t in texts] if copying else None
            batch, mask, labels = _batch(tokenizer, texts, targets)
            return {"input_ids": batch, "attention_mask": mask, "labels": labels}

        run = optimise(
            spec,
            model,
            batch_at,
            lambda: measure(spec, model, tokenizer, world, quick=True),
            lambda metrics: headline(spec, metrics),
            progress=progress,
        )
        model.eval()
        final = measure(spec, model, tokenizer, world, quick=False)
        result = run.result(spec, model, final, start_total)
        if out_dir is not None:
            save(result, model, tokenizer, Path(out_dir))
        return result


def save(
    result: TrainResult, model, tokenizer, out_dir: Path, card_markdown: Callable[[dict], str] | None = None
) -> None:
    """Write ``model.safetensors``, config, tokenizer, ``training_log.csv``, ``card.json`` and ``README.md`` (rendered
    by ``card_markdown``; the zoo's own card by default)."""
    if card_markdown is None:
        from .cards import card_markdown

    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    write_log_and_card(result, out_dir, card_markdown)


def write_log_and_card(result: TrainResult, out_dir: Path, card_markdown: Callable[[dict], str]) -> None:
    """Write ``training_log.csv``, ``card.json`` (spec, size, times, metrics, versions) and ``README.md`` (the
    card rendered by ``card_markdown``) next to a saved checkpoint."""
    import transformers

    with (out_dir / "training_log.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(result.log[-1]))
        writer.writeheader()
        writer.writerows(result.log)
    card = {
        "name": result.spec.name,
        "spec": result.spec.as_dict(),
        "parameters": result.parameters,
        "checkpoint_bytes": (out_dir / "model.safetensors").stat().st_size,
        "train_seconds": round(result.train_seconds, 1),
        "cpu_seconds": round(result.cpu_seconds, 1),
        "total_seconds": round(result.total_seconds, 1),
        "final_loss": result.log[-1]["loss"],
        "metrics": {k: round(v, 4) for k, v in result.metrics.items()},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__},
        "machine": f"{platform.machine()}, {torch.get_num_threads()} thread(s)",
    }
    (out_dir / "card.json").write_text(json.dumps(card, indent=2) + "\n")
    (out_dir / "README.md").write_text(card_markdown(card))
