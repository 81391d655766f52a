"""Building the libp2p host: Ed25519 identity from the node's seed, Noise only, yamux only,
and stream handlers that a misbehaving peer cannot use to stop the node.

`new_host`'s default security list also offers TLS, SECIO and *plaintext*, so a peer could
negotiate an unencrypted, unauthenticated connection; here Noise is the only choice and a
dialer that cannot speak it fails negotiation. Mplex, the default fallback muxer, is left out.

Yamux flow control: py-libp2p 0.8.1 by default sends a WINDOW_UPDATE frame after every read
(`PY_YAMUX_RELEASE_ON_READ=1`), one extra encrypted write for each message received. Off, it
sends one when half the window has been consumed, as go-yamux does: set here, for the process,
unless the operator set it.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

import multiaddr
from libp2p import new_host
from libp2p.abc import IHost, INetStream
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.keys import KeyPair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.network.auto_connector import AutoConnector
from libp2p.network.config import ConnectionConfig
from libp2p.network.swarm import Swarm
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import PeerInfo, info_from_p2p_addr
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.stream_muxer.yamux.yamux import PROTOCOL_ID as YAMUX_PROTOCOL_ID
from libp2p.stream_muxer.yamux.yamux import Yamux

from wekacoin.net.errors import NetConfigError

logger = logging.getLogger("wekacoin.net.host")


def _reattach_libp2p_logs() -> None:
    """Importing libp2p 0.8.1 detaches its loggers (propagate=False, no handlers unless
    LIBP2P_DEBUG is set), so its warnings skip the node's logging setup and reach stderr
    through `logging.lastResort`. Let them through to the node's handlers (level stays
    WARNING); with LIBP2P_DEBUG, libp2p's own handlers stay in charge."""
    libp2p_logger = logging.getLogger("libp2p")
    if not libp2p_logger.handlers:
        libp2p_logger.propagate = True


_reattach_libp2p_logs()
os.environ.setdefault("PY_YAMUX_RELEASE_ON_READ", "0")  # read by yamux at each update


def key_pair_from_seed(seed: bytes) -> KeyPair:
    """libp2p's Ed25519 key pair for the node's 32-byte seed (the same key as
    `wekacoin.crypto.keys.KeyPair.from_seed`)."""
    if type(seed) is not bytes or len(seed) != 32:
        raise NetConfigError("seed must be 32 bytes")
    return create_new_key_pair(seed)


def peer_id_from_seed(seed: bytes) -> str:
    """The peer id (`12D3KooW...`) a node with this seed has on the network."""
    return ID.from_pubkey(key_pair_from_seed(seed).public_key).to_base58()


class _PeeringDecides(AutoConnector):
    """py-libp2p's connection manager, left to itself, dials every peer in the peerstore while
    fewer than `min_connections` (50) connections are open: every 10 s, and again a minute
    after any peer hangs up, so a peer our peering refused (another chain, a ban) or turned
    away (`max_peers`) got a fresh handshake a minute, and a node dialled past `target_peers`.
    `Network`'s peering alone decides whom to dial; this one never starts."""

    async def start(self) -> None:
        return None


def build_host(seed: bytes, *, dial_timeout: float) -> IHost:
    key_pair = key_pair_from_seed(seed)
    # The Noise static key only lives for this process: the handshake signs it with the
    # identity key, which is what peers authenticate.
    noise = NoiseTransport(key_pair, noise_privkey=create_x25519_key_pair().private_key)
    host = new_host(
        key_pair=key_pair,
        sec_opt={TProtocol(NOISE_PROTOCOL_ID): noise},
        muxer_opt={TProtocol(YAMUX_PROTOCOL_ID): Yamux},
        connection_config=ConnectionConfig(dial_timeout=dial_timeout),
        enable_mDNS=False,
        bootstrap=None,  # dialled by `Network`, which also re-dials them when they drop
    )
    swarm = host.get_network()
    if isinstance(swarm, Swarm):
        swarm.auto_connector = _PeeringDecides(swarm)
    return host


async def dial(host: IHost, info: PeerInfo) -> None:
    """Connect to a peer at exactly the given addresses, now.

    Two swarm behaviours get in the way of re-dialling a known peer: a 60 s "negative cache"
    refuses to dial a peer whose last dial failed (our callers pace their own retries), and
    only the first TCP address the peerstore holds is tried, so a stale one (an old port, a
    mistyped address) would shadow the right one until it expires. Both are reset first.
    """
    unblock = getattr(host.get_network(), "unblock_peer", None)
    if unblock is not None:
        unblock(info.peer_id)
    if not host.get_network().get_connections(info.peer_id):
        host.get_peerstore().clear_addrs(info.peer_id)
    await host.connect(info)


def listen_multiaddr(host: str, port: int) -> multiaddr.Multiaddr:
    try:
        return multiaddr.Multiaddr(f"/ip4/{host}/tcp/{port}")
    except Exception as e:
        raise NetConfigError(f"cannot listen on {host}:{port}: {e}") from None


def ensure_port_free(host: str, port: int) -> None:
    """Raise NetConfigError if another socket listens on (host, port).

    libp2p 0.8.1 listens with SO_REUSEPORT (for hole punching), so a second node on the same
    port starts without error and the kernel splits incoming connections between the two.
    A probe bound without SO_REUSEPORT fails while any listener holds the port.
    """
    if port == 0:
        return
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # ignore TIME_WAIT
        probe.bind((host, port))
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise NetConfigError(f"{host}:{port} is already in use") from None
        raise NetConfigError(f"cannot listen on {host}:{port}: {e}") from None
    finally:
        probe.close()


def parse_peer_addr(text: str) -> PeerInfo:
    """A bootstrap address `/ip4/<ip>/tcp/<port>/p2p/<peer id>`; NetConfigError if not."""
    try:
        return info_from_p2p_addr(multiaddr.Multiaddr(text))
    except Exception as e:
        raise NetConfigError(f"bad peer address {text!r}: {e}") from None


def guard_stream_handlers(host: IHost, on_error: Callable[[str, str, Exception], None]) -> None:
    """Wrap every stream handler registered so far so that an exception ends only its stream.

    In libp2p 0.8.1 an exception escaping a stream handler tears down the whole swarm (the
    node stops): pubsub, for one, lets protobuf's DecodeError out when a peer sends garbage.
    `on_error(peer_id, protocol, error)` hears about each such stream.
    """
    mux = host.get_mux()
    for protocol in mux.get_protocols():
        handler = None if protocol is None else mux.handlers.get(protocol)
        if protocol is None or handler is None or handler in _GUARDED:
            continue
        host.set_stream_handler(protocol, _guarded(protocol, handler, on_error))


def _guarded(protocol: TProtocol, handler: Callable[[INetStream], Awaitable[None]],
             on_error: Callable[[str, str, Exception], None]) -> Any:
    async def guarded(stream: INetStream) -> None:
        try:
            await handler(stream)
        except Exception as e:
            peer_id = stream.muxed_conn.peer_id.to_base58()
            logger.info("peer %s broke %s (%r); stream reset", peer_id, protocol, e)
            on_error(peer_id, str(protocol), e)
            try:
                await stream.reset()
            except Exception:
                logger.debug("resetting a broken stream failed", exc_info=True)

    _GUARDED.add(guarded)
    return guarded


_GUARDED: weakref.WeakSet[Callable[[INetStream], Awaitable[None]]] = weakref.WeakSet()
"""The handlers `_guarded` made, so that guarding twice wraps nothing twice."""
