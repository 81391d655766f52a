"""The node's ports: the few boundaries between protocol logic and the outside world.

Each port is a `typing.Protocol` whose docstring is its contract. Adapters implement them
(`wekacoin.content`, `wekacoin.net`, ...); tests and the simulation substitute fakes that keep
the same contract.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from wekacoin.net.api import GossipMessage, PeerEvent, PeerStatus, Topic, Validator
    from wekacoin.net.messages import SyncedBlock


class BlobStore(Protocol):
    """Content-addressed storage of blobs (models, datasets) under their IPFS CID.

    Contract:
    - A CID is what `wekacoin.content.cid.compute_cid` gives (`ipfs add --cid-version=1
      --raw-leaves`), so the same bytes have the same address in every backend and on IPFS.
    - `get` never returns bytes that do not match the CID: every backend verifies what it
      read or received, and refuses rather than serves a mismatch.
    - CID arguments are untrusted strings: anything that is not a CID the node can verify
      raises `InvalidCidError` before any storage is touched (no path tricks).
    - Pins are a set, not a count: pinning twice then unpinning once leaves the blob
      unpinned. Unpinned blobs may disappear at the backend's next garbage collection.
    - Every failure is a `WekaError` (see `wekacoin.content.errors`).
    - Methods block on disk or network: call them from trio through
      `trio.to_thread.run_sync`. Implementations are safe to call from several threads.
    """

    def put(self, data: bytes, *, pin: bool = True) -> str:
        """Store `data` and return its CID; `pin` as `ipfs add` does by default.
        Raises `BlobTooLargeError` / `QuotaExceededError` when the backend's limits forbid."""
        ...

    def get(self, cid: str) -> bytes:
        """The bytes addressed by `cid`, verified. Raises `BlobNotFoundError` when they
        cannot be found (locally or, if the backend can, from peers)."""
        ...

    def has(self, cid: str) -> bool:
        """Whether the blob is held locally, complete (no network, no verification)."""
        ...

    def pin(self, cid: str) -> None:
        """Protect the blob from garbage collection, fetching it first if needed."""
        ...

    def unpin(self, cid: str) -> None:
        """Drop the pin; a blob that was not pinned is left as it is."""
        ...

    def is_pinned(self, cid: str) -> bool:
        """Whether the blob is pinned."""
        ...


class Network(Protocol):
    """How the node talks to its peers. All methods run on the node's trio thread.

    Contract:
    - Lifecycle: `running()` (or `run` under a nursery, then `stop`) starts the network and,
      on exit, returns only once peers are disconnected and every task has ended.
    - Peers are identified by their peer id string. A peer is handshaken (same chain id and
      genesis) before it appears in `peers()`, in `events()`, or is asked anything; a peer on
      another chain is refused for good, a misbehaving one is banned for a while.
    - Gossip: `publish` sends to peers, never back to the node itself. A received message is
      passed to the topic's validator first; only ACCEPTed messages are delivered by
      `messages(topic)` and relayed; REJECTed ones count against the peer that sent them.
      Own publishes skip the validator. `publish` raises `MessageTooLargeError` over the
      topic's size cap. Each topic's iterator has one consumer, which must keep up (overflow
      is dropped, logged and counted in `stats()`).
    - Requests go to handshaken peers only and fail with `wekacoin.net.errors.RequestError`
      subclasses (timeouts, refusals, malformed answers); `fetch_blob` returns only bytes its
      `verify` accepted, and raises `BlobUnavailableError` otherwise.
    - Every error raised is a `WekaError`.
    """

    peer_id: str

    def running(self) -> AbstractAsyncContextManager[Any]: ...

    async def run(self, *, task_status: Any = ...) -> None: ...

    def stop(self) -> None: ...

    def listen_addrs(self) -> list[str]: ...

    async def connect(self, addr: str) -> None: ...

    def set_tip(self, height: int, tip_hash: bytes) -> None: ...

    def peers(self) -> list[PeerStatus]: ...

    def events(self) -> AsyncIterator[PeerEvent]: ...

    def penalize(self, peer_id: str, reason: str, weight: float = 1.0) -> None: ...

    def set_validator(self, topic: Topic, fn: Validator | None) -> None: ...

    async def publish(self, topic: Topic, data: bytes) -> None: ...

    def messages(self, topic: Topic) -> AsyncIterator[GossipMessage]: ...

    async def request_blocks(self, peer_id: str, from_height: int, count: int, *,
                             batch_size: int = 32, request_timeout: float = 10.0,
                             total_timeout: float = 60.0) -> list[SyncedBlock]: ...

    async def fetch_blob(self, cid: str, verify: Callable[[bytes], bool], max_size: int, *,
                         peers: Sequence[str] | None = None, per_peer_timeout: float = 30.0,
                         total_timeout: float = 120.0) -> bytes: ...
