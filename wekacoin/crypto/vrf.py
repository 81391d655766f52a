"""ECVRF-EDWARDS25519-SHA512-TAI, the verifiable random function of RFC 9381 (suite 0x03).

`prove(sk, alpha)` gives an 80-byte proof pi = Gamma (32) || c (16) || s (32); anyone holding the
public key can `verify(pk, pi, alpha)`, which returns the 64-byte output beta, or None.

Checks, as RFC 9381 requires (sections 5.3, 5.4.4, 5.4.5):
- the public key Y and Gamma decode per RFC 8032 section 5.1.3: y < p, the point is on the
  curve, and x = 0 comes with a clear sign bit;
- Y is not of small order (ECVRF_validate_key), s < L, and c equals the recomputed challenge.

Deliberately stricter than the RFC: Y and Gamma must lie in the prime-order subgroup, and Gamma
must not be the identity. libsodium's scalar multiplication refuses any other point, and
rejecting them costs nothing extra here. Honest proofs never contain such points: an RFC 8032
public key is x*B, and Gamma = x*H with H cofactor-cleared, so both have prime order. Only a
hand-made key or proof can differ, and another RFC 9381 implementation might accept it, so a
system mixing implementations must apply the same rule (see the rejection cases in the vectors).
`proof_to_hash` follows the RFC exactly and accepts any curve point as Gamma.

Hash-to-curve fails, with probability about 2**-250, when H is the identity or its one-byte
counter runs out; `prove` raises ValueError and `verify` rejects rather than carry a point no one
will ever meet.

Two implementations of verification. `verify` and `proof_to_hash` run in C (the extension
`wekacoin.crypto._ecvrf`, built at install, variable-time as it sees only public data, and
without the GIL). `verify_reference` and `proof_to_hash_reference`, in Python on libsodium, are
the specification the C code is tested against (tests/unit/test_vrf_native.py): both give the same
beta or rejection for every input. Proving stays in Python on libsodium's constant-time
operations.

Speed of the Python code: libsodium's edwards25519 scalar multiplication re-proves that its
input has prime order, which costs as much as the multiplication. Untrusted points (Y, Gamma)
need that check; H does not, so multiples of H use two X25519 ladders instead
(`_mul_prime_order`). Points are decoded with a libsodium addition rather than a Python square
root (`_decode`), and Python field inversions, slow as well, are batched.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from nacl import bindings as _sodium
from nacl import exceptions as _sodium_errors

try:
    from wekacoin.crypto import _ecvrf
except ImportError as error:  # no silent fallback to the slow path
    raise ImportError(
        "wekacoin.crypto._ecvrf, the C extension that verifies VRF proofs, is not built. Install"
        " the project with `pip install -e .` (needs gcc and the Python headers), or build it in"
        " place with `python setup.py build_ext --inplace`."
    ) from error

SECRET_KEY_BYTES = 32
PUBLIC_KEY_BYTES = 32
PROOF_BYTES = 80
BETA_BYTES = 64

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_D = 37095705934669439343138083508754565189542113879843219016388785533085940283555  # -121665/121666
_INV8 = pow(8, -1, _L)
_B = bytes.fromhex("5866666666666666666666666666666666666666666666666666666666666666")
_B_X = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_B_Y = 4 * pow(5, -1, _P) % _P
_IDENTITY = (1).to_bytes(32, "little")
_SUITE = b"\x03"
_C_BYTES = 16

# The y-coordinates of the eight points of order dividing 8 (the sign bit does not matter).
_SMALL_ORDER_Y = frozenset(
    {
        0,
        1,
        _P - 1,
        0x7A03AC9277FDC74EC6CC392CFA53202A0F67100D760B3CBA4FD84D3D706A17C7,
        0x05FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826,
    }
)

_Point = tuple[int, int, int]
"""Projective coordinates (X, Y, Z) of the point (X/Z, Y/Z) on -x^2 + y^2 = 1 + d x^2 y^2."""


def public_key(secret_key: bytes) -> bytes:
    """The RFC 8032 public key of a 32-byte seed (the same bytes as its Ed25519 public key)."""
    _check_secret_key(secret_key)
    return _sodium.crypto_sign_seed_keypair(bytes(secret_key))[0]


def prove(secret_key: bytes, alpha: bytes) -> bytes:
    """The proof pi for input `alpha` under a 32-byte seed (RFC 9381 section 5.1).

    Raises ValueError if `secret_key` is not 32 bytes, TypeError if an argument is not bytes-like.
    """
    _check_secret_key(secret_key)
    _check_bytes(alpha)
    digest = hashlib.sha512(secret_key).digest()
    x = _clamp(digest[:32]) % _L
    y = public_key(secret_key)
    h_point = _hash_to_curve(y, bytes(alpha))
    if h_point is None:
        raise ValueError("hash-to-curve failed")
    h = _prime_order_point(h_point, *_invert_all((h_point[2], h_point[2] - h_point[1])))
    # Nonce generation, RFC 9381 section 5.4.2.2 (as RFC 8032 section 5.1.6).
    k = int.from_bytes(hashlib.sha512(digest[32:] + h.encoding).digest(), "little") % _L
    gamma, v = _mul_prime_order((x, k), h)
    c = _challenge(y, h.encoding, gamma, _mul_base(k), v)
    s = (k + c * x) % _L
    return gamma + c.to_bytes(_C_BYTES, "little") + s.to_bytes(32, "little")


def output(secret_key: bytes, alpha: bytes, public_key_hint: bytes | None = None) -> bytes:
    """beta for `alpha`, without the proof: what `verify` would return for `prove`'s proof.

    About half the cost of `prove` (one multiplication of H instead of two, no base-point
    multiplication), for callers such as sortition that need a proof only when beta passes
    a test. `public_key_hint`, if given, must be the key's public key: it saves deriving it
    (a sixth of the cost); a wrong one gives a wrong beta. Raises like `prove`.
    """
    _check_secret_key(secret_key)
    _check_bytes(alpha)
    x = _clamp(hashlib.sha512(secret_key).digest()[:32]) % _L
    y = public_key_hint if public_key_hint is not None else public_key(secret_key)
    h_point = _hash_to_curve(bytes(y), bytes(alpha))
    if h_point is None:
        raise ValueError("hash-to-curve failed")
    h = _prime_order_point(h_point, *_invert_all((h_point[2], h_point[2] - h_point[1])))
    # beta hashes cofactor * Gamma = (8x) * H, which has prime order like H.
    (gamma_8,) = _mul_prime_order((8 * x % _L,), h)
    return _beta(gamma_8)


def verify(public_key: bytes, proof: bytes, alpha: bytes) -> bytes | None:
    """beta if `proof` is valid for `alpha` under `public_key`, otherwise None (section 5.3).

    Never raises: any input that is not a valid proof, including objects that are not bytes,
    gives None. Runs in C, with the checks and results of `verify_reference`.
    """
    if not (_is_bytes(public_key) and _is_bytes(proof) and _is_bytes(alpha)):
        return None
    return _ecvrf.verify(_flat(public_key), _flat(proof), _flat(alpha))


def proof_to_hash(proof: bytes) -> bytes:
    """beta from a proof (section 5.2), without verifying it.

    Use it only on proofs that `verify` accepted or that `prove` made: it checks the encoding
    (raising ValueError on a malformed proof) but not the proof itself. Runs in C, like
    `proof_to_hash_reference`.
    """
    _check_bytes(proof)
    pi = _flat(proof)
    if len(pi) != PROOF_BYTES:
        raise ValueError("a proof is 80 bytes")
    beta = _ecvrf.proof_to_hash(pi)
    if beta is None:
        raise ValueError("malformed proof")
    return beta


def verify_reference(public_key: bytes, proof: bytes, alpha: bytes) -> bytes | None:
    """`verify` in Python on libsodium: the reference the C code is tested against."""
    if not (_is_bytes(public_key) and _is_bytes(proof) and _is_bytes(alpha)):
        return None
    y, pi = bytes(public_key), bytes(proof)
    if len(y) != PUBLIC_KEY_BYTES or len(pi) != PROOF_BYTES:
        return None
    if not _is_canonical(y) or _y_of(y) in _SMALL_ORDER_Y:
        return None
    gamma, c, s = _decode_proof(pi)
    gamma_point = _decode(gamma) if s is not None else None
    if gamma_point is None or s is None:
        return None
    h_point = _hash_to_curve(y, bytes(alpha))
    if h_point is None:
        return None
    # One field inversion serves both H and 8*Gamma.
    gamma_8 = _times_8(gamma_point)
    inv_z, inv_u, inv_g = _invert_all((h_point[2], h_point[2] - h_point[1], gamma_8[2]))
    h = _prime_order_point(h_point, inv_z, inv_u)
    c_y = _mul(c, y)  # also checks that Y has prime order
    c_gamma = _mul(c, gamma)  # likewise for Gamma
    if c_y is None or c_gamma is None:
        return None
    u = _sodium.crypto_core_ed25519_sub(_mul_base(s), c_y)
    (s_h,) = _mul_prime_order((s,), h)
    v = _sodium.crypto_core_ed25519_sub(s_h, c_gamma)
    if _challenge(y, h.encoding, gamma, u, v) != c:
        return None
    return _beta(_encode(gamma_8[0] * inv_g % _P, gamma_8[1] * inv_g % _P))


def proof_to_hash_reference(proof: bytes) -> bytes:
    """`proof_to_hash` in Python on libsodium: the reference the C code is tested against."""
    _check_bytes(proof)
    pi = bytes(proof)
    if len(pi) != PROOF_BYTES:
        raise ValueError("a proof is 80 bytes")
    gamma, _, s = _decode_proof(pi)
    gamma_point = _decode(gamma) if s is not None else None
    if gamma_point is None:
        raise ValueError("malformed proof")
    x, y, z = _times_8(gamma_point)
    inv_z = pow(z, -1, _P)
    return _beta(_encode(x * inv_z % _P, y * inv_z % _P))


# --- Encodings and the RFC 9381 building blocks ----------------------------------------------


def _check_secret_key(secret_key: bytes) -> None:
    _check_bytes(secret_key)
    if len(secret_key) != SECRET_KEY_BYTES:
        raise ValueError("an ECVRF secret key is a 32-byte seed")


def _check_bytes(value: object) -> None:
    """bytes(5) would silently give five zero bytes: refuse what is not bytes-like."""
    if not _is_bytes(value):
        raise TypeError(f"expected bytes, got {type(value).__name__}")


def _is_bytes(value: object) -> bool:
    return isinstance(value, (bytes, bytearray, memoryview))


def _flat(value: bytes) -> bytes:
    """bytes as they are; a bytearray or memoryview (perhaps strided) copied into bytes."""
    return value if type(value) is bytes else bytes(value)


def _clamp(half: bytes) -> int:
    """The RFC 8032 secret scalar from the first half of SHA-512(seed)."""
    n = int.from_bytes(half, "little")
    return (n & ~7 & ((1 << 254) - 1)) | (1 << 254)


def _y_of(point: bytes) -> int:
    return int.from_bytes(point, "little") & ((1 << 255) - 1)


def _is_canonical(point: bytes) -> bool:
    """RFC 8032 decoding rules that libsodium's decoder does not apply.

    y must be below p, and a point with x = 0 (y = 1 or y = -1) must not set the sign bit.
    """
    y = _y_of(point)
    return y < _P and not (point[31] & 0x80 and y in (1, _P - 1))


def _encode(x: int, y: int) -> bytes:
    return (y | (x & 1) << 255).to_bytes(32, "little")


def _decode_proof(pi: bytes) -> tuple[bytes, int, int | None]:
    """(Gamma, c, s) per section 5.4.4, with s = None when pi is malformed.

    Gamma is only checked for canonical encoding here; the curve checks happen where it is used.
    """
    gamma = pi[:32]
    c = int.from_bytes(pi[32:48], "little")
    s = int.from_bytes(pi[48:], "little")
    if not _is_canonical(gamma) or s >= _L:
        return gamma, c, None
    return gamma, c, s


def _hash_to_curve(salt: bytes, alpha: bytes) -> _Point | None:
    """ECVRF_encode_to_curve_try_and_increment (section 5.4.1.1) with the public key as salt.

    None when the result is the identity, or when 256 tries find no point (the one-byte counter
    overflows): each has a probability near 2**-250 and is never seen in practice.
    """
    prefix = _SUITE + b"\x01" + salt + alpha
    for ctr in range(256):
        candidate = hashlib.sha512(prefix + bytes((ctr, 0))).digest()[:32]
        point = _decode(candidate) if _is_canonical(candidate) else None
        if point is not None:
            h = _times_8(point)
            return None if h[0] == 0 else h  # x = 0: the identity (H cannot have order 2)
    return None


def _challenge(y: bytes, h: bytes, gamma: bytes, u: bytes, v: bytes) -> int:
    """ECVRF_challenge_generation (section 5.4.3): the public key comes first, as in the RFC."""
    data = b"".join((_SUITE, b"\x02", y, h, gamma, u, v, b"\x00"))
    return int.from_bytes(hashlib.sha512(data).digest()[:_C_BYTES], "little")


def _beta(gamma_8: bytes) -> bytes:
    """ECVRF_proof_to_hash (section 5.2) from the encoding of cofactor * Gamma."""
    return hashlib.sha512(_SUITE + b"\x03" + gamma_8 + b"\x00").digest()


# --- edwards25519 arithmetic -----------------------------------------------------------------


def _decode(point: bytes) -> _Point | None:
    """The point of a canonical encoding, or None if it is not on the curve.

    A Python square root is a 255-bit exponentiation (~100 us); libsodium's addition of B does
    it in C and fails off the curve. Then y(P + B) = (y*yB + x*xB) / (1 - d*x*xB*y*yB) is linear
    in x, so x = (y3 - y*yB) / (xB * (1 + d*y*yB*y3)). The denominator vanishes only if
    y^2 = -1/(d*yB^2), which is not a square mod p.
    """
    try:
        total = _sodium.crypto_core_ed25519_add(point, _B)
    except _sodium_errors.RuntimeError:
        return None
    y, y3 = _y_of(point), _y_of(total)
    den = _B_X * (1 + _D * y % _P * _B_Y % _P * y3) % _P
    return (y3 - y * _B_Y) % _P, y * den % _P, den


def _double(p: _Point) -> _Point:
    """2P in projective coordinates (dbl-2008-bbjlp with a = -1)."""
    x, y, z = p
    xx, yy = x * x % _P, y * y % _P
    f = yy - xx
    j = (f - 2 * z * z) % _P
    return ((2 * x * y % _P) * j % _P, f * (-xx - yy) % _P, f * j % _P)


def _times_8(p: _Point) -> _Point:
    return _double(_double(_double(p)))


def _invert_all(values: tuple[int, ...]) -> list[int]:
    """Inverses mod p of nonzero values, with one exponentiation (Montgomery's trick)."""
    prefix = [1]
    for v in values:
        prefix.append(prefix[-1] * v % _P)
    inv = pow(prefix[-1], -1, _P)
    out = [0] * len(values)
    for i in range(len(values) - 1, -1, -1):
        out[i] = prefix[i] * inv % _P
        inv = inv * values[i] % _P
    return out


class _PrimeOrderPoint(NamedTuple):
    """A point known to have prime order, in the forms `_mul_prime_order` needs."""

    x: int
    y: int
    u: bytes  # X25519 u-coordinate, (1 + y) / (1 - y)
    encoding: bytes


def _prime_order_point(p: _Point, inv_z: int, inv_z_minus_y: int) -> _PrimeOrderPoint:
    """From projective p (not the identity) and the inverses of Z and Z - Y."""
    x, y = p[0] * inv_z % _P, p[1] * inv_z % _P
    u = (p[2] + p[1]) * inv_z_minus_y % _P
    return _PrimeOrderPoint(x, y, u.to_bytes(32, "little"), _encode(x, y))


def _mul(n: int, point: bytes) -> bytes | None:
    """n * point, or None unless point is a prime-order point other than the identity."""
    if n % _L == 0:
        return _IDENTITY if _sodium.crypto_core_ed25519_is_valid_point(point) else None
    try:
        return _sodium.crypto_scalarmult_ed25519_noclamp(n.to_bytes(32, "little"), point)
    except _sodium_errors.RuntimeError:
        return None


def _mul_base(n: int) -> bytes:
    if n % _L == 0:
        return _IDENTITY
    return _sodium.crypto_scalarmult_ed25519_base_noclamp(n.to_bytes(32, "little"))


def _mul_prime_order(scalars: tuple[int, ...], p: _PrimeOrderPoint) -> list[bytes]:
    """n * p for each n, without libsodium's prime-order check (p is known to pass it).

    An X25519 ladder gives u(np), that is np up to sign; a second one gives y(np + p), and the
    addition law (as in `_decode`) is linear in x(np), which fixes the sign. The products share
    one field inversion. Rare scalars that X25519 clamping cannot express, and degenerate cases,
    fall back to libsodium's edwards25519 multiplication.
    """
    fractions = [_ladder_pair(n, p) for n in scalars]
    denominators = tuple(f[2] for f in fractions if f is not None)
    inverses = iter(_invert_all(denominators) if denominators else ())
    products = []
    for n, f in zip(scalars, fractions, strict=True):
        if f is None:
            product = _mul(n, p.encoding)
            assert product is not None  # p has prime order
        else:
            inv = next(inverses)
            product = _encode(f[0] * inv % _P, f[1] * inv % _P)
        products.append(product)
    return products


def _ladder_pair(n: int, p: _PrimeOrderPoint) -> _Point | None:
    """n * p in projective coordinates from two X25519 ladders, or None.

    The denominator vanishes only if y(np)^2 = -1/(d*y(p)^2).
    """
    t1, t3 = _ladder_scalar(n), _ladder_scalar(n + 1)
    if t1 is None or t3 is None:
        return None
    try:
        u1 = int.from_bytes(_sodium.crypto_scalarmult(t1, p.u), "little")
        u3 = int.from_bytes(_sodium.crypto_scalarmult(t3, p.u), "little")
    except _sodium_errors.RuntimeError:  # a zero result, impossible for prime order
        return None
    # y = (u - 1) / (u + 1): with y1 = n1/d1 and y3 = n3/d3, x1 = num/den.
    n1, d1, n3, d3 = u1 - 1, u1 + 1, u3 - 1, u3 + 1
    num = (n3 * d1 - n1 * d3 % _P * p.y) % _P
    den = p.x * ((d1 * d3 + _D * p.y % _P * n1 % _P * n3) % _P) % _P
    z = den * d1 % _P
    return None if z == 0 else (num * d1 % _P, n1 * den % _P, z)


def _ladder_scalar(n: int) -> bytes | None:
    """An X25519 scalar t with t*P = n*P or -n*P for every P of order L, if there is one.

    X25519 clamps t to 2^254 + 8a with a < 2^251. Of the multiples of 8 below 8L, t = 8*(n/8 mod L)
    matches n and 8L - t matches -n (same u-coordinate); one of them is clamped unless n/8 mod L
    is below about 2^125 or above 2^252, a chance of about 2^-125 for a random n.
    """
    t = 8 * (n * _INV8 % _L)
    for candidate in (t, 8 * _L - t):
        if 2**254 <= candidate < 2**255:
            return candidate.to_bytes(32, "little")
    return None
