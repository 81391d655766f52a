"""The hello protocol: on every new connection each side tells the other its chain id,
genesis hash, tip and version, and answers with its own. A peer on another chain is refused.

Both sides open a hello stream, so each side checks the other even if one of the two
exchanges is lost; the periodic status refresh is the same exchange again.
"""

from __future__ import annotations

from collections.abc import Callable

from libp2p.abc import IHost

from wekacoin.net import reqresp
from wekacoin.net.errors import ProtocolViolationError
from wekacoin.net.messages import Hello
from wekacoin.net.reqresp import Handler, Reply, Status
from wekacoin.types.codec import DecodeError, decode, encode

HELLO_PROTOCOL = "/wekacoin/hello/1.0.0"
MAX_HELLO_BYTES = 1024


async def exchange_hello(host: IHost, peer_id: str, ours: Hello, *, timeout: float) -> Hello:
    """Send our hello, return the peer's (not yet checked against ours)."""
    body = await reqresp.request(host, peer_id, HELLO_PROTOCOL, encode(ours),
                                 timeout=timeout, max_response=MAX_HELLO_BYTES)
    try:
        return decode(Hello, body)
    except DecodeError as e:
        raise ProtocolViolationError(peer_id, f"malformed hello: {e}") from None


def hello_handler(ours: Callable[[], Hello], on_hello: Callable[[str, Hello], None]) -> Handler:
    """Answer a hello with ours, whatever it says (so the peer learns why it is refused), and
    pass theirs to `on_hello`. A malformed hello raises DecodeError: BAD_REQUEST."""

    async def handle(peer_id: str, payload: bytes) -> Reply:
        theirs = decode(Hello, payload)
        on_hello(peer_id, theirs)
        return Reply(Status.OK, encode(ours()))

    return handle
