"""A seeded, deterministic simulation of a WekaCoin network.

N in-process nodes run the real BA* state machine (`consensus.player`), real crypto (ECVRF,
Ed25519) and the real chain rules (`build_block`, `apply_block`), on a simulated clock and a
simulated network (`sim_net`): delays, loss, duplicates, reordering, partitions that heal,
crashes with restarts from the persisted checkpoint, and Byzantine behaviours
(`sim_byzantine`). Users (validator keys with stake) are spread over the nodes, several per
node if there are more users than nodes, as go-algorand hosts several accounts per node.

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
from dataclasses import dataclass, field
from typing import Any

from wekacoin.chain.genesis import genesis_state
from wekacoin.chain.state import State
from wekacoin.consensus.actions import (
    AssembleBlock, Broadcast, Commit, Evaluate, FetchBlock, Persist, RequestSync, SetDeadline,
)
from wekacoin.consensus.assemble import assemble_block
from wekacoin.consensus.events import (
    BlockAssembled, BlockReceived, DeadlineReached, EvaluationFinished, LedgerAdvanced,
    ProposalReceived, RankingReceived, Started, VoteReceived,
)
from wekacoin.consensus.messages import Certificate, UnverifiedProposal, UnverifiedVote
from wekacoin.consensus.player import Player
from wekacoin.consensus.verify import RoundContext, Verifier
from wekacoin.crypto.keys import KeyPair
from wekacoin.testing.sim_byzantine import Behaviour
from wekacoin.testing.sim_net import NetworkModel
from wekacoin.testing.sim_sync import prefers, sync_from
from wekacoin.types.block import Block
from wekacoin.types.genesis import Genesis, GenesisAccount, GenesisStake, Params

SIM_PARAMS = Params(
    # The paper's committees; timeouts scaled from (5, 5, 60, 20) s to fit a simulated LAN.
    lambda_priority_ms=150, lambda_stepvar_ms=150, lambda_block_ms=1_500, lambda_step_ms=500,
    max_steps=30, tau_evaluators=100,
    # A short task lifecycle for competitions run through the simulated chain.
    min_training_period=6, test_split_delay=1, training_reveal_window=4, test_reveal_window=6, upload_window=6,
    evaluation_window=2, stake_lookback=3, min_groups=5, settlement_reward=1_000,
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
    competition: Any = None
    """A `sim_tasks.Competition` to run through the chain, or None."""


@dataclass(slots=True)
class Committed:
    block: Block
    state: State
    certificate: Certificate | None
    final: bool


class SimNode:
    def __init__(self, index: int, keys: list[KeyPair], behaviour: Behaviour) -> None:
        self.index = index
        self.keys = keys
        self._by_pk = {k.public_key: k for k in keys}
        self.behaviour = behaviour
        self.player: Player | None = None
        self.up = False
        self.epoch = 0
        self.deadline: int | None = None
        self.checkpoint: bytes | None = None
        self.chain: list[Committed] = []
        self.final_upto = 0
        self.last_request: AssembleBlock | None = None
        self.last_commit_at = -1

    def key(self, public_key: bytes) -> KeyPair:
        return self._by_pk[public_key]

    @property
    def height(self) -> int:
        return len(self.chain) - 1

    @property
    def state(self) -> State:
        return self.chain[-1].state


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
        self._queue: list = []
        self._seq = 0
        self.verifier = Verifier()
        users = config.users or config.nodes
        keys = [_user_key(config.seed, i) for i in range(users)]
        extra = config.competition.accounts() if config.competition else []
        self.genesis = Genesis(
            chain_id="wekacoin-sim", time_ms=0,
            accounts=tuple(GenesisAccount(k.address, 10**12) for k in extra),
            stakes=tuple(GenesisStake(k.address, config.stake, k.public_key) for k in keys),
            params=config.params,
        )
        genesis = genesis_state(self.genesis)
        self.nodes = [
            SimNode(i, keys[i::config.nodes], config.behaviours.get(i, Behaviour()))
            for i in range(config.nodes)
        ]
        for node in self.nodes:
            node.chain.append(Committed(_genesis_block_placeholder(self.genesis), genesis, None, True))
        self.final_at: dict[int, bytes] = {0: self.genesis.hash}
        self.conflicting_final = 0
        self.commits: list[tuple[int, int, int, bool, int]] = []
        self.pool: list = []  # verified transactions every proposer may include
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
                node.up = False
                node.epoch += 1
                node.player = None
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
        )

    def _done(self) -> bool:
        c = self.config
        return all(
            n.height >= c.target_height and n.last_commit_at >= c.progress_after_ms
            for n in self.nodes if n.up and not n.behaviour.byzantine
        ) and not any(x.restart_ms is not None and x.restart_ms > self.now for x in c.crashes)

    def _boot(self, node: SimNode) -> None:
        node.up = True
        node.player = Player(node.keys, self.verifier)
        tip = node.chain[-1]
        self.feed(node, Started(tip.state, tip.block.header.time_ms, node.checkpoint, self.now))

    def _dispatch(self, node: SimNode, kind: str, payload: Any) -> None:
        if kind == "deadline":
            if node.deadline == payload:
                self.feed(node, DeadlineReached(self.now))
        elif kind == "messages":
            for m in payload:
                self.feed(node, _received(m, self.now))
        elif kind == "event":
            self.feed(node, payload(self.now))
        elif kind == "sync":
            peer_chain = payload
            if sync_from(self, node, peer_chain):
                node.last_commit_at = self.now
                self.commits.append((self.now, node.index, node.height, node.final_upto == node.height, 0))
                tip = node.chain[-1]
                self.feed(node, LedgerAdvanced(tip.state, tip.block.header.time_ms, self.now))

    # -- the driver: events in, actions carried out --

    def feed(self, node: SimNode, event: Any) -> None:
        actions = node.player.handle(event)
        outgoing = []
        for a in actions:
            kind = type(a)
            if kind is Broadcast:
                outgoing.append(a.message)
            elif kind is Persist:
                node.checkpoint = a.checkpoint
            elif kind is SetDeadline:
                node.deadline = a.at
                if a.at is not None:
                    self.schedule(a.at, node, "deadline", a.at)
            elif kind is AssembleBlock:
                node.last_request = a
                block = assemble_block(node.state, a, self.pool, self.now)
                self.schedule(self.now, node, "event", lambda now, b=block, p=a.period: BlockAssembled(p, b, now))
            elif kind is Commit:
                self._commit(node, a)
            elif kind is FetchBlock:
                self._fetch(node, a.block_hash)
            elif kind is Evaluate:
                self._evaluate(node, a.task_id)
            elif kind is RequestSync:
                self._request_sync(node)
        if outgoing:
            if not node.behaviour.byzantine:
                self._check_honest(outgoing)
            node.behaviour.send(self, node, outgoing)

    def _check_honest(self, messages: list) -> None:
        for m in messages:
            if isinstance(m, UnverifiedVote):
                b = m.body
                key = (b.voter, b.round, b.prev_hash, b.period, b.step)
                if self._signed.setdefault(key, b.value) != b.value:
                    self.honest_equivocations += 1

    def broadcast(self, node: SimNode, messages: list, only: list[int] | None = None) -> None:
        """Send a bundle of messages from `node` to every other node (or to `only`)."""
        if not messages:
            return
        network = self.config.network
        for peer in self.nodes:
            if peer is node or (only is not None and peer.index not in only):
                continue
            for at in network.delivery_times(self.rng, node.index, peer.index, self.now):
                self.schedule(at, peer, "messages", messages)

    def empty_hash(self, node: SimNode) -> bytes:
        tip = node.chain[-1]
        return self.verifier.empty_block(RoundContext(tip.state, tip.block.header.time_ms))[0].hash

    def _commit(self, node: SimNode, a: Commit) -> None:
        node.chain.append(Committed(a.block, a.state, a.certificate, a.final))
        node.last_commit_at = self.now
        self.commits.append((self.now, node.index, node.height, a.final, a.steps))
        if a.final:
            self.mark_final(node)
        if self.config.competition is not None and not node.behaviour.byzantine:
            self.config.competition.on_commit(self, node)
        self.schedule(self.now, node, "event", lambda now, c=node.chain[-1]: LedgerAdvanced(
            c.state, c.block.header.time_ms, now))

    def mark_final(self, node: SimNode) -> None:
        """A FINAL block makes its ancestors final: record them; a different final block
        at a height already final somewhere is a safety violation."""
        for height in range(node.final_upto + 1, node.height + 1):
            block_hash = node.chain[height].block.hash
            if self.final_at.setdefault(height, block_hash) != block_hash:
                self.conflicting_final += 1
        node.final_upto = node.height

    def _reachable_peers(self, node: SimNode) -> list[SimNode]:
        net = self.config.network
        return [p for p in self.nodes if p is not node and p.up and net.reachable(node.index, p.index, self.now)]

    def _fetch(self, node: SimNode, block_hash: bytes) -> None:
        """Ask the reachable peers; the first that has the block sends it."""
        for peer in self._reachable_peers(node):
            known = peer.player.proposals.blocks.get(block_hash) if peer.player else None
            block = known[0] if known else next(
                (c.block for c in peer.chain[1:] if c.block.hash == block_hash), None)
            if block is not None:
                net = self.config.network
                at = self.now + self.rng.randint(net.min_delay_ms, net.max_delay_ms)
                self.schedule(at, node, "event", lambda now, b=block: BlockReceived(b, now))
                return

    def _request_sync(self, node: SimNode) -> None:
        """Ask a reachable peer whose chain the fork choice prefers (as if the node asked
        several peers for their tips first)."""
        peers = [p for p in self._reachable_peers(node) if prefers(node, p.chain)]
        if not peers:
            return
        peer = self.rng.choice(peers)
        delay = 2 * self.rng.randint(self.config.network.min_delay_ms, self.config.network.max_delay_ms)
        self.schedule(self.now + delay, node, "sync", list(peer.chain))

    def _evaluate(self, node: SimNode, task_id: int) -> None:
        competition = self.config.competition
        if competition is None:
            return
        baseline, truth = competition.truth(node.state, task_id)
        entries = node.behaviour.scores(truth)
        self.schedule(self.now + 100, node, "event", lambda now: EvaluationFinished(
            task_id, baseline[0], baseline[1], entries, now))


def _received(message: Any, now: int) -> Any:
    if isinstance(message, UnverifiedVote):
        return VoteReceived(message, now)
    if isinstance(message, UnverifiedProposal):
        return ProposalReceived(message, now)
    return RankingReceived(message, now)


def _user_key(seed: int, i: int) -> KeyPair:
    material = b"wekacoin-sim-user" + seed.to_bytes(8, "big") + i.to_bytes(4, "big")
    return KeyPair.from_seed(hashlib.sha256(material).digest())


def _genesis_block_placeholder(genesis: Genesis) -> Block:
    """Height 0 has no block; this stands in for it (its hash is the genesis hash)."""
    return _GenesisBlock(genesis)


class _GenesisBlock:
    def __init__(self, genesis: Genesis) -> None:
        self.hash = genesis.hash
        self.header = _GenesisHeader(genesis.time_ms)


class _GenesisHeader:
    def __init__(self, time_ms: int) -> None:
        self.time_ms = time_ms
