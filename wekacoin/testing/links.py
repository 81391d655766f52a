"""Per-link latency, jitter and loss for the chaos testnet: a TCP relay per ordered pair of
nodes, run by the chaos runner in its own namespace.

With `NetLab(isolated=True)` the nodes' bridge ports cannot reach each other, only the
runner's address: every connection between node j and node i then goes through the relay
listening on the runner's address at `port(j, i)`, which node j has as node i's bootstrap
address. An address a node learns otherwise (identify) leads nowhere, so no traffic bypasses
the relays. Each relay delays every chunk it forwards by the link's latency plus jitter,
never reordering a stream (a chunk leaves no earlier than the one before it), and models
loss as TCP feels it: a lost segment is retransmitted after the retransmission timeout, so
with probability `loss` a chunk (and everything behind it) waits RTO_MS more.

The relays run on a trio loop in a daemon thread; `close()` ends them and every connection.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass

import trio

log = logging.getLogger(__name__)

RTO_MS = 200
"""Linux's minimum TCP retransmission timeout: what one lost segment costs a stream."""
CHUNK = 65_536


@dataclass(frozen=True)
class LinkSpec:
    latency_ms: tuple[int, int] = (50, 300)
    """Each link's one-way base latency is drawn from this range (seeded, per ordered pair)."""
    jitter_ms: int = 20
    """Added to each chunk's delay, uniformly in [0, jitter_ms]."""
    loss: float = 0.0
    """The chance that a chunk is lost once and retransmitted after RTO_MS."""


class Relays:
    """A relay per ordered pair (j, i), j != i, of `hosts` (node i listens on hosts[i] at
    `p2p_port`); relays listen on `bind` at consecutive ports from `base_port`."""

    def __init__(self, hosts: list[str], p2p_port: int, bind: str, base_port: int,
                 spec: LinkSpec, seed: int = 0) -> None:
        self.hosts = hosts
        self.p2p_port = p2p_port
        self.bind = bind
        self.base_port = base_port
        self.spec = spec
        self._rng = random.Random(seed)
        n = len(hosts)
        self.latency_ms = {(j, i): self._rng.randint(*spec.latency_ms)
                           for j in range(n) for i in range(n) if j != i}
        self.bytes_relayed = 0
        self.losses = 0
        self._thread: threading.Thread | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._cancel: trio.CancelScope | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    def port(self, j: int, i: int) -> int:
        """Where node j dials node i."""
        n = len(self.hosts)
        return self.base_port + j * n + i

    # -- lifetime --

    def start(self) -> None:
        self._thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True,
                                        name="link-relays")
        self._thread.start()
        if not self._ready.wait(30) or self._error is not None:
            raise RuntimeError(f"the link relays did not start: {self._error!r}")

    def close(self) -> None:
        if self._token is not None and self._cancel is not None:
            cancel = self._cancel
            try:
                trio.from_thread.run_sync(cancel.cancel, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        if self._thread is not None:
            self._thread.join(30)
        self._thread = None

    def __enter__(self) -> Relays:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        try:
            with trio.CancelScope() as cancel:
                self._cancel = cancel
                async with trio.open_nursery() as nursery:
                    for (j, i) in self.latency_ms:
                        listeners = await trio.open_tcp_listeners(self.port(j, i),
                                                                  host=self.bind)
                        nursery.start_soon(self._serve, listeners, j, i)
                    self._ready.set()
        except BaseException as e:  # reported to start(), or logged once running
            if self._ready.is_set():
                log.error("the link relays stopped: %r", e)
            self._error = e
            self._ready.set()
            if not isinstance(e, Exception):
                raise

    async def _serve(self, listeners: list[trio.SocketListener], j: int, i: int) -> None:
        async def handle(client: trio.SocketStream) -> None:
            try:
                await self._connect(client, j, i)
            except Exception as e:  # one connection's failure (a group, too) never ends a relay
                log.debug("link %d->%d: %r", j, i, e)

        await trio.serve_listeners(handle, listeners)

    async def _connect(self, client: trio.SocketStream, j: int, i: int) -> None:
        async with client:
            try:
                server = await trio.open_tcp_stream(self.hosts[i], self.p2p_port)
            except OSError:
                return
            async with server, trio.open_nursery() as nursery:
                nursery.start_soon(self._pump, client, server, (j, i), nursery.cancel_scope)
                nursery.start_soon(self._pump, server, client, (i, j), nursery.cancel_scope)

    async def _pump(self, src: trio.SocketStream, dst: trio.SocketStream,
                    link: tuple[int, int], done: trio.CancelScope) -> None:
        """Forward src to dst, each chunk delayed; in order. Either side closing ends both."""
        send, receive = trio.open_memory_channel[tuple[float, bytes]](1_024)
        base = self.latency_ms[link] / 1000

        async def deliver() -> None:
            async for due, data in receive:
                await trio.sleep_until(due)
                await dst.send_all(data)
                self.bytes_relayed += len(data)

        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(deliver)
                last_due = 0.0
                while True:
                    data = await src.receive_some(CHUNK)
                    if not data:
                        break
                    delay = base + self._rng.uniform(0, self.spec.jitter_ms) / 1000
                    if self.spec.loss and self._rng.random() < self.spec.loss:
                        delay += RTO_MS / 1000
                        self.losses += 1
                    last_due = max(last_due, trio.current_time() + delay)
                    await send.send((last_due, data))
                await send.aclose()
        finally:  # a broken or closed side ends both directions (`_connect` logs why)
            done.cancel()
