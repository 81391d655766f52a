"""Verification: the only way from unverified messages to `Vote` and `Proposal`.

Everything is checked against a `RoundContext`, the ledger tip that the round extends: its
seed draws the committees, its weights (stake lagging `stake_lookback` blocks) and total stake
weigh them. The functions are pure; `Verifier` puts caches in front of them, keyed by message
and tip, so that a node (or every node of a simulation sharing one `Verifier`) checks a
message once: an ECVRF verification costs about eight signature verifications. A batch, such
as a certificate's votes, is checked on every core (`verify_votes`, `Verifier.check_votes`).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable

from wekacoin.chain.blocks import apply_block, build_block
from wekacoin.chain.errors import ChainError
from wekacoin.chain.rankings import VerifiedRanking, verify_ranking
from wekacoin.chain.state import State
from wekacoin.consensus.messages import (
    FINAL_STEP,
    BinaryKind,
    Certificate,
    Proposal,
    ProposalBody,
    UnverifiedProposal,
    UnverifiedVote,
    Vote,
    binary_index,
    binary_kind,
    proposal_signing_message,
    vote_signing_message,
)
from wekacoin.crypto.keys import verify_signature
from wekacoin.crypto.parallel import parallel_map
from wekacoin.errors import WekaError
from wekacoin.sortition import (
    Role,
    compute_block_seed,
    compute_empty_seed,
    compute_priority,
    sortition_alpha,
    verify,
)
from wekacoin.types.block import Block, BlockMeta
from wekacoin.types.genesis import Params
from wekacoin.types.primitives import Hash
from wekacoin.types.ranking import SignedRanking


class ConsensusError(WekaError):
    pass


class InvalidVote(ConsensusError):
    pass


class InvalidProposal(ConsensusError):
    pass


class InvalidCertificate(ConsensusError):
    pass


@dataclass(frozen=True, slots=True, eq=False)
class RoundContext:
    """The ledger a round builds on: the tip state and the tip block's time (which an empty
    block repeats, so that every node builds the same empty block)."""

    state: State
    tip_time_ms: int

    @property
    def round(self) -> int:
        return self.state.height + 1

    @property
    def prev_hash(self) -> Hash:
        return self.state.get_block_hash()

    @property
    def params(self) -> Params:
        return self.state.params

    @property
    def genesis_hash(self) -> bytes:
        return self.state.config.genesis_hash


def step_committee(params: Params, step: int) -> tuple[Role, int, int]:
    """(role, tau, threshold in permille) of the committee that votes in `step`."""
    if step == FINAL_STEP:
        return Role.FINAL, params.tau_final, params.final_threshold_permille
    return Role.COMMITTEE, params.tau_step, params.step_threshold_permille


def is_quorum(params: Params, step: int, weight: int) -> bool:
    """More than T * tau sub-users (Alg. 5), in integers."""
    _, tau, permille = step_committee(params, step)
    return weight * 1000 > permille * tau


def check_vote_signature(uv: UnverifiedVote, genesis_hash: bytes) -> None:
    """The one check a vote for a round we have not reached can get: its signature (the
    credential needs that round's seed). InvalidVote if it fails."""
    if not verify_signature(uv.body.voter, vote_signing_message(genesis_hash, uv.body),
                            uv.signature):
        raise InvalidVote("bad signature")


def verify_vote(uv: UnverifiedVote, ctx: RoundContext) -> Vote:
    return _verify_vote_proofs(uv, _vote_draw(uv, ctx), ctx.genesis_hash)


def verify_votes(uvs: Sequence[UnverifiedVote], ctx: RoundContext) -> list[Vote | InvalidVote]:
    """`verify_vote` of each vote, the signatures and credentials checked on every core: each
    entry is the Vote, or the InvalidVote that `verify_vote` raises for it."""
    def proofs(item: tuple[UnverifiedVote, _Draw | InvalidVote]) -> Vote | InvalidVote:
        uv, draw = item
        if isinstance(draw, InvalidVote):
            return draw
        try:
            return _verify_vote_proofs(uv, draw, ctx.genesis_hash)
        except InvalidVote as e:
            return e

    # The ledger is read here, in this thread; the other threads see only bytes and numbers.
    draws: list[_Draw | InvalidVote] = []
    for uv in uvs:
        try:
            draws.append(_vote_draw(uv, ctx))
        except InvalidVote as e:
            draws.append(e)
    return parallel_map(proofs, list(zip(uvs, draws, strict=True)), min_chunk=2)


@dataclass(frozen=True, slots=True)
class _Draw:
    """What the ledger says about a vote: the voter's weight and its committee's lottery."""

    weight: int
    total: int
    tau: int
    alpha: bytes


def _vote_draw(uv: UnverifiedVote, ctx: RoundContext) -> _Draw:
    """The checks of a vote against the ledger, before its proofs."""
    b = uv.body
    params = ctx.params
    if b.round != ctx.round or b.prev_hash != ctx.prev_hash:
        raise InvalidVote(f"vote for round {b.round} on another tip")
    if not (0 < b.step <= 2 + params.max_steps + 3 or b.step == FINAL_STEP):
        raise InvalidVote(f"no step {b.step}")
    weight = ctx.state.get_weight(b.voter)
    if weight == 0:
        raise InvalidVote("the voter has no stake")
    role, tau, _ = step_committee(params, b.step)
    alpha = sortition_alpha(ctx.state.tip.seed, role, b.round, b.period, b.step)
    return _Draw(weight, ctx.state.tip.total_weight, tau, alpha)


def _verify_vote_proofs(uv: UnverifiedVote, draw: _Draw, genesis_hash: bytes) -> Vote:
    """The signature, then the credential: pure, so any thread may run it."""
    b = uv.body
    if not verify_signature(b.voter, vote_signing_message(genesis_hash, b), uv.signature):
        raise InvalidVote("bad signature")
    seat = verify(b.voter, b.credential, draw.alpha, draw.weight, draw.total, draw.tau)
    if seat is None:
        raise InvalidVote("the credential does not select the voter")
    return Vote(uv, seat.subusers, seat.output)


def verify_proposal_credential(up: UnverifiedProposal, ctx: RoundContext) -> bytes:
    """The proposal's priority, after the checks that do not touch its transactions: the
    round, the proposer's signature, its sortition credential and the block's seed. Cheap
    (one signature, one VRF proof), so a node can rank a proposal before it applies it."""
    block, header = up.block, up.block.header
    if header.height != ctx.round or header.prev_hash != ctx.prev_hash:
        raise InvalidProposal(f"block {header.height} does not extend this round's tip")
    if header.proposer is None or block.meta.seed_proof is None:
        raise InvalidProposal("a proposed block names its proposer and carries its credential")
    body = ProposalBody(ctx.round, up.period, block.hash)
    message = proposal_signing_message(ctx.genesis_hash, body)
    if not verify_signature(header.proposer, message, up.signature):
        raise InvalidProposal("bad proposer signature")
    alpha = sortition_alpha(ctx.state.tip.seed, Role.PROPOSER, ctx.round, up.period)
    seat = verify(
        header.proposer, block.meta.seed_proof, alpha, ctx.state.get_weight(header.proposer),
        ctx.state.tip.total_weight, ctx.params.tau_proposer,
    )
    if seat is None:
        raise InvalidProposal("the credential does not select the proposer")
    if header.seed != compute_block_seed(seat.output):
        raise InvalidProposal("the block's seed is not the one its credential gives")
    return compute_priority(seat.output, seat.subusers)


def verify_proposal(up: UnverifiedProposal, ctx: RoundContext,
                    priority: bytes | None = None) -> Proposal:
    """A proposal whose credential (`verify_proposal_credential`, or its result `priority`)
    and whose block (the chain rules) are valid."""
    if priority is None:
        priority = verify_proposal_credential(up, ctx)
    try:
        state = apply_block(ctx.state, up.block)
    except ChainError as e:
        raise InvalidProposal(f"{type(e).__name__}: {e}") from None
    return Proposal(up, state, priority)


def build_empty_block(ctx: RoundContext) -> tuple[Block, State]:
    """The round's empty block: the same bytes on every node with this tip."""
    seed = compute_empty_seed(ctx.state.tip.seed, ctx.round)
    return build_block(
        ctx.state, vtxs=[], seed=seed, proposer=None, meta=BlockMeta(None, ()),
        time_ms=ctx.tip_time_ms,
    )


def is_terminating(step: int, value: bytes, empty_hash: bytes) -> bool:
    """Whether a quorum for `value` in `step` decides the round (Alg. 8's returns, or FINAL)."""
    if step == FINAL_STEP:
        return True
    b = binary_index(step)
    if b is None:
        return False
    kind = binary_kind(b)
    return (kind is BinaryKind.BLOCK and value != empty_hash) or (
        kind is BinaryKind.EMPTY and value == empty_hash
    )


FAILURES_PER_TIP = 10_000
"""Refusals remembered per tip. Anyone can send messages that fail (a valid vote with a
random signature): past this many, failures are checked again rather than kept, so memory
stays bounded whatever a peer sends."""


@dataclass(frozen=True, slots=True)
class _Refusal:
    """A cached failure: its type and message only (an exception object would keep the
    frames of its traceback alive, a few KB per refusal)."""

    kind: type[WekaError]
    message: str

    def error(self) -> WekaError:
        e = self.kind.__new__(self.kind)
        e.args = (self.message,)
        return e


class Verifier:
    """Caches in front of the pure checks, for the last few tips. Shareable between the
    nodes of a simulation; counts the verifications it really performed."""

    def __init__(self, tips: int = 8) -> None:
        self._tips = tips
        self._caches: OrderedDict[bytes, dict[Any, Any]] = OrderedDict()
        self._failures: dict[bytes, int] = {}
        self.counts: dict[str, int] = {
            "vote": 0, "credential": 0, "proposal": 0, "ranking": 0, "block": 0,
        }

    def _cache(self, tip: bytes) -> dict[Any, Any]:
        cache = self._caches.get(tip)
        if cache is None:
            cache = self._caches[tip] = {}
            while len(self._caches) > self._tips:
                old, _ = self._caches.popitem(last=False)
                self._failures.pop(old, None)
        return cache

    def _memo(self, kind: str, tip: bytes, key: Any, compute: Callable[[], Any]) -> Any:
        cache = self._cache(tip)
        result = cache.get((kind, key))
        if result is None:
            self.counts[kind] += 1
            try:
                result = compute()
            except WekaError as e:
                result = self._refusal(tip, e)
                if result is None:
                    raise
            cache[(kind, key)] = result
        if isinstance(result, _Refusal):
            raise result.error()
        return result

    def _refusal(self, tip: bytes, error: WekaError) -> _Refusal | None:
        """The failure to cache, or None past FAILURES_PER_TIP for this tip."""
        failures = self._failures.get(tip, 0)
        if failures >= FAILURES_PER_TIP:
            return None
        self._failures[tip] = failures + 1
        return _Refusal(type(error), str(error))

    def vote(self, uv: UnverifiedVote, ctx: RoundContext) -> Vote:
        return self._memo("vote", ctx.prev_hash, uv, lambda: verify_vote(uv, ctx))

    def check_votes(self, uvs: Sequence[UnverifiedVote], ctx: RoundContext) -> None:
        """Verify at once, on every core, the votes not cached for this tip, and cache each
        outcome, so that `vote` answers them from the cache (a certificate's votes)."""
        cache = self._cache(ctx.prev_hash)
        fresh = list(dict.fromkeys(uv for uv in uvs if ("vote", uv) not in cache))
        for uv, result in zip(fresh, verify_votes(fresh, ctx), strict=True):
            self.counts["vote"] += 1
            if isinstance(result, InvalidVote):
                refusal = self._refusal(ctx.prev_hash, result)
                if refusal is None:
                    continue  # not kept: `vote` checks it again and raises
                cache[("vote", uv)] = refusal
            else:
                cache[("vote", uv)] = result

    def proposal_priority(self, up: UnverifiedProposal, ctx: RoundContext) -> bytes:
        return self._memo("credential", ctx.prev_hash, up,
                          lambda: verify_proposal_credential(up, ctx))

    def proposal(self, up: UnverifiedProposal, ctx: RoundContext) -> Proposal:
        return self._memo("proposal", ctx.prev_hash, up,
                          lambda: verify_proposal(up, ctx, self.proposal_priority(up, ctx)))

    def ranking(self, signed: SignedRanking, state: State, genesis_hash: bytes) -> VerifiedRanking:
        return self._memo(
            "ranking", state.get_block_hash(), signed,
            lambda: verify_ranking(signed, state, genesis_hash),
        )

    def block(self, block: Block, ctx: RoundContext) -> State:
        """The state after a block obtained by hash (a decided value): chain rules only."""
        def apply() -> State:
            try:
                return apply_block(ctx.state, block)
            except ChainError as e:
                raise InvalidProposal(f"{type(e).__name__}: {e}") from None
        return self._memo("block", ctx.prev_hash, block.hash, apply)

    def empty_block(self, ctx: RoundContext) -> tuple[Block, State]:
        return self._memo("block", ctx.prev_hash, "empty", lambda: build_empty_block(ctx))


def verify_certificate(
    cert: Certificate, ctx: RoundContext, verifier: Verifier | None = None
) -> None:
    """Raise InvalidCertificate unless `cert` proves a decision for the round after `ctx`'s
    tip: verified votes of distinct voters for one value in one terminating step, weighing
    more than the step's threshold."""
    verifier = verifier or Verifier()
    if cert.round != ctx.round:
        raise InvalidCertificate(f"a certificate for round {cert.round}, not {ctx.round}")
    empty_hash = verifier.empty_block(ctx)[0].hash
    if not is_terminating(cert.step, cert.value, empty_hash):
        raise InvalidCertificate(f"a quorum in step {cert.step} decides nothing")
    verifier.check_votes(cert.votes, ctx)
    voters = set()
    weight = 0
    for uv in cert.votes:
        b = uv.body
        if (b.period, b.step, b.value) != (cert.period, cert.step, cert.value) or b.voter in voters:
            raise InvalidCertificate("votes of one step for one value, one per voter")
        voters.add(b.voter)
        try:
            weight += verifier.vote(uv, ctx).subusers
        except InvalidVote as e:
            raise InvalidCertificate(f"a vote is invalid: {e}") from None
    if not is_quorum(ctx.params, cert.step, weight):
        raise InvalidCertificate(f"{weight} sub-users are not a quorum")
