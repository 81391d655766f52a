"""The chaos testnet in its quick form (what `bench/chaos.py --quick` runs): 4 real validator
processes, one of them a flooding Byzantine node, under less than a minute of SIGKILL/restart,
SIGSTOP/SIGCONT and, where this machine allows network namespaces (root), partitions, with a
transfer load; the checker reads every store afterwards."""

from __future__ import annotations

import pytest

from wekacoin.testing.chaos import ChaosConfig, ChaosRun
from wekacoin.testing.netns import unavailable

pytestmark = pytest.mark.slow


def test_a_short_fault_storm_loses_nothing_final_and_the_nodes_agree(tmp_path):
    partitions = unavailable() is None
    # Seed 4: the storm's first fault is a partition (the fault thread draws from its own
    # generator, and nothing else is pending then), so one partition is certain wherever
    # network namespaces are available.
    config = ChaosConfig(root=tmp_path / "chaos", seed=4, nodes=4, byzantine=("flood",),
                         duration_s=35, competition=False, partitions=partitions,
                         partition_share=0.4)
    report = ChaosRun(config).run()
    assert not report.problems, report.problems
    assert report.kills + report.pauses + report.partitions >= 5
    if partitions:
        assert report.partitions >= 1
    assert report.conflicting_final == 0
    assert report.lost_final_txs == 0
    assert report.stores_opened == 4
    assert report.final_txs > 0  # the load went through the storm
    assert report.final_height > 0
