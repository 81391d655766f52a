"""Transactions: what users sign.

A `Tx` is a signed envelope: `payload` is the canonical encoding of an `UnsignedTx` and the
signature covers a domain tag, the genesis hash (so a transaction cannot be replayed on another
chain) and exactly those bytes, so verifying never re-encodes anything. The sender's nonce
prevents replay on this chain. A `Tx` proves nothing until
`wekacoin.chain.transactions.verify_tx` turns it into a `VerifiedTx`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from wekacoin.types.codec import decode
from wekacoin.types.metric import Metric, TaskKind
from wekacoin.types.primitives import (
    Address,
    Amount,
    Hash,
    Height,
    Millis,
    Nonce,
    Nonce32,
    PublicKey,
    Score,
    Signature,
    TaskId,
)

TX_SIGNING_DOMAIN = b"wekacoin/tx/v1"
VALIDATOR_KEY_DOMAIN = b"wekacoin/validator-key/v1"


@dataclass(frozen=True, slots=True)
class Transfer:
    KIND: ClassVar[int] = 1
    to: Address
    amount: Amount


@dataclass(frozen=True, slots=True)
class DataSchema:
    """Layout of every data group: CSV columns, which one is the label, and the task kind."""

    kind: TaskKind
    feature_columns: tuple[str, ...]
    label_column: str


@dataclass(frozen=True, slots=True)
class TaskLimits:
    max_model_bytes: int
    eval_time_ms: Millis
    """Wall-clock budget to evaluate one model."""


@dataclass(frozen=True, slots=True)
class PublishTask:
    """A competition. `group_commitments[i]` commits to data group i (see chain.tasks)."""

    KIND: ClassVar[int] = 2
    title: str
    metric: Metric
    schema: DataSchema
    limits: TaskLimits
    tbh: Height
    """Test release height: submissions close and the test groups are revealed from here."""
    reward: Amount
    hosting_fee: Amount
    participation_fee: Amount
    group_commitments: tuple[Hash, ...]


@dataclass(frozen=True, slots=True)
class GroupReveal:
    index: int
    cid: str
    nonce: Nonce32


@dataclass(frozen=True, slots=True)
class RevealTraining:
    """The training groups, the baseline model and its score on them. The supplier can train
    and score the baseline only now: the chain draws the split after the task is published."""

    KIND: ClassVar[int] = 3
    task_id: TaskId
    groups: tuple[GroupReveal, ...]
    baseline_cid: str
    baseline_score: Score


@dataclass(frozen=True, slots=True)
class SubmitModel:
    KIND: ClassVar[int] = 4
    task_id: TaskId
    commitment: Hash
    """model_commitment(trainer address, model CID)."""
    train_score: Score


@dataclass(frozen=True, slots=True)
class RevealTest:
    KIND: ClassVar[int] = 5
    task_id: TaskId
    groups: tuple[GroupReveal, ...]


@dataclass(frozen=True, slots=True)
class RevealModel:
    KIND: ClassVar[int] = 6
    task_id: TaskId
    model_cid: str


@dataclass(frozen=True, slots=True)
class Stake:
    """Bond `amount` as validator stake; its weight counts after the sortition look-back."""

    KIND: ClassVar[int] = 7
    amount: Amount
    validator_key: PublicKey
    """The node key whose VRF proofs and votes speak for this stake."""
    key_proof: Signature
    """Proof of possession: the validator key's signature over
    `validator_key_message(genesis hash, staking account's address)`, so nobody can register
    (squat) a key whose secret they do not hold, and a proof made for one account or chain
    counts for no other."""


@dataclass(frozen=True, slots=True)
class Unstake:
    KIND: ClassVar[int] = 8
    amount: Amount


TxBody = (
    Transfer | PublishTask | RevealTraining | SubmitModel | RevealTest | RevealModel | Stake
    | Unstake
)


@dataclass(frozen=True, slots=True)
class UnsignedTx:
    sender: PublicKey
    nonce: Nonce
    fee: Amount
    body: TxBody


@dataclass(frozen=True, slots=True)
class Tx:
    payload: bytes
    """encode(UnsignedTx): the bytes the signature covers."""
    signature: Signature
    unsigned: UnsignedTx = field(init=False, compare=False, repr=False)
    """Decoded from `payload` on construction (DecodeError if it is not canonical)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "unsigned", decode(UnsignedTx, self.payload))


def signing_message(genesis_hash: bytes, payload: bytes) -> bytes:
    return TX_SIGNING_DOMAIN + genesis_hash + payload


def validator_key_message(genesis_hash: bytes, staker: bytes) -> bytes:
    """What a Stake's `key_proof` signs: the validator key consents to speak for the stake of
    the account `staker` (its 20-byte address) on the chain of `genesis_hash`."""
    return VALIDATOR_KEY_DOMAIN + genesis_hash + staker


@dataclass(frozen=True, slots=True)
class VerifiedTx:
    """A transaction whose signature has been checked; built only by `verify_tx`."""

    tx: Tx
    id: Hash
    sender: Address
    size: int

    @property
    def body(self) -> TxBody:
        return self.tx.unsigned.body

    @property
    def nonce(self) -> int:
        return self.tx.unsigned.nonce

    @property
    def fee(self) -> int:
        return self.tx.unsigned.fee
