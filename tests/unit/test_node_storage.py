"""The node's storage keeper: what it claims (rarest first, within storage.max_bytes), how it
answers challenges from the embedded store and from Kubo's blocks, and what it does when a
blob is lost. The chain side is the real one: blocks built and applied by the chain rules,
committed through a ChainService on a real store, the keeper's transactions admitted by the
real mempool."""

from __future__ import annotations

import dataclasses
import logging
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from tests.helpers.kubo_fake import FakeKubo, dag_blocks
from wekacoin.chain.state import State
from wekacoin.chain.storage import storage_weight
from wekacoin.chain.tasks import split_height
from wekacoin.chain.transactions import sign_tx
from wekacoin.cli.node_cmds import storage_lines
from wekacoin.content.cid import CHUNK_SIZE, compute_cid, parse_cid
from wekacoin.content.embedded import EmbeddedBlobStore
from wekacoin.content.errors import BlobNotFoundError, CorruptBlobError
from wekacoin.content.kubo import KuboBlobStore
from wekacoin.content.proof import leaf_count, verify_leaf_proof
from wekacoin.crypto.keys import KeyPair, format_address
from wekacoin.node.chain import ChainService
from wekacoin.node.holdings import EmbeddedHoldings, KuboHoldings
from wekacoin.node.rpc_api import ValidatorRpc
from wekacoin.node.storage import (
    ClaimPlan,
    StorageKeeper,
    claim_capacity,
    count_holders,
    plan_claims,
    storage_status,
)
from wekacoin.store import ChainStore
from wekacoin.testing.chain import FAST_PARAMS, LocalChain
from wekacoin.types.codec import encode
from wekacoin.types.ledger import ChainTip, ChallengeResult, Claim, StorageRecord
from wekacoin.types.tx import ClaimStorage, StorageProof, TxBody

pytestmark = pytest.mark.filterwarnings(  # the Kubo client's, as in test_kubo.py
    "ignore:The 'strict' parameter is no longer needed:FutureWarning"
)

PARAMS = dataclasses.replace(
    FAST_PARAMS, storage_weight_per_mib=2**20, storage_epoch=8, storage_response_window=3,
    storage_challenges=2,
)
"""One unit of weight per byte credited."""
NODE, SUPPLIER = 0, 4
PARAMS_VALIDATORS = LocalChain.validators  # keys 0-3 bond stake at genesis
# Five training groups of real bytes (one of two leaves), and the test groups.
SIZES = [CHUNK_SIZE + 5_000, 3_000, 5_000, 7_000, 9_000, 11_000, 13_000, 15_000]


def blob(i: int) -> bytes:
    return random.Random(f"group {i}").randbytes(SIZES[i])


# -- plan_claims: pure --


def test_claims_go_to_the_rarest_held_blobs_first_ties_by_cid():
    held = {"a": 10, "b": 10, "c": 10, "d": 10}
    holders = {"a": 3, "b": 1, "c": 0, "d": 1}
    plan = plan_claims({}, held, set(), holders, max_bytes=30, max_claims=100, capacity=100)
    assert plan == ClaimPlan(add=("b", "c", "d"), drop=())  # c (0 holders), then b, d by CID
    # Claimed already: nothing again, and nothing beyond the budget.
    assert plan_claims({"b": 10, "c": 10, "d": 10}, held, set(), holders, 30, 100, 100) \
        == ClaimPlan((), ())


def test_max_bytes_caps_the_claims_and_a_smaller_blob_still_fits():
    held = {"big": 70, "mid": 40, "small": 20}
    holders = {"mid": 0, "big": 1, "small": 2}  # mid is rarest, then big, then small
    plan = plan_claims({}, held, set(), holders, max_bytes=65, max_claims=100, capacity=100)
    assert plan.add == ("mid", "small")  # big does not fit after mid; small does
    assert plan_claims({}, held, set(), holders, 0, 100, 100) == ClaimPlan((), ())
    # max_storage_claims and the per-transaction capacity cap the count
    assert len(plan_claims({}, held, set(), {}, 1000, 2, 100).add) == 2
    assert len(plan_claims({}, held, set(), {}, 1000, 100, 1).add) == 1


def test_lost_claims_are_dropped_and_over_budget_the_most_held_go_first():
    claimed = {"a": 10, "b": 10, "c": 10}
    holders = {"a": 5, "b": 1, "c": 2}
    # b is lost: dropped, never re-added while lost even though it is "held"
    assert plan_claims(claimed, claimed, {"b"}, holders, 100, 100, 100) \
        == ClaimPlan((), ("b",))
    # the operator lowered max_bytes to 15: keep the rarest (b), drop a then c
    assert plan_claims(claimed, claimed, set(), holders, 15, 100, 100) \
        == ClaimPlan((), ("a", "c"))
    # more drops than one claim can carry: drops only, the rest next time
    assert plan_claims(claimed, {}, {"a", "b", "c"}, holders, 100, 100, 2) \
        == ClaimPlan((), ("a", "b"))


def test_a_claim_fits_in_a_transaction():
    assert claim_capacity(PARAMS) * 64 + 256 <= PARAMS.max_tx_bytes
    assert claim_capacity(dataclasses.replace(PARAMS, max_tx_bytes=1024)) >= 1


def test_holders_count_only_proven_claims():
    chain = LocalChain(params=PARAMS)
    state = chain.state.child()
    a, b = chain.keys[0].address, chain.keys[1].address
    state.put_storage(a, StorageRecord(claims=(Claim("x", 1, 1, True), Claim("y", 1, 1, False))))
    state.put_storage(b, StorageRecord(claims=(Claim("x", 1, 1, True), Claim("z", 1, 1, True))))
    tip: ChainTip = state.tip
    state.put_tip(dataclasses.replace(tip, storage_validators=tuple(sorted((a, b)))))
    assert count_holders(state) == {"x": 2, "z": 1}


# -- holdings: proofs from real bytes --


def test_embedded_store_proves_a_leaf_and_refetches_a_corrupt_blob(tmp_path):
    data = blob(0)  # two leaves
    peer = {}
    store = EmbeddedBlobStore(tmp_path / "blobs", fetcher=lambda cid, limit: peer.get(cid))
    cid = store.put(data, pin=False)
    holdings = EmbeddedHoldings(store)
    assert holdings.held_size(cid) == len(data)
    assert holdings.held_size(compute_cid(b"not here")) is None
    for leaf in range(leaf_count(len(data))):
        path = holdings.leaf_proof(cid, len(data), leaf)
        verify_leaf_proof(cid, len(data), leaf, path.nodes, path.leaf)
    holdings.keep(cid)
    assert store.is_pinned(cid)
    _blob_file(store, cid).write_bytes(data[:-1] + b"!")  # the disk returns other bytes
    with pytest.raises(CorruptBlobError):  # quarantined; no peer has it
        holdings.leaf_proof(cid, len(data), 1)
    assert holdings.held_size(cid) is None
    peer[cid] = data  # a peer has it: the proof fetches it first
    path = holdings.leaf_proof(cid, len(data), 1)
    verify_leaf_proof(cid, len(data), 1, path.nodes, path.leaf)
    assert holdings.held_size(cid) == len(data)


def test_embedded_store_refuses_to_prove_a_size_the_chain_got_wrong(tmp_path):
    store = EmbeddedBlobStore(tmp_path / "blobs")
    cid = store.put(b"x" * 100)
    with pytest.raises(Exception, match="the chain states 99"):
        EmbeddedHoldings(store).leaf_proof(cid, 99, 0)


@pytest.fixture
def kubo() -> Iterator[FakeKubo]:
    fake = FakeKubo().start()
    yield fake
    fake.stop()


@pytest.mark.parametrize("version", [0, 1])
def test_kubo_proves_a_leaf_from_its_blocks_and_pins_what_is_kept(kubo, version):
    data = random.Random(version).randbytes(2 * CHUNK_SIZE + 777)  # three leaves
    if version == 1:
        cid = KuboBlobStore(kubo.multiaddr).put(data, pin=False)
    else:  # a CIDv0 blob someone else added: the daemon holds its blocks
        cid = compute_cid(data, 0)
        kubo.blobs[cid] = data
        kubo.blocks.update(dag_blocks(data, 0))
    holdings = KuboHoldings(KuboBlobStore(kubo.multiaddr, timeout=10))
    assert holdings.held_size(cid) == len(data)
    for leaf in range(3):
        path = holdings.leaf_proof(cid, len(data), leaf)
        verify_leaf_proof(cid, len(data), leaf, path.nodes, path.leaf)
        assert path.leaf == data[leaf * CHUNK_SIZE:(leaf + 1) * CHUNK_SIZE]
    assert "/block/get" in kubo.endpoints_called()
    holdings.keep(cid)
    assert cid in kubo.pins
    # The daemon lost the third leaf's block (a one-chunk file's CID is its leaf's): that leaf
    # cannot be proven, the others still can.
    del kubo.blocks[parse_cid(compute_cid(data[2 * CHUNK_SIZE:], version)).to_bytes()]
    with pytest.raises(BlobNotFoundError):
        holdings.leaf_proof(cid, len(data), 2)
    holdings.leaf_proof(cid, len(data), 0)
    assert holdings.held_size(compute_cid(b"never added")) is None


def test_kubo_one_chunk_raw_blob_size_is_its_block(kubo):
    cid = KuboBlobStore(kubo.multiaddr).put(b"hello world\n")
    holdings = KuboHoldings(KuboBlobStore(kubo.multiaddr))
    assert holdings.held_size(cid) == 12
    path = holdings.leaf_proof(cid, 12, 0)
    assert path.nodes == () and path.leaf == b"hello world\n"


# -- the keeper on a real chain --


class Node:
    """One validator (key 0) on a LocalChain, through a ChainService on a real store: the
    keeper's transactions go to the mempool, and `mine` puts the mempool in the next block."""

    def __init__(self, tmp_path: Path, max_bytes: int = 2**30, fetcher=None,
                 key: int = NODE) -> None:
        self.chain = LocalChain(params=PARAMS)
        self.key: KeyPair = self.chain.keys[key]
        self.service = ChainService(ChainStore.open(tmp_path / "chain", self.chain.genesis),
                                    self.chain.genesis)
        self.blobs = EmbeddedBlobStore(tmp_path / "blobs", fetcher=fetcher)
        self.refetched: list[str] = []
        self.keeper = self.keeper_for(self.key, self.blobs, max_bytes)

    def keeper_for(self, key: KeyPair, blobs: EmbeddedBlobStore, max_bytes: int) -> StorageKeeper:
        async def send(body: TxBody) -> bytes:  # as Node.send_own_tx, without the network
            tx = sign_tx(key, self.service.config.genesis_hash,
                         self.service.mempool.next_nonce(key.address), 1, body)
            return self.service.submit_local(tx, encode(tx), 0).vtx.id

        return StorageKeeper(self.service, EmbeddedHoldings(blobs), key, max_bytes, send,
                             self.refetched.extend)

    @property
    def state(self) -> State:
        return self.service.state

    @property
    def record(self) -> StorageRecord:
        return self.state.get_storage(self.key.address) or StorageRecord()

    def pending(self) -> list[TxBody]:
        return [v.body for v in self.service.mempool.pending(self.key.address)]

    def mine(self, txs=()) -> None:
        block = self.chain.commit([*txs, *(v.tx for v in self.service.mempool.all())])
        self.service.apply_and_commit(block, b"")

    def publish_and_reveal(self) -> list[str]:
        """A task whose groups are the real blobs; returns the revealed (training) CIDs."""
        supplier = self.chain.keys[SUPPLIER]
        spec, data = self.chain.task_spec(blobs=[blob(i) for i in range(len(SIZES))])
        self.mine([self.chain.tx(supplier, spec)])
        task = self.state.get_task(1)
        while self.state.height < split_height(task, PARAMS):
            self.mine()
        test = self.state.get_task(1).test_groups
        self.mine([self.chain.tx(supplier, data.reveal_training(1, test))])
        return [data.cids[i] for i in range(len(SIZES)) if i not in test]

    def mine_to_epoch(self) -> None:
        """Mine up to the next epoch's first block, the keeper asleep."""
        self.mine()
        while self.state.height % PARAMS.storage_epoch:
            self.mine()

    async def until_epoch(self) -> None:
        """Mine, letting the keeper work each block, up to the next epoch's first block."""
        while True:
            self.mine()
            await self.keeper.tick()
            if self.state.height % PARAMS.storage_epoch == 0:
                return


def test_the_keeper_claims_what_it_holds_answers_its_challenge_and_earns_weight(tmp_path):
    node = Node(tmp_path)
    for i in range(len(SIZES)):
        node.blobs.put(blob(i), pin=False)
    revealed = node.publish_and_reveal()
    sizes = {compute_cid(blob(i)): SIZES[i] for i in range(len(SIZES))}

    async def main() -> None:
        await node.keeper.scan()
        assert node.keeper.held == {cid: sizes[cid] for cid in revealed}  # chain blobs only
        await node.keeper.tick()
        [claim] = node.pending()
        assert claim == ClaimStorage(tuple(sorted(revealed)), ())
        assert all(node.blobs.is_pinned(cid) for cid in revealed)
        await node.keeper.tick()
        assert len(node.pending()) == 1  # not sent again while pending
        node.mine()
        assert {c.cid for c in node.record.claims} == set(revealed)
        await node.until_epoch()  # the epoch draws a challenge; the keeper answers at once
        challenge = node.record.challenge
        assert challenge is not None and len(challenge.items) == 2
        [proof] = node.pending()
        assert isinstance(proof, StorageProof) and proof.epoch == challenge.epoch
        node.mine()  # the chain checks the proof
        record = node.record
        assert record.challenge is None and record.last_result is ChallengeResult.PASSED
        assert all(c.proven for c in record.claims)
        await node.until_epoch()  # credited at the next boundary, counting after the look-back
        credited = sum(sizes[cid] for cid in revealed)  # alone holding them: all of it
        assert node.record.credited == credited
        for _ in range(PARAMS.stake_lookback):
            node.mine()
        bond = node.state.get_bond(node.key.address)
        assert bond.storage == storage_weight(credited, PARAMS) == credited
        status = node.keeper.status(node.state)
        assert status["held"] == {"blobs": len(revealed), "bytes": credited}
        assert status["claimed"] == status["proven"] == {"blobs": len(revealed),
                                                         "bytes": credited}
        assert status["credited_bytes"] == credited and status["weight"] == credited
        assert status["last_challenge"]["result"] == "passed"
        assert f"credited {credited:,} B" in "\n".join(storage_lines(status))  # CLI status
        # validators.list: this one first (heaviest), its storage beside its stake
        first, *rest = ValidatorRpc(node.service).list()
        assert first["address"] == format_address(node.key.address)
        assert (first["stake"], first["storage_weight"], first["weight"]) \
            == (bond.stake, credited, bond.stake + credited)
        assert first["credited_bytes"] == credited and first["proven_blobs"] == len(revealed)
        assert first["last_challenge"] == {"epoch": node.record.last_epoch, "result": "passed"}
        assert len(rest) == PARAMS_VALIDATORS - 1
        assert all(v["storage_weight"] == 0 and v["last_challenge"] is None for v in rest)

    trio.run(main)


def test_max_bytes_keeps_the_claims_within_the_budget(tmp_path):
    node = Node(tmp_path, max_bytes=20_000)
    for i in range(len(SIZES)):
        node.blobs.put(blob(i), pin=False)
    revealed = node.publish_and_reveal()

    async def main() -> None:
        await node.keeper.scan()
        await node.keeper.tick()
        [claim] = node.pending()
        # nobody holds anything yet: by CID, each that still fits
        held = {cid: len(blob(i)) for i in range(len(SIZES))
                if (cid := compute_cid(blob(i))) in revealed}
        expected = plan_claims({}, held, set(), {}, 20_000, 4096, 512).add
        assert claim.add == expected and sum(held[c] for c in expected) <= 20_000
        assert claim.add and len(claim.add) < len(revealed)

    trio.run(main)


def test_blobs_another_validator_proved_are_claimed_last(tmp_path):
    node = Node(tmp_path)
    for i in range(len(SIZES)):
        node.blobs.put(blob(i), pin=False)
    revealed = node.publish_and_reveal()
    sizes = {compute_cid(blob(i)): SIZES[i] for i in range(len(SIZES))}
    theirs = sorted(revealed, key=sizes.__getitem__)[:3]
    other_blobs = EmbeddedBlobStore(tmp_path / "other")
    for i in range(len(SIZES)):
        if compute_cid(blob(i)) in theirs:
            other_blobs.put(blob(i))
    other = node.keeper_for(node.chain.keys[1], other_blobs, 2**30)
    rare = set(revealed) - set(theirs)
    node.keeper.max_bytes = sum(sizes[cid] for cid in rare)  # room for the rare ones only

    async def main() -> None:
        await other.scan()
        await other.tick()
        node.mine()
        node.mine_to_epoch()
        await other.tick()  # the other validator proves its claims
        node.mine()
        assert count_holders(node.state) == {cid: 1 for cid in theirs}
        await node.keeper.scan()
        await node.keeper.tick()
        [claim] = node.pending()
        assert claim == ClaimStorage(tuple(sorted(rare)), ())

    trio.run(main)


def test_a_lost_blob_is_dropped_and_fetched_again(tmp_path):
    node = Node(tmp_path)
    for i in range(len(SIZES)):
        node.blobs.put(blob(i), pin=False)
    revealed = node.publish_and_reveal()

    async def main() -> None:
        await node.keeper.scan()
        assert node.refetched == [node.state.get_task(1).baseline_cid]  # not here: fetch it
        await node.keeper.tick()
        node.mine()
        lost = revealed[0]
        _blob_file(node.blobs, lost).unlink()
        await node.keeper.tick()
        [claim] = node.pending()
        assert claim == ClaimStorage((), (lost,))
        assert node.refetched[1:] == [lost]  # handed to the Replicator
        node.mine()
        assert lost not in {c.cid for c in node.record.claims}
        node.blobs.put(next(blob(i) for i in range(len(SIZES)) if compute_cid(blob(i)) == lost))
        node.keeper.on_held(lost)  # the Replicator fetched it again
        await node.keeper.tick()
        assert node.pending() == [ClaimStorage((lost,), ())]

    trio.run(main)


def test_a_challenged_blob_lost_is_fetched_from_peers_else_the_challenge_is_missed(
        tmp_path, caplog):
    peers: dict[str, bytes] = {}
    node = Node(tmp_path, fetcher=lambda cid, limit: peers.get(cid))
    for i in range(len(SIZES)):
        node.blobs.put(blob(i), pin=False)
    revealed = node.publish_and_reveal()
    by_cid = {compute_cid(blob(i)): blob(i) for i in range(len(SIZES))}

    async def main() -> None:
        await node.keeper.scan()
        await node.keeper.tick()
        node.mine_to_epoch()
        challenged = {item.cid for item in node.record.challenge.items}
        for cid in challenged:  # the disk lost them just after the draw
            _blob_file(node.blobs, cid).unlink()
            peers[cid] = by_cid[cid]  # a peer has them
        await node.keeper.tick()
        [proof] = node.pending()
        assert isinstance(proof, StorageProof)
        node.mine()
        assert node.record.last_result is ChallengeResult.PASSED
        # Next epoch: the challenged blobs are gone and no peer has them.
        node.mine_to_epoch()
        challenge = node.record.challenge
        gone = {item.cid for item in challenge.items}
        for cid in gone:
            _blob_file(node.blobs, cid).unlink(missing_ok=True)
            peers.pop(cid, None)
        with caplog.at_level(logging.INFO, logger="wekacoin.node.storage"):
            await node.until_epoch()  # tries every block until the deadline, then missed
        assert node.record.last_result is ChallengeResult.MISSED
        assert caplog.text.count("cannot answer the storage challenge") == 1  # then debug
        assert f"storage challenge of epoch {challenge.epoch} missed" in caplog.text
        assert set(node.refetched) >= gone  # the Replicator was asked for them
        # What is still here is claimed again at once (the chain dropped every claim).
        [claim] = node.pending()
        assert claim == ClaimStorage(tuple(sorted(set(revealed) - gone)), ())

    trio.run(main)


def test_without_a_bond_the_keeper_does_nothing_and_status_says_so(tmp_path):
    node = Node(tmp_path, key=SUPPLIER)  # a key that bonds no stake
    for i in range(len(SIZES)):
        node.blobs.put(blob(i), pin=False)
    node.publish_and_reveal()

    async def main() -> None:
        await node.keeper.scan()
        await node.keeper.tick()
        assert node.pending() == []

    trio.run(main)
    status = storage_status(node.state, node.key.public_key)
    assert status["keeping"] is False and status["held"] is None
    assert status["claimed"] == {"blobs": 0, "bytes": 0} and status["challenge"] is None


def _blob_file(store: EmbeddedBlobStore, cid: str) -> Path:
    """Where the embedded store keeps a blob (its module docstring's layout)."""
    return store.root / "blobs" / cid[-3:-1] / cid
