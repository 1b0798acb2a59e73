"""Tests of the bechdel chapter's pipeline: the parsers and gender rules against the book's hand-labelled
screenplays, the Bechdel rules on small cases, the network measures against networkx and closed forms, the
generator against its own truth, and the language-model path on a model that knows nothing."""

import json

import networkx as nx
import numpy as np
import pandas as pd
import pytest

from llmtheory import bechdel as bd
from llmtheory import bechdel_experiment as bx
from llmtheory import bechdel_lm as lm
from llmtheory.params import ParameterError
from llmtheory.paths import data_dir
from llmtheory.seeding import make_rng

LABELS = json.loads((data_dir() / "bechdel" / "labels.json").read_text())
SCRIPTS = [name for name in LABELS if not name.startswith("_")]


@pytest.mark.parametrize("name", SCRIPTS)
def test_parser_recovers_the_hand_labelled_scenes_speakers_and_turns(name):
    label = LABELS[name]
    script = bd.parse((data_dir() / "bechdel" / name).read_text(), "auto")
    assert len(script.scenes) == label["scenes"]
    assert len(script.turns) == label["turns"]
    assert script.speakers == list(label["speakers"])  # in order of first speech, extensions stripped
    assert script.title.lower() == label["title"].lower()


@pytest.mark.parametrize("name", SCRIPTS)
def test_genders_and_bechdel_tests_match_the_hand_labels(name):
    label = LABELS[name]
    script = bd.parse((data_dir() / "bechdel" / name).read_text(), label["format"])
    calls = bd.infer_genders(script)
    assert bd.labels_of(calls) == label["speakers"]
    for speaker in label["gender_needs_text"]:  # decided by pronouns in the action lines, not by the name
        assert calls[speaker].source == "pronouns"
        assert bd.infer_genders(script, use_text=False)[speaker].label != label["speakers"][speaker]
    result = bd.bechdel(script, bd.labels_of(calls))
    assert [result.test1, result.test2, result.test3] == label["tests"]


def test_the_hand_labelled_scripts_cover_every_outcome_and_both_formats():
    outcomes = {tuple(LABELS[n]["tests"]) for n in SCRIPTS}
    assert {(True, True, True), (True, True, False), (True, False, False)} <= outcomes
    assert {LABELS[n]["format"] for n in SCRIPTS} == {"fountain", "plain"}


def test_cues_lose_their_extensions_and_markers():
    assert bd.normalise_cue("MAYA (V.O.) (CONT'D)") == "MAYA"
    assert bd.normalise_cue("@McCLANE") == "MCCLANE"
    assert bd.normalise_cue("DR. OKAFOR CONT'D ^") == "DR. OKAFOR"
    assert bd.is_cue("          ROSA (O.S.)") and not bd.is_cue("INT. HOUSE - DAY") and not bd.is_cue("CUT TO:")
    assert not bd.is_cue("Rosa waits.")


def test_plain_parser_drops_parentheticals_and_skips_transitions():
    text = "INT. A - DAY\n\nANA\n(quietly)\nHello\nthere.\n\nCUT TO:\n\nBEA (V.O.)\nHi.\n"
    script = bd.parse_plain(text)
    assert [(t.speaker, t.text) for t in script.turns] == [("ANA", "Hello there."), ("BEA", "Hi.")]
    assert script.actions == []


def test_unknown_format_is_a_parameter_error():
    with pytest.raises(ParameterError, match="fmt"):
        bd.parse("x", "pdf")


def test_name_rules_titles_and_guesser():
    assert bd.name_gender("MRS. BELL") == (bd.FEMALE, "title")
    assert bd.name_gender("UNCLE JOE")[0] == bd.MALE
    assert bd.name_gender("MAYA") == (bd.FEMALE, "female")
    assert bd.name_gender("CASEY") == (bd.UNKNOWN, "andy")
    assert bd.name_gender("GUARD #2")[0] == bd.UNKNOWN


def _script(*turns, actions=()):
    script = bd.Script(scenes=["INT. A", "INT. B"])
    script.turns = [bd.Turn(scene, speaker, text) for scene, speaker, text in turns]
    script.actions = list(actions)
    return script


def test_test_two_needs_adjacent_turns_of_two_women_in_one_scene():
    genders = {"ANA": "F", "BEA": "F", "CARL": "M"}
    apart = _script((0, "ANA", "Hi."), (0, "CARL", "Hi."), (0, "BEA", "Hi."))
    across_scenes = _script((0, "ANA", "Hi."), (1, "BEA", "Hi."))
    adjacent = _script((0, "ANA", "Hi."), (0, "BEA", "The boat."))
    assert bd.bechdel(apart, genders) == bd.BechdelResult(2, True, False, False)
    assert bd.bechdel(across_scenes, genders).test2 is False
    assert bd.bechdel(adjacent, genders).score == 3


def test_test_three_fails_on_a_male_word_or_a_male_characters_name():
    genders = {"ANA": "F", "BEA": "F", "CARL": "M"}
    base = [(0, "CARL", "Hello."), (0, "ANA", "Hi.")]
    by_name = _script(*base, (0, "BEA", "Where is Carl?"))
    by_word = _script(*base, (0, "BEA", "My husband left."))
    clean = _script(*base, (0, "BEA", "Where is the map?"))
    assert (bd.bechdel(by_name, genders).test3, bd.bechdel(by_word, genders).test3) == (False, False)
    assert bd.bechdel(clean, genders).test3


def test_pronouns_count_only_for_the_one_character_named():
    script = _script(
        (0, "SAGE", "Hi."),
        (0, "AVERY", "Hi."),
        actions=[(0, "Sage enters. She sits. Sage and Avery wait. He nods.")],
    )
    assert bd.pronoun_votes(script) == {"SAGE": (1, 0), "AVERY": (0, 0)}


def test_numpy_measures_agree_with_networkx():
    rng = np.random.default_rng(3)
    graph = nx.gnp_random_graph(9, 0.5, seed=3)
    nx.set_edge_attributes(graph, 1, "weight")
    genders = {n: ("F" if rng.random() < 0.5 else "M") for n in graph}
    nx.set_node_attributes(graph, genders, "g")
    arrays = bd.GraphArrays.of(graph, genders)
    ours = bd.assortativity(arrays, arrays.female, arrays.male)
    assert ours == pytest.approx(nx.attribute_assortativity_coefficient(graph, "g"))
    reference = nx.eigenvector_centrality_numpy(graph, weight="weight")
    expected = np.array([reference[n] for n in arrays.nodes])
    assert bd.eigenvector_centrality(arrays) == pytest.approx(expected / expected.sum(), abs=1e-8)
    triangles = sum(nx.triangles(graph).values()) // 3
    assert bd.triangle_composition(arrays, arrays.female).sum() == triangles


def test_permutation_null_of_the_female_female_share_matches_its_closed_form():
    # unweighted complete graph on n nodes, k women: E[share] = k(k-1) / (n(n-1)) under label permutation
    graph = nx.complete_graph(6)
    nx.set_edge_attributes(graph, 1, "weight")
    genders = {n: "F" if n < 2 else "M" for n in graph}
    arrays = bd.GraphArrays.of(graph, genders)
    female, _ = bd.permuted_labels(arrays, 4000, np.random.default_rng(0))
    assert female.sum(1).tolist() == [2] * 4000  # a permutation keeps the number of women
    null = bd.female_female_share(arrays, female)
    assert null.mean() == pytest.approx(2 * 1 / (6 * 5), abs=0.005)
    comparison = bd.permutation_null(float(bd.female_female_share(arrays, arrays.female)), null)
    assert 0 < comparison.p_value <= 1


def test_interaction_graph_counts_adjacent_turns_within_scenes_only():
    script = _script((0, "ANA", "a"), (0, "BEA", "b"), (0, "ANA", "c"), (1, "CARL", "d"), (1, "CARL", "e"))
    graph = bd.interaction_graph(script)
    assert graph["ANA"]["BEA"]["weight"] == 2 and graph.degree("CARL") == 0


def test_reply_graph_and_triad_census_count_who_answers_whom():
    script = _script(*[(0, s, "x") for s in ("ANA", "BEA", "CARL", "ANA", "CARL", "BEA", "ANA")])
    assert bd.triad_census(script)["census_300"] == 1 and sum(bd.triad_census(script).values()) == 1
    script = _script((0, "ANA", "a"), (0, "BEA", "b"), (0, "ANA", "c"), (1, "CARL", "d"), (1, "ANA", "e"))
    assert set(bd.reply_graph(script).edges) == {("ANA", "BEA"), ("BEA", "ANA"), ("CARL", "ANA")}
    census = bd.triad_census(script)
    assert census["census_111U"] + census["census_111D"] == 1 and sum(census.values()) == 1


def test_a_script_without_exchanges_is_measured_without_error():
    row = bd.measure_script(_script((0, "MAYA", "Hello.")), np.random.default_rng(0), 10)
    assert row["characters"] == 1 and np.isnan(row["ff_z"]) and row["census_300"] == 0


def test_generator_truth_is_recovered_by_the_pipeline_in_both_formats():
    for fmt in ("fountain", "plain"):
        corpus = bx.generate_corpus(bx.Planted(bechdel_rate=0.5, unisex_share=0.3), 25, 0, f"t-{fmt}", fmt)
        agreement = bx.pipeline_agreement(corpus, bx.parse_corpus(corpus))
        assert agreement == {"gender": 1.0, "test1": 1.0, "test2": 1.0, "test3": 1.0}
        # the planted pass/fail flag is the truth of test 3
        assert all(c.truth.test3 == c.planted_pass for c in corpus)
        calls = bx.test3_against_truth(corpus, bx.parse_corpus(corpus))
        assert (calls["test3"] == calls["truth"]).all()


def test_generator_is_deterministic_and_validates_its_parameters():
    a = bx.generate_corpus(bx.Planted(), 3, 7, "d")
    b = bx.generate_corpus(bx.Planted(), 3, 7, "d")
    assert [s.text for s in a] == [s.text for s in b]
    with pytest.raises(ParameterError, match="female_share"):
        bx.Planted(female_share=1.5)


def test_neutral_lines_never_mention_a_man_and_lines_about_a_man_always_do():
    rng = np.random.default_rng(0)
    for _ in range(200):
        assert not bd.mentions_a_man(bx._line(rng, False, ["Tom"]), {"tom"})
        assert bd.mentions_a_man(bx._line(rng, True, ["Tom"]), {"tom"})
        assert bd.mentions_a_man(bx._line(rng, True, []), set())


def test_corpus_tests_see_a_strong_planted_effect_and_not_its_absence():
    homophily = bx.statistics_pool(bx.Planted(homophily=3.0), 40, 0, "strong", 100)
    quiet_women = bx.statistics_pool(bx.Planted(female_activity=0.3), 40, 0, "quiet", 100)
    none = bx.statistics_pool(bx.Planted(homophily=0.0, female_activity=1.0), 40, 0, "none", 100)
    assert bx.corpus_test("homophily", homophily) < 0.01 < bx.corpus_test("homophily", none)
    assert bx.corpus_test("centrality", quiet_women) < 0.01 < bx.corpus_test("centrality", none)
    with pytest.raises(ParameterError, match="measure"):
        bx.corpus_test("vibes", none)


def test_words_round_trip_and_stay_in_the_vocabulary():
    text = bx.generate_script(make_rng(0, "w"), bx.Planted()).text
    words = lm.words_of(text)
    assert lm.text_of(words) == text
    assert set(words) <= set(lm.vocabulary())
    tokenizer = lm.build_tokenizer()
    assert tokenizer.unk_token_id not in tokenizer(" ".join(words))["input_ids"]


def test_comparison_calls_a_copy_reproduced_and_a_shifted_source_amplified():
    rng = make_rng(0, "cmp")
    base = bd.measure_corpus(bx.parse_corpus(bx.generate_corpus(bx.Planted(female_share=0.5), 60, 0, "c")), rng, 50)
    fewer = bd.measure_corpus(bx.parse_corpus(bx.generate_corpus(bx.Planted(female_share=0.2), 60, 1, "c")), rng, 50)
    columns = ("test3", "female_share", "degree_gap", "ff_excess", "women_mention_men")
    same = bx.compare_sources(base, base, 0, dict.fromkeys(columns, 0.3))  # 60 scripts: intervals of about ±0.2
    assert (same["call"] == "keeps").all() and all(d.value == 0 for d in same["difference"])
    assert (bx.compare_sources(base, base, 0, dict.fromkeys(columns, 0.01))["call"] == "undecided").all()
    shifted = bx.compare_sources(base, fewer, 0, dict.fromkeys(columns, 0.1))
    assert shifted.loc["share of women among characters", "call"] == "amplifies"


def test_pass_rate_claim_fails_its_control_and_triangle_table_divides_by_the_null():
    from llmtheory import bechdel_claims as bc
    from llmtheory.claims import decide

    def calls(passes, true_passes, n):
        return pd.DataFrame({"test3": [True] * passes + [False] * (n - passes),
                             "truth": [True] * true_passes + [False] * (n - true_passes)})  # fmt: skip

    row = bc.pass_rate_claim(calls(180, 180, 300), calls(40, 180, 300))
    assert decide("measured", row["holds"], control=row["control"]) == "reproduced"
    assert not row["control"].holds
    row = bc.pass_rate_claim(calls(120, 180, 300), calls(40, 180, 300))  # a pipeline that misses a third of passes
    assert decide("measured", row["holds"], control=row["control"]) == "not reproduced"
    tri = pd.DataFrame({f"tri_{k}": [2.0] for k in ("MMM", "FMM", "FFM", "FFF")})
    tri = tri.assign(**{f"tri_{k}_null": [1.0] for k in ("MMM", "FMM", "FFM", "FFF")})
    assert (bc.triangle_table({"s": tri})["s"] == 2.0).all()


def test_the_zoo_screenplay_model_writes_scripts_the_pipeline_can_measure(one_torch_thread):
    from llmtheory import zoo

    model, tokenizer = zoo.load("screenplay-gpt2")
    assert lm.is_screenplay_tokenizer(tokenizer)
    texts = lm.sample_scripts(model, tokenizer, 4, seed=0)
    assert texts == lm.sample_scripts(model, tokenizer, 4, seed=0)  # seeded
    assert len(lm.testable_scripts(texts)) >= 3


def test_descriptors_in_a_cue_do_not_decide_gender_and_men_are_named_by_their_first_name():
    assert bd.name_gender("YOUNG TOM") == (bd.MALE, "male")
    assert bd.name_gender("DR. SARAH")[0] == bd.FEMALE and bd.name_gender("OFFICER MIKE")[0] == bd.MALE
    assert bd.first_name("YOUNG TOM") == "tom" and bd.first_name("MRS. BELL") == "bell"
    genders = {"ANA": "F", "BEA": "F", "YOUNG TOM": "M"}
    script = _script((0, "YOUNG TOM", "Hello."), (0, "ANA", "Hi."), (0, "BEA", "Where is Tom?"))
    assert not bd.bechdel(script, genders).test3  # the man is named by his first name, not by "young"


def test_who_talks_about_whom_counts_any_male_first_name_test_three_only_speakers():
    genders = {"ANA": "F", "BEA": "F"}
    script = _script((0, "ANA", "Hi."), (0, "BEA", "Did Hugo call?"))
    assert bd.bechdel(script, genders).test3  # Hugo does not speak: test 3 as bechdelscript
    assert bd.women_male_reference_share(script, genders) == 0.5
    assert bd.male_names_in("Ask Tom. Maya left. The Boat sank.") == {"tom"}


def test_strength_null_keeps_talk_volume_closed_form_and_draws():
    # a star: one woman (hub, strength 3) and three men; no F-F pair is possible, so q = 0
    graph = nx.star_graph(3)
    nx.set_edge_attributes(graph, 1, "weight")
    star = bd.GraphArrays.of(graph, {n: "F" if n == 0 else "M" for n in graph})
    assert bd.strength_null_share(star, star.female) == 0
    # a triangle with weights 2, 1, 1: volumes 3, 3, 2 fix every weight, so the pair of women keeps 1/2 of the
    # exchanges; the plain product s_a s_b would give them 9 / 21
    graph = nx.Graph()
    graph.add_weighted_edges_from([("a", "b", 2), ("a", "c", 1), ("b", "c", 1)])
    arrays = bd.GraphArrays.of(graph, {"a": "F", "b": "F", "c": "M"})
    assert bd.strength_null_share(arrays, arrays.female) == pytest.approx(0.5)
    draws = bd.strength_null_draws(arrays, 20_000, np.random.default_rng(0))
    assert draws.max() <= 4 and draws.mean() == pytest.approx(2, abs=0.03)


@pytest.mark.parametrize("seed", range(20))
def test_volume_fitness_gives_every_character_its_observed_volume(seed):
    rng = np.random.default_rng(seed)
    graph = nx.gnm_random_graph(int(rng.integers(3, 9)), int(rng.integers(2, 14)), seed=seed)
    graph.remove_nodes_from([n for n in list(graph) if graph.degree(n) == 0])
    nx.set_edge_attributes(graph, {e: int(rng.integers(1, 6)) for e in graph.edges}, "weight")
    s = bd.strengths(bd.GraphArrays.of(graph, {}))
    x = bd.volume_fitness(s)
    expected = x * (x.sum() - x)
    if s.max() < s.sum() / 2 - 1e-9:  # not a star: the volumes are met exactly
        assert expected / expected.sum() == pytest.approx(s / s.sum(), abs=1e-9)
    assert x.sum() == pytest.approx(1) and (x >= 0).all()


@pytest.mark.parametrize("activity", [2.0, 0.5])
def test_talk_volume_null_is_unbiased_without_homophily(activity):
    # women who talk more (or less) than men, no preference for same-gender partners: the observed F-F weight
    # minus its talk-volume expectation q·total averages zero over scripts (within 3 standard errors)
    corpus = bx.generate_corpus(bx.Planted(female_activity=activity, homophily=0.0), 600, 0, f"unbiased-{activity}",
                                fmt="plain")  # fmt: skip
    excess = []
    for script in bx.parse_corpus(corpus):
        arrays = bd.GraphArrays.of(bd.interaction_graph(script), bd.labels_of(bd.infer_genders(script)))
        total = arrays.weight.sum()
        if total:
            observed = bd.female_female_share(arrays, arrays.female)
            excess.append((observed - bd.strength_null_share(arrays, arrays.female)) * total)
    excess = np.array(excess)
    assert abs(excess.mean()) < 3 * excess.std(ddof=1) / np.sqrt(len(excess))


def test_talk_volume_null_rejects_less_than_the_label_shuffle_on_women_who_talk_more():
    active = bx.statistics_pool(bx.Planted(female_activity=2.0), 60, 0, "active-test", 100)
    shuffle, kept = bx.homophily_test(active, "ff_null"), bx.homophily_test(active, "ff_strength_null")
    assert kept.null_mean > shuffle.null_mean  # the null absorbs part of the women's extra talk
    assert kept.p_value > shuffle.p_value


def test_disagreement_rate_and_claims_rows_decide_as_documented():
    from llmtheory import bechdel_claims as bc
    from llmtheory.claims import Estimate, decide

    same = bc.disagreement_rate(bx.Planted(), bx.Planted(), 10, 2, 0, ("t", "t again"))
    assert 0 <= same.value <= 1 and same.low <= same.value <= same.high
    row = bc.disagreement_claim(Estimate.proportion(20, 20), Estimate.proportion(0, 20),
                                Estimate.proportion(5, 20), 150, 20)  # fmt: skip
    assert decide("measured", row["holds"], control=row["control"]) == "reproduced"
    row = bc.disagreement_claim(Estimate.proportion(10, 20), Estimate.proportion(0, 20),
                                Estimate.proportion(5, 20), 150, 20)  # fmt: skip
    assert decide("measured", row["holds"], control=row["control"]) == "not reproduced"


def test_keep_rows_need_a_fresh_sample_inside_and_a_hub_model_is_not_testable():
    from llmtheory import bechdel_claims as bc

    rng = make_rng(0, "keep")

    def measured(planted, name):
        return bd.measure_corpus(bx.parse_corpus(bx.generate_corpus(planted, 60, 0, name)), rng, 20)

    corpus, fresh, parity = measured(lm.HUMAN, "h"), measured(lm.HUMAN, "f"), measured(bx.NO_EFFECT, "p")
    bands = bc.keep_bands(corpus, measured(bx.NO_EFFECT, "b"))
    assert set(bands) == set(bc.LM_MEASURES) and all(b > 0 for b in bands.values())
    comparisons = {k: bx.compare_sources(corpus, t, 0, bands) for k, t in
                   {"fresh": fresh, "parity": parity, "lm": fresh}.items()}  # fmt: skip
    rows = dict(bc.lm_keep_claims(comparisons, 60, 60, True, ""))
    assert set(rows) == {f"lm-keeps-{s}" for s in bc.LM_MEASURES.values()}
    for row in rows.values():  # the "model" is a fresh sample: kept wherever the row is testable
        if row["testable"]:
            assert row["holds"].holds
    hub = dict(bc.lm_keep_claims(comparisons, 60, 60, False, "hub model"))
    assert all(r["testable"] is False and r["ours"].startswith("hub model") for r in hub.values())


def test_scripts_vs_model_is_testable_only_with_both_sources():
    from llmtheory import bechdel_claims as bc

    rng = make_rng(0, "svm")
    own = bd.measure_corpus(bx.parse_corpus(bx.generate_corpus(bx.Planted(bechdel_rate=0.9), 20, 0, "o")), rng, 10)
    model = bd.measure_corpus(bx.parse_corpus(bx.generate_corpus(bx.Planted(bechdel_rate=0.1), 20, 0, "m")), rng, 10)
    assert bc.scripts_vs_model_claim(None, model, "m")["testable"] is False
    row = bc.scripts_vs_model_claim(own, model, "m")
    assert "testable" not in row and row["holds"] is True
    assert bc.scripts_vs_model_claim(model, own, "m")["holds"] is False


def test_a_p_value_at_the_permutation_floor_says_so():
    floor = bd.permutation_null(5.0, np.zeros(200))
    assert floor.p_value == 1 / 201 and floor.p_text == "p ≤ 0.005 (the floor with 200 draws)"
    assert bd.permutation_null(0.0, np.zeros(200)).p_text == "p = 1.000"


@pytest.mark.parametrize("code", bd.TRIADS)
def test_each_triad_shape_is_of_its_type(code):
    graph = nx.DiGraph(list(bd.TRIAD_SHAPES[code][0]))
    census = nx.triadic_census(graph)
    assert census[code] == 1 and sum(census.values()) == 1
    assert bd.triad_meaning(code) and bd.triad_meaning("not measured") == "not measured"
