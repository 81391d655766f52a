"""What consensus nodes say to each other: votes, proposals, certificates.

Wire records are canonical-codec records (`UnverifiedVote`, `UnverifiedProposal`,
`Certificate`). Trust lives in the types: a `Vote` or a `Proposal` exists only once
`wekacoin.consensus.verify` has checked the signature, the sortition credential, and the round
and step, and only a `Vote` can be counted.

Steps of one period of a round (Algorand BA*, Gilad et al. SOSP'17, Alg. 3-8):

    0                       the proposer's credential (not a vote)
    1, 2                    Reduction, steps one and two
    2 + b, b = 1, 2, ...    BinaryBA* step b; (b - 1) % 3 says which kind:
                              0: a quorum for a block ends the agreement, a timeout keeps it
                              1: a quorum for the empty block ends it, a timeout picks empty
                              2: a timeout flips the common coin
    FINAL_STEP              the final committee (tau_final)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING

from wekacoin.chain.state import State
from wekacoin.crypto.keys import KeyPair
from wekacoin.types.block import Block
from wekacoin.types.codec import encode, unsigned
from wekacoin.types.primitives import Hash, PublicKey, Round, Signature, Step, VrfProof

if TYPE_CHECKING:
    Period = int  # as in wekacoin.types.primitives
else:
    Period = unsigned("Period")
"""A restart of the agreement within one round, after MAXSTEPS binary steps (recovery)."""

VOTE_DOMAIN = b"wekacoin/vote/v1"
PROPOSAL_DOMAIN = b"wekacoin/proposal/v1"

REDUCTION_ONE = 1
REDUCTION_TWO = 2
FINAL_STEP = 2**32 - 1


class BinaryKind(IntEnum):
    BLOCK = 0
    EMPTY = 1
    COIN = 2


def binary_step(b: int) -> int:
    """The step number of BinaryBA* step b (b >= 1)."""
    return 2 + b


def binary_index(step: int) -> int | None:
    """b for a BinaryBA* step, None for the reduction and final steps."""
    return step - 2 if REDUCTION_TWO < step < FINAL_STEP else None


def binary_kind(b: int) -> BinaryKind:
    return BinaryKind((b - 1) % 3)


# -- votes --


@dataclass(frozen=True, slots=True)
class VoteBody:
    round: Round
    period: Period
    step: Step
    prev_hash: Hash
    """The block this round extends: a vote from another fork does not count here."""
    value: Hash
    """The hash of the block voted for (the empty block's hash included)."""
    voter: PublicKey
    credential: VrfProof
    """Sortition proof for (round, period, step) under the voter's validator key."""


@dataclass(frozen=True, slots=True)
class UnverifiedVote:
    body: VoteBody
    signature: Signature


def vote_signing_message(genesis_hash: bytes, body: VoteBody) -> bytes:
    return VOTE_DOMAIN + genesis_hash + encode(body)


def sign_vote(key: KeyPair, genesis_hash: bytes, body: VoteBody) -> UnverifiedVote:
    return UnverifiedVote(body, Signature(key.sign(vote_signing_message(genesis_hash, body))))


@dataclass(frozen=True, slots=True)
class Vote:
    """A verified vote: its signature and credential hold for its round, period and step."""

    unverified: UnverifiedVote
    subusers: int
    """j: the sortition weight this vote carries."""
    output: bytes
    """The VRF output of the credential (the common coin uses it)."""

    @property
    def body(self) -> VoteBody:
        return self.unverified.body

    @property
    def voter(self) -> PublicKey:
        return self.unverified.body.voter

    @property
    def value(self) -> Hash:
        return self.unverified.body.value


# -- proposals --


@dataclass(frozen=True, slots=True)
class ProposalBody:
    round: Round
    period: Period
    block_hash: Hash


@dataclass(frozen=True, slots=True)
class UnverifiedProposal:
    """A block offered for a round. The block's `meta.seed_proof` is the proposer's
    sortition credential; the signature binds block and period to the proposer, so nobody
    can reuse a credential for another block."""

    period: Period
    block: Block
    signature: Signature


def proposal_signing_message(genesis_hash: bytes, body: ProposalBody) -> bytes:
    return PROPOSAL_DOMAIN + genesis_hash + encode(body)


def sign_proposal(
    key: KeyPair, genesis_hash: bytes, period: int, block: Block
) -> UnverifiedProposal:
    body = ProposalBody(block.height, period, block.hash)
    signature = Signature(key.sign(proposal_signing_message(genesis_hash, body)))
    return UnverifiedProposal(period, block, signature)


@dataclass(frozen=True, slots=True, eq=False)
class Proposal:
    """A verified proposal: a valid credential, signature and block, and the ledger state
    the block leads to."""

    unverified: UnverifiedProposal
    state: State
    priority: bytes
    """Lower is better: min over the proposer's sub-users of H(vrf output || i)."""

    @property
    def block(self) -> Block:
        return self.unverified.block

    @property
    def period(self) -> int:
        return self.unverified.period

    @property
    def proposer(self) -> PublicKey:
        proposer = self.unverified.block.header.proposer
        assert proposer is not None, "verify_proposal refuses a block without a proposer"
        return proposer


# -- certificates --


@dataclass(frozen=True, slots=True)
class Certificate:
    """The votes that decided a round: a quorum of one step for one value. With step
    FINAL_STEP the block is FINAL; with a BinaryBA* step it is TENTATIVE. The store keeps
    it as bytes (`encode`), a syncing node checks it with `verify_certificate`."""

    round: Round
    period: Period
    step: Step
    value: Hash
    votes: tuple[UnverifiedVote, ...]

    @property
    def final(self) -> bool:
        return self.step == FINAL_STEP
