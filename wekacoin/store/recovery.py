"""Checking a data directory when it opens.

LevelDB applies a WriteBatch whole or not at all, even when the process dies in the middle,
and every committed block is one batch: so whatever instant a node was killed at, the store
holds some committed tip. What remains to check is that this tip is consistent: the stored
ledger entries hash to the state root the tip's block header commits to. That catches
entries changed or lost outside the store (disk errors, a hand edit, a bug in a writer).
"""

from __future__ import annotations

from wekacoin.chain.genesis import genesis_state
from wekacoin.chain.state import TIP_KEY, compute_root, lattice_of
from wekacoin.store.errors import CorruptStoreError
from wekacoin.store.layout import StoredTip, StoreMeta, lattice_from_bytes
from wekacoin.store.reader import ChainReader
from wekacoin.types.block import block_hash
from wekacoin.types.codec import DecodeError, decode_trusted
from wekacoin.types.genesis import Genesis
from wekacoin.types.ledger import ChainTip

_LATTICE_BYTES = 2048


def check_meta_record(db: ChainReader, expected: StoreMeta) -> None:
    """The identity kept inside the database must be the one in chainstore.json."""
    found = db.stored_meta()
    if found != expected:
        what = "missing" if found is None else _describe(found)
        raise CorruptStoreError(
            f"the database's identity record ({what}) differs from chainstore.json "
            f"({_describe(expected)}): the leveldb directory is damaged or belongs to another "
            "data directory"
        )


def _describe(meta: StoreMeta) -> str:
    return (f"format {meta.format_version}, chain {meta.chain_id!r}, genesis "
            f"{meta.genesis_hash.hex()[:16]}...")


def check_tip(db: ChainReader, genesis: Genesis, *, full: bool = True) -> StoredTip:
    """The stored tip, after checking it against its block and (if `full`) every entry.

    `full=False` checks only the stored accumulator against the header, in O(1); `full`
    recomputes the state root from every entry, in one pass over them (O(state), not
    O(chain), and in bounded memory)."""
    tip = db.stored_tip()
    where = f"tip at height {tip.height}"
    if len(tip.lattice) != _LATTICE_BYTES:
        raise CorruptStoreError(f"{where}: the stored state accumulator has the wrong size")
    if tip.height == 0:
        if tip.block_hash != genesis.hash:
            raise CorruptStoreError(f"{where}: the genesis hash is not the genesis file's")
        expected = genesis_state(genesis).root()
    else:
        header = db.get_header(tip.height)
        if header is None or block_hash(header) != tip.block_hash:
            raise CorruptStoreError(f"{where}: the tip block is missing or is another block")
        expected = header.state_root
    if db.get_block_hash(tip.height + 1) is not None:
        raise CorruptStoreError(f"{where}: a block above the tip is stored")
    if compute_root(lattice_from_bytes(tip.lattice)) != expected:
        raise CorruptStoreError(f"{where}: the stored state accumulator is not the block's root")
    if full:
        root = compute_root(lattice_of(db.state_entries().items()))
        if root != expected:
            raise CorruptStoreError(
                f"{where}: the ledger entries hash to state root {root.hex()}, but the block "
                f"commits to {expected.hex()}: entries were changed or lost outside the store"
            )
    raw = db.state_entries().get(TIP_KEY)
    try:
        height = None if raw is None else decode_trusted(ChainTip, raw).height
    except DecodeError:
        height = None
    if height != tip.height:
        raise CorruptStoreError(f"{where}: the ledger's chain tip entry says {height}")
    return tip
