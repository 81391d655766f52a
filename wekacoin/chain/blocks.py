"""Blocks: `apply_block` (validate and apply a block someone proposed) and `build_block` (make
one from verified transactions). Both run the same `execute_block`, so a block built here
always applies there."""

from __future__ import annotations

import hashlib
from dataclasses import replace

from wekacoin.chain.accounts import credit, process_stake_agenda
from wekacoin.chain.context import BlockContext
from wekacoin.chain.errors import (
    BadSignature,
    BlockError,
    InvalidBlockTx,
    StateRootMismatch,
    TxError,
)
from wekacoin.chain.rankings import process_rankings
from wekacoin.chain.settlement import process_settlements
from wekacoin.chain.state import State
from wekacoin.chain.storage import process_storage_epoch
from wekacoin.chain.tasks import process_task_deadlines
from wekacoin.chain.transactions import apply_tx, unchecked_tx
from wekacoin.crypto.parallel import SignatureChecks
from wekacoin.types.block import Block, BlockHeader, BlockMeta, block_hash
from wekacoin.types.codec import hash_of
from wekacoin.types.primitives import Hash, Height, Millis, PublicKey
from wekacoin.types.tx import Tx, VerifiedTx, id_signing_message

_TX_ROOT_DOMAIN = b"wekacoin/tx-root/v1"


def compute_tx_root(txs: tuple[Tx, ...]) -> Hash:
    """SHA-256 over each transaction's id and signature, in block order (the id is the
    payload's SHA-256, so the root commits to every byte without hashing a payload again)."""
    h = hashlib.sha256(_TX_ROOT_DOMAIN)
    for tx in txs:
        h.update(tx.id)
        h.update(tx.signature)
    return Hash(h.digest())


def apply_block(state: State, block: Block) -> State:
    """The state after `block`, or a BlockError; `state` itself is never modified."""
    header = block.header
    _check_header(state, block)
    new = state.child()
    # The signatures are checked on the other cores while this thread applies the block to a
    # child state (thrown away unless every signature holds). The outcome is the serial one:
    # a bad signature is reported first, at its lowest index, whatever the rules say.
    genesis_hash = state.config.genesis_hash
    checks = SignatureChecks([
        (tx.unsigned.sender, id_signing_message(genesis_hash, tx.id), tx.signature)
        for tx in block.txs
    ])
    error: BlockError | None = None
    try:
        vtxs = [unchecked_tx(tx) for tx in block.txs]
        execute_block(new, header.height, header.seed, header.proposer, vtxs, block.meta)
        root = new.root()
        if root != header.state_root:
            error = StateRootMismatch(
                f"block {header.height} claims state root {header.state_root.hex()}, "
                f"applying it gives {root.hex()}"
            )
    except BlockError as e:
        error = e
    finally:
        bad = checks.first_failure()
    if bad is not None:
        raise InvalidBlockTx(bad, BadSignature("the signature does not match the sender's key"))
    if error is not None:
        raise error
    new.block_hash = block_hash(header)
    return new


def build_block(
    state: State, *, vtxs: list[VerifiedTx], seed: Hash, proposer: PublicKey | None,
    meta: BlockMeta, time_ms: Millis,
) -> tuple[Block, State]:
    """Assemble the next block from transactions that must all be valid, and its state."""
    height = Height(state.height + 1)
    new = state.child()
    execute_block(new, height, seed, proposer, vtxs, meta)
    txs = tuple(v.tx for v in vtxs)
    header = BlockHeader(
        height=height, prev_hash=state.get_block_hash(), time_ms=time_ms, proposer=proposer,
        seed=seed, tx_root=compute_tx_root(txs), meta_hash=hash_of(meta),
        state_root=new.root(),
    )
    new.block_hash = block_hash(header)
    return Block(header, txs, meta), new


def execute_block(
    state: State, height: Height, seed: Hash, proposer: PublicKey | None,
    vtxs: list[VerifiedTx], meta: BlockMeta,
) -> BlockContext:
    """Start-of-block events, the transactions, the rankings, then the proposer's fees."""
    if proposer is None and (vtxs or meta.rankings or meta.seed_proof is not None):
        raise BlockError("an empty block (no proposer) carries no transactions or rankings")
    ctx = begin_block(state, height, seed)
    for i, vtx in enumerate(vtxs):
        try:
            apply_tx(state, vtx, ctx)
        except TxError as e:
            raise InvalidBlockTx(i, e) from None
    process_rankings(state, meta.rankings, state.config.genesis_hash)
    if ctx.fees:
        owner = None if proposer is None else state.get_validator(proposer)
        if owner is None:
            raise BlockError("the proposer's key has no stake to receive the fees")
        credit(state, owner, ctx.fees)
    return ctx


def begin_block(state: State, height: Height, seed: Hash) -> BlockContext:
    """The start-of-block events, before any transaction: the tip moves to `height`, matured
    stake changes take effect, ready tasks settle from the rankings earlier blocks recorded,
    task deadlines pass, a storage epoch draws its challenges. Block assembly (the mempool)
    runs this too, so it checks transactions against exactly the state they will meet in the
    block."""
    state.put_tip(replace(state.tip, height=height, seed=seed))
    process_stake_agenda(state, height)
    process_settlements(state, height)
    process_task_deadlines(state, height, seed)
    process_storage_epoch(state, height, seed)
    return BlockContext(height, seed)


def _check_header(state: State, block: Block) -> None:
    header = block.header
    if header.height != state.height + 1:
        raise BlockError(f"expected a block at height {state.height + 1}, got {header.height}")
    if header.prev_hash != state.block_hash:
        raise BlockError(f"block {header.height} does not extend the current tip")
    if len(block.txs) > state.params.max_block_txs:
        raise BlockError(f"{len(block.txs)} transactions exceed {state.params.max_block_txs}")
    if header.tx_root != compute_tx_root(block.txs):
        raise BlockError("the transaction root does not match the transactions")
    if header.meta_hash != hash_of(block.meta):
        raise BlockError("the metadata hash does not match the metadata")
