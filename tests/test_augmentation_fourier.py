"""Unit tests of the augmentation_fourier chapter's library: known small cases, identities, invariants."""

import itertools

import numpy as np
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
    assert np.allclose(counts, np.round(counts)) and counts @ [r.dimension for r in irreps] == 10
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
