"""Blob exchange: fetch a model or dataset by CID from peers, verified before it is returned.

The server answers from the node's provider callback. The client asks peers one after
another; a peer that announces more than `max_size` bytes is cut off after the length (the
body is never read), and bytes the verifier refuses are counted against the peer that sent
them. Only verified bytes are returned.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence

import trio
from libp2p.abc import IHost

from wekacoin.content.errors import BlobNotFoundError, InvalidCidError
from wekacoin.errors import WekaError
from wekacoin.net import reqresp
from wekacoin.net.errors import (
    BadRequestError,
    BlobUnavailableError,
    RemoteStatusError,
    RequestError,
)
from wekacoin.net.messages import BlobRequest
from wekacoin.net.reqresp import Handler, Reply, Status
from wekacoin.types.codec import decode, encode

logger = logging.getLogger("wekacoin.net.blobs")

BLOB_PROTOCOL = "/wekacoin/blob/1.0.0"
MAX_BLOB_REQUEST_BYTES = 256

BlobProvider = Callable[[str], "bytes | None | Awaitable[bytes | None]"]
"""CID -> the blob's bytes, or None when the node does not hold it. The CID is untrusted
text: `InvalidCidError` from the provider answers BAD_REQUEST (and counts against the peer),
`BlobNotFoundError` answers NOT_FOUND, so `BlobStore.get` fits as it is. A plain function
runs on the event loop: use an async provider around `trio.to_thread.run_sync` for disk
reads (the `BlobStore` port asks for that)."""

Verifier = Callable[[bytes], bool]
"""True iff the bytes are the blob asked for (e.g. they hash to the CID). A `WekaError` it
raises counts as False."""


def blob_handler(provider: Callable[[], BlobProvider | None], *, max_bytes: int) -> Handler:
    async def handle(peer_id: str, payload: bytes) -> Reply:
        cid = decode(BlobRequest, payload).cid
        fn = provider()
        if fn is None:
            return Reply(Status.NOT_FOUND)
        try:
            data = fn(cid)
            if inspect.isawaitable(data):
                data = await data
        except InvalidCidError as e:
            raise BadRequestError(f"bad CID {cid!r}: {e}") from None
        except BlobNotFoundError:
            data = None
        if data is None:
            return Reply(Status.NOT_FOUND)
        if len(data) > max_bytes:
            logger.info("not serving blob %s to %s: %d bytes over the limit",
                        cid, peer_id, len(data))
            return Reply(Status.TOO_LARGE)
        return Reply(Status.OK, bytes(data))

    return handle


async def fetch_blob(host: IHost, peers: Sequence[str], cid: str, verify: Verifier,
                     max_size: int, *, per_peer_timeout: float, total_timeout: float,
                     on_bad_peer: Callable[[str, str], None]) -> bytes:
    """The verified bytes of `cid` from the first of `peers` that supplies them."""
    request = encode(BlobRequest(cid))
    failures: list[str] = []
    with trio.move_on_after(total_timeout):
        for peer_id in peers:
            try:
                data = await reqresp.request(host, peer_id, BLOB_PROTOCOL, request,
                                             timeout=per_peer_timeout, max_response=max_size)
            except RemoteStatusError as e:
                failures.append(f"{peer_id[-8:]}: {e.status.name}")
                continue
            except RequestError as e:
                logger.info("blob %s from %s failed: %s", cid, peer_id, e)
                failures.append(f"{peer_id[-8:]}: {type(e).__name__}")
                continue
            if _verified(verify, data):
                return data
            on_bad_peer(peer_id, f"sent {len(data)} bytes that are not blob {cid}")
            failures.append(f"{peer_id[-8:]}: bytes failed verification")
    if not peers:
        raise BlobUnavailableError(f"blob {cid}: no peer to ask")
    raise BlobUnavailableError(f"blob {cid} not obtained ({'; '.join(failures) or 'timeout'})")


def _verified(verify: Verifier, data: bytes) -> bool:
    try:
        return verify(data) is True
    except WekaError as e:
        logger.debug("verifier refused a blob: %s", e)
        return False
