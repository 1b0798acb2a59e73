import pytest

from llmtheory.params import (
    SCALES,
    ParameterError,
    by_scale,
    check_choice,
    check_float,
    check_int,
    check_scale,
    check_seed,
)


def test_scales_are_the_three_tiers():
    assert SCALES == ("smoke", "book", "full")


@pytest.mark.parametrize("scale", SCALES)
def test_valid_scale_is_returned(scale):
    assert check_scale(scale) == scale


def test_bad_scale_names_parameter_and_choices():
    with pytest.raises(ParameterError) as error:
        check_scale("huge")
    message = str(error.value)
    assert "SCALE='huge'" in message
    assert all(repr(s) in message for s in SCALES)


def test_check_choice_lists_allowed_values():
    with pytest.raises(ParameterError, match=r"LOSS='l3'.*'huber', 'tukey'"):
        check_choice("LOSS", "l3", ["huber", "tukey"])


@pytest.mark.parametrize("bad", [-1, 1.5, "3", True])
def test_bad_seed_is_refused(bad):
    with pytest.raises(ParameterError, match="SEED"):
        check_seed(bad)


def test_int_and_float_bounds():
    assert check_int("N", 5, minimum=1, maximum=5) == 5
    with pytest.raises(ParameterError, match="N=0 must be ≥ 1"):
        check_int("N", 0, minimum=1)
    assert check_float("P", 1, maximum=1.0) == 1.0
    with pytest.raises(ParameterError, match="P=2 must be ≤ 1"):
        check_float("P", 2, maximum=1.0)
    with pytest.raises(ParameterError, match="must be a number"):
        check_float("P", "0.1")


def test_by_scale_picks_the_tier_and_validates():
    assert by_scale("smoke", smoke=1, book=2, full=3) == 1
    assert by_scale("full", smoke=1, book=2, full=3) == 3
    with pytest.raises(ParameterError):
        by_scale("medium", smoke=1, book=2, full=3)
