"""Transactions: what users sign.

A `Tx` is a signed envelope: `payload` is the canonical encoding of an `UnsignedTx` and the
signature covers a domain tag, the genesis hash (so a transaction cannot be replayed on another
chain) and the SHA-256 of exactly those bytes (the transaction id), so verifying never
re-encodes anything and costs the same for a 256 KiB storage proof as for a transfer. The
sender's nonce prevents replay on this chain. A `Tx` proves nothing until
`wekacoin.chain.transactions.verify_tx` turns it into a `VerifiedTx`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import ClassVar

from wekacoin.types.codec import decode
from wekacoin.types.metric import Metric, TaskKind
from wekacoin.types.primitives import (
    Address,
    Amount,
    ByteSize,
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
    size: ByteSize
    """The group's byte size; a fetcher that finds another size treats it like a CID
    mismatch, and storage proofs are checked against it."""
    nonce: Nonce32


@dataclass(frozen=True, slots=True)
class RevealTraining:
    """The training groups, the baseline model and its score on them. The supplier can train
    and score the baseline only now: the chain draws the split after the task is published."""

    KIND: ClassVar[int] = 3
    task_id: TaskId
    groups: tuple[GroupReveal, ...]
    baseline_cid: str
    baseline_size: ByteSize
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
    model_size: ByteSize


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


@dataclass(frozen=True, slots=True)
class ClaimStorage:
    """A validator declares which chain blobs it holds (`add`) or no longer holds (`drop`),
    each list in ascending CID order. A claim earns storage weight only once a challenge over
    it has been answered (see chain.storage)."""

    KIND: ClassVar[int] = 9
    add: tuple[str, ...]
    drop: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class LeafProof:
    """Leaf `leaf_index` of the blob `cid`: the DAG nodes from the root down to the leaf's
    parent (none for a one-leaf blob) and the leaf's file bytes (content.proof)."""

    cid: str
    leaf_index: int
    nodes: tuple[bytes, ...]
    leaf: bytes


@dataclass(frozen=True, slots=True)
class StorageProof:
    """A validator's answer to the storage challenge of `epoch`: one proof per challenged
    (blob, leaf), in the order the chain drew them."""

    KIND: ClassVar[int] = 10
    epoch: int
    proofs: tuple[LeafProof, ...]


TxBody = (
    Transfer | PublishTask | RevealTraining | SubmitModel | RevealTest | RevealModel | Stake
    | Unstake | ClaimStorage | StorageProof
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
    id: bytes = field(init=False, compare=False, repr=False)
    """The transaction id, SHA-256 of `payload`: hashed once here, however many places ask
    (a storage proof is 256 KiB)."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "unsigned", decode(UnsignedTx, self.payload))
        object.__setattr__(self, "id", hashlib.sha256(self.payload).digest())


def signing_message(genesis_hash: bytes, payload: bytes) -> bytes:
    """What a transaction's signature signs: the domain, the chain, and the transaction id
    (SHA-256 of the payload)."""
    return id_signing_message(genesis_hash, hashlib.sha256(payload).digest())


def id_signing_message(genesis_hash: bytes, tx_id: bytes) -> bytes:
    return TX_SIGNING_DOMAIN + genesis_hash + tx_id


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
