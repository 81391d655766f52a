"""How many sub-users a VRF output selects: the Binomial(w, tau/W) CDF walk, in integers.

Algorand (Gilad et al., SOSP'17, Alg. 1) selects j sub-users of a user of weight w when the
VRF output, read as a fraction x/2^256, falls in [CDF(j-1), CDF(j)). Computed with floats, two
nodes can disagree on j when x sits at a knife edge; go-algorand left Boost doubles for a
software 128-bit float for that reason. Here every quantity is an integer, so the rule below
is the specification and every node gets the same j.

Rounding rule (p = tau/W; all divisions floor):

    E = ceil(3*w*tau / (2*(W - tau)))   bits that (1-p)^w can lose: -log2((1-p)^w) <= 1.5*w*p/(1-p)
    F = 256 + 128 + E                   fractional bits, so pmf_0 keeps at least 384 bits
    q = floor((W - tau) * 2^F / W)      1 - p
    pmf_0 = q^w                         left-to-right square-and-multiply over the bits of w,
                                        flooring each product: a*b >> F, starting from 2^F
    pmf_k = floor(pmf_{k-1} * (w-k+1) * tau / (k * (W - tau)))
    cdf_k = pmf_0 + ... + pmf_k
    j = the least k < w with x * 2^(F-256) < cdf_k, or w if there is none

with x the first 32 bytes of the VRF output, big-endian. Degenerate cases: w = 0 gives 0;
tau >= W (p >= 1) gives w.

Speed. The boundaries depend only on (w, W, tau), so a walk is kept per triple (an LRU cache)
and extended lazily as far as some output needs; a later output with the same triple costs a
bisection. Boundaries are stored as ceil(cdf_k / 2^(F-256)) (257-bit integers), since
x * 2^s < c exactly when x < ceil(c / 2^s). In a sortition where every user has a small share
(tau*w/W near 1) a walk is a handful of 400-bit integers; a user holding a large share of
the stake pays O(j) multiplications of F-bit integers once per (w, W, tau), then bisection.
"""

from __future__ import annotations

from bisect import bisect_right
from functools import lru_cache

HASH_BITS = 256
GUARD_BITS = 128


def compute_subusers(weight: int, total: int, tau: int, vrf_output: bytes) -> int:
    """j for a user of `weight` out of `total` when `tau` sub-users are expected."""
    if weight <= 0:
        return 0
    if weight > total:
        raise ValueError(f"weight {weight} exceeds the total weight {total}")
    if tau >= total:
        return weight
    x = int.from_bytes(vrf_output[:32], "big")
    return _walk(weight, total, tau).subusers(x)


def selection_threshold(weight: int, total: int, tau: int) -> int:
    """The least 256-bit x that selects at least one sub-user (x below it selects none)."""
    if weight <= 0:
        return 2**HASH_BITS
    if tau >= total:
        return 0
    return _walk(weight, total, tau).bounds[0]


@lru_cache(maxsize=4096)
def _walk(weight: int, total: int, tau: int) -> _Walk:
    return _Walk(weight, total, tau)


class _Walk:
    """The CDF boundaries of one (w, W, tau), computed as far as an output has needed."""

    __slots__ = ("w", "tau", "rest", "shift", "pmf", "cdf", "bounds", "frozen")

    def __init__(self, w: int, total: int, tau: int) -> None:
        rest = total - tau
        extra = -(-3 * w * tau // (2 * rest))
        f = HASH_BITS + GUARD_BITS + extra
        q = (rest << f) // total
        self.w, self.tau, self.rest = w, tau, rest
        self.shift = f - HASH_BITS
        self.pmf = _power(q, w, f)
        self.cdf = self.pmf
        self.bounds = [self._bound(self.cdf)]
        self.frozen = self.pmf == 0

    def _bound(self, cdf: int) -> int:
        return -(-cdf >> self.shift)

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
