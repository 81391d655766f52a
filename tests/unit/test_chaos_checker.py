"""The chaos checker's pieces that need no processes: which stored blocks are FINAL, the
heal percentile, the refusal of a Byzantine share of a third or more."""

from __future__ import annotations

import pytest

from tests.unit.test_sync_fork import extend
from wekacoin.store import ChainStore
from wekacoin.testing.chain import LocalChain
from wekacoin.testing.chaos import ChaosConfig, ChaosReport, ChaosRun, _final_blocks


def test_a_tentative_block_is_final_once_a_later_one_is(tmp_path):
    chain = LocalChain()
    store = ChainStore.open(tmp_path / "s", chain.genesis)
    extend(store, chain, 2, final=False, sender=5)
    extend(store, chain, 1, final=True, sender=5)
    extend(store, chain, 2, final=False, sender=5)
    assert [h for h, _ in _final_blocks(store)] == [3, 2, 1]
    assert dict(_final_blocks(store))[2] == store.get_block_hash(2)
    store.close()


def test_the_heal_percentile():
    assert ChaosReport(heal_to_final_s=[float(i) for i in range(1, 21)]).p95_heal_s() == 19.0
    assert ChaosReport(heal_to_final_s=[4.0]).p95_heal_s() == 4.0


def test_a_third_byzantine_is_refused(tmp_path):
    with pytest.raises(ValueError, match="third"):
        ChaosRun(ChaosConfig(root=tmp_path, nodes=6, byzantine=("flood", "withhold")))
    with pytest.raises(ValueError, match="unknown"):
        ChaosRun(ChaosConfig(root=tmp_path, nodes=7, byzantine=("lie",)))
