"""Configuration of the network adapter, checked when it is built.

Defaults suit a small network of validators; `node.toml` overrides what an operator needs
(listen address, port, bootstrap peers). Every limit here is a bound on what a peer can make
this node hold, wait for, or read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import wekacoin
from wekacoin.net.api import Topic
from wekacoin.net.errors import NetConfigError

KiB = 1024
MiB = 1024 * KiB

_CHAIN_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
GOSSIP_CEILING = 1 * MiB - 4 * KiB  # pubsub frames cap at 1 MiB; leave room for the envelope


@dataclass(frozen=True)
class TopicLimits:
    """Largest accepted message per topic; bigger ones are rejected before any validator runs
    (and refused at publish). Blocks and blobs too big for gossip go over streams."""

    tx: int = 64 * KiB
    proposal: int = GOSSIP_CEILING
    vote: int = 4 * KiB
    ranking: int = 256 * KiB

    def of(self, topic: Topic) -> int:
        return int(getattr(self, topic.value))


@dataclass(frozen=True)
class GossipTuning:
    """GossipSub settings, each chosen against a py-libp2p 0.8.1 default that loses messages
    or lets a peer push us around. See `wekacoin.net.gossip` for how they are applied."""

    # Mesh degree D / D_low / D_high: the GossipSub spec defaults (go-libp2p uses 6/5/12).
    # Each message crosses about log_D(n) hops; a wider mesh costs CPU on every relay.
    degree: int = 6
    degree_low: int = 4
    degree_high: int = 12
    # The library default heartbeat is 120 s: the mesh would take minutes to repair after a
    # peer leaves and IHAVE gossip (the repair path for lost messages) would be that slow too.
    heartbeat_interval: float = 1.0
    # Messages waiting to be written to one peer. The library default (32) drops the 33rd
    # message of a burst; 4096 small votes are ~1 MiB, and drops are counted and logged.
    outbound_queue_size: int = 4096
    # Accepted messages waiting for the node per topic (library default: 32, dropped when
    # full with only a log line). Overflow means the node is not keeping up; it is logged and
    # counted rather than blocking relays.
    delivery_buffer: int = 4096
    # How long message ids are remembered to drop duplicates (library default, kept).
    seen_ttl: int = 120
    # Async validators get this long before the message is dropped (library default, kept).
    validation_timeout: float = 5.0
    # Async validators running at once (library default 10); each message awaits a slot.
    max_concurrent_validators: int = 32


@dataclass(frozen=True)
class NetConfig:
    """Everything the network adapter needs from `node.toml` and genesis."""

    seed: bytes = field(repr=False)  # the node's Ed25519 secret seed: its peer identity
    chain_id: str
    genesis_hash: bytes
    listen_host: str = "127.0.0.1"
    listen_port: int = 0  # 0: any free port (see Network.listen_addrs)
    bootstrap: tuple[str, ...] = ()  # multiaddrs ending in /p2p/<peer id>
    node_version: str = f"wekacoin/{wekacoin.__version__}"
    topic_limits: TopicLimits = TopicLimits()
    gossip: GossipTuning = GossipTuning()
    # Handshake and peer bookkeeping
    hello_timeout: float = 5.0
    status_interval: float = 15.0  # re-run the hello to learn peers' new tips
    dial_timeout: float = 5.0
    reconnect_min_delay: float = 0.5  # bootstrap reconnect backoff, doubling up to the max
    reconnect_max_delay: float = 30.0
    penalty_threshold: float = 10.0  # decayed penalty points that get a peer banned
    penalty_half_life: float = 60.0
    ban_seconds: float = 600.0
    # Request/response serving
    serve_timeout: float = 30.0  # a peer gets this long to send its request and read the reply
    max_concurrent_requests: int = 32  # per protocol; more get BUSY
    max_blocks_per_request: int = 64
    max_block_response_bytes: int = 16 * MiB
    max_served_blob_bytes: int = 256 * MiB
    events_buffer: int = 1024
    # Peer discovery (`discovery.py`): peers tell each other where their other peers listen
    max_peers: int = 50  # handshaken peers at most; a newcomer past it is turned away
    target_peers: int = 8  # dial the addresses peers shared until this many are connected
    discovery_interval: float = 10.0  # how often the peer count is checked (and on changes)
    peer_exchange_interval: float = 60.0  # while below target, ask each peer this often
    max_shared_addrs: int = 16  # addresses in one peer exchange answer
    max_known_addrs: int = 256  # learned addresses kept for dialling
    redial_min_delay: float = 5.0  # after each dial to a learned address, doubling up to
    redial_max_delay: float = 600.0  # the max (a peer announcing itself starts again)

    def __post_init__(self) -> None:
        if type(self.seed) is not bytes or len(self.seed) != 32:
            raise NetConfigError("seed must be 32 bytes")
        if not _CHAIN_ID.fullmatch(self.chain_id):
            raise NetConfigError(f"chain id {self.chain_id!r} must match {_CHAIN_ID.pattern}")
        if type(self.genesis_hash) is not bytes or len(self.genesis_hash) != 32:
            raise NetConfigError("genesis hash must be 32 bytes")
        if not 0 <= self.listen_port <= 65535:
            raise NetConfigError(f"listen port {self.listen_port} out of range")
        if isinstance(self.bootstrap, str) or not all(isinstance(a, str) for a in self.bootstrap):
            raise NetConfigError("bootstrap must be a list of multiaddr strings")
        object.__setattr__(self, "bootstrap", tuple(self.bootstrap))  # a TOML list is fine
        for topic in Topic:
            if not 0 < self.topic_limits.of(topic) <= GOSSIP_CEILING:
                raise NetConfigError(f"{topic.value} size cap must be in (0, {GOSSIP_CEILING}]")
        g = self.gossip
        if not 0 < g.degree_low <= g.degree <= g.degree_high:
            raise NetConfigError("gossip degrees must satisfy 0 < low <= degree <= high")
        if g.heartbeat_interval <= 0 or g.outbound_queue_size < 1 or g.delivery_buffer < 1:
            raise NetConfigError("gossip heartbeat and buffers must be positive")
        if self.reconnect_min_delay <= 0 or self.reconnect_max_delay < self.reconnect_min_delay:
            raise NetConfigError("reconnect delays must satisfy 0 < min <= max")
        if self.max_peers < 1 or not 0 <= self.target_peers <= self.max_peers:
            raise NetConfigError("peer counts must satisfy 0 <= target_peers <= max_peers, "
                                 "1 <= max_peers")
        if self.redial_min_delay <= 0 or self.redial_max_delay < self.redial_min_delay:
            raise NetConfigError("redial delays must satisfy 0 < min <= max")
        if (self.discovery_interval <= 0 or self.peer_exchange_interval <= 0
                or not 0 < self.max_shared_addrs <= 64 or self.max_known_addrs < 1):
            raise NetConfigError("discovery intervals and address counts must be positive "
                                 "(at most 64 shared addresses)")
