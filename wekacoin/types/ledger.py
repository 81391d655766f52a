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
    ByteSize,
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
    """Earlier sortition weights (`stake + storage`), oldest first: `amount` counted at
    heights below `height` (and from the previous entry's height on). Kept as long as a rule
    may ask for the weight at an earlier height (chain.accounts.weight_horizon)."""
    storage: Amount = 0
    """Storage weight that counts now (chain.storage); not money: it is never paid out."""

    @property
    def weight(self) -> int:
        """Sortition weight now: bonded stake plus storage weight."""
        return self.stake + self.storage

    @property
    def total(self) -> int:
        """Coins held by the bond: counting now, or on their way in."""
        return self.stake + sum(p.amount for p in self.bonding)


class ChallengeResult(IntEnum):
    NONE = 0
    """Never challenged yet."""
    PASSED = 1
    MISSED = 2
    """No valid proof within the response window: every claim was dropped."""


@dataclass(frozen=True, slots=True)
class ChainBlob:
    """A blob the chain knows with its size: a revealed data group, baseline or model."""

    cid: str
    size: ByteSize
    task_id: TaskId
    """The task whose reveal first named it."""


@dataclass(frozen=True, slots=True)
class Claim:
    cid: str
    size: ByteSize
    added: Height
    """Height of the block that added the claim: a challenge drawn at a later height covers it."""
    proven: bool = False
    """True once a challenge drawn over it was answered; only proven claims earn weight."""


@dataclass(frozen=True, slots=True)
class ChallengeItem:
    cid: str
    leaf_index: int


@dataclass(frozen=True, slots=True)
class Challenge:
    """The (blob, leaf) pairs a validator must prove by height `deadline`."""

    epoch: int
    drawn: Height
    """Height whose seed drew it; claims added before it are proven by answering it."""
    deadline: Height
    items: tuple[ChallengeItem, ...]
    """In draw order."""


@dataclass(frozen=True, slots=True)
class StorageRecord:
    """A validator's storage claims and challenge state (chain.storage)."""

    claims: tuple[Claim, ...] = ()
    """Ascending by CID."""
    challenge: Challenge | None = None
    """The open challenge, None once answered (or before the first)."""
    last_epoch: int = 0
    last_result: ChallengeResult = ChallengeResult.NONE
    credited: ByteSize = 0
    """Bytes credited at the last epoch boundary (each proven blob's size split among its
    holders)."""
    pending: Pending | None = None
    """The storage weight computed at the last epoch boundary, counting from its height
    (the same look-back as stake)."""


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
    baseline_size: ByteSize = 0
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
    model_size: ByteSize = 0


@dataclass(frozen=True, slots=True)
class ChainTip:
    """Chain-wide values, rewritten by every block."""

    height: Height
    seed: Hash
    next_task_id: TaskId
    next_submission_id: SubmissionId
    total_stake: Amount
    """Bonded stake counting now (money: conservation counts it)."""
    minted: Amount
    """Coins created since genesis (settlement rewards)."""
    burned: Amount
    """Coins destroyed since genesis (forfeited hosting fees)."""
    open_tasks: tuple[TaskId, ...]
    """Tasks not yet cancelled or settled, ascending."""
    total_storage: Amount = 0
    """Storage weight counting now, summed over validators (not money)."""
    storage_validators: tuple[Address, ...] = ()
    """Accounts holding a storage record, ascending: the epoch boundary visits them."""

    @property
    def total_weight(self) -> int:
        """The sortition weight W every committee is drawn against."""
        return self.total_stake + self.total_storage
