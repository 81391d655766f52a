"""Counting the votes of one step: each voter once, equivocators out, the common coin."""

from __future__ import annotations

from wekacoin.consensus.messages import UnverifiedVote, Vote
from wekacoin.sortition import compute_priority
from wekacoin.types.primitives import Hash, PublicKey


class StepTally:
    """Verified votes of one (round, period, step).

    A voter's weight j counts at most once. A voter seen with two different values has
    equivocated: both votes are discarded and later ones from it ignored (a value that
    already reached a quorum with its help stays reached: that decision has been acted on).
    """

    __slots__ = ("votes", "weights", "equivocators", "total")

    def __init__(self) -> None:
        self.votes: dict[PublicKey, Vote] = {}
        self.weights: dict[Hash, int] = {}
        self.equivocators: set[PublicKey] = set()
        self.total = 0
        """Weight of every counted vote, whatever its value."""

    def add(self, vote: Vote) -> bool:
        """Count `vote`; False if it changed nothing (a duplicate or an equivocator's)."""
        voter = vote.voter
        if voter in self.equivocators:
            return False
        seen = self.votes.get(voter)
        if seen is not None:
            if seen.value == vote.value:
                return False
            self.equivocators.add(voter)
            del self.votes[voter]
            self.weights[seen.value] -= seen.subusers
            self.total -= seen.subusers
            return True
        self.votes[voter] = vote
        self.weights[vote.value] = self.weights.get(vote.value, 0) + vote.subusers
        self.total += vote.subusers
        return True

    def weight(self, value: bytes) -> int:
        return self.weights.get(value, 0)

    def leader(self) -> tuple[Hash | None, int]:
        """The value with the most weight (ties: the lowest hash) and its weight."""
        if not self.weights:
            return None, 0
        value = min(self.weights, key=lambda v: (-self.weights[v], v))
        return value, self.weights[value]

    def votes_for(self, value: bytes) -> tuple[UnverifiedVote, ...]:
        """The counted votes for `value`, in voter order (a certificate)."""
        return tuple(
            v.unverified for _, v in sorted(self.votes.items()) if v.value == value
        )

    def coin(self) -> int:
        """The common coin (Alg. 9): the last bit of the least H(vrf output || i) over every
        sub-user i of every counted vote. With no votes, 0."""
        least = min(
            (compute_priority(v.output, v.subusers) for v in self.votes.values()), default=None
        )
        return 0 if least is None else least[-1] & 1
