"""Errors of the network adapter.

Each is a `WekaError`, so the node driver can catch what peers (or their absence) can provoke
without catching programming errors. Request errors name the peer that failed, so the caller
can try another one.
"""

from __future__ import annotations

from typing import Any

from wekacoin.errors import WekaError


class NetError(WekaError):
    """Base class of every error raised by `wekacoin.net`."""


class NetConfigError(NetError):
    """The network configuration is unusable (bad seed, chain id, bootstrap address...)."""


class NotRunningError(NetError):
    """The network is not started (or already stopped)."""


class DialError(NetError):
    """A peer address could not be dialled (refused, unreachable, wrong key, timeout)."""


class MessageTooLargeError(NetError):
    """A message to publish exceeds its topic's size cap."""


class BadRequestError(NetError):
    """A peer's request is malformed (raised by protocol handlers; counted against it)."""


class RequestError(NetError):
    """A request to one peer failed; `peer_id` says which."""

    def __init__(self, peer_id: str, message: str) -> None:
        super().__init__(f"{message} (peer {peer_id})")
        self.peer_id = peer_id


class NotAPeerError(RequestError):
    """Requests go only to handshaken peers (same chain); this one is not, or not yet."""


class RequestTimeoutError(RequestError):
    """The peer did not answer in time."""


class ResponseTooLargeError(RequestError):
    """The peer announced a response larger than the caller accepts; it was not read."""


class RemoteStatusError(RequestError):
    """The peer answered with a status other than OK (not found, busy, refused...)."""

    def __init__(self, peer_id: str, status: Any) -> None:
        super().__init__(peer_id, f"peer answered {status.name}")
        self.status = status


class ProtocolViolationError(RequestError):
    """The peer sent bytes that do not follow the protocol (or the stream broke)."""


class SyncError(RequestError):
    """A block range could not be fetched completely; `partial` holds what arrived."""

    def __init__(self, peer_id: str, message: str, partial: tuple[Any, ...]) -> None:
        super().__init__(peer_id, message)
        self.partial = partial


class BlobUnavailableError(NetError):
    """No peer supplied bytes for the CID that the verifier accepted, within the limits."""
