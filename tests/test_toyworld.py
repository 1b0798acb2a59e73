"""The toy world: deterministic, self-consistent, covered by its tokenizer, and shaped as the chapters need."""

from collections import Counter

import numpy as np
import pytest

from llmtheory import toyworld as tw
from llmtheory.params import ParameterError
from llmtheory.seeding import make_rng


@pytest.fixture(scope="module")
def world():
    return tw.make_world(0)


@pytest.fixture(scope="module")
def tokenizer(world):
    return tw.build_tokenizer(world)


def test_world_is_a_pure_function_of_its_seed(world):
    assert tw.make_world(0) == world
    other = tw.make_world(1)
    assert other.countries != world.countries and other.facts != world.facts


def test_generators_are_deterministic_and_stream_independent(world):
    def draw(seed):
        rng = make_rng(seed, "test")
        texts = [tw.training_text(world, rng, kind) for kind in tw.TEXT_KINDS for _ in range(5)]
        texts.append(tw.haystack(world, rng, n_words=200, depth=0.3).prompt)
        texts.append(tw.haystack_training_text(world, rng, 200))
        texts += [tw.procedure(rng, p).text for p in tw.PROCEDURES]
        texts.append(tw.arithmetic_dialogue(rng, hint="wrong", wrong_turns=2).text)
        texts.append(tw.counterfactual_prompt(world, world.facts[0], rng)[0])
        return texts

    assert draw(0) == draw(0)
    assert draw(0) != draw(1)


def test_names_are_unique_and_distinct_from_template_words(world):
    names = world.countries + world.people + world.cities + world.unknown_entities + world.haystack_keys
    assert len(set(names)) == len(names)
    assert not set(names) & set(tw.vocabulary(world)[: len(tw.SPECIAL_TOKENS) + 50])
    assert len(set(world.haystack_values)) == len(world.haystack_values)


def test_tokenizer_covers_every_generator_without_unknown_words(world, tokenizer):
    rng = make_rng(0, "coverage")
    texts = [tw.training_text(world, rng, kind) for kind in tw.TEXT_KINDS for _ in range(50)]
    texts += [tw.fact_prompt(f, template=tw.HELDOUT_QUESTION, instruction=True) for f in world.facts[:20]]
    texts += [tw.haystack(world, rng, n_words=300).prompt, tw.haystack_training_text(world, rng, 300)]
    texts += [tw.procedure(rng, p, length=6).text for p in tw.PROCEDURES]
    texts += [tw.arithmetic_dialogue(rng, operation=op, modulus=97, max_operand=97).text for op in tw.OPERATIONS]
    for text in texts:
        ids = tokenizer(text)["input_ids"]
        assert tokenizer.unk_token_id not in ids, text
        assert ids[0] == tokenizer.bos_token_id
        assert tokenizer.decode(ids[1:]) == text


def test_chat_template_matches_the_chat_format(tokenizer):
    messages = [("user", "what is 3 plus 4 ?"), ("assistant", "Sure , 7 ."), ("user", "what is 1 plus 1 ?")]
    ours = tokenizer(tw.chat(messages, add_generation_prompt=True))["input_ids"]
    theirs = tokenizer.apply_chat_template(
        [{"role": r, "content": c} for r, c in messages], add_generation_prompt=True, tokenize=True
    )
    theirs = theirs["input_ids"] if isinstance(theirs, dict) or hasattr(theirs, "keys") else theirs
    assert list(theirs) == ours


def test_facts_are_consistent_and_buckets_follow_exposure(world):
    assert {f.bucket for f in world.facts} == set(tw.FREQUENCY_BUCKETS)
    for fact in world.facts:
        assert fact.answer in world.answer_pool(fact.relation)
        assert fact.relation in tw.KINDS["country" if fact.entity in world.countries else "person"]
    capitals = [f.answer for f in world.facts if f.relation == "capital"]
    assert len(set(capitals)) == len(capitals)
    rng = make_rng(0, "exposure")
    counts = Counter(tw.sample_fact(world, rng).bucket for _ in range(4000))
    per_fact = {b: counts[b] / len(world.facts_in(b)) for b in tw.FREQUENCY_BUCKETS}
    assert per_fact["frequent"] > 3 * per_fact["medium"] > 3 * per_fact["rare"]


def test_unknown_entities_are_never_stated_and_their_heldout_relation_never_asked(world):
    rng = make_rng(0, "unknown")
    texts = [tw.training_text(world, rng, kind) for kind in ("statement", "qa", "document") for _ in range(300)]
    unknown = set(world.unknown_entities)
    assert not any(unknown & set(t.split()) for t in texts)
    heldout = {(q.entity, q.relation) for q in world.unknown_queries if q.heldout}
    assert len(heldout) == len(world.unknown_entities)
    for _ in range(300):
        text = tw.training_text(world, rng, "abstain")
        assert tw.ABSTENTION in text and tw.PROBE_NEGATIVE in text
        asked = {q.question(t) for q in world.unknown_queries if q.heldout for t in range(2)}
        assert not any(question in text for question in asked)


def test_answers_start_with_the_probe_words(world):
    rng = make_rng(0, "probe")
    qa = tw.training_text(world, rng, "qa")
    assert qa.split("<assistant> ")[1].startswith(tw.PROBE_POSITIVE)
    assert tw.parse_answer("Sure , ragnar .") == "ragnar"
    assert tw.parse_answer(tw.ABSTENTION) is None and tw.is_abstention(tw.ABSTENTION)


def test_counterfactual_context_contradicts_the_world(world):
    rng = make_rng(0, "counterfactual")
    for fact in world.facts[:30]:
        prompt, wrong = tw.counterfactual_prompt(world, fact, rng)
        assert wrong != fact.answer and wrong in prompt.split() and fact.answer not in prompt.split()
        assert wrong in world.answer_pool(fact.relation)


@pytest.mark.parametrize("depth", [0.0, 0.3, 0.7, 1.0])
def test_haystack_places_the_needle_at_the_requested_depth(world, tokenizer, depth):
    stack = tw.haystack(world, make_rng(0, "depth", str(depth)), n_words=1024, depth=depth, n_distractors=20)
    words = stack.context.split()
    needle = tw.NEEDLE.format(key=stack.key, value=stack.answer).split()
    assert words[stack.needle_start : stack.needle_start + len(needle)] == needle
    assert abs(stack.depth - depth) < 0.03
    assert " ".join(words).count(f"secret {stack.key} ") == 1
    assert stack.reply == f"Sure , {stack.key} {stack.answer} ."
    assert len(tokenizer(stack.prompt)["input_ids"]) >= 1000
    assert stack.prompt.endswith(tw.chat([("user", f"what is the secret of {stack.key} ?")], True))


def test_haystack_training_text_asks_about_needles_it_contains(world):
    text = tw.haystack_training_text(world, make_rng(0, "train"), 300)
    context, _, dialogue = text.partition(" <user> ")
    questions = dialogue.split("<user> ")
    assert len(questions) == 6
    for question in questions:
        key = question.split()[5]
        reply = question.split("Sure , ")[1].split(" .")[0]
        assert reply.startswith(f"{key} ") and f"the secret {reply} ." in context


def test_needle_training_targets_flag_exactly_what_retrieval_predicts(world, tokenizer):
    rng = make_rng(0, "targets")
    text = tw.repeated_sequence_text(world, rng, 64)
    words = text.split()
    length = next(n for n in range(len(words) // 2, 0, -1) if words[:n] == words[-n:])
    assert words[:length] == words[-length:] and len(set(words)) == len(words) - length
    assert tw.needle_training_targets(world, text) == [False] * (len(words) - length + 1) + [True] * (length - 1)
    text = tw.needle_copy_text(world, rng, 200)
    words, flags = text.split(), tw.needle_training_targets(world, text)
    chat = words.index("<user>")
    needles = [words[i : i + 5] for i in range(0, chat, 5)]
    half = len(needles) // 2
    assert sorted(map(tuple, needles[:half])) == sorted(map(tuple, needles[half:]))
    for i, word in enumerate(words[:chat]):
        second_pass_value = i >= 5 * half and i % 5 == 3
        assert flags[i] == second_pass_value or (word == "." and flags[i]), (i, word)  # "." after a known value
    replies = [turn.split("<assistant> ")[1].split() for turn in text[text.index("<user>") :].split("<user> ")[1:]]
    flagged_chat = [w for w, f in zip(words[chat:], flags[chat:], strict=True) if f and w != "?"]
    assert flagged_chat == [w for r in replies for w in r]
    for text in (tw.repeated_sequence_text(world, rng, 300), tw.needle_copy_text(world, rng, 300)):
        assert tokenizer.unk_token_id not in tokenizer(text)["input_ids"]


def test_arithmetic_and_procedures_are_verifiable():
    rng = make_rng(0, "arithmetic")
    for operation in tw.OPERATIONS:
        for _ in range(20):
            question, answer = tw.arithmetic_problem(rng, operation=operation, max_operand=12, modulus=97)
            a, _, b = question.split()[2:5]
            expected = {"plus": int(a) + int(b), "minus": int(a) - int(b), "times": int(a) * int(b)}[operation] % 97
            assert int(answer) == expected
    dialogue = tw.arithmetic_dialogue(rng, hint="wrong", wrong_turns=3)
    assert dialogue.prompt.count("<assistant>") == 4 and "i think it is" in dialogue.prompt
    hinted = dialogue.prompt.split("i think it is ")[1].split()[0]
    assert hinted != dialogue.answer
    digits_rng = make_rng(0, "procedures")
    for name in tw.PROCEDURES:
        item = tw.procedure(digits_rng, name, length=5)
        digits = [int(d) for d in item.prompt.split(":")[1].split("<assistant>")[0].split()]
        expected = {
            "reverse": " ".join(map(str, digits[::-1])),
            "sort": " ".join(map(str, sorted(digits))),
            "sum": str(sum(digits) % 10),
            "parity": ["even", "odd"][sum(digits) % 2],
        }[name]
        assert item.answer == expected and item.text.endswith(f"Sure , {expected} . <eos>")


def test_bad_parameters_name_the_valid_choices(world):
    rng = make_rng(0)
    with pytest.raises(ParameterError, match="statement"):
        tw.training_text(world, rng, "poem")
    with pytest.raises(ParameterError, match="reverse"):
        tw.procedure(rng, "fold")
    with pytest.raises(ParameterError, match="depth"):
        tw.haystack(world, rng, depth=1.5)
    with pytest.raises(ParameterError, match="capital"):
        world.answer_pool("height")
    assert np.isclose(world.exposure.sum(), 1.0)
