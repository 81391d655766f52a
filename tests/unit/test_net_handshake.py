"""Host identity, Noise-only security, the hello handshake, tips and bootstrap reconnection."""

from __future__ import annotations

import hashlib
import time
import types

import pytest
import trio
from libp2p.abc import INetConn, INetwork
from libp2p.network import auto_connector

from tests.helpers.net_helpers import net_config, peer_ids, run_net_test, running, wait_until
from wekacoin.crypto.keys import KeyPair
from wekacoin.net import Network, PeerConnected, PeerDisconnected, Topic, peer_id_from_seed
from wekacoin.net.errors import DialError, NetConfigError, NetError, NotRunningError
from wekacoin.net.host import key_pair_from_seed
from wekacoin.net.peering import ConnectionNotifee


class CountConnections(ConnectionNotifee):
    def __init__(self) -> None:
        self.count = 0

    async def connected(self, network: INetwork, conn: INetConn) -> None:
        self.count += 1

    async def disconnected(self, network: INetwork, conn: INetConn) -> None:
        return None


def test_peer_identity_is_the_node_key() -> None:
    cfg = net_config(1)
    ours = KeyPair.from_seed(cfg.seed).public_key
    assert key_pair_from_seed(cfg.seed).public_key.to_bytes() == ours
    assert Network(cfg).peer_id == peer_id_from_seed(cfg.seed)
    assert peer_id_from_seed(cfg.seed).startswith("12D3KooW")  # identity-hashed Ed25519


@pytest.mark.parametrize("mismatch", ["chain_id", "genesis_hash"])
def test_a_peer_on_another_chain_is_refused_and_not_redialled(mismatch: str, monkeypatch) -> None:
    other = {"chain_id": dict(chain_id="otherchain"),
             "genesis_hash": dict(genesis_hash=hashlib.sha256(b"other").digest())}[mismatch]

    async def scenario() -> None:
        ours = Network(net_config(40))
        async with running(ours):
            stranger = Network(net_config(41, bootstrap=(ours.listen_addrs()[0],), **other))
            async with running(stranger):
                await wait_until(lambda: stranger.refusal(ours.peer_id) is not None
                                 and ours.refusal(stranger.peer_id) is not None,
                                 what="refusal on both sides")
                await wait_until(lambda: not stranger.is_connected(ours.peer_id)
                                 and not ours.is_connected(stranger.peer_id),
                                 what="the hang-up")
                await trio.sleep(1.5)  # several reconnect delays (0.2 s..1 s) go by
                assert not stranger.is_connected(ours.peer_id)
                assert not ours.peers() and not stranger.peers()
                # py-libp2p's connection manager dials every peer in the peerstore while it
                # has fewer than 50 connections, every 10 s, once a minute has passed since a
                # peer hung up: here, one pass of it an hour later. Our peering alone decides
                # whom to dial.
                later = types.SimpleNamespace(time=lambda: time.time() + 3600)
                monkeypatch.setattr(auto_connector, "time", later)
                opened = CountConnections()
                for network in (ours, stranger):
                    network._host.get_network().register_notifee(opened)
                for network in (ours, stranger):
                    await network._host.get_network().auto_connector.maybe_connect()
                await trio.sleep(0.2)
                assert opened.count == 0, "a refused peer was dialled again"

    lines = run_net_test(scenario)
    refusals = [line for line in lines if "for good: on another chain" in line]
    assert len(refusals) == 2, lines  # one line per side, and no re-dial
    assert any(("chain id" if mismatch == "chain_id" else "genesis") in r for r in refusals)


def test_a_plaintext_dialer_is_refused() -> None:
    from libp2p import new_host
    from libp2p.peer.peerinfo import info_from_p2p_addr
    from libp2p.security.insecure.transport import PLAINTEXT_PROTOCOL_ID, InsecureTransport
    from multiaddr import Multiaddr

    async def scenario() -> None:
        ours = Network(net_config(50))
        async with running(ours):
            kp = key_pair_from_seed(hashlib.sha256(b"plaintext").digest())
            plain = new_host(key_pair=kp, sec_opt={PLAINTEXT_PROTOCOL_ID: InsecureTransport(kp)})
            async with plain.run([Multiaddr("/ip4/127.0.0.1/tcp/0")]):
                with pytest.raises(Exception) as refused, trio.fail_after(10):
                    await plain.connect(info_from_p2p_addr(Multiaddr(ours.listen_addrs()[0])))
                assert "negotiate the secure protocol" in repr(refused.value.__cause__)
                assert not plain.get_network().get_connections()
                await plain.close()
            assert not ours.peers()

    run_net_test(scenario)


def test_a_port_in_use_is_refused_not_shared() -> None:
    async def scenario() -> None:
        first = Network(net_config(55))
        async with running(first):
            port = int(first.listen_addrs()[0].split("/tcp/")[1].split("/")[0])
            with pytest.raises(NetConfigError, match="in use"):
                async with running(Network(net_config(56, listen_port=port))):
                    pass

    run_net_test(scenario)


def test_peers_report_their_tips_and_refresh_them() -> None:
    async def scenario() -> None:
        a = Network(net_config(60, status_interval=0.3))
        b = Network(net_config(61, status_interval=0.3))
        with pytest.raises(NotRunningError):
            await a.publish(Topic.TX, b"early")
        a.set_tip(7, b"\x07" * 32)
        async with running(a, b):
            dead = f"/ip4/127.0.0.1/tcp/1/p2p/{a.peer_id}"
            with pytest.raises(DialError):
                await b.connect(dead)
            await b.connect(a.listen_addrs()[0])
            await wait_until(lambda: peer_ids(b) == {a.peer_id}, what="handshake")
            status = b.peers()[0]
            assert (status.tip_height, status.tip_hash) == (7, b"\x07" * 32)
            assert status.node_version.startswith("wekacoin/")
            a.set_tip(9, b"\x09" * 32)
            await wait_until(lambda: b.peers() and b.peers()[0].tip_height == 9,
                             what="refreshed tip")

    run_net_test(scenario)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_bootstrap_peer_is_dialled_until_up_and_again_after_it_restarts() -> None:
    async def scenario() -> None:
        port = free_port()
        seed_index = 70
        addr = f"/ip4/127.0.0.1/tcp/{port}/p2p/{peer_id_from_seed(net_config(seed_index).seed)}"
        client = Network(net_config(71, bootstrap=(addr,)))
        events: list[object] = []

        async def record() -> None:
            async for event in client.events():
                events.append(event)

        async with running(client), trio.open_nursery() as nursery:
            nursery.start_soon(record)
            await trio.sleep(0.5)  # a few failed dials: the bootstrap peer is not up yet
            assert not client.peers()
            for _ in range(2):  # up, down, up again on the same port
                server = Network(net_config(seed_index, listen_port=port))
                async with running(server):
                    await wait_until(lambda server=server: peer_ids(client) == {server.peer_id},
                                     timeout=15, what="connection to the bootstrap peer")
                await wait_until(lambda: not client.peers(), what="disconnection")
            await wait_until(lambda: len(events) == 4, what="four events")
            nursery.cancel_scope.cancel()
        kinds = [type(e) for e in events]
        assert kinds == [PeerConnected, PeerDisconnected, PeerConnected, PeerDisconnected]

    run_net_test(scenario)


def test_cancelling_the_runner_shuts_down_as_cleanly_as_stop() -> None:
    async def scenario() -> None:
        a, b = Network(net_config(130)), Network(net_config(131))
        async with running(a):
            async with trio.open_nursery() as nursery:
                await nursery.start(b.run)
                await b.connect(a.listen_addrs()[0])
                await wait_until(lambda: a.peers() and b.peers(), what="handshake")
                await b.publish(Topic.TX, b"tx")
                nursery.cancel_scope.cancel()  # no stop(): the runner is cancelled
            await wait_until(lambda: not a.peers(), what="a notices b left")
            with pytest.raises(NetError):
                await b.run()  # a Network runs once
            c = Network(net_config(132))
            async with trio.open_nursery() as nursery:
                with trio.move_on_after(0.001):
                    await nursery.start(c.run)  # cancelled while starting up
            assert not c.listen_addrs()
            with pytest.raises(NotRunningError):
                await b.publish(Topic.TX, b"late")

    run_net_test(scenario)
