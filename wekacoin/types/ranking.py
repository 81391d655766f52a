"""Model outcomes, candidate rankings, and the chain's records of rankings and settlements
(paper III-C, III-D)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from wekacoin.types.codec import encode
from wekacoin.types.primitives import (
    Address,
    Amount,
    Height,
    PublicKey,
    Score,
    Signature,
    SubmissionId,
    TaskId,
    VrfProof,
)

RANKING_SIGNING_DOMAIN = b"wekacoin/ranking/v1"


class Outcome(IntEnum):
    SCORED = 0
    INVALID = 1
    """Not fetchable, not loadable, wrong output, or its training score does not reproduce."""
    UNEVALUATED = 2
    """Could not be scored within the time limit."""


@dataclass(frozen=True, slots=True)
class RankEntry:
    submission_id: SubmissionId
    outcome: Outcome
    score: Score
    """Meaningful only when SCORED; 0 otherwise."""
    model_size: int
    """Size of the model in bytes (smaller wins ties); 0 when unknown."""


@dataclass(frozen=True, slots=True)
class CandidateRanking:
    """One evaluator's scores for every submission of a task, entries sorted by submission."""

    task_id: TaskId
    evaluator: PublicKey
    credential: VrfProof
    """Sortition proof that `evaluator` sits on this task's evaluation committee."""
    baseline_outcome: Outcome
    baseline_score: Score
    entries: tuple[RankEntry, ...]


@dataclass(frozen=True, slots=True)
class SignedRanking:
    ranking: CandidateRanking
    signature: Signature


def ranking_signing_message(genesis_hash: bytes, ranking: CandidateRanking) -> bytes:
    return RANKING_SIGNING_DOMAIN + genesis_hash + encode(ranking)


@dataclass(frozen=True, slots=True)
class RecordedRanking:
    """A committee member's ranking as the chain recorded it (state, per task and evaluator):
    its values and the evaluator's weight on the committee. The signature and credential were
    checked when a block recorded it, and stay in that block."""

    subusers: int
    baseline_outcome: Outcome
    baseline_score: Score
    entries: tuple[RankEntry, ...]


class Resolution(IntEnum):
    """How a task ended."""

    WON = 0
    """The best model beat the baseline: the reward went to its trainer."""
    BASELINE_KEPT = 1
    """No model beat the baseline: the reward went back to the supplier."""
    EXPIRED = 2
    """No ranking was agreed before the settlement deadline: everything refunded."""
    CANCELLED = 3
    """The supplier never revealed the training data: reward refunded, hosting fee burned."""


@dataclass(frozen=True, slots=True)
class EvaluatorShare:
    evaluator: PublicKey
    subusers: int


@dataclass(frozen=True, slots=True)
class Payment:
    address: Address
    amount: Amount


@dataclass(frozen=True, slots=True)
class TaskSettlement:
    """The chain's record of how a task ended and where its escrow went (state, per task).

    For a settled task, `entries` is the meta-ranking (one entry per submission, by id) and
    `evaluators` the genuine evaluators with the sub-users they were paid for.
    """

    task_id: TaskId
    height: Height
    resolution: Resolution
    winner: SubmissionId
    """The winning submission, 0 if none."""
    baseline_outcome: Outcome
    baseline_score: Score
    entries: tuple[RankEntry, ...]
    evaluators: tuple[EvaluatorShare, ...]
    payments: tuple[Payment, ...]
    """Every credit the task's end made, by address (sorted); minted coins included."""
    minted: Amount
    burned: Amount
