"""The consensus checkpoint: what a node must remember across a crash so that it never
votes twice, differently, in one step (persist before vote), nor proposes two blocks."""

from __future__ import annotations

from dataclasses import dataclass

from wekacoin.consensus.messages import Period, UnverifiedVote
from wekacoin.types.codec import decode_trusted, encode
from wekacoin.types.primitives import Hash, Round, Step


@dataclass(frozen=True, slots=True)
class OwnProposal:
    period: Period
    block_hash: Hash


@dataclass(frozen=True, slots=True)
class Checkpoint:
    round: Round
    prev_hash: Hash
    """The tip the round extends: a checkpoint of another tip is stale."""
    period: Period
    phase: int
    binary_step: Step
    block_value: Hash | None
    """BinaryBA*'s starting value (Reduction's output)."""
    value: Hash | None
    """BinaryBA*'s current value r."""
    votes: tuple[UnverifiedVote, ...]
    """Every vote this node signed in the round."""
    proposals: tuple[OwnProposal, ...]


def encode_checkpoint(checkpoint: Checkpoint) -> bytes:
    return encode(checkpoint)


def decode_checkpoint(data: bytes) -> Checkpoint:
    """The node's own checkpoint; a DecodeError means the store is damaged, and the node
    must not vote on (it could contradict what it said before)."""
    return decode_trusted(Checkpoint, data)
