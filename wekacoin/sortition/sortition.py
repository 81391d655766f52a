"""Cryptographic sortition (Algorand, Gilad et al. SOSP'17, Alg. 1-2) over RFC 9381 ECVRF.

A user with validator key pk and weight w (stake bonded under pk, from the tip state, where
stake changes already lag by `stake_lookback` blocks) evaluates

    (beta, proof) = ECVRF(sk, alpha),   alpha = domain || seed || role || round || period || step

and is selected j = compute_subusers(w, W, tau, beta) times. Anyone holding pk, w and W checks
the proof and recomputes j. The roles and what fills their fields:

- PROPOSER  (tau_proposer): seed = tip seed, round = height being decided, period, step 0.
  The same proof is the block's `seed_proof`: the block's seed is H(beta), so the seed of
  round r comes from the VRF of round r's proposer over seed_{r-1}; an empty block takes
  H(seed_{r-1} || r). Nobody can grind it: the VRF has one output per key and input.
- COMMITTEE (tau_step) and FINAL (tau_final): seed = tip seed, round, period, step.
- EVALUATOR (tau_evaluators): seed = the task's `evaluation_seed` (fixed when its uploads
  close), round = the task id, period = step = 0. Membership is checked against the weights
  of the state the settling block extends, like every other role of that round.

A proposal's priority is the lowest H(beta || i) over its sub-users i = 1..j (Alg. 2 and
section 6 of the paper); the lowest wins.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import IntEnum

from wekacoin.crypto import vrf
from wekacoin.crypto.keys import KeyPair
from wekacoin.sortition.binomial import compute_subusers, selection_threshold
from wekacoin.types.genesis import Params
from wekacoin.types.primitives import Hash, VrfProof

SORTITION_DOMAIN = b"wekacoin/sortition/v1"
PRIORITY_DOMAIN = b"wekacoin/priority/v1"
SEED_DOMAIN = b"wekacoin/seed/v1"
EMPTY_SEED_DOMAIN = b"wekacoin/empty-seed/v1"


class Role(IntEnum):
    PROPOSER = 1
    COMMITTEE = 2
    FINAL = 3
    EVALUATOR = 4


def committee_size(params: Params, role: Role) -> int:
    """tau of a role: the expected number of selected sub-users."""
    return {
        Role.PROPOSER: params.tau_proposer,
        Role.COMMITTEE: params.tau_step,
        Role.FINAL: params.tau_final,
        Role.EVALUATOR: params.tau_evaluators,
    }[role]


def sortition_alpha(seed: bytes, role: Role, round: int, period: int = 0, step: int = 0) -> bytes:
    """The VRF input of one sortition."""
    if len(seed) != 32:
        raise ValueError("a sortition seed is 32 bytes")
    return b"".join((
        SORTITION_DOMAIN, seed, bytes((role,)), round.to_bytes(8, "big"),
        period.to_bytes(8, "big"), step.to_bytes(8, "big"),
    ))


@dataclass(frozen=True, slots=True)
class Selection:
    """A user's sortition result that selected it: j >= 1 sub-users."""

    proof: VrfProof
    output: bytes
    """beta, the 64-byte VRF output."""
    subusers: int
    """j: how many sub-users (votes) the user carries."""


def select(
    key: KeyPair, alpha: bytes, weight: int, total: int, tau: int
) -> Selection | None:
    """This user's selection for `alpha`, or None if it is not selected.

    When the user is unlikely to be selected it first computes only the VRF output (about
    half the cost of a proof) and proves only if selected.
    """
    if weight <= 0:
        return None
    threshold = selection_threshold(weight, total, tau)
    if threshold > 2**255:  # selected less often than not: look before proving
        output = vrf.output(key.seed, alpha, key.public_key)
        if int.from_bytes(output[:32], "big") < threshold:
            return None
        proof = vrf.prove(key.seed, alpha)
    else:
        proof = vrf.prove(key.seed, alpha)
        output = vrf.proof_to_hash(proof)
    j = compute_subusers(weight, total, tau, output)
    return Selection(VrfProof(proof), output, j) if j > 0 else None


def verify(
    public_key: bytes, proof: bytes, alpha: bytes, weight: int, total: int, tau: int
) -> Selection | None:
    """The selection a proof shows, or None if the proof is invalid or selects no sub-user."""
    if weight <= 0:
        return None
    output = vrf.verify(public_key, proof, alpha)
    if output is None:
        return None
    j = compute_subusers(weight, total, tau, output)
    return Selection(VrfProof(bytes(proof)), output, j) if j > 0 else None


def compute_priority(output: bytes, subusers: int) -> bytes:
    """The priority of a proposer's credential: min over i in 1..j of H(beta || i)."""
    return min(
        hashlib.sha256(PRIORITY_DOMAIN + output + i.to_bytes(8, "big")).digest()
        for i in range(1, subusers + 1)
    )


def compute_block_seed(proposer_output: bytes) -> Hash:
    """seed_r of a proposed block, from its proposer's VRF output over seed_{r-1}."""
    return Hash(hashlib.sha256(SEED_DOMAIN + proposer_output).digest())


def compute_empty_seed(prev_seed: bytes, round: int) -> Hash:
    """seed_r of an empty block: a hash of the previous seed and the round."""
    return Hash(hashlib.sha256(EMPTY_SEED_DOMAIN + prev_seed + round.to_bytes(8, "big")).digest())
