"""A `BlobStore` backed by an IPFS (Kubo) daemon, over its HTTP RPC API with ipfshttpclient.

ipfshttpclient 0.7.0's `connect()` refuses every daemon from 0.8.0 on, so the client is
constructed directly and the daemon's version checked here instead (`connect` below). Its
default `requests` transport is used: its optional httpx transport fails with httpx 0.28
(it calls `httpcore.SyncConnectionPool`, which httpcore no longer has).
Calls used: /version, /add (`cid-version=1`, `raw-leaves=true`: the same CIDs as
`compute_cid`), /cat (streamed, so a size limit can stop it), /pin/add, /pin/rm, /pin/ls,
/refs (with `offline=true`), /block/get (one DAG block, for storage proofs). Nothing the
daemon says is trusted: the CID /add returns must equal `compute_cid`, /cat's bytes must match
the CID asked for, and a block must hash to its CID.
"""

import hashlib
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import ipfshttpclient
from ipfshttpclient import exceptions as rpc_errors
from multiformats import CID

from wekacoin.content.cid import Cid, compute_cid, parse_cid, verify_cid
from wekacoin.content.embedded import DEFAULT_MAX_BLOB_SIZE
from wekacoin.content.errors import (
    BlobNotFoundError,
    BlobTooLargeError,
    InvalidCidError,
    KuboError,
    KuboProtocolError,
    KuboUnavailableError,
    KuboVersionError,
)

# ipfshttpclient 0.7.0 hands urllib3 a `strict` argument that urllib3 2 drops with this
# FutureWarning on every request (urllib3 3 will refuse it: keep urllib3 < 3). Silence just it.
warnings.filterwarnings(
    "ignore", message="The 'strict' parameter is no longer needed", category=FutureWarning
)

DEFAULT_ADDR = "/ip4/127.0.0.1/tcp/5001/http"
# go-ipfs 0.5.0 made the RPC API POST-only, which is all ipfshttpclient sends.
MIN_KUBO_VERSION = (0, 5, 0)
MAX_BLOCK_SIZE = 2 * 2**20
"""Largest block /block/get may return (Kubo's importer writes blocks of at most 256 KiB plus
framing; it refuses blocks over 2 MiB from its peers)."""


class KuboBlobStore:
    """A `BlobStore` on an IPFS daemon. Thread-safe: every call opens its own connection."""

    def __init__(
        self,
        addr: str = DEFAULT_ADDR,
        *,
        connect_timeout: float = 5.0,
        timeout: float = 60.0,
        max_blob_size: int = DEFAULT_MAX_BLOB_SIZE,
    ) -> None:
        """No I/O: use `KuboBlobStore.connect` to also check the daemon.

        `timeout` bounds each wait for the daemon's next bytes, not a whole transfer.
        """
        self.addr = addr
        self.max_blob_size = max_blob_size
        try:
            # session=False: a connection per call, so threads never share one.
            self._client = ipfshttpclient.Client(
                addr, timeout=(connect_timeout, timeout), session=False
            )
        except rpc_errors.AddressError as exc:
            raise KuboError(f"invalid Kubo RPC address {addr!r}: {exc}") from exc

    @classmethod
    def connect(cls, addr: str = DEFAULT_ADDR, **options: Any) -> "KuboBlobStore":
        """A store on the daemon at `addr`, after checking that it answers and is new enough."""
        store = cls(addr, **options)
        store.check_version()
        return store

    def check_version(self) -> str:
        """The daemon's version; raises `KuboVersionError` if older than `MIN_KUBO_VERSION`."""
        info = self._call("/version", self._client.version)
        version = _field(info, "Version", str, self._where("/version"))
        parsed = _parse_version(version)
        if parsed is None:
            raise KuboProtocolError(f"{self._where('/version')} reported version {version!r}")
        if parsed < MIN_KUBO_VERSION:
            minimum = ".".join(map(str, MIN_KUBO_VERSION))
            raise KuboVersionError(
                f"the IPFS daemon at {self.addr} is version {version}; WekaCoin needs Kubo "
                f"{minimum} or newer"
            )
        return version

    def put(self, data: bytes, *, pin: bool = True) -> str:
        if len(data) > self.max_blob_size:
            raise BlobTooLargeError(
                f"blob of {len(data)} bytes exceeds the limit of {self.max_blob_size} bytes"
            )
        expected = compute_cid(data)
        opts = {"cid-version": "1", "raw-leaves": "true", "pin": "true" if pin else "false"}
        answer = self._call("/add", self._client.add_bytes, data, opts=opts)
        if not isinstance(answer, str) or _canonical(answer) != expected:
            raise KuboProtocolError(
                f"{self._where('/add')} returned CID {answer!r:.120}, expected {expected}"
            )
        return expected

    def get(self, cid: str) -> bytes:
        key = str(parse_cid(cid))
        stream = self._call("/cat", self._client.cat, key, stream=True)
        chunks: list[bytes] = []
        received = 0
        try:
            with self._translated_errors("/cat"):
                for chunk in stream:
                    received += len(chunk)
                    if received > self.max_blob_size:
                        raise BlobTooLargeError(
                            f"blob {key} from {self.addr} exceeds the limit of "
                            f"{self.max_blob_size} bytes"
                        )
                    chunks.append(chunk)
        finally:
            stream.close()
        data = b"".join(chunks)
        if not verify_cid(key, data):
            raise KuboProtocolError(
                f"{self._where('/cat')} returned {len(data)} bytes that do not match {key}"
            )
        return data

    def has(self, cid: str) -> bool:
        key = str(parse_cid(cid))
        try:
            # offline: only what the daemon holds; recursive: every block, not just the root
            refs = self._call(
                "/refs", self._client.unstable.refs, key, opts={"recursive": "true"}, offline=True
            )
        except BlobNotFoundError:
            return False
        return not any(isinstance(ref, dict) and ref.get("Err") for ref in refs)

    def pin(self, cid: str) -> None:
        key = str(parse_cid(cid))
        answer = self._call("/pin/add", self._client.pin.add, key)
        pins = _field(answer, "Pins", list, self._where("/pin/add"))
        if key not in {_canonical(pin) for pin in pins}:
            raise KuboProtocolError(f"{self._where('/pin/add')} did not pin {key}: {pins!r:.200}")

    def unpin(self, cid: str) -> None:
        key = str(parse_cid(cid))
        if self.is_pinned(key):  # /pin/rm fails on what is not pinned; the port says no-op
            self._call("/pin/rm", self._client.pin.rm, key)

    def is_pinned(self, cid: str) -> bool:
        key = str(parse_cid(cid))
        answer = self._call("/pin/ls", self._client.pin.ls, type="recursive")
        keys = _field(answer, "Keys", dict, self._where("/pin/ls"))
        return key in {_canonical(pinned) for pinned in keys}

    def get_block(self, cid: bytes | str, *, offline: bool = False) -> bytes:
        """One block of a DAG by its CID: binary, as a dag-pb link spells it, or text. Online,
        the daemon fetches a block it lacks from the IPFS network. The block must hash to the
        CID's digest (sha2-256 is the only hash `parse_cid` accepts)."""
        key = _cid_of(cid)
        block = self._call("/block/get", self._client.block.get, str(key), offline=offline)
        where = self._where("/block/get")
        if not isinstance(block, bytes) or len(block) > MAX_BLOCK_SIZE:
            raise KuboProtocolError(f"{where} answered no block of at most {MAX_BLOCK_SIZE} "
                                    f"bytes for {key}")
        if hashlib.sha256(block).digest() != key.digest:
            raise KuboProtocolError(f"{where} returned a block that does not match {key}")
        return block

    # --- internals ---------------------------------------------------------------------------

    def _where(self, endpoint: str) -> str:
        return f"the IPFS daemon at {self.addr} ({endpoint})"

    def _call(self, endpoint: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with self._translated_errors(endpoint):
            return _plain(method(*args, **kwargs))

    @contextmanager
    def _translated_errors(self, endpoint: str) -> Iterator[None]:
        """Turn ipfshttpclient's failures into `KuboError`s that name the daemon."""
        where = self._where(endpoint)
        try:
            yield
        except rpc_errors.ErrorResponse as exc:  # the daemon ran the command and refused
            if _is_not_found(str(exc)):
                raise BlobNotFoundError(f"{where}: {exc}") from exc
            raise KuboError(f"{where} failed: {exc}") from exc
        except (rpc_errors.ConnectionError, rpc_errors.TimeoutError) as exc:
            raise KuboUnavailableError(
                f"{where} did not answer (is the daemon running?): {exc}"
            ) from exc
        except (rpc_errors.Error, AssertionError, KeyError, TypeError) as exc:
            # ipfshttpclient checks response shapes with `assert` and indexes fields
            # directly: all of these mean the daemon answered something else than Kubo would.
            raise KuboProtocolError(f"{where} answered garbage: {exc!r:.300}") from exc


def _cid_of(cid: bytes | str) -> Cid:
    """A text or binary CID, parsed (InvalidCidError for anything `parse_cid` refuses)."""
    if isinstance(cid, str):
        return parse_cid(cid)
    try:
        text = str(CID.decode(cid))
    except Exception:  # multiformats raises ValueError, KeyError and friends
        raise InvalidCidError(f"not a binary CID: {cid.hex():.80}") from None
    return parse_cid(text)


def _plain(value: Any) -> Any:
    """ipfshttpclient's response wrappers as plain dicts and lists."""
    if hasattr(value, "as_json"):
        return value.as_json()
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _field(answer: Any, name: str, kind: type, where: str) -> Any:
    if not isinstance(answer, dict) or not isinstance(answer.get(name), kind):
        raise KuboProtocolError(f"{where} answered without a {name} field: {answer!r:.200}")
    return answer[name]


def _canonical(cid: Any) -> str | None:
    """The canonical form of a CID the daemon reported, or None if it is not one."""
    try:
        return str(parse_cid(cid.removeprefix("/ipfs/")))
    except Exception:  # a non-string or garbage: not equal to anything we asked for
        return None


def _parse_version(text: str) -> tuple[int, int, int] | None:
    """'0.26.0' or '0.26.0-rc1' as (0, 26, 0); None when it is no version at all."""
    parts = text.split("-", 1)[0].split(".")
    if len(parts) != 3 or not all(part.isdigit() for part in parts):
        return None
    major, minor, patch = (int(part) for part in parts)
    return major, minor, patch


def _is_not_found(message: str) -> bool:
    # Kubo has no error codes for this; these are the messages of go-ipfs/boxo for a block
    # it does not hold ("block was not found locally (offline)", "ipld: could not find").
    lowered = message.lower()
    return "not found" in lowered or "could not find" in lowered
