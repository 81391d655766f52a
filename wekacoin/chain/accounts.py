"""Account rules: transfers, staking, and stake that matures after the sortition look-back.

Every `process_*` function checks everything first and writes only once all checks passed, so
a transaction that raises leaves the state untouched.
"""

from __future__ import annotations

from dataclasses import replace

from wekacoin.chain.context import BlockContext
from wekacoin.chain.errors import BadValidatorKeyProof, InsufficientFunds, InvalidField, StakeError
from wekacoin.chain.state import State
from wekacoin.crypto.keys import verify_signature
from wekacoin.types.genesis import Params
from wekacoin.types.ledger import Account, Bond, Pending
from wekacoin.types.primitives import Address, Height
from wekacoin.types.tx import Stake, Transfer, Unstake, VerifiedTx, validator_key_message


def process_transfer(
    state: State, vtx: VerifiedTx, body: Transfer, payer: Account, ctx: BlockContext
) -> None:
    if body.amount == 0:
        raise InvalidField("a transfer moves a positive amount")
    if payer.balance < body.amount:
        raise InsufficientFunds(
            f"balance {payer.balance + vtx.fee} cannot pay {body.amount} plus the fee {vtx.fee}"
        )
    state.put_account(vtx.sender, debit(payer, body.amount))
    credit(state, body.to, body.amount)


def process_stake(
    state: State, vtx: VerifiedTx, body: Stake, payer: Account, ctx: BlockContext
) -> None:
    params = state.params
    if body.amount < params.min_stake:
        raise StakeError(f"stake at least {params.min_stake}")
    message = validator_key_message(state.config.genesis_hash, vtx.sender)
    if not verify_signature(body.validator_key, message, body.key_proof):
        raise BadValidatorKeyProof(
            "key_proof is not the validator key's signature for this account on this chain"
        )
    if payer.balance < body.amount:
        raise InsufficientFunds(f"balance {payer.balance} cannot bond {body.amount}")
    bond = state.get_bond(vtx.sender) or Bond(body.validator_key)
    if bond.validator_key != body.validator_key:
        raise StakeError("this account already bonds under another validator key")
    owner = state.get_validator(body.validator_key)
    if owner is not None and owner != vtx.sender:
        raise StakeError("that validator key already belongs to another account")
    matures = Height(ctx.height + params.stake_lookback)
    state.put_account(vtx.sender, debit(payer, body.amount))
    bonding = bond.bonding + (Pending(matures, body.amount),)
    state.put_bond(vtx.sender, replace(bond, bonding=bonding))
    if owner is None:
        state.put_validator(body.validator_key, vtx.sender)
    schedule_stake_change(state, matures, vtx.sender)


def process_unstake(
    state: State, vtx: VerifiedTx, body: Unstake, payer: Account, ctx: BlockContext
) -> None:
    if body.amount == 0:
        raise InvalidField("unstake a positive amount")
    bond = state.get_bond(vtx.sender)
    free = 0 if bond is None else bond.stake - sum(p.amount for p in bond.unbonding)
    if bond is None or free < body.amount:
        raise StakeError(f"only {free} of the bonded stake can be unbonded")
    matures = Height(ctx.height + state.params.stake_lookback)
    state.put_account(vtx.sender, payer)
    unbonding = bond.unbonding + (Pending(matures, body.amount),)
    state.put_bond(vtx.sender, replace(bond, unbonding=unbonding))
    schedule_stake_change(state, matures, vtx.sender)


def schedule_stake_change(state: State, height: int, address: Address) -> None:
    agenda = state.get_agenda(height)
    if address not in agenda:
        state.put_agenda(height, agenda + (address,))


def weight_horizon(params: Params) -> int:
    """How far back a rule may ask for a weight: a task's evaluation committee is weighed as
    of the block that fixed its seed (its upload end), and it may settle up to
    evaluation_window + settlement_window blocks later."""
    return params.evaluation_window + params.settlement_window


def process_stake_agenda(state: State, height: int) -> None:
    """At the start of block `height`: bonded stake starts counting, unbonded stake returns,
    and a storage weight computed at an epoch boundary (chain.storage) starts counting.

    The weight a bond had until now joins its history, and history no rule can ask about any
    more is dropped. A validator key stays registered to its account even when its stake
    reaches zero, so a key can never move to another account.
    """
    addresses = state.get_agenda(height)
    if not addresses:
        return
    stake_delta = storage_delta = 0
    for address in sorted(addresses):
        bond = state.get_existing_bond(address)
        joining = sum(p.amount for p in bond.bonding if p.height <= height)
        leaving = sum(p.amount for p in bond.unbonding if p.height <= height)
        storage = bond.storage
        record = state.get_storage(address)
        if record is not None and record.pending is not None and record.pending.height <= height:
            storage = record.pending.amount
            state.put_storage(address, replace(record, pending=None))
        oldest = height - weight_horizon(state.params)
        history = tuple(p for p in bond.history if p.height > oldest)
        if joining - leaving + storage - bond.storage != 0:
            history += (Pending(Height(height), bond.weight),)
        state.put_bond(address, replace(
            bond, stake=bond.stake + joining - leaving,
            bonding=tuple(p for p in bond.bonding if p.height > height),
            unbonding=tuple(p for p in bond.unbonding if p.height > height),
            history=history, storage=storage,
        ))
        if leaving:
            credit(state, address, leaving)
        stake_delta += joining - leaving
        storage_delta += storage - bond.storage
    state.put_agenda(height, ())
    tip = state.tip
    state.put_tip(replace(
        tip, total_stake=tip.total_stake + stake_delta,
        total_storage=tip.total_storage + storage_delta,
    ))


def debit(account: Account, amount: int) -> Account:
    return Account(account.balance - amount, account.nonce)


def credit(state: State, address: bytes, amount: int) -> None:
    a = state.get_account(address)
    state.put_account(address, Account(a.balance + amount, a.nonce))
