"""Byte-exact encoding of the blocks `ipfs add` writes for one file.

Two tiny protobuf messages, written by hand (a protobuf library would add a dependency and a
code generator for ~40 lines, and would not promise the field order we need):

- dag-pb `PBNode { repeated PBLink Links = 2; optional bytes Data = 1; }` and
  `PBLink { optional bytes Hash = 1; optional string Name = 2; optional uint64 Tsize = 3; }`
  (IPLD dag-pb spec). Links are written before Data, as go-merkledag and js-ipfs do; each link
  carries an empty Name, as both importers write for file chunks.
- UnixFS `Data { Type = 1; Data = 2; filesize = 3; repeated blocksizes = 4 (not packed) }`
  (UnixFS spec). File nodes have Type File (2); a leaf carries its chunk in Data.

`decode_file_node` reads such a block back, for storage proofs, where the block comes from an
untrusted peer. It accepts only what the encoders here would write, byte for byte. Any other
spelling of the same message (fields reordered or repeated, a non-minimal varint, a link Name,
a default written out) would let one logical node have many hashes; rejecting them keeps one.
An inner node's links are scanned in exactly the shape `encode_file_node` writes them (a
proof's 174-link node is checked in a fraction of the time a generic decode and re-encode
take, which matters: every node checks every proof of a block); anything else, and every
leaf, is decoded leniently, re-encoded and compared.

Everything here is pure: bytes in, bytes out.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

UNIXFS_FILE = 2
MAX_UINT64 = 2**64 - 1  # every varint field here is a protobuf uint64
MAX_VARINT_BYTES = 10  # the length of MAX_UINT64 as a varint

_VARINT = 0
_LENGTH_DELIMITED = 2


def encode_varint(value: int) -> bytes:
    """A protobuf (and multiformats) unsigned varint: 7 bits a byte, least significant first.

    Written here rather than taken from `multiformats.varint`, whose per-call type validation
    tripled the time to re-encode (so to check) a storage proof's 174-link node.
    """
    if value < 0x80:
        if value < 0:
            raise ValueError(f"a varint cannot be negative: {value}")
        return bytes((value,))
    if value > MAX_UINT64:
        raise ValueError(f"{value} does not fit a uint64 varint")
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@cache
def _tag(field: int, wire_type: int) -> bytes:
    return encode_varint(field << 3 | wire_type)


def _uint_field(field: int, value: int) -> bytes:
    return _tag(field, _VARINT) + encode_varint(value)


def _bytes_field(field: int, payload: bytes) -> bytes:
    return _tag(field, _LENGTH_DELIMITED) + encode_varint(len(payload)) + payload


def encode_leaf_envelope(chunk_size: int) -> tuple[bytes, bytes]:
    """The bytes before and after a chunk in a dag-pb UnixFS leaf (CIDv0 `ipfs add`).

    The leaf block is `prefix + chunk + suffix`; returning the envelope lets the caller hash
    a 256 KiB chunk in place instead of copying it into a new byte string. An empty chunk
    has no Data field at all (that is how the empty file hashes to `QmbFMke1...`).
    """
    unixfs_head = _uint_field(1, UNIXFS_FILE)
    if chunk_size:
        unixfs_head += _tag(2, _LENGTH_DELIMITED) + encode_varint(chunk_size)
    unixfs_tail = _uint_field(3, chunk_size)
    unixfs_size = len(unixfs_head) + chunk_size + len(unixfs_tail)
    prefix = _tag(1, _LENGTH_DELIMITED) + encode_varint(unixfs_size) + unixfs_head
    return prefix, unixfs_tail


def encode_file_node(links: Sequence[tuple[bytes, int]], blocksizes: Sequence[int]) -> bytes:
    """A dag-pb UnixFS File node over children: `links` are (binary CID, Tsize) pairs,
    `blocksizes` the file bytes under each child, in the same order."""
    parts = [
        _bytes_field(2, _bytes_field(1, cid) + _bytes_field(2, b"") + _uint_field(3, tsize))
        for cid, tsize in links
    ]
    parts.append(_bytes_field(1, _file_data(blocksizes)))
    return b"".join(parts)


def _file_data(blocksizes: Sequence[int]) -> bytes:
    """The UnixFS Data message of an inner File node."""
    unixfs = _uint_field(1, UNIXFS_FILE) + _uint_field(3, sum(blocksizes))
    return unixfs + b"".join(_uint_field(4, size) for size in blocksizes)


@dataclass(frozen=True, slots=True)
class FileNode:
    """A decoded dag-pb UnixFS File block: an inner node (links) or a leaf (data)."""

    links: tuple[tuple[bytes, int], ...]  # (binary CID, Tsize), as `encode_file_node` takes them
    filesize: int  # file bytes under this node
    blocksizes: tuple[int, ...]  # file bytes under each link, in the same order
    data: bytes  # the chunk a leaf carries; empty for an inner node


def decode_file_node(block: bytes) -> FileNode:
    """Decode a block `encode_file_node` or `encode_leaf_envelope` would write, byte for byte.

    Raises `ValueError` saying what is wrong for anything else: malformed protobuf, a field
    these messages do not have, a UnixFS type other than File, or a non-canonical encoding.
    """
    if block[:1] == _LINK_TAG:
        return _decode_inner_node(block)
    links: list[tuple[bytes, int]] = []
    unixfs: bytes | None = None
    for field, value in _fields(block, {1: _LENGTH_DELIMITED, 2: _LENGTH_DELIMITED}, "PBNode"):
        if field == 1:
            unixfs = value
        else:
            link = dict(_fields(value, {1: _LENGTH_DELIMITED, 2: _LENGTH_DELIMITED, 3: _VARINT},
                                "PBLink"))
            links.append((link.get(1, b""), link.get(3, 0)))
    if unixfs is None:
        raise ValueError("PBNode has no Data (no UnixFS message)")
    kind, data, filesize, blocksizes = 0, b"", 0, []
    unixfs_fields = {1: _VARINT, 2: _LENGTH_DELIMITED, 3: _VARINT, 4: _VARINT}
    for field, value in _fields(unixfs, unixfs_fields, "UnixFS Data"):
        if field == 1:
            kind = value
        elif field == 2:
            data = value
        elif field == 3:
            filesize = value
        else:
            blocksizes.append(value)
    if kind != UNIXFS_FILE:
        raise ValueError(f"UnixFS Type is {kind}, not File ({UNIXFS_FILE})")
    node = FileNode(tuple(links), filesize, tuple(blocksizes), data)
    if links and len(blocksizes) != len(links):
        raise ValueError(f"{len(links)} links but {len(blocksizes)} blocksizes")
    if links and filesize != sum(blocksizes):  # (a sum past MAX_UINT64 could not be encoded)
        raise ValueError(f"filesize {filesize} is not the sum of the blocksizes")
    if links:
        canonical = encode_file_node(node.links, node.blocksizes)
    else:
        prefix, suffix = encode_leaf_envelope(len(data))
        canonical = prefix + data + suffix
    if canonical != block:
        raise ValueError("not the canonical encoding of a UnixFS File node")
    return node


_LINK_TAG = b"\x12"  # PBNode field 2 (Links), length-delimited
_DATA_TAG = 0x0A  # PBNode field 1 (Data), and PBLink field 1 (Hash): both length-delimited
_EMPTY_NAME_THEN_TSIZE = b"\x12\x00\x18"  # PBLink Name = "" (field 2), then the Tsize tag


def _decode_inner_node(block: bytes) -> FileNode:
    """An inner File node, its links scanned in exactly the canonical shape: each PBLink is
    Hash (a CID shorter than 128 bytes), an empty Name, a Tsize; then Data, to the end."""
    links: list[tuple[bytes, int]] = []
    pos, end = 0, len(block)
    while pos < end and block[pos] == 0x12:
        length, start = _read_minimal_varint(block, pos + 1)
        stop = start + length
        if stop > end:
            raise ValueError("a PBLink runs past the end of the PBNode")
        if length < 2 or block[start] != _DATA_TAG or block[start + 1] >= 0x80:
            raise ValueError("a PBLink does not start with a Hash of fewer than 128 bytes")
        cid_end = start + 2 + block[start + 1]
        if block[cid_end : cid_end + 3] != _EMPTY_NAME_THEN_TSIZE:
            raise ValueError("a PBLink is not Hash, an empty Name, then Tsize")
        tsize, after = _read_minimal_varint(block, cid_end + 3)
        if after != stop:
            raise ValueError("a PBLink has bytes after its Tsize or runs past its length")
        links.append((block[start + 2 : cid_end], tsize))
        pos = stop
    if pos >= end or block[pos] != _DATA_TAG:
        raise ValueError("the PBNode's links are not followed by its Data")
    length, start = _read_minimal_varint(block, pos + 1)
    if start + length != end:
        raise ValueError("the PBNode's Data does not end where the node ends")
    # UnixFS Data, canonical: Type File, filesize, then one blocksize per link.
    if block[start : start + 3] != _FILE_TYPE_THEN_FILESIZE:
        raise ValueError("the UnixFS Data does not start with Type File and then filesize")
    filesize, pos = _read_minimal_varint(block, start + 3)
    blocksizes = []
    while pos < end:
        if block[pos] != _BLOCKSIZE_TAG:
            raise ValueError("the UnixFS Data has a field other than blocksizes after filesize")
        size, pos = _read_minimal_varint(block, pos + 1)
        blocksizes.append(size)
    if pos != end:
        raise ValueError("the UnixFS Data runs past the end of the PBNode")
    if len(blocksizes) != len(links):
        raise ValueError(f"{len(links)} links but {len(blocksizes)} blocksizes")
    if filesize != sum(blocksizes):
        raise ValueError(f"filesize {filesize} is not the sum of the blocksizes")
    return FileNode(tuple(links), filesize, tuple(blocksizes), b"")


_FILE_TYPE_THEN_FILESIZE = bytes((0x08, UNIXFS_FILE, 0x18))
_BLOCKSIZE_TAG = 0x20


def _read_minimal_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """A varint in its shortest form (a trailing 0x00 byte is refused), fast for the one- to
    three-byte values that fill inner nodes (Tsize and blocksize of 256 KiB chunks)."""
    try:
        b0 = buf[pos]
        if b0 < 0x80:
            return b0, pos + 1
        b1 = buf[pos + 1]
        if 0 < b1 < 0x80:
            return b0 & 0x7F | b1 << 7, pos + 2
        if b1 >= 0x80:
            b2 = buf[pos + 2]
            if 0 < b2 < 0x80:
                return b0 & 0x7F | (b1 & 0x7F) << 7 | b2 << 14, pos + 3
    except IndexError:
        raise ValueError("truncated varint") from None
    value, after = _read_varint(buf, pos)
    if buf[after - 1] == 0:
        raise ValueError("a varint with trailing zero bytes (not minimal)")
    return value, after


def _fields(buf: bytes, wire_types: dict[int, int], message: str) -> list[tuple[int, Any]]:
    """(field number, value) pairs of a protobuf message: an int for a varint, bytes for a
    length-delimited field. Only the fields in `wire_types`, each with its wire type."""
    fields = []
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = _read_varint(buf, pos)
        field, wire_type = key >> 3, key & 7
        if wire_types.get(field) != wire_type:
            raise ValueError(f"{message} has field {field} with wire type {wire_type}")
        value: Any
        if wire_type == _VARINT:
            value, pos = _read_varint(buf, pos)
        else:
            length, pos = _read_varint(buf, pos)
            if length > end - pos:
                raise ValueError(f"{message} field {field} runs past the end of the message")
            value, pos = buf[pos : pos + length], pos + length
        fields.append((field, value))
    return fields


def _read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    if pos < len(buf) and buf[pos] < 0x80:  # the common one-byte case, taken first for speed
        return buf[pos], pos + 1
    value = 0
    for i in range(MAX_VARINT_BYTES):
        if pos + i >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos + i]
        value |= (byte & 0x7F) << (7 * i)
        if byte < 0x80:
            if value > MAX_UINT64:
                raise ValueError(f"varint {value} does not fit a uint64")
            return value, pos + i + 1
    raise ValueError(f"varint longer than {MAX_VARINT_BYTES} bytes")
