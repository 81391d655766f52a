"""Peer exchange: peers tell each other where their other peers listen, and a node dials the
addresses it learns until it has `target_peers` peers (`peering.py` turns newcomers away past
`max_peers`). Bootstrap addresses only have to lead to one peer of the network.

Protocol `/wekacoin/peers/1.0.0` (one request, one response: `reqresp.py`):
    request  = PeersRequest(listen_port, max_addrs)
    response = PeerAddrs(addrs), at most min(max_addrs, max_shared_addrs) of them
A node asks each new peer once, which also announces where it listens: the port it sends at
the IP its connection comes from, so a peer can only announce its own IP. While it has fewer
than `target_peers` peers it asks each peer again every `peer_exchange_interval` and dials
what it learned. It answers only peers on its chain, each at most once a quarter interval,
with the announced addresses of its other connected peers that the asker can reach
(`addresses.is_shareable`); never hearsay. What it hears is checked
(`addresses.parse_shared_addr`), kept in a bounded book with a growing redial delay, and
dialled only in the scopes the node listens in; malformed answers are penalised.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

import trio
from libp2p.abc import IHost
from libp2p.peer.id import ID

from wekacoin.net import reqresp
from wekacoin.net.addresses import (
    MAX_ADDR_CHARS,
    AddressBook,
    PeerAddr,
    compute_dialable_scopes,
    is_shareable,
    parse_shared_addr,
)
from wekacoin.net.config import NetConfig
from wekacoin.net.errors import BadRequestError, NetError, ResponseTooLargeError
from wekacoin.net.host import dial, parse_peer_addr
from wekacoin.net.messages import PeerAddrs, PeersRequest
from wekacoin.net.peering import Peering
from wekacoin.net.reqresp import Handler, Reply, Status
from wekacoin.types.codec import DecodeError, decode, encode

logger = logging.getLogger("wekacoin.net.discovery")

PEERS_PROTOCOL = "/wekacoin/peers/1.0.0"
MAX_PEERS_REQUEST_BYTES = 64
_PAUSE = 0.2  # between two rounds, however many peers join at once


def max_answer_bytes(max_addrs: int) -> int:
    return 16 + max_addrs * (MAX_ADDR_CHARS + 4)


class Discovery:
    """Serves the peer exchange and runs the loop that asks and dials. Tasks go to the
    nursery given to `start`; after `stop` nothing new is started."""

    def __init__(self, host: IHost, config: NetConfig, peering: Peering,
                 penalize: Callable[[str, str, float], None]) -> None:
        self._host = host
        self._config = config
        self._peering = peering
        self._penalize = penalize
        self._self_id = host.get_id().to_base58()
        self._scopes = compute_dialable_scopes(config.listen_host)
        self.addresses = AddressBook(config.max_known_addrs, min_backoff=config.redial_min_delay,
                                     max_backoff=config.redial_max_delay)
        self._asked: dict[str, float] = {}  # peer -> when we last asked it
        self._served: dict[str, float] = {}  # peer -> when we last answered it
        self._dialling: set[str] = set()
        self._wake = trio.Event()
        self._nursery: trio.Nursery | None = None
        peering.on_change = self.wake

    def start(self, nursery: trio.Nursery) -> None:
        self._nursery = nursery
        nursery.start_soon(self._run)

    def stop(self) -> None:
        self._nursery = None

    def wake(self) -> None:
        """Check the peers now (one joined or left, addresses arrived)."""
        self._wake.set()

    # -- serving ---------------------------------------------------------------------------

    def handler(self) -> Handler:
        async def handle(peer_id: str, payload: bytes) -> Reply:
            request = decode(PeersRequest, payload)
            if request.listen_port > 65535:
                raise BadRequestError(f"listen port {request.listen_port}")
            if not self._peering.is_on_our_chain(peer_id):
                return Reply(Status.REFUSED)
            now = trio.current_time()
            if now - self._served.get(peer_id, -float("inf")) < self._min_serve_gap():
                return Reply(Status.BUSY)
            self._note_served(peer_id, now)
            ip = self._remote_ip(peer_id)
            if ip is None:
                return Reply(Status.REFUSED)
            announced = PeerAddr(peer_id, ip, request.listen_port)
            if request.listen_port and announced.scope is not None:
                self.addresses.on_announced(announced, now)
            count = min(request.max_addrs, self._config.max_shared_addrs)
            return Reply(Status.OK, encode(PeerAddrs(tuple(self._share(peer_id, ip, count)))))

        return handle

    def _share(self, requester: str, requester_ip: str, count: int) -> list[str]:
        addrs = []
        for status in self._peering.book.verified():
            addr = self.addresses.get(status.peer_id)
            if (status.peer_id != requester and addr is not None
                    and self.addresses.is_announced(status.peer_id)
                    and is_shareable(addr, requester_ip)):
                addrs.append(str(addr))
        random.shuffle(addrs)
        return addrs[:count]

    def _min_serve_gap(self) -> float:
        return self._config.peer_exchange_interval / 4

    def _note_served(self, peer_id: str, now: float) -> None:
        self._served[peer_id] = now
        if len(self._served) > 2 * self._config.max_peers + 16:
            gap = self._min_serve_gap()
            self._served = {p: t for p, t in self._served.items() if now - t < gap}

    def _remote_ip(self, peer_id: str) -> str | None:
        for conn in self._host.get_network().get_connections(ID.from_base58(peer_id)):
            get_remote = getattr(conn.muxed_conn, "get_remote_address", None)
            remote = get_remote() if get_remote is not None else None
            if remote:
                return str(remote[0])
        return None

    # -- asking and dialling ---------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake = trio.Event()
            self._round(trio.current_time())
            await trio.sleep(_PAUSE)
            with trio.move_on_after(self._config.discovery_interval):
                await self._wake.wait()

    def _round(self, now: float) -> None:
        peers = {p.peer_id for p in self._peering.book.verified()}
        for gone in set(self._asked) - peers:
            del self._asked[gone]
        below = len(peers) < self._config.target_peers
        for peer in peers:
            last = self._asked.get(peer)
            if last is None or (below and now - last >= self._config.peer_exchange_interval):
                self._asked[peer] = now
                self._spawn(self._ask, peer)
        if not below:
            return
        room = self._config.target_peers - len(peers) - len(self._dialling)
        for addr in self.addresses.candidates(now, self._skip)[:max(0, room)]:
            self._dialling.add(addr.peer_id)
            self.addresses.on_dialled(addr.peer_id, now)
            self._spawn(self._dial, addr)

    def _skip(self, peer_id: str) -> bool:
        return (peer_id == self._self_id or peer_id in self._dialling
                or self._peering.is_bootstrap(peer_id) or self._peering.is_refused(peer_id)
                or self._peering.is_connected(ID.from_base58(peer_id)))

    async def _ask(self, peer_id: str) -> None:
        request = PeersRequest(self._listen_port(), self._config.max_shared_addrs)
        try:
            body = await reqresp.request(
                self._host, peer_id, PEERS_PROTOCOL, encode(request),
                timeout=self._config.hello_timeout,
                max_response=max_answer_bytes(self._config.max_shared_addrs))
        except ResponseTooLargeError as e:
            self._penalize(peer_id, str(e), 1.0)
            return
        except NetError as e:  # busy, gone, or a version without the protocol
            logger.debug("peer exchange with %s failed: %s", peer_id, e)
            return
        try:
            answer = decode(PeerAddrs, body)
        except DecodeError as e:
            self._penalize(peer_id, f"malformed peer list: {e}", 1.0)
            return
        if len(answer.addrs) > self._config.max_shared_addrs:
            self._penalize(peer_id, f"{len(answer.addrs)} peer addresses", 1.0)
            return
        self._learn(peer_id, answer.addrs, trio.current_time())

    def _learn(self, peer_id: str, texts: tuple[str, ...], now: float) -> None:
        learned = malformed = 0
        for text in texts:
            addr = parse_shared_addr(text)
            if addr is None:
                malformed += 1
            elif addr.peer_id != self._self_id and addr.scope in self._scopes:
                self.addresses.on_heard(addr, now)
                learned += 1
        if malformed:
            self._penalize(peer_id, f"{malformed} malformed peer addresses", 1.0)
        logger.debug("peer %s shared %d addresses, %d to dial", peer_id, len(texts), learned)
        if learned:
            self.wake()

    async def _dial(self, addr: PeerAddr) -> None:
        try:
            with trio.fail_after(self._config.dial_timeout):
                await dial(self._host, parse_peer_addr(str(addr)))
        except Exception as e:  # libp2p dial errors come in many types
            logger.debug("dialling %s failed: %r", addr, e)
        else:
            logger.debug("dialled %s, learned from a peer", addr)
        finally:
            self._dialling.discard(addr.peer_id)

    def _listen_port(self) -> int:
        for addr in self._host.get_transport_addrs():
            try:
                return int(addr.value_for_protocol("tcp"))
            except Exception:
                continue
        return 0

    def _spawn(self, fn: Any, *args: Any) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)
