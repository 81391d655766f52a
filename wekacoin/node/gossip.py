"""Topic validators: what this node relays. Each message is checked before it is passed on,
so invalid traffic is not amplified: signatures, sortition credentials, the round window,
the chain rules (for transactions and proposed blocks). Checks go through the consensus
`Verifier`, so the state machine's own check of the same message is a cache hit.

REJECT blames the sender (enough rejections ban it); IGNORE drops honest-but-useless traffic
(late votes, duplicates); messages for the next rounds are delivered unverified, since this
node may simply be behind, and the state machine keeps them until it gets there.
"""

from __future__ import annotations

from typing import Awaitable, Callable

from wekacoin.consensus.messages import UnverifiedProposal, UnverifiedVote
from wekacoin.consensus.player import Player
from wekacoin.consensus.verify import ConsensusError
from wekacoin.errors import WekaError
from wekacoin.mempool.errors import AlreadyKnown, InvalidTransaction
from wekacoin.chain.errors import BadSignature
from wekacoin.net.api import Accept, Ignore, Reject, Topic, Verdict
from wekacoin.node.admission import Admissions
from wekacoin.node.chain import ChainService
from wekacoin.types.codec import DecodeError, decode
from wekacoin.types.ranking import SignedRanking
from wekacoin.types.tx import Tx

ROUNDS_AHEAD = 2  # how far ahead of our round we still deliver (and relay) consensus traffic


class Validators:
    def __init__(self, chain: ChainService, admissions: Admissions, player: Player,
                 clock: Callable[[], int]) -> None:
        self.chain = chain
        self.admissions = admissions
        self.player = player
        self.clock = clock

    def for_topic(self, topic: Topic) -> Callable[[bytes], Verdict | Awaitable[Verdict]]:
        return {
            Topic.TX: self.tx, Topic.VOTE: self.vote, Topic.PROPOSAL: self.proposal,
            Topic.RANKING: self.ranking,
        }[topic]

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

    def _round_verdict(self, round_: int, prev_hash: bytes, check: Callable[[], object]) -> Verdict:
        ctx = self.player.ctx
        if ctx is None or round_ < ctx.round or round_ > ctx.round + ROUNDS_AHEAD:
            return Ignore
        if round_ > ctx.round or prev_hash != ctx.prev_hash:
            return Accept  # we may be behind, or on another tip: the state machine decides
        try:
            check()
        except ConsensusError:
            return Reject
        return Accept

    def vote(self, data: bytes) -> Verdict:
        try:
            uv = decode(UnverifiedVote, data)
        except DecodeError:
            return Reject
        return self._round_verdict(uv.body.round, uv.body.prev_hash,
                                   lambda: self.player.verifier.vote(uv, self.player.ctx))

    def proposal(self, data: bytes) -> Verdict:
        try:
            up = decode(UnverifiedProposal, data)
        except DecodeError:
            return Reject
        header = up.block.header
        return self._round_verdict(header.height, header.prev_hash,
                                   lambda: self.player.verifier.proposal(up, self.player.ctx))

    def ranking(self, data: bytes) -> Verdict:
        try:
            signed = decode(SignedRanking, data)
        except DecodeError:
            return Reject
        state = self.chain.state
        task = state.get_task(signed.ranking.task_id)
        if task is None or signed.ranking.task_id not in state.tip.open_tasks:
            return Ignore
        try:
            self.player.verifier.ranking(signed, state, state.config.genesis_hash)
        except WekaError:
            return Reject
        return Accept
