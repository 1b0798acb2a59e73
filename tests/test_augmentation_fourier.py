"""Unit tests of the augmentation_fourier chapter's library: known small cases, identities, invariants."""

import itertools

import numpy as np
import pandas as pd
import pytest

from llmtheory import augmentation_fourier as af


@pytest.fixture(scope="module")
def groups():
    out = {}
    for kind, n in [("cyclic", 6), ("dihedral", 4), ("dihedral", 5), ("symmetric", 4)]:
        group = af.named_group(kind, n)
        out[group.name] = (group, af.irreducible_representations(group))
    return out


def test_sum_of_squared_dimensions_and_class_count(groups):
    for group, irreps in groups.values():
        assert sum(r.dimension**2 for r in irreps) == group.order
        assert len(irreps) == len(group.classes)
    assert sorted(r.dimension for r in groups["S_4"][1]) == [1, 1, 2, 3, 3]


def test_irreps_are_unitary_homomorphisms_with_orthonormal_characters(groups):
    for group, irreps in groups.values():
        for r in irreps:
            products = np.einsum("gab,hbc->ghac", r.matrices, r.matrices)
            assert np.allclose(products, r.matrices[group.table])
            assert np.allclose(np.einsum("gba,gbc->gac", r.matrices.conj(), r.matrices), np.eye(r.dimension))
        gram = np.array([[a.character @ b.character.conj() for b in irreps] for a in irreps]) / group.order
        assert np.allclose(gram, np.eye(len(irreps)))


def test_dihedral_characters_match_closed_form(groups):
    group, irreps = groups["D_5"]
    rotations = [g for g in range(group.order) if set(np.diff(group.elements[g]) % 5) == {1}]
    two_dim = sorted(np.round(np.real(r.character[rotations]).sum(), 6) for r in irreps if r.dimension == 2)
    # Σ over rotations r^t of 2cos(2πjt/5) is 0 for j = 1, 2; each 2-dim character is 2 at the identity
    assert len(two_dim) == 2 and np.allclose(two_dim, 0.0)
    for r in irreps:
        if r.dimension == 2:
            values = np.sort(np.real(r.character[rotations]))
            j = 1 if np.isclose(values, 2 * np.cos(2 * np.pi / 5)).any() else 2
            expected = np.sort(2 * np.cos(2 * np.pi * j * np.arange(5) / 5))
            assert np.allclose(values, expected)


def test_cyclic_multipliers_are_the_dft_of_the_indicator(groups):
    group, irreps = groups["C_6"]
    generator_index = [g for g in range(6) if tuple(group.elements[g]) == (1, 2, 3, 4, 5, 0)][0]
    power = [group.identity]
    for _ in range(5):
        power.append(group.table[generator_index, power[-1]])
    subset = [power[0], power[1], power[3]]
    measure = af.subset_measure(group, subset)
    multipliers = sorted(np.round(af.fourier_transform(measure, r)[0, 0], 9) for r in irreps)
    indicator = np.zeros(6)
    indicator[[0, 1, 3]] = 1 / 3
    dft = sorted(np.round(np.fft.fft(indicator), 9))
    assert np.allclose(np.sort_complex(np.array(multipliers)), np.sort_complex(np.array(dft)))
    circle = af.circle_multipliers(6, [0, 1, 3], np.arange(6))
    assert np.allclose(circle, np.fft.fft(indicator))


def test_full_group_operator_is_the_projection_onto_invariants(groups):
    for group, _ in groups.values():
        for representation in (af.left_regular(group), af.feature_representation(group)):
            projection = af.averaging_operator(representation, range(group.order))
            assert np.allclose(projection @ projection, projection)
            assert np.allclose(projection, projection.T)
            assert np.allclose(representation @ projection, projection)


def test_fourier_decomposition_sums_back_to_the_operator(groups):
    rng = np.random.default_rng(1)
    for group, irreps in groups.values():
        subset = af.random_subset(group.order, group.order // 2, rng)
        measure = af.subset_measure(group, subset)
        transforms = [af.fourier_transform(measure, r) for r in irreps]
        assert np.allclose(af.inverse_fourier(transforms, irreps, group), measure)
        for representation in (af.left_regular(group), af.feature_representation(group)):
            operator = af.averaging_operator(representation, subset)
            parts = [af.fourier_component(representation, t, r, group) for t, r in zip(transforms, irreps, strict=True)]
            assert np.allclose(sum(parts), operator)
            for part, r in zip(parts, irreps, strict=True):
                assert np.allclose(part, operator @ af.isotypic_projector(representation, r, group))


def test_frobenius_energy_splits_over_irreps(groups):
    group, irreps = groups["S_4"]
    representation = af.feature_representation(group)
    counts = af.multiplicities(representation, irreps, group)
    assert np.allclose(counts, np.round(counts)) and np.isclose(counts @ [r.dimension for r in irreps], 10)
    subset = af.random_subset(group.order, 5, np.random.default_rng(2))
    measure = af.subset_measure(group, subset)
    energy = sum(c * np.sum(np.abs(af.fourier_transform(measure, r)) ** 2) for c, r in zip(counts, irreps, strict=True))
    assert np.isclose(energy, np.sum(af.averaging_operator(representation, subset) ** 2))


def test_expected_fourier_energy_matches_exhaustive_average(groups):
    group, irreps = groups["D_4"]
    nontrivial = [r for r in irreps if not r.is_trivial]
    for k in (1, 3, 5):
        energies = [
            np.sum(np.abs(af.fourier_transform(af.subset_measure(group, s), r)) ** 2)
            for s in itertools.combinations(range(group.order), k)
            for r in nontrivial[-1:]
        ]
        assert np.isclose(np.mean(energies), af.expected_fourier_energy(group.order, k, dimension=2))


def test_only_the_full_group_is_exactly_invariant(groups):
    group, irreps = groups["D_4"]
    sizes, defects = af.exhaustive_defects(group, irreps)
    assert len(sizes) == 2**group.order - 1
    assert np.all(defects[sizes < group.order] > 1e-6) and defects[sizes == group.order][0] < 1e-12


def test_feature_representation_and_literal_least_squares(groups):
    group, _ = groups["D_5"]
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, group.degree))
    representation = af.feature_representation(group)
    for g in range(group.order):
        assert np.allclose(af.quadratic_features(af.act(group, g, x)), af.quadratic_features(x) @ representation[g].T)
    y = rng.normal(size=40)
    features = af.quadratic_features(x)
    subset = [0, 3, 7]
    literal = af.augmented_least_squares(x, y, group, subset)
    fast = af.augmented_least_squares_fast(features.T @ features, features.T @ y, representation, subset)
    assert np.allclose(literal, fast)
    full = af.augmented_least_squares(x, y, group, range(group.order))
    assert af.invariance_gap(full, x, group) < 1e-9 < af.invariance_gap(literal, x, group)


def test_augmented_density_estimator_is_the_multiplier_times_the_plain_one():
    target = af.InvariantDensity(group_order=8, smoothness=1.0)
    samples = target.sample(500, np.random.default_rng(4))
    subset = [1, 2, 6]
    plain = af.empirical_coefficients(samples, 20)
    augmented = af.empirical_coefficients(af.augment_circle(samples, 8, subset), 20)
    assert np.allclose(augmented, af.circle_multipliers(8, subset, np.arange(1, 21)) * plain)
    # the sample has the target's coefficients on average: θ_8 = a/2, θ_1 = 0
    many = af.empirical_coefficients(target.sample(200_000, np.random.default_rng(5)), 8)
    assert abs(many[7] - 0.25) < 0.01 and abs(many[0]) < 0.01


def test_density_risk_curve_and_oracle_cutoff():
    target = af.InvariantDensity(group_order=8, smoothness=1.0)
    curve = af.density_risk_curve(target, 1000, np.zeros(200))
    assert np.isclose(curve[0], af.density_bias(target, 0)) and np.all(np.diff(curve[1:8]) == 0)
    cutoff = af.oracle_cutoff(target, 1000, np.zeros(200))
    assert cutoff % 8 == 0 and curve[cutoff] == curve.min()


def test_empirical_coefficients_equal_the_direct_sum():
    samples = np.random.default_rng(6).random(300)
    for max_frequency in (1, 7, 50):
        direct = np.exp(-2j * np.pi * np.outer(np.arange(1, max_frequency + 1), samples)).mean(axis=1)
        assert np.allclose(af.empirical_coefficients(samples, max_frequency), direct, atol=1e-12)


def test_monte_carlo_density_risk_agrees_with_exact_risk_within_its_standard_error():
    target = af.InvariantDensity(group_order=4, smoothness=1.0)
    frame = af.run_density_experiment(target, [400], [2], repetitions=300, seed=0)
    for estimator, rows in frame.groupby("estimator"):
        difference = rows["risk"] - rows["exact_risk"]
        standard_error = difference.std(ddof=1) / np.sqrt(len(difference))
        assert abs(difference.mean()) <= 3 * standard_error, estimator
        # the exact risk is not trivially matched: the Monte Carlo risk varies from sample to sample
        assert rows["risk"].std() > 0.05 * rows["exact_risk"].mean()


def test_coordinate_representation_is_the_action_and_a_homomorphism():
    group = af.named_group("cyclic", 5)
    matrices = af.coordinate_representation(group)
    x = np.random.default_rng(7).normal(size=(3, 5))
    for g in range(group.order):
        assert np.allclose(af.act(group, g, x), x @ matrices[g].T)
    assert np.allclose(np.einsum("gab,hbc->ghac", matrices, matrices), matrices[group.table])


def test_risk_given_inputs_is_the_average_over_the_noise():
    group = af.named_group("dihedral", 4)
    feature_rep = af.feature_representation(group)
    rng = np.random.default_rng(8)
    theta_star = af.invariant_target(feature_rep, rng)
    features = af.quadratic_features(rng.normal(size=(60, group.degree)))
    gram, subset, noise = features.T @ features, [0, 3, 5], 0.7
    realised = []
    for _ in range(4000):
        y = features @ theta_star + noise * rng.normal(size=60)
        theta = af.augmented_least_squares_fast(gram, features.T @ y, feature_rep, subset)
        realised.append(np.sum((theta - theta_star) ** 2))
    expected = af.risk_given_inputs(gram, feature_rep, subset, noise)
    assert abs(np.mean(realised) - expected) <= 3 * np.std(realised) / np.sqrt(len(realised))


def test_growing_regression_matches_the_least_squares_closed_forms():
    frame = af.run_growing_regression_experiment([16], [2048], repetitions=3, seed=0)
    risk = frame.groupby("estimator")["risk"].mean()
    # no augmentation: σ² E tr((XᵀX)⁻¹) = m/(n − m − 1); full: one invariant direction, about 1/n
    assert np.isclose(risk["none"], 16 / (2048 - 17), rtol=0.05)
    assert np.isclose(risk["full"], 1 / 2048, rtol=0.2)
    # a quarter of the group: about |G|/k = 4 times the full risk (eq. excess)
    assert 3 < risk["k=|G|/4"] / risk["full"] < 5


def _synthetic_frame(exponents: dict, sizes=(100, 400, 1600, 6400), repetitions=20, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for rep in range(repetitions):
        wobble = rng.normal(scale=0.05, size=len(sizes))  # shared by the estimators, as with shared samples
        for estimator, exponent in exponents.items():
            for n, w in zip(sizes, wobble, strict=True):
                noise = rng.normal(scale=0.02)
                rows.append({"n": n, "estimator": estimator, "rep": rep, "risk": n**exponent * np.exp(w + noise)})
    return pd.DataFrame(rows)


def test_rate_evidence_passes_a_parallel_estimator_and_fails_a_slower_one():
    evidence = af.rate_evidence(_synthetic_frame({"none": -0.5, "k=2": -1.0, "full": -1.0}), exponent=-1.0)
    assert abs(evidence.slopes["full"].value + 1.0) < 0.02
    assert evidence.slopes["full"].low < evidence.slopes["full"].value < evidence.slopes["full"].high
    assert evidence.test("k=2").holds and evidence.test("k=2").decisive
    assert not evidence.test("none").holds and evidence.test("none").decisive
    assert "minus full" in evidence.describe("none")


def test_relative_excess_recovers_a_known_fraction():
    full = _synthetic_frame({"full": -1.0})
    # R_none = 4 R_G and R_k = 1.75 R_G: (1.75 − 1)/(4 − 1) = 0.25 in every repetition
    frame = pd.concat(
        [
            full,
            full.assign(estimator="none", risk=4 * full["risk"]),
            full.assign(estimator="k=3", risk=1.75 * full["risk"]),
        ]
    ).assign(defect=0.5)
    excess = af.relative_excess(frame, group_order=10)
    assert np.isclose(excess["measured"].iloc[0], 0.25) and excess["standard error"].iloc[0] < 1e-9
    assert np.isclose(excess["predicted (eq. energy)"].iloc[0], 7 / 27)
    assert np.isclose(excess["bound: mean δ_S²"].iloc[0], 0.25)
    assert af.matches_large_n_formula(excess)  # 0.25 / (7/27) = 0.96: within 0.15 of the formula
    assert not af.matches_large_n_formula(excess.assign(measured=0.1))
    assert not af.matches_prediction(excess)  # 0.25 vs 7/27 with no Monte Carlo error: not an identity
    assert af.matches_prediction(excess.assign(**{"standard error": 0.01}))


def test_excess_by_regime_pools_only_large_n_and_the_finite_n_rule_can_fail():
    sizes = (100, 200, 1000, 2000)  # D = 50: n/D = 2 and 4 one by one, 20 and 40 pooled
    full = _synthetic_frame({"full": -1.0}, sizes=sizes)
    # at small n the partial excess is a tenth of (R_none − R_G), at large n a quarter (the formula: 7/27)
    fraction = np.where(full["n"] < 1000, 0.1, 0.25)
    frame = pd.concat(
        [
            full,
            full.assign(estimator="none", risk=4 * full["risk"]),
            full.assign(estimator="k=3", risk=(1 + 3 * fraction) * full["risk"]),
        ]
    ).assign(defect=0.5)
    regimes = af.excess_by_regime(frame, group_order=10, features=50)
    assert list(regimes) == ["n/D ≥ 20", "n/D = 2.0", "n/D = 4.0"]
    assert np.isclose(regimes["n/D ≥ 20"]["measured"].iloc[0], 0.25)
    assert np.isclose(regimes["n/D = 2.0"]["measured"].iloc[0], 0.1)
    test = af.finite_n_test(regimes)
    assert test.holds and test.decisive
    above = {label: e.assign(measured=0.4) if label == "n/D = 4.0" else e for label, e in regimes.items()}
    assert not af.finite_n_test(above).holds and af.finite_n_test(above).decisive
    assert "n/D = 2.0: 0.39–0.39" in af.describe_ratios(regimes)


def test_partial_augmentation_risk_is_the_same_for_every_subset_of_a_given_size():
    # density: the oracle risk depends on S only through Σ over a residue period of |m_ℓ(S)|² = m/k − 1
    target = af.InvariantDensity(group_order=8, smoothness=1.0)
    risks = {}
    for subset in itertools.combinations(range(8), 2):
        energy = np.abs(af.circle_multipliers(8, subset, np.arange(1, 321))) ** 2
        risks[subset] = af.density_risk_curve(target, 3000, energy).min()
    assert np.allclose(list(risks.values()), risks[(0, 4)], rtol=1e-12, atol=0)  # (0, 4): the subgroup
    # least squares with an orthogonal design (Gram = nI): σ²‖P_S‖_F²/n = σ² |G|/(k n) for every S
    group = af.named_group("cyclic", 8)
    feature_rep = af.coordinate_representation(group)
    for subset in [(0, 4), (0, 1), (2, 3, 5, 7), (0, 2, 4, 6)]:
        risk = af.risk_given_inputs(100 * np.eye(8), feature_rep, list(subset), noise=1.0)
        assert np.isclose(risk, 8 / (len(subset) * 100))
    # a subset of another size differs: the rule is about the size, not the choice
    assert not np.isclose(af.risk_given_inputs(100 * np.eye(8), feature_rep, [0, 1, 2], 1.0), 8 / 200)


def test_growing_estimators_include_the_index_four_subgroup_as_shifts():
    group = af.named_group("cyclic", 16)
    assert [int(e[0]) for e in group.elements] == list(range(16))  # element g is the shift by g
    spec = af.growing_estimator_sizes(16)
    subgroup = af.draw_subset(16, spec[af.SUBGROUP], np.random.default_rng(0))
    assert subgroup.tolist() == [0, 4, 8, 12] and spec["k=|G|/4"] == 4
    assert set(group.table[np.ix_(subgroup, subgroup)].ravel()) == set(subgroup.tolist())  # closed: a subgroup
    assert af.draw_subset(16, None, np.random.default_rng(0)).tolist() == [0]
    assert len(af.draw_subset(16, 5, np.random.default_rng(0))) == 5


def test_rotations_make_least_squares_on_quadratic_features_exactly_invariant():
    group = af.named_group("dihedral", 6)
    rotations = af.rotations(group)
    assert len(rotations) == 6 and group.identity in rotations
    result = af.rotation_counterexample(group, n=200, seed=0)
    assert result["δ_S (features)"] < 1e-12 and result["invariance gap"] < 1e-9
    assert np.isclose(result["δ_S (regular)"], 1.0)
    # a random strict subset of the same size is not invariant
    gaps = af.invariance_gaps_by_size(group, n=200, seed=0)
    assert gaps["invariance gap"].iloc[5] > 1e-6 and gaps["invariance gap"].iloc[-1] < 1e-9


def test_rate_evidence_minimax_and_partial_rules():
    frame = _synthetic_frame({"none": -0.5, "k=|G|/4": -1.0, af.SUBGROUP: -1.0, "full": -1.0})
    evidence = af.rate_evidence(frame, exponent=-1.0)
    assert evidence.minimax("full").holds and not evidence.minimax("none").holds
    assert evidence.separates()
    same = af.rate_evidence(_synthetic_frame({"none": -1.0, "full": -1.0}), exponent=-1.0)
    assert not same.separates()  # a control that keeps the rate: the experiment would not separate them
    assert evidence.partial_test().holds
    slow = _synthetic_frame({"none": -0.5, "k=|G|/4": -1.0, af.SUBGROUP: -0.7, "full": -1.0})
    assert not af.rate_evidence(slow, exponent=-1.0).partial_test().holds


def test_relative_excess_by_n_and_impossibility_evidence():
    full = _synthetic_frame({"full": -1.0}, sizes=(100, 400))
    frame = pd.concat(
        [
            full,
            full.assign(estimator="none", risk=4 * full["risk"]),
            full.assign(estimator="k=3", risk=1.75 * full["risk"]),
        ]
    ).assign(defect=0.5)
    table = af.relative_excess_by_n(frame, group_order=10, features=50)
    assert table.shape == (2, 1) and np.allclose(table.to_numpy(), 0.25 / (7 / 27))
    assert "n/D = 2.0" in table.index[0]
    exhaustive = pd.DataFrame(
        {
            "group": ["C_6"],
            "strict subsets": [62],
            "strict subsets with δ_S < 1e-9": [0],
            "min δ_S over strict subsets": [0.2],
            "δ_G": [1e-16],
        }
    )
    text, holds = af.impossibility_evidence(exhaustive)
    assert holds and "< 1e-12" in text
    assert not af.impossibility_evidence(exhaustive.assign(**{"strict subsets with δ_S < 1e-9": 1}))[1]


def test_projection_of_the_plain_fit_is_the_control_the_finite_n_rule_rejects():
    # P_S θ̂_none is the multiplier picture itself: its relative excess is the formula at every n, so the
    # finite-n rule ("at most the formula") must not pass it, while augmented least squares lies below
    group = af.named_group("dihedral", 4)
    features = 10
    frame = af.run_regression_experiment(group, [13, 25, 400], [2, 4], repetitions=16, seed=3)
    none = frame[frame["estimator"] == "none"]
    assert np.allclose(none["risk"], none["projection risk"])  # no augmentation: the same estimator
    control = af.excess_by_regime(frame, group.order, features, column="projection risk")
    smallest = control["n/D = 1.3"]
    ratio = smallest["measured"] / smallest["predicted (eq. energy)"]
    assert ((ratio - 1).abs() < 3 * smallest["standard error"] / smallest["predicted (eq. energy)"] + 0.05).all()
    assert not af.finite_n_test(control).holds
    assert af.finite_n_test(af.excess_by_regime(frame, group.order, features)).holds


def test_circle_multipliers_against_dft_and_block_norms(groups):
    from llmtheory import augmentation_fourier_experiment as experiment

    cyclic, irreps = groups["C_6"]
    shift, error = experiment.circle_multipliers_against_dft(cyclic, irreps, [0, 1, 3])
    assert sorted(shift) == sorted(int(cyclic.elements[g][0]) for g in (0, 1, 3)) and error < 1e-9
    dihedral, irreps = groups["D_5"]
    blocks = experiment.block_norms(dihedral, irreps, [0, 2, 3])
    assert (blocks["d_π"] ** 2).sum() == dihedral.order
    present = blocks["copies in features"] > 0
    assert present.any() and blocks["‖P_S E_π‖_op"][~present].isna().all()
    assert np.allclose(blocks["‖μ̂_S(π)‖_op"][present], blocks["‖P_S E_π‖_op"][present])


def test_risk_and_approximation_figures_have_two_panels():
    from llmtheory import augmentation_fourier_experiment as experiment

    frame = _synthetic_frame({"none": -0.5, "k=2": -1.0, "full": -1.0})
    evidence = af.rate_evidence(frame, exponent=-1.0)
    fig = experiment.plot_risk_curves([(frame, evidence, "a"), (frame, evidence, "b")])
    assert len(fig.axes) == 2 and all(len(ax.lines) == 3 + 1 for ax in fig.axes)  # estimators and the rate
    excess = pd.DataFrame(
        {"k": [2, 4], "measured": [0.4, 0.2], "standard error": [0.01, 0.01], "bound: mean δ_S²": [0.5, 0.3]}
    )
    fig = experiment.plot_approximation_error([({"a": excess}, 8, "a"), ({"b": excess, "c": excess}, 8, "b")])
    assert len(fig.axes) == 2 and [len(ax.containers) for ax in fig.axes] == [1, 2]  # one errorbar per frame
