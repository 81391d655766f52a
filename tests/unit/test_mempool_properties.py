"""Laws of the mempool over random sequences of arrivals, commits and expiries.

After every step: the caps hold, the byte count is the sum of the pending sizes, no pending
transaction has a used nonce, and what `select` returns is a block `build_block` and
`apply_block` accept. With transfers only (nothing one sender does can invalidate another),
an unlimited `select` takes exactly every sender's ready run: nothing the pool calls ready
is unusable, nothing usable is left out.
"""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers.mempool_helpers import PoolChain
from wekacoin.mempool import MempoolError, MempoolPolicy

SENDERS = 5
POLICY = MempoolPolicy(max_txs=5, max_per_sender=3, max_nonce_gap=2, max_age_ms=120)

add = st.tuples(st.just("add"), st.integers(0, SENDERS - 1), st.integers(-2, 3),
                st.integers(1, 6), st.sampled_from([1, 10, 400]))
step = st.one_of(
    add, add, add, add, add,
    st.tuples(st.just("commit"), st.integers(0, 4)),
    st.tuples(st.just("foreign"), st.integers(0, SENDERS - 1), st.sampled_from([1, 700])),
    st.tuples(st.just("tick"), st.integers(1, 30)),
)


def check(pc: PoolChain) -> None:
    pool, state = pc.pool, pc.chain.state
    assert len(pool) <= POLICY.max_txs and pool.size_bytes <= POLICY.max_bytes
    pending = [v for k in pc.keys for v in pool.pending(k.address)]
    assert len(pending) == len(pool)
    assert pool.size_bytes == sum(v.size for v in pending)
    assert all(v.nonce >= state.get_account(v.sender).nonce for v in pending)
    chosen = pc.assert_select_builds()
    ready = set()
    for k in pc.keys:
        nonce = state.get_account(k.address).nonce
        by_nonce = {v.nonce: v for v in pool.pending(k.address)}
        while nonce in by_nonce:
            ready.add(by_nonce[nonce].id)
            nonce += 1
        assert pool.next_nonce(k.address) == nonce
    assert {v.id for v in chosen} == ready


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(step, min_size=10, max_size=60))
def test_pool_laws_hold_after_every_step(steps):
    pc = PoolChain(POLICY, n_keys=SENDERS, balance=1_000)
    now = 0
    for op in steps:
        if op[0] == "add":
            _, k, delta, fee, amount = op
            nonce = max(0, pc.pool.next_nonce(pc.keys[k].address) + delta)
            try:
                pc.pool.add(pc.transfer(k, nonce, fee=fee, amount=amount, to=(k + 1) % SENDERS),
                            now)
            except MempoolError:
                pass
        elif op[0] == "commit":
            pc.commit_selected(max_txs=op[1])
        elif op[0] == "foreign":  # a block with a transaction the pool never saw
            _, k, amount = op
            account = pc.chain.state.get_account(pc.keys[k].address)
            if account.balance > amount:
                pc.commit([pc.transfer(k, account.nonce, amount=amount, to=(k + 2) % SENDERS)])
        else:
            now += op[1]
            pc.pool.expire(now)
        check(pc)
