"""The chaos testnet: real node processes under Byzantine peers and kill storms, and a checker
that reads every node's store afterwards (`bench/chaos.py` runs it).

    report = ChaosRun(ChaosConfig(root=Path("/tmp/chaos"), seed=1, duration_s=600)).run()
    assert not report.problems, report.problems

What runs, all on 127.0.0.1:
- `nodes` validators of equal stake (default 7) started by the node launcher; `byzantine`
  of them (at most a third of the weight less one node: 2 of 7) run the Byzantine mode
  (`wekacoin.testing.byzantine`: equivocating votes or proposals, false rankings, withheld
  proposals and blocks, flooded and replayed gossip);
- a transfer load: payer wallets send transfers through random honest nodes that are up;
  a client records every id a node accepted, and which of them it later saw FINAL;
- a whole competition (the demo's: breast-cancer, three trainers), driven through node 0;
- a seeded schedule of process faults on the other nodes, Byzantine ones included: SIGKILL
  and a restart a few seconds later, SIGSTOP and SIGCONT; at most `max_faulty` honest nodes
  are down at once, so that the honest weight up stays above two thirds and the network
  can decide whenever no fault is pending.

Node 0 is never faulted: the competition's clients talk to it.

With `partitions` (root only: `wekacoin.testing.netns`), every node runs in its own network
namespace and some faults are network partitions instead: one node isolated, a minority cut
off from the majority, a split where neither side keeps two thirds of the weight (the whole
chain must stall, then resume), or a flapping link (cut and restored a few times a second
apart). Node 0 always stays on the runner's side. With `latency_ms` as well, the nodes'
links reach only the runner, where a relay per ordered pair of nodes delays every chunk by
that link's latency plus jitter and models loss as TCP retransmissions
(`wekacoin.testing.links`; this machine's kernel has no netem qdisc to do it instead).

The checker, after every process stopped and every store was opened again:
- no height holds two different FINAL blocks across the nodes;
- the honest nodes end on the same block, hence the same state root;
- every transaction the client saw FINAL is in the block it was seen in, in every honest
  store that reached that height;
- every store opens;
- liveness: after each heal (a restart or a resume), the healed node holds a FINAL block
  above the network's height at the heal within `heal_bound_s` (reported as seconds);
- the competition settled (won or baseline kept), with no Byzantine evaluator among the
  genuine ones.
"""

from __future__ import annotations

import dataclasses
import heapq
import logging
import random
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wekacoin.chain.transactions import sign_tx
from wekacoin.client.chainclient import ChainClient
from wekacoin.consensus.messages import Certificate
from wekacoin.crypto.keys import KeyPair, format_address, parse_address
from wekacoin.errors import WekaError
from wekacoin.evaluation.sandbox import ForkServerSandbox
from wekacoin.keyfile import load_keystore
from wekacoin.node import testnet as tn
from wekacoin.node.chain import FINALITY_LOOKAHEAD
from wekacoin.node.launcher import NodeProcess, start_all, stop_all
from wekacoin.rpc.client import NodeUnreachable, RpcCallError, RpcClient
from wekacoin.store import ChainStore
from wekacoin.testing.byzantine import BEHAVIOURS
from wekacoin.testing.links import LinkSpec, Relays
from wekacoin.testing.netns import NetLab
from wekacoin.types.codec import DecodeError, decode, encode
from wekacoin.types.genesis import Genesis
from wekacoin.types.tx import Transfer
from wekacoin.waiting import WaitTimeout, wait_until

log = logging.getLogger("wekacoin.chaos")

PAYERS = 4
CHAOS_PARAMS = dataclasses.replace(
    tn.LOCAL_PARAMS, min_training_period=30, training_reveal_window=20, test_reveal_window=30,
    upload_window=30, evaluation_window=20, lambda_priority_ms=1_500, lambda_stepvar_ms=500,
)
"""The local testnet's parameters with task windows of tens of blocks: a reveal sent while
half the proposers are being killed must still land in its window (the chain refuses a late
one, as it must). The proposal wait is 2 s: with tau_proposer 26 every one of 7 validators
proposes every round, and on 2 busy cores a block of ~100 transfers took longer than the local
testnet's 0.5 s to reach the others, so each voted its own block, Reduction split, and the
round ended on the empty block; the growing backlog made the next proposals slower still (the
chaos run that found it stayed on empty TENTATIVE blocks for 20 rounds after the storm)."""


@dataclass
class ChaosConfig:
    root: Path
    seed: int = 0
    nodes: int = 7
    byzantine: tuple[str, ...] = ("equivocate-votes", "false-rankings")
    """Behaviours of the Byzantine validators (one node each; nodes 1, 2, ... by seed)."""
    duration_s: float = 600.0
    """How long faults are injected (the load and the competition run meanwhile)."""
    fault_gap_s: tuple[float, float] = (4.0, 9.0)
    kill_share: float = 0.8
    """Of the faults, the share that are SIGKILLs (the rest SIGSTOPs)."""
    down_s: tuple[float, float] = (1.0, 5.0)
    max_faulty: int = 1
    """Honest nodes down (killed or paused) at once, at most. A quorum needs about 69 % of
    the expected committee: with 2 of 7 validators Byzantine, two honest nodes down would
    stall the chain until one comes back; one down leaves it able to decide."""
    partitions: bool = False
    """Also partition the network (each node in its own network namespace; needs root)."""
    partition_share: float = 0.25
    """Of the faults when `partitions`, the share that are partitions."""
    partition_s: tuple[float, float] = (3.0, 10.0)
    latency_ms: tuple[int, int] | None = None
    """Per-link one-way latency range (needs `partitions`: the relays live in the runner's
    namespace); None: the links are as fast as the kernel's."""
    jitter_ms: int = 20
    loss: float = 0.0
    transfer_interval_s: float = 0.5
    competition: bool = True
    heal_bound_s: float = 60.0
    settle_timeout_s: float = 900.0


@dataclass
class ChaosReport:
    kills: int = 0
    pauses: int = 0
    partitions: int = 0
    accepted_txs: int = 0
    final_txs: int = 0
    lost_final_txs: int = 0
    conflicting_final: int = 0
    heal_to_final_s: list[float] = field(default_factory=list)
    heals_without_final: int = 0
    tasks_settled: int = 0
    stores_opened: int = 0
    final_height: int = 0
    problems: list[str] = field(default_factory=list)

    def p95_heal_s(self) -> float:
        times = sorted(self.heal_to_final_s)
        if not times:
            return float("nan")
        return times[min(len(times) - 1, (95 * len(times) + 99) // 100 - 1)]


class ChaosRun:
    def __init__(self, config: ChaosConfig) -> None:
        if config.nodes < 4 or 3 * len(config.byzantine) >= config.nodes:
            raise ValueError("Byzantine validators must weigh less than a third of the stake")
        unknown = set(config.byzantine) - set(BEHAVIOURS)
        if unknown:
            raise ValueError(f"unknown behaviours {sorted(unknown)}: one of {BEHAVIOURS}")
        self.config = config
        # One generator per thread, each from the seed: the storm's draws (the victims, the
        # partitions) must not depend on how the load and the watcher threads interleave.
        self.rng = random.Random(config.seed)
        self._load_rng = random.Random(f"{config.seed}/load")
        self._watch_rng = random.Random(f"{config.seed}/watch")
        self.report = ChaosReport()
        self.root = Path(config.root)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._down: set[int] = set()
        self._accepted: dict[str, float] = {}
        self._final: dict[str, tuple[int, str]] = {}
        """tx id -> (height, block hash) of the block the client saw FINAL holding it."""
        self.byzantine: dict[int, str] = {}
        self._heal_timers: list[threading.Thread] = []
        self.processes: list[NodeProcess] = []
        self.genesis: Genesis | None = None
        if config.latency_ms is not None and not config.partitions:
            raise ValueError("latency needs the network namespaces of `partitions`")
        self.lab: NetLab | None = NetLab(
            config.nodes, isolated=config.latency_ms is not None) if config.partitions else None
        self.relays: Relays | None = None

    # -- the run --

    def run(self) -> ChaosReport:
        c = self.config
        wallets = ("supplier", "trainer1", "trainer2", "trainer3",
                   *(f"payer{i}" for i in range(PAYERS)))
        lab = self.lab
        layout = self._layout()
        params = CHAOS_PARAMS
        if c.latency_ms is not None:  # the proposal wait must also cover two slow hops
            params = dataclasses.replace(params, lambda_priority_ms=max(
                params.lambda_priority_ms, 2 * c.latency_ms[1] + c.jitter_ms + 300))
        self.genesis = tn.generate(self.root, c.nodes, wallets=wallets, params=params,
                                   layout=layout)
        homes = tn.node_homes(self.root)
        order = list(range(1, c.nodes))
        self.rng.shuffle(order)
        self.byzantine = dict(zip(order, c.byzantine, strict=False))
        self.processes = [
            NodeProcess(home, module=(
                ["wekacoin.testing.byzantine", "--behaviour", self.byzantine[i],
                 "--seed", str(c.seed)] if i in self.byzantine else ()),
                prefix=lab.command(i) if lab else ())
            for i, home in enumerate(homes)
        ]
        try:
            if lab is not None:
                lab.create()
            if self.relays is not None:
                self.relays.start()
            start_all(self.processes, wait=False)
            tn.wait_until_producing(self.processes, timeout=120)
            self._run_threads()
            self._final_agreement()
        finally:
            stop_all(self.processes)
            if self.relays is not None:
                self.relays.close()
            if lab is not None:
                lab.close()
        self._check_stores()
        return self.report

    def _layout(self) -> tn.Layout | None:
        """Where the nodes listen: 127.0.0.1, a namespace each, or that and relays."""
        c, lab = self.config, self.lab
        if lab is None:
            return None
        hosts = [lab.host(i) for i in range(c.nodes)]
        layout = tn.Layout.on_hosts(hosts)
        if c.latency_ms is None:
            return layout
        spec = LinkSpec(c.latency_ms, c.jitter_ms, c.loss)
        self.relays = Relays(hosts, layout.ports[0].p2p, lab.runner_host,
                             tn.free_ports(1)[0], spec, seed=c.seed)
        relays = self.relays
        dial = {(j, i): f"/ip4/{lab.runner_host}/tcp/{relays.port(j, i)}"
                for (j, i) in relays.latency_ms}
        return dataclasses.replace(layout, dial=dial)

    def _run_threads(self) -> None:
        threads = [threading.Thread(target=self._guard(self._load), name="load"),
                   threading.Thread(target=self._guard(self._watch_finality), name="finality")]
        competition: dict[str, Any] = {}
        if self.config.competition:
            threads.append(threading.Thread(
                target=self._guard(lambda: competition.update(self._competition())),
                name="competition"))
        for t in threads:
            t.start()
        try:
            self._faults()
            for timer in self._heal_timers:  # each bounded by heal_bound_s
                timer.join()
            if self.config.competition:
                threads[-1].join(self.config.settle_timeout_s)
        finally:
            self._stop.set()
            for t in threads:
                t.join(60)
        if self.config.competition:
            self._check_competition(competition)

    def _guard(self, fn: Any) -> Any:
        def run() -> None:
            try:
                fn()
            except Exception as e:  # noqa: BLE001 - reported as a problem of the run
                log.exception("%s failed", threading.current_thread().name)
                self.report.problems.append(f"{threading.current_thread().name}: {e!r}")
        return run

    # -- faults --

    def _faults(self) -> None:
        """Kill or pause a random node (never node 0), heal it a few seconds later."""
        c = self.config
        end = time.monotonic() + c.duration_s
        heals: list[tuple[float, int, str]] = []
        next_fault = time.monotonic() + self.rng.uniform(*c.fault_gap_s)
        while time.monotonic() < end or heals:
            now = time.monotonic()
            if heals and heals[0][0] <= now:
                _, i, how = heapq.heappop(heals)
                self._heal(i, how)
                continue
            if now >= next_fault and now < end:
                next_fault = now + self.rng.uniform(*c.fault_gap_s)
                if self.lab is not None and not heals \
                        and self.rng.random() < c.partition_share:
                    side = self._partition()
                    heapq.heappush(heals, (time.monotonic() + self.rng.uniform(*c.partition_s),
                                           -1, "partition"))
                    log.info("partition: %s cut off", sorted(side))
                    continue
                victim = self._pick_victim()
                if victim is not None:
                    how = "kill" if self.rng.random() < c.kill_share else "pause"
                    self._fault(victim, how)
                    heapq.heappush(heals, (now + self.rng.uniform(*c.down_s), victim, how))
                continue
            wake = min([next_fault] + [h[0] for h in heals[:1]])
            time.sleep(max(0.01, min(0.5, wake - now)))

    def _pick_victim(self) -> int | None:
        with self._lock:
            honest_down = len([i for i in self._down if i not in self.byzantine])
            choices = [i for i in range(1, self.config.nodes) if i not in self._down
                       and (i in self.byzantine or honest_down < self.config.max_faulty)]
        return self.rng.choice(choices) if choices else None

    def _fault(self, i: int, how: str) -> None:
        process = self.processes[i]
        with self._lock:
            self._down.add(i)
        if how == "kill":
            process.kill()
            self.report.kills += 1
        else:
            process.pause()
            self.report.pauses += 1
        log.info("%s %s", how, process.name)

    def _partition(self) -> frozenset[int]:
        """Cut a seeded choice of nodes off (never node 0); returns them. Runs only while
        no other fault is pending."""
        assert self.lab is not None
        n = self.config.nodes
        others = list(range(1, n))
        kind = self.rng.choice(("isolate", "minority", "split", "flap"))
        if kind == "split":  # neither side keeps two thirds of the weight
            size = max(1, n - (2 * n) // 3)
        elif kind == "minority":
            size = self.rng.randint(1, max(1, (n - 1) // 3))
        else:
            size = 1
        side = frozenset(self.rng.sample(others, size))
        if kind == "flap":
            for _ in range(3):
                self.lab.split(side)
                time.sleep(self.rng.uniform(0.5, 1.5))
                self.lab.heal()
                time.sleep(self.rng.uniform(0.5, 1.5))
        with self._lock:
            self._down |= side
        self.lab.split(side)
        self.report.partitions += 1
        return side

    def _heal_partition(self) -> None:
        assert self.lab is not None
        side = self.lab.side_b
        height = self._network_height()
        self.lab.heal()
        healed_at = time.monotonic()
        with self._lock:
            self._down -= side
        log.info("partition healed: %s back", sorted(side))
        for i in sorted({0, *side} - set(self.byzantine)):
            self._start_timer(self.processes[i], height, healed_at)

    def _start_timer(self, process: NodeProcess, height: int, healed_at: float) -> None:
        timer = threading.Thread(target=self._time_heal, args=(process, height, healed_at),
                                 daemon=True)
        timer.start()
        self._heal_timers.append(timer)

    def _heal(self, i: int, how: str) -> None:
        if how == "partition":
            self._heal_partition()
            return
        process = self.processes[i]
        height = self._network_height()
        if how == "kill":
            process.start(wait=False)
        else:
            process.resume()
        healed_at = time.monotonic()
        with self._lock:
            self._down.discard(i)
        if i not in self.byzantine:
            self._start_timer(process, height, healed_at)

    def _time_heal(self, process: NodeProcess, height: int, healed_at: float) -> None:
        """Seconds until the healed node holds a FINAL block above `height`."""
        def final_above() -> bool:
            with RpcClient(process.rpc_url, timeout=2) as rpc:
                head = rpc.call("node.status")["height"]
                return head > height and bool(
                    rpc.call("chain.block", height=head, full=False).get("final"))

        try:
            wait_until(final_above, timeout=self.config.heal_bound_s, interval=0.5,
                       retry_on=(NodeUnreachable, RpcCallError, OSError),
                       what=f"a FINAL block above {height} on {process.name}")
        except WaitTimeout:
            with self._lock:
                self.report.heals_without_final += 1
            return
        with self._lock:
            self.report.heal_to_final_s.append(time.monotonic() - healed_at)

    # -- clients --

    def _honest_up(self) -> list[NodeProcess]:
        with self._lock:
            return [p for i, p in enumerate(self.processes)
                    if i not in self.byzantine and i not in self._down]

    def _network_height(self) -> int:
        heights = []
        for p in self._honest_up():
            try:
                with RpcClient(p.rpc_url, timeout=2) as rpc:
                    heights.append(rpc.call("node.status")["height"])
            except (NodeUnreachable, RpcCallError, OSError):
                continue
        return max(heights, default=0)

    def _load(self) -> None:
        assert self.genesis is not None
        payers = [load_keystore(self.root / "wallets" / f"payer{i}.key", tn.PASSWORD)
                  for i in range(PAYERS)]
        to = parse_address(_testnet(self.root)["wallets"]["supplier"])
        while not self._stop.is_set():
            time.sleep(self.config.transfer_interval_s)
            nodes = self._honest_up()
            if not nodes:
                continue
            node = self._load_rng.choice(nodes)
            payer = self._load_rng.choice(payers)
            try:
                with RpcClient(node.rpc_url, token=node.token, timeout=5) as rpc:
                    account = rpc.call("chain.account", address=format_address(payer.address))
                    tx = sign_tx(payer, self.genesis.hash, account["next_nonce"], 10,
                                 Transfer(to, self._load_rng.randint(1, 1000)))
                    tx_id = rpc.call("tx.submit", tx=encode(tx).hex())["id"]
            except (NodeUnreachable, RpcCallError, OSError):
                continue
            with self._lock:
                self._accepted[tx_id] = time.monotonic()
                self.report.accepted_txs += 1

    def _watch_finality(self) -> None:
        """Walk an honest node's chain block by block while its blocks are FINAL, and record
        each accepted transaction in them (one call per block, not two per transaction: the
        runner shares the cores with the nodes)."""
        next_height = 1
        while not self._stop.is_set():
            time.sleep(1.0)
            nodes = self._honest_up()
            if not nodes:
                continue
            node = self._watch_rng.choice(nodes)
            try:
                with RpcClient(node.rpc_url, timeout=5) as rpc:
                    tip = rpc.call("node.status")["height"]
                    while next_height <= tip and not self._stop.is_set():
                        block = rpc.call("chain.block", height=next_height, full=True)
                        if not block.get("final"):
                            break
                        with self._lock:
                            for tx in block["txs"]:
                                if tx["id"] in self._accepted:
                                    self._final[tx["id"]] = (next_height, block["hash"])
                        next_height += 1
            except (NodeUnreachable, RpcCallError, OSError):
                continue

    def _competition(self) -> dict[str, Any]:
        from wekacoin.client.demo import run_competition

        def say(line: str) -> None:
            log.info("competition: %s", line)

        node, c = self.processes[0], self.config
        with ExitStack() as stack:
            sandbox = stack.enter_context(ForkServerSandbox())

            def client(name: str) -> ChainClient:
                rpc = stack.enter_context(RpcClient(node.rpc_url, token=node.token))
                key = load_keystore(self.root / "wallets" / f"{name}.key", tn.PASSWORD)
                return ChainClient(rpc, key, on_wait=say, tx_timeout_s=c.settle_timeout_s)

            supplier = client("supplier")
            trainers = [client(f"trainer{i}") for i in (1, 2, 3)]
            task_id = run_competition(supplier, trainers, self.root / "work", sandbox, say)
            task = supplier.wait_for_phase(task_id, ("settled", "expired"),
                                           timeout_s=self.config.settle_timeout_s)
            return {"task": task}

    def _check_competition(self, result: dict[str, Any]) -> None:
        task = result.get("task")
        if task is None:
            self.report.problems.append("the competition did not finish")
            return
        settlement = task.get("settlement") or {}
        if settlement.get("resolution") not in ("won", "baseline_kept"):
            self.report.problems.append(f"the competition ended {settlement.get('resolution')}")
            return
        self.report.tasks_settled += 1
        liars = {_validator_key(self.root, i) for i, b in self.byzantine.items()
                 if b == "false-rankings"}
        genuine = {e["evaluator"] for e in settlement.get("evaluators", [])}
        if liars & genuine:
            self.report.problems.append("a Byzantine evaluator's false ranking counted as genuine")

    # -- the end --

    def _final_agreement(self) -> None:
        """Every fault healed: the honest nodes reach one FINAL block at a common height, at
        or above every block the client saw a transaction FINAL in."""
        honest = [p for i, p in enumerate(self.processes) if i not in self.byzantine]
        with self._lock:
            target = max((h for h, _ in self._final.values()), default=0)

        def agreed() -> int | None:
            tips = []
            for p in honest:
                with RpcClient(p.rpc_url, timeout=5) as rpc:
                    tips.append(rpc.call("node.status")["height"])
            common = min(tips)
            if common < target:
                return None  # a node restarted late is still catching up
            hashes = set()
            for p in honest:
                with RpcClient(p.rpc_url, timeout=5) as rpc:
                    block = rpc.call("chain.block", height=common, full=False)
                    hashes.add((block["hash"], block.get("final")))
            return common if len(hashes) == 1 and next(iter(hashes))[1] else None

        try:
            self.report.final_height = wait_until(
                agreed, timeout=self.config.heal_bound_s * 2, interval=1.0,
                retry_on=(NodeUnreachable, RpcCallError, OSError),
                what="the honest nodes to hold one FINAL block at a common height")
        except WaitTimeout as e:
            self.report.problems.append(str(e))

    def _check_stores(self) -> None:
        """Open every store; compare FINAL blocks; look for every transaction seen FINAL."""
        assert self.genesis is not None
        final_at: dict[int, set[bytes]] = {}
        chains: dict[int, ChainStore] = {}
        with ExitStack() as stack:
            for i, p in enumerate(self.processes):
                try:
                    store = stack.enter_context(ChainStore.open(p.home / "data" / "chain",
                                                                self.genesis))
                except WekaError as e:
                    self.report.problems.append(f"{p.name}: the store does not open: {e}")
                    continue
                self.report.stores_opened += 1
                chains[i] = store
                for height, block_hash in _final_blocks(store):
                    final_at.setdefault(height, set()).add(block_hash)
            self.report.conflicting_final = sum(len(h) - 1 for h in final_at.values())
            honest = [s for i, s in chains.items() if i not in self.byzantine]
            for tx_id, (height, seen_in) in sorted(self._final.items()):
                # A store that stopped below the block is behind, not lossy; every store
                # at or above it must hold that very block and the transaction in it.
                for store in (s for s in honest if s.height >= height):
                    stored = store.get_tx(bytes.fromhex(tx_id))
                    if (store.get_block_hash(height) != bytes.fromhex(seen_in) or stored is None
                            or stored.location.block_hash.hex() != seen_in):
                        self.report.lost_final_txs += 1
                        break
        self.report.final_txs = len(self._final)
        if self.report.conflicting_final:
            self.report.problems.append(f"{self.report.conflicting_final} conflicting FINAL blocks")
        if self.report.lost_final_txs:
            self.report.problems.append(f"{self.report.lost_final_txs} FINAL transactions lost")


def _final_blocks(store: ChainStore) -> list[tuple[int, bytes]]:
    """(height, hash) of every block of the store that is FINAL (its certificate, or a later
    one's within FINALITY_LOOKAHEAD)."""
    out = []
    final_from = None  # the lowest height seen so far (walking down) with a FINAL certificate
    for height in range(store.height, 0, -1):
        raw = store.get_certificate(height)
        try:
            if raw and decode(Certificate, raw).final:
                final_from = height
        except DecodeError:
            pass
        if final_from is not None and final_from - height <= FINALITY_LOOKAHEAD:
            block_hash = store.get_block_hash(height)
            if block_hash is not None:
                out.append((height, block_hash))
    return out


def _testnet(root: Path) -> dict[str, Any]:
    import json

    data: dict[str, Any] = json.loads((root / "testnet.json").read_text())
    return data


def _validator_key(root: Path, i: int) -> str:
    key: KeyPair = load_keystore(root / f"node{i}" / "validator.key", tn.PASSWORD)
    return key.public_key.hex()

