"""ECVRF-EDWARDS25519-SHA512-TAI: RFC 9381 vectors, properties, and a slow reference model.

The reference model below is written straight from RFC 8032 and RFC 9381 in Python integers,
with none of the libsodium shortcuts of `wekacoin.crypto.vrf`, so that the two can be compared
on random and hostile inputs.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from wekacoin.crypto import vrf

VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "vrf_rfc9381.json").read_text())

# --- Reference model (RFC 8032 section 5.1 arithmetic, RFC 9381 section 5) -------------------

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, -1, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)
Point = tuple[int, int, int, int]  # extended coordinates (X, Y, Z, T)
IDENTITY: Point = (0, 1, 1, 0)


def ref_decode(s: bytes) -> Point | None:
    n = int.from_bytes(s, "little")
    y, sign = n & ((1 << 255) - 1), n >> 255
    if y >= P:
        return None
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if v * x * x % P == (-u) % P:
        x = x * SQRT_M1 % P
    elif v * x * x % P != u:
        return None
    if x == 0 and sign:
        return None
    if x & 1 != sign:
        x = P - x
    return (x, y, 1, x * y % P)


def ref_encode(p: Point) -> bytes:
    zi = pow(p[2], -1, P)
    x, y = p[0] * zi % P, p[1] * zi % P
    return (y | (x & 1) << 255).to_bytes(32, "little")


def ref_add(p: Point, q: Point) -> Point:
    a = (p[1] - p[0]) * (q[1] - q[0]) % P
    b = (p[1] + p[0]) * (q[1] + q[0]) % P
    c = 2 * D * p[3] * q[3] % P
    d = 2 * p[2] * q[2] % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def ref_neg(p: Point) -> Point:
    return (-p[0] % P, p[1], p[2], -p[3] % P)


def ref_mul(n: int, p: Point) -> Point:
    r = IDENTITY
    while n:
        if n & 1:
            r = ref_add(r, p)
        p, n = ref_add(p, p), n >> 1
    return r


def ref_is_identity(p: Point) -> bool:
    return p[0] % P == 0 and (p[1] - p[2]) % P == 0


B = ref_decode((4 * pow(5, -1, P) % P).to_bytes(32, "little"))
assert B is not None


def ref_h2c(salt: bytes, alpha: bytes) -> Point:
    for ctr in range(256):
        hashed = hashlib.sha512(b"\x03\x01" + salt + alpha + bytes((ctr, 0))).digest()
        candidate = ref_decode(hashed[:32])
        if candidate is not None:
            return ref_mul(8, candidate)
    raise AssertionError("unreachable")


def ref_challenge(*points: Point) -> int:
    data = b"\x03\x02" + b"".join(ref_encode(p) for p in points) + b"\x00"
    return int.from_bytes(hashlib.sha512(data).digest()[:16], "little")


def ref_verify(pk: bytes, pi: bytes, alpha: bytes) -> bytes | None:
    """RFC 9381 section 5.3 with validate_key, and nothing more."""
    y = ref_decode(pk) if len(pk) == 32 else None
    if y is None or len(pi) != 80 or ref_is_identity(ref_mul(8, y)):
        return None
    gamma = ref_decode(pi[:32])
    c, s = int.from_bytes(pi[32:48], "little"), int.from_bytes(pi[48:], "little")
    if gamma is None or s >= L:
        return None
    h = ref_h2c(pk, alpha)
    u = ref_add(ref_mul(s, B), ref_neg(ref_mul(c, y)))
    v = ref_add(ref_mul(s, h), ref_neg(ref_mul(c, gamma)))
    if ref_challenge(y, h, gamma, u, v) != c:
        return None
    return hashlib.sha512(b"\x03\x03" + ref_encode(ref_mul(8, gamma)) + b"\x00").digest()


def small_order_points() -> list[Point]:
    """The eight points of order dividing 8: multiples of an order-8 point."""
    order_8 = "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"
    t = ref_decode(bytes.fromhex(order_8))
    assert t is not None and not ref_is_identity(ref_mul(4, t))
    return [ref_mul(i, t) for i in range(8)]


SMALL_ORDER = small_order_points()
ORDER_8 = SMALL_ORDER[1]

# --- RFC 9381 Appendix B.3 -------------------------------------------------------------------


@pytest.mark.parametrize("v", VECTORS["valid"], ids=lambda v: v["name"])
def test_rfc_vector(v: dict[str, str]) -> None:
    sk, pk, alpha, pi, beta = (bytes.fromhex(v[k]) for k in ("sk", "pk", "alpha", "pi", "beta"))
    assert vrf.public_key(sk) == pk
    assert vrf.prove(sk, alpha) == pi
    assert vrf.verify(pk, pi, alpha) == beta
    assert vrf.proof_to_hash(pi) == beta
    assert ref_verify(pk, pi, alpha) == beta


@pytest.mark.parametrize("case", VECTORS["rejected"]["cases"], ids=lambda c: c["name"])
def test_rejected_vector(case: dict) -> None:
    pk, alpha, pi = (bytes.fromhex(case[k]) for k in ("pk", "alpha", "pi"))
    assert vrf.verify(pk, pi, alpha) is None
    assert (ref_verify(pk, pi, alpha) is not None) == case["rfc9381_valid"]


def test_public_key_matches_ed25519() -> None:
    from nacl.signing import SigningKey

    seed = bytes(range(32))
    assert vrf.public_key(seed) == bytes(SigningKey(seed).verify_key)


# --- Properties ------------------------------------------------------------------------------

seeds = st.binary(min_size=32, max_size=32)
alphas = st.binary(max_size=64)
common = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@common
@given(seeds, alphas)
def test_round_trip(sk: bytes, alpha: bytes) -> None:
    pk, pi = vrf.public_key(sk), vrf.prove(sk, alpha)
    beta = vrf.verify(pk, pi, alpha)
    assert beta is not None and len(beta) == 64 and len(pi) == 80
    assert beta == vrf.proof_to_hash(pi)
    assert vrf.prove(sk, alpha) == pi  # deterministic


@common
@given(seeds, alphas, st.data())
def test_flipped_bit_rejected(sk: bytes, alpha: bytes, data: st.DataObject) -> None:
    pk, pi = vrf.public_key(sk), vrf.prove(sk, alpha)
    bit = data.draw(st.integers(0, 80 * 8 - 1))
    bad = bytearray(pi)
    bad[bit // 8] ^= 1 << (bit % 8)
    assert vrf.verify(pk, bytes(bad), alpha) is None


@common
@given(seeds, alphas, st.data())
def test_truncated_or_extended_rejected(sk: bytes, alpha: bytes, data: st.DataObject) -> None:
    pk, pi = vrf.public_key(sk), vrf.prove(sk, alpha)
    cut = data.draw(st.integers(0, 79))
    extra = data.draw(st.binary(min_size=1, max_size=8))
    assert vrf.verify(pk, pi[:cut], alpha) is None
    assert vrf.verify(pk, pi + extra, alpha) is None
    assert vrf.verify(pk[:cut % 32], pi, alpha) is None
    assert vrf.verify(pk + extra, pi, alpha) is None


@common
@given(seeds, alphas, alphas)
def test_wrong_alpha_rejected(sk: bytes, alpha: bytes, other: bytes) -> None:
    assume(other != alpha)
    assert vrf.verify(vrf.public_key(sk), vrf.prove(sk, alpha), other) is None


@common
@given(seeds, seeds, alphas)
def test_wrong_key_rejected(sk: bytes, other: bytes, alpha: bytes) -> None:
    assume(other != sk)
    assert vrf.verify(vrf.public_key(other), vrf.prove(sk, alpha), alpha) is None


@common
@given(st.binary(max_size=64).filter(lambda b: len(b) != 32), alphas)
def test_secret_key_of_wrong_length(sk: bytes, alpha: bytes) -> None:
    with pytest.raises(ValueError):
        vrf.prove(sk, alpha)
    with pytest.raises(ValueError):
        vrf.public_key(sk)


@settings(deadline=None, max_examples=40)
@given(st.binary(min_size=32, max_size=32), st.binary(min_size=80, max_size=80), alphas)
def test_random_proofs_rejected(pk: bytes, pi: bytes, alpha: bytes) -> None:
    assert vrf.verify(pk, pi, alpha) is None
    assert ref_verify(pk, pi, alpha) is None


@common
@given(seeds, alphas)
def test_agrees_with_reference(sk: bytes, alpha: bytes) -> None:
    pk, pi = vrf.public_key(sk), vrf.prove(sk, alpha)
    assert ref_verify(pk, pi, alpha) == vrf.verify(pk, pi, alpha)


def with_sign_bit(p: bytes) -> bytes:
    return p[:31] + bytes((p[31] | 0x80,))


def small_order_encodings() -> list[bytes]:
    """Each small-order point: canonical, with the sign bit set, and as y + p when that fits."""
    out = set()
    for q in SMALL_ORDER:
        e = ref_encode(q)
        out |= {e, with_sign_bit(e)}
        y = int.from_bytes(e, "little") & ((1 << 255) - 1)
        if y + P < 2**255:
            out |= {(y + P).to_bytes(32, "little"), with_sign_bit((y + P).to_bytes(32, "little"))}
    return sorted(out)


@pytest.mark.parametrize("pk", small_order_encodings(), ids=lambda b: b.hex()[:8] + b.hex()[-2:])
def test_small_order_public_key_rejected(pk: bytes) -> None:
    # A proof from a real key, and one that satisfies the equations for this very key (secret 0).
    sk = bytes(32)
    pi = vrf.prove(sk, b"a")
    assert vrf.verify(pk, pi, b"a") is None
    for case in VECTORS["rejected"]["cases"]:
        assert vrf.verify(pk, bytes.fromhex(case["pi"]), bytes.fromhex(case["alpha"])) is None


@pytest.mark.parametrize("y", range(19))
def test_non_canonical_encodings_rejected(y: int) -> None:
    sk = bytes(range(32))
    pk, pi = vrf.public_key(sk), vrf.prove(sk, b"x")
    for sign in (0, 1):
        enc = (y + P + (sign << 255)).to_bytes(32, "little")
        assert vrf.verify(enc, pi, b"x") is None
        assert vrf.verify(pk, enc + pi[32:], b"x") is None
        with pytest.raises(ValueError):
            vrf.proof_to_hash(enc + pi[32:])


@common
@given(seeds, alphas, st.integers(0, 2**256 - 1 - L))
def test_non_canonical_scalar_rejected(sk: bytes, alpha: bytes, extra: int) -> None:
    pk, pi = vrf.public_key(sk), vrf.prove(sk, alpha)
    s = int.from_bytes(pi[48:], "little")
    if s + L + extra >= 2**256:
        extra = 0
    bad = pi[:48] + (s + L + extra).to_bytes(32, "little")
    assert vrf.verify(pk, bad, alpha) is None
    with pytest.raises(ValueError):
        vrf.proof_to_hash(bad)


@pytest.mark.parametrize("s", [L, L + 1, 2**255, 2**256 - 1])
def test_scalar_at_or_above_order_rejected(s: int) -> None:
    sk = bytes(range(32))
    pk, pi = vrf.public_key(sk), vrf.prove(sk, b"")
    assert vrf.verify(pk, pi[:48] + s.to_bytes(32, "little"), b"") is None


@pytest.mark.parametrize(
    "junk", [None, 0, 5, "x" * 32, 1.5, [0] * 32, object(), bytearray(32), memoryview(bytes(80))]
)
def test_junk_never_raises(junk: object) -> None:
    sk = bytes(32)
    pk, pi = vrf.public_key(sk), vrf.prove(sk, b"")
    assert vrf.verify(junk, pi, b"") is None  # type: ignore[arg-type]
    assert vrf.verify(pk, junk, b"") is None  # type: ignore[arg-type]
    assert vrf.verify(pk, pi, junk) is None  # type: ignore[arg-type]


def test_bytes_like_inputs_accepted() -> None:
    sk = bytes(range(32))
    pk, pi = vrf.public_key(sk), vrf.prove(bytearray(sk), memoryview(b"m"))
    assert vrf.verify(bytearray(pk), memoryview(pi), bytearray(b"m")) == vrf.proof_to_hash(pi)


# --- The shortcuts inside vrf.py, checked against the reference model ------------------------


def affine(p: tuple[int, int, int]) -> tuple[int, int]:
    zi = pow(p[2], -1, P)
    return p[0] * zi % P, p[1] * zi % P


def to_extended(p: tuple[int, int, int]) -> Point:
    x, y = affine(p)
    return (x, y, 1, x * y % P)


def test_constants() -> None:
    assert vrf._D == D and vrf._B == ref_encode(B) and (vrf._B_X, vrf._B_Y) == B[:2]
    assert vrf._SMALL_ORDER_Y == {ref_decode_y(q) for q in SMALL_ORDER}
    # `_decode` divides by xB * (1 + d*y*yB*y3), zero only if y^2 = -1/(d*yB^2): not a square.
    assert pow(-pow(D * B[1] * B[1], -1, P) % P, (P - 1) // 2, P) == P - 1


def ref_decode_y(q: Point) -> int:
    return int.from_bytes(ref_encode(q), "little") & ((1 << 255) - 1)


@common
@given(st.binary(min_size=32, max_size=32))
def test_decode_matches_reference(encoding: bytes) -> None:
    expected = ref_decode(encoding)
    got = vrf._decode(encoding) if vrf._is_canonical(encoding) else None
    assert (got is None) == (expected is None)
    if got is not None:
        assert ref_encode(to_extended(got)) == encoding
        assert ref_encode(to_extended(vrf._times_8(got))) == ref_encode(ref_mul(8, expected))


@common
@given(st.binary(min_size=32, max_size=32), alphas)
def test_hash_to_curve_matches_reference(salt: bytes, alpha: bytes) -> None:
    h = vrf._hash_to_curve(salt, alpha)
    assert h is not None
    assert ref_encode(to_extended(h)) == ref_encode(ref_h2c(salt, alpha))


@common
@given(st.lists(st.integers(1, P - 1), min_size=1, max_size=5))
def test_invert_all(values: list[int]) -> None:
    assert vrf._invert_all(tuple(values)) == [pow(v, -1, P) for v in values]


def prime_order_point(seed: bytes) -> vrf._PrimeOrderPoint:
    h = vrf._hash_to_curve(seed, b"")
    assert h is not None
    return vrf._prime_order_point(h, *vrf._invert_all((h[2], h[2] - h[1])))


def expected_product(n: int, p: vrf._PrimeOrderPoint) -> bytes:
    return ref_encode(ref_mul(n, (p.x, p.y, 1, p.x * p.y % P)))


@common
@given(seeds, st.lists(st.integers(0, L - 1), min_size=1, max_size=3))
def test_ladder_product_matches_libsodium(seed: bytes, scalars: list[int]) -> None:
    p = prime_order_point(seed)
    assert p.u == ((1 + p.y) * pow(1 - p.y, -1, P) % P).to_bytes(32, "little")
    products = vrf._mul_prime_order(tuple(scalars), p)
    for n, product in zip(scalars, products, strict=True):
        assert product == (vrf._mul(n, p.encoding) if n else vrf._IDENTITY)


# Scalars X25519 clamping cannot express (n or n + 1 near 0 mod L), which take the fallback.
EDGE_SCALARS = [0, 1, 2, 7, 8, 40, 2**125, L - 1, L - 2, L - 8, 2**252, 2**252 + 1]


@pytest.mark.parametrize("n", EDGE_SCALARS)
def test_ladder_product_edge_scalars(n: int) -> None:
    p = prime_order_point(b"edge")
    expected = [expected_product(n, p), expected_product(12345, p)]
    assert vrf._mul_prime_order((n, 12345), p) == expected


@common
@given(st.integers(0, L - 1))
def test_ladder_scalar_is_clamped_and_matches(n: int) -> None:
    t = vrf._ladder_scalar(n)
    if t is None:
        return
    value = int.from_bytes(t, "little")
    assert value % 8 == 0 and 2**254 <= value < 2**255
    assert value % L in (n, (L - n) % L)


SPECIAL_POINTS = SMALL_ORDER + [B, ref_neg(B), ref_mul(2, B), ref_add(B, ORDER_8)]


@pytest.mark.parametrize("q", SPECIAL_POINTS, ids=lambda q: ref_encode(q).hex()[:8])
def test_decode_special_points(q: Point) -> None:
    got = vrf._decode(ref_encode(q))
    assert got is not None and ref_encode(to_extended(got)) == ref_encode(q)
    assert ref_encode(to_extended(vrf._times_8(got))) == ref_encode(ref_mul(8, q))


@common
@given(st.binary(min_size=32, max_size=32), st.binary(min_size=16, max_size=16), st.data())
def test_proof_to_hash_matches_reference(gamma: bytes, c: bytes, data: st.DataObject) -> None:
    # Any curve point will do for Gamma here, in or outside the prime-order subgroup.
    s = data.draw(st.integers(0, L - 1)).to_bytes(32, "little")
    point = ref_decode(gamma)
    if point is None:
        with pytest.raises(ValueError):
            vrf.proof_to_hash(gamma + c + s)
    else:
        expected = hashlib.sha512(b"\x03\x03" + ref_encode(ref_mul(8, point)) + b"\x00").digest()
        assert vrf.proof_to_hash(gamma + c + s) == expected


def test_without_ladders_same_results(monkeypatch: pytest.MonkeyPatch) -> None:
    """With every scalar sent to libsodium's fallback, proofs and outputs do not change."""
    v = VECTORS["valid"][1]
    sk, pk, alpha, pi, beta = (bytes.fromhex(v[k]) for k in ("sk", "pk", "alpha", "pi", "beta"))
    monkeypatch.setattr(vrf, "_ladder_scalar", lambda n: None)
    assert vrf.prove(sk, alpha) == pi
    assert vrf.verify_reference(pk, pi, alpha) == beta


def test_hash_to_curve_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    # Python code only: the C verifier's failure (H = O, or 256 misses) cannot be provoked.
    sk = bytes(32)
    pk, pi = vrf.public_key(sk), vrf.prove(sk, b"")
    monkeypatch.setattr(vrf, "_hash_to_curve", lambda salt, alpha: None)
    assert vrf.verify_reference(pk, pi, b"") is None
    with pytest.raises(ValueError):
        vrf.prove(sk, b"")


@pytest.mark.parametrize("junk", [None, 5, "text", [1, 2]])
def test_prove_and_proof_to_hash_refuse_non_bytes(junk: object) -> None:
    with pytest.raises(TypeError):
        vrf.prove(bytes(32), junk)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        vrf.prove(junk, b"")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        vrf.proof_to_hash(junk)  # type: ignore[arg-type]
