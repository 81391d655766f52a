"""Settlement (paper III-D): the chain settles a ready task from the rankings earlier blocks
recorded. Who gets paid (evaluators by sub-users), tie-breaks, the baseline, the withheld test
set, the TaskSettlement record, which tasks a block settles, and expiry."""

import dataclasses
import hashlib
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.test_chain_tasks import Competition
from wekacoin.chain.blocks import apply_block, build_block
from wekacoin.chain.errors import BlockError, InvalidRanking
from wekacoin.chain.rankings import select_evaluator, sign_ranking
from wekacoin.chain.settlement import split_by_weight
from wekacoin.chain.tasks import Phase, compute_phase, ready_height, settlement_deadline, upload_end
from wekacoin.testing.chain import FAST_PARAMS, fake_cid
from wekacoin.types.block import BlockMeta
from wekacoin.types.ledger import TaskStatus
from wekacoin.types.metric import Metric
from wekacoin.types.ranking import CandidateRanking, Outcome, Payment, RankEntry, Resolution
from wekacoin.types.tx import RevealModel, RevealTraining, SubmitModel

S, X, U = Outcome.SCORED, Outcome.INVALID, Outcome.UNEVALUATED

# A committee of ~100 expected sub-users, so every validator has a seat and the four together
# always reach k (the k rule itself is tested on a small committee in test_ranking).
PARAMS = dataclasses.replace(FAST_PARAMS, tau_evaluators=100)
ALL = (0, 1, 2, 3)  # the four validators of LocalChain


def ready_competition(reveal_test=True, reveal_models=(0, 1, 2), params=PARAMS, **spec):
    """Three submissions (ids 1, 2, 3) in three blocks, models revealed as asked, the chain at
    the upload end: the evaluation committee is drawn, rankings can be recorded."""
    spec.setdefault("tbh", 10)
    comp = Competition(params=params, **spec)
    comp.reveal_training()
    cids = [fake_cid(f"model-{i}") for i in range(3)]
    for t, cid in zip(comp.trainers, cids, strict=True):
        comp.submit(t, cid)
    comp.chain.advance_to(comp.spec.tbh - 1)
    if reveal_test:
        comp.reveal_test()
    else:
        comp.chain.advance_to(comp.spec.tbh + comp.params.test_reveal_window - 1)
    for i in reveal_models:
        comp.commit(comp.trainers[i], RevealModel(1, cids[i], 1_000))
    comp.chain.advance_to(upload_end(comp.task, comp.params))
    return comp


def balances(comp):
    keys = [comp.supplier, *comp.trainers, *comp.chain.keys[:4]]
    return {k.address: comp.chain.state.get_account(k.address).balance for k in keys}


def deltas(comp, before):
    after = balances(comp)
    return {a: after[a] - before[a] for a in before if after[a] != before[a]}


def settle(comp, results, evaluators=ALL, **kw):
    """Record agreeing rankings, move to the ready height; balance changes and the record."""
    before = balances(comp)
    record = comp.chain.settle(1, results, evaluators=evaluators, **kw)
    assert record is not None, "the task did not settle"
    return deltas(comp, before), record


def seats(comp, evaluators=ALL):
    """The evaluators' sub-users on task 1's committee, looked up independently."""
    chain = comp.chain
    return {
        chain.keys[i].address: select_evaluator(chain.keys[i], comp.task, chain.state).subusers
        for i in evaluators
    }


def assert_paid_by_subusers(d, weights, pool):
    """Each evaluator got its sub-users' part of `pool` (integer division, remainder <= 1)."""
    total = sum(weights.values())
    assert sum(d.get(a, 0) for a in weights) == pool
    for a, j in weights.items():
        assert pool * j // total <= d.get(a, 0) <= pool * j // total + 1


def test_winner_takes_the_reward_and_evaluators_share_the_rest_by_subusers():
    comp = ready_competition()
    spec, params = comp.spec, comp.params
    weights = seats(comp)
    assert len(set(weights.values())) > 1  # unequal seats: a split per key would differ
    d, record = settle(comp, {1: (S, 900_000, 100), 2: (S, 950_000, 100), 3: (S, 800_000, 100)})
    t0, t1, t2 = (t.address for t in comp.trainers)
    # 3 submissions: the top ceil(3 * 25%) = 1 gets its participation fee back.
    assert d[t1] == spec.reward + spec.participation_fee
    assert t0 not in d and t2 not in d
    pool = spec.hosting_fee + 2 * spec.participation_fee + params.settlement_reward
    # Only empty blocks since the rankings: no proposer fees mix in.
    assert_paid_by_subusers(d, weights, pool)
    task = comp.task
    assert task.status is TaskStatus.SETTLED and task.escrow == 0
    assert task.settled_height == comp.chain.height == ready_height(task, params)
    assert comp.chain.state.tip.minted == params.settlement_reward
    assert comp.chain.state.tip.open_tasks == ()
    # The record says how it ended and where every coin went.
    assert record.resolution is Resolution.WON and record.winner == 2
    assert record.height == ready_height(task, params)
    assert record.entries == (RankEntry(1, S, 900_000, 100), RankEntry(2, S, 950_000, 100),
                              RankEntry(3, S, 800_000, 100))
    assert (record.baseline_outcome, record.baseline_score) == (S, comp.data.baseline_score)
    by_key = {comp.chain.keys[i].public_key: comp.chain.keys[i].address for i in ALL}
    assert {by_key[e.evaluator]: e.subusers for e in record.evaluators} == weights
    keys = [e.evaluator for e in record.evaluators]
    assert keys == sorted(keys)
    assert record.payments == tuple(Payment(a, d[a]) for a in sorted(d))
    assert record.minted == params.settlement_reward and record.burned == 0
    assert sum(p.amount for p in record.payments) == (
        spec.reward + spec.hosting_fee + 3 * spec.participation_fee + params.settlement_reward
    )


def test_the_recorded_rankings_are_dropped_once_the_task_ends():
    comp = ready_competition()
    comp.chain.commit(rankings=comp.chain.rankings(1, {1: (S, 1, 1)}, evaluators=ALL))
    keys = [comp.chain.keys[i].public_key for i in ALL]
    assert comp.task.rankers == tuple(sorted(keys))
    assert all(comp.chain.state.get_ranking(1, k) is not None for k in keys)
    comp.chain.advance_to(ready_height(comp.task, comp.params))
    assert comp.task.status is TaskStatus.SETTLED and comp.task.rankers == ()
    assert all(comp.chain.state.get_ranking(1, k) is None for k in keys)


def test_ties_go_to_the_smaller_model():
    comp = ready_competition()
    d, record = settle(comp, {1: (S, 900_000, 500), 2: (S, 900_000, 400), 3: (S, 900_000, 600)})
    assert d[comp.trainers[1].address] >= comp.spec.reward
    assert record.winner == 2


def test_ties_of_size_go_to_the_earlier_submission():
    comp = ready_competition()
    heights = [comp.chain.state.get_submission(s).height for s in (1, 2, 3)]
    assert heights == sorted(heights) and len(set(heights)) == 3
    d, record = settle(comp, {1: (S, 900_000, 500), 2: (S, 900_000, 500), 3: (S, 900_000, 500)})
    assert d[comp.trainers[0].address] >= comp.spec.reward  # submitted in an earlier block
    assert record.winner == 1


def test_ties_in_one_block_go_to_the_lowest_hash_of_trainer_key_and_model():
    """Same score, size and height: the submission id (the order a proposer chose) does not
    decide; H(trainer key || model CID) does."""
    comp = Competition(params=PARAMS, tbh=10)
    comp.reveal_training()
    cids = [fake_cid(f"model-{i}") for i in range(3)]
    comp.submit_all(cids)
    comp.chain.advance_to(comp.spec.tbh - 1)
    comp.reveal_test()
    comp.chain.commit([
        comp.chain.tx(t, RevealModel(1, c, 1_000)) for t, c in zip(comp.trainers, cids, strict=True)
    ])
    comp.chain.advance_to(upload_end(comp.task, comp.params))
    tie = hashlib.sha256
    hashes = [tie(b"wekacoin/tie-break/v1" + t.public_key + c.encode()).digest()
              for t, c in zip(comp.trainers, cids, strict=True)]
    expected = hashes.index(min(hashes))
    assert expected != 0  # not simply the first submission
    d, record = settle(comp, {1: (S, 900_000, 500), 2: (S, 900_000, 500), 3: (S, 900_000, 500)})
    assert record.winner == expected + 1
    assert d[comp.trainers[expected].address] >= comp.spec.reward


def test_no_model_beats_the_baseline_returns_the_reward():
    comp = ready_competition(baseline_score=990_000)
    d, record = settle(comp, {1: (S, 900_000, 1), 2: (S, 950_000, 1), 3: (S, 980_000, 1)},
                       baseline=(S, 990_000))
    assert d[comp.supplier.address] == comp.spec.reward
    assert all(d.get(t.address, 0) <= comp.spec.participation_fee for t in comp.trainers)
    assert record.resolution is Resolution.BASELINE_KEPT and record.winner == 0


def test_equal_to_the_baseline_is_not_beating_it():
    comp = ready_competition()
    d, record = settle(comp, {1: (S, 700_000, 1)}, baseline=(S, 700_000))
    assert d[comp.supplier.address] == comp.spec.reward
    assert record.resolution is Resolution.BASELINE_KEPT


def test_the_bar_is_the_committees_baseline_score_not_the_suppliers_claim():
    """The supplier states 990_000 for its baseline; the committee scores it 850_000. A model
    at 900_000 beats the committee's score and wins."""
    comp = ready_competition(baseline_score=990_000)
    d, record = settle(comp, {1: (S, 900_000, 1)}, baseline=(S, 850_000))
    assert d[comp.trainers[0].address] >= comp.spec.reward
    assert record.resolution is Resolution.WON and record.baseline_score == 850_000


def test_an_unscorable_baseline_sets_no_bar():
    """A supplier whose baseline the committee cannot run (INVALID or UNEVALUATED) sets no
    bar: the best scored model wins, even below the supplier's stated baseline score."""
    for outcome in (U, X):
        comp = ready_competition(baseline_score=850_000)
        d, record = settle(comp, {1: (S, 800_000, 1), 2: (S, 810_000, 1)}, baseline=(outcome, 0))
        assert d[comp.trainers[1].address] >= comp.spec.reward
        assert comp.supplier.address not in d
        assert (record.resolution, record.winner) == (Resolution.WON, 2)
        assert record.baseline_outcome is outcome


def test_an_unscorable_baseline_and_no_scored_model_returns_the_reward():
    comp = ready_competition()
    d, record = settle(comp, {1: (X, 0, 0), 2: (U, 0, 0)}, baseline=(U, 0))
    assert d[comp.supplier.address] == comp.spec.reward
    assert record.resolution is Resolution.BASELINE_KEPT


def test_lower_is_better_metrics():
    comp = ready_competition(metric=Metric.RMSE, baseline_score=5_000_000)
    d, record = settle(comp, {1: (S, 3_000_000, 1), 2: (S, 2_000_000, 1), 3: (S, 4_000_000, 1)},
                       baseline=(S, 5_000_000))
    assert d[comp.trainers[1].address] >= comp.spec.reward
    assert record.winner == 2


def test_invalid_and_unevaluated_models_forfeit_their_fees():
    comp = ready_competition()
    weights = seats(comp)
    d, _ = settle(comp, {1: (X, 0, 0), 2: (S, 900_000, 10), 3: (U, 0, 0)})
    assert d[comp.trainers[1].address] == comp.spec.reward + comp.spec.participation_fee
    assert comp.trainers[0].address not in d and comp.trainers[2].address not in d
    assert_paid_by_subusers(d, weights, comp.spec.hosting_fee + 2 * comp.spec.participation_fee
                            + comp.params.settlement_reward)


def test_withheld_test_set_burns_the_hosting_fee_but_pays_trainers():
    """DanKu 4.3: a supplier who never reveals the test set loses the hosting fee; the models
    are still ranked (on the training groups) and the best one is paid."""
    comp = ready_competition(reveal_test=False)
    assert not comp.task.test_revealed
    burned = comp.chain.state.tip.burned
    weights = seats(comp)
    d, record = settle(comp, {1: (S, 900_000, 1), 2: (S, 950_000, 1), 3: (S, 800_000, 1)})
    assert d[comp.trainers[1].address] >= comp.spec.reward
    assert comp.chain.state.tip.burned == burned + comp.spec.hosting_fee
    assert record.burned == comp.spec.hosting_fee
    assert comp.supplier.address not in d
    assert_paid_by_subusers(d, weights, 2 * comp.spec.participation_fee
                            + comp.params.settlement_reward)


def test_only_genuine_evaluators_are_paid_and_recorded():
    """Evaluator 3 reports a different score for submission 3: its value never reaches k,
    its ranking is not genuine, it is paid nothing and left out of the record."""
    comp = ready_competition()
    chain = comp.chain
    truth = {1: (S, 900_000, 1), 2: (S, 950_000, 1), 3: (S, 800_000, 1)}
    honest = chain.rankings(1, truth, evaluators=(0, 1, 2))
    liar = chain.ranking(1, 3, {**truth, 3: (S, 990_000, 1)})
    weights = seats(comp, (0, 1, 2))
    before = balances(comp)
    chain.commit(rankings=tuple(sorted(honest + (liar,), key=lambda s: s.ranking.evaluator)))
    chain.advance_to(ready_height(comp.task, comp.params))
    d = deltas(comp, before)
    record = chain.state.get_settlement(1)
    assert record.winner == 2
    assert chain.keys[3].address not in d
    assert {e.evaluator for e in record.evaluators} == {chain.keys[i].public_key for i in (0, 1, 2)}
    assert_paid_by_subusers(d, weights, comp.spec.hosting_fee + 2 * comp.spec.participation_fee
                            + comp.params.settlement_reward)


def test_unrevealed_model_can_only_be_invalid():
    comp = ready_competition(reveal_models=(0, 1))
    with pytest.raises(InvalidRanking, match="never revealed"):
        comp.chain.build(rankings=(comp.chain.ranking(1, 0, {3: (S, 990_000, 1)}),))
    with pytest.raises(InvalidRanking, match="never revealed"):
        comp.chain.build(rankings=(comp.chain.ranking(1, 0, {3: (U, 0, 0)}),))
    d, record = settle(comp, {1: (S, 900_000, 1)})
    assert d[comp.trainers[0].address] >= comp.spec.reward
    assert record.entries[2] == RankEntry(3, X, 0, 0)


def test_a_task_settles_exactly_at_its_ready_height():
    comp = ready_competition()
    ready = ready_height(comp.task, comp.params)
    comp.chain.commit(rankings=comp.chain.rankings(1, {1: (S, 1, 1)}, evaluators=ALL))
    comp.chain.advance_to(ready - 1)
    assert comp.task.status is TaskStatus.ACTIVE
    assert comp.chain.state.get_settlement(1) is None
    comp.chain.commit()
    assert comp.task.status is TaskStatus.SETTLED
    assert comp.chain.state.get_settlement(1).height == ready


def unseated_ranking(chain, task_id, evaluator=0):
    """A ranking signed by a validator, with no valid committee credential."""
    key = chain.keys[evaluator]
    ranking = CandidateRanking(task_id, key.public_key, bytes(80), S, 1, ())
    return sign_ranking(key, chain.genesis_hash, ranking)


def test_rankings_before_the_upload_end_are_refused():
    """Before uploads close the committee is not drawn: nothing can be recorded."""
    comp = Competition(params=PARAMS, tbh=10)
    comp.reveal_training()
    comp.chain.advance_to(upload_end(comp.task, comp.params) - 2)
    assert comp.chain.ranking(1, 0) is None  # no seat can be looked up yet
    with pytest.raises(InvalidRanking, match="not being ranked"):
        comp.chain.build(rankings=(unseated_ranking(comp.chain, 1),))


def test_settlement_is_no_choice_of_the_proposer():
    """The ready task settles in whatever block comes at its ready height, even the empty
    block of a round without a proposer, and with the same outcome."""
    results = {1: (S, 900_000, 1), 2: (S, 950_000, 1)}
    outcomes = []
    for proposer in (0, 3, None):
        comp = ready_competition()
        chain = comp.chain
        chain.commit(rankings=chain.rankings(1, results, evaluators=ALL))
        chain.advance_to(ready_height(comp.task, comp.params) - 1)
        key = None if proposer is None else chain.keys[proposer].public_key
        block, state = build_block(
            chain.state, vtxs=[], seed=chain.seed_for(chain.height + 1), proposer=key,
            meta=BlockMeta(None, ()), time_ms=chain.height + 1,
        )
        outcomes.append(state.get_settlement(1))
    assert outcomes[0] is not None and outcomes[0] == outcomes[1] == outcomes[2]


def _mutations():
    def entries(f):
        return lambda r: dataclasses.replace(r, entries=f(r.entries))

    def first(**change):
        return entries(lambda es: (dataclasses.replace(es[0], **change),) + es[1:])

    return [
        (lambda r: dataclasses.replace(r, task_id=7), "not being ranked"),
        (entries(lambda es: es[:2]), "every submission"),
        (entries(lambda es: es[::-1]), "every submission"),
        (entries(lambda es: es + es[:1]), "every submission"),
        (first(model_size=0), "model size"),
        (first(outcome=X), "score and size 0"),
        (first(outcome=U, score=0), "score and size 0"),
        (lambda r: dataclasses.replace(r, baseline_outcome=U), "unscored baseline"),
    ]


@pytest.mark.parametrize("mutate, message", _mutations())
def test_malformed_rankings_are_refused(mutate, message):
    comp = ready_competition()
    good = comp.chain.ranking(1, 0, {1: (S, 900_000, 5), 2: (S, 1, 5), 3: (S, 2, 5)})
    comp.chain.build(rankings=(good,))  # valid as made
    bad = sign_ranking(comp.chain.keys[0], comp.chain.genesis_hash, mutate(good.ranking))
    with pytest.raises(InvalidRanking, match=message):
        comp.chain.build(rankings=(bad,))


def test_a_key_without_a_seat_is_refused():
    comp = ready_competition()
    chain = comp.chain
    outsider = chain.keys[6]  # no stake
    assert chain.ranking(1, 6) is None
    seated = chain.ranking(1, 0).ranking
    stolen = dataclasses.replace(seated, evaluator=outsider.public_key)
    with pytest.raises(InvalidRanking, match="evaluation committee"):
        chain.build(rankings=(sign_ranking(outsider, chain.genesis_hash, stolen),))
    with pytest.raises(InvalidRanking, match="signature"):  # signed by another key
        chain.build(rankings=(dataclasses.replace(chain.ranking(1, 1), ranking=seated),))


def test_a_block_records_rankings_once_each_in_order_and_never_twice():
    comp = ready_competition()
    chain = comp.chain
    a, b = chain.rankings(1, {1: (S, 1, 1)}, evaluators=(0, 1))
    with pytest.raises(InvalidRanking, match="once each"):
        chain.build(rankings=(b, a))
    with pytest.raises(InvalidRanking, match="once each"):
        chain.build(rankings=(a, a))
    i = 0 if a.ranking.evaluator == chain.keys[0].public_key else 1
    other = chain.ranking(1, i, {1: (S, 2, 1)})
    assert other.ranking.evaluator == a.ranking.evaluator and other != a
    with pytest.raises(InvalidRanking, match="once each"):  # two by one evaluator in a block
        chain.build(rankings=tuple(sorted((a, other), key=lambda s: s.signature)))
    chain.commit(rankings=(a,))
    # The first recorded ranking binds its evaluator: a second one, same or different, is refused.
    for again in (a, other):
        with pytest.raises(InvalidRanking, match="already holds"):
            chain.build(rankings=(again,))
    chain.commit(rankings=(b,))
    assert comp.task.rankers == tuple(sorted((a.ranking.evaluator, b.ranking.evaluator)))


def two_ready_tasks(submit_to_second, params=PARAMS):
    """Tasks 1 and 2 with the same windows; optionally one submission to task 2. The chain is
    at their upload end."""
    comp = Competition(params=params, tbh=20)
    chain = comp.chain
    spec2, data2 = chain.task_spec(label="second", tbh=20)
    chain.commit([chain.tx(comp.supplier, spec2)])
    comp.reveal_training()
    chain.advance_to(chain.state.get_task(2).published_height + params.test_split_delay)
    test2 = set(chain.state.get_task(2).test_groups)
    comp.commit(comp.supplier, RevealTraining(
        2, data2.reveals([i for i in range(10) if i not in test2]), data2.baseline_cid, 1_000, 1,
    ))
    if submit_to_second:
        comp.commit(comp.trainers[0], SubmitModel(2, b"m" * 32, 1))
    tasks = [chain.state.get_task(t) for t in (1, 2)]
    assert upload_end(tasks[0], params) == upload_end(tasks[1], params)
    chain.advance_to(upload_end(tasks[0], params))
    return chain, ready_height(tasks[0], params)


def test_a_block_settles_the_tasks_with_most_submissions_first_then_lowest_id():
    one_a_block = dataclasses.replace(PARAMS, max_settlements_per_block=1)
    for submit_to_second, first in ((False, 1), (True, 2)):
        chain, ready = two_ready_tasks(submit_to_second, one_a_block)
        chain.commit(rankings=chain.rankings(1, evaluators=ALL) + chain.rankings(2, evaluators=ALL))
        chain.advance_to(ready)
        settled = {t: chain.state.get_settlement(t) for t in (1, 2)}
        assert settled[first].height == ready
        assert settled[3 - first] is None  # one a block: the other waits
        chain.commit()
        assert chain.state.get_settlement(3 - first).height == ready + 1


def test_a_block_settles_several_ready_tasks():
    chain, ready = two_ready_tasks(True)
    assert PARAMS.max_settlements_per_block >= 2
    chain.commit(rankings=chain.rankings(1, evaluators=ALL) + chain.rankings(2, evaluators=ALL))
    chain.advance_to(ready)
    assert chain.state.get_settlement(1).height == chain.state.get_settlement(2).height == ready
    assert chain.state.tip.open_tasks == ()


def scattered(chain, task_id):
    """The four validators' rankings of `task_id`, each with a different baseline score: no
    value has a majority of the weight, the task cannot settle."""
    signed = [chain.ranking(task_id, i, baseline=(S, 100 + i)) for i in ALL]
    return tuple(sorted(signed, key=lambda s: s.ranking.evaluator))


def test_a_task_that_cannot_settle_does_not_hold_back_the_others():
    """Task 2 (more submissions, first in line) has rankings that do not merge: task 1 settles
    in the same block even when a block settles only one task."""
    one_a_block = dataclasses.replace(PARAMS, max_settlements_per_block=1)
    chain, ready = two_ready_tasks(True, one_a_block)
    chain.commit(rankings=chain.rankings(1, evaluators=ALL) + scattered(chain, 2))
    chain.advance_to(ready)
    assert chain.state.get_settlement(1).height == ready
    assert chain.state.get_settlement(2) is None
    assert chain.state.get_task(2).status is TaskStatus.ACTIVE


@pytest.mark.parametrize("amount, weights", [
    (10, [1, 1, 1]), (0, [3, 4]), (7, [1] * 7), (1, [2, 2, 2, 2, 2]), (10**12 + 3, [5, 3, 4, 3]),
    (100, [1, 99]), (1_000, [3, 5, 4, 3]),
])
def test_split_by_weight_distributes_everything(amount, weights):
    recipients = [bytes([i]) * 20 for i in range(len(weights))][::-1]
    shares = split_by_weight(amount, list(zip(recipients, weights, strict=True)))
    assert set(shares) == set(recipients)
    assert sum(shares.values()) == amount
    total = sum(weights)
    extra = {r: shares[r] - amount * w // total for r, w in zip(recipients, weights, strict=True)}
    assert set(extra.values()) <= {0, 1}
    ordered = [extra[r] for r in sorted(recipients)]
    assert ordered == sorted(ordered, reverse=True)  # the remainder goes to the first ones


@settings(max_examples=200, deadline=None)
@given(amount=st.integers(0, 10**15),
       weights=st.lists(st.integers(1, 1_000), min_size=1, max_size=12))
def test_split_by_weight_is_proportional(amount, weights):
    recipients = [i.to_bytes(20, "big") for i in range(len(weights))]
    shares = split_by_weight(amount, list(zip(recipients, weights, strict=True)))
    assert sum(shares.values()) == amount
    total = sum(weights)
    for r, w in zip(recipients, weights, strict=True):
        assert amount * w // total <= shares[r] <= amount * w // total + 1
    for (r1, w1), (r2, w2) in itertools.pairwise(zip(recipients, weights, strict=True)):
        if w1 > w2:
            assert shares[r1] >= shares[r2]  # more sub-users never earn less


def test_settling_block_is_deterministic():
    comp_a, comp_b = ready_competition(), ready_competition()
    results = {1: (S, 900_000, 100), 2: (S, 950_000, 100)}
    for comp in (comp_a, comp_b):
        comp.chain.commit(rankings=comp.chain.rankings(1, results, evaluators=ALL))
        comp.chain.advance_to(ready_height(comp.task, comp.params))
    a, b = comp_a.chain.blocks[-1], comp_b.chain.blocks[-1]
    assert comp_a.chain.state.get_settlement(1) == comp_b.chain.state.get_settlement(1)
    assert a.header.state_root == b.header.state_root
    assert a.hash == b.hash


def test_ranking_errors_surface_from_apply_block():
    comp = ready_competition()
    block, _ = comp.chain.build(rankings=comp.chain.rankings(1, {1: (S, 1, 1)}))
    apply_block(comp.chain.state, block)  # valid
    with pytest.raises(BlockError, match="metadata hash"):
        apply_block(comp.chain.state, dataclasses.replace(block, meta=dataclasses.replace(
            block.meta, rankings=())))


def test_a_task_nobody_settles_expires_with_refunds():
    """If no committee agrees on a ranking within the settlement window, the task must not
    block later settlements: it expires, the supplier gets the reward back, every trainer the
    participation fee, and the hosting fee is burned. Rankings that disagree expire too."""
    for rankings in ("none", "disagreeing"):
        comp = ready_competition()
        chain = comp.chain
        if rankings == "disagreeing":
            chain.commit(rankings=scattered(chain, 1))
            assert len(comp.task.rankers) == 4
        deadline = settlement_deadline(comp.task, comp.params)
        chain.advance_to(deadline)
        assert comp.task.status is TaskStatus.ACTIVE
        before = balances(comp)
        burned = chain.state.tip.burned
        chain.commit()
        d = deltas(comp, before)
        assert d[comp.supplier.address] == comp.spec.reward
        assert all(d[t.address] == comp.spec.participation_fee for t in comp.trainers)
        assert not any(chain.keys[i].address in d for i in ALL)
        assert chain.state.tip.burned == burned + comp.spec.hosting_fee
        assert compute_phase(comp.task, chain.height, comp.params) is Phase.EXPIRED
        assert chain.state.tip.open_tasks == () and comp.task.rankers == ()
        record = chain.state.get_settlement(1)
        assert record.resolution is Resolution.EXPIRED and record.height == deadline + 1
        assert record.payments == tuple(Payment(a, d[a]) for a in sorted(d))
        assert record.burned == comp.spec.hosting_fee and record.minted == 0
        assert record.evaluators == () and record.winner == 0
        with pytest.raises(InvalidRanking, match="not being ranked"):  # nothing more recorded
            chain.build(rankings=(unseated_ranking(chain, 1),))

