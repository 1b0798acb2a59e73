import pytest

from llmtheory.params import (
    SCALES,
    Choice,
    Folder,
    Int,
    ListOf,
    Model,
    Optional,
    ParameterError,
    Real,
    Text,
    by_scale,
    check_choice,
    check_float,
    check_int,
    check_parameters,
    check_scale,
    check_seed,
    check_values,
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


SPEC = {
    "N": Int(minimum=1, maximum=10),
    "P": Real(0.0, 1.0),
    "LOSS": Choice("huber", "tukey"),
    "MODEL": Model(),
    "SHAPE": ListOf(Int(minimum=1), length=2, what="[rows, columns], two positive integers"),
    "URL": Text("an address"),
    "K": Optional(Int(minimum=0)),
    "DATA": Folder("a folder of scripts"),
}
GOOD = {"SCALE": "book", "SEED": 0, "N": 3, "P": 1, "LOSS": "huber", "MODEL": "m", "SHAPE": (4, 2), "URL": "",
        "K": None, "DATA": ""}  # fmt: skip


def test_check_parameters_normalises_in_place():
    namespace = dict(GOOD)
    check_parameters(namespace, SPEC)
    assert namespace["P"] == 1.0 and isinstance(namespace["P"], float)
    assert namespace["SHAPE"] == [4, 2]
    assert namespace["K"] is None


@pytest.mark.parametrize(
    ("name", "bad", "message"),
    [
        ("SCALE", "huge", "SCALE='huge' is not valid"),
        ("SEED", -1, "SEED=-1 must be ≥ 0"),
        ("N", 11, "N=11 must be ≤ 10"),
        ("P", "0.5", "P='0.5' must be a number"),
        ("LOSS", "l3", "LOSS='l3'.*'huber', 'tukey'"),
        ("MODEL", "", "MODEL='' must be a zoo name"),
        ("SHAPE", [4], r"SHAPE=\[4\] must be \[rows, columns\]"),
        ("SHAPE", [4, 0], r"SHAPE\[1\]=0 must be ≥ 1"),
        ("URL", None, "URL=None must be an address"),
        ("K", -2, "K=-2 must be ≥ 0"),
        ("DATA", "/no/such/folder", "DATA='/no/such/folder' must be a folder of scripts that exists"),
    ],
)
def test_check_parameters_names_the_bad_parameter(name, bad, message):
    namespace = {**GOOD, name: bad}
    with pytest.raises(ParameterError, match=message):
        check_parameters(namespace, SPEC)
    assert namespace[name] == bad  # nothing is half-written on failure


def test_check_parameters_refuses_a_declared_parameter_that_is_not_set():
    namespace = {k: v for k, v in GOOD.items() if k != "N"}
    with pytest.raises(ParameterError, match="N declared but not set"):
        check_parameters(namespace, SPEC)


def test_check_values_checks_only_given_values_and_refuses_undeclared_ones():
    assert check_values({"N": 2}, SPEC) == {"N": 2}
    with pytest.raises(ParameterError, match="BATCH not declared"):
        check_values({"BATCH": 2}, SPEC)


def test_folder_accepts_an_existing_directory(tmp_path):
    assert Folder()("DATA", tmp_path) == str(tmp_path)
