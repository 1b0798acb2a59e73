"""Plasticity loss in GPT-style transformers: a multilingual stream, the probe, the onset and its scaling law.

Hernandez-Garcia, Figliolia and Millidge 2026 (arXiv 2606.24752), *Can Scale Save Us From Plasticity Loss in Large
Language Models?* Only the abstract and introduction are known (``../shared/research/plasticity.md``). What they
say: GPT-style decoders from 5M to 314M non-embedding parameters N, trained on a multilingual continual-learning
problem ("fixed-language cycles", from a secondary summary), lose plasticity, measured as deterioration on a
held-out Vietnamese probing task; the **onset** of plasticity loss follows a scaling law that grows sublinearly in N;
plasticity loss appears under stationary multilingual training too.

Everything below the abstract is **reconstructed** (our choices, stated before any run):

* **The stream** (:class:`Stream`): one base Markov source over ``vocab`` symbols (every symbol has ``branching``
  successors with Dirichlet weights); a *language* is a fixed relabelling of the symbols onto the token ids (a
  permutation that leaves a ``shared_fraction`` of the symbols in place: shared structure, shared "cognates", a
  private lexicon). Setting ``"cycles"``: languages 1…L in fixed order, each for ``cycle_steps`` steps, then again
  (plasticity-eq-cycles); setting ``"stationary"``: every sequence draws its language uniformly (the same mixture at
  every step). The probe language is one more relabelling that training never shows (the paper's Vietnamese).
* **The models**: ``transformers`` GPT-2 configurations (:data:`SIZES`), N counted without the token and position
  embeddings (:func:`non_embedding_parameters`, plasticity-eq-non-embedding).
* **The probe** (:func:`probe`, plasticity-eq-probe): from a checkpoint θ_T, fine-tune a copy on the probe language
  for B steps with a fresh Adam, on the same batches for every checkpoint; record the probe loss after the budget
  (``final``, on a fixed held-out probe batch) and the mean online loss over the budget (``mean``, the area under the
  learning curve). The control is the same probe from a fresh initialisation (:func:`fresh_probe`).
* **Plasticity** (:func:`plasticity_gap`, plasticity-eq-gap): the probe gap G(T) = L_probe(θ_T) − L_probe(θ_fresh).
  G < 0: the checkpoint learns the new language faster than a fresh model (transfer); G rising with T: plasticity
  is being lost; G > 0: the checkpoint is worse than starting from scratch.
* **The onset** (:func:`locate_onset`, plasticity-eq-onset): the first checkpoint at which the smoothed gap (centred
  moving average of ``ONSET_WINDOW`` checkpoints) exceeds its running minimum over the earlier checkpoints by
  ``ONSET_MARGIN`` nats per token; *not located* when it never does. Per size, an onset over seeds
  (:func:`onset_over_seeds`); across sizes the law T* = c·N^b (plasticity-eq-onset-law), fitted on the log scale with
  a bootstrap interval for b over sizes and seeds (:func:`fit_onset_law`); "sublinear" is the rule "the interval's
  upper end < 1"; the law is *not located* (never forced) when fewer than three sizes have an onset.
* **Indicators** (:func:`indicators`): dead MLP units, weight norm, effective rank of the last hidden features
  (Roy & Vetterli 2007, plasticity-eq-effective-rank), gradient norm on the probe language.
* **Interventions** (:class:`ShrinkPerturb`, Ash & Adams 2020, plasticity-eq-shrink-perturb; :class:`L2Init`,
  Kumar et al. 2023, plasticity-eq-l2-init), applied inside :func:`train_stream`.
* **The real path**: :func:`hub_checkpoint_series` loads a hub model's intermediate checkpoints with ``revision=``
  (Pythia: ``step1000`` … ``step143000``), and the same :func:`probe` runs on them with the probe language mapped
  onto real token ids (:meth:`Stream.on_token_ids`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .claims import Estimate
from .params import ParameterError, check_choice, check_float, check_int
from .seeding import make_rng

SETTINGS = ("cycles", "stationary")
"""``cycles``: fixed-language blocks of ``cycle_steps`` steps in a fixed order; ``stationary``: the i.i.d. mixture."""

BOS = 0
"""Token id 0 opens every sequence; the symbols of the languages are ids 1…vocab."""

# --------------------------------------------------------------------------------------------------------------
# The stream: one base source, languages as relabellings, cycles or the stationary mixture
# --------------------------------------------------------------------------------------------------------------


class Stream:
    """The multilingual stream and its held-out probe language (plasticity-eq-cycles).

    ``transition[s]`` is the base source's next-symbol distribution after symbol s (``branching`` successors, weights
    Dirichlet(``concentration``)); ``lexicons[l][s]`` the token id (1…vocab) that language l writes for symbol s.
    Languages 0…n_languages−1 are trained on; language ``n_languages`` is the probe language. Every batch is a
    function of (seed, what, step) alone, so a run can be resumed, repeated or probed at any checkpoint.
    """

    def __init__(
        self,
        *,
        vocab: int = 64,
        branching: int = 4,
        n_languages: int = 6,
        shared_fraction: float = 0.25,
        seq_len: int = 32,
        batch_size: int = 32,
        cycle_steps: int = 100,
        concentration: float = 1.0,
        seed: int = 0,
    ):
        self.vocab = check_int("vocab", vocab, minimum=4)
        self.branching = check_int("branching", branching, minimum=1, maximum=vocab)
        self.n_languages = check_int("n_languages", n_languages, minimum=1)
        self.shared_fraction = check_float("shared_fraction", shared_fraction, minimum=0.0, maximum=1.0)
        self.seq_len = check_int("seq_len", seq_len, minimum=2)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.cycle_steps = check_int("cycle_steps", cycle_steps, minimum=1)
        self.concentration = check_float("concentration", concentration, minimum=1e-3)
        self.seed = check_int("seed", seed, minimum=0)
        rng = make_rng(seed, "plasticity-source")
        self.transition = np.zeros((vocab, vocab))
        for s in range(vocab):
            successors = rng.choice(vocab, size=branching, replace=False)
            self.transition[s, successors] = rng.dirichlet(np.full(branching, concentration))
        self._cumulative = np.cumsum(self.transition, axis=1)
        n_shared = int(round(shared_fraction * vocab))
        shared = np.sort(rng.choice(vocab, size=n_shared, replace=False))
        private = np.setdiff1d(np.arange(vocab), shared)
        self.lexicons = np.zeros((n_languages + 1, vocab), dtype=np.int64)
        for lang in range(n_languages + 1):
            lexicon = np.arange(vocab)
            lexicon[private] = rng.permutation(private)  # the language's private words; cognates stay in place
            self.lexicons[lang] = lexicon + 1
        self.token_ids = np.arange(vocab + 1, dtype=np.int64)
        """Model token id of each stream id (identity for the book's models; real ids on a hub model)."""
        self.data_seed = 0
        """Which draw of training batches (:meth:`with_data_seed`): replicates share the languages, not the batches."""

    @property
    def probe_language(self) -> int:
        return self.n_languages

    @property
    def n_tokens(self) -> int:
        """Vocabulary size a model needs: the symbols and BOS."""
        return self.vocab + 1

    def language_at(self, step: int, setting: str = "cycles") -> int | None:
        """The language of training step ``step`` in the cycles setting, ⌊step / S⌋ mod L (plasticity-eq-cycles);
        ``None`` in the stationary setting (each sequence draws its own)."""
        check_choice("setting", setting, SETTINGS)
        return (step // self.cycle_steps) % self.n_languages if setting == "cycles" else None

    def sample(self, languages: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
        """Sequences ``(len(languages), seq_len)``: BOS, then the base chain written in each row's language."""
        languages = np.asarray(languages, dtype=np.int64)
        rows = len(languages)
        symbols = np.empty((rows, self.seq_len - 1), dtype=np.int64)
        state = rng.integers(0, self.vocab, rows)
        for t in range(self.seq_len - 1):
            symbols[:, t] = state
            u = rng.random(rows)[:, None]
            state = np.minimum((self._cumulative[state] < u).sum(axis=1), self.vocab - 1)
        ids = np.take_along_axis(self.lexicons[languages], symbols, axis=1)
        ids = np.concatenate([np.full((rows, 1), BOS), ids], axis=1)
        return torch.from_numpy(self.token_ids[ids])

    def batch(self, step: int, setting: str = "cycles") -> torch.Tensor:
        """The training batch of step ``step``: one language (cycles) or the uniform mixture (stationary)."""
        rng = make_rng(self.seed, "train", self.data_seed, setting, int(step))
        language = self.language_at(step, setting)
        if language is None:
            languages = rng.integers(0, self.n_languages, self.batch_size)
        else:
            languages = np.full(self.batch_size, language)
        return self.sample(languages, rng)

    def probe_batch(self, step: int, replicate: int = 0) -> torch.Tensor:
        """Fine-tuning batch ``step`` of the probe language; the same for every checkpoint of a replicate."""
        rng = make_rng(self.seed, "probe", int(replicate), int(step))
        return self.sample(np.full(self.batch_size, self.probe_language), rng)

    def probe_eval_batch(self, rows: int = 256) -> torch.Tensor:
        """A fixed held-out batch of the probe language on which the probe's final loss is read."""
        rng = make_rng(self.seed, "probe-eval")
        return self.sample(np.full(rows, self.probe_language), rng)

    def language_batch(self, language: int, rows: int = 256, key: str = "eval") -> torch.Tensor:
        """A fixed batch of one training language (for forgetting curves and the indicators)."""
        rng = make_rng(self.seed, key, int(language))
        return self.sample(np.full(rows, language), rng)

    def entropy_rate(self) -> float:
        """H = Σ_s μ(s) H(P[s, ·]) in nats per token, μ the stationary law of the base chain: the lowest loss any
        model can reach on any language after the first token (all languages are relabellings of one source)."""
        values, vectors = np.linalg.eig(self.transition.T)
        mu = np.real(vectors[:, np.argmin(np.abs(values - 1))])
        mu = mu / mu.sum()
        p = self.transition
        row_entropy = -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0)).sum(axis=1)
        return float(mu @ row_entropy)

    def with_data_seed(self, data_seed: int) -> Stream:
        """A copy with the same source, languages and probe data but another draw of training batches (a replicate)."""
        other = copy.copy(self)
        other.data_seed = check_int("data_seed", data_seed, minimum=0)
        return other

    def on_token_ids(self, token_ids: Sequence[int]) -> Stream:
        """A copy whose stream ids 0…vocab are written as the model ids ``token_ids`` (a real model's vocabulary:
        the real path probes Pythia with the same synthetic probe language on real token ids)."""
        token_ids = np.asarray(token_ids, dtype=np.int64)
        if token_ids.shape != (self.n_tokens,) or len(set(token_ids.tolist())) != self.n_tokens:
            raise ParameterError(f"token_ids must be {self.n_tokens} distinct ids (BOS and {self.vocab} symbols)")
        other = copy.copy(self)
        other.token_ids = token_ids
        return other


def real_token_ids(tokenizer, n_tokens: int, seed: int = 0) -> np.ndarray:
    """``n_tokens`` distinct ids of a real tokenizer for the stream (BOS first: the tokenizer's BOS, else its EOS),
    drawn from ordinary vocabulary entries (no special tokens), reproducibly."""
    special = set(tokenizer.all_special_ids)
    bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
    pool = np.array([i for i in range(min(len(tokenizer), 50_000)) if i not in special and i != bos])
    chosen = make_rng(seed, "real-token-ids").choice(pool, size=n_tokens - 1, replace=False)
    return np.concatenate([[bos], np.sort(chosen)]).astype(np.int64)


# --------------------------------------------------------------------------------------------------------------
# The models: GPT-2 configurations and their non-embedding parameter count
# --------------------------------------------------------------------------------------------------------------

SIZES: dict[str, tuple[int, int, int]] = {
    "w16": (16, 2, 2),
    "w24": (24, 2, 3),
    "w32": (32, 2, 4),
    "w48": (48, 2, 6),
    "w64": (64, 2, 8),
    "w96": (96, 2, 12),
    "w128": (128, 2, 16),
}
"""Name → (n_embd, n_layer, n_head): two layers, heads of width 8, MLP 4× wide; N = 6,592 (w16), 14,496, 25,472,
56,640, 100,096, 223,872 (w96: 34× w16) and 396,800 (w128: 60×)."""


def gpt2_config(size: str | tuple[int, int, int], stream: Stream, *, activation: str = "relu"):
    """A ``transformers`` GPT-2 configuration for ``size`` (a name of :data:`SIZES` or (n_embd, n_layer, n_head)) on
    ``stream``'s vocabulary: context ``seq_len``, dropout off, tied embeddings. ReLU by default, so that a dead unit
    (plasticity's classic symptom) is one whose pre-activation is never positive."""
    from transformers import GPT2Config

    if isinstance(size, str):
        size = SIZES[check_choice("size", size, tuple(SIZES))]
    n_embd, n_layer, n_head = size
    if n_embd % n_head:
        raise ParameterError(f"size: n_embd={n_embd} must be a multiple of n_head={n_head}")
    return GPT2Config(
        vocab_size=stream.n_tokens, n_positions=stream.seq_len, n_embd=n_embd, n_layer=n_layer, n_head=n_head,
        activation_function=activation, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0,
        bos_token_id=BOS, eos_token_id=BOS, pad_token_id=BOS,
    )  # fmt: skip


def non_embedding_parameters(config) -> int:
    """N of a GPT-2 configuration (plasticity-eq-non-embedding): every parameter except the token and position
    embeddings (the tied output layer is the token embedding). Per layer, with d = n_embd and m = n_inner (4d):

        N_layer = 2·2d (two LayerNorms) + (3d² + 3d) (QKV) + (d² + d) (attention output) + (dm + m) + (md + d) (MLP)
        N = n_layer · N_layer + 2d (final LayerNorm).
    """
    d, m = config.n_embd, config.n_inner or 4 * config.n_embd
    per_layer = 4 * d + 3 * d * d + 3 * d + d * d + d + d * m + m + m * d + d
    untied = 0 if config.tie_word_embeddings else config.vocab_size * d
    return config.n_layer * per_layer + 2 * d + untied


def count_non_embedding(model) -> int:
    """N counted on a model (any architecture): all parameters minus the input embedding, minus an untied output
    embedding, minus learned position embeddings (``wpe``)."""
    seen = {id(p): p.numel() for p in model.parameters()}
    excluded = {id(model.get_input_embeddings().weight)}
    output = model.get_output_embeddings()
    if output is not None:
        excluded.add(id(output.weight))
    for name, module in model.named_modules():
        if name.endswith("wpe") and hasattr(module, "weight"):
            excluded.add(id(module.weight))
    return int(sum(n for i, n in seen.items() if i not in excluded))


def learning_rate_for(config, *, base: float = 3e-3, base_width: int = 32) -> float:
    """The Adam learning rate of a size, fixed before the production runs: lr = base · base_width / n_embd (the
    1/width scaling of practice and of μP's hidden layers; w16 6e-3, w32 3e-3, w96 1e-3), for training and probe
    alike. The pilot at one learning rate for all sizes is the chapter's exercise (plans/plasticity.md)."""
    width = getattr(config, "n_embd", None) or config.hidden_size
    return float(base * base_width / width)


def build_model(config, seed: int):
    """A freshly initialised ``GPT2LMHeadModel`` (or any causal LM class for ``config``) from seed ``seed``."""
    from transformers import AutoModelForCausalLM

    check_int("seed", seed, minimum=0)
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config).train()


def lm_loss(model, batch: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy (nats per token) over every position after BOS."""
    return model(input_ids=batch, labels=batch).loss


# --------------------------------------------------------------------------------------------------------------
# Interventions against plasticity loss, applied inside the training loop
# --------------------------------------------------------------------------------------------------------------


@dataclass
class Intervention:
    """No intervention; subclasses change the loss (:meth:`penalty`) or the weights after each step."""

    def start(self, model) -> None:
        """Called once before the first step (an anchor is taken here)."""

    def penalty(self, model) -> torch.Tensor | None:
        return None

    def after_step(self, model, step: int) -> None:
        """Called after optimiser step ``step`` (0-based)."""


def _matrices(model) -> Iterable[torch.nn.Parameter]:
    """Weights with at least two dimensions (projections and embeddings); LayerNorm gains and biases are left alone."""
    return [p for p in model.parameters() if p.ndim >= 2]


@dataclass
class ShrinkPerturb(Intervention):
    """Shrink-and-perturb (Ash & Adams 2020; plasticity-eq-shrink-perturb): every ``every`` steps,

        θ ← λ·θ + σ·ε,   ε ~ N(0, s²) elementwise, s = the initialisation's standard deviation (0.02 in GPT-2),

    on every weight matrix. λ = ``shrink`` pulls the weights back toward the origin (undoing weight growth), σ =
    ``noise`` re-injects a scaled fresh initialisation (reviving units whose inputs died). ``every`` = the cycle
    length applies it at each language switch, as Ash & Adams apply it when new data arrives."""

    shrink: float = 0.8
    noise: float = 0.1
    every: int = 100
    init_std: float = 0.02
    seed: int = 0

    def __post_init__(self):
        check_float("shrink", self.shrink, minimum=0.0, maximum=1.0)
        check_float("noise", self.noise, minimum=0.0)
        check_int("every", self.every, minimum=1)
        self._generator = torch.Generator().manual_seed(self.seed)

    def after_step(self, model, step: int) -> None:
        if (step + 1) % self.every:
            return
        with torch.no_grad():
            for p in _matrices(model):
                # θ ← λθ + σ·ε, ε a fresh initialisation sample
                noise = torch.randn(p.shape, generator=self._generator) * self.init_std
                p.mul_(self.shrink).add_(self.noise * noise)


@dataclass
class L2Init(Intervention):
    """L2 toward the initialisation (Kumar et al. 2023, "regenerative regularisation"; plasticity-eq-l2-init):

        L(θ) = L_LM(θ) + (λ/2)·‖θ − θ_0‖²,

    over every parameter, θ_0 the weights at the start of training."""

    strength: float = 1e-3

    def __post_init__(self):
        check_float("strength", self.strength, minimum=0.0)
        self._anchor: list[torch.Tensor] = []

    def start(self, model) -> None:
        self._anchor = [p.detach().clone() for p in model.parameters()]

    def penalty(self, model) -> torch.Tensor:
        # (λ/2)·Σ‖θ − θ_0‖²
        squares = sum(((p - a) ** 2).sum() for p, a in zip(model.parameters(), self._anchor, strict=True))
        return 0.5 * self.strength * squares


# --------------------------------------------------------------------------------------------------------------
# Training on the stream, with checkpoints
# --------------------------------------------------------------------------------------------------------------


@dataclass
class TrainTrace:
    """What :func:`train_stream` recorded: the loss and gradient norm of every step, and the checkpoints' weights."""

    losses: np.ndarray
    grad_norms: np.ndarray
    checkpoints: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)


def checkpoint_steps(total: int, count: int, *, multiple_of: int = 1, spacing: str = "linear") -> list[int]:
    """``count`` checkpoint steps in (0, total], rounded to a multiple of ``multiple_of`` (the cycle length, so that a
    checkpoint closes a cycle), plus step 0; ``spacing`` ``"linear"`` or ``"geometric"`` (even on a log axis, where a
    power law's onsets are compared)."""
    check_int("total", total, minimum=1)
    check_int("count", count, minimum=1)
    check_choice("spacing", spacing, ("linear", "geometric"))
    if spacing == "linear":
        raw = np.linspace(total / count, total, count)
    else:
        raw = np.geomspace(max(multiple_of, total / 2 ** (count - 1)), total, count)
    steps = {0} | {max(multiple_of, int(round(x / multiple_of)) * multiple_of) for x in raw}
    return sorted(s for s in steps if s <= total)


def train_stream(
    model,
    stream: Stream,
    *,
    setting: str,
    steps: int,
    learning_rate: float = 3e-3,
    checkpoints: Sequence[int] = (),
    intervention: Intervention | None = None,
    clip: float | None = 1.0,
    on_checkpoint: Callable[[int, object], None] | None = None,
) -> TrainTrace:
    """Train ``model`` on ``stream`` in ``setting`` for ``steps`` steps with Adam (no weight decay, which would slow
    plasticity loss down), optional gradient clipping and an optional :class:`Intervention`. At each step in
    ``checkpoints`` (0 = before the first update) the weights are copied into the trace and ``on_checkpoint(step,
    model)`` is called (the probe can run there without storing the weights)."""
    check_choice("setting", setting, SETTINGS)
    check_int("steps", steps, minimum=0)
    check_float("learning_rate", learning_rate, minimum=0.0)
    intervention = intervention or Intervention()
    optimiser = torch.optim.Adam(model.parameters(), lr=learning_rate)
    intervention.start(model)
    wanted, trace = set(checkpoints), TrainTrace(np.zeros(steps), np.zeros(steps))
    model.train()

    def keep(step: int) -> None:
        if step in wanted:
            trace.checkpoints[step] = {k: v.detach().clone() for k, v in model.state_dict().items()}
            if on_checkpoint is not None:
                on_checkpoint(step, model)

    for step in range(steps):
        keep(step)
        loss = lm_loss(model, stream.batch(step, setting))
        penalty = intervention.penalty(model)
        optimiser.zero_grad(set_to_none=True)
        (loss if penalty is None else loss + penalty).backward()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip if clip is not None else float("inf"))
        optimiser.step()
        intervention.after_step(model, step)
        trace.losses[step], trace.grad_norms[step] = loss.item(), float(norm)
    keep(steps)
    return trace


# --------------------------------------------------------------------------------------------------------------
# The probe: fine-tune a copy on the held-out language; the control is a fresh initialisation
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeResult:
    """One probe: ``final`` = loss on the fixed held-out probe batch after the budget, ``mean`` = mean online loss over
    the budget (each step's loss on its fresh batch before its update), ``curve`` = those online losses."""

    final: float
    mean: float
    curve: np.ndarray


def probe(model, stream: Stream, *, budget: int = 100, learning_rate: float = 3e-3, replicate: int = 0) -> ProbeResult:
    """The paper's probe as we reconstruct it (plasticity-eq-probe): a **copy** of ``model`` is fine-tuned on the probe
    language for ``budget`` Adam steps (fresh optimiser state, no clipping beyond 1.0, the same batches for every
    checkpoint of one ``replicate``); ``model`` is left unchanged.

        L_final(θ) = L_probe(θ^(B)),   L_mean(θ) = (1/B) Σ_{k<B} L_k(θ^(k)),   θ^(0) = θ, θ^(k+1) = Adam step on L_k.
    """
    check_int("budget", budget, minimum=1)
    learner = copy.deepcopy(model).train()
    optimiser = torch.optim.Adam(learner.parameters(), lr=learning_rate)
    curve = np.zeros(budget)
    for k in range(budget):
        loss = lm_loss(learner, stream.probe_batch(k, replicate))
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(learner.parameters(), 1.0)
        optimiser.step()
        curve[k] = loss.item()
    learner.eval()
    with torch.no_grad():
        final = float(lm_loss(learner, stream.probe_eval_batch()))
    return ProbeResult(final=final, mean=float(curve.mean()), curve=curve)


def fresh_probe(config, stream: Stream, *, seeds: Sequence[int], **probe_kwargs) -> list[ProbeResult]:
    """The control: the same probe from fresh initialisations of ``config`` (one per seed in ``seeds``)."""
    return [probe(build_model(config, seed), stream, **probe_kwargs) for seed in seeds]


def null_gaps(config, stream: Stream, n_checkpoints: int, fresh: Sequence[ProbeResult], *, seed_base: int = 2000,
              which: str = "final", **probe_kwargs) -> np.ndarray:  # fmt: skip
    """The A/A null curve: at each of ``n_checkpoints`` positions a *fresh* initialisation (seed ``seed_base + k``)
    is probed and compared with the fresh control, so the curve has the probe's noise and no training. The onset
    rule should find no onset on it (the control of the ``loss-appears`` rows)."""
    check_int("n_checkpoints", n_checkpoints, minimum=2)
    results = fresh_probe(config, stream, seeds=[seed_base + k for k in range(n_checkpoints)], **probe_kwargs)
    return np.array([plasticity_gap(r, fresh, which) for r in results])


def plasticity_gap(checkpoint: ProbeResult, fresh: Sequence[ProbeResult], which: str = "final") -> float:
    """G(T) = L_probe(θ_T) − mean over fresh seeds of L_probe(θ_fresh) (plasticity-eq-gap), for the ``final`` or the
    ``mean`` probe loss. Negative: the checkpoint adapts better than a fresh model; positive: worse."""
    check_choice("which", which, ("final", "mean"))
    if not fresh:
        raise ParameterError("fresh: at least one fresh-initialisation probe is needed")
    return float(getattr(checkpoint, which) - np.mean([getattr(f, which) for f in fresh]))


# --------------------------------------------------------------------------------------------------------------
# Indicators: dead units, weight norm, effective rank, gradient norm
# --------------------------------------------------------------------------------------------------------------

MLP_INPUTS = {
    "gpt2": "transformer.h.{i}.mlp.c_fc",
    "gpt_neox": "gpt_neox.layers.{i}.mlp.dense_h_to_4h",
    "llama": "model.layers.{i}.mlp.gate_proj",
    "qwen2": "model.layers.{i}.mlp.gate_proj",
}
"""Per architecture, the module whose output is the MLP's pre-activation (the argument of the non-linearity)."""


def effective_rank(features: torch.Tensor | np.ndarray) -> float:
    """Roy & Vetterli's (2007) effective rank of a (samples × dimensions) matrix (plasticity-eq-effective-rank):

        erank(Φ) = exp(−Σ_k p_k log p_k),   p_k = σ_k / Σ_j σ_j,   σ the singular values of Φ;

    1 for a rank-one matrix, d for d equal singular values."""
    sigma = np.linalg.svd(np.asarray(features, dtype=np.float64), compute_uv=False)
    sigma = sigma[sigma > sigma.max() * 1e-12] if sigma.size and sigma.max() > 0 else sigma[:0]
    if not sigma.size:
        return 0.0
    p = sigma / sigma.sum()
    return float(np.exp(-(p * np.log(p)).sum()))


def mlp_pre_activations(model, batch: torch.Tensor) -> list[torch.Tensor]:
    """Each layer's MLP pre-activations on ``batch``, flattened to (tokens × units), via forward hooks on the
    modules of :data:`MLP_INPUTS`."""
    model_type = model.config.model_type
    if model_type not in MLP_INPUTS:
        raise ParameterError(f"model_type={model_type!r} has no known MLP layout; known: {', '.join(MLP_INPUTS)}")
    modules = dict(model.named_modules())
    outputs: list[torch.Tensor] = []
    hooks = [
        modules[MLP_INPUTS[model_type].format(i=i)].register_forward_hook(
            lambda _m, _i, out: outputs.append(out.detach().reshape(-1, out.shape[-1]))
        )
        for i in range(model.config.num_hidden_layers)
    ]
    try:
        with torch.no_grad():
            model(input_ids=batch)
    finally:
        for hook in hooks:
            hook.remove()
    return outputs


def dead_fraction(model, batch: torch.Tensor) -> float:
    """Share of MLP units whose pre-activation is never positive on any token of ``batch`` (for ReLU, GELU and SiLU
    alike, the unit's output is then never positive: it is dead on this input)."""
    pre = mlp_pre_activations(model, batch)
    dead = sum(int((h <= 0).all(dim=0).sum()) for h in pre)
    return dead / sum(h.shape[1] for h in pre)


def indicators(model, batch: torch.Tensor) -> dict[str, float]:
    """The mechanistic indicators at a checkpoint, on ``batch`` (the book uses the probe language's held-out batch):
    dead-unit share, L2 norm of all weights, effective rank of the last hidden layer's features (tokens × d), and the
    norm of the LM-loss gradient (the signal a fine-tune starts from). ``model`` is left unchanged."""
    was_training = model.training
    model.eval()
    dead = dead_fraction(model, batch)
    with torch.no_grad():
        weight_norm = float(torch.sqrt(sum((p.double() ** 2).sum() for p in model.parameters())))
        hidden = model(input_ids=batch, output_hidden_states=True).hidden_states[-1]
    rank = effective_rank(hidden.reshape(-1, hidden.shape[-1]).numpy())
    model.zero_grad(set_to_none=True)
    lm_loss(model, batch).backward()
    grad_norm = float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in model.parameters() if p.grad is not None)))
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return {"dead_fraction": dead, "weight_norm": weight_norm, "effective_rank": rank, "grad_norm": grad_norm}


# --------------------------------------------------------------------------------------------------------------
# One trajectory: train on the stream, probe and measure every checkpoint
# --------------------------------------------------------------------------------------------------------------


def trajectory(
    config,
    stream: Stream,
    *,
    setting: str,
    steps: int,
    checkpoints: Sequence[int],
    seed: int = 0,
    learning_rate: float = 3e-3,
    probe_budget: int = 50,
    probe_learning_rate: float = 3e-3,
    intervention: Intervention | None = None,
    measure_indicators: bool = True,
    keep: Sequence[int] = (),
    with_trace: bool = False,
) -> list[dict] | tuple[list[dict], TrainTrace]:
    """Train a fresh model of ``config`` (init ``seed``) on ``stream`` and, at every checkpoint, probe it and read its
    indicators on the probe language's held-out batch. One row per checkpoint: ``step``, ``probe_final``,
    ``probe_mean``, the indicators, and ``train_loss`` (mean training loss over the steps since the previous
    checkpoint; NaN at step 0). This is what a zoo build writes to its table (:mod:`llmtheory.plasticity_zoo`).

    The weights are not kept, except those of the checkpoints in ``keep``; ``with_trace=True`` returns ``(rows,
    trace)``, the :class:`TrainTrace` holding every step's loss and gradient norm and the kept weights."""
    rows: list[dict] = []
    eval_batch = stream.probe_eval_batch()

    def measure(step: int, model) -> None:
        result = probe(model, stream, budget=probe_budget, learning_rate=probe_learning_rate)
        row = {"step": step, "probe_final": result.final, "probe_mean": result.mean}
        if measure_indicators:
            row.update(indicators(model, eval_batch))
        rows.append(row)

    model = build_model(config, seed)
    trace = train_stream(model, stream, setting=setting, steps=steps, learning_rate=learning_rate,
                         checkpoints=checkpoints, intervention=intervention, on_checkpoint=measure)  # fmt: skip
    kept = set(keep)
    trace.checkpoints = {step: weights for step, weights in trace.checkpoints.items() if step in kept}
    for previous, row in zip([None, *rows[:-1]], rows, strict=True):
        start = 0 if previous is None else previous["step"]
        row["train_loss"] = float(trace.losses[start : row["step"]].mean()) if row["step"] > start else float("nan")
    return (rows, trace) if with_trace else rows


# --------------------------------------------------------------------------------------------------------------
# The onset and its scaling law
# --------------------------------------------------------------------------------------------------------------

ONSET_WINDOW = 3
"""Checkpoints in the centred moving average that smooths the gap before the onset is read (fixed before any run)."""
ONSET_MARGIN = 0.05
"""Nats per token by which the smoothed gap must exceed its running minimum (fixed before any run)."""


def smooth(values: Sequence[float], window: int = ONSET_WINDOW) -> np.ndarray:
    """Centred moving average over ``window`` points (odd), the window shrinking symmetrically at the ends."""
    check_int("window", window, minimum=1)
    if window % 2 == 0:
        raise ParameterError(f"window={window} must be odd (a centred average)")
    values = np.asarray(values, dtype=float)
    half, out = window // 2, np.empty(len(values))
    for k in range(len(values)):
        h = min(half, k, len(values) - 1 - k)
        out[k] = values[k - h : k + h + 1].mean()
    return out


def null_margin(null: Sequence[float], *, k: float = 3.0, floor: float = ONSET_MARGIN) -> float:
    """A margin calibrated on the A/A null curve (:func:`null_gaps`) instead of the fixed one: max(floor, k·σ_null),
    σ_null the standard deviation of the null gaps. Blind to the trained runs (it reads only fresh inits), so it can
    be fixed before them; whether the chapter uses it is a design decision recorded in plans/plasticity.md."""
    null = np.asarray(null, dtype=float)
    if null.size < 2:
        raise ParameterError("null: at least two null gaps are needed for a standard deviation")
    return float(max(floor, k * null.std(ddof=1)))


@dataclass(frozen=True)
class Onset:
    """Where plasticity loss starts on one gap curve: ``step`` (``None``: not located), its checkpoint ``index``, the
    smoothed curve and the running minimum it was compared with."""

    step: int | None
    index: int | None
    smoothed: np.ndarray
    running_min: np.ndarray

    @property
    def located(self) -> bool:
        return self.step is not None

    @property
    def rise(self) -> float:
        """max_k (s_k − m_k) over k ≥ 1: how far the smoothed gap ever stood above its earlier minimum (the onset is
        located exactly when this reaches the margin); the ``loss-appears`` rule reads it per seed."""
        return float(np.max(self.smoothed[1:] - self.running_min[1:]))


def locate_onset(
    steps: Sequence[int], gaps: Sequence[float], *, window: int = ONSET_WINDOW, margin: float = ONSET_MARGIN
) -> Onset:
    """The onset T* (plasticity-eq-onset), stated before any run:

        s = smooth(G, window),   m_k = min_{j<k} s_j,   T* = T_{k*},  k* = min{k ≥ 1 : s_k − m_k ≥ margin};

    the first checkpoint whose smoothed gap stands ``margin`` nats above the best (lowest) smoothed gap seen before
    it, i.e. where the ability to learn the probe language has clearly started to decline. Not located (``step``
    ``None``) when no checkpoint qualifies: the gap kept falling, stayed flat, or its rise stayed within the margin."""
    steps, gaps = np.asarray(steps), np.asarray(gaps, dtype=float)
    if steps.shape != gaps.shape or steps.ndim != 1 or len(steps) < 2:
        raise ParameterError("steps and gaps must be 1-D of equal length ≥ 2")
    if np.any(np.diff(steps) <= 0):
        raise ParameterError("steps must increase")
    check_float("margin", margin, minimum=0.0)
    s = smooth(gaps, window)
    running = np.concatenate([[np.inf], np.minimum.accumulate(s)[:-1]])
    hits = np.nonzero(s - running >= margin)[0]
    if not hits.size:
        return Onset(None, None, s, running)
    k = int(hits[0])
    return Onset(int(steps[k]), k, s, running)


@dataclass(frozen=True)
class SizeOnset:
    """The onset of one size over seeds: ``estimate`` (geometric mean over the seeds whose onset was located, with a
    bootstrap interval over those seeds), ``located`` / ``seeds`` counts; ``estimate`` is ``None`` when fewer than half
    of the seeds have an onset (the size's onset is then *not located*)."""

    estimate: Estimate | None
    located: int
    seeds: int
    onsets: tuple[int | None, ...]


def onset_over_seeds(onsets: Sequence[int | None], rng: np.random.Generator, draws: int = 2000) -> SizeOnset:
    """Combine per-seed onsets of one size: located only when more than half the seeds located one."""
    found = np.array([o for o in onsets if o is not None], dtype=float)
    if len(found) * 2 <= len(onsets):
        return SizeOnset(None, len(found), len(onsets), tuple(onsets))
    logs = np.log(found)
    boot = logs[rng.integers(0, len(logs), (draws, len(logs)))].mean(axis=1)
    value = float(np.exp(logs.mean()))
    low, high = np.exp(np.quantile(boot, [0.025, 0.975]))
    return SizeOnset(Estimate(value, min(low, value), max(high, value)), len(found), len(onsets), tuple(onsets))


@dataclass(frozen=True)
class OnsetLaw:
    """T* = c·N^b (plasticity-eq-onset-law). ``exponent`` b with its bootstrap interval and ``coefficient`` c (both
    ``None`` when not located), ``sizes_used`` the N of the sizes with an onset, ``status`` ``"fitted"`` or
    ``"not located"`` with ``reason``."""

    exponent: Estimate | None
    coefficient: float | None
    sizes_used: tuple[float, ...]
    status: str
    reason: str = ""

    def sublinear(self):
        """The rule "sublinear": b's interval lies below 1 (a :class:`~llmtheory.claims.Test`, decisive when the upper
        end is < 1); ``None`` when the law was not located."""
        from .claims import at_most

        return None if self.exponent is None else at_most(self.exponent, 1.0)

    def delays(self):
        """The rule "larger models delay the onset": b > 0, decisive when the lower end is > 0."""
        from .claims import at_least

        return None if self.exponent is None else at_least(self.exponent, 0.0)


MIN_SIZES_FOR_LAW = 3


def fit_onset_law(
    non_embedding: Sequence[float],
    onsets: Sequence[Sequence[int | None]],
    rng: np.random.Generator,
    *,
    draws: int = 2000,
    resample: str = "both",
) -> OnsetLaw:
    """Fit log T* = log c + b·log N over the sizes whose onset is located (plasticity-eq-onset-law).

    ``onsets[i]`` holds size i's per-seed onsets (``None`` = not located). A size enters the fit when more than half
    of its seeds located an onset; its point is the mean of log T* over those seeds. The interval for b is a 95%
    percentile bootstrap: ``resample="both"`` redraws sizes (cases) and, within each, seeds; ``"seeds"`` redraws seeds
    only (narrower: it ignores how far the sizes scatter about the line). Draws with fewer than
    :data:`MIN_SIZES_FOR_LAW` distinct sizes are discarded. Fewer than that many located sizes: *not located*.
    Sizes whose onset lies beyond the horizon are censored, not imputed: the plan reports them beside the fit."""
    check_choice("resample", resample, ("both", "seeds"))
    n = np.asarray(non_embedding, dtype=float)
    if len(n) != len(onsets):
        raise ParameterError("non_embedding and onsets must have one entry per size")
    located = [
        (np.log(n[i]), np.log([o for o in row if o is not None]))
        for i, row in enumerate(onsets)
        if sum(o is not None for o in row) * 2 > len(row)
    ]
    if len(located) < MIN_SIZES_FOR_LAW:
        reason = f"an onset was located at {len(located)} of {len(n)} sizes; a law needs {MIN_SIZES_FOR_LAW}"
        return OnsetLaw(None, None, tuple(float(np.exp(x)) for x, _ in located), "not located", reason)
    x = np.array([lx for lx, _ in located])
    y = np.array([ly.mean() for _, ly in located])
    slope, intercept = np.polyfit(x, y, 1)
    slopes = []
    for _ in range(draws):
        picks = rng.integers(0, len(located), len(located)) if resample == "both" else np.arange(len(located))
        if len(set(picks.tolist())) < MIN_SIZES_FOR_LAW:
            continue
        xs = x[picks]
        ys = [located[i][1][rng.integers(0, len(located[i][1]), len(located[i][1]))].mean() for i in picks]
        slopes.append(np.polyfit(xs, ys, 1)[0])
    low, high = np.quantile(slopes, [0.025, 0.975])
    exponent = Estimate(float(slope), float(min(low, slope)), float(max(high, slope)))
    return OnsetLaw(exponent, float(np.exp(intercept)), tuple(float(np.exp(v)) for v in x), "fitted")


# --------------------------------------------------------------------------------------------------------------
# The real path: a hub model's checkpoint series, probed by the same code
# --------------------------------------------------------------------------------------------------------------

PYTHIA_REVISIONS = tuple(f"step{s}" for s in (0, 512, 1000, 2000, 4000, 8000, 16000, 32000, 64000, 100000, 143000))
"""Pythia's intermediate checkpoints are branches ``step0``, ``step1``, ``step2``, …, ``step512``, ``step1000``, …,
``step143000`` of every ``EleutherAI/pythia-*`` repository (Biderman et al. 2023); a log-spaced subset."""

PYTHIA_MODELS = ("EleutherAI/pythia-14m", "EleutherAI/pythia-70m", "EleutherAI/pythia-160m", "EleutherAI/pythia-410m")
"""Pythia sizes whose non-embedding N spans the paper's range (about 1 M to 300 M); all trained on the same Pile
order, i.e. the stationary setting on natural language."""


def revision_step(revision: str) -> int:
    """``"step1000"`` → 1000."""
    if not revision.startswith("step") or not revision[4:].isdigit():
        raise ParameterError(f"revision={revision!r} must look like 'step1000' (a Pythia checkpoint branch)")
    return int(revision[4:])


def hub_checkpoint_series(model_id: str, revisions: Sequence[str] = PYTHIA_REVISIONS, **load_kwargs):
    """Yield ``(step, model)`` for each checkpoint ``revision`` of a hub model (``from_pretrained(model_id,
    revision=...)``: needs the network, or the checkpoints in the local cache). Each model is loaded only when the
    iteration reaches it, so a series never holds more than one checkpoint."""
    from transformers import AutoModelForCausalLM

    for revision in revisions:
        step = revision_step(revision)
        yield step, AutoModelForCausalLM.from_pretrained(model_id, revision=revision, **load_kwargs)
