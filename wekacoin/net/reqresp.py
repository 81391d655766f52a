"""One request, one response, over a fresh libp2p stream: the base of hello, sync and blobs.

Wire format (both directions are length-prefixed, so nothing depends on half-closes):
    request  = u32 big-endian length || payload
    response = status byte || u32 big-endian length || body
The reader checks a length against its limit before reading the body, so an announced 4 GiB
response is refused after 5 bytes. Everything a peer can send is bounded in size and time,
and nothing it sends can raise out of a server handler.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import trio
from libp2p.abc import IHost, INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from wekacoin.errors import WekaError
from wekacoin.net.errors import (
    BadRequestError,
    ProtocolViolationError,
    RemoteStatusError,
    RequestTimeoutError,
    ResponseTooLargeError,
)
from wekacoin.types.codec import DecodeError

logger = logging.getLogger("wekacoin.net.reqresp")

_LEN = 4
_READ_CHUNK = 64 * 1024


class Status(enum.IntEnum):
    OK = 0
    NOT_FOUND = 1
    BAD_REQUEST = 2
    BUSY = 3
    REFUSED = 4
    SERVER_ERROR = 5
    TOO_LARGE = 6


@dataclass(frozen=True)
class Reply:
    status: Status
    body: bytes = b""


Handler = Callable[[str, bytes], Awaitable[Reply]]
"""Server side of a protocol: (peer id, request payload) -> reply. It raises
`BadRequestError` (or the codec's `DecodeError`) for a malformed request: answered
BAD_REQUEST and reported. Any other exception is this node's failure: SERVER_ERROR, logged."""


class _Truncated(Exception):
    """The stream ended or broke before the announced bytes arrived."""


class _TooLong(Exception):
    def __init__(self, length: int) -> None:
        self.length = length


async def _read_exactly(stream: INetStream, n: int) -> bytes:
    parts: list[bytes] = []
    remaining = n
    while remaining:
        try:
            chunk = await stream.read(min(remaining, _READ_CHUNK))
        except Exception as e:  # EOF, reset, muxer errors: the libp2p hierarchy is wide
            raise _Truncated(str(e) or type(e).__name__) from e
        if not chunk:
            raise _Truncated("end of stream")
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


async def _read_frame(stream: INetStream, limit: int) -> bytes:
    length = int.from_bytes(await _read_exactly(stream, _LEN), "big")
    if length > limit:
        raise _TooLong(length)
    return await _read_exactly(stream, length)


def _frame(data: bytes) -> bytes:
    return len(data).to_bytes(_LEN, "big") + data


async def _discard(stream: INetStream, *, reset: bool) -> None:
    with trio.CancelScope(shield=True), trio.move_on_after(1.0):
        try:
            await (stream.reset() if reset else stream.close())
        except Exception:
            logger.debug("closing a stream failed", exc_info=True)


async def request(
    host: IHost,
    peer_id: str,
    protocol: str,
    payload: bytes,
    *,
    timeout: float,
    max_response: int,
) -> bytes:
    """Send one request and return the OK response body.

    Raises `RequestTimeoutError`, `ResponseTooLargeError` (nothing past the length was read),
    `RemoteStatusError` for a non-OK status, `ProtocolViolationError` for anything malformed
    or a broken stream.
    """
    stream: INetStream | None = None
    ok = False
    try:
        with trio.fail_after(timeout):
            try:
                stream = await host.new_stream(ID.from_base58(peer_id), [TProtocol(protocol)])
                await stream.write(_frame(payload))
                status_byte = await _read_exactly(stream, 1)
                body = await _read_frame(stream, max_response)
                ok = True
            except _TooLong as e:
                raise ResponseTooLargeError(
                    peer_id, f"{protocol}: response of {e.length} bytes over {max_response}"
                ) from None
            except _Truncated as e:
                raise ProtocolViolationError(peer_id, f"{protocol}: truncated ({e})") from None
            except Exception as e:  # dial / negotiation / stream failures from libp2p
                raise ProtocolViolationError(peer_id, f"{protocol}: {e!r}") from e
    except trio.TooSlowError:
        raise RequestTimeoutError(peer_id, f"{protocol}: no answer in {timeout} s") from None
    finally:
        if stream is not None:
            await _discard(stream, reset=not ok)
    try:
        status = Status(status_byte[0])
    except ValueError:
        raise ProtocolViolationError(
            peer_id, f"{protocol}: unknown status {status_byte[0]}"
        ) from None
    if status is not Status.OK:
        raise RemoteStatusError(peer_id, status)
    return body


class Responder:
    """Serves one protocol: bounded request size, bounded time, bounded concurrency.

    `on_bad_request(peer_id, reason)` is told about peers that sent malformed requests, so the
    caller can count it against them.
    """

    def __init__(
        self,
        protocol: str,
        handler: Handler,
        *,
        max_request: int,
        timeout: float,
        max_concurrent: int,
        on_bad_request: Callable[[str, str], Any],
    ) -> None:
        self.protocol = protocol
        self._handler = handler
        self._max_request = max_request
        self._timeout = timeout
        self._slots = trio.Semaphore(max_concurrent)
        self._on_bad_request = on_bad_request

    async def handle(self, stream: INetStream) -> None:
        """The libp2p stream handler; never raises (except cancellation)."""
        peer_id = stream.muxed_conn.peer_id.to_base58()
        clean = False
        try:
            with trio.move_on_after(self._timeout) as scope:
                clean = await self._serve(stream, peer_id)
            if scope.cancelled_caught:
                logger.debug("%s: peer %s too slow, stream reset", self.protocol, peer_id)
        except Exception:
            logger.exception("%s: serving peer %s failed", self.protocol, peer_id)
        finally:
            await _discard(stream, reset=not clean)

    async def _serve(self, stream: INetStream, peer_id: str) -> bool:
        try:
            payload = await _read_frame(stream, self._max_request)
        except _TooLong as e:
            self._on_bad_request(peer_id, f"{self.protocol}: request of {e.length} bytes")
            await self._write(stream, Reply(Status.TOO_LARGE))
            return False
        except _Truncated:
            return False  # the peer went away (or sent half a frame): nothing to answer
        if self._slots.value == 0:
            await self._write(stream, Reply(Status.BUSY))
            return True
        async with self._slots:
            reply = await self._call(peer_id, payload)
        return await self._write(stream, reply)

    async def _call(self, peer_id: str, payload: bytes) -> Reply:
        try:
            return await self._handler(peer_id, payload)
        except (BadRequestError, DecodeError) as e:
            self._on_bad_request(peer_id, f"{self.protocol}: {e}")
            return Reply(Status.BAD_REQUEST)
        except WekaError as e:  # a provider's own failure (disk, store): not the peer's
            logger.info("%s: could not serve %s: %s", self.protocol, peer_id, e)
            return Reply(Status.SERVER_ERROR)
        except Exception:
            logger.exception("%s: handler failed on a request from %s", self.protocol, peer_id)
            return Reply(Status.SERVER_ERROR)

    async def _write(self, stream: INetStream, reply: Reply) -> bool:
        try:  # header and body apart: no copy of a large body
            await stream.write(bytes([reply.status]) + len(reply.body).to_bytes(_LEN, "big"))
            if reply.body:
                await stream.write(reply.body)
        except Exception as e:
            logger.debug("%s: could not answer: %r", self.protocol, e)
            return False
        return True
