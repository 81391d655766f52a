"""Ranking agreement (paper III-C): committee credentials weighed at the seed block, the k
rule, the genuine rule, the merge of the recorded rankings, and a minority reporting false
scores. Settling from the merge is tested in test_settlement."""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_settlement import ready_competition
from wekacoin.chain.errors import InvalidRanking
from wekacoin.chain.rankings import (
    compute_meta_ranking,
    compute_ranking_quorum,
    evaluation_alpha,
    get_evaluator_weight,
    select_evaluator,
    sign_ranking,
    verify_ranking,
)
from wekacoin.chain.tasks import ready_height
from wekacoin.consensus.assemble import BLOCK_RANKING_BYTES, select_recordable
from wekacoin.consensus.rankings import RankingBook
from wekacoin.node.testnet import LOCAL_PARAMS
from wekacoin.sortition import select
from wekacoin.testing.chain import FAST_PARAMS
from wekacoin.types.codec import encode
from wekacoin.types.genesis import Params
from wekacoin.types.ranking import CandidateRanking, EvaluatorShare, Outcome, RankEntry
from wekacoin.types.tx import Unstake

S, X, U = Outcome.SCORED, Outcome.INVALID, Outcome.UNEVALUATED
SMALL_COMMITTEE = dataclasses.replace(FAST_PARAMS, tau_evaluators=20)
TRUTH = {1: (S, 900_000, 100), 2: (S, 950_000, 120), 3: (S, 800_000, 90)}


class Committee:
    """A task with submissions 1, 2, 3 whose uploads just closed, and the four validators'
    seats on its evaluation committee (sub-users 7, 6, 8, 8 with this chain's seeds; a small
    committee, tau 20, so that every case is checked by hand: k = max(10, present // 2) + 1)."""

    def __init__(self, **kw):
        self.comp = ready_competition(params=SMALL_COMMITTEE, **kw)
        self.chain = self.comp.chain
        self.params = self.chain.params
        self.keys = self.chain.keys[:4]
        self.seats = [select_evaluator(k, self.task, self.state) for k in self.keys]

    @property
    def state(self):
        return self.chain.state

    @property
    def task(self):
        return self.comp.task

    def ranking(self, i, results=TRUTH, baseline=None, credential=None):
        key = self.keys[i]
        entries = tuple(RankEntry(sid, *results[sid]) for sid in self.task.submissions)
        b_outcome, b_score = baseline or (S, self.task.baseline_score)
        proof = credential if credential is not None else self.seats[i].proof
        r = CandidateRanking(self.task.id, key.public_key, proof, b_outcome, b_score, entries)
        return sign_ranking(key, self.chain.genesis_hash, r)

    def verified(self, i, **kw):
        return verify_ranking(self.ranking(i, **kw), self.state, self.chain.genesis_hash)

    def merge(self, verified, params=None):
        recorded = [(v.evaluator, v.recorded()) for v in verified]
        return compute_meta_ranking(recorded, params or self.params)

    def record_and_settle(self, signed):
        """Record `signed` in one block, then settle (at the ready height, or in the next block
        if that has passed); balance changes and the chain's record."""
        before = {k.address: self.state.get_account(k.address).balance for k in self.chain.keys}
        self.chain.commit(rankings=tuple(sorted(signed, key=lambda s: s.ranking.evaluator)))
        self.chain.advance_to(max(ready_height(self.task, self.params), self.chain.height + 1))
        deltas = {a: self.state.get_account(a).balance - b for a, b in before.items()}
        return deltas, self.state.get_settlement(self.task.id)

    def genuine(self, meta):
        return {self.keys.index(next(k for k in self.keys if k.public_key == g.evaluator))
                for g in meta.genuine}


def values(meta):
    return [(e.outcome, e.score, e.model_size) for e in meta.entries]


@pytest.fixture(scope="module")
def committee():
    return Committee()


def test_the_fixture_committee(committee):
    assert [s.subusers for s in committee.seats] == [7, 6, 8, 8]
    assert compute_ranking_quorum(committee.params, 0) == 11  # floor(20 * 50 / 100) + 1
    assert compute_ranking_quorum(committee.params, 29) == 15  # floor(29 * 50 / 100) + 1


@pytest.mark.parametrize("tau, percent, present, k", [
    (20, 50, 0, 11), (20, 50, 15, 11), (20, 50, 21, 11), (20, 50, 22, 12), (20, 50, 29, 15),
    (100, 50, 400, 201), (20, 30, 29, 9), (20, 67, 10, 14), (20, 67, 40, 27), (1, 50, 1, 1),
])
def test_k_is_the_larger_of_the_expected_and_the_present_committees(tau, percent, present, k):
    params = dataclasses.replace(FAST_PARAMS, tau_evaluators=tau, ranking_quorum_percent=percent)
    assert compute_ranking_quorum(params, present) == k


def poisson_cdf(mean: float, n: int) -> float:
    """P(X <= n) for X ~ Poisson(mean): a committee's drawn sub-users, Binomial(W, tau / W)
    with W (the total weight) in the millions."""
    term = total = math.exp(-mean)
    for i in range(1, n + 1):
        term *= mean / i
        total += term
    return min(total, 1.0)


@pytest.mark.parametrize("params", [Params(), LOCAL_PARAMS], ids=["genesis default", "local"])
def test_the_committee_is_large_enough_to_settle_and_to_resist_a_third(params):
    """k never falls under floor(tau * q / 100) + 1, however few seats the draw gave. At
    tau_evaluators = 20 an honest committee, all present and unanimous, drew 10 or fewer
    sub-users once in a hundred tasks and could not settle (the demo's task expired that way,
    with 9 sub-users among 4 agreeing validators), and with one validator of four offline
    one in eight; a third of the weight alone reached k in 7 tasks of 100."""
    floor = params.tau_evaluators * params.ranking_quorum_percent // 100
    tau = params.tau_evaluators
    assert compute_ranking_quorum(params, 0) == floor + 1
    assert poisson_cdf(tau, floor) < 1e-6  # everyone present, unanimous, and still stuck
    assert poisson_cdf(tau * 3 / 4, floor) < 1e-2  # a quarter of the weight offline
    assert 1 - poisson_cdf(tau / 3, floor) < 1e-2  # a third alone, the honest absent
    # what tau_evaluators = 20 gave
    assert poisson_cdf(20, 10) > 1e-2 and poisson_cdf(15, 10) > 0.1
    assert 1 - poisson_cdf(20 / 3, 10) > 0.05


def test_honest_rankings_merge_into_the_truth_and_settle():
    c = Committee()
    verified = [c.verified(i) for i in range(4)]
    meta = c.merge(list(reversed(verified)))
    assert values(meta) == list(TRUTH.values())
    assert (meta.baseline_outcome, meta.baseline_score) == (S, c.task.baseline_score)
    assert meta.genuine == tuple(sorted(
        (EvaluatorShare(k.public_key, s.subusers) for k, s in zip(c.keys, c.seats, strict=True)),
        key=lambda g: g.evaluator,
    ))
    deltas, record = c.record_and_settle([v.signed for v in verified])
    assert record.entries == meta.entries and record.evaluators == meta.genuine
    assert deltas[c.comp.trainers[1].address] > 0  # submission 2 scored best
    assert record.winner == 2


def test_minority_reporting_false_scores_changes_nothing():
    """Evaluator 1 (6 of 29 sub-users) claims submission 3 is the best model: its values never
    reach k, its ranking is not genuine, the meta-ranking and the payout are the truth's."""
    c = Committee()
    false = {**TRUTH, 3: (S, 990_000, 90), 2: (S, 100_000, 120)}
    verified = [c.verified(i) for i in (0, 2, 3)] + [c.verified(1, results=false)]
    meta = c.merge(verified)
    assert values(meta) == list(TRUTH.values())
    assert c.genuine(meta) == {0, 2, 3}
    deltas, record = c.record_and_settle([v.signed for v in verified])
    assert record.winner == 2 and deltas[c.comp.trainers[1].address] > 0
    assert deltas[c.comp.trainers[2].address] == 0
    assert deltas[c.keys[1].address] == 0  # no reward for a false ranking
    assert all(deltas[c.keys[i].address] > 0 for i in (0, 2, 3))


def test_a_coalition_short_of_a_majority_of_those_present_cannot_force_a_value(committee):
    """Evaluators 0 and 1 (13 sub-users) reach the expected committee's k (11) with a false
    score, but not k of the 29 present (15): the honest 16 decide. Under k = 11 alone both
    values would reach k and nobody could settle."""
    c = committee
    false = {**TRUTH, 1: (S, 999_999, 100)}
    liars = [c.verified(i, results=false) for i in (0, 1)]
    honest = [c.verified(i) for i in (2, 3)]
    assert sum(v.subusers for v in liars) >= compute_ranking_quorum(c.params, 0)
    meta = c.merge(liars + honest)
    assert values(meta) == list(TRUTH.values()) and c.genuine(meta) == {2, 3}


def test_k_counts_weight_not_keys(committee):
    """Two keys against two keys: evaluators 2 and 3 (8 + 8) outweigh 0 and 1 (7 + 6)."""
    c = committee
    other = {**TRUTH, 3: (S, 1, 90)}
    meta = c.merge([c.verified(0, results=other), c.verified(1, results=other),
                    c.verified(2), c.verified(3)])
    assert values(meta) == list(TRUTH.values()) and c.genuine(meta) == {2, 3}
    meta = c.merge([c.verified(0, results=other), c.verified(1, results=other),
                    c.verified(2)])  # present 21: k = 11, and 13 >= 11 > 8
    assert values(meta)[2] == (S, 1, 90) and c.genuine(meta) == {0, 1}


def test_the_expected_committee_sets_a_floor(committee):
    """A lone evaluator is all the weight present, but 8 sub-users are short of the k of the
    expected committee (11): nothing settles until more of the committee has spoken."""
    c = committee
    assert c.merge([c.verified(2)]) is None
    assert c.merge([c.verified(0), c.verified(1)]) is not None  # 13 >= 11
    assert c.merge([]) is None


def test_two_values_that_both_reach_k_settle_nothing(committee):
    """With a quorum percent under 50, two values can both reach k: nobody can tell which is
    right, so the task waits (and expires if that lasts)."""
    c = committee
    params = dataclasses.replace(c.params, ranking_quorum_percent=30)
    assert compute_ranking_quorum(params, 29) == 9
    other = {**TRUTH, 1: (S, 1, 100)}
    split = [
        c.verified(0, results=other), c.verified(1, results=other), c.verified(2), c.verified(3)
    ]
    assert c.merge(split, params) is None
    assert c.merge(split[1:], params) is not None  # 6 < 9: one value only


def test_the_genuine_rankings_must_weigh_k(committee):
    """Each value reaches k with different evaluators, but only evaluator 0 (7 sub-users)
    agrees with all of them: too little genuine weight, no meta-ranking."""
    c = committee
    a, b = TRUTH[1], (S, 1, 100)
    x, y = TRUTH[2], (S, 2, 120)
    results = {0: (a, x), 2: (a, y), 3: (b, x), 1: (b, y)}  # 1: 0+2=15, 2: 0+3=15
    verified = [c.verified(i, results={**TRUTH, 1: r1, 2: r2}) for i, (r1, r2) in results.items()]
    assert compute_ranking_quorum(c.params, 29) == 15
    assert c.merge(verified) is None


def test_the_baseline_is_agreed_like_any_submission(committee):
    c = committee
    verified = [c.verified(i, baseline=(S, 700_000)) for i in (0, 2, 3)]
    verified.append(c.verified(1, baseline=(U, 0)))
    meta = c.merge(verified)
    assert (meta.baseline_outcome, meta.baseline_score) == (S, 700_000)
    assert c.genuine(meta) == {0, 2, 3}
    unscored = c.merge([c.verified(i, baseline=(X, 0)) for i in range(4)])
    assert (unscored.baseline_outcome, unscored.baseline_score) == (X, 0)


def test_invalid_and_unevaluated_reports_against_an_accepted_score(committee):
    """A score accepted by k of weight stands even if a member said INVALID or UNEVALUATED
    (paper III-C); that member's ranking is then not genuine."""
    c = committee
    slow = c.verified(1, results={**TRUTH, 2: (U, 0, 0)})
    meta = c.merge([slow] + [c.verified(i) for i in (0, 2, 3)])
    assert meta.entries[1] == RankEntry(2, S, 950_000, 120)
    assert c.genuine(meta) == {0, 2, 3}
    # Everyone agrees a model is INVALID: accepted as INVALID.
    broken = {**TRUTH, 1: (X, 0, 0)}
    meta = c.merge([c.verified(i, results=broken) for i in range(4)])
    assert meta.entries[0].outcome is X and c.genuine(meta) == {0, 1, 2, 3}


def test_rankings_need_committee_seats_signatures_and_shape(committee):
    c = committee
    g = c.chain.genesis_hash
    outsider = c.chain.keys[5]  # no stake: never on a committee
    r = CandidateRanking(c.task.id, outsider.public_key, c.seats[0].proof, S, 1,
                         c.ranking(0).ranking.entries)
    with pytest.raises(InvalidRanking, match="committee"):
        verify_ranking(sign_ranking(outsider, g, r), c.state, g)
    # Another member's credential does not seat this one.
    with pytest.raises(InvalidRanking, match="committee"):
        verify_ranking(c.ranking(0, credential=c.seats[1].proof), c.state, g)
    signed = c.ranking(0)
    with pytest.raises(InvalidRanking, match="signature"):
        verify_ranking(dataclasses.replace(signed, signature=bytes(64)), c.state, g)
    with pytest.raises(InvalidRanking, match="signature"):  # signed for another chain
        verify_ranking(signed, c.state, bytes(32))
    short = dataclasses.replace(signed.ranking, entries=signed.ranking.entries[:2])
    with pytest.raises(InvalidRanking, match="every submission"):
        verify_ranking(sign_ranking(c.keys[0], g, short), c.state, g)
    with pytest.raises(InvalidRanking, match="score and size 0"):
        verify_ranking(c.ranking(0, results={**TRUTH, 1: (X, 5, 0)}), c.state, g)
    with pytest.raises(InvalidRanking, match="unscored baseline"):
        verify_ranking(c.ranking(0, baseline=(U, 5)), c.state, g)
    with pytest.raises(ValueError):  # nobody signs a ranking for another key
        sign_ranking(c.keys[1], g, signed.ranking)
    assert verify_ranking(signed, c.state, g).subusers == 7


def test_the_committee_is_weighed_at_the_seed_block():
    """Stake bonded after the evaluation seed was public weighs nothing on that committee (no
    grinding keys against a known seed), and stake unbonded after it still counts: the chain
    asks the bond's history for the weight at the upload end."""
    c = Committee()
    chain, task = c.chain, c.task
    newcomer, leaver = chain.keys[4], c.keys[1]
    chain.commit([chain.tx(newcomer, chain.stake_body(newcomer, chain.stake)),
                  chain.tx(leaver, Unstake(chain.stake))])
    chain.advance_to(chain.height + c.params.stake_lookback)
    state = chain.state
    assert state.get_weight(newcomer.public_key) == chain.stake
    assert state.get_weight(leaver.public_key) == 0
    assert get_evaluator_weight(state, task, newcomer.public_key) == 0
    assert get_evaluator_weight(state, task, leaver.public_key) == chain.stake
    assert select_evaluator(newcomer, task, state) is None
    # With its weight of today the newcomer would have a seat; its ranking is still refused.
    seat = select(newcomer, evaluation_alpha(task), state.get_weight(newcomer.public_key),
                  task.evaluation_weight, c.params.tau_evaluators)
    assert seat is not None
    entries = c.ranking(0).ranking.entries
    forged = CandidateRanking(
        task.id, newcomer.public_key, seat.proof, S, task.baseline_score, entries
    )
    signed = sign_ranking(newcomer, chain.genesis_hash, forged)
    with pytest.raises(InvalidRanking, match="committee"):
        verify_ranking(signed, state, chain.genesis_hash)
    # The leaver keeps its seat of the seed block, and is paid for it.
    assert select_evaluator(leaver, task, state).subusers == c.seats[1].subusers
    deltas, record = c.record_and_settle([c.ranking(i) for i in range(4)])
    assert {e.subusers for e in record.evaluators if e.evaluator == leaver.public_key} == {6}
    assert deltas[leaver.address] > 0


@settings(max_examples=25, deadline=None)
@given(order=st.permutations(range(4)), seed=st.integers(0, 2**32))
def test_the_merge_does_not_depend_on_arrival_order(committee, order, seed):
    c = committee
    rng = random.Random(seed)
    liar = rng.randrange(4)
    lie = {**TRUTH, rng.choice([1, 2, 3]): (S, rng.randrange(10**6), 100)}
    pool = {i: c.verified(i, results=lie if i == liar else TRUTH) for i in range(4)}
    first = c.merge([pool[i] for i in range(4)])
    assert first is not None and values(first) == list(TRUTH.values())
    assert c.merge([pool[i] for i in order]) == first


# -- a proposer's side: the rankings it received go into its block --


def test_a_proposer_offers_the_received_rankings_the_chain_has_not_recorded():
    c = Committee()
    book = RankingBook()
    signed = [c.ranking(i) for i in range(4)]
    for s in reversed(signed):
        assert book.add(s)
    assert not book.add(signed[0])  # nothing new
    by_key = sorted(signed, key=lambda s: s.ranking.evaluator)
    assert book.unrecorded(c.state) == tuple(by_key)
    # An evaluator that signs two different rankings of a task is left out.
    assert book.add(c.ranking(2, results={**TRUTH, 1: (S, 1, 100)}))
    assert signed[2] not in book.unrecorded(c.state)
    c.chain.commit(rankings=(by_key[0],))
    assert book.unrecorded(c.state) == tuple(s for s in by_key[1:] if s != signed[2])


def test_a_proposer_records_only_what_its_block_can_hold():
    """select_recordable drops rankings already recorded, invalid ones, and those of a task
    that settles at the start of the block being built."""
    c = Committee()
    chain = c.chain

    def by_key(*rankings):
        return tuple(sorted(rankings, key=lambda s: s.ranking.evaluator))

    def recordable(*rankings):
        return select_recordable(chain.state, chain.seed_for(chain.height + 1), by_key(*rankings))

    s = [c.ranking(i) for i in range(4)]
    chain.commit(rankings=(s[0],))  # 7 sub-users: under k, nothing settles
    bad = dataclasses.replace(s[1], signature=bytes(64))
    kept = recordable(s[0], bad, s[2], s[3])
    assert kept == by_key(s[2], s[3])
    chain.commit(rankings=kept)
    assert chain.height == ready_height(c.task, c.params)
    assert chain.state.get_settlement(c.task.id) is None  # recorded in this block: next one
    # 7 + 8 + 8 = 23 recorded: the task settles at the start of the next block, which can
    # therefore record nothing more for it, though the ranking is valid at the tip.
    verify_ranking(s[1], chain.state, chain.genesis_hash)
    assert recordable(s[1]) == ()
    chain.commit(rankings=recordable(s[1]))
    assert chain.state.get_settlement(c.task.id).height == chain.height


def test_a_block_records_rankings_up_to_its_byte_budget_and_later_blocks_the_rest():
    """A big task's rankings (up to 1,000 entries each, one per evaluator) would not fit one
    proposal's 1 MiB gossip frame beside the transactions: a builder keeps them under
    BLOCK_RANKING_BYTES, and the blocks after it record the rest."""
    c = Committee()
    chain = c.chain
    signed = sorted((c.ranking(i) for i in range(4)), key=lambda s: s.ranking.evaluator)
    size = len(encode(signed[0]))
    assert all(len(encode(s)) == size for s in signed)
    assert size * 100 * 1_000 // len(c.task.submissions) > BLOCK_RANKING_BYTES  # the case
    budget = size + size // 2  # room for one a block
    recorded = []
    for _ in range(2):  # one ranking (at most 8 sub-users) is under k = 11: nothing settles
        block = select_recordable(chain.state, chain.seed_for(chain.height + 1), tuple(signed),
                                  max_bytes=budget)
        assert len(block) == 1 and block[0] not in recorded
        chain.commit(rankings=block)
        recorded.extend(block)
    assert recorded == signed[:2]  # in the order given, each in the next block
    assert set(chain.state.get_existing_task(c.task.id).rankers) \
        == {s.ranking.evaluator for s in recorded}
