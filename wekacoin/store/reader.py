"""Reads of the chain store: the tip, its ledger state, blocks, transactions, tasks.

A `ChainReader` reads from a LevelDB handle: the live database (`ChainStore` is a reader) or
a snapshot (`ChainStore.snapshot()`), which sees one committed tip however many blocks are
committed meanwhile. Nothing here loads more than the records it returns; ranges are
iterators.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, overload

from wekacoin.chain.state import ChainConfig, State, blob_key, bond_key
from wekacoin.store.errors import CorruptStoreError
from wekacoin.store.layout import (
    HEIGHT_PREFIX,
    META_KEY,
    STATE_PREFIX,
    TIP_KEY,
    StoredBlock,
    StoredTip,
    StoredUndo,
    StoreMeta,
    TxLocation,
    block_key,
    cert_key,
    height_key,
    lattice_from_bytes,
    parse_tx_value,
    tx_key,
    undo_key,
)
from wekacoin.types.block import Block, BlockHeader
from wekacoin.types.codec import DecodeError, decode_trusted, encode
from wekacoin.types.ledger import Account, Bond, ChainBlob, Submission, Task
from wekacoin.types.primitives import Address, Hash, Height
from wekacoin.types.ranking import TaskSettlement
from wekacoin.types.tx import Tx

_HEIGHTS_END = HEIGHT_PREFIX + b"\xff" * 9


class Readable(Protocol):
    """What plyvel's DB and Snapshot both offer."""

    @overload
    def get(self, key: bytes) -> bytes | None: ...

    @overload
    def get(self, key: bytes, default: bytes) -> bytes: ...

    def iterator(self, **kwargs: Any) -> Any: ...


class StateEntries:
    """The `StateSource` of the tip state: ledger entries under the `s` prefix."""

    __slots__ = ("_db",)

    def __init__(self, db: Readable) -> None:
        self._db = db

    def get(self, key: bytes, default: None = None) -> bytes | None:
        return self._db.get(STATE_PREFIX + key)

    def items(self) -> Iterable[tuple[bytes, bytes]]:
        """Every entry, checking LevelDB's block checksums on the way: a whole-state scan is
        how opening the store finds damaged tables."""
        with self._db.iterator(prefix=STATE_PREFIX, verify_checksums=True) as it:
            for key, value in it:
                yield key[1:], value


@dataclass(frozen=True, slots=True)
class Tip:
    height: Height
    block_hash: Hash
    """The genesis hash at height 0."""
    state_root: Hash


@dataclass(frozen=True, slots=True)
class StoredTx:
    tx: Tx
    location: TxLocation


@dataclass(frozen=True, slots=True)
class RawBlock:
    """A block's wire bytes and certificate, as sync sends them."""

    height: Height
    block_hash: Hash
    data: bytes
    certificate: bytes


@dataclass(frozen=True, slots=True)
class TaskView:
    task: Task
    submissions: tuple[Submission, ...]
    """The task's submissions, in submission order."""
    settlement: TaskSettlement | None = None
    """How the task ended, once it has."""


class ChainReader:
    def __init__(self, db: Readable, config: ChainConfig) -> None:
        self._db = db
        self.config = config

    # -- the store's own records --

    def stored_meta(self) -> StoreMeta | None:
        raw = self._db.get(META_KEY)
        try:
            return None if raw is None else decode_trusted(StoreMeta, raw)
        except DecodeError:
            return None

    def first_key(self) -> bytes | None:
        with self._db.iterator(include_value=False) as it:
            return next(it, None)

    def state_entries(self) -> StateEntries:
        return StateEntries(self._db)

    # -- the tip and its state --

    def stored_tip(self) -> StoredTip:
        raw = self._db.get(TIP_KEY)
        if raw is None:
            raise CorruptStoreError("the store has no tip record")
        try:
            return decode_trusted(StoredTip, raw)
        except DecodeError as e:
            raise CorruptStoreError(f"the tip record is unreadable: {e}") from None

    def tip(self) -> Tip:
        stored = self.stored_tip()
        return Tip(stored.height, stored.block_hash, self.state_of(stored).root())

    @property
    def height(self) -> Height:
        return self.stored_tip().height

    def state(self) -> State:
        """The ledger as of the tip, reading entries from the store as it needs them.

        On the live database, prefer `ChainStore.state()`, which reads from a snapshot."""
        return self.state_of(self.stored_tip())

    def state_of(self, tip: StoredTip) -> State:
        return State(
            self.config, self.state_entries(), lattice=lattice_from_bytes(tip.lattice),
            block_hash=tip.block_hash,
        )

    def get_account(self, address: bytes) -> Account:
        return self.state().get_account(address)

    def bonds(self) -> Iterator[tuple[Address, Bond]]:
        """Every bond (an account that staked, or still has stake unbonding), by address."""
        prefix = STATE_PREFIX + bond_key(b"")
        with self._db.iterator(prefix=prefix) as it:
            for key, value in it:
                yield Address(key[len(prefix):]), self._decode_state(Bond, key, value)

    def chain_blobs(self) -> Iterator[ChainBlob]:
        """Every blob a reveal named (data groups, baselines, models), in no useful order."""
        prefix = STATE_PREFIX + blob_key("")[:1]  # keyed by the CID's hash: the namespace
        with self._db.iterator(prefix=prefix) as it:
            for key, value in it:
                yield self._decode_state(ChainBlob, key, value)

    def _decode_state(self, kind: type[Any], key: bytes, value: bytes) -> Any:
        try:
            return decode_trusted(kind, value)
        except DecodeError as e:
            raise CorruptStoreError(f"ledger entry {key.hex()} is unreadable: {e}") from None

    def get_task(self, task_id: int) -> TaskView | None:
        state = self.state()
        task = state.get_task(task_id)
        if task is None:
            return None
        return TaskView(
            task, tuple(state.get_existing_submission(sid) for sid in task.submissions),
            state.get_settlement(task_id),
        )

    # -- blocks --

    def get_block_hash(self, height: int) -> Hash | None:
        if not 0 < height < 2**64:
            return None
        return self._db.get(height_key(height))

    def get_stored_block(self, block_hash: bytes) -> StoredBlock | None:
        """The block's header, metadata and transaction ids (not its transactions)."""
        raw = self._db.get(block_key(block_hash))
        if raw is None:
            return None
        try:
            return decode_trusted(StoredBlock, raw)
        except DecodeError as e:
            raise CorruptStoreError(f"block {block_hash.hex()} is unreadable: {e}") from None

    def get_undo(self, height: int) -> StoredUndo | None:
        raw = self._db.get(undo_key(height))
        if raw is None:
            return None
        try:
            return decode_trusted(StoredUndo, raw)
        except DecodeError as e:
            raise CorruptStoreError(
                f"the undo record of block {height} is unreadable: {e}"
            ) from None

    def get_block_by_hash(self, block_hash: bytes) -> Block | None:
        stored = self.get_stored_block(block_hash)
        if stored is None:
            return None
        txs = []
        for tx_id in stored.ids():
            found = self.get_tx(tx_id)
            if found is None:
                raise CorruptStoreError(f"transaction {tx_id.hex()} of block "
                                        f"{stored.header.height} is missing")
            txs.append(found.tx)
        return Block(stored.header, tuple(txs), stored.meta)

    def get_block(self, height: int) -> Block | None:
        block_hash = self.get_block_hash(height)
        return None if block_hash is None else self.get_block_by_hash(block_hash)

    def get_block_bytes(self, block_hash: bytes) -> bytes | None:
        """The block's canonical encoding (its wire bytes), rebuilt from its records."""
        block = self.get_block_by_hash(block_hash)
        return None if block is None else encode(block)

    def get_header(self, height: int) -> BlockHeader | None:
        block_hash = self.get_block_hash(height)
        stored = None if block_hash is None else self.get_stored_block(block_hash)
        return None if stored is None else stored.header

    def get_certificate(self, height: int) -> bytes | None:
        block_hash = self.get_block_hash(height)
        return None if block_hash is None else self._db.get(cert_key(block_hash))

    def iter_blocks(self, start: int, stop: int | None = None) -> Iterator[Block]:
        """Stored blocks with heights in [start, stop), ascending, one at a time."""
        lo = height_key(max(start, 0))
        hi = _HEIGHTS_END if stop is None else height_key(max(stop, 0))
        with self._db.iterator(start=lo, stop=hi, include_key=False) as it:
            for block_hash in it:
                block = self.get_block_by_hash(block_hash)
                if block is None:
                    raise CorruptStoreError(f"block {block_hash.hex()} is indexed but missing")
                yield block

    def iter_raw_blocks(self, start: int, stop: int | None = None) -> Iterator[RawBlock]:
        """Like `iter_blocks`, as wire bytes with their certificates, for sync to send."""
        for block in self.iter_blocks(start, stop):
            block_hash = block.hash
            yield RawBlock(block.header.height, block_hash, encode(block),
                           self._db.get(cert_key(block_hash), b""))

    # -- transactions --

    def get_tx(self, tx_id: bytes) -> StoredTx | None:
        """A committed transaction and where it sits."""
        value = self._db.get(tx_key(tx_id))
        if value is None:
            return None
        try:
            height, index, tx = parse_tx_value(value)
        except DecodeError as e:
            raise CorruptStoreError(f"transaction {tx_id.hex()} is unreadable: {e}") from None
        block_hash = self.get_block_hash(height)
        if block_hash is None:
            raise CorruptStoreError(f"transaction {tx_id.hex()} points at missing block {height}")
        return StoredTx(tx, TxLocation(Height(height), Hash(block_hash), index))
