"""BA* as a pure state machine: `step(player, event) -> (player, actions)`.

One `Player` agrees, round after round, on the next block for all the validator keys its
node holds (as go-algorand's pseudonode does). It never reads a clock, a socket or a disk:
events bring facts and `now`, actions ask the driver to act. The phases of a period of a
round (Gilad et al. SOSP'17, Alg. 3-8; the package docstring lists where we depart):

    PROPOSE        wait lambda_priority + lambda_stepvar for proposals, then vote the best
                   (lowest priority) votable one; if none came, wait up to lambda_block
                   for one, else vote the empty block
    REDUCTION_ONE  a quorum passes its value on; a timeout (lambda_block + lambda_step)
                   passes the empty block on
    REDUCTION_TWO  its quorum, or on timeout the empty block, starts BinaryBA*
    BINARY         steps of three kinds (messages.py), the common coin on COIN timeouts
    FINALIZING     decided at BinaryBA* step 1: count final votes for lambda_step
    AWAIT_BLOCK    decided a block we do not have: fetch it
    COMMITTED      waiting for the driver to apply it (LedgerAdvanced)

Every vote goes through the `Ballot` (ballot.py), which signs at most one value per (period,
step) for the whole round and is what the checkpoint records; `handle` puts `Persist` before
the broadcasts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum
from typing import Callable, Sequence, assert_never

from wekacoin.chain.errors import InvalidRanking
from wekacoin.chain.state import State
from wekacoin.consensus.actions import (
    Action,
    AssembleBlock,
    Broadcast,
    Commit,
    Evaluate,
    FetchBlock,
    Persist,
    Refuse,
    RequestSync,
    SetDeadline,
)
from wekacoin.consensus.ballot import Ballot, select_proposer
from wekacoin.consensus.checkpoint import Checkpoint, Phase, capture, decode_checkpoint
from wekacoin.consensus.events import (
    BlockAssembled,
    BlockReceived,
    DeadlineReached,
    EvaluationFinished,
    Event,
    LedgerAdvanced,
    ProposalReceived,
    RankingReceived,
    Started,
    VoteReceived,
)
from wekacoin.consensus.messages import (
    FINAL_STEP,
    REDUCTION_ONE,
    REDUCTION_TWO,
    BinaryKind,
    Certificate,
    UnverifiedProposal,
    UnverifiedVote,
    Vote,
    VoteBody,
    binary_index,
    binary_kind,
    binary_step,
    sign_proposal,
)
from wekacoin.consensus.proposals import ProposalBook
from wekacoin.consensus.rankings import RankingBook
from wekacoin.consensus.tally import StepTally
from wekacoin.consensus.verify import (
    ConsensusError,
    RoundContext,
    Verifier,
    check_vote_signature,
    is_quorum,
    is_terminating,
)
from wekacoin.crypto.keys import KeyPair
from wekacoin.sortition import compute_block_seed
from wekacoin.types.block import Block
from wekacoin.types.genesis import Params
from wekacoin.types.ranking import SignedRanking

FUTURE_LIMIT = 50_000
"""Messages of the next round kept while this one finishes."""
ROUNDS_AHEAD = 2
"""How far ahead of our round gossip still delivers (and relays) consensus traffic."""


class Screen(Enum):
    """What gossip should do with a message before relaying it (`Player.screen_*`)."""

    ACCEPT = "accept"
    IGNORE = "ignore"
    """Useless but not wrong (late, or for a tip we are not on): dropped, nobody blamed."""
    REJECT = "reject"
    """No honest node sends it: dropped, and the sender blamed."""


@dataclass(frozen=True, slots=True)
class Screening:
    verdict: Screen
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Status:
    """Where the player is, for the daemon's status and metrics."""

    round: int
    period: int
    step: int


@dataclass(frozen=True, slots=True)
class Decision:
    value: bytes
    period: int
    step: int
    """The step whose quorum is the certificate (FINAL_STEP once final votes made it FINAL)."""
    final: bool
    binary: int
    """The BinaryBA* step b that decided (1 when a final quorum came first)."""


class Player:
    def __init__(self, keys: Sequence[KeyPair], verifier: Verifier | None = None) -> None:
        self.keys = {k.public_key: k for k in keys}
        self.verifier = verifier or Verifier()
        self.ctx: RoundContext | None = None
        self.rankings = RankingBook()
        self.round = 0
        self.deadline: int | None = None
        self._future: list[Event] = []
        self._fresh_rankings: list[SignedRanking] = []
        self._decided: tuple[RoundContext, Ballot, Decision] | None = None
        """The last round this node decided, to help nodes that missed its quorum."""
        self._reset_round()

    def _reset_round(self) -> None:
        self.period = 0
        self.phase = Phase.PROPOSE
        self.phase_start = 0
        self.waiting_block = False
        self.bstep = 0
        self.block_value: bytes | None = None
        self.value: bytes | None = None
        self.empty_hash = b""
        self.ballot = Ballot()
        self.tallies: dict[tuple[int, int], StepTally] = {}
        self.proposals = ProposalBook()
        self.decision: Decision | None = None
        self._fresh_blocks: list[Block] = []
        """Proposed blocks received since the last Persist."""
        self._sync_asked = False
        self._furthest = (0, 0)
        """The latest (period, step) where more than a third of a committee has voted."""

    # -- the entry point --

    def handle(self, event: Event) -> list[Action]:
        self._actions: list[Action] = []
        self._outbox: list[UnverifiedVote | UnverifiedProposal | SignedRanking] = []
        self._dirty = False
        before = self.deadline
        self._dispatch(event)
        out: list[Action] = []
        if self._dirty or self._fresh_rankings:
            out.append(Persist(self.checkpoint(), tuple(self._fresh_blocks),
                               tuple(self._fresh_rankings)))
            self._fresh_blocks, self._fresh_rankings = [], []
        out += [Broadcast(m) for m in self._outbox]
        out += self._actions
        if self.deadline != before:
            out.append(SetDeadline(self.deadline))
        return out

    def _dispatch(self, event: Event) -> None:
        match event:
            case Started() as e:
                self._on_started(e)
            case LedgerAdvanced() as e:
                self._on_ledger(e)
            case ProposalReceived() as e:
                self._on_proposal(e)
            case VoteReceived() as e:
                self._on_vote(e)
            case BlockReceived() as e:
                self._on_block(e)
            case BlockAssembled() as e:
                self._on_assembled(e)
            case DeadlineReached() as e:
                self._on_deadline(e)
            case EvaluationFinished() as e:
                self._on_evaluated(e)
            case RankingReceived() as e:
                self._on_ranking(e)
            case unknown:  # a new Event without a handler fails type checking here
                assert_never(unknown)

    @property
    def _ctx(self) -> RoundContext:
        """The current round's context, which every player has from `Started` on (the
        events that may come before it check `ctx` themselves)."""
        assert self.ctx is not None, "no round before the player has started"
        return self.ctx

    @property
    def params(self) -> Params:
        return self._ctx.params

    def status(self) -> Status:
        return Status(self.round, self.period, self.bstep)

    # -- what gossip relays: narrow questions, answered from the current round --

    def screen_vote(self, uv: UnverifiedVote) -> Screening:
        return self._screen(uv.body.round, uv.body.prev_hash,
                            lambda ctx: self.verifier.vote(uv, ctx),
                            lambda ctx: check_vote_signature(uv, ctx.genesis_hash))

    def screen_proposal(self, up: UnverifiedProposal) -> Screening:
        """A proposal of this round is ranked by its credential first (cheap); one that a
        better proposal of its period already outranks is ignored, neither applied nor
        relayed (Algorand relays only the best proposal it has seen), unless it is the block
        this player decided and awaits. The same priority passes: a proposer's second block
        must reach everyone, so that all see the equivocation."""
        header = up.block.header

        def check(ctx: RoundContext) -> str | None:
            priority = self.verifier.proposal_priority(up, ctx)
            best = self.proposals.best(up.period)
            awaited = self.phase is Phase.AWAIT_BLOCK and self.decision is not None \
                and self.decision.value == up.block.hash
            if best is not None and best.priority < priority and not awaited:
                return "outranked by a better proposal of its period"
            self.verifier.proposal(up, ctx)
            return None

        return self._screen(header.height, header.prev_hash, check)

    def _screen(
        self, round_: int, prev_hash: bytes, check: Callable[[RoundContext], object],
        ahead: Callable[[RoundContext], object] | None = None,
    ) -> Screening:
        """Messages of this round on our tip are verified; those of the next rounds (we may
        be behind) or of another tip (we may be on a fork) get only the `ahead` check (a
        vote's signature: a forged one costs its sender), and the state machine decides the
        rest when it gets there. A check that returns a string ignores the message with
        that reason (not relayed, no fault of the sender)."""
        ctx = self.ctx
        if ctx is None or round_ < ctx.round:
            return Screening(Screen.IGNORE, "a past round")
        if round_ > ctx.round + ROUNDS_AHEAD:
            return Screening(Screen.IGNORE, f"more than {ROUNDS_AHEAD} rounds ahead")
        if round_ > ctx.round or prev_hash != ctx.prev_hash:
            check = ahead or (lambda _: None)
        try:
            ignored = check(ctx)
        except ConsensusError as e:
            return Screening(Screen.REJECT, str(e))
        if isinstance(ignored, str):
            return Screening(Screen.IGNORE, ignored)
        return Screening(Screen.ACCEPT)

    # -- rounds and periods --

    def _on_started(self, e: Started) -> None:
        self.ctx = RoundContext(e.state, e.tip_time_ms)
        cp = decode_checkpoint(e.checkpoint) if e.checkpoint is not None else None
        self.rankings.restore(e.own_rankings)
        self._start_round(e.now, cp)

    def _on_ledger(self, e: LedgerAdvanced) -> None:
        same_tip = self.ctx is not None and e.state.block_hash == self.ctx.prev_hash
        self.ctx = RoundContext(e.state, e.tip_time_ms)
        if not same_tip:
            self._start_round(e.now)

    def _start_round(self, now: int, cp: Checkpoint | None = None) -> None:
        self._reset_round()
        ctx = self._ctx
        self.round = ctx.round
        self.empty_hash = self.verifier.empty_block(ctx)[0].hash
        self.rankings.prune(ctx.state)
        for task_id in self.rankings.tasks_to_start(ctx.state, list(self.keys.values())):
            self._actions.append(Evaluate(task_id))
        self._outbox.extend(self.rankings.due(ctx.state, self.round))
        if cp is not None and cp.round == self.round and cp.prev_hash == ctx.prev_hash:
            self._restore(cp, now)
        else:
            self._enter_period(0, now)
        future, self._future = self._future, []
        for event in future:
            self._dispatch(replace(event, now=now))

    def _enter_period(self, period: int, now: int) -> None:
        self.period = period
        self.phase = Phase.PROPOSE
        self.phase_start = now
        self.waiting_block = False
        self.bstep = 0
        self.block_value = self.value = None
        p = self.params
        self.deadline = now + p.lambda_priority_ms + p.lambda_stepvar_ms
        self._propose()

    def _propose(self) -> None:
        if self.period in self.ballot.proposals:
            return  # proposed before a restart: never a second block for one period
        chosen = select_proposer(self._ctx, list(self.keys.values()), self.period)
        if chosen is not None:
            key, seat = chosen
            self._actions.append(AssembleBlock(
                self.round, self.period, key.public_key, compute_block_seed(seat.output),
                seat.proof, self.rankings.unrecorded(self._ctx.state),
            ))

    # -- proposals --

    def _on_assembled(self, e: BlockAssembled) -> None:
        header = e.block.header
        key = None if header.proposer is None else self.keys.get(header.proposer)
        if (key is None or e.period != self.period or header.height != self.round
                or self.phase is not Phase.PROPOSE or self.period in self.ballot.proposals):
            return
        proposal = sign_proposal(key, self._ctx.genesis_hash, e.period, e.block)
        self.ballot.proposals[e.period] = e.block.hash
        self._dirty = True
        self._outbox.append(proposal)
        self._on_proposal(ProposalReceived(proposal, e.now))

    def _on_proposal(self, e: ProposalReceived) -> None:
        height = e.proposal.block.header.height
        if self.ctx is None or height != self.round:
            if self.ctx is not None and height == self.round + 1:
                self._buffer(e)
            return
        try:
            p = self.verifier.proposal(e.proposal, self.ctx)
        except ConsensusError as err:
            self._refuse(f"proposal: {err}", e.origin)
            return
        if p.block.hash not in self.proposals.blocks:
            self._fresh_blocks.append(p.block)
        self.proposals.add(p)
        if self.phase is Phase.AWAIT_BLOCK:
            d = self.decision
            assert d is not None, "a player awaits the block it decided"
            if d.value == p.block.hash:
                self._finish(e.now)
        elif self.phase is Phase.PROPOSE and self.waiting_block and p.period == self.period:
            best = self.proposals.best(self.period)
            if best is not None:
                self._vote_reduction_one(best.block.hash, e.now)

    # -- votes --

    def _on_vote(self, e: VoteReceived) -> None:
        b = e.vote.body
        if self._decided is not None:
            self._help(self._decided, b)
        if self.ctx is None or b.round != self.round:
            if self.ctx is not None and b.round == self.round + 1:
                self._buffer(e)
            elif self.ctx is not None and b.round > self.round + 1:
                self._request_sync()
            return
        if b.prev_hash != self.ctx.prev_hash:
            self._request_sync()  # others extend another block: we may be on a fork
            return
        if not self._wants(b):
            return
        try:
            vote = self.verifier.vote(e.vote, self.ctx)
        except ConsensusError as err:
            self._refuse(f"vote: {err}", e.origin)
            return
        self._count(vote, e.now)

    def _help(self, decided: tuple[RoundContext, Ballot, Decision], b: VoteBody) -> None:
        """Alg. 8 has a node that decides at step b vote its value in steps b..b+3 too, for
        the nodes that missed the quorum. We vote there when one of them shows up (a vote
        in one of those steps of the round we decided, the current or the previous one):
        the same help, and nothing to pay in the common case where nobody is late. The
        value is the decided block, so it can never contradict an earlier vote, even after
        a restart."""
        ctx, ballot, d = decided
        s = binary_index(b.step)
        if (s is None or b.round != ctx.round or b.prev_hash != ctx.prev_hash
                or b.period != d.period or not d.binary <= s <= d.binary + 3
                or ballot.voted(d.period, b.step)):
            return
        votes = ballot.cast(ctx, list(self.keys.values()), d.period, b.step, d.value)
        self._outbox.extend(v.unverified for v in votes)
        self._dirty = self._dirty or (bool(votes) and ballot is self.ballot)

    def _wants(self, b: VoteBody) -> bool:
        """Skip votes that can no longer change anything (and so their verification)."""
        if self.phase is Phase.COMMITTED:
            return False
        if self.decision is not None:
            return b.step == FINAL_STEP and not self.decision.final
        if b.period > self.period + 2:
            return False  # bounds the work a Byzantine voter can ask for in far periods
        if b.step == FINAL_STEP:
            return True
        if b.period == self.period and b.step in (REDUCTION_ONE, REDUCTION_TWO):
            return self.phase <= Phase.REDUCTION_TWO and (
                b.step == REDUCTION_TWO or self.phase <= Phase.REDUCTION_ONE
            )
        return self._ahead(b.period, b.step)

    def _ahead(self, period: int, step: int) -> bool:
        """Whether (period, step) is the step being counted or a later one. Like Alg. 5,
        which counts only the current step, a quorum that completes in a step the node has
        left decides nothing: late votes must not overturn what the node did since (the
        others may have decided otherwise meanwhile)."""
        if step == FINAL_STEP or period != self.period:
            return step == FINAL_STEP or period > self.period
        b = binary_index(step)
        current = self.bstep if self.phase is Phase.BINARY else 0
        return b is None or b >= current

    def _count(self, vote: Vote, now: int) -> None:
        b = vote.body
        tally = self.tallies.setdefault((b.period, b.step), StepTally())
        if not tally.add(vote):
            return
        if is_quorum(self.params, b.step, tally.weight(vote.value)):
            terminating = is_terminating(b.step, vote.value, self.empty_hash)
            if terminating and self._ahead(b.period, b.step):
                self._decide(vote.value, b.period, b.step, now)
            self._progress(now)
        if tally.total * 3 > self.params.tau_step and b.step != FINAL_STEP:
            self._furthest = max(self._furthest, (b.period, b.step))

    def _fast_forward(self, now: int) -> bool:
        """At a timeout: if more than a third of a committee (more than Byzantine stake can
        muster) voted in a later period, or two or more BinaryBA* steps ahead, the network
        is ahead (we started the round late, or a partition left us behind). Jump there as
        if every timer up to it had fired without a quorum, which is a legal run when
        messages are delayed, so no safety argument changes: skipped steps get no vote
        from us, a skipped Reduction gives the empty block, and the value we vote is the
        timeout rule of the step before. (Only at timeouts: a node just behind, which sees
        the votes deciders cast in the next steps, gets its quorum before its timer.)"""
        period, step = self._furthest
        b = binary_index(step)
        if period < self.period or period == self.period and (
                b is None or b < (self.bstep if self.phase is Phase.BINARY else 0) + 2):
            return False
        if period > self.period:
            self.period, self.bstep, self.waiting_block, self.block_value = period, 0, False, None
        if self.phase is not Phase.BINARY or self.block_value is None:
            self.block_value = self.value = self.empty_hash  # Reduction gave nothing
        if b is None:  # a Reduction step of a later period
            if step == REDUCTION_ONE:
                best = self.proposals.best(period)
                self._vote_reduction_one(best.block.hash if best else self.empty_hash, now)
            else:
                self._vote_reduction_two(self.empty_hash, now)
            return True
        self.phase = Phase.BINARY
        if b > 1:
            self.bstep = b - 1
            self._timeout_value()
        self.bstep = b
        value = self.value
        assert value is not None, "set above, or by the BinaryBA* step the node is in"
        self._cast(period, step, value)
        self.deadline = now + self.params.lambda_step_ms
        return True

    def _quorum(self, period: int, step: int) -> bytes | None:
        tally = self.tallies.get((period, step))
        if tally is None:
            return None
        value, weight = tally.leader()
        return value if is_quorum(self.params, step, weight) else None

    def _progress(self, now: int) -> None:
        """Move on while the step being counted already has a quorum."""
        while True:
            if self.phase is Phase.REDUCTION_ONE:
                value = self._quorum(self.period, REDUCTION_ONE)
                if value is None:
                    return
                self._vote_reduction_two(value, now)
            elif self.phase is Phase.REDUCTION_TWO:
                value = self._quorum(self.period, REDUCTION_TWO)
                if value is None:
                    return
                self._begin_binary(value, now)
            elif self.phase is Phase.BINARY:
                value = self._quorum(self.period, binary_step(self.bstep))
                if value is None:
                    return
                self._binary_quorum(value, now)
            else:
                return

    # -- the steps --

    def _on_deadline(self, e: DeadlineReached) -> None:
        if self.deadline is None or e.now < self.deadline:
            return
        self._sync_asked = False  # ask again, at most once per timeout, while behind
        now, p = e.now, self.params
        if self.phase <= Phase.BINARY and self._fast_forward(now):
            pass
        elif self.phase is Phase.PROPOSE:
            best = self.proposals.best(self.period)
            if best is not None:
                self._vote_reduction_one(best.block.hash, now)
            elif not self.waiting_block:
                self.waiting_block = True
                wait = p.lambda_priority_ms + p.lambda_stepvar_ms + p.lambda_block_ms
                self.deadline = self.phase_start + wait
            else:
                self._vote_reduction_one(self.empty_hash, now)
        elif self.phase is Phase.REDUCTION_ONE:
            self._vote_reduction_two(self.empty_hash, now)
        elif self.phase is Phase.REDUCTION_TWO:
            self._begin_binary(self.empty_hash, now)
        elif self.phase is Phase.BINARY:
            if self._future:
                self._request_sync()
            self._binary_timeout(now)
        elif self.phase is Phase.FINALIZING:
            self._finish(now)
        elif self.phase is Phase.AWAIT_BLOCK:
            d = self.decision
            assert d is not None, "a player awaits the block it decided"
            self._actions.append(FetchBlock(self.round, d.value))
            self.deadline = now + p.lambda_step_ms
        self._progress(now)

    def _vote_reduction_one(self, value: bytes, now: int) -> None:
        self.phase = Phase.REDUCTION_ONE
        self._cast(self.period, REDUCTION_ONE, value)
        self.deadline = now + self.params.lambda_block_ms + self.params.lambda_step_ms
        self._progress(now)

    def _vote_reduction_two(self, value: bytes, now: int) -> None:
        self.phase = Phase.REDUCTION_TWO
        self._cast(self.period, REDUCTION_TWO, value)
        self.deadline = now + self.params.lambda_step_ms

    def _begin_binary(self, value: bytes, now: int) -> None:
        self.phase = Phase.BINARY
        self.block_value = self.value = value
        self.bstep = 1
        self._cast(self.period, binary_step(1), value)
        self.deadline = now + self.params.lambda_step_ms

    def _binary_quorum(self, value: bytes, now: int) -> None:
        if is_terminating(binary_step(self.bstep), value, self.empty_hash):
            self._decide(value, self.period, binary_step(self.bstep), now)
            return
        self.value = value  # BLOCK step with empty, EMPTY step with a block, or COIN step
        self._next_binary(now)

    def _binary_timeout(self, now: int) -> None:
        self._timeout_value()
        self._next_binary(now)

    def _timeout_value(self) -> None:
        """Alg. 8 when step b ends without a quorum: keep the block, take the empty block,
        or flip the common coin between them."""
        kind = binary_kind(self.bstep)
        if kind is BinaryKind.BLOCK:
            self.value = self.block_value
        elif kind is BinaryKind.EMPTY:
            self.value = self.empty_hash
        else:
            tally = self.tallies.get((self.period, binary_step(self.bstep)), StepTally())
            self.value = self.block_value if tally.coin() == 0 else self.empty_hash

    def _next_binary(self, now: int) -> None:
        if self.bstep >= self.params.max_steps:
            self._enter_period(self.period + 1, now)  # recovery instead of hanging
            return
        self.bstep += 1
        value = self.value
        assert value is not None, "BinaryBA* starts from Reduction's value"
        self._cast(self.period, binary_step(self.bstep), value)
        self.deadline = now + self.params.lambda_step_ms

    # -- deciding and committing --

    def _decide(self, value: bytes, period: int, step: int, now: int) -> None:
        d = self.decision
        if d is not None:
            if step == FINAL_STEP and value == d.value and not d.final:
                self.decision = replace(d, final=True, step=step, period=period)
                if self.phase is Phase.FINALIZING:
                    self._finish(now)
            return
        b = binary_index(step)
        if b == 1:
            self._cast(period, FINAL_STEP, value)
        final = step == FINAL_STEP or self._quorum(period, FINAL_STEP) == value
        self.decision = Decision(value, period, FINAL_STEP if final else step, final, b or 1)
        self._decided = (self._ctx, self.ballot, self.decision)
        if self._block(value) is None:
            self._actions.append(FetchBlock(self.round, value))  # fetch while finalizing
        if final or b != 1:
            self._finish(now)
        else:
            self.phase = Phase.FINALIZING
            self.deadline = now + self.params.lambda_step_ms

    def _block(self, value: bytes) -> tuple[Block, State] | None:
        if value == self.empty_hash:
            return self.verifier.empty_block(self._ctx)
        return self.proposals.blocks.get(value)

    def _finish(self, now: int) -> None:
        d = self.decision
        assert d is not None, "a player finishes the round it decided"
        found = self._block(d.value)
        if found is None:
            if self.phase is not Phase.AWAIT_BLOCK:
                self.phase = Phase.AWAIT_BLOCK
                self.deadline = now + self.params.lambda_step_ms
            return
        block, state = found
        votes = self.tallies[(d.period, d.step)].votes_for(d.value)
        certificate = Certificate(self.round, d.period, d.step, d.value, votes)
        steps = d.period * (self.params.max_steps + 2) + 2 + d.binary + int(d.final)
        self._actions.append(Commit(block, state, certificate, d.final, steps))
        self.phase = Phase.COMMITTED
        self.deadline = None

    def _on_block(self, e: BlockReceived) -> None:
        d = self.decision
        if d is None or e.block.hash != d.value or e.block.hash in self.proposals.blocks:
            return
        try:
            self.proposals.blocks[e.block.hash] = (e.block, self.verifier.block(e.block, self._ctx))
        except ConsensusError:
            return
        if self.phase is Phase.AWAIT_BLOCK:
            self._finish(e.now)

    # -- our own votes --

    def _cast(self, period: int, step: int, value: bytes) -> None:
        """Vote `value` with every selected key, at most once per step (the ballot sees to
        it); the votes count here at once, and leave after the checkpoint is persisted."""
        votes = self.ballot.cast(self._ctx, list(self.keys.values()), period, step, value)
        for vote in votes:
            self.tallies.setdefault((period, step), StepTally()).add(vote)
            self._outbox.append(vote.unverified)
        self._dirty = self._dirty or bool(votes)

    def checkpoint(self) -> bytes:
        return capture(self)

    def _restore(self, cp: Checkpoint, now: int) -> None:
        """Resume the persisted round: same period and step, the same votes (re-sent, since
        a crash may have come between persisting and sending), none contradicting them."""
        self.ballot.proposals = {p.period: p.block_hash for p in cp.proposals}
        for uv in cp.votes:
            self.ballot.record(uv)
            self._outbox.append(uv)
        self.period, self.phase, self.bstep = cp.period, Phase(cp.phase), cp.binary_step
        self.block_value, self.value = cp.block_value, cp.value
        self.phase_start = now
        p = self.params
        self.deadline = now + {
            Phase.PROPOSE: p.lambda_priority_ms + p.lambda_stepvar_ms,
            Phase.REDUCTION_ONE: p.lambda_block_ms + p.lambda_step_ms,
        }.get(self.phase, p.lambda_step_ms)
        if self.phase is Phase.PROPOSE:
            self._propose()
        for uv in cp.votes:
            try:
                self._count(self.verifier.vote(uv, self._ctx), now)
            except ConsensusError:
                pass

    # -- rankings --

    def _on_evaluated(self, e: EvaluationFinished) -> None:
        signed = self.rankings.sign_own(
            e.task_id, (e.baseline_outcome, e.baseline_score), e.entries, self.keys,
            self._ctx.genesis_hash, self.round,
        )
        self._fresh_rankings.extend(signed)  # persisted before they leave
        self._outbox.extend(signed)

    def _on_ranking(self, e: RankingReceived) -> None:
        if self.ctx is None:
            return
        try:
            self.verifier.ranking(e.ranking, self.ctx.state, self.ctx.genesis_hash)
        except InvalidRanking as err:
            # Not blamed: an honest evaluator's ranking is refused while our tip is behind
            # its upload end, or after the chain recorded one.
            self._actions.append(Refuse(f"ranking: {err}", e.origin, penalise=False))
            return
        self.rankings.add(e.ranking)

    def screen_ranking(self, signed: SignedRanking, state: State) -> Screening:
        """Rankings are checked against the ledger tip gossip sees (`state`)."""
        task_id = signed.ranking.task_id
        if state.get_task(task_id) is None or task_id not in state.tip.open_tasks:
            return Screening(Screen.IGNORE, "a task that is not open")
        try:
            self.verifier.ranking(signed, state, state.config.genesis_hash)
        except InvalidRanking as e:
            return Screening(Screen.REJECT, str(e))
        return Screening(Screen.ACCEPT)

    def _refuse(self, reason: str, origin: str) -> None:
        self._actions.append(Refuse(reason, origin, penalise=True))

    # -- falling behind --

    def _buffer(self, event: Event) -> None:
        if len(self._future) < FUTURE_LIMIT:
            self._future.append(event)

    def _request_sync(self) -> None:
        if not self._sync_asked:
            self._sync_asked = True
            self._actions.append(RequestSync(self.round))


def step(player: Player, event: Event) -> tuple[Player, list[Action]]:
    """Feed one event; the actions must be carried out in order (Persist first)."""
    return player, player.handle(event)
