"""Settlement (paper III-D): paying out a task from the rankings the chain recorded.

At the start of every block, before its transactions, each task that is ready (its
evaluation window over, its settlement deadline not passed) is settled if its recorded
rankings merge into a meta-ranking (chain.rankings): the most submissions first, then the
lowest task id, at most `max_settlements_per_block` a block. A task that cannot settle yet
does not hold back the others. Settling moves the task's escrow, deterministically:

1. the reward to the best scored model (ties: smaller model, earlier submission height,
   lowest H(trainer key || model CID)) if it strictly beats the baseline's agreed score, or
   if the committee could not score the baseline at all (a supplier whose baseline cannot
   be run sets no bar); otherwise back to the supplier;
2. the hosting fee to the genuine evaluators, or burned if the supplier never revealed the
   test set (the models were then ranked on the training groups);
3. participation fees refunded to the top `refund_top_percent` of submissions;
4. the other participation fees, and 5. the newly minted settlement reward, to the genuine
   evaluators.
Evaluators' amounts (2, 4, 5) are split in proportion to their sub-users; the remainder of
the integer division goes one unit each to the first evaluators by key. The chain keeps a
`TaskSettlement` record of the outcome and of every payment.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from wekacoin.chain.accounts import credit
from wekacoin.chain.rankings import MetaRanking, compute_meta_ranking, get_recorded_rankings
from wekacoin.chain.state import State
from wekacoin.chain.tasks import forget_rankings, ready_height, settlement_deadline
from wekacoin.types.genesis import Params
from wekacoin.types.ledger import Submission, Task, TaskStatus
from wekacoin.types.metric import is_better
from wekacoin.types.primitives import Address, SubmissionId
from wekacoin.types.ranking import Outcome, Payment, RankEntry, Resolution, TaskSettlement

_TIE_DOMAIN = b"wekacoin/tie-break/v1"


@dataclass(frozen=True, slots=True)
class Payout:
    winner: Submission | None
    credits: dict[bytes, int]
    burned: int
    minted: int


def split_by_weight(amount: int, weights: list[tuple[bytes, int]]) -> dict[bytes, int]:
    """`amount` over recipients in proportion to their (positive) weights; the remainder goes
    one unit each to the first recipients in sorted order."""
    total = sum(w for _, w in weights)
    shares = {r: amount * w // total for r, w in sorted(weights)}
    rest = amount - sum(shares.values())
    for i, r in enumerate(sorted(shares)):
        shares[r] += 1 if i < rest else 0
    return shares


def compute_ranking_order(
    task: Task, entries: tuple[RankEntry, ...], submissions: dict[int, Submission]
) -> list[RankEntry]:
    """The SCORED entries, best first, with the tie-break order of the module docstring."""
    higher = task.spec.metric.higher_is_better

    def key(e: RankEntry) -> tuple:
        s = submissions[e.submission_id]
        tie = hashlib.sha256(_TIE_DOMAIN + s.trainer_key + (s.model_cid or "").encode()).digest()
        return (-e.score if higher else e.score, e.model_size, s.height, tie)

    return sorted((e for e in entries if e.outcome is Outcome.SCORED), key=key)


def compute_winner(
    task: Task, baseline_outcome: Outcome, baseline_score: int, ranked: list[RankEntry],
    submissions: dict[int, Submission],
) -> Submission | None:
    """The best scored submission, if it strictly beats the committee's score of the
    baseline; with no agreed baseline score, the best scored submission."""
    if not ranked:
        return None
    best = ranked[0]
    if baseline_outcome is Outcome.SCORED and not is_better(
        task.spec.metric, best.score, baseline_score
    ):
        return None
    return submissions[best.submission_id]


def compute_payout(
    task: Task, meta: MetaRanking, submissions: dict[int, Submission],
    evaluators: list[tuple[Address, int]], params: Params,
) -> Payout:
    ranked = compute_ranking_order(task, meta.entries, submissions)
    credits: dict[bytes, int] = {}

    def pay(address: bytes, amount: int) -> None:
        if amount:
            credits[address] = credits.get(address, 0) + amount

    winner = compute_winner(task, meta.baseline_outcome, meta.baseline_score, ranked, submissions)
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
    for address, amount in split_by_weight(hosting + forfeited + minted, evaluators).items():
        pay(address, amount)
    return Payout(winner, credits, task.spec.hosting_fee - hosting, minted)


def compute_ready_tasks(state: State, height: int) -> list[Task]:
    """Tasks block `height` may settle, in settlement priority (paper III-C): most
    submissions, then lowest id."""
    params = state.params
    ready = [
        task for task_id in state.tip.open_tasks
        if (task := state.get_existing_task(task_id)).status is TaskStatus.ACTIVE
        and ready_height(task, params) <= height <= settlement_deadline(task, params)
    ]
    return sorted(ready, key=lambda t: (-len(t.submissions), t.id))


def process_settlements(state: State, height: int) -> list[TaskSettlement]:
    """At the start of block `height`: settle the ready tasks whose recorded rankings agree."""
    records: list[TaskSettlement] = []
    for task in compute_ready_tasks(state, height):
        if len(records) == state.params.max_settlements_per_block:
            break
        meta = compute_meta_ranking(get_recorded_rankings(state, task), state.params)
        if meta is not None:
            records.append(settle_task(state, task, meta, height))
    return records


def settle_task(state: State, task: Task, meta: MetaRanking, height: int) -> TaskSettlement:
    submissions = {sid: state.get_existing_submission(sid) for sid in task.submissions}
    evaluators = [(state.get_existing_validator(g.evaluator), g.subusers) for g in meta.genuine]
    payout = compute_payout(task, meta, submissions, evaluators, state.params)
    assert sum(payout.credits.values()) + payout.burned == task.escrow + payout.minted
    for address in sorted(payout.credits):
        credit(state, address, payout.credits[address])
    forget_rankings(state, task)
    state.put_task(replace(
        task, status=TaskStatus.SETTLED, escrow=0, settled_height=height, rankers=(),
    ))
    tip = state.tip
    state.put_tip(replace(
        tip, minted=tip.minted + payout.minted, burned=tip.burned + payout.burned,
        open_tasks=tuple(t for t in tip.open_tasks if t != task.id),
    ))
    record = TaskSettlement(
        task.id, height, Resolution.WON if payout.winner else Resolution.BASELINE_KEPT,
        SubmissionId(payout.winner.id if payout.winner else 0), meta.baseline_outcome,
        meta.baseline_score, meta.entries, meta.genuine,
        tuple(Payment(a, payout.credits[a]) for a in sorted(payout.credits)),
        payout.minted, payout.burned,
    )
    state.put_settlement(record)
    return record
