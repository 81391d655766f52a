"""For drivers: carry out an `AssembleBlock` with the real chain rules."""

from __future__ import annotations

from wekacoin.chain.blocks import build_block
from wekacoin.chain.errors import InvalidBlockTx
from wekacoin.chain.state import State
from wekacoin.consensus.actions import AssembleBlock
from wekacoin.types.block import Block, BlockMeta
from wekacoin.types.tx import VerifiedTx


def assemble_block(
    state: State, request: AssembleBlock, vtxs: list[VerifiedTx], now: int
) -> Block:
    """The proposal `request` asks for on `state`, with as many of `vtxs` (in order) as the
    chain rules accept: an invalid transaction is dropped and the block built again."""
    vtxs = list(vtxs)[: state.params.max_block_txs]
    meta = BlockMeta(request.seed_proof, request.settlement)
    while True:
        try:
            block, _ = build_block(
                state, vtxs=vtxs, seed=request.seed, proposer=request.proposer, meta=meta,
                time_ms=now,
            )
            return block
        except InvalidBlockTx as e:
            del vtxs[e.index]
