"""The ledger state: typed records under byte keys, layered copy-on-write, with a state root.

Keys (one byte of namespace, then a fixed-width id):

    A + address(20)               Account
    B + address(20)               Bond (validator stake)
    T + task id(8, big endian)    Task
    S + submission id(8)          Submission
    C + trainer(20) + task id(8) + commitment   that trainer's SubmissionId (duplicates refused)
    V + validator key(32)         Address that bonded stake under that key
    Q + height(8)                 StakeAgenda: accounts with stake changes maturing at height
    R + task id(8) + evaluator(32) RecordedRanking: an evaluator's ranking of an open task
    M + task id(8)                TaskSettlement: how a task ended, where its escrow went
    O + sha256(cid)(32)           ChainBlob: a blob a reveal named, with its size
    H + address(20)               StorageRecord: a validator's storage claims and challenge
    G                             ChainTip

A `State` reads through to its parent (another `State` or a `StateSource`, e.g. a dict or the
LevelDB store) and keeps its own writes, so a block is applied on a child and simply dropped if
it is invalid. A layer must not be written once it has children. Nothing here does I/O.

State root: a lattice hash (LtHash16, Lewi et al. 2019, as used for Solana's accounts hash):
every entry maps to 1024 16-bit lanes (BLAKE3 XOF of key and value), the state's vector is
their lane-wise sum mod 2**16, and the root is SHA-256 of that vector. Updating it costs two
hashes per changed entry whatever the size of the state, and it can be recomputed from scratch
by scanning the entries (which the store does to check a data directory).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Protocol

import blake3
import numpy as np

from wekacoin.types.codec import decode_trusted, encode
from wekacoin.types.genesis import Params
from wekacoin.types.ledger import (
    Account,
    Bond,
    ChainBlob,
    ChainTip,
    StorageRecord,
    Submission,
    Task,
)
from wekacoin.types.primitives import Address, Height, PublicKey, SubmissionId
from wekacoin.types.ranking import RecordedRanking, TaskSettlement

_LANES = 1024
_LANE_BYTES = 2 * _LANES
_ROOT_DOMAIN = b"wekacoin/state-root/v1"


class StateSource(Protocol):
    """Read access to encoded state entries (a dict, or a snapshot of the chain store).

    A source holds entries this node wrote itself, so they are decoded without the
    canonical-form check untrusted bytes get."""

    def get(self, key: bytes, default: None = None) -> bytes | None: ...

    def items(self) -> Iterable[tuple[bytes, bytes]]:
        """Every entry; used only for full scans (flattening, recomputing the root)."""
        ...


@dataclass(frozen=True, slots=True)
class StakeAgenda:
    addresses: tuple[Address, ...]


def account_key(address: bytes) -> bytes:
    return b"A" + address


def bond_key(address: bytes) -> bytes:
    return b"B" + address


def task_key(task_id: int) -> bytes:
    return b"T" + task_id.to_bytes(8, "big")


def submission_key(submission_id: int) -> bytes:
    return b"S" + submission_id.to_bytes(8, "big")


def commitment_key(trainer: bytes, task_id: int, commitment: bytes) -> bytes:
    return b"C" + trainer + task_id.to_bytes(8, "big") + commitment


def validator_key(key: bytes) -> bytes:
    return b"V" + key


def agenda_key(height: int) -> bytes:
    return b"Q" + height.to_bytes(8, "big")


def ranking_key(task_id: int, evaluator: bytes) -> bytes:
    return b"R" + task_id.to_bytes(8, "big") + evaluator


def settlement_key(task_id: int) -> bytes:
    return b"M" + task_id.to_bytes(8, "big")


def blob_key(cid: str) -> bytes:
    return b"O" + hashlib.sha256(cid.encode("ascii")).digest()


def storage_key(address: bytes) -> bytes:
    return b"H" + address


TIP_KEY = b"G"

_RECORD_TYPES: dict[int, type] = {
    ord("A"): Account,
    ord("B"): Bond,
    ord("T"): Task,
    ord("S"): Submission,
    ord("Q"): StakeAgenda,
    ord("R"): RecordedRanking,
    ord("M"): TaskSettlement,
    ord("O"): ChainBlob,
    ord("H"): StorageRecord,
    ord("G"): ChainTip,
}
_RAW_NAMESPACES = frozenset({ord("C"), ord("V")})  # values are plain bytes / ids


def _decode_value(key: bytes, raw: bytes) -> Any:
    ns = key[0]
    if ns in _RAW_NAMESPACES:
        return raw
    return decode_trusted(_RECORD_TYPES[ns], raw)


def _encode_value(key: bytes, value: Any) -> bytes:
    if key[0] in _RAW_NAMESPACES:
        return value
    return encode(value)


@dataclass(frozen=True, slots=True)
class ChainConfig:
    """What every state of one chain shares: its identity and its parameters."""

    chain_id: str
    genesis_hash: bytes
    params: Params


_MISSING = object()
_EMPTY_ACCOUNT = Account()


class State:
    """A layer of ledger state over a parent layer or a source of encoded entries."""

    __slots__ = (
        "config", "block_hash", "_parent", "_source", "_records", "_written", "_encodings",
        "_lattice",
    )

    def __init__(
        self,
        config: ChainConfig,
        source: StateSource | None = None,
        *,
        parent: State | None = None,
        lattice: np.ndarray | None = None,
        block_hash: bytes | None = None,
    ) -> None:
        self.config = config
        self.block_hash = block_hash
        """Hash of the block that produced this state (the genesis hash for genesis); it is
        not an entry because the block's header commits to the state, not the reverse."""
        self._parent = parent
        self._source = source if source is not None else {}
        self._records: dict[bytes, Any] = {}
        self._written: set[bytes] = set()
        # Encoded entries: those written here (on demand), and those a root layer has read.
        self._encodings: dict[bytes, bytes | None] = {}
        self._lattice = lattice  # None: compute lazily (from the parent, or by a full scan)

    @property
    def params(self) -> Params:
        return self.config.params

    def get_block_hash(self) -> bytes:
        """`block_hash` of a state that a block produced (every state but a block's layer
        while it is being applied)."""
        assert self.block_hash is not None, "no block has produced this state yet"
        return self.block_hash

    # -- layers --

    def child(self) -> State:
        return State(self.config, parent=self)

    def changes(self) -> dict[bytes, bytes | None]:
        """This layer's writes, encoded; None marks a deleted entry."""
        return {key: self._encoded(key) for key in sorted(self._written)}

    def flattened(self) -> State:
        """A root layer holding every entry of this state in a new dict (O(size of state))."""
        merged = dict(self.items())
        return State(self.config, merged, lattice=self.lattice(), block_hash=self.block_hash)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, encoded value), in key order. Needs an iterable source at the bottom."""
        layers: list[State] = []
        s: State | None = self
        while s is not None:
            layers.append(s)
            s = s._parent
        bottom = layers[-1]._source
        merged: dict[bytes, bytes | None] = dict(bottom.items())
        for layer in reversed(layers):
            for key in layer._written:
                merged[key] = layer._encoded(key)
        for key in sorted(merged):
            value = merged[key]
            if value is not None:
                yield key, value

    # -- raw access --

    def previous_raw(self, key: bytes) -> bytes | None:
        """The entry as it was below this layer (what undoing this layer restores)."""
        if self._parent is not None:
            return self._parent.get_raw(key)
        return self._source.get(key)

    def get_raw(self, key: bytes) -> bytes | None:
        if key in self._encodings:
            return self._encodings[key]
        if key in self._written:
            return self._encoded(key)
        if self._parent is not None:
            return self._parent.get_raw(key)
        return self._source.get(key)

    def _encoded(self, key: bytes) -> bytes | None:
        if key in self._encodings:
            return self._encodings[key]
        value = self._records[key]
        raw = None if value is None else _encode_value(key, value)
        self._encodings[key] = raw
        return raw

    def _get(self, key: bytes) -> Any:
        value = self._records.get(key, _MISSING)
        if value is _MISSING:
            if self._parent is not None:
                value = self._parent._get(key)
            else:
                raw = self._source.get(key)
                value = None if raw is None else _decode_value(key, raw)
                self._encodings[key] = raw  # the root and the undo record read it again
            self._records[key] = value
        return value

    def _put(self, key: bytes, value: Any) -> None:
        self._records[key] = value
        self._written.add(key)
        self._encodings.pop(key, None)
        self._lattice = None

    # -- typed access --

    def get_account(self, address: bytes) -> Account:
        return self._get(account_key(address)) or _EMPTY_ACCOUNT

    def put_account(self, address: bytes, account: Account) -> None:
        empty = account.balance == 0 and account.nonce == 0
        self._put(account_key(address), None if empty else account)

    def get_bond(self, address: bytes) -> Bond | None:
        return self._get(bond_key(address))

    def get_existing_bond(self, address: bytes) -> Bond:
        """The bond of an account the state names as having one (a stake agenda entry)."""
        bond = self.get_bond(address)
        assert bond is not None, f"the state names {address.hex()} as bonded but holds no bond"
        return bond

    def put_bond(self, address: bytes, bond: Bond | None) -> None:
        self._put(bond_key(address), bond)

    def get_task(self, task_id: int) -> Task | None:
        return self._get(task_key(task_id))

    def get_existing_task(self, task_id: int) -> Task:
        """A task the state itself refers to (the tip's open tasks, a ranking, a submission)."""
        task = self.get_task(task_id)
        assert task is not None, f"the state refers to task {task_id} but does not hold it"
        return task

    def put_task(self, task: Task) -> None:
        self._put(task_key(task.id), task)

    def get_submission(self, submission_id: int) -> Submission | None:
        return self._get(submission_key(submission_id))

    def get_existing_submission(self, submission_id: int) -> Submission:
        """A submission the state itself refers to (a task's list, the commitment index)."""
        submission = self.get_submission(submission_id)
        assert submission is not None, (
            f"the state refers to submission {submission_id} but does not hold it"
        )
        return submission

    def put_submission(self, submission: Submission) -> None:
        self._put(submission_key(submission.id), submission)

    def get_commitment(
        self, trainer: bytes, task_id: int, commitment: bytes
    ) -> SubmissionId | None:
        raw = self._get(commitment_key(trainer, task_id, commitment))
        return None if raw is None else SubmissionId(int.from_bytes(raw, "big"))

    def put_commitment(self, trainer: bytes, task_id: int, commitment: bytes, sid: int) -> None:
        self._put(commitment_key(trainer, task_id, commitment), sid.to_bytes(8, "big"))

    def get_validator(self, key: bytes) -> Address | None:
        return self._get(validator_key(key))

    def get_existing_validator(self, key: bytes) -> Address:
        """The account of a key that bonded stake once (keys stay registered for good)."""
        address = self.get_validator(key)
        assert address is not None, f"validator key {key.hex()} was never registered"
        return address

    def put_validator(self, key: bytes, address: bytes) -> None:
        self._put(validator_key(key), address)

    def get_agenda(self, height: int) -> tuple[Address, ...]:
        agenda = self._get(agenda_key(height))
        return () if agenda is None else agenda.addresses

    def put_agenda(self, height: int, addresses: tuple[Address, ...]) -> None:
        self._put(agenda_key(height), StakeAgenda(addresses) if addresses else None)

    def get_ranking(self, task_id: int, evaluator: bytes) -> RecordedRanking | None:
        return self._get(ranking_key(task_id, evaluator))

    def get_existing_ranking(self, task_id: int, evaluator: bytes) -> RecordedRanking:
        """A ranking the state itself refers to (one of the task's `rankers`)."""
        ranking = self.get_ranking(task_id, evaluator)
        assert ranking is not None, (
            f"task {task_id} names {evaluator.hex()} as a ranker but the state holds no ranking"
        )
        return ranking

    def put_ranking(self, task_id: int, evaluator: bytes, ranking: RecordedRanking | None) -> None:
        self._put(ranking_key(task_id, evaluator), ranking)

    def get_settlement(self, task_id: int) -> TaskSettlement | None:
        return self._get(settlement_key(task_id))

    def put_settlement(self, record: TaskSettlement) -> None:
        self._put(settlement_key(record.task_id), record)

    def get_blob(self, cid: str) -> ChainBlob | None:
        return self._get(blob_key(cid))

    def put_blob(self, blob: ChainBlob) -> None:
        self._put(blob_key(blob.cid), blob)

    def get_storage(self, address: bytes) -> StorageRecord | None:
        return self._get(storage_key(address))

    def put_storage(self, address: bytes, record: StorageRecord | None) -> None:
        self._put(storage_key(address), record)

    @property
    def tip(self) -> ChainTip:
        return self._get(TIP_KEY)

    def put_tip(self, tip: ChainTip) -> None:
        self._put(TIP_KEY, tip)

    @property
    def height(self) -> Height:
        return self.tip.height

    def get_weight(self, key: PublicKey) -> int:
        """Sortition weight of a validator key: the stake bonded under it plus its storage
        weight (0 if none)."""
        address = self.get_validator(key)
        bond = None if address is None else self.get_bond(address)
        return 0 if bond is None else bond.weight

    def get_weight_at(self, key: PublicKey, height: int) -> int:
        """The weight `key` had in block `height` (at most `weight_horizon` blocks ago)."""
        address = self.get_validator(key)
        bond = None if address is None else self.get_bond(address)
        if bond is None:
            return 0
        for past in bond.history:
            if height < past.height:
                return past.amount
        return bond.weight

    # -- state root --

    def lattice(self) -> np.ndarray:
        if self._lattice is None:
            if self._parent is None:
                self._lattice = lattice_of(self.items())
            else:
                self._lattice = _apply_lattice_delta(
                    self._parent.lattice(),
                    ((k, self._parent.get_raw(k), self._encoded(k)) for k in self._written),
                )
        return self._lattice

    def root(self) -> bytes:
        return compute_root(self.lattice())


def entry_lanes(key: bytes, value: bytes) -> bytes:
    """The entry's 1024 lanes. Each namespace has one key length, so key || value is
    unambiguous without a separator."""
    return blake3.blake3(key + value).digest(_LANE_BYTES)


def lattice_of(entries: Iterable[tuple[bytes, bytes]]) -> np.ndarray:
    acc = np.zeros(_LANES, dtype=np.uint16)
    batch: list[bytes] = []
    for key, value in entries:
        batch.append(entry_lanes(key, value))
        if len(batch) == 4096:
            acc += _sum_lanes(batch)
            batch.clear()
    if batch:
        acc += _sum_lanes(batch)
    return acc


def _sum_lanes(hashes: list[bytes]) -> np.ndarray:
    rows = np.frombuffer(b"".join(hashes), dtype="<u2").reshape(len(hashes), _LANES)
    return rows.sum(axis=0, dtype=np.uint16)


def _apply_lattice_delta(
    base: np.ndarray, changes: Iterable[tuple[bytes, bytes | None, bytes | None]]
) -> np.ndarray:
    added: list[bytes] = []
    removed: list[bytes] = []
    for key, old, new in changes:
        if old == new:
            continue
        if old is not None:
            removed.append(entry_lanes(key, old))
        if new is not None:
            added.append(entry_lanes(key, new))
    acc = base.copy()
    if added:
        acc += _sum_lanes(added)
    if removed:
        acc -= _sum_lanes(removed)
    return acc


def compute_root(lattice: np.ndarray) -> bytes:
    return hashlib.sha256(_ROOT_DOMAIN + lattice.astype("<u2").tobytes()).digest()
