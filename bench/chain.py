"""Block validation cost against its floor: the signature checks.

A block of 1,000 signed transfers (distinct senders, random recipients among 10,000 funded
accounts) is decoded from its wire bytes and applied with `apply_block` (signatures, rules,
state root) on a fresh view of the state; the baseline verifies the same 1,000 signatures one
by one on one core, with the function the node uses. `apply_block` checks the signatures on
every core (`wekacoin.crypto.parallel`); the same signatures on every core, and the block
applied with the pool switched off, are timed too. Rounds alternate so machine noise hits all
alike.

    python bench/chain.py [--quick]

RESULT block_validate_ratio = median(decode + apply_block) / median(signatures alone).
`apply_block` starts the signature checks on the pool's threads (one C call each, sharing the
work through a cursor, without the GIL) and applies the block meanwhile; decoding comes first
and stays on one thread, so on c cores the ratio cannot fall below decoding's share of the
baseline plus about (signatures + rules + state root) / c.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wekacoin.chain.blocks import apply_block  # noqa: E402
from wekacoin.chain.state import State  # noqa: E402
from wekacoin.crypto import parallel  # noqa: E402
from wekacoin.crypto.keys import verify_signature  # noqa: E402
from wekacoin.testing.chain import LocalChain  # noqa: E402
from wekacoin.types.block import Block  # noqa: E402
from wekacoin.types.codec import decode, encode  # noqa: E402
from wekacoin.types.tx import Transfer, signing_message  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (under a minute)")
    parser.add_argument("--txs", type=int, default=1000)
    parser.add_argument("--accounts", type=int, default=10_000)
    args = parser.parse_args()
    rounds = 5 if args.quick else 21

    chain = LocalChain(n_keys=args.accounts, validators=4)
    rng = random.Random(7)
    txs = [
        chain.tx(chain.keys[i], Transfer(chain.keys[rng.randrange(args.accounts)].address, 10))
        for i in range(args.txs)
    ]
    block, _ = chain.build(txs)
    wire = encode(block)
    entries = dict(chain.state.items())
    lattice = chain.state.lattice()
    checks = [
        (tx.unsigned.sender, signing_message(chain.genesis.hash, tx.payload), tx.signature)
        for tx in txs
    ]

    def signatures_alone() -> None:
        for public_key, message, signature in checks:
            if not verify_signature(public_key, message, signature):
                raise AssertionError("bad signature")

    def signatures_on_every_core() -> None:
        if parallel.SignatureChecks(checks).first_failure() is not None:
            raise AssertionError("bad signature")

    def validate_block() -> None:
        tip = State(chain.state.config, entries, lattice=lattice, block_hash=chain.state.block_hash)
        apply_block(tip, decode(Block, wire))

    workers = parallel.get_workers()
    alone, on_every_core = "signatures alone", f"signatures, {workers + 1} threads"
    serial, validate = "decode + apply_block, 1 thread", "decode + apply_block"
    cases: list[tuple[str, Callable[[], None], int]] = [  # (name, what, pool workers)
        (alone, signatures_alone, 0),
        (on_every_core, signatures_on_every_core, workers),
        (serial, validate_block, 0),
        (validate, validate_block, workers),
    ]
    times: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    validate_block()  # warm the codec's compiled decoders
    for _ in range(rounds):
        for name, fn, n in cases:
            parallel.set_workers(n)
            parallel.parallel_map(lambda x: x, range(64))  # start the pool's threads
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    parallel.set_workers(None)
    m = {name: statistics.median(t) for name, t in times.items()}
    print(f"block: {args.txs} transfers, {len(wire)} bytes, state of {args.accounts} accounts")
    for name, fn, _ in cases:
        unit = "tx" if fn is validate_block else "sig"
        print(f"{name}: {m[name] * 1e3:.1f} ms ({args.txs / m[name]:.0f} {unit}/s)")
    print(f"signature speedup on {workers + 1} threads: {m[alone] / m[on_every_core]:.2f}")
    print(f"block speedup on {workers + 1} threads: {m[serial] / m[validate]:.2f}")
    print(f"RESULT block_validate_ratio {m[validate] / m[alone]:.3f}")


if __name__ == "__main__":
    main()
