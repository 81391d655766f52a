"""The chain store: final blocks, their certificates, the transaction index and the ledger
state as of the tip, in one LevelDB database, plus the consensus checkpoint.

A data directory holds `chainstore.json` (its identity, see `metafile`) and `leveldb/`
(the key layout is in `layout`). One process opens it at a time.

    store = ChainStore.open(path, genesis)        # creates it at height 0 if empty
    new = apply_block(store.state(), block)       # the chain rules, reading through the store
    store.commit(block, new, certificate)         # one atomic batch
    store.put_checkpoint(data, proposed)          # durable before the node votes

Writes come from one thread (the node's driver); reads may come from any thread.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

import plyvel

from wekacoin.chain.genesis import genesis_state
from wekacoin.chain.state import ChainConfig, State
from wekacoin.store import recovery
from wekacoin.store.errors import (
    CommitError,
    CorruptStoreError,
    IncompatibleStoreError,
    StoreError,
    StoreInUseError,
    damaged,
)
from wekacoin.store.layout import (
    CHECKPOINT_KEY,
    FORMAT_VERSION,
    LOCAL_TX_PREFIX,
    OWN_RANKING_PREFIX,
    PROPOSED_PREFIX,
    StoredTip,
    StoreMeta,
    own_ranking_key,
    proposed_key,
)
from wekacoin.store.metafile import (
    DB_DIR,
    META_FILE,
    check_compatible,
    is_unfinished_write,
    read_meta_file,
    write_meta_file,
)
from wekacoin.store.reader import ChainReader
from wekacoin.store.writes import write_block, write_genesis, write_rollback
from wekacoin.types.block import Block
from wekacoin.types.genesis import Genesis


class ChainStore(ChainReader):
    """See the module docstring. Build with `ChainStore.open`."""

    def __init__(self, root: Path, db: plyvel.DB, genesis: Genesis, sync_commits: bool) -> None:
        super().__init__(db, ChainConfig(genesis.chain_id, genesis.hash, genesis.params))
        self.root = root
        self.genesis = genesis
        self._leveldb = db
        self._sync = sync_commits
        self._tip: StoredTip | None = None

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], genesis: Genesis, *, sync_commits: bool = True,
        verify_state: bool = True,
    ) -> ChainStore:
        """Open the data directory at `path`, or create it from `genesis` if it is missing or
        empty. Refuses (IncompatibleStoreError, nothing modified) a directory of another chain
        or format, or a non-empty directory that is not a chain store; StoreInUseError if
        another process has it open; CorruptStoreError, naming the directory, if a file is
        damaged (LevelDB's checks, the identity file) or its tip fails the checks of
        `recovery.check_tip` (`verify_state=False` skips the O(state) scan of the entries);
        StoreError if a file cannot be read (permissions).

        `sync_commits`: fsync each committed block. Without it a killed process still loses
        nothing (LevelDB has handed each batch to the kernel), but after a power cut the store
        may have lost its last blocks, or (LevelDB does not fsync a log it switches away
        from) be refused by the open check and need a re-sync.
        """
        root = Path(path)
        expected = StoreMeta(FORMAT_VERSION, genesis.chain_id, genesis.hash)
        try:
            _prepare_root(root, expected)
        except OSError as e:
            raise StoreError(f"cannot use the chain store directory {root}: {_os_reason(e)}; "
                             "make it a directory the node's user can read and write") from None
        db = _open_leveldb(root)
        try:
            store = cls(root, db, genesis, sync_commits)
            store._start(expected, verify_state)
        except plyvel.Error as e:  # LevelDB opens tables lazily: damage shows on first reads
            db.close()
            raise leveldb_error(root, e) from None
        except CorruptStoreError as e:
            db.close()
            raise damaged(root, str(e)) from None
        except BaseException:
            db.close()
            raise
        return store

    def _start(self, meta: StoreMeta, verify_state: bool) -> None:
        if self.first_key() is None:  # new, or created by a process killed before genesis
            batch = self._leveldb.write_batch(sync=True)
            write_genesis(batch, meta, genesis_state(self.genesis))
            batch.write()
        recovery.check_meta_record(self, meta)
        self._tip = recovery.check_tip(self, self.genesis, full=verify_state)

    def close(self) -> None:
        self._leveldb.close()

    def __enter__(self) -> ChainStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._leveldb.closed

    def memory_usage(self) -> int:
        """Bytes LevelDB holds in memory (block cache and memtables), for metrics."""
        return int(self._leveldb.get_property(b"leveldb.approximate-memory-usage"))

    # -- reads that need one consistent view --

    def snapshot(self) -> ChainReader:
        """A reader that keeps seeing the current tip while later blocks are committed."""
        return ChainReader(self._leveldb.snapshot(), self.config)

    def state(self) -> State:
        """The ledger as of the tip, read lazily from a snapshot. Apply the next block on it,
        then commit; take a new one after each commit (it caches what it reads)."""
        return self.snapshot().state()

    def stored_tip(self) -> StoredTip:
        return self._tip if self._tip is not None else super().stored_tip()

    # -- writes --

    def commit(self, block: Block, state: State, certificate: bytes = b"") -> None:
        """Store `block` as the new tip with its certificate and the state it produced, in
        one atomic batch. `state` is what `apply_block(self.state(), block)` (or
        `build_block`) returned. CommitError, with nothing written, if the block does not
        extend the tip or the state is not the block's."""
        batch = self._leveldb.write_batch(sync=self._sync)
        tip = write_block(batch, self.stored_tip(), block, state, certificate)
        decided = self._leveldb.iterator(  # proposals up to this height: decided now
            start=PROPOSED_PREFIX, stop=proposed_key(block.height + 1, b""), include_value=False)
        with decided as it:
            for key in it:
                batch.delete(key)
        open_tasks = set(state.tip.open_tasks)
        with self._leveldb.iterator(prefix=OWN_RANKING_PREFIX, include_value=False) as it:
            for key in it:
                if int.from_bytes(key[1:9], "big") not in open_tasks:
                    batch.delete(key)
        batch.write()  # a batch that is never written (write_block raised) leaves no trace
        self._tip = tip

    def rollback(self, to_height: int) -> None:
        """Remove the blocks above `to_height` (at most the last UNDO_DEPTH) and restore the
        ledger as it was there, in one atomic batch. The caller decides whether those blocks
        may go (never a FINAL one); CommitError, with nothing written, if they cannot."""
        tip = self.stored_tip()
        if not 0 <= to_height <= tip.height:
            raise CommitError(f"cannot roll back to height {to_height} from {tip.height}")
        batch = self._leveldb.write_batch(sync=self._sync)
        new_tip = write_rollback(batch, self, tip, to_height, self.config.genesis_hash)
        batch.write()
        self._tip = new_tip

    def put_checkpoint(self, data: bytes,
                       proposed: Iterable[tuple[int, bytes, bytes]] = (),
                       rankings: Iterable[tuple[int, bytes, bytes]] = ()) -> None:
        """Persist the consensus checkpoint, durably (fsync) before returning: the caller may
        send the vote it protects as soon as this returns. `proposed` (height, block hash,
        block bytes) are blocks not final yet that the votes may name: after a crash they
        may be the only copies of a block the network decided (`get_proposed`). `rankings`
        (task id, evaluator key, signed ranking bytes) are the node's own rankings, kept
        while the task is open (`own_rankings`)."""
        batch = self._leveldb.write_batch(sync=True)
        for height, block_hash, raw in proposed:
            batch.put(proposed_key(height, block_hash), raw)
        for task_id, evaluator, raw in rankings:
            batch.put(own_ranking_key(task_id, evaluator), raw)
        batch.put(CHECKPOINT_KEY, data)
        batch.write()

    def put_local_tx(self, tx_id: bytes, raw: bytes) -> None:
        """Journal a transaction submitted to this node, durably before returning."""
        self._leveldb.put(LOCAL_TX_PREFIX + tx_id, raw, sync=True)

    def forget_local_txs(self, tx_ids: Iterable[bytes]) -> None:
        """Drop journaled transactions (included, or dropped for good)."""
        with self._leveldb.write_batch() as batch:
            for tx_id in tx_ids:
                batch.delete(LOCAL_TX_PREFIX + tx_id)

    def local_txs(self) -> list[tuple[bytes, bytes]]:
        """(tx id, raw transaction) of every journaled transaction."""
        with self._leveldb.iterator(prefix=LOCAL_TX_PREFIX) as it:
            return [(key[1:], raw) for key, raw in it]

    def own_rankings(self) -> list[bytes]:
        """The node's own signed rankings of open tasks (`put_checkpoint`), by task."""
        with self._leveldb.iterator(prefix=OWN_RANKING_PREFIX, include_key=False) as it:
            return list(it)

    def get_checkpoint(self) -> bytes | None:
        return self._leveldb.get(CHECKPOINT_KEY)

    def get_proposed(self, height: int, block_hash: bytes) -> bytes | None:
        """A proposed block kept with a checkpoint, until its height is committed."""
        return self._leveldb.get(proposed_key(height, block_hash))


def _prepare_root(root: Path, expected: StoreMeta) -> None:
    """Refuse a foreign directory before anything is written; create the identity file of a
    new one. A leftover temporary identity file (a node killed while creating the store)
    does not make a directory foreign."""
    if root.exists() and not root.is_dir():
        raise IncompatibleStoreError(f"{root} is not a directory")
    found = read_meta_file(root) if root.exists() else None
    if found is not None:
        check_compatible(found, expected, root)
        return
    if (root / DB_DIR).is_dir():
        raise damaged(root, f"{root / META_FILE} is missing, but {root / DB_DIR} is there")
    if root.exists() and any(not is_unfinished_write(p.name) for p in root.iterdir()):
        raise IncompatibleStoreError(
            f"{root} is not empty and has no {META_FILE}: it is not a chain store, and the "
            "node will not write into it; choose an empty or missing directory"
        )
    root.mkdir(parents=True, exist_ok=True)
    for leftover in root.iterdir():
        leftover.unlink()  # only unfinished writes of the identity file can be here
    write_meta_file(root, expected)


LEVELDB_OPTIONS = {
    # The block cache: the memory reads keep, whatever the chain's length.
    "lru_cache_size": 8 * 2**20,
    # Point reads (ledger entries while a block applies, often of absent keys: new accounts)
    # skip the tables that cannot hold the key.
    "bloom_filter_bits": 10,
    # Refuse to open on a damaged log or table instead of skipping the bad records: without
    # it LevelDB drops them, opens on an older tip and then deletes the damaged log. (A log
    # cut short at its end is what a crash leaves, and is still accepted.)
    "paranoid_checks": True,
}

# What LevelDB writes in a database directory besides its data: the lock, its text log, and
# the temporary file of a CURRENT being written. A directory holding only these is new.
_NOT_DATA = ("LOCK", "LOG", "LOG.old")


def _open_leveldb(root: Path) -> plyvel.DB:
    path = root / DB_DIR
    try:
        if path.is_dir() and not (path / "CURRENT").exists():
            _refuse_orphaned_files(root, path)
        return plyvel.DB(str(path), create_if_missing=True, **LEVELDB_OPTIONS)
    except plyvel.IOError as e:
        message = _leveldb_message(e)
        if message.startswith("IO error: lock ") and (
                "already held" in message or "temporarily unavailable" in message):
            raise StoreInUseError(
                f"the chain store {root} is already in use (its LevelDB lock is held): another "
                "node process has it open; stop it, or give this node another data directory"
            ) from None
        raise leveldb_error(root, e) from None
    except plyvel.Error as e:
        raise leveldb_error(root, e) from None
    except OSError as e:
        raise StoreError(f"cannot use the chain store directory {root}: {_os_reason(e)}; "
                         "make it a directory the node's user can read and write") from None


def _refuse_orphaned_files(root: Path, path: Path) -> None:
    """Without CURRENT, LevelDB would create an empty database over the files it finds and
    then delete them as obsolete: refuse while any of them holds data."""
    data = sorted(p.name for p in path.iterdir()
                  if p.name not in _NOT_DATA and not p.name.endswith(".dbtmp"))
    if any(not name.startswith("MANIFEST-") for name in data):
        raise damaged(root, f"{path / 'CURRENT'} is missing, but {path} holds LevelDB data "
                            f"files ({', '.join(data[:3])}{', ...' if len(data) > 3 else ''})")


def leveldb_error(root: Path, e: plyvel.Error) -> StoreError:
    """A LevelDB error from the store in `root`, as one line for the operator: what is wrong
    (LevelDB's own message names the file when it knows which one) and what to do."""
    message = _leveldb_message(e)
    if isinstance(e, plyvel.IOError) and "Permission denied" in message:
        return StoreError(f"cannot read the chain store {root}: LevelDB: {message}; make its "
                          "files readable and writable by the node's user")
    return damaged(root, f"LevelDB: {message}")


def _leveldb_message(e: plyvel.Error) -> str:
    arg = e.args[0] if e.args else b""
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


def _os_reason(e: OSError) -> str:
    return f"{e.filename}: {e.strerror}" if e.filename else str(e)
