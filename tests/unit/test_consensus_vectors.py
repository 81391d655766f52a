"""Encoding vectors for consensus messages: what a vote, a proposal's signed body, a
certificate and a checkpoint look like on the wire, and what is signed.

    python3 -m tests.unit.test_consensus_vectors > tests/vectors/sortition_consensus_messages.json

regenerates the file; the tests check that this code still produces exactly those bytes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from wekacoin.consensus.checkpoint import Checkpoint, OwnProposal, decode_checkpoint
from wekacoin.consensus.messages import (
    FINAL_STEP,
    Certificate,
    ProposalBody,
    UnverifiedVote,
    VoteBody,
    binary_step,
    proposal_signing_message,
    sign_vote,
    vote_signing_message,
)
from wekacoin.crypto import vrf
from wekacoin.crypto.keys import KeyPair, verify_signature
from wekacoin.types.codec import decode, encode, hash_of

PATH = Path(__file__).parents[1] / "vectors" / "sortition_consensus_messages.json"
GENESIS_HASH = bytes(range(32))


def _key(i: int) -> KeyPair:
    return KeyPair.from_seed(hashlib.sha256(b"consensus-vector" + bytes([i])).digest())


def _vote(i: int, step: int, value: bytes) -> UnverifiedVote:
    key = _key(i)
    proof = vrf.prove(key.seed, b"credential-stand-in" + bytes([i, step % 256]))
    body = VoteBody(7, 1, step, bytes([9]) * 32, value, key.public_key, proof)
    return sign_vote(key, GENESIS_HASH, body)


def objects() -> list[tuple[str, object]]:
    value = hashlib.sha256(b"a block").digest()
    votes = tuple(_vote(i, binary_step(1), value) for i in range(3))
    return [
        ("vote", votes[0]),
        ("final-vote", _vote(3, FINAL_STEP, value)),
        ("proposal-body", ProposalBody(7, 1, value)),
        ("certificate", Certificate(7, 1, binary_step(1), value, votes)),
        ("checkpoint", Checkpoint(7, bytes([9]) * 32, 1, 3, 1, value, value, votes[:1],
                                  (OwnProposal(0, value),))),
    ]


def generate() -> dict:
    out = []
    for name, obj in objects():
        entry = {"name": name, "type": type(obj).__name__, "cbor": encode(obj).hex(),
                 "sha256": hash_of(obj).hex()}
        if isinstance(obj, UnverifiedVote):
            entry["signing_message"] = vote_signing_message(GENESIS_HASH, obj.body).hex()
        if isinstance(obj, ProposalBody):
            entry["signing_message"] = proposal_signing_message(GENESIS_HASH, obj).hex()
        out.append(entry)
    return {"genesis_hash": GENESIS_HASH.hex(), "vectors": out}


@pytest.fixture(scope="module")
def vectors():
    assert PATH.exists(), f"{PATH} is missing: regenerate it (see the module docstring)"
    return json.loads(PATH.read_text())


def test_the_committed_vectors_are_what_this_code_encodes(vectors):
    assert generate() == vectors


@pytest.mark.parametrize("name,obj", objects())
def test_each_message_decodes_back_from_its_bytes(name, obj):
    data = encode(obj)
    if isinstance(obj, Checkpoint):
        assert decode_checkpoint(data) == obj
    assert decode(type(obj), data) == obj
    if isinstance(obj, UnverifiedVote):
        b = obj.body
        assert verify_signature(b.voter, vote_signing_message(GENESIS_HASH, b), obj.signature)


if __name__ == "__main__":
    print(json.dumps(generate(), indent=1))
