"""The driver core: everything between the BA* state machine and the world.

`Player` (player.py) decides; the core carries out its actions, in order, against small
ports: the ledger (the chain, the mempool, the durable checkpoint), gossip, and the long work
that reports back with an event later (evaluating a task, fetching a block, syncing). The
core is synchronous and does no I/O of its own. The node runs it under trio with the real
adapters (`node/driver.py`); the simulator runs the very same core with a seeded network and
clock and an in-memory ledger (`testing/sim.py`), so what the simulator measures is what the
node does.

Events are handled one at a time, in the order they arrive: an event the core itself
produces (the block it assembled, the tip it committed) queues behind the actions still to
carry out, so no action runs against a state the player has moved past.

    core = DriverCore(player, ledger, gossip, work, clock)
    core.start()                 # Started, from the ledger's tip and checkpoint
    core.submit(VoteReceived(...))
    if core.deadline is not None and clock() >= core.deadline: core.deadline_reached()
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Callable, Protocol

from wekacoin.chain.state import State
from wekacoin.consensus.actions import (
    Action,
    AssembleBlock,
    Broadcast,
    Commit,
    Evaluate,
    FetchBlock,
    Persist,
    Refuse,
    RequestSync,
    SetDeadline,
)
from wekacoin.consensus.assemble import assemble_block
from wekacoin.consensus.events import (
    BlockAssembled,
    BlockReceived,
    DeadlineReached,
    Event,
    LedgerAdvanced,
    Started,
)
from wekacoin.consensus.messages import UnverifiedProposal, UnverifiedVote
from wekacoin.consensus.player import Player, Status
from wekacoin.types.block import Block
from wekacoin.types.primitives import Hash, TaskId
from wekacoin.types.ranking import SignedRanking
from wekacoin.types.tx import VerifiedTx

log = logging.getLogger("wekacoin.consensus.driver")

Message = UnverifiedVote | UnverifiedProposal | SignedRanking
Clock = Callable[[], int]
"""Milliseconds (the node: wall clock; the simulator: simulated time)."""


class Ledger(Protocol):
    """The chain as the driver sees it, with what must survive a crash."""

    @property
    def state(self) -> State: ...

    def tip_time(self) -> int:
        """The tip block's timestamp (genesis time at height 0)."""
        ...

    def commit(self, action: Commit) -> None:
        """Append `action.block` (the tip's next) with its certificate."""
        ...

    def persist(self, action: Persist) -> None:
        """Write the checkpoint, blocks and rankings durably before returning."""
        ...

    def recovered(self) -> tuple[bytes | None, tuple[SignedRanking, ...]]:
        """The last persisted checkpoint (None if none) and own rankings of open tasks."""
        ...

    def kept_block(self, height: int, block_hash: Hash) -> Block | None:
        """A proposed block persisted with a checkpoint (`Persist.blocks`), if kept."""
        ...

    def select(self, state: State, seed: bytes) -> list[VerifiedTx]:
        """Mempool transactions for a block on `state`, within the block limits."""
        ...


class Gossip(Protocol):
    def publish(self, message: Message) -> None:
        """Send to the peers (queued: it may leave after this returns, never before)."""
        ...


class Work(Protocol):
    """Long jobs: each reports back later through `DriverCore.submit`."""

    def evaluate(self, state: State, task_id: TaskId) -> None:
        """Score the task's submissions in the sandbox; report `EvaluationFinished`."""
        ...

    def fetch_block(self, height: int, block_hash: Hash) -> None:
        """Ask peers for a decided block; report `BlockReceived` if one has it."""
        ...

    def sync(self) -> None:
        """Catch up with peers ahead (fork choice: `fork_choice.py`); call
        `DriverCore.ledger_advanced` after the tip changed."""
        ...

    def refused(self, action: Refuse) -> None:
        """A message was dropped: log it, score its sender."""
        ...


class DriverCore:
    def __init__(self, player: Player, ledger: Ledger, gossip: Gossip, work: Work,
                 clock: Clock) -> None:
        self.player = player
        self.ledger = ledger
        self.gossip = gossip
        self.work = work
        self.clock = clock
        self.deadline: int | None = None
        """When to call `deadline_reached` (None: no timer)."""
        self._events: deque[Event] = deque()
        self._running = False

    # -- inputs --

    def start(self) -> None:
        checkpoint, rankings = self.ledger.recovered()
        self.submit(Started(self.ledger.state, self.ledger.tip_time(), checkpoint,
                            self.clock(), rankings))

    def submit(self, event: Event) -> None:
        """Handle `event` and whatever follows from it, in order."""
        self._events.append(event)
        if self._running:
            return
        self._running = True
        try:
            while self._events:
                self._handle(self._events.popleft())
        finally:
            self._running = False

    def deadline_reached(self) -> None:
        self.deadline = None
        self.submit(DeadlineReached(self.clock()))

    def ledger_advanced(self) -> None:
        """The tip changed outside consensus (sync, rollback): the round moves on."""
        self.submit(LedgerAdvanced(self.ledger.state, self.ledger.tip_time(), self.clock()))

    def status(self) -> Status:
        return self.player.status()

    # -- carrying out --

    def _handle(self, event: Event) -> None:
        for action in self.player.handle(event):
            self._carry_out(action)

    def _carry_out(self, action: Action) -> None:
        match action:
            case Persist():
                self.ledger.persist(action)  # durable before anything leaves
            case Broadcast(message=message):
                self.gossip.publish(message)
            case SetDeadline(at=at):
                self.deadline = at
            case AssembleBlock():
                self._assemble(action)
            case Commit():
                self._commit(action)
            case Evaluate(task_id=task_id):
                self.work.evaluate(self.ledger.state, task_id)
            case FetchBlock(round=height, block_hash=block_hash):
                block = self.ledger.kept_block(height, block_hash)
                if block is not None:
                    self._events.append(BlockReceived(block, self.clock()))
                else:
                    self.work.fetch_block(height, block_hash)
            case RequestSync():
                self.work.sync()
            case Refuse():
                self.work.refused(action)

    def _assemble(self, request: AssembleBlock) -> None:
        state = self.ledger.state
        now = self.clock()
        block = assemble_block(state, request, self.ledger.select(state, request.seed), now)
        self._events.append(BlockAssembled(request.period, block, now))

    def _commit(self, action: Commit) -> None:
        block = action.block
        if block.height != self.ledger.state.height + 1:
            log.warning("consensus decided block %d but the tip is %d: syncing", block.height,
                        self.ledger.state.height)
            self.work.sync()
            return
        self.ledger.commit(action)
        self._events.append(LedgerAdvanced(self.ledger.state, block.header.time_ms, self.clock()))
