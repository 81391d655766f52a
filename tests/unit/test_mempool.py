"""The mempool: admission through the chain rules, nonce order and gaps, replacement,
duplicates, caps and eviction, expiry, cleanup after a commit, and block assembly."""

import dataclasses

import pytest

from tests.helpers.mempool_helpers import PoolChain
from wekacoin.chain.errors import BadNonce, BadSignature, FeeTooLow, InsufficientFunds, WrongPhase
from wekacoin.chain.tasks import split_height
from wekacoin.mempool import (
    AlreadyKnown,
    InvalidTransaction,
    MempoolPolicy,
    NonceGapTooLarge,
    PoolFull,
    ReplacementUnderpriced,
    SenderQueueFull,
)
from wekacoin.testing.chain import FAST_PARAMS
from wekacoin.types.tx import SubmitModel, Tx


@pytest.fixture
def pc():
    return PoolChain(balance=10_000)


def nonces(vtxs):
    return [(v.sender, v.nonce) for v in vtxs]


# -- admission --


def test_a_valid_transaction_is_admitted_and_ready(pc):
    tx = pc.transfer(1, 0, fee=3)
    admission = pc.pool.add(tx, now_ms=0)
    assert admission.ready and admission.replaced is None and admission.dropped == ()
    assert admission.vtx.id in pc.pool and len(pc.pool) == 1
    assert pc.pool.get(admission.vtx.id).tx == tx
    assert pc.pool.size_bytes == admission.vtx.size
    assert pc.pool.pending(pc.keys[1].address) == [admission.vtx]
    assert pc.pool.next_nonce(pc.keys[1].address) == 1
    assert pc.pool.next_nonce(pc.keys[2].address) == 0


def test_a_bad_signature_is_refused(pc):
    tx = pc.transfer(1, 0)
    forged = Tx(tx.payload, bytes(64))
    with pytest.raises(InvalidTransaction, match="signature") as e:
        pc.pool.add(forged, 0)
    assert isinstance(e.value.error, BadSignature)
    assert len(pc.pool) == 0


@pytest.mark.parametrize("make, error, message", [
    (lambda pc: pc.transfer(1, 0, amount=20_000), InsufficientFunds,
     "balance 10000 cannot pay 20000 plus the fee 1"),
    (lambda pc: pc.transfer(1, 0, fee=0), FeeTooLow, "fee 0 is below the minimum 1"),
])
def test_rule_refusals_carry_the_rules_message(pc, make, error, message):
    with pytest.raises(InvalidTransaction) as e:
        pc.pool.add(make(pc), 0)
    assert isinstance(e.value.error, error)
    assert str(e.value) == message
    assert len(pc.pool) == 0


def test_a_used_nonce_is_refused_with_the_rules_message(pc):
    pc.commit([pc.transfer(1, 0)])
    with pytest.raises(InvalidTransaction, match="nonce 0 is not the account's next nonce 1") as e:
        pc.pool.add(pc.transfer(1, 0, fee=5), 0)
    assert isinstance(e.value.error, BadNonce)


def test_a_future_transaction_still_gets_the_checks_its_turn_does_not_change(pc):
    with pytest.raises(InvalidTransaction, match="below the minimum"):
        pc.pool.add(pc.transfer(1, 3, fee=0), 0)


def test_duplicates_are_refused(pc):
    tx = pc.transfer(1, 0)
    pc.pool.add(tx, 0)
    with pytest.raises(AlreadyKnown, match="already pending"):
        pc.pool.add(tx, 5)
    assert len(pc.pool) == 1


# -- nonces: order and gaps --


def test_a_future_nonce_waits_for_the_gap_to_fill(pc):
    later = pc.pool.add(pc.transfer(1, 2, fee=9), 0)
    middle = pc.pool.add(pc.transfer(1, 1, fee=9), 0)
    assert not later.ready and not middle.ready
    assert pc.select() == []
    first = pc.pool.add(pc.transfer(1, 0, fee=1), 0)
    assert first.ready
    assert [v.nonce for v in pc.select()] == [0, 1, 2]
    assert pc.pool.next_nonce(pc.keys[1].address) == 3


def test_the_nonce_gap_is_bounded(pc):
    pool = PoolChain(MempoolPolicy(max_nonce_gap=2), balance=10_000).pool
    pc.pool = pool
    pool.add(pc.transfer(1, 2), 0)  # two missing before it: allowed
    with pytest.raises(NonceGapTooLarge, match="nonce 3 is 3 past .* next expected nonce 0"):
        pool.add(pc.transfer(1, 3), 0)
    pool.add(pc.transfer(1, 0), 0)  # now 1 is expected: 3 is two ahead
    pool.add(pc.transfer(1, 3), 0)


def test_no_gap_allowed_means_only_the_next_nonce(pc):
    pc.pool = PoolChain(MempoolPolicy(max_nonce_gap=0), balance=10_000).pool
    with pytest.raises(NonceGapTooLarge):
        pc.pool.add(pc.transfer(1, 1), 0)
    pc.pool.add(pc.transfer(1, 0), 0)
    pc.pool.add(pc.transfer(1, 1), 0)


def test_one_sender_holds_at_most_its_share(pc):
    pc.pool = PoolChain(MempoolPolicy(max_per_sender=3), balance=10_000).pool
    for n in range(3):
        pc.pool.add(pc.transfer(1, n), 0)
    with pytest.raises(SenderQueueFull, match="3 pending transactions"):
        pc.pool.add(pc.transfer(1, 3), 0)
    pc.pool.add(pc.transfer(1, 2, fee=5), 0)  # a replacement does not add to the count


# -- replacement --


def test_a_replacement_must_pay_the_minimum_bump(pc):
    old = pc.pool.add(pc.transfer(1, 0, fee=100), 0)
    with pytest.raises(ReplacementUnderpriced, match="fee 100; a replacement pays at least 110"):
        pc.pool.add(pc.transfer(1, 0, fee=109, amount=2), 0)
    new = pc.pool.add(pc.transfer(1, 0, fee=110, amount=2), 0)
    assert new.replaced == old.vtx
    assert old.vtx.id not in pc.pool and new.vtx.id in pc.pool
    assert pc.pool.size_bytes == new.vtx.size
    assert pc.select() == [new.vtx]


def test_the_bump_is_at_least_one(pc):
    pc.pool.add(pc.transfer(1, 0, fee=1), 0)
    with pytest.raises(ReplacementUnderpriced, match="at least 2"):
        pc.pool.add(pc.transfer(1, 0, fee=1, amount=2), 0)
    pc.pool.add(pc.transfer(1, 0, fee=2, amount=2), 0)


def test_an_invalid_replacement_leaves_the_original(pc):
    old = pc.pool.add(pc.transfer(1, 0, fee=1), 0)
    with pytest.raises(InvalidTransaction, match="cannot pay"):
        pc.pool.add(pc.transfer(1, 0, fee=5, amount=50_000), 0)
    assert old.vtx.id in pc.pool and len(pc.pool) == 1


def test_a_replacement_that_spends_more_drops_what_it_leaves_unpaid(pc):
    pc.pool.add(pc.transfer(1, 0, amount=10), 0)
    second = pc.pool.add(pc.transfer(1, 1, amount=5_000), 0)
    third = pc.pool.add(pc.transfer(1, 2, amount=10), 0)
    replacement = pc.pool.add(pc.transfer(1, 0, fee=2, amount=9_000), 0)
    assert [d.vtx for d in replacement.dropped] == [second.vtx]
    assert "no longer valid after a replacement" in replacement.dropped[0].reason
    assert "cannot pay 5000" in replacement.dropped[0].reason
    assert [v.nonce for v in pc.pool.pending(pc.keys[1].address)] == [0, 2]
    assert pc.select() == [replacement.vtx]  # nonce 2 waits for a new nonce 1
    assert third.vtx.id in pc.pool


def test_a_future_transaction_can_be_replaced(pc):
    pc.pool.add(pc.transfer(1, 3, fee=4), 0)
    new = pc.pool.add(pc.transfer(1, 3, fee=5, amount=3), 0)
    assert new.replaced is not None and not new.ready and len(pc.pool) == 1


# -- block assembly --


def test_select_orders_by_fee_across_senders_and_by_nonce_within_one(pc):
    a0 = pc.pool.add(pc.transfer(1, 0, fee=2), 0).vtx
    a1 = pc.pool.add(pc.transfer(1, 1, fee=50), 0).vtx
    b0 = pc.pool.add(pc.transfer(2, 0, fee=10), 0).vtx
    c0 = pc.pool.add(pc.transfer(3, 0, fee=5), 0).vtx
    d0 = pc.pool.add(pc.transfer(4, 0, fee=5), 1).vtx  # same fee, arrived later
    assert pc.assert_select_builds() == [b0, c0, d0, a0, a1]


def test_select_respects_the_block_limits(pc):
    vtxs = [pc.pool.add(pc.transfer(k, 0, fee=10 - k), 0).vtx for k in range(1, 6)]
    assert pc.select(max_txs=2) == vtxs[:2]
    size = vtxs[0].size
    assert pc.select(max_bytes=3 * size + size // 2) == vtxs[:3]


def _reveal_training(pc, data):
    """Wait for task 1's test split, then reveal its training groups (nonce 1 of key 4)."""
    chain = pc.chain
    while chain.height < split_height(chain.state.get_task(1), chain.params):
        pc.commit()
    body = data.reveal_training(1, chain.state.get_task(1).test_groups)
    pc.commit([pc.sign(4, 1, body=body)])
    assert chain.state.get_task(1).training_reveals


def test_select_skips_what_the_evolving_block_state_refuses():
    pc = PoolChain(params=dataclasses.replace(FAST_PARAMS, max_submissions_per_task=1))
    chain = pc.chain
    spec, data = chain.task_spec()
    pc.commit([pc.sign(4, 0, body=spec)])
    _reveal_training(pc, data)
    submit = [
        pc.pool.add(pc.sign(k, 0, fee=fee, body=SubmitModel(
            1, chain.commitment_for(pc.keys[k], f"model{k}"), 900_000)), 0).vtx
        for k, fee in ((5, 3), (6, 7))
    ]
    follow = pc.pool.add(pc.transfer(5, 1, fee=9), 0).vtx  # behind the submission that loses
    # each is valid alone; the task takes one submission: the higher fee wins
    assert pc.assert_select_builds() == [submit[1]]
    assert follow.id in pc.pool


def test_select_checks_against_the_next_blocks_opening_events():
    """A submission valid at the tip is not valid in the block that reaches the task's
    test release height: select sees the block's height, as build_block will."""
    pc = PoolChain()
    chain = pc.chain
    spec, data = chain.task_spec()
    pc.commit([pc.sign(4, 0, body=spec)])
    _reveal_training(pc, data)
    chain.advance_to(spec.tbh - 2)
    pc.pool.on_commit(chain.state)
    pc.pool.add(pc.sign(5, 0, body=SubmitModel(
        1, chain.commitment_for(pc.keys[5], "m"), 900_000)), 0)
    _, dropped = pc.commit()  # the next block is at tbh: submissions are closed
    assert len(dropped) == 1 and "no longer valid" in dropped[0].reason
    with pytest.raises(InvalidTransaction) as e:
        pc.pool.add(pc.sign(5, 0, fee=2, body=SubmitModel(
            1, chain.commitment_for(pc.keys[5], "m"), 900_000)), 0)
    assert isinstance(e.value.error, WrongPhase)


# -- caps and eviction --


def test_a_full_pool_evicts_the_lowest_fee():
    pc = PoolChain(MempoolPolicy(max_txs=3), balance=10_000)
    low = pc.pool.add(pc.transfer(1, 0, fee=3), 0).vtx
    pc.pool.add(pc.transfer(2, 0, fee=5), 0)
    pc.pool.add(pc.transfer(3, 0, fee=7), 0)
    admitted = pc.pool.add(pc.transfer(4, 0, fee=4), 0)
    assert [d.vtx for d in admitted.dropped] == [low]
    assert "evicted" in admitted.dropped[0].reason
    with pytest.raises(PoolFull, match="fee 2"):
        pc.pool.add(pc.transfer(5, 0, fee=2), 0)
    assert len(pc.pool) == 3 and low.id not in pc.pool
    assert sorted(v.fee for v in pc.select()) == [4, 5, 7]


def test_eviction_takes_a_senders_last_transaction_and_future_ones_first():
    pc = PoolChain(MempoolPolicy(max_txs=4), balance=10_000)
    pc.pool.add(pc.transfer(1, 0, fee=1), 0)     # cheapest, but a later nonce depends on it
    last = pc.pool.add(pc.transfer(1, 1, fee=2), 0).vtx
    future = pc.pool.add(pc.transfer(2, 5, fee=100), 0).vtx
    pc.pool.add(pc.transfer(3, 0, fee=3), 0)
    first = pc.pool.add(pc.transfer(4, 0, fee=10), 0)
    assert [d.vtx for d in first.dropped] == [future]  # cannot be mined yet
    second = pc.pool.add(pc.transfer(5, 0, fee=10), 0)
    assert [d.vtx for d in second.dropped] == [last]   # a tail, not the nonce before it
    assert [v.nonce for v in pc.pool.pending(pc.keys[1].address)] == [0]


def test_the_byte_cap_evicts_too():
    pc = PoolChain(balance=10_000)
    size = pc.pool.add(pc.transfer(1, 0), 0).vtx.size
    pc.pool = PoolChain(MempoolPolicy(max_bytes=2 * size), balance=10_000).pool
    pc.pool.add(pc.transfer(1, 0, fee=1), 0)
    pc.pool.add(pc.transfer(2, 0, fee=2), 0)
    admitted = pc.pool.add(pc.transfer(3, 0, fee=3), 0)
    assert len(admitted.dropped) == 1 and admitted.dropped[0].vtx.fee == 1
    assert pc.pool.size_bytes <= 2 * size


# -- expiry --


def test_old_transactions_expire():
    pc = PoolChain(MempoolPolicy(max_age_ms=1_000), balance=10_000)
    old = pc.pool.add(pc.transfer(1, 0), now_ms=0).vtx
    young = pc.pool.add(pc.transfer(2, 0), now_ms=600).vtx
    assert pc.pool.expire(999) == []
    dropped = pc.pool.expire(1_000)
    assert [d.vtx for d in dropped] == [old] and "expired" in dropped[0].reason
    assert old.id not in pc.pool and young.id in pc.pool


def test_expiring_the_first_nonce_leaves_the_rest_waiting():
    pc = PoolChain(MempoolPolicy(max_age_ms=1_000), balance=10_000)
    pc.pool.add(pc.transfer(1, 0), now_ms=0)
    second = pc.pool.add(pc.transfer(1, 1), now_ms=900).vtx
    pc.pool.expire(1_500)
    assert pc.pool.pending(pc.keys[1].address) == [second]
    assert pc.select() == []
    refill = pc.pool.add(pc.transfer(1, 0), now_ms=1_600)
    assert refill.ready and pc.select() == [refill.vtx, second]


# -- after a commit --


def test_included_transactions_leave_quietly(pc):
    pc.pool.add(pc.transfer(1, 0, fee=2), 0)
    pc.pool.add(pc.transfer(2, 0, fee=3), 0)
    pc.pool.add(pc.transfer(2, 1, fee=3), 0)
    block, dropped = pc.commit_selected(max_txs=2)
    assert dropped == [] and len(block.txs) == 2
    assert [v.nonce for v in pc.pool.pending(pc.keys[1].address)] == [0]
    assert nonces(pc.select()) == [(pc.keys[1].address, 0)]


def test_a_commit_drops_what_it_made_stale_or_invalid(pc):
    ours = pc.pool.add(pc.transfer(1, 0, amount=10), 0).vtx
    unpaid = pc.pool.add(pc.transfer(1, 1, amount=5_000), 0).vtx
    kept = pc.pool.add(pc.transfer(2, 0), 0).vtx
    # another node's block spends sender 1's nonce 0 on something else, and most of its coins
    _, dropped = pc.commit([pc.transfer(1, 0, amount=8_000)])
    reasons = {d.vtx.id: d.reason for d in dropped}
    assert reasons[ours.id] == "nonce 0 was used by another transaction"
    assert reasons[unpaid.id].startswith("no longer valid: balance")
    assert list(pc.pool.pending(pc.keys[2].address)) == [kept]
    assert len(pc.pool) == 1 and pc.pool.size_bytes == kept.size


def test_a_commit_promotes_waiting_transactions(pc):
    waiting = pc.pool.add(pc.transfer(1, 1), 0)
    assert not waiting.ready
    _, dropped = pc.commit([pc.transfer(1, 0)])  # nonce 0 arrived through a block
    assert dropped == []
    assert pc.select() == [waiting.vtx]
