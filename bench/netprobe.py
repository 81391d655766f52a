"""Gossip latency and stream throughput of `wekacoin.net` between real processes on 127.0.0.1.

Four worker processes form a star: the hub listens, three leaves bootstrap to it. One leaf
publishes 200-byte votes stamped with the send time; the hub sees them after one hop, the two
other leaves after two. Then a leaf fetches a 1 MiB blob from the hub over a stream, several
times. Reported, not asserted: the numbers depend on the machine and its load.

    python bench/netprobe.py [--quick] [--messages 300] [--rate 50] [--burst 200] [--fetches 10]

Each phase prints a JSON line with its details, then:
RESULT gossip_paced_p50_ms, gossip_paced_p99_ms, gossip_burst_p50_ms, gossip_burst_p99_ms
(every delivery, one and two hops), gossip_lost (messages never delivered, both phases), and
blob_1mib_ms (median fetch).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import trio  # noqa: E402

from wekacoin.net import NetConfig, Network, Topic  # noqa: E402
from wekacoin.waiting import WaitTimeout, wait_until_async  # noqa: E402

CHAIN = "netprobe"
GENESIS = hashlib.sha256(b"netprobe genesis").digest()
BLOB = bytes(range(256)) * 4096  # 1 MiB
VOTE_BYTES = 200


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


# -- worker process ------------------------------------------------------------------------


async def worker(index: int, bootstrap: str | None) -> None:
    config = NetConfig(seed=hashlib.sha256(b"netprobe %d" % index).digest(), chain_id=CHAIN,
                       genesis_hash=GENESIS, bootstrap=(bootstrap,) if bootstrap else ())
    net = Network(config, blob_provider=lambda cid: BLOB)
    received: dict[str, list[float]] = {}
    async with net.running():
        say(event="up", addr=net.listen_addrs()[0], peer=net.peer_id)

        async def collect() -> None:
            async for msg in net.messages(Topic.VOTE):
                now = time.time_ns()
                tag = msg.data[:8].decode().strip()
                sent = int.from_bytes(msg.data[12:20], "big")
                received.setdefault(tag, []).append((now - sent) / 1e6)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(collect)
            while True:
                line = await trio.to_thread.run_sync(sys.stdin.readline)
                cmd = line.split()
                if not cmd or cmd[0] == "stop":
                    break
                if cmd[0] == "ready":
                    want = int(cmd[1])
                    await wait_until_async(
                        lambda want=want: len(net.peers()) >= want
                        and len(net.mesh_peers(Topic.VOTE)) >= want,
                        timeout=60, what=f"{want} peers in the vote mesh")
                    say(event="ready")
                elif cmd[0] == "publish":
                    tag, n, rate = cmd[1], int(cmd[2]), float(cmd[3])
                    start = time.perf_counter()
                    for seq in range(n):
                        if rate:
                            await trio.sleep_until(trio.current_time() + max(
                                0.0, start + seq / rate - time.perf_counter()))
                        payload = (tag.encode().ljust(8) + seq.to_bytes(4, "big")
                                   + time.time_ns().to_bytes(8, "big"))
                        await net.publish(Topic.VOTE, payload.ljust(VOTE_BYTES, b"\0"))
                    say(event="published", seconds=time.perf_counter() - start)
                elif cmd[0] == "report":  # report <tag> <expected> <max wait s>
                    tag, want = cmd[1], int(cmd[2])
                    try:  # what is still missing then counts as lost
                        await wait_until_async(lambda tag=tag, want=want:
                                               len(received.get(tag, [])) >= want,
                                               timeout=float(cmd[3]), what=f"{want} {tag}")
                    except WaitTimeout:
                        pass
                    say(event="latencies", tag=tag, values=received.get(tag, []),
                        stats=net.stats().__dict__)
                elif cmd[0] == "fetch":
                    hub, times = cmd[1], []
                    for _ in range(int(cmd[2])):
                        t0 = time.perf_counter()
                        data = await net.fetch_blob("blob", lambda d: d == BLOB, 2 << 20,
                                                    peers=[hub])
                        times.append((time.perf_counter() - t0) * 1e3)
                        assert len(data) == len(BLOB)
                    say(event="fetched", ms=times)
            nursery.cancel_scope.cancel()


# -- orchestration -------------------------------------------------------------------------


class Worker:
    def __init__(self, index: int, bootstrap: str | None) -> None:
        args = [sys.executable, __file__, "--worker", str(index)]
        if bootstrap:
            args += ["--bootstrap", bootstrap]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.up = self.expect("up")

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, event: str, timeout: float = 60.0) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"worker exited while waiting for {event!r}")
            if line.startswith("{"):
                msg = json.loads(line)
                if msg.get("event") == event:
                    return msg
        raise TimeoutError(event)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def gossip_round(workers: list[Worker], tag: str, n: int, rate: float) -> dict[str, Any]:
    publisher, hub, leaves = workers[1], workers[0], workers[2:]
    publisher.send(f"publish {tag} {n} {rate}")
    published = publisher.expect("published", timeout=120)
    one_hop, two_hops, lost, dropped = [], [], 0, 0
    for w, bucket in [(hub, one_hop), *[(leaf, two_hops) for leaf in leaves]]:
        w.send(f"report {tag} {n} 60")  # a message still missing after 60 s counts as lost
        report = w.expect("latencies", timeout=90)
        bucket.extend(report["values"])
        lost += n - len(report["values"])
        dropped += sum(report["stats"].values())
    all_hops = one_hop + two_hops
    return {
        "tag": tag, "messages": n, "rate_per_s": rate or "max",
        "publish_s": round(published["seconds"], 3), "lost": lost, "dropped": dropped,
        "p50_ms": round(pct(all_hops, 0.50), 2), "p99_ms": round(pct(all_hops, 0.99), 2),
        "one_hop_p50_ms": round(pct(one_hop, 0.5), 2),
        "two_hops_p50_ms": round(pct(two_hops, 0.5), 2),
        "two_hops_p99_ms": round(pct(two_hops, 0.99), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--rate", type=float, default=50.0, help="paced messages per second")
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--fetches", type=int, default=10)
    parser.add_argument("--quick", action="store_true",
                        help="100 paced messages, a burst of 100, 3 fetches (under a minute)")
    args = parser.parse_args()
    if args.quick:
        args.messages, args.burst, args.fetches = 100, 100, 3
    if args.worker is not None:
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
        trio.run(worker, args.worker, args.bootstrap)
        return

    hub = Worker(0, None)
    workers = [hub] + [Worker(i, hub.up["addr"]) for i in (1, 2, 3)]
    try:
        hub.send("ready 3")
        for w in workers[1:]:
            w.send("ready 1")
        for w in workers:
            w.expect("ready")
        rounds = [gossip_round(workers, "paced", args.messages, args.rate),
                  gossip_round(workers, "burst", args.burst, 0.0)]
        for r in rounds:
            print(json.dumps(r))
        workers[2].send(f"fetch {hub.up['peer']} {args.fetches}")
        ms = workers[2].expect("fetched", timeout=120)["ms"]
        print(json.dumps({"blob_1mib_ms_median": round(statistics.median(ms), 1),
                          "min": round(min(ms), 1), "max": round(max(ms), 1)}))
        for r in rounds:
            print(f"RESULT gossip_{r['tag']}_p50_ms {r['p50_ms']}")
            print(f"RESULT gossip_{r['tag']}_p99_ms {r['p99_ms']}")
        print(f"RESULT gossip_lost {sum(r['lost'] for r in rounds)}")
        print(f"RESULT blob_1mib_ms {statistics.median(ms):.1f}")
    finally:
        for w in reversed(workers):  # leaves first: no re-dial of a stopped hub
            try:
                w.send("stop")
            except (BrokenPipeError, OSError):
                pass
        for w in workers:
            try:
                w.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                w.proc.kill()  # only our own child, by its handle
                w.proc.wait()


if __name__ == "__main__":
    main()
