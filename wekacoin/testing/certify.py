"""Certificates for blocks built outside consensus (tests and benchmarks): the validators'
real FINAL-step votes, with real sortition credentials and signatures, as BA* would gather
them. Sync checks such a certificate exactly like one from a live network."""

from __future__ import annotations

from collections.abc import Sequence

from wekacoin.chain.state import State
from wekacoin.consensus.messages import FINAL_STEP, Certificate, VoteBody, binary_step, sign_vote
from wekacoin.consensus.verify import is_quorum
from wekacoin.crypto.keys import KeyPair
from wekacoin.sortition import Role, select, sortition_alpha
from wekacoin.types.block import Block


def certify_block(state: State, block: Block, keys: Sequence[KeyPair], *,
                  final: bool = True) -> Certificate:
    """Votes for `block` (which extends `state`) from those of `keys` that sortition seats on
    the committee, until they weigh a quorum: FINAL-step votes, or (`final=False`) votes of
    the first BinaryBA* step, which decide the block TENTATIVE."""
    params = state.params
    round_ = state.height + 1
    step = FINAL_STEP if final else binary_step(1)
    role, tau = (Role.FINAL, params.tau_final) if final else (Role.COMMITTEE, params.tau_step)
    alpha = sortition_alpha(state.tip.seed, role, round_, 0, step)
    votes, weight = [], 0
    for key in sorted(keys, key=lambda k: k.public_key):
        seat = select(key, alpha, state.get_weight(key.public_key), state.tip.total_weight, tau)
        if seat is None:
            continue
        body = VoteBody(
            round_, 0, step, state.get_block_hash(), block.hash, key.public_key, seat.proof
        )
        votes.append(sign_vote(key, state.config.genesis_hash, body))
        weight += seat.subusers
        if is_quorum(params, step, weight):
            return Certificate(round_, 0, step, block.hash, tuple(votes))
    raise ValueError(f"the keys weigh {weight} sub-users: not a quorum")
