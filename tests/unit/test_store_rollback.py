"""Rolling back TENTATIVE blocks: the store returns exactly to an earlier tip."""

import pytest

from wekacoin.chain.transactions import compute_tx_id
from wekacoin.store import ChainStore
from wekacoin.store.errors import CommitError
from wekacoin.store.layout import UNDO_DEPTH
from wekacoin.testing.chain import LocalChain
from wekacoin.types.tx import Transfer


def _commit(store, chain, txs):
    block, state = chain.build(txs)
    store.commit(block, state, b"cert")
    chain.state = state.flattened()
    chain._nonces.clear()
    return block


def test_rollback_restores_the_ledger_and_forgets_the_blocks(tmp_path):
    chain = LocalChain()
    k = chain.keys
    with ChainStore.open(tmp_path / "s", chain.genesis) as store:
        _commit(store, chain, [chain.tx(k[5], Transfer(k[6].address, 10))])
        fork_point = dict(store.state().items())
        root = store.tip().state_root
        b2 = _commit(store, chain, [chain.tx(k[5], Transfer(k[7].address, 20)),
                                    chain.tx(k[6], chain.stake_body(k[6], 100))])
        b3 = _commit(store, chain, [chain.tx(k[7], Transfer(k[5].address, 30))])
        store.rollback(1)
        assert store.height == 1 and store.tip().state_root == root
        assert dict(store.state().items()) == fork_point
        for block in (b2, b3):
            assert store.get_block_by_hash(block.hash) is None
            assert all(store.get_tx(compute_tx_id(t.payload)) is None
                       for t in block.txs)
        assert store.get_block(2) is None and store.get_undo(2) is None
    # The rolled-back store reopens cleanly (the full recovery check) and takes another branch.
    with ChainStore.open(tmp_path / "s", chain.genesis) as store:
        assert store.height == 1
        chain.state = store.state().flattened()
        _commit(store, chain, [chain.tx(k[6], Transfer(k[5].address, 1))])
        assert store.height == 2


def test_rollback_to_genesis_and_limits(tmp_path):
    chain = LocalChain()
    with ChainStore.open(tmp_path / "s", chain.genesis) as store:
        genesis_root = store.tip().state_root
        for _ in range(3):
            _commit(store, chain, [])
        store.rollback(0)
        assert store.height == 0 and store.tip().state_root == genesis_root
        assert store.tip().block_hash == chain.genesis_hash
        with pytest.raises(CommitError):
            store.rollback(5)


def test_only_the_last_blocks_can_be_rolled_back(tmp_path):
    chain = LocalChain()
    with ChainStore.open(tmp_path / "s", chain.genesis) as store:
        for _ in range(UNDO_DEPTH + 2):
            _commit(store, chain, [])
        assert store.get_undo(1) is None and store.get_undo(UNDO_DEPTH + 2) is not None
        height = store.height
        with pytest.raises(CommitError, match="no undo record"):
            store.rollback(1)
        assert store.height == height  # nothing written
        store.rollback(height - UNDO_DEPTH)
        assert store.height == height - UNDO_DEPTH
