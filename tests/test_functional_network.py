"""Functional tests of the network: four validator processes on 127.0.0.1 agree on blocks,
survive a SIGKILL, let a new node sync from genesis, and refuse a peer of another chain.

They share the session's `network` (tests/conftest.py); each leaves its four validators running.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wekacoin.testing.functional import NodeGroup, child_env, package_root, wait_until

pytestmark = pytest.mark.slow


def test_nodes_run_this_checkout(network: NodeGroup) -> None:
    """Node processes import the `wekacoin` of this work tree, not another installed copy."""
    for node in network.nodes:
        environ = dict(e.split(b"=", 1) for e in
                       Path(f"/proc/{node.pid}/environ").read_bytes().split(b"\0") if b"=" in e)
        first = environ[b"PYTHONPATH"].decode().split(os.pathsep)[0]
        assert Path(first) == package_root()
        # what a child with that environment and that working directory imports
        where = subprocess.run([sys.executable, "-c", "import wekacoin; print(wekacoin.__file__)"],
                               env=child_env(), cwd=node.home, capture_output=True, text=True,
                               check=True).stdout.strip()
        assert Path(where).parent.parent == package_root()


def test_four_validators_finalize_and_agree(network: NodeGroup) -> None:
    start = min(network.heights().values())
    top = network.wait_for_blocks(10)
    network.sync_all()
    # every block from the first one on is the same everywhere (hash, hence state root)
    network.assert_same_blocks(range(1, top + 1))
    assert top >= start + 10
    final = [n.metrics().get('wekacoin_blocks_committed_total{final="true"}', 0)
             for n in network.nodes]
    assert all(f > 0 for f in final), f"some node never saw a FINAL block: {final}"
