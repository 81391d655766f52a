"""Events: facts the driver reports to the state machine. Each carries `now`, the driver's
clock in milliseconds: the state machine never reads a clock."""

from __future__ import annotations

from dataclasses import dataclass

from wekacoin.chain.state import State
from wekacoin.consensus.messages import UnverifiedProposal, UnverifiedVote
from wekacoin.types.block import Block
from wekacoin.types.primitives import Score, TaskId
from wekacoin.types.ranking import Outcome, RankEntry, SignedRanking


@dataclass(frozen=True, slots=True, eq=False)
class Started:
    """The node (re)started on this ledger tip, with its last persisted checkpoint and the
    rankings it signed (`Persist.rankings`) of tasks still open."""

    state: State
    tip_time_ms: int
    checkpoint: bytes | None
    now: int
    own_rankings: tuple[SignedRanking, ...] = ()


@dataclass(frozen=True, slots=True, eq=False)
class LedgerAdvanced:
    """The driver committed a block (the one we asked for, or synced ones): a new tip."""

    state: State
    tip_time_ms: int
    now: int


@dataclass(frozen=True, slots=True)
class ProposalReceived:
    proposal: UnverifiedProposal
    now: int
    origin: str = ""
    """The peer that delivered it ("" if unknown or our own)."""


@dataclass(frozen=True, slots=True)
class VoteReceived:
    vote: UnverifiedVote
    now: int
    origin: str = ""
    """The peer that delivered it ("" if unknown or our own)."""


@dataclass(frozen=True, slots=True)
class BlockReceived:
    """A block the driver fetched after a `FetchBlock`."""

    block: Block
    now: int


@dataclass(frozen=True, slots=True)
class BlockAssembled:
    """The driver built the block an `AssembleBlock` asked for."""

    period: int
    block: Block
    now: int


@dataclass(frozen=True, slots=True)
class DeadlineReached:
    now: int


@dataclass(frozen=True, slots=True)
class EvaluationFinished:
    """The sandbox scored every submission of a task (after an `Evaluate`)."""

    task_id: TaskId
    baseline_outcome: Outcome
    baseline_score: Score
    entries: tuple[RankEntry, ...]
    now: int


@dataclass(frozen=True, slots=True)
class RankingReceived:
    ranking: SignedRanking
    now: int
    origin: str = ""
    """The peer that delivered it ("" if unknown or our own)."""


Event = (
    Started | LedgerAdvanced | ProposalReceived | VoteReceived | BlockReceived | BlockAssembled
    | DeadlineReached | EvaluationFinished | RankingReceived
)
