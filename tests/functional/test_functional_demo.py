"""The README's first command, `wekacoin demo`, as a user runs it: a fresh 4-validator
testnet in its own processes, a real competition on it, a winner, and a clean stop."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from wekacoin.node.testnet import processes

pytestmark = pytest.mark.slow


def test_demo_runs_a_competition_to_settlement_and_stops_its_nodes(tmp_path: Path) -> None:
    root = tmp_path / "demo"
    env = dict(os.environ, COLUMNS="200")
    result = subprocess.run(
        [sys.executable, "-m", "wekacoin", "demo", "--dir", str(root)],
        capture_output=True, text=True, timeout=900, env=env,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:] + node_logs(root)
    assert re.search(r"submission \d+ by W\w+ won task 1 with accuracy 0\.\d{4}", output), \
        output + node_logs(root)
    assert re.search(r"all 4 nodes hold the same state root at height \d+", output), output
    assert "trainer1" in output and "supplier" in output  # the balances that changed
    nodes = processes(root)
    assert len(nodes) == 4
    assert [node.pid for node in nodes] == [None] * 4  # it stopped every node
    assert not any(node.pid_path.exists() for node in nodes)


def node_logs(root: Path, lines: int = 40) -> str:
    """The end of each of the demo's node logs (the demo's own nodes, not the shared testnet's
    that the failure report shows)."""
    out = []
    for log in sorted(root.glob("node*/node.log")):
        tail = log.read_text(errors="replace").splitlines()[-lines:]
        out.append(f"\n---- {log.parent.name} (last {len(tail)} lines) ----\n" + "\n".join(tail))
    return "".join(out)
