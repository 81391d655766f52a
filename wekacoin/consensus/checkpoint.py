"""The consensus checkpoint: what a node must remember across a crash so that it never
votes twice, differently, in one step (persist before vote), nor proposes two blocks."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from wekacoin.consensus.messages import REDUCTION_ONE, REDUCTION_TWO, Period, UnverifiedVote
from wekacoin.types.codec import decode_trusted, encode
from wekacoin.types.primitives import Hash, Round, Step

if TYPE_CHECKING:
    from wekacoin.consensus.player import Player


class Phase(IntEnum):
    """Where a `Player` is in a period (see player.py); the first four are persisted."""

    PROPOSE = 0
    REDUCTION_ONE = 1
    REDUCTION_TWO = 2
    BINARY = 3
    FINALIZING = 4
    AWAIT_BLOCK = 5
    COMMITTED = 6


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


def capture(player: Player) -> bytes:
    """The checkpoint of a player's round, as bytes for the store."""
    assert player.ctx is not None, "a player checkpoints the round it started"
    proposals = tuple(OwnProposal(p, h) for p, h in sorted(player.ballot.proposals.items()))
    return encode_checkpoint(Checkpoint(
        player.round, player.ctx.prev_hash, player.period, _resumable_phase(player),
        player.bstep, player.block_value, player.value, player.ballot.signed(), proposals,
    ))


def _resumable_phase(player: Player) -> Phase:
    """The voting phase to resume after a restart. A decision is not persisted: the node
    counts again, and its recorded votes keep it from contradicting itself."""
    if player.phase <= Phase.BINARY:
        return player.phase
    if player.bstep:
        return Phase.BINARY
    for step, phase in ((REDUCTION_TWO, Phase.REDUCTION_TWO), (REDUCTION_ONE, Phase.REDUCTION_ONE)):
        if player.ballot.voted(player.period, step):
            return phase
    return Phase.PROPOSE
