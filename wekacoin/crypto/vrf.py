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

The hash-to-curve point H is, with probability about 2**-250, the identity; `prove` raises and
`verify` rejects in that case rather than carry a point no one will ever meet.
"""

from __future__ import annotations

import hashlib

from nacl import bindings as _sodium
from nacl import exceptions as _sodium_errors

SECRET_KEY_BYTES = 32
PUBLIC_KEY_BYTES = 32
PROOF_BYTES = 80
BETA_BYTES = 64

_P = 2**255 - 19
_L = 2**252 + 27742317777372353535851937790883648493
_SUITE = b"\x03"
_IDENTITY = (1).to_bytes(32, "little")
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


def public_key(secret_key: bytes) -> bytes:
    """The RFC 8032 public key of a 32-byte seed (the same bytes as its Ed25519 public key)."""
    _check_secret_key(secret_key)
    return _sodium.crypto_sign_seed_keypair(bytes(secret_key))[0]


def prove(secret_key: bytes, alpha: bytes) -> bytes:
    """The proof pi for input `alpha` under a 32-byte seed (RFC 9381 section 5.1).

    Raises ValueError if `secret_key` is not 32 bytes.
    """
    _check_secret_key(secret_key)
    digest = hashlib.sha512(secret_key).digest()
    x = _clamp(digest[:32]) % _L
    y = public_key(secret_key)
    h = _encode_to_curve(y, bytes(alpha))
    if h is None:
        raise ValueError("hash-to-curve gave the identity")
    gamma = _mul(x, h)
    # Nonce generation, RFC 9381 section 5.4.2.2 (as RFC 8032 section 5.1.6).
    k = int.from_bytes(hashlib.sha512(digest[32:] + h).digest(), "little") % _L
    u = _mul_base(k)
    v = _mul(k, h)
    assert gamma is not None and v is not None  # h has prime order, so these cannot fail
    c = _challenge(y, h, gamma, u, v)
    s = (k + c * x) % _L
    return gamma + c.to_bytes(_C_BYTES, "little") + s.to_bytes(32, "little")


def verify(public_key: bytes, proof: bytes, alpha: bytes) -> bytes | None:
    """beta if `proof` is valid for `alpha` under `public_key`, otherwise None (section 5.3).

    Never raises: any input that is not a valid proof, including objects that are not bytes,
    gives None.
    """
    if not (_is_bytes(public_key) and _is_bytes(proof) and _is_bytes(alpha)):
        return None
    y, pi = bytes(public_key), bytes(proof)
    if len(y) != PUBLIC_KEY_BYTES or len(pi) != PROOF_BYTES:
        return None
    if not _is_canonical(y) or _y_of(y) in _SMALL_ORDER_Y:
        return None
    gamma, c, s = _decode_proof(pi)
    if s is None:
        return None
    h = _encode_to_curve(y, bytes(alpha))
    if h is None:
        return None
    c_y = _mul(c, y)  # also checks that Y is a prime-order point
    c_gamma = _mul(c, gamma)  # likewise for Gamma
    s_h = _mul(s, h)
    if c_y is None or c_gamma is None or s_h is None:
        return None
    u = _sodium.crypto_core_ed25519_sub(_mul_base(s), c_y)
    v = _sodium.crypto_core_ed25519_sub(s_h, c_gamma)
    if _challenge(y, h, gamma, u, v) != c:
        return None
    return _gamma_to_hash(gamma)


def proof_to_hash(proof: bytes) -> bytes:
    """beta from a proof (section 5.2), without verifying it.

    Use it only on proofs that `verify` accepted or that `prove` made: it checks the encoding
    (raising ValueError on a malformed proof) but not the proof itself.
    """
    pi = bytes(proof)
    if len(pi) != PROOF_BYTES:
        raise ValueError("a proof is 80 bytes")
    gamma, _, s = _decode_proof(pi)
    beta = _gamma_to_hash(gamma) if s is not None else None
    if beta is None:
        raise ValueError("malformed proof")
    return beta


def _check_secret_key(secret_key: bytes) -> None:
    if len(secret_key) != SECRET_KEY_BYTES:
        raise ValueError("an ECVRF secret key is a 32-byte seed")


def _is_bytes(value: object) -> bool:
    return isinstance(value, (bytes, bytearray, memoryview))


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


def _encode_to_curve(salt: bytes, alpha: bytes) -> bytes | None:
    """ECVRF_encode_to_curve_try_and_increment (section 5.4.1.1) with the public key as salt.

    None when the result is the identity (never seen in practice).
    """
    prefix = _SUITE + b"\x01" + salt + alpha
    for ctr in range(256):
        candidate = hashlib.sha512(prefix + bytes((ctr, 0))).digest()[:32]
        if not _is_canonical(candidate):
            continue
        h = _times_8(candidate)
        if h is not None:
            return None if h == _IDENTITY else h
    raise AssertionError("no curve point in 256 tries")  # probability about 2**-256


def _times_8(point: bytes) -> bytes | None:
    """8 * point, or None if the encoding is not on the curve.

    Three doublings with point addition, which (unlike scalar multiplication) accepts points
    outside the prime-order subgroup.
    """
    try:
        for _ in range(3):
            point = _sodium.crypto_core_ed25519_add(point, point)
    except _sodium_errors.RuntimeError:
        return None
    return point


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


def _challenge(y: bytes, h: bytes, gamma: bytes, u: bytes, v: bytes) -> int:
    """ECVRF_challenge_generation (section 5.4.3): the public key comes first, as in the RFC."""
    data = b"".join((_SUITE, b"\x02", y, h, gamma, u, v, b"\x00"))
    return int.from_bytes(hashlib.sha512(data).digest()[:_C_BYTES], "little")


def _gamma_to_hash(gamma: bytes) -> bytes | None:
    """beta = SHA-512(suite || 0x03 || 8*Gamma || 0x00), or None if Gamma is not on the curve."""
    cleared = _times_8(gamma)
    if cleared is None:
        return None
    return hashlib.sha512(_SUITE + b"\x03" + cleared + b"\x00").digest()
