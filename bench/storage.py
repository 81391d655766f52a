"""Proof-of-storage costs: checking one proof, and what 16 proofs add to validating a block.

A task reveals five data groups of 175 leaves each (about 44 MiB: a two-level DAG, the
largest path a realistic blob has), 16 validators claim one of them, and at the epoch block
each is challenged for one leaf. Each proof is a full 256 KiB leaf with its two path nodes.

- `storage_proof_verify_ms`: `verify_leaf_proof` per proof, median over the 16 proofs and the
  rounds. Each round starts with no decoded path node cached, as a block does: the path nodes
  the 16 proofs share (the five blobs' roots and inner nodes) are decoded once. Printed
  beside it, the floor measured in the same run: SHA-256 of the 256 KiB leaf
  (the check hashes the leaf once, and the two path nodes).
- `storage_block_overhead_ratio`: decoding and applying (`apply_block`: signatures, rules,
  the proofs, the state root) a block of 1,000 transfers plus the 16 StorageProof
  transactions, over the same block without them. Rounds alternate so machine noise hits
  both alike. Goal: at most 1.2.

    python bench/storage.py [--quick]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wekacoin.chain.blocks import apply_block  # noqa: E402
from wekacoin.chain.state import State  # noqa: E402
from wekacoin.chain.storage import MiB  # noqa: E402
from wekacoin.chain.tasks import split_height  # noqa: E402
from wekacoin.content.cid import CHUNK_SIZE, MAX_LINKS, parse_cid  # noqa: E402
from wekacoin.content.proof import build_leaf_proof, clear_path_node_cache, verify_leaf_proof  # noqa: E402
from wekacoin.testing.chain import FAST_PARAMS, LocalChain  # noqa: E402
from wekacoin.types.block import Block  # noqa: E402
from wekacoin.types.codec import decode, encode  # noqa: E402
from wekacoin.types.tx import ClaimStorage, LeafProof, StorageProof, Transfer  # noqa: E402

PROVERS = 16
PARAMS = dataclasses.replace(
    FAST_PARAMS, storage_weight_per_mib=MiB, storage_epoch=20, storage_response_window=10,
    storage_challenges=1, max_block_txs=5_000,
)


def setup(accounts: int, transfers: int) -> tuple[LocalChain, list, list, list[LeafProof]]:
    chain = LocalChain(n_keys=accounts, validators=PROVERS, params=PARAMS)
    size = MAX_LINKS * CHUNK_SIZE + 1_000  # 175 leaves
    blobs = [random.Random(i).randbytes(size) for i in range(5)]
    supplier = chain.keys[PROVERS]
    spec, data = chain.task_spec(blobs=blobs, label="bench")
    chain.commit([chain.tx(supplier, spec)])
    chain.advance_to(split_height(chain.state.get_existing_task(1), PARAMS))
    task = chain.state.get_existing_task(1)
    chain.commit([chain.tx(supplier, data.reveal_training(1, task.test_groups))])
    reveal = chain.state.get_existing_task(1).training_reveals[0]
    cid, blob = reveal.cid, blobs[reveal.index]
    chain.commit([chain.tx(chain.keys[i], ClaimStorage((cid,), ())) for i in range(PROVERS)])
    chain.advance_to(PARAMS.storage_epoch)
    proof_txs, proofs = [], []
    version = parse_cid(cid).version
    for i in range(PROVERS):
        challenge = chain.state.get_storage(chain.keys[i].address).challenge
        (item,) = challenge.items
        path = build_leaf_proof(blob, version, item.leaf_index)
        proof = LeafProof(cid, item.leaf_index, path.nodes, path.leaf)
        proofs.append(proof)
        proof_txs.append(chain.tx(chain.keys[i], StorageProof(challenge.epoch, (proof,))))
    rng = random.Random(7)
    senders = range(PROVERS + 1, PROVERS + 1 + transfers)
    transfer_txs = [
        chain.tx(chain.keys[s], Transfer(chain.keys[rng.randrange(accounts)].address, 10))
        for s in senders
    ]
    return chain, transfer_txs, proof_txs, proofs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (under a minute)")
    parser.add_argument("--txs", type=int, default=1000)
    parser.add_argument("--accounts", type=int, default=10_000)
    args = parser.parse_args()
    rounds = 5 if args.quick else 21
    accounts = 2_000 if args.quick else args.accounts

    chain, transfers, proof_txs, proofs = setup(accounts, args.txs)
    blob_size = chain.state.get_blob(proofs[0].cid).size
    plain, _ = chain.build(transfers)
    with_proofs, _ = chain.build(transfers + proof_txs)
    wires = {"plain": encode(plain), "proofs": encode(with_proofs)}
    entries = dict(chain.state.items())
    lattice = chain.state.lattice()

    def validate(name: str) -> None:
        clear_path_node_cache()  # each round checks the block from cold
        tip = State(chain.state.config, entries, lattice=lattice, block_hash=chain.state.block_hash)
        apply_block(tip, decode(Block, wires[name]))

    def verify_all() -> None:
        clear_path_node_cache()
        for p in proofs:
            verify_leaf_proof(p.cid, blob_size, p.leaf_index, p.nodes, p.leaf)

    def hash_leaves() -> None:
        for p in proofs:
            hashlib.sha256(p.leaf).digest()

    timings: dict[str, list[float]] = {"plain": [], "proofs": [], "verify": [], "sha": []}
    validate("proofs")  # warm the codec's compiled decoders
    for _ in range(rounds):
        for name, fn in (("plain", lambda: validate("plain")),
                         ("proofs", lambda: validate("proofs")),
                         ("verify", verify_all), ("sha", hash_leaves)):
            t0 = time.perf_counter()
            fn()
            timings[name].append(time.perf_counter() - t0)
    med = {name: statistics.median(t) for name, t in timings.items()}
    per_proof = med["verify"] / len(proofs)
    print(f"blob: {blob_size} bytes ({proofs[0].cid}), {len(proofs[0].nodes)} path nodes")
    print(f"SHA-256 of a 256 KiB leaf (floor): {med['sha'] / len(proofs) * 1e3:.3f} ms")
    print(f"block: {len(transfers)} transfers, {len(wires['plain'])} bytes; with"
          f" {len(proof_txs)} proofs, {len(wires['proofs'])} bytes")
    print(f"decode + apply_block: {med['plain'] * 1e3:.1f} ms without proofs,"
          f" {med['proofs'] * 1e3:.1f} ms with")
    print(f"RESULT storage_proof_verify_ms {per_proof * 1e3:.3f}")
    print(f"RESULT storage_block_overhead_ratio {med['proofs'] / med['plain']:.3f}")


if __name__ == "__main__":
    main()
