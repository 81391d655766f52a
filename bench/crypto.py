"""ECVRF prove/verify throughput next to PyNaCl Ed25519 sign/verify, measured in the same run.

    python bench/crypto.py [--quick]

Every operation is timed in short batches, the kinds interleaved round by round so that load
from other processes hits them alike; the best batch of each kind counts. Prints one figure a
line, then `RESULT vrf_verify_ratio` (VRF verify time, the C verifier, / Ed25519 verify time)
and `RESULT vrf_prove_ratio` (VRF prove time / Ed25519 sign time), then the cost of each step
of the Python reference verifier and of the primitives underneath.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from nacl import bindings as sodium  # noqa: E402
from nacl.signing import SigningKey  # noqa: E402

from wekacoin.crypto import vrf  # noqa: E402

MESSAGE_BYTES = 32


def best_ns(ops: dict[str, Callable[[], object]], rounds: int, batch: int) -> dict[str, int]:
    """The best per-call time of each op, in nanoseconds, over `rounds` interleaved batches."""
    best = {name: 1 << 62 for name in ops}
    for _ in range(rounds):
        for name, op in ops.items():
            start = time.perf_counter_ns()
            for _ in range(batch):
                op()
            best[name] = min(best[name], (time.perf_counter_ns() - start) // batch)
    return best


def us(ns: int) -> str:
    return f"{ns // 1000}.{ns % 1000 // 100}"


def ratio(a: int, b: int) -> str:
    """a / b with three decimals, in integer arithmetic."""
    milli = (a * 1000 + b // 2) // b
    return f"{milli // 1000}.{milli % 1000:03d}"


def verify_steps(pk: bytes, pi: bytes, alpha: bytes) -> dict[str, Callable[[], object]]:
    """The steps of `vrf.verify_reference` on a valid proof, each callable on its own.

    This mirrors vrf.verify_reference (private helpers included); the sum is printed next to the
    measured total so that a drift between the two shows.
    """
    gamma, c, s = vrf._decode_proof(pi)
    assert s is not None
    gamma_point = vrf._decode(gamma)
    h_point = vrf._hash_to_curve(pk, alpha)
    assert gamma_point is not None and h_point is not None
    gamma_8 = vrf._times_8(gamma_point)
    denominators = (h_point[2], h_point[2] - h_point[1], gamma_8[2])
    inv_z, inv_u, inv_g = vrf._invert_all(denominators)
    h = vrf._prime_order_point(h_point, inv_z, inv_u)
    c_y, c_gamma, s_b = vrf._mul(c, pk), vrf._mul(c, gamma), vrf._mul_base(s)
    (s_h,) = vrf._mul_prime_order((s,), h)
    assert c_y is not None and c_gamma is not None
    u = sodium.crypto_core_ed25519_sub(s_b, c_y)
    v = sodium.crypto_core_ed25519_sub(s_h, c_gamma)
    return {
        "input_checks": lambda: (vrf._is_canonical(pk), vrf._decode_proof(pi)),
        "decode_gamma": lambda: vrf._decode(gamma),
        "hash_to_curve": lambda: vrf._hash_to_curve(pk, alpha),
        "gamma_times_8": lambda: vrf._times_8(gamma_point),
        "one_inversion_for_h_and_gamma_8": lambda: (
            vrf._prime_order_point(h_point, *vrf._invert_all(denominators)[:2])
        ),
        "c_times_y_with_subgroup_check": lambda: vrf._mul(c, pk),
        "c_times_gamma_with_subgroup_check": lambda: vrf._mul(c, gamma),
        "s_times_b": lambda: vrf._mul_base(s),
        "u_subtraction": lambda: sodium.crypto_core_ed25519_sub(s_b, c_y),
        "s_times_h_two_ladders": lambda: vrf._mul_prime_order((s,), h),
        "v_subtraction": lambda: sodium.crypto_core_ed25519_sub(s_h, c_gamma),
        "challenge": lambda: vrf._challenge(pk, h.encoding, gamma, u, v),
        "beta": lambda: vrf._beta(
            vrf._encode(gamma_8[0] * inv_g % vrf._P, gamma_8[1] * inv_g % vrf._P)
        ),
    }


def primitives(pk: bytes) -> dict[str, Callable[[], object]]:
    scalar = hashlib.sha512(b"scalar").digest()[:31] + b"\x00"
    u = sodium.crypto_sign_ed25519_pk_to_curve25519(pk)
    field = int.from_bytes(hashlib.sha256(b"field").digest(), "little") % vrf._P
    return {
        "libsodium_ed25519_noclamp": lambda: sodium.crypto_scalarmult_ed25519_noclamp(scalar, pk),
        "libsodium_ed25519_base_noclamp": lambda: sodium.crypto_scalarmult_ed25519_base_noclamp(
            scalar
        ),
        "libsodium_x25519": lambda: sodium.crypto_scalarmult(scalar, u),
        "libsodium_core_add": lambda: sodium.crypto_core_ed25519_add(pk, pk),
        "libsodium_is_valid_point": lambda: sodium.crypto_core_ed25519_is_valid_point(pk),
        "python_inverse_mod_p": lambda: pow(field, -1, vrf._P),
        "python_square_root_exponentiation": lambda: pow(field, (vrf._P + 3) // 8, vrf._P),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="finish well under a minute")
    args = parser.parse_args()
    rounds, batch = (120, 20) if args.quick else (600, 40)

    seed = hashlib.sha256(b"wekacoin bench").digest()
    message = hashlib.sha256(b"message").digest()[:MESSAGE_BYTES]
    signer = SigningKey(seed)
    verifier = signer.verify_key
    signature = signer.sign(message).signature
    public_key = vrf.public_key(seed)
    proof = vrf.prove(seed, message)
    assert vrf.verify(public_key, proof, message) is not None
    assert vrf.verify_reference(public_key, proof, message) is not None
    verifier.verify(message, signature)

    ns = best_ns(
        {
            "ed25519_sign": lambda: signer.sign(message),
            "ed25519_verify": lambda: verifier.verify(message, signature),
            "vrf_prove": lambda: vrf.prove(seed, message),
            "vrf_verify": lambda: vrf.verify(public_key, proof, message),
            "vrf_verify_reference": lambda: vrf.verify_reference(public_key, proof, message),
        },
        rounds,
        batch,
    )
    print(f"message_bytes {MESSAGE_BYTES}")
    for name, t in ns.items():
        print(f"{name}_us {us(t)}")
        print(f"{name}_per_s {10**9 // t}")
    print(f"RESULT vrf_verify_ratio {ratio(ns['vrf_verify'], ns['ed25519_verify'])}")
    print(f"RESULT vrf_prove_ratio {ratio(ns['vrf_prove'], ns['ed25519_sign'])}")

    steps = best_ns(verify_steps(public_key, proof, message), rounds // 2, batch)
    for name, t in steps.items():
        print(f"reference_verify_step_{name}_us {us(t)}")
    print(f"reference_verify_steps_sum_us {us(sum(steps.values()))}")
    for name, t in best_ns(primitives(public_key), rounds // 2, batch).items():
        print(f"{name}_us {us(t)}")


if __name__ == "__main__":
    main()
