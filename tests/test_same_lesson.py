"""Tests of the same_lesson chapter's measures: the proverb table, the agency coding scheme against hand-labelled
stories in four languages, the offline embeddings, the redistribution and convergence statistics against closed
forms and scipy, and the planted-shift test both ways (shift planted: similarity blind, agency test not; no shift:
neither reports one)."""

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from llmtheory import same_lesson as sl
from llmtheory.params import ParameterError
from llmtheory.paths import data_dir
from llmtheory.seeding import make_rng

# ---------------------------------------------------------------------------------------------------------
# The proverb table


def test_the_shipped_proverb_table_has_40_sets_in_the_four_coded_languages():
    table = sl.load_proverbs()
    assert table["set_id"].nunique() >= 40
    languages = table.groupby("set_id")["lang"].apply(set)
    assert all(set(sl.CODED_LANGUAGES) <= langs for langs in languages)
    assert (table.groupby("set_id")["lesson_id"].nunique() == 1).all()
    early = table[table["set_id"] == "early_bird"].set_index("lang")["proverb"]
    assert "worm" in early["en"] and "Gold" in early["de"]  # same lesson, different imagery
    assert set(sl.LESSONS) <= set(table["set_id"])


def _table(**changes) -> pd.DataFrame:
    rows = [{"set_id": "s", "lang": lang, "proverb": f"p {lang}", "gloss": "g", "lesson_id": "l", "lesson": "x",
             "source": "traditional"} for lang in ("en", "fr", "de", "es")]  # fmt: skip
    rows[0].update(changes)
    return pd.DataFrame(rows)


def test_validation_names_the_allowed_language_codes_and_other_problems():
    sl.validate_proverbs(_table())
    with pytest.raises(ParameterError, match="'en', 'fr', 'de', 'es', 'it', 'pt'"):
        sl.validate_proverbs(_table(lang="english"))
    with pytest.raises(ParameterError, match="fewer than 4 languages"):
        sl.validate_proverbs(_table().iloc[1:])
    with pytest.raises(ParameterError, match="more than one row"):
        sl.validate_proverbs(_table(lang="fr"))
    with pytest.raises(ParameterError, match="more than one lesson_id"):
        sl.validate_proverbs(_table(lesson_id="other"))
    with pytest.raises(ParameterError, match="empty proverb"):
        sl.validate_proverbs(_table(proverb=" "))
    with pytest.raises(ParameterError, match="lacks columns"):
        sl.validate_proverbs(_table().drop(columns="gloss"))
    with pytest.raises(ParameterError, match="'en', 'fr', 'de', 'es'"):
        sl.code_story("C'era una volta un re.", "it")


# ---------------------------------------------------------------------------------------------------------
# The coding scheme against hand-labelled stories (labels written by hand: what a reader would code)

HAND_LABELLED = [
    (story["lang"], story["text"], story["labels"])
    for story in json.loads((data_dir() / "proverbs" / "hand_labelled.json").read_text())["stories"]
]
"""data/proverbs/hand_labelled.json: (language, text, the codes a reader gives it); the chapter shows them."""


@pytest.mark.parametrize("lang,text,expected", HAND_LABELLED, ids=[f"{x[0]}-{k}" for k, x in enumerate(HAND_LABELLED)])
def test_the_coder_reproduces_the_hand_labels(lang, text, expected):
    code = sl.code_story(text, lang)
    got = {k: getattr(code, k) for k in expected if k != "n_characters"}
    got["n_characters"] = sl.structure_features(text, lang)["n_characters"]
    assert got == expected


def test_hand_labels_cover_every_language_role_and_resolution():
    assert {x[0] for x in HAND_LABELLED} == set(sl.CODED_LANGUAGES)
    assert {x[2]["role"] for x in HAND_LABELLED} == {"actor", "acted_upon", "mixed"}
    assert {x[2]["resolution"] for x in HAND_LABELLED} == set(sl.RESOLUTIONS) - {"open"}


def test_structure_features_count_dialogue_words():
    features = sl.structure_features(HAND_LABELLED[1][1], "en")
    assert features["has_dialogue"] and features["n_words"] == 38
    assert features["dialogue_ratio"] == pytest.approx(6 / 38)  # "Work while the sun is low"
    french = sl.structure_features(HAND_LABELLED[6][1], "fr")
    assert french["dialogue_ratio"] == pytest.approx(2 / 42) and french["n_sentences"] == 5
    assert not sl.structure_features(HAND_LABELLED[0][1], "en")["has_dialogue"]
    assert sl.code_story("The river was wide.", "en").role == "none"


# ---------------------------------------------------------------------------------------------------------
# The planted-shift corpus and its generator


@pytest.fixture(scope="module")
def corpora():
    stories = sl.planted_corpora(seed=0, n_per_cell=10, strength=0.5)
    return stories, {name: sl.code_corpus(s) for name, s in stories.items()}


def test_the_coder_recovers_the_generators_truth_in_every_language(corpora):
    stories, frames = corpora
    for name in stories:
        truth = pd.DataFrame([s.truth for s in stories[name]])
        for column in ("gender", "age", "social_role", "role", "resolution", "has_dialogue"):
            assert (frames[name][column].to_numpy() == truth[column].to_numpy()).all(), (name, column)
    assert set(frames["reference"]["lang"]) == set(sl.CODED_LANGUAGES)
    assert pd.DataFrame([s.truth for s in stories["reference"]])["passive"].any()


def test_generation_is_deterministic_and_streams_differ():
    a = sl.generate_corpus(sl.StoryPrior(), 3, "x", n_per_cell=2)
    assert [s.text for s in a] == [s.text for s in sl.generate_corpus(sl.StoryPrior(), 3, "x", n_per_cell=2)]
    assert [s.text for s in a] != [s.text for s in sl.generate_corpus(sl.StoryPrior(), 3, "y", n_per_cell=2)]


def test_shift_parameters_are_checked_and_zero_strength_is_the_prior():
    prior = sl.StoryPrior()
    same = sl.planted_shift(prior, 0.0)
    assert same.p_actor == prior.p_actor
    assert np.allclose([same.type_weights[t] * len(prior.type_weights) for t in prior.type_weights], 1.0)
    assert sl.planted_shift(prior, 1.0).p_actor == sl.SHIFT_TARGET.p_actor
    with pytest.raises(ParameterError, match="strength"):
        sl.planted_shift(prior, 1.5)
    with pytest.raises(ParameterError, match="type_weights key"):
        sl.StoryPrior(type_weights={"dragon": 1.0})
    with pytest.raises(ParameterError, match="p_actor"):
        sl.StoryPrior(p_actor=2)


def test_a_shift_keeps_similarity_but_the_agency_test_detects_it(corpora):
    _, frames = corpora
    result = sl.evaluate_pair(frames["reference"], frames["planted"], seed=0)
    assert result["similarity_says_preserved"], result["similarity"]
    assert abs(result["similarity"].drop.value) <= sl.SIMILARITY_MARGIN
    assert result["agency_says_shifted"]
    assert result["agency"].agency.p_value < 0.05


def test_without_a_shift_neither_evaluation_reports_one(corpora):
    _, frames = corpora
    result = sl.evaluate_pair(frames["reference"], frames["control"], seed=0)
    assert result["similarity_says_preserved"]
    assert not result["agency_says_shifted"]
    assert result["agency"].agency.p_value >= 0.05


def test_similarity_does_catch_a_corpus_whose_lesson_drifts(corpora):
    _, frames = corpora
    drifted = sl.code_corpus(sl.generate_corpus(sl.StoryPrior(), 0, "drift", n_per_cell=5, content_swap=0.6))
    result = sl.evaluate_pair(frames["reference"], drifted, seed=0)
    assert not result["similarity_says_preserved"]
    assert result["similarity"].drop.low > sl.SIMILARITY_MARGIN


def test_character_ngram_similarity_to_the_proverb_is_as_blind_to_the_shift(corpora):
    stories, frames = corpora
    stories = dict(stories, drift=sl.generate_corpus(sl.StoryPrior(), 0, "drift", n_per_cell=5, content_swap=0.6))
    frames = sl.add_char_cosine(dict(frames, drift=sl.code_corpus(stories["drift"])), stories, sl.load_proverbs(), 32)
    said = {
        name: sl.evaluate_pair(frames["reference"], frames[name], 0, 9, "char_cosine")["similarity_says_preserved"]
        for name in ("planted", "control", "drift")
    }
    assert said == {"planted": True, "control": True, "drift": False}


# ---------------------------------------------------------------------------------------------------------
# Embeddings


def test_the_concept_embedding_is_the_same_for_a_story_in_every_language():
    args = ("rome_day", "queen", "boy", "save", False, True, False, "learning")
    vectors = [sl.concept_vector(sl.write_story(args[0], lang, *args[1:]), lang) for lang in sl.CODED_LANGUAGES]
    assert all(np.array_equal(vectors[0], v) for v in vectors[1:])
    assert vectors[0].sum() == 5 + 3 + 1 + 1  # five content concepts; the queen three times, the boy once; one verb
    mine = sl.cosine(vectors[0], sl.lesson_vector("rome_day"))
    assert mine > 0.5 and all(sl.cosine(vectors[0], sl.lesson_vector(x)) == 0 for x in sl.LESSONS if x != "rome_day")


def test_char_ngram_embedding_is_deterministic_and_groups_stories_by_lesson():
    stories = sl.generate_corpus(sl.StoryPrior(), 1, "char", n_per_cell=4, langs=("en",))
    texts = [s.text for s in stories]
    embedding = sl.CharNgramEmbedding(16, seed=0).fit(texts)
    vectors = embedding.transform(texts)
    assert np.array_equal(vectors, sl.CharNgramEmbedding(16, seed=0).fit(texts).transform(texts))
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1)
    lessons = np.array([s.lesson for s in stories])
    similarity = vectors @ vectors.T
    same = lessons[:, None] == lessons[None, :]
    off_diagonal = ~np.eye(len(texts), dtype=bool)
    assert similarity[same & off_diagonal].mean() > similarity[~same].mean() + 0.1


# ---------------------------------------------------------------------------------------------------------
# Statistics


def test_jensen_shannon_against_its_definition_and_scipy():
    assert sl.jensen_shannon([1, 0], [1, 0]) == 0
    assert sl.jensen_shannon([1, 0], [0, 1]) == pytest.approx(1)
    p, q = np.array([1.0, 0.0]), np.array([0.5, 0.5])
    m = (p + q) / 2
    by_hand = 0.5 * np.log2(1 / m[0]) + 0.5 * (0.5 * np.log2(0.5 / m[0]) + 0.5 * np.log2(0.5 / m[1]))
    assert sl.jensen_shannon(p, q) == pytest.approx(by_hand) == pytest.approx(0.3112781, abs=1e-6)
    rng = np.random.default_rng(0)
    a, b = rng.random((5, 4)), rng.random((5, 4))
    rowwise = sl._rowwise_jsd(a, b)
    assert np.allclose(rowwise, [jensenshannon(x, y, base=2) ** 2 for x, y in zip(a, b, strict=True)])


def test_chi2_matches_scipy_and_handles_degenerate_tables():
    table = np.array([[30, 10, 0], [15, 25, 0]])
    chi2, dof, p = sl.chi2_test(table)
    reference = stats.chi2_contingency(table[:, :2], correction=False)
    assert (chi2, dof) == (pytest.approx(reference.statistic), 1) and p == pytest.approx(reference.pvalue)
    assert sl.chi2_test(np.array([[5, 0], [7, 0]])) == (0.0, 0, 1.0)
    assert sl.contingency(["a", "b", "a"], ["b"], ["a", "b"]).tolist() == [[2, 1], [0, 1]]
    with pytest.raises(ParameterError, match="not among the categories"):
        sl.distribution(["a", "z"], ["a", "b"])


def test_redistribution_test_rejects_a_shift_and_not_a_resample():
    rng = make_rng(0, "test")
    a = pd.DataFrame({"role": rng.choice(["actor", "acted_upon"], 300, p=[0.7, 0.3])})
    b = pd.DataFrame({"role": rng.choice(["actor", "acted_upon"], 300, p=[0.7, 0.3])})
    c = pd.DataFrame({"role": rng.choice(["actor", "acted_upon"], 300, p=[0.4, 0.6])})
    assert sl.redistribution_test(a, c, ["role"], make_rng(0, "p"), 199).p_value == pytest.approx(1 / 200)
    assert sl.redistribution_test(a, b, ["role"], make_rng(0, "p"), 199).p_value > 0.05
    observed = sl.redistribution_test(a, c, ["role"], make_rng(0, "p"), 9).observed
    shares = [sl.distribution(x["role"], ["actor", "acted_upon"]) for x in (a, c)]
    assert observed == pytest.approx(sl.jensen_shannon(*shares))


def test_cross_model_convergence_separates_agreeing_models_from_unrelated_ones():
    rng = make_rng(0, "convergence")
    base = rng.normal(size=(40, 8))
    agree = {"a": base + 0.3 * rng.normal(size=base.shape), "b": base + 0.3 * rng.normal(size=base.shape)}
    unrelated = {"a": rng.normal(size=(40, 8)), "b": rng.normal(size=(40, 8))}
    together = sl.cross_model_cosine(agree, rng)
    apart = sl.cross_model_cosine(unrelated, rng)
    assert together.same_item.low > 0.8 and abs(together.mismatched) < 0.3
    assert apart.same_item.low < 0.0 < apart.same_item.high or abs(apart.same_item.value) < 0.2
    assert sl.cross_model_cosine({"a": base, "b": base}, rng).same_item.value == pytest.approx(1)
    with pytest.raises(ParameterError, match="at least two models"):
        sl.cross_model_cosine({"a": base}, rng)


def test_rsa_spearman_with_a_mantel_null():
    rng = make_rng(0, "rsa")
    x = rng.normal(size=(12, 5))
    sim = x @ x.T
    noisy = sim + 0.5 * rng.normal(size=sim.shape)
    noisy = (noisy + noisy.T) / 2
    related = sl.rsa_spearman(sim, noisy, rng, 199)
    assert related.observed > 0.7 and related.p_value <= 0.01
    y = rng.normal(size=(12, 5))
    assert sl.rsa_spearman(sim, y @ y.T, rng, 199).p_value > 0.05
    with pytest.raises(ParameterError, match="square"):
        sl.rsa_spearman(sim, sim[:5, :5], rng)


def test_a_stratified_redistribution_test_sees_a_carry_over_that_pooling_cancels():
    # in language x the candidate's codes move towards "b", in language y towards "a": pooled, the shares are equal
    def frame(shares_x: float, shares_y: float, n: int = 200) -> pd.DataFrame:
        rows = [("x", "a" if i < shares_x * n else "b") for i in range(n)]
        rows += [("y", "a" if i < shares_y * n else "b") for i in range(n)]
        return pd.DataFrame(rows, columns=["lang", "code"])

    reference, candidate = frame(0.7, 0.3), frame(0.3, 0.7)
    pooled = sl.redistribution_test(reference, candidate, ["code"], make_rng(0, "t"), 199)
    stratified = sl.redistribution_test(reference, candidate, ["code"], make_rng(0, "t"), 199, strata="lang")
    assert pooled.p_value > 0.5 and stratified.p_value < 0.01
    again = sl.redistribution_test(reference, frame(0.7, 0.3), ["code"], make_rng(0, "t"), 199, strata="lang")
    assert again.p_value > 0.5  # the same shares in each language: nothing to see
    with pytest.raises(ParameterError, match="strata"):
        sl.redistribution_test(reference, candidate, ["code"], make_rng(0, "t"), 9, strata="no_such_column")
