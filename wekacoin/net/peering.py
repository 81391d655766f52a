"""From connections to peers: the hello on every new connection, refusals and bans, bootstrap
re-dialling, and the peer events the node sees.

A connection becomes a peer when either hello exchange shows our chain id and genesis, unless
`max_peers` are connected already (bootstrap peers aside): then it is turned away, closed
after a grace in which it can still ask us for other peers' addresses (`discovery.py`). A
peer on another chain is refused for the life of the process (never re-dialled); one whose
penalties reach the threshold is banned for `ban_seconds`. A refused peer's new connections
are closed as they open.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

import trio
from libp2p.abc import IHost, INetConn, INetStream, INetwork, INotifee
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo
from multiaddr import Multiaddr

from wekacoin.net.api import PeerConnected, PeerDisconnected, PeerEvent
from wekacoin.net.config import NetConfig
from wekacoin.net.errors import NetError
from wekacoin.net.handshake import exchange_hello
from wekacoin.net.host import dial
from wekacoin.net.messages import Hello
from wekacoin.net.peers import FOREVER, PeerBook, check_hello

logger = logging.getLogger("wekacoin.net.peering")

_REFUSAL_GRACE = 0.5  # let our hello answer reach a refused peer before hanging up
_RECHECK = 5.0  # a bootstrap watcher re-checks its peer at least this often
_TURN_AWAY_GRACE = 5.0  # a peer turned away (we are full) can ask for addresses meanwhile


class Peering:
    """Peer bookkeeping plus the I/O it calls for. Tasks go to the nursery given to `start`;
    before `start` and after `stop`, events that would need a task are dropped."""

    def __init__(self, host: IHost, config: NetConfig, hello: Callable[[], Hello]) -> None:
        self._host = host
        self._config = config
        self._hello = hello
        self.book = PeerBook(threshold=config.penalty_threshold,
                             half_life=config.penalty_half_life)
        self._events_send, self.events = trio.open_memory_channel[PeerEvent](
            config.events_buffer)
        self.dropped_events = 0
        self._changed = trio.Event()
        self._greeting: set[str] = set()
        self._turned_away: set[str] = set()
        self._bootstrap_ids: set[str] = set()
        self._nursery: trio.Nursery | None = None
        self.on_change: Callable[[], None] | None = None  # after peers join, leave, are refused
        host.get_network().register_notifee(_Notifee(self))

    def start(self, nursery: trio.Nursery, bootstrap: list[PeerInfo]) -> None:
        self._nursery = nursery
        self._bootstrap_ids = {info.peer_id.to_base58() for info in bootstrap}
        for info in bootstrap:
            nursery.start_soon(self._keep_connected, info)
        nursery.start_soon(self._refresh_status)

    def stop(self) -> None:
        self._nursery = None
        self._events_send.close()

    # -- queries ---------------------------------------------------------------------------

    def is_connected(self, peer: ID) -> bool:
        return any(not getattr(c.muxed_conn, "is_closed", False)
                   for c in self._host.get_network().get_connections(peer))

    def is_refused(self, peer_id: str) -> bool:
        return self.book.is_refused(peer_id, trio.current_time())

    def accepts_gossip_from(self, peer_id: str) -> bool:
        return self.book.is_verified(peer_id) and not self.is_refused(peer_id)

    def is_on_our_chain(self, peer_id: str) -> bool:
        """A peer, or a connection turned away only because we are full."""
        return ((self.book.is_verified(peer_id) or peer_id in self._turned_away)
                and not self.is_refused(peer_id))

    def is_bootstrap(self, peer_id: str) -> bool:
        """One of our bootstrap peers (re-dialled by their own watchers)."""
        return peer_id in self._bootstrap_ids

    def _is_full_for(self, peer_id: str) -> bool:
        """Whether a newcomer is past `max_peers` (our bootstrap peers always have room)."""
        return (not self.book.is_verified(peer_id) and peer_id not in self._bootstrap_ids
                and len(self.book.verified()) >= self._config.max_peers)

    # -- verdicts --------------------------------------------------------------------------

    def on_hello(self, peer_id: str, theirs: Hello) -> None:
        """A hello from a peer, by either side's exchange: admit it, refresh it, or refuse."""
        reason = check_hello(self._hello(), theirs)
        if reason is not None:
            self.refuse(peer_id, f"on another chain: {reason}", FOREVER)
            return
        if self.is_refused(peer_id) or not self.is_connected(ID.from_base58(peer_id)):
            return
        if self._is_full_for(peer_id):
            if peer_id not in self._turned_away:
                self._turned_away.add(peer_id)
                logger.debug("turning peer %s away: %d peers connected (max_peers)", peer_id,
                             self._config.max_peers)
                self._spawn(self._turn_away, peer_id)
            return
        if self.book.on_hello(peer_id, theirs):
            status = self.book.status(peer_id)
            assert status is not None
            logger.info("peer %s joined (tip %d, %s)", peer_id, theirs.tip_height,
                        theirs.node_version)
            self._emit(PeerConnected(status))
            self._signal_change()

    def penalize(self, peer_id: str, reason: str, weight: float) -> None:
        logger.debug("penalty %.1f for %s: %s", weight, peer_id, reason)
        if self.book.penalize(peer_id, weight, trio.current_time()):
            self.refuse(peer_id, f"penalty threshold reached (last: {reason})",
                        trio.current_time() + self._config.ban_seconds)

    def refuse(self, peer_id: str, reason: str, until: float) -> None:
        was_peer = self.book.is_verified(peer_id)
        if not self.book.refuse(peer_id, until, reason, trio.current_time()):
            return  # already refused (both hello exchanges report the same mismatch)
        how = "for good" if until == FOREVER else f"for {self._config.ban_seconds:.0f} s"
        logger.warning("refusing peer %s %s: %s", peer_id, how, reason)
        if was_peer:
            self._emit(PeerDisconnected(peer_id))
        if until == FOREVER:  # keep libp2p's own dialers from finding it again
            self._host.get_peerstore().clear_addrs(ID.from_base58(peer_id))
        self._spawn(self._hang_up, peer_id, _REFUSAL_GRACE)
        self._signal_change()

    # -- tasks -----------------------------------------------------------------------------

    def _spawn(self, fn: Any, *args: Any) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)

    def _signal_change(self) -> None:
        self._changed.set()
        self._changed = trio.Event()
        if self.on_change is not None:
            self.on_change()

    def _emit(self, event: PeerEvent) -> None:
        try:
            self._events_send.send_nowait(event)
        except trio.WouldBlock:
            self.dropped_events += 1
            logger.warning("node is not reading peer events: dropped %r", event)
        except trio.ClosedResourceError:
            pass

    async def _hang_up(self, peer_id: str, delay: float = 0.0) -> None:
        await trio.sleep(delay)
        with trio.move_on_after(5.0):
            try:
                await self._host.disconnect(ID.from_base58(peer_id))
            except Exception:
                logger.debug("disconnecting %s failed", peer_id, exc_info=True)

    async def _turn_away(self, peer_id: str) -> None:
        try:
            await self._hang_up(peer_id, _TURN_AWAY_GRACE)
        finally:
            self._turned_away.discard(peer_id)

    async def greet(self, peer_id: str) -> None:
        """Our side of the hello; on a new connection, hang up if it fails."""
        if peer_id in self._greeting:
            return
        self._greeting.add(peer_id)
        try:
            theirs = await exchange_hello(self._host, peer_id, self._hello(),
                                          timeout=self._config.hello_timeout)
        except NetError as e:
            if not self.book.is_verified(peer_id):
                logger.info("hello with %s failed (%s); disconnecting", peer_id, e)
                await self._hang_up(peer_id)
            return
        finally:
            self._greeting.discard(peer_id)
        self.on_hello(peer_id, theirs)

    async def _refresh_status(self) -> None:
        """Re-run the hello with every peer now and then, to learn their new tips."""
        while True:
            await trio.sleep(self._config.status_interval)
            for status in self.book.verified():
                self._spawn(self.greet, status.peer_id)

    async def _keep_connected(self, info: PeerInfo) -> None:
        """Keep a bootstrap peer connected, re-dialling with capped exponential backoff."""
        peer_id = info.peer_id.to_base58()
        delay = 0.0
        while True:
            refusal = self.book.refusal(peer_id, trio.current_time())
            if refusal is not None:
                if refusal[0] == FOREVER:
                    logger.info("not dialling bootstrap peer %s again: %s", peer_id, refusal[1])
                    return
                await trio.sleep_until(refusal[0])
                continue
            if self.is_connected(info.peer_id):
                if self.book.is_verified(peer_id):
                    delay = 0.0
                with trio.move_on_after(_RECHECK):
                    await self._changed.wait()
                continue
            if delay:
                await trio.sleep(delay * random.uniform(0.75, 1.25))
            delay = min(max(2 * delay, self._config.reconnect_min_delay),
                        self._config.reconnect_max_delay)
            try:
                with trio.fail_after(self._config.dial_timeout):
                    await dial(self._host, info)
            except Exception as e:  # libp2p dial errors come in many types
                logger.info("dialling bootstrap peer %s failed (%r); retry in ~%.1f s",
                            peer_id, e, delay)

    # -- swarm notifications ---------------------------------------------------------------

    def on_connected(self, peer: ID) -> None:
        peer_id = peer.to_base58()
        if self.is_refused(peer_id):
            self._spawn(self._hang_up, peer_id)
        elif not self.book.is_verified(peer_id):
            self._spawn(self.greet, peer_id)

    def on_disconnected(self, peer: ID) -> None:
        if self.is_connected(peer):
            return  # another connection to the same peer remains
        peer_id = peer.to_base58()
        if self.book.on_disconnected(peer_id):
            logger.info("peer %s left", peer_id)
            self._emit(PeerDisconnected(peer_id))
        self._signal_change()


class ConnectionNotifee(INotifee):
    """A swarm listener for connections only: the stream and listen events are ignored."""

    async def opened_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def closed_stream(self, network: INetwork, stream: INetStream) -> None:
        return None

    async def listen(self, network: INetwork, multiaddr: Multiaddr) -> None:
        return None

    async def listen_close(self, network: INetwork, multiaddr: Multiaddr) -> None:
        return None


class _Notifee(ConnectionNotifee):
    """Connection events from the swarm (never raises, never blocks: work is spawned)."""

    def __init__(self, peering: Peering) -> None:
        self._peering = peering

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self._peering.on_connected(conn.muxed_conn.peer_id)

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        self._peering.on_disconnected(conn.muxed_conn.peer_id)
