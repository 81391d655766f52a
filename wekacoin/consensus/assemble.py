"""For drivers: carry out an `AssembleBlock` with the real chain rules."""

from __future__ import annotations

from wekacoin.chain.blocks import begin_block, build_block
from wekacoin.chain.errors import InvalidBlockTx, InvalidRanking
from wekacoin.chain.rankings import verify_ranking
from wekacoin.chain.state import State
from wekacoin.consensus.actions import AssembleBlock
from wekacoin.types.block import Block, BlockMeta
from wekacoin.types.primitives import Hash, Height
from wekacoin.types.ranking import SignedRanking
from wekacoin.types.tx import VerifiedTx


def assemble_block(
    state: State, request: AssembleBlock, vtxs: list[VerifiedTx], now: int
) -> Block:
    """The proposal `request` asks for on `state`, with as many of `vtxs` (in order) as the
    chain rules accept: an invalid transaction is dropped and the block built again."""
    vtxs = list(vtxs)[: state.params.max_block_txs]
    meta = BlockMeta(request.seed_proof, select_recordable(state, request.seed, request.rankings))
    while True:
        try:
            block, _ = build_block(
                state, vtxs=vtxs, seed=request.seed, proposer=request.proposer, meta=meta,
                time_ms=now,
            )
            return block
        except InvalidBlockTx as e:
            del vtxs[e.index]


def select_recordable(
    state: State, seed: Hash, rankings: tuple[SignedRanking, ...]
) -> tuple[SignedRanking, ...]:
    """The rankings a block after `state` can record: valid in the state the block's
    transactions meet (a task may settle or expire at the block's start)."""
    if not rankings:
        return ()
    probe = state.child()
    begin_block(probe, Height(state.height + 1), seed)
    keep = []
    for signed in rankings:
        r = signed.ranking
        if probe.get_ranking(r.task_id, r.evaluator) is not None:
            continue
        try:
            verify_ranking(signed, probe, state.config.genesis_hash)
        except InvalidRanking:
            continue
        keep.append(signed)
    return tuple(keep)
