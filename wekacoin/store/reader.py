"""Reads of the chain store: the tip, its ledger state, blocks, transactions, tasks.

A `ChainReader` reads from a LevelDB handle: the live database (`ChainStore` is a reader) or
a snapshot (`ChainStore.snapshot()`), which sees one committed tip however many blocks are
committed meanwhile. Nothing here loads more than the records it returns; ranges are
iterators.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, fields
from typing import Any, Protocol

import cbor2

from wekacoin.chain.state import ChainConfig, State
from wekacoin.store.errors import CorruptStoreError
from wekacoin.store.layout import (
    HEIGHT_PREFIX, META_KEY, STATE_PREFIX, TIP_KEY, StoreMeta, StoredTip, TxLocation, block_key, cert_key,
    height_key, lattice_from_bytes, parse_tx_location, tx_key,
)
from wekacoin.types.block import Block, BlockHeader
from wekacoin.types.codec import DecodeError, decode_trusted, from_primitive
from wekacoin.types.ledger import Account, Submission, Task
from wekacoin.types.primitives import Hash, Height
from wekacoin.types.tx import Tx

_BLOCK_FIELDS = [f.name for f in fields(Block)]
_HEADER_AT = _BLOCK_FIELDS.index("header")
_TXS_AT = _BLOCK_FIELDS.index("txs")
_HEIGHTS_END = HEIGHT_PREFIX + b"\xff" * 9


class Readable(Protocol):
    """What plyvel's DB and Snapshot both offer."""

    def get(self, key: bytes, default: Any = None) -> bytes | None: ...

    def iterator(self, **kwargs: Any) -> Any: ...


class StateEntries:
    """The `StateSource` of the tip state: ledger entries under the `s` prefix."""

    __slots__ = ("_db",)

    def __init__(self, db: Readable) -> None:
        self._db = db

    def get(self, key: bytes, default: None = None) -> bytes | None:
        return self._db.get(STATE_PREFIX + key)

    def items(self) -> Iterable[tuple[bytes, bytes]]:
        with self._db.iterator(prefix=STATE_PREFIX) as it:
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
    """A block as stored: its wire bytes and certificate, for sync to send without decoding."""

    height: Height
    block_hash: Hash
    data: bytes
    certificate: bytes


@dataclass(frozen=True, slots=True)
class TaskView:
    task: Task
    submissions: tuple[Submission, ...]
    """The task's submissions, in submission order."""


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

    def get_task(self, task_id: int) -> TaskView | None:
        state = self.state()
        task = state.get_task(task_id)
        if task is None:
            return None
        return TaskView(task, tuple(state.get_submission(sid) for sid in task.submissions))

    # -- blocks --

    def get_block_hash(self, height: int) -> Hash | None:
        if not 0 < height < 2**64:
            return None
        return self._db.get(height_key(height))

    def get_block_bytes(self, block_hash: bytes) -> bytes | None:
        """The block's canonical encoding, as received or sent on the wire."""
        return self._db.get(block_key(block_hash))

    def get_block_by_hash(self, block_hash: bytes) -> Block | None:
        data = self.get_block_bytes(block_hash)
        return None if data is None else _decode_block(data)

    def get_block(self, height: int) -> Block | None:
        block_hash = self.get_block_hash(height)
        return None if block_hash is None else self.get_block_by_hash(block_hash)

    def get_header(self, height: int) -> BlockHeader | None:
        block_hash = self.get_block_hash(height)
        data = None if block_hash is None else self.get_block_bytes(block_hash)
        if data is None:
            return None
        return _decode_part(data, lambda p: from_primitive(BlockHeader, p[_HEADER_AT]))

    def get_certificate(self, height: int) -> bytes | None:
        block_hash = self.get_block_hash(height)
        return None if block_hash is None else self._db.get(cert_key(block_hash))

    def iter_raw_blocks(self, start: int, stop: int | None = None) -> Iterator[RawBlock]:
        """Stored blocks with heights in [start, stop), ascending, one at a time."""
        lo = height_key(max(start, 0))
        hi = _HEIGHTS_END if stop is None else height_key(max(stop, 0))
        with self._db.iterator(start=lo, stop=hi) as it:
            for key, block_hash in it:
                data = self._db.get(block_key(block_hash))
                if data is None:
                    raise CorruptStoreError(f"block {block_hash.hex()} is indexed but missing")
                yield RawBlock(
                    Height(int.from_bytes(key[1:], "big")), Hash(block_hash), data,
                    self._db.get(cert_key(block_hash), b""),
                )

    def iter_blocks(self, start: int, stop: int | None = None) -> Iterator[Block]:
        for raw in self.iter_raw_blocks(start, stop):
            yield _decode_block(raw.data)

    # -- transactions --

    def get_tx(self, tx_id: bytes) -> StoredTx | None:
        """A committed transaction and where it sits; decodes only that transaction."""
        location = self._db.get(tx_key(tx_id))
        if location is None:
            return None
        height, index = parse_tx_location(location)
        block_hash = self.get_block_hash(height)
        data = None if block_hash is None else self.get_block_bytes(block_hash)
        if data is None:
            raise CorruptStoreError(f"transaction {tx_id.hex()} points at missing block {height}")
        tx = _decode_part(data, lambda p: from_primitive(Tx, p[_TXS_AT][index]))
        return StoredTx(tx, TxLocation(Height(height), Hash(block_hash), index))


def _decode_block(data: bytes) -> Block:
    try:
        return decode_trusted(Block, data)
    except DecodeError as e:
        raise CorruptStoreError(f"a stored block is unreadable: {e}") from None


def _decode_part(data: bytes, pick: Any) -> Any:
    """Decode one part of a stored block from its CBOR data model, skipping the rest."""
    try:
        return pick(cbor2.loads(data))
    except (cbor2.CBORError, DecodeError, IndexError, TypeError, ValueError) as e:
        raise CorruptStoreError(f"a stored block is unreadable: {e}") from None
