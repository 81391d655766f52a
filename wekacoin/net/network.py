"""The `Network` facade: the one object the node driver uses to talk to peers.

Contract (trio only; every method must be called from the trio thread that runs the network):
- Lifecycle: `await nursery.start(net.run)` then `net.stop()`, or `async with net.running():`.
  `run` returns only after topics are unsubscribed, peers disconnected and every libp2p
  service has stopped; cancelling it shuts down in the same order first. A `Network` runs
  once. Signals (SIGINT/SIGTERM) are the driver's: it calls `stop()`.
- Identity: `peer_id` is derived from `NetConfig.seed` (the node's Ed25519 key).
- Peers: a connection becomes a peer once the hello handshake shows the same chain id and
  genesis; until then its gossip is ignored and it is not in `peers()`. A peer on another
  chain is disconnected and never re-dialled; a peer whose messages or responses are rejected
  often enough is banned for `ban_seconds`. Bootstrap peers are re-dialled with backoff.
  Peers share where their other peers listen, and the node dials them up to `target_peers`;
  past `max_peers` newcomers are turned away (`discovery.py`, `peering.py`).
- Gossip: `publish` relays to peers (own messages are not validated nor echoed back);
  received messages reach `messages(topic)` only after the topic's validator accepted them,
  and only accepted messages are relayed.
- Requests go to handshaken peers only; `request_blocks`, `fetch_blob` and `connect` raise
  `wekacoin.net.errors` exceptions (all `WekaError`s), never libp2p ones.
- Providers: `block_provider` and `blob_provider` (settable attributes) answer peers'
  requests; see `blocks.BlockProvider` and `blobs.BlobProvider` for their contracts.
"""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio
from libp2p.abc import INetStream
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.tools.anyio_service import background_trio_service

from wekacoin.net import blobs, blocks
from wekacoin.net.api import GossipMessage, PeerEvent, PeerStatus, Topic, Validator
from wekacoin.net.config import NetConfig
from wekacoin.net.discovery import MAX_PEERS_REQUEST_BYTES, PEERS_PROTOCOL, Discovery
from wekacoin.net.errors import DialError, NetError, NotAPeerError, NotRunningError
from wekacoin.net.gossip import Gossip
from wekacoin.net.handshake import HELLO_PROTOCOL, MAX_HELLO_BYTES, hello_handler
from wekacoin.net.host import (
    build_host,
    dial,
    ensure_port_free,
    guard_stream_handlers,
    listen_multiaddr,
    parse_peer_addr,
)
from wekacoin.net.messages import Hello, SyncedBlock
from wekacoin.net.peering import Peering
from wekacoin.net.reqresp import Responder
from wekacoin.types.primitives import ZERO_HASH

logger = logging.getLogger("wekacoin.net")

_TEARDOWN_TIMEOUT = 10.0  # each shutdown step
_SHUTDOWN_LIMIT = 30.0  # the whole shutdown, after which its tasks are cancelled


@dataclass(frozen=True)
class NetStats:
    """Messages this node lost; all stay 0 when the tuning matches the load."""

    dropped_outbound: int
    dropped_deliveries: int
    dropped_events: int


class Network:
    """A WekaCoin node's libp2p host, gossip topics and stream protocols."""

    def __init__(self, config: NetConfig, *, block_provider: blocks.BlockProvider | None = None,
                 blob_provider: blobs.BlobProvider | None = None) -> None:
        self.config = config
        self._host = build_host(config.seed, dial_timeout=config.dial_timeout)
        self.peer_id = self._host.get_id().to_base58()
        self._listen = listen_multiaddr(config.listen_host, config.listen_port)
        self._bootstrap = [p for p in map(parse_peer_addr, config.bootstrap)
                           if p.peer_id.to_base58() != self.peer_id]
        self._tip = (0, ZERO_HASH)
        self.block_provider = block_provider
        self.blob_provider = blob_provider
        self._peering = Peering(self._host, config, self._hello)
        self._book = self._peering.book
        self._discovery = Discovery(self._host, config, self._peering,
                                    lambda peer, why, weight: self.penalize(peer, why, weight))
        self._gossip = Gossip(self._host, chain_id=config.chain_id, limits=config.topic_limits,
                              tuning=config.gossip,
                              accepts_from=self._peering.accepts_gossip_from,
                              on_reject=lambda peer, why: self.penalize(peer, why))
        self._nursery: trio.Nursery | None = None
        self._started = False
        self._stop = trio.Event()
        self._shelter: trio.CancelScope | None = None
        self._serve(HELLO_PROTOCOL, hello_handler(self._hello, self._peering.on_hello),
                    MAX_HELLO_BYTES)
        self._serve(blocks.BLOCKS_PROTOCOL, blocks.blocks_handler(
            lambda: self.block_provider, max_blocks=config.max_blocks_per_request,
            max_bytes=config.max_block_response_bytes), blocks.MAX_BLOCK_REQUEST_BYTES)
        self._serve(blobs.BLOB_PROTOCOL, blobs.blob_handler(
            lambda: self.blob_provider, max_bytes=config.max_served_blob_bytes),
            blobs.MAX_BLOB_REQUEST_BYTES)
        self._serve(PEERS_PROTOCOL, self._discovery.handler(), MAX_PEERS_REQUEST_BYTES)
        guard_stream_handlers(self._host, lambda peer, protocol, error: self.penalize(
            peer, f"malformed {protocol} stream: {error!r}"))

    def _serve(self, protocol: str, handler: Any, max_request: int) -> None:
        responder = Responder(protocol, handler, max_request=max_request,
                              timeout=self.config.serve_timeout,
                              max_concurrent=self.config.max_concurrent_requests,
                              on_bad_request=lambda peer, why: self.penalize(peer, why))

        async def handle(stream: INetStream) -> None:
            if self._peering.is_refused(stream.muxed_conn.peer_id.to_base58()):
                await stream.reset()
                return
            await responder.handle(stream)

        self._host.set_stream_handler(TProtocol(protocol), handle)

    # -- lifecycle -------------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        """Listen, join the topics, dial the bootstrap peers; return after `stop()` once
        everything is shut down. Cancelling the caller's scope also stops the network in
        order (bounded by `_SHUTDOWN_LIMIT`) before the cancellation goes on."""
        if self._started:
            raise NetError("a Network runs only once")
        self._started = True
        ensure_port_free(self.config.listen_host, self.config.listen_port)
        finished = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._stop_when_cancelled)
            await nursery.start(self._run_sheltered, finished)
            task_status.started()
            await finished.wait()
            nursery.cancel_scope.cancel()

    async def _stop_when_cancelled(self) -> None:
        """Turn a cancellation of `run` (even mid-start) into an orderly `stop()`."""
        try:
            await trio.sleep_forever()
        finally:
            self.stop()

    async def _run_sheltered(self, finished: trio.Event, *,
                             task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        # Shielded: an outside cancellation would otherwise hit libp2p's services all at
        # once, and their cancelled clean-up drops connections without closing the sockets
        # (peers never see us leave). `stop()` arms the deadline that bounds the shutdown.
        with trio.CancelScope(shield=True) as self._shelter:
            if self._stop.is_set():
                self._arm_shutdown_limit()
            try:
                await self._run_host(task_status)
            finally:
                finished.set()

    async def _run_host(self, task_status: Any) -> None:
        async with self._host.run([self._listen]):
            try:
                async with background_trio_service(self._gossip.pubsub):
                    async with background_trio_service(self._gossip.router):
                        try:
                            await self._serve_until_stopped(task_status)
                        finally:
                            with trio.move_on_after(_TEARDOWN_TIMEOUT):
                                await self._teardown()
            finally:
                # The swarm's own stop path skips closing its listeners when cancelled,
                # which leaves the port accepting connections; close the host explicitly.
                with trio.CancelScope(shield=True), trio.move_on_after(_TEARDOWN_TIMEOUT):
                    await self._host.close()
        logger.info("network stopped")

    async def _serve_until_stopped(self, task_status: Any) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                self._peering.start(nursery, self._bootstrap)
                self._discovery.start(nursery)
                await self._gossip.subscribe_all()
                logger.debug("network up as %s on %s", self.peer_id,
                             ", ".join(self.listen_addrs()))
                task_status.started()
                await self._stop.wait()
                nursery.cancel_scope.cancel()
        finally:
            self._nursery = None
            self._discovery.stop()
            self._peering.stop()

    def stop(self) -> None:
        """Ask `run` to shut down (idempotent)."""
        self._stop.set()
        self._arm_shutdown_limit()

    def _arm_shutdown_limit(self) -> None:
        if self._shelter is not None and self._shelter.deadline == float("inf"):
            self._shelter.deadline = trio.current_time() + _SHUTDOWN_LIMIT

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Network]:
        """Run the network for the duration of the block. A failure to start (port in use,
        say) is raised as itself, not inside an exception group."""
        failure: Exception | None = None
        async with trio.open_nursery() as nursery:
            try:
                await nursery.start(self.run)
            except Exception as e:
                failure = e
            else:
                try:
                    yield self
                finally:
                    self.stop()
        if failure is not None:
            raise failure

    async def _teardown(self) -> None:
        # Unsubscribe and hang up while pubsub and the swarm still run: leaving their
        # service contexts with live peers makes their tasks spawn into closed nurseries.
        await self._gossip.unsubscribe_all()
        network = self._host.get_network()
        for peer in list(network.connections):
            try:
                await self._host.disconnect(peer)
            except Exception:
                logger.debug("disconnecting %s failed", peer, exc_info=True)

    def listen_addrs(self) -> list[str]:
        """Where peers can dial us, each ending in /p2p/<our peer id>."""
        return [f"{a}/p2p/{self.peer_id}" for a in self._host.get_transport_addrs()]

    # -- peers -----------------------------------------------------------------------------

    def peers(self) -> list[PeerStatus]:
        """Handshaken peers with the tip each last announced."""
        return self._book.verified()

    def is_connected(self, peer_id: str) -> bool:
        """Whether a transport connection to the peer is open (handshaken or not)."""
        return self._peering.is_connected(ID.from_base58(peer_id))

    def known_addrs(self) -> int:
        """Peer addresses learned from peers (and their own announcements), kept to dial."""
        return len(self._discovery.addresses)

    def refusal(self, peer_id: str) -> str | None:
        """Why the peer is refused (another chain, a ban), or None if it is not."""
        r = self._book.refusal(peer_id, trio.current_time())
        return None if r is None else r[1]

    def events(self) -> trio.MemoryReceiveChannel[PeerEvent]:
        """PeerConnected / PeerDisconnected, in order (one consumer; closed on shutdown)."""
        return self._peering.events

    def set_tip(self, height: int, tip_hash: bytes) -> None:
        """What our hellos announce from now on."""
        if height < 0 or len(tip_hash) != 32:
            raise ValueError("tip height must be >= 0 and the hash 32 bytes")
        self._tip = (height, bytes(tip_hash))

    async def connect(self, addr: str) -> None:
        """Dial a peer address (`.../p2p/<id>`) once; the hello follows on its own.
        Raises `DialError` (or `NetConfigError` for an address that is not one)."""
        info = parse_peer_addr(addr)
        self._require_running()
        try:
            with trio.fail_after(self.config.dial_timeout):
                await dial(self._host, info)
        except trio.TooSlowError:
            raise DialError(f"dialling {addr} timed out") from None
        except Exception as e:  # libp2p dial errors come in many types
            raise DialError(f"dialling {addr} failed: {e}") from e

    def penalize(self, peer_id: str, reason: str, weight: float = 1.0) -> None:
        """Count misbehaviour against a peer; past the threshold it is banned."""
        self._peering.penalize(peer_id, reason, weight)

    def penalty(self, peer_id: str) -> float:
        """The peer's current (decaying) penalty score."""
        return self._book.penalty(peer_id, trio.current_time())

    def stats(self) -> NetStats:
        """Counters of messages lost to full buffers since start (see `GossipTuning`)."""
        return NetStats(self._gossip.dropped_outbound, self._gossip.dropped_deliveries,
                        self._peering.dropped_events)

    # -- gossip ----------------------------------------------------------------------------

    def set_validator(self, topic: Topic, fn: Validator | None) -> None:
        """The topic's validator, run before delivery and relay (None: accept all)."""
        self._gossip.set_validator(topic, fn)

    async def publish(self, topic: Topic, data: bytes) -> None:
        """Gossip `data`; raises MessageTooLargeError over the topic's cap."""
        self._require_running()
        await self._gossip.publish(topic, data)

    def messages(self, topic: Topic) -> trio.MemoryReceiveChannel[GossipMessage]:
        """Accepted messages of `topic` (one consumer per topic; closed on shutdown)."""
        return self._gossip.messages(topic)

    def topic_name(self, topic: Topic) -> str:
        return self._gossip.names[topic]

    def mesh_peers(self, topic: Topic) -> list[str]:
        """Peers we exchange full messages with on `topic` (the rest only get gossip)."""
        return self._gossip.mesh_peers(topic)

    # -- requests --------------------------------------------------------------------------

    async def request_blocks(self, peer_id: str, from_height: int, count: int, *,
                             batch_size: int = 32, request_timeout: float = 10.0,
                             total_timeout: float = 60.0) -> list[SyncedBlock]:
        """Up to `count` (unverified) blocks from `from_height`, fetched from one peer in
        batches; fewer if the peer has fewer. Raises `SyncError` with the partial result."""
        self._require_running()
        if not self._book.is_verified(peer_id):
            raise NotAPeerError(peer_id, "not a handshaken peer")
        return await blocks.fetch_block_range(
            self._host, peer_id, from_height, count, batch_size=batch_size,
            request_timeout=request_timeout, total_timeout=total_timeout,
            max_response=self.config.max_block_response_bytes)

    async def fetch_blob(self, cid: str, verify: blobs.Verifier, max_size: int, *,
                         peers: Sequence[str] | None = None, per_peer_timeout: float = 30.0,
                         total_timeout: float = 120.0) -> bytes:
        """Bytes of `cid` that `verify` accepted, asking `peers` (default: every handshaken
        peer, shuffled) one after another. Raises `BlobUnavailableError`."""
        self._require_running()
        if peers is None:
            peers = [p.peer_id for p in self._book.verified()]
            random.shuffle(peers)
        else:
            peers = [p for p in peers if self._book.is_verified(p)]
        return await blobs.fetch_blob(
            self._host, peers, cid, verify, max_size, per_peer_timeout=per_peer_timeout,
            total_timeout=total_timeout,
            on_bad_peer=lambda peer, why: self.penalize(peer, why, weight=5.0))

    # -- internals -------------------------------------------------------------------------

    def _require_running(self) -> None:
        if self._nursery is None:
            raise NotRunningError("the network is not running")

    def _hello(self) -> Hello:
        height, tip_hash = self._tip
        c = self.config
        return Hello(c.chain_id, c.genesis_hash, height, tip_hash, c.node_version)
