"""BA* as a pure state machine: `step(player, event) -> (player, actions)`.

One `Player` agrees, round after round, on the next block with the rest of the network, for
all the validator keys its node holds (as go-algorand's pseudonode does). It never reads a
clock, a socket or a disk: events bring facts and `now`, actions ask the driver to act (see
`events.py`, `actions.py`). The flow of a period of a round (Gilad et al. SOSP'17, Alg. 3-8):

    PROPOSE        wait lambda_priority + lambda_stepvar for proposals, then vote the best
                   (lowest priority) acceptable one; if none came, wait up to lambda_block
                   for one, else vote the empty block
    REDUCTION_ONE  count; a quorum passes its value on, a timeout (lambda_block +
                   lambda_step) passes the empty block on
    REDUCTION_TWO  count; its quorum, or the empty block, starts BinaryBA*
    BINARY         steps of three kinds (messages.py) with the common coin
    FINALIZING     decided at BinaryBA* step 1: count final votes for lambda_step
    AWAIT_BLOCK    decided a block we do not have: fetch it
    COMMITTED      waiting for the driver to apply it (LedgerAdvanced)

Departures from the paper, each for liveness or for a node that falls behind:
- A quorum in a terminating step (a certificate) decides the round when it arrives for
  the step being counted or a later one, so a node that fell behind jumps ahead; a final
  quorum makes the round FINAL at once. (A quorum completing in a step already left does
  not count, as in the paper.)
- After MAXSTEPS BinaryBA* steps without agreement the node does not hang: it starts the
  next period (new credentials, new proposals) of the same round. A node that decided in
  an earlier period never votes in a later one, which keeps FINAL safe (see DESIGN notes
  in the report); TENTATIVE blocks are settled by the next FINAL block.
- A node that sees the network two rounds ahead, or votes extending another block, asks
  its driver to sync certified blocks (the driver prefers FINAL, then longer, chains and
  never drops a FINAL block).

Every vote goes through `_cast`, which signs at most one value per (period, step) for the
whole round, remembers it in the checkpoint, and asks for `Persist` before the broadcast.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Callable, Sequence

from wekacoin.consensus.actions import (
    Action, AssembleBlock, Broadcast, Commit, Evaluate, FetchBlock, Persist, RequestSync,
    SetDeadline,
)
from wekacoin.consensus.checkpoint import (
    Checkpoint, OwnProposal, decode_checkpoint, encode_checkpoint,
)
from wekacoin.consensus.events import (
    BlockAssembled, BlockReceived, DeadlineReached, Event, EvaluationFinished, LedgerAdvanced,
    ProposalReceived, RankingReceived, Started, VoteReceived,
)
from wekacoin.consensus.messages import (
    FINAL_STEP, REDUCTION_ONE, REDUCTION_TWO, BinaryKind, Certificate, Proposal,
    UnverifiedVote, Vote, VoteBody, binary_index, binary_kind, binary_step, sign_proposal,
    sign_vote,
)
from wekacoin.consensus.rankings import RankingBook
from wekacoin.consensus.tally import StepTally
from wekacoin.consensus.verify import (
    ConsensusError, RoundContext, Verifier, is_quorum, is_terminating, step_committee,
)
from wekacoin.crypto.keys import KeyPair
from wekacoin.evaluation.ranking import RankingError
from wekacoin.sortition import (
    Role, compute_block_seed, compute_priority, select, sortition_alpha,
)
from wekacoin.types.block import Block
from wekacoin.chain.state import State

FUTURE_LIMIT = 50_000
"""Messages of the next round kept while this one finishes."""


class Phase(IntEnum):
    PROPOSE = 0
    REDUCTION_ONE = 1
    REDUCTION_TWO = 2
    BINARY = 3
    FINALIZING = 4
    AWAIT_BLOCK = 5
    COMMITTED = 6


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
        self.own_votes: dict[tuple[int, int], tuple[bytes, tuple[UnverifiedVote, ...]]] = {}
        self.own_proposals: dict[int, bytes] = {}
        self.tallies: dict[tuple[int, int], StepTally] = {}
        self.proposals: dict[bytes, tuple[Block, State]] = {}
        self.best: dict[int, Proposal] = {}
        self._by_proposer: dict[tuple[int, bytes], set[bytes]] = {}
        self._candidates: dict[int, list[Proposal]] = {}
        self.decision: Decision | None = None
        self._sync_asked = False

    # -- the entry point --

    def handle(self, event: Event) -> list[Action]:
        self._actions: list[Action] = []
        self._outbox: list = []
        self._dirty = False
        before = self.deadline
        _HANDLERS[type(event)](self, event)
        out: list[Action] = [Persist(self.checkpoint())] if self._dirty else []
        out += [Broadcast(m) for m in self._outbox]
        out += self._actions
        if self.deadline != before:
            out.append(SetDeadline(self.deadline))
        return out

    @property
    def params(self):
        return self.ctx.params

    # -- rounds and periods --

    def _on_started(self, e: Started) -> None:
        self.ctx = RoundContext(e.state, e.tip_time_ms)
        cp = decode_checkpoint(e.checkpoint) if e.checkpoint is not None else None
        self._start_round(e.now, cp)

    def _on_ledger(self, e: LedgerAdvanced) -> None:
        same_tip = self.ctx is not None and e.state.block_hash == self.ctx.prev_hash
        self.ctx = RoundContext(e.state, e.tip_time_ms)
        if not same_tip:
            self._start_round(e.now)

    def _start_round(self, now: int, cp: Checkpoint | None = None) -> None:
        self._reset_round()
        self.round = self.ctx.round
        self.empty_hash = self.verifier.empty_block(self.ctx)[0].hash
        self.rankings.prune(self.ctx.state)
        for task_id in self.rankings.tasks_to_start(self.ctx.state, list(self.keys.values())):
            self._actions.append(Evaluate(task_id))
        if cp is not None and cp.round == self.round and cp.prev_hash == self.ctx.prev_hash:
            self._restore(cp, now)
        else:
            self._enter_period(0, now)
        future, self._future = self._future, []
        for event in future:
            _HANDLERS[type(event)](self, replace(event, now=now))

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
        if self.period in self.own_proposals:
            return  # proposed before a restart: never a second block for one period
        state = self.ctx.state
        alpha = sortition_alpha(state.tip.seed, Role.PROPOSER, self.round, self.period)
        best = None
        for key in self.keys.values():
            seat = select(key, alpha, state.get_weight(key.public_key), state.tip.total_stake,
                          self.params.tau_proposer)
            if seat is not None:
                priority = compute_priority(seat.output, seat.subusers)
                if best is None or priority < best[0]:
                    best = (priority, key, seat)
        if best is not None:
            _, key, seat = best
            settlement = self.rankings.settlement_for(state, self.verifier, self.ctx.genesis_hash)
            self._actions.append(AssembleBlock(
                self.round, self.period, key.public_key, compute_block_seed(seat.output),
                seat.proof, settlement,
            ))

    # -- proposals --

    def _on_assembled(self, e: BlockAssembled) -> None:
        header = e.block.header
        key = self.keys.get(header.proposer)
        if (key is None or e.period != self.period or header.height != self.round
                or self.phase is not Phase.PROPOSE or self.period in self.own_proposals):
            return
        proposal = sign_proposal(key, self.ctx.genesis_hash, e.period, e.block)
        self.own_proposals[e.period] = e.block.hash
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
        except ConsensusError:
            return
        block_hash = p.block.hash
        self.proposals[block_hash] = (p.block, p.state)
        seen = self._by_proposer.setdefault((p.period, p.proposer), set())
        seen.add(block_hash)
        if self.rankings_agree(p):
            self._candidates.setdefault(p.period, []).append(p)
        self.best[p.period] = self._best_of(p.period)
        if self.phase is Phase.AWAIT_BLOCK and self.decision.value == block_hash:
            self._finish(e.now)
        elif (self.phase is Phase.PROPOSE and self.waiting_block and p.period == self.period
              and self.best.get(self.period) is not None):
            self._vote_reduction_one(self.best[self.period].block.hash, e.now)

    def rankings_agree(self, p: Proposal) -> bool:
        """A voter that evaluated the settled task votes only for its own scores."""
        s = p.block.meta.settlement
        return s is None or self.rankings.agrees(s)

    def _best_of(self, period: int) -> Proposal | None:
        """Lowest priority wins; a proposer that signed two blocks in a period is ignored."""
        honest = [
            p for p in self._candidates.get(period, [])
            if len(self._by_proposer[(period, p.proposer)]) == 1
        ]
        return min(honest, key=lambda p: p.priority, default=None)

    # -- votes --

    def _on_vote(self, e: VoteReceived) -> None:
        b = e.vote.body
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
        except ConsensusError:
            return
        self._count(vote, e.now)

    def _wants(self, b: VoteBody) -> bool:
        """Skip votes that can no longer change anything (and so their verification)."""
        if self.phase is Phase.COMMITTED:
            return False
        if self.decision is not None:
            return b.step == FINAL_STEP and not self.decision.final
        if b.step == FINAL_STEP:
            return True
        if b.period == self.period and b.step in (REDUCTION_ONE, REDUCTION_TWO):
            return self.phase <= Phase.REDUCTION_TWO and (b.step == REDUCTION_TWO or self.phase <= Phase.REDUCTION_ONE)
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
            if is_terminating(b.step, vote.value, self.empty_hash) and self._ahead(b.period, b.step):
                self._decide(vote.value, b.period, b.step, now)
            self._progress(now)

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
        if self.phase is Phase.PROPOSE:
            best = self.best.get(self.period)
            if best is not None:
                self._vote_reduction_one(best.block.hash, now)
            elif not self.waiting_block:
                self.waiting_block = True
                self.deadline = self.phase_start + p.lambda_priority_ms + p.lambda_stepvar_ms + p.lambda_block_ms
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
            self._actions.append(FetchBlock(self.round, self.decision.value))
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
        kind = binary_kind(self.bstep)
        if is_terminating(binary_step(self.bstep), value, self.empty_hash):
            self._decide(value, self.period, binary_step(self.bstep), now)
            return
        self.value = value  # BLOCK step with empty, EMPTY step with a block, or COIN step
        self._next_binary(now)

    def _binary_timeout(self, now: int) -> None:
        kind = binary_kind(self.bstep)
        if kind is BinaryKind.BLOCK:
            self.value = self.block_value
        elif kind is BinaryKind.EMPTY:
            self.value = self.empty_hash
        else:
            tally = self.tallies.get((self.period, binary_step(self.bstep)), StepTally())
            self.value = self.block_value if tally.coin() == 0 else self.empty_hash
        self._next_binary(now)

    def _next_binary(self, now: int) -> None:
        if self.bstep >= self.params.max_steps:
            self._enter_period(self.period + 1, now)  # recovery instead of hanging
            return
        self.bstep += 1
        self._cast(self.period, binary_step(self.bstep), self.value)
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
        if b is not None:
            # Help the others to the same value (Alg. 8), and vote final after step 1.
            for s in range(b, min(b + 4, self.params.max_steps + 4)):
                self._cast(period, binary_step(s), value)
            if b == 1:
                self._cast(period, FINAL_STEP, value)
        final = step == FINAL_STEP or self._quorum(period, FINAL_STEP) == value
        self.decision = Decision(value, period, FINAL_STEP if final else step, final, b or 1)
        if self._block(value) is None:
            self._actions.append(FetchBlock(self.round, value))  # fetch while finalizing
        if final or b != 1:
            self._finish(now)
        else:
            self.phase = Phase.FINALIZING
            self.deadline = now + self.params.lambda_step_ms

    def _block(self, value: bytes) -> tuple[Block, State] | None:
        if value == self.empty_hash:
            return self.verifier.empty_block(self.ctx)
        return self.proposals.get(value)

    def _finish(self, now: int) -> None:
        d = self.decision
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
        if d is None or e.block.hash != d.value or e.block.hash in self.proposals:
            return
        try:
            self.proposals[e.block.hash] = (e.block, self.verifier.block(e.block, self.ctx))
        except ConsensusError:
            return
        if self.phase is Phase.AWAIT_BLOCK:
            self._finish(e.now)

    # -- our own votes --

    def _cast(self, period: int, step: int, value: bytes) -> None:
        """Vote `value` with every key the step's committee selects, at most once per step."""
        if (period, step) in self.own_votes:
            return
        state = self.ctx.state
        role, tau, _ = step_committee(self.params, step)
        alpha = sortition_alpha(state.tip.seed, role, self.round, period, step)
        votes = []
        for key in self.keys.values():
            seat = select(key, alpha, state.get_weight(key.public_key), state.tip.total_stake, tau)
            if seat is None:
                continue
            body = VoteBody(self.round, period, step, self.ctx.prev_hash, value, key.public_key, seat.proof)
            uv = sign_vote(key, self.ctx.genesis_hash, body)
            votes.append(uv)
            self.tallies.setdefault((period, step), StepTally()).add(Vote(uv, seat.subusers, seat.output))
        self.own_votes[(period, step)] = (value, tuple(votes))
        if votes:
            self._dirty = True
            self._outbox.extend(votes)

    def checkpoint(self) -> bytes:
        votes = tuple(v for _, vs in self.own_votes.values() for v in vs)
        proposals = tuple(OwnProposal(p, h) for p, h in sorted(self.own_proposals.items()))
        return encode_checkpoint(Checkpoint(
            self.round, self.ctx.prev_hash, self.period, self._resumable_phase(),
            self.bstep, self.block_value, self.value, votes, proposals,
        ))

    def _resumable_phase(self) -> Phase:
        """The voting phase to resume after a restart (a decision is not persisted: the
        node counts again, and its recorded votes keep it from contradicting itself)."""
        if self.phase <= Phase.BINARY:
            return self.phase
        if self.bstep:
            return Phase.BINARY
        for step, phase in ((REDUCTION_TWO, Phase.REDUCTION_TWO), (REDUCTION_ONE, Phase.REDUCTION_ONE)):
            if (self.period, step) in self.own_votes:
                return phase
        return Phase.PROPOSE

    def _restore(self, cp: Checkpoint, now: int) -> None:
        """Resume the persisted round: same period and step, the same votes (re-sent, since
        a crash may have come between persisting and sending), none contradicting them."""
        self.own_proposals = {p.period: p.block_hash for p in cp.proposals}
        for uv in cp.votes:
            b = uv.body
            value, votes = self.own_votes.get((b.period, b.step), (b.value, ()))
            self.own_votes[(b.period, b.step)] = (value, votes + (uv,))
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
                self._count(self.verifier.vote(uv, self.ctx), now)
            except ConsensusError:
                pass

    # -- rankings --

    def _on_evaluated(self, e: EvaluationFinished) -> None:
        signed = self.rankings.sign_own(
            e.task_id, (e.baseline_outcome, e.baseline_score), e.entries, self.keys,
            self.ctx.genesis_hash,
        )
        self._actions.extend(Broadcast(s) for s in signed)

    def _on_ranking(self, e: RankingReceived) -> None:
        if self.ctx is None:
            return
        try:
            self.verifier.ranking(e.ranking, self.ctx.state, self.ctx.genesis_hash)
        except RankingError:
            return
        self.rankings.add(e.ranking)

    # -- falling behind --

    def _buffer(self, event: Event) -> None:
        if len(self._future) < FUTURE_LIMIT:
            self._future.append(event)

    def _request_sync(self) -> None:
        if not self._sync_asked:
            self._sync_asked = True
            self._actions.append(RequestSync(self.round))


_HANDLERS: dict[type, Callable[[Player, Event], None]] = {
    Started: Player._on_started,
    LedgerAdvanced: Player._on_ledger,
    ProposalReceived: Player._on_proposal,
    VoteReceived: Player._on_vote,
    BlockReceived: Player._on_block,
    BlockAssembled: Player._on_assembled,
    DeadlineReached: Player._on_deadline,
    EvaluationFinished: Player._on_evaluated,
    RankingReceived: Player._on_ranking,
}


def step(player: Player, event: Event) -> tuple[Player, list[Action]]:
    """Feed one event; the actions must be carried out in order (Persist first)."""
    return player, player.handle(event)
