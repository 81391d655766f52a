"""Model outcomes, candidate rankings and the settlement a block carries (paper III-C, III-D)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from wekacoin.types.codec import encode
from wekacoin.types.primitives import PublicKey, Score, Signature, SubmissionId, TaskId, VrfProof

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
class Settlement:
    """The meta-ranking of the task a block settles, and who earned the validators' share.

    `entries` has one entry per submission of the task, sorted by submission id. `evaluators`
    are the validator keys whose rankings were genuine (sorted); `rankings` are those signed
    rankings, so anyone can re-check the merge.
    """

    task_id: TaskId
    baseline_outcome: Outcome
    baseline_score: Score
    entries: tuple[RankEntry, ...]
    evaluators: tuple[PublicKey, ...]
    rankings: tuple[SignedRanking, ...]
