"""GossipSub topics with validation before relay, size caps, and loss-free delivery.

py-libp2p 0.8.1 defaults that lose messages or misbehave, and what this module does:
- spam protection: 10 messages/s per *forwarding* peer per topic, own publishes included, so a
  relay carrying a committee's votes is throttled -> disabled; validators and the penalty
  counter (`Network`) guard against floods of invalid traffic instead.
- adaptive gossip: rewrites the heartbeat (to 30-60 s) and the mesh degree from a "health"
  score -> disabled, the settings below are what runs.
- per-peer outbound queue of 32 RPCs, dropping the rest at DEBUG level -> resized to
  `GossipTuning.outbound_queue_size`; drops are counted and logged as warnings.
- subscription channels of 32 messages -> replaced by our own per-topic delivery buffers
  (`GossipTuning.delivery_buffer`), whose overflow is counted and logged as a warning.
- validation cache: keeps every verdict for 5 min by message id, so a message IGNOREd for
  being early would stay ignored -> disabled; accepted messages are deduplicated by the
  seen-cache anyway.
- message ids: sender + sequence number -> a hash of topic and content, so the same
  transaction gossiped by two nodes is relayed once.
- sequence numbers: start at the Unix time in seconds, plus one per publish, so a node that
  publishes several messages a second and restarts reuses numbers its peers saw, and they
  stop relaying its messages as "equivocation" (same sender and number, other bytes) ->
  started at the time in nanoseconds.
- writes: the per-peer queue task and the router (recent messages to a peer that just
  subscribed, pending messages flushed) write RPCs to the same stream from different tasks,
  and yamux locks per window-sized chunk, not per write, so two RPCs over the flow-control
  window (256 KiB: blocks carrying storage proofs) interleave and the receiver resets the
  stream with a protobuf DecodeError -> one lock per stream around each whole RPC.
- one write per RPC: each costs a yamux frame, a Noise encryption and a system call, so a burst
  of votes (every validator's vote of a step arrives at once) queued up behind itself at about
  200 messages a second -> the RPCs waiting in a peer's queue go out together, each still
  its own length-prefixed frame (the bytes on the wire are the same), up to `_BATCH_BYTES`.
- sender records: every RPC carries the sender's signed peer record, and the receiver checks
  its signature and stores it each time (one Ed25519 verification per RPC, a sixth of a relay's
  CPU) -> a record already accepted from that peer, byte for byte, is accepted again without
  the check for `_RECORD_RECHECK_S`. And the sender rebuilds its own record for each RPC
  (its addresses parsed, the cached envelope re-serialised) -> kept for `_OWN_RECORD_S`.
- IDONTWANT (GossipSub 1.2) goes to every mesh peer for every message received, whatever its
  size; for a 300-byte vote the notice costs as much as the duplicate it saves -> only for
  messages of `IDONTWANT_MIN_BYTES` or more, go-libp2p's threshold.
Kept: strict signing (origin authenticated), eclipse protection (prefers mesh peers on distinct
IPs), mesh degree 6/4/12, IDONTWANT (GossipSub 1.2).
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

import trio
from libp2p.abc import IHost, INetStream
from libp2p.network.stream.exceptions import StreamClosed, StreamReset
from libp2p.peer.id import ID
from libp2p.peer.peerstore import env_to_send_in_RPC
from libp2p.pubsub import gossipsub as _gossipsub_module
from libp2p.pubsub import pubsub as _pubsub_module
from libp2p.pubsub.gossipsub import PROTOCOL_ID_V11, PROTOCOL_ID_V12, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.pubsub.utils import maybe_consume_signed_record
from libp2p.utils.varint import encode_uvarint

from wekacoin.net.api import GossipMessage, Topic, Validator, Verdict, topic_name
from wekacoin.net.config import GossipTuning, TopicLimits
from wekacoin.net.errors import MessageTooLargeError

logger = logging.getLogger("wekacoin.net.gossip")

_REMEMBERED_IDS = 16384  # forwarders of validated messages / delivered ids kept for dedup


_RECORD_RECHECK_S = 600.0  # well inside the 2 h the peerstore keeps a consumed record
_RECORDS_KEPT = 4096
_accepted_records: OrderedDict[tuple[ID, bytes], float] = OrderedDict()


def _consume_sender_record(msg: rpc_pb2.RPC, host: IHost, peer_id: ID) -> bool:
    """libp2p's `maybe_consume_signed_record`, skipped for a record this peer sent before and
    that passed (the same bytes: the same signature, the same verdict)."""
    if not msg.HasField("senderRecord"):
        return True
    key = (peer_id, msg.senderRecord)
    now = time.monotonic()
    accepted_at = _accepted_records.get(key)
    if accepted_at is not None and now - accepted_at < _RECORD_RECHECK_S:
        return True
    if not maybe_consume_signed_record(msg, host, peer_id):
        return False
    _accepted_records[key] = now
    _accepted_records.move_to_end(key)
    while len(_accepted_records) > _RECORDS_KEPT:
        _accepted_records.popitem(last=False)
    return True


_OWN_RECORD_S = 5.0
_own_records: weakref.WeakKeyDictionary[IHost, tuple[float, tuple[bytes, bool]]] = (
    weakref.WeakKeyDictionary())


def _own_record(host: IHost) -> tuple[bytes, bool]:
    """libp2p's `env_to_send_in_RPC`, recomputed at most every `_OWN_RECORD_S` per host."""
    now = time.monotonic()
    cached = _own_records.get(host)
    if cached is None or now - cached[0] >= _OWN_RECORD_S:
        cached = _own_records[host] = (now, env_to_send_in_RPC(host))
    return cached[1]


# Both modules imported these functions by name; their RPC paths call these globals.
_pubsub_module.maybe_consume_signed_record = _consume_sender_record
_gossipsub_module.maybe_consume_signed_record = _consume_sender_record
_pubsub_module.env_to_send_in_RPC = _own_record
_gossipsub_module.env_to_send_in_RPC = _own_record

IDONTWANT_MIN_BYTES = 1024
_BATCH_BYTES = 64 * 1024
"""Queued RPCs written together stop at this size (one more may pass it): well under the
yamux window, so a batch rarely waits for the peer to make room."""


def message_id(msg: rpc_pb2.Message) -> bytes:
    """Content-addressed id: identical bytes on a topic are one message, whoever sent them."""
    h = hashlib.sha256()
    for topic in msg.topicIDs:
        h.update(topic.encode() + b"\0")
    h.update(msg.data)
    return h.digest()[:20]


class _SizedQueues(dict):
    """Pubsub's peer -> outbound queue map; resizes each queue as Pubsub registers it.

    libp2p 0.8.1 builds every `RpcQueue` with the default capacity and offers no setting; the
    capacity lives in the queue's `_queue.max_size`.
    """

    def __init__(self, size: int) -> None:
        super().__init__()
        self._size = size

    def __setitem__(self, key: Any, queue: Any) -> None:
        queue._queue.max_size = self._size
        super().__setitem__(key, queue)


class _Pubsub(Pubsub):
    """Pubsub that hands accepted messages to `deliver` instead of 32-deep channels."""

    def __init__(self, host: IHost, router: GossipSub, *, deliver: Callable[[Any], None],
                 queue_size: int, **kwargs: Any) -> None:
        super().__init__(host, router, **kwargs)
        self.counter = time.time_ns()  # seqnos never repeat across restarts (see above)
        self.peer_queues = _SizedQueues(queue_size)
        self._deliver = deliver
        self._write_locks: weakref.WeakKeyDictionary[INetStream, trio.Lock] = (
            weakref.WeakKeyDictionary())

    def _write_lock(self, stream: INetStream) -> trio.Lock:
        lock = self._write_locks.get(stream)
        if lock is None:
            lock = self._write_locks[stream] = trio.Lock()
        return lock

    async def write_msg(self, stream: INetStream, rpc_msg: rpc_pb2.RPC) -> bool:
        async with self._write_lock(stream):
            return await super().write_msg(stream, rpc_msg)

    async def handle_sending_messages(self, peer_id: ID, stream: INetStream, queue: Any) -> None:
        """The per-peer sending loop, writing every RPC already queued in one go."""
        try:
            while True:
                rpc = await queue.pop()
                if rpc is None:
                    return  # the queue was closed: the peer is gone
                frames = [rpc.SerializeToString()]
                size = len(frames[0])
                while size < _BATCH_BYTES:
                    more = queue._queue.pop()  # what is already queued, without waiting
                    if more is None:
                        break
                    frames.append(more.SerializeToString())
                    size += len(frames[-1])
                data = b"".join(encode_uvarint(len(f)) + f for f in frames)
                try:
                    async with self._write_lock(stream):
                        await stream.write(data)
                except (StreamClosed, StreamReset):
                    logger.debug("fail to write to %s: stream closed or reset", peer_id)
                    self._handle_dead_peer(peer_id)
                    return
        except Exception:
            logger.debug("sending loop for %s ended with an error", peer_id, exc_info=True)
            self._handle_dead_peer(peer_id)

    def notify_subscriptions(self, publish_message: rpc_pb2.Message) -> None:
        self._deliver(publish_message)


class _GossipSub(GossipSub):
    """GossipSub that counts the messages its outbound queues drop, and says so."""

    dropped_messages = 0
    _idontwant_worth = True

    async def publish(self, msg_forwarder: ID, pubsub_msg: rpc_pb2.Message) -> None:
        # Read by _emit_idontwant_for_message, which publish calls before its first await.
        self._idontwant_worth = len(pubsub_msg.data) >= IDONTWANT_MIN_BYTES
        await super().publish(msg_forwarder, pubsub_msg)

    async def _emit_idontwant_for_message(self, msg_id: bytes, topic_ids: Iterable[str]) -> None:
        if self._idontwant_worth:
            await super()._emit_idontwant_for_message(msg_id, topic_ids)

    def _handle_dropped_rpc(self, peer_id: ID, rpc: rpc_pb2.RPC, reason: str) -> None:
        if rpc.publish:
            self.dropped_messages += len(rpc.publish)
            logger.warning("dropped %d gossip message(s) to %s: %s",
                           len(rpc.publish), peer_id, reason)
        super()._handle_dropped_rpc(peer_id, rpc, reason)


class Gossip:
    """The four topics of one chain on one host.

    `accepts_from(peer_id)` gates messages by the neighbour that forwarded them (only
    handshaken peers); `on_reject(peer_id, reason)` is told of every rejected message.
    """

    def __init__(self, host: IHost, *, chain_id: str, limits: TopicLimits,
                 tuning: GossipTuning, accepts_from: Callable[[str], bool],
                 on_reject: Callable[[str, str], None]) -> None:
        self._self_id = host.get_id()
        self._limits = limits
        self._accepts_from = accepts_from
        self._on_reject = on_reject
        self.names = {t: topic_name(chain_id, t) for t in Topic}
        self._topic_of = {name: t for t, name in self.names.items()}
        self._validators: dict[Topic, Validator | None] = {t: None for t in Topic}
        channels = {t: trio.open_memory_channel[GossipMessage](tuning.delivery_buffer)
                    for t in Topic}
        self._send = {t: c[0] for t, c in channels.items()}
        self._receive = {t: c[1] for t, c in channels.items()}
        self._forwarders: OrderedDict[bytes, str] = OrderedDict()
        self._delivered: OrderedDict[bytes, None] = OrderedDict()
        self.dropped_deliveries = 0
        self.router = _GossipSub(
            protocols=[PROTOCOL_ID_V12, PROTOCOL_ID_V11],
            degree=tuning.degree, degree_low=tuning.degree_low, degree_high=tuning.degree_high,
            # libp2p annotates it int, but only passes it to trio.sleep: seconds as a float
            heartbeat_interval=tuning.heartbeat_interval,  # type: ignore[arg-type]
            spam_protection_enabled=False,
            adaptive_gossip_enabled=False,
        )
        self.pubsub = _Pubsub(
            host, self.router, deliver=self._deliver, queue_size=tuning.outbound_queue_size,
            msg_id_constructor=message_id,
            seen_ttl=tuning.seen_ttl,
            validation_cache_ttl=0, validation_cache_size=1,
            validation_timeout=tuning.validation_timeout,
            max_concurrent_validator_count=tuning.max_concurrent_validators,
            allowed_topics=set(self._topic_of),
        )
        for topic in Topic:
            self.set_validator(topic, None)

    @property
    def dropped_outbound(self) -> int:
        return self.router.dropped_messages

    # -- validation ------------------------------------------------------------------------

    def set_validator(self, topic: Topic, fn: Validator | None) -> None:
        """Install the topic's validator (None: accept whatever passes the size cap)."""
        self._validators[topic] = fn
        name = self.names[topic]
        if fn is not None and inspect.iscoroutinefunction(fn):
            async def check_async(forwarder: ID, msg: rpc_pb2.Message) -> bool:
                early = self._precheck(topic, forwarder, msg)
                if early is not None:
                    return early
                try:
                    verdict = await fn(msg.data)
                except Exception:
                    logger.exception("validator of %s failed; message ignored", name)
                    return False
                return self._conclude(topic, forwarder, msg, verdict)

            self.pubsub.set_topic_validator(name, check_async, True)
        else:
            def check(forwarder: ID, msg: rpc_pb2.Message) -> bool:
                early = self._precheck(topic, forwarder, msg)
                if early is not None:
                    return early
                assert fn is not None  # without a validator, _precheck has decided
                try:
                    verdict = fn(msg.data)
                except Exception:
                    logger.exception("validator of %s failed; message ignored", name)
                    return False
                return self._conclude(topic, forwarder, msg, verdict)

            self.pubsub.set_topic_validator(name, check, False)

    def _precheck(self, topic: Topic, forwarder: ID, msg: rpc_pb2.Message) -> bool | None:
        """A decision that needs no validator, or None to ask it."""
        if forwarder == self._self_id:
            return True  # our own publish: the node built it (its size was checked)
        peer = forwarder.to_base58()
        if not self._accepts_from(peer):
            logger.debug("ignored a %s message from %s: no handshake", topic.value, peer)
            return False
        if len(msg.data) > self._limits.of(topic):
            self._on_reject(peer, f"{topic.value} message of {len(msg.data)} bytes")
            return False
        if self._validators[topic] is None:
            self._remember(self._forwarders, message_id(msg), peer)
            return True
        return None

    def _conclude(self, topic: Topic, forwarder: ID, msg: rpc_pb2.Message,
                  verdict: object) -> bool:
        peer = forwarder.to_base58()
        if verdict is Verdict.ACCEPT:
            self._remember(self._forwarders, message_id(msg), peer)
            return True
        if verdict is Verdict.REJECT:
            self._on_reject(peer, f"{topic.value} message rejected by the validator")
        elif verdict is not Verdict.IGNORE:
            logger.error("validator of %s returned %r, not a Verdict; ignored",
                         topic.value, verdict)
        return False

    @staticmethod
    def _remember(memory: OrderedDict[bytes, Any], key: bytes, value: Any) -> None:
        memory[key] = value
        memory.move_to_end(key)
        while len(memory) > _REMEMBERED_IDS:
            memory.popitem(last=False)

    # -- delivery and publishing -----------------------------------------------------------

    def _deliver(self, msg: rpc_pb2.Message) -> None:
        origin = ID(msg.from_id)
        if origin == self._self_id:
            return  # our own publishes are not echoed back to the node
        mid = message_id(msg)
        if mid in self._delivered:
            return  # async validators can let two copies through at once
        self._remember(self._delivered, mid, None)
        forwarder = self._forwarders.pop(mid, None)
        for name in msg.topicIDs:
            topic = self._topic_of.get(name)
            if topic is None:
                continue
            try:
                self._send[topic].send_nowait(GossipMessage(
                    topic, msg.data, origin.to_base58(), forwarder, mid))
            except trio.WouldBlock:
                self.dropped_deliveries += 1
                logger.warning("node is not reading %s messages: dropped one (%d so far)",
                               topic.value, self.dropped_deliveries)
            except trio.ClosedResourceError:
                pass  # shutting down

    def mesh_peers(self, topic: Topic) -> list[str]:
        return [p.to_base58() for p in self.router.mesh.get(self.names[topic], ())]

    def messages(self, topic: Topic) -> trio.MemoryReceiveChannel[GossipMessage]:
        return self._receive[topic]

    async def publish(self, topic: Topic, data: bytes) -> None:
        cap = self._limits.of(topic)
        if len(data) > cap:
            raise MessageTooLargeError(f"{topic.value} message of {len(data)} bytes > {cap}")
        await self.pubsub.publish(self.names[topic], data)

    async def subscribe_all(self) -> None:
        await self.pubsub.wait_until_ready()
        for name in self.names.values():
            await self.pubsub.subscribe(name)

    async def unsubscribe_all(self) -> None:
        for name in self.names.values():
            try:
                await self.pubsub.unsubscribe(name)
            except Exception:
                logger.debug("unsubscribing %s failed", name, exc_info=True)
        for channel in self._send.values():
            channel.close()
