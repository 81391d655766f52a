"""The canonical encoding: round trips, one encoding per object, and decoding that only ever
raises DecodeError."""

import cbor2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers.strategies import tx_bodies, unsigned_txs
from wekacoin.types.block import Block
from wekacoin.types.codec import DecodeError, decode, encode, hash_of
from wekacoin.types.genesis import Params
from wekacoin.types.ledger import Account, Bond, Pending, Task
from wekacoin.types.metric import Metric
from wekacoin.types.ranking import Outcome, RankEntry
from wekacoin.types.tx import Transfer, Tx, UnsignedTx


def test_round_trip_of_a_transfer():
    tx = UnsignedTx(b"k" * 32, 7, 2, Transfer(b"a" * 20, 5))
    data = encode(tx)
    assert decode(UnsignedTx, data) == tx
    assert encode(decode(UnsignedTx, data)) == data


@given(unsigned_txs())
def test_every_transaction_round_trips(tx):
    data = encode(tx)
    assert decode(UnsignedTx, data) == tx
    assert hash_of(tx) == hash_of(decode(UnsignedTx, data))


@given(tx_bodies(), tx_bodies())
def test_distinct_objects_have_distinct_encodings(a, b):
    if a != b:
        assert encode(a) != encode(b)


def _unsigned_primitive():
    return [b"k" * 32, 7, 2, [1, b"a" * 20, 5]]


@pytest.mark.parametrize("bad, why", [
    (bytes.fromhex("84") + bytes.fromhex("5820") + b"k" * 32 + bytes.fromhex("1807") + b"\x02"
     + bytes.fromhex("8301") + bytes.fromhex("54") + b"a" * 20 + b"\x05", "non-shortest integer"),
    (bytes.fromhex("9f") + cbor2.dumps([b"k" * 32, 7, 2, [1, b"a" * 20, 5]])[1:] + b"\xff",
     "indefinite-length array"),
    (cbor2.dumps(_unsigned_primitive()) + b"\x00", "trailing byte"),
    (cbor2.dumps(_unsigned_primitive())[:-1], "truncated"),
    (cbor2.dumps([b"k" * 32, 7, 2, [1, b"a" * 20, 5.0]]), "float amount"),
    (cbor2.dumps([b"k" * 32, 7, 2, [1, b"a" * 20, -5]]), "negative amount"),
    (cbor2.dumps([b"k" * 32, 7, 2, [1, b"a" * 20, 2**64]]), "amount past 64 bits"),
    (cbor2.dumps([b"k" * 32, 7, 2, [1, b"a" * 19, 5]]), "short address"),
    (cbor2.dumps([b"k" * 31, 7, 2, [1, b"a" * 20, 5]]), "short public key"),
    (cbor2.dumps([b"k" * 32, True, 2, [1, b"a" * 20, 5]]), "bool for an integer"),
    (cbor2.dumps([b"k" * 32, 7, 2, [99, b"a" * 20, 5]]), "unknown transaction kind"),
    (cbor2.dumps([b"k" * 32, 7, 2, [1, b"a" * 20, 5, 6]]), "extra field"),
    (cbor2.dumps([b"k" * 32, 7, 2]), "missing field"),
    (cbor2.dumps({"sender": b"k" * 32}), "a map"),
    (cbor2.dumps(cbor2.CBORTag(1, 0)), "a tag"),
    (b"", "empty"),
    (b"\xff\xff\xff", "garbage"),
])
def test_non_canonical_or_malformed_bytes_are_refused(bad, why):
    with pytest.raises(DecodeError):
        decode(UnsignedTx, bad)


def test_unknown_enum_member_is_refused():
    entry = cbor2.dumps([1, 7, 0, 10])  # outcome 7 does not exist
    with pytest.raises(DecodeError):
        decode(RankEntry, entry)
    assert decode(RankEntry, cbor2.dumps([1, 0, 5, 10])) == RankEntry(1, Outcome.SCORED, 5, 10)


def test_a_tx_whose_payload_is_not_canonical_is_refused():
    payload = bytes.fromhex("84") + bytes.fromhex("5820") + b"k" * 32 + bytes.fromhex("1807")
    payload += b"\x02" + bytes.fromhex("8301") + bytes.fromhex("54") + b"a" * 20 + b"\x05"
    with pytest.raises(DecodeError):
        decode(Tx, cbor2.dumps([payload, b"s" * 64]))


def test_deeply_nested_input_is_refused_cleanly():
    with pytest.raises(DecodeError):
        decode(Block, b"\x81" * 100_000 + b"\x00")


@settings(max_examples=300)
@given(st.binary(max_size=400))
def test_random_bytes_raise_only_decode_error(data):
    for cls in (UnsignedTx, Tx, Block, Account, Task, Params):
        try:
            decode(cls, data)
        except DecodeError:
            pass


@settings(max_examples=300)
@given(unsigned_txs(), st.data())
def test_mutated_encodings_raise_only_decode_error(tx, data):
    raw = bytearray(encode(tx))
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] = data.draw(st.integers(0, 255))
    try:
        decoded = decode(UnsignedTx, bytes(raw))
    except DecodeError:
        return
    assert encode(decoded) == bytes(raw)  # whatever decodes is canonical


def test_records_with_defaults_and_nested_tuples():
    bond = Bond(b"v" * 32, 3, (Pending(9, 2),), ())
    assert decode(Bond, encode(bond)) == bond
    assert decode(Params, encode(Params())) == Params()


def test_metric_enum_encodes_as_its_name():
    assert cbor2.loads(encode(RankEntry(1, Outcome.INVALID, 0, 0))) == [1, 1, 0, 0]
    assert Metric("f1") is Metric.F1
