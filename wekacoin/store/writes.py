"""What one committed block writes: every key and value of its WriteBatch.

Kept apart from the LevelDB handle so that the benchmark can write exactly the same bytes
through plain plyvel, and so that the atomic unit is visible in one place.
"""

from __future__ import annotations

from wekacoin.chain import state as ledger
from wekacoin.chain.state import State
from wekacoin.chain.transactions import compute_tx_id
from wekacoin.store.errors import CommitError
from wekacoin.store.layout import (
    META_KEY, STATE_PREFIX, TIP_KEY, TX_PREFIX, StoreMeta, StoredTip, block_key, cert_key,
    height_key, lattice_bytes,
)
from wekacoin.types.block import Block, block_hash
from wekacoin.types.codec import encode
from wekacoin.types.primitives import Hash, Height

Writes = list[tuple[bytes, bytes | None]]
"""(key, value) pairs in write order; None deletes the key."""


def block_writes(tip: StoredTip, block: Block, state: State, certificate: bytes) -> Writes:
    """The batch that moves the store from `tip` to `block`; CommitError if it cannot.

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
    height = header.height.to_bytes(8, "big")
    writes: Writes = [
        (height_key(header.height), hash_),
        (block_key(hash_), encode(block)),
        (cert_key(hash_), certificate),
    ]
    writes += [
        (TX_PREFIX + compute_tx_id(tx.payload), height + i.to_bytes(4, "big"))
        for i, tx in enumerate(block.txs)
    ]
    writes += [(STATE_PREFIX + key, value) for key, value in changes.items()]
    writes.append((TIP_KEY, encode(StoredTip(header.height, hash_, lattice_bytes(lattice)))))
    return writes


def genesis_writes(meta: StoreMeta, state: State) -> Writes:
    """The batch that initialises an empty database: identity, genesis ledger, tip at 0."""
    writes: Writes = [(META_KEY, encode(meta))]
    writes += [(STATE_PREFIX + key, value) for key, value in state.items()]
    tip = StoredTip(Height(0), Hash(state.block_hash), lattice_bytes(state.lattice()))
    writes.append((TIP_KEY, encode(tip)))
    return writes
