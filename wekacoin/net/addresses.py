"""Where peers listen, as the peer exchange (`discovery.py`) tells it: which addresses are
shared and dialled, and the bounded book of learned ones. No I/O; the clock is an argument.

A shared address is exactly `/ip4/<ip>/tcp/<port>/p2p/<peer id>`. Its IP is in a scope:
loopback, private (RFC 1918 and the like, CGNAT 100.64/10) or public; link-local, multicast,
unspecified and reserved addresses are never shared nor dialled. A node dials public
addresses, and loopback or private ones only in a scope it listens in itself (0.0.0.0 is
every scope): peers cannot send a node on a public address dialling into its operator's LAN
or localhost.
"""

from __future__ import annotations

import enum
import ipaddress
import random
from collections.abc import Callable
from dataclasses import dataclass

from libp2p.peer.id import ID

MAX_ADDR_CHARS = 128  # /ip4/255.255.255.255/tcp/65535/p2p/ + a 52-character Ed25519 peer id


class Scope(enum.Enum):
    LOOPBACK = "loopback"
    PRIVATE = "private"
    PUBLIC = "public"


_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")


def get_scope(ip: str) -> Scope | None:
    """The scope of an IPv4 address, or None if it is never shared nor dialled."""
    try:
        addr = ipaddress.IPv4Address(ip)
    except ValueError:
        return None
    if addr.is_loopback:
        return Scope.LOOPBACK
    if addr.is_unspecified or addr.is_multicast or addr.is_link_local or addr.is_reserved:
        return None
    if addr.is_private or addr in _CGNAT:
        return Scope.PRIVATE
    return Scope.PUBLIC if addr.is_global else None


def compute_dialable_scopes(listen_host: str) -> frozenset[Scope]:
    """The scopes a node listening on `listen_host` dials: public, plus its own."""
    if listen_host == "0.0.0.0":
        return frozenset(Scope)
    own = get_scope(listen_host)
    return frozenset({Scope.PUBLIC} if own is None else {Scope.PUBLIC, own})


def is_shareable(addr: PeerAddr, requester_ip: str) -> bool:
    """Whether to tell a peer connecting from `requester_ip` about `addr`: public addresses
    to anyone, loopback and private ones only to a peer in the same scope."""
    scope = get_scope(addr.ip)
    return scope is Scope.PUBLIC or (scope is not None and scope is get_scope(requester_ip))


@dataclass(frozen=True)
class PeerAddr:
    peer_id: str
    ip: str
    port: int

    def __str__(self) -> str:
        return f"/ip4/{self.ip}/tcp/{self.port}/p2p/{self.peer_id}"

    @property
    def scope(self) -> Scope | None:
        return get_scope(self.ip)


def parse_shared_addr(text: str) -> PeerAddr | None:
    """The address a peer shared, or None unless it is exactly
    `/ip4/<ip>/tcp/<port>/p2p/<peer id>` in canonical form with a usable IP."""
    if not isinstance(text, str) or len(text) > MAX_ADDR_CHARS:
        return None
    parts = text.split("/")
    if len(parts) != 7 or parts[0] or (parts[1], parts[3], parts[5]) != ("ip4", "tcp", "p2p"):
        return None
    ip, port, peer_id = parts[2], parts[4], parts[6]
    if not port.isdigit() or str(int(port)) != port or not 0 < int(port) <= 65535:
        return None
    try:
        if str(ipaddress.IPv4Address(ip)) != ip or ID.from_base58(peer_id).to_base58() != peer_id:
            return None
    except ValueError:
        return None
    if get_scope(ip) is None:
        return None
    return PeerAddr(peer_id, ip, int(port))


@dataclass
class _Entry:
    addr: PeerAddr
    announced: bool  # by the peer itself (its own request), not heard from a third
    seen: float
    dials: int = 0
    retry_at: float = 0.0


class AddressBook:
    """Learned listen addresses, one per peer id, at most `capacity` (the least recently
    seen go first).

    An address a peer announced itself is not replaced by what another peer says about it.
    Every dial pushes the next one back, doubling from `min_backoff` to `max_backoff`, so an
    address that leads nowhere (or to a peer that hangs up, being full) costs less and less;
    a peer that announces itself starts again from no backoff.
    """

    def __init__(self, capacity: int, *, min_backoff: float, max_backoff: float) -> None:
        self._capacity = capacity
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, peer_id: str) -> PeerAddr | None:
        entry = self._entries.get(peer_id)
        return None if entry is None else entry.addr

    def is_announced(self, peer_id: str) -> bool:
        entry = self._entries.get(peer_id)
        return entry is not None and entry.announced

    def on_announced(self, addr: PeerAddr, now: float) -> None:
        """The peer told us where it listens (in its own request)."""
        self._put(_Entry(addr, announced=True, seen=now))

    def on_heard(self, addr: PeerAddr, now: float) -> None:
        """Another peer told us where `addr.peer_id` listens."""
        entry = self._entries.get(addr.peer_id)
        if entry is not None and (entry.announced or entry.addr == addr):
            entry.seen = max(entry.seen, now)
            return
        self._put(_Entry(addr, announced=False, seen=now))

    def on_dialled(self, peer_id: str, now: float) -> None:
        """A dial to the peer's address began: back the next one off."""
        entry = self._entries.get(peer_id)
        if entry is not None:
            delay = min(self._max_backoff, self._min_backoff * 2 ** entry.dials)
            entry.dials += 1
            entry.retry_at = now + delay * random.uniform(1.0, 1.25)

    def candidates(self, now: float, skip: Callable[[str], bool]) -> list[PeerAddr]:
        """Addresses due for a dial, fewest dials first (random among equals)."""
        due = [e for e in self._entries.values() if e.retry_at <= now and not skip(e.addr.peer_id)]
        random.shuffle(due)
        due.sort(key=lambda e: e.dials)
        return [e.addr for e in due]

    def _put(self, entry: _Entry) -> None:
        self._entries.pop(entry.addr.peer_id, None)
        self._entries[entry.addr.peer_id] = entry
        while len(self._entries) > self._capacity:
            # hearsay goes before what connected peers announced themselves
            oldest = min(self._entries.values(), key=lambda e: (e.announced, e.seen))
            del self._entries[oldest.addr.peer_id]
