"""The BlobStore port's contract on both backends, then the embedded store in depth: round
trips, crash safety, corruption, limits, pins and gc, untrusted CIDs."""

import logging
import os
import random
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.kubo_fake import FakeKubo
from wekacoin.content.cid import CHUNK_SIZE, compute_cid
from wekacoin.content.embedded import EmbeddedBlobStore, GcReport
from wekacoin.content.errors import (
    BlobNotFoundError,
    BlobTooLargeError,
    CorruptBlobError,
    InvalidCidError,
    QuotaExceededError,
)
from wekacoin.content.kubo import KuboBlobStore
from wekacoin.errors import WekaError
from wekacoin.ports import BlobStore

BIG = random.Random(7).randbytes(3 * CHUNK_SIZE + 11)  # a multi-chunk (dag-pb) blob


class RecordingFetcher:
    """A stand-in for the peer network: serves what it was given, records what was asked."""

    def __init__(self, blobs: dict[str, bytes] | None = None) -> None:
        self.blobs = dict(blobs or {})
        self.calls: list[tuple[str, int]] = []

    def __call__(self, cid: str, max_size: int) -> bytes | None:
        self.calls.append((cid, max_size))
        return self.blobs.get(cid)


def blob_file(store: EmbeddedBlobStore, cid: str) -> Path:
    (path,) = [p for p in (store.root / "blobs").rglob(cid)]
    return path


def files_under(root: Path, sub: str) -> list[Path]:
    return sorted(p for p in (root / sub).rglob("*") if p.is_file())


@pytest.fixture
def store(tmp_path: Path) -> EmbeddedBlobStore:
    return EmbeddedBlobStore(tmp_path / "content")


# --- the port's contract, on every backend --------------------------------------------------


@pytest.fixture(params=["embedded", "kubo"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlobStore]:
    if request.param == "embedded":
        yield EmbeddedBlobStore(tmp_path)
        return
    kubo = FakeKubo().start()
    try:
        yield KuboBlobStore.connect(kubo.multiaddr)
    finally:
        kubo.stop()


contract = pytest.mark.filterwarnings(  # ipfshttpclient on urllib3 2, see content/kubo.py
    "ignore:The 'strict' parameter is no longer needed:FutureWarning"
)


@contract
def test_contract_same_bytes_same_cid_on_every_backend(any_store: BlobStore) -> None:
    for data in (b"", b"hello world\n", BIG):
        cid = any_store.put(data)
        assert cid == compute_cid(data)
        assert any_store.get(cid) == data
        assert any_store.has(cid) and any_store.is_pinned(cid)


@contract
def test_contract_pins_are_a_set(any_store: BlobStore) -> None:
    cid = any_store.put(b"pinned twice", pin=False)
    assert not any_store.is_pinned(cid)
    any_store.pin(cid)
    any_store.pin(cid)
    any_store.unpin(cid)
    assert not any_store.is_pinned(cid)
    any_store.unpin(cid)  # a no-op, not an error
    assert any_store.get(cid) == b"pinned twice"


@contract
def test_contract_missing_blob(any_store: BlobStore) -> None:
    cid = compute_cid(b"never stored")
    assert not any_store.has(cid)
    with pytest.raises(BlobNotFoundError):
        any_store.get(cid)


@contract
@pytest.mark.parametrize("text", ["../x", "", "bafkrei/../../x"])
def test_contract_rejects_untrusted_cids(any_store: BlobStore, text: str) -> None:
    for call in (any_store.get, any_store.has, any_store.pin, any_store.unpin):
        with pytest.raises(InvalidCidError):
            call(text)


# --- round trip ------------------------------------------------------------------------------


def test_round_trip(store: EmbeddedBlobStore) -> None:
    port: BlobStore = store  # the embedded store satisfies the port
    for data in (b"", b"hello world\n", BIG):
        cid = port.put(data)
        assert cid == compute_cid(data)
        assert port.has(cid)
        assert port.get(cid) == data
    assert store.used_bytes == len(b"hello world\n") + len(BIG)


def test_blobs_survive_reopening(tmp_path: Path) -> None:
    first = EmbeddedBlobStore(tmp_path)
    cid = first.put(BIG)
    second = EmbeddedBlobStore(tmp_path)
    assert second.get(cid) == BIG
    assert second.is_pinned(cid)
    assert second.used_bytes == len(BIG)


def test_equivalent_spellings_of_a_cid_find_the_same_blob(store: EmbeddedBlobStore) -> None:
    cid = store.put(b"hello world\n")
    assert store.get(cid.upper()) == b"hello world\n"  # base32upper
    assert store.get("zb2rhi36Gc9GJWijLEL6zW45MBux5FcFv5gJmjXA7VAMozEXY") == b"hello world\n"


@settings(max_examples=25, deadline=None)
@given(data=st.binary(max_size=5000))
def test_round_trip_property(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as root:
        store = EmbeddedBlobStore(root)
        assert store.get(store.put(data, pin=False)) == data


# --- atomic writes ---------------------------------------------------------------------------


class Crash(Exception):
    """Stands for the process dying at that instant."""


def test_crash_mid_write_leaves_no_blob(
    store: EmbeddedBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_fsync = os.fsync

    def crash_on_blob_fsync(fd: int) -> None:
        if os.fstat(fd).st_size == len(BIG):  # the blob's own fsync, before the rename
            raise Crash
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", crash_on_blob_fsync)
    with pytest.raises(Crash):
        store.put(BIG, pin=False)
    monkeypatch.undo()
    cid = compute_cid(BIG)
    assert not store.has(cid)
    assert files_under(store.root, "blobs") == []
    with pytest.raises(BlobNotFoundError):
        store.get(cid)
    assert store.used_bytes == 0


def test_unfinished_write_from_a_dead_process_is_ignored_and_cleaned(tmp_path: Path) -> None:
    store = EmbeddedBlobStore(tmp_path)
    leftover = tmp_path / "tmp" / "tmpab12cd.tmp"
    leftover.write_bytes(BIG[: len(BIG) // 2])  # half a blob, never renamed into place
    cid = compute_cid(BIG)
    assert not store.has(cid)
    reopened = EmbeddedBlobStore(tmp_path)
    assert not leftover.exists()
    assert not reopened.has(cid)
    assert reopened.used_bytes == 0
    assert reopened.get(reopened.put(BIG)) == BIG


# --- corruption ------------------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["flip", "truncate", "empty"])
def test_corrupt_blob_is_detected_quarantined_and_never_served(
    store: EmbeddedBlobStore, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    cid = store.put(BIG)
    path = blob_file(store, cid)
    corrupted = bytearray(BIG)
    if damage == "flip":
        corrupted[CHUNK_SIZE + 5] ^= 0x40
    elif damage == "truncate":
        del corrupted[-1:]
    else:
        corrupted.clear()
    path.write_bytes(corrupted)
    with caplog.at_level(logging.ERROR, logger="wekacoin.content.embedded"):
        with pytest.raises(CorruptBlobError):
            store.get(cid)
    assert any(cid in record.getMessage() for record in caplog.records)
    assert not store.has(cid)
    [quarantined] = files_under(store.root, "quarantine")
    assert quarantined.read_bytes() == bytes(corrupted)
    assert store.used_bytes == 0
    with pytest.raises(BlobNotFoundError):  # still nothing to serve
        store.get(cid)


def test_corrupt_blob_is_refetched_through_the_fetcher(tmp_path: Path) -> None:
    cid = compute_cid(BIG)
    fetcher = RecordingFetcher({cid: BIG})
    store = EmbeddedBlobStore(tmp_path, fetcher=fetcher)
    store.put(BIG)
    blob_file(store, cid).write_bytes(b"rotten")
    assert store.get(cid) == BIG
    assert fetcher.calls == [(cid, store.max_blob_size)]
    assert blob_file(store, cid).read_bytes() == BIG  # repaired on disk
    assert store.is_pinned(cid)  # the pin outlives the repair
    assert len(files_under(tmp_path, "quarantine")) == 1


def test_fetched_bytes_that_do_not_match_are_refused(tmp_path: Path) -> None:
    cid = compute_cid(BIG)
    store = EmbeddedBlobStore(tmp_path, fetcher=RecordingFetcher({cid: BIG[:-1] + b"?"}))
    with pytest.raises(BlobNotFoundError):
        store.get(cid)
    assert not store.has(cid)


def test_miss_is_fetched_and_cached_unpinned(tmp_path: Path) -> None:
    cid = compute_cid(BIG)
    fetcher = RecordingFetcher({cid: BIG})
    store = EmbeddedBlobStore(tmp_path, fetcher=fetcher)
    assert store.get(cid) == BIG
    assert store.has(cid) and not store.is_pinned(cid)
    assert store.get(cid) == BIG
    assert len(fetcher.calls) == 1  # the second read came from disk


def test_miss_without_fetcher_or_peers(tmp_path: Path) -> None:
    cid = compute_cid(b"nobody has this")
    with pytest.raises(BlobNotFoundError):
        EmbeddedBlobStore(tmp_path / "a").get(cid)
    with pytest.raises(BlobNotFoundError):
        EmbeddedBlobStore(tmp_path / "b", fetcher=RecordingFetcher()).get(cid)


# --- limits ----------------------------------------------------------------------------------


def test_per_blob_limit(tmp_path: Path) -> None:
    store = EmbeddedBlobStore(tmp_path, max_blob_size=1000)
    store.put(bytes(1000))
    with pytest.raises(BlobTooLargeError, match="1001 bytes exceeds the limit of 1000"):
        store.put(bytes(1001))
    assert not store.has(compute_cid(bytes(1001)))


def test_per_blob_limit_applies_to_fetched_and_stored_blobs(tmp_path: Path) -> None:
    cid = compute_cid(bytes(2000))
    fetching = EmbeddedBlobStore(
        tmp_path / "a", max_blob_size=1000, fetcher=RecordingFetcher({cid: bytes(2000)})
    )
    with pytest.raises(BlobTooLargeError):
        fetching.get(cid)
    EmbeddedBlobStore(tmp_path / "b").put(bytes(2000))
    with pytest.raises(BlobTooLargeError):  # stored under a larger limit, read under a smaller
        EmbeddedBlobStore(tmp_path / "b", max_blob_size=1000).get(cid)


def test_quota(tmp_path: Path) -> None:
    store = EmbeddedBlobStore(tmp_path, quota=2500)
    first = store.put(bytes(1000), pin=False)
    store.put(b"\x01" * 1000)
    with pytest.raises(QuotaExceededError, match="quota of 2500 bytes"):
        store.put(b"\x02" * 1000)
    store.put(bytes(1000), pin=False)  # the same blob again takes no more room
    assert store.used_bytes == 2000
    assert store.gc() == GcReport((first,), 1000)
    store.put(b"\x02" * 1000)
    assert store.used_bytes == 2000


# --- pins and gc -----------------------------------------------------------------------------


def test_pins_and_gc(store: EmbeddedBlobStore) -> None:
    kept = store.put(b"kept")
    loose = store.put(b"loose", pin=False)
    dropped = store.put(b"dropped")
    store.pin(dropped)  # pins are a set: one unpin undoes any number of pins
    store.unpin(dropped)
    store.unpin(loose)  # unpinning what is not pinned is a no-op
    assert [store.is_pinned(c) for c in (kept, loose, dropped)] == [True, False, False]
    report = store.gc()
    assert report == GcReport(tuple(sorted([loose, dropped])), len(b"loose") + len(b"dropped"))
    assert store.has(kept) and not store.has(loose) and not store.has(dropped)
    assert store.get(kept) == b"kept"
    assert store.gc() == GcReport((), 0)


def test_pin_of_a_missing_blob_fetches_it_or_fails_cleanly(tmp_path: Path) -> None:
    cid = compute_cid(BIG)
    lonely = EmbeddedBlobStore(tmp_path / "a")
    with pytest.raises(BlobNotFoundError):
        lonely.pin(cid)
    assert not lonely.is_pinned(cid)
    served = EmbeddedBlobStore(tmp_path / "b", fetcher=RecordingFetcher({cid: BIG}))
    served.pin(cid)
    assert served.is_pinned(cid) and served.has(cid)
    assert served.gc() == GcReport((), 0)


def test_concurrent_puts_and_gc_keep_every_pinned_blob(store: EmbeddedBlobStore) -> None:
    blobs = [i.to_bytes(4, "big") * 1000 for i in range(40)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        puts = [pool.submit(store.put, blob, pin=i % 2 == 0) for i, blob in enumerate(blobs)]
        gcs = [pool.submit(store.gc) for _ in range(5)]
        cids = [future.result() for future in puts]
        for future in gcs:
            future.result()
    store.gc()
    for i, (cid, blob) in enumerate(zip(cids, blobs, strict=True)):
        if i % 2 == 0:
            assert store.get(cid) == blob
        else:
            assert not store.has(cid)
    assert store.used_bytes == sum(len(blob) for blob in blobs[::2])


# --- untrusted CIDs --------------------------------------------------------------------------

HOSTILE = [
    "",
    "..",
    "../x",
    "../../etc/passwd",
    "/etc/passwd",
    "blobs",
    "bafkrei/../../x",
    "Qm\x00",
    "bafyreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4",  # dag-cbor: not a file
]


@pytest.mark.parametrize("text", HOSTILE)
def test_untrusted_cids_are_rejected_before_touching_disk(tmp_path: Path, text: str) -> None:
    store = EmbeddedBlobStore(tmp_path / "content", fetcher=RecordingFetcher())
    before = sorted(tmp_path.rglob("*"))
    for call in (store.get, store.has, store.pin, store.unpin, store.is_pinned):
        with pytest.raises(InvalidCidError) as caught:
            call(text)
        assert isinstance(caught.value, WekaError)
    assert sorted(tmp_path.rglob("*")) == before
