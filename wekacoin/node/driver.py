"""The consensus driver: the one task that owns the BA* state machine.

Everything that happens to consensus becomes an event on one queue (gossip, deadlines,
finished evaluations, fetched blocks, committed blocks); the driver feeds each to
`Player.handle` and carries out the actions in order. `Persist` is written durably (fsync)
before the following `Broadcast`s leave, so a restart can never make this node sign two
different votes in one step. Long work (evaluation, fetching, syncing) runs in its own task
and reports back with an event, so the state machine never waits.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import deque
from typing import Callable

import trio

from wekacoin.consensus.actions import (
    AssembleBlock, Broadcast, Commit, Evaluate, FetchBlock, Persist, RequestSync, SetDeadline,
)
from wekacoin.consensus.assemble import assemble_block
from wekacoin.consensus.events import (
    BlockAssembled, BlockReceived, EvaluationFinished, LedgerAdvanced, ProposalReceived,
    RankingReceived, Started, VoteReceived,
)
from wekacoin.consensus.events import DeadlineReached, Event
from wekacoin.consensus.messages import UnverifiedProposal, UnverifiedVote
from wekacoin.consensus.player import Player
from wekacoin.mempool.policy import BlockLimits
from wekacoin.net.api import Topic
from wekacoin.node.chain import ChainService
from wekacoin.node.evaluation import evaluation_budget_s
from wekacoin.node.metrics import NodeMetrics
from wekacoin.types.block import Block
from wekacoin.types.codec import DecodeError, decode, encode
from wekacoin.types.ranking import SignedRanking

log = logging.getLogger("wekacoin.node.driver")

Clock = Callable[[], int]
_QUEUE = 100_000  # events; gossip beyond this is dropped (and counted) rather than stall the net
_VOTE_LOG = 4_096


class ConsensusDriver:
    def __init__(
        self, chain: ChainService, player: Player, publish, metrics: NodeMetrics, clock: Clock,
        evaluate, fetch_block, sync,
    ) -> None:
        """`publish(topic, bytes)` is async; `evaluate(state, task_id, deadline)` blocks (run on
        a thread; `deadline` in time.monotonic() seconds) and returns TaskScores;
        `fetch_block(height, hash)` and `sync()` are async."""
        self.chain = chain
        self.player = player
        self._publish = publish
        self._metrics = metrics
        self._clock = clock
        self._evaluate = evaluate
        self._fetch_block = fetch_block
        self._sync = sync
        self._send, self._receive = trio.open_memory_channel[Event](_QUEUE)
        self._deadline: int | None = None
        self._nursery: trio.Nursery | None = None
        self.dropped_events = 0
        self._evaluating: set[int] = set()
        self.vote_log: deque[tuple[str, str, int]] = deque(maxlen=_VOTE_LOG)
        """(vote hash, "sent" | "received", wall-clock ns): diagnostics of vote propagation."""
        self._saved_round = -1  # the round whose proposed blocks are in the store...
        self._saved: set[bytes] = set()  # ...and which ones

    # -- inputs (any task on the trio thread) --

    def submit(self, event: Event) -> None:
        try:
            self._send.send_nowait(event)
        except trio.WouldBlock:
            self.dropped_events += 1

    def on_gossip(self, topic: Topic, data: bytes) -> None:
        now = self._clock()
        try:
            if topic is Topic.VOTE:
                self._metrics.votes.inc()
                self.vote_log.append((hashlib.sha256(data).hexdigest(), "received", time.time_ns()))
                self.submit(VoteReceived(decode(UnverifiedVote, data), now))
            elif topic is Topic.PROPOSAL:
                self.submit(ProposalReceived(decode(UnverifiedProposal, data), now))
            elif topic is Topic.RANKING:
                self.submit(RankingReceived(decode(SignedRanking, data), now))
        except DecodeError:
            pass  # the topic validator already refused it; nothing to do

    def on_ledger_advanced(self, block: Block | None) -> None:
        """Blocks committed (or rolled back: None) outside consensus move the round on too."""
        tip_time = self._tip_time() if block is None else block.header.time_ms
        self.submit(LedgerAdvanced(self.chain.state, tip_time, self._clock()))

    # -- the loop --

    async def run(self, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            tip_time = self._tip_time()
            checkpoint = self.chain.store.get_checkpoint()
            await self._handle(Started(self.chain.state, tip_time, checkpoint, self._clock()))
            task_status.started()
            while True:
                event = await self._next_event()
                await self._handle(event)

    async def _next_event(self) -> Event:
        if self._deadline is None:
            return await self._receive.receive()
        wait = max(0.0, (self._deadline - self._clock()) / 1000)
        with trio.move_on_after(wait):
            return await self._receive.receive()
        self._deadline = None
        return DeadlineReached(self._clock())

    async def _handle(self, event: Event) -> None:
        for action in self.player.handle(event):
            await self._carry_out(action)
        self._metrics.round.set(self.player.round)
        self._metrics.period.set(self.player.period)
        self._metrics.step.set(self.player.bstep)

    async def _carry_out(self, action) -> None:
        if isinstance(action, Persist):  # durable before anything leaves
            self.chain.store.put_checkpoint(action.checkpoint, self._unsaved_proposals())
        elif isinstance(action, Broadcast):
            await self._broadcast(action.message)
        elif isinstance(action, SetDeadline):
            self._deadline = action.at
        elif isinstance(action, AssembleBlock):
            self._assemble(action)
        elif isinstance(action, Commit):
            self._commit(action)
        elif isinstance(action, Evaluate):
            self._start_evaluation(action.task_id)
        elif isinstance(action, FetchBlock):
            self._nursery.start_soon(self._fetch, action.round, action.block_hash)
        elif isinstance(action, RequestSync):
            self._nursery.start_soon(self._sync)
        else:  # pragma: no cover - every action type is handled above
            raise TypeError(f"unknown action {action!r}")

    async def _broadcast(self, message) -> None:
        topic = (Topic.VOTE if isinstance(message, UnverifiedVote)
                 else Topic.PROPOSAL if isinstance(message, UnverifiedProposal) else Topic.RANKING)
        data = encode(message)
        if topic is Topic.VOTE:
            self._metrics.votes_sent.inc()
            self.vote_log.append((hashlib.sha256(data).hexdigest(), "sent", time.time_ns()))
        await self._publish(topic, data)

    def _assemble(self, request: AssembleBlock) -> None:
        state = self.chain.state
        vtxs = self.chain.mempool.select(state, BlockLimits.for_params(state.params), seed=request.seed)
        block = assemble_block(state, request, vtxs, self._clock())
        self.submit(BlockAssembled(request.period, block, self._clock()))

    def _commit(self, action: Commit) -> None:
        block = action.block
        if block.height != self.chain.height + 1:
            log.warning("consensus decided block %d but the tip is %d: syncing", block.height,
                        self.chain.height)
            self._nursery.start_soon(self._sync)
            return
        self.chain.commit(block, action.state, encode(action.certificate))
        self._metrics.blocks.labels(final=str(action.final).lower()).inc()
        log.info("round %d decided %s in %d steps (%s)", block.height, block.hash.hex()[:12],
                 action.steps, "FINAL" if action.final else "TENTATIVE")
        self.submit(LedgerAdvanced(self.chain.state, block.header.time_ms, self._clock()))

    def _start_evaluation(self, task_id: int) -> None:
        if task_id in self._evaluating:
            return
        self._evaluating.add(task_id)
        state = self.chain.state
        self._nursery.start_soon(self._evaluation, state, task_id)

    async def _evaluation(self, state, task_id: int) -> None:
        try:
            deadline = time.monotonic() + evaluation_budget_s(state, task_id)
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

    def _unsaved_proposals(self) -> list[tuple[int, bytes, bytes]]:
        """The round's proposed blocks not in the store yet. Votes name blocks by hash only:
        if every node crashed after voting, a block the network decided would exist nowhere
        else, and the round could never commit."""
        round_ = self.player.round
        if self._saved_round != round_:
            self._saved_round, self._saved = round_, set()
        fresh = [(h, b) for h, (b, _) in self.player.proposals.blocks.items()
                 if h not in self._saved]
        self._saved.update(h for h, _ in fresh)
        return [(round_, h, encode(b)) for h, b in fresh]

    def _kept_proposal(self, height: int, block_hash: bytes) -> Block | None:
        """The block as this node kept it before voting (`_unsaved_proposals`), if it did."""
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

    async def _fetch(self, height: int, block_hash: bytes) -> None:
        block = self._kept_proposal(height, block_hash)
        if block is None:
            block = await self._fetch_block(height, block_hash)
        if block is not None:
            self.submit(BlockReceived(block, self._clock()))

    def _tip_time(self) -> int:
        height = self.chain.height
        if height == 0:
            return self.chain.genesis.time_ms
        header = self.chain.store.get_header(height)
        return header.time_ms


