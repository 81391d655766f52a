"""Ranking agreement (paper III-C): candidate rankings, the genuine rule, the meta-ranking.

Members of a task's evaluation committee (sortition role EVALUATOR over the task's
`evaluation_seed`) score every submission and sign a `CandidateRanking`. From the rankings a
node has received, the settlement is merged deterministically:

- Each ranking counts with its evaluator's sortition weight j (sub-users), never per key, so
  splitting stake over keys buys no influence. An evaluator that signed two different rankings
  for one task has both discarded.
- Per submission (and for the baseline) the value (outcome, score, model size) carried by at
  least k of weight is accepted, with k = floor(tau_evaluators * ranking_quorum_percent / 100)
  + 1: |vc| is the committee's expected size, in sub-users, known to every node in advance;
  the weight that actually shows up is not, and a proposer could shrink it by leaving rankings
  out. A model some evaluators mark INVALID or UNEVALUATED still counts as scored when k of
  weight agree on its score (the paper's rule); INVALID and UNEVALUATED are accepted like any
  other value when k agree on them.
- A ranking is genuine iff every one of its values is the accepted one: a different score, or
  INVALID or UNEVALUATED where a score was accepted, is a minority claim and the paper
  discards the ranking (its evaluator is then not paid).
- A task can be settled only when every value has been accepted and the genuine rankings
  weigh at least k. The settlement carries exactly the genuine rankings, so they are
  identical, and anyone can check the merge from the block alone (`verify_settlement`); no
  choice of which rankings to carry can change an accepted value.

A minority of the committee reporting false scores therefore changes nothing: their values
never reach k, and their rankings are not genuine. The price of this strictness is liveness: if
the honest weight of a committee falls short of k, or honest evaluators split (a model at the
edge of its time limit), the task waits for more rankings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from wekacoin.chain.state import State
from wekacoin.chain.tasks import compute_task_to_settle, upload_end
from wekacoin.crypto.keys import KeyPair, verify_signature
from wekacoin.errors import WekaError
from wekacoin.sortition import Role, Selection, select, sortition_alpha, verify
from wekacoin.types.genesis import Params
from wekacoin.types.ledger import Task, TaskStatus
from wekacoin.types.primitives import PublicKey, Signature
from wekacoin.types.ranking import (
    CandidateRanking, Outcome, RankEntry, Settlement, SignedRanking, ranking_signing_message,
)


class RankingError(WekaError):
    """A ranking or a settlement that the ranking rules refuse."""


class InvalidRanking(RankingError):
    pass


class SettlementRejected(RankingError):
    pass


def compute_ranking_quorum(params: Params) -> int:
    """k: the weight (in evaluation sub-users) that must agree on a value."""
    return params.tau_evaluators * params.ranking_quorum_percent // 100 + 1


def evaluation_alpha(task: Task) -> bytes:
    return sortition_alpha(task.evaluation_seed, Role.EVALUATOR, task.id)


def is_rankable(task: Task | None, state: State) -> bool:
    """Whether the task's evaluation committee is drawn: uploads closed, not settled."""
    return (
        task is not None and task.status is TaskStatus.ACTIVE
        and state.height >= upload_end(task, state.params)
    )


def select_evaluator(key: KeyPair, task: Task, state: State) -> Selection | None:
    """This key's seat on the task's evaluation committee, if it has one."""
    if not is_rankable(task, state):
        return None
    return select(
        key, evaluation_alpha(task), state.get_weight(key.public_key), state.tip.total_stake,
        state.params.tau_evaluators,
    )


def sign_ranking(key: KeyPair, genesis_hash: bytes, ranking: CandidateRanking) -> SignedRanking:
    if ranking.evaluator != key.public_key:
        raise ValueError("a ranking is signed by its evaluator")
    return SignedRanking(ranking, Signature(key.sign(ranking_signing_message(genesis_hash, ranking))))


@dataclass(frozen=True, slots=True)
class VerifiedRanking:
    """A signed ranking by a committee member, well formed for its task; only
    `verify_ranking` makes one."""

    signed: SignedRanking
    subusers: int

    @property
    def evaluator(self) -> PublicKey:
        return self.signed.ranking.evaluator

    @property
    def values(self) -> tuple:
        r = self.signed.ranking
        return ((r.baseline_outcome, r.baseline_score),) + r.entries


def verify_ranking(signed: SignedRanking, state: State, genesis_hash: bytes) -> VerifiedRanking:
    """Check a received ranking against the ledger `state` (the tip, or the parent of the
    block that settles the task): signature, committee seat, and its shape."""
    r = signed.ranking
    task = state.get_task(r.task_id)
    if not is_rankable(task, state):
        raise InvalidRanking(f"task {r.task_id} is not being ranked")
    _check_shape(r, task, state)
    if not verify_signature(r.evaluator, ranking_signing_message(genesis_hash, r), signed.signature):
        raise InvalidRanking("the signature does not match the evaluator")
    seat = verify(
        r.evaluator, r.credential, evaluation_alpha(task), state.get_weight(r.evaluator),
        state.tip.total_stake, state.params.tau_evaluators,
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
        if e.outcome is not Outcome.SCORED and e.score != 0:
            raise InvalidRanking(f"unscored submission {e.submission_id} carries score 0")
        if e.outcome is Outcome.SCORED and e.model_size <= 0:
            raise InvalidRanking(f"scored submission {e.submission_id} needs its model size")
        if e.model_size < 0:
            raise InvalidRanking(f"submission {e.submission_id} has a negative size")
        if e.outcome is not Outcome.INVALID and state.get_submission(e.submission_id).model_cid is None:
            raise InvalidRanking(f"submission {e.submission_id} was never revealed: INVALID")


def compute_settlement(
    task_id: int, rankings: Iterable[VerifiedRanking], k: int
) -> Settlement | None:
    """The meta-ranking of the task and its genuine rankings, or None while it cannot be
    settled (a value without k of agreeing weight, or genuine rankings weighing under k)."""
    by_evaluator: dict[bytes, VerifiedRanking | None] = {}
    for v in rankings:
        if v.signed.ranking.task_id != task_id:
            continue
        seen = by_evaluator.get(v.evaluator, v)
        by_evaluator[v.evaluator] = v if seen == v else None  # two rankings: discard both
    counted = [v for v in by_evaluator.values() if v is not None]
    if not counted:
        return None
    accepted = []
    for i in range(len(counted[0].values)):
        weights: dict = {}
        for v in counted:
            weights[v.values[i]] = weights.get(v.values[i], 0) + v.subusers
        best = max(weights, key=lambda value: (weights[value], _order(value)))
        if weights[best] < k:
            return None
        accepted.append(best)
    accepted_values = tuple(accepted)
    genuine = sorted(
        (v for v in counted if v.values == accepted_values), key=lambda v: v.evaluator
    )
    if sum(v.subusers for v in genuine) < k:
        return None
    (b_outcome, b_score), entries = accepted_values[0], accepted_values[1:]
    return Settlement(
        task_id, b_outcome, b_score, entries, tuple(v.evaluator for v in genuine),
        tuple(v.signed for v in genuine),
    )


def _order(value: tuple | RankEntry) -> tuple:
    """A total order on values, to break a tie between two values that both reach k
    (possible only when far more than tau sub-users rank): the lower one wins."""
    if isinstance(value, RankEntry):
        value = (value.outcome, value.score, value.model_size)
    return tuple(-int(x) for x in value)


def verify_settlement(
    settlement: Settlement, state: State, genesis_hash: bytes,
    own: CandidateRanking | None = None, verify_one=verify_ranking,
) -> None:
    """Raise SettlementRejected unless a block extending `state` may carry `settlement`.

    The carried rankings must be signed by committee members, be listed once each in
    evaluator order, and merge into exactly this settlement, all of them genuine. `own` is
    the voter's own ranking of the task if it evaluated it: then every value must equal its
    own. `verify_one` lets a caller put a cache in front of `verify_ranking`.
    """
    expected = compute_task_to_settle(state, state.height + 1)
    if settlement.task_id != expected:
        raise SettlementRejected(f"this block settles task {expected}, not {settlement.task_id}")
    keys = [r.ranking.evaluator for r in settlement.rankings]
    if keys != sorted(set(keys)):
        raise SettlementRejected("rankings are listed once per evaluator, in evaluator order")
    try:
        verified = [verify_one(r, state, genesis_hash) for r in settlement.rankings]
    except InvalidRanking as e:
        raise SettlementRejected(f"a carried ranking is invalid: {e}") from None
    merged = compute_settlement(settlement.task_id, verified, compute_ranking_quorum(state.params))
    if merged != settlement:
        raise SettlementRejected("the settlement is not the merge of its genuine rankings")
    if own is not None and own.task_id == settlement.task_id:
        if (own.baseline_outcome, own.baseline_score, own.entries) != (
            settlement.baseline_outcome, settlement.baseline_score, settlement.entries
        ):
            raise SettlementRejected("the meta-ranking differs from this node's own scores")
