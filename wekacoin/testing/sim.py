"""A seeded, deterministic simulation of a WekaCoin network.

N in-process nodes each run the node's own driver core (`consensus.driver`: the BA* player,
block assembly from the real mempool, persistence before sending, evaluation, sync with the
node's fork choice) with real crypto (ECVRF, Ed25519), the real chain rules and the real
genesis, on a simulated clock, an in-memory ledger (`sim_ledger`) and a simulated network
(`sim_net`): delays, loss, duplicates, reordering, partitions that heal, crashes with
restarts from what the node persisted, and Byzantine behaviours (`sim_byzantine`). Users
(validator keys with stake) are spread over the nodes, several per node if there are more
users than nodes, as go-algorand hosts several accounts per node.

One seed reproduces a run exactly: every random choice comes from `random.Random(seed)` and
events at the same millisecond run in the order they were scheduled. Vote and proposal
verification goes through one `Verifier` shared by all nodes, so each distinct message is
verified once however many nodes receive it (what each node would compute is the same).

    result = Simulation(SimConfig(seed=7, nodes=7)).run()
    assert result.conflicting_final == 0, result.describe()
"""

from __future__ import annotations

import hashlib
import heapq
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wekacoin.chain.state import State
from wekacoin.consensus.actions import Commit, Refuse
from wekacoin.consensus.driver import DriverCore, Message
from wekacoin.consensus.events import (
    BlockReceived,
    EvaluationFinished,
    Event,
    ProposalReceived,
    RankingReceived,
    VoteReceived,
)
from wekacoin.consensus.messages import UnverifiedProposal, UnverifiedVote
from wekacoin.consensus.player import Player
from wekacoin.consensus.verify import RoundContext, Verifier
from wekacoin.crypto.keys import KeyPair
from wekacoin.testing.sim_byzantine import Behaviour
from wekacoin.testing.sim_ledger import MemoryLedger
from wekacoin.testing.sim_net import NetworkModel
from wekacoin.testing.sim_sync import prefers_chain, sync_from
from wekacoin.types.genesis import Genesis, GenesisAccount, GenesisStake, Params
from wekacoin.types.primitives import Hash, TaskId
from wekacoin.types.tx import Tx

if TYPE_CHECKING:
    from wekacoin.testing.sim_tasks import Competition

SIM_PARAMS = Params(
    # The paper's committees; timeouts scaled from (5, 5, 60, 20) s to fit a simulated LAN.
    lambda_priority_ms=150, lambda_stepvar_ms=150, lambda_block_ms=1_500, lambda_step_ms=500,
    max_steps=30, tau_evaluators=100,
    # A short task lifecycle for competitions run through the simulated chain.
    min_training_period=6, test_split_delay=1, training_reveal_window=4, test_reveal_window=6,
    upload_window=6, evaluation_window=2, stake_lookback=3, min_groups=5, settlement_reward=1_000,
    min_participation_fee=10,
)


@dataclass(frozen=True, slots=True)
class Crash:
    node: int
    at_ms: int
    restart_ms: int | None = None


@dataclass
class SimConfig:
    seed: int
    nodes: int = 7
    users: int = 0
    """Validator keys with equal stake, spread round-robin over the nodes; 0: one per node."""
    stake: int = 1_000_000
    params: Params = SIM_PARAMS
    network: NetworkModel = field(default_factory=NetworkModel)
    crashes: tuple[Crash, ...] = ()
    behaviours: dict[int, Behaviour] = field(default_factory=dict)
    """Node index -> behaviour; the others are honest."""
    target_height: int = 5
    """Stop once every honest node that is up has committed this many blocks..."""
    max_time_ms: int = 300_000
    """...or at this simulated time."""
    progress_after_ms: int = 0
    """Also wait until every honest node that is up commits a block at or after this time
    (set it to the heal of a partition to measure liveness after it)."""
    competition: Competition | None = None
    """A competition to run through the chain, or None."""
    observer: bool = False
    """Make node 0 an observer to measure what one node pays: it hosts one user (the others
    are spread over the other nodes), verifies with a `Verifier` of its own rather than the
    one the rest share, and the CPU time of its driver core is measured apart
    (`SimResult.observer_cpu_seconds`)."""


class SimNode:
    """A simulated node: its keys, its ledger (which survives crashes, as a disk does) and,
    while up, the production driver core with a player."""

    def __init__(self, index: int, keys: list[KeyPair], behaviour: Behaviour,
                 ledger: MemoryLedger) -> None:
        self.index = index
        self.keys = keys
        self._by_pk = {k.public_key: k for k in keys}
        self.behaviour = behaviour
        self.ledger = ledger
        self.core: DriverCore | None = None
        self.up = False
        self.epoch = 0
        self.scheduled_deadline: int | None = None
        self.outbox: list[Message] = []
        self.final_upto = 0
        self.last_commit_at = -1

    def key(self, public_key: bytes) -> KeyPair:
        return self._by_pk[public_key]

    @property
    def height(self) -> int:
        return self.ledger.height

    @property
    def state(self) -> State:
        return self.ledger.state


class SimPorts:
    """The gossip and work ports of one node's driver core, on the simulation."""

    def __init__(self, sim: Simulation, node: SimNode) -> None:
        self.sim = sim
        self.node = node

    def publish(self, message: Message) -> None:
        self.node.outbox.append(message)  # leaves as one bundle after the event (`Simulation.feed`)

    def evaluate(self, state: State, task_id: TaskId) -> None:
        self.sim.evaluate(self.node, state, task_id)

    def fetch_block(self, height: int, block_hash: Hash) -> None:
        self.sim.fetch(self.node, block_hash)

    def sync(self) -> None:
        self.sim.request_sync(self.node)

    def refused(self, action: Refuse) -> None:
        pass  # the simulated network scores no peers


@dataclass
class SimResult:
    seed: int
    heights: list[int]
    conflicting_final: int
    final_heights: list[int]
    steps: list[int]
    """BA* steps of every round every honest node decided (Commit.steps)."""
    commits: list[tuple[int, int, int, bool, int]]
    """(time, node, height, final, steps) of every commit, in order; steps 0: by sync."""
    time_ms: int
    cpu_seconds: float
    verifications: dict[str, int]
    settled: list[int] = field(default_factory=list)
    honest_equivocations: int = 0
    """Two different values signed by an honest node for one (voter, round, period, step)."""
    honest_nodes: list[int] = field(default_factory=list)
    observer_cpu_seconds: float = 0.0
    """With `SimConfig.observer`: CPU time of node 0's driver core (its own sortition,
    signing, the verifications it asked for, counting, blocks)."""
    observer_verifications: dict[str, int] = field(default_factory=dict)

    def first_commits_after(self, t: int) -> dict[int, int]:
        """Honest node -> time of its first commit at or after `t` (nodes that never did are
        missing)."""
        first: dict[int, int] = {}
        for at, node, _, _, _ in self.commits:
            if at >= t and node in self.honest_nodes:
                first.setdefault(node, at)
        return first

    def describe(self) -> str:
        return (f"seed={self.seed} heights={self.heights} final={self.final_heights} "
                f"conflicts={self.conflicting_final} t={self.time_ms}ms")


class Simulation:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.now = 0
        self._queue: list[tuple[int, int, int, int, str, Any]] = []
        """(time, sequence, node, node's epoch, kind, payload), in time then sending order."""
        self._seq = 0
        self.verifier = Verifier()
        self.observer_verifier = Verifier() if config.observer else self.verifier
        self.observer_cpu = 0.0
        users = config.users or config.nodes
        keys = [_user_key(config.seed, i) for i in range(users)]
        extra = config.competition.accounts() if config.competition else []
        self.genesis = Genesis(
            chain_id="wekacoin-sim", time_ms=0,
            accounts=tuple(GenesisAccount(k.address, 10**12) for k in extra),
            stakes=tuple(GenesisStake(k.address, config.stake, k.public_key) for k in keys),
            params=config.params,
        )
        self.nodes: list[SimNode] = []
        for i in range(config.nodes):
            ledger = MemoryLedger(self.genesis, self._commit_listener(i))
            behaviour = config.behaviours.get(i, Behaviour())
            self.nodes.append(SimNode(i, _hosted(keys, i, config), behaviour, ledger))
        self.final_at: dict[int, bytes] = {}
        self.conflicting_final = 0
        self.commits: list[tuple[int, int, int, bool, int]] = []
        self.settled: list[int] = []
        self._signed: dict[tuple, bytes] = {}
        self.honest_equivocations = 0

    # -- the event queue --

    def schedule(self, at: int, node: SimNode, kind: str, payload: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (at, self._seq, node.index, node.epoch, kind, payload))

    def run(self) -> SimResult:
        cpu = time.process_time()
        for node in self.nodes:
            self._boot(node)
        for crash in self.config.crashes:
            node = self.nodes[crash.node]
            self.schedule(crash.at_ms, node, "crash")
            if crash.restart_ms is not None:
                self.schedule(crash.restart_ms, node, "restart")
        while self._queue and not self._done():
            at, _, index, epoch, kind, payload = heapq.heappop(self._queue)
            if at > self.config.max_time_ms:
                break
            self.now = at
            node = self.nodes[index]
            if kind == "restart":
                node.epoch += 1
                self._boot(node)
            elif kind == "crash":
                self.crash(node)
            elif epoch == node.epoch and node.up:
                self._dispatch(node, kind, payload)
        honest = [n for n in self.nodes if not n.behaviour.byzantine]
        return SimResult(
            seed=self.config.seed, heights=[n.height for n in self.nodes],
            conflicting_final=self.conflicting_final,
            final_heights=[n.final_upto for n in self.nodes],
            steps=[s for _, i, _, _, s in self.commits if s and i in {n.index for n in honest}],
            commits=self.commits, time_ms=self.now, cpu_seconds=time.process_time() - cpu,
            verifications=dict(self.verifier.counts), settled=self.settled,
            honest_equivocations=self.honest_equivocations,
            honest_nodes=[n.index for n in honest if n.up],
            observer_cpu_seconds=self.observer_cpu,
            observer_verifications=dict(self.observer_verifier.counts),
        )

    def _done(self) -> bool:
        c = self.config
        return all(
            n.height >= c.target_height and n.last_commit_at >= c.progress_after_ms
            for n in self.nodes if n.up and not n.behaviour.byzantine
        ) and not any(x.restart_ms is not None and x.restart_ms > self.now for x in c.crashes)

    def crash(self, node: SimNode) -> None:
        """The process dies: what it had not persisted (the player, the mempool, messages
        not sent yet) is gone; its ledger stays (the disk)."""
        node.up = False
        node.epoch += 1
        node.core = None
        node.outbox.clear()
        node.scheduled_deadline = None

    def _boot(self, node: SimNode) -> None:
        node.up = True
        node.ledger.restart()
        ports = SimPorts(self, node)
        verifier = self.observer_verifier if node.index == 0 else self.verifier
        node.core = DriverCore(Player(node.keys, verifier), node.ledger, ports, ports,
                               lambda: self.now)
        self._drive(node, node.core.start)

    def _dispatch(self, node: SimNode, kind: str, payload: Any) -> None:
        core = node.core
        assert core is not None, "a node that is up runs a driver core"
        if kind == "deadline":
            if core.deadline == payload:
                node.scheduled_deadline = None
                self._drive(node, core.deadline_reached)
        elif kind == "messages":
            for m in payload:
                self.feed(node, _received(m, self.now))
        elif kind == "event":
            self.feed(node, payload(self.now))
        elif kind == "tx":
            node.ledger.admit(payload, self.now)
        elif kind == "sync":
            if sync_from(self, node, payload):
                node.last_commit_at = self.now
                final = node.final_upto == node.height
                self.commits.append((self.now, node.index, node.height, final, 0))
                self._drive(node, core.ledger_advanced)

    # -- feeding a node's driver core --

    def feed(self, node: SimNode, event: Event) -> None:
        core = node.core
        assert core is not None, "only a node that is up is fed events"
        self._drive(node, lambda: core.submit(event))

    def _drive(self, node: SimNode, step: Callable[[], object]) -> None:
        """Run one input through the node's core, then send what it said, as one bundle,
        and arm its timer."""
        if node.index == 0 and self.config.observer:
            start = time.process_time()
            step()
            self.observer_cpu += time.process_time() - start
        else:
            step()
        if node.outbox:
            outgoing, node.outbox = node.outbox, []
            if not node.behaviour.byzantine:
                self._check_honest(outgoing)
            node.behaviour.send(self, node, outgoing)
        at = node.core.deadline if node.core is not None else None
        if at is not None and at != node.scheduled_deadline:
            node.scheduled_deadline = at
            self.schedule(at, node, "deadline", at)

    def _check_honest(self, messages: list[Message]) -> None:
        for m in messages:
            if isinstance(m, UnverifiedVote):
                b = m.body
                key = (b.voter, b.round, b.prev_hash, b.period, b.step)
                if self._signed.setdefault(key, b.value) != b.value:
                    self.honest_equivocations += 1

    def broadcast(
        self, node: SimNode, messages: list[Message], only: list[int] | None = None
    ) -> None:
        """Send a bundle of messages from `node` to every other node (or to `only`)."""
        if not messages:
            return
        network = self.config.network
        for peer in self.nodes:
            if peer is node or (only is not None and peer.index not in only):
                continue
            for at in network.delivery_times(self.rng, node.index, peer.index, self.now):
                self.schedule(at, peer, "messages", messages)

    def submit_tx(self, node: SimNode, tx: Tx) -> bool:
        """A client sends a transaction to `node`; if its mempool takes it, gossip relays it
        to the others (each admits it if its own mempool takes it). False if refused."""
        if not node.ledger.admit(tx, self.now):
            return False
        network = self.config.network
        for peer in self.nodes:
            if peer is not node:
                for at in network.delivery_times(self.rng, node.index, peer.index, self.now):
                    self.schedule(at, peer, "tx", tx)
        return True

    def empty_hash(self, node: SimNode) -> bytes:
        ledger = node.ledger
        return self.verifier.empty_block(RoundContext(ledger.state, ledger.tip_time()))[0].hash

    def _commit_listener(self, index: int) -> Callable[[Commit], None]:
        """What the ledger of node `index` calls on each commit (it exists before the node)."""
        return lambda action: self._committed(self.nodes[index], action)

    def _committed(self, node: SimNode, action: Commit) -> None:
        node.last_commit_at = self.now
        self.commits.append((self.now, node.index, node.height, action.final, action.steps))
        if action.final:
            self.mark_final(node)
        if self.config.competition is not None and not node.behaviour.byzantine:
            self.config.competition.on_commit(self, node)

    def mark_final(self, node: SimNode) -> None:
        """A FINAL block makes its ancestors final: record them; a different final block
        at a height already final somewhere is a safety violation."""
        for height in range(node.final_upto + 1, node.height + 1):
            block_hash = node.ledger.blocks[height - 1].block.hash
            if self.final_at.setdefault(height, block_hash) != block_hash:
                self.conflicting_final += 1
        node.final_upto = node.height

    def reachable_peers(self, node: SimNode) -> list[SimNode]:
        net = self.config.network
        return [
            p for p in self.nodes
            if p is not node and p.up and net.reachable(node.index, p.index, self.now)
        ]

    def fetch(self, node: SimNode, block_hash: bytes) -> None:
        """Ask the reachable peers; the first that has the block (committed, or kept with
        its checkpoint) sends it."""
        for peer in self.reachable_peers(node):
            block = peer.ledger.block(block_hash)
            if block is not None:
                net = self.config.network
                at = self.now + self.rng.randint(net.min_delay_ms, net.max_delay_ms)
                self.schedule(at, node, "event", lambda now, b=block: BlockReceived(b, now))
                return

    def request_sync(self, node: SimNode) -> None:
        """Ask a reachable peer whose chain the fork choice prefers (as if the node asked
        several peers for their tips first)."""
        peers = [p for p in self.reachable_peers(node) if prefers_chain(node, p.ledger)]
        if not peers:
            return
        peer = self.rng.choice(peers)
        net = self.config.network
        delay = 2 * self.rng.randint(net.min_delay_ms, net.max_delay_ms)
        self.schedule(self.now + delay, node, "sync", list(peer.ledger.blocks))

    def evaluate(self, node: SimNode, state: State, task_id: int) -> None:
        competition = self.config.competition
        if competition is None:
            return
        baseline, truth = competition.truth(state, task_id)
        entries = node.behaviour.scores(truth)
        self.schedule(self.now + 100, node, "event", lambda now: EvaluationFinished(
            task_id, baseline[0], baseline[1], entries, now))


def _received(message: Message, now: int) -> Event:
    if isinstance(message, UnverifiedVote):
        return VoteReceived(message, now)
    if isinstance(message, UnverifiedProposal):
        return ProposalReceived(message, now)
    return RankingReceived(message, now)


def _hosted(keys: list[KeyPair], index: int, config: SimConfig) -> list[KeyPair]:
    """The users node `index` hosts: round-robin, or with an observer, one on node 0 and the
    rest round-robin over the others."""
    if not config.observer:
        return keys[index::config.nodes]
    if index == 0:
        return keys[:1]
    return keys[index::config.nodes - 1] if config.nodes > 1 else []


def _user_key(seed: int, i: int) -> KeyPair:
    material = b"wekacoin-sim-user" + seed.to_bytes(8, "big") + i.to_bytes(4, "big")
    return KeyPair.from_seed(hashlib.sha256(material).digest())
