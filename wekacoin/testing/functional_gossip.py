"""Hostile gossip for the functional tests: libp2p hosts in the test process that join a
running testnet (same chain id and genesis, throwaway keys, so the nodes' hello lets them in
and their gossip reaches the topic validators) and publish junk.

One `Intruder` per topic: each publishes malformed messages on its topic only, first ones
made from real traffic it overheard (a vote or proposal of a round still to come with a bad
signature, which validators deliver unverified because the node may be behind; a transaction
with a broken signature), then bytes that are not a message at all, and keeps going until
every node has banned it. A ban names the topic whose validator rejected the last message,
which shows the junk reached that topic's validator on every node.
"""

from __future__ import annotations

import dataclasses
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

import trio

from wekacoin.chain.transactions import sign_tx
from wekacoin.consensus.messages import UnverifiedProposal, UnverifiedVote
from wekacoin.crypto.keys import KeyPair
from wekacoin.net import Ignore, NetConfig, Network, Topic
from wekacoin.net.api import Verdict
from wekacoin.types.codec import DecodeError, decode, encode
from wekacoin.types.tx import Transfer, Tx
from wekacoin.waiting import wait_until_async

# Bytes no topic's decoder takes: CBOR that is truncated, deeply nested, or announces a
# 2**64-byte string; NUL and 0xff runs; an empty message.
MALFORMED = (
    b"", b"\x00", b"\xff" * 64, b"\x9f", b"\x81" * 600 + b"\x00",
    b"\x5b\xff\xff\xff\xff\xff\xff\xff\xff", b"\xbf" * 100, b"\x82\x1b" + b"\xff" * 8,
    b"\xd9\xd9\xf7\x80", b"\xfb\x7f\xf8\x00\x00\x00\x00\x00\x00", b"\x62\xff\xfe",
    b"not cbor at all", b"[1, 2, 3]",
)


@dataclass
class Intruder:
    """A throwaway libp2p host that floods one topic with junk."""

    topic: Topic
    net: Network
    heard: list[bytes] = field(default_factory=list)  # real messages of `topic` overheard
    sent: int = 0

    @property
    def peer_id(self) -> str:
        return self.net.peer_id


def make_intruder(topic: Topic, chain_id: str, genesis_hash: bytes,
                  bootstrap: list[str]) -> Intruder:
    net = Network(NetConfig(seed=os.urandom(32), chain_id=chain_id, genesis_hash=genesis_hash,
                            listen_host="127.0.0.1", listen_port=0, bootstrap=tuple(bootstrap),
                            reconnect_min_delay=0.2, reconnect_max_delay=1.0))
    intruder = Intruder(topic, net)

    def overhear(data: bytes) -> Verdict:  # keep real traffic to mutate; never relay it
        if len(intruder.heard) < 20:
            intruder.heard.append(data)
        return Ignore

    for t in Topic:
        net.set_validator(t, overhear if t is topic else (lambda data: Ignore))
    return intruder


def mutations(topic: Topic, heard: list[bytes], genesis_hash: bytes,
              rng: random.Random) -> list[bytes]:
    """Junk built from real messages: well-formed, but lying."""
    out: list[bytes] = []
    bad_sig = bytes(rng.getrandbits(8) for _ in range(64))
    for data in heard[:3]:
        out.append(data[: len(data) // 2])  # truncated
        flipped = bytearray(data)
        flipped[rng.randrange(len(flipped))] ^= 0xFF
        out.append(bytes(flipped))
        try:
            if topic is Topic.VOTE:
                vote = decode(UnverifiedVote, data)
                for ahead in (1, 2):  # rounds the node delivers unverified
                    body = dataclasses.replace(vote.body, round=vote.body.round + ahead)
                    out.append(encode(UnverifiedVote(body, bad_sig)))
                stranger = dataclasses.replace(vote.body, voter=os.urandom(32))
                out.append(encode(UnverifiedVote(stranger, vote.signature)))
            elif topic is Topic.PROPOSAL:
                prop = decode(UnverifiedProposal, data)
                header = dataclasses.replace(prop.block.header, height=prop.block.height + 1)
                block = dataclasses.replace(prop.block, header=header)
                out.append(encode(UnverifiedProposal(prop.period, block, bad_sig)))
                out.append(encode(dataclasses.replace(prop, signature=bad_sig)))
        except DecodeError:
            pass
    if topic is Topic.TX:
        tx = sign_tx(KeyPair.generate(), genesis_hash, 0, 1, Transfer(os.urandom(20), 1))
        out.append(encode(Tx(tx.payload, bad_sig)))  # a broken signature
        out.append(encode(tx))  # well signed, from an account with no coins
    return out


def junk(rng: random.Random) -> bytes:
    """One more message no decoder takes (distinct bytes: gossip drops repeats by content)."""
    return rng.choice(MALFORMED) + b"\x00" + rng.randbytes(rng.randint(1, 300))


async def flood(intruders: list[Intruder], node_peer_ids: set[str], genesis_hash: bytes,
                banned: Callable[[Intruder], bool], *, timeout: float = 90.0,
                seed: int = 0) -> None:
    """Run the intruders until each is banned by every node (`banned` answers that)."""
    async with trio.open_nursery() as nursery:
        for i in intruders:
            await nursery.start(i.net.run)
        try:
            for i in intruders:
                await wait_until_async(
                    partial(_joined, i, node_peer_ids), timeout=timeout, interval=0.1,
                    what=f"the {i.topic.value} intruder to join every node's mesh")
            async with trio.open_nursery() as floods:
                for n, i in enumerate(intruders):
                    floods.start_soon(_flood_one, i, genesis_hash, banned, timeout, seed + n)
        finally:
            for i in intruders:
                i.net.stop()


def _joined(intruder: Intruder, node_peer_ids: set[str]) -> bool:
    """The intruder is a peer of every node, and in every node's mesh of its topic."""
    net = intruder.net
    return ({p.peer_id for p in net.peers()} >= node_peer_ids
            and set(net.mesh_peers(intruder.topic)) >= node_peer_ids)


async def _flood_one(intruder: Intruder, genesis_hash: bytes,
                     banned: Callable[[Intruder], bool], timeout: float, seed: int) -> None:
    rng = random.Random(seed)
    topic = intruder.topic
    if topic in (Topic.VOTE, Topic.PROPOSAL, Topic.TX):
        await wait_until_async(lambda: bool(intruder.heard) or topic is Topic.TX,
                               timeout=timeout, interval=0.1,
                               what=f"real {topic.value} traffic to mutate")
    queue = mutations(topic, intruder.heard, genesis_hash, rng)
    limit = intruder.net.config.topic_limits.of(topic)
    with trio.move_on_after(timeout):
        while not banned(intruder):
            data = queue.pop(0) if queue else junk(rng)
            if intruder.net.peers() and len(data) <= limit:
                await intruder.net.publish(topic, data)
                intruder.sent += 1
            await trio.sleep(0.05)  # a steady trickle, so every node sees each message
        return
    raise AssertionError(f"the {topic.value} intruder was not banned by every node after "
                         f"{intruder.sent} junk messages in {timeout:.0f} s")
