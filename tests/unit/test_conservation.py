"""Money is conserved: across any sequence of valid and invalid transactions, recorded
rankings (agreeing or not), settlements, expiries and cancellations, the total supply changes
only by minted rewards and explicit burns; and every task's end leaves a TaskSettlement
record whose payments are the credits the chain made, with evaluators paid by sub-users."""

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wekacoin.chain.blocks import begin_block
from wekacoin.chain.errors import ChainError, TxError
from wekacoin.chain.rankings import is_rankable
from wekacoin.chain.settlement import split_by_weight
from wekacoin.chain.tasks import Phase, compute_phase
from wekacoin.chain.transactions import apply_tx, sign_tx, verify_tx
from wekacoin.testing.chain import FAST_PARAMS, LocalChain, fake_cid
from wekacoin.types.codec import decode
from wekacoin.types.ledger import Account, Bond, Task, TaskStatus
from wekacoin.types.primitives import Height
from wekacoin.types.ranking import Outcome, Resolution
from wekacoin.types.tx import RevealModel, RevealTest, SubmitModel, Transfer, Unstake

N_KEYS = 6
EVALUATORS = (0, 1, 2)  # the genesis validators
PARTICIPANTS = (3, 4, 5)  # suppliers and trainers, so an evaluator's credits are its pay only
CLOSED = {
    Resolution.WON: TaskStatus.SETTLED, Resolution.BASELINE_KEPT: TaskStatus.SETTLED,
    Resolution.EXPIRED: TaskStatus.EXPIRED, Resolution.CANCELLED: TaskStatus.CANCELLED,
}


def total_supply(state) -> int:
    total = 0
    for key, value in state.items():
        if key[:1] == b"A":
            total += decode(Account, value).balance
        elif key[:1] == b"B":
            total += decode(Bond, value).total
        elif key[:1] == b"T":
            total += decode(Task, value).escrow
    return total


def holdings(state, address) -> int:
    """Balance plus bonded stake: unbonding moves coins between the two, nothing else."""
    bond = state.get_bond(address)
    return state.get_account(address).balance + (0 if bond is None else bond.total)


def outcomes(draw):
    outcome = draw(st.sampled_from(list(Outcome)))
    if outcome is Outcome.SCORED:
        return outcome, draw(st.integers(-10**6, 10**6)), draw(st.integers(1, 10**6))
    return outcome, 0, 0


class Scenario:
    def __init__(self):
        self.chain = LocalChain(n_keys=N_KEYS, validators=3, balance=1_000_000, stake=50_000,
                                params=FAST_PARAMS)
        self.data = {}  # task id -> TaskData
        self.models = {}  # (task id, key index) -> cid
        self.truth = {}  # task id -> (baseline, results) its honest evaluators report
        self.records = {}  # task id -> TaskSettlement
        self.genesis_supply = total_supply(self.chain.state)

    # -- checks --

    def commit(self, txs=(), rankings=()):
        """Commit a block (or an empty one if the chain refuses it) and check it."""
        chain = self.chain
        before = chain.state
        try:
            chain.commit(txs, rankings=rankings)
        except ChainError:
            chain.commit()  # the invalid block is dropped; time moves on
            txs = ()
        self.check(before, has_txs=bool(txs))

    def check(self, before, has_txs):
        state = self.chain.state
        tip = state.tip
        assert total_supply(state) == self.genesis_supply + tip.minted - tip.burned
        new = {}
        for task_id in before.tip.open_tasks:
            record = state.get_settlement(task_id)
            if record is not None:
                new[task_id] = record
                self.check_record(before, record)
        self.records.update(new)
        assert tip.minted == sum(r.minted for r in self.records.values())
        assert tip.burned == sum(r.burned for r in self.records.values())
        if not has_txs:  # no fees nor transfers: the records say who gained what
            credited = {}
            for record in new.values():
                for p in record.payments:
                    credited[p.address] = credited.get(p.address, 0) + p.amount
            for key in self.chain.keys:
                a = key.address
                assert holdings(state, a) - holdings(before, a) == credited.get(a, 0)

    def check_record(self, before, record):
        """A task's end moves exactly its escrow (plus minted coins) and pays evaluators by
        their sub-users."""
        state = self.chain.state
        task_before, task = before.get_task(record.task_id), state.get_task(record.task_id)
        assert task.status is CLOSED[record.resolution] and task.escrow == 0
        assert task.settled_height == record.height == state.height
        assert task.rankers == () and task_before.id not in state.tip.open_tasks
        assert all(state.get_ranking(task.id, k) is None for k in task_before.rankers)
        paid = {p.address: p.amount for p in record.payments}
        assert list(paid) == sorted(paid) and all(v > 0 for v in paid.values())
        assert sum(paid.values()) + record.burned == task_before.escrow + record.minted
        spec = task.spec
        if record.resolution is Resolution.CANCELLED:
            assert paid == {task.supplier: spec.reward} and record.burned == spec.hosting_fee
            return
        fees = sum(state.get_submission(s).fee for s in task.submissions)
        if record.resolution is Resolution.EXPIRED:
            assert record.burned == spec.hosting_fee and record.minted == 0
            assert record.evaluators == ()
            assert sum(paid.values()) == spec.reward + fees
            return
        # Settled: the reward to the winner or the supplier, the top fees back, and the rest
        # to the genuine evaluators in proportion to their sub-users.
        assert record.minted == state.params.settlement_reward
        assert record.burned == (0 if task.test_revealed else spec.hosting_fee)
        assert (record.winner != 0) == (record.resolution is Resolution.WON)
        scored = sum(e.outcome is Outcome.SCORED for e in record.entries)
        n = len(task.submissions)
        refunded = min(scored, (n * state.params.refund_top_percent + 99) // 100)
        refunds = refunded * spec.participation_fee
        pool = task_before.escrow + record.minted - record.burned - spec.reward - refunds
        weights = [(state.get_validator(e.evaluator), e.subusers) for e in record.evaluators]
        evaluators = {self.chain.keys[i].address for i in EVALUATORS}
        assert weights and all(a in evaluators for a, _ in weights)
        assert {a: paid.get(a, 0) for a, _ in weights} == {
            a: x for a, x in split_by_weight(pool, weights).items()
        }
        total = sum(j for _, j in weights)
        for a, j in weights:
            assert pool * j // total <= paid.get(a, 0) <= pool * j // total + 1

    # -- steps --

    def step(self, draw):
        chain = self.chain
        keys = chain.keys
        k = draw(st.integers(0, N_KEYS - 1))
        key = keys[k]
        amount = draw(st.one_of(st.integers(0, 2_000), st.integers(0, 2_000_000)))
        kind = draw(st.sampled_from(
            ["transfer", "stake", "unstake", "publish"] + ["lifecycle"] * 4 + ["rank", "empty"]
        ))
        body, rankings = None, ()
        if kind == "transfer":
            body = Transfer(keys[draw(st.integers(0, N_KEYS - 1))].address, amount)
        elif kind == "stake":
            body = chain.stake_body(key, amount)
        elif kind == "unstake":
            body = Unstake(amount)
        elif kind == "publish":
            key = keys[draw(st.sampled_from(PARTICIPANTS))]
            spec, data = chain.task_spec(
                label=f"t{chain.height}", reward=draw(st.integers(1, 200_000)),
                hosting_fee=draw(st.integers(0, 50_000)),
                participation_fee=draw(st.integers(0, 500)),
                baseline_score=draw(st.integers(-10**6, 10**6)),
                tbh=chain.height + 1 + chain.params.min_training_period + draw(st.integers(0, 6)),
            )
            self.data[chain.state.tip.next_task_id] = data
            body = spec
        elif kind == "lifecycle":
            self.commit(self.lifecycle(draw))
            return
        elif kind == "rank":
            rankings = self.rank(draw)
        txs = [] if body is None else [chain.tx(key, body, fee=draw(st.integers(0, 5)))]
        self.commit(txs, rankings)

    def lifecycle(self, draw):
        """A block of next steps of the open tasks: those the chain accepts."""
        chain = self.chain
        probe = chain.state.child()
        ctx = begin_block(probe, Height(chain.height + 1), chain.seed_for(chain.height + 1))
        txs = []
        for task_id in probe.tip.open_tasks:
            key, body = self.lifecycle_step(draw, probe.get_task(task_id))
            nonce = probe.get_account(key.address).nonce
            tx = sign_tx(key, chain.genesis_hash, nonce, draw(st.integers(0, 5)), body)
            try:
                apply_tx(probe, verify_tx(tx, chain.genesis_hash), ctx)
            except TxError:
                continue
            txs.append(tx)
        return txs

    def lifecycle_step(self, draw, task):
        """The next step of an open task, honest most of the time."""
        chain = self.chain
        supplier = next(x for x in chain.keys if x.address == task.supplier)
        honest = draw(st.integers(0, 9)) > 0
        data = self.data[task.id]
        k = draw(st.sampled_from(PARTICIPANTS))
        phase = compute_phase(task, chain.height + 1, chain.params)
        if phase is Phase.AWAITING_TRAINING:  # refused until the split is drawn
            body = data.reveal_training(task.id, task.test_groups)
            if not honest:
                body = dataclasses.replace(body, groups=body.groups[:-1])
            return supplier, body
        if phase is Phase.TRAINING:
            cid = fake_cid(f"m{task.id}-{k}-{chain.height}")
            self.models[(task.id, k)] = cid
            score = draw(st.integers(0, 10**6))
            commitment = chain.commitment_for(chain.keys[k], cid)
            return chain.keys[k], SubmitModel(task.id, commitment, score)
        if phase is Phase.TEST_REVEAL and not task.test_revealed and honest:
            return supplier, RevealTest(task.id, data.reveals(task.test_groups))
        submitted = [i for i in PARTICIPANTS if (task.id, i) in self.models]
        if honest and submitted:
            k = draw(st.sampled_from(submitted))
        cid = self.models.get((task.id, k), fake_cid("unknown")) if honest else fake_cid("x")
        return chain.keys[k], RevealModel(task.id, cid, 1_000)

    def honest_view(self, draw, task):
        """What honest evaluators report for `task`: drawn once, unrevealed models INVALID."""
        if task.id not in self.truth:
            results = {}
            for sid in task.submissions:
                if self.chain.state.get_submission(sid).model_cid is not None:
                    results[sid] = outcomes(draw)
            baseline = outcomes(draw)[:2]
            self.truth[task.id] = (baseline, results)
        return self.truth[task.id]

    def rank(self, draw, liars=True):
        """Rankings of a task being ranked, by evaluators that have not spoken; some lie."""
        chain = self.chain
        state = chain.state
        tasks = [t for t in state.tip.open_tasks if is_rankable(state.get_task(t), state)]
        if not tasks:
            return ()
        signed = []
        for task_id in sorted(set(draw(st.lists(st.sampled_from(tasks), min_size=1, max_size=2)))):
            task = state.get_task(task_id)
            baseline, results = self.honest_view(draw, task)
            for i in sorted(draw(st.sets(st.sampled_from(EVALUATORS), min_size=1))):
                if chain.keys[i].public_key in task.rankers:
                    continue
                if liars and draw(st.integers(0, 4)) == 0:
                    lie = {sid: outcomes(draw) for sid in results}
                    ranking = chain.ranking(task_id, i, lie, baseline=outcomes(draw)[:2])
                else:
                    ranking = chain.ranking(task_id, i, results, baseline=baseline)
                if ranking is not None:
                    signed.append(ranking)
        return tuple(sorted(signed, key=lambda s: (s.ranking.task_id, s.ranking.evaluator)))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_money_is_conserved(data):
    scenario = Scenario()
    for _ in range(data.draw(st.integers(20, 60))):
        scenario.step(data.draw)
    # Let every open task run out its windows, honest evaluators speaking: cancellations,
    # settlements and expiries still conserve.
    chain = scenario.chain
    for _ in range(40):
        scenario.commit(rankings=scenario.rank(data.draw, liars=False))
    for t in range(1, chain.state.tip.next_task_id):
        phase = compute_phase(chain.state.get_task(t), chain.height, chain.params)
        assert phase in (Phase.CANCELLED, Phase.SETTLED, Phase.EXPIRED)
        assert t in scenario.records
