"""Glue between blob exchange and the `BlobStore` port (`wekacoin.ports`).

`store_provider` serves a store's local blobs to peers; `store_fetcher` is the `Fetcher` an
`EmbeddedBlobStore` calls (from a worker thread) when it lacks a blob, which asks peers
through the network and verifies the bytes against the CID.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from wekacoin.content.cid import verify_cid
from wekacoin.content.embedded import Fetcher
from wekacoin.net.blobs import BlobProvider
from wekacoin.net.errors import BlobUnavailableError
from wekacoin.ports import BlobStore


def store_provider(store: BlobStore) -> BlobProvider:
    """Serve what the store holds *locally*: a store with a fetcher of its own must not turn
    a peer's request into requests to other peers."""

    def read_local(cid: str) -> bytes | None:
        return store.get(cid) if store.has(cid) else None  # InvalidCidError: bad request

    async def provide(cid: str) -> bytes | None:
        return await trio.to_thread.run_sync(read_local, cid)

    return provide


def store_fetcher(fetch_blob: Callable[..., Awaitable[bytes]], *, per_peer_timeout: float = 30.0,
                  total_timeout: float = 120.0) -> Fetcher:
    """A `Fetcher` for `EmbeddedBlobStore(fetcher=...)` from `Network.fetch_blob`.

    Call this on the trio thread (it captures the trio token); the fetcher it returns runs in
    the store's worker thread and blocks it until the network answers.
    """
    token = trio.lowlevel.current_trio_token()

    def fetch(cid: str, max_size: int) -> bytes | None:
        async def ask() -> bytes | None:
            try:
                return await fetch_blob(
                    cid, lambda data: verify_cid(cid, data), max_size,
                    per_peer_timeout=per_peer_timeout, total_timeout=total_timeout)
            except BlobUnavailableError:
                return None

        return trio.from_thread.run(ask, trio_token=token)

    return fetch
