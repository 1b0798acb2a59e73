"""Tests of the Metagente chapter's library: the data, ROUGE, the loop, the stand-ins, the LLM back ends."""

import dataclasses
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest

from llmtheory import metagente as mg
from llmtheory import metagente_claims as cl
from llmtheory import metagente_experiment as ex
from llmtheory import metagente_standin as si
from llmtheory.claims import IDENTITY, MEASURED, Ledger
from llmtheory.metagente_llm import EndpointError, OpenAICompatibleLLM, fit_prompt, redact, serve_locally
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
    assert set(names) <= mg.pinned_names()  # a package installed beside the lock file does not change the data


def test_pinned_names_read_the_lock_file(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("# pinned\nJinja2==3.1.6\nruamel.yaml==0.18.10\ntyping_extensions==4.12.2\n-e .\n")
    assert mg.pinned_names(lock) == {"jinja2", "ruamel-yaml", "typing-extensions"}
    with pytest.raises(FileNotFoundError, match="pip install -e"):
        mg.pinned_names(tmp_path / "missing.lock")


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


def test_fit_prompt_cuts_the_slot_not_the_instructions():
    def count(text):
        return len(text.split())

    prompt = mg.fill(mg.INITIAL_SUMMARIZER_PROMPT, " ".join(f"w{i}" for i in range(500)))
    fitted = fit_prompt(prompt, count, 100)
    assert count(fitted) <= 100 and count(fitted) >= 95  # as much text as fits
    assert fitted.startswith(mg.INITIAL_SUMMARIZER_PROMPT.split("\n")[0]) and fitted.endswith(">>>")
    assert "w0 w1" in fitted and "w499" not in fitted
    assert fit_prompt(prompt, count, 10_000) == prompt  # a prompt that fits is unchanged
    teacher = mg.TEACHER_PROMPT.substitute(
        summarizer_prompt=mg.INITIAL_SUMMARIZER_PROMPT,
        extracted_text=" ".join(["x"] * 400),
        generated_about="g",
        description="d",
        rouge_score="0.1",
    )
    fitted = fit_prompt(teacher, count, 200)
    assert count(fitted) <= 200 and "$extracted_text" in fitted and fitted.endswith("new prompt only.")


ROLE_MARKERS = {"extractor": "You read the README", "teacher": "You are a teacher", "combiner": "Each prompt below"}
COMBINED = si.Directives("subtitle", max_words=8).render()


def _scripted_model(log):
    """A fake chat model with a script per role: the rule extractor, the directive follower, a teacher that always
    proposes the subtitle directive, a combiner that answers a fixed prompt. It logs (role, temperature)."""

    def model(prompt, temperature=0.0):
        role = next((r for r, marker in ROLE_MARKERS.items() if prompt.startswith(marker)), "summarizer")
        log.append((role, temperature))
        if role == "extractor":
            return si.rule_extractor(prompt.split("<<<\n", 1)[1].rsplit("\n>>>", 1)[0])
        if role == "teacher":
            return si.Directives("subtitle").render()
        return COMBINED if role == "combiner" else si.directive_follower(prompt)

    return model


def test_the_loop_runs_with_all_four_llm_agents_over_http(monkeypatch):
    monkeypatch.setenv("METAGENTE_TEST_KEY", PLANTED_KEY)
    log = []
    pairs = [_pair(), _pair("an unrelated description of something else")]
    with serve_locally(_scripted_model(log), expected_key=PLANTED_KEY) as url:
        llm = OpenAICompatibleLLM(url, "scripted", api_key_env="METAGENTE_TEST_KEY", timeout=5, retries=0)
        agents = mg.Agents(mg.LLMExtractor(llm), mg.LLMSummarizer(llm), mg.LLMTeacher(llm), mg.LLMCombiner(llm))
        result = mg.optimise_prompt(agents, pairs)
    first, second = result.traces
    assert first.qualified and first.scores[-1] == 1.0 and len(first.scores) == 2  # the teacher's edit qualified it
    assert not second.qualified and len(second.scores) == mg.MAX_ITERATIONS
    assert result.qualified == [si.Directives("subtitle").render()] and result.prompt == COMBINED
    roles = [role for role, _ in log]
    assert [roles.count(r) for r in ("extractor", "summarizer", "teacher", "combiner")] == [2, 17, 16, 1]
    assert all(t == mg.TEMPERATURES[role] for role, t in log) and llm.calls == len(log)


class _EchoHandler(BaseHTTPRequestHandler):
    """Answers every request with ``status`` and a body that echoes the request's Authorization header."""

    status = 500
    requests = 0

    def log_message(self, *args):
        return

    def do_POST(self):  # noqa: N802
        type(self).requests += 1
        body = json.dumps({"error": f"bad request with {self.headers.get('Authorization')}"}).encode()
        self.send_response(self.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.mark.parametrize(("status", "attempts"), [(500, 3), (401, 1)])
def test_an_echoed_key_is_redacted_and_only_server_errors_are_retried(monkeypatch, status, attempts):
    monkeypatch.setenv("METAGENTE_TEST_KEY", PLANTED_KEY)
    handler = type("Echo", (_EchoHandler,), {"status": status, "requests": 0})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        llm = OpenAICompatibleLLM(url, "m", api_key_env="METAGENTE_TEST_KEY", timeout=5, retries=2, backoff=0.01)
        with pytest.raises(EndpointError) as error:
            llm("hello")
    finally:
        server.shutdown()
        server.server_close()
    assert handler.requests == attempts and f"after {attempts} attempt(s)" in str(error.value)
    assert f"HTTP {status}" in str(error.value) and "[redacted key]" in str(error.value)
    assert PLANTED_KEY not in str(error.value)


def test_a_silent_endpoint_times_out_after_bounded_retries(monkeypatch):
    monkeypatch.setenv("METAGENTE_TEST_KEY", PLANTED_KEY)
    with socket.socket() as silent:  # accepts connections (the backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1"
        llm = OpenAICompatibleLLM(url, "m", api_key_env="METAGENTE_TEST_KEY", timeout=0.3, retries=1, backoff=0.01)
        start = time.perf_counter()
        with pytest.raises(EndpointError, match=r"failed after 2 attempt\(s\)") as error:
            llm.check()
        assert time.perf_counter() - start < 5
    assert PLANTED_KEY not in str(error.value)


def test_search_budget_counts_hidden_runs_and_the_default_cap_is_a_parameter():
    assert si.NEIGHBOURS == 12
    assert si.search_budget([0.1, 0.8], mg.THRESHOLD) == 2 + 12  # one teacher call, then qualified
    assert si.search_budget([0.1] * 15, mg.THRESHOLD) == 15 + 15 * 12  # the loop calls the teacher after each score
    text = " ".join(f"w{i}" for i in range(80)) + "."
    assert len(si.follow(si.Directives(), text).split()) == si.DEFAULT_CAP
    assert len(si.follow(si.Directives(), text, default_cap=12).split()) == 12
    assert len(si.follow(si.Directives(max_words=6), text, default_cap=12).split()) == 6


def test_majority_prompt_is_the_half_share_vote_or_the_initial_prompt():
    prompts = [si.Directives("first", max_words=8).render()] * 2 + [si.Directives(cut_clause=True).render()]
    loop = mg.OptimisationResult("chosen", [], prompts)
    assert ex.majority_prompt(loop) == si.voting_combiner(prompts, 0.5)
    assert ex.majority_prompt(mg.OptimisationResult("x", [], [])) == mg.INITIAL_SUMMARIZER_PROMPT


# ---------------------------------------------------------------------------------------------------------------
# The ledger's rules (metagente_claims): each can come out either way


@pytest.fixture(scope="module")
def small_run():
    train, test = mg.split_pairs(mg.load_pairs(), seed=0)
    train, test = train[:10], test[:20]
    return ex.run_experiment(train, test, seed=0), test


def _frame(scores: dict) -> pd.DataFrame:
    """A synthetic experiment table: per method, one ROUGE score per pair (all three metrics alike)."""
    return pd.DataFrame(
        [
            {"method": m, "name": f"p{i}", "about": "a", "output": f"{m} {s:.6f}", **dict.fromkeys(ex.METRICS, s)}
            for m, scores_of_m in scores.items()
            for i, s in enumerate(scores_of_m)
        ]
    )


BASE = np.random.default_rng(0).uniform(0.1, 0.5, 40)
WOBBLE = np.concatenate([np.linspace(0.01, 0.05, 20), -np.linspace(0.01, 0.05, 20)])  # mean exactly 0


def _verdict(kind, row) -> str:
    return Ledger("metagente", scale="smoke", seed=0).check("x", kind=kind, **row).verdict


def test_every_claim_makes_a_ledger_row_with_a_finding(small_run):
    run, test = small_run
    ledger = Ledger("metagente", scale="smoke", seed=0)
    rows = {
        "optimised-beats-unoptimised": (MEASURED, cl.headline_claim(run, test)),
        "majority-beats-unoptimised": (MEASURED, cl.majority_claim(run)),
        "beats-baselines": (MEASURED, cl.baselines_claim(run)),
        "teacher-vs-random-edits": (MEASURED, cl.teacher_claim(run)),
        "teacher-search": (MEASURED, cl.teacher_search_claim(run)),
        "extractor-ablation": (MEASURED, cl.extractor_claim(run, test)),
        "real-llm-gain": (MEASURED, cl.real_model_claim([0.0, 0.0], [0.0, 0.0])),
        "paper-numbers": (MEASURED, cl.PAPER_NUMBERS),
        "rouge-by-hand": (IDENTITY, cl.rouge_identity_claim(run.frame)),
    }
    for claim_id, (kind, row) in rows.items():
        ledger.check(claim_id, kind=kind, **row)
    why = cl.findings(run)
    assert set(why) == set(rows)
    for claim in ledger.claims:
        text = why[claim.id]
        assert text if isinstance(text, str) else text.get(claim.verdict, text.get("default")), claim.id
    assert all(isinstance(t, str) or "default" in t or set(t) == {"check passed", "check failed"} for t in why.values())


def test_the_headline_sensitivity_at_the_default_cap_is_the_headline(small_run):
    run, test = small_run
    sensitivity = cl.default_cap_sensitivity(run, test)
    gain, holds = cl.gain_over(run.frame, ex.OURS, ex.INITIAL)
    assert sensitivity[si.DEFAULT_CAP][0] == gain and bool(sensitivity[si.DEFAULT_CAP][1]) == bool(holds)
    assert set(sensitivity) == set(cl.DEFAULT_CAPS)


def test_the_headline_rule_passes_fails_and_reads_its_control(small_run):
    run, test = small_run
    gained, null = BASE + 0.1 + WOBBLE / 5, BASE + WOBBLE
    for ours, control, verdict in [
        (gained, null, "reproduced"),
        (gained, gained, "rule does not discriminate"),
        (null, null, "not reproduced"),
    ]:
        frame = _frame({ex.OURS: ours, ex.INITIAL: BASE, ex.NO_TEACHER: control})
        row = cl.headline_claim(dataclasses.replace(run, frame=frame), test)
        assert _verdict(MEASURED, row) == verdict


def test_the_extractor_equivalence_passes_fails_and_is_not_testable_when_fixed(small_run):
    run, test = small_run
    prompts = {**run.prompts, ex.NO_EXTRACTOR: si.Directives("definition").render()}  # not fixed by the design
    for without, verdict in [(BASE + WOBBLE / 10, "reproduced"), (BASE - 0.1 + WOBBLE / 10, "not reproduced")]:
        frame = _frame({ex.OURS: BASE, ex.NO_EXTRACTOR: without, ex.INITIAL: BASE - 0.15 + WOBBLE})
        row = cl.extractor_claim(dataclasses.replace(run, frame=frame, prompts=prompts), test)
        assert row["testable"] and _verdict(MEASURED, row) == verdict
    first = si.Directives("first").render()
    fixed = dataclasses.replace(run, prompts={**run.prompts, ex.OURS: first, ex.NO_EXTRACTOR: first})
    assert cl.decided_by_construction(fixed, test)
    assert _verdict(MEASURED, cl.extractor_claim(fixed, test)) == "not testable at this scale"
    assert not cl.decided_by_construction(fixed, [mg.Pair("x", "# Title\n\n# Install\n\nRun pip.", "a tool")])


def test_first_sentence_prompts_ignore_the_stand_in_extractor():
    """What makes the extractor row 'fixed by the design': with 'start from the first sentence' the stand-in
    summarizer writes the same from the extracted text as from the whole README, whenever the extract has body text."""
    first = si.Directives("first")
    for pair in mg.load_pairs():
        extracted = si.rule_extractor(pair.readme)
        if any(not s.startswith("# ") for s in si.sentences(extracted)):
            assert si.follow(first, extracted) == si.follow(first, pair.readme), pair.name


def test_the_teacher_search_rule_can_fail_on_ties(small_run):
    run, _ = small_run

    def traces(best):
        return [mg.ExampleTrace(f"p{i}", "", "", scores=[0.1, b]) for i, b in enumerate(best)]

    loops = {**run.loops, ex.OURS: mg.OptimisationResult("", traces(BASE + 0.05 + WOBBLE / 5), [])}
    ahead = dataclasses.replace(run, loops=loops, equal_budget=traces(BASE))
    assert _verdict(MEASURED, cl.teacher_search_claim(ahead)) == "reproduced"
    tied = dataclasses.replace(run, loops=loops, equal_budget=loops[ex.OURS].traces)
    assert _verdict(MEASURED, cl.teacher_search_claim(tied)) == "not reproduced"
    few = BASE + np.where(np.arange(len(BASE)) < 4, 0.2, 0.0)  # four pairs far ahead, the rest tied
    mostly_tied = dataclasses.replace(run, loops={**run.loops, ex.OURS: mg.OptimisationResult("", traces(few), [])},
                                      equal_budget=traces(BASE))  # fmt: skip
    tests = mg.paired_tests(few, BASE)
    assert tests["low"] > 0 and tests["t_p"] < 0.05 <= tests["wilcoxon_p"]  # the t-interval alone would pass
    assert _verdict(MEASURED, cl.teacher_search_claim(mostly_tied)) == "not reproduced"


def test_the_rouge_identity_fails_without_rouge_scores_stemmer(small_run):
    run, _ = small_run
    assert _verdict(IDENTITY, cl.rouge_identity_claim(run.frame)) == "check passed"
    unstemmed = cl.rouge_identity_claim(run.frame, tokenize=lambda text: re.findall(r"[a-z0-9]+", text.lower()))
    assert _verdict(IDENTITY, unstemmed) == "check failed"


def test_the_majority_row_counts_what_the_vote_kept(small_run):
    run, _ = small_run
    row = cl.majority_claim(
        dataclasses.replace(run, prompts={**run.prompts, ex.MAJORITY: mg.INITIAL_SUMMARIZER_PROMPT})
    )
    assert row["ours"].endswith("kept: no directive")
    kept = si.Directives("first", cut_clause=True, max_words=8).render()
    assert (
        "kept: from the first sentence, cut clause, ≤ 8 words"
        in cl.majority_claim(dataclasses.replace(run, prompts={ex.MAJORITY: kept}))["ours"]
    )


def test_parameters_refuse_bad_values_by_name():
    from llmtheory.params import check_values

    defaults = {"MODEL": "fact-llama-h64", "BASE_URL": "", "ENDPOINT_MODEL": "gpt-4o-mini", "API_KEY_ENV": "KEY"}
    assert check_values(defaults, mg.PARAMETERS) == defaults
    for name, bad in [
        ("BASE_URL", "localhost:8000"),
        ("API_KEY_ENV", "sk-123 456"),
        ("MODEL", ""),
        ("ENDPOINT_MODEL", ""),
    ]:
        with pytest.raises(ParameterError, match=name):
            check_values({**defaults, name: bad}, mg.PARAMETERS)
