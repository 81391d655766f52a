"""The C verifier (`vrf.verify`, `vrf.proof_to_hash`) against the Python reference.

Every case asserts that both give the same beta, or both reject; most also assert what that
result must be, so that a bug shared by both still fails. Inputs come from a seeded generator:
a failure names its case, and re-running reproduces it.
"""

from __future__ import annotations

import hashlib
import json
import random
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from nacl import bindings as sodium

from tests.unit.test_vrf import (
    SMALL_ORDER,
    Point,
    ref_add,
    ref_decode,
    ref_encode,
    ref_h2c,
    ref_verify,
)
from wekacoin.crypto import vrf

L = 2**252 + 27742317777372353535851937790883648493
VECTORS = json.loads((Path(__file__).parents[1] / "vectors" / "vrf_rfc9381.json").read_text())


def same_verify(pk: object, pi: object, alpha: object) -> bytes | None:
    """The common result of both verifiers; fails the test if they differ."""
    native = vrf.verify(pk, pi, alpha)  # type: ignore[arg-type]
    reference = vrf.verify_reference(pk, pi, alpha)  # type: ignore[arg-type]
    assert native == reference, [bytes(a).hex() for a in (pk, pi, alpha)]  # type: ignore[arg-type]
    return native


def same_proof_to_hash(pi: bytes) -> bytes | None:
    """Both proof_to_hash results (None for ValueError); fails the test if they differ."""
    results = []
    for f in (vrf.proof_to_hash, vrf.proof_to_hash_reference):
        try:
            results.append(f(pi))
        except ValueError:
            results.append(None)
    assert results[0] == results[1], pi.hex()
    return results[0]


def random_proof(rng: random.Random) -> tuple[bytes, bytes, bytes]:
    """(pk, pi, alpha) from a random key and a random alpha of 0 to 300 bytes (past SHA-512's
    128-byte block)."""
    sk = rng.randbytes(32)
    alpha = rng.randbytes(rng.choice((0, 1, 32, rng.randrange(300))))
    return vrf.public_key(sk), vrf.prove(sk, alpha), alpha


# --- RFC 9381 B.3 and the rejection vectors -------------------------------------------------


@pytest.mark.parametrize("v", VECTORS["valid"], ids=lambda v: v["name"])
def test_rfc_vectors(v: dict[str, str]) -> None:
    pk, alpha, pi, beta = (bytes.fromhex(v[k]) for k in ("pk", "alpha", "pi", "beta"))
    assert same_verify(pk, pi, alpha) == beta
    assert same_proof_to_hash(pi) == beta


@pytest.mark.parametrize("case", VECTORS["rejected"]["cases"], ids=lambda c: c["name"])
def test_rejection_vectors(case: dict) -> None:
    pk, alpha, pi = (bytes.fromhex(case[k]) for k in ("pk", "alpha", "pi"))
    assert same_verify(pk, pi, alpha) is None


# --- Random valid proofs and their mutations ------------------------------------------------


def test_random_valid_proofs_agree() -> None:
    rng = random.Random(9381)
    for _ in range(2000):
        pk, pi, alpha = random_proof(rng)
        beta = same_verify(pk, pi, alpha)
        assert beta is not None
        assert same_proof_to_hash(pi) == beta


@pytest.mark.parametrize("seed", range(3))
def test_every_single_bit_mutation_agrees(seed: int) -> None:
    """Each of the 640 bits of pi and the 256 bits of pk, flipped alone."""
    pk, pi, alpha = random_proof(random.Random(seed))
    beta = same_verify(pk, pi, alpha)
    assert beta is not None
    for bit in range(len(pi) * 8):
        bad = bytearray(pi)
        bad[bit // 8] ^= 1 << (bit % 8)
        assert same_verify(pk, bytes(bad), alpha) is None, bit
        same_proof_to_hash(bytes(bad))
    for bit in range(len(pk) * 8):
        bad = bytearray(pk)
        bad[bit // 8] ^= 1 << (bit % 8)
        assert same_verify(bytes(bad), pi, alpha) is None, bit


def test_wrong_alpha_or_key_rejected() -> None:
    rng = random.Random(7)
    for _ in range(50):
        pk, pi, alpha = random_proof(rng)
        other_pk, _, _ = random_proof(rng)
        assert same_verify(pk, pi, alpha + b"\x00") is None
        assert same_verify(other_pk, pi, alpha) is None


# --- Points outside the prime-order subgroup ------------------------------------------------


def add_torsion(encoding: bytes, torsion: Point) -> bytes:
    point = ref_decode(encoding)
    assert point is not None
    return ref_encode(ref_add(point, torsion))


def craft(rng: random.Random, x: int, t_y: int, t_gamma: int, alpha: bytes) -> tuple[bytes, bytes]:
    """(pk, pi) with Y = x*B + T_y and Gamma = x*H + T_gamma (T_i = i * an order-8 point) that
    satisfy RFC 9381's verification equations: the nonce is retried until c is a multiple of
    8, so that c*T vanishes and s = k + c*x gives U = k*B and V = k*H."""
    identity = (1).to_bytes(32, "little")
    y0 = sodium.crypto_scalarmult_ed25519_base_noclamp(x.to_bytes(32, "little")) if x else identity
    pk = add_torsion(y0, SMALL_ORDER[t_y])
    h = ref_encode(ref_h2c(pk, alpha))
    x_h = sodium.crypto_scalarmult_ed25519_noclamp(x.to_bytes(32, "little"), h) if x else identity
    gamma = add_torsion(x_h, SMALL_ORDER[t_gamma])
    while True:
        k = rng.randrange(1, L)
        u = sodium.crypto_scalarmult_ed25519_base_noclamp(k.to_bytes(32, "little"))
        v = sodium.crypto_scalarmult_ed25519_noclamp(k.to_bytes(32, "little"), h)
        digest = hashlib.sha512(b"\x03\x02" + pk + h + gamma + u + v + b"\x00").digest()
        c = int.from_bytes(digest[:16], "little")
        if c % 8 == 0:
            s = (k + c * x) % L
            return pk, gamma + c.to_bytes(16, "little") + s.to_bytes(32, "little")


@pytest.mark.parametrize("t_y", range(8))
@pytest.mark.parametrize("t_gamma", range(8))
def test_torsion_components(t_y: int, t_gamma: int) -> None:
    """Each torsion component on Y and on Gamma: the RFC's equations hold, and both verifiers
    accept exactly when there is none (the order-2 point included)."""
    rng = random.Random(t_y * 8 + t_gamma)
    alpha = b"torsion"
    pk, pi = craft(rng, rng.randrange(1, L), t_y, t_gamma, alpha)
    assert ref_verify(pk, pi, alpha) is not None  # a valid RFC 9381 proof
    beta = same_verify(pk, pi, alpha)
    assert (beta is not None) == (t_y == 0 and t_gamma == 0)
    assert same_proof_to_hash(pi) is not None  # proof_to_hash takes any curve point


@pytest.mark.parametrize("t_y", range(8))
@pytest.mark.parametrize("t_gamma", range(8))
def test_small_order_points(t_y: int, t_gamma: int) -> None:
    """Secret 0: Y and Gamma both of small order (the identity, the order-2 point...), in a
    proof that satisfies the equations. The RFC rejects the key (ECVRF_validate_key); so do
    both verifiers."""
    rng = random.Random(100 + t_y * 8 + t_gamma)
    pk, pi = craft(rng, 0, t_y, t_gamma, b"small")
    assert ref_verify(pk, pi, b"small") is None
    assert same_verify(pk, pi, b"small") is None


def test_many_torsion_points_rejected() -> None:
    """Random prime-order keys plus each non-zero torsion component: the subgroup check alone
    must reject them (proofs from the honest key, which is what an attacker would replay)."""
    rng = random.Random(8)
    for _ in range(40):
        pk, pi, alpha = random_proof(rng)
        t = SMALL_ORDER[rng.randrange(1, 8)]
        assert same_verify(add_torsion(pk, t), pi, alpha) is None
        assert same_verify(pk, add_torsion(pi[:32], t) + pi[32:], alpha) is None


# --- Malformed and hostile input ------------------------------------------------------------


def test_random_garbage_agrees() -> None:
    rng = random.Random(13)
    pk, pi, alpha = random_proof(rng)
    for _ in range(1500):
        kind = rng.randrange(5)
        if kind == 0:  # anything, any length
            args = (rng.randbytes(rng.randrange(40)), rng.randbytes(rng.randrange(90)), b"")
        elif kind == 1:  # right lengths, random bytes
            args = (rng.randbytes(32), rng.randbytes(80), rng.randbytes(8))
        elif kind == 2:  # a real key, a random proof
            args = (pk, rng.randbytes(80), alpha)
        elif kind == 3:  # a real Gamma with random c and s (s below L half the time)
            s = rng.randrange(L) if rng.randrange(2) else rng.randrange(2**256)
            args = (pk, pi[:32] + rng.randbytes(16) + s.to_bytes(32, "little"), alpha)
        else:  # one random byte changed
            bad = bytearray(pi)
            bad[rng.randrange(80)] = rng.randrange(256)
            args = (pk, bytes(bad), alpha)
        result = same_verify(*args)
        assert result is None or args[1] == pi
        if len(args[1]) == 80:
            same_proof_to_hash(args[1])


@pytest.mark.parametrize("y", [0, 1, 2, 18, 2**255 - 20, 2**255 - 19, 2**255 - 1])
@pytest.mark.parametrize("sign", [0, 1])
def test_special_encodings(y: int, sign: int) -> None:
    """y at and around 0, 1, p - 1 and p (x = 0 points, non-canonical y), both sign bits."""
    pk, pi, alpha = random_proof(random.Random(y + sign))
    enc = ((y % 2**255) | sign << 255).to_bytes(32, "little")
    assert same_verify(enc, pi, alpha) is None
    assert same_verify(pk, enc + pi[32:], alpha) is None
    same_proof_to_hash(enc + pi[32:])


@pytest.mark.parametrize("s", [L, L + 1, 2**253, 2**256 - 1])
def test_scalar_not_below_order(s: int) -> None:
    pk, pi, alpha = random_proof(random.Random(s % 1000))
    bad = pi[:48] + s.to_bytes(32, "little")
    assert same_verify(pk, bad, alpha) is None
    assert same_proof_to_hash(bad) is None


def test_lengths_types_and_buffers() -> None:
    pk, pi, alpha = random_proof(random.Random(5))
    beta = vrf.verify(pk, pi, alpha)
    for n in (0, 31, 33, 64):
        assert same_verify(pk[:n] + bytes(max(0, n - 32)), pi, alpha) is None
    for n in (0, 79, 81, 160):
        assert same_verify(pk, (pi * 2)[:n], alpha) is None
        with pytest.raises(ValueError):
            vrf.proof_to_hash((pi * 2)[:n])
    for junk in (None, 0, "x" * 32, [0] * 32, 1.5):
        assert vrf.verify(junk, pi, alpha) is None  # type: ignore[arg-type]
        assert vrf.verify(pk, junk, alpha) is None  # type: ignore[arg-type]
        assert vrf.verify(pk, pi, junk) is None  # type: ignore[arg-type]
        with pytest.raises(TypeError):
            vrf.proof_to_hash(junk)  # type: ignore[arg-type]
    strided = memoryview(bytes(b for b in pi for _ in range(2)))[::2]
    assert not strided.c_contiguous
    assert same_verify(bytearray(pk), strided, memoryview(alpha)) == beta
    assert same_proof_to_hash(strided) == beta  # type: ignore[arg-type]


# --- The extension itself ---------------------------------------------------------------------


def test_threads_agree() -> None:
    """The C code runs without the GIL: concurrent calls must not disturb each other."""
    rng = random.Random(21)
    cases = [random_proof(rng) for _ in range(8)]
    expected = [vrf.verify_reference(*case) for case in cases]
    failures: list[int] = []

    def work(i: int) -> None:
        for _ in range(30):
            if vrf.verify(*cases[i]) != expected[i]:
                failures.append(i)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(cases))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == [] and None not in expected


def test_missing_extension_is_a_clear_import_error() -> None:
    code = (
        "import sys; sys.modules['wekacoin.crypto._ecvrf'] = None\n"
        "import wekacoin.crypto.vrf\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root, capture_output=True, text=True, timeout=60, check=False,
    )
    assert done.returncode != 0
    assert "ImportError" in done.stderr and "build_ext --inplace" in done.stderr
