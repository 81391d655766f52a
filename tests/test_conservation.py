"""Money is conserved: across any sequence of valid and invalid transactions, cancellations
and settlements, the total supply changes only by minted rewards and explicit burns."""

from hypothesis import HealthCheck, given, settings, strategies as st

from wekacoin.chain.errors import ChainError
from wekacoin.chain.tasks import Phase, compute_phase, compute_task_to_settle
from wekacoin.testing.chain import FAST_PARAMS, LocalChain, fake_cid
from wekacoin.types.codec import decode
from wekacoin.types.ledger import Account, Bond, Task
from wekacoin.types.ranking import Outcome
from wekacoin.types.tx import (
    RevealModel, RevealTest, RevealTraining, SubmitModel, Transfer, Unstake,
)

N_KEYS = 6


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


class Scenario:
    def __init__(self):
        self.chain = LocalChain(n_keys=N_KEYS, validators=3, balance=1_000_000, stake=50_000,
                                params=FAST_PARAMS)
        self.data = {}  # task id -> TaskData
        self.models = {}  # (task id, key index) -> cid
        self.genesis_supply = total_supply(self.chain.state)

    def check(self):
        tip = self.chain.state.tip
        assert total_supply(self.chain.state) == self.genesis_supply + tip.minted - tip.burned

    def step(self, draw):
        chain = self.chain
        keys = chain.keys
        k = draw(st.integers(0, N_KEYS - 1))
        key = keys[k]
        amount = draw(st.one_of(st.integers(0, 2_000), st.integers(0, 2_000_000)))
        kind = draw(st.sampled_from(
            ["transfer", "stake", "unstake", "publish", "lifecycle", "lifecycle", "lifecycle",
             "lifecycle", "empty"]
        ))
        body, settlement = None, None
        if kind == "transfer":
            body = Transfer(keys[draw(st.integers(0, N_KEYS - 1))].address, amount)
        elif kind == "stake":
            body = chain.stake_body(key, amount)
        elif kind == "unstake":
            body = Unstake(amount)
        elif kind == "publish":
            spec, data = chain.task_spec(
                label=f"t{chain.height}", reward=draw(st.integers(1, 200_000)),
                hosting_fee=draw(st.integers(0, 50_000)),
                participation_fee=draw(st.integers(0, 500)),
            )
            self.data[chain.state.tip.next_task_id] = data
            body = spec
        elif kind == "lifecycle" and chain.state.tip.open_tasks:
            key, body, settlement = self.lifecycle_step(draw, k)
        txs = [] if body is None else [chain.tx(key, body, fee=draw(st.integers(0, 5)))]
        try:
            chain.commit(txs, settlement=settlement)
        except ChainError:
            chain.commit()  # the invalid block is dropped; time moves on
        self.check()

    def lifecycle_step(self, draw, k):
        """The next step of a random open task, honest most of the time."""
        chain = self.chain
        task = chain.state.get_task(draw(st.sampled_from(chain.state.tip.open_tasks)))
        supplier = next(x for x in chain.keys if x.address == task.supplier)
        honest = draw(st.integers(0, 9)) > 0
        data = self.data[task.id]
        phase = compute_phase(task, chain.height + 1, chain.params)
        settle_id = compute_task_to_settle(chain.state, chain.height + 1)
        if settle_id is not None:
            target = chain.state.get_task(settle_id)
            results = {}
            for sid in target.submissions:
                if chain.state.get_submission(sid).model_cid is not None:
                    outcome = draw(st.sampled_from(list(Outcome)))
                    scored = outcome is Outcome.SCORED
                    results[sid] = (outcome, draw(st.integers(-10**6, 10**6)) if scored else 0,
                                    draw(st.integers(1, 10**6)) if scored else 0)
            evaluators = tuple(sorted(draw(st.sets(st.integers(0, 2), min_size=1))))
            return chain.keys[k], None, chain.settlement(settle_id, results, evaluators=evaluators)
        if phase is Phase.AWAITING_TRAINING:
            idx = [i for i in range(len(data.cids)) if i not in task.test_groups]
            return supplier, RevealTraining(task.id, data.reveals(idx if honest else idx[:-1]), 1), None
        if phase is Phase.TRAINING:
            cid = fake_cid(f"m{task.id}-{k}-{chain.height}")
            self.models[(task.id, k)] = cid
            score = draw(st.integers(0, 10**6))
            return chain.keys[k], SubmitModel(task.id, chain.commitment_for(chain.keys[k], cid), score), None
        if phase is Phase.TEST_REVEAL and not task.test_revealed and honest:
            return supplier, RevealTest(task.id, data.reveals(task.test_groups)), None
        cid = self.models.get((task.id, k), fake_cid("unknown")) if honest else fake_cid("x")
        return chain.keys[k], RevealModel(task.id, cid), None


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_money_is_conserved(data):
    scenario = Scenario()
    scenario.check()
    for _ in range(data.draw(st.integers(20, 60))):
        scenario.step(data.draw)
    # Let every open task run out its windows: cancellations and settlements still conserve.
    chain = scenario.chain
    for _ in range(40):
        settle_id = compute_task_to_settle(chain.state, chain.height + 1)
        chain.commit(settlement=chain.settlement(settle_id) if settle_id else None)
        scenario.check()
    for t in range(1, chain.state.tip.next_task_id):
        phase = compute_phase(chain.state.get_task(t), chain.height, chain.params)
        assert phase in (Phase.CANCELLED, Phase.SETTLED, Phase.EXPIRED)
