"""Account rules: transfers, staking, and stake that matures after the sortition look-back.

Every `process_*` function checks everything first and writes only once all checks passed, so
a transaction that raises leaves the state untouched.
"""

from __future__ import annotations

from dataclasses import replace

from wekacoin.chain.context import BlockContext
from wekacoin.chain.errors import InsufficientFunds, InvalidField, StakeError
from wekacoin.chain.state import State
from wekacoin.types.ledger import Account, Pending
from wekacoin.types.primitives import Address, Height
from wekacoin.types.tx import Stake, Transfer, Unstake, VerifiedTx


def process_transfer(state: State, vtx: VerifiedTx, payer: Account, ctx: BlockContext) -> None:
    body: Transfer = vtx.body  # type: ignore[assignment]
    if body.amount == 0:
        raise InvalidField("a transfer moves a positive amount")
    if payer.balance < body.amount:
        raise InsufficientFunds(
            f"balance {payer.balance + vtx.fee} cannot pay {body.amount} plus the fee {vtx.fee}"
        )
    state.put_account(vtx.sender, debit(payer, body.amount))
    credit(state, body.to, body.amount)


def process_stake(state: State, vtx: VerifiedTx, payer: Account, ctx: BlockContext) -> None:
    body: Stake = vtx.body  # type: ignore[assignment]
    params = state.params
    if body.amount < params.min_stake:
        raise StakeError(f"stake at least {params.min_stake}")
    if payer.balance < body.amount:
        raise InsufficientFunds(f"balance {payer.balance} cannot bond {body.amount}")
    if payer.validator_key is not None and payer.validator_key != body.validator_key:
        raise StakeError("this account already bonds under another validator key")
    owner = state.get_validator(body.validator_key)
    if owner is not None and owner != vtx.sender:
        raise StakeError("that validator key already belongs to another account")
    matures = Height(ctx.height + params.stake_lookback)
    state.put_account(vtx.sender, replace(
        payer, balance=payer.balance - body.amount, validator_key=body.validator_key,
        bonding=payer.bonding + (Pending(matures, body.amount),),
    ))
    if owner is None:
        state.put_validator(body.validator_key, vtx.sender)
    schedule_stake_change(state, matures, vtx.sender)


def process_unstake(state: State, vtx: VerifiedTx, payer: Account, ctx: BlockContext) -> None:
    body: Unstake = vtx.body  # type: ignore[assignment]
    if body.amount == 0:
        raise InvalidField("unstake a positive amount")
    free = payer.stake - sum(p.amount for p in payer.unbonding)
    if free < body.amount:
        raise StakeError(f"only {free} of the bonded stake can be unbonded")
    matures = Height(ctx.height + state.params.stake_lookback)
    state.put_account(vtx.sender, replace(
        payer, unbonding=payer.unbonding + (Pending(matures, body.amount),),
    ))
    schedule_stake_change(state, matures, vtx.sender)


def schedule_stake_change(state: State, height: int, address: Address) -> None:
    agenda = state.get_agenda(height)
    if address not in agenda:
        state.put_agenda(height, agenda + (address,))


def process_stake_agenda(state: State, height: int) -> None:
    """At the start of block `height`: bonded stake starts counting, unbonded stake returns."""
    addresses = state.get_agenda(height)
    if not addresses:
        return
    delta = 0
    for address in sorted(addresses):
        a = state.get_account(address)
        joining = sum(p.amount for p in a.bonding if p.height <= height)
        leaving = sum(p.amount for p in a.unbonding if p.height <= height)
        state.put_account(address, replace(
            a, balance=a.balance + leaving, stake=a.stake + joining - leaving,
            bonding=tuple(p for p in a.bonding if p.height > height),
            unbonding=tuple(p for p in a.unbonding if p.height > height),
        ))
        delta += joining - leaving
    state.put_agenda(height, ())
    state.put_tip(replace(state.tip, total_stake=state.tip.total_stake + delta))


def debit(account: Account, amount: int) -> Account:
    return Account(
        account.balance - amount, account.nonce, account.stake, account.validator_key,
        account.bonding, account.unbonding,
    )


def credit(state: State, address: bytes, amount: int) -> None:
    a = state.get_account(address)
    state.put_account(address, Account(
        a.balance + amount, a.nonce, a.stake, a.validator_key, a.bonding, a.unbonding,
    ))
