"""Data augmentation as averaging over a subset of a finite group, seen through its Fourier transform.

Tahmasebi, Weber & Jegelka, "Data Augmentation: A Fourier Analysis Perspective" (COLT 2026,
arXiv 2606.24418). Only the abstract of the paper is verified; the equations below are our
reconstruction of its framework, and each docstring says which step it implements.

* A finite group ``G`` acts on inputs; augmenting with ``S ⊆ G`` replaces a function ``f`` by
  ``P_S f(x) = (1/|S|) Σ_{g∈S} f(g x)`` (the averaging operator).
* ``P_S = ρ(μ_S)`` with ``μ_S = 1_S / |S|``. Fourier transform on ``G``:
  ``μ̂_S(π) = Σ_g μ_S(g) π(g)`` for each irreducible representation ``π``; for an abelian group these
  are scalars, the *multipliers* ``m_χ(S) = (1/|S|) Σ_{g∈S} χ(g)``.
* ``P_G`` is the projection onto invariants (``μ̂_G(π) = 0`` for every nontrivial ``π``); ``S ⊊ G`` always
  leaves some ``μ̂_S(π) ≠ 0`` (Fourier uniqueness), the impossibility result.

Groups are permutation groups from ``sympy.combinatorics``; characters and irreducible representations
are *computed* from the regular representation, never typed in.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .claims import Estimate, Test, all_of, at_most, within
from .params import Choice, Int, Real
from .seeding import make_rng

# --------------------------------------------------------------------------------------------------
# Finite groups as permutation groups
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FiniteGroup:
    """A finite permutation group: ``elements[g]`` is the array form of ``g`` (``g`` sends ``i`` to
    ``elements[g][i]``), ``table[g, h]`` the index of ``g∘h``, ``inverse[g]`` that of ``g⁻¹``."""

    name: str
    elements: np.ndarray
    table: np.ndarray
    inverse: np.ndarray
    identity: int
    classes: list[np.ndarray] = field(repr=False)

    @property
    def order(self) -> int:
        return len(self.elements)

    @property
    def degree(self) -> int:
        """The number of points the group permutes."""
        return self.elements.shape[1]

    @property
    def class_of(self) -> np.ndarray:
        """``class_of[g]``: the index of the conjugacy class of ``g``."""
        labels = np.empty(self.order, dtype=int)
        for c, members in enumerate(self.classes):
            labels[members] = c
        return labels


def group_from_permutations(name: str, permutations) -> FiniteGroup:
    """Multiplication table, inverses and conjugacy classes of a list of permutations (array forms)."""
    elements = np.array([list(p) for p in permutations], dtype=int)
    index = {tuple(p): i for i, p in enumerate(elements)}
    table = np.array([[index[tuple(g[h])] for h in elements] for g in elements], dtype=int)
    identity = index[tuple(range(elements.shape[1]))]
    inverse = np.argmax(table == identity, axis=1)
    unseen, classes = set(range(len(elements))), []
    while unseen:
        g = min(unseen)
        members = np.unique([table[table[h, g], inverse[h]] for h in range(len(elements))])
        classes.append(members)
        unseen -= set(members.tolist())
    return FiniteGroup(name, elements, table, inverse, identity, classes)


def named_group(kind: str, n: int) -> FiniteGroup:
    """``cyclic`` C_n, ``dihedral`` D_n (order 2n, on the n vertices of a polygon), ``symmetric`` S_n,
    ``alternating`` A_n, built with ``sympy.combinatorics``."""
    from sympy.combinatorics.named_groups import (
        AlternatingGroup,
        CyclicGroup,
        DihedralGroup,
        SymmetricGroup,
    )

    builders = {
        "cyclic": (CyclicGroup, "C"),
        "dihedral": (DihedralGroup, "D"),
        "symmetric": (SymmetricGroup, "S"),
        "alternating": (AlternatingGroup, "A"),
    }
    builder, letter = builders[kind]
    permutations = sorted(p.array_form for p in builder(n).generate())
    return group_from_permutations(f"{letter}_{n}", permutations)


def act(group: FiniteGroup, g: int, x: np.ndarray) -> np.ndarray:
    """``g·x`` for ``x`` in R^degree (last axis): ``(g·x)_{g(i)} = x_i``, so ``g·(h·x) = (gh)·x``."""
    return x[..., group.elements[group.inverse[g]]]


# --------------------------------------------------------------------------------------------------
# Representations, characters, irreducible representations (computed)
# --------------------------------------------------------------------------------------------------


def left_regular(group: FiniteGroup) -> np.ndarray:
    """``L[h]``: the |G|×|G| permutation matrix of ``e_g ↦ e_{hg}`` (the left regular representation)."""
    n = group.order
    matrices = np.zeros((n, n, n))
    for h in range(n):
        matrices[h, group.table[h], np.arange(n)] = 1.0
    return matrices


def right_regular(group: FiniteGroup) -> np.ndarray:
    """``R[h]``: ``e_g ↦ e_{g h⁻¹}``; it commutes with every ``L[h']``."""
    n = group.order
    matrices = np.zeros((n, n, n))
    for h in range(n):
        matrices[h, group.table[np.arange(n), group.inverse[h]], np.arange(n)] = 1.0
    return matrices


def _hermitian_weights(group: FiniteGroup, rng: np.random.Generator, on_classes: bool) -> np.ndarray:
    """Random complex weights ``c`` with ``c(g⁻¹) = conj c(g)`` (constant on classes if asked)."""
    labels = group.class_of if on_classes else np.arange(group.order)
    raw = rng.normal(size=labels.max() + 1) + 1j * rng.normal(size=labels.max() + 1)
    weights = raw[labels]
    return (weights + np.conj(weights[group.inverse])) / 2


def _clusters(values: np.ndarray, tolerance: float = 1e-7) -> list[np.ndarray]:
    """Indices of sorted eigenvalues grouped where consecutive gaps are below ``tolerance``."""
    breaks = np.flatnonzero(np.diff(values) > tolerance) + 1
    return np.split(np.arange(len(values)), breaks)


@dataclass(frozen=True)
class Irrep:
    """One irreducible representation: its dimension, character (per element) and matrices (per element)."""

    dimension: int
    character: np.ndarray
    matrices: np.ndarray

    @property
    def is_trivial(self) -> bool:
        return self.dimension == 1 and np.allclose(self.character, 1.0)


def irreducible_representations(group: FiniteGroup, seed: int = 0) -> list[Irrep]:
    """Every irrep of ``group``, computed from the regular representation (Burnside's method, numerically).

    1. A random Hermitian *central* element ``z = Σ_g c(class g) g`` acts on the isotypic component
       ``V_π ≅ π ⊗ π*`` of C[G] by the scalar ``ω_π(z)``, distinct for distinct ``π`` with probability 1:
       the eigenspaces of ``L(z)`` are the isotypic components, of dimension ``d_π²``.
    2. ``χ_π(g) = tr(L(g)|V_π) / d_π``.
    3. A random Hermitian element acting on the *right* splits ``V_π`` into ``d_π`` copies of ``π``;
       the matrices of ``L`` on one copy, in an orthonormal basis, are a unitary ``π``.
    The trivial representation comes first, then by dimension.
    """
    rng = np.random.default_rng(seed)
    left, right = left_regular(group), right_regular(group)
    # step 1: L(z) for a random Hermitian central z; its eigenspaces are the isotypic components V_π
    centre = np.tensordot(_hermitian_weights(group, rng, on_classes=True), left, axes=1)
    values, vectors = np.linalg.eigh(centre)
    irreps = []
    for block in _clusters(values):
        basis = vectors[:, block]
        dimension = math.isqrt(len(block))
        assert dimension**2 == len(block), "an isotypic component must have dimension d²"
        restricted = np.einsum("ia,gij,jb->gab", basis.conj(), left, basis)
        # step 2: χ_π(g) = tr(L(g)|V_π) / d_π
        character = np.trace(restricted, axis1=1, axis2=2) / dimension
        # step 3: a random right action splits V_π into d_π copies of π; L on one copy is π(g)
        mixer = np.tensordot(_hermitian_weights(group, rng, on_classes=False), right, axes=1)
        split_values, split_vectors = np.linalg.eigh(basis.conj().T @ mixer @ basis)
        assert dimension == 1 or split_values[dimension] - split_values[dimension - 1] > 1e-7
        copy = basis @ split_vectors[:, :dimension]
        matrices = np.einsum("ia,gij,jb->gab", copy.conj(), left, copy)
        irreps.append(Irrep(dimension, character, matrices))
    return sorted(irreps, key=lambda r: (not r.is_trivial, r.dimension, -r.character.real.sum()))


def character_table(group: FiniteGroup, irreps: list[Irrep]) -> np.ndarray:
    """``table[π, c]``: ``χ_π`` on a representative of conjugacy class ``c``."""
    representatives = [members[0] for members in group.classes]
    return np.array([r.character[representatives] for r in irreps])


# --------------------------------------------------------------------------------------------------
# The averaging operator and its Fourier decomposition
# --------------------------------------------------------------------------------------------------


def subset_measure(group: FiniteGroup, subset) -> np.ndarray:
    """Eq. ``augmentation_fourier-eq-average``: ``μ_S = 1_S / |S|`` as a vector over the group (a probability on
    ``G``)."""
    measure = np.zeros(group.order)
    measure[np.asarray(subset, dtype=int)] = 1.0
    return measure / measure.sum()


def averaging_operator(representation: np.ndarray, subset) -> np.ndarray:
    """Eq. ``augmentation_fourier-eq-average``: ``P_S = (1/|S|) Σ_{g∈S} ρ(g)`` for ``representation[g] = ρ(g)``:
    augmentation with ``S``."""
    return representation[np.asarray(subset, dtype=int)].mean(axis=0)


def fourier_transform(measure: np.ndarray, irrep: Irrep) -> np.ndarray:
    """Eq. ``augmentation_fourier-eq-fourier`` (left): ``μ̂(π) = Σ_g μ(g) π(g)``; for a 1-dimensional ``π`` the
    multiplier ``m_χ(S)``."""
    return np.tensordot(measure, irrep.matrices, axes=1)


def inverse_fourier(transforms: list[np.ndarray], irreps: list[Irrep], group: FiniteGroup) -> np.ndarray:
    """Eq. ``augmentation_fourier-eq-fourier`` (right), Fourier inversion:
    ``μ(g) = (1/|G|) Σ_π d_π tr(π(g⁻¹) μ̂(π))``."""
    total = np.zeros(group.order, dtype=complex)
    for transform, irrep in zip(transforms, irreps, strict=True):
        inverse_matrices = irrep.matrices[group.inverse]
        total += irrep.dimension * np.einsum("gab,ba->g", inverse_matrices, transform)
    return total / group.order


def isotypic_projector(representation: np.ndarray, irrep: Irrep, group: FiniteGroup) -> np.ndarray:
    """Eq. ``augmentation_fourier-eq-decomposition`` (right): ``E_π = (d_π/|G|) Σ_g conj χ_π(g) ρ(g)``, the
    projection onto the ``π``-isotypic component of ``ρ``."""
    return irrep.dimension / group.order * np.tensordot(np.conj(irrep.character), representation, axes=1)


def fourier_component(
    representation: np.ndarray, transform: np.ndarray, irrep: Irrep, group: FiniteGroup
) -> np.ndarray:
    """Eq. ``augmentation_fourier-eq-decomposition`` (left): ``P_S E_π = (d_π/|G|) Σ_g tr(π(g⁻¹) μ̂_S(π)) ρ(g)``,
    the part of ``P_S`` that only sees ``μ̂_S(π)``."""
    coefficients = np.einsum("gab,ba->g", irrep.matrices[group.inverse], transform)
    return irrep.dimension / group.order * np.tensordot(coefficients, representation, axes=1)


def multiplicities(representation: np.ndarray, irreps: list[Irrep], group: FiniteGroup) -> np.ndarray:
    """``⟨χ_ρ, χ_π⟩ = (1/|G|) Σ_g tr ρ(g) conj χ_π(g)``: how many copies of each ``π`` ``ρ`` contains."""
    trace = np.trace(representation, axis1=1, axis2=2)
    return np.array([np.real(trace @ np.conj(r.character)) / group.order for r in irreps])


def invariance_defect(measure: np.ndarray, irreps: list[Irrep], present=None) -> float:
    """Eq. ``augmentation_fourier-eq-defect``: ``δ_S = max_{π ≠ 1} ‖μ̂_S(π)‖_op`` over the irreps ``present`` in
    the hypothesis class (default all): equal to ``‖P_S − P_G‖_op``, and zero iff ``P_S`` maps the class into
    invariant functions."""
    norms = [
        np.linalg.norm(fourier_transform(measure, r), ord=2)
        for i, r in enumerate(irreps)
        if not r.is_trivial and (present is None or present[i])
    ]
    return float(max(norms, default=0.0))


def expected_fourier_energy(group_order: int, k: int, dimension: int = 1) -> float:
    """``E ‖μ̂_S(π)‖_F² = d_π (|G| − k) / (k (|G| − 1))`` for nontrivial ``π`` and ``S`` a uniformly random
    ``k``-subset (derived in the chapter with sympy): the approximation error of partial augmentation."""
    return dimension * (group_order - k) / (k * (group_order - 1))


def exhaustive_defects(group: FiniteGroup, irreps: list[Irrep]) -> tuple[np.ndarray, np.ndarray]:
    """For every non-empty subset ``S ⊆ G`` (bitmask order): ``|S|`` and ``δ_S`` (all irreps present)."""
    masks = np.array(list(itertools.product([0.0, 1.0], repeat=group.order))[1:])
    sizes = masks.sum(axis=1)
    measures = masks / sizes[:, None]
    defects = np.zeros(len(masks))
    for irrep in irreps:
        if irrep.is_trivial:
            continue
        transforms = np.tensordot(measures, irrep.matrices, axes=1)
        defects = np.maximum(defects, np.linalg.norm(transforms, ord=2, axis=(1, 2)))
    return sizes.astype(int), defects


def random_subset(group_order: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``S``: ``k`` distinct group elements drawn uniformly (once per training set, our reading)."""
    return np.sort(rng.choice(group_order, size=k, replace=False))


def draw_subset(group_order: int, spec, rng: np.random.Generator, identity: int = 0) -> np.ndarray:
    """The subset an estimator augments with: ``spec`` is ``None`` (no augmentation: the identity alone), a
    size ``k`` (a uniformly random ``k``-subset) or a tuple of group elements (that fixed subset, drawing
    nothing from ``rng``)."""
    if spec is None:
        return np.array([identity])
    if isinstance(spec, tuple):
        return np.asarray(spec, dtype=int)
    return random_subset(group_order, spec, rng)


def rotations(group: FiniteGroup) -> list[int]:
    """The rotations of a dihedral group ``D_d`` on the polygon's vertices: the elements with
    ``g(i+1) − g(i) ≡ 1 (mod d)`` (a subgroup of index 2)."""
    return [g for g in range(group.order) if set(np.diff(group.elements[g]) % group.degree) == {1}]


# --------------------------------------------------------------------------------------------------
# Problem 1: projection density estimation on the circle, G = C_m acting by translations x ↦ x + g/m
# --------------------------------------------------------------------------------------------------


@functools.cache
def _period_cdf(smoothness: float, amplitude: float) -> tuple[np.ndarray, np.ndarray]:
    """The CDF of one period, ``u + Σ_j a j^{-(s+1/2)} sin(2πju)/(2πj)``, on a fine grid of [0, 1] (the same
    for every group order: ``p*(x) = q(mx)``)."""
    u = np.linspace(0.0, 1.0, 2**12 + 1)
    j = np.arange(1, 1001)  # coefficients fall like j^{-(s+3/2)}: the dropped tail is below 1e-4 for s ≥ 1/2
    weights = amplitude * j ** -(smoothness + 0.5) / (2 * np.pi * j)
    return u + np.sin(2 * np.pi * np.outer(u, j)) @ weights, u


@functools.cache
def _kept_energy(smoothness: float, amplitude: float) -> np.ndarray:
    """``Σ_{j' ≤ j} θ_{mj'}²`` for ``j = 0..10⁶`` (for the bias of a cutoff)."""
    j = np.arange(1, 10**6)
    return np.concatenate([[0.0], np.cumsum((amplitude * j ** -(smoothness + 0.5) / 2) ** 2)])


@dataclass(frozen=True)
class InvariantDensity:
    """``p*(x) = 1 + Σ_{j≥1} a j^{-(s+1/2)} cos(2π m j x)`` on [0, 1): invariant under ``x ↦ x + 1/m``,
    Sobolev smoothness ``s`` (just), so the projection estimator's rate is the minimax ``n^{-2s/(2s+1)}``."""

    group_order: int
    smoothness: float
    amplitude: float = 0.5

    def coefficient(self, frequencies: np.ndarray) -> np.ndarray:
        """``θ_ℓ = ∫ p* e^{-2πiℓx}``: ``a j^{-(s+1/2)}/2`` at ``ℓ = ±mj``, 0 elsewhere, 1 at ``ℓ = 0``."""
        frequencies = np.abs(np.asarray(frequencies))
        j = frequencies // self.group_order
        on_lattice = (frequencies % self.group_order == 0) & (j > 0)
        values = np.where(on_lattice, self.amplitude * np.maximum(j, 1) ** -(self.smoothness + 0.5) / 2, 0.0)
        return np.where(frequencies == 0, 1.0, values)

    def density(self, x: np.ndarray, terms: int = 4000) -> np.ndarray:
        j = np.arange(1, terms + 1)
        waves = np.cos(2 * np.pi * self.group_order * np.outer(x, j))
        return 1 + waves @ (self.amplitude * j ** -(self.smoothness + 0.5))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``X = (U + J)/m``: ``J`` uniform on ``{0..m-1}``, ``U`` one period drawn by inverting its CDF."""
        cdf, u = _period_cdf(self.smoothness, self.amplitude)
        one_period = np.interp(rng.random(n), cdf, u)
        return (one_period + rng.integers(0, self.group_order, size=n)) / self.group_order


def circle_multipliers(group_order: int, subset, frequencies: np.ndarray) -> np.ndarray:
    """Eq. ``augmentation_fourier-eq-fourier`` for the characters of the cyclic group ``Z_m``:
    ``m_ℓ(S) = (1/|S|) Σ_{g∈S} e^{-2πiℓg/m}``; translation by ``g/m`` multiplies the ``ℓ``-th empirical
    coefficient by ``e^{-2πiℓg/m}``, so augmentation multiplies it by the character average over ``S``."""
    subset = np.asarray(subset)
    # m_ℓ(S): the character e^{-2πiℓg/m} averaged over g ∈ S
    return np.exp(-2j * np.pi * np.outer(frequencies, subset) / group_order).mean(axis=1)


def _powers(base: np.ndarray, count: int) -> np.ndarray:
    """``base[:, None] ** arange(count)`` by repeated multiplication (one complex exponential per sample)."""
    out = np.ones((len(base), count), dtype=complex)
    if count > 1:
        out[:, 1:] = np.cumprod(np.broadcast_to(base[:, None], (len(base), count - 1)), axis=1)
    return out


def empirical_coefficients(samples: np.ndarray, max_frequency: int) -> np.ndarray:
    """``θ̂_ℓ = (1/N) Σ_i e^{-2πiℓX_i}`` for ``ℓ = 1..max_frequency`` (the projection estimator).

    Writing ``ℓ = aB + b`` with ``0 ≤ b < B ≈ √ℓ_max`` turns the N × ℓ_max sum into the matrix product
    ``Σ_i e^{-2πiaBX_i} e^{-2πibX_i}`` of two N × √ℓ_max blocks (exact, and fast enough for N = 10⁵)."""
    block = math.isqrt(max_frequency) + 1
    base = np.exp(-2j * np.pi * np.asarray(samples, dtype=float))
    low = _powers(base, block)  # e^{-2πibX}, b < B
    high = _powers(low[:, -1] * base, -(-(max_frequency + 1) // block))  # e^{-2πiaBX}
    return (high.T @ low).ravel()[1 : max_frequency + 1] / len(samples)


def augment_circle(samples: np.ndarray, group_order: int, subset) -> np.ndarray:
    """The augmented sample ``{X_i + g/m mod 1 : g ∈ S}`` (what a practitioner feeds the estimator)."""
    shifts = np.asarray(subset) / group_order
    return ((samples[:, None] + shifts[None, :]) % 1.0).ravel()


def density_risk_curve(target: InvariantDensity, n: int, multiplier_energy: np.ndarray) -> np.ndarray:
    """Expected ``‖p̂_S − p*‖²`` of the augmented projection estimator keeping frequencies ``|ℓ| ≤ L``,
    for every ``L = 0..len(multiplier_energy)``:
    ``(2/n)[Σ_{invariant ℓ ≤ L}(1 − θ_ℓ²) + Σ_{other ℓ ≤ L} |m_ℓ(S)|²] + 2 Σ_{ℓ > L} θ_ℓ²``,
    where ``multiplier_energy[ℓ-1] = |m_ℓ(S)|²`` (all ones: no augmentation)."""
    ell = np.arange(1, len(multiplier_energy) + 1)
    theta = target.coefficient(ell)
    invariant = ell % target.group_order == 0
    variance = np.concatenate([[0.0], np.cumsum(np.where(invariant, 1 - theta**2, multiplier_energy))])
    return 2 * variance / n + density_bias(target, np.arange(len(multiplier_energy) + 1))


def density_bias(target: InvariantDensity, cutoff) -> np.ndarray:
    """``2 Σ_{ℓ > L} θ_ℓ²``: the squared L² norm of what a cutoff ``L`` discards (series summed to 10⁶ m)."""
    kept = _kept_energy(target.smoothness, target.amplitude)
    return 2 * (kept[-1] - kept[np.asarray(cutoff) // target.group_order])


def oracle_cutoff(target: InvariantDensity, n: int, multiplier_energy: np.ndarray) -> int:
    """The cutoff ``L`` minimising the exact expected risk (oracle tuning, as in minimax upper bounds)."""
    return int(np.argmin(density_risk_curve(target, n, multiplier_energy)))


# --------------------------------------------------------------------------------------------------
# Problem 2: least squares on quadratic features, G = D_d permuting the coordinates of x ∈ R^d
# --------------------------------------------------------------------------------------------------


def quadratic_pairs(dimension: int) -> list[tuple[int, int]]:
    """Index pairs ``(i, j), i ≤ j`` of the features ``φ``: ``x_i x_j`` (i < j), ``(x_i² − 1)/√2`` (i = j)."""
    return [(i, j) for i in range(dimension) for j in range(i, dimension)]


def quadratic_features(x: np.ndarray) -> np.ndarray:
    """``φ(x)``: orthonormal in L²(N(0, I)) (Hermite polynomials of degree 2)."""
    i, j = np.array(quadratic_pairs(x.shape[-1])).T
    products = x[..., i] * x[..., j]
    return np.where(i == j, (products - 1) / np.sqrt(2), products)


def feature_representation(group: FiniteGroup) -> np.ndarray:
    """``A[g]`` with ``φ(g·x) = A[g] φ(x)``: a permutation of the quadratic features."""
    pairs = quadratic_pairs(group.degree)
    index = {p: a for a, p in enumerate(pairs)}
    matrices = np.zeros((group.order, len(pairs), len(pairs)))
    for g, perm in enumerate(group.elements):
        for a, (i, j) in enumerate(pairs):
            matrices[g, index[tuple(sorted((perm[i], perm[j])))], a] = 1.0
    return matrices


def augmented_least_squares(x: np.ndarray, y: np.ndarray, group: FiniteGroup, subset) -> np.ndarray:
    """Least squares on the augmented data ``{(g·x_i, y_i) : g ∈ S}``: the literal recipe."""
    xs = np.concatenate([act(group, g, x) for g in subset])
    design = quadratic_features(xs)
    return np.linalg.lstsq(design, np.tile(y, len(subset)), rcond=None)[0]


def augmented_normal_equations(gram: np.ndarray, feature_rep: np.ndarray, subset) -> tuple[np.ndarray, np.ndarray]:
    """``(Σ_{g∈S} A_g Φᵀ Φ A_gᵀ, Σ_{g∈S} A_g)``: least squares on the augmented data solves
    ``Σ_g A_g Φᵀ Φ A_gᵀ θ = Σ_g A_g Φᵀ y``, since ``φ(g·x) = A_g φ(x)``."""
    chosen = feature_rep[np.asarray(subset)]
    return (chosen @ gram @ chosen.transpose(0, 2, 1)).sum(axis=0), chosen.sum(axis=0)


def augmented_least_squares_fast(gram: np.ndarray, moment: np.ndarray, feature_rep: np.ndarray, subset) -> np.ndarray:
    """The same estimator from ``Φᵀ Φ`` and ``Φᵀ y`` alone (cost independent of n for each extra group
    element), by :func:`augmented_normal_equations`."""
    lhs, mix = augmented_normal_equations(gram, feature_rep, subset)
    return np.linalg.solve(lhs, mix @ moment)


def risk_given_inputs(gram: np.ndarray, feature_rep: np.ndarray, subset, noise: float) -> float:
    """``E[‖θ̂_S − θ*‖² | x] = σ² tr(L⁻¹ B Φᵀ Φ Bᵀ L⁻ᵀ)`` with ``(L, B)`` the augmented normal equations,
    for an invariant ``θ*`` (then ``Σ_g A_g Φᵀ Φ θ* = L θ*``, so ``θ̂_S − θ* = L⁻¹ B Φᵀ ε``): the excess
    risk averaged over the noise exactly, given the inputs."""
    lhs, mix = augmented_normal_equations(gram, feature_rep, subset)
    solved = np.linalg.solve(lhs, mix)
    return float(noise**2 * np.trace(solved @ gram @ solved.T))


def invariance_gap(coefficients: np.ndarray, x: np.ndarray, group: FiniteGroup) -> float:
    """``max_{g, x} |f̂(g·x) − f̂(x)|`` over the points ``x``, for ``f̂ = ⟨θ̂, φ⟩``."""
    values = quadratic_features(x) @ coefficients
    return float(
        max(np.abs(quadratic_features(act(group, g, x)) @ coefficients - values).max() for g in range(group.order))
    )


def coordinate_representation(group: FiniteGroup) -> np.ndarray:
    """``M[g]`` with ``g·x = M[g] x``: the permutation matrices of the action on R^degree (linear features)."""
    matrices = np.zeros((group.order, group.degree, group.degree))
    for g in range(group.order):
        matrices[g, np.arange(group.degree), group.elements[group.inverse[g]]] = 1.0
    return matrices


# --------------------------------------------------------------------------------------------------
# The experiments: no augmentation, random subsets of size k and the full group, on the same data
# --------------------------------------------------------------------------------------------------


def estimator_sizes(group_order: int, subset_sizes) -> dict[str, int | None]:
    """The estimators compared, as ``label → |S|`` (``None``: no augmentation)."""
    return {"none": None, **{f"k={k}": int(k) for k in subset_sizes}, "full": group_order}


SUBGROUP = "subgroup |G|/4"  # the label of the index-4 subgroup, a second control of the rate rule


def growing_estimator_sizes(group_order: int) -> dict[str, int | tuple | None]:
    """For a group that grows with n: a fixed ``k = 2``, a random fixed fraction ``k = |G|/4``, the index-4
    subgroup ``{0, 4, 8, …}`` of ``C_m`` (the same size, chosen as badly as possible: Exercise 1) and the full
    group. In ``C_m`` from :func:`named_group`, element ``g`` is the shift by ``g`` (sorted array forms)."""
    return {
        "none": None,
        "k=2": 2,
        "k=|G|/4": group_order // 4,
        SUBGROUP: tuple(range(0, group_order, 4)),
        "full": group_order,
    }


def density_trial(target: InvariantDensity, n: int, estimators: dict, rng: np.random.Generator) -> list[dict]:
    """One sample of size n and every estimator on it: a fresh random ``S`` per estimator, the cutoff of
    each the oracle one (exact risk), and the risk also at the full group's cutoff (the common cutoff).

    Returns one row per estimator: risk, exact expected risk, cutoffs, ``δ_S``."""
    m = target.group_order
    max_frequency = 4 * m * int(np.ceil(n ** (1 / (2 * target.smoothness + 1))))
    ell = np.arange(1, max_frequency + 1)
    truth = target.coefficient(ell)
    common = oracle_cutoff(target, n, np.zeros(max_frequency))
    assert common < max_frequency, "the frequency range must extend past the oracle cutoff"
    # no estimator keeps more frequencies than the full-group one, whose variance is smallest
    theta_hat = empirical_coefficients(target.sample(n, rng), common)
    rows = []
    for label, k in estimators.items():
        subset = draw_subset(m, k, rng)
        by_residue = np.ones(m) if k is None else circle_multipliers(m, subset, np.arange(m))
        multipliers = by_residue[ell % m]  # m_ℓ(S) depends on ℓ mod m only
        curve = density_risk_curve(target, n, np.abs(multipliers) ** 2)
        cutoff = int(np.argmin(curve))
        error = np.abs(multipliers[:common] * theta_hat - truth[:common]) ** 2
        rows.append(
            {
                "n": n,
                "group order": m,
                "estimator": label,
                "k": len(subset),
                "cutoff": cutoff,
                "risk": 2 * float(error[:cutoff].sum()) + float(density_bias(target, cutoff)),
                "risk_common_cutoff": 2 * float(error.sum()) + float(density_bias(target, common)),
                "exact_risk": float(curve[cutoff]),
                "defect": 1.0 if k is None else float(np.abs(by_residue[1:]).max()),
            }
        )
    return rows


def run_density_experiment(
    target: InvariantDensity, sample_sizes, subset_sizes, repetitions: int, seed: int, progress=None
) -> pd.DataFrame:
    """Monte Carlo risk of the projection density estimator under each augmentation (:func:`density_trial`),
    for every n and repetition: one row per (n, estimator, repetition)."""
    estimators = estimator_sizes(target.group_order, subset_sizes)
    rows = []
    for n in sample_sizes if progress is None else progress(sample_sizes):
        for rep in range(repetitions):
            trial = density_trial(target, n, estimators, make_rng(seed, "density", n, rep))
            rows += [row | {"rep": rep} for row in trial]
    return pd.DataFrame(rows)


def run_growing_density_experiment(
    group_orders, sample_sizes, smoothness: float, repetitions: int, seed: int, progress=None
) -> pd.DataFrame:
    """The density experiment with a group that grows with n: ``G = C_m`` with ``m = group_orders[i]`` at
    ``n = sample_sizes[i]``, target ``p*(x) = q(mx)`` (:class:`InvariantDensity`), estimators of
    :func:`growing_estimator_sizes`."""
    rows = []
    pairs = list(zip(group_orders, sample_sizes, strict=True))
    for m, n in pairs if progress is None else progress(pairs):
        target = InvariantDensity(group_order=m, smoothness=smoothness)
        for rep in range(repetitions):
            trial = density_trial(target, n, growing_estimator_sizes(m), make_rng(seed, "growing-density", n, rep))
            rows += [row | {"rep": rep} for row in trial]
    return pd.DataFrame(rows)


def invariant_target(feature_rep: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``θ* = P_G θ₀ / ‖P_G θ₀‖`` for a Gaussian ``θ₀``: a random invariant function of norm 1."""
    projected = feature_rep.mean(axis=0) @ rng.normal(size=feature_rep.shape[1])
    return projected / np.linalg.norm(projected)


def least_squares_trial(
    group: FiniteGroup,
    feature_rep: np.ndarray,
    features: np.ndarray,
    y: np.ndarray,
    theta_star: np.ndarray,
    estimators: dict,
    rng: np.random.Generator,
    noise: float,
) -> list[dict]:
    """Every estimator of ``estimators`` fitted on the same data (a fresh random ``S`` per estimator): the
    excess risk averaged over the noise given the inputs (:func:`risk_given_inputs`, features orthonormal),
    the realised ``‖θ̂ − θ*‖²``, ``δ_S = ‖P_S − P_G‖_op`` on the features and ``‖P_S‖_F²``; ``theta`` holds
    the fitted coefficients. ``projection risk`` is the same noise-averaged risk of ``P_S θ̂_none``, the
    multiplier picture of {eq}`augmentation_fourier-eq-excess` applied to the plain fit (``σ² tr(P_S (ΦᵀΦ)⁻¹
    P_Sᵀ)``): its relative excess is the formula in expectation at every n, the control of the finite-n row."""
    gram, moment = features.T @ features, features.T @ y
    plain_covariance = np.linalg.inv(gram)  # Cov(θ̂_none | x) / σ²
    full_projection = feature_rep.mean(axis=0)
    rows = []
    for label, k in estimators.items():
        subset = draw_subset(group.order, k, rng, group.identity)
        theta = augmented_least_squares_fast(gram, moment, feature_rep, subset)
        operator = feature_rep[np.asarray(subset)].mean(axis=0)
        rows.append(
            {
                "n": len(y),
                "group order": group.order,
                "estimator": label,
                "k": len(subset),
                "risk": risk_given_inputs(gram, feature_rep, subset, noise),
                "projection risk": float(noise**2 * np.trace(operator @ plain_covariance @ operator.T)),
                "realised risk": float(np.sum((theta - theta_star) ** 2)),
                "defect": float(np.linalg.norm(operator - full_projection, ord=2)),
                "frobenius": float(np.sum(operator**2)),
                "theta": theta,
            }
        )
    return rows


def run_regression_experiment(
    group: FiniteGroup, sample_sizes, subset_sizes, repetitions: int, seed: int, noise: float = 1.0, progress=None
) -> pd.DataFrame:
    """Least squares on quadratic features, ``x ~ N(0, I_d)``, ``y = ⟨θ*, φ(x)⟩ + noise``, ``θ*`` invariant,
    with no augmentation, random ``S`` of each size and the full group (:func:`least_squares_trial`).
    Also records the invariance gap of the fit on 64 probe points (first repetition)."""
    feature_rep = feature_representation(group)
    theta_star = invariant_target(feature_rep, make_rng(seed, "regression-target"))
    estimators = estimator_sizes(group.order, subset_sizes)
    probe = make_rng(seed, "probe").normal(size=(64, group.degree))
    rows = []
    for n in sample_sizes if progress is None else progress(sample_sizes):
        for rep in range(repetitions):
            rng = make_rng(seed, "regression", n, rep)
            x = rng.normal(size=(n, group.degree))
            features = quadratic_features(x)
            y = features @ theta_star + noise * rng.normal(size=n)
            for row in least_squares_trial(group, feature_rep, features, y, theta_star, estimators, rng, noise):
                theta = row.pop("theta")
                rows.append(row | {"rep": rep, "gap": invariance_gap(theta, probe, group) if rep == 0 else np.nan})
    return pd.DataFrame(rows)


def run_growing_regression_experiment(
    group_orders, sample_sizes, repetitions: int, seed: int, noise: float = 1.0, progress=None
) -> pd.DataFrame:
    """Least squares on linear features ``φ(x) = x ∈ R^m`` with ``G = C_m`` shifting the coordinates, ``m``
    growing with n (``m = group_orders[i]`` at ``n = sample_sizes[i]``): the invariant class is the line
    ``θ ∝ (1, …, 1)``, so the minimax rate is ``σ²/n`` whatever ``m``, while no augmentation pays ``σ² m/n``.
    Estimators of :func:`growing_estimator_sizes`."""
    rows = []
    pairs = list(zip(group_orders, sample_sizes, strict=True))
    for m, n in pairs if progress is None else progress(pairs):
        group = named_group("cyclic", m)
        feature_rep = coordinate_representation(group)
        theta_star = invariant_target(feature_rep, make_rng(seed, "growing-target", m))
        for rep in range(repetitions):
            rng = make_rng(seed, "growing-regression", n, rep)
            x = rng.normal(size=(n, m))
            y = x @ theta_star + noise * rng.normal(size=n)
            estimators = growing_estimator_sizes(m)
            trial = least_squares_trial(group, feature_rep, x, y, theta_star, estimators, rng, noise)
            rows += [{key: v for key, v in row.items() if key != "theta"} | {"rep": rep} for row in trial]
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------------
# Evidence for the claims: rates with intervals, the approximation error with its standard error
# --------------------------------------------------------------------------------------------------

RATE_TOLERANCE = 0.1  # slopes closer than this count as the same rate
MINIMAX_RULE = (
    f"full augmentation's log–log slope of the risk within {RATE_TOLERANCE} of the minimax exponent, and no "
    "augmentation's slope outside that band (point estimates: both risks are closed forms, Monte Carlo aside)"
)
ASYMPTOTIC_N_OVER_D = 20  # n/D from which the large-n formula of the approximation error is checked as an identity
ASYMPTOTIC_TOLERANCE = 0.15  # |measured/predicted − 1| allowed there: a few times the O(D/n) finite-n correction
PARTIAL_RULE = (
    f"slope minus the full-group slope within {RATE_TOLERANCE} of 0 (95% interval), for a random |G|/4-subset "
    "and for the index-4 subgroup alike"
)


def risk_matrix(frame: pd.DataFrame, estimator: str, column: str = "risk") -> np.ndarray:
    """The risks of one estimator as a (repetition × n) array, n increasing."""
    return frame[frame["estimator"] == estimator].pivot(index="rep", columns="n", values=column).to_numpy()


@dataclass(frozen=True)
class RateEvidence:
    """Log–log slopes of the excess risk against n for each estimator, and each slope minus the full
    group's (paired: the estimators share every sample), each with a 95% interval from the spread of
    the per-repetition slopes (:func:`llmtheory.stats.loglog_slope_with_stderr`)."""

    exponent: float  # the minimax exponent of the invariant class
    slopes: dict[str, Estimate]
    versus_full: dict[str, Estimate]

    def test(self, estimator: str, tolerance: float = RATE_TOLERANCE) -> Test:
        """The rate rule: the full-group slope within ``tolerance`` of the minimax exponent, and the
        estimator's slope within ``tolerance`` of the full-group slope (both on their intervals)."""
        return all_of(
            within(self.slopes["full"], self.exponent, tolerance), within(self.versus_full[estimator], 0.0, tolerance)
        )

    def minimax(self, estimator: str, tolerance: float = RATE_TOLERANCE) -> Test:
        """The estimator's slope within ``tolerance`` of the minimax exponent (on its interval)."""
        return within(self.slopes[estimator], self.exponent, tolerance)

    def separates(self, tolerance: float = RATE_TOLERANCE) -> bool:
        """The premise of the rate experiment ({eq}`augmentation_fourier-eq-excess` with a growing group): full
        augmentation at the minimax slope and no augmentation away from it (an identity: both are closed forms)."""
        return bool(self.minimax("full", tolerance).holds and not self.minimax("none", tolerance).holds)

    def partial_test(self, tolerance: float = RATE_TOLERANCE) -> Test:
        """Both |G|/4-subsets, the random one and the index-4 subgroup, keep the full-group slope: the same for
        every subset of that size, since ``‖P_S‖_F² = |G|/k`` for all of them (Parseval)."""
        return all_of(*(within(self.versus_full[e], 0.0, tolerance) for e in ("k=|G|/4", SUBGROUP)))

    def describe(self, estimator: str) -> str:
        """``slope −0.98 [−1.01, −0.95]; minus full +0.01 [−0.02, +0.04]``"""
        return f"slope {self.slopes[estimator]:.2f}; minus full {self.versus_full[estimator]:+.2f}"


def rate_evidence(frame: pd.DataFrame, exponent: float, column: str = "risk") -> RateEvidence:
    """The :class:`RateEvidence` of an experiment's results (one row per n, estimator and repetition)."""
    from .stats import loglog_slope_with_stderr

    sizes = np.sort(frame["n"].unique())
    full = risk_matrix(frame, "full", column)
    slopes, versus_full = {}, {}
    for estimator in frame["estimator"].unique():
        risks = risk_matrix(frame, estimator, column)
        slopes[estimator] = Estimate.from_stderr(*loglog_slope_with_stderr(sizes, risks))
        versus_full[estimator] = Estimate.from_stderr(*loglog_slope_with_stderr(sizes, risks / full))
    return RateEvidence(exponent, slopes, versus_full)


def relative_excess(
    frame: pd.DataFrame, group_order: int, column: str = "risk", resamples: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """``(R_k − R_G)/(R_none − R_G)`` for each subset size k, pooled over the n in ``frame`` as ratios of
    ``Σ_n n·R̄(n)``: each n weighs in proportion to ``n·R_none(n)``, nearly equal where ``n ≫ D`` (``n·R ≈ σ²D``)
    but dominated by the smallest n when n ≈ D (least squares pays ``σ²D/(n−D−1)`` there), so pool over one
    regime at a time (:func:`excess_by_regime`). With its bootstrap standard error over repetitions, the
    random-subset prediction ``(|G|−k)/(k(|G|−1))`` ({eq}`augmentation_fourier-eq-energy`) and the mean
    multiplier bound ``δ_S²``."""
    sizes = np.sort(frame["n"].unique())
    full, none = risk_matrix(frame, "full", column), risk_matrix(frame, "none", column)
    resample = np.random.default_rng(seed).integers(0, len(full), size=(resamples, len(full)))

    def pooled(risks, rows=slice(None)):
        return (risks[rows].mean(axis=-2) * sizes).sum(axis=-1)

    out = []
    for estimator in [e for e in frame["estimator"].unique() if e.startswith("k=")]:
        k = int(estimator[2:])
        partial = risk_matrix(frame, estimator, column)
        boot = (pooled(partial, resample) - pooled(full, resample)) / (pooled(none, resample) - pooled(full, resample))
        out.append(
            {
                "k": k,
                "measured": (pooled(partial) - pooled(full)) / (pooled(none) - pooled(full)),
                "standard error": float(boot.std(ddof=1)),
                "predicted (eq. energy)": expected_fourier_energy(group_order, k),
                "bound: mean δ_S²": float((frame.loc[frame["estimator"] == estimator, "defect"] ** 2).mean()),
            }
        )
    return pd.DataFrame(out)


def relative_excess_by_n(frame: pd.DataFrame, group_order: int, features: int, seed: int = 0) -> pd.DataFrame:
    """:func:`relative_excess` at each n separately, as ``measured / predicted`` with ``n/D`` (``D`` the number
    of features): the finite-n correction to the large-n formula, one column per k."""
    rows = {}
    for n, part in frame.groupby("n"):
        excess = relative_excess(part, group_order, seed=seed)
        rows[f"n = {n} (n/D = {n / features:.1f})"] = dict(
            zip(excess.k.map("k = {}".format), excess["measured"] / excess["predicted (eq. energy)"], strict=True)
        )
    return pd.DataFrame(rows).T


def _excess_rows(excess: pd.DataFrame):
    return excess.rename(columns={"predicted (eq. energy)": "predicted", "standard error": "error"}).itertuples()


def excess_by_regime(
    frame: pd.DataFrame, group_order: int, features: int, seed: int = 0, column: str = "risk"
) -> dict[str, pd.DataFrame]:
    """:func:`relative_excess` of ``column`` pooled over ``n ≥ 20 D`` (where the large-n formula should hold: the
    Gram matrix is about ``nI``), and at each smaller n separately (the finite-n regime), keyed by a label with
    ``n/D``."""
    sizes = np.sort(frame["n"].unique())
    large = sizes[sizes >= ASYMPTOTIC_N_OVER_D * features]
    out = {}
    if len(large):
        pooled = frame[frame["n"].isin(large)]
        out[f"n/D ≥ {ASYMPTOTIC_N_OVER_D}"] = relative_excess(pooled, group_order, column, seed=seed)
    for n in sizes[sizes < ASYMPTOTIC_N_OVER_D * features]:
        out[f"n/D = {n / features:.1f}"] = relative_excess(frame[frame["n"] == n], group_order, column, seed=seed)
    return out


def matches_large_n_formula(excess: pd.DataFrame, tolerance: float = ASYMPTOTIC_TOLERANCE) -> bool:
    """Every measured/predicted within ``tolerance`` of 1 (the asymptotic identity, checked where ``n ≫ D``)."""
    return bool(((excess["measured"] / excess["predicted (eq. energy)"] - 1).abs() <= tolerance).all())


def finite_n_test(regimes: dict[str, pd.DataFrame]) -> Test:
    """At every n below ``20 D`` and every k, the relative excess at most the large-n formula
    ``(|G|−k)/(k(|G|−1))`` on its 95% interval: the formula still bounds the approximation error where its
    derivation does not apply."""
    finite = [excess for label, excess in regimes.items() if label.startswith("n/D =")]
    return all_of(
        *(
            at_most(Estimate.from_stderr(row.measured, row.error), row.predicted)
            for excess in finite
            for row in _excess_rows(excess)
        )
    )


def describe_ratios(regimes: dict[str, pd.DataFrame]) -> str:
    """``n/D = 1.2: 0.11–0.25 of the formula; …`` (the range of measured/predicted over k in each regime)."""
    parts = []
    for label, excess in regimes.items():
        ratio = excess["measured"] / excess["predicted (eq. energy)"]
        parts.append(f"{label}: {ratio.min():.2f}–{ratio.max():.2f}")
    return (
        "measured/predicted over k = " + ", ".join(map(str, regimes[next(iter(regimes))].k)) + ": " + "; ".join(parts)
    )


def describe_excess(excess: pd.DataFrame) -> str:
    """``k = 2: 0.48 ± 0.02 (predicted 0.48); …`` (± two standard errors)."""
    return "; ".join(
        f"k = {row.k}: {row.measured:.3f} ± {2 * row.error:.3f} (predicted {row.predicted:.3f})"
        for row in _excess_rows(excess)
    )


def below(value: float, floor: float = 1e-12) -> str:
    """``< 1e-12`` for a rounding-level number (machine-dependent digits), else the number."""
    return f"< {floor:.0e}" if value < floor else f"{value:.1e}"


def impossibility_evidence(exhaustive: pd.DataFrame) -> tuple[str, bool]:
    """What the exhaustive enumeration of the regular representation (a table with one row per group) shows,
    and whether no strict subset has ``δ_S < 1e-9`` while the full group has ``δ_G < 1e-9``."""
    zero = int(exhaustive["strict subsets with δ_S < 1e-9"].sum())
    full = float(exhaustive["δ_G"].max())
    text = (
        f"{zero} of {int(exhaustive['strict subsets'].sum())} strict subsets of {', '.join(exhaustive['group'])} "
        f"have δ_S < 1e-9 (smallest {exhaustive['min δ_S over strict subsets'].min():.3f}); δ_G {below(full)}"
    )
    return text, zero == 0 and full < 1e-9


def rotation_counterexample(group: FiniteGroup, n: int, seed: int, noise: float = 1.0) -> dict:
    """The impossibility theorem's condition at work: augmenting least squares on quadratic features with the
    rotations of ``D_d`` (a strict subset) gives ``P_S = P_G`` on the features, because they contain no copy of
    the character that is 1 on rotations and −1 on reflections; on the regular representation ``δ_S = 1``.
    Returns ``δ_S`` on both and the invariance gap of the fit (same data as :func:`invariance_gaps_by_size`)."""
    feature_rep = feature_representation(group)
    subset = rotations(group)
    regular = averaging_operator(left_regular(group), subset) - averaging_operator(
        left_regular(group), range(group.order)
    )
    features = feature_rep[subset].mean(axis=0) - feature_rep.mean(axis=0)
    return {
        "k": len(subset),
        "δ_S (features)": float(np.linalg.norm(features, ord=2)),
        "δ_S (regular)": float(np.linalg.norm(regular, ord=2)),
        "invariance gap": _fitted_gaps(group, n, seed, noise, [np.asarray(subset)])[0],
    }


def matches_prediction(excess: pd.DataFrame, z: float = 3.0) -> bool:
    """Every measured relative excess within ``z`` standard errors of the prediction (an identity's check:
    Monte Carlo noise is the only difference allowed)."""
    gap = (excess["measured"] - excess["predicted (eq. energy)"]).abs()
    return bool((gap <= z * excess["standard error"]).all())


def symmetric_group_cost(degree: int, n: int, k: int, rng: np.random.Generator) -> dict:
    """Wall time of least squares on quadratic features with full augmentation by ``S_degree`` (``n·degree!``
    rows) and with ``k`` random permutations, and the partial operator's ``δ_S = ‖P_S − P_G‖_op`` on the
    features. ``P_G`` needs no enumeration: averaging a permutation of features over ``G`` spreads each
    feature uniformly over its orbit (orbit–stabiliser), here the diagonal and the off-diagonal pairs."""
    import time

    x = rng.normal(size=(n, degree))
    y = quadratic_features(x) @ rng.normal(size=degree * (degree + 1) // 2) + rng.normal(size=n)
    permutations = np.array(list(itertools.permutations(range(degree))))
    timings = {}
    for label, chosen in (
        ("full", permutations),
        ("partial", permutations[rng.choice(len(permutations), k, replace=False)]),
    ):
        start = time.perf_counter()
        design = quadratic_features(x[:, chosen].transpose(1, 0, 2).reshape(-1, degree))
        np.linalg.lstsq(design, np.tile(y, len(chosen)), rcond=None)
        timings[label] = time.perf_counter() - start
    pairs = quadratic_pairs(degree)
    index = {p: a for a, p in enumerate(pairs)}
    partial = np.zeros((len(pairs), len(pairs)))
    for perm in chosen:
        for a, (i, j) in enumerate(pairs):
            partial[index[tuple(sorted((perm[i], perm[j])))], a] += 1 / len(chosen)
    diagonal = np.array([i == j for i, j in pairs])
    orbit_projection = (diagonal[:, None] == diagonal[None, :]) / np.where(diagonal, degree, len(pairs) - degree)
    return {
        "degree": degree,
        "group order": len(permutations),
        "rows (full)": n * len(permutations),
        "rows (partial)": n * k,
        "seconds (full)": timings["full"],
        "seconds (partial)": timings["partial"],
        "δ_S (partial)": float(np.linalg.norm(partial - orbit_projection, ord=2)),
    }


def invariance_gaps_by_size(group: FiniteGroup, n: int, seed: int, noise: float = 1.0) -> pd.DataFrame:
    """For every ``k = 1..|G|``: ``δ_S`` on the features and the invariance gap of least squares augmented
    with a random ``k``-subset, all fitted on the same data (the impossibility result, measured)."""

    feature_rep = feature_representation(group)
    rng = make_rng(seed, "gaps-subsets", n)
    subsets = [random_subset(group.order, k, rng) for k in range(1, group.order + 1)]
    gaps = _fitted_gaps(group, n, seed, noise, subsets)
    full_projection = feature_rep.mean(axis=0)
    defects = [np.linalg.norm(feature_rep[s].mean(axis=0) - full_projection, ord=2) for s in subsets]
    return pd.DataFrame({"k": [len(s) for s in subsets], "δ_S": defects, "invariance gap": gaps})


def _fitted_gaps(group: FiniteGroup, n: int, seed: int, noise: float, subsets) -> list[float]:
    """The invariance gap (64 probe points) of least squares augmented with each subset, on one data set."""
    feature_rep = feature_representation(group)
    rng = make_rng(seed, "gaps", n)
    theta_star = invariant_target(feature_rep, rng)
    features = quadratic_features(rng.normal(size=(n, group.degree)))
    y = features @ theta_star + noise * rng.normal(size=n)
    probe = rng.normal(size=(64, group.degree))
    gram, moment = features.T @ features, features.T @ y
    return [invariance_gap(augmented_least_squares_fast(gram, moment, feature_rep, s), probe, group) for s in subsets]


PARAMETERS = {
    "CIRCLE_GROUP_ORDER": Choice(4, 8, 16),
    "SMOOTHNESS": Real(0.5, 3.0),
    "DIHEDRAL_DEGREE": Int(4, 16),
    "NOISE": Real(0.01, 10.0),
}
"""The chapter's parameters besides ``SCALE`` and ``SEED`` (its notebook's ``parameters`` cell), declared once:
the notebook checks them with :func:`llmtheory.params.check_parameters`, the command line before it runs."""
