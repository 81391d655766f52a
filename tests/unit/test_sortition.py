"""Sortition: the integer CDF walk against exact arithmetic, its statistics, select/verify."""

from __future__ import annotations

import hashlib
import random
from fractions import Fraction
from math import comb

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wekacoin.crypto.keys import KeyPair
from wekacoin.sortition import (
    Role,
    compute_priority,
    compute_subusers,
    select,
    selection_threshold,
    sortition_alpha,
    verify,
)
from wekacoin.sortition.binomial import HASH_BITS, MAX_TAU, _walk

SEED = bytes(range(32))


def exact_subusers(w: int, total: int, tau: int, x: int) -> int:
    """Alg. 1 with exact rationals: the least j with x/2^256 < CDF(j), else w."""
    p = Fraction(tau, total)
    ratio = Fraction(x, 2**256)
    cdf = Fraction(0)
    for j in range(w):
        cdf += comb(w, j) * p**j * (1 - p) ** (w - j)
        if ratio < cdf:
            return j
    return w


def out(x: int) -> bytes:
    return x.to_bytes(32, "big") + bytes(32)


@settings(max_examples=150, deadline=None)
@given(
    w=st.integers(1, 60), total_extra=st.integers(1, 5_000), tau=st.integers(1, 400),
    x=st.integers(0, 2**256 - 1),
)
def test_integer_walk_equals_exact_rationals(w, total_extra, tau, x):
    total = w + total_extra
    expected = w if tau >= total else exact_subusers(w, total, tau, x)
    assert compute_subusers(w, total, tau, out(x)) == expected


def test_knife_edges_are_decided_by_integers():
    """Either side of every boundary of a case, j steps by one; the boundary itself selects
    the higher j, exactly as the rounding rule says."""
    w, total, tau = 40, 1_000, 200
    compute_subusers(w, total, tau, out(2**256 - 1))
    for k, bound in enumerate(_walk(w, total, tau).bounds[:15]):
        assert compute_subusers(w, total, tau, out(bound - 1)) <= k
        assert compute_subusers(w, total, tau, out(bound)) == k + 1 or bound == 0
    assert selection_threshold(w, total, tau) == _walk(w, total, tau).bounds[0]


def test_degenerate_inputs():
    assert compute_subusers(0, 100, 10, out(123)) == 0
    assert compute_subusers(5, 5, 10, out(123)) == 5  # tau >= W
    assert compute_subusers(5, 100, 10, out(0)) == 0
    with pytest.raises(ValueError):
        compute_subusers(101, 100, 10, out(1))
    with pytest.raises(ValueError, match="tau"):
        compute_subusers(5, 10**9, MAX_TAU + 1, out(1))
    with pytest.raises(ValueError, match="tau"):
        selection_threshold(5, 10**9, MAX_TAU + 1)


@settings(max_examples=150, deadline=None)
@given(
    w=st.integers(1, 60), tau=st.integers(2, 400), share=st.integers(1, 999),
    x=st.integers(0, 2**256 - 1),
)
def test_reflected_walk_equals_exact_rationals(w, tau, share, x):
    """1/2 < p < 1 goes through the reflection j = w - walk(w, W, W - tau, TOP - x); it still
    picks exactly Alg. 1's j (the rationals differ only at the boundaries themselves)."""
    total = max(w, tau + 1 + (tau - 1) * share // 1000)  # tau < W < 2 tau when w allows it
    expected = w if tau >= total else exact_subusers(w, total, tau, x)
    assert compute_subusers(w, total, tau, out(x)) == expected


def test_reflected_threshold_is_the_first_selecting_output():
    """selection_threshold of a reflected case (tau > W/2) is the least x with j >= 1."""
    for w, total, tau in [(3, 10, 6), (40, 70, 40), (1, 19_999, 10_000), (7, 13, 7)]:
        t = selection_threshold(w, total, tau)
        assert 0 < t < 2**256
        assert compute_subusers(w, total, tau, out(t - 1)) == 0
        assert compute_subusers(w, total, tau, out(t)) >= 1
    # (1 - p)^w < 2^-256: every output but x = 0 selects (as in Alg. 1: 0 < CDF(0)).
    assert selection_threshold(2_500, 10_004, 10_000) == 1
    assert compute_subusers(2_500, 10_004, 10_000, out(1)) >= 1


def _mean_total(
    weights: list[int], tau: int, trials: int, rng: random.Random, total: int | None = None
) -> Fraction:
    total = total or sum(weights)
    s = 0
    for _ in range(trials):
        s += sum(compute_subusers(w, total, tau, out(rng.getrandbits(256))) for w in weights)
    return Fraction(s, trials)


def test_mean_selected_subusers_is_tau():
    """Over 3,000 seeded draws the committee averages tau = 200 sub-users: the standard
    deviation of one draw is about sqrt(200) = 14, of the mean 0.26; we allow 1.3 (5 sigma)."""
    rng = random.Random(7)
    weights = [rng.randint(1, 10**6) for _ in range(25)]
    mean = _mean_total(weights, 200, 3_000, rng)
    assert abs(mean - 200) < Fraction(13, 10)


def test_splitting_stake_does_not_raise_expected_selection():
    """A user of weight 2w and two users of weight w each expect the same number of sub-users
    (Binomial is additive); measured over 20,000 seeded draws each, within 5 sigma."""
    rng = random.Random(11)
    total, tau, w = 10**6, 2_000, 50_000
    whole = _mean_total([2 * w], tau, 20_000, rng, total)
    split = _mean_total([w, w], tau, 20_000, rng, total)
    expected = Fraction(tau * 2 * w, total)  # 200
    sigma = Fraction(15, 100)  # sqrt(200 / 20000) ~ 0.1
    assert abs(whole - expected) < 5 * sigma
    assert abs(split - expected) < 5 * sigma


def test_larger_weight_is_selected_more():
    rng = random.Random(3)
    small = _mean_total([1_000], 2_000, 3_000, rng, 10**6)
    large = _mean_total([10_000], 2_000, 3_000, rng, 10**6)
    assert large > 8 * small


def _key(i: int) -> KeyPair:
    return KeyPair.from_seed(hashlib.sha256(b"sortition-test" + bytes([i])).digest())


def test_select_and_verify_agree():
    selected = 0
    for i in range(12):
        key = _key(i)
        alpha = sortition_alpha(SEED, Role.COMMITTEE, 3, 0, 2)
        mine = select(key, alpha, 30_000, 1_000_000, 100)
        theirs_proof = mine.proof if mine else None
        if mine is None:
            continue
        selected += 1
        assert verify(key.public_key, theirs_proof, alpha, 30_000, 1_000_000, 100) == mine
        # The same proof under another input, another key or another weight is not the same.
        other = sortition_alpha(SEED, Role.COMMITTEE, 3, 0, 3)
        assert verify(key.public_key, mine.proof, other, 30_000, 1_000_000, 100) is None
        assert verify(_key(99).public_key, mine.proof, alpha, 30_000, 1_000_000, 100) is None
        assert verify(key.public_key, mine.proof, alpha, 0, 1_000_000, 100) is None
    assert selected >= 6


def test_unlikely_selection_path_matches_verify():
    """With a small share `select` looks at the VRF output before proving; whatever it
    decides, a verifier holding the proof decides the same."""
    alpha = sortition_alpha(SEED, Role.COMMITTEE, 1, 0, 1)
    hits = 0
    for i in range(60):
        key = _key(i)
        mine = select(key, alpha, 1_000, 1_000_000, 300)  # P(selected) ~ 0.26
        from wekacoin.crypto import vrf
        proof = vrf.prove(key.seed, alpha)
        theirs = verify(key.public_key, proof, alpha, 1_000, 1_000_000, 300)
        assert mine == theirs
        hits += mine is not None
    assert 5 <= hits <= 30


def test_priority_is_the_minimum_over_subusers():
    output = hashlib.sha512(b"x").digest()
    p1, p3 = compute_priority(output, 1), compute_priority(output, 3)
    assert p3 <= p1
    assert compute_priority(output, 3) == min(compute_priority(output, 1), p3)


def test_alpha_separates_roles_rounds_periods_and_steps():
    alphas = {
        sortition_alpha(SEED, role, r, p, s)
        for role in Role for r in (1, 2) for p in (0, 1) for s in (0, 1)
    }
    assert len(alphas) == len(Role) * 8
    with pytest.raises(ValueError):
        sortition_alpha(b"short", Role.PROPOSER, 1)


# -- the cost of a sortition is bounded for every input --

TOP = 2**256 - 1
ADVERSARIAL = [
    (2_500, 10_004, 10_000),  # tau barely below W: took minutes before the reflection
    (10_000, 10_001, 10_000),
    (1, 10_001, 10_000),
    (2 * MAX_TAU, 2 * MAX_TAU, MAX_TAU),  # p = 1/2 with w = W: the most precision bits
    (2 * MAX_TAU - 1, 2 * MAX_TAU - 1, MAX_TAU),  # p just above 1/2: the longest reflection
    (2 * MAX_TAU, 2 * MAX_TAU + 1, MAX_TAU),  # p just below 1/2
    (MAX_TAU + 1, MAX_TAU + 1, MAX_TAU),
    (2**64 - 1, 2**64 - 1, MAX_TAU),  # the largest weight: 64 squarings, the longest walk
    (2**63, 2**64 - 1, MAX_TAU),
    (1, 2**64 - 1, MAX_TAU),
    (5, 5, MAX_TAU),  # tau >= W (stake shrank below tau): everything, at no cost
]


def _exercise_worst_case(w: int, total: int, tau: int) -> None:
    """Every costly path of one triple: the top output, the threshold and the walk run to its
    very end (further than any output can take it), with the structural bounds of the
    binomial module docstring: F < 385 + 3*tau bits, at most min(w, 6*tau + 386) steps."""
    for x in (0, 2**255, TOP):
        assert 0 <= compute_subusers(w, total, tau, out(x)) <= w
    assert 0 <= selection_threshold(w, total, tau) <= 2**256
    if tau >= total:
        return
    walk = _walk(w, total, tau) if 2 * tau <= total else _walk(w, total, total - tau, True)
    walk.last_bound()
    assert walk.shift + HASH_BITS < 385 + 3 * tau
    assert len(walk.bounds) <= min(w, 6 * tau + 386) + 1


@pytest.mark.timeout(5)
@pytest.mark.parametrize("w, total, tau", ADVERSARIAL)
def test_adversarial_triples_are_cheap(w, total, tau):
    _walk.cache_clear()
    _exercise_worst_case(w, total, tau)


def _triples():
    """Random triples, biased to the costly corners: tau near W/2 or W, w near W."""
    def triple(draw_total, tau, w_share):
        total = max(1, draw_total)
        return max(1, total * w_share // 1000), total, tau

    tau = st.integers(0, MAX_TAU)
    near = st.builds(
        lambda t, d, s: triple(t + d, t, s), tau, st.integers(-MAX_TAU, 2 * MAX_TAU),
        st.integers(0, 1000),
    )
    anywhere = st.builds(triple, st.integers(1, 2**64 - 1), tau, st.integers(0, 1000))
    return st.one_of(near, anywhere)


@pytest.mark.timeout(60)
@settings(max_examples=40, deadline=None)
@given(triple=_triples())
def test_random_triples_stay_within_the_bounds(triple):
    _exercise_worst_case(*triple)


def test_walk_is_fast_for_many_distinct_weights():
    """10,000 users with distinct stakes: one sortition each stays well under a second of
    arithmetic (the VRF is not part of this)."""
    import time

    rng = random.Random(5)
    weights = [rng.randint(1, 10**9) for _ in range(10_000)]
    total = sum(weights)
    start = time.process_time()
    picked = sum(compute_subusers(w, total, 10_000, out(rng.getrandbits(256))) for w in weights)
    elapsed = time.process_time() - start
    assert 9_000 < picked < 11_000
    assert elapsed < 3


def test_vrf_output_without_proof_is_the_proofs_output():
    """`vrf.output` (added for sortition) gives exactly what verifying `vrf.prove`'s proof
    gives, and refuses what `prove` refuses."""
    from wekacoin.crypto import vrf

    for i in range(40):
        key = _key(i)
        alpha = b"alpha" + bytes([i]) * i
        proof = vrf.prove(key.seed, alpha)
        assert vrf.output(key.seed, alpha) == vrf.verify(key.public_key, proof, alpha)
        assert vrf.output(key.seed, alpha, key.public_key) == vrf.output(key.seed, alpha)
    with pytest.raises(ValueError):
        vrf.output(b"short", b"a")
    with pytest.raises(TypeError):
        vrf.output(_key(0).seed, "text")
