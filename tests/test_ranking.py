"""Ranking agreement (paper III-C): committee credentials, the k rule, the genuine rule, the
merge into a settlement, a voter's check, and a minority reporting false scores."""

from __future__ import annotations

import dataclasses
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.test_settlement import ready_competition
from wekacoin.evaluation.ranking import (
    InvalidRanking, SettlementRejected, compute_ranking_quorum, compute_settlement,
    select_evaluator, sign_ranking, verify_ranking, verify_settlement,
)
from wekacoin.types.ranking import CandidateRanking, Outcome, RankEntry

S, I, U = Outcome.SCORED, Outcome.INVALID, Outcome.UNEVALUATED
TRUTH = {1: (S, 900_000, 100), 2: (S, 950_000, 120), 3: (S, 800_000, 90)}


class Committee:
    """A task ready to settle (submissions 1, 2, 3), and the four validators' seats on its
    evaluation committee (weights 3, 5, 4, 3 with this chain's seed; k = 11)."""

    def __init__(self, **kw):
        self.comp = ready_competition(**kw)
        self.chain = self.comp.chain
        self.state = self.chain.state
        self.task = self.comp.task
        self.keys = self.chain.keys[:4]
        self.seats = [select_evaluator(k, self.task, self.state) for k in self.keys]
        self.k = compute_ranking_quorum(self.state.params)

    def ranking(self, i, results=TRUTH, baseline=None, credential=None):
        key = self.keys[i]
        entries = tuple(RankEntry(sid, *results[sid]) for sid in self.task.submissions)
        b_outcome, b_score = baseline or (S, self.task.baseline_score)
        proof = credential if credential is not None else self.seats[i].proof
        r = CandidateRanking(self.task.id, key.public_key, proof, b_outcome, b_score, entries)
        return sign_ranking(key, self.chain.genesis.hash, r)

    def verified(self, i, **kw):
        return verify_ranking(self.ranking(i, **kw), self.state, self.chain.genesis.hash)

    def settle(self, settlement):
        before = {k.address: self.state.get_account(k.address).balance for k in self.chain.keys}
        self.chain.commit(settlement=settlement)
        after = self.chain.state
        return {a: after.get_account(a).balance - b for a, b in before.items()}


@pytest.fixture(scope="module")
def committee():
    return Committee()


def test_the_fixture_committee(committee):
    assert [s.subusers for s in committee.seats] == [3, 5, 4, 3]
    assert committee.k == 11  # floor(20 * 50 / 100) + 1


def test_honest_rankings_merge_into_the_truth_and_settle(committee):
    c = Committee()
    verified = [c.verified(i) for i in range(4)]
    settlement = compute_settlement(c.task.id, reversed(verified), c.k)
    assert [(e.outcome, e.score, e.model_size) for e in settlement.entries] == list(TRUTH.values())
    assert settlement.evaluators == tuple(sorted(k.public_key for k in c.keys))
    verify_settlement(settlement, c.state, c.chain.genesis.hash)
    verify_settlement(settlement, c.state, c.chain.genesis.hash, own=verified[0].signed.ranking)
    deltas = c.settle(settlement)
    assert deltas[c.comp.trainers[1].address] > 0  # submission 2 scored best


def test_minority_reporting_false_scores_changes_nothing():
    """Evaluator 3 (weight 3 of 15) claims submission 3 is the best model: its values never
    reach k, its ranking is not genuine, the meta-ranking and the payout are the truth's."""
    c = Committee()
    false = {**TRUTH, 3: (S, 990_000, 90), 2: (S, 100_000, 120)}
    verified = [c.verified(i) for i in range(3)] + [c.verified(3, results=false)]
    settlement = compute_settlement(c.task.id, verified, c.k)
    assert [(e.outcome, e.score, e.model_size) for e in settlement.entries] == list(TRUTH.values())
    assert c.keys[3].public_key not in settlement.evaluators
    verify_settlement(settlement, c.state, c.chain.genesis.hash)
    deltas = c.settle(settlement)
    assert deltas[c.comp.trainers[1].address] > 0
    assert deltas.get(c.keys[3].address, 0) == 0  # no reward for a false ranking


def test_a_proposer_cannot_carry_the_false_ranking_or_drop_to_a_minority(committee):
    c = committee
    g = c.chain.genesis.hash
    false = {**TRUTH, 3: (S, 990_000, 90)}
    honest = [c.verified(i) for i in range(3)]
    liar = c.verified(3, results=false)
    settlement = compute_settlement(c.task.id, honest + [liar], c.k)
    with_liar = dataclasses.replace(
        settlement,
        evaluators=tuple(sorted(settlement.evaluators + (c.keys[3].public_key,))),
        rankings=tuple(sorted(settlement.rankings + (liar.signed,), key=lambda r: r.ranking.evaluator)),
    )
    with pytest.raises(SettlementRejected, match="merge"):
        verify_settlement(with_liar, c.state, g)
    # The liar's values with one honest ranking: no value reaches k, nothing can settle.
    assert compute_settlement(c.task.id, [liar, honest[0]], c.k) is None
    # Rewriting an accepted score is caught by every node, not only by evaluators.
    forged = dataclasses.replace(settlement, entries=(RankEntry(1, S, 999_999, 100),) + settlement.entries[1:])
    with pytest.raises(SettlementRejected):
        verify_settlement(forged, c.state, g)


def test_a_voter_that_evaluated_rejects_a_meta_ranking_unlike_its_own(committee):
    c = committee
    settlement = compute_settlement(c.task.id, [c.verified(i) for i in range(4)], c.k)
    mine = c.ranking(0, results={**TRUTH, 1: (S, 900_001, 100)}).ranking
    with pytest.raises(SettlementRejected, match="own scores"):
        verify_settlement(settlement, c.state, c.chain.genesis.hash, own=mine)


def test_rankings_need_committee_seats_signatures_and_shape(committee):
    c = committee
    g = c.chain.genesis.hash
    outsider = c.chain.keys[5]  # no stake: never on a committee
    r = CandidateRanking(c.task.id, outsider.public_key, c.seats[0].proof, S, 1, ())
    with pytest.raises(InvalidRanking):
        verify_ranking(sign_ranking(outsider, g, r), c.state, g)
    # Another member's credential does not seat this one.
    with pytest.raises(InvalidRanking, match="committee"):
        verify_ranking(c.ranking(0, credential=c.seats[1].proof), c.state, g)
    signed = c.ranking(0)
    with pytest.raises(InvalidRanking, match="signature"):
        verify_ranking(dataclasses.replace(signed, signature=bytes(64)), c.state, g)
    short = dataclasses.replace(signed.ranking, entries=signed.ranking.entries[:2])
    with pytest.raises(InvalidRanking, match="every submission"):
        verify_ranking(sign_ranking(c.keys[0], g, short), c.state, g)
    with pytest.raises(InvalidRanking, match="score 0"):
        verify_ranking(c.ranking(0, results={**TRUTH, 1: (I, 5, 0)}), c.state, g)


def test_k_counts_weight_not_keys(committee):
    """Evaluators 0 and 3 (weight 3 + 3) are two keys but only 6 sub-users: under k = 11."""
    c = committee
    assert compute_settlement(c.task.id, [c.verified(0), c.verified(3)], c.k) is None
    s = compute_settlement(c.task.id, [c.verified(1), c.verified(2), c.verified(3)], c.k)
    assert s is not None and len(s.evaluators) == 3  # 5 + 4 + 3 = 12


def test_an_equivocating_evaluator_is_discarded(committee):
    c = committee
    other = c.verified(0, results={**TRUTH, 3: (S, 1, 90)})
    rankings = [c.verified(i) for i in range(4)] + [other]
    settlement = compute_settlement(c.task.id, rankings, c.k)
    assert c.keys[0].public_key not in settlement.evaluators
    assert len(settlement.evaluators) == 3
    # Evaluator 1 (weight 5) equivocating leaves 3 + 4 + 3 = 10 < k: nothing settles.
    other = c.verified(1, results={**TRUTH, 3: (S, 1, 90)})
    assert compute_settlement(c.task.id, [c.verified(i) for i in range(4)] + [other], c.k) is None


def test_invalid_and_unevaluated_reports_against_an_accepted_score(committee):
    """A score accepted by k of weight stands even if a member said INVALID or UNEVALUATED
    (paper III-C); that member's ranking is then not genuine."""
    c = committee
    slow = c.verified(0, results={**TRUTH, 2: (U, 0, 0)})
    rankings = [slow] + [c.verified(i) for i in (1, 2, 3)]
    settlement = compute_settlement(c.task.id, rankings, c.k)
    assert settlement.entries[1] == RankEntry(2, S, 950_000, 120)
    assert c.keys[0].public_key not in settlement.evaluators
    # Everyone agrees a model is INVALID: accepted as INVALID.
    broken = {**TRUTH, 1: (I, 0, 0)}
    s = compute_settlement(c.task.id, [c.verified(i, results=broken) for i in range(4)], c.k)
    assert s.entries[0].outcome is I and len(s.evaluators) == 4


@settings(max_examples=25, deadline=None)
@given(order=st.permutations(range(4)), seed=st.integers(0, 2**32))
def test_the_merge_does_not_depend_on_arrival_order(committee, order, seed):
    c = committee
    rng = random.Random(seed)
    liar = rng.randrange(4)
    lie = {**TRUTH, rng.choice([1, 2, 3]): (S, rng.randrange(10**6), 100)}
    pool = {i: c.verified(i, results=lie if i == liar else TRUTH) for i in range(4)}
    first = compute_settlement(c.task.id, [pool[i] for i in range(4)], c.k)
    assert compute_settlement(c.task.id, [pool[i] for i in order], c.k) == first
