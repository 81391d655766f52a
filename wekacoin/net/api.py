"""The values that cross the boundary between the network adapter and the node driver.

Peers are named by their libp2p peer id as a string (base58, `12D3KooW...`); no libp2p or
trio type appears here, so the driver and its tests do not depend on either.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


class Topic(enum.Enum):
    """The gossip topics of a chain; `topic_name` gives the wire name."""

    TX = "tx"
    PROPOSAL = "proposal"
    VOTE = "vote"
    RANKING = "ranking"


def topic_name(chain_id: str, topic: Topic) -> str:
    """The GossipSub topic string, e.g. `/wekacoin/wekacoin-local/tx/1`."""
    return f"/wekacoin/{chain_id}/{topic.value}/1"


class Verdict(enum.Enum):
    """A topic validator's decision about one gossip message.

    ACCEPT: deliver it to the node and relay it. IGNORE: drop it without blame (a duplicate,
    a vote for a round already closed). REJECT: drop it and count it against the peer that
    sent it; enough rejections disconnect and ban that peer.
    """

    ACCEPT = "accept"
    REJECT = "reject"
    IGNORE = "ignore"


Accept = Verdict.ACCEPT
Reject = Verdict.REJECT
Ignore = Verdict.IGNORE

Validator = Callable[[bytes], "Verdict | Awaitable[Verdict]"]
"""A topic validator: raw message bytes in, a verdict out; a plain or an async function."""


@dataclass(frozen=True)
class GossipMessage:
    """A gossip message the topic's validator accepted.

    `origin` published it (GossipSub signs messages with the origin's peer key, and the
    signature was checked); `forwarder` is the neighbour that handed it to us.
    """

    topic: Topic
    data: bytes
    origin: str
    forwarder: str | None
    message_id: bytes


@dataclass(frozen=True)
class PeerStatus:
    """A connected peer that passed the hello handshake, with what it last told us."""

    peer_id: str
    tip_height: int
    tip_hash: bytes
    node_version: str


@dataclass(frozen=True)
class PeerConnected:
    """A peer passed the hello handshake (our chain, our genesis) and is usable."""

    status: PeerStatus


@dataclass(frozen=True)
class PeerDisconnected:
    """A handshaken peer lost its last connection to us."""

    peer_id: str


PeerEvent = PeerConnected | PeerDisconnected
