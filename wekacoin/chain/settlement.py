"""Settlement (paper III-D): paying out a task from its meta-ranking.

The consensus layer decides which rankings are genuine and merges them; this module takes the
resulting `Settlement` and moves the task's escrow, deterministically:

1. the reward to the best model that beats the baseline (ties: smaller model, earlier
   submission height, lowest H(trainer key || model CID)); to the supplier if none does;
2. the hosting fee split evenly among the genuine evaluators, or burned if the supplier never
   revealed the test set (the models were then ranked on the training groups);
3. participation fees refunded to the top `refund_top_percent` of submissions;
4. the other participation fees, and 5. the newly minted settlement reward, to the evaluators.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from wekacoin.chain.accounts import credit
from wekacoin.chain.errors import InvalidSettlement
from wekacoin.chain.state import State
from wekacoin.chain.tasks import compute_task_to_settle
from wekacoin.types.genesis import Params
from wekacoin.types.ledger import Submission, Task, TaskStatus
from wekacoin.types.metric import is_better
from wekacoin.types.primitives import Address
from wekacoin.types.ranking import Outcome, RankEntry, Settlement

_TIE_DOMAIN = b"wekacoin/tie-break/v1"


@dataclass(frozen=True, slots=True)
class Payout:
    winner: Submission | None
    credits: dict[bytes, int]
    burned: int
    minted: int


def split_evenly(amount: int, recipients: list[bytes]) -> dict[bytes, int]:
    """`amount` over sorted `recipients`; the remainder goes one unit each to the first ones."""
    share, rest = divmod(amount, len(recipients))
    return {r: share + (1 if i < rest else 0) for i, r in enumerate(sorted(recipients))}


def compute_ranking_order(
    task: Task, entries: tuple[RankEntry, ...], submissions: dict[int, Submission]
) -> list[RankEntry]:
    """The SCORED entries, best first, with the tie-break order of DESIGN.md."""
    higher = task.spec.metric.higher_is_better

    def key(e: RankEntry) -> tuple:
        s = submissions[e.submission_id]
        tie = hashlib.sha256(_TIE_DOMAIN + s.trainer_key + (s.model_cid or "").encode()).digest()
        return (-e.score if higher else e.score, e.model_size, s.height, tie)

    return sorted((e for e in entries if e.outcome is Outcome.SCORED), key=key)


def compute_winner(
    task: Task, settlement: Settlement, ranked: list[RankEntry], submissions: dict[int, Submission]
) -> Submission | None:
    """The best scored submission if it strictly beats the baseline: the baseline's score on
    the same data, or its stated training score if the committee could not score it."""
    baseline = (
        settlement.baseline_score if settlement.baseline_outcome is Outcome.SCORED
        else task.baseline_score
    )
    if ranked and is_better(task.spec.metric, ranked[0].score, baseline):
        return submissions[ranked[0].submission_id]
    return None


def compute_payout(
    task: Task, settlement: Settlement, submissions: dict[int, Submission],
    evaluators: list[Address], params: Params,
) -> Payout:
    ranked = compute_ranking_order(task, settlement.entries, submissions)
    credits: dict[bytes, int] = {}

    def pay(address: bytes, amount: int) -> None:
        if amount:
            credits[address] = credits.get(address, 0) + amount

    winner = compute_winner(task, settlement, ranked, submissions)
    pay(winner.trainer if winner else task.supplier, task.spec.reward)

    n = len(submissions)
    refunded = ranked[: (n * params.refund_top_percent + 99) // 100]
    for e in refunded:
        pay(submissions[e.submission_id].trainer, submissions[e.submission_id].fee)
    forfeited = sum(s.fee for s in submissions.values()) - sum(
        submissions[e.submission_id].fee for e in refunded
    )
    hosting = task.spec.hosting_fee if task.test_revealed else 0
    minted = params.settlement_reward
    for address, amount in split_evenly(hosting + forfeited + minted, evaluators).items():
        pay(address, amount)
    return Payout(winner, credits, task.spec.hosting_fee - hosting, minted)


def process_settlement(state: State, settlement: Settlement, height: int) -> Payout:
    expected = compute_task_to_settle(state, height)
    if expected is None:
        raise InvalidSettlement(f"no task is ready to settle at height {height}")
    if settlement.task_id != expected:
        raise InvalidSettlement(f"this block settles task {expected}, not {settlement.task_id}")
    task = state.get_task(expected)
    ids = tuple(e.submission_id for e in settlement.entries)
    if ids != task.submissions:
        raise InvalidSettlement("the ranking lists every submission of the task once, in order")
    submissions = {sid: state.get_submission(sid) for sid in ids}
    for e in settlement.entries:
        _check_entry(e, submissions[e.submission_id])
    if settlement.baseline_outcome is not Outcome.SCORED and settlement.baseline_score != 0:
        raise InvalidSettlement("an unscored baseline carries score 0")
    evaluators = _evaluator_addresses(state, settlement)
    payout = compute_payout(task, settlement, submissions, evaluators, state.params)
    assert sum(payout.credits.values()) + payout.burned == task.escrow + payout.minted
    for address in sorted(payout.credits):
        credit(state, address, payout.credits[address])
    state.put_task(replace(task, status=TaskStatus.SETTLED, escrow=0, settled_height=height))
    tip = state.tip
    state.put_tip(replace(
        tip, minted=tip.minted + payout.minted, burned=tip.burned + payout.burned,
        open_tasks=tuple(t for t in tip.open_tasks if t != task.id),
    ))
    return payout


def _check_entry(e: RankEntry, s: Submission) -> None:
    if s.model_cid is None and e.outcome is not Outcome.INVALID:
        raise InvalidSettlement(f"submission {s.id} was never revealed: it can only be INVALID")
    if e.outcome is Outcome.SCORED and e.model_size <= 0:
        raise InvalidSettlement(f"scored submission {s.id} needs its model size")
    if e.outcome is not Outcome.SCORED and e.score != 0:
        raise InvalidSettlement(f"unscored submission {s.id} carries score 0")
    if e.model_size < 0:
        raise InvalidSettlement(f"submission {s.id} has a negative size")


def _evaluator_addresses(state: State, settlement: Settlement) -> list[Address]:
    keys = settlement.evaluators
    if not keys:
        raise InvalidSettlement("a settlement needs at least one genuine evaluator")
    if list(keys) != sorted(set(keys)):
        raise InvalidSettlement("evaluators are listed once each, sorted")
    signers = sorted({r.ranking.evaluator for r in settlement.rankings})
    if signers != list(keys):
        raise InvalidSettlement("the evaluators are exactly the signers of the carried rankings")
    addresses = []
    for key in keys:
        address = state.get_validator(key)
        if address is None:
            raise InvalidSettlement(f"evaluator {key.hex()} has no stake")
        addresses.append(address)
    return addresses
