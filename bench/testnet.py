"""A localhost testnet of validators (4, or `--nodes N`) under a steady transfer load.

Four wallets each send transfers at a steady rate to the nodes' RPC (round robin); a watcher
polls a node for new blocks. Prints the latency from submitting a transfer to its block being
committed (FINAL) on that node, blocks per minute, and how long votes take to reach the other
nodes (from each node's record of votes sent and received, on one machine's clock).

    python bench/testnet.py [--quick] [--nodes N] [--seconds S] [--rate TX_PER_S]

RESULT tx_final_p50_s, tx_final_p95_s, vote_propagation_p50_ms, vote_propagation_p99_ms.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wekacoin.chain.transactions import sign_tx  # noqa: E402
from wekacoin.crypto.keys import format_address  # noqa: E402
from wekacoin.keyfile import load_keystore  # noqa: E402
from wekacoin.node import testnet as tn  # noqa: E402
from wekacoin.node.launcher import NodeProcess, start_all, stop_all  # noqa: E402
from wekacoin.rpc.client import RpcClient  # noqa: E402
from wekacoin.types.codec import encode  # noqa: E402
from wekacoin.types.tx import Transfer  # noqa: E402
from wekacoin.waiting import WaitTimeout, wait_until  # noqa: E402

WALLETS = ("supplier", "trainer1", "trainer2", "trainer3")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def clients(nodes: list[NodeProcess]) -> list[RpcClient]:
    return [RpcClient(n.rpc_url, token=n.token) for n in nodes]


def sender(root: Path, name: str, rpcs: list[RpcClient], genesis_hash: bytes, interval: float,
           stop: threading.Event, submitted: dict[str, float], offset: int) -> None:
    key = load_keystore(root / "wallets" / f"{name}.key", tn.PASSWORD)
    nonce = rpcs[0].call("chain.account", address=format_address(key.address))["next_nonce"]
    i = offset
    next_at = time.monotonic()
    while not stop.is_set():
        tx = sign_tx(key, genesis_hash, nonce, 1, Transfer(key.address, 1))
        t = time.monotonic()
        try:
            tx_id = rpcs[i % len(rpcs)].call("tx.submit", tx=encode(tx).hex())["id"]
            submitted[tx_id] = t
            nonce += 1
        except Exception as e:  # noqa: BLE001 - a refused tx is reported, the load goes on
            print(f"  {name}: submit failed: {e}", flush=True)
        i += 1
        next_at += interval
        stop.wait(max(0.0, next_at - time.monotonic()))


def watch(rpc: RpcClient, stop: threading.Event, included: dict[str, float], finals: list[int],
          heights: list[tuple[float, int]]) -> None:
    seen = rpc.call("node.status")["height"]
    while not stop.is_set():
        tip = rpc.call("node.status")["height"]
        now = time.monotonic()
        for h in range(seen + 1, tip + 1):
            block = rpc.call("chain.block", height=h)
            finals.append(1 if block.get("final") else 0)
            for tx in block["txs"]:
                included.setdefault(tx["id"], now)
        if tip > seen:
            heights.append((now, tip))
        seen = tip
        time.sleep(0.02)


def vote_delays(rpcs: list[RpcClient]) -> list[float]:
    sent: dict[str, int] = {}
    received: list[tuple[str, int]] = []
    for rpc in rpcs:
        for v in rpc.call("node.recent_votes", limit=4096):
            if v["event"] == "sent":
                sent[v["vote"]] = v["time_ns"]
            else:
                received.append((v["vote"], v["time_ns"]))
    return [(t - sent[v]) / 1e6 for v, t in received if v in sent]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 s of load (under a minute)")
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--rate", type=float, default=8.0, help="transfers per second in total")
    parser.add_argument("--nodes", type=int, default=4, help="validator processes (default 4)")
    args = parser.parse_args()
    seconds = args.seconds or (20.0 if args.quick else 90.0)
    root = Path(tempfile.mkdtemp(prefix="wekacoin-bench-testnet-"))
    nodes: list[NodeProcess] = []
    try:
        tn.generate(root, args.nodes)
        nodes = tn.processes(root)
        start_all(nodes, wait=False)
        tn.wait_until_producing(nodes, height=3, timeout=120)
        rpcs = clients(nodes)
        genesis_hash = bytes.fromhex(rpcs[0].call("chain.info")["genesis_hash"])
        stop, stop_watching = threading.Event(), threading.Event()
        submitted: dict[str, float] = {}
        included: dict[str, float] = {}
        finals: list[int] = []
        heights: list[tuple[float, int]] = []
        watcher = threading.Thread(target=watch, args=(clients(nodes[:1])[0], stop_watching,
                                                       included, finals, heights))
        watcher.start()
        senders = [threading.Thread(target=sender, args=(
            root, name, clients(nodes), genesis_hash, len(WALLETS) / args.rate, stop, submitted, i))
            for i, name in enumerate(WALLETS)]
        for t in senders:
            t.start()
        time.sleep(seconds)
        stop.set()
        for t in senders:
            t.join()
        try:  # let the last submissions land; those that do not are reported below
            wait_until(lambda: set(submitted) <= set(included), timeout=10, interval=0.2,
                       what="the last transfers to be committed")
        except WaitTimeout:
            pass
        stop_watching.set()
        watcher.join()
        latencies = [included[t] - s for t, s in submitted.items() if t in included]
        missing = len(submitted) - len(latencies)
        for tx_id in [t for t in submitted if t not in included][:5]:
            print(f"  not committed: {tx_id[:16]}…: {rpcs[0].call('chain.tx', id=tx_id)}")
        span = heights[-1][0] - heights[0][0] if len(heights) > 1 else 0
        blocks = heights[-1][1] - heights[0][1] if len(heights) > 1 else 0
        delays = vote_delays(rpcs)
        print(f"validators: {args.nodes}, load: {args.rate:g} transfers/s for {seconds:g} s")
        print(f"transfers: {len(submitted)} submitted, {len(latencies)} committed, {missing} not")
        print(f"blocks: {blocks} in {span:.1f} s = {60 * blocks / span:.1f} per minute; "
              f"{sum(finals)}/{len(finals)} FINAL")
        print(f"vote deliveries measured: {len(delays)}")
        if not latencies:  # the network made only empty blocks meanwhile: never is infinite
            print("no transfer was committed: tx_final is reported as inf")
            latencies = [float("inf")]
        print(f"RESULT tx_final_p50_s {statistics.median(latencies):.3f}")
        print(f"RESULT tx_final_p95_s {percentile(latencies, 95):.3f}")
        print(f"RESULT vote_propagation_p50_ms {statistics.median(delays):.1f}")
        print(f"RESULT vote_propagation_p99_ms {percentile(delays, 99):.1f}")
    finally:
        stop_all(nodes)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
