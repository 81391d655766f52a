"""Topic validators: what this node relays. Each message is checked before it is passed on,
so invalid traffic is not amplified: signatures, sortition credentials, the round window,
the chain rules (for transactions and proposed blocks). Checks go through the consensus
`Verifier`, so the state machine's own check of the same message is a cache hit.

REJECT blames the sender (enough rejections ban it); IGNORE drops honest-but-useless traffic
(late votes, duplicates); messages for the next rounds are delivered unverified, since this
node may simply be behind, and the state machine keeps them until it gets there. The
consensus questions are the player's (`Player.screen_*`): this module reads no player state.
"""

from __future__ import annotations

from typing import Callable

from wekacoin.chain.errors import BadSignature
from wekacoin.consensus.messages import UnverifiedProposal, UnverifiedVote
from wekacoin.consensus.player import Player, Screen, Screening
from wekacoin.errors import WekaError
from wekacoin.mempool.errors import AlreadyKnown, InvalidTransaction
from wekacoin.net.api import Accept, Ignore, Reject, Topic, Validator, Verdict
from wekacoin.node.admission import Admissions
from wekacoin.node.chain import ChainService
from wekacoin.types.codec import DecodeError, decode
from wekacoin.types.ranking import SignedRanking
from wekacoin.types.tx import Tx


class Validators:
    def __init__(self, chain: ChainService, admissions: Admissions, player: Player,
                 clock: Callable[[], int]) -> None:
        self.chain = chain
        self.admissions = admissions
        self.player = player
        self.clock = clock

    def for_topic(self, topic: Topic) -> Validator:
        validators: dict[Topic, Validator] = {
            Topic.TX: self.tx, Topic.VOTE: self.vote, Topic.PROPOSAL: self.proposal,
            Topic.RANKING: self.ranking,
        }
        return validators[topic]

    async def tx(self, data: bytes) -> Verdict:
        """Admit to the mempool: relayed only if this node would include it."""
        try:
            tx = decode(Tx, data)
        except DecodeError:
            return Reject
        try:
            await self.admissions.admit(tx, self.clock())
        except AlreadyKnown:
            return Ignore
        except InvalidTransaction as e:
            return Reject if isinstance(e.error, BadSignature) else Ignore
        except WekaError:
            return Ignore  # pool full, nonce gap, data not yet reachable: fine from an honest peer
        return Accept

    def vote(self, data: bytes) -> Verdict:
        try:
            uv = decode(UnverifiedVote, data)
        except DecodeError:
            return Reject
        return _verdict(self.player.screen_vote(uv))

    def proposal(self, data: bytes) -> Verdict:
        try:
            up = decode(UnverifiedProposal, data)
        except DecodeError:
            return Reject
        return _verdict(self.player.screen_proposal(up))

    def ranking(self, data: bytes) -> Verdict:
        try:
            signed = decode(SignedRanking, data)
        except DecodeError:
            return Reject
        return _verdict(self.player.screen_ranking(signed, self.chain.state))


_VERDICTS = {Screen.ACCEPT: Accept, Screen.IGNORE: Ignore, Screen.REJECT: Reject}


def _verdict(screening: Screening) -> Verdict:
    return _VERDICTS[screening.verdict]
