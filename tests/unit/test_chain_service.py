"""What the node's chain service reads off its store for local policy."""

from __future__ import annotations

from tests.helpers.store_helpers import StoredChain
from wekacoin.node.chain import ChainService


def test_the_recent_block_interval_is_the_median_of_the_last_timestamps(tmp_path):
    sc = StoredChain(tmp_path / "chain")
    assert ChainService(sc.store, sc.chain.genesis).recent_block_ms() is None  # genesis
    sc.commit()
    assert ChainService(sc.store, sc.chain.genesis).recent_block_ms() is None  # no interval
    for _ in range(20):
        sc.commit()
    service = ChainService(sc.store, sc.chain.genesis)
    # LocalChain stamps block h with time h ms: every interval is 1 ms
    assert service.recent_block_ms() == 1
    assert service.recent_block_ms(blocks=3) == 1
    sc.store.close()
