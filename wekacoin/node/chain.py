"""The node's ledger service: the chain store, the tip state and the mempool, kept in step.

Everything that changes the tip goes through `commit`, so the mempool, the tip state and the
listeners (consensus, network, metrics) always agree on where the chain is.

Transactions submitted to this node over RPC are its responsibility: they are journaled in
the store before the RPC answers with their id (`submit_local`), re-admitted after a restart
(`resume_local`), re-sent to peers while pending (`local_due`: a peer behind refuses a
transaction the tip just made valid, and gossip does not retry), and forgotten once included
or dropped (by the chain rules, a nonce taken by another transaction, or expiry).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Iterator

from wekacoin.chain.blocks import apply_block
from wekacoin.chain.settlement import compute_ranking_order
from wekacoin.chain.state import State
from wekacoin.chain.tasks import compute_phase
from wekacoin.consensus.checkpoint import decode_checkpoint
from wekacoin.consensus.messages import Certificate
from wekacoin.errors import WekaError
from wekacoin.mempool import Mempool
from wekacoin.mempool.pool import Admission, Dropped
from wekacoin.store import ChainStore
from wekacoin.store.errors import damaged
from wekacoin.store.reader import TaskView
from wekacoin.types.block import Block
from wekacoin.types.codec import DecodeError, decode
from wekacoin.types.genesis import Genesis
from wekacoin.types.metric import is_better
from wekacoin.types.primitives import Address
from wekacoin.types.ranking import Outcome
from wekacoin.types.tx import Tx

log = logging.getLogger("wekacoin.node.chain")

_DROPPED_MEMORY = 10_000  # how many refused/dropped tx ids the node remembers, for RPC
LOCAL_RESEND_MS = 10_000
"""A pending transaction submitted here is sent to peers again after this long."""


FINALITY_LOOKAHEAD = 64  # blocks after a TENTATIVE one searched for a FINAL certificate


class Rejected(WekaError):
    """A transaction the node refused, with the reason."""


class RollbackRefused(WekaError):
    """A branch that would replace a FINAL block."""


@dataclass(frozen=True, slots=True)
class LeaderboardRow:
    rank: int | None
    submission_id: int | None
    """None on the baseline's row."""
    trainer: Address
    """The trainer; the supplier on the baseline's row."""
    outcome: Outcome | None
    score: int | None
    model_size: int | None
    model_cid: str | None
    winner: bool
    baseline: bool = False


class ChainService:
    def __init__(self, store: ChainStore, genesis: Genesis, mempool: Mempool | None = None) -> None:
        self.store = store
        self.genesis = genesis
        self.config = store.config
        _check_checkpoint(store)
        self._tip = store.state()
        self.mempool = mempool or Mempool(self._tip)
        self._dropped: OrderedDict[bytes, str] = OrderedDict()
        self._listeners: list[Callable[[State], None]] = []
        self._block_listeners: list[Callable[[Block], None]] = []
        self._local: dict[bytes, tuple[bytes, int]] = {}
        """Transactions submitted here and pending: id -> (raw, when last sent)."""

    # -- the tip --

    @property
    def state(self) -> State:
        return self._tip

    @property
    def height(self) -> int:
        return self._tip.height

    def tip_time(self) -> int:
        """The tip block's timestamp (the genesis time at height 0)."""
        height = self.height
        if height == 0:
            return self.genesis.time_ms
        header = self.store.get_header(height)
        assert header is not None, f"the store has no header at its tip {height}"
        return header.time_ms

    def recent_block_ms(self, blocks: int = 16) -> int | None:
        """The median interval between the timestamps of the last `blocks` blocks, in ms;
        None with fewer than 2 blocks. Local policy only (the evaluation's fetch budget):
        the median keeps one proposer's odd timestamp from moving it."""
        first = max(1, self.height - blocks + 1)
        times = []
        for height in range(first, self.height + 1):
            header = self.store.get_header(height)
            if header is not None:
                times.append(header.time_ms)
        gaps = sorted(b - a for a, b in zip(times, times[1:], strict=False))
        return gaps[len(gaps) // 2] if gaps else None

    def on_tip(self, listener: Callable[[State], None]) -> None:
        """Call `listener(new tip state)` after every commit and rollback."""
        self._listeners.append(listener)

    def on_block(self, listener: Callable[[Block], None]) -> None:
        """Call `listener(block)` after every block committed (not on rollbacks)."""
        self._block_listeners.append(listener)

    def commit(self, block: Block, state: State, certificate: bytes) -> None:
        """Append a block whose state `state` was computed on the current tip."""
        self.store.commit(block, state, certificate)
        self._tip = self.store.state()
        for dropped in self.mempool.on_commit(self._tip, block):
            self._remember(dropped)
        if self._local:
            ids = (t.id for t in block.txs)
            self._forget_local([tx_id for tx_id in ids if tx_id in self._local])
        log.debug("block %d %s txs=%d root=%s", block.height, block.hash.hex()[:12],
                 len(block.txs), block.header.state_root.hex()[:12])
        for listener in self._listeners:
            listener(self._tip)
        for block_listener in self._block_listeners:
            block_listener(block)

    def is_final(self, height: int) -> bool:
        """A block is FINAL when its certificate is, or a later block's is (BA*: a FINAL block
        makes the TENTATIVE ones before it final)."""
        store = self.store
        for h in range(height, min(store.height, height + FINALITY_LOOKAHEAD) + 1):
            raw = store.get_certificate(h)
            try:
                if raw and decode(Certificate, raw).final:
                    return True
            except DecodeError:
                log.warning("the certificate of block %d is unreadable", h)
        return False

    def rollback(self, to_height: int, now_ms: int) -> int:
        """Drop the TENTATIVE blocks above `to_height` (never a FINAL one); their
        transactions go back to the mempool when still valid. Returns how many went."""
        if to_height >= self.height:
            return 0
        if self.is_final(to_height + 1):
            raise RollbackRefused(f"block {to_height + 1} is FINAL: it cannot be rolled back")
        blocks = self.store.iter_blocks(to_height + 1, self.height + 1)
        txs = [tx for block in blocks for tx in block.txs]
        dropped = self.height - to_height
        self.store.rollback(to_height)
        self._tip = self.store.state()
        self.mempool.on_commit(self._tip)
        for tx in txs:
            try:
                self.admit(tx, now_ms)
            except WekaError:
                pass  # no longer valid on this branch: it is simply not pending any more
        log.warning("rolled back %d TENTATIVE block(s) to height %d", dropped, to_height)
        for listener in self._listeners:
            listener(self._tip)
        return dropped

    def apply_and_commit(self, block: Block, certificate: bytes) -> State:
        """Apply a block from a peer (after its certificate was checked) and commit it."""
        state = apply_block(self._tip, block)
        self.commit(block, state, certificate)
        return state

    # -- transactions --

    def admit(self, tx: Tx, now_ms: int) -> Admission:
        """Admit a transaction to the mempool; raises the mempool's own errors."""
        admission = self.mempool.add(tx, now_ms)
        for dropped in admission.dropped:
            self._remember(dropped)
        return admission

    def expire(self, now_ms: int) -> None:
        for dropped in self.mempool.expire(now_ms):
            self._remember(dropped)

    def submit_local(self, tx: Tx, raw: bytes, now_ms: int) -> Admission:
        """Admit a transaction submitted to this node and journal it (durably) so that the
        node keeps trying to include it across restarts; raises the mempool's errors."""
        admission = self.admit(tx, now_ms)
        tx_id = admission.vtx.id
        self.store.put_local_tx(tx_id, raw)
        self._local[tx_id] = (raw, now_ms)
        return admission

    def resume_local(self, now_ms: int) -> tuple[int, int]:
        """After a restart: admit the journaled transactions again; forget those the chain
        no longer takes. Returns (pending again, dropped)."""
        gone = []
        for tx_id, raw in self.store.local_txs():
            try:
                self.admit(decode(Tx, raw), now_ms)
            except (DecodeError, WekaError) as e:
                log.info("submitted transaction %s is no longer pending: %s", tx_id.hex()[:16], e)
                gone.append(tx_id)
                continue
            self._local[tx_id] = (raw, now_ms - LOCAL_RESEND_MS)  # send at once
        self.store.forget_local_txs(gone)
        return len(self._local), len(gone)

    def local_due(self, now_ms: int) -> list[bytes]:
        """Raw transactions submitted here, still pending and last sent `LOCAL_RESEND_MS`
        ago: send them to peers again."""
        gone = [tx_id for tx_id in self._local if tx_id not in self.mempool]
        self._forget_local(gone)
        due = [tx_id for tx_id, (_, sent) in self._local.items()
               if now_ms - sent >= LOCAL_RESEND_MS]
        for tx_id in due:
            self._local[tx_id] = (self._local[tx_id][0], now_ms)
        return [self._local[tx_id][0] for tx_id in due]

    def _forget_local(self, tx_ids: list[bytes]) -> None:
        if tx_ids:
            for tx_id in tx_ids:
                self._local.pop(tx_id, None)
            self.store.forget_local_txs(tx_ids)

    def dropped_reason(self, tx_id: bytes) -> str | None:
        return self._dropped.get(tx_id)

    def _remember(self, dropped: Dropped) -> None:
        self._dropped[dropped.vtx.id] = dropped.reason
        while len(self._dropped) > _DROPPED_MEMORY:
            self._dropped.popitem(last=False)

    # -- queries --

    def blocks(self, start: int, count: int) -> Iterator[tuple[bytes, bytes]]:
        """(block bytes, certificate) for sync, read lazily."""
        stop = min(start + count, self.height + 1)
        for raw in self.store.iter_raw_blocks(start, stop):
            yield raw.data, raw.certificate

    def task(self, task_id: int) -> TaskView | None:
        return self.store.get_task(task_id)

    def task_ids(self) -> range:
        return range(1, self._tip.tip.next_task_id)

    def leaderboard(self, view: TaskView) -> list[LeaderboardRow]:
        """Settled: the meta-ranking in settlement order, with the baseline's row where its
        agreed score places it. Otherwise: the submissions so far."""
        submissions = {s.id: s for s in view.submissions}
        record = view.settlement
        if record is None or not record.entries:
            return [
                LeaderboardRow(None, s.id, s.trainer, None, None, None, s.model_cid, False)
                for s in view.submissions
            ]
        task = view.task
        ranked = compute_ranking_order(task, record.entries, submissions)
        baseline_score = (
            record.baseline_score if record.baseline_outcome is Outcome.SCORED else None
        )
        baseline = LeaderboardRow(
            None, None, task.supplier, record.baseline_outcome, baseline_score,
            None, task.baseline_cid, False, baseline=True,
        )
        rows = [
            LeaderboardRow(i + 1, s.id, s.trainer, e.outcome, e.score, e.model_size,
                           s.model_cid, s.id == record.winner)
            for i, e in enumerate(ranked) if (s := submissions[e.submission_id])
        ]
        # The baseline goes above the first model that does not beat it (last if unscored).
        at = len(rows)
        if baseline_score is not None:
            at = next((i for i, e in enumerate(ranked)
                       if not is_better(task.spec.metric, e.score, baseline_score)), at)
        rows.insert(at, baseline)
        for e in record.entries:
            if e.outcome is not Outcome.SCORED:
                s = submissions[e.submission_id]
                rows.append(LeaderboardRow(None, s.id, s.trainer, e.outcome, None, None,
                                           s.model_cid, False))
        return rows

    def phase(self, view: TaskView) -> str:
        return compute_phase(view.task, self.height + 1, self.config.params).value


def _check_checkpoint(store: ChainStore) -> None:
    """Refuse a store whose consensus checkpoint does not decode, before the node runs.

    The checkpoint holds the votes the node signed in its current round; without it the node
    could sign a different vote in a step it already voted in. Whether to go on without it
    (after the network has moved past that round) is the operator's call, not the node's."""
    raw = store.get_checkpoint()
    if raw is None:
        return
    try:
        decode_checkpoint(raw)
    except DecodeError as e:
        raise damaged(store.root, f"its consensus checkpoint (the votes this node signed in "
                                  f"its last round) does not decode: {e}") from None
