"""Tests of the pigeonholing library: the items are right, the bad-context builders plant what they claim where they
claim it, the measures agree with hand-computed cases, and the dose–response rule tells monotone from flat and
from non-monotone series."""

import numpy as np
import pytest

from llmtheory import pigeonholing as ph
from llmtheory import toyworld as tw
from llmtheory.params import ParameterError
from llmtheory.seeding import make_rng


@pytest.fixture(scope="module")
def world():
    return tw.make_world(0)


def test_every_task_item_has_the_right_answer_and_wrong_answers_of_its_type(world):
    rng = make_rng(0, "test")
    for _ in range(50):
        item = ph.arithmetic_item(rng)
        a, b = (int(w) for w in item.question.split()[2:5:2])
        assert item.answer == str(a + b) and item.answer not in item.wrong and len(item.wrong) == 38
        item = ph.procedure_item(rng)
        digits = [int(d) for d in item.question.split()[2:]]
        assert item.question.startswith("sum :") and item.answer == str(sum(digits) % 10)
        assert set(item.wrong) | {item.answer} == {str(d) for d in range(10)}
        item = ph.fact_item(world, rng)
        fact = next(f for f in world.facts if f.entity in item.question.split() and f.answer == item.answer)
        assert item.wrong and fact.answer not in item.wrong
        assert set(item.wrong) <= set(world.answer_pool(fact.relation))
        assert item.question != fact.question(tw.HELDOUT_QUESTION)


def test_a_wrong_suggestion_is_wrong_and_a_correct_one_is_the_answer_both_in_the_user_turn(world):
    rng = make_rng(1, "test")
    for task in ph.TASKS:
        for _ in range(20):
            item = ph.task_item(task, world, rng)
            wrong = ph.user_suggestion(item, rng)
            assert wrong.planted_wrong == wrong.planted and wrong.planted[0] != item.answer
            assert wrong.prompt == f"<user> {item.question} i think it is {wrong.planted[0]} . <assistant>"
            right = ph.user_suggestion(item, rng, correct=True)
            assert right.planted == (item.answer,) and right.planted_wrong == ()


def test_k_earlier_turns_hold_k_wrong_assistant_answers_and_end_with_the_question(world):
    rng = make_rng(2, "test")
    item = ph.arithmetic_item(rng)
    others = [ph.arithmetic_item(rng) for _ in range(5)]
    others = [o for o in others if o.question != item.question]
    assert ph.earlier_turns(item, 0, rng) == ph.clean(item)
    for k in range(1, len(others) + 1):
        same = ph.earlier_turns(item, k, rng, variant="same")
        assert same.prompt.count("<assistant>") == k + 1 and same.prompt.count(item.question) == k + 1
        assert same.prompt.count(f"Sure , {same.planted[0]} . <eos>") == k and same.planted[0] != item.answer
        assert same.prompt.endswith(f"<user> {item.question} <assistant>")
        other = ph.earlier_turns(item, k, rng, variant="other", others=others)
        assert other.prompt.count(item.question) == 1 and len(other.planted) == k
        for said, o in zip(other.planted, others, strict=False):
            assert (
                said != o.answer
                and said != item.answer
                and f"<user> {o.question} <assistant> Sure , {said} ." in other.prompt
            )
        control = ph.earlier_turns(item, k, rng, variant="same", correct=True)
        assert control.planted == (item.answer,) and control.scenario == "correct_turns"


def test_every_scenario_builds_and_the_clean_prompt_is_the_chat_format(world):
    rng = make_rng(3, "test")
    item = ph.procedure_item(rng)
    assert ph.clean(item).prompt == tw.chat([("user", item.question)], add_generation_prompt=True)
    for scenario in ph.SCENARIOS:
        probe = ph.build_probe(item, scenario, rng, k=2, variant="same")
        assert probe.scenario == scenario and probe.prompt.endswith("<assistant>")
    tokenizer = tw.build_tokenizer(world)
    for task in ph.TASKS:  # every word of every prompt is in the toy vocabulary
        probe = ph.earlier_turns(ph.task_item(task, world, rng), 3, rng)
        assert tokenizer.unk_token_id not in tokenizer(probe.prompt)["input_ids"]


def test_open_and_stance_prompts_use_known_words_and_plant_the_example_or_claim(world):
    tokenizer = tw.build_tokenizer(world)
    pool = ph.open_pool(world, "language")
    prompt = ph.open_prompt("language", (pool[0], pool[0]))
    assert prompt.count(f"Sure , {pool[0]} .") == 2 and prompt.endswith("<user> name a language . <assistant>")
    assert ph.open_prompt("city", ("x",), suggested=True).startswith("<user> name a city . i think it is x .")
    topics = ph.stance_topics(world)
    assert len(set(topics)) == 64
    for topic in topics[:10]:
        for claim in ph.STANCE_WORDS:
            for source in ("user", "assistant"):
                text = ph.stance_prompt(topic, claim, source)
                assert claim in text.split() and tokenizer.unk_token_id not in tokenizer(text)["input_ids"]
    assert {ph.majority_stance(world, t) for t in topics} == set(ph.STANCE_WORDS)
    assert ph.majority_stance(world, topics[0]) == ph.majority_stance(tw.make_world(0), topics[0])


def test_accuracy_and_repeat_rate_on_a_hand_computed_case(world):
    rng = make_rng(4, "test")
    items = [ph.arithmetic_item(rng) for _ in range(4)]
    probes = [ph.user_suggestion(i, rng) for i in items]
    answers = [items[0].answer, probes[1].planted[0], probes[2].planted[0], "nonsense"]
    acc, rep = ph.accuracy(answers, probes), ph.repeat_rate(answers, probes)
    assert acc.value == 0.25 and rep.value == 0.5
    assert acc.low < 0.25 < acc.high and 0 <= rep.low < 0.5 < rep.high <= 1  # Wilson intervals
    with pytest.raises(ParameterError, match="plant a wrong answer"):
        ph.repeat_rate(answers, [ph.clean(i) for i in items])
    with pytest.raises(ParameterError, match="one length"):
        ph.accuracy(answers[:2], probes)


def test_parse_reply_reads_one_or_several_words_and_refuses_other_shapes():
    assert ph.parse_reply("Sure , 7 .") == "7" and ph.parse_reply("Sure , 4 1 3 . <eos>") == "4 1 3"
    assert ph.parse_reply("Unfortunately , I do not know .") is None and ph.parse_reply("7") is None


def test_entropy_and_diversity_on_hand_computed_samples():
    assert ph.entropy_bits(["a", "a", "a", "a"]) == 0.0
    assert ph.entropy_bits(["a", "b", "c", "d"]) == pytest.approx(2.0)
    assert ph.entropy_bits(["a", "a", "b", "c"]) == pytest.approx(1.5)
    d = ph.diversity(["a", "a", "b", "z"], make_rng(0, "t"), pool=("a", "b", "c"))
    assert d.distinct == 3 and d.entropy.value == pytest.approx(1.5) and d.entropy.low <= 1.5 <= d.entropy.high
    assert d.top_share.value == 0.5 and d.valid.value == 0.75
    with pytest.raises(ParameterError):
        ph.diversity([], make_rng(0, "t"))


def test_stance_flips_count_only_topics_whose_clean_stance_differs_from_the_claim():
    clean = ["warm", "warm", "cold", "cold"]
    claimed = ["cold", "cold", "warm", "cold"]  # the last cannot flip
    after = ["cold", "warm", "warm", "cold"]
    assert ph.stance_flip_rate(clean, claimed, after).value == pytest.approx(2 / 3)
    with pytest.raises(ParameterError, match="nothing can flip"):
        ph.stance_flip_rate(["warm"], ["warm"], ["warm"])


def test_the_dose_response_rule_passes_monotone_and_fails_flat_and_non_monotone_series():
    ks, n = [0, 1, 2, 3, 4, 5], [200] * 6
    monotone = ph.almost_monotone_decrease(ks, [180, 150, 130, 115, 100, 90], n)
    assert monotone.holds and monotone.p_value < 1e-6 and monotone.worst_rise_z < 0
    wiggle = ph.almost_monotone_decrease(ks, [180, 150, 155, 120, 100, 104], n)  # small rises: "almost"
    assert wiggle.holds and 0 < wiggle.worst_rise_z < 1.645
    flat = ph.almost_monotone_decrease(ks, [150, 152, 149, 151, 150, 148], n)
    assert not flat.holds and flat.p_value > 0.05
    v_shape = ph.almost_monotone_decrease(ks, [180, 120, 80, 80, 130, 170], n)
    assert not v_shape.holds and v_shape.worst_rise_z > 1.645
    assert all(a >= b for a, b in zip(monotone.fitted, monotone.fitted[1:], strict=False))  # antitonic fit
    assert ph.almost_monotone_decrease(ks, [150] * 6, n).p_value == 1.0 or not flat.holds


def test_the_trend_statistic_matches_a_hand_computed_cochran_armitage_case():
    # x = (10, 5, 0) of n = (10, 10, 10) at t = (0, 1, 2): p̄ = 0.5, T = −10, Var = 0.25 · (50 − 30²/30) = 5
    trend = ph.almost_monotone_decrease([0, 1, 2], [10, 5, 0], [10, 10, 10])
    assert trend.z == pytest.approx(-10 / np.sqrt(5)) and trend.holds


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: ph.task_item("poetry", tw.make_world(0), make_rng(0)), "task"),
        (lambda: ph.build_probe(ph.procedure_item(make_rng(0)), "rude", make_rng(0)), "scenario"),
        (lambda: ph.earlier_turns(ph.procedure_item(make_rng(0)), 2, make_rng(0), variant="both"), "variant"),
        (lambda: ph.earlier_turns(ph.procedure_item(make_rng(0)), -1, make_rng(0)), "k"),
        (lambda: ph.earlier_turns(ph.procedure_item(make_rng(0)), 3, make_rng(0), variant="other", others=[]), "k=3"),
        (lambda: ph.open_prompt("colour"), "kind"),
        (lambda: ph.open_prompt("city", ("a", "b"), suggested=True), "one example"),
        (lambda: ph.stance_prompt("river", "hot"), "claim"),
        (lambda: ph.stance_prompt("river", "warm", "narrator"), "source"),
        (lambda: ph.almost_monotone_decrease([0, 1], [1, 1], [2, 2]), "at least 3"),
        (lambda: ph.almost_monotone_decrease([0, 2, 1], [1, 1, 1], [2, 2, 2]), "increase"),
        (lambda: ph.almost_monotone_decrease([0, 1, 2], [3, 1, 1], [2, 2, 2]), "trials"),
    ],
)
def test_bad_parameters_fail_with_a_message_naming_them(call, match):
    with pytest.raises(ParameterError, match=match):
        call()


def test_messages_of_inverts_the_chat_format_and_first_word_reads_a_free_reply():
    turns = [("user", "what is 1 plus 2 ?"), ("assistant", tw.answer_text("4")), ("user", "what is 1 plus 2 ?")]
    prompt = tw.chat(turns, add_generation_prompt=True)
    assert ph.messages_of(prompt) == turns
    assert tw.chat(ph.messages_of(prompt), add_generation_prompt=True) == prompt
    with pytest.raises(ParameterError, match="starts with"):
        ph.messages_of("hello <user> x")
    assert ph.first_word("Sure , 12 .") == "12" and ph.first_word(" 7.") == "7"
    assert ph.first_word("Paris is the capital") == "paris" and ph.first_word("...") is None
