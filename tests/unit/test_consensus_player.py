"""BA* driven by hand-made events: no simulator, no network, no clock but the one we pass."""

from __future__ import annotations

import dataclasses

import pytest

from wekacoin.chain.blocks import apply_block
from wekacoin.consensus.actions import (
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
from wekacoin.consensus.assemble import assemble_block
from wekacoin.consensus.events import (
    BlockAssembled,
    BlockReceived,
    DeadlineReached,
    EvaluationFinished,
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
    UnverifiedProposal,
    UnverifiedVote,
    VoteBody,
    binary_step,
    sign_proposal,
    sign_vote,
)
from wekacoin.consensus.player import Phase, Player, Screen, step
from wekacoin.consensus.rankings import RESEND_ROUNDS
from wekacoin.consensus.verify import (
    InvalidCertificate,
    RoundContext,
    Verifier,
    step_committee,
    verify_certificate,
)
from wekacoin.sortition import Role, compute_block_seed, select, sortition_alpha
from wekacoin.testing.chain import FAST_PARAMS, LocalChain
from wekacoin.types.ranking import Outcome, RankEntry

PARAMS = dataclasses.replace(
    FAST_PARAMS, lambda_priority_ms=100, lambda_stepvar_ms=100, lambda_block_ms=500,
    lambda_step_ms=200, max_steps=9,
)
PROPOSE_WAIT = 200


class Net:
    """A genesis tip with five validators of equal stake (every one sits on every committee
    with about a fifth of the sub-users: any four make a quorum, three do not)."""

    def __init__(self, params=PARAMS):
        self.chain = LocalChain(validators=5, n_keys=6, params=params)
        self.state = self.chain.state
        self.ctx = RoundContext(self.state, 0)
        self.keys = self.chain.keys[:5]
        self.verifier = Verifier()
        self.empty = self.verifier.empty_block(self.ctx)[0]

    def votes(self, ids, step, value, period=0, prev_hash=None) -> list[UnverifiedVote]:
        role, tau, _ = step_committee(self.state.params, step)
        alpha = sortition_alpha(self.state.tip.seed, role, 1, period, step)
        out = []
        for i in ids:
            key = self.keys[i]
            weight = self.state.get_weight(key.public_key)
            seat = select(key, alpha, weight, self.state.tip.total_weight, tau)
            assert seat is not None
            prev = prev_hash or self.ctx.prev_hash
            body = VoteBody(1, period, step, prev, value, key.public_key, seat.proof)
            out.append(sign_vote(key, self.ctx.genesis_hash, body))
        return out

    def proposal(self, i, period=0, time_ms=1) -> UnverifiedProposal:
        key = self.keys[i]
        alpha = sortition_alpha(self.state.tip.seed, Role.PROPOSER, 1, period)
        seat = select(key, alpha, self.state.get_weight(key.public_key),
                      self.state.tip.total_weight, self.state.params.tau_proposer)
        assert seat is not None, f"validator {i} is not a proposer"
        seed = compute_block_seed(seat.output)
        request = AssembleBlock(1, period, key.public_key, seed, seat.proof, ())
        block = assemble_block(self.state, request, [], time_ms)
        return sign_proposal(key, self.ctx.genesis_hash, period, block)

    def player(self, i=0, checkpoint=None, now=0):
        player = Player([self.keys[i]], self.verifier)
        _, actions = step(player, Started(self.state, 0, checkpoint, now))
        return player, actions


def feed(player, events):
    actions = []
    for e in events:
        actions += step(player, e)[1]
    return actions


def sent_votes(actions):
    return [a.message for a in actions
            if isinstance(a, Broadcast) and isinstance(a.message, UnverifiedVote)]


def votes_in(actions, step_no):
    return [v for v in sent_votes(actions) if v.body.step == step_no]


@pytest.fixture(scope="module")
def net():
    return Net()


def _best_proposal(net, ids=(1, 2)):
    props = [net.proposal(i) for i in ids]
    best = min(props, key=lambda p: net.verifier.proposal(p, net.ctx).priority)
    return props, best


def test_common_case_reaches_final_consensus_in_four_steps(net):
    player, start = net.player(0)
    assert SetDeadline(PROPOSE_WAIT) in start
    props, best = _best_proposal(net)
    value = best.block.hash
    acts = feed(player, [ProposalReceived(p, 10) for p in props])
    acts += feed(player, [DeadlineReached(PROPOSE_WAIT)])
    assert [v.body.value for v in votes_in(acts, REDUCTION_ONE)] == [value]
    acts = feed(player, [VoteReceived(v, 250) for v in net.votes([1, 2, 3], REDUCTION_ONE, value)])
    assert [v.body.value for v in votes_in(acts, REDUCTION_TWO)] == [value]
    acts = feed(player, [VoteReceived(v, 300) for v in net.votes([1, 2, 3], REDUCTION_TWO, value)])
    assert votes_in(acts, binary_step(1))[0].body.value == value
    acts = feed(player, [VoteReceived(v, 350) for v in net.votes([1, 2, 3], binary_step(1), value)])
    # Decided at BinaryBA* step 1: vote the final step.
    assert {v.body.step for v in sent_votes(acts)} == {FINAL_STEP}
    assert player.phase is Phase.FINALIZING and not any(isinstance(a, Commit) for a in acts)
    acts = feed(player, [VoteReceived(v, 400) for v in net.votes([1, 2, 3], FINAL_STEP, value)])
    (commit,) = [a for a in acts if isinstance(a, Commit)]
    assert commit.final and commit.block.hash == value and commit.certificate.final
    verify_certificate(commit.certificate, net.ctx, net.verifier)
    assert player.phase is Phase.COMMITTED


def test_persist_comes_before_every_own_vote(net):
    player, _ = net.player(0)
    props, best = _best_proposal(net)
    reduction = net.votes([1, 2, 3], REDUCTION_ONE, best.block.hash)
    for acts in (feed(player, [ProposalReceived(p, 1) for p in props]
                      + [DeadlineReached(PROPOSE_WAIT)]),
                 feed(player, [VoteReceived(v, 250) for v in reduction])):
        first_vote = next(i for i, a in enumerate(acts) if isinstance(a, Broadcast))
        assert any(isinstance(a, Persist) for a in acts[:first_vote])


def test_without_proposals_the_round_ends_tentatively_on_the_empty_block(net):
    player, _ = net.player(0)
    acts = feed(player, [DeadlineReached(PROPOSE_WAIT)])
    assert player.waiting_block and not sent_votes(acts)
    acts = feed(player, [DeadlineReached(PROPOSE_WAIT + 500)])
    assert votes_in(acts, REDUCTION_ONE)[0].body.value == net.empty.hash
    acts = feed(player, [DeadlineReached(PROPOSE_WAIT + 500 + 700)])  # reduction one times out
    assert votes_in(acts, REDUCTION_TWO)[0].body.value == net.empty.hash
    empty = net.empty.hash
    acts = feed(player, [VoteReceived(v, 1500) for v in net.votes([1, 2, 3], REDUCTION_TWO, empty)])
    acts += feed(player, [VoteReceived(v, 1500)
                          for v in net.votes([1, 2, 3], binary_step(1), empty)])
    # An empty quorum at a BLOCK step does not end the agreement; at the EMPTY step it does.
    assert votes_in(acts, binary_step(2))[0].body.value == empty
    acts = feed(player, [VoteReceived(v, 1600)
                         for v in net.votes([1, 2, 3], binary_step(2), empty)])
    (commit,) = [a for a in acts if isinstance(a, Commit)]
    assert not commit.final and commit.block.hash == empty and commit.block.header.proposer is None
    verify_certificate(commit.certificate, net.ctx, net.verifier)


def test_each_voter_counts_once_and_equivocators_are_discarded(net):
    player, _ = net.player(0)
    props, best = _best_proposal(net)
    value, other = best.block.hash, net.empty.hash
    feed(player, [ProposalReceived(p, 1) for p in props] + [DeadlineReached(PROPOSE_WAIT)])
    twice = net.votes([1], REDUCTION_ONE, value)
    votes = twice + twice + net.votes([2], REDUCTION_ONE, value)
    acts = feed(player, [VoteReceived(v, 250) for v in votes])
    assert player.phase is Phase.REDUCTION_ONE  # 0 + 1 + 2: three of five is no quorum
    # Validator 1 also votes for the empty block: both its votes are thrown out...
    feed(player, [VoteReceived(v, 260) for v in net.votes([1], REDUCTION_ONE, other)])
    tally = player.tallies[(0, REDUCTION_ONE)]
    assert net.keys[1].public_key in tally.equivocators
    feed(player, [VoteReceived(v, 270) for v in net.votes([3], REDUCTION_ONE, value)])
    assert player.phase is Phase.REDUCTION_ONE  # ...so 0 + 2 + 3 is still no quorum
    acts = feed(player, [VoteReceived(v, 280) for v in net.votes([4], REDUCTION_ONE, value)])
    assert votes_in(acts, REDUCTION_TWO)[0].body.value == value


def test_unverifiable_votes_are_not_counted(net):
    player, _ = net.player(0)
    feed(player, [DeadlineReached(PROPOSE_WAIT), DeadlineReached(PROPOSE_WAIT + 500)])
    empty = net.empty.hash
    good = net.votes([1, 2, 3, 4], REDUCTION_ONE, empty)
    bad_sig = [dataclasses.replace(v, signature=bytes(64)) for v in good]
    wrong_step = [  # a credential for step 2 presented for step 1
        sign_vote(net.keys[i], net.ctx.genesis_hash, dataclasses.replace(
            good[i - 1].body, credential=net.votes([i], REDUCTION_TWO, empty)[0].body.credential))
        for i in (1, 2, 3, 4)
    ]
    other_tip = net.votes([1, 2, 3, 4], REDUCTION_ONE, empty, prev_hash=bytes(32))
    outsider = net.chain.keys[5]  # no stake
    body = dataclasses.replace(good[0].body, voter=outsider.public_key)
    stakeless = [sign_vote(outsider, net.ctx.genesis_hash, body)]
    feed(player, [VoteReceived(v, 900) for v in bad_sig + wrong_step + other_tip + stakeless])
    assert player.phase is Phase.REDUCTION_ONE
    tally = player.tallies[(0, REDUCTION_ONE)]
    assert set(tally.votes) == {net.keys[0].public_key}


def test_a_restart_never_votes_differently_in_a_step(net):
    """Persist, crash, restart from the checkpoint with other inputs: the node re-sends its
    recorded vote and signs nothing else for that step."""
    player, _ = net.player(0)
    props, best = _best_proposal(net)
    acts = feed(player, [ProposalReceived(p, 1) for p in props] + [DeadlineReached(PROPOSE_WAIT)])
    checkpoint = [a for a in acts if isinstance(a, Persist)][-1].checkpoint
    (mine,) = votes_in(acts, REDUCTION_ONE)
    # Restart without the proposals; its reduction-one deadline passes: it would vote empty.
    again, acts = net.player(0, checkpoint=checkpoint, now=5_000)
    assert votes_in(acts, REDUCTION_ONE) == [mine]  # re-sent, identical
    later = feed(again, [DeadlineReached(5_000 + 700), DeadlineReached(5_000 + 700 + 200)])
    everything = sent_votes(acts + later)
    assert {v for v in everything if v.body.step == REDUCTION_ONE} == {mine}
    assert votes_in(later, REDUCTION_TWO)[0].body.value == net.empty.hash
    # A restart before any vote, from a fresh checkpoint of that state, proposes again only
    # if it had not proposed.
    assert again.phase is Phase.BINARY


def test_replaying_every_checkpoint_keeps_one_value_per_step(net):
    """Restart after every event of a run, from the latest checkpoint, with the event
    stream continuing: never two different values signed for one (period, step)."""
    props, best = _best_proposal(net)
    value = best.block.hash
    events = [ProposalReceived(p, 10) for p in props] + [DeadlineReached(PROPOSE_WAIT)]
    events += [VoteReceived(v, 260) for v in net.votes([1, 2, 3], REDUCTION_ONE, value)]
    events += [DeadlineReached(2_000), DeadlineReached(2_400)]
    events += [VoteReceived(v, 2_500) for v in net.votes([1, 2, 3], binary_step(2), net.empty.hash)]
    signed: dict = {}
    checkpoint = None
    for cut in range(len(events) + 1):
        player, acts = net.player(0, checkpoint=checkpoint, now=events[cut - 1].now if cut else 0)
        for e in events[cut:]:
            acts += step(player, e)[1]
        for v in sent_votes(acts):
            assert signed.setdefault((v.body.period, v.body.step), v.body.value) == v.body.value
        persisted = [a.checkpoint for a in acts if isinstance(a, Persist)]
        checkpoint = persisted[0] if persisted else checkpoint
    assert len(signed) >= 4


def test_a_late_node_decides_from_a_certificate(net):
    player, _ = net.player(0)
    props, best = _best_proposal(net)
    value = best.block.hash
    acts = feed(player, [VoteReceived(v, 5)
                         for v in net.votes([1, 2, 3, 4], binary_step(1), value)])
    assert any(isinstance(a, FetchBlock) and a.block_hash == value for a in acts)
    assert player.phase is Phase.FINALIZING or player.phase is Phase.AWAIT_BLOCK
    acts = feed(player, [VoteReceived(v, 6) for v in net.votes([1, 2, 3], FINAL_STEP, value)])
    assert player.decision.final and player.phase is Phase.AWAIT_BLOCK
    acts = feed(player, [BlockReceived(best.block, 7)])
    (commit,) = [a for a in acts if isinstance(a, Commit)]
    assert commit.final and commit.block.hash == value


def test_an_equivocating_proposer_is_ignored(net):
    player, _ = net.player(0)
    p1 = net.proposal(1, time_ms=1)
    p1b = net.proposal(1, time_ms=2)  # the same credential on another block
    p2 = net.proposal(2)
    assert p1.block.hash != p1b.block.hash
    feed(player, [ProposalReceived(p, 1) for p in (p1, p2, p1b)])
    assert player.proposals.best(0).block.hash == p2.block.hash
    acts = feed(player, [DeadlineReached(PROPOSE_WAIT)])
    assert votes_in(acts, REDUCTION_ONE)[0].body.value == p2.block.hash
    # Both of its blocks are still known, should the network decide one of them.
    assert p1.block.hash in player.proposals.blocks and p1b.block.hash in player.proposals.blocks


def test_max_steps_starts_a_new_period_with_new_proposals(net):
    player, acts = net.player(1)
    assert any(isinstance(a, AssembleBlock) and a.period == 0 for a in acts)
    now = 0
    while player.period == 0:
        now = player.deadline
        acts = feed(player, [DeadlineReached(now)])
    assert player.bstep == 0 and player.phase is Phase.PROPOSE
    (request,) = [a for a in acts if isinstance(a, AssembleBlock)]
    assert request.period == 1
    block = assemble_block(net.state, request, [], now)
    acts = feed(player, [BlockAssembled(1, block, now)])
    (proposal,) = [a.message for a in acts if isinstance(a, Broadcast)]
    assert proposal.period == 1 and isinstance(acts[0], Persist)
    steps = {(v.body.period, v.body.step) for v in sent_votes(acts)}
    assert all(p == 1 for p, _ in steps)


def test_the_coin_is_common_to_everyone_who_saw_the_same_votes(net):
    from wekacoin.consensus.tally import StepTally
    ones = 0
    for value in (net.empty.hash, bytes(32)):
        t1, t2 = StepTally(), StepTally()
        votes = [net.verifier.vote(v, net.ctx)
                 for v in net.votes([0, 1, 2, 3], binary_step(3), value)]
        for v in votes:
            t1.add(v)
        for v in reversed(votes):
            t2.add(v)
        assert t1.coin() == t2.coin()
        ones += t1.coin()


def test_votes_of_the_next_round_wait_and_two_rounds_ahead_asks_for_sync(net):
    player, _ = net.player(0)
    vote = net.votes([1], REDUCTION_ONE, net.empty.hash)[0]
    future = dataclasses.replace(vote, body=dataclasses.replace(vote.body, round=2))
    assert feed(player, [VoteReceived(future, 1)]) == []
    assert len(player._future) == 1
    far = dataclasses.replace(future, body=dataclasses.replace(future.body, round=3))
    assert RequestSync(1) in feed(player, [VoteReceived(far, 2)])
    assert RequestSync(1) not in feed(player, [VoteReceived(far, 3)])


def test_certificates_are_checked(net):
    from wekacoin.consensus.messages import Certificate
    value = net.proposal(1).block.hash
    votes = tuple(net.votes([1, 2, 3, 4], binary_step(1), value))
    verify_certificate(Certificate(1, 0, binary_step(1), value, votes), net.ctx, net.verifier)
    with pytest.raises(InvalidCertificate, match="quorum"):
        verify_certificate(
            Certificate(1, 0, binary_step(1), value, votes[:2]), net.ctx, net.verifier
        )
    with pytest.raises(InvalidCertificate, match="decides nothing"):
        verify_certificate(Certificate(1, 0, REDUCTION_TWO, value, votes), net.ctx, net.verifier)
    with pytest.raises(InvalidCertificate, match="one per voter"):
        verify_certificate(
            Certificate(1, 0, binary_step(1), value, votes + votes[:1]), net.ctx, net.verifier
        )
    empty_votes = tuple(net.votes([1, 2, 3, 4], binary_step(1), net.empty.hash))
    with pytest.raises(InvalidCertificate, match="decides nothing"):
        verify_certificate(
            Certificate(1, 0, binary_step(1), net.empty.hash, empty_votes), net.ctx, net.verifier
        )


def test_the_next_round_starts_on_ledger_advanced(net):
    player, _ = net.player(0)
    empty_block, state = net.verifier.empty_block(net.ctx)
    acts = feed(player, [LedgerAdvanced(state, 0, 10)])
    assert player.round == 2 and player.phase is Phase.PROPOSE
    assert SetDeadline(10 + PROPOSE_WAIT) in acts


def test_a_node_left_behind_fast_forwards_at_its_timeout(net):
    """Two validators (more than a third of the committee) already vote in BinaryBA* step
    3 while we wait in Reduction one: at our timeout we jump there as if the timers of the
    steps between had fired, voting nothing in them."""
    player, _ = net.player(0)
    feed(player, [DeadlineReached(PROPOSE_WAIT), DeadlineReached(PROPOSE_WAIT + 500)])
    assert player.phase is Phase.REDUCTION_ONE
    ahead = net.votes([1, 2], binary_step(3), net.empty.hash)
    acts = feed(player, [VoteReceived(v, 800) for v in ahead])
    assert not sent_votes(acts)  # no jump before a timeout
    acts = feed(player, [DeadlineReached(player.deadline)])
    sent = [(v.body.step, v.body.value) for v in sent_votes(acts)]
    assert sent == [(binary_step(3), net.empty.hash)]
    assert player.phase is Phase.BINARY and player.bstep == 3
    skipped = (REDUCTION_TWO, binary_step(1), binary_step(2))
    assert not any(player.ballot.voted(0, s) for s in skipped)


def test_one_verification_per_distinct_vote_across_nodes(net):
    verifier = Verifier()
    players = []
    for i in range(3):
        p = Player([net.keys[i]], verifier)
        step(p, Started(net.state, 0, None, 0))
        players.append(p)
    before = verifier.counts["vote"]
    votes = net.votes([3, 4], REDUCTION_ONE, net.empty.hash)
    for p in players:
        feed(p, [VoteReceived(v, 5) for v in votes + votes])
    assert verifier.counts["vote"] - before == 2


def test_a_decided_node_helps_a_straggler_in_the_next_three_steps(net):
    """Alg. 8's votes in steps b+1..b+3 after deciding at b are cast when a node that missed
    the quorum shows up there, in this round or after we moved to the next."""
    player, _ = net.player(0)
    props, best = _best_proposal(net)
    value = best.block.hash
    feed(player, [ProposalReceived(p, 10) for p in props] + [DeadlineReached(PROPOSE_WAIT)])
    for st in (REDUCTION_ONE, REDUCTION_TWO, binary_step(1), FINAL_STEP):
        acts = feed(player, [VoteReceived(v, 400) for v in net.votes([1, 2, 3], st, value)])
    (commit,) = [a for a in acts if isinstance(a, Commit)]
    feed(player, [LedgerAdvanced(commit.state, commit.block.header.time_ms, 450)])
    assert player.round == 2
    straggler = net.votes([4], binary_step(2), value)  # validator 4 missed the quorum
    acts = feed(player, [VoteReceived(v, 500) for v in straggler])
    sent = [(v.body.round, v.body.step, v.body.value) for v in sent_votes(acts)]
    assert sent == [(1, binary_step(2), value)]
    assert sent_votes(feed(player, [VoteReceived(v, 510) for v in straggler])) == []  # once
    far = net.votes([4], binary_step(5), value)  # beyond b + 3: no help
    assert sent_votes(feed(player, [VoteReceived(v, 520) for v in far])) == []


# -- rankings: a proposer records what it received; voters do not judge scores --


def _ranking_round():
    """A chain whose task 1 is being ranked (submissions 1-3 revealed), a committee where
    every validator has a seat."""
    from tests.unit.test_settlement import ready_competition

    comp = ready_competition(params=dataclasses.replace(PARAMS, tau_evaluators=100))
    return comp.chain


TRUTH = {1: (Outcome.SCORED, 900_000, 10), 2: (Outcome.SCORED, 950_000, 10),
         3: (Outcome.SCORED, 800_000, 10)}


def _entries(chain, results):
    return tuple(RankEntry(sid, *results[sid]) for sid in chain.state.get_task(1).submissions)


def test_a_proposer_records_the_rankings_it_received_that_the_chain_has_not():
    chain = _ranking_round()
    keys = chain.keys[:4]
    player = Player([keys[0]], Verifier())
    _, acts = step(player, Started(chain.state, chain.height, None, 0))
    assert Evaluate(1) in acts
    baseline = chain.state.get_task(1).baseline_score
    finished = EvaluationFinished(1, Outcome.SCORED, baseline, _entries(chain, TRUTH), 5)
    acts = feed(player, [finished])
    (own,) = [a.message for a in acts if isinstance(a, Broadcast)]
    assert own.ranking.evaluator == keys[0].public_key
    others = [chain.ranking(1, i, TRUTH) for i in (1, 2, 3)]
    forged = dataclasses.replace(others[0], signature=bytes(64))
    equivocation = chain.ranking(1, 3, {**TRUTH, 3: (Outcome.SCORED, 1, 10)})
    feed(player, [RankingReceived(r, 10) for r in [forged, *others, equivocation]])
    chain.commit(rankings=(others[1],))  # some block recorded evaluator 2's ranking
    acts = feed(player, [LedgerAdvanced(chain.state, chain.height, 100)])
    (request,) = [a for a in acts if isinstance(a, AssembleBlock)]
    expected = tuple(sorted([own, others[0]], key=lambda s: s.ranking.evaluator))
    assert request.rankings == expected  # not the recorded one, not the equivocator's
    block = assemble_block(chain.state, request, [], chain.height + 1)
    assert block.meta.rankings == expected
    chain.state = apply_block(chain.state, block)
    assert chain.state.get_task(1).rankers == tuple(sorted(
        k.public_key for k in (keys[0], keys[1], keys[2])))


def test_a_voter_votes_for_a_block_whatever_its_own_scores():
    """What the task pays follows from the rankings the chain records, so a voter that
    scored the models differently has no reason to refuse a block that records the others'
    rankings: it votes for the best proposal as always."""
    chain = _ranking_round()
    keys = chain.keys[:4]
    verifier = Verifier()
    proposer = Player([keys[0]], verifier)
    voter = Player([keys[1]], verifier)
    for p in (proposer, voter):
        step(p, Started(chain.state, chain.height, None, 0))
    baseline = chain.state.get_task(1).baseline_score
    mine = {**TRUTH, 2: (Outcome.SCORED, 1, 10)}  # the voter's sandbox disagrees
    feed(voter, [EvaluationFinished(1, Outcome.SCORED, baseline, _entries(chain, mine), 5)])
    others = [chain.ranking(1, i, TRUTH) for i in (2, 3)]
    feed(proposer, [RankingReceived(r, 10) for r in others])
    chain.commit()
    feed(voter, [LedgerAdvanced(chain.state, chain.height, 100)])
    acts = feed(proposer, [LedgerAdvanced(chain.state, chain.height, 100)])
    (request,) = [a for a in acts if isinstance(a, AssembleBlock)]
    block = assemble_block(chain.state, request, [], chain.height + 1)
    assert len(block.meta.rankings) == 2
    proposal = sign_proposal(keys[0], chain.genesis_hash, 0, block)
    acts = feed(voter, [ProposalReceived(proposal, 110), DeadlineReached(100 + PROPOSE_WAIT)])
    assert [v.body.value for v in votes_in(acts, REDUCTION_ONE)] == [block.hash]


def test_a_refused_vote_says_why_and_blames_the_peer_that_delivered_it(net):
    player, _ = net.player(0)
    feed(player, [DeadlineReached(PROPOSE_WAIT), DeadlineReached(PROPOSE_WAIT + 500)])
    good = net.votes([1], REDUCTION_ONE, net.empty.hash)[0]
    forged = dataclasses.replace(good, signature=bytes(64))
    (refusal,) = [a for a in feed(player, [VoteReceived(forged, 900, "peer-x")])
                  if isinstance(a, Refuse)]
    assert refusal.origin == "peer-x" and refusal.penalise
    assert "signature" in refusal.reason
    acts = feed(player, [VoteReceived(good, 901, "peer-y")])
    assert not [a for a in acts if isinstance(a, Refuse)]


def test_gossip_screening_verifies_this_round_and_passes_the_next_ones(net):
    player, _ = net.player(0)
    good = net.votes([1], REDUCTION_ONE, net.empty.hash)[0]
    forged = dataclasses.replace(good, signature=bytes(64))
    assert player.screen_vote(good).verdict is Screen.ACCEPT
    rejected = player.screen_vote(forged)
    assert rejected.verdict is Screen.REJECT and "signature" in rejected.reason
    ahead = sign_vote(net.keys[1], net.ctx.genesis_hash, dataclasses.replace(good.body, round=2))
    assert player.screen_vote(ahead).verdict is Screen.ACCEPT  # we may be behind
    forged_ahead = dataclasses.replace(ahead, signature=bytes(64))
    assert player.screen_vote(forged_ahead).verdict is Screen.REJECT  # that much we can check
    far = dataclasses.replace(forged, body=dataclasses.replace(forged.body, round=9))
    assert player.screen_vote(far).verdict is Screen.IGNORE
    assert player.screen_proposal(net.proposal(1)).verdict is Screen.ACCEPT


def test_gossip_relays_a_proposal_only_while_no_better_one_is_known():
    """A worse proposal is ranked by its credential alone, never applied nor relayed; a
    better one, an equivocating twin (same priority) and the block a player decided and
    awaits all pass."""
    fresh = Net()
    player, _ = fresh.player(0)
    by_priority = sorted(
        (fresh.verifier.proposal_priority(fresh.proposal(i), fresh.ctx), i) for i in (1, 2, 3)
    )
    best, middle, worst = (i for _, i in by_priority)
    assert player.screen_proposal(fresh.proposal(middle)).verdict is Screen.ACCEPT
    feed(player, [ProposalReceived(fresh.proposal(middle), 1)])
    applied = fresh.verifier.counts["proposal"]
    ignored = player.screen_proposal(fresh.proposal(worst))
    assert ignored.verdict is Screen.IGNORE and "outranked" in ignored.reason
    assert fresh.verifier.counts["proposal"] == applied  # its transactions were never checked
    twin = fresh.proposal(middle, time_ms=2)  # the same credential on another block
    assert player.screen_proposal(twin).verdict is Screen.ACCEPT
    assert player.screen_proposal(fresh.proposal(best)).verdict is Screen.ACCEPT

    awaiting, _ = fresh.player(4)
    feed(awaiting, [ProposalReceived(fresh.proposal(best), 1)])
    value = fresh.proposal(worst).block.hash  # the network decided the worse block
    feed(awaiting, [VoteReceived(v, 5) for v in fresh.votes([1, 2, 3, 4], FINAL_STEP, value)])
    assert awaiting.phase is Phase.AWAIT_BLOCK
    assert awaiting.screen_proposal(fresh.proposal(worst)).verdict is Screen.ACCEPT


def _evaluated_player():
    """A player of a ranking round that just scored the task: (chain, player, actions)."""
    chain = _ranking_round()
    player = Player([chain.keys[0]], Verifier())
    step(player, Started(chain.state, chain.height, None, 0))
    baseline = chain.state.get_task(1).baseline_score
    evaluated = EvaluationFinished(1, Outcome.SCORED, baseline, _entries(chain, TRUTH), 5)
    return chain, player, feed(player, [evaluated])


def test_own_rankings_are_persisted_before_they_leave_and_resent_until_recorded():
    chain, player, acts = _evaluated_player()
    baseline = chain.state.get_task(1).baseline_score
    persist = next(a for a in acts if isinstance(a, Persist))
    (own,) = persist.rankings
    assert acts.index(persist) < acts.index(Broadcast(own))
    # The same evaluation reported again signs nothing new.
    assert not [a for a in feed(player, [EvaluationFinished(1, Outcome.SCORED, baseline, (), 6)])
                if isinstance(a, (Broadcast, Persist))]
    resent = []
    for _ in range(RESEND_ROUNDS):
        chain.commit()
        resent += [a.message for a in feed(player, [LedgerAdvanced(chain.state, chain.height, 100)])
                   if isinstance(a, Broadcast) and a.message == own]
    assert resent == [own]  # not recorded yet: sent again, once per RESEND_ROUNDS rounds
    chain.commit(rankings=(own,))
    for _ in range(RESEND_ROUNDS + 1):
        acts = feed(player, [LedgerAdvanced(chain.state, chain.height, 200)])
        assert Broadcast(own) not in acts
        chain.commit()


def test_a_restarted_player_resends_its_ranking_and_never_evaluates_again():
    chain, _, acts = _evaluated_player()
    baseline = chain.state.get_task(1).baseline_score
    (own,) = next(a for a in acts if isinstance(a, Persist)).rankings
    restarted = Player([chain.keys[0]], Verifier())
    _, acts = step(restarted, Started(chain.state, chain.height, None, 10, (own,)))
    assert Evaluate(1) not in acts
    assert Broadcast(own) in acts
    other = {**TRUTH, 1: (Outcome.SCORED, 1, 10)}
    evaluated = EvaluationFinished(1, Outcome.SCORED, baseline, _entries(chain, other), 20)
    acts = feed(restarted, [evaluated])
    assert not [a for a in acts if isinstance(a, Broadcast)]


def test_refusals_are_cached_small_and_bounded(net, monkeypatch):
    """A flood of votes with random signatures: each refusal is remembered as its type and
    message only, and at most FAILURES_PER_TIP of them per tip."""
    import wekacoin.consensus.verify as verify_module

    monkeypatch.setattr(verify_module, "FAILURES_PER_TIP", 50)
    verifier = Verifier()
    good = net.votes([1], REDUCTION_ONE, net.empty.hash)[0]
    for i in range(120):
        forged = dataclasses.replace(good, signature=i.to_bytes(64, "big"))
        with pytest.raises(verify_module.InvalidVote, match="bad signature") as err:
            verifier.vote(forged, net.ctx)
        assert err.value.__traceback__ is not None  # a fresh exception each time
    (cache,) = verifier._caches.values()
    assert len(cache) == 50
    assert all(isinstance(v, verify_module._Refusal) for v in cache.values())
    again = dataclasses.replace(good, signature=(3).to_bytes(64, "big"))  # cached
    with pytest.raises(verify_module.InvalidVote, match="bad signature"):
        verifier.vote(again, net.ctx)
    assert verifier.counts["vote"] == 120
