"""Peer exchange: the address rules, the address book, and nodes finding each other through
one bootstrap peer, within `max_peers`."""

from __future__ import annotations

import pytest
import trio

from tests.helpers.net_helpers import net_config, peer_ids, run_net_test, running, wait_until
from wekacoin.net import Network, peer_id_from_seed
from wekacoin.net.addresses import (
    AddressBook,
    PeerAddr,
    Scope,
    compute_dialable_scopes,
    get_scope,
    is_shareable,
    parse_shared_addr,
)
from wekacoin.net.errors import BadRequestError, NetConfigError
from wekacoin.net.messages import PeerAddrs, PeersRequest
from wekacoin.net.reqresp import Status
from wekacoin.types.codec import decode, encode

PEER = peer_id_from_seed(b"\x01" * 32)
OTHER = peer_id_from_seed(b"\x02" * 32)

# Fast discovery for tests on 127.0.0.1: seconds become fractions.
FAST = dict(discovery_interval=0.3, peer_exchange_interval=0.5, redial_min_delay=0.2,
            redial_max_delay=1.0)


# -- addresses -----------------------------------------------------------------------------


@pytest.mark.parametrize("ip, scope", [
    ("127.0.0.1", Scope.LOOPBACK), ("10.1.2.3", Scope.PRIVATE), ("172.20.0.5", Scope.PRIVATE),
    ("192.168.1.9", Scope.PRIVATE), ("100.64.0.1", Scope.PRIVATE), ("8.8.8.8", Scope.PUBLIC),
    ("0.0.0.0", None), ("169.254.1.1", None), ("224.0.0.1", None), ("240.0.0.1", None),
    ("255.255.255.255", None), ("::1", None), ("nonsense", None),
])
def test_scopes(ip: str, scope: Scope | None) -> None:
    assert get_scope(ip) is scope


def test_a_node_dials_public_addresses_and_its_own_scopes_only() -> None:
    assert compute_dialable_scopes("127.0.0.1") == {Scope.PUBLIC, Scope.LOOPBACK}
    assert compute_dialable_scopes("10.0.0.2") == {Scope.PUBLIC, Scope.PRIVATE}
    assert compute_dialable_scopes("8.8.4.4") == {Scope.PUBLIC}
    assert compute_dialable_scopes("0.0.0.0") == set(Scope)


def test_loopback_and_private_addresses_are_shared_only_within_their_scope() -> None:
    assert is_shareable(PeerAddr(PEER, "127.0.0.1", 1), "127.0.0.1")
    assert not is_shareable(PeerAddr(PEER, "127.0.0.1", 1), "10.0.0.1")
    assert not is_shareable(PeerAddr(PEER, "10.0.0.7", 1), "8.8.8.8")
    assert is_shareable(PeerAddr(PEER, "10.0.0.7", 1), "192.168.0.3")
    assert is_shareable(PeerAddr(PEER, "8.8.8.8", 1), "127.0.0.1")


def test_only_canonical_tcp_peer_addresses_are_accepted() -> None:
    good = f"/ip4/10.0.0.7/tcp/30333/p2p/{PEER}"
    assert parse_shared_addr(good) == PeerAddr(PEER, "10.0.0.7", 30333)
    assert str(parse_shared_addr(good)) == good
    for bad in [
        f"/ip4/10.0.0.7/tcp/30333/p2p/{PEER}/extra", f"/ip4/10.0.0.7/udp/30333/p2p/{PEER}",
        f"/ip6/::1/tcp/30333/p2p/{PEER}", f"/dns4/example.org/tcp/30333/p2p/{PEER}",
        f"/ip4/10.0.0.07/tcp/30333/p2p/{PEER}", f"/ip4/10.0.0.7/tcp/030333/p2p/{PEER}",
        f"/ip4/10.0.0.7/tcp/0/p2p/{PEER}", f"/ip4/10.0.0.7/tcp/65536/p2p/{PEER}",
        f"/ip4/0.0.0.0/tcp/1/p2p/{PEER}", f"/ip4/224.0.0.1/tcp/1/p2p/{PEER}",
        "/ip4/10.0.0.7/tcp/30333/p2p/not-a-peer-id", "/ip4/10.0.0.7/tcp/30333",
        "x" * 200, "",
    ]:
        assert parse_shared_addr(bad) is None, bad


def test_the_book_trusts_announcements_over_hearsay_and_backs_off_redials() -> None:
    book = AddressBook(8, min_backoff=1.0, max_backoff=4.0)
    own = PeerAddr(PEER, "127.0.0.1", 4000)
    book.on_announced(own, now=0.0)
    book.on_heard(PeerAddr(PEER, "127.0.0.1", 5000), now=1.0)  # a third party says otherwise
    assert book.get(PEER) == own and book.is_announced(PEER)
    book.on_heard(PeerAddr(OTHER, "127.0.0.1", 6000), now=1.0)
    assert book.candidates(1.0, skip=lambda p: p == PEER) == [PeerAddr(OTHER, "127.0.0.1", 6000)]
    delays = []
    for _ in range(4):
        book.on_dialled(OTHER, now=10.0)
        due = next(t for t in range(10, 20) if book.candidates(10.0 + t - 10, lambda p: p == PEER))
        delays.append(due - 10)
    assert delays == sorted(delays) and delays[-1] <= 5  # 1, 2, 4, 4 s, with jitter
    book.on_announced(PeerAddr(OTHER, "127.0.0.1", 6000), now=11.0)  # it spoke to us: no backoff
    assert PeerAddr(OTHER, "127.0.0.1", 6000) in book.candidates(11.0, lambda p: False)


def test_the_book_is_bounded_and_drops_hearsay_first() -> None:
    book = AddressBook(3, min_backoff=1.0, max_backoff=4.0)
    book.on_announced(PeerAddr(PEER, "127.0.0.1", 4000), now=0.0)
    for i in range(10):
        book.on_heard(PeerAddr(peer_id_from_seed(bytes([i + 10]) * 32), "127.0.0.1", 5000 + i),
                      now=1.0 + i)
    assert len(book) == 3 and book.get(PEER) is not None
    assert book.get(peer_id_from_seed(bytes([19]) * 32)) is not None  # the newest hearsay


def test_peer_counts_are_checked() -> None:
    with pytest.raises(NetConfigError, match="target_peers"):
        net_config(1, max_peers=4, target_peers=5)
    with pytest.raises(NetConfigError, match="max_peers"):
        net_config(1, max_peers=0, target_peers=0)


# -- the protocol against one node ---------------------------------------------------------


def test_a_node_answers_peers_only_and_penalises_malformed_lists() -> None:
    async def scenario() -> None:
        net = Network(net_config(200, **FAST))
        handle = net._discovery.handler()
        reply = await handle(PEER, encode(PeersRequest(30333, 8)))
        assert reply.status is Status.REFUSED  # not a peer
        with pytest.raises(BadRequestError):
            await handle(PEER, encode(PeersRequest(70000, 8)))
        net._discovery._learn(PEER, (f"/ip4/127.0.0.1/tcp/9/p2p/{OTHER}", "junk"), 0.0)
        assert net.known_addrs() == 1
        assert net.penalty(PEER) > 0
        net._discovery._learn(OTHER, (f"/ip4/127.0.0.1/tcp/9/p2p/{net.peer_id}",
                                      f"/ip4/8.8.8.8/tcp/9/p2p/{PEER}"), 0.0)
        assert net.known_addrs() == 2  # never itself; public addresses are dialable
        assert net.penalty(OTHER) == 0

    run_net_test(scenario)


# -- nodes finding each other ----------------------------------------------------------------


def test_a_node_bootstrapped_to_one_peer_finds_the_others() -> None:
    """A, B and C know each other through A; D bootstraps only to A and ends connected to B
    and C as well, which learn D's address in turn."""
    async def scenario() -> None:
        a = Network(net_config(210, **FAST))
        async with running(a):
            via_a = (a.listen_addrs()[0],)
            b, c, d = (Network(net_config(i, bootstrap=via_a, **FAST)) for i in (211, 212, 213))
            async with running(b, c):
                await wait_until(lambda: peer_ids(b) >= {a.peer_id, c.peer_id}
                                 and peer_ids(c) >= {a.peer_id, b.peer_id},
                                 timeout=20, what="B and C find each other through A")
                async with running(d):
                    everyone = {a.peer_id, b.peer_id, c.peer_id}
                    await wait_until(lambda: peer_ids(d) == everyone, timeout=20,
                                     what="D connected to A, B and C")
                    await wait_until(lambda: all(d.peer_id in peer_ids(n) for n in (a, b, c)),
                                     timeout=20, what="D is everyone's peer")
                    assert d.known_addrs() >= 2

    run_net_test(scenario)


def test_past_max_peers_a_newcomer_is_turned_away_with_addresses() -> None:
    """A takes one peer. B and C both dial it: one is turned away, but learns where the other
    listens before A hangs up, and the two connect to each other."""
    async def scenario() -> None:
        a = Network(net_config(220, max_peers=1, target_peers=1, **FAST))
        async with running(a):
            via_a = (a.listen_addrs()[0],)
            b = Network(net_config(221, bootstrap=via_a, **FAST))
            async with running(b):
                await wait_until(lambda: peer_ids(a) == {b.peer_id}, what="B is A's peer")
                c = Network(net_config(222, bootstrap=via_a, **FAST))
                most = 0

                def b_and_c_connected() -> bool:
                    nonlocal most
                    most = max(most, len(a.peers()))
                    return c.peer_id in peer_ids(b) and b.peer_id in peer_ids(c)

                async with running(c):
                    await wait_until(b_and_c_connected, timeout=20, what="B and C connected")
                    for _ in range(20):  # A stays within its cap while C keeps re-dialling
                        most = max(most, len(a.peers()))
                        await trio.sleep(0.05)
                assert most == 1
                assert peer_ids(a) == {b.peer_id}

    run_net_test(scenario)


def test_the_messages_round_trip() -> None:
    answer = PeerAddrs((f"/ip4/127.0.0.1/tcp/9/p2p/{PEER}",))
    assert decode(PeerAddrs, encode(answer)) == answer
    assert decode(PeersRequest, encode(PeersRequest(0, 16))) == PeersRequest(0, 16)
