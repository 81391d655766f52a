"""Byte-exact encoding of the blocks `ipfs add` writes for one file.

Two tiny protobuf messages, written by hand (a protobuf library would add a dependency and a
code generator for ~40 lines, and would not promise the field order we need):

- dag-pb `PBNode { repeated PBLink Links = 2; optional bytes Data = 1; }` and
  `PBLink { optional bytes Hash = 1; optional string Name = 2; optional uint64 Tsize = 3; }`
  (IPLD dag-pb spec). Links are written before Data, as go-merkledag and js-ipfs do; each link
  carries an empty Name, as both importers write for file chunks.
- UnixFS `Data { Type = 1; Data = 2; filesize = 3; repeated blocksizes = 4 (not packed) }`
  (UnixFS spec). File nodes have Type File (2); a leaf carries its chunk in Data.

Everything here is pure: bytes in, bytes out.
"""

from collections.abc import Sequence

from multiformats import varint

UNIXFS_FILE = 2

_VARINT = 0
_LENGTH_DELIMITED = 2


def _tag(field: int, wire_type: int) -> bytes:
    return varint.encode(field << 3 | wire_type)


def _uint_field(field: int, value: int) -> bytes:
    return _tag(field, _VARINT) + varint.encode(value)


def _bytes_field(field: int, payload: bytes) -> bytes:
    return _tag(field, _LENGTH_DELIMITED) + varint.encode(len(payload)) + payload


def encode_leaf_envelope(chunk_size: int) -> tuple[bytes, bytes]:
    """The bytes before and after a chunk in a dag-pb UnixFS leaf (CIDv0 `ipfs add`).

    The leaf block is `prefix + chunk + suffix`; returning the envelope lets the caller hash
    a 256 KiB chunk in place instead of copying it into a new byte string. An empty chunk
    has no Data field at all (that is how the empty file hashes to `QmbFMke1...`).
    """
    unixfs_head = _uint_field(1, UNIXFS_FILE)
    if chunk_size:
        unixfs_head += _tag(2, _LENGTH_DELIMITED) + varint.encode(chunk_size)
    unixfs_tail = _uint_field(3, chunk_size)
    unixfs_size = len(unixfs_head) + chunk_size + len(unixfs_tail)
    prefix = _tag(1, _LENGTH_DELIMITED) + varint.encode(unixfs_size) + unixfs_head
    return prefix, unixfs_tail


def encode_file_node(links: Sequence[tuple[bytes, int]], blocksizes: Sequence[int]) -> bytes:
    """A dag-pb UnixFS File node over children: `links` are (binary CID, Tsize) pairs,
    `blocksizes` the file bytes under each child, in the same order."""
    parts = [
        _bytes_field(2, _bytes_field(1, cid) + _bytes_field(2, b"") + _uint_field(3, tsize))
        for cid, tsize in links
    ]
    unixfs = _uint_field(1, UNIXFS_FILE) + _uint_field(3, sum(blocksizes))
    unixfs += b"".join(_uint_field(4, size) for size in blocksizes)
    parts.append(_bytes_field(1, unixfs))
    return b"".join(parts)
