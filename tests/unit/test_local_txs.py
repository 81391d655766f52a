"""Transactions submitted to a node over RPC are its responsibility: journaled before the id
goes back, pending again after a restart, re-sent while pending, forgotten once included or
no longer valid."""

from __future__ import annotations

from tests.helpers.store_helpers import StoredChain
from wekacoin.chain.transactions import compute_tx_id
from wekacoin.node.chain import LOCAL_RESEND_MS, ChainService
from wekacoin.types.codec import encode
from wekacoin.types.tx import Transfer


def submitted(sc: StoredChain, service: ChainService, amount: int, now: int = 0):
    tx = sc.tx(1, Transfer(sc.chain.keys[2].address, amount))
    service.submit_local(tx, encode(tx), now)
    return tx


def test_a_submitted_transaction_is_pending_again_after_a_restart(tmp_path):
    sc = StoredChain(tmp_path / "chain")
    service = ChainService(sc.store, sc.chain.genesis)
    tx = submitted(sc, service, 5)
    tx_id = compute_tx_id(tx.payload)
    restarted = ChainService(sc.reopen(), sc.chain.genesis)  # the mempool was memory
    assert tx_id not in restarted.mempool
    assert restarted.resume_local(1_000) == (1, 0)
    assert tx_id in restarted.mempool
    assert restarted.local_due(1_000) == [encode(tx)]  # re-sent at once after a restart
    sc.store.close()


def test_pending_transactions_are_resent_every_interval_and_forgotten_once_included(tmp_path):
    sc = StoredChain(tmp_path / "chain")
    service = ChainService(sc.store, sc.chain.genesis)
    tx = submitted(sc, service, 5, now=0)
    assert service.local_due(LOCAL_RESEND_MS - 1) == []
    assert service.local_due(LOCAL_RESEND_MS) == [encode(tx)]
    assert service.local_due(LOCAL_RESEND_MS + 1) == []
    block, state = sc.chain.build([tx])
    service.commit(block, state, b"")
    assert sc.store.local_txs() == []
    assert service.local_due(10 * LOCAL_RESEND_MS) == []
    sc.store.close()


def test_a_journaled_transaction_the_chain_no_longer_takes_is_dropped_at_restart(tmp_path):
    sc = StoredChain(tmp_path / "chain")
    service = ChainService(sc.store, sc.chain.genesis)
    submitted(sc, service, 5)
    store = sc.reopen()
    other = sc.tx(1, Transfer(sc.chain.keys[3].address, 9), nonce=0)  # the same nonce, elsewhere
    sc.commit([other])
    restarted = ChainService(store, sc.chain.genesis)
    assert restarted.resume_local(0) == (0, 1)
    assert sc.store.local_txs() == []
    sc.store.close()
