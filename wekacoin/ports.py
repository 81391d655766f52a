"""The node's ports: the few boundaries between protocol logic and the outside world.

Each port is a `typing.Protocol` whose docstring is its contract. Adapters implement them
(`wekacoin.content`, ...); tests and the simulation substitute fakes that keep the same
contract.
"""

from typing import Protocol


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
