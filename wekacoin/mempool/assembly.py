"""Block assembly: which pending transactions go into the next block, in which order.

Greedy by fee across senders, nonce order within a sender: the candidates are each sender's
lowest pending nonce that the state expects; the highest fee (earliest arrival on ties) is
applied with the real rules to the evolving state of the block; if it applies, it is taken
and the sender's next nonce becomes a candidate. A transaction that fails (the state moved:
another transaction spent the funds, a task closed) is skipped, and with it the rest of its
sender's queue, whose nonces can no longer follow. The result applies, in order, on the
state `select_txs` was given: `build_block` accepts it as is.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

from wekacoin.chain.errors import TxError
from wekacoin.chain.transactions import apply_tx
from wekacoin.mempool.policy import BlockLimits
from wekacoin.mempool.sender import NextBlock, SenderQueue
from wekacoin.types.tx import VerifiedTx


def select_txs(
    queues: Iterable[SenderQueue], next_block: NextBlock, limits: BlockLimits,
) -> list[VerifiedTx]:
    state = next_block.base  # a fresh layer owned by this call: written freely
    ctx = next_block.context()
    candidates: list[tuple[int, int, int, SenderQueue]] = []  # (-fee, arrival, nonce, queue)

    def offer(queue: SenderQueue, nonce: int) -> None:
        entry = queue.entries.get(nonce)
        if entry is not None:
            heapq.heappush(candidates, (-entry.fee, entry.seq, nonce, queue))

    for queue in queues:
        offer(queue, state.get_account(queue.sender).nonce)
    chosen: list[VerifiedTx] = []
    size = 0
    while candidates and len(chosen) < limits.max_txs:
        _, _, nonce, queue = heapq.heappop(candidates)
        vtx = queue.entries[nonce].vtx
        if size + vtx.size > limits.max_bytes:
            continue  # too big for what is left; smaller ones from others may still fit
        try:
            apply_tx(state, vtx, ctx)
        except TxError:
            continue
        chosen.append(vtx)
        size += vtx.size
        offer(queue, nonce + 1)
    return chosen
