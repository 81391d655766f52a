"""The committed encoding vectors still hold: any change to the wire format is deliberate."""

import json
from pathlib import Path

import pytest

from wekacoin.testing.vectors import json_view, vector_objects
from wekacoin.types.codec import decode, encode, hash_of

VECTORS_FILE = Path(__file__).parents[1] / "vectors" / "encoding.json"
VECTORS = json.loads(VECTORS_FILE.read_text())["vectors"]
OBJECTS = dict(vector_objects())


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector(vector):
    obj = OBJECTS[vector["name"]]
    assert encode(obj).hex() == vector["cbor"]
    assert hash_of(obj).hex() == vector["sha256"]
    assert json_view(obj) == vector["object"]
    assert decode(type(obj), bytes.fromhex(vector["cbor"])) == obj


def test_every_object_has_a_vector():
    assert sorted(OBJECTS) == sorted(v["name"] for v in VECTORS)
