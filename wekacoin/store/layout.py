"""The chain store's key layout in LevelDB, and the records only the store writes.

One LevelDB database; the first byte of a key names its table:

    M                     StoreMeta: format version, chain id, genesis hash (written once)
    Z                     StoredTip: height, block hash and LtHash lattice of the tip state
    K                     the consensus checkpoint (opaque bytes, written with sync)
    h + height(8)         hash of the block at that height
    b + block hash(32)    the block's canonical encoding (its wire bytes)
    c + block hash(32)    the block's certificate (opaque bytes from consensus)
    t + tx id(32)         height(8) + index(4): where the transaction sits
    s + state key         a ledger entry as of the tip (keys of `wekacoin.chain.state`)

Heights and indexes are big-endian so that key order is height order: a range of blocks is
one forward scan of `h`. Only final blocks are stored (BA* does not fork), so a height names
one block. Genesis is not a block: height 0 has no `h`, `b` or `c` entry.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wekacoin.types.primitives import Hash, Height

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


def tx_location_value(height_bytes: bytes, index: int) -> bytes:
    return height_bytes + index.to_bytes(4, "big")


def parse_tx_location(value: bytes) -> tuple[int, int]:
    """(height, index) from a `t` value."""
    return int.from_bytes(value[:8], "big"), int.from_bytes(value[8:12], "big")


def lattice_bytes(lattice: np.ndarray) -> bytes:
    return lattice.astype("<u2").tobytes()


def lattice_from_bytes(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<u2").astype(np.uint16)
