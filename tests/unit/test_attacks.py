"""The money rules against rational and Byzantine players, each attack played end to end
through the chain's own block application (docs/protocol.md, "Attacks and why they fail")."""

import dataclasses
import hashlib

import pytest

from wekacoin.chain.errors import GenesisError, InvalidBlockTx, InvalidRanking, WrongPhase
from wekacoin.chain.genesis import validate_params
from wekacoin.chain.rankings import (
    compute_meta_ranking,
    compute_ranking_quorum,
    evaluation_alpha,
    sign_ranking,
)
from wekacoin.chain.tasks import (
    compute_test_groups,
    count_test_groups,
    ready_height,
    settlement_deadline,
    split_height,
    upload_end,
)
from wekacoin.crypto.keys import KeyPair
from wekacoin.sortition import select
from wekacoin.testing.chain import FAST_PARAMS, LocalChain, fake_cid
from wekacoin.types.ledger import TaskStatus
from wekacoin.types.ranking import CandidateRanking, Outcome, RankEntry, RecordedRanking, Resolution
from wekacoin.types.tx import RevealModel, RevealTest, SubmitModel

S, X = Outcome.SCORED, Outcome.INVALID
SUPPLIER, TRAINERS = 4, (5, 6, 7)


def open_tasks(chain: LocalChain, tasks: dict[str, tuple[int, ...]], **spec) -> list[int]:
    """Publish one task per label in the same block, reveal their data, submit and reveal
    one model per trainer listed for each, and stop at the block before uploads close."""
    supplier = chain.keys[SUPPLIER]
    published = [chain.task_spec(label=label, **spec) for label in tasks]
    chain.commit([chain.tx(supplier, s) for s, _ in published])
    first = chain.state.tip.next_task_id - len(tasks)
    ids = list(range(first, first + len(tasks)))
    chain.advance_to(split_height(task_of(chain, first), chain.params))
    chain.commit([chain.tx(supplier, data.reveal_training(i, task_of(chain, i).test_groups))
                  for i, (_, data) in zip(ids, published, strict=True)])
    models = [(i, t, fake_cid(f"{label}/model/{t}"))
              for i, (label, trainers) in zip(ids, tasks.items(), strict=True) for t in trainers]
    chain.commit([
        chain.tx(chain.keys[t], SubmitModel(i, chain.commitment_for(chain.keys[t], cid), 1))
        for i, t, cid in models
    ])
    chain.advance_to(published[0][0].tbh - 1)
    chain.commit([chain.tx(supplier, RevealTest(i, data.reveals(task_of(chain, i).test_groups)))
                  for i, (_, data) in zip(ids, published, strict=True)])
    chain.commit([chain.tx(chain.keys[t], RevealModel(i, cid, 1_000)) for i, t, cid in models])
    return ids


def open_task(chain: LocalChain, **spec) -> int:
    return open_tasks(chain, {"task": TRAINERS}, **spec)[0]


def task_of(chain: LocalChain, task_id: int):
    return chain.state.get_task(task_id)


def paid(record) -> dict[bytes, int]:
    return {p.address: p.amount for p in record.payments}


# -- 1. grinding the evaluation committee with late stake --


def test_stake_bonded_after_the_evaluation_seed_buys_no_seat():
    """A third of the stake, bonded under the best of 200 keys ground offline against the
    public evaluation seed, matures before the task is ready (look-back 1 < evaluation window
    6). Weighed at the settling block it would take more sub-users than k; weighed at the seed
    block, as the rules do, it has no seat, and its block is refused."""
    # a small committee (tau 20), so that grinding 200 keys finds a seat worth k alone
    params = dataclasses.replace(FAST_PARAMS, stake_lookback=1, evaluation_window=6,
                                 tau_evaluators=20)
    chain = LocalChain(n_keys=10, params=params)
    task_id = open_task(chain)
    chain.advance_to(upload_end(task_of(chain, task_id), params))
    task = task_of(chain, task_id)
    stake = chain.state.tip.total_stake // 2  # a third of the total once bonded
    total = chain.state.tip.total_stake + stake
    candidates = [
        KeyPair.from_seed(hashlib.sha256(b"grind" + bytes([i])).digest()) for i in range(200)
    ]
    seats = [(select(k, evaluation_alpha(task), stake, total, params.tau_evaluators), k)
             for k in candidates]
    seat, key = max(((s, k) for s, k in seats if s is not None), key=lambda sk: sk[0].subusers)
    assert seat.subusers >= compute_ranking_quorum(params, 0)  # enough to decide alone, before

    attacker = chain.keys[8]
    chain.commit([chain.tx(attacker, chain.stake_body(attacker, stake, key))])
    chain.advance_to(chain.height + params.stake_lookback)
    assert chain.state.get_weight(key.public_key) == stake  # matured before the task is ready
    assert chain.height < ready_height(task, params)

    lie = tuple(RankEntry(sid, S, 1_000_000 if sid == task.submissions[-1] else 1, 10)
                for sid in task.submissions)
    forged = sign_ranking(key, chain.genesis_hash, CandidateRanking(
        task_id, key.public_key, seat.proof, S, task.baseline_score, lie,
    ))
    with pytest.raises(InvalidRanking, match="not on the task's evaluation committee"):
        chain.build(rankings=(forged,))

    honest = {sid: (S, 900_000 - 1_000 * i, 10) for i, sid in enumerate(task.submissions)}
    record = chain.settle(task_id, honest, evaluators=(0, 1, 2, 3))
    assert record.resolution is Resolution.WON and record.winner == task.submissions[0]


def test_two_values_reaching_k_settle_nothing():
    """The merge refuses a position where two values both have k of weight (possible only if
    k were under half of the weight present: genesis refuses such a quorum)."""
    params = dataclasses.replace(FAST_PARAMS, tau_evaluators=20, ranking_quorum_percent=20)
    a = RecordedRanking(10, S, 500_000, (RankEntry(1, S, 900_000, 5),))
    b = RecordedRanking(10, S, 500_000, (RankEntry(1, S, 100_000, 5),))
    assert compute_meta_ranking([(bytes([1]) * 32, a), (bytes([2]) * 32, b)], params) is None
    with pytest.raises(GenesisError, match="ranking_quorum_percent"):
        validate_params(params)


# -- 2. the proposer knows the test split in advance --


def test_the_test_split_comes_from_a_block_after_the_publication():
    """The proposer of the publishing block knows that block's seed before it picks its
    transactions: a supplier-proposer would put the rows its baseline memorised in the
    groups that seed selects. The split comes from the seed of block published + d, unknown
    when the groups were committed, and the training data cannot be revealed before it."""
    chain = LocalChain(n_keys=10)
    supplier = chain.keys[SUPPLIER]
    spec, data = chain.task_spec()
    block = chain.commit([chain.tx(supplier, spec)])
    task = task_of(chain, 1)
    groups = len(spec.group_commitments)
    count = count_test_groups(groups, chain.params)
    planned = compute_test_groups(block.header.seed, task.id, groups, count)
    assert task.test_groups == ()  # not drawn yet

    split = split_height(task, chain.params)
    chain.advance_to(split - 1)
    early = data.reveal_training(task.id, planned)
    with pytest.raises(InvalidBlockTx) as refused:
        chain.build([chain.tx(supplier, early)])
    assert isinstance(refused.value.error, WrongPhase)

    chain.advance_to(split)
    drawn = task_of(chain, 1).test_groups
    assert drawn == compute_test_groups(chain.blocks[-1].header.seed, task.id, groups, count)
    assert drawn != planned
    chain.commit([chain.tx(supplier, data.reveal_training(task.id, drawn))])
    assert task_of(chain, 1).status is TaskStatus.ACTIVE


# -- 3. an unverified baseline score as the bar --


def test_a_false_baseline_claim_is_not_the_bar():
    """The supplier's RevealTraining claims a baseline score of 1.0; the committee cannot run
    the baseline. The claim used to become the bar and the supplier kept the reward: now the
    best valid model wins, and the supplier gets nothing back."""
    chain = LocalChain(n_keys=10)
    task_id = open_task(chain, baseline_score=1_000_000)
    sids = task_of(chain, task_id).submissions
    record = chain.settle(task_id, {sids[0]: (S, 900_000, 10), sids[1]: (S, 800_000, 10)},
                          baseline=(X, 0))
    assert record.resolution is Resolution.WON and record.winner == sids[0]
    assert paid(record)[chain.keys[TRAINERS[0]].address] >= task_of(chain, task_id).spec.reward
    assert chain.keys[SUPPLIER].address not in paid(record)


def test_the_bar_is_the_committees_baseline_score_not_the_claim():
    chain = LocalChain(n_keys=10)
    task_id = open_task(chain, baseline_score=1_000_000)
    sids = task_of(chain, task_id).submissions
    record = chain.settle(task_id, {sids[0]: (S, 900_000, 10)}, baseline=(S, 700_000))
    assert record.resolution is Resolution.WON and record.winner == sids[0]


# -- 4. a proposer drops genuine rankings --


def test_a_recorded_ranking_is_paid_whoever_proposes_the_settling_block():
    """Rankings recorded by any block count: the settling block's proposer has no list to
    leave an evaluator out of, and no evaluator can be recorded twice."""
    chain = LocalChain(n_keys=10, params=dataclasses.replace(FAST_PARAMS, evaluation_window=4))
    task_id = open_task(chain)
    task = task_of(chain, task_id)
    chain.advance_to(upload_end(task, chain.params))
    results = {sid: (S, 900_000, 10) for sid in task.submissions}
    first = chain.rankings(task_id, results, evaluators=(0, 1))
    later = chain.rankings(task_id, results, evaluators=(2, 3))
    assert first and later
    chain.commit(rankings=first)
    chain.commit(rankings=later)
    changed = chain.ranking(task_id, 0, {sid: (S, 100, 10) for sid in task.submissions})
    with pytest.raises(InvalidRanking, match="already holds"):
        chain.build(rankings=(changed,))
    chain.advance_to(ready_height(task, chain.params))
    record = chain.state.get_settlement(task_id)
    recorded = sorted(r.ranking.evaluator for r in first + later)
    assert [e.evaluator for e in record.evaluators] == recorded
    for e in record.evaluators:
        assert paid(record)[chain.state.get_validator(e.evaluator)] > 0


def test_a_minority_of_the_weight_present_cannot_decide():
    """k of the expected committee is 11 of 20; rankings of 30 sub-users came, 12 of them a
    coalition's. Under an absolute k the coalition's values were accepted once a colluding
    proposer left the others out; k relative to the weight present needs 16."""
    params = dataclasses.replace(FAST_PARAMS, tau_evaluators=20, ranking_quorum_percent=50)
    truth = RecordedRanking(
        6, S, 500_000, (RankEntry(1, S, 600_000, 5), RankEntry(2, S, 900_000, 5))
    )
    lie = RecordedRanking(4, S, 500_000, (RankEntry(1, S, 990_000, 5), RankEntry(2, S, 100, 5)))
    honest = [(bytes([i]) * 32, truth) for i in range(1, 4)]
    coalition = [(bytes([i]) * 32, lie) for i in range(4, 7)]
    assert compute_meta_ranking(coalition, params).entries == lie.entries  # alone, it decides
    merged = compute_meta_ranking(honest + coalition, params)
    assert merged.entries == truth.entries
    assert [g.evaluator for g in merged.genuine] == [key for key, _ in honest]


# -- 5. evaluator pay per key, not per weight --


def test_evaluators_are_paid_in_proportion_to_their_sub_users():
    """Paid per ranking, splitting stake over many keys multiplied a holder's income; paid
    per sub-user it changes nothing (sortition is split-invariant in expectation)."""
    chain = LocalChain(n_keys=10)
    task_id = open_task(chain)
    task = task_of(chain, task_id)
    sids = task.submissions
    record = chain.settle(task_id, {sids[0]: (S, 900_000, 10), sids[1]: (X, 0, 0),
                                    sids[2]: (X, 0, 0)}, evaluators=(0, 1, 2, 3))
    pool = task.spec.hosting_fee + 2 * task.spec.participation_fee + chain.params.settlement_reward
    total = sum(e.subusers for e in record.evaluators)
    assert len({e.subusers for e in record.evaluators}) > 1  # unequal seats, or the test is moot
    by_evaluator = {e.evaluator: paid(record)[chain.state.get_validator(e.evaluator)]
                    for e in record.evaluators}
    for e in record.evaluators:
        assert abs(by_evaluator[e.evaluator] - pool * e.subusers // total) <= 1
    assert sum(by_evaluator.values()) == pool


# -- 6. one stuck task blocks every other --


def test_a_task_that_cannot_settle_does_not_hold_back_the_others():
    """Task 1 has the most submissions, so it comes first, but too little of its committee
    ranked it; task 2 is agreed. Task 2 settles when ready; task 1 expires on its own
    deadline, and both end with a record."""
    chain = LocalChain(n_keys=10)
    a_id, b_id = open_tasks(chain, {"a": TRAINERS, "b": (5,)})
    a, b = task_of(chain, a_id), task_of(chain, b_id)
    chain.advance_to(upload_end(a, chain.params))
    lone = chain.rankings(a_id, {sid: (S, 900_000, 10) for sid in a.submissions}, evaluators=(0,))
    agreed = chain.rankings(b_id, {b.submissions[0]: (S, 900_000, 10)}, evaluators=(0, 1, 2, 3))
    assert chain.state.get_ranking(a_id, lone[0].ranking.evaluator) is None
    chain.commit(rankings=lone + agreed)
    assert chain.state.get_ranking(a_id, lone[0].ranking.evaluator).subusers < \
        compute_ranking_quorum(chain.params, 0)
    chain.advance_to(ready_height(b, chain.params))
    assert chain.state.get_settlement(b_id).resolution is Resolution.WON
    assert chain.state.get_settlement(a_id) is None
    chain.advance_to(settlement_deadline(a, chain.params) + 1)
    assert chain.state.get_settlement(a_id).resolution is Resolution.EXPIRED


def test_one_block_settles_every_ready_task_that_agrees():
    chain = LocalChain(n_keys=10)
    ids = open_tasks(chain, {"first": TRAINERS, "second": (5, 6)})
    tasks = [task_of(chain, i) for i in ids]
    chain.advance_to(upload_end(tasks[0], chain.params))
    recorded = ()
    for t in tasks:
        recorded += chain.rankings(t.id, {sid: (S, 900_000, 10) for sid in t.submissions},
                                   evaluators=(0, 1, 2, 3))
    chain.commit(rankings=recorded)
    ready = ready_height(tasks[0], chain.params)
    chain.advance_to(ready)
    for t in tasks:
        record = chain.state.get_settlement(t.id)
        assert (record.resolution, record.height) == (Resolution.WON, ready)
