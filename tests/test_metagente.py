"""Tests of the Metagente chapter's library: the data, ROUGE, the loop, the stand-ins, the LLM back ends."""

import numpy as np
import pytest

from llmtheory import metagente as mg
from llmtheory import metagente_experiment as ex
from llmtheory import metagente_standin as si
from llmtheory.metagente_llm import EndpointError, OpenAICompatibleLLM, redact, serve_locally
from llmtheory.params import ParameterError

PLANTED_KEY = "sk-planted-0123456789abcdef"


def test_pairs_are_deterministic_nonempty_and_leave_out_the_book():
    mg.load_pairs.cache_clear()
    first = mg.load_pairs()
    mg.load_pairs.cache_clear()
    assert mg.load_pairs() == first
    assert len(first) >= 50
    names = [p.name for p in first]
    assert names == sorted(names) and len(set(names)) == len(names) and mg.OWN_PACKAGE not in names
    assert all(p.about.strip() and len(p.readme.split()) >= 20 for p in first)
    assert all(len(p.readme.split()) <= mg.README_WORDS for p in first)


def test_split_is_disjoint_complete_and_per_pair():
    pairs = mg.load_pairs()
    train, test = mg.split_pairs(pairs, seed=0)
    assert {p.name for p in train} | {p.name for p in test} == {p.name for p in pairs}
    assert not {p.name for p in train} & {p.name for p in test}
    sub_train, _ = mg.split_pairs(pairs[::2], seed=0)
    assert set(sub_train) <= set(train)  # a pair's side does not depend on the other pairs
    assert mg.split_pairs(pairs, seed=1)[0] != train
    with pytest.raises(ParameterError, match="test_share"):
        mg.split_pairs(pairs, seed=0, test_share=1.0)


def test_clean_readme_drops_markup_and_keeps_text():
    readme = (
        "# Tool\n\n[![CI](https://x/badge.svg)](https://x)\n\nTool is a [fast](https://a.b) parser.\n\n"
        "```python\nimport tool\n```\n\n.. image:: https://x/y.png\n   :alt: y\n\nSee `docs <https://d>`_ now.\n\n"
        "> Quoted [ref][1] text.\n\n>>> import tool\n"
    )
    text = mg.clean_readme(readme)
    assert text.split("\n\n") == ["# Tool", "Tool is a fast parser.", "See docs now.", "Quoted ref text."]


def test_rouge_l_matches_the_lcs_formula():
    rng = np.random.default_rng(0)
    words = ["parser", "fast", "python", "library", "tool", "data", "yaml"]
    for _ in range(50):
        a = " ".join(rng.choice(words, rng.integers(1, 9)))
        b = " ".join(rng.choice(words, rng.integers(1, 9)))
        assert mg.rouge_l(a, b) == pytest.approx(mg.rouge_l_by_hand(mg.rouge_tokens(a), mg.rouge_tokens(b)))
    assert mg.rouge_l("Parsing libraries", "parse library") == 1.0  # the Porter stemmer


def test_holm_matches_the_step_down_definition():
    adjusted = mg.holm([0.01, 0.04, 0.03, 0.2])
    assert adjusted == pytest.approx([0.04, 0.09, 0.09, 0.2])
    assert mg.paired_tests([0.5, 0.4], [0.5, 0.4])["t_p"] == 1.0


def test_directives_round_trip_through_their_text():
    for d in [si.Directives(), si.Directives("subtitle", True, False, True, 8), *si.Directives().neighbours()]:
        assert si.parse_directives(d.render()) == d
    assert len(si.Directives().neighbours()) == 3 + 3 + 6


def test_the_follower_obeys_known_directives_and_ignores_others():
    text = "# Tool: a fast YAML parser\n\nTool is a small library (pure Python) for parsing YAML, fast. More text."
    prompt = si.Directives("definition", True, True, True, 4).render() + "\nBe creative!"
    assert si.directive_follower(mg.fill(prompt, text)) == "small library for parsing"
    assert si.directive_follower(mg.fill(si.Directives("subtitle").render(), text)) == "a fast YAML parser"
    assert si.directive_follower(mg.fill(mg.INITIAL_SUMMARIZER_PROMPT, text)).startswith("Tool: a fast YAML parser")


def _pair(about="a fast yaml parser"):
    return mg.Pair("tool", "# Tool: a fast YAML parser\n\nTool is a library for parsing YAML.", about)


def test_loop_stops_at_the_threshold_and_caps_iterations():
    teacher_calls = []

    def teacher(**kw):
        teacher_calls.append(kw["score"])
        return kw["template"] + "\nTry harder."

    def agents(answer):
        return mg.Agents(None, lambda template, text: answer, teacher, lambda ts: "combined")

    trace = mg.optimise_example(agents("a fast yaml parser"), _pair())
    assert trace.scores == [1.0] and trace.qualified and not teacher_calls
    trace = mg.optimise_example(agents("nothing alike"), _pair())
    assert len(trace.scores) == mg.MAX_ITERATIONS and len(teacher_calls) == mg.MAX_ITERATIONS and not trace.qualified
    result = mg.optimise_prompt(agents("nothing alike"), [_pair()])
    assert result.prompt == mg.INITIAL_SUMMARIZER_PROMPT and result.qualified == []  # nothing qualified
    assert mg.optimise_prompt(agents("a fast yaml parser"), [_pair()]).prompt == "combined"


def test_grammar_teacher_finds_the_subtitle_and_the_loop_qualifies():
    agents = ex.stand_in_agents([_pair()])
    trace = mg.optimise_example(agents, _pair())
    assert trace.qualified and trace.scores[-1] == 1.0 and len(trace.scores) == 2
    assert si.parse_directives(trace.templates[-1]).source == "subtitle"
    assert "+If the title has a subtitle" in mg.prompt_diff(trace.templates[0], trace.templates[-1])


def test_voting_combiner_majority_and_union():
    prompts = [si.Directives("first", max_words=8).render()] * 2 + [si.Directives(cut_clause=True).render()]
    assert si.parse_directives(si.voting_combiner(prompts, 0.5)) == si.Directives("first", max_words=8)
    assert si.parse_directives(si.voting_combiner(prompts, 0.0)) == si.Directives("first", cut_clause=True, max_words=8)


def test_shuffled_pairs_are_a_derangement():
    pairs = mg.load_pairs()[:20]
    mixed = ex.shuffled(pairs, np.random.default_rng(0))
    assert all(a.about != b.about or a.name == b.name for a, b in zip(pairs, mixed, strict=True))
    assert sorted(p.about for p in mixed) == sorted(p.about for p in pairs)
    assert all(a.about != b.about for a, b in zip(pairs, mixed, strict=True) if a.about != b.about)


def test_http_backend_matches_direct_calls_and_never_shows_the_key(monkeypatch):
    monkeypatch.setenv("METAGENTE_TEST_KEY", PLANTED_KEY)
    text = mg.fill(si.Directives("subtitle").render(), _pair().readme)
    with serve_locally(si.directive_follower, expected_key=PLANTED_KEY) as url:
        llm = OpenAICompatibleLLM(url, "stand-in", api_key_env="METAGENTE_TEST_KEY", timeout=5, retries=0)
        llm.check()
        assert llm(text) == si.directive_follower(text) == "a fast YAML parser"
        assert PLANTED_KEY not in repr(llm)
        monkeypatch.setenv("METAGENTE_TEST_KEY", PLANTED_KEY + "-wrong")
        with pytest.raises(EndpointError) as wrong:
            llm(text)
    assert "HTTP 401" in str(wrong.value) and PLANTED_KEY not in str(wrong.value)


def test_unreachable_endpoint_fails_clearly_after_bounded_retries(monkeypatch):
    monkeypatch.setenv("METAGENTE_TEST_KEY", PLANTED_KEY)
    with serve_locally(si.directive_follower) as url:
        pass  # the server is stopped: nothing listens on that port any more
    llm = OpenAICompatibleLLM(url, "m", api_key_env="METAGENTE_TEST_KEY", timeout=2, retries=2, backoff=0.01)
    with pytest.raises(EndpointError, match=r"failed after 3 attempt\(s\)") as error:
        llm.check()
    assert PLANTED_KEY not in str(error.value)
    assert redact(f"Bearer {PLANTED_KEY}", PLANTED_KEY) == "Bearer [redacted key]"
    with pytest.raises(ParameterError, match="base_url"):
        OpenAICompatibleLLM("localhost:8000", "m")
