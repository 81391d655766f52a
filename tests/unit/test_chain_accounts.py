"""Account rules: signatures, nonces, fees, transfers, staking with the sortition look-back."""

import dataclasses

import pytest

from wekacoin.chain.blocks import apply_block, compute_tx_root
from wekacoin.chain.context import BlockContext
from wekacoin.chain.errors import (
    BadNonce,
    BadSignature,
    BadValidatorKeyProof,
    FeeTooLow,
    InsufficientFunds,
    InvalidBlockTx,
    InvalidField,
    StakeError,
    TxTooLarge,
)
from wekacoin.chain.transactions import apply_tx, sign_stake, sign_tx, verify_tx
from wekacoin.crypto.keys import KeyPair
from wekacoin.testing.chain import LocalChain
from wekacoin.types.tx import Stake, Transfer, Tx, Unstake, validator_key_message


@pytest.fixture
def chain():
    return LocalChain()


def _apply(chain, tx):
    """Apply `tx` on a child of the tip; returns the child (the tip is untouched)."""
    if not isinstance(tx, Tx):
        key, body, *rest = tx
        tx = sign_tx(key, chain.genesis.hash, chain.state.get_account(key.address).nonce,
                     rest[0] if rest else 1, body)
    state = chain.state.child()
    apply_tx(state, verify_tx(tx, chain.genesis.hash), BlockContext(chain.height + 1, b"s" * 32))
    return state


def test_transfer_moves_money_and_pays_the_proposer(chain):
    a, b, proposer = chain.keys[5], chain.keys[6], chain.keys[0]
    before = chain.state.get_account(proposer.address).balance
    chain.commit([chain.tx(a, Transfer(b.address, 1_000), fee=3)])
    assert chain.state.get_account(a.address).balance == chain.balance - 1_003
    assert chain.state.get_account(a.address).nonce == 1
    assert chain.state.get_account(b.address).balance == chain.balance + 1_000
    assert chain.state.get_account(proposer.address).balance == before + 3


def test_transfer_to_self_keeps_the_amount(chain):
    a = chain.keys[5]
    chain.commit([chain.tx(a, Transfer(a.address, 1_000), fee=1)])
    assert chain.state.get_account(a.address).balance == chain.balance - 1


def test_transfer_to_a_new_address_creates_it(chain):
    fresh = KeyPair.generate()
    chain.commit([chain.tx(chain.keys[5], Transfer(fresh.address, 42))])
    assert chain.state.get_account(fresh.address).balance == 42


def test_bad_signature(chain):
    tx = chain.tx(chain.keys[5], Transfer(chain.keys[6].address, 1))
    forged = Tx(tx.payload, bytes(64))
    with pytest.raises(BadSignature):
        verify_tx(forged, chain.genesis.hash)


def test_signature_is_bound_to_the_chain(chain):
    tx = chain.tx(chain.keys[5], Transfer(chain.keys[6].address, 1))
    with pytest.raises(BadSignature):
        verify_tx(tx, b"\x01" * 32)


@pytest.mark.parametrize("nonce", [1, 5])
def test_wrong_nonce(chain, nonce):
    with pytest.raises(BadNonce, match="next nonce 0"):
        _apply(chain, chain.tx(chain.keys[5], Transfer(chain.keys[6].address, 1), nonce=nonce))


def test_replay_is_refused(chain):
    tx = chain.tx(chain.keys[5], Transfer(chain.keys[6].address, 1))
    chain.commit([tx])
    with pytest.raises(BadNonce):
        _apply(chain, tx)


def test_fee_below_minimum(chain):
    with pytest.raises(FeeTooLow):
        _apply(chain, chain.tx(chain.keys[5], Transfer(chain.keys[6].address, 1), fee=0))


def test_insufficient_funds_for_amount_and_for_fee(chain):
    poor = KeyPair.generate()
    chain.commit([chain.tx(chain.keys[5], Transfer(poor.address, 10))])
    with pytest.raises(InsufficientFunds, match="fee"):
        _apply(chain, (poor, Transfer(chain.keys[6].address, 1), 11))
    with pytest.raises(InsufficientFunds):
        _apply(chain, (poor, Transfer(chain.keys[6].address, 10), 1))
    _apply(chain, (poor, Transfer(chain.keys[6].address, 9), 1))


def test_zero_transfer_is_refused(chain):
    with pytest.raises(InvalidField):
        _apply(chain, (chain.keys[5], Transfer(chain.keys[6].address, 0)))


def test_oversized_transaction(chain):
    spec, _ = chain.task_spec()
    big = dataclasses.replace(spec, title="x" * 70_000)
    with pytest.raises(TxTooLarge):
        _apply(chain, (chain.keys[5], big))


def test_failed_transaction_changes_nothing(chain):
    state = chain.state.child()
    tx = chain.tx(chain.keys[5], Transfer(chain.keys[6].address, chain.balance * 2))
    with pytest.raises(InsufficientFunds):
        apply_tx(state, verify_tx(tx, chain.genesis.hash), BlockContext(1, b"s" * 32))
    assert state.changes() == {}


def test_block_with_an_invalid_transaction_is_refused_whole(chain):
    good = chain.tx(chain.keys[5], Transfer(chain.keys[6].address, 1))
    bad = chain.tx(chain.keys[6], Transfer(chain.keys[5].address, 1), nonce=9)
    with pytest.raises(InvalidBlockTx, match="transaction 1 .*BadNonce"):
        chain.build([good, bad])
    assert chain.height == 0


# -- staking --


def test_stake_counts_only_after_the_lookback(chain):
    k = chain.keys[6]
    lookback = chain.params.stake_lookback
    total = chain.state.tip.total_stake
    chain.commit([chain.tx(k, chain.stake_body(k, 500))])
    staked_at = chain.height
    assert chain.state.get_account(k.address).balance == chain.balance - 501
    assert chain.state.get_bond(k.address).stake == 0
    assert chain.state.get_weight(k.public_key) == 0
    chain.advance_to(staked_at + lookback - 1)
    assert chain.state.get_weight(k.public_key) == 0
    chain.commit()
    assert chain.state.get_weight(k.public_key) == 500
    assert chain.state.tip.total_stake == total + 500


def test_unstake_keeps_weight_and_lock_until_the_lookback(chain):
    k = chain.keys[1]  # a genesis validator
    chain.commit([chain.tx(k, Unstake(400_000))])
    at = chain.height
    balance = chain.state.get_account(k.address).balance
    chain.advance_to(at + chain.params.stake_lookback - 1)
    assert chain.state.get_weight(k.public_key) == chain.stake
    assert chain.state.get_account(k.address).balance == balance
    chain.commit()
    assert chain.state.get_weight(k.public_key) == chain.stake - 400_000
    assert chain.state.get_account(k.address).balance == balance + 400_000


def test_unstake_more_than_bonded(chain):
    k = chain.keys[1]
    chain.commit([chain.tx(k, Unstake(chain.stake - 10))])
    with pytest.raises(StakeError, match="only 10"):
        _apply(chain, (k, Unstake(11)))
    with pytest.raises(StakeError):
        _apply(chain, (chain.keys[6], Unstake(1)))
    with pytest.raises(InvalidField):
        _apply(chain, (k, Unstake(0)))


def test_validator_key_belongs_to_one_account(chain):
    a, b = chain.keys[5], chain.keys[6]
    chain.commit([chain.tx(a, chain.stake_body(a, 10))])
    # b holds a's key here (a node operator staking from two wallets): still one account per key
    with pytest.raises(StakeError, match="another account"):
        _apply(chain, (b, chain.stake_body(b, 10, validator=a)))
    with pytest.raises(StakeError, match="another validator key"):
        _apply(chain, (a, chain.stake_body(a, 10, validator=b)))
    _apply(chain, chain.tx(a, chain.stake_body(a, 10)))  # adding to the same key is fine


def test_stake_below_minimum_or_unaffordable(chain):
    a = chain.keys[5]
    with pytest.raises(StakeError):
        _apply(chain, (a, chain.stake_body(a, 0)))
    with pytest.raises(InsufficientFunds):
        _apply(chain, (a, chain.stake_body(a, chain.balance)))


# -- proof of possession of the validator key --


def _propose(chain, txs):
    """What a node does with a proposed block carrying `txs`: apply_block on the tip (the
    block claims the root of an empty block; a refused transaction is found before that)."""
    block, _ = chain.build([])
    header = dataclasses.replace(block.header, tx_root=compute_tx_root(tuple(txs)))
    return apply_block(chain.state, dataclasses.replace(block, header=header, txs=tuple(txs)))


def _refused(chain, key, body):
    with pytest.raises(InvalidBlockTx, match="BadValidatorKeyProof") as refused:
        _propose(chain, [chain.tx(key, body, nonce=chain.state.get_account(key.address).nonce)])
    assert isinstance(refused.value.error, BadValidatorKeyProof)


def test_squatting_another_nodes_key_without_its_secret_is_refused(chain):
    """An attacker registers the public key of a node that has not staked yet: without the
    node's secret it has no valid proof (none, a copy of a proof the victim made for itself,
    or a signature by its own key), and every such block is refused, so the victim can stake."""
    attacker, victim = chain.keys[5], chain.keys[6]
    victims_own = chain.stake_body(victim, 10)  # public once the victim broadcasts it
    for body in (
        Stake(10, victim.public_key, bytes(64)),
        Stake(10, victim.public_key, victims_own.key_proof),
        Stake(10, victim.public_key, attacker.sign(
            validator_key_message(chain.genesis_hash, attacker.address))),
    ):
        _refused(chain, attacker, body)
    assert chain.state.get_validator(victim.public_key) is None
    chain.commit([chain.tx(victim, victims_own)])
    assert chain.state.get_validator(victim.public_key) == victim.address


def test_a_valid_proof_registers_the_key_through_a_block(chain):
    """The key may belong to another keypair than the account's (a node key and a wallet)."""
    wallet, node = chain.keys[5], KeyPair.from_seed(bytes(range(32)))
    chain.commit([chain.tx(wallet, chain.stake_body(wallet, 100, validator=node))])
    assert chain.state.get_validator(node.public_key) == wallet.address
    assert chain.state.get_bond(wallet.address).validator_key == node.public_key


def test_a_proof_for_another_account_or_chain_is_refused(chain):
    wallet, other, node = chain.keys[5], chain.keys[6], KeyPair.from_seed(bytes(range(32)))
    for_other = sign_stake(node, chain.genesis_hash, other.address, 100)
    _refused(chain, wallet, for_other)
    other_chain = LocalChain(balance=chain.balance + 1)  # same keys, another genesis
    assert other_chain.genesis_hash != chain.genesis_hash
    _refused(chain, wallet, sign_stake(node, other_chain.genesis_hash, wallet.address, 100))
    # ... and a proof over the right message by a key that is not the staked one
    _refused(chain, wallet, Stake(100, node.public_key, wallet.sign(
        validator_key_message(chain.genesis_hash, wallet.address))))
    chain.commit([chain.tx(wallet, sign_stake(node, chain.genesis_hash, wallet.address, 100))])


def test_a_bad_proof_is_a_stake_error_of_its_own(chain):
    a = chain.keys[5]
    with pytest.raises(BadValidatorKeyProof, match="key_proof") as refused:
        _apply(chain, (a, Stake(10, a.public_key, bytes(64))))
    assert isinstance(refused.value, StakeError)
    # also when the key is already the account's own: every Stake carries a proof
    chain.commit([chain.tx(a, chain.stake_body(a, 10))])
    with pytest.raises(BadValidatorKeyProof):
        _apply(chain, (a, Stake(10, a.public_key, bytes(64))))


def test_sign_tx_matches_verify(chain):
    k = chain.keys[3]
    tx = sign_tx(k, chain.genesis.hash, 0, 1, Transfer(k.address, 1))
    vtx = verify_tx(tx, chain.genesis.hash)
    assert vtx.sender == k.address and vtx.nonce == 0 and vtx.fee == 1
