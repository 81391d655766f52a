"""Pure parts of the network adapter: peer book, hello checks, config, wire records, ids."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st
from libp2p.pubsub.pb import rpc_pb2

from tests.helpers.net_helpers import GENESIS, net_config
from wekacoin.net import NetConfig, Network, Topic, TopicLimits, topic_name
from wekacoin.net.errors import NetConfigError
from wekacoin.net.gossip import message_id
from wekacoin.net.messages import BlobRequest, BlockRange, BlockRangeRequest, Hello, SyncedBlock
from wekacoin.net.peers import FOREVER, PeerBook, check_hello
from wekacoin.types.codec import DecodeError, decode, encode

HELLO = Hello("wekatest", GENESIS, 5, b"\x05" * 32, "wekacoin/0.1.0")


def test_penalties_decay_by_half_life_and_trigger_once_at_the_threshold() -> None:
    book = PeerBook(threshold=10.0, half_life=60.0)
    assert not book.penalize("p", 4.0, now=0.0)
    assert book.penalty("p", now=60.0) == pytest.approx(2.0)
    assert not book.penalize("p", 4.0, now=60.0)  # 2 + 4
    assert book.penalty("p", now=60.0) == pytest.approx(6.0)
    assert book.penalize("p", 4.0, now=60.0)  # reaches 10
    assert book.penalty("p", now=60.0) == 0.0  # starts again after the ban
    assert book.penalty("unknown", now=0.0) == 0.0


def test_refusals_expire_and_the_longer_one_wins() -> None:
    book = PeerBook(threshold=10.0, half_life=60.0)
    assert book.on_hello("p", HELLO)
    assert not book.on_hello("p", HELLO)  # a refresh, not a new peer
    assert book.refuse("p", until=100.0, reason="ban", now=0.0)
    assert not book.is_verified("p")  # refusing drops the peer
    assert not book.refuse("p", until=50.0, reason="shorter", now=1.0)
    assert book.refusal("p", now=99.0) == (100.0, "ban")
    assert not book.is_refused("p", now=100.0)  # expired, forgotten
    assert book.refuse("p", until=FOREVER, reason="other chain", now=101.0)
    assert not book.refuse("p", until=1e12, reason="ban", now=102.0)
    assert book.is_refused("p", now=1e15)


def test_peer_status_follows_hellos_and_disconnections() -> None:
    book = PeerBook(threshold=10.0, half_life=60.0)
    book.on_hello("p", HELLO)
    book.on_hello("p", dataclasses.replace(HELLO, tip_height=9))
    [status] = book.verified()
    assert (status.peer_id, status.tip_height, status.node_version) == ("p", 9, "wekacoin/0.1.0")
    assert book.on_disconnected("p") and not book.on_disconnected("p")
    assert book.verified() == [] and book.status("p") is None


def test_check_hello_names_the_mismatch() -> None:
    assert check_hello(HELLO, dataclasses.replace(HELLO, tip_height=0, node_version="x")) is None
    assert "chain id" in (check_hello(HELLO, dataclasses.replace(HELLO, chain_id="x")) or "")
    assert "genesis" in (check_hello(HELLO, dataclasses.replace(HELLO, genesis_hash=bytes(32)))
                         or "")


def test_wire_records_round_trip_and_refuse_junk() -> None:
    for record in (HELLO, BlockRangeRequest(3, 4), BlobRequest("bafy"),
                   BlockRange((SyncedBlock(b"b", b"c"),))):
        assert decode(type(record), encode(record)) == record
    with pytest.raises(DecodeError):
        decode(Hello, encode(dataclasses.replace(HELLO, genesis_hash=b"short")))
    with pytest.raises(DecodeError):
        decode(BlockRangeRequest, encode(BlobRequest("x")))


@given(st.binary(max_size=200))
def test_decoding_untrusted_bytes_raises_only_decode_error(data: bytes) -> None:
    for cls in (Hello, BlockRangeRequest, BlockRange, BlobRequest):
        try:
            decode(cls, data)
        except DecodeError:
            pass


def test_topic_names_and_content_addressed_message_ids() -> None:
    assert topic_name("wekatest", Topic.VOTE) == "/wekacoin/wekatest/vote/1"
    a = rpc_pb2.Message(data=b"x", topicIDs=["t"], from_id=b"1", seqno=b"1")
    b = rpc_pb2.Message(data=b"x", topicIDs=["t"], from_id=b"2", seqno=b"9")
    c = rpc_pb2.Message(data=b"x", topicIDs=["u"], from_id=b"1", seqno=b"1")
    assert message_id(a) == message_id(b) != message_id(c)


@pytest.mark.parametrize("change, message", [
    (dict(seed=b"short"), "seed"),
    (dict(chain_id="a/b"), "chain id"),
    (dict(chain_id=""), "chain id"),
    (dict(genesis_hash=b"x"), "genesis"),
    (dict(listen_port=70000), "port"),
    (dict(bootstrap="/ip4/1.2.3.4/tcp/1"), "list of multiaddr"),
    (dict(bootstrap=[1]), "list of multiaddr"),
    (dict(topic_limits=TopicLimits(proposal=2 << 20)), "proposal"),
    (dict(reconnect_min_delay=0.0), "reconnect"),
])
def test_config_refuses_unusable_values(change: dict, message: str) -> None:
    with pytest.raises(NetConfigError, match=message):
        dataclasses.replace(net_config(0), **change)


def test_bad_bootstrap_addresses_fail_at_construction() -> None:
    cfg = net_config(0, bootstrap=("/ip4/127.0.0.1/tcp/4001",))  # no /p2p/ id
    with pytest.raises(NetConfigError, match="bad peer address"):
        Network(cfg)
    assert dataclasses.replace(net_config(0), bootstrap=["/a"]).bootstrap == ("/a",)
    assert isinstance(net_config(0), NetConfig)
    assert "seed" not in repr(net_config(0))  # the secret never reaches logs


def test_network_implements_its_port() -> None:
    import inspect

    from wekacoin import ports
    from wekacoin.net.network import Network as LibP2PNetwork

    for name, member in inspect.getmembers(ports.Network):
        if name.startswith("_"):
            continue
        ours = getattr(LibP2PNetwork, name)
        if callable(member):
            assert inspect.signature(ours).parameters.keys() == \
                inspect.signature(member).parameters.keys(), name
