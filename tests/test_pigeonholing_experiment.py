"""Fast tests of the pigeonholing chapter's runs: parameters, the drop and recovery arithmetic on hand-made cases, every
run on the zoo model at toy sizes (rows with their parts, determinism), the one-word rollouts against the model's
probabilities, the real-model path on a random non-zoo model (rows not testable, no crash) and the exercise checkers."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch

from llmtheory import grpo
from llmtheory import pigeonholing as ph
from llmtheory import pigeonholing_experiment as px
from llmtheory.claims import MEASURED, NOT_TESTABLE, PUBLISHED, Control, decide
from llmtheory.params import ParameterError, check_values

MODEL = "pigeon-chat-llama"


def test_parameters_accept_the_defaults_and_name_the_bad_one():
    assert check_values({"MODEL": MODEL, "SYNTHETIC_SHARE": 0.5}, ph.PARAMETERS)["SYNTHETIC_SHARE"] == 0.5
    with pytest.raises(ParameterError, match="SYNTHETIC_SHARE"):
        check_values({"SYNTHETIC_SHARE": 1.5}, ph.PARAMETERS)
    with pytest.raises(ParameterError, match="MODEL"):
        check_values({"MODEL": ""}, ph.PARAMETERS)


def _frame(clean, bad):
    rows = [{"task": "arithmetic", "context": c, "item": i, "correct": bool(v), "repeat": False}
            for c, values in (("clean", clean), ("bad", bad)) for i, v in enumerate(values)]  # fmt: skip
    return pd.DataFrame(rows)


def test_the_paired_drop_is_the_mean_difference_and_its_interval_covers_it():
    run = _frame([1, 1, 1, 1, 0, 1, 1, 1], [0, 1, 0, 1, 0, 0, 1, 1])
    drop = px.paired_difference(run, "clean", "bad", 0)
    assert drop.value == pytest.approx(3 / 8) and drop.low <= drop.value <= drop.high and drop.low > 0
    same = px.paired_difference(run, "clean", "clean", 0)
    assert same.value == same.low == same.high == 0


def _rlvr(base_clean, scores):
    """An RLVRRun from correctness lists: ``scores[(model, seed, context)]``, one task."""
    rows = [{"model": "base", "seed": 0, "task": "t", "context": "clean", "item": i, "correct": v}
            for i, v in enumerate(base_clean)]  # fmt: skip
    for (model, seed, context), values in scores.items():
        rows += [{"model": model, "seed": seed, "task": "t", "context": context, "item": i, "correct": v}
                 for i, v in enumerate(values)]  # fmt: skip
    return px.RLVRRun(px.Budget(1, 1), 0.5, [], pd.DataFrame(rows), 0.0)


def test_recovery_is_the_share_of_vanillas_remaining_drop_that_synthetic_errors_recover():
    n = 20
    base = [1] * n  # clean accuracy 1
    scores = {}
    for seed in (0, 1):
        scores[("vanilla", seed, "wrong suggestion")] = [1] * 4 + [0] * 16  # 0.2
        scores[("synthetic errors", seed, "wrong suggestion")] = [1] * 12 + [0] * 8  # 0.6
        scores[("vanilla", seed, "clean")] = [1] * n
        scores[("synthetic errors", seed, "clean")] = [1] * 19 + [0]
    run = _rlvr(base, scores)
    r = px.recovery(run, ["wrong suggestion"], 0, draws=200)
    assert r.value == pytest.approx((0.6 - 0.2) / (1 - 0.2)) and r.low <= r.value <= r.high
    assert px.regression(run, 0, 200).value == pytest.approx(-0.05)
    assert run.correct("vanilla", ["clean"]).shape == (2, n)


def _with_rewards(run, vanilla, synthetic):
    """``run`` with arms whose per-update rewards are ``vanilla`` / ``synthetic`` (lists per seed)."""
    arms = [px.ArmRun(arm, s, None, list(r)) for arm, rs in (("vanilla", vanilla), ("synthetic errors", synthetic))
            for s, r in enumerate(rs)]  # fmt: skip
    steps = len(vanilla[0])
    return px.RLVRRun(px.Budget(steps, 1), run.share, arms, run.scores, 0.0)


def test_the_rlvr_rows_are_gated_on_vanillas_reward_rising_and_compare_clean_accuracy_with_vanilla():
    n = 20
    scores = {}
    for seed in (0, 1):
        scores[("vanilla", seed, "wrong suggestion")] = [1] * 4 + [0] * 16
        scores[("synthetic errors", seed, "wrong suggestion")] = [1] * 12 + [0] * 8
        scores[("vanilla", seed, "clean")] = [1] * 18 + [0] * 2
        scores[("synthetic errors", seed, "clean")] = [1] * 17 + [0] * 3
    run = _rlvr([1] * n, scores)
    ramp = [[0.2 + 0.6 * t / 29 + 0.05 * ((t * 7 + s) % 3 - 1) for t in range(30)] for s in (0, 1)]
    flat = [[0.4 + 0.05 * ((t * 7 + s) % 3 - 1) for t in range(30)] for s in (0, 1)]
    trained, untrained = _with_rewards(run, ramp, flat), _with_rewards(run, flat, ramp)
    gain = px.reward_gain(trained, "vanilla", 0, draws=300)
    assert gain.low > 0 and gain.value == pytest.approx(
        np.mean(np.array(ramp)[:, -10:]) - np.mean(np.array(ramp)[:, :10])
    )
    assert px.rlvr_gate(trained, 0) == "" and "did not raise" in px.rlvr_gate(untrained, 0)
    assert px.regression(trained, 0, 200).value == pytest.approx(-0.05)  # synthetic minus vanilla, not the base
    for claim in (px.rlvr_claim, px.regression_claim):
        assert claim(trained, 0)["holds"] is not None and claim(trained, 0).get("testable", True)
        row = claim(untrained, 0)
        assert row["testable"] is False and "did not raise the training reward" in row["ours"]
        assert "control" not in row and row["can_fail_because"]
    assert "first 10 updates" in px.reward_text(trained, 0)
    assert px.reward_window(_with_rewards(run, [[0.1]], [[0.1]])) == 0
    assert "too few" in px.rlvr_gate(_with_rewards(run, [[0.1]], [[0.1]]), 0)


def test_a_single_step_passes_the_monotone_rule_with_k0_and_fails_it_on_k_1_to_5():
    n, step = 100, [70, 62, 62, 62, 62, 62]
    rows = [{"task": "t", "context": "clean" if k == 0 else f"{p} k={k}", "item": i, "correct": i < x}
            for p in ("wrong same", "correct same") for k, x in enumerate(step) for i in range(n)
            if not (k == 0 and p == "correct same")]  # fmt: skip
    run = pd.DataFrame(rows)
    assert list(px.series(run, "wrong same", 1)[0]) == [1, 2, 3, 4, 5]
    with_clean, without = px.monotone_claim(run), px.monotone_claim(run, first=1)
    assert "k = 0…5" in with_clean["ours"] and "k = 1…5" in without["ours"] and "after review" in without["rule"]
    assert bool(px.trend(run, "wrong same").holds) is (px.trend(run, "wrong same").p_value < 0.05)
    assert not without["holds"].holds
    with pytest.raises(ParameterError, match="first"):
        px.series(run, "wrong same", 2)


def test_the_collapse_rule_leaves_out_kinds_with_too_few_valid_answers_in_a_compared_cell():
    pools = {k: tuple(f"{k}{i}" for i in range(8)) for k in ph.OPEN_KINDS}
    collapse = {}
    for kind in ph.OPEN_KINDS:
        for condition in px.COLLAPSE_CONDITIONS:
            answers = [pools[kind][i % 8] for i in range(40)]
            if condition == "1 right example":
                answers = [pools[kind][0]] * 30 + answers[:10]
            if kind == ph.OPEN_KINDS[0] and condition == "1 other-kind turn":
                answers = ["elsewhere"] * 30 + answers[:10]
            collapse[(kind, condition)] = {"answers": answers, "examples": [()] * 40, "pool": pools[kind]}
    kinds, left_out = px.valid_kinds(collapse)
    assert kinds == list(ph.OPEN_KINDS[1:]) and "1 other-kind turn 25% valid" in left_out[ph.OPEN_KINDS[0]]
    row = px.collapse_claim(collapse, 0)
    assert row.get("testable", True) and ph.OPEN_KINDS[0] in row["ours"].split("left out")[1]
    for kind in ph.OPEN_KINDS[1:]:
        collapse[(kind, "clean")]["answers"] = ["nothing"] * 40
    assert px.collapse_claim(collapse, 0)["testable"] is False


@pytest.fixture(scope="module")
def subject():
    torch.set_num_threads(1)
    return px.load_subject(MODEL)


@pytest.fixture(scope="module")
def context(subject):
    return px.context_run(subject, 3, 0)


def test_every_context_asks_the_same_items_and_the_rows_have_their_parts(subject, context):
    assert len(context) == 3 * len(ph.TASKS) * len(px.CONDITIONS)
    per_context = context.groupby("context")["item"].count()
    assert (per_context == 3 * len(ph.TASKS)).all()
    assert not context[context["context"] == "clean"]["repeat"].any()  # nothing planted, nothing repeated
    table = px.context_table(context)
    assert "pooled" in table.columns and table.loc["clean", "repeats (pooled)"] == ""
    ks, x, n = px.series(context, "wrong same")
    assert list(ks) == list(px.KS) and (n == 3 * len(ph.TASKS)).all()
    for bad, good in (("wrong suggestion", "correct suggestion"), ("wrong same k=5", "correct same k=5")):
        row = px.drop_claim(context, 0, bad, good, "x")
        assert isinstance(row["control"], Control) and bad in row["rule"]
    assert "k = 0…5" in px.monotone_claim(context)["ours"]
    published = px.published_claims(context, 0)
    assert [decide(PUBLISHED, r["holds"]) for _, r in published] == ["check passed"] * 3
    plt.close(px.dose_figure(context))
    assert px.context_run(subject, 3, 0).equals(context)  # deterministic


def test_collapse_and_stance_runs_give_their_rows(subject):
    collapse = px.collapse_run(subject, 4, 0)
    assert set(collapse) == {(k, c) for k in ph.OPEN_KINDS for c in px.COLLAPSE_CONDITIONS}
    prompt, examples = px.collapse_prompt(subject.world, "city", "3 right examples", np.random.default_rng(0))
    assert len(set(examples)) == 3 and all(e in ph.open_pool(subject.world, "city") for e in examples)
    assert all(e in prompt for e in examples)
    prompt, examples = px.collapse_prompt(subject.world, "city", "3 other-kind turns", np.random.default_rng(0))
    assert examples == () and prompt.count("<assistant>") == 4 and "name a city" not in prompt.split("<eos>")[0]
    row = px.collapse_claim(collapse, 0)
    assert "bits" in row["ours"] and isinstance(row["control"], Control)
    assert len(px.collapse_table(collapse, 0)) == len(collapse)
    plt.close(px.collapse_figure(collapse, 0))
    stance = px.stance_run(subject)
    for source in ("user", "assistant"):
        row = px.stance_claim(stance, source)
        assert row["claim"] and isinstance(row["control"], Control)
    assert len(px.stance_table(stance)) == 4


def test_one_word_rollouts_sample_from_the_models_answer_distribution(subject):
    prompts = [subject.rollout_prompt(ph.clean(px.items_for(subject.world, "procedure", 1, 0)[0]).prompt)]
    rollouts = px.one_word_rollouts(subject.model, subject.tokenizer, prompts, 4000, 0)
    assert rollouts.completion_ids.shape == (4000, 1) and rollouts.num_groups == 1
    with torch.no_grad():
        logps = grpo.completion_log_probs(subject.model, rollouts.prompt_ids[:1], rollouts.prompt_mask[:1],
                                          rollouts.completion_ids[:1], rollouts.completion_mask[:1])  # fmt: skip
    share = float((rollouts.completion_ids[:, 0] == rollouts.completion_ids[0, 0]).float().mean())
    assert share == pytest.approx(float(logps.exp()), abs=0.04)  # the sampled share is the scored probability
    again = px.one_word_rollouts(subject.model, subject.tokenizer, prompts, 4000, 0)
    assert torch.equal(again.completion_ids, rollouts.completion_ids)


def test_a_tiny_rlvr_run_is_deterministic_and_gives_both_rows(subject):
    budget = px.Budget(steps=2, prompts=2, group=4)
    first = px.rlvr_run(subject, budget, 1, 0.5, 2, 0)
    second = px.rlvr_run(subject, budget, 1, 0.5, 2, 0)
    assert [a.arm for a in first.arms] == list(px.ARMS)
    assert [a.rewards for a in first.arms] == [a.rewards for a in second.arms]
    assert first.scores.equals(second.scores)
    assert set(first.scores["model"]) == {"base", *px.ARMS}
    assert "samples per arm" in px.rlvr_timing(first)
    for row in (px.rlvr_claim(first, 0), px.regression_claim(first, 0)):
        assert row.get("testable", True) is False or row["holds"] is not None
    assert not px.rlvr_claim(None, 0, "not run")["testable"]
    assert not px.regression_claim(None, 0, "not run")["testable"]
    assert len(px.rlvr_table(first, 0)) == 3
    plt.close(px.rlvr_figure(first, 0))


def test_the_arms_draw_the_same_questions_and_only_synthetic_plants_errors(subject):
    item = px.items_for(subject.world, "arithmetic", 1, 0)[0]
    rng = np.random.default_rng(0)
    assert all(px.training_probe(item, "vanilla", 1.0, subject.world, rng).scenario == "clean" for _ in range(20))
    probes = [px.training_probe(item, "synthetic errors", 1.0, subject.world, rng) for _ in range(40)]
    assert all(p.planted_wrong for p in probes)
    assert {p.scenario for p in probes} == {"wrong_suggestion", "wrong_turns"}
    with pytest.raises(ParameterError, match="arm"):
        px.rlvr_arm(subject, "other", 0, px.Budget(1, 1), 0.5, 0)


def test_exercise_checkers(capsys):
    z = ph.almost_monotone_decrease(**px.EXERCISE_SERIES).z
    assert px.check_trend_z(round(z, 2)) and not px.check_trend_z(0.0)
    assert px.check_advantages([1.5, -0.5, -0.5, -0.5]) and not px.check_advantages([1, 0, 0, 0])
    assert px.check_entropy(1.75) and not px.check_entropy(2.0)
    assert "not yet" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------------------
# The real-model path on a model that knows nothing


@pytest.fixture(scope="module")
def random_folder(tmp_path_factory):
    from random_models import save_random_causal_lm

    return save_random_causal_lm("gemma2", tmp_path_factory.mktemp("pigeon") / "model")


def test_a_random_real_model_answers_through_its_template_and_its_rows_are_not_testable(random_folder):
    torch.set_num_threads(1)
    real = px.load_subject(str(random_folder))
    assert not real.zoo and real.tokenizer.chat_template
    prompt = ph.clean(px.items_for(real.world, "arithmetic", 1, 0)[0]).prompt
    assert px.ONE_WORD.strip() in real.render(prompt)
    run = px.context_run(real, 2, 0)
    assert len(run) == 2 * len(ph.TASKS) * len(px.CONDITIONS)
    stance = px.stance_run(real)
    collapse = px.collapse_run(real, 2, 0)
    rows = [px.drop_claim(run, 0, "wrong suggestion", "correct suggestion", "x"), px.monotone_claim(run)]
    rows += [px.collapse_claim(collapse, 0), px.stance_claim(stance, "user"), px.rlvr_claim(None, 0, "not run")]
    assert all(decide(MEASURED, r["holds"] or False, testable=r.get("testable", True)) == NOT_TESTABLE for r in rows)
    assert "GiB" in px.memory_text(str(random_folder))


def test_an_unloadable_model_id_names_itself():
    from llmtheory.zoo import ZooError

    with pytest.raises((ZooError, OSError), match="no-such-owner/no-such-model"):
        px.load_subject("no-such-owner/no-such-model")


@pytest.mark.notebook
def test_the_chapter_runs_on_a_random_gemma2_folder(tmp_path, monkeypatch, one_torch_thread):
    from random_models import run_chapter_on_model, save_random_causal_lm

    folder = save_random_causal_lm("gemma2", tmp_path / "model")
    ledger = run_chapter_on_model("pigeonholing", folder, tmp_path, monkeypatch)
    verdicts = {c["id"]: c["verdict"] for c in ledger["claims"]}
    measured = [c["id"] for c in ledger["claims"] if c["kind"] == MEASURED]
    assert len(measured) >= 4 and all(verdicts[i] == NOT_TESTABLE for i in measured)
