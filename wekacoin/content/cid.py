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
"""

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
        mh = _SHA2_256 + self.digest
        if self.version == 0:
            return str(CID("base58btc", 0, "dag-pb", mh))
        return CID("base32", 1, self.codec, mh).encode("base32")


@dataclass(frozen=True)
class _Node:
    cid: bytes  # binary CID, as it appears in a parent's link
    filesize: int  # file bytes under this node
    tsize: int  # serialized size of this block plus all blocks below it


def compute_cid(data: bytes, version: int = 1) -> str:
    """The CID `ipfs add` gives `data`: version 1 with raw leaves, or version 0."""
    if version not in (0, 1):
        raise ValueError(f"CID version must be 0 or 1, not {version!r}")
    level = list(_leaves(memoryview(data), version))
    while len(level) > 1:  # a single leaf is its own root (no wrapping node)
        level = [
            _parent(level[i : i + MAX_LINKS], version) for i in range(0, len(level), MAX_LINKS)
        ]
    return str(_parse_binary(level[0].cid))


def parse_cid(text: str) -> Cid:
    """Parse an untrusted CID string, or raise `InvalidCidError` saying why not.

    Accepts CIDv0 (`Qm...`) and CIDv1 in any multibase, with codec raw or dag-pb and a
    sha2-256 multihash: the only CIDs `compute_cid` can produce and `verify_cid` can check.
    `str()` of the result is canonical, safe to use as a file name.
    """
    if not isinstance(text, str) or not text or len(text) > _MAX_CID_TEXT:
        raise InvalidCidError(f"not a CID string: {text!r:.80}")
    try:
        cid = CID.decode(text)
    except Exception as exc:  # multiformats raises ValueError, KeyError and friends
        raise InvalidCidError(f"not a CID: {text!r} ({exc})") from None
    if cid.codec.name not in ("raw", "dag-pb"):
        raise InvalidCidError(f"unsupported codec {cid.codec.name} in CID {text!r}")
    if cid.hashfun.name != "sha2-256" or len(cid.raw_digest) != 32:
        raise InvalidCidError(f"unsupported multihash {cid.hashfun.name} in CID {text!r}")
    return Cid(cid.version, cid.codec.name, bytes(cid.raw_digest))


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


def _parent(children: list[_Node], version: int) -> _Node:
    block = encode_file_node(
        [(child.cid, child.tsize) for child in children], [child.filesize for child in children]
    )
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
