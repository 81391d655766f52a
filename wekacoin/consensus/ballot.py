"""This node's own voice in a round: its proposer credential and the votes it signs, at
most one value per (period, step) whatever happens, as recorded in the checkpoint."""

from __future__ import annotations

from wekacoin.consensus.messages import UnverifiedVote, Vote, VoteBody, sign_vote
from wekacoin.consensus.verify import RoundContext, step_committee
from wekacoin.crypto.keys import KeyPair
from wekacoin.sortition import Role, Selection, compute_priority, select, sortition_alpha


class Ballot:
    def __init__(self) -> None:
        self.votes: dict[tuple[int, int], tuple[bytes, tuple[UnverifiedVote, ...]]] = {}
        self.proposals: dict[int, bytes] = {}
        """Period -> the block this node proposed in it."""

    def voted(self, period: int, step: int) -> bool:
        return (period, step) in self.votes

    def signed(self) -> tuple[UnverifiedVote, ...]:
        return tuple(v for _, vs in self.votes.values() for v in vs)

    def cast(
        self, ctx: RoundContext, keys: list[KeyPair], period: int, step: int, value: bytes
    ) -> list[Vote]:
        """Sign `value` with every key the step's committee selects, unless this node has
        voted in this step before (then nothing: never a second value)."""
        if (period, step) in self.votes:
            return []
        state = ctx.state
        role, tau, _ = step_committee(ctx.params, step)
        alpha = sortition_alpha(state.tip.seed, role, ctx.round, period, step)
        votes = []
        for key in keys:
            seat = select(key, alpha, state.get_weight(key.public_key), state.tip.total_weight, tau)
            if seat is not None:
                body = VoteBody(
                    ctx.round, period, step, ctx.prev_hash, value, key.public_key, seat.proof
                )
                signed = sign_vote(key, ctx.genesis_hash, body)
                votes.append(Vote(signed, seat.subusers, seat.output))
        self.votes[(period, step)] = (value, tuple(v.unverified for v in votes))
        return votes

    def record(self, vote: UnverifiedVote) -> None:
        """A vote signed before a restart (from the checkpoint)."""
        b = vote.body
        value, votes = self.votes.get((b.period, b.step), (b.value, ()))
        self.votes[(b.period, b.step)] = (value, votes + (vote,))


def select_proposer(
    ctx: RoundContext, keys: list[KeyPair], period: int
) -> tuple[KeyPair, Selection] | None:
    """The key (and its credential) with the best priority among those selected to propose."""
    state = ctx.state
    alpha = sortition_alpha(state.tip.seed, Role.PROPOSER, ctx.round, period)
    best = None
    for key in keys:
        seat = select(key, alpha, state.get_weight(key.public_key), state.tip.total_weight,
                      ctx.params.tau_proposer)
        if seat is not None:
            priority = compute_priority(seat.output, seat.subusers)
            if best is None or priority < best[0]:
                best = (priority, key, seat)
    return None if best is None else best[1:]
