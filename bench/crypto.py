"""ECVRF prove/verify throughput next to PyNaCl Ed25519 sign/verify, measured in the same run.

    python bench/crypto.py [--quick]

Every operation is timed in short batches, the kinds interleaved round by round so that load
from other processes hits them alike; the best batch of each kind counts. Prints one figure a
line and `RESULT vrf_verify_ratio` (VRF verify time / Ed25519 verify time) and
`RESULT vrf_prove_ratio` (VRF prove time / Ed25519 sign time).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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


def per_second(ns: int) -> int:
    return 10**9 // ns


def ratio(a: int, b: int) -> str:
    """a / b with three decimals, in integer arithmetic."""
    milli = (a * 1000 + b // 2) // b
    return f"{milli // 1000}.{milli % 1000:03d}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="finish well under a minute")
    args = parser.parse_args()
    rounds, batch = (30, 40) if args.quick else (100, 60)

    seed = hashlib.sha256(b"wekacoin bench").digest()
    message = hashlib.sha256(b"message").digest()[:MESSAGE_BYTES]
    signer = SigningKey(seed)
    verifier = signer.verify_key
    signature = signer.sign(message).signature
    public_key = vrf.public_key(seed)
    proof = vrf.prove(seed, message)
    assert vrf.verify(public_key, proof, message) is not None
    verifier.verify(message, signature)

    ns = best_ns(
        {
            "ed25519_sign": lambda: signer.sign(message),
            "ed25519_verify": lambda: verifier.verify(message, signature),
            "vrf_prove": lambda: vrf.prove(seed, message),
            "vrf_verify": lambda: vrf.verify(public_key, proof, message),
        },
        rounds,
        batch,
    )
    print(f"message_bytes {MESSAGE_BYTES}")
    for name, t in ns.items():
        print(f"{name}_us {t // 1000}.{t % 1000 // 100}")
        print(f"{name}_per_s {per_second(t)}")
    print(f"RESULT vrf_verify_ratio {ratio(ns['vrf_verify'], ns['ed25519_verify'])}")
    print(f"RESULT vrf_prove_ratio {ratio(ns['vrf_prove'], ns['ed25519_sign'])}")


if __name__ == "__main__":
    main()
