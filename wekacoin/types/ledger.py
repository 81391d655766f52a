"""Records of the ledger state: accounts, tasks, submissions and chain-wide values.

Each record is stored under a key in the state (see wekacoin.chain.state); the state root
commits to every (key, canonical encoding) pair.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

from wekacoin.types.primitives import (
    Address,
    Amount,
    Hash,
    Height,
    Nonce,
    PublicKey,
    Score,
    SubmissionId,
    TaskId,
)
from wekacoin.types.tx import GroupReveal, PublishTask


@dataclass(frozen=True, slots=True)
class Pending:
    """An amount whose stake change takes effect at `height`."""

    height: Height
    amount: Amount


@dataclass(frozen=True, slots=True)
class Account:
    balance: Amount = 0
    nonce: Nonce = 0


@dataclass(frozen=True, slots=True)
class Bond:
    """An account's validator stake. Kept apart from `Account` because most accounts never
    stake, and a transfer should only rewrite a balance and a nonce."""

    validator_key: PublicKey
    """The node key whose VRF proofs and votes speak for this stake."""
    stake: Amount = 0
    """Bonded stake that counts as sortition weight now."""
    bonding: tuple[Pending, ...] = ()
    """Stake already taken from the balance, counting from its height."""
    unbonding: tuple[Pending, ...] = ()
    """Stake still counting (and locked) until its height, then returned to the balance."""
    history: tuple[Pending, ...] = ()
    """Earlier values of `stake`, oldest first: `amount` counted at heights below `height`
    (and from the previous entry's height on). Kept as long as a rule may ask for the weight
    at an earlier height (chain.accounts.weight_horizon)."""

    @property
    def total(self) -> int:
        """Coins held by the bond: counting now, or on their way in."""
        return self.stake + sum(p.amount for p in self.bonding)


class TaskStatus(IntEnum):
    PUBLISHED = 0
    """Waiting for the supplier to reveal the training groups."""
    ACTIVE = 1
    """Training revealed; the height decides the phase (see chain.tasks.compute_phase)."""
    CANCELLED = 2
    SETTLED = 3
    EXPIRED = 4
    """Ready but never settled within the settlement window (no committee agreed)."""


@dataclass(frozen=True, slots=True)
class Task:
    id: TaskId
    supplier: Address
    spec: PublishTask
    published_height: Height
    test_groups: tuple[int, ...]
    """Indices of the groups that form the test set; empty until the chain draws them from
    the seed of block `published_height + test_split_delay`."""
    status: TaskStatus
    escrow: Amount
    """Reward + hosting fee + participation fees still held by the task."""
    training_reveals: tuple[GroupReveal, ...] = ()
    baseline_cid: str = ""
    """The supplier's baseline model, revealed with the training groups."""
    baseline_score: Score = 0
    """The baseline's score on the training set, as the supplier stated it with the reveal:
    informational (relay policy checks it); the bar a model must beat is the committee's."""
    test_reveals: tuple[GroupReveal, ...] = ()
    submissions: tuple[SubmissionId, ...] = ()
    evaluation_seed: Hash = bytes(32)
    """Seed of the block at which uploads closed: it draws the task's evaluation committee,
    so every node can check an evaluator's credential when the task settles."""
    evaluation_weight: Amount = 0
    """Total sortition weight at the block that fixed `evaluation_seed`: the committee is
    weighed as of that block, so stake bonded after the seed was known weighs nothing."""
    rankers: tuple[PublicKey, ...] = ()
    """Evaluators whose ranking the chain recorded for this task, sorted."""
    settled_height: Height = 0
    """Height of the block that ended the task (settled, expired or cancelled)."""

    @property
    def test_revealed(self) -> bool:
        return bool(self.test_reveals)


@dataclass(frozen=True, slots=True)
class Submission:
    id: SubmissionId
    task_id: TaskId
    trainer: Address
    trainer_key: PublicKey
    commitment: Hash
    train_score: Score
    fee: Amount
    """Participation fee held in the task's escrow."""
    height: Height
    model_cid: str | None = None


@dataclass(frozen=True, slots=True)
class ChainTip:
    """Chain-wide values, rewritten by every block."""

    height: Height
    seed: Hash
    next_task_id: TaskId
    next_submission_id: SubmissionId
    total_stake: Amount
    minted: Amount
    """Coins created since genesis (settlement rewards)."""
    burned: Amount
    """Coins destroyed since genesis (forfeited hosting fees)."""
    open_tasks: tuple[TaskId, ...]
    """Tasks not yet cancelled or settled, ascending."""
