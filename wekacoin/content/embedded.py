"""The embedded `BlobStore`: blobs as files in the node's data directory, keyed by CID.

Layout under the store's root (one node process per root):

    blobs/<xy>/<cid>   the bytes; <xy> is the CID's next-to-last two characters (as Kubo's
                       flatfs shards), so no directory grows to millions of entries
    pins/<cid>         an empty file per pinned CID
    tmp/               writes in flight; anything left here is from a crash and is deleted
                       when the store opens
    quarantine/        files that failed verification, kept for the operator to inspect

A blob is written to tmp/, fsynced, then renamed into place, so a crash leaves either the
whole blob or none. Every read is verified against the CID; a mismatch is logged, moved to
quarantine/ and re-fetched through the `Fetcher` seam (peers, once the libp2p node exists),
never served.
"""

import logging
import os
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from wekacoin.content.cid import compute_cid, parse_cid, verify_cid
from wekacoin.content.errors import (
    BlobNotFoundError,
    BlobStoreError,
    BlobTooLargeError,
    CorruptBlobError,
    InvalidCidError,
    QuotaExceededError,
)
from wekacoin.fsutil import fsync_dir, write_atomically

log = logging.getLogger(__name__)

DEFAULT_MAX_BLOB_SIZE = 128 * 1024 * 1024


class Fetcher(Protocol):
    """Asks peers for a blob the store lacks or holds corrupted.

    Returns the bytes, or None when no peer has them; it should stop reading past
    `max_size`. The store verifies whatever comes back, so a fetcher may pass on untrusted
    bytes. It runs in the caller's thread: a trio network layer bridges with
    `trio.from_thread.run`.
    """

    def __call__(self, cid: str, max_size: int) -> bytes | None: ...


@dataclass(frozen=True)
class GcReport:
    """What a garbage collection removed."""

    cids: tuple[str, ...]
    bytes_freed: int


class EmbeddedBlobStore:
    """A `BlobStore` in a local directory; see the module docstring for the layout."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        max_blob_size: int = DEFAULT_MAX_BLOB_SIZE,
        quota: int | None = None,
        fetcher: Fetcher | None = None,
    ) -> None:
        self.root = Path(root)
        self.max_blob_size = max_blob_size
        self.quota = quota
        self._fetcher = fetcher
        self._blobs = self.root / "blobs"
        self._pins = self.root / "pins"
        self._tmp = self.root / "tmp"
        self._quarantine = self.root / "quarantine"
        # Guards the sizes, and keeps gc() from deleting a blob between its write and its pin.
        self._lock = threading.RLock()
        try:
            for directory in (self._blobs, self._pins, self._tmp, self._quarantine):
                directory.mkdir(parents=True, exist_ok=True)
            for leftover in self._tmp.iterdir():  # only a crash mid-write leaves these
                leftover.unlink()
                log.warning("removed unfinished write %s", leftover)
            # Sizes as written, so the quota stays right even if a file is damaged on disk.
            self._sizes = {key: path.stat().st_size for path, key in self._stored()}
        except OSError as e:
            where = f"{e.filename}: {e.strerror}" if e.filename else str(e)
            raise BlobStoreError(
                f"cannot use the blob store {self.root}: {where}; give the node's user access "
                "to it, and move away anything the store did not write"
            ) from None

    def set_fetcher(self, fetcher: Fetcher | None) -> None:
        """Install (or remove) the seam that fetches missing blobs, e.g. from peers once the
        network runs."""
        self._fetcher = fetcher

    @property
    def used_bytes(self) -> int:
        """Bytes held in blobs/ (what the quota limits)."""
        with self._lock:
            return sum(self._sizes.values())

    def put(self, data: bytes, *, pin: bool = True) -> str:
        self._check_size(len(data), "blob")
        cid = compute_cid(data)
        self._store(cid, data, pin=pin)
        return cid

    def get(self, cid: str) -> bytes:
        key = _key(cid)
        data = self._read(key)
        if data is not None and verify_cid(key, data):
            return data
        corrupt = data is not None
        if corrupt:
            self._quarantine_blob(key)
        fetched = self._fetch(key)
        if fetched is None:
            if corrupt:
                raise CorruptBlobError(f"blob {key} was corrupt on disk and no peer had it")
            raise BlobNotFoundError(f"blob {key} is not stored here and no peer had it")
        try:
            self._store(key, fetched, pin=False)
        except QuotaExceededError as exc:  # the caller still gets the verified bytes
            log.warning("not caching fetched blob %s: %s", key, exc)
        return fetched

    def has(self, cid: str) -> bool:
        return self._blob_path(_key(cid)).is_file()

    def stored_size(self, cid: str) -> int | None:
        """The size of the blob's file here, None if there is none: one stat, no read (the
        storage keeper's cheap check of what it claims; `get` verifies)."""
        try:
            return self._blob_path(_key(cid)).stat().st_size
        except FileNotFoundError:
            return None

    def pin(self, cid: str) -> None:
        key = _key(cid)
        was_pinned = self.is_pinned(key)
        with self._lock:  # pin first, so a gc() cannot slip in between fetch and pin
            self._add_pin(key)
        if self.has(key):
            return
        try:
            self.get(key)  # fetches, or raises BlobNotFoundError
        except BaseException:
            if not was_pinned:
                self.unpin(key)
            raise

    def unpin(self, cid: str) -> None:
        (self._pins / _key(cid)).unlink(missing_ok=True)

    def is_pinned(self, cid: str) -> bool:
        return (self._pins / _key(cid)).is_file()

    def gc(self) -> GcReport:
        """Delete every blob that is not pinned; report what was freed."""
        freed: list[str] = []
        freed_bytes = 0
        with self._lock:
            pinned = set(os.listdir(self._pins))
            for path, key in list(self._stored()):
                if key in pinned:
                    continue
                path.unlink()
                freed.append(key)
                freed_bytes += self._sizes.pop(key, 0)
        log.info("gc freed %d blobs, %d bytes", len(freed), freed_bytes)
        return GcReport(tuple(sorted(freed)), freed_bytes)

    # --- internals ---------------------------------------------------------------------------

    def _blob_path(self, key: str) -> Path:
        return self._blobs / key[-3:-1] / key

    def _stored(self) -> Iterator[tuple[Path, str]]:
        for shard in self._blobs.iterdir():
            if shard.is_dir():
                for path in shard.iterdir():
                    yield path, path.name

    def _check_size(self, size: int, what: str) -> None:
        if size > self.max_blob_size:
            raise BlobTooLargeError(
                f"{what} of {size} bytes exceeds the limit of {self.max_blob_size} bytes"
            )

    def _read(self, key: str) -> bytes | None:
        try:
            with open(self._blob_path(key), "rb") as file:
                self._check_size(os.fstat(file.fileno()).st_size, f"stored blob {key}")
                return file.read()
        except FileNotFoundError:
            return None

    def _fetch(self, key: str) -> bytes | None:
        if self._fetcher is None:
            return None
        data = self._fetcher(key, self.max_blob_size)
        if data is None:
            return None
        self._check_size(len(data), f"fetched blob {key}")
        if not verify_cid(key, data):
            log.warning("a peer sent bytes that do not match %s; dropped", key)
            return None
        return data

    def _store(self, key: str, data: bytes, *, pin: bool) -> None:
        with self._lock:
            used = self.used_bytes - self._sizes.get(key, 0)
            if self.quota is not None and used + len(data) > self.quota:
                raise QuotaExceededError(
                    f"storing {key} ({len(data)} bytes) would exceed the quota of "
                    f"{self.quota} bytes ({used} used): unpin blobs and run gc()"
                )
            if pin:
                self._add_pin(key)
            _write_atomically(self._blob_path(key), data, self._tmp)
            self._sizes[key] = len(data)

    def _add_pin(self, key: str) -> None:
        (self._pins / key).touch()
        fsync_dir(self._pins)

    def _quarantine_blob(self, key: str) -> None:
        target = self._quarantine / f"{key}.{secrets.token_hex(4)}"
        with self._lock:
            try:
                os.replace(self._blob_path(key), target)
            except FileNotFoundError:  # another thread got here first
                return
            self._sizes.pop(key, None)
        log.error("blob %s did not match its CID: moved to %s", key, target)


def _key(cid: str) -> str:
    """The canonical text of an untrusted CID, safe as a file name."""
    key = str(parse_cid(cid))
    if not key.isalnum():  # canonical CIDs are base32/base58: never a separator or a dot
        raise InvalidCidError(f"CID {cid!r} does not encode to a plain file name")
    return key


def _write_atomically(path: Path, data: bytes, tmp_dir: Path) -> None:
    """Write `data` to `path` so that a crash leaves the old file or the new, never a part."""
    path.parent.mkdir(exist_ok=True)
    write_atomically(path, data, tmp_dir=tmp_dir)
