"""Blocks: `(transactions, previous hash, competition metadata)` as in the paper, plus a
header that commits to all three and to the resulting ledger state."""

from __future__ import annotations

from dataclasses import dataclass

from wekacoin.types.codec import hash_of
from wekacoin.types.primitives import Hash, Height, Millis, PublicKey, VrfProof
from wekacoin.types.ranking import SignedRanking
from wekacoin.types.tx import Tx


@dataclass(frozen=True, slots=True)
class BlockMeta:
    """The paper's c_i: how the block was validated."""

    seed_proof: VrfProof | None
    """The proposer's VRF proof over the previous seed (None in an empty block)."""
    rankings: tuple[SignedRanking, ...]
    """Candidate rankings this block records, sorted by (task id, evaluator). Settlement
    itself is no choice of the proposer: the state transition settles a ready task from the
    rankings earlier blocks recorded (see chain.settlement)."""


@dataclass(frozen=True, slots=True)
class BlockHeader:
    height: Height
    prev_hash: Hash
    time_ms: Millis
    """The proposer's clock; informational, never used by a rule."""
    proposer: PublicKey | None
    """Validator key of the proposer; None for an empty block."""
    seed: Hash
    tx_root: Hash
    meta_hash: Hash
    state_root: Hash


@dataclass(frozen=True, slots=True)
class Block:
    header: BlockHeader
    txs: tuple[Tx, ...]
    meta: BlockMeta

    @property
    def hash(self) -> Hash:
        return block_hash(self.header)

    @property
    def height(self) -> int:
        return self.header.height


def block_hash(header: BlockHeader) -> Hash:
    return hash_of(header)
