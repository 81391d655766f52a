"""Settlement (paper III-D): who gets paid, tie-breaks, the baseline, the withheld test set,
and which task a block must settle."""

import dataclasses

import pytest

from tests.test_chain_tasks import Competition
from wekacoin.chain.blocks import apply_block
from wekacoin.chain.errors import BlockError, InvalidSettlement
from wekacoin.chain.settlement import split_evenly
from wekacoin.chain.tasks import compute_task_to_settle, ready_height
from wekacoin.testing.chain import fake_cid
from wekacoin.types.ledger import TaskStatus
from wekacoin.types.metric import Metric
from wekacoin.types.ranking import Outcome
from wekacoin.types.tx import RevealModel, RevealTraining, SubmitModel

S, I, U = Outcome.SCORED, Outcome.INVALID, Outcome.UNEVALUATED


def ready_competition(reveal_test=True, reveal_models=(0, 1, 2), early=0, **spec):
    """Three submissions (ids 1, 2, 3), revealed as asked, chain at the ready height - 1
    (or `early` blocks before that)."""
    comp = Competition(**spec)
    comp.reveal_training()
    cids = [fake_cid(f"model-{i}") for i in range(3)]
    for t, cid in zip(comp.trainers, cids):
        comp.submit(t, cid)
    comp.chain.advance_to(comp.spec.tbh - 1)
    if reveal_test:
        comp.reveal_test()
    else:
        comp.chain.advance_to(comp.spec.tbh + comp.params.test_reveal_window - 1)
    for i in reveal_models:
        comp.commit(comp.trainers[i], RevealModel(1, cids[i]))
    comp.chain.advance_to(ready_height(comp.task, comp.params) - 1 - early)
    return comp


def balances(comp):
    keys = [comp.supplier, *comp.trainers, *comp.chain.keys[:4]]
    return {k.address: comp.chain.state.get_account(k.address).balance for k in keys}


def deltas(comp, before):
    after = balances(comp)
    return {a: after[a] - before[a] for a in before if after[a] != before[a]}


def settle(comp, results, **kw):
    before = balances(comp)
    comp.chain.commit(settlement=comp.chain.settlement(1, results, **kw))
    return deltas(comp, before)


def test_winner_takes_the_reward_and_evaluators_share_the_rest():
    comp = ready_competition()
    spec, params = comp.spec, comp.params
    d = settle(comp, {1: (S, 900_000, 100), 2: (S, 950_000, 100), 3: (S, 800_000, 100)})
    t0, t1, t2 = (t.address for t in comp.trainers)
    # 3 submissions: the top ceil(3 * 25%) = 1 gets its participation fee back.
    assert d[t1] == spec.reward + spec.participation_fee
    assert t0 not in d and t2 not in d
    pool = spec.hosting_fee + 2 * spec.participation_fee + params.settlement_reward
    evaluators = [k.address for k in comp.chain.keys[:3]]
    # Evaluator 0 also proposed the block, but empty blocks carry no fees.
    assert sum(d[e] for e in evaluators) == pool
    assert max(d[e] for e in evaluators) - min(d[e] for e in evaluators) <= 1
    task = comp.task
    assert task.status is TaskStatus.SETTLED and task.escrow == 0
    assert comp.chain.state.tip.minted == params.settlement_reward
    assert comp.chain.state.tip.open_tasks == ()


def test_ties_go_to_the_smaller_model():
    comp = ready_competition()
    d = settle(comp, {1: (S, 900_000, 500), 2: (S, 900_000, 400), 3: (S, 900_000, 600)})
    assert d[comp.trainers[1].address] >= comp.spec.reward


def test_ties_of_size_go_to_the_earlier_submission():
    comp = ready_competition()
    d = settle(comp, {1: (S, 900_000, 500), 2: (S, 900_000, 500), 3: (S, 900_000, 500)})
    assert d[comp.trainers[0].address] >= comp.spec.reward  # submitted in an earlier block


def test_no_model_beats_the_baseline_returns_the_reward():
    comp = ready_competition(baseline_score=990_000)
    d = settle(comp, {1: (S, 900_000, 1), 2: (S, 950_000, 1), 3: (S, 980_000, 1)},
               baseline=(S, 990_000))
    assert d[comp.supplier.address] == comp.spec.reward
    assert all(d.get(t.address, 0) <= comp.spec.participation_fee for t in comp.trainers)


def test_equal_to_the_baseline_is_not_beating_it():
    comp = ready_competition()
    d = settle(comp, {1: (S, 700_000, 1)}, baseline=(S, 700_000))
    assert d[comp.supplier.address] == comp.spec.reward


def test_unscored_baseline_falls_back_to_its_training_score():
    comp = ready_competition(baseline_score=850_000)
    d = settle(comp, {1: (S, 800_000, 1), 2: (S, 860_000, 1)}, baseline=(U, 0))
    assert d[comp.trainers[1].address] >= comp.spec.reward


def test_lower_is_better_metrics():
    comp = ready_competition(metric=Metric.RMSE, baseline_score=5_000_000)
    d = settle(comp, {1: (S, 3_000_000, 1), 2: (S, 2_000_000, 1), 3: (S, 4_000_000, 1)},
               baseline=(S, 5_000_000))
    assert d[comp.trainers[1].address] >= comp.spec.reward


def test_invalid_and_unevaluated_models_forfeit_their_fees():
    comp = ready_competition()
    d = settle(comp, {1: (I, 0, 0), 2: (S, 900_000, 10), 3: (U, 0, 0)})
    assert d[comp.trainers[1].address] == comp.spec.reward + comp.spec.participation_fee
    evaluators = sum(d[k.address] for k in comp.chain.keys[:3])
    assert evaluators == (comp.spec.hosting_fee + 2 * comp.spec.participation_fee
                          + comp.params.settlement_reward)


def test_withheld_test_set_burns_the_hosting_fee_but_pays_trainers():
    """DanKu 4.3: a supplier who never reveals the test set loses the hosting fee; the models
    are still ranked (on the training groups) and the best one is paid."""
    comp = ready_competition(reveal_test=False)
    assert not comp.task.test_revealed
    burned = comp.chain.state.tip.burned
    d = settle(comp, {1: (S, 900_000, 1), 2: (S, 950_000, 1), 3: (S, 800_000, 1)})
    assert d[comp.trainers[1].address] >= comp.spec.reward
    assert comp.chain.state.tip.burned == burned + comp.spec.hosting_fee
    assert comp.supplier.address not in d
    evaluators = sum(d[k.address] for k in comp.chain.keys[:3])
    assert evaluators == 2 * comp.spec.participation_fee + comp.params.settlement_reward


def test_unrevealed_model_can_only_be_invalid():
    comp = ready_competition(reveal_models=(0, 1))
    with pytest.raises(InvalidSettlement, match="never revealed"):
        comp.chain.build(settlement=comp.chain.settlement(1, {3: (S, 990_000, 1)}))
    d = settle(comp, {1: (S, 900_000, 1)})
    assert d[comp.trainers[0].address] >= comp.spec.reward


def test_settlement_before_ready_is_refused():
    comp = ready_competition()  # at ready - 1: the next block is the first that may settle
    settlement = comp.chain.settlement(1, {1: (S, 1, 1)})
    comp.chain.commit(settlement=settlement)
    assert comp.task.status is TaskStatus.SETTLED
    comp2 = ready_competition(early=1)
    with pytest.raises(InvalidSettlement, match="no task is ready"):
        comp2.chain.build(settlement=comp2.chain.settlement(1, {1: (S, 1, 1)}))


@pytest.mark.parametrize("mutate, message", [
    (lambda s: dataclasses.replace(s, task_id=7), "settles task 1"),
    (lambda s: dataclasses.replace(s, entries=s.entries[:2]), "every submission"),
    (lambda s: dataclasses.replace(s, entries=s.entries[::-1]), "every submission"),
    (lambda s: dataclasses.replace(s, evaluators=()), "at least one"),
    (lambda s: dataclasses.replace(s, evaluators=s.evaluators[::-1]), "sorted"),
    (lambda s: dataclasses.replace(s, evaluators=s.evaluators[:2]), "signers"),
    (lambda s: dataclasses.replace(s, entries=(dataclasses.replace(s.entries[0], model_size=0),)
                                   + s.entries[1:]), "model size"),
    (lambda s: dataclasses.replace(s, entries=(dataclasses.replace(s.entries[0], outcome=I),)
                                   + s.entries[1:]), "score 0"),
    (lambda s: dataclasses.replace(s, baseline_outcome=U), "baseline"),
])
def test_malformed_settlements_are_refused(mutate, message):
    comp = ready_competition()
    good = comp.chain.settlement(1, {1: (S, 900_000, 5), 2: (S, 1, 5), 3: (S, 2, 5)})
    with pytest.raises(InvalidSettlement, match=message):
        comp.chain.build(settlement=mutate(good))


def test_evaluator_without_stake_is_refused():
    comp = ready_competition()
    with pytest.raises(InvalidSettlement, match="no stake"):
        comp.chain.build(settlement=comp.chain.settlement(1, {1: (S, 1, 1)}, evaluators=(0, 6)))


def two_ready_tasks(submit_to_second):
    """Tasks 1 and 2 with the same windows; optionally one submission to task 2."""
    comp = Competition(tbh=20)
    chain = comp.chain
    spec2, data2 = chain.task_spec(label="second", tbh=20)
    chain.commit([chain.tx(comp.supplier, spec2)])
    comp.reveal_training()
    test2 = set(chain.state.get_task(2).test_groups)
    comp.commit(comp.supplier, RevealTraining(2, data2.reveals([i for i in range(10) if i not in test2]), 1))
    if submit_to_second:
        comp.commit(comp.trainers[0], SubmitModel(2, b"m" * 32, 1))
    ready = max(ready_height(chain.state.get_task(t), comp.params) for t in (1, 2))
    chain.advance_to(ready - 1)
    return chain, ready


def test_a_block_settles_the_task_with_most_submissions_then_lowest_id():
    chain, ready = two_ready_tasks(submit_to_second=False)
    assert compute_task_to_settle(chain.state, ready) == 1  # a tie on submissions: lowest id
    chain, ready = two_ready_tasks(submit_to_second=True)
    assert compute_task_to_settle(chain.state, ready) == 2  # more submissions wins
    with pytest.raises(InvalidSettlement, match="settles task 2"):
        chain.build(settlement=chain.settlement(1))
    chain.commit(settlement=chain.settlement(2))
    assert compute_task_to_settle(chain.state, ready + 1) == 1  # not used before: the other


@pytest.mark.parametrize("amount, n", [(10, 3), (0, 2), (7, 7), (1, 5), (10**12 + 3, 4)])
def test_split_evenly_distributes_everything(amount, n):
    recipients = [bytes([i]) * 20 for i in range(n)][::-1]
    shares = split_evenly(amount, recipients)
    assert sum(shares.values()) == amount
    assert max(shares.values()) - min(shares.values()) <= (1 if amount % n else 0)
    ordered = [shares[r] for r in sorted(recipients)]
    assert ordered == sorted(ordered, reverse=True)  # the remainder goes to the first ones


def test_settled_block_with_transactions_is_deterministic():
    comp_a, comp_b = ready_competition(), ready_competition()
    results = {1: (S, 900_000, 100), 2: (S, 950_000, 100)}
    block_a = comp_a.chain.commit(settlement=comp_a.chain.settlement(1, results))
    block_b = comp_b.chain.commit(settlement=comp_b.chain.settlement(1, results))
    assert block_a.header.state_root == block_b.header.state_root
    assert block_a.hash == block_b.hash


def test_settlement_errors_surface_from_apply_block():
    comp = ready_competition()
    block, _ = comp.chain.build(settlement=comp.chain.settlement(1, {1: (S, 1, 1)}))
    apply_block(comp.chain.state, block)  # valid
    with pytest.raises(BlockError, match="metadata hash"):
        apply_block(comp.chain.state, dataclasses.replace(block, meta=dataclasses.replace(
            block.meta, settlement=None)))


def test_a_task_nobody_settles_expires_with_refunds():
    """If no committee agrees on a ranking within the settlement window, the task must not
    block later settlements: it expires, the supplier gets the reward back, every trainer the
    participation fee, and the hosting fee is burned."""
    from wekacoin.chain.tasks import Phase, compute_phase, settlement_deadline

    comp = ready_competition()
    deadline = settlement_deadline(comp.task, comp.params)
    comp.chain.advance_to(deadline)
    assert compute_task_to_settle(comp.chain.state, deadline) == 1
    assert compute_task_to_settle(comp.chain.state, deadline + 1) is None
    before = balances(comp)
    burned = comp.chain.state.tip.burned
    comp.chain.commit()
    d = deltas(comp, before)
    assert d[comp.supplier.address] == comp.spec.reward
    assert all(d[t.address] == comp.spec.participation_fee for t in comp.trainers)
    assert comp.chain.state.tip.burned == burned + comp.spec.hosting_fee
    assert compute_phase(comp.task, comp.chain.height, comp.params) is Phase.EXPIRED
    assert comp.chain.state.tip.open_tasks == ()
    with pytest.raises(InvalidSettlement, match="no task is ready"):
        comp.chain.build(settlement=comp.chain.settlement(1))
