"""Mutators for the fuzzer: bytes and CBOR trees, driven by a `random.Random`.

Byte mutations know nothing of the format: bit flips, interesting bytes, inserts, deletes,
duplicated runs, truncation, splices of two inputs, integer boundary values written over the
bytes. CBOR mutations parse a valid encoding into its data model tree, change one node (a
value of another major type, an integer at a boundary, a resized byte string, a dropped or
duplicated array item, another transaction KIND) or replace it by bytes no canonical encoder
would write (huge or indefinite lengths, deep nesting, tags, floats and simple values,
non-shortest integers, invalid UTF-8, values shared by reference, maps of colliding keys),
and encode the tree again. JSON mutations (fuzz_json.py) use the same trees.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

import cbor2

INTS = (0, 1, 23, 24, 255, 256, 65_535, 65_536, 2**31 - 1, 2**32 - 1, 2**32, 2**53 + 1,
        2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**128, -1, -24, -25, -(2**31), -(2**63),
        -(2**63) - 1, -(2**64), -(2**64) - 1)
BYTE_LENGTHS = (0, 1, 19, 20, 21, 31, 32, 33, 63, 64, 65, 79, 80, 81, 4096)
STRINGS = ("", "0", "a", "\x00", "é", "\u2028", "\U0001f600", "../../etc/passwd", "%s%n",
           "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", "0x", "ff" * 32,
           "NaN", "-1", "null", "\ufeff", "a" * 300)
TAGS = (0, 1, 2, 3, 4, 5, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 32, 33, 34, 35, 36, 37, 38,
        256, 258, 260, 261, 262, 263, 1_001, 55_799, 2**32, 2**64 - 1)
INTERESTING_BYTES = (0x00, 0x01, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1f, 0x20, 0x38, 0x3b,
                     0x40, 0x58, 0x5b, 0x5f, 0x60, 0x78, 0x7b, 0x7f, 0x80, 0x98, 0x9b, 0x9f,
                     0xa0, 0xb8, 0xbb, 0xbf, 0xc0, 0xc2, 0xc6, 0xd8, 0xdb, 0xe0, 0xf4, 0xf5,
                     0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xff)
NESTING = (8, 64, 500, 1_000, 5_000, 50_000)
MAX_MUTATIONS = 4


@dataclass(frozen=True, slots=True)
class Raw:
    """Bytes put verbatim into an encoded CBOR tree (or text into a JSON document)."""

    data: Any


# -- bytes -----------------------------------------------------------------------------------


def _range(rng: random.Random, n: int) -> tuple[int, int]:
    start = rng.randrange(n + 1)
    return start, min(n, start + rng.choice((1, 1, 2, 4, 8, 16, 64, 1_024)))


def _boundary_bytes(rng: random.Random) -> bytes:
    value = rng.choice(INTS)
    return _head(0 if value >= 0 else 1, value if value >= 0 else -1 - value) \
        if -(2**64) <= value < 2**64 else rng.choice((b"\xc2", b"\xc3")) + cbor_encode(
            abs(value).to_bytes(17, "big"))


def mutate_bytes(rng: random.Random, data: bytes, other: bytes) -> bytes:
    """One blind mutation of `data`; `other` is another input, for splicing."""
    b = bytearray(data)
    n = len(b)
    op = rng.randrange(10)
    if op == 0 and n:
        for _ in range(rng.choice((1, 1, 2, 4))):
            b[rng.randrange(n)] ^= 1 << rng.randrange(8)
    elif op == 1 and n:
        b[rng.randrange(n)] = rng.choice(INTERESTING_BYTES)
    elif op == 2 and n:
        i = rng.randrange(n)
        b[i] = (b[i] + rng.choice((-2, -1, 1, 2))) % 256
    elif op == 3:
        at = rng.randrange(n + 1)
        if rng.random() < 0.5:
            chunk = bytes(rng.choice(INTERESTING_BYTES) for _ in range(rng.randint(1, 4)))
        else:
            chunk = rng.randbytes(rng.randint(1, 16))
        b[at:at] = chunk
    elif op == 4 and n:
        start, stop = _range(rng, n)
        del b[start:stop]
    elif op == 5 and n:
        start, stop = _range(rng, n)
        at = rng.randrange(n + 1)
        b[at:at] = b[start:stop] * rng.choice((1, 1, 2, 16))
    elif op == 6:
        del b[rng.randrange(n + 1):]
    elif op == 7 and other:
        cut, cut2 = rng.randrange(n + 1), rng.randrange(len(other) + 1)
        b = b[:cut] + other[cut2:] if rng.random() < 0.5 else b[:cut] + other[:cut2] + b[cut:]
    elif op == 8:
        at = rng.randrange(n + 1)
        chunk = _boundary_bytes(rng)
        b[at:at + len(chunk)] = chunk
    else:
        at = rng.randrange(n + 1)
        b[at:at] = rng.choice((b"\x81", b"\x9f", b"\xbf", b"\x5f", b"\x7f")) * rng.choice(NESTING)
    return bytes(b)


# -- CBOR trees ------------------------------------------------------------------------------


def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | info]) + n.to_bytes(size, "big")
    raise ValueError(f"{n} needs a bignum")


def cbor_encode(value: Any) -> bytes:
    """Canonical CBOR of a data model tree, with `Raw` nodes copied verbatim."""
    if isinstance(value, Raw):
        return value.data
    if value is None:
        return b"\xf6"
    if value is True:
        return b"\xf5"
    if value is False:
        return b"\xf4"
    if isinstance(value, int):
        if 0 <= value < 2**64:
            return _head(0, value)
        if -(2**64) <= value < 0:
            return _head(1, -1 - value)
        magnitude = value if value >= 0 else -1 - value
        raw = magnitude.to_bytes((magnitude.bit_length() + 7) // 8, "big")
        return (b"\xc2" if value >= 0 else b"\xc3") + cbor_encode(raw)
    if isinstance(value, bytes):
        return _head(2, len(value)) + value
    if isinstance(value, str):
        raw = value.encode("utf-8", "surrogatepass")
        return _head(3, len(raw)) + raw
    if isinstance(value, (list, tuple)):
        return _head(4, len(value)) + b"".join(cbor_encode(v) for v in value)
    if isinstance(value, dict):
        return _head(5, len(value)) + b"".join(
            cbor_encode(k) + cbor_encode(v) for k, v in value.items())
    if isinstance(value, cbor2.CBORTag):
        return _head(6, value.tag) + cbor_encode(value.value)
    return cbor2.dumps(value)  # floats, undefined


def random_path(rng: random.Random, tree: Any, within: tuple = ()) -> tuple:
    """A node's path (a tuple of list indices or dict keys) found by a random descent from
    the node at `within`: each step goes one level deeper with probability 3/4."""
    path = list(within)
    node = get_at(tree, within)
    while isinstance(node, (list, dict)) and node and rng.random() < 0.75:
        key = rng.randrange(len(node)) if isinstance(node, list) else rng.choice(list(node))
        path.append(key)
        node = node[key]
    return tuple(path)


def get_at(tree: Any, path: tuple) -> Any:
    for step in path:
        tree = tree[step]
    return tree


def set_at(tree: Any, path: tuple, value: Any) -> Any:
    """A copy of `tree` with the node at `path` replaced (only the nodes on the path copied)."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    copy = list(tree) if isinstance(tree, list) else dict(tree)
    copy[head] = set_at(tree[head], rest, value)
    return copy


def random_cbor_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(13)
    if kind == 0:
        return rng.choice(INTS)
    if kind == 1:
        return rng.randbytes(rng.choice(BYTE_LENGTHS))
    if kind == 2:
        return rng.choice(STRINGS)
    if kind == 3:
        return [] if depth > 2 else [random_cbor_value(rng, depth + 1)
                                     for _ in range(rng.randint(0, 3))]
    if kind == 4:
        return {} if depth > 2 else {rng.choice(INTS): random_cbor_value(rng, depth + 1)}
    if kind == 5:
        return rng.choice((None, True, False))
    if kind == 6:
        return rng.choice((0.0, -0.0, 1.5, math.inf, -math.inf, math.nan, 1e300))
    if kind == 7:
        content = 0 if depth > 2 else random_cbor_value(rng, depth + 1)
        return cbor2.CBORTag(rng.choice(TAGS), content)
    if kind == 8:
        return Raw(rng.choice(SPECIAL_ITEMS))
    if kind == 9:
        return Raw(_huge_length(rng))
    if kind == 10:
        return rng.randrange(-1_000, 1_000)
    if kind == 11:
        return Raw(_tagged_oddity(rng))
    return Raw(rng.choice((_shared_dag, _colliding_keys))(rng))


SPECIAL_ITEMS = (
    b"\xf7", b"\xf0", b"\xf3", b"\xf8\x14", b"\xf8\xff", b"\xf9\x7e\x00", b"\xf9\x7c\x00",
    b"\xfa\x7f\xc0\x00\x00", b"\xfb\x7f\xf0\x00\x00\x00\x00\x00\x00", b"\xfb" + bytes(8),
    b"\x1c", b"\x3d", b"\x5d", b"\x7e", b"\x9c", b"\xbe", b"\xdc", b"\xfc", b"\xfd", b"\xfe",
    b"\xff", b"\x62\xff\xfe", b"\x63\xed\xa0\x80", b"\x61\xc0", b"\x7f\x61a\x41a\xff",
    b"\x5f\x61a\xff", b"\x5f\x5f\xff\xff", b"\x7f\xff", b"\x5f\xff", b"\x9f\xff", b"\xbf\xff",
    b"\xbf\x01\xff", b"\xa2\x01\x01\x01\x02", b"\xa1\x80\x00", b"\xa1\xa0\x00", b"\xa1\xf6\x00",
    b"\xa1\xc1\x00\x00", b"\xd8\x1d\x00", b"\xd8\x1d\x1b" + b"\xff" * 8, b"\xd8\x1c\x80",
    b"\xd8\x1c\xd8\x1d\x00", b"\xd9\x01\x02\x81\x80", b"\xd9\x01\x02\x81\xa0",
)


def _huge_length(rng: random.Random) -> bytes:
    major = rng.choice((2, 3, 4, 5))
    n = rng.choice((2**16, 2**31, 2**32 - 1, 2**63, 2**64 - 1))
    return _head(major, n) + rng.randbytes(rng.randint(0, 8))


def _tagged_oddity(rng: random.Random) -> bytes:
    """Tags whose content cbor2 interprets: dates, bignums, decimals, fractions, regexes..."""
    return rng.choice((
        b"\xc0\x60", b"\xc0\x63abc", b"\xc0\x74" + b"9999-99-99T99:99:99Z",
        b"\xc1\x1b\x7f\xff\xff\xff\xff\xff\xff\xff", b"\xc1\xfb\x7f\xf0" + bytes(6),
        b"\xc1\x3b\x7f\xff\xff\xff\xff\xff\xff\xff", b"\xc2\x40", b"\xc2\x01",
        b"\xc3\x5b" + b"\xff" * 8, b"\xc4\x82\x1b\x7f\xff\xff\xff\xff\xff\xff\xff\x01",
        b"\xc4\x82\x01", b"\xc4\x01", b"\xc5\x82\x3b\x7f\xff\xff\xff\xff\xff\xff\xff\x01",
        b"\xd8\x1e\x82\x01\x00", b"\xd8\x1e\x81\x01", b"\xd8\x1e\x01", b"\xd8\x23\x61(",
        b"\xd8\x23\x01", b"\xd8\x24\x61x", b"\xd8\x25\x41\x00", b"\xd8\x25\x50" + bytes(16),
        b"\xd9\x01\x04\x44\x01\x02\x03\x04", b"\xd9\x01\x04\x41\x00", b"\xd9\x01\x05\x41\x00",
        b"\xd9\x01\x06\x82\x01\x01", b"\xd9\x01\x07\x82\x01\x01", b"\xd8\x20\x01",
        b"\xd8\x21\x61!", b"\xd8\x22\x61!", b"\xd9\xd9\xf7\x80", b"\xd8\x19\x00",
        b"\xd8\x19\x1b\xff\xff\xff\xff\xff\xff\xff\xff", b"\xd8\x1a\x82\x01\x02",
        b"\xd8\x1b\x82\x61x\x80", b"\xd8\x1b\x80", b"\xd9\xff\xff\x00",
    ))


def _shared_dag(rng: random.Random) -> bytes:
    """Values shared by reference (tags 28 and 29): item i is [item i-1, item i-1], so a few
    hundred bytes stand for 2**depth leaves once the references are copied out."""
    depth = rng.choice((4, 8, 12, 16, 24, 40))
    items = [b"\xd8\x1c\x81\x00"]
    for i in range(1, depth + 1):
        ref = b"\xd8\x1d" + _head(0, i - 1)
        items.append(b"\xd8\x1c\x82" + ref + ref)
    return _head(4, len(items)) + b"".join(items)


def _colliding_keys(rng: random.Random) -> bytes:
    """A map (or a set, tag 258) of integers that all hash alike in CPython (multiples of
    2**61 - 1, as bignums past 64 bits): quadratic to build."""
    n = rng.choice((50, 500, 5_000))
    keys = [cbor_encode((2**61 - 1) * k) for k in range(1, n + 1)]
    if rng.random() < 0.5:
        return _head(5, n) + b"".join(k + b"\x00" for k in keys)
    return b"\xd9\x01\x02" + _head(4, n) + b"".join(keys)


def _noncanonical_int(value: int) -> bytes:
    major, n = (0, value) if value >= 0 else (1, -1 - value)
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size) and (size > 1 or n >= 0):
            if _head(major, n) != bytes([major << 5 | info]) + n.to_bytes(size, "big"):
                return bytes([major << 5 | info]) + n.to_bytes(size, "big")
    return _head(major, n)


def mutate_node(rng: random.Random, node: Any, donor: Any) -> Any:
    """A replacement for one node of a CBOR tree; `donor` is a node of another input."""
    op = rng.randrange(14)
    if op == 0:
        return random_cbor_value(rng)
    if op == 1:
        if isinstance(node, int) and not isinstance(node, bool) and rng.random() < 0.5:
            return node + rng.choice((-1, 1, -(2**32), 2**32, 2**63, -(2**64)))
        return rng.choice(INTS)
    if op == 2 and isinstance(node, (bytes, str)):
        n = rng.choice(BYTE_LENGTHS + (len(node) - 1, len(node) + 1, 70_000))
        unit = node or ("a" if isinstance(node, str) else b"\x00")
        return (unit * (max(0, n) // len(unit) + 1))[:max(0, n)]
    if op == 3 and isinstance(node, list) and node:
        copy = list(node)
        what = rng.randrange(6)
        i = rng.randrange(len(copy))
        if what == 0:
            del copy[i]
        elif what == 1:
            copy.insert(i, copy[i])
        elif what == 2:
            copy.append(random_cbor_value(rng))
        elif what == 3:
            j = rng.randrange(len(copy))
            copy[i], copy[j] = copy[j], copy[i]
        elif what == 4:
            copy = copy * rng.choice((2, 10, 300))
        else:
            copy = []
        return copy
    if op == 4 and isinstance(node, list) and node and isinstance(node[0], int):
        return [rng.choice((0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 255, 2**64 - 1, -1))] + node[1:]
    if op == 5:
        return Raw(rng.choice((b"\x81", b"\x9f", b"\xa1\x00")) * rng.choice(NESTING)
                   + cbor_encode(node))
    if op == 6:
        return Raw(_huge_length(rng))
    if op == 7 and type(node) is int and -(2**64) <= node < 2**64:
        return Raw(_noncanonical_int(node))
    if op == 8:
        if isinstance(node, list):
            return Raw(b"\x9f" + b"".join(cbor_encode(x) for x in node) + b"\xff")
        if isinstance(node, bytes):
            half = len(node) // 2
            return Raw(b"\x5f" + cbor_encode(node[:half]) + cbor_encode(node[half:]) + b"\xff")
        if isinstance(node, str):
            return Raw(b"\x7f" + cbor_encode(node) + b"\xff")
        return Raw(_head(4, 2**64 - 1))
    if op == 9:
        return cbor2.CBORTag(rng.choice(TAGS), node)
    if op == 10:
        return Raw(rng.choice(SPECIAL_ITEMS + (_tagged_oddity(rng),)))
    if op == 11:
        return donor
    if op == 12:
        return [node] if rng.random() < 0.5 else {0: node}
    if isinstance(node, bytes) and node:
        b = bytearray(node)
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        return bytes(b)
    return random_cbor_value(rng)


def mutate_tree(rng: random.Random, tree: Any, donor_tree: Any) -> Any:
    """`tree` with one node replaced by `mutate_node`."""
    path = random_path(rng, tree)
    donor = get_at(donor_tree, random_path(rng, donor_tree))
    return set_at(tree, path, mutate_node(rng, get_at(tree, path), donor))


def mutate_typed(rng: random.Random, tree: Any, donor_tree: Any) -> Any:
    """`tree` with one node replaced by another of the same type (an integer by a boundary
    value, a byte string by one of the same length, an array with an item dropped or
    repeated...): what a signer could mean to send, so that it passes the type checks."""
    path = random_path(rng, tree)
    node, donor = get_at(tree, path), get_at(donor_tree, random_path(rng, donor_tree))
    if isinstance(node, bool):
        new: Any = not node
    elif isinstance(node, int):
        new = rng.choice((0, 1, node - 1, node + 1, node * 2, 2**32, 2**63 - 1, 2**63,
                          2**64 - 1, -1, -(2**63), rng.randrange(2**64)))
    elif isinstance(node, bytes):
        new = rng.choice((bytes(len(node)), b"\xff" * len(node), rng.randbytes(len(node)),
                          donor if isinstance(donor, bytes) and len(donor) == len(node) else node))
    elif isinstance(node, str):
        new = rng.choice(STRINGS + (node + node, node[:-1], node * 40))
    elif isinstance(node, list) and node:
        new = list(node)
        i = rng.randrange(len(new))
        what = rng.randrange(4)
        if what == 0:
            del new[i]
        elif what == 1:
            new.insert(i, new[i])
        elif what == 2:
            j = rng.randrange(len(new))
            new[i], new[j] = new[j], new[i]
        else:
            new = []
    else:
        new = donor if type(donor) is type(node) else node
    return set_at(tree, path, new)


class Parsed:
    """CBOR trees of corpus inputs, parsed once."""

    def __init__(self) -> None:
        self._trees: dict[bytes, Any] = {}

    def tree(self, data: bytes) -> Any:
        tree = self._trees.get(data)
        if tree is None:
            tree = self._trees[data] = cbor2.loads(data)
        return tree


def mutate_cbor(rng: random.Random, data: bytes, other: bytes, parsed: Parsed) -> bytes:
    """1 to MAX_MUTATIONS mutations of a valid encoding, structural or blind."""
    tree, donor = parsed.tree(data), parsed.tree(other)
    out: bytes | None = None
    for _ in range(rng.randint(1, MAX_MUTATIONS)):
        if out is None and rng.random() < 0.6:
            tree = mutate_tree(rng, tree, donor)
            continue
        if out is None:
            out = cbor_encode(tree)
        out = mutate_bytes(rng, out, other)
    return cbor_encode(tree) if out is None else out
