"""Proofs of storage: one leaf of a blob's DAG and the blocks above it, checked from the CID.

A challenge names a blob by its CID, the byte size the chain states for it, and a leaf index.
The answer is a `LeafPath`: the dag-pb blocks from the root down to the leaf's parent, and the
leaf's file bytes (for CIDv0 without the leaf's dag-pb envelope, which the checker rebuilds).
Any node checks it against the CID alone, fetching nothing: a prover that dropped the blob
cannot answer for a leaf it was not asked for in advance.

A CID commits to bytes, not to a layout. So `verify_leaf_proof` also checks that the blocks
are the DAG `ipfs add` builds for a file of exactly `size` bytes (`wekacoin.content.cid`: 256
KiB leaves, balanced, 174 links per node). Then leaf `i` is the same chunk, `i * 256 KiB`
onwards, for the prover, the verifier and the chain, and no other layout or size can be passed
off under the same root. The checks run cheapest first, so garbage costs little:

1. The challenge: `0 <= size <= MAX_FILE_SIZE`, the index one of `leaf_count(size)`, a
   sha2-256 CID whose codec fits the shape (one chunk under CIDv1 is a raw CID; every other
   file has a dag-pb root).
2. The shape: as many blocks as the balanced tree is deep, none longer than the largest inner
   node can be (`MAX_NODE_SIZE`), and a leaf exactly as long as the chunking makes it.
3. Each block, root first: its sha2-256 is the digest the CID (root) or the parent's link
   names; it is the canonical encoding of a UnixFS File node (`decode_file_node`); its
   blocksizes are those the balanced layout gives that subtree; the link to follow carries
   the CID prefix the child must have (CIDv0: a bare multihash; CIDv1: dag-pb for an inner
   node, raw for a leaf).
4. Only then the leaf is hashed (inside its envelope for CIDv0) and compared with the link.

Link Tsize values are bound by the hashes but not re-derived: they describe block sizes, not
which file bytes sit where.
"""

import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeGuard

from wekacoin.content.cid import (
    CHUNK_SIZE,
    MAX_LINKS,
    Cid,
    compute_leaf_path,
    leaf_count,
    parse_cid,
)
from wekacoin.content.errors import InvalidCidError, StorageProofError
from wekacoin.content.unixfs import (
    MAX_VARINT_BYTES,
    FileNode,
    decode_file_node,
    encode_leaf_envelope,
    encode_varint,
)

__all__ = [
    "MAX_FILE_SIZE",
    "MAX_NODE_SIZE",
    "LeafPath",
    "build_leaf_proof",
    "build_leaf_proof_from_blocks",
    "leaf_count",
    "verify_leaf_proof",
]

MAX_FILE_SIZE = 2**50  # 1 PiB: a sanity bound on the size a challenge states

# The longest inner node that can pass `decode_file_node` with MAX_LINKS links: each link
# names a 36-byte CIDv1 with an empty Name, and every number takes a full 10-byte varint.
# Each field is a 1-byte tag, then a length (for bytes) or the number itself.
_LINK = (1 + 1 + 36) + (1 + 1) + (1 + MAX_VARINT_BYTES)  # PBLink: Hash, Name, Tsize
_UNIXFS = (1 + 1) + (1 + MAX_VARINT_BYTES) * (1 + MAX_LINKS)  # Type, filesize, blocksizes
MAX_NODE_SIZE = (
    MAX_LINKS * (1 + len(encode_varint(_LINK)) + _LINK)  # PBNode.Links
    + 1 + len(encode_varint(_UNIXFS)) + _UNIXFS  # PBNode.Data
)  # 11_152 bytes; a real one is under 9 KiB


@dataclass(frozen=True, slots=True)
class LeafPath:
    """The answer to a challenge for one leaf of a blob."""

    nodes: tuple[bytes, ...]  # dag-pb blocks from the root down to the leaf's parent
    leaf: bytes  # the chunk's file bytes (for CIDv0, without the leaf's dag-pb envelope)


def build_leaf_proof(data: bytes, version: int, leaf_index: int) -> LeafPath:
    """The proof for leaf `leaf_index` of `data`, whose CID is `compute_cid(data, version)`.

    Rebuilds the whole DAG (it hashes every byte of `data`). Raises `ValueError` for a version
    other than 0 or 1 or an index outside the file.
    """
    nodes = compute_leaf_path(data, version, leaf_index)
    start = leaf_index * CHUNK_SIZE
    return LeafPath(nodes, bytes(data[start : start + CHUNK_SIZE]))


def build_leaf_proof_from_blocks(
    get_block: Callable[[bytes], bytes], cid: str, size: int, leaf_index: int
) -> LeafPath:
    """The proof for leaf `leaf_index` of the blob `cid` of `size` bytes, read from a block
    store (e.g. Kubo's `block/get`) one block per level instead of from the whole blob.

    `get_block` receives a binary CID (as in a dag-pb link; for the root, `cid` in binary) and
    returns that block; whatever it raises passes through. Raises `ValueError` for an index
    outside the file, and `StorageProofError` when `cid` is not a CID or the blocks returned
    do not make a proof that `verify_leaf_proof` accepts.
    """
    parsed = _challenge_cid(cid)
    if not 0 <= leaf_index < leaf_count(size):
        raise ValueError(f"leaf {_shown(leaf_index)} is not in a file of {_shown(size)} bytes")
    depth = _depth(leaf_count(size))
    nodes: list[bytes] = []
    key = parsed.to_bytes()
    for level in range(depth):
        block = _fetched(get_block, key, f"path node {level}")
        node = _decoded(block, f"path node {level} from the block store")
        child = leaf_index // MAX_LINKS ** (depth - level - 1) % MAX_LINKS
        if child >= len(node.links):
            raise StorageProofError(f"path node {level} has no link {child} to follow")
        nodes.append(block)
        key = node.links[child][0]
    leaf = _fetched(get_block, key, "the leaf")
    if parsed.version == 0:  # a dag-pb UnixFS leaf: the proof carries only its Data
        leaf = _decoded(leaf, "the leaf from the block store").data
    try:
        verify_leaf_proof(parsed, size, leaf_index, nodes, leaf)
    except StorageProofError as exc:
        raise StorageProofError(f"the block store's blocks make no valid proof: {exc}") from None
    return LeafPath(tuple(nodes), leaf)


def verify_leaf_proof(
    cid: str | Cid, size: int, leaf_index: int, nodes: Sequence[bytes], leaf: bytes
) -> None:
    """Return iff `nodes` and `leaf` prove that leaf `leaf_index` of the file of exactly `size`
    bytes that `cid` addresses is `leaf`; else raise `StorageProofError` saying why.

    Nothing else escapes, whatever the arguments: they come from the network. `nodes` must be
    a sequence of `bytes`, `leaf` a `bytes`. At most `len(nodes) * MAX_NODE_SIZE +
    CHUNK_SIZE` bytes are hashed, and only after the cheap checks passed.
    """
    parsed = _challenge_cid(cid)
    leaves = _checked_leaf_count(size, leaf_index)
    if parsed.version == 1 and (parsed.codec == "raw") != (leaves == 1):
        want = "raw" if leaves == 1 else "dag-pb"
        raise StorageProofError(f"a file of {leaves} leaves has a {want} CIDv1, not {cid}")
    depth = _depth(leaves)
    if not isinstance(nodes, Sequence) or isinstance(nodes, (str, bytes, bytearray, memoryview)):
        raise StorageProofError(f"the path is {type(nodes).__name__}, not a sequence of blocks")
    if len(nodes) != depth:
        raise StorageProofError(
            f"the path to a leaf of a {leaves}-leaf file is {depth} blocks, not {len(nodes)}"
        )
    for level, block in enumerate(nodes):
        if not isinstance(block, bytes):
            raise StorageProofError(f"path node {level} is {type(block).__name__}, not bytes")
        if len(block) > MAX_NODE_SIZE:
            raise StorageProofError(
                f"path node {level} is {len(block)} bytes, longer than any inner node can be "
                f"({MAX_NODE_SIZE})"
            )
    last_leaf_size = size - (leaves - 1) * CHUNK_SIZE
    want_len = CHUNK_SIZE if leaf_index < leaves - 1 else last_leaf_size
    if not isinstance(leaf, bytes) or len(leaf) != want_len:
        got = f"{len(leaf)} bytes" if isinstance(leaf, bytes) else type(leaf).__name__
        raise StorageProofError(f"leaf {leaf_index} is {want_len} bytes, not {got}")

    digest = parsed.digest
    for level, block in enumerate(nodes):
        digest = _check_node(parsed.version, size, leaf_index, depth, level, block, digest)

    if parsed.version == 1:
        leaf_digest = hashlib.sha256(leaf).digest()
    else:
        prefix, suffix = encode_leaf_envelope(len(leaf))
        hasher = hashlib.sha256(prefix)
        hasher.update(leaf)
        hasher.update(suffix)
        leaf_digest = hasher.digest()
    if leaf_digest != digest:
        named_by = f"the link in path node {depth - 1}" if depth else "the CID"
        raise StorageProofError(f"leaf {leaf_index} does not hash to the digest {named_by} names")


def _check_node(
    version: int, size: int, leaf_index: int, depth: int, level: int, block: bytes, digest: bytes
) -> bytes:
    """Check path node `level` (root 0) against `digest`; return the digest of the child."""
    where = f"path node {level} (of {depth}, root first)"
    if hashlib.sha256(block).digest() != digest:
        named_by = f"the link in path node {level - 1}" if level else "the CID"
        raise StorageProofError(f"{where} does not hash to the digest {named_by} names")
    node = _decoded(block, where, _decode_path_node)
    height = depth - level  # leaves are at height 0
    want = _child_sizes(size, height, leaf_index // MAX_LINKS**height)
    if len(node.links) != len(want):
        raise StorageProofError(f"{where} has {len(node.links)} links, not {len(want)}")
    for i, (got, expected) in enumerate(zip(node.blocksizes, want, strict=True)):
        if got != expected:
            raise StorageProofError(f"{where}: link {i} has blocksize {got}, not {expected}")
    child = leaf_index // MAX_LINKS ** (height - 1) % MAX_LINKS
    link = node.links[child][0]
    codec = "dag-pb" if version == 0 or height > 1 else "raw"
    if link != Cid(version, codec, link[-32:]).to_bytes():
        raise StorageProofError(
            f"{where}: link {child} is {link.hex():.80}, not a sha2-256 {codec} CIDv{version}"
        )
    return link[-32:]


def clear_path_node_cache() -> None:
    """Forget every decoded path node (benchmarks measure a cold block)."""
    _decode_path_node.cache_clear()


@functools.lru_cache(maxsize=4096)
def _child_sizes(size: int, height: int, index: int) -> tuple[int, ...]:
    """File bytes under each child of node `index` at `height` in the balanced layout."""
    child_bytes = MAX_LINKS ** (height - 1) * CHUNK_SIZE
    first = index * MAX_LINKS * child_bytes
    end = min(first + MAX_LINKS * child_bytes, size)
    return tuple(min(start + child_bytes, end) - start for start in range(first, end, child_bytes))


def _depth(leaves: int) -> int:
    """Levels of inner nodes above `leaves` leaves: 0 for one leaf (it is its own root)."""
    depth, span = 0, 1
    while span < leaves:
        depth, span = depth + 1, span * MAX_LINKS
    return depth


def _checked_leaf_count(size: object, leaf_index: object) -> int:
    if not _is_int(size) or not 0 <= size <= MAX_FILE_SIZE:
        raise StorageProofError(f"the size is {_shown(size)}, not an int in [0, {MAX_FILE_SIZE}]")
    leaves = leaf_count(size)
    if not _is_int(leaf_index) or not 0 <= leaf_index < leaves:
        raise StorageProofError(
            f"the leaf index is {_shown(leaf_index)}, not one of the {leaves} of {size} bytes"
        )
    return leaves


def _shown(value: object) -> str:
    """An untrusted number for a message: `str` of a 5000-digit int raises ValueError."""
    if _is_int(value):
        return str(value) if abs(value) < 2**64 else "a number too large to show"
    return f"a {type(value).__name__}"


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)  # True is no size


def _challenge_cid(cid: object) -> Cid:
    if isinstance(cid, str):
        try:
            return parse_cid(cid)
        except InvalidCidError as exc:
            raise StorageProofError(str(exc)) from None
    if (
        isinstance(cid, Cid)
        and _is_int(cid.version)
        and (cid.version, cid.codec) in ((0, "dag-pb"), (1, "dag-pb"), (1, "raw"))
        and isinstance(cid.digest, bytes)
        and len(cid.digest) == 32
    ):
        return cid
    raise StorageProofError(f"not a CID this node can verify: a {type(cid).__name__}")


@functools.lru_cache(maxsize=1024)
def _decode_path_node(block: bytes) -> FileNode:
    """`decode_file_node`, remembered: the proofs in a block share path nodes (every
    validator challenged on a popular blob sends its root), and a 174-link node takes about
    0.4 ms to scan. Only nodes that decode are kept (a refusal raises and is not cached); the
    checks that depend on the proof run on every call. At most about 20 MB (1,024 nodes of
    at most 10 KB, with their decoding)."""
    return decode_file_node(block)


def _decoded(block: bytes, where: str,
             decode: Callable[[bytes], FileNode] = decode_file_node) -> FileNode:
    try:
        return decode(block)
    except ValueError as exc:
        raise StorageProofError(f"{where} is not a UnixFS File node: {exc}") from None


def _fetched(get_block: Callable[[bytes], bytes], key: bytes, what: str) -> bytes:
    block = get_block(key)
    if not isinstance(block, bytes):
        raise StorageProofError(f"the block store returned {type(block).__name__} for {what}")
    return block
