"""The Kubo BlobStore against a fake Kubo RPC server (tests/helpers/kubo_fake.py): round trips with
the same CIDs as compute_cid, the version check, and a daemon that is down, slow, lying or
speaking garbage."""

import random
import socket
from collections.abc import Iterator

import httpx
import pytest

from tests.helpers.kubo_fake import FakeKubo
from wekacoin.content.cid import CHUNK_SIZE, compute_cid
from wekacoin.content.errors import (
    BlobNotFoundError,
    BlobTooLargeError,
    InvalidCidError,
    KuboError,
    KuboProtocolError,
    KuboUnavailableError,
    KuboVersionError,
)
from wekacoin.content.kubo import KuboBlobStore
from wekacoin.ports import BlobStore

# wekacoin.content.kubo silences this at import, but pytest resets filters after collection.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The 'strict' parameter is no longer needed:FutureWarning"
)

BIG = random.Random(11).randbytes(2 * CHUNK_SIZE + 3)


@pytest.fixture
def kubo() -> Iterator[FakeKubo]:
    fake = FakeKubo().start()
    yield fake
    fake.stop()


@pytest.fixture
def store(kubo: FakeKubo) -> KuboBlobStore:
    return KuboBlobStore.connect(kubo.multiaddr, timeout=10)


def start_faulty(fault: str, **options) -> FakeKubo:
    return FakeKubo(fault=fault, **options).start()


# --- the happy path --------------------------------------------------------------------------


def test_add_cat_pin_round_trip(kubo: FakeKubo, store: KuboBlobStore) -> None:
    port: BlobStore = store  # the Kubo store satisfies the port
    for data in (b"", b"hello world\n", BIG):
        cid = port.put(data)
        assert cid == compute_cid(data)
        assert kubo.blobs[cid] == data  # the daemon stored it under the same CID
        assert port.get(cid) == data
        assert port.has(cid)
        assert port.is_pinned(cid)
    loose = port.put(b"loose", pin=False)
    assert not port.is_pinned(loose)
    port.pin(loose)
    assert port.is_pinned(loose) and loose in kubo.pins
    port.unpin(loose)
    assert not port.is_pinned(loose) and loose not in kubo.pins


def test_requests_have_kubo_shapes(kubo: FakeKubo, store: KuboBlobStore) -> None:
    cid = store.put(BIG)
    store.get(cid)
    store.pin(cid)
    assert {request.method for request in kubo.requests} == {"POST"}
    add = next(r for r in kubo.requests if r.path == "/api/v0/add")
    assert add.query["cid-version"] == ["1"]
    assert add.query["raw-leaves"] == ["true"]
    assert add.query["pin"] == ["true"]
    cat = next(r for r in kubo.requests if r.path == "/api/v0/cat")
    assert cat.query["arg"] == [cid]
    pin = next(r for r in kubo.requests if r.path == "/api/v0/pin/add")
    assert pin.query["arg"] == [cid]


def test_unpin_of_an_unpinned_blob_is_a_no_op(kubo: FakeKubo, store: KuboBlobStore) -> None:
    cid = store.put(b"x", pin=False)
    store.unpin(cid)
    assert "/pin/rm" not in kubo.endpoints_called()


def test_missing_blob(kubo: FakeKubo, store: KuboBlobStore) -> None:
    cid = compute_cid(b"nobody added this")
    assert not store.has(cid)
    with pytest.raises(BlobNotFoundError, match=kubo.multiaddr):
        store.get(cid)
    with pytest.raises(BlobNotFoundError):
        store.pin(cid)


def test_same_cid_as_a_v0_daemon_default_when_asked_by_v0(
    kubo: FakeKubo, store: KuboBlobStore
) -> None:
    # A CIDv0 from elsewhere (plain `ipfs add`) is fetched and verified with v0 settings.
    cid_v0 = compute_cid(BIG, version=0)
    kubo.blobs[cid_v0] = BIG
    assert store.get(cid_v0) == BIG


def test_the_fake_answers_like_kubo_to_wrong_calls(kubo: FakeKubo) -> None:
    base = f"http://127.0.0.1:{kubo.port}/api/v0"
    assert httpx.get(f"{base}/version").status_code == 405  # the RPC API is POST only
    assert httpx.post(f"{base}/no/such/command").status_code == 404
    missing_arg = httpx.post(f"{base}/cat")
    assert missing_arg.status_code == 400
    assert missing_arg.json() == {
        "Message": 'argument "ipfs-path" is required', "Code": 0, "Type": "error"
    }


# --- untrusted input and local limits never reach the daemon ---------------------------------


@pytest.mark.parametrize("text", ["", "../x", "/ipfs/../etc", "Qm", "bafy?arg=x"])
def test_untrusted_cids_are_rejected_before_any_request(
    kubo: FakeKubo, store: KuboBlobStore, text: str
) -> None:
    before = len(kubo.requests)
    for call in (store.get, store.has, store.pin, store.unpin, store.is_pinned):
        with pytest.raises(InvalidCidError):
            call(text)
    assert len(kubo.requests) == before


def test_size_limit(kubo: FakeKubo) -> None:
    store = KuboBlobStore(kubo.multiaddr, max_blob_size=1000)
    with pytest.raises(BlobTooLargeError):
        store.put(bytes(1001))
    assert kubo.requests == []
    kubo.blobs[compute_cid(bytes(1001))] = bytes(1001)
    with pytest.raises(BlobTooLargeError):
        store.get(compute_cid(bytes(1001)))


def test_invalid_address() -> None:
    with pytest.raises(KuboError, match="not-an-address"):
        KuboBlobStore("not-an-address")


# --- the version check -----------------------------------------------------------------------


@pytest.mark.parametrize("version", ["0.4.23", "0.4.0-dev"])
def test_too_old_daemon_is_refused(version: str) -> None:
    kubo = FakeKubo(version=version).start()
    try:
        with pytest.raises(KuboVersionError) as caught:
            KuboBlobStore.connect(kubo.multiaddr)
        assert version in str(caught.value) and kubo.multiaddr in str(caught.value)
        assert "0.5.0 or newer" in str(caught.value)
    finally:
        kubo.stop()


@pytest.mark.parametrize("version", ["0.5.0", "0.26.0-rc1", "0.35.0", "1.0.0"])
def test_supported_daemons_are_accepted(version: str) -> None:
    kubo = FakeKubo(version=version).start()
    try:
        assert KuboBlobStore.connect(kubo.multiaddr).check_version() == version
    finally:
        kubo.stop()


def test_nonsense_version_is_a_protocol_error() -> None:
    kubo = FakeKubo(version="banana").start()
    try:
        with pytest.raises(KuboProtocolError, match="banana"):
            KuboBlobStore.connect(kubo.multiaddr)
    finally:
        kubo.stop()


# --- a daemon that is down or stuck ----------------------------------------------------------


def _unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.timeout(30)
def test_unreachable_daemon() -> None:
    addr = f"/ip4/127.0.0.1/tcp/{_unused_port()}/http"
    with pytest.raises(KuboUnavailableError, match=addr):
        KuboBlobStore.connect(addr, connect_timeout=2)
    store = KuboBlobStore(addr, connect_timeout=2)
    with pytest.raises(KuboUnavailableError, match=addr):
        store.put(b"x")
    with pytest.raises(KuboUnavailableError, match=addr):
        store.get(compute_cid(b"x"))


@pytest.mark.timeout(60)
def test_stuck_daemon_times_out() -> None:
    kubo = start_faulty("hang")
    try:
        with pytest.raises(KuboUnavailableError, match=kubo.multiaddr):
            KuboBlobStore.connect(kubo.multiaddr, timeout=0.5)
        store = KuboBlobStore(kubo.multiaddr, timeout=0.5)
        with pytest.raises(KuboUnavailableError):
            store.put(b"x")
        with pytest.raises(KuboUnavailableError):
            store.get(compute_cid(b"x"))
    finally:
        kubo.stop()


# --- a daemon that answers garbage or lies ---------------------------------------------------


@pytest.mark.parametrize("fault", ["garbage", "wrong-shape"])
def test_garbage_answers_are_protocol_errors(fault: str) -> None:
    kubo = start_faulty(fault)
    try:
        with pytest.raises(KuboProtocolError, match=kubo.multiaddr):
            KuboBlobStore.connect(kubo.multiaddr)
        store = KuboBlobStore(kubo.multiaddr)
        cid = compute_cid(b"x")
        for call, args in [
            (store.put, (b"x",)),
            (store.pin, (cid,)),
            (store.is_pinned, (cid,)),
            (store.unpin, (cid,)),
        ]:
            with pytest.raises(KuboProtocolError):
                call(*args)
        if fault == "garbage":  # /cat is a byte stream: garbage shows as a mismatch
            with pytest.raises(KuboProtocolError, match="do not match"):
                store.get(cid)
    finally:
        kubo.stop()


@pytest.mark.parametrize("fault", ["tamper", "truncate", "huge"])
def test_bytes_that_do_not_match_the_cid_are_refused(fault: str) -> None:
    kubo = start_faulty(fault)
    try:
        store = KuboBlobStore.connect(kubo.multiaddr)
        cid = store.put(BIG)
        with pytest.raises(KuboProtocolError, match="do not match"):
            store.get(cid)
    finally:
        kubo.stop()


def test_oversized_answer_is_cut_off_at_the_limit() -> None:
    kubo = start_faulty("huge")
    try:
        store = KuboBlobStore.connect(kubo.multiaddr, max_blob_size=len(BIG) + 10)
        with pytest.raises(BlobTooLargeError):
            store.get(store.put(BIG))
    finally:
        kubo.stop()


def test_daemon_reporting_another_cid_is_refused() -> None:
    kubo = start_faulty("wrong-cid")
    try:
        store = KuboBlobStore.connect(kubo.multiaddr)
        with pytest.raises(KuboProtocolError, match=compute_cid(BIG)):
            store.put(BIG)
    finally:
        kubo.stop()
