"""Content addresses exactly as `ipfs add` computes them, and parsing of untrusted CIDs.

`compute_cid(data)` (version 1, the project default) equals
`ipfs add --cid-version=1 --raw-leaves`; `compute_cid(data, version=0)` equals plain
`ipfs add`. Both use Kubo's importer defaults: fixed 256 KiB chunks, balanced layout, at most
174 links per node, sha2-256.

- One chunk (up to 256 KiB): version 1 gives the raw-codec CID of the bytes (`bafkrei...`),
  version 0 the dag-pb UnixFS leaf that wraps them (`Qm...`).
- More: leaves are grouped 174 at a time under UnixFS File nodes, level after level, until
  one root remains (`bafybei...` / `Qm...`). Grouping bottom-up gives the same tree as Kubo's
  top-down balanced builder: every level full except its last node.

`compute_leaf_path` runs the same build and keeps the blocks above one leaf, for the storage
proofs of `wekacoin.content.proof`.
"""

import base64
import binascii
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from multiformats import CID

from wekacoin.content.errors import InvalidCidError
from wekacoin.content.unixfs import encode_file_node, encode_leaf_envelope

CHUNK_SIZE = 262_144
MAX_LINKS = 174

_SHA2_256 = b"\x12\x20"  # multihash code 0x12, digest length 32
_RAW_V1 = b"\x01\x55"  # CIDv1, codec raw
_DAG_PB_V1 = b"\x01\x70"  # CIDv1, codec dag-pb
_MAX_CID_TEXT = 128  # a sha2-256 CID is 46 (v0) or 59 (v1 base32) characters


@dataclass(frozen=True)
class Cid:
    """A parsed CID this node can verify: sha2-256 over raw bytes or a dag-pb UnixFS root."""

    version: int  # 0 or 1
    codec: str  # "raw" or "dag-pb" (version 0 is always dag-pb)
    digest: bytes  # the 32-byte sha2-256 digest

    def __str__(self) -> str:
        """Canonical text: base58btc for version 0, lowercase base32 for version 1."""
        if self.version == 0:
            return str(CID("base58btc", 0, "dag-pb", _SHA2_256 + self.digest))
        return "b" + base64.b32encode(self.to_bytes()).decode("ascii").lower().rstrip("=")

    def to_bytes(self) -> bytes:
        """The binary CID, as a dag-pb link and a block store's `block/get` spell it."""
        mh = _SHA2_256 + self.digest
        if self.version == 0:
            return mh
        return (_RAW_V1 if self.codec == "raw" else _DAG_PB_V1) + mh


@dataclass(frozen=True)
class _Node:
    cid: bytes  # binary CID, as it appears in a parent's link
    filesize: int  # file bytes under this node
    tsize: int  # serialized size of this block plus all blocks below it


def compute_cid(data: bytes, version: int = 1) -> str:
    """The CID `ipfs add` gives `data`: version 1 with raw leaves, or version 0."""
    if version not in (0, 1):
        raise ValueError(f"CID version must be 0 or 1, not {version!r}")
    root, _ = _build(memoryview(data), version, None)
    return str(_parse_binary(root.cid))


def leaf_count(size: int) -> int:
    """How many chunks (leaves) a file of `size` bytes has: an empty file still has one."""
    if size < 0:
        raise ValueError(f"a file size cannot be negative: {size}")
    return max(1, -(-size // CHUNK_SIZE))


def compute_leaf_path(data: bytes, version: int, leaf_index: int) -> tuple[bytes, ...]:
    """The dag-pb blocks of `compute_cid(data, version)` from the root down to the parent of
    leaf `leaf_index` (none when the file is one chunk): the path a storage proof sends."""
    if version not in (0, 1):
        raise ValueError(f"CID version must be 0 or 1, not {version!r}")
    if not 0 <= leaf_index < leaf_count(len(data)):
        raise ValueError(f"leaf {leaf_index} is not in a file of {len(data)} bytes")
    return _build(memoryview(data), version, leaf_index)[1]


def parse_cid(text: str) -> Cid:
    """Parse an untrusted CID string, or raise `InvalidCidError` saying why not.

    Accepts CIDv0 (`Qm...`) and CIDv1 in any multibase, with codec raw or dag-pb and a
    sha2-256 multihash: the only CIDs `compute_cid` can produce and `verify_cid` can check.
    `str()` of the result is canonical, safe to use as a file name.
    """
    if not isinstance(text, str) or not text or len(text) > _MAX_CID_TEXT:
        raise InvalidCidError(f"not a CID string: {text!r:.80}")
    common = _parse_base32_v1(text)
    if common is not None:
        return common
    try:
        cid = CID.decode(text)
    except Exception as exc:  # multiformats raises ValueError, KeyError and friends
        raise InvalidCidError(f"not a CID: {text!r} ({exc})") from None
    if cid.codec.name not in ("raw", "dag-pb"):
        raise InvalidCidError(f"unsupported codec {cid.codec.name} in CID {text!r}")
    if cid.hashfun.name != "sha2-256" or len(cid.raw_digest) != 32:
        raise InvalidCidError(f"unsupported multihash {cid.hashfun.name} in CID {text!r}")
    return Cid(cid.version, cid.codec.name, bytes(cid.raw_digest))


_BASE32_V1_LENGTH = 59  # "b" + 36 bytes in unpadded base32


def _parse_base32_v1(text: str) -> Cid | None:
    """The canonical spelling of our CIDv1s (lowercase base32, sha2-256, raw or dag-pb),
    parsed with the standard library: the multiformats decoder validates types on every call
    and takes a millisecond, and every storage proof and reveal parses CIDs. None for any
    other text, which the general decoder then takes."""
    if len(text) != _BASE32_V1_LENGTH or text[0] != "b" or not text.islower():
        return None
    try:
        raw = base64.b32decode(text[1:].upper() + "======")
    except (binascii.Error, ValueError):
        return None
    if raw[:4] == _RAW_V1 + _SHA2_256:
        return Cid(1, "raw", raw[4:])
    if raw[:4] == _DAG_PB_V1 + _SHA2_256:
        return Cid(1, "dag-pb", raw[4:])
    return None


def is_canonical_cid(text: str) -> bool:
    """True iff `text` parses and is the canonical spelling of its CID (`str(parse_cid)`)."""
    try:
        return str(parse_cid(text)) == text
    except InvalidCidError:
        return False


def verify_cid(cid: str | Cid, data: bytes) -> bool:
    """True iff `data` is the content `cid` addresses.

    A raw CID matches when the sha2-256 of `data` is its digest (whatever the size: that is
    still an exact content address). A dag-pb CID matches when `compute_cid` with the CID's
    version rebuilds it, i.e. it was made with `ipfs add` defaults (version 1: raw leaves).
    Raises `InvalidCidError` when `cid` is not a CID at all: that is a different fault from
    bytes that do not match.
    """
    parsed = parse_cid(cid) if isinstance(cid, str) else cid
    if parsed.codec == "raw":
        return hashlib.sha256(data).digest() == parsed.digest
    return compute_cid(data, parsed.version) == str(parsed)


def _leaves(data: memoryview, version: int) -> Iterator[_Node]:
    # An empty file still has one (empty) leaf.
    for start in range(0, max(len(data), 1), CHUNK_SIZE):
        chunk = data[start : start + CHUNK_SIZE]
        if version == 1:
            digest = hashlib.sha256(chunk).digest()
            yield _Node(_RAW_V1 + _SHA2_256 + digest, len(chunk), len(chunk))
            continue
        prefix, suffix = encode_leaf_envelope(len(chunk))
        hasher = hashlib.sha256(prefix)
        hasher.update(chunk)
        hasher.update(suffix)
        block_size = len(prefix) + len(chunk) + len(suffix)
        yield _Node(_SHA2_256 + hasher.digest(), len(chunk), block_size)


def _build(
    data: memoryview, version: int, leaf_index: int | None
) -> tuple[_Node, tuple[bytes, ...]]:
    """The root, and the blocks of the nodes above leaf `leaf_index`, root first.

    Only those blocks are kept: the others are hashed and dropped, so memory stays a few
    blocks whatever the file size.
    """
    level = list(_leaves(data, version))
    path: list[bytes] = []
    while len(level) > 1:  # a single leaf is its own root (no wrapping node)
        parents = []
        for start in range(0, len(level), MAX_LINKS):
            children = level[start : start + MAX_LINKS]
            block = _parent_block(children)
            parents.append(_parent(children, block, version))
            if leaf_index is not None and start <= leaf_index < start + MAX_LINKS:
                path.append(block)
        level = parents
        if leaf_index is not None:
            leaf_index //= MAX_LINKS  # the index of its ancestor on the next level
    return level[0], tuple(reversed(path))


def _parent_block(children: list[_Node]) -> bytes:
    return encode_file_node(
        [(child.cid, child.tsize) for child in children], [child.filesize for child in children]
    )


def _parent(children: list[_Node], block: bytes, version: int) -> _Node:
    mh = _SHA2_256 + hashlib.sha256(block).digest()
    return _Node(
        mh if version == 0 else _DAG_PB_V1 + mh,
        sum(child.filesize for child in children),
        len(block) + sum(child.tsize for child in children),
    )


def _parse_binary(cid: bytes) -> Cid:
    if cid.startswith(_SHA2_256):
        return Cid(0, "dag-pb", cid[2:])
    return Cid(1, "raw" if cid.startswith(_RAW_V1) else "dag-pb", cid[4:])
