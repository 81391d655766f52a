"""Conformance vectors for the canonical encoding: object -> bytes -> SHA-256.

`python -m wekacoin.testing.vectors > tests/vectors/encoding.json` regenerates the file; the
tests check that this code still produces exactly the committed bytes, so any change to the
encoding is deliberate. Another implementation can check itself against the same file: each
vector gives the object as JSON (bytes in hex, enums by value), its type, its encoding and
its hash.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import Any

from wekacoin.chain.tasks import group_commitment, model_commitment
from wekacoin.chain.transactions import sign_stake, sign_tx
from wekacoin.content.cid import compute_cid
from wekacoin.content.proof import build_leaf_proof
from wekacoin.testing.chain import LocalChain, dev_key, fake_cid
from wekacoin.types.block import BlockHeader, BlockMeta
from wekacoin.types.codec import encode, hash_of
from wekacoin.types.ledger import (
    Account,
    Bond,
    ChainBlob,
    Challenge,
    ChallengeItem,
    ChallengeResult,
    Claim,
    Pending,
    StorageRecord,
)
from wekacoin.types.metric import Metric, TaskKind
from wekacoin.types.ranking import (
    EvaluatorShare,
    Outcome,
    Payment,
    RankEntry,
    RecordedRanking,
    Resolution,
    TaskSettlement,
)
from wekacoin.types.tx import (
    ClaimStorage,
    DataSchema,
    GroupReveal,
    LeafProof,
    PublishTask,
    RevealModel,
    RevealTest,
    RevealTraining,
    StorageProof,
    SubmitModel,
    TaskLimits,
    Transfer,
    TxBody,
    UnsignedTx,
    Unstake,
)

GENESIS_HASH = bytes(range(32))


def json_view(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        view = {f.name: json_view(getattr(value, f.name))
                for f in dataclasses.fields(value) if f.init}
        kind = getattr(type(value), "KIND", None)  # a transaction body's variant tag
        if kind is not None:
            view = {"kind": kind, **view}
        return view
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple):
        return [json_view(v) for v in value]
    return value


def vector_objects() -> list[tuple[str, Any]]:
    alice, bob = dev_key(0), dev_key(1)
    cid = fake_cid("vector-model")
    small = b"a blob held for storage weight\n"
    small_cid = compute_cid(small, version=0)  # a one-leaf dag-pb proof: no path, the leaf
    proof = build_leaf_proof(small, 0, 0)
    nonce = bytes(range(32, 64))
    bodies: list[TxBody] = [
        Transfer(bob.address, 1_000),
        PublishTask(
            title="iris", metric=Metric.ACCURACY,
            schema=DataSchema(TaskKind.CLASSIFICATION, ("sepal_length", "sepal_width"), "species"),
            limits=TaskLimits(1_000_000, 5_000), tbh=120, reward=50_000, hosting_fee=5_000,
            participation_fee=10,
            group_commitments=tuple(group_commitment(nonce, fake_cid(f"g{i}")) for i in range(5)),
        ),
        RevealTraining(
            1, (GroupReveal(0, fake_cid("g0"), 4_096, nonce),), fake_cid("baseline"), 2_048,
            333_333,
        ),
        SubmitModel(1, model_commitment(bob.address, cid), 960_000),
        RevealTest(1, (GroupReveal(3, fake_cid("g3"), 4_096, nonce),)),
        RevealModel(1, cid, 300_000),
        sign_stake(alice, GENESIS_HASH, alice.address, 500),
        Unstake(200),
        ClaimStorage((small_cid, fake_cid("g0")), (fake_cid("g3"),)),
        StorageProof(7, (LeafProof(small_cid, 0, proof.nodes, proof.leaf),)),
    ]
    out: list[tuple[str, Any]] = []
    for i, body in enumerate(bodies):
        out.append((f"unsigned-{type(body).__name__}", UnsignedTx(alice.public_key, i, 1, body)))
    out.append(("signed-Transfer", sign_tx(alice, GENESIS_HASH, 0, 1, bodies[0])))
    out.append(("account", Account(10, 3)))
    out.append(("bond", Bond(
        alice.public_key, 500, (Pending(40, 100),), (), (Pending(30, 400),), 2_048,
    )))
    out.append(("chain-blob", ChainBlob(small_cid, len(small), 1)))
    out.append(("storage-record", StorageRecord(
        (Claim(small_cid, len(small), 12, True), Claim(fake_cid("g0"), 4_096, 31)),
        Challenge(4, 40, 46, (ChallengeItem(small_cid, 0), ChallengeItem(fake_cid("g0"), 0))),
        3, ChallengeResult.PASSED, len(small), Pending(45, 31),
    )))
    entries = (RankEntry(1, Outcome.SCORED, 960_000, 2_048), RankEntry(2, Outcome.INVALID, 0, 0))
    out.append(("recorded-ranking", RecordedRanking(3, Outcome.SCORED, 333_333, entries)))
    out.append(("task-settlement", TaskSettlement(
        1, 40, Resolution.WON, 1, Outcome.SCORED, 333_333, entries,
        (EvaluatorShare(alice.public_key, 3),), (Payment(bob.address, 50_000),), 1_000, 0,
    )))
    chain = LocalChain(n_keys=2, validators=1)
    block = chain.commit([chain.tx(chain.keys[0], Transfer(chain.keys[1].address, 5))])
    out.append(("block", block))
    out.append(("empty-block-header", BlockHeader(
        2, block.hash, 0, None, bytes(32), bytes(32), hash_of(BlockMeta(None, ())), bytes(32),
    )))
    out.append(("genesis", chain.genesis))
    return out


def vectors() -> list[dict[str, Any]]:
    return [
        {"name": name, "type": type(obj).__name__, "object": json_view(obj),
         "cbor": encode(obj).hex(), "sha256": hash_of(obj).hex()}
        for name, obj in vector_objects()
    ]


if __name__ == "__main__":
    print(json.dumps({"hash": "sha256", "encoding": "canonical CBOR, see wekacoin/types/codec.py",
                      "vectors": vectors()}, indent=1))
