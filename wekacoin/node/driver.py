"""The node's consensus driver: the driver core (`consensus/driver.py`) under trio, with the
real adapters.

Everything that happens to consensus becomes an event on one queue (gossip, deadlines,
finished evaluations, fetched blocks, blocks committed by sync); one task feeds each to the
core, which carries out the player's actions through the ports below. `Persist` is written
durably (fsync) by the ledger before the following messages are queued for gossip, so a
restart can never make this node sign two different votes in one step, nor two rankings of
one task. Long work (evaluation on a worker thread, fetching, syncing) runs in its own task
and reports back with an event, so the state machine never waits.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from typing import Any, Awaitable, Callable, TypeVarTuple

import trio

from wekacoin.chain.state import State
from wekacoin.consensus.actions import Commit, Persist, Refuse
from wekacoin.consensus.driver import Clock, DriverCore, Message
from wekacoin.consensus.events import (
    BlockReceived,
    EvaluationFinished,
    Event,
    LedgerAdvanced,
    ProposalReceived,
    RankingReceived,
    VoteReceived,
)
from wekacoin.consensus.messages import UnverifiedProposal, UnverifiedVote
from wekacoin.consensus.player import Player, Status
from wekacoin.mempool.policy import BlockLimits
from wekacoin.net.api import Topic
from wekacoin.node.chain import ChainService
from wekacoin.node.evaluation import TaskScores, evaluation_budget_s
from wekacoin.node.metrics import NodeMetrics
from wekacoin.types.block import Block
from wekacoin.types.codec import DecodeError, decode, encode
from wekacoin.types.primitives import Hash, TaskId
from wekacoin.types.ranking import SignedRanking
from wekacoin.types.tx import VerifiedTx

log = logging.getLogger("wekacoin.node.driver")

_QUEUE = 100_000  # events; gossip beyond this is dropped (and counted) rather than stall the net
_OUTBOX = 100_000  # messages waiting for gossip
_VOTE_LOG = 4_096
_REFUSAL_PENALTY = 1.0

Evaluate = Callable[[State, int, float], TaskScores]
FetchBlock = Callable[[int, bytes], Awaitable[Block | None]]
Sync = Callable[[], Awaitable[None]]
Publish = Callable[[Topic, bytes], Awaitable[None]]
Penalize = Callable[[str, str, float], None]
Args = TypeVarTuple("Args")


class StoreLedger:
    """The ledger port on the node's chain service and LevelDB store."""

    def __init__(self, chain: ChainService, metrics: NodeMetrics) -> None:
        self.chain = chain
        self._metrics = metrics

    @property
    def state(self) -> State:
        return self.chain.state

    def tip_time(self) -> int:
        return self.chain.tip_time()

    def commit(self, action: Commit) -> None:
        block = action.block
        self.chain.commit(block, action.state, encode(action.certificate))
        self._metrics.blocks.labels(final=str(action.final).lower()).inc()
        log.debug("round %d decided %s in %d steps (%s)", block.height, block.hash.hex()[:12],
                 action.steps, "FINAL" if action.final else "TENTATIVE")

    def persist(self, action: Persist) -> None:
        self.chain.store.put_checkpoint(
            action.checkpoint,
            [(b.height, b.hash, encode(b)) for b in action.blocks],
            [(r.ranking.task_id, r.ranking.evaluator, encode(r)) for r in action.rankings],
        )

    def recovered(self) -> tuple[bytes | None, tuple[SignedRanking, ...]]:
        rankings = []
        for raw in self.chain.store.own_rankings():
            try:
                rankings.append(decode(SignedRanking, raw))
            except DecodeError:
                log.warning("a ranking this node signed does not decode: it will not be re-sent")
        return self.chain.store.get_checkpoint(), tuple(rankings)

    def kept_block(self, height: int, block_hash: Hash) -> Block | None:
        raw = self.chain.store.get_proposed(height, block_hash)
        if raw is None:
            return None
        try:
            block = decode(Block, raw)
        except DecodeError:
            log.warning("kept proposal %s at height %d does not decode; fetching it",
                        block_hash.hex()[:16], height)
            return None
        return block if block.hash == block_hash else None

    def select(self, state: State, seed: bytes) -> list[VerifiedTx]:
        return self.chain.mempool.select(state, BlockLimits.for_params(state.params), seed=seed)


class ConsensusDriver:
    """The gossip and work ports of the driver core, and the trio loop that feeds it."""

    def __init__(
        self, chain: ChainService, player: Player, publish: Publish, metrics: NodeMetrics,
        clock: Clock, evaluate: Evaluate, fetch_block: FetchBlock, sync: Sync,
        penalize: Penalize | None = None,
    ) -> None:
        """`evaluate(state, task_id, deadline)` blocks (run on a thread; `deadline` in
        time.monotonic() seconds); `publish`, `fetch_block` and `sync` are async;
        `penalize(peer_id, reason, weight)` scores a peer."""
        self.chain = chain
        self._publish = publish
        self._metrics = metrics
        self._clock = clock
        self._evaluate = evaluate
        self._fetch_block = fetch_block
        self._sync = sync
        self._penalize = penalize
        self.core = DriverCore(player, StoreLedger(chain, metrics), self, self, clock)
        self._send, self._receive = trio.open_memory_channel[Event](_QUEUE)
        self._out_send, self._out_receive = trio.open_memory_channel[Message](_OUTBOX)
        self._nursery: trio.Nursery | None = None
        self.dropped_events = 0
        self._evaluating: set[int] = set()
        self.vote_log: deque[tuple[str, str, int]] = deque(maxlen=_VOTE_LOG)
        """(vote hash, "sent" | "received", wall-clock ns): diagnostics of vote propagation."""

    def status(self) -> Status:
        return self.core.status()

    # -- inputs (any task on the trio thread) --

    def submit(self, event: Event) -> None:
        try:
            self._send.send_nowait(event)
        except trio.WouldBlock:
            self.dropped_events += 1

    def on_gossip(self, topic: Topic, data: bytes, origin: str = "") -> None:
        now = self._clock()
        try:
            if topic is Topic.VOTE:
                self._metrics.votes.inc()
                self.vote_log.append((hashlib.sha256(data).hexdigest(), "received", time.time_ns()))
                self.submit(VoteReceived(decode(UnverifiedVote, data), now, origin))
            elif topic is Topic.PROPOSAL:
                self.submit(ProposalReceived(decode(UnverifiedProposal, data), now, origin))
            elif topic is Topic.RANKING:
                self.submit(RankingReceived(decode(SignedRanking, data), now, origin))
        except DecodeError:
            pass  # the topic validator already refused it; nothing to do

    def on_ledger_advanced(self, block: Block | None) -> None:
        """Blocks committed (or rolled back: None) outside consensus move the round on too."""
        ledger = self.core.ledger
        self.submit(LedgerAdvanced(ledger.state, ledger.tip_time(), self._clock()))

    # -- the loop --

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            nursery.start_soon(self._send_messages)
            self.core.start()
            self._update_metrics()
            task_status.started()
            while True:
                event = await self._next_event()
                if event is None:
                    self.core.deadline_reached()
                else:
                    self.core.submit(event)
                self._update_metrics()

    async def _next_event(self) -> Event | None:
        deadline = self.core.deadline
        if deadline is None:
            return await self._receive.receive()
        with trio.move_on_after(max(0.0, (deadline - self._clock()) / 1000)):
            return await self._receive.receive()
        return None

    def _update_metrics(self) -> None:
        status = self.core.status()
        self._metrics.round.set(status.round)
        self._metrics.period.set(status.period)
        self._metrics.step.set(status.step)

    # -- the gossip port --

    def publish(self, message: Message) -> None:
        try:
            self._out_send.send_nowait(message)
        except trio.WouldBlock:
            log.warning("gossip is not keeping up: a consensus message was not sent")

    async def _send_messages(self) -> None:
        async for message in self._out_receive:
            topic = (Topic.VOTE if isinstance(message, UnverifiedVote)
                     else Topic.PROPOSAL if isinstance(message, UnverifiedProposal)
                     else Topic.RANKING)
            data = encode(message)
            if topic is Topic.VOTE:
                self._metrics.votes_sent.inc()
                self.vote_log.append((hashlib.sha256(data).hexdigest(), "sent", time.time_ns()))
            await self._publish(topic, data)

    # -- the work port --

    def evaluate(self, state: State, task_id: TaskId) -> None:
        if task_id in self._evaluating:
            return
        self._evaluating.add(task_id)
        self._start(self._evaluation, state, task_id)

    def fetch_block(self, height: int, block_hash: Hash) -> None:
        self._start(self._fetch, height, block_hash)

    def sync(self) -> None:
        self._start(self._sync)

    def refused(self, action: Refuse) -> None:
        log.debug("refused from %s: %s", action.origin[:16] or "-", action.reason)
        if action.penalise and action.origin and self._penalize is not None:
            self._penalize(action.origin, action.reason, _REFUSAL_PENALTY)

    def _start(self, fn: Callable[[*Args], Awaitable[object]], *args: *Args) -> None:
        assert self._nursery is not None, "the driver is not running"
        self._nursery.start_soon(fn, *args)

    async def _evaluation(self, state: State, task_id: int) -> None:
        try:
            deadline = time.monotonic() + evaluation_budget_s(
                state, task_id, self.chain.recent_block_ms())
            scores = await trio.to_thread.run_sync(self._evaluate, state, task_id, deadline)
        finally:
            self._evaluating.discard(task_id)
        self._metrics.evaluation_seconds.observe(scores.seconds)
        for e in scores.entries:
            self._metrics.models_scored.labels(outcome=e.outcome.name.lower()).inc()
        log.info("task %d evaluated in %.1f s", task_id, scores.seconds)
        self.submit(EvaluationFinished(
            task_id, scores.baseline_outcome, scores.baseline_score, scores.entries, self._clock(),
        ))

    async def _fetch(self, height: int, block_hash: bytes) -> None:
        block = await self._fetch_block(height, block_hash)
        if block is not None:
            self.submit(BlockReceived(block, self._clock()))
