"""Transaction verification, and `apply_tx`: the checks every kind shares, then its rule."""

from __future__ import annotations

import hashlib
from typing import assert_never

from wekacoin.chain import accounts, storage, tasks
from wekacoin.chain.context import BlockContext
from wekacoin.chain.errors import BadNonce, BadSignature, FeeTooLow, InsufficientFunds, TxTooLarge
from wekacoin.chain.state import State
from wekacoin.crypto.keys import KeyPair, address_of, verify_signature
from wekacoin.types.codec import encode
from wekacoin.types.ledger import Account
from wekacoin.types.primitives import Amount, Hash, Nonce, PublicKey
from wekacoin.types.tx import (
    ClaimStorage,
    PublishTask,
    RevealModel,
    RevealTest,
    RevealTraining,
    Stake,
    StorageProof,
    SubmitModel,
    Transfer,
    Tx,
    TxBody,
    UnsignedTx,
    Unstake,
    VerifiedTx,
    id_signing_message,
    signing_message,
    validator_key_message,
)

_FRAMING_BYTES = 67  # the signature (64 + 2) and the outer array header


def compute_tx_id(payload: bytes) -> Hash:
    """A transaction's id: SHA-256 of its payload (the signature cannot change it)."""
    return Hash(hashlib.sha256(payload).digest())


def verify_tx(tx: Tx, genesis_hash: bytes) -> VerifiedTx:
    """Check the signature of `tx`; the only way to obtain a `VerifiedTx`."""
    sender_key = tx.unsigned.sender
    tx_id = Hash(tx.id)
    if not verify_signature(sender_key, id_signing_message(genesis_hash, tx_id), tx.signature):
        raise BadSignature("the signature does not match the sender's key")
    return unchecked_tx(tx)


def unchecked_tx(tx: Tx) -> VerifiedTx:
    """`verify_tx` without its signature check. Only for `apply_block`, which checks the block's
    signatures alongside (on the other cores) and throws the state away if one fails."""
    return VerifiedTx(tx, Hash(tx.id), address_of(tx.unsigned.sender),
                      len(tx.payload) + _FRAMING_BYTES)


def apply_tx(state: State, vtx: VerifiedTx, ctx: BlockContext) -> None:
    """Apply one verified transaction to `state`, or raise a TxError and change nothing."""
    params = state.params
    limit = params.max_tx_bytes
    if isinstance(vtx.body, StorageProof):
        limit = storage.storage_proof_tx_bytes(params)
    if vtx.size > limit:
        raise TxTooLarge(f"transaction is {vtx.size} bytes, the limit is {limit}")
    if vtx.fee < params.min_tx_fee:
        raise FeeTooLow(f"fee {vtx.fee} is below the minimum {params.min_tx_fee}")
    account = state.get_account(vtx.sender)
    if vtx.nonce != account.nonce:
        raise BadNonce(f"nonce {vtx.nonce} is not the account's next nonce {account.nonce}")
    if account.balance < vtx.fee:
        raise InsufficientFunds(f"balance {account.balance} cannot pay the fee {vtx.fee}")
    payer = Account(account.balance - vtx.fee, account.nonce + 1)
    match vtx.body:
        case Transfer() as body:
            accounts.process_transfer(state, vtx, body, payer, ctx)
        case Stake() as body:
            accounts.process_stake(state, vtx, body, payer, ctx)
        case Unstake() as body:
            accounts.process_unstake(state, vtx, body, payer, ctx)
        case PublishTask() as body:
            tasks.process_publish_task(state, vtx, body, payer, ctx)
        case RevealTraining() as body:
            tasks.process_reveal_training(state, vtx, body, payer, ctx)
        case SubmitModel() as body:
            tasks.process_submit_model(state, vtx, body, payer, ctx)
        case RevealTest() as body:
            tasks.process_reveal_test(state, vtx, body, payer, ctx)
        case RevealModel() as body:
            tasks.process_reveal_model(state, vtx, body, payer, ctx)
        case ClaimStorage() as body:
            storage.process_claim_storage(state, vtx, body, payer, ctx)
        case StorageProof() as body:
            storage.process_storage_proof(state, vtx, body, payer, ctx)
        case unknown:  # a new TxBody variant without a rule fails type checking here
            assert_never(unknown)
    ctx.fees += vtx.fee


def sign_tx(keypair: KeyPair, genesis_hash: bytes, nonce: int, fee: int, body: TxBody) -> Tx:
    """A transaction signed by `keypair` for the chain with `genesis_hash`."""
    payload = encode(UnsignedTx(keypair.public_key, Nonce(nonce), Amount(fee), body))
    return Tx(payload, keypair.sign(signing_message(genesis_hash, payload)))


def sign_stake(validator: KeyPair, genesis_hash: bytes, staker: bytes, amount: int) -> Stake:
    """A Stake of `amount` by the account `staker` (an address) under `validator`'s key, with
    the key's proof of possession; the staking account signs the transaction as usual."""
    proof = validator.sign(validator_key_message(genesis_hash, staker))
    return Stake(Amount(amount), PublicKey(validator.public_key), proof)
