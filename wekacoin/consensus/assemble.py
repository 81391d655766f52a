"""For drivers: carry out an `AssembleBlock` with the real chain rules."""

from __future__ import annotations

from wekacoin.chain.blocks import begin_block, build_block
from wekacoin.chain.errors import InvalidBlockTx, InvalidRanking
from wekacoin.chain.rankings import verify_ranking
from wekacoin.chain.state import State
from wekacoin.consensus.actions import AssembleBlock
from wekacoin.types.block import Block, BlockMeta
from wekacoin.types.codec import encode
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


BLOCK_RANKING_BYTES = 192 * 2**10
"""What a builder lets a block's rankings take: with the transactions' DEFAULT_BLOCK_BYTES
(768 KiB), a proposal stays inside one 1 MiB gossip frame. A ranking of a task with the most
submissions (1,000) is about 16 KB and a committee has about `tau_evaluators` (100) of them,
so a big task's rankings are recorded over several blocks; any block of the settlement
window may record one, and each counts once recorded."""


def select_recordable(
    state: State, seed: Hash, rankings: tuple[SignedRanking, ...],
    max_bytes: int = BLOCK_RANKING_BYTES,
) -> tuple[SignedRanking, ...]:
    """The rankings a block after `state` can record: valid in the state the block's
    transactions meet (a task may settle or expire at the block's start), in the order given,
    leaving out those that would take the block's rankings past `max_bytes`."""
    if not rankings:
        return ()
    probe = state.child()
    begin_block(probe, Height(state.height + 1), seed)
    keep = []
    room = max_bytes
    for signed in rankings:
        r = signed.ranking
        if probe.get_ranking(r.task_id, r.evaluator) is not None:
            continue
        size = len(encode(signed))
        if size > room:
            continue
        try:
            verify_ranking(signed, probe, state.config.genesis_hash)
        except InvalidRanking:
            continue
        keep.append(signed)
        room -= size
    return tuple(keep)
