"""The records exchanged over WekaCoin's own stream protocols.

They use the project's canonical CBOR codec (`wekacoin.types.codec`): decoding untrusted bytes
raises only `DecodeError`, with every field type-checked. Blocks and certificates travel as
opaque bytes: the node decodes and verifies them, the network only moves them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from wekacoin.types.codec import unsigned
from wekacoin.types.primitives import Hash, Height

if TYPE_CHECKING:
    Count = int  # as in wekacoin.types.primitives
else:
    Count = unsigned("Count")


@dataclass(frozen=True)
class Hello:
    """What a node says about itself on every new connection (and every status refresh)."""

    chain_id: str
    genesis_hash: Hash
    tip_height: Height
    tip_hash: Hash
    node_version: str


@dataclass(frozen=True)
class BlockRangeRequest:
    """Ask for up to `count` consecutive blocks starting at `from_height`."""

    from_height: Height
    count: Count


@dataclass(frozen=True)
class SyncedBlock:
    """One encoded block and the encoded certificate that finalised it (both unverified)."""

    block: bytes
    certificate: bytes


@dataclass(frozen=True)
class BlockRange:
    """Consecutive blocks from the requested height; fewer than asked when the peer has fewer
    or when they would not fit in one response."""

    blocks: tuple[SyncedBlock, ...]


@dataclass(frozen=True)
class BlobRequest:
    """Ask for the bytes of one blob by CID."""

    cid: str


@dataclass(frozen=True)
class PeersRequest:
    """Ask a peer where its other peers listen (`wekacoin.net.discovery`), telling it the TCP
    port we listen on (0: none); the peer pairs it with the IP it sees us connect from."""

    listen_port: Count
    max_addrs: Count


@dataclass(frozen=True)
class PeerAddrs:
    """Listen addresses (`/ip4/<ip>/tcp/<port>/p2p/<peer id>`) of the answering peer's other
    peers, each as that peer announced it."""

    addrs: tuple[str, ...]
