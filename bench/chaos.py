"""The chaos testnet: real validator processes, two of them Byzantine, a transfer load and a
competition, under a seeded storm of SIGKILL/restart, SIGSTOP/SIGCONT and network
partitions; then a checker reads every store (`wekacoin/testing/chaos.py` says what it checks).

    python bench/chaos.py [--quick] [--seed N] [--minutes M] [--keep DIR]
                          [--partitions auto|on|off] [--latency MIN,MAX] [--loss P]

Partitions put each node in its own network namespace, which needs root; `auto` (the default)
uses them when this machine allows and says so, `off` runs process faults only (no root).
`--latency 50,300` (needs partitions) routes every link through a relay in this process that
delays each chunk by the link's latency (drawn per link from the range, in ms) plus jitter;
`--loss` is the chance a chunk waits a TCP retransmission timeout more.

RESULT chaos_kills = processes SIGKILLed and restarted (goal >= 100 in the full run).
RESULT chaos_pauses = processes SIGSTOPped and resumed.
RESULT chaos_partitions = network partitions made and healed.
RESULT chaos_conflicting_final = FINAL blocks that conflict across the nodes' stores (0).
RESULT chaos_lost_final_txs = transactions a client saw FINAL missing from an honest
store (0).
RESULT chaos_heal_to_final_p95_s = seconds from a node's restart or resume to its holding a
FINAL block above the height the network had then, 95th percentile (goal <= 10).
RESULT chaos_tasks_settled = competitions settled with the honest ranking (>= 1).

Only processes this run started are signalled, by pid. The full run takes about 23 minutes
on 2 cores; `--quick` (4 validators, one of them flooding, one minute of faults, no competition)
about two.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wekacoin.testing.chaos import ChaosConfig, ChaosRun  # noqa: E402
from wekacoin.testing.netns import unavailable  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 validators, about two minutes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=None,
                        help="minutes of faults (default 18, --quick 1)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="run in this directory and keep it (logs, stores)")
    parser.add_argument("--partitions", choices=("auto", "on", "off"), default="auto",
                        help="network partitions in network namespaces (need root)")
    parser.add_argument("--latency", default=None, metavar="MIN,MAX",
                        help="per-link one-way latency range in ms (needs partitions)")
    parser.add_argument("--loss", type=float, default=0.0,
                        help="chance that a chunk is lost once and retransmitted")
    args = parser.parse_args()
    latency = None
    if args.latency:
        low, _, high = args.latency.partition(",")
        latency = (int(low), int(high or low))
    why_not = unavailable() if args.partitions != "off" else "--partitions off"
    if why_not and args.partitions == "on":
        parser.error(f"--partitions on: {why_not}")
    partitions = why_not is None
    if latency is not None and not partitions:
        parser.error(f"--latency needs network namespaces: {why_not}")
    print(f"chaos: network partitions {'on' if partitions else 'off (' + why_not + ')'}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    root = args.keep or Path(tempfile.mkdtemp(prefix="wekacoin-chaos-"))
    if args.quick:
        config = ChaosConfig(root=root, seed=args.seed, nodes=4, byzantine=("flood",),
                             duration_s=60 * (args.minutes or 1), competition=False,
                             partitions=partitions, partition_share=0.4,
                             latency_ms=latency, loss=args.loss)
    else:
        config = ChaosConfig(root=root, seed=args.seed, duration_s=60 * (args.minutes or 18),
                             partitions=partitions, partition_share=0.2, latency_ms=latency,
                             loss=args.loss)
    if latency is not None:
        print(f"chaos: links delayed {latency[0]}-{latency[1]} ms, loss {args.loss:.1%}")
    start = time.monotonic()
    try:
        report = ChaosRun(config).run()
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    print(f"chaos: {config.nodes} validators, Byzantine {list(config.byzantine)}, "
          f"{time.monotonic() - start:.0f} s; {report.accepted_txs} transfers accepted, "
          f"{report.final_txs} seen FINAL; final height {report.final_height}; "
          f"{len(report.heal_to_final_s)} heals timed, {report.heals_without_final} without a "
          f"FINAL block within the bound; {report.stores_opened} stores opened")
    for problem in report.problems:
        print(f"chaos: PROBLEM {problem}")
    print(f"RESULT chaos_kills {report.kills}")
    print(f"RESULT chaos_pauses {report.pauses}")
    print(f"RESULT chaos_partitions {report.partitions}")
    print(f"RESULT chaos_conflicting_final {report.conflicting_final}")
    print(f"RESULT chaos_lost_final_txs {report.lost_final_txs}")
    print(f"RESULT chaos_heal_to_final_p95_s {report.p95_heal_s():.1f}")
    print(f"RESULT chaos_tasks_settled {report.tasks_settled}")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
