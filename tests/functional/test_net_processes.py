"""Four `wekacoin.net` nodes in four processes (bench/netprobe.py): nothing lost between them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = Path(__file__).resolve().parents[2] / "bench" / "netprobe.py"


@pytest.mark.slow
def test_four_processes_exchange_gossip_and_blobs_without_loss() -> None:
    done = subprocess.run(
        [sys.executable, str(PROBE), "--messages", "60", "--rate", "30", "--burst", "200",
         "--fetches", "3"],
        capture_output=True, text=True, timeout=240, check=True)
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    paced, burst, blob = results
    for run in (paced, burst):
        assert run["lost"] == 0 and run["dropped"] == 0, run
    assert blob["blob_1mib_ms_median"] > 0
