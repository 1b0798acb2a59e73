"""Fast tests of the same_lesson chapter's runs: parameters, the proverb and hand-label tables, the planted-shift
run and its ledger row both ways, the power curve, the PUBLISHED arithmetic and the exercise checkers."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

from llmtheory import same_lesson as sl
from llmtheory import same_lesson_experiment as sx
from llmtheory.claims import MEASURED, NOT_TESTABLE, PUBLISHED, Estimate, Test, decide
from llmtheory.params import ParameterError, check_values
from llmtheory.seeding import make_rng


def test_parameters_accept_the_offline_embeddings_and_hub_ids_and_name_the_choices():
    values = {"N_PER_CELL": 10, "STRENGTH": 0.5, "EMBEDDING": "char"}
    assert check_values(values, sl.PARAMETERS)["STRENGTH"] == 0.5
    assert check_values({"EMBEDDING": "sentence-transformers/LaBSE"}, sl.PARAMETERS)
    with pytest.raises(ParameterError, match="EMBEDDING='labse'.*'concepts', 'char'"):
        check_values({"EMBEDDING": "labse"}, sl.PARAMETERS)
    with pytest.raises(ParameterError, match="STRENGTH"):
        check_values({"STRENGTH": 1.5}, sl.PARAMETERS)
    assert sx.similarity_column("concepts") == "cosine" and sx.similarity_column("a/b") == "hub_cosine"


def test_an_unloadable_hub_embedding_is_a_parameter_error_naming_embedding(tmp_path):
    with pytest.raises(ParameterError, match="EMBEDDING="):
        sx.hub_cosine({}, {}, sl.load_proverbs(), str(tmp_path / "no-such-model"))


def test_proverb_tables_and_the_hand_labelled_stories():
    proverbs = sl.load_proverbs()
    counts = sx.language_counts(proverbs)
    assert (
        counts.loc["en", "sets"] == proverbs["set_id"].nunique() and counts.loc["en", "coded (lexicon and templates)"]
    )
    assert not counts.loc["it", "coded (lexicon and templates)"]
    imagery = sx.imagery_table(proverbs)
    assert "worm" in imagery.loc[("rising early brings success", "en"), "proverb"]
    assert "gold" in imagery.loc[("rising early brings success", "de"), "literal gloss"]
    assert list(imagery.index.get_level_values("lang")[:4]) == list(sl.CODED_LANGUAGES)
    table = sx.hand_labelled_table(sx.load_hand_labelled())
    assert len(table) >= 13 and (table["differs from the reader"] == "").all()
    wrong = [dict(lang="en", text="The old man scolded his son. He helped the king.", labels=dict(
        protagonist="man", gender="M", age="elder", social_role="none", role="actor", resolution="open",
        n_characters=3))]  # fmt: skip
    assert sx.hand_labelled_table(wrong)["differs from the reader"].iloc[0] != ""


@pytest.fixture(scope="module")
def run():
    return sx.planted_run(0, 4, 0.6, 199, sl.load_proverbs(), "concepts")


def test_the_planted_run_evaluates_both_similarities_and_the_row_tells_planted_from_control(run):
    assert run.columns == ["cosine", "char_cosine"]
    verdicts = run.verdicts()
    assert list(verdicts.index) == ["planted", "control", "drift"]
    assert not verdicts.loc["drift", "cosine says preserved"] and verdicts.loc["planted", "cosine says preserved"]
    assert verdicts.loc["planted", "agency/structure say shifted"]
    assert not verdicts.loc["control", "agency/structure say shifted"]
    row = sx.similarity_misses_claim(run)
    assert decide(MEASURED, row["holds"], control=row["control"]) == "reproduced"
    assert "char_cosine drop" in row["ours"] and not row["control"].holds
    drift = sx.similarity_sees_drift_claim(run)
    assert decide(MEASURED, drift["holds"], control=drift["control"]) == "reproduced"
    shares = sx.share_table({c: run.frames[c] for c in sx.CORPORA})
    assert set(shares["corpus"]) == set(sx.CORPORA) and len(shares) == len(sx.CORPORA) * len(sx.SHARES)
    plt.close(sx.central_figure(run))


def test_carry_over_recovers_a_planted_mix():
    rng = make_rng(0, "test")
    home = sl.code_corpus(sl.generate_corpus(sl.StoryPrior(), 0, "b", 10))
    source = sl.code_corpus(sl.generate_corpus(sl.SHIFT_TARGET, 0, "a", 10))
    mixed = sl.code_corpus(sl.generate_corpus(sl.mix_priors(sl.StoryPrior(), sl.SHIFT_TARGET, 0.5), 0, "m", 10))
    for cross, target in ((home, 0.0), (source, 1.0), (mixed, 0.5)):
        estimate = sx.carry_over(cross, home, source, rng, 200)
        assert estimate.low - 0.15 <= target <= estimate.high + 0.15
    assert sx.carry_over(home.iloc[:0], home, source, rng) is None


def test_preserved_is_decided_only_when_the_interval_is_on_one_side_of_the_margin():
    assert sx.preserved_test(Estimate(0.01, -0.01, 0.03)) == Test(True, True)
    assert sx.preserved_test(Estimate(0.08, 0.06, 0.1)) == Test(False, True)
    assert sx.preserved_test(Estimate(0.04, 0.02, 0.07)) == Test(False, False)


def test_the_power_curve_counts_detections_per_strength():
    power = sx.power_curve([0.0, 0.6], 2, 3, 99, 0)
    assert len(power) == 4 and set(power["strength"]) == {0.0, 0.6}
    summary = sx.power_summary(power)
    assert summary.loc[0.6, "agency_says_shifted"].value >= summary.loc[0.0, "agency_says_shifted"].value
    assert sx.smallest_detected(power.assign(agency_says_shifted=[False, False, True, True])) == 0.6
    assert sx.smallest_detected(power.assign(agency_says_shifted=False)) is None
    plt.close(sx.power_figure(power))


def test_the_published_arithmetic_and_the_exercise_checkers(capsys):
    row = sx.published_arithmetic_claim()
    assert decide(PUBLISHED, row["holds"]) == "check passed"
    assert sx.narratives_per_proverb() == pytest.approx(13_000 / 1656)
    assert sx.check_story_code("baker", "acted_upon", "reconciliation")
    assert not sx.check_story_code("boy", "actor", "reconciliation")
    p, q = sx.EXERCISE_ROLES["p"], sx.EXERCISE_ROLES["q"]
    assert sx.check_jsd(sl.jensen_shannon(p, q)) and not sx.check_jsd(0.5)
    assert "not yet" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------------------
# Story models: the rows on what a model writes, and the real-model path on a model that knows nothing


@pytest.fixture(scope="module")
def story_samples():
    """story-gpt2 sampled on two seeds (standing in for two models) and a third (the control), 2 lessons, 1 story
    per item: enough to run every function, not to decide anything."""
    proverbs = sl.load_proverbs()
    drawn = [sx.sample_model("story-gpt2", 1, seed, proverbs, sl.LESSONS[:2]) for seed in (0, 1, 2)]
    for sample, name in zip(drawn, ("a", "b", "control"), strict=True):
        sample.name = name
    return drawn


def test_a_story_model_gives_every_sample_and_the_rows_their_parts(story_samples, one_torch_thread):
    a, b, control = story_samples
    assert set(a.frames) == set(sx.SAMPLES) and a.story_model
    assert len(a.stories["cross"]) == 2 * 4  # 2 lessons × 4 held-out pairs
    assert all(s.lesson in sl.LESSONS[:2] for s in a.stories["mismatched"])  # scored against the intended lesson
    assert a.frames["mismatched"]["cosine"].mean() < a.frames["mono"]["cosine"].mean()
    q1 = sx.preservation_claim([a, b], 0)
    assert q1["testable"] and "char_cosine drop" in q1["control"].ours
    q2 = sx.redistribution_claim([a, b], 0, 19)
    assert "agency" in q2["ours"] and isinstance(q2["testable"], bool)
    row, numbers = sx.convergence_claim([a, b], control, 0, 19)
    profiles, conditions = sx.code_profiles([a, b])
    assert len(conditions) == 8 and profiles["a"].shape[0] == 8 and conditions[0][0] == conditions[0][1]
    assert list(numbers["rsa"].index) == ["a · b", "control · a", "control · b"]
    cultures = sx.culture_table([a, b], 0)
    assert list(cultures.columns) == ["stories", "λ (95%)"] and len(cultures) == 4
    assert "held-out pairs" in sx.culture_reading(cultures)
    assert sx.writes_table([a, b]).shape[0] == 2
    plt.close(sx.model_similarity_figure([a, b]))


def test_an_unloadable_model_id_names_itself():
    from llmtheory.zoo import ZooError

    with pytest.raises(ZooError, match="no-such-owner/no-such-model"):
        sx.sample_model("no-such-owner/no-such-model", 1, 0, sl.load_proverbs(), sl.LESSONS[:1])


@pytest.mark.notebook
def test_the_chapter_runs_on_a_random_gemma2_folder(tmp_path, monkeypatch, one_torch_thread):
    from random_models import run_chapter_on_model, save_random_causal_lm

    folder = save_random_causal_lm("gemma2", tmp_path / "model")
    ledger = run_chapter_on_model("same_lesson", folder, tmp_path, monkeypatch, MODELS=[str(folder)])
    verdicts = {c["id"]: c["verdict"] for c in ledger["claims"]}
    model_rows = ("cross-lingual-preserves-lesson", "cross-lingual-redistributes", "models-converge")
    assert all(verdicts[row] == NOT_TESTABLE for row in model_rows)
    assert verdicts["similarity-misses-redistribution"] != NOT_TESTABLE


def test_every_model_and_sample_samples_from_its_own_seed():
    seeds = {(name, sample): sx.sample_seed(0, name, sample) for name in ("story-gpt2", "story-llama")
             for sample in sx.SAMPLES}  # fmt: skip
    assert len(set(seeds.values())) == len(seeds)
    assert sx.sample_seed(0, "story-gpt2", "mono") == seeds[("story-gpt2", "mono")]  # deterministic
    assert sx.sample_seed(0, "/some/path/story-gpt2", "mono") == seeds[("story-gpt2", "mono")]  # a folder: its name
