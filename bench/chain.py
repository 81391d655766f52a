"""Block validation cost against its floor: the signature checks.

A block of 1,000 signed transfers (distinct senders, random recipients among 10,000 funded
accounts) is decoded from its wire bytes and applied with `apply_block` (signatures, rules,
state root) on a fresh view of the state; the baseline verifies the same 1,000 signatures with
the same function the node uses. Rounds alternate so machine noise hits both alike.

    python bench/chain.py [--quick]

RESULT block_validate_ratio = median(decode + apply_block) / median(signatures alone).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wekacoin.chain.blocks import apply_block  # noqa: E402
from wekacoin.chain.state import State  # noqa: E402
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

    def validate_block() -> None:
        tip = State(chain.state.config, entries, lattice=lattice, block_hash=chain.state.block_hash)
        apply_block(tip, decode(Block, wire))

    base, full = [], []
    validate_block()  # warm the codec's compiled decoders
    for _ in range(rounds):
        for fn, out in ((signatures_alone, base), (validate_block, full)):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    b, f = statistics.median(base), statistics.median(full)
    print(f"block: {args.txs} transfers, {len(wire)} bytes, state of {args.accounts} accounts")
    print(f"signatures alone: {b * 1e3:.1f} ms ({args.txs / b:.0f} sig/s)")
    print(f"decode + apply_block: {f * 1e3:.1f} ms ({args.txs / f:.0f} tx/s)")
    print(f"RESULT block_validate_ratio {f / b:.3f}")


if __name__ == "__main__":
    main()
