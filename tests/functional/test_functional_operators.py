"""What an operator sees: a follower that knows one validator finds the others (peer
exchange), reports its sync progress, serves /metrics as is, and logs its life at INFO
without a line per block or libp2p's chatter."""

from __future__ import annotations

import httpx
import pytest

from wekacoin.testing.functional import NodeGroup, wait_until

pytestmark = pytest.mark.slow


def test_a_follower_bootstrapped_to_one_validator_finds_them_all(network: NodeGroup) -> None:
    validators = list(network.nodes)
    follower = network.add_follower("operator-follower")
    follower.update_config("network", bootstrap=[network.p2p_addr(validators[0])])
    try:
        follower.start()
        ids = {v.status()["peer_id"] for v in validators}
        # each validator announced itself to validator 0, which tells the follower
        wait_until(lambda: follower.peer_ids() >= ids, timeout=90,
                   what="the follower connected to every validator", nodes=[follower])
        network.wait_for_blocks(3, [follower, *validators])

        sync = follower.status()["sync"]
        assert set(sync) == {"syncing", "target_height", "local_height", "behind",
                             "blocks_per_s"}
        assert sync["target_height"] >= sync["local_height"] > 0

        port = follower.config()["metrics"]["port"]
        got = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5.0)
        assert got.status_code == 200  # no redirect to /metrics/
        for name in ("wekacoin_sync_target_height", "wekacoin_sync_progress_ratio",
                     'wekacoin_tasks_open{phase="training"}', "wekacoin_evaluations_running",
                     "wekacoin_peer_addrs_known"):
            assert name in got.text

        log = follower.log_text()
        for started in ("p2p (libp2p) on /ip4/127.0.0.1/tcp/", "RPC (JSON-RPC",
                        "metrics (Prometheus) on http://127.0.0.1:"):
            assert sum(started in line for line in log.splitlines()) == 1, started
        for chatter in (" txs=", " decided ", "AUTO_CONNECTOR", "new dials", "libp2p."):
            assert chatter not in log, next(x for x in log.splitlines() if chatter in x)
        assert follower.stop() == 0
    finally:
        follower.stop()
        network.nodes.remove(follower)
