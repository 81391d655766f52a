"""The chain store's key layout in LevelDB, and the records only the store writes.

One LevelDB database; the first byte of a key names its table:

    M                     StoreMeta: format version, chain id, genesis hash (written once)
    Z                     StoredTip: height, block hash and LtHash lattice of the tip state
    K                     the consensus checkpoint (opaque bytes, written with sync)
    p + height(8) + hash  a block proposed for that height, not final yet (bytes from
                          consensus), written with the checkpoint, dropped once the
                          height is committed
    r + task(8) + key(32) a ranking this node signed for that task with that validator
                          key (bytes from consensus), written with the checkpoint, dropped
                          once the task is no longer open
    q + tx id(32)         a transaction submitted to this node over RPC and not yet
                          included or dropped (raw bytes, written with sync before the RPC
                          answers): re-admitted and re-sent after a restart
    h + height(8)         hash of the block at that height
    b + block hash(32)    StoredBlock: header, metadata, and the ids of its transactions
    c + block hash(32)    the block's certificate (opaque bytes from consensus)
    t + tx id(32)         height(8) + index(4) + signature(64) + payload: the transaction
                          and where it sits
    s + state key         a ledger entry as of the tip (keys of `wekacoin.chain.state`)
    u + height(8)         StoredUndo of that block, for the last UNDO_DEPTH blocks: the
                          entries it changed as they were before, and the previous lattice

Each transaction is stored once, under its id, as fixed fields and its signed payload (the
bytes its id hashes), not inside a block blob: committing then costs a concatenation per
transaction instead of CBOR-encoding the block (~20x slower for 1,000 transfers), and a
lookup by id is one read. Reading a whole block (RPC, sync) gathers its transactions by id
and re-encodes it for the wire when asked; those reads are rarer than commits.

Heights and indexes are big-endian so that key order is height order: a range of blocks is
one forward scan of `h`. A height names one block. BA* may commit a TENTATIVE block that the
network later decides otherwise; the undo records let the node roll such blocks back (never a
FINAL one: sync checks that) and take the other branch. Genesis is not a block: height 0 has
no `h`, `b`, `c` or `u` entry.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from wekacoin.types.block import BlockHeader, BlockMeta
from wekacoin.types.primitives import Hash, Height
from wekacoin.types.tx import Tx

FORMAT_VERSION = 1
"""Bump when the layout changes; a node refuses a data directory with a newer version."""

META_KEY = b"M"
TIP_KEY = b"Z"
CHECKPOINT_KEY = b"K"
HEIGHT_PREFIX = b"h"
BLOCK_PREFIX = b"b"
CERT_PREFIX = b"c"
TX_PREFIX = b"t"
STATE_PREFIX = b"s"
UNDO_PREFIX = b"u"
UNDO_DEPTH = 128
"""Blocks that can be rolled back: far more than a TENTATIVE run lasts before a FINAL one."""
PROPOSED_PREFIX = b"p"
OWN_RANKING_PREFIX = b"r"
LOCAL_TX_PREFIX = b"q"


@dataclass(frozen=True, slots=True)
class StoreMeta:
    format_version: int
    chain_id: str
    genesis_hash: Hash


@dataclass(frozen=True, slots=True)
class StoredTip:
    height: Height
    block_hash: Hash
    """The tip block's hash; the genesis hash at height 0."""
    lattice: bytes
    """The tip state's LtHash accumulator (1024 little-endian uint16 lanes), so opening the
    store and every new tip `State` know the state root without scanning the entries."""


@dataclass(frozen=True, slots=True)
class StoredUndo:
    """What rolling one block back restores: each ledger entry the block changed, with its
    value before the block (None: the block created it). Two parallel arrays rather than an
    array of pairs: one is written with every block, and this way it encodes in C."""

    prev_lattice: bytes
    keys: tuple[bytes, ...]
    values: tuple[bytes | None, ...]

    def __post_init__(self) -> None:
        if len(self.keys) != len(self.values):
            raise ValueError("an undo record needs one value per key")

    def entries(self) -> Iterator[tuple[bytes, bytes | None]]:
        return zip(self.keys, self.values, strict=True)


def undo_key(height: int) -> bytes:
    return UNDO_PREFIX + height.to_bytes(8, "big")


@dataclass(frozen=True, slots=True)
class StoredBlock:
    header: BlockHeader
    meta: BlockMeta
    tx_ids: bytes
    """The ids of the block's transactions, 32 bytes each, in block order."""

    def ids(self) -> list[bytes]:
        return [self.tx_ids[i:i + 32] for i in range(0, len(self.tx_ids), 32)]


@dataclass(frozen=True, slots=True)
class TxLocation:
    height: Height
    block_hash: Hash
    index: int
    """Position of the transaction in its block."""


def height_key(height: int) -> bytes:
    return HEIGHT_PREFIX + height.to_bytes(8, "big")


def block_key(block_hash: bytes) -> bytes:
    return BLOCK_PREFIX + block_hash


def cert_key(block_hash: bytes) -> bytes:
    return CERT_PREFIX + block_hash


def tx_key(tx_id: bytes) -> bytes:
    return TX_PREFIX + tx_id


def proposed_key(height: int, block_hash: bytes) -> bytes:
    return PROPOSED_PREFIX + height.to_bytes(8, "big") + block_hash


def own_ranking_key(task_id: int, evaluator: bytes) -> bytes:
    return OWN_RANKING_PREFIX + task_id.to_bytes(8, "big") + evaluator


_SIG_AT, _PAYLOAD_AT = 12, 76


def tx_value(height_bytes: bytes, index_bytes: bytes, tx: Tx) -> bytes:
    return height_bytes + index_bytes + tx.signature + tx.payload


def parse_tx_value(value: bytes) -> tuple[int, int, Tx]:
    """(height, index, transaction) from a `t` value."""
    tx = Tx(value[_PAYLOAD_AT:], value[_SIG_AT:_PAYLOAD_AT])
    return int.from_bytes(value[:8], "big"), int.from_bytes(value[8:12], "big"), tx


def lattice_bytes(lattice: np.ndarray) -> bytes:
    return lattice.astype("<u2").tobytes()


def lattice_from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<u2").astype(np.uint16)
