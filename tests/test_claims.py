import json

import pytest

from llmtheory.claims import (
    ASSUMED,
    CHECK_FAILED,
    CHECK_PASSED,
    IDENTITY,
    KINDS,
    MEASURED,
    NOT_DISCRIMINATING,
    NOT_REPRODUCED,
    NOT_TESTABLE,
    PUBLISHED,
    QUALITATIVE,
    REPRODUCED,
    VERDICTS,
    Control,
    Estimate,
    Ledger,
    Test,
    all_of,
    at_least,
    at_most,
    decide,
    load_ledgers,
    render_claims_page,
    render_findings,
    run_time,
    summary_counts,
    summary_figure,
    within,
)
from llmtheory.params import ParameterError

REASON = "a tolerance against a closed form"


def test_a_measured_rule_that_fails_is_not_reproduced():
    measured, threshold = 0.62, 0.9
    assert decide(MEASURED, measured >= threshold) == NOT_REPRODUCED


def test_measured_verdict_precedence():
    assert decide(MEASURED, True) == REPRODUCED
    assert decide(MEASURED, False, qualitatively=True) == QUALITATIVE
    assert decide(MEASURED, True, testable=False) == NOT_TESTABLE


def test_a_control_that_passes_the_rule_demotes_the_verdict():
    passing = Control("shuffled labels", ours="0.95", holds=True)
    failing = Control("shuffled labels", ours="0.51", holds=False)
    assert decide(MEASURED, True, control=passing) == NOT_DISCRIMINATING
    assert decide(MEASURED, True, control=failing) == REPRODUCED
    # the qualitative rule is judged on the control too
    assert decide(MEASURED, False, qualitatively=True, control=passing) == NOT_DISCRIMINATING
    assert decide(MEASURED, False, qualitatively=True, control=Control("c", "o", False, qualitatively=True)) == (
        NOT_DISCRIMINATING
    )
    assert decide(MEASURED, False, qualitatively=True, control=failing) == QUALITATIVE
    # a rule our run fails stays not reproduced, whatever the control does
    assert decide(MEASURED, False, control=passing) == NOT_REPRODUCED


def test_a_control_whose_failure_is_undecided_does_not_let_the_claim_discriminate():
    undecided = Control("random heads", ours="0.79 [0.64, 0.98]", holds=at_least(Estimate(0.79, 0.64, 0.98), 0.8))
    decided = Control("random heads", ours="0.5 [0.4, 0.6]", holds=at_least(Estimate(0.5, 0.4, 0.6), 0.8))
    assert not undecided.holds.holds and not undecided.holds.decisive
    assert decide(MEASURED, at_least(Estimate(0.83, 0.63, 1.1), 0.8), control=undecided) == NOT_DISCRIMINATING
    assert decide(MEASURED, at_least(Estimate(0.83, 0.63, 1.1), 0.8), control=decided) == QUALITATIVE
    # a decisive pass is judged by the decisive rule, which an undecided control fails (an A/A control at 0)
    a_a = Control("A/A", ours="-0.01 [-0.03, 0.01]", holds=at_least(Estimate(-0.01, -0.03, 0.01), 0.0))
    assert decide(MEASURED, at_least(Estimate(0.04, 0.02, 0.07), 0.0), control=a_a) == REPRODUCED
    assert decide(MEASURED, True, control=decided) == REPRODUCED
    assert decide(MEASURED, False, control=undecided) == NOT_REPRODUCED  # a failed claim stays failed
    ledger = Ledger("demo", scale="smoke", seed=0)
    ledger.check("c", claim="c", paper="p", ours="o", rule="r", kind=MEASURED, holds=True, control=undecided)
    assert "undecided" in ledger.claims[0].control and ledger.claims[0].verdict == REPRODUCED


def test_a_conjunction_fails_decisively_when_one_part_does():
    passes_undecided, fails_decided = Test(True, False), Test(False, True)
    assert all_of(passes_undecided, fails_decided) == Test(False, True)
    assert all_of(passes_undecided, Test(False, False)) == Test(False, False)
    assert all_of(Test(True, True), passes_undecided) == Test(True, False)
    assert all_of(Test(True, True), True) == Test(True, True)


@pytest.mark.parametrize("kind", [IDENTITY, PUBLISHED, ASSUMED])
def test_kinds_other_than_measured_never_count_as_reproduced(kind):
    outcomes = {decide(kind, holds, qualitatively=q) for holds in (True, False) for q in (True, False)}
    assert not outcomes & {REPRODUCED, QUALITATIVE, NOT_REPRODUCED, NOT_DISCRIMINATING}
    if kind == ASSUMED:
        assert outcomes == {NOT_TESTABLE}
    else:
        assert outcomes == {CHECK_PASSED, CHECK_FAILED}


def test_a_pass_inside_an_interval_that_spans_the_threshold_is_at_most_qualitative():
    assert decide(MEASURED, at_least(Estimate(0.82, 0.75, 0.90), 0.8)) == QUALITATIVE
    assert decide(MEASURED, at_least(Estimate(0.86, 0.81, 0.90), 0.8)) == REPRODUCED
    assert decide(MEASURED, at_most(Estimate(0.05, 0.01, 0.12), 0.1)) == QUALITATIVE
    assert decide(MEASURED, within(Estimate(-0.98, -1.03, -0.95), -1.0, 0.1)) == REPRODUCED
    assert decide(MEASURED, within(Estimate(-0.95, -1.2, -0.7), -1.0, 0.1)) == QUALITATIVE
    assert not within(Estimate(-0.5, -0.6, -0.4), -1.0, 0.1).holds


def test_a_proportion_carries_its_wilson_interval_inside_zero_and_one():
    all_right = Estimate.proportion(20, 20)
    assert all_right.value == 1.0 and all_right.high == 1.0 and 0.83 < all_right.low < 0.84  # Wilson: 0.8389
    half = Estimate.proportion(50, 100)
    assert half.low == pytest.approx(0.4038, abs=1e-3) and half.high == pytest.approx(0.5962, abs=1e-3)
    assert not at_least(Estimate.proportion(9, 10), 0.8).decisive  # 90% of 10 does not decide "≥ 80%"
    with pytest.raises(ParameterError, match="successes"):
        Estimate.proportion(3, 2)


def test_a_failure_inside_an_interval_that_spans_the_threshold_is_shown_as_undecided():
    ledger = Ledger("spectral_ball", scale="smoke", seed=0)
    ledger.check("a", claim="c", paper="p", ours="0.67", rule="≥ 0.72", kind=MEASURED,
                 holds=at_least(Estimate(0.67, 0.55, 0.78), 0.72), can_fail_because="r")  # fmt: skip
    assert ledger.claims[0].verdict == NOT_REPRODUCED
    assert "Undecided: the interval spans the threshold" in render_findings(ledger.claims, {})
    assert "undecided: the interval spans the threshold" in render_claims_page([ledger.to_dict()], "smoke")


def test_rules_on_plain_numbers_and_their_combination():
    assert at_least(3, 2).holds and at_least(3, 2).decisive
    assert not at_most(3, 2).holds
    combined = all_of(at_least(Estimate(1.0, 0.5, 1.5), 0.8), True)
    assert combined.holds and not combined.decisive


def test_estimates_format_with_their_interval_and_refuse_a_value_outside_it():
    assert format(Estimate(0.5, 0.4, 0.6), ".2f") == "0.50 [0.40, 0.60]"
    assert Estimate.mean_of([1.0, 2.0, 3.0]).value == pytest.approx(2.0)
    assert Estimate.from_stderr(1.0, 0.1).low == pytest.approx(0.804)
    with pytest.raises(ParameterError, match="low ≤ value ≤ high"):
        Estimate(1.0, 0.0, 0.5)


def _ledger(scale="smoke"):
    ledger = Ledger("spectral_ball", scale=scale, seed=3)
    ledger.check(
        "a",
        claim="x → 1",
        paper="1",
        ours="0.99",
        rule="ours ≥ 0.9",
        kind=MEASURED,
        holds=True,
        control=Control("a random matrix", ours="0.3", holds=False),
    )
    ledger.check("b", claim="y | z", paper="2", ours="0.1", rule="ours ≥ 1", kind=MEASURED, holds=False,
                 can_fail_because=REASON)  # fmt: skip
    ledger.check("c", claim="Parseval", paper="—", ours="1e-16", rule="< 1e-9", kind=IDENTITY, holds=True)
    ledger.check("d", claim="γ ≤ 0.25", paper="fits", ours="0.2", rule="≤ 0.25", kind=PUBLISHED, holds=True)
    ledger.check("e", claim="A beats B", paper="—", ours="yes", rule="A > B", kind=ASSUMED, holds=True)
    return ledger


def test_a_measured_claim_needs_a_control_or_a_reason():
    ledger = Ledger("spectral_ball", scale="smoke", seed=0)
    with pytest.raises(ParameterError, match="control=Control"):
        ledger.check("a", claim="c", paper="p", ours="o", rule="r", kind=MEASURED, holds=True)


def test_a_qualitative_rule_must_be_judged_on_the_control_too():
    ledger = Ledger("spectral_ball", scale="smoke", seed=0)
    with pytest.raises(ParameterError, match="qualitatively=<the qualitative rule applied to the control>"):
        ledger.check("a", claim="c", paper="p", ours="o", rule="r", kind=MEASURED, holds=False, qualitatively=True,
                     control=Control("x", "y", holds=False))  # fmt: skip
    entry = ledger.check("b", claim="c", paper="p", ours="o", rule="r", kind=MEASURED, holds=False, qualitatively=True,
                         control=Control("x", "y", holds=False, qualitatively=True))  # fmt: skip
    assert entry.verdict == NOT_DISCRIMINATING
    assert entry.control == "x: y (fails the rule, passes its qualitative version)"


def test_only_measured_claims_take_a_control():
    ledger = Ledger("spectral_ball", scale="smoke", seed=0)
    with pytest.raises(ParameterError, match="measured claims only"):
        ledger.check("a", claim="c", paper="p", ours="o", rule="r", kind=IDENTITY, holds=True,
                     control=Control("x", "y", False))  # fmt: skip


def test_a_claim_that_could_not_run_may_have_no_outcome():
    ledger = Ledger("spectral_ball", scale="smoke", seed=0)
    entry = ledger.check("a", claim="c", paper="p", ours="no items", rule="r", kind=MEASURED, holds=None,
                         testable=False, can_fail_because="r")  # fmt: skip
    assert entry.verdict == NOT_TESTABLE
    untested = ledger.check("c", claim="c", paper="p", ours="no items", rule="r", kind=MEASURED, holds=None,
                            testable=False, control=Control("random heads", "—", holds=False))  # fmt: skip
    assert untested.control == "random heads: not evaluated (not testable)" and untested.control_passes is None
    with pytest.raises(ParameterError, match="holds=None is only for a claim marked testable=False"):
        ledger.check("b", claim="c", paper="p", ours="o", rule="r", kind=IDENTITY, holds=None)


def test_unknown_kind_and_non_boolean_outcomes_are_refused():
    ledger = Ledger("spectral_ball", scale="smoke", seed=0)
    with pytest.raises(ParameterError, match="kind='theorem'"):
        ledger.check("a", claim="c", paper="p", ours="o", rule="r", kind="theorem", holds=True)
    with pytest.raises(ParameterError, match="bool or a claims.Test"):
        ledger.check("a", claim="c", paper="p", ours="o", rule="r", kind=IDENTITY, holds="yes")


def test_duplicate_claim_id_is_refused():
    ledger = _ledger()
    with pytest.raises(ParameterError, match="already"):
        ledger.check("a", claim="c", paper="p", ours="o", rule="r", kind=IDENTITY, holds=True)


def test_bad_scale_is_refused():
    with pytest.raises(ParameterError, match="SCALE"):
        Ledger("spectral_ball", scale="tiny", seed=0)


def test_save_writes_tier_seed_model_time_kinds_and_controls(tmp_path):
    path = _ledger().save(tmp_path)
    saved = json.loads(path.read_text())
    assert path.name == "spectral_ball.json"
    assert saved["scale"] == "smoke" and saved["seed"] == 3 and saved["model"] is None
    assert saved["wall_time_s"] >= 0 and saved["cpu_time_s"] >= 0 and "torch" in saved["versions"]
    assert "CPU" in run_time(saved) and run_time({"wall_time_s": 3.0}) == "3 s"  # older ledgers lack CPU time
    claims = saved["claims"]
    assert [c["verdict"] for c in claims] == [REPRODUCED, NOT_REPRODUCED, CHECK_PASSED, CHECK_PASSED, NOT_TESTABLE]
    assert [c["kind"] for c in claims] == [MEASURED, MEASURED, IDENTITY, PUBLISHED, ASSUMED]
    assert claims[0]["control"] == "a random matrix: 0.3 (fails the rule)" and claims[0]["control_passes"] is False
    assert claims[1]["can_fail_because"] == REASON


def test_default_folder_is_per_tier(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMTHEORY_CLAIMS_DIR", str(tmp_path))
    assert _ledger(scale="book").save() == tmp_path / "book" / "spectral_ball.json"
    assert [d["slug"] for d in load_ledgers("book")] == ["spectral_ball"]
    assert load_ledgers("smoke") == []


def test_report_escapes_text_so_a_rule_with_a_less_than_sign_shows(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMTHEORY_CLAIMS_DIR", str(tmp_path))
    ledger = Ledger("spectral_ball", scale="smoke", seed=0)
    ledger.check("a", claim="c", paper="p", ours="o", rule="error < 1e-9 <b>", kind=IDENTITY, holds=True)
    html = ledger.report().to_html()
    assert "error &lt; 1e-9 &lt;b&gt;" in html and "border-radius" in html


def test_report_shows_verdicts_as_badges(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMTHEORY_CLAIMS_DIR", str(tmp_path))
    html = _ledger().report().to_html()
    assert "#009E73" in html and "#D55E00" in html and "border-radius" in html
    assert "a random matrix" in html and REASON in html
    assert "ours ≥ 1" in html and "y | z" in html


def test_report_gives_the_long_texts_the_width_one_claim_a_row(tmp_path, monkeypatch):
    """Issue 28: the report has two columns (verdict, id and kind; then the claim with its evidence, one labelled line
    each), not eight narrow ones; an undecided failure says so under its badge; the saved ledger is unchanged."""
    from llmtheory.claims import Estimate, at_least

    monkeypatch.setenv("LLMTHEORY_CLAIMS_DIR", str(tmp_path))
    ledger = _ledger()
    ledger.check("f", claim="close", paper="1", ours="0.8", rule="≥ 0.9", kind=MEASURED,
                 holds=at_least(Estimate(0.8, 0.7, 0.95), 0.9), can_fail_because=REASON)  # fmt: skip
    html = ledger.report().to_html()
    assert html.count("<tr>") == 1 + len(ledger.claims) and html.count("<th ") == 2
    assert "<em>control:</em> a random matrix: 0.3 (fails the rule)" in html
    assert f"<em>why the rule can fail:</em> {REASON}" in html and html.count("undecided: the interval") == 1
    assert ledger._repr_html_() == html
    saved = json.loads((tmp_path / "smoke" / "spectral_ball.json").read_text())
    assert [c["id"] for c in saved["claims"]] == ["a", "b", "c", "d", "e", "f"]


def test_findings_group_claims_by_verdict_and_choose_text_by_verdict():
    ledger = _ledger()
    text = render_findings(
        ledger.claims, {"a": {REPRODUCED: "because it converges", NOT_REPRODUCED: "because it does not"}}
    )
    assert text.index("**Reproduced.**") < text.index("**Not reproduced.**") < text.index("**Checks that hold")
    assert "because it converges" in text and "because it does not" not in text
    assert "Control — a random matrix" in text
    assert ledger.verdict_of("b") == NOT_REPRODUCED
    with pytest.raises(ParameterError, match="not in the ledger: zz"):
        render_findings(ledger.claims, {"zz": "text"})


def test_summary_counts_reproductions_among_measured_claims_only():
    ledger = Ledger("spectral_ball", scale="smoke", seed=0)
    ledger.check("i", claim="c", paper="p", ours="o", rule="r", kind=IDENTITY, holds=True)
    ledger.check("m", claim="c", paper="p", ours="o", rule="r", kind=MEASURED, holds=True,
                 control=Control("c", "o", holds=True))  # fmt: skip
    counts = summary_counts(ledger.to_dict())
    assert counts[0] == 0  # nothing reproduced: the identity is a check and the measured rule does not discriminate
    assert counts[3] == 1 and counts[5] == 1


def test_claims_page_renders_every_kind_badges_links_and_escapes_pipes(tmp_path):
    page = render_claims_page([_ledger().to_dict()], "smoke", figure="claims_summary.png")
    assert page.startswith("# The claims ledger")
    row = "| [spectral_ball](../notebooks/spectral_ball.ipynb) |"
    assert f"{row} 1 | 0 | 1 | 0 | 0 | 1 | 1 | 1 |" in page
    assert "| **all chapters** | **1** | **0** | **1** | **0** | **0** | **1** | **1** | **1** |" in page
    assert "y \\| z" in page
    for kind in KINDS:
        assert f"— *{kind}* (" in page
    assert "{ref}`checked here <spectral_ball-claims>`" in page
    assert "```{figure} claims_summary.png" in page
    assert page.count("border-radius") >= 5


def test_summary_figure_is_written(tmp_path):
    path = summary_figure([_ledger().to_dict()], tmp_path / "summary.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_empty_claims_page_says_how_to_fill_it():
    assert "No chapter has been run" in render_claims_page([], "book")


def test_timed_claims_may_differ_between_runs_only_in_their_measurements():
    from llmtheory.claims import deterministic_part

    def run(seconds):
        ledger = Ledger("spectral_ball", scale="smoke", seed=0)
        ledger.check("t", claim="fast", paper="2×", ours=f"{seconds} s", rule="≤ 1 s", kind=MEASURED,
                     holds=seconds <= 1, can_fail_because="a measured time", timed=True)  # fmt: skip
        ledger.check("u", claim="exact", paper="0", ours=f"{seconds} s", rule="= 0", kind=IDENTITY, holds=True)
        return ledger.to_dict()["claims"]

    assert deterministic_part(run(0.5)) != deterministic_part(run(2.0))  # the untimed row still differs
    assert deterministic_part(run(0.5))[0] == deterministic_part(run(2.0))[0]


def test_every_verdict_has_a_badge_colour():
    from llmtheory.claims import BADGE_COLOURS, FINDING_HEADINGS

    assert set(BADGE_COLOURS) == set(VERDICTS) == set(FINDING_HEADINGS)


def test_the_ledger_table_shows_the_verdict_next_to_the_id():
    ledger = Ledger("t", scale="smoke", seed=0)
    ledger.check("a", claim="c", paper="p", ours="o", rule="r", kind=MEASURED, holds=True, can_fail_because="x")
    assert list(ledger.table().columns[:2]) == ["verdict", "kind"]
