"""Inputs the fuzzing campaign (bench/fuzz.py) found, or that its findings led to: each was a
denial of service, a few hundred bytes to a megabyte costing seconds to hours of CPU."""

import warnings

import pytest

from wekacoin.crypto.keys import AddressError, parse_address
from wekacoin.node.rpc_api import _address
from wekacoin.rpc.protocol import InvalidParams
from wekacoin.testing.chain import dev_key
from wekacoin.types.codec import DecodeError, decode, decode_trusted
from wekacoin.types.tx import Transfer, Tx


def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | info]) + n.to_bytes(size, "big")
    raise ValueError(n)


def shared_references(depth: int) -> bytes:
    """[x0, x1, ...] with x0 = [0] and x_i = [x_(i-1), x_(i-1)] by reference (tags 28, 29):
    4 + 9 * depth bytes that re-encode to 2**depth copies of x0."""
    items = [b"\xd8\x1c\x81\x00"]
    for i in range(1, depth + 1):
        ref = b"\xd8\x1d" + _head(0, i - 1)
        items.append(b"\xd8\x1c\x82" + ref + ref)
    return _head(4, len(items)) + b"".join(items)


def colliding_integers(n: int, as_set: bool) -> bytes:
    """A map (or a tag-258 set) of n bignums that all hash to 0 in CPython."""
    keys = []
    for k in range(1, n + 1):
        magnitude = ((2**61 - 1) * k).to_bytes(10, "big")
        keys.append(b"\xc2" + _head(2, len(magnitude)) + magnitude)
    if as_set:
        return b"\xd9\x01\x02" + _head(4, n) + b"".join(keys)
    return _head(5, n) + b"".join(k + b"\x00" for k in keys)


# At depth 22 the old decoder spent 28 s re-encoding 4 million copies; at 40 it would have
# tried to write a terabyte. Depth 12 shows the refusal without costing much if it regressed.
@pytest.mark.parametrize("data", [
    shared_references(12),
    colliding_integers(200, as_set=False), colliding_integers(200, as_set=True),
    b"\xd8\x23\x64[[a]",  # a regex (tag 35) that Python's re warns about
    b"\xc1\x1b\x7f\xff\xff\xff\xff\xff\xff\xff", b"\xd9\x03\xe8\x00",  # a date; an unknown tag
], ids=["shared-12", "int-map", "int-set", "regex", "date", "tag-1000"])
def test_tags_and_integer_keys_are_refused_before_anything_is_built(data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # cbor2 compiled tag 35 regexes: FutureWarning escaped
        for decoder in (decode, decode_trusted):
            with pytest.raises(DecodeError, match="semantic tag|map key must be"):
                decoder(Tx, data)


def test_a_variant_kind_is_an_integer_not_a_boolean():
    """bench/fuzz.py --targets decode --seed 7 --replay 132609: [true, to, amount] decoded as
    a Transfer (KIND 1, and True == 1) whose encoding is [1, to, amount]: a second encoding
    of one record. Through a union (UnsignedTx.body) it was already refused."""
    data = bytes.fromhex("83f5541446893e9c4c1a4504bf2bf23e7f8608451596501904d2")
    with pytest.raises(DecodeError, match="kind 1"):
        decode(Transfer, data)
    assert decode(Transfer, b"\x83\x01" + data[2:]) == Transfer(data[3:23], 1234)


def test_what_the_encoding_holds_still_decodes():
    from wekacoin.chain.transactions import sign_tx
    from wekacoin.types.codec import encode

    key = dev_key(0)
    tx = sign_tx(key, bytes(32), 0, 1, Transfer(dev_key(1).address, 2**64 - 1))
    assert decode(Tx, encode(tx)) == tx


def test_a_long_address_is_refused_before_base58_decoding():
    """chain.account and tx.pending took a 1 MiB body without the token: base58 decoding is
    quadratic, 100,000 characters took 8 s of the node's event loop, a megabyte minutes."""
    text = "ab" * 5_000  # long enough to see that it is not decoded, short if it were
    with pytest.raises(AddressError, match="10000 characters"):
        parse_address(text)
    with pytest.raises(InvalidParams, match="characters"):
        _address(text)
    address = dev_key(0).address
    from wekacoin.crypto.keys import format_address

    assert parse_address(f"  {format_address(address)}\n") == address
