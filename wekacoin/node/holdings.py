"""What the storage keeper asks of the node's blob store: is a blob here (cheaply), keep it,
prove one of its leaves.

One adapter per backend, so the keeper (`storage.py`) never asks which one runs:

- embedded: a stat of the blob's file says it is here; a proof reads the whole blob through
  `get`, which verifies it against the CID and, if the file is missing or corrupt, fetches it
  from peers first, then rebuilds the leaf's path (`build_leaf_proof`).
- Kubo: `/refs` (offline) says every block is here and the root block gives the file size; a
  proof reads only the blocks from the root to the leaf (`/block/get`, which asks the IPFS
  network for a block the daemon lost).

`keep` pins: neither store ever drops a pinned blob (the embedded store deletes nothing by
itself, its `gc` spares pins; Kubo's garbage collector spares them too), so a claimed blob
stays while it is claimed.

Every method blocks on disk or the daemon: the keeper calls them on worker threads.
"""

from __future__ import annotations

from typing import Protocol

from wekacoin.content.cid import parse_cid
from wekacoin.content.embedded import EmbeddedBlobStore
from wekacoin.content.errors import StorageProofError
from wekacoin.content.kubo import KuboBlobStore
from wekacoin.content.proof import LeafPath, build_leaf_proof, build_leaf_proof_from_blocks
from wekacoin.content.unixfs import decode_file_node


class Holdings(Protocol):
    """The storage keeper's view of a blob store. Failures are `WekaError`s."""

    def held_size(self, cid: str) -> int | None:
        """The blob's size if the store holds all of it locally, else None. Cheap enough to
        ask for every claimed blob on every block: it reads no content."""
        ...

    def keep(self, cid: str) -> None:
        """Protect the blob from the store's garbage collection (pin it)."""
        ...

    def leaf_proof(self, cid: str, size: int, leaf_index: int) -> LeafPath:
        """The path to leaf `leaf_index` of the blob of `size` bytes, checked against the CID;
        a store that can fetches a missing or damaged blob first. Raises a `WekaError` (or
        ValueError for an index outside the blob) when it cannot."""
        ...


class EmbeddedHoldings:
    def __init__(self, store: EmbeddedBlobStore) -> None:
        self._store = store

    def held_size(self, cid: str) -> int | None:
        return self._store.stored_size(cid)

    def keep(self, cid: str) -> None:
        self._store.pin(cid)

    def leaf_proof(self, cid: str, size: int, leaf_index: int) -> LeafPath:
        data = self._store.get(cid)  # verified; a lost or corrupt blob comes from peers
        if len(data) != size:
            raise StorageProofError(
                f"{cid} is {len(data)} bytes, the chain states {size}: no proof can pass"
            )
        return build_leaf_proof(data, parse_cid(cid).version, leaf_index)


class KuboHoldings:
    def __init__(self, store: KuboBlobStore) -> None:
        self._store = store

    def held_size(self, cid: str) -> int | None:
        if not self._store.has(cid):
            return None
        root = self._store.get_block(cid, offline=True)
        if parse_cid(cid).codec == "raw":  # one chunk: the block is the file
            return len(root)
        try:
            return decode_file_node(root).filesize
        except ValueError:  # a dag-pb block that is no UnixFS file: nothing a proof can use
            return None

    def keep(self, cid: str) -> None:
        self._store.pin(cid)

    def leaf_proof(self, cid: str, size: int, leaf_index: int) -> LeafPath:
        return build_leaf_proof_from_blocks(self._store.get_block, cid, size, leaf_index)


def holdings_of(store: EmbeddedBlobStore | KuboBlobStore) -> Holdings:
    if isinstance(store, EmbeddedBlobStore):
        return EmbeddedHoldings(store)
    return KuboHoldings(store)
