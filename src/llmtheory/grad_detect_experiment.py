"""The whole Grad Detect pipeline on one model, and the statistics of the chapter's claims, apart from the method in
:mod:`llmtheory.grad_detect`.

Greedy answers and their labels, the detection features of every item, AUROCs with cluster-bootstrap intervals, the
layer ablation, the measured costs and their ratios, the correctness baselines on the same items, the first-token
control of the response task, and the shuffled-label and paired differences that the ledger's rules use.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from . import toyworld as tw
from .grad_detect import (
    CORRECT,
    PROBES,
    TASKS,
    Greedy,
    QAItem,
    Split,
    activation_cosines,
    auroc,
    class_references,
    fit_logistic,
    gradient_features,
    greedy_answers,
    label_replies,
    last_hidden_states,
    model_device,
    probe_activations,
    probe_batch,
    prompt_ids,
    random_references,
    same_normalised_answer,
    sample_answers,
    sampling_scores,
    self_assessment_scores,
    split_items,
    task_labels,
    toy_judge,
)
from .seeding import make_rng


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
    """The split of each task, the class references ``references[(task, reference_probe)]`` (|C|, L, O, I) and
    the cosine features ``features[(task, item_probe, reference_probe)]`` of every item, (N, L, |C|), for one
    model and one split seed. ``untestable`` names each task left out and why (a class with too few items: a
    QA set without refusals has no did-not-answer class, a model that knows nothing has no correct answers)."""

    answers: Answers
    splits: dict[str, Split]
    references: dict[tuple[str, str], torch.Tensor]
    features: dict[tuple[str, str, str], np.ndarray]
    untestable: dict[str, str]

    @property
    def tasks(self) -> list[str]:
        """The tasks with enough items of every class, in :data:`TASKS` order."""
        return [t for t in TASKS if t in self.splits and t not in self.untestable]

    def task_data(self, task: str, part: str, probes: tuple[str, str] = ("positive", "positive")):
        """``(features, class indices)`` of one split part (``"reference"``, ``"training"`` or ``"test"``)."""
        rows = getattr(self.splits[task], part)
        return self.features[(task, *probes)][rows], self.targets(task, rows)

    def targets(self, task: str, rows: np.ndarray) -> np.ndarray:
        """Class indices (in ``TASKS[task]`` order) of the items ``rows``."""
        classes = TASKS[task]
        return np.array([classes.index(v) for v in task_labels(self.answers.labels, task)[rows]], dtype=int)


def untestable_reason(split: Split, labels: np.ndarray, task: str, minimum: int = 5) -> str | None:
    """Why ``task`` cannot be run (a class with fewer than ``minimum`` items in a part of the split), or None."""
    task_view = task_labels(labels, task)
    pool = {c: int((task_view == c).sum()) for c in TASKS[task]}
    if min(pool.values()) < 3 * minimum:
        return f"the greedy answers give {pool} items per class; at least {3 * minimum} each are needed"
    for part in ("reference", "training", "test"):
        counts = {c: int((task_view[getattr(split, part)] == c).sum()) for c in TASKS[task]}
        if min(counts.values()) < minimum:
            return f"the balanced {part} part has {counts} items per class; at least {minimum} each are needed"
    return None


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
    random_control: str | None = None,
) -> Detection:
    """Balanced splits → class references on the reference half → cosine features of every item (steps 4–6), for
    every testable task and every pair (item probe r′, reference probe r). ``random_control`` names a task whose
    features are also computed against :func:`random_references` (reference probe ``"random"``)."""
    labels, prompts = answers.labels, answers.prompts
    splits = {t: split_items(answers.groups, task_labels(labels, t), seed=seed, key=t) for t in tasks}
    untestable = {t: r for t in tasks if (r := untestable_reason(splits[t], labels, t)) is not None}
    references = {}
    for task in (t for t in tasks if t not in untestable):
        rows = splits[task].reference
        for probe in reference_probes:
            references[(task, probe)] = class_references(
                model, tokenizer, [prompts[i] for i in rows], labels[rows], TASKS[task], PROBES[probe], batch_size
            )
    if random_control in references_tasks(references):
        like = references[(random_control, reference_probes[0])]
        references[(random_control, "random")] = random_references(like, seed=seed)
    features = {}
    for item_probe in item_probes:
        found = gradient_features(model, tokenizer, prompts, references, PROBES[item_probe], batch_size)
        features.update({(task, item_probe, ref_probe): f for (task, ref_probe), f in found.items()})
    return Detection(answers, splits, references, features, untestable)


def references_tasks(references: dict) -> set[str]:
    return {task for task, _ in references}


def cluster_bootstrap(
    statistic: Callable[[np.ndarray], dict[str, float]],
    groups: Sequence[str],
    *,
    seed: int,
    n_boot: int = 1000,
    key: str = "",
    valid: Callable[[np.ndarray], bool] | None = None,
) -> dict[str, np.ndarray]:
    """``statistic(rows)`` on bootstrap resamples of whole entities (the items of one entity are not independent):
    ``{name: array (n_boot,)}``. The resamples are shared by every name, so differences are paired; ``valid``
    rejects a resample (e.g. one with a single class, where an AUROC is undefined)."""
    rng = make_rng(seed, "grad_detect", "bootstrap", key)
    groups = np.asarray(groups)
    names = np.array(sorted(set(groups)))
    members = [np.flatnonzero(groups == g) for g in names]
    out: dict[str, np.ndarray] = {}
    b = 0
    while b < n_boot:
        rows = np.concatenate([members[j] for j in rng.integers(len(names), size=len(names))])
        if valid is not None and not valid(rows):
            continue
        for k, v in statistic(rows).items():
            out.setdefault(k, np.zeros(n_boot))[b] = v
        b += 1
    return out


def cluster_bootstrap_auroc(
    positive: np.ndarray, scores: dict[str, np.ndarray], groups: Sequence[str], *, seed: int, n_boot: int = 1000
) -> dict[str, np.ndarray]:
    """AUROC of each score on entity-bootstrap resamples (:func:`cluster_bootstrap`), paired across scores."""
    positive = np.asarray(positive, dtype=bool)
    return cluster_bootstrap(
        lambda rows: {k: auroc(positive[rows], s[rows]) for k, s in scores.items()},
        groups,
        seed=seed,
        n_boot=n_boot,
        key="auroc",
        valid=lambda rows: bool(positive[rows].any() and not positive[rows].all()),
    )


def accuracy_bootstrap(hits: dict[str, np.ndarray], groups: Sequence[str], *, seed: int, n_boot: int = 1000, key=""):
    """Accuracy (mean of 0/1 ``hits``) of each predictor on entity-bootstrap resamples, paired across predictors."""
    return cluster_bootstrap(
        lambda rows: {k: float(h[rows].mean()) for k, h in hits.items()}, groups, seed=seed, n_boot=n_boot, key=key
    )


def bootstrap_estimate(value: float, samples: np.ndarray, confidence: float = 0.95):
    """An :class:`~llmtheory.claims.Estimate`: ``value`` with the percentile interval of its bootstrap
    ``samples`` (widened to contain ``value`` when the resampled distribution is skewed past it)."""
    from .claims import Estimate

    low, high = np.quantile(samples, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Estimate(float(value), float(min(low, value)), float(max(high, value)))


def configuration_spread(
    detection: Detection, pairs: Sequence[tuple[str, str]], *, seed: int, n_boot: int = 1000
) -> tuple[pd.DataFrame, object, float]:
    """Test accuracy of the logistic predictor for each task and probe pair (our reading of the paper's 12
    configurations: 3 tasks × 2 item probes × 2 reference probes), the largest spread max − min over pairs within
    a task, as an Estimate with an entity-bootstrap interval (tasks resampled independently, spread = max over
    tasks), and the noise floor: the largest, over tasks, median half-width of the 95% paired-bootstrap interval
    of the accuracy difference between two configurations (a 2-point equivalence is decidable only below 0.02)."""
    rows, spreads, noise = [], [], []
    for task in detection.tasks:
        test = detection.splits[task].test
        hits = {}
        for pair in pairs:
            if (task, *pair) not in detection.features:
                continue
            x_train, y_train = detection.task_data(task, "training", pair)
            x_test, y_test = detection.task_data(task, "test", pair)
            predicted = fit_logistic(x_train, y_train).predict(x_test.reshape(len(x_test), -1))
            hits[pair] = (predicted == y_test).astype(float)
            rows.append(
                {"task": task, "item probe r′": pair[0], "reference probe r": pair[1], "accuracy": hits[pair].mean()}
            )
        groups = [detection.answers.groups[i] for i in test]
        boot = accuracy_bootstrap({str(p): h for p, h in hits.items()}, groups, seed=seed, n_boot=n_boot, key=task)
        stacked = np.stack(list(boot.values()))
        widths = [np.subtract(*np.quantile(stacked[i] - stacked[j], [0.975, 0.025])) / 2
                  for i in range(len(stacked)) for j in range(i + 1, len(stacked))]  # fmt: skip
        noise.append(float(np.median(widths)) if widths else float("nan"))
        point = max(h.mean() for h in hits.values()) - min(h.mean() for h in hits.values())
        spreads.append((point, stacked.max(0) - stacked.min(0)))
    table = pd.DataFrame(rows)
    if not spreads:
        return table, None, float("nan")
    worst = max(range(len(spreads)), key=lambda i: spreads[i][0])
    return (
        table,
        bootstrap_estimate(spreads[worst][0], np.max([s for _, s in spreads], axis=0)),
        float(np.nanmax(noise)),
    )


def configuration_table(configurations: pd.DataFrame) -> pd.DataFrame:
    """:func:`configuration_spread`'s accuracies as the chapter shows them: one row per (item probe r′, reference
    probe r), one column per task, every value as text with three decimals ("1.000" beside "0.714", not pandas'
    "1.0"); a frame, not a Styler, so that it gets the book's table layout. A pair not run for a task stays
    missing (shown as the book's dash). An empty table (no configuration was run) is returned as it is."""
    if configurations.empty:
        return configurations
    table = configurations.pivot(index=["item probe r′", "reference probe r"], columns="task", values="accuracy")
    shown = table.rename_axis(columns=None).map(lambda value: f"{value:.3f}" if pd.notna(value) else value)
    shown.attrs["missing"] = "this probe pair was not run for this task"
    return shown


def layer_ablation(
    detections: Sequence[Detection], n_layers: int, *, task: str = "correctness", probes=("positive", "positive")
) -> list[dict]:
    """Test accuracy of the logistic-regression predictor on the last k and on the first k layers, for every k
    (the paper's Table 7), one row per split seed, side and k."""
    rows = []
    for seed, detection in enumerate(detections):
        if task not in detection.tasks:
            continue
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
    repeats: int = 5,
) -> pd.DataFrame:
    """Seconds per item (one item at a time, summed over ``prompts``) of one forward pass over the prompt, of Grad
    Detect on all layers and on the last ``last_k`` (probe forward–backward plus cosine features), of the greedy
    answer, and of 5 and 10 sampled answers; ``repeats`` rounds, the order of the methods rotated between rounds.
    One row per round and method, with wall and CPU seconds (on a GPU, CPU time is not the cost: use wall)."""
    import time

    n_layers = references.shape[1]
    top = list(range(max(0, n_layers - last_k), n_layers))

    def grad_detect(prompt, layers):
        found = probe_activations(model, probe_batch(tokenizer, [prompt], probe), layers)
        return activation_cosines(found, references[:, layers] if layers is not None else references)

    methods = {
        "forward pass": lambda p: model(input_ids=torch.tensor([p], device=model_device(model))),
        "Grad Detect, all layers": lambda p: grad_detect(p, None),
        f"Grad Detect, last {last_k} layers": lambda p: grad_detect(p, top),
        "greedy answer": lambda p: greedy_answers(model, tokenizer, [p], max_new_tokens=max_new_tokens),
        "self-consistency (5 samples)": lambda p: sample_answers(
            model, tokenizer, [p], 5, seed=seed, max_new_tokens=max_new_tokens
        ),
        "semantic entropy (10 samples)": lambda p: sample_answers(
            model, tokenizer, [p], 10, seed=seed, max_new_tokens=max_new_tokens
        ),
    }
    names = list(methods)
    on_gpu = model_device(model).type == "cuda"
    rows = []
    for round_ in range(repeats):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            wall, cpu = time.perf_counter(), time.process_time()
            for prompt in prompts:
                with torch.no_grad() if name == "forward pass" else torch.enable_grad():
                    methods[name](prompt)
            if on_gpu:
                torch.cuda.synchronize()
            rows.append({"round": round_, "method": name, "wall_s": time.perf_counter() - wall,
                         "cpu_s": time.process_time() - cpu})  # fmt: skip
    return pd.DataFrame(rows)


def cost_ratios(timings: pd.DataFrame, clock: str = "cpu_s") -> dict:
    """Each method's time as a multiple of the forward pass of the same round: ``{method: Estimate}``, the mean
    over rounds with its Student-t 95% interval."""
    from .claims import Estimate

    table = timings.pivot(index="round", columns="method", values=clock)
    ratios = table.div(table["forward pass"], axis=0)
    return {name: Estimate.mean_of(ratios[name].to_numpy()) for name in table.columns if name != "forward pass"}


def cost_difference(timings: pd.DataFrame, slower: str, faster: str, clock: str = "cpu_s"):
    """(time of ``slower`` − time of ``faster``) in forward passes of the same round: an Estimate over rounds."""
    from .claims import Estimate

    table = timings.pivot(index="round", columns="method", values=clock)
    return Estimate.mean_of(((table[slower] - table[faster]) / table["forward pass"]).to_numpy())


BASELINE_FAMILIES: dict[str, str] = {
    "max-softmax confidence": "confidence",
    "sequence perplexity": "confidence",
    "self-consistency (5 samples)": "sampling",
    "semantic entropy (10 samples)": "sampling",
    "last-layer probe": "probe",
    "self-assessment": "self-assessment",
}
"""The paper's Table 3 baselines and the family each belongs to."""


def correctness_baselines(
    model,
    tokenizer,
    answers: Answers,
    split: Split,
    *,
    seed: int,
    max_new_tokens: int = 8,
    instruction: str = tw.INSTRUCTION,
    equivalent: Callable[[str, str], bool] = same_normalised_answer,
) -> dict[str, np.ndarray]:
    """Scores (higher = more likely correct) of every baseline of :data:`BASELINE_FAMILIES` on the test items of
    ``split``; the hidden-state probe is fitted on the reference and training halves (the data Grad Detect uses).
    Self-assessment is left out when the tokenizer has no distinct "Yes" and "No"."""
    test = split.test
    greedy = [answers.greedy.replies[i] for i in test]
    prompts = [answers.prompts[i] for i in test]
    samples = sample_answers(model, tokenizer, prompts, 10, seed=seed, max_new_tokens=max_new_tokens)
    consistency, neg_entropy = sampling_scores(greedy, samples, n_consistency=5, equivalent=equivalent)
    hidden = last_hidden_states(model, answers.prompts)
    dev = np.concatenate([split.reference, split.training])
    probe = fit_logistic(hidden[dev], answers.labels[dev] == CORRECT)
    scores = {
        "max-softmax confidence": answers.greedy.max_softmax[test],
        "sequence perplexity": -answers.greedy.perplexity[test],
        "self-consistency (5 samples)": consistency,
        "semantic entropy (10 samples)": neg_entropy,
        "last-layer probe": probe.predict_proba(hidden[test])[:, 1],
    }
    assessed = self_assessment_scores(model, tokenizer, [answers.items[i] for i in test], greedy, instruction)
    if assessed is not None:
        scores["self-assessment"] = assessed
    return scores


def first_token_control(detection: Detection, refusal: np.ndarray, task: str) -> np.ndarray:
    """The first-token control of ``task``: logistic regression on log p(reply opens a refusal)
    (:func:`refusal_logprob`), fitted on the reference and training halves; class probabilities of the test
    items, (N_test, |C|)."""
    split = detection.splits[task]
    dev = np.concatenate([split.reference, split.training])
    fitted = fit_logistic(refusal[dev], detection.targets(task, dev))
    return fitted.predict_proba(refusal[split.test])


def ablation_shares(ablation: pd.DataFrame, k: int, chance: float = 0.5) -> pd.DataFrame:
    """Per model and split of a :func:`layer_ablation` table: accuracy with all layers, the last k and the first
    k, each share of the all-layer accuracy (raw and above ``chance``), and the gap last − first in points."""
    rows = []
    for (name, split), part in ablation.groupby(["model", "split"], sort=False):
        depth = int(part["depth"].iloc[0])
        at = part.set_index(["side", "k"])["accuracy"]
        full, last, first = at[("last", depth)], at[("last", min(k, depth))], at[("first", min(k, depth))]
        rows.append({
            "model": name, "split": split, "depth": depth, "all layers": full, f"last {k}": last, f"first {k}": first,
            "last / all": last / full, "first / all": first / full,
            "last / all, above chance": (last - chance) / (full - chance),
            "first / all, above chance": (first - chance) / (full - chance),
            "last − first": last - first,
        })  # fmt: skip
    columns = ["model", "split", "depth", "all layers", f"last {k}", f"first {k}", "last / all", "first / all"]
    columns += ["last / all, above chance", "first / all, above chance", "last − first"]
    return pd.DataFrame(rows, columns=columns).astype({c: float for c in columns[3:]})


def accuracy_estimate(hits: np.ndarray, groups: Sequence[str], *, seed: int, n_boot: int = 1000, key: str = ""):
    """``(Estimate, bootstrap samples)`` of an accuracy from 0/1 ``hits``: entity-bootstrap percentile interval.
    Two calls with the same ``groups`` and ``key`` draw the same resamples, so their samples pair up."""
    samples = accuracy_bootstrap({"hits": np.asarray(hits, float)}, groups, seed=seed, n_boot=n_boot, key=key)["hits"]
    return bootstrap_estimate(float(np.mean(hits)), samples), samples


def shuffled_label_aurocs(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, positive: np.ndarray, *, seed: int, n_perm: int
) -> np.ndarray:
    """AUROC for ``positive`` (class 0) of the logistic predictor refitted on ``n_perm`` random permutations of the
    training labels: the distribution of what the recipe reaches with no label information."""
    rng = make_rng(seed, "grad_detect", "shuffled labels")
    flat = x_test.reshape(len(x_test), -1)
    return np.array(
        [
            auroc(positive, fit_logistic(x_train, rng.permutation(y_train)).predict_proba(flat)[:, 0])
            for _ in range(n_perm)
        ]
    )


def permutation_difference(permuted: np.ndarray, baseline: float, confidence: float = 0.95):
    """Mean of ``permuted − baseline`` with the permutation distribution's central interval (an Estimate)."""
    from .claims import Estimate

    low, high = np.quantile(permuted - baseline, [(1 - confidence) / 2, (1 + confidence) / 2])
    return Estimate(float(np.mean(permuted) - baseline), float(low), float(high))


def auroc_difference(scores: dict, positive: np.ndarray, boot: dict, first: str, second: str):
    """AUROC of ``first`` minus AUROC of ``second`` on the same items, with the paired entity-bootstrap interval."""
    value = auroc(positive, scores[first]) - auroc(positive, scores[second])
    return bootstrap_estimate(value, boot[first] - boot[second])


# --------------------------------------------------------------------------------------------------------------
# The chapter's steps, one function each
# --------------------------------------------------------------------------------------------------------------


def symbolic_identities() -> dict[str, bool]:
    """Eqs. ``grad_detect-eq-outer`` and ``grad_detect-eq-norm`` checked with sympy on a 2×2 layer ``y_t = W a_t``
    over two positions and an arbitrary smooth loss: statement → whether it holds symbolically."""
    import sympy as sp

    W = sp.Matrix(2, 2, sp.symbols("w00 w01 w10 w11"))
    a = [sp.Matrix(sp.symbols(f"a{t}0 a{t}1")) for t in range(2)]
    outputs = [W * a_t for a_t in a]
    loss = sp.sin(outputs[0][0]) * outputs[1][1] + outputs[0][1] ** 2 * sp.exp(outputs[1][0])  # any smooth L(y_1, y_2)
    y = sp.symbols("y0:4")
    as_outputs = loss.subs(dict(zip([o for out in outputs for o in out], y, strict=True)), simultaneous=True)
    deltas = [sp.Matrix([sp.diff(as_outputs, y[2 * t + i]) for i in range(2)]) for t in range(2)]
    outer = sum((deltas[t] * a[t].T for t in range(2)), sp.zeros(2, 2))
    outer = outer.subs(dict(zip(y, [o for out in outputs for o in out], strict=True)))
    outer_holds = sp.simplify(sp.Matrix(2, 2, lambda i, j: sp.diff(loss, W[i, j])) - outer) == sp.zeros(2, 2)
    G, R = sum((deltas[t] * a[t].T for t in range(2)), sp.zeros(2, 2)), sp.Matrix(2, 2, sp.symbols("r0:4"))

    def dot(u, v):
        return (u.T * v)[0]

    inner_holds = sp.expand(sum(G[i] * R[i] for i in range(4)) - sum(dot(deltas[t], R * a[t]) for t in range(2))) == 0
    norm_holds = (
        sp.expand(
            sum(G[i] ** 2 for i in range(4))
            - sum(dot(deltas[t], deltas[s]) * dot(a[t], a[s]) for t in range(2) for s in range(2))
        )
        == 0
    )
    return {
        "d loss / dW equals the sum over positions of delta_t a_t^T": bool(outer_holds),
        "<G, R> = sum_t delta_t^T R a_t and |G|^2 = sum_ts (delta_t . delta_s)(a_t . a_s)": bool(
            inner_holds and norm_holds
        ),
    }


SHUFFLED = "Grad Detect, shuffled labels (control)"
RANDOM_REFS = "Grad Detect, random references (control)"
"""The names of the two controls of the correctness detector: shuffled training labels, random references."""


def train_predictors(
    detection: Detection,
    probes: tuple[str, str],
    *,
    seed: int,
    config=None,
    n_perm: int,
    progress: Callable = iter,
) -> tuple[pd.DataFrame, dict, dict, np.ndarray]:
    """Train the layer encoder and the logistic regression on every task's training half and test them: returns
    the accuracy table (and AUROC on correctness, class 0 being "correct"), the correctness scores per predictor
    (with :data:`RANDOM_REFS`, the logistic predictor on features against random references), the 0/1 hits per
    ``(task, predictor)``, and the AUROCs of the logistic predictor refitted on ``n_perm`` shuffled label sets."""
    from .grad_detect import predict_proba, train_predictor

    results, test_scores, test_hits, shuffled_aurocs = [], {}, {}, np.zeros(0)
    for task in progress(detection.tasks):
        x_train, y_train = detection.task_data(task, "training", probes)
        x_test, y_test = detection.task_data(task, "test", probes)
        encoder = train_predictor(x_train, y_train, seed=seed, config=config)
        logistic = fit_logistic(x_train, y_train)
        for name, proba in (
            ("Grad Detect (layer encoder)", predict_proba(encoder, x_test)),
            ("Grad Detect (logistic)", logistic.predict_proba(x_test.reshape(len(x_test), -1))),
        ):
            test_hits[(task, name)] = (proba.argmax(1) == y_test).astype(float)
            row = {"task": task, "predictor": name, "accuracy": test_hits[(task, name)].mean()}
            if task == "correctness":
                row["AUROC"] = auroc(y_test == 0, proba[:, 0])  # class 0 is "correct"
                test_scores[name] = proba[:, 0]
            results.append(row)
        if task == "correctness":  # the two controls: permuted labels, random references
            shuffled_aurocs = shuffled_label_aurocs(x_train, y_train, x_test, y_test == 0, seed=seed, n_perm=n_perm)
            x_random, _ = detection.task_data(task, "training", (probes[0], "random"))
            random_test, _ = detection.task_data(task, "test", (probes[0], "random"))
            test_scores[RANDOM_REFS] = fit_logistic(x_random, y_train).predict_proba(
                random_test.reshape(len(x_test), -1)
            )[:, 0]
    table = pd.DataFrame(results, columns=["task", "predictor", "accuracy", "AUROC"]).set_index(["task", "predictor"])
    return table, test_scores, test_hits, shuffled_aurocs


def check_gradient_paths(model, batch, *, seed: int, device) -> tuple[pd.DataFrame, torch.Tensor, float]:
    """Form the explicit gradients of ``batch`` twice (batched outer products, eq. ``grad_detect-eq-outer``, and
    ``torch.func`` ``vmap(grad)``), timing each per item, assert that they agree, and compare the cosines with
    random references computed from those gradients and from a and δ alone (eq. ``grad_detect-eq-norm``). Returns
    the timings (ms per item, wall and CPU), the random references and the largest cosine difference."""
    import time

    from .grad_detect import cosine_features, down_shape, layer_gradients, layer_gradients_vmap

    timing, grads = {}, {}
    for name, method in (("batched outer products", layer_gradients), ("torch.func vmap(grad)", layer_gradients_vmap)):
        t0, c0 = time.perf_counter(), time.process_time()
        grads[name] = method(model, batch)
        timing[name] = {
            "wall ms / item": 1e3 * (time.perf_counter() - t0) / len(batch.input_ids),
            "CPU ms / item": 1e3 * (time.process_time() - c0) / len(batch.input_ids),
        }
    reference_grads, vmap_grads = grads.values()
    assert torch.allclose(vmap_grads, reference_grads, atol=1e-5 * float(reference_grads.abs().max()))
    references = random_references(torch.empty(2, *down_shape(model)), seed=seed).to(device)
    explicit = cosine_features(reference_grads, references.flatten(2))  # from the formed gradients
    hooked = activation_cosines(probe_activations(model, batch), references)  # from a and δ alone
    return pd.DataFrame(timing).T, references, float((explicit - hooked).abs().max())


def model_layer_ablation(
    model,
    tokenizer,
    answers: Answers,
    *,
    detections: Sequence[Detection] = (),
    splits: int,
    seed: int,
    probes: tuple[str, str],
    probe: str,
    budget_bytes: float,
) -> tuple[int, list[dict]]:
    """The layer ablation (:func:`layer_ablation`) of one model on the correctness task over ``splits`` split seeds
    ``seed, seed + 1, …``: ``detections`` already computed are reused, the others computed with a batch planned for
    this model (their references freed once the features are in). Returns the model's depth and the rows."""
    from .grad_detect import down_projections, plan_batch

    depth = len(down_projections(model))
    batch = plan_batch(model, tokenizer, answers.prompts, probe, reference_classes=2, budget_bytes=budget_bytes)[0]
    detections = list(detections)
    for s in range(len(detections), splits):
        detections.append(
            detection_features(
                model,
                tokenizer,
                answers,
                seed=seed + s,
                tasks=("correctness",),
                item_probes=(probes[0],),
                reference_probes=(probes[1],),
                batch_size=batch,
            )
        )
        detections[-1].references.clear()  # only the features are needed from here on
    return depth, layer_ablation(detections, depth, probes=probes)


def plot_layer_ablation(ablation: pd.DataFrame, models: Sequence[str], matched_k: int):
    """Test accuracy of the correctness predictor on the last k and on the first k layers against k, one panel per
    model (mean over the split seeds of :func:`layer_ablation`'s rows), with k = ``matched_k`` and chance marked."""
    import matplotlib.pyplot as plt

    from .plotting import PALETTE

    mean_accuracy = ablation.groupby(["model", "side", "k"], sort=False)["accuracy"].mean().unstack("side")
    fig, axes = plt.subplots(1, len(models), figsize=(3.0 * len(models), 3.2), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], models, strict=True):
        if name in mean_accuracy.index.get_level_values("model"):
            frame = mean_accuracy.loc[name]
            ax.plot(frame.index, frame["last"], "o-", color=PALETTE[0], label="last k layers")
            ax.plot(frame.index, frame["first"], "s--", color=PALETTE[1], label="first k layers")
            ax.set_xticks(list(frame.index))
        ax.axvline(matched_k, color="grey", ls=":", lw=1)
        ax.axhline(0.5, color="grey", lw=0.8)
        ax.set_title(name[-30:], fontsize=9)
        ax.set_xlabel("k (layers kept)")
    axes[0, 0].set_ylabel("correctness accuracy (test)")
    if len(ablation):
        axes[0, 0].legend(loc="lower right")
    fig.suptitle("Layer ablation: last-k vs first-k layers of the gradient features", y=1.02)
    return fig


def task_accuracies(detection: Detection, test_hits: dict, control_hits: dict, *, seed: int, n_boot: int) -> dict:
    """``(task, predictor) → (Estimate, bootstrap samples)`` (:func:`accuracy_estimate`) of every predictor of
    :func:`train_predictors` and, as ``(task, "first token")``, of the first-token control; resamples of one task
    are shared, so differences pair up (:func:`paired_difference`)."""
    groups = {t: [detection.answers.groups[i] for i in detection.splits[t].test] for t in detection.tasks}
    hits = test_hits | {(t, "first token"): h for t, h in control_hits.items()}
    return {(t, n): accuracy_estimate(h, groups[t], seed=seed, n_boot=n_boot, key=t) for (t, n), h in hits.items()}


def paired_difference(first: tuple, second: tuple):
    """``first − second`` of two ``(Estimate, bootstrap samples)`` drawn on the same resamples, with its interval."""
    return bootstrap_estimate(first[0].value - second[0].value, first[1] - second[1])


def ours_or_why(runs: bool, text: str, why) -> str:
    """What a claim measured, or why it could not run (``why``: a reason, or the left-out tasks and theirs)."""
    why = "; ".join(f"{t}: {r}" for t, r in why.items()) if isinstance(why, dict) else why
    return text if runs else f"not run: {why}"
