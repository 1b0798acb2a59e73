"""Structured concept evolution (SCE) for quantum LDPC codes, reconstructed at toy scale.

The paper ("Large-Language-Model Discovery of Quantum LDPC Codes through Structured Concept Evolution";
authors and venue unknown to us) evolves *concepts*: an algebraic specification of a lifted-product (LP)
code plus a program that realises it, mutated by a grammar acting on the group algebra, the protograph
geometry and the base space, with an LLM proposing mutations. Only the abstract is known; everything
below is standard coding theory (bivariate-bicycle codes, Panteleev–Kalachev lifted products, BP+OSD) and
our own reconstruction of the search loop, read top to bottom:

1. groups and their regular representations (the group algebra F2[G]),
2. the lifted product, eq. (LP), and bivariate-bicycle (BB) codes as its 1x1 case,
3. code parameters: k over GF(2), logical operators, distance: upper bounds from logicals found, and proofs
   by enumeration or a mixed-integer program (HiGHS), eq. (MILP),
4. code-capacity depolarizing noise decoded by BP+OSD (``ldpc``),
5. concepts, the mutation grammar, proposers (grammar or LLM), the staged evaluator, evolution; only the
   specification evolves: a concept's program is rendered for display and never executed,
6. baselines at the same evaluation budget: random specifications, random hypergraph products (unstructured but
   valid by construction, eq. (HGP)), random bit edits and random matrices.

The experiments the chapter runs with them (logical error rates, replicated searches, paired comparisons, code
families, figures) are in :mod:`llmtheory.qldpc_sce_experiment`.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import highspy
import numpy as np
from ldpc import BpOsdDecoder
from ldpc.mod2 import rank as ldpc_rank
from scipy import sparse
from scipy.stats import beta

from .params import Int, ParameterError

# ---------------------------------------------------------------------------------------------------------
# 1. Groups and the group algebra F2[G]
# ---------------------------------------------------------------------------------------------------------

Term = tuple[int, int]
"""A group element x^i y^j of the metacyclic group, written by its exponents (i, j)."""
Entry = tuple[Term, ...]
"""An element of F2[G]: the sorted tuple of group elements with coefficient 1."""
ProtoMatrix = tuple[tuple[Entry, ...], ...]
"""A protograph matrix over F2[G] (rows of entries)."""


@dataclass(frozen=True)
class Group:
    """The metacyclic group G(l, m, r) = Z_l ⋊_r Z_m = <x, y | x^l = y^m = 1, y x y^-1 = x^r>.

    Elements are x^i y^j, indexed i*m + j, with (i, j)(i', j') = (i + r^j i', j + j').
    ``r = 1`` gives the abelian group Z_l × Z_m of bivariate-bicycle codes; ``m = 2, r = l - 1`` gives the
    dihedral group of order 2l, the smallest non-abelian case.
    """

    ell: int
    m: int
    twist: int = 1

    @property
    def order(self) -> int:
        return self.ell * self.m

    @property
    def is_abelian(self) -> bool:
        return self.twist % self.ell == 1 % self.ell or self.m == 1

    def is_valid(self) -> bool:
        """r must be a unit of Z_l with r^m = 1 (mod l), so that y acts as an automorphism of order | m."""
        if self.ell < 1 or self.m < 1 or not 1 <= self.twist <= max(self.ell - 1, 1):
            return False
        return math.gcd(self.twist, self.ell) == 1 and pow(self.twist, self.m, self.ell) == 1 % self.ell

    def index(self, term: Term) -> int:
        return (term[0] % self.ell) * self.m + term[1] % self.m

    def multiplication_table(self) -> np.ndarray:
        """``table[a, b]`` is the index of the product a·b."""
        i, j = np.divmod(np.arange(self.order), self.m)
        powers = np.array([pow(self.twist, int(e), self.ell) for e in range(self.m)])
        prod_i = (i[:, None] + powers[j][:, None] * i[None, :]) % self.ell
        prod_j = (j[:, None] + j[None, :]) % self.m
        return prod_i * self.m + prod_j

    def describe(self) -> str:
        if self.m == 1:
            return f"Z_{self.ell}"
        if self.is_abelian:
            return f"Z_{self.ell}×Z_{self.m}"
        return f"Z_{self.ell}⋊_{self.twist}Z_{self.m}"


def regular_representation(group: Group, entry: Entry, side: str) -> np.ndarray:
    """The |G|×|G| binary matrix of multiplication by a = Σ g in F2[G].

    ``side="left"``: e_h -> e_{g h}; ``side="right"``: e_h -> e_{h g}. Left and right multiplications
    commute for every group, which is what makes the lifted product of a non-abelian group a valid CSS code;
    and the transpose of the matrix of a is the matrix of the conjugate a* = Σ g^-1.
    """
    table = group.multiplication_table()
    matrix = np.zeros((group.order, group.order), dtype=np.uint8)
    columns = np.arange(group.order)
    # each term g of a adds the permutation matrix of h ↦ g h (left) or h ↦ h g (right), mod 2
    for term in entry:
        g = group.index(term)
        rows = table[g, columns] if side == "left" else table[columns, g]
        matrix[rows, columns] ^= 1
    return matrix


def lift(group: Group, proto: ProtoMatrix, side: str) -> np.ndarray:
    """Replace every entry of a protograph matrix over F2[G] by its |G|×|G| regular representation."""
    blocks = [[regular_representation(group, entry, side) for entry in row] for row in proto]
    return np.block(blocks).astype(np.uint8)


def _kron_identity(proto: ProtoMatrix, size: int, identity_first: bool) -> ProtoMatrix:
    """I_size ⊗ P (``identity_first``) or P ⊗ I_size over F2[G]; rows and columns ordered (outer, inner)."""
    rows, cols = len(proto), len(proto[0])
    zero: Entry = ()
    if identity_first:
        return tuple(
            tuple(proto[r][c] if s == t else zero for t in range(size) for c in range(cols))
            for s in range(size)
            for r in range(rows)
        )
    return tuple(
        tuple(proto[r][c] if s == t else zero for c in range(cols) for t in range(size))
        for r in range(rows)
        for s in range(size)
    )


def lifted_product(
    group: Group, a: ProtoMatrix, b: ProtoMatrix, b_side: str = "right"
) -> tuple[np.ndarray, np.ndarray]:
    """Eq. ``qldpc_sce-eq-lp``: the lifted-product code LP(A, B) over F2[G] (Panteleev & Kalachev):

        H_X = [A ⊗ I_{m_B} | I_{m_A} ⊗ B],   H_Z = [I_{n_A} ⊗ B* | A* ⊗ I_{n_B}],

    with A lifted by left and B by right regular representations, so H_X H_Z^T = A⊗B + A⊗B = 0 over
    F2 for abelian and non-abelian G alike. The lift of a conjugate transpose X* is the transpose of the
    lift of X. Returns the binary (H_X, H_Z); n = |G|(n_A m_B + m_A n_B). ``b_side="left"`` lifts B by left
    multiplication too, which breaks the CSS condition for non-abelian G (kept to show that it does).
    """
    m_a, n_a, m_b, n_b = len(a), len(a[0]), len(b), len(b[0])
    # H_X = [A ⊗ I_{m_B} | I_{m_A} ⊗ B], A lifted by left and B by right multiplication
    hx = np.hstack(
        [lift(group, _kron_identity(a, m_b, False), "left"), lift(group, _kron_identity(b, m_a, True), b_side)]
    )
    # H_Z = [I_{n_A} ⊗ B* | A* ⊗ I_{n_B}]: the lift of X* is the transpose of the lift of X
    hz = np.hstack(
        [lift(group, _kron_identity(b, n_a, True), b_side).T, lift(group, _kron_identity(a, n_b, False), "left").T]
    )
    return hx, hz


def _transpose(proto: ProtoMatrix) -> ProtoMatrix:
    return tuple(zip(*proto, strict=True))


def bivariate_bicycle(ell: int, m: int, a_terms: list[Term], b_terms: list[Term]) -> tuple[np.ndarray, np.ndarray]:
    """Eq. ``qldpc_sce-eq-bb``: a BB code (Bravyi et al. 2024): x = S_l ⊗ I_m, y = I_l ⊗ S_m, H_X = [A | B],
    H_Z = [B^T | A^T].

    It is the lifted product of 1×1 protographs over the abelian group Z_l × Z_m.
    """
    group = Group(ell, m, 1)
    return lifted_product(group, ((tuple(sorted(a_terms)),),), ((tuple(sorted(b_terms)),),))


KNOWN_BB_CODES: dict[str, dict] = {
    "[[72,12,6]]": {"l": 6, "m": 6, "A": [(3, 0), (0, 1), (0, 2)], "B": [(0, 3), (1, 0), (2, 0)], "d": 6},
    "[[90,8,10]]": {"l": 15, "m": 3, "A": [(9, 0), (0, 1), (0, 2)], "B": [(0, 0), (2, 0), (7, 0)], "d": 10},
    "[[108,8,10]]": {"l": 9, "m": 6, "A": [(3, 0), (0, 1), (0, 2)], "B": [(0, 3), (1, 0), (2, 0)], "d": 10},
    "[[144,12,12]]": {"l": 12, "m": 6, "A": [(3, 0), (0, 1), (0, 2)], "B": [(0, 3), (1, 0), (2, 0)], "d": 12},
}
"""The BB table of Bravyi et al. (2024): A and B as exponent pairs (i, j) of x^i y^j, and the distance."""


# ---------------------------------------------------------------------------------------------------------
# 2. GF(2) linear algebra and code parameters
# ---------------------------------------------------------------------------------------------------------


def gf2_row_reduce(matrix: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Reduced row echelon form over GF(2) (Gauss–Jordan) and the pivot columns; our own implementation,
    used to cross-check ``ldpc.mod2.rank`` and to build kernels, logicals and information sets."""
    m = (np.asarray(matrix) % 2).astype(np.uint8)
    pivots: list[int] = []
    r = 0
    for c in range(m.shape[1]):
        if r == m.shape[0]:
            break
        nonzero = np.flatnonzero(m[r:, c])
        if nonzero.size == 0:
            continue
        p = r + nonzero[0]
        if p != r:
            m[[r, p]] = m[[p, r]]
        mask = m[:, c].astype(bool)
        mask[r] = False
        m[mask] ^= m[r]
        pivots.append(c)
        r += 1
    return m[:r], pivots


def gf2_rank(matrix: np.ndarray) -> int:
    """Rank over GF(2) by :func:`gf2_row_reduce`."""
    return len(gf2_row_reduce(matrix)[1])


def gf2_kernel(matrix: np.ndarray) -> np.ndarray:
    """A basis (rows) of {v : M v = 0} over GF(2), read off the reduced row echelon form."""
    rref, pivots = gf2_row_reduce(matrix)
    n = matrix.shape[1]
    free = [c for c in range(n) if c not in set(pivots)]
    basis = np.zeros((len(free), n), dtype=np.uint8)
    for row, f in enumerate(free):
        basis[row, f] = 1
        basis[row, pivots] = rref[:, f]
    return basis


def css_dimension(hx: np.ndarray, hz: np.ndarray) -> int:
    """Eq. ``qldpc_sce-eq-k``: k = n − rank H_X − rank H_Z over GF(2) (ranks from ``ldpc.mod2``)."""
    return hx.shape[1] - ldpc_rank(hx) - ldpc_rank(hz)


def gf2_products(rows: np.ndarray, others: np.ndarray) -> np.ndarray:
    """All inner products rows[i]·others[j] over GF(2), by packed bits and popcounts (no BLAS threads)."""
    a, b = np.packbits(rows.astype(np.uint8), axis=1), np.packbits(others.astype(np.uint8), axis=1)
    return (np.bitwise_count(a[:, None, :] & b[None, :, :]).sum(axis=2) % 2).astype(np.uint8)


def commutes(hx: np.ndarray, hz: np.ndarray) -> bool:
    """The CSS condition H_X H_Z^T = 0 over GF(2) (eq. ``qldpc_sce-eq-commute``)."""
    return hx.shape[1] == hz.shape[1] and not gf2_products(hx, hz).any()


def logical_operators(h_check: np.ndarray, h_stabilizer: np.ndarray) -> np.ndarray:
    """k independent logicals: vectors of ker(h_check) that are not in the row space of h_stabilizer.

    Z logicals are ``logical_operators(hx, hz)``; X logicals are ``logical_operators(hz, hx)``.
    """
    kernel = gf2_kernel(h_check)
    stacked = np.vstack([h_stabilizer % 2, kernel]).astype(np.uint8)
    # Row-reduce the transpose: the pivot columns are the independent rows, stabilisers first.
    _, pivots = gf2_row_reduce(stacked.T)
    offset = h_stabilizer.shape[0]
    return kernel[[p - offset for p in pivots if p >= offset]]


@dataclass(frozen=True)
class CssCode:
    """A CSS code with its logical operators (rows of lx are X logicals, rows of lz Z logicals)."""

    hx: np.ndarray
    hz: np.ndarray
    lx: np.ndarray
    lz: np.ndarray

    @property
    def n(self) -> int:
        return self.hx.shape[1]

    @property
    def k(self) -> int:
        return self.lx.shape[0]


def css_code(hx: np.ndarray, hz: np.ndarray) -> CssCode:
    """Check H_X H_Z^T = 0 and attach logicals; k agrees with n − rank H_X − rank H_Z."""
    if not commutes(hx, hz):
        raise ValueError("H_X H_Z^T != 0: not a CSS code")
    return CssCode(hx, hz, logical_operators(hz, hx), logical_operators(hx, hz))


def _pack(vectors: np.ndarray) -> np.ndarray:
    """Binary rows of length ≤ 64 as uint64 bit masks."""
    weights = np.left_shift(np.uint64(1), np.arange(vectors.shape[1], dtype=np.uint64))
    return (vectors.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)


def exact_distance(code: CssCode, max_kernel_dim: int = 22) -> int | None:
    """The exact distance min(d_X, d_Z) by enumerating every vector of ker(H_X) and ker(H_Z); a vector is
    a nontrivial logical iff it anticommutes with some opposite-type logical. ``None`` if n > 64 or a
    kernel has dimension > ``max_kernel_dim`` (then use :func:`distance_upper_bound`)."""
    if code.n > 64:
        return None
    best = code.n
    for h_check, opposite in ((code.hx, code.lx), (code.hz, code.lz)):
        kernel = gf2_kernel(h_check)
        if kernel.shape[0] > max_kernel_dim:
            return None
        words = np.zeros(1, dtype=np.uint64)
        for row in _pack(kernel):
            words = np.concatenate([words, words ^ row])
        nontrivial = np.zeros(words.size, dtype=bool)
        for logical in _pack(opposite):
            nontrivial |= (np.bitwise_count(words & logical) % 2).astype(bool)
        best = min(best, int(np.bitwise_count(words[nontrivial]).min()))
    return best


def information_set_bound(code: CssCode, trials: int, rng: np.random.Generator) -> int:
    """An upper bound on the distance by random information sets: row-reduce a kernel basis under a random
    column order; each reduced row, and each sum of two of the lightest rows, that is a nontrivial logical
    bounds d from above."""
    best = code.n
    for h_check, opposite in ((code.hx, code.lx), (code.hz, code.lz)):
        kernel = gf2_kernel(h_check)
        for _ in range(trials):
            # a random information set: row-reduce ker H with the columns in random order
            order = rng.permutation(code.n)
            reduced, _ = gf2_row_reduce(kernel[:, order])
            rows = reduced[:, np.argsort(order)]
            light = rows[np.argsort(rows.sum(axis=1), kind="stable")[:24]]  # pairs of the 24 lightest rows
            pairs = (light[:, None, :] ^ light[None, :, :]).reshape(-1, code.n)
            candidates = np.vstack([rows, pairs])
            # a nontrivial logical has odd overlap with some opposite-type logical; its weight bounds d
            nontrivial = gf2_products(candidates, opposite).any(axis=1)
            if nontrivial.any():
                best = min(best, int(candidates[nontrivial].sum(axis=1).min()))
    return best


def bposd_logical_bound(code: CssCode, trials: int, rng: np.random.Generator) -> int:
    """An upper bound on the distance by BP+OSD (the evaluator of the public LLM-guided BB search): decode
    the syndrome (0,…,0,1) of [H; ℓ] for a random logical combination ℓ; the lowest-weight solution found is
    a nontrivial logical, so its weight bounds d from above."""
    best = code.n
    for h_check, opposite in ((code.hx, code.lx), (code.hz, code.lz)):
        for _ in range(trials):
            combination = rng.integers(0, 2, size=opposite.shape[0])
            if not combination.any():
                combination[rng.integers(opposite.shape[0])] = 1
            target = (combination @ opposite) % 2
            pcm = np.vstack([h_check, target]).astype(np.uint8)
            syndrome = np.zeros(pcm.shape[0], dtype=np.uint8)
            syndrome[-1] = 1
            decoder = BpOsdDecoder(
                pcm, error_rate=0.05, max_iter=code.n, bp_method="ms", osd_method="osd_cs", osd_order=4
            )
            solution = decoder.decode(syndrome)
            if (pcm @ solution % 2 == syndrome).all():
                best = min(best, int(solution.sum()))
    return best


def distance_upper_bound(code: CssCode, trials: int, rng: np.random.Generator) -> int:
    """min of the information-set and BP+OSD bounds (both are weights of actual logical operators)."""
    return min(information_set_bound(code, trials, rng), bposd_logical_bound(code, trials, rng))


def milp_min_logical(
    h_check: np.ndarray, opposite: np.ndarray, max_nodes: int, fixed: int | None = None, return_vector: bool = False
):
    """Eq. ``qldpc_sce-eq-milp``: the least weight of a nontrivial logical in ker(h_check), by a mixed-integer
    program (HiGHS):

        min Σ x_i  s.t.  h_check x − 2 s = 0,  ℓ_j·x − 2 t_j − y_j = 0 (j = 1..k),  Σ y_j ≥ 1,
        x, y ∈ {0,1}, s, t ∈ Z≥0,

    i.e. x is in the kernel over GF(2) (integer slacks s absorb the even sums) and has odd overlap with at least
    one opposite-type logical ℓ_j, which is exactly "not in the row space of the other check matrix". ``fixed``
    forces x_fixed = 1 (a symmetry reduction: see :func:`proved_distance`). Returns (proved lower bound, weight
    of the best logical found), and that logical (or None) if ``return_vector``; the two are equal when HiGHS
    proves optimality within ``max_nodes`` branch-and-bound nodes. The limit is a deterministic work limit (one
    thread, a fixed random seed), not a wall-clock one, so the same code always gets the same answer.
    """
    m, n = h_check.shape
    k = opposite.shape[0]
    # columns (x, s, t, y); rows: H x − 2s = 0, ℓ_j·x − 2t_j − y_j = 0, Σ y_j ≥ 1
    rows = np.vstack(
        [
            np.hstack([h_check, -2 * np.eye(m), np.zeros((m, 2 * k))]),
            np.hstack([opposite, np.zeros((k, m)), -2 * np.eye(k), -np.eye(k)]),
            np.r_[np.zeros(n + m + k), np.ones(k)][None, :],
        ]
    )
    matrix = sparse.csc_matrix(rows)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = matrix.shape[1], matrix.shape[0]
    # min Σ x_i
    lp.col_cost_ = np.r_[np.ones(n), np.zeros(m + 2 * k)]
    lower = np.zeros(lp.num_col_)
    if fixed is not None:
        lower[fixed] = 1.0
    lp.col_lower_ = lower
    lp.col_upper_ = np.r_[np.ones(n), h_check.sum(axis=1) // 2, opposite.sum(axis=1) // 2, np.ones(k)].astype(float)
    lp.row_lower_ = np.r_[np.zeros(m + k), 1.0]
    lp.row_upper_ = np.r_[np.zeros(m + k), np.inf]
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = matrix.indptr, matrix.indices, matrix.data
    lp.a_matrix_.num_col_, lp.a_matrix_.num_row_ = lp.num_col_, lp.num_row_
    lp.integrality_ = [highspy.HighsVarType.kInteger] * lp.num_col_
    solver = _quiet_highs()
    options = {"output_flag": False, "threads": 1, "random_seed": 0, "mip_max_nodes": int(max_nodes)}
    for option, value in options.items():
        solver.setOptionValue(option, value)
    solver.passModel(lp)
    solver.run()
    status, info = solver.getModelStatus(), solver.getInfo()
    vector = None
    if status == highspy.HighsModelStatus.kInfeasible:
        low = found = n + 1  # no logical contains the fixed qubit
    else:
        has_solution = info.primal_solution_status == 2
        found = round(info.objective_function_value) if has_solution else n + 1
        if has_solution:
            vector = np.round(np.asarray(solver.getSolution().col_value[:n])).astype(np.uint8)
        dual = info.mip_dual_bound
        low = found if status == highspy.HighsModelStatus.kOptimal else max(1, _ceil_bound(dual))
    return (low, found, vector) if return_vector else (low, found)


def _quiet_highs() -> highspy.Highs:
    """A HiGHS solver, without the licence banner its C++ constructor prints to the process's stdout (once per
    process, before any option such as ``output_flag`` can be set): file descriptor 1 points to /dev/null while
    it is built. Nothing about the solve changes."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            return highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _ceil_bound(dual_bound: float) -> int:
    """⌈dual bound⌉ as a proved lower bound; a solver stopped before its first bound reports ±inf or nan: 0."""
    return math.ceil(dual_bound - 1e-6) if math.isfinite(dual_bound) else 0


@dataclass(frozen=True)
class Distance:
    """What we know of a distance: a proved lower bound ``low`` and the weight ``high`` of a logical we found."""

    low: int
    high: int
    method: str

    @property
    def exact(self) -> bool:
        return self.low == self.high

    def __str__(self) -> str:
        return f"{self.high}" if self.exact else f"{self.low}…{self.high}"


def dual_permutation(group: Group) -> np.ndarray:
    """For a two-block code over an abelian group (1×1 protographs, e.g. BB): the qubit map (block 1, g) ↔
    (block 2, g⁻¹). It maps the row space of H_X onto that of H_Z (Aᵀ is A with g → g⁻¹ on rows and columns),
    so d_X = d_Z; :func:`proved_distance` checks this over GF(2) before it relies on it."""
    inverse = np.array([group.index((-i, -j)) for i, j in (divmod(g, group.m) for g in range(group.order))])
    return np.r_[group.order + inverse, inverse]


def proved_distance(
    code: CssCode,
    max_nodes: int,
    orbit_size: int | None = None,
    dual: np.ndarray | None = None,
    upper: int | None = None,
) -> Distance:
    """min(d_X, d_Z) by :func:`milp_min_logical` on both sides (one side when ``dual`` is a verified X↔Z
    symmetry). ``orbit_size`` = |G| for a code over an abelian group: translations act on every block of |G|
    qubits at once and map logicals to logicals, so some lightest logical contains the first qubit of some
    block; one program per block, with that qubit fixed, proves the same minimum faster. ``max_nodes``: the
    deterministic work limit of each program. ``upper``: the weight of a logical already found (a program stopped
    at its node limit may have found none lighter)."""
    fixed = list(range(0, code.n, orbit_size)) if orbit_size else [None]
    rank_z = gf2_rank(code.hz)
    symmetric = (
        dual is not None and gf2_rank(code.hx) == rank_z and gf2_rank(np.vstack([code.hz, code.hx[:, dual]])) == rank_z
    )
    sides = [(code.hx, code.lx)] if symmetric else [(code.hx, code.lx), (code.hz, code.lz)]
    results = [milp_min_logical(h, logicals, max_nodes, f) for h, logicals in sides for f in fixed]
    high = min([r[1] for r in results] + ([upper] if upper else []))
    low = min(min(r[0] for r in results), high)
    return Distance(low, high, "MILP" if low == high else "MILP stopped at its node limit")


# ---------------------------------------------------------------------------------------------------------
# 3. Code-capacity depolarizing noise, BP+OSD decoding
# ---------------------------------------------------------------------------------------------------------


def depolarizing_errors(uniforms: np.ndarray, p: float) -> tuple[np.ndarray, np.ndarray]:
    """Code-capacity depolarizing noise: each qubit X, Y or Z with probability p/3 each.

    Built from shared uniforms u: X if u < p/3, Y if u < 2p/3, Z if u < p, so two codes (and two values
    of p) see the same noise samples (common random numbers). Returns the X part and the Z part.
    """
    # X if u < p/3, Y if p/3 ≤ u < 2p/3 (both parts), Z if 2p/3 ≤ u < p
    x_part = uniforms < 2 * p / 3
    z_part = (uniforms >= p / 3) & (uniforms < p)
    return x_part.astype(np.uint8), z_part.astype(np.uint8)


def logical_error_rate(code: CssCode, p: float, uniforms: np.ndarray, osd_order: int = 7) -> tuple[int, int]:
    """Decode X and Z errors separately with ``ldpc.BpOsdDecoder`` (min-sum, max_iter = n, OSD-CS), each with
    marginal rate 2p/3; a shot fails if a residual anticommutes with a logical. Returns (failures, shots)."""
    x_errors, z_errors = depolarizing_errors(uniforms[:, : code.n], p)
    # p_L: the share of shots whose residual is a nontrivial logical
    failed = decoding_failures(code, x_errors, z_errors, p, osd_order)
    return int(failed.sum()), uniforms.shape[0]


def decoding_failures(
    code: CssCode, x_errors: np.ndarray, z_errors: np.ndarray, p: float, osd_order: int = 7
) -> np.ndarray:
    """For each shot (rows of the error arrays): does BP+OSD leave a residual that is a nontrivial logical?"""
    failed = np.zeros(x_errors.shape[0], dtype=bool)
    for h, logicals, errors in ((code.hx, code.lx, z_errors), (code.hz, code.lz, x_errors)):
        decoder = BpOsdDecoder(
            h, error_rate=2 * p / 3, max_iter=code.n, bp_method="ms", osd_method="osd_cs", osd_order=osd_order
        )
        for shot, error in enumerate(errors):
            if not error.any():
                continue
            # residual = decoded correction + error; a failure when it anticommutes with a logical
            residual = (decoder.decode((h @ error) % 2) + error) % 2
            failed[shot] |= bool(((logicals @ residual) % 2).any())
    return failed


def clopper_pearson(failures: int, shots: int, confidence: float = 0.95) -> tuple[float, float]:
    """Exact binomial confidence interval for a logical error rate."""
    alpha = 1 - confidence
    low = 0.0 if failures == 0 else float(beta.ppf(alpha / 2, failures, shots - failures + 1))
    high = 1.0 if failures == shots else float(beta.ppf(1 - alpha / 2, failures + 1, shots - failures))
    return low, high


# ---------------------------------------------------------------------------------------------------------
# 4. Concepts: a specification and the program that realises it
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """The grammar's bounds: group order, code length, entry weight, check weight, protograph size."""

    max_group_order: int = 72
    max_n: int = 144
    max_entry_weight: int = 3
    max_check_weight: int = 8
    max_proto_side: int = 2


@dataclass(frozen=True)
class Spec:
    """The algebraic specification of a lifted-product code: the group G(l, m, r) and protographs A, B."""

    group: Group
    a: ProtoMatrix
    b: ProtoMatrix

    @property
    def n(self) -> int:
        m_a, n_a, m_b, n_b = len(self.a), len(self.a[0]), len(self.b), len(self.b[0])
        return self.group.order * (n_a * m_b + m_a * n_b)

    def check_weight(self) -> int:
        """The largest weight of an X or Z check (row weight of H_X, column weight gives H_Z)."""
        rows_a = [sum(len(e) for e in row) for row in self.a]
        rows_b = [sum(len(e) for e in row) for row in self.b]
        cols_a = [sum(len(e) for e in col) for col in _transpose(self.a)]
        cols_b = [sum(len(e) for e in col) for col in _transpose(self.b)]
        return max(max(rows_a) + max(rows_b), max(cols_a) + max(cols_b))

    def to_json(self) -> str:
        g = self.group
        return json.dumps({"l": g.ell, "m": g.m, "twist": g.twist, "A": self.a, "B": self.b}, separators=(",", ":"))


def spec_from_json(text: str) -> Spec:
    """Parse a specification written as JSON (the format an LLM proposer must answer in)."""
    data = json.loads(text)
    group = Group(int(data["l"]), int(data["m"]), int(data.get("twist", 1)))

    def proto(rows) -> ProtoMatrix:
        return tuple(tuple(tuple(sorted({(int(t[0]), int(t[1])) for t in entry})) for entry in row) for row in rows)

    return Spec(group, proto(data["A"]), proto(data["B"]))


def spec_problems(spec: Spec, limits: Limits) -> list[str]:
    """Every way ``spec`` breaks the grammar (empty list: well formed)."""
    problems = []
    g = spec.group
    if not g.is_valid():
        problems.append(f"group G({g.ell},{g.m},{g.twist}) invalid: need gcd(r,l)=1 and r^m=1 mod l")
    if not 2 <= g.order <= limits.max_group_order:
        problems.append(f"|G|={g.order} outside [2, {limits.max_group_order}]")
    for name, proto in (("A", spec.a), ("B", spec.b)):
        shape = {len(row) for row in proto}
        if not proto or len(shape) != 1 or not 1 <= len(proto) <= limits.max_proto_side:
            problems.append(f"{name} is not a rectangular protograph of side ≤ {limits.max_proto_side}")
            continue
        if not 1 <= shape.pop() <= limits.max_proto_side:
            problems.append(f"{name} has too many columns")
        for row in proto:
            for entry in row:
                if len(entry) > limits.max_entry_weight or len(set(entry)) != len(entry):
                    problems.append(f"{name} entry {entry} has repeated terms or weight > {limits.max_entry_weight}")
                if any(not (0 <= i < g.ell and 0 <= j < g.m) for i, j in entry):
                    problems.append(f"{name} entry {entry} has exponents outside Z_{g.ell} × Z_{g.m}")
        if any(not any(row) for row in proto) or any(not any(col) for col in _transpose(proto)):
            problems.append(f"{name} has an empty row or column")
    if problems:
        return problems
    if spec.n > limits.max_n:
        problems.append(f"n={spec.n} > {limits.max_n}")
    if spec.check_weight() > limits.max_check_weight:
        problems.append(f"check weight {spec.check_weight()} > {limits.max_check_weight}")
    return problems


def render_program(spec: Spec) -> str:
    """The concept's program: Python source that realises the specification with the library's builders.

    In SCE an LLM writes or edits this program. Here **only the specification evolves**: the program is
    generated from it, shown to the proposer and to the reader, and never executed — the evaluator builds the
    code from the validated specification itself (:func:`realise`), so no model-written text is ever run."""
    g = spec.group
    return (
        f"group = Group(ell={g.ell}, m={g.m}, twist={g.twist})  # {g.describe()}\n"
        f"A = {spec.a!r}\n"
        f"B = {spec.b!r}\n"
        "hx, hz = lifted_product(group, A, B)\n"
    )


def realise(spec: Spec) -> tuple[np.ndarray, np.ndarray]:
    """Stage 0: build (H_X, H_Z) of a specification by eq. (LP) — what its program says, without running it."""
    return lifted_product(spec.group, spec.a, spec.b)


@dataclass(frozen=True)
class Concept:
    """A structured concept: the specification, the program that realises it, and its lineage."""

    spec: Spec
    program: str
    origin: str = "seed"


def make_concept(spec: Spec, origin: str = "seed") -> Concept:
    return Concept(spec, render_program(spec), origin)


def toric_seed(ell: int, m: int) -> Spec:
    """The toric code as an LP code: A = 1 + x, B = 1 + y over Z_l × Z_m (a natural, weak seed)."""
    return Spec(Group(ell, m, 1), ((((0, 0), (1, 0)),),), ((((0, 0), (0, 1)),),))


# ---------------------------------------------------------------------------------------------------------
# 5. The mutation grammar (three levels) and the proposers
# ---------------------------------------------------------------------------------------------------------

MUTATION_LEVELS = ("group_algebra", "protograph_geometry", "base_space")
"""Our reading of the paper's three levels: the group G (l, m, twist: abelian <-> non-abelian); the shape
and support of the protographs A, B; the ring elements in the entries (the terms x^i y^j)."""


def _valid_twists(ell: int, m: int) -> list[int]:
    return [r for r in range(1, max(ell, 2)) if Group(ell, m, r).is_valid()]


def _reduce(proto: ProtoMatrix, group: Group) -> ProtoMatrix:
    return tuple(tuple(tuple(sorted({(i % group.ell, j % group.m) for i, j in e})) for e in row) for row in proto)


def spec_over(spec: Spec, group: Group) -> Spec:
    """The same protographs over ``group``, each exponent reduced modulo the group's orders."""
    return Spec(group, _reduce(spec.a, group), _reduce(spec.b, group))


def _mutate_group(spec: Spec, rng: np.random.Generator) -> Spec:
    g = spec.group
    choice = rng.integers(3)
    ell, m = g.ell, g.m
    if choice == 0:
        ell = max(2, ell + int(rng.choice([-3, -2, -1, 1, 2, 3])))
    elif choice == 1:
        m = max(1, m + int(rng.choice([-2, -1, 1, 2])))
    twists = _valid_twists(ell, m)
    twist = int(rng.choice(twists)) if choice == 2 or g.twist not in twists else g.twist
    return spec_over(spec, Group(ell, m, twist))


def _random_entry(group: Group, rng: np.random.Generator, weight: int) -> Entry:
    terms = {(int(rng.integers(group.ell)), int(rng.integers(group.m))) for _ in range(weight)}
    return tuple(sorted(terms))


def _mutate_geometry(spec: Spec, rng: np.random.Generator) -> Spec:
    which = "a" if rng.random() < 0.5 else "b"
    proto = [list(row) for row in getattr(spec, which)]
    action = rng.integers(4)
    if action == 0:  # add a row
        proto.append([_random_entry(spec.group, rng, 1) for _ in proto[0]])
    elif action == 1:  # add a column
        for row in proto:
            row.append(_random_entry(spec.group, rng, 1))
    elif action == 2 and len(proto) > 1:  # remove a row
        proto.pop(int(rng.integers(len(proto))))
    elif action == 3 and len(proto[0]) > 1:  # remove a column
        col = int(rng.integers(len(proto[0])))
        for row in proto:
            row.pop(col)
    else:  # swap two entries of the protograph
        r1, c1 = rng.integers(len(proto)), rng.integers(len(proto[0]))
        r2, c2 = rng.integers(len(proto)), rng.integers(len(proto[0]))
        proto[r1][c1], proto[r2][c2] = proto[r2][c2], proto[r1][c1]
    new = tuple(tuple(row) for row in proto)
    return replace(spec, **{which: new})


def _mutate_entry(spec: Spec, rng: np.random.Generator) -> Spec:
    which = "a" if rng.random() < 0.5 else "b"
    proto = [list(row) for row in getattr(spec, which)]
    r, c = int(rng.integers(len(proto))), int(rng.integers(len(proto[0])))
    terms = list(proto[r][c])
    g = spec.group
    action = rng.integers(3)
    if action == 0 or not terms:  # add a term
        terms.append((int(rng.integers(g.ell)), int(rng.integers(g.m))))
    elif action == 1 and len(terms) > 1:  # remove a term
        terms.pop(int(rng.integers(len(terms))))
    else:  # shift one exponent of one term
        t = int(rng.integers(len(terms)))
        i, j = terms[t]
        if rng.random() < 0.5:
            i = (i + int(rng.choice([-2, -1, 1, 2]))) % g.ell
        else:
            j = (j + int(rng.choice([-1, 1]))) % g.m
        terms[t] = (i, j)
    proto[r][c] = tuple(sorted(set(terms)))
    return replace(spec, **{which: tuple(tuple(row) for row in proto)})


MUTATIONS: dict[str, Callable[[Spec, np.random.Generator], Spec]] = {
    "group_algebra": _mutate_group,
    "protograph_geometry": _mutate_geometry,
    "base_space": _mutate_entry,
}


@dataclass
class ProposalStats:
    """What a proposer produced: proposals, how many were malformed (never evaluated), how many repeats."""

    proposed: int = 0
    invalid: int = 0
    reasons: list[str] = field(default_factory=list)


class GrammarProposer:
    """The offline stand-in for the LLM: pick a level with ``level_weights``, apply a random rule of that
    level, and resample (up to ``attempts`` times) until the child is well formed — so it never returns a
    malformed specification (it returns the parent unchanged if every attempt failed)."""

    name = "grammar"

    def __init__(self, limits: Limits, level_weights=(0.2, 0.2, 0.6), attempts: int = 20):
        self.limits, self.level_weights, self.attempts = limits, np.asarray(level_weights), attempts
        self.stats = ProposalStats()

    def propose(self, parent: Concept, rng: np.random.Generator) -> Concept | None:
        self.stats.proposed += 1
        for _ in range(self.attempts):
            # a level (group, geometry, entry), then a random rule of that level applied to the parent
            level = MUTATION_LEVELS[rng.choice(3, p=self.level_weights / self.level_weights.sum())]
            child = MUTATIONS[level](parent.spec, rng)
            # resample until the child is a new, well-formed specification
            if child != parent.spec and not spec_problems(child, self.limits):
                return make_concept(child, origin=level)
        self.stats.invalid += 1
        return None


def llm_prompt(parent: Concept, fitness: dict) -> str:
    """The prompt an LLM proposer sees: the concept (specification and program), its evaluation, the grammar,
    and the answer format (one JSON specification)."""
    return (
        "You design quantum LDPC codes as lifted products LP(A, B) over the group algebra F2[G],\n"
        "G = Z_l ⋊_r Z_m = <x, y | x^l = y^m = 1, y x y^-1 = x^r> (r = 1: abelian; needs gcd(r,l)=1, r^m=1 mod l).\n"
        "An entry of A or B is a list of terms [i, j] meaning x^i y^j; A and B are at most 2x2.\n"
        f"Current concept:\n{parent.program}"
        f"Its evaluation: {json.dumps(fitness)}\n"
        "Propose ONE mutation (change the group, the protograph shape, or the terms of an entry) that could\n"
        "raise k*d^2/n. Answer with the new specification only, as JSON like\n"
        f"{parent.spec.to_json()}\n"
    )


def parse_proposal(text: str, limits: Limits) -> tuple[Spec | None, str]:
    """Extract the first JSON object from an LLM's answer and validate it against the grammar.

    Returns (spec, "") or (None, reason); never raises."""
    match = re.search(r"\{.*\}", text, flags=re.DOTALL)
    if match is None:
        return None, "no JSON object"
    try:
        spec = spec_from_json(match.group(0))
    except (ValueError, KeyError, TypeError, IndexError) as error:
        return None, f"unparseable: {type(error).__name__}"
    problems = spec_problems(spec, limits)
    return (None, problems[0]) if problems else (spec, "")


class LLMProposer:
    """SCE's proposer: ``generate(prompt) -> text`` is any text generator (a Hugging Face model with
    ``MODEL=<hub id>``); its answer is parsed and validated, and malformed answers are counted, not run."""

    name = "llm"

    def __init__(self, generate: Callable[[str], str], limits: Limits):
        self.generate, self.limits = generate, limits
        self.stats = ProposalStats()
        self.fitness_of: dict[Spec, dict] = {}

    def propose(self, parent: Concept, rng: np.random.Generator) -> Concept | None:
        self.stats.proposed += 1
        try:
            answer = self.generate(llm_prompt(parent, self.fitness_of.get(parent.spec, {})))
        except Exception as error:  # noqa: BLE001 - a failing model must not stop the search
            answer = f"generation failed: {error}"
        spec, reason = parse_proposal(answer, self.limits)
        if spec is None:
            self.stats.invalid += 1
            self.stats.reasons.append(reason)
            return None
        return make_concept(spec, origin="llm")


def hf_text_generator(model: str, seed: int = 0) -> Callable[[str], str]:
    """A ``generate(prompt) -> text`` for :class:`LLMProposer` from ``MODEL``: the zoo's grammar model
    (``"sce-grammar-llama"``, trained here on the specification grammar) or a Hugging Face hub id / folder (an
    instruct model in Colab). See :mod:`llmtheory.qldpc_sce_proposer`."""
    from .qldpc_sce_proposer import proposer_generator

    return proposer_generator(model, seed)


# ---------------------------------------------------------------------------------------------------------
# 6. The staged evaluator, the evolution loop, and the unstructured baselines
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """The outcome of the staged evaluator for one candidate."""

    stage: str  # "invalid", "not CSS", "k = 0", "scored"
    n: int = 0
    k: int = 0
    d: int = 0  # the lightest logical found: an upper bound, or the distance when ``distance_kind`` is "exact"
    distance_kind: str = ""  # "exact" (enumeration or MILP), "bounds" (MILP stopped) or "upper bound"
    fitness: float = 0.0  # the search's score: k·d²/n, with an unproved d capped (:func:`search_score`)
    d_low: int = 0  # a proved lower bound on d (0: none proved)
    d_cheap: int = 0  # the stage-3 bound, kept when stage 4 refines d
    ler: float = 1.0  # stage-5 quick logical error rate (1.0 until measured)
    spec: Spec | None = None
    matrices: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def valid(self) -> bool:
        return self.stage == "scored"


def figure_of_merit(n: int, k: int, d: int) -> float:
    """Eq. ``qldpc_sce-eq-fom``: fitness k d^2 / n (the figure of merit of the public BB search)."""
    return k * d * d / n if n else 0.0


def trust_cap(n: int) -> int:
    """⌊1.3 √n⌋: the public BB search trusts a BP-OSD distance bound only below it. It is a *cap* on the
    search's score, not a bound on d: a code may have a larger distance, and a bound below it may still be loose."""
    return int(1.3 * math.sqrt(n))


def search_score(n: int, k: int, d: int, exact: bool) -> float:
    """The search's fitness: k·d²/n (eq. ``qldpc_sce-eq-fom``) with a proved d, or with an upper bound capped at
    :func:`trust_cap` (an overshooting bound would otherwise reward codes whose distance is merely hard to bound)."""
    return figure_of_merit(n, k, d if exact else min(d, trust_cap(n)))


def evaluate_matrices(
    hx: np.ndarray, hz: np.ndarray, rng: np.random.Generator, distance_trials: int, spec: Spec | None = None
) -> Evaluation:
    """Stages 1–3: CSS check, k over GF(2), distance (exact by enumeration when the kernels are small, else an
    upper bound from ``distance_trials`` trials of each finder) and the score :func:`search_score`."""
    n = hx.shape[1]
    # (1) the CSS condition H_X H_Z^T = 0
    if not commutes(hx, hz):
        return Evaluation("not CSS", n=n, spec=spec)
    # (2) k of eq. qldpc_sce-eq-k; k = 0 is discarded
    code = css_code(hx, hz)
    if code.k == 0:
        return Evaluation("k = 0", n=n, spec=spec)
    # (3) d: exact on small kernels, else the cheap upper bound
    d = exact_distance(code, max_kernel_dim=16)
    exact = d is not None
    if not exact:
        d = distance_upper_bound(code, distance_trials, rng)
    return Evaluation(
        "scored",
        n,
        code.k,
        d,
        "exact" if exact else "upper bound",
        search_score(n, code.k, d, exact),
        d_low=d if exact else 0,
        spec=spec,
        matrices=(hx, hz),
    )


def refine(evaluation: Evaluation, trials: int, rng: np.random.Generator) -> Evaluation:
    """Stage 4 (the public BB search's refinement): redo the distance bound of a scored candidate with many
    more trials; the bound can only go down, and so can the score."""
    if not evaluation.valid or evaluation.distance_kind == "exact":
        return evaluation
    code = css_code(*evaluation.matrices)
    d = min(evaluation.d, distance_upper_bound(code, trials, rng))
    return replace(evaluation, d=d, d_cheap=evaluation.d, fitness=search_score(evaluation.n, evaluation.k, d, False))


def prove(evaluation: Evaluation, max_nodes: int, max_n: int) -> Evaluation:
    """Stage 6: the distance by :func:`proved_distance` (codes with n ≤ ``max_n`` only), using the translation
    symmetry of abelian groups; the score becomes k·d²/n of the proved d (uncapped), or keeps the capped upper
    bound with a proved lower bound beside it when the program stops at its node limit."""
    if not evaluation.valid or evaluation.distance_kind == "exact" or evaluation.n > max_n:
        return evaluation
    spec, code = evaluation.spec, css_code(*evaluation.matrices)
    abelian = spec is not None and spec.group.is_abelian
    single = spec is not None and len(spec.a) == len(spec.a[0]) == len(spec.b) == len(spec.b[0]) == 1
    distance = proved_distance(
        code,
        max_nodes,
        orbit_size=spec.group.order if abelian else None,
        dual=dual_permutation(spec.group) if abelian and single else None,
        upper=evaluation.d,
    )
    kind = "exact" if distance.exact else "bounds"
    score = search_score(evaluation.n, evaluation.k, distance.high, distance.exact)
    return replace(evaluation, d=distance.high, d_low=distance.low, distance_kind=kind, fitness=score)


def quick_ler(evaluation: Evaluation, rng: np.random.Generator, shots: int, p: float = 0.04) -> Evaluation:
    """Stage 5, for candidates that enter the population only: a quick logical error rate at one p with
    BP+OSD-0; with k·d²/n it ranks the population (fitness first, then lower error rate)."""
    if not evaluation.valid or shots == 0:
        return evaluation
    code = css_code(*evaluation.matrices)
    failures, total = logical_error_rate(code, p, rng.random((shots, code.n)), osd_order=0)
    return replace(evaluation, ler=failures / total)


def selection_key(evaluation: Evaluation) -> tuple[float, float]:
    """Fitness from (n, k, d, LER): k·d²/n (eq. ``qldpc_sce-eq-fom``), ties broken by the lower quick logical error
    rate."""
    return (evaluation.fitness, -evaluation.ler)


def evaluate_concept(concept: Concept, rng: np.random.Generator, distance_trials: int, limits: Limits) -> Evaluation:
    """Stage 0 (grammar check, build the code from the specification), then :func:`evaluate_matrices`."""
    if spec_problems(concept.spec, limits):
        return Evaluation("invalid", spec=concept.spec)
    hx, hz = realise(concept.spec)
    return evaluate_matrices(hx, hz, rng, distance_trials, spec=concept.spec)


@dataclass
class SearchResult:
    """The trace of one search: every evaluation in order, the proposer's counts, the wall time."""

    name: str
    evaluations: list[Evaluation]
    invalid_proposals: int
    seconds: float
    seeds: int = 0  # the first ``seeds`` evaluations are the initial population, not proposals

    def best(self) -> Evaluation:
        scored = [e for e in self.evaluations if e.valid]
        return max(scored, key=lambda e: (e.fitness, e.k, -e.n)) if scored else Evaluation("none")

    def best_so_far(self) -> np.ndarray:
        return np.maximum.accumulate([e.fitness for e in self.evaluations]) if self.evaluations else np.zeros(0)

    def valid_fraction(self) -> float:
        """The fraction of *proposals* (seeds excluded) that became valid CSS codes with k > 0."""
        proposals = self.evaluations[self.seeds :]
        return float(np.mean([e.valid for e in proposals])) if proposals else 0.0


def describe(evaluation: Evaluation) -> str:
    """[[n,k,d]] with the group, e.g. "[[75,15,≤5]] over Z_5×Z_3": ≤ marks an upper bound, "4…6" proved bounds."""
    if not evaluation.valid:
        return "none"
    d = {"exact": f"{evaluation.d}", "bounds": f"{evaluation.d_low}…{evaluation.d}"}.get(
        evaluation.distance_kind, f"≤{evaluation.d}"
    )
    group = f" over {evaluation.spec.group.describe()}" if evaluation.spec is not None else ""
    return f"[[{evaluation.n},{evaluation.k},{d}]]{group}"


def evolve(
    seeds: list[Spec],
    proposer,
    budget: int,
    rng: np.random.Generator,
    *,
    population_size: int = 8,
    tournament: int = 3,
    distance_trials: int = 3,
    ler_shots: int = 32,
    limits: Limits = Limits(),
) -> SearchResult:
    """Structured concept evolution: a population of concepts; each step picks a parent by tournament on
    fitness, asks the proposer for a child concept, evaluates it with the staged evaluator (stages 0–3, and
    stage 5 if it may enter the population), and keeps the ``population_size`` fittest concepts by
    :func:`selection_key`, one per niche (an [[n,k,d]] and group; a newcomer replaces an equally fit
    incumbent). ``budget`` counts evaluations (proposals the grammar or the parser rejected cost one too, as an
    LLM call would)."""
    start = time.perf_counter()
    population: dict[str, tuple[Concept, Evaluation]] = {}  # niche (describe()) -> member
    evaluations: list[Evaluation] = []
    for index, spec in enumerate(seeds[:budget]):
        concept = make_concept(spec)
        result = quick_ler(evaluate_concept(concept, rng, distance_trials, limits), rng, ler_shots)
        evaluations.append(result)
        population[f"seed {index}: {describe(result)}"] = (concept, result)
    while len(evaluations) < budget:
        members = list(population.values())
        picks = rng.choice(len(members), size=min(tournament, len(members)), replace=False)
        parent, parent_eval = max((members[i] for i in picks), key=lambda m: selection_key(m[1]))
        if isinstance(proposer, LLMProposer):
            proposer.fitness_of[parent.spec] = {"n": parent_eval.n, "k": parent_eval.k, "d": parent_eval.d}
        child = proposer.propose(parent, rng)
        if child is None:
            evaluations.append(Evaluation("invalid"))
            continue
        result = evaluate_concept(child, rng, distance_trials, limits)
        if result.valid:
            niche = describe(result)  # one member per [[n,k,d]] and group keeps the population diverse
            incumbent = population.get(niche)
            worst = min(selection_key(m[1]) for m in members)
            if incumbent is not None or len(members) < population_size or result.fitness >= worst[0]:
                result = quick_ler(result, rng, ler_shots)
                # an equally good newcomer replaces its niche's incumbent: neutral drift keeps exploring
                if incumbent is None or selection_key(result) >= selection_key(incumbent[1]):
                    population[niche] = (child, result)
                ranked = sorted(population.items(), key=lambda kv: selection_key(kv[1][1]), reverse=True)
                population = dict(ranked[:population_size])
        evaluations.append(result)
    seconds = time.perf_counter() - start
    return SearchResult(f"SCE ({proposer.name})", evaluations, proposer.stats.invalid, seconds, len(seeds[:budget]))


def random_structured_search(budget: int, rng: np.random.Generator, limits: Limits = Limits(), distance_trials=3):
    """Baseline: sample well-formed specifications uniformly from the grammar's space (no evolution)."""
    start = time.perf_counter()
    evaluations = []
    while len(evaluations) < budget:
        spec = random_spec(rng, limits)
        evaluations.append(evaluate_concept(make_concept(spec), rng, distance_trials, limits))
    return SearchResult("random specs", evaluations, 0, time.perf_counter() - start)


def random_spec(rng: np.random.Generator, limits: Limits) -> Spec:
    """A random well-formed specification: random group, protograph shapes and entries (rejection sampling)."""
    while True:
        ell, m = int(rng.integers(2, 13)), int(rng.integers(1, 7))
        group = Group(ell, m, int(rng.choice(_valid_twists(ell, m))))

        def proto(group: Group = group) -> ProtoMatrix:
            rows, cols = int(rng.integers(1, 3)), int(rng.integers(1, 3))
            weight = lambda: int(rng.integers(1, limits.max_entry_weight + 1))  # noqa: E731
            return tuple(tuple(_random_entry(group, rng, weight()) for _ in range(cols)) for _ in range(rows))

        spec = Spec(group, proto(), proto())
        if not spec_problems(spec, limits):
            return spec


def random_edit_search(
    seeds: list[Spec],
    budget: int,
    rng: np.random.Generator,
    *,
    flips: int = 2,
    population_size: int = 8,
    distance_trials: int = 3,
    ler_shots: int = 32,
) -> SearchResult:
    """Unstructured baseline: the same evolution, but a child flips ``flips`` random bits of the parent's
    binary H_X or H_Z (no algebra, no grammar)."""
    start = time.perf_counter()
    population = []  # (selection key, (H_X, H_Z)): seeds enter even when k = 0, since they are still CSS codes
    evaluations = []
    for spec in seeds[:budget]:
        matrices = lifted_product(spec.group, spec.a, spec.b)
        result = evaluate_matrices(*matrices, rng, distance_trials)
        evaluations.append(result)
        population.append((selection_key(quick_ler(result, rng, ler_shots)), matrices))
    while len(evaluations) < budget:
        picks = rng.choice(len(population), size=min(3, len(population)), replace=False)
        parent = max(picks, key=lambda i: population[i][0])
        hx, hz = (m.copy() for m in population[parent][1])
        target = hx if rng.random() < 0.5 else hz
        for _ in range(flips):
            target[rng.integers(target.shape[0]), rng.integers(target.shape[1])] ^= 1
        result = quick_ler(evaluate_matrices(hx, hz, rng, distance_trials), rng, ler_shots)
        evaluations.append(result)
        if result.valid:
            ranked = sorted([*population, (selection_key(result), (hx, hz))], key=lambda e: e[0], reverse=True)
            population = ranked[:population_size]
    return SearchResult("random edits", evaluations, 0, time.perf_counter() - start, len(seeds[:budget]))


def random_matrix_search(
    budget: int, rng: np.random.Generator, *, n: int = 72, checks: int = 36, row_weight: int = 6, distance_trials=3
) -> SearchResult:
    """Unstructured baseline: independent random sparse H_X and H_Z (row weight ``row_weight``)."""
    start = time.perf_counter()
    evaluations = []

    def random_checks() -> np.ndarray:
        h = np.zeros((checks, n), dtype=np.uint8)
        for row in h:
            row[rng.choice(n, size=row_weight, replace=False)] = 1
        return h

    while len(evaluations) < budget:
        evaluations.append(evaluate_matrices(random_checks(), random_checks(), rng, distance_trials))
    return SearchResult("random matrices", evaluations, 0, time.perf_counter() - start)


def random_classical_ldpc(n: int, m: int, column_weight: int, rng: np.random.Generator) -> np.ndarray:
    """A random m×n classical LDPC check matrix: every column has ``column_weight`` ones, placed in the
    currently lightest rows (random tie-break), so row weights differ by at most one."""
    h = np.zeros((m, n), dtype=np.uint8)
    for column in range(n):
        loads = h.sum(axis=1) + rng.random(m)  # lightest rows first, ties broken at random
        h[np.argsort(loads)[:column_weight], column] = 1
    return h


def hypergraph_product(h1: np.ndarray, h2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The hypergraph product (Tillich & Zémor) of two classical codes, eq. (HGP):

        H_X = [H1 ⊗ I_{n2} | I_{m1} ⊗ H2ᵀ],   H_Z = [I_{n1} ⊗ H2 | H1ᵀ ⊗ I_{m2}],   n = n1 n2 + m1 m2.

    A CSS code for *any* H1, H2 (H_X H_Zᵀ = H1⊗H2ᵀ + H1⊗H2ᵀ = 0): valid by construction, with no group algebra."""
    (m1, n1), (m2, n2) = h1.shape, h2.shape
    hx = np.hstack([np.kron(h1, np.eye(n2, dtype=np.uint8)), np.kron(np.eye(m1, dtype=np.uint8), h2.T)])
    hz = np.hstack([np.kron(np.eye(n1, dtype=np.uint8), h2), np.kron(h1.T, np.eye(m2, dtype=np.uint8))])
    return hx.astype(np.uint8), hz.astype(np.uint8)


def random_hgp(rng: np.random.Generator, limits: Limits) -> tuple[np.ndarray, np.ndarray]:
    """A random hypergraph product in the grammar's bounds: two random classical LDPC codes with column weight 2
    or 3, n ≤ ``limits.max_n`` and check weight ≤ ``limits.max_check_weight`` (rejection sampling)."""
    while True:
        parts = []
        for _ in range(2):
            n_c = int(rng.integers(3, 13))
            m_c = int(rng.integers(2, n_c + 1))
            weight = int(rng.integers(2, 4))
            parts.append(random_classical_ldpc(n_c, m_c, min(weight, m_c), rng))
        (m1, n1), (m2, n2) = parts[0].shape, parts[1].shape
        n = n1 * n2 + m1 * m2
        weight_x = parts[0].sum(axis=1).max() + parts[1].sum(axis=0).max()
        weight_z = parts[1].sum(axis=1).max() + parts[0].sum(axis=0).max()
        if 24 <= n <= limits.max_n and max(weight_x, weight_z) <= limits.max_check_weight:
            return hypergraph_product(*parts)


def random_hgp_search(budget: int, rng: np.random.Generator, limits: Limits = Limits(), distance_trials=3):
    """The unstructured control that is valid by construction: random hypergraph products of random classical
    LDPC codes, of n and check weight in the grammar's bounds, at the same evaluation budget."""
    start = time.perf_counter()
    evaluations = [evaluate_matrices(*random_hgp(rng, limits), rng, distance_trials) for _ in range(budget)]
    return SearchResult("random HGP", evaluations, 0, time.perf_counter() - start)


def matches_known(evaluation: Evaluation) -> str | None:
    """The name of a table BB code with the same n and k whose tabulated d the evaluation's *proved* lower bound
    reaches, if any (an upper bound ≥ the table's d proves nothing)."""
    for name in KNOWN_BB_CODES:
        n, k, d = (int(x) for x in name.strip("[]").split(","))
        if evaluation.valid and (evaluation.n, evaluation.k) == (n, k) and evaluation.d_low >= d:
            return name
    return None


# ---------------------------------------------------------------------------------------------------------
# 7. Comparing codes of different k; the chapter's parameters (its experiments: qldpc_sce_experiment)
# ---------------------------------------------------------------------------------------------------------


def per_qubit_rate(ler: float, k: int) -> float:
    """Eq. ``qldpc_sce-eq-per-qubit``: logical error rate per logical qubit, 1 − (1 − LER)^(1/k), to compare codes
    with different k."""
    return 1.0 - (1.0 - ler) ** (1.0 / k)


def check_proposer_model(name: str, value: object) -> str:
    """The proposer: ``"none"`` (the stochastic grammar), a zoo model trained on the grammar, or a Hugging Face id
    or local folder (anything with a ``/``)."""
    from . import zoo  # torch and transformers load only when a model is named

    grammar_models = [m for m in zoo.list() if zoo.SPECS[m].task == "sce_specs"]
    if not (value in ("none", *grammar_models) or (isinstance(value, str) and "/" in value)):
        raise ParameterError(
            f"{name}={value!r} is not valid; choose 'none', {', '.join(map(repr, grammar_models))} or a Hugging Face "
            "hub id like 'org/name'"
        )
    return value


PARAMETERS = {
    "MODEL": check_proposer_model,
    "BUDGET": Int(minimum=0),  # 0: by scale
    "SHOTS": Int(minimum=0),  # 0: by scale
}
"""The chapter's parameters besides ``SCALE`` and ``SEED`` (its notebook's ``parameters`` cell), declared once:
the notebook checks them with :func:`llmtheory.params.check_parameters`, the command line before it runs."""
