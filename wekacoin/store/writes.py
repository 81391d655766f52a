"""What one committed block writes: every key and value of its WriteBatch.

The writes go to a `Sink`: the store passes a LevelDB WriteBatch (so nothing is copied on the
way), the benchmark a recorder, to write exactly the same bytes through plain plyvel. All
checks run before the first write; the atomic unit is visible in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from wekacoin.chain import state as ledger
from wekacoin.chain.state import State
from wekacoin.store.errors import CommitError
from wekacoin.store.layout import (
    META_KEY,
    STATE_PREFIX,
    TIP_KEY,
    TX_PREFIX,
    UNDO_DEPTH,
    StoredBlock,
    StoredTip,
    StoredUndo,
    StoreMeta,
    block_key,
    cert_key,
    height_key,
    lattice_bytes,
    tx_value,
    undo_key,
)
from wekacoin.types.block import Block, block_hash
from wekacoin.types.codec import encode
from wekacoin.types.primitives import Hash, Height

if TYPE_CHECKING:
    from wekacoin.store.reader import ChainReader


class Sink(Protocol):
    """Where writes go: plyvel's WriteBatch, or anything with the same two methods."""

    def put(self, key: bytes, value: bytes) -> None: ...

    def delete(self, key: bytes) -> None: ...


def write_block(
    sink: Sink, tip: StoredTip, block: Block, state: State, certificate: bytes,
) -> StoredTip:
    """Write the batch that moves the store from `tip` to `block`, and return the new tip;
    CommitError, before any write, if it cannot.

    `state` must be the layer `apply_block` (or `build_block`) returned over the tip's state:
    its `changes()` are exactly what the block changed.
    """
    header = block.header
    if header.height != tip.height + 1 or header.prev_hash != tip.block_hash:
        raise CommitError(
            f"block {header.height} does not extend the stored tip (height {tip.height}, "
            f"hash {tip.block_hash.hex()})"
        )
    hash_ = block_hash(header)
    if state.block_hash != hash_:
        raise CommitError(f"the state passed with block {header.height} was not made by it")
    lattice = state.lattice()
    if ledger.compute_root(lattice) != header.state_root:
        raise CommitError(f"the state passed with block {header.height} has another root")
    changes = state.changes()
    if ledger.TIP_KEY not in changes:
        # Every block rewrites the chain tip entry; no write means a flattened state, or one
        # with more layers, whose changes() is not the block's diff.
        raise CommitError("pass the state layer apply_block/build_block returned for the block")

    put, delete = sink.put, sink.delete
    height = header.height.to_bytes(8, "big")
    ids = []
    # The cached positions may outnumber this block's transactions: zip stops at the last one.
    for index, tx in zip(_indexes(len(block.txs)), block.txs, strict=False):
        tx_id = tx.id
        ids.append(tx_id)
        put(TX_PREFIX + tx_id, tx_value(height, index, tx))
    put(height_key(header.height), hash_)
    put(block_key(hash_), encode(StoredBlock(header, block.meta, b"".join(ids))))
    put(cert_key(hash_), certificate)
    for key, value in changes.items():
        if value is None:
            delete(STATE_PREFIX + key)
        else:
            put(STATE_PREFIX + key, value)
    keys = tuple(changes)
    undo = StoredUndo(tip.lattice, keys, tuple(map(state.previous_raw, keys)))
    put(undo_key(header.height), encode(undo))
    if header.height > UNDO_DEPTH:
        delete(undo_key(header.height - UNDO_DEPTH))
    new_tip = StoredTip(header.height, hash_, lattice_bytes(lattice))
    put(TIP_KEY, encode(new_tip))
    return new_tip


def write_rollback(
    sink: Sink, reader: ChainReader, tip: StoredTip, to_height: int, genesis_hash: bytes
) -> StoredTip:
    """Write the batch that takes the store from `tip` back to `to_height`: each block above
    it removed with its indexes, and the ledger entries it changed restored, newest first.
    `reader` reads the database the batch will go to. CommitError, before any write, if a
    block has no undo record left."""
    undos = []
    for height in range(tip.height, to_height, -1):
        undo = reader.get_undo(height)
        stored = reader.get_stored_block(reader.get_block_hash(height) or b"")
        if undo is None or stored is None:
            raise CommitError(f"block {height} can no longer be rolled back (no undo record)")
        undos.append((height, undo, stored))
    new_hash = reader.get_block_hash(to_height) if to_height else genesis_hash
    if new_hash is None:
        raise CommitError(f"the store holds no block at height {to_height}")
    restored: dict[bytes, bytes | None] = {}
    for height, undo, stored in undos:  # newest first: older values overwrite newer ones
        restored.update(undo.entries())
        hash_ = block_hash(stored.header)
        for tx_id in stored.ids():
            sink.delete(TX_PREFIX + tx_id)
        sink.delete(height_key(height))
        sink.delete(block_key(hash_))
        sink.delete(cert_key(hash_))
        sink.delete(undo_key(height))
    for key, value in restored.items():
        if value is None:
            sink.delete(STATE_PREFIX + key)
        else:
            sink.put(STATE_PREFIX + key, value)
    prev_lattice = undos[-1][1].prev_lattice if undos else tip.lattice
    new_tip = StoredTip(Height(to_height), Hash(new_hash), prev_lattice)
    sink.put(TIP_KEY, encode(new_tip))
    return new_tip


def write_genesis(sink: Sink, meta: StoreMeta, state: State) -> StoredTip:
    """Write the batch that initialises an empty database: identity, genesis ledger, tip 0."""
    sink.put(META_KEY, encode(meta))
    for key, value in state.items():
        sink.put(STATE_PREFIX + key, value)
    tip = StoredTip(Height(0), Hash(state.get_block_hash()), lattice_bytes(state.lattice()))
    sink.put(TIP_KEY, encode(tip))
    return tip


_INDEXES: list[bytes] = []


def _indexes(n: int) -> list[bytes]:
    """4-byte big-endian positions 0..n-1, made once (a block has up to max_block_txs)."""
    while len(_INDEXES) < n:
        _INDEXES.append(len(_INDEXES).to_bytes(4, "big"))
    return _INDEXES
