"""CSV group blobs: canonical round trips, and every kind of malformed data refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from wekacoin.evaluation.data import (
    DataError,
    DataSchema,
    encode_group,
    parse_features,
    parse_group,
    parse_split,
    split_into_groups,
)
from wekacoin.types.metric import TaskKind

CLS = DataSchema(("a", "b"), "y", TaskKind.CLASSIFICATION)
REG = DataSchema(("a", "b"), "y", TaskKind.REGRESSION)


def test_parses_a_simple_blob():
    ds = parse_group(b"a,b,y\n1,2.5,0\r\n-3e2,.5,1", CLS)
    assert ds.features.dtype == np.float64 and ds.labels.dtype == np.int64
    assert ds.features.tolist() == [[1.0, 2.5], [-300.0, 0.5]]
    assert ds.labels.tolist() == [0, 1]
    assert parse_group(b"a,b,y\n1,2,0.25\n", REG).labels.tolist() == [0.25]


@settings(max_examples=50, deadline=None)
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 20), st.just(2)),
        elements=st.floats(allow_nan=False, allow_infinity=False, width=64),
    ),
    st.data(),
)
def test_encode_then_parse_is_bit_exact(features, data):
    n = features.shape[0]
    labels = np.array(data.draw(st.lists(st.integers(-5, 5), min_size=n, max_size=n)))
    back = parse_group(encode_group(features, labels, CLS), CLS)
    assert back.features.tobytes() == features.tobytes()  # same bits, -0.0 included
    assert back.labels.tolist() == labels.tolist()


def test_split_is_the_concatenation_in_group_order():
    X = np.arange(40, dtype=np.float64).reshape(20, 2)
    y = np.arange(20) % 3
    blobs = split_into_groups(X, y, CLS, 4)
    shuffled = {3: blobs[3], 0: blobs[0], 2: blobs[2], 1: blobs[1]}
    ds = parse_split(shuffled, CLS)
    assert ds.features.tolist() == X.tolist() and ds.labels.tolist() == y.tolist()
    seeded = split_into_groups(X, y, CLS, 4, seed=3)
    assert seeded == split_into_groups(X, y, CLS, 4, seed=3) != blobs
    assert sorted(parse_split(dict(enumerate(seeded)), CLS).labels.tolist()) == sorted(y.tolist())


def test_features_for_prediction_with_or_without_labels():
    assert parse_features(b"a,b\n1,2\n", CLS).tolist() == [[1.0, 2.0]]
    assert parse_features(b"a,b,y\n1,2,7\n", CLS).tolist() == [[1.0, 2.0]]


@pytest.mark.parametrize(
    "blob, why",
    [
        (b"", "empty"),
        (b"a,b,y\n", "no rows"),
        (b"b,a,y\n1,2,0\n", "reordered columns"),
        (b"a,y\n1,0\n", "missing column"),
        (b"a,b,c,y\n1,2,3,0\n", "extra column"),
        (b"\xef\xbb\xbfa,b,y\n1,2,0\n", "byte-order mark"),
        (b"a,b,y\n1,2\n", "short row"),
        (b"a,b,y\n1,2,0,4\n", "long row"),
        (b"a,b,y\n1,x,0\n", "non-numeric"),
        (b"a,b,y\n1,nan,0\n", "NaN"),
        (b"a,b,y\n1,inf,0\n", "infinity"),
        (b"a,b,y\n1,1e400,0\n", "overflow"),
        (b"a,b,y\n1,,0\n", "empty cell"),
        (b"a,b,y\n1, 2,0\n", "space"),
        (b"a,b,y\n1,1_0,0\n", "underscore"),
        (b"a,b,y\n1,2,0.5\n", "fractional class label"),
        (b"a,b,y\n1,2,99999999999999999999\n", "label out of int64"),
        (b"a,b,y\n1,2,0\n\n3,4,1\n", "blank line"),
        (b'a,b,y\n"1",2,0\n', "quoting"),
        (b"a,b,y\n1,2,\xff\n", "not UTF-8"),
    ],
)
def test_malformed_data_is_a_data_error(blob, why):
    with pytest.raises(DataError):
        parse_group(blob, CLS)


def test_oversize_blob_is_refused_before_decoding():
    with pytest.raises(DataError, match="exceeds"):
        parse_group(b"a,b,y\n" + b"1,2,0\n" * 100, CLS, max_bytes=64)


def test_bad_schemas_and_splits():
    for features, label in [
        ((), "y"),
        (("a", "a"), "y"),
        (("a",), "a"),
        (("a,b",), "y"),
        (("",), "y"),
    ]:
        with pytest.raises(DataError):
            DataSchema(features, label, TaskKind.CLASSIFICATION)
    with pytest.raises(DataError):
        parse_split({}, CLS)
    with pytest.raises(DataError, match="group 1"):
        parse_split({0: b"a,b,y\n1,2,0\n", 1: b"a,b,y\n1,2\n"}, CLS)
    with pytest.raises(DataError):
        split_into_groups(np.zeros((2, 2)), np.zeros(2), CLS, 3)
    with pytest.raises(DataError):
        encode_group(np.array([[1.0, np.nan]]), np.array([0]), CLS)
