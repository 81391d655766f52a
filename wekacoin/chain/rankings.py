"""Ranking agreement (paper III-C): candidate rankings, recorded on chain, and the meta-ranking.

Members of a task's evaluation committee (sortition role EVALUATOR over the task's
`evaluation_seed`) score every submission and sign a `CandidateRanking`. Proposers record the
valid rankings they have in their block (`BlockMeta.rankings`); the chain keeps one ranking
per evaluator and task. From the block the task is ready on, the state transition merges the
recorded rankings (chain.settlement), so the proposer of the settling block chooses nothing:

- The committee is weighed as of the block that fixed its seed (`Task.evaluation_weight`,
  `State.get_weight_at`): a key bonded after the seed was public weighs nothing, so grinding
  keys offline against the seed buys no seat.
- Each ranking counts with its evaluator's sub-users j, never per key.
- k = max(floor(tau_evaluators * q / 100), floor(present * q / 100)) + 1, with q =
  `ranking_quorum_percent` and `present` the sub-users of every recorded ranking: a value
  needs k of weight, so a coalition needs a majority (for q = 50) of the weight that showed
  up, and at least of the expected committee.
- Per submission (and for the baseline) the value (outcome, score, model size) with at least
  k of weight is accepted. If no value, or two different values, reach k the task cannot be
  settled yet.
- A ranking is genuine iff every one of its values is the accepted one; the genuine rankings
  must weigh at least k. Only genuine evaluators are paid, in proportion to their sub-users.

A minority of the committee reporting false scores changes nothing: their values never reach
k, their rankings are not genuine. Leaving honest rankings out is no lever either: a ranking
any block recorded counts, so a proposer can only delay a ranking, and only in its own block.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TypeGuard

from wekacoin.chain.errors import InvalidRanking
from wekacoin.chain.state import State
from wekacoin.chain.tasks import upload_end
from wekacoin.crypto.keys import KeyPair, verify_signature
from wekacoin.sortition import Role, Selection, select, sortition_alpha, verify
from wekacoin.types.genesis import Params
from wekacoin.types.ledger import Task, TaskStatus
from wekacoin.types.primitives import PublicKey, Signature
from wekacoin.types.ranking import (
    CandidateRanking,
    EvaluatorShare,
    Outcome,
    RankEntry,
    RecordedRanking,
    SignedRanking,
    ranking_signing_message,
)


def compute_ranking_quorum(params: Params, present: int) -> int:
    """k: the weight (in evaluation sub-users) that must agree on a value, when rankings of
    `present` sub-users in all were recorded."""
    q = params.ranking_quorum_percent
    return max(params.tau_evaluators * q // 100, present * q // 100) + 1


def evaluation_alpha(task: Task) -> bytes:
    return sortition_alpha(task.evaluation_seed, Role.EVALUATOR, task.id)


def is_rankable(task: Task | None, state: State) -> TypeGuard[Task]:
    """Whether the task's evaluation committee is drawn (uploads closed) and it is open."""
    return (
        task is not None and task.status is TaskStatus.ACTIVE
        and state.height >= upload_end(task, state.params)
    )


def get_evaluator_weight(state: State, task: Task, key: PublicKey) -> int:
    """The weight `key` had in the block that fixed the task's evaluation seed."""
    return state.get_weight_at(key, upload_end(task, state.params))


def select_evaluator(key: KeyPair, task: Task, state: State) -> Selection | None:
    """This key's seat on the task's evaluation committee, if it has one."""
    if not is_rankable(task, state):
        return None
    return select(
        key, evaluation_alpha(task), get_evaluator_weight(state, task, key.public_key),
        task.evaluation_weight, state.params.tau_evaluators,
    )


def sign_ranking(key: KeyPair, genesis_hash: bytes, ranking: CandidateRanking) -> SignedRanking:
    if ranking.evaluator != key.public_key:
        raise ValueError("a ranking is signed by its evaluator")
    signature = key.sign(ranking_signing_message(genesis_hash, ranking))
    return SignedRanking(ranking, Signature(signature))


@dataclass(frozen=True, slots=True)
class VerifiedRanking:
    """A signed ranking by a committee member, well formed for its task; only
    `verify_ranking` makes one."""

    signed: SignedRanking
    subusers: int

    @property
    def evaluator(self) -> PublicKey:
        return self.signed.ranking.evaluator

    def recorded(self) -> RecordedRanking:
        r = self.signed.ranking
        return RecordedRanking(self.subusers, r.baseline_outcome, r.baseline_score, r.entries)


def verify_ranking(signed: SignedRanking, state: State, genesis_hash: bytes) -> VerifiedRanking:
    """Check a ranking against the ledger `state` (the tip, or the block recording it):
    signature, committee seat, and its shape for the task. Raises InvalidRanking."""
    r = signed.ranking
    task = state.get_task(r.task_id)
    if not is_rankable(task, state):
        raise InvalidRanking(f"task {r.task_id} is not being ranked")
    _check_shape(r, task, state)
    message = ranking_signing_message(genesis_hash, r)
    if not verify_signature(r.evaluator, message, signed.signature):
        raise InvalidRanking("the signature does not match the evaluator")
    seat = verify(
        r.evaluator, r.credential, evaluation_alpha(task),
        get_evaluator_weight(state, task, r.evaluator), task.evaluation_weight,
        state.params.tau_evaluators,
    )
    if seat is None:
        raise InvalidRanking("the evaluator is not on the task's evaluation committee")
    return VerifiedRanking(signed, seat.subusers)


def _check_shape(r: CandidateRanking, task: Task, state: State) -> None:
    ids = tuple(e.submission_id for e in r.entries)
    if ids != task.submissions:
        raise InvalidRanking("a ranking lists every submission of its task once, in order")
    if r.baseline_outcome is not Outcome.SCORED and r.baseline_score != 0:
        raise InvalidRanking("an unscored baseline carries score 0")
    for e in r.entries:
        if e.outcome is not Outcome.SCORED and (e.score != 0 or e.model_size != 0):
            raise InvalidRanking(f"unscored submission {e.submission_id} carries score and size 0")
        if e.outcome is Outcome.SCORED and e.model_size <= 0:
            raise InvalidRanking(f"scored submission {e.submission_id} needs its model size")
        revealed = state.get_existing_submission(e.submission_id).model_cid is not None
        if e.outcome is not Outcome.INVALID and not revealed:
            raise InvalidRanking(f"submission {e.submission_id} was never revealed: INVALID")


def process_rankings(
    state: State, rankings: tuple[SignedRanking, ...], genesis_hash: bytes
) -> None:
    """Record a block's rankings: sorted by (task, evaluator), each valid, none for an
    evaluator the chain already recorded for that task (its first ranking binds it)."""
    order = [(s.ranking.task_id, s.ranking.evaluator) for s in rankings]
    if order != sorted(set(order)):
        raise InvalidRanking("a block records rankings once each, by task and evaluator")
    for signed in rankings:
        task_id, evaluator = signed.ranking.task_id, signed.ranking.evaluator
        if state.get_ranking(task_id, evaluator) is not None:
            raise InvalidRanking(
                f"the chain already holds a ranking of task {task_id} by {evaluator.hex()[:16]}"
            )
        verified = verify_ranking(signed, state, genesis_hash)
        task = state.get_existing_task(task_id)
        state.put_ranking(task_id, evaluator, verified.recorded())
        state.put_task(replace(task, rankers=tuple(sorted(task.rankers + (evaluator,)))))


def get_recorded_rankings(state: State, task: Task) -> list[tuple[PublicKey, RecordedRanking]]:
    return [(key, state.get_existing_ranking(task.id, key)) for key in task.rankers]


@dataclass(frozen=True, slots=True)
class MetaRanking:
    """The accepted values of a task and the genuine evaluators (sorted by key)."""

    baseline_outcome: Outcome
    baseline_score: int
    entries: tuple[RankEntry, ...]
    genuine: tuple[EvaluatorShare, ...]


def _values(r: RecordedRanking) -> tuple:
    return ((r.baseline_outcome, r.baseline_score),) + r.entries


def compute_meta_ranking(
    rankings: list[tuple[PublicKey, RecordedRanking]], params: Params
) -> MetaRanking | None:
    """The merge of the recorded rankings, or None while the task cannot be settled."""
    if not rankings:
        return None
    k = compute_ranking_quorum(params, sum(r.subusers for _, r in rankings))
    width = len(_values(rankings[0][1]))
    accepted = []
    for i in range(width):
        weights: dict = {}
        for _, r in rankings:
            value = _values(r)[i]
            weights[value] = weights.get(value, 0) + r.subusers
        reaching = [value for value, weight in weights.items() if weight >= k]
        if len(reaching) != 1:
            return None  # nothing agreed yet, or two values with k each: nobody can tell
        accepted.append(reaching[0])
    accepted_values = tuple(accepted)
    genuine = tuple(
        EvaluatorShare(key, r.subusers) for key, r in sorted(rankings, key=lambda kr: kr[0])
        if _values(r) == accepted_values
    )
    if sum(g.subusers for g in genuine) < k:
        return None
    (b_outcome, b_score), entries = accepted_values[0], accepted_values[1:]
    return MetaRanking(b_outcome, b_score, entries, genuine)
