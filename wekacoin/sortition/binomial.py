"""How many sub-users a VRF output selects: the Binomial(w, tau/W) CDF walk, in integers.

Algorand (Gilad et al., SOSP'17, Alg. 1) selects j sub-users of a user of weight w when the
VRF output, read as a fraction x/2^256, falls in [CDF(j-1), CDF(j)). Computed with floats, two
nodes can disagree on j when x sits at a knife edge; go-algorand left Boost doubles for a
software 128-bit float for that reason. Here every quantity is an integer, so the rule below
is the specification and every node gets the same j.

Rounding rule (p = tau/W; all divisions floor), for 0 < w <= W and 0 <= tau <= MAX_TAU:

    E = ceil(3*w*tau / (2*(W - tau)))   bits that (1-p)^w can lose: -log2((1-p)^w) <= 1.5*w*p/(1-p)
    F = 256 + 128 + E                   fractional bits, so pmf_0 keeps at least 384 bits
    q = floor((W - tau) * 2^F / W)      1 - p
    pmf_0 = q^w                         left-to-right square-and-multiply over the bits of w,
                                        flooring each product: a*b >> F, starting from 2^F
    pmf_k = floor(pmf_{k-1} * (w-k+1) * tau / (k * (W - tau)))
    cdf_k = pmf_0 + ... + pmf_k
    walk(w, W, tau, x)    = the least k < w with x * 2^(F-256) <  cdf_k, or w if there is none
    reflect(w, W, tau, y) = the least k < w with y * 2^(F-256) <= cdf_k, or w if there is none

with x the first 32 bytes of the VRF output, big-endian. Then

    j = 0                                        if w = 0
    j = w                                        if tau >= W          (p >= 1)
    j = walk(w, W, tau, x)                       if 2*tau <= W        (p <= 1/2)
    j = w - reflect(w, W, W - tau, 2^256 - x)    if W < 2*tau < 2*W   (1/2 < p < 1)

The last line is the reflection Binomial(w, p) = w - Binomial(w, 1 - p), read from the top:
j > k exactly when x >= 2^256 * CDF_p(k) = 2^256 - 2^256 * CDF_{1-p}(w - k - 1), that is when
2^256 - x <= 2^256 * CDF_{1-p}(w - k - 1); hence the `<=`, which makes both lines pick Alg. 1's
j with exact rationals except where the integer CDF is off by its last bits. The reflection is
what bounds the cost: walking p near 1 directly needs E -> infinity bits as W - tau -> 0
(w = 2,500, W = 10,004, tau = 10,000 gives E ~ 9.4 million) and j ~ w steps.

Cost, for every input. The walk always runs at p' <= 1/2 with mean mu' = w*p' < tau, so
E <= 3*w*p' < 3*tau and F < 385 + 3*tau bits. The floors only lower a pmf (pmf_k <= the exact
pmf times 2^F), and the exact pmf is below 2^-k once k >= 2e*mu' (Chernoff), so every pmf_k
with k > max(2e*mu', F) floors to 0 and the walk stops there: at most min(w, 6*tau + 386)
steps, each a multiplication and a division of an F-bit integer by small ones, after
log2(w) <= 64 squarings of F-bit integers. tau is capped at MAX_TAU (genesis validation
refuses more), so the worst case over all (w, W, tau, x) is a fixed budget, whatever the stake
does at run time: tau >= W (stake shrank below tau) selects every sub-user at no cost.

Speed. The boundaries depend only on (w, W, tau), so a walk is kept per triple (an LRU cache)
and extended lazily as far as some output needs; a later output with the same triple costs a
bisection. Boundaries are stored as ceil(cdf_k / 2^(F-256)) (257-bit integers), since
x * 2^s < c exactly when x < ceil(c / 2^s); a reflected walk stores floor(cdf_k / 2^(F-256)),
since y * 2^s <= c exactly when y - 1 < floor(c / 2^s). In a sortition where every user has
a small share (tau*w/W near 1) a walk is a handful of 400-bit integers; a user holding a
large share of the stake pays O(j) multiplications of F-bit integers once per (w, W, tau).
"""

from __future__ import annotations

from bisect import bisect_right
from functools import lru_cache

HASH_BITS = 256
GUARD_BITS = 128
MAX_TAU = 20_000
"""The largest expected committee a sortition accepts: it bounds the walk's precision and length."""
_TOP = 2**HASH_BITS - 1


def compute_subusers(weight: int, total: int, tau: int, vrf_output: bytes) -> int:
    """j for a user of `weight` out of `total` when `tau` sub-users are expected."""
    if weight <= 0:
        return 0
    _check(weight, total, tau)
    if tau >= total:
        return weight
    x = int.from_bytes(vrf_output[:32], "big")
    if 2 * tau <= total:
        return _walk(weight, total, tau).subusers(x)
    # y * 2^s <= cdf  <=>  y - 1 < floor(cdf / 2^s), with y - 1 = 2^256 - x - 1 = TOP - x.
    return weight - _walk(weight, total, total - tau, True).subusers(_TOP - x)


def selection_threshold(weight: int, total: int, tau: int) -> int:
    """The least 256-bit x that selects at least one sub-user (x below it selects none)."""
    if weight <= 0:
        return 2**HASH_BITS
    _check(weight, total, tau)
    if tau >= total:
        return 0
    if 2 * tau <= total:
        return _walk(weight, total, tau).bounds[0]
    # j >= 1 exactly when the reflected walk stops before w: TOP - x < its last boundary.
    return 2**HASH_BITS - _walk(weight, total, total - tau, True).last_bound()


def _check(weight: int, total: int, tau: int) -> None:
    if weight > total:
        raise ValueError(f"weight {weight} exceeds the total weight {total}")
    if not 0 <= tau <= MAX_TAU:
        raise ValueError(f"tau {tau} is outside [0, {MAX_TAU}]")


@lru_cache(maxsize=4096)
def _walk(weight: int, total: int, tau: int, reflected: bool = False) -> _Walk:
    return _Walk(weight, total, tau, reflected)


class _Walk:
    """The CDF boundaries of one (w, W, tau), computed as far as an output has needed."""

    __slots__ = ("w", "tau", "rest", "shift", "floor", "pmf", "cdf", "bounds", "frozen")

    def __init__(self, w: int, total: int, tau: int, reflected: bool = False) -> None:
        rest = total - tau
        extra = -(-3 * w * tau // (2 * rest))
        f = HASH_BITS + GUARD_BITS + extra
        q = (rest << f) // total
        self.w, self.tau, self.rest = w, tau, rest
        self.shift = f - HASH_BITS
        self.floor = reflected
        self.pmf = _power(q, w, f)
        self.cdf = self.pmf
        self.bounds = [self._bound(self.cdf)]
        self.frozen = self.pmf == 0

    def _bound(self, cdf: int) -> int:
        return cdf >> self.shift if self.floor else -(-cdf >> self.shift)

    def last_bound(self) -> int:
        """The boundary of cdf_{w-1}: the walk extended until it cannot move any more."""
        self.subusers(2**HASH_BITS)  # no boundary exceeds 2^256: this walks to the end
        return self.bounds[-1]

    def subusers(self, x: int) -> int:
        bounds = self.bounds
        if x < bounds[-1]:
            return bisect_right(bounds, x)
        w, tau, rest = self.w, self.tau, self.rest
        k = len(bounds)
        pmf, cdf = self.pmf, self.cdf
        try:
            while k < w and not self.frozen:
                pmf = pmf * (w - k + 1) * tau // (k * rest)
                cdf += pmf
                bound = self._bound(cdf)
                bounds.append(bound)
                if pmf == 0:
                    # Every later pmf floors to 0 too: the CDF stays where it is.
                    self.frozen = True
                if x < bound:
                    return k
                k += 1
            return w
        finally:
            self.pmf, self.cdf = pmf, cdf


def _power(q: int, n: int, f: int) -> int:
    """q^n in fixed point with f fractional bits, flooring every product (MSB first)."""
    result = 1 << f
    for bit in bin(n)[2:]:
        result = result * result >> f
        if bit == "1":
            result = result * q >> f
    return result
