"""A validator fetches every blob a block reveals as soon as the block lands."""

from __future__ import annotations

from types import SimpleNamespace

import trio

from wekacoin.chain.transactions import sign_tx
from wekacoin.content.cid import compute_cid
from wekacoin.content.embedded import EmbeddedBlobStore
from wekacoin.crypto.keys import KeyPair
from wekacoin.node.replication import ATTEMPTS, Replicator, revealed_cids
from wekacoin.types.primitives import ByteSize, Nonce32, Score, TaskId
from wekacoin.types.tx import GroupReveal, RevealModel, RevealTest, RevealTraining, Transfer

KEY = KeyPair.from_seed(bytes(32))
BLOBS = {name: compute_cid(name.encode()) for name in ("g0", "g1", "g2", "base", "model")}


def block_of(*bodies):
    txs = tuple(sign_tx(KEY, bytes(32), n, 1, body) for n, body in enumerate(bodies))
    return SimpleNamespace(txs=txs)


def group(i: int, name: str) -> GroupReveal:
    return GroupReveal(i, BLOBS[name], ByteSize(100), Nonce32(bytes(32)))


def test_every_revealed_cid_once_in_block_order_and_nothing_else():
    block = block_of(
        Transfer(KEY.address, 5),
        RevealTraining(
            TaskId(1), (group(0, "g0"), group(1, "g1")), BLOBS["base"], ByteSize(100), Score(1)
        ),
        RevealTest(TaskId(1), (group(2, "g2"),)),
        RevealModel(TaskId(1), BLOBS["model"], ByteSize(100)),
        RevealModel(TaskId(2), BLOBS["model"], ByteSize(100)),  # the same bytes twice: fetched once
    )
    assert revealed_cids(block) == [BLOBS[n] for n in ("g0", "g1", "base", "g2", "model")]
    assert revealed_cids(block_of(Transfer(KEY.address, 5))) == []


def run_replicator(store: EmbeddedBlobStore, block) -> Replicator:
    replicator = Replicator(store, sleep=lambda s: trio.sleep(0))

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(replicator.run)
            replicator.on_block(block)
            wanted = len(revealed_cids(block))
            with trio.fail_after(10):
                while replicator.fetched + replicator.held + replicator.failed < wanted:
                    await trio.sleep(0.01)
            nursery.cancel_scope.cancel()

    trio.run(main)
    return replicator


def test_revealed_blobs_land_on_disk_even_when_peers_have_them_only_later(tmp_path):
    calls: dict[str, int] = {}

    def fetcher(cid: str, limit: int) -> bytes | None:  # the model reaches peers late
        calls[cid] = calls.get(cid, 0) + 1
        if cid == BLOBS["model"] and calls[cid] < ATTEMPTS:
            return None
        return next(n.encode() for n, c in BLOBS.items() if c == cid)

    store = EmbeddedBlobStore(tmp_path / "blobs", fetcher=fetcher)
    store.put(b"g0")  # already held: not asked for
    block = block_of(
        RevealTraining(
            TaskId(1), (group(0, "g0"), group(1, "g1")), BLOBS["base"], ByteSize(100), Score(1)
        ),
        RevealModel(TaskId(1), BLOBS["model"], ByteSize(100)),
    )
    replicator = run_replicator(store, block)
    assert (replicator.fetched, replicator.held, replicator.failed) == (3, 1, 0)
    assert all(store.has(BLOBS[n]) for n in ("g0", "g1", "base", "model"))
    assert BLOBS["g0"] not in calls
    assert calls[BLOBS["model"]] == ATTEMPTS


def test_a_blob_nobody_serves_is_given_up_after_a_few_attempts(tmp_path):
    asked: list[str] = []

    def fetcher(cid: str, limit: int) -> bytes | None:
        asked.append(cid)
        return None

    store = EmbeddedBlobStore(tmp_path / "blobs", fetcher=fetcher)
    block = block_of(RevealModel(TaskId(1), BLOBS["model"], ByteSize(100)))
    replicator = run_replicator(store, block)
    assert (replicator.fetched, replicator.failed) == (0, 1)
    assert asked == [BLOBS["model"]] * ATTEMPTS
    assert not store.has(BLOBS["model"])
