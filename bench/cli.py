"""Start-up time of the `wekacoin` command next to a bare interpreter, measured in the same run.

    python bench/cli.py [--quick]

Times three commands as fresh processes, the kinds interleaved run by run so that load from
other processes hits them alike, and takes the median of each:

- baseline: `python -c pass` (the interpreter's own start);
- help: `python -m wekacoin --help`;
- status: `python -m wekacoin --rpc URL status` against a fake node in this process, a
  thread that answers `node.status` with a fixed document: the whole success path (the
  command's imports, one HTTP round trip, printing), no node behind it.

Prints `RESULT cli_help_s` and `RESULT cli_status_s` (median wall seconds), their ratios to
the baseline (`RESULT cli_help_ratio`, `RESULT cli_status_ratio`), and the CPU seconds (user +
system) of each, which load from other processes disturbs less than wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

STATUS = {
    "version": "0.1.0", "chain_id": "wekacoin-bench", "genesis_hash": "00" * 32, "height": 7,
    "block_hash": "11" * 32, "state_root": "22" * 32, "peers": 3, "peer_id": "12D3KooWBench",
    "listen": ["/ip4/127.0.0.1/tcp/30333"], "syncing": False, "mempool": 0,
    "validator": {"address": "W" + "1" * 33, "key": "33" * 32, "stake": 10**6,
                  "weight": 10**6, "participating": True},
    "storage": {"keeping": False, "max_bytes": None, "held": None,
                "claimed": {"blobs": 0, "bytes": 0}, "proven": {"blobs": 0, "bytes": 0},
                "credited_bytes": 0, "weight": 0, "pending_weight": None,
                "last_challenge": {"epoch": 0, "result": "none"}, "challenge": None},
    "consensus": {"round": 8, "period": 1, "step": 2}, "sandbox": "rlimits", "blobs": 0,
}


class FakeNode(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert request["method"] == "node.status", request
        body = json.dumps({"jsonrpc": "2.0", "id": request["id"], "result": STATUS}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def run_once(argv: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of `argv`, which must succeed."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "COLUMNS": "100"})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed ({done.returncode}):\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (under a minute)")
    args = parser.parse_args()
    runs = 7 if args.quick else 25

    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeNode)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    python = sys.executable
    commands = {
        "baseline": [python, "-c", "pass"],
        "help": [python, "-m", "wekacoin", "--help"],
        "status": [python, "-m", "wekacoin", "--rpc", url, "status"],
    }
    for argv in commands.values():  # warm the file cache and the bytecode caches
        run_once(argv)
    walls: dict[str, list[float]] = {name: [] for name in commands}
    cpus: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            wall, cpu = run_once(argv)
            walls[name].append(wall)
            cpus[name].append(cpu)
    server.shutdown()

    wall = {name: statistics.median(v) for name, v in walls.items()}
    cpu = {name: statistics.median(v) for name, v in cpus.items()}
    print(f"{runs} runs each, medians; status against a fake node answering node.status")
    for name in commands:
        print(f"{name:<9} wall {wall[name]:.3f} s   cpu {cpu[name]:.3f} s   "
              f"(min wall {min(walls[name]):.3f} s)")
    print(f"RESULT cli_baseline_s {wall['baseline']:.3f}")
    print(f"RESULT cli_help_s {wall['help']:.3f}")
    print(f"RESULT cli_status_s {wall['status']:.3f}")
    print(f"RESULT cli_help_ratio {wall['help'] / wall['baseline']:.2f}")
    print(f"RESULT cli_status_ratio {wall['status'] / wall['baseline']:.2f}")
    print(f"RESULT cli_help_cpu_s {cpu['help']:.3f}")
    print(f"RESULT cli_status_cpu_s {cpu['status']:.3f}")


if __name__ == "__main__":
    main()
