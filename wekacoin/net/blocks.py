"""Block sync: a node that was down asks a peer for ranges of blocks with their certificates.

The server reads from the node's provider callback and answers at most
`max_blocks_per_request` blocks and about `max_block_response_bytes` per request; the client
walks a range in bounded batches under a total deadline. Blocks are opaque, unverified bytes
here: the node decodes and verifies them (and may `Network.penalize` a peer that sent junk).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence

import trio
from libp2p.abc import IHost

from wekacoin.net import reqresp
from wekacoin.net.errors import ProtocolViolationError, RequestError, RequestTimeoutError, SyncError
from wekacoin.net.messages import BlockRange, BlockRangeRequest, SyncedBlock
from wekacoin.net.reqresp import Handler, Reply, Status
from wekacoin.types.codec import DecodeError, decode, encode

logger = logging.getLogger("wekacoin.net.blocks")

BLOCKS_PROTOCOL = "/wekacoin/blocks/1.0.0"
MAX_BLOCK_REQUEST_BYTES = 64
_ENVELOPE_BYTES = 64 * 1024  # CBOR overhead allowance on top of the blocks' own bytes

BlockProvider = Callable[
    [int, int],
    "Sequence[tuple[bytes, bytes]] | Awaitable[Sequence[tuple[bytes, bytes]]]",
]
"""(from_height, count) -> up to `count` (block, certificate) pairs of consecutive heights
from `from_height`; fewer (or none) where the node has fewer. A plain function runs on the
event loop: wrap slow I/O in `trio.to_thread.run_sync` inside an async provider."""


def blocks_handler(provider: Callable[[], BlockProvider | None], *, max_blocks: int,
                   max_bytes: int) -> Handler:
    async def handle(peer_id: str, payload: bytes) -> Reply:
        req = decode(BlockRangeRequest, payload)
        fn = provider()
        if fn is None:
            return Reply(Status.NOT_FOUND)
        result = fn(req.from_height, min(req.count, max_blocks))
        if inspect.isawaitable(result):
            result = await result
        blocks: list[SyncedBlock] = []
        size = 0
        for block, certificate in list(result)[: min(req.count, max_blocks)]:
            size += len(block) + len(certificate)
            if blocks and size > max_bytes:
                break  # the client asks again from where this answer stops
            blocks.append(SyncedBlock(bytes(block), bytes(certificate)))
        return Reply(Status.OK, encode(BlockRange(tuple(blocks))))

    return handle


async def fetch_block_range(host: IHost, peer_id: str, from_height: int, count: int, *,
                            batch_size: int, request_timeout: float, total_timeout: float,
                            max_response: int) -> list[SyncedBlock]:
    """Up to `count` blocks from `from_height` (fewer if the peer has fewer).

    Raises `SyncError` (with the blocks that did arrive in `partial`) when a batch fails or
    the total deadline passes.
    """
    if from_height < 0 or count < 0 or batch_size < 1:
        raise ValueError("from_height and count must be >= 0, batch_size >= 1")
    got: list[SyncedBlock] = []
    try:
        with trio.fail_after(total_timeout):
            while len(got) < count:
                ask = min(batch_size, count - len(got))
                req = BlockRangeRequest(from_height + len(got), ask)
                body = await reqresp.request(host, peer_id, BLOCKS_PROTOCOL, encode(req),
                                             timeout=request_timeout,
                                             max_response=max_response + _ENVELOPE_BYTES)
                try:
                    batch = decode(BlockRange, body).blocks
                except DecodeError as e:
                    raise ProtocolViolationError(peer_id, f"malformed block range: {e}") from None
                if len(batch) > ask:
                    raise ProtocolViolationError(peer_id, f"{len(batch)} blocks for {ask} asked")
                got.extend(batch)
                if not batch:
                    break  # the peer has nothing past this height
    except trio.TooSlowError:
        raise SyncError(peer_id, f"block range not complete in {total_timeout} s",
                        tuple(got)) from RequestTimeoutError(peer_id, "total timeout")
    except RequestError as e:
        raise SyncError(peer_id, f"block range failed: {e}", tuple(got)) from e
    return got
