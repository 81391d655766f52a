"""Sync across a fork: TENTATIVE blocks give way to a peer's longer certified branch; a FINAL
block never does. Real chain stores, real certificates; the network port is an in-memory
stand-in that serves the peer's store (wekacoin.ports.Network's request side)."""

from dataclasses import dataclass, field

import trio

from wekacoin.chain.transactions import compute_tx_id
from wekacoin.consensus.verify import Verifier
from wekacoin.net.api import PeerStatus
from wekacoin.net.messages import SyncedBlock
from wekacoin.node.chain import ChainService
from wekacoin.node.sync import Syncer
from wekacoin.store import ChainStore
from wekacoin.testing.certify import certify_block
from wekacoin.testing.chain import LocalChain
from wekacoin.types.codec import encode
from wekacoin.types.tx import Transfer


@dataclass
class PeerNetwork:
    """One peer whose chain is `store`: what Syncer asks of the network."""

    store: ChainStore
    peer_id: str = "peer-1"
    penalties: list[str] = field(default_factory=list)

    def peers(self) -> list[PeerStatus]:
        tip = self.store.tip()
        return [PeerStatus(self.peer_id, tip.height, tip.block_hash, "test")]

    async def request_blocks(self, peer_id, from_height, count, **_) -> list[SyncedBlock]:
        await trio.sleep(0)
        stop = min(from_height + count, self.store.height + 1)
        raws = self.store.iter_raw_blocks(from_height, stop)
        return [SyncedBlock(r.data, r.certificate) for r in raws]

    def penalize(self, peer_id: str, reason: str, weight: float = 1.0) -> None:
        self.penalties.append(reason)


def extend(store: ChainStore, chain: LocalChain, blocks: int, *, final: bool, sender: int) -> None:
    for _ in range(blocks):
        tx = chain.tx(chain.keys[sender], Transfer(chain.keys[0].address, 1 + sender))
        block, state = chain.build([tx])
        cert = certify_block(chain.state, block, chain.keys[:4], final=final)
        store.commit(block, state, encode(cert))
        chain.state = state.flattened()
        chain._nonces.clear()


def two_branches(tmp_path, ours_final: bool):
    """Common FINAL blocks 1-2; ours: 2 more blocks; theirs: 3 different ones (another
    sender, so our transfers stay valid on their branch)."""
    ours, theirs = LocalChain(), LocalChain()
    our_store = ChainStore.open(tmp_path / "ours", ours.genesis)
    their_store = ChainStore.open(tmp_path / "theirs", theirs.genesis)
    extend(our_store, ours, 2, final=True, sender=5)
    extend(their_store, theirs, 2, final=True, sender=5)
    extend(our_store, ours, 2, final=ours_final, sender=6)
    extend(their_store, theirs, 3, final=True, sender=7)
    return our_store, their_store, ours


def run_sync(our_store, their_store, chain):
    service = ChainService(our_store, chain.genesis)
    net = PeerNetwork(their_store)
    advanced = []
    syncer = Syncer(service, net, Verifier(), advanced.append, lambda: 0)
    trio.run(syncer.sync)
    return service, net, advanced


def test_tentative_blocks_give_way_to_a_longer_certified_branch(tmp_path):
    our_store, their_store, chain = two_branches(tmp_path, ours_final=False)
    our_tx = our_store.get_block(3).txs[0]
    service, net, advanced = run_sync(our_store, their_store, chain)
    assert our_store.height == 5
    assert our_store.tip() == their_store.tip()
    assert [our_store.get_block_hash(h) for h in range(1, 6)] == \
        [their_store.get_block_hash(h) for h in range(1, 6)]
    assert None in advanced  # the driver heard of the rollback
    assert net.penalties == []
    # The rolled-back transfer is still valid on their branch: it is pending again.
    assert service.mempool.get(compute_tx_id(our_tx.payload)) is not None


def test_a_final_block_is_never_rolled_back(tmp_path):
    our_store, their_store, chain = two_branches(tmp_path, ours_final=True)
    ours_before = our_store.tip()
    service, net, advanced = run_sync(our_store, their_store, chain)
    assert our_store.tip() == ours_before
    assert net.penalties and "FINAL" in net.penalties[0]


def equal_branches(tmp_path, b_final: bool = False):
    """Common FINAL blocks 1-2, then one block each, different (equal lengths): A's is
    TENTATIVE, B's FINAL with `b_final`."""
    a, b = LocalChain(), LocalChain()
    store_a = ChainStore.open(tmp_path / "a", a.genesis)
    store_b = ChainStore.open(tmp_path / "b", b.genesis)
    extend(store_a, a, 2, final=True, sender=5)
    extend(store_b, b, 2, final=True, sender=5)
    extend(store_a, a, 1, final=False, sender=6)
    extend(store_b, b, 1, final=b_final, sender=7)
    return store_a, store_b, a


def test_two_nodes_on_equal_tentative_branches_converge(tmp_path):
    """Each hears of the other's tip at its own height; each runs the fork choice; exactly
    one of them moves, and after both synced they share one tip (whatever the order)."""
    store_a, store_b, chain = equal_branches(tmp_path)
    tip_a, tip_b = store_a.tip(), store_b.tip()
    assert tip_a.height == tip_b.height == 3 and tip_a.block_hash != tip_b.block_hash
    winner = min(store_a.get_block_hash(3), store_b.get_block_hash(3))
    for ours, theirs in ((store_a, store_b), (store_b, store_a)):
        _, net, _ = run_sync(ours, theirs, chain)
        assert net.penalties == []
    assert store_a.tip() == store_b.tip()
    assert store_a.get_block_hash(3) == winner


def test_an_equal_branch_with_a_final_block_wins_over_a_tentative_one(tmp_path):
    store_a, store_b, chain = equal_branches(tmp_path, b_final=True)
    run_sync(store_a, store_b, chain)
    assert store_a.tip() == store_b.tip()
