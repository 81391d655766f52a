"""The mempool: pending transactions, admitted through the real chain rules.

Pure logic: no I/O, no clock (callers pass `now_ms`). The node calls
- `add(tx, now_ms)` for each transaction from RPC or gossip (relay only what it admits);
- `on_commit(tip, block)` after each committed block (drops included and now-invalid ones);
- `expire(now_ms)` now and then;
- `select(state, limits)` to fill a block it proposes.

Admission: duplicate id -> signature -> nonce (not used yet, at most `max_nonce_gap` past the
sender's next expected one) -> replacement fee or per-sender cap -> the chain rules, applied
after the sender's earlier pending transactions on the state of the next block
(`SenderQueue`). Every refusal is a `MempoolError` whose text is the reason; a rule's refusal
is `InvalidTransaction` carrying the rule's own `TxError`.

Size caps: when the pool holds more than `max_txs` transactions or `max_bytes` bytes, it
evicts the last pending transaction (highest nonce) of some sender, future ones first, then
the lowest fee, then the newest. Evicting from the end of a sender's queue never strands the
transactions after it. If the newcomer is the one evicted, `add` raises PoolFull.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

from wekacoin.chain.blocks import begin_block
from wekacoin.chain.errors import BadNonce, TxError
from wekacoin.chain.state import State
from wekacoin.chain.transactions import apply_tx, verify_tx
from wekacoin.mempool.assembly import select_txs
from wekacoin.mempool.errors import (
    AlreadyKnown,
    InvalidTransaction,
    NonceGapTooLarge,
    PoolFull,
    ReplacementUnderpriced,
    SenderQueueFull,
)
from wekacoin.mempool.policy import BlockLimits, MempoolPolicy
from wekacoin.mempool.sender import NextBlock, PoolEntry, SenderQueue
from wekacoin.types.block import Block
from wekacoin.types.tx import Tx, VerifiedTx

TailKey = tuple[int, int, int, bytes]
"""(0 if future else 1, fee, -arrival, tx id): the smallest is evicted first."""


@dataclass(frozen=True, slots=True)
class Dropped:
    """A transaction the pool let go without including it, and why (for logs and RPC)."""

    vtx: VerifiedTx
    reason: str


@dataclass(frozen=True, slots=True)
class Admission:
    vtx: VerifiedTx
    ready: bool
    """True if it can go in the next block; False while nonces before it are missing."""
    replaced: VerifiedTx | None
    dropped: tuple[Dropped, ...]
    """Transactions evicted for it, or invalidated by its replacing an earlier one."""


def next_block_of(tip: State, seed: bytes | None = None) -> NextBlock:
    """The state pending transactions meet: `tip` after the next block's opening events.
    The next seed is not known yet; it only draws what tasks record, so the tip's stands in."""
    base = tip.child()
    height = tip.height + 1
    seed = tip.tip.seed if seed is None else seed
    begin_block(base, height, seed)
    return NextBlock(base, height, seed)


class Mempool:
    def __init__(self, tip: State, policy: MempoolPolicy | None = None) -> None:
        self.policy = policy or MempoolPolicy()
        self._genesis_hash = tip.config.genesis_hash
        self._next = next_block_of(tip)
        self._entries: dict[bytes, PoolEntry] = {}  # by tx id, in arrival order
        self._senders: dict[bytes, SenderQueue] = {}
        self._bytes = 0
        self._seq = 0
        self._tails: list[TailKey] = []  # a heap; stale keys are skipped when popped

    # -- reading --

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, tx_id: bytes) -> bool:
        return tx_id in self._entries

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def get(self, tx_id: bytes) -> VerifiedTx | None:
        entry = self._entries.get(tx_id)
        return None if entry is None else entry.vtx

    def all(self) -> list[VerifiedTx]:
        """Every pending transaction, in arrival order."""
        return [e.vtx for e in self._entries.values()]

    def pending(self, sender: bytes) -> list[VerifiedTx]:
        """The sender's pending transactions in nonce order."""
        queue = self._senders.get(sender)
        return [] if queue is None else [e.vtx for e in queue.in_order()]

    def next_nonce(self, sender: bytes) -> int:
        """The nonce a wallet should sign next: after the committed and ready pending ones."""
        queue = self._senders.get(sender)
        return self._account_nonce(sender) if queue is None else queue.expected

    # -- admission --

    def add(self, tx: Tx, now_ms: int) -> Admission:
        """Admit `tx` or raise a MempoolError saying why, leaving the pool unchanged; except
        that a PoolFull for a large transaction may come after cheaper ones were evicted to
        make room under the byte cap (it was then the cheapest left)."""
        tx_id = tx.id
        if tx_id in self._entries:
            raise AlreadyKnown(f"transaction {tx_id.hex()} is already pending")
        try:
            vtx = verify_tx(tx, self._genesis_hash)
        except TxError as e:
            raise InvalidTransaction(e) from None
        queue = self._senders.get(vtx.sender)
        if queue is None:
            queue = SenderQueue(vtx.sender, self._next, self._account_nonce(vtx.sender))
        self._check_admissible(vtx, queue)
        self._seq += 1
        entry = PoolEntry(vtx, now_ms, self._seq)
        try:
            replaced, invalid = queue.place(entry)
        except TxError as e:
            raise InvalidTransaction(e) from None
        self._senders[vtx.sender] = queue
        self._entries[vtx.id] = entry
        self._bytes += vtx.size
        dropped = []
        if replaced is not None:
            self._forget(replaced)
        for bad, error in invalid:
            self._forget(bad)
            dropped.append(Dropped(bad.vtx, f"no longer valid after a replacement: {error}"))
        self._push_tail(queue)
        evicted = self._evict_over_caps()
        if any(d.vtx is vtx for d in evicted):
            # Only a tail is evicted: its placement changed nothing else, and what it replaced
            # paid less, so a full pool would have evicted that first anyway.
            raise PoolFull(
                f"the pool is full and fee {vtx.fee} is not above the fees it could evict"
            )
        return Admission(vtx, queue.is_ready(vtx.nonce),
                         None if replaced is None else replaced.vtx, tuple(dropped + evicted))

    def _check_admissible(self, vtx: VerifiedTx, queue: SenderQueue) -> None:
        nonce, policy = vtx.nonce, self.policy
        if nonce > queue.expected + policy.max_nonce_gap:
            raise NonceGapTooLarge(
                f"nonce {nonce} is {nonce - queue.expected} past the sender's next expected "
                f"nonce {queue.expected}; the pool holds transactions at most "
                f"{policy.max_nonce_gap} nonces ahead: send the missing ones first"
            )
        if not queue.next_nonce <= nonce <= queue.expected:
            self._check_before_its_turn(vtx, future=nonce > queue.expected)
        existing = queue.entries.get(nonce)
        if existing is not None:
            need = policy.replacement_fee(existing.fee)
            if vtx.fee < need:
                raise ReplacementUnderpriced(
                    f"nonce {nonce} is already pending with fee {existing.fee}; a replacement "
                    f"pays at least {need}"
                )
        elif len(queue.entries) >= policy.max_per_sender:
            raise SenderQueueFull(
                f"the sender already has {len(queue.entries)} pending transactions, the most "
                "the pool keeps for one sender; wait for some to be included"
            )

    def _check_before_its_turn(self, vtx: VerifiedTx, *, future: bool) -> None:
        """Run the rules on a throwaway state: a used nonce gets the rule's own BadNonce, a
        future one the checks that do not depend on its turn (size, fee)."""
        try:
            apply_tx(self._next.base.child(), vtx, self._next.context())
        except BadNonce as e:
            if not future:
                raise InvalidTransaction(e) from None
        except TxError as e:
            raise InvalidTransaction(e) from None

    # -- removal --

    def on_commit(self, tip: State, block: Block | None = None) -> list[Dropped]:
        """Move to the new tip: drop what `block` included, what used a nonce another
        transaction took, and what the rules now refuse; revalidate the rest."""
        self._next = next_block_of(tip)
        included = set() if block is None else {t.id for t in block.txs}
        dropped = []
        for sender, queue in list(self._senders.items()):
            stale, invalid = queue.reset(self._next, self._account_nonce(sender))
            for entry in stale:
                self._forget(entry)
                if entry.vtx.id not in included:
                    dropped.append(Dropped(
                        entry.vtx, f"nonce {entry.nonce} was used by another transaction"))
            for entry, error in invalid:
                self._forget(entry)
                dropped.append(Dropped(entry.vtx, f"no longer valid: {error}"))
            if not queue.entries:
                del self._senders[sender]
        self._rebuild_tails()
        return dropped

    def expire(self, now_ms: int) -> list[Dropped]:
        """Drop transactions that arrived more than `max_age_ms` before `now_ms`."""
        cutoff = now_ms - self.policy.max_age_ms
        old = [e for e in self._entries.values() if e.arrived_ms <= cutoff]
        for entry in sorted(old, key=lambda e: -e.nonce):  # last first: runs shrink once
            self._remove(entry)
        reason = f"expired: pending for more than {self.policy.max_age_ms // 1000} s"
        return [Dropped(e.vtx, reason) for e in old]

    def remove(self, tx_id: bytes) -> VerifiedTx | None:
        entry = self._entries.get(tx_id)
        if entry is not None:
            self._remove(entry)
        return None if entry is None else entry.vtx

    # -- block assembly --

    def select(
        self, state: State, limits: BlockLimits, seed: bytes | None = None
    ) -> list[VerifiedTx]:
        """Transactions for the block after `state`: a sequence that applies in order (see
        `assembly.select_txs`). Pass the block's `seed` when known (only draws depend on it)."""
        return select_txs(self._senders.values(), next_block_of(state, seed), limits)

    # -- bookkeeping --

    def _account_nonce(self, sender: bytes) -> int:
        return self._next.base.get_account(sender).nonce

    def _remove(self, entry: PoolEntry) -> None:
        queue = self._senders[entry.vtx.sender]
        queue.remove(entry.nonce)
        self._forget(entry)
        if queue.entries:
            self._push_tail(queue)
        else:
            del self._senders[entry.vtx.sender]

    def _forget(self, entry: PoolEntry) -> None:
        del self._entries[entry.vtx.id]
        self._bytes -= entry.vtx.size

    def _evict_over_caps(self) -> list[Dropped]:
        evicted = []
        while len(self._entries) > self.policy.max_txs or self._bytes > self.policy.max_bytes:
            entry = self._pop_cheapest_tail()
            self._remove(entry)
            evicted.append(Dropped(entry.vtx, "evicted: the pool is full and its fee was lowest"))
        return evicted

    def _tail_key(self, queue: SenderQueue) -> TailKey | None:
        tail = queue.tail()
        if tail is None:
            return None
        return (1 if queue.is_ready(tail.nonce) else 0, tail.fee, -tail.seq, tail.vtx.id)

    def _push_tail(self, queue: SenderQueue) -> None:
        key = self._tail_key(queue)
        if key is not None:
            heapq.heappush(self._tails, key)
        if len(self._tails) > 2 * len(self._senders) + 64:
            self._rebuild_tails()

    def _rebuild_tails(self) -> None:
        keys = (self._tail_key(q) for q in self._senders.values())
        self._tails = [k for k in keys if k is not None]
        heapq.heapify(self._tails)

    def _pop_cheapest_tail(self) -> PoolEntry:
        while True:
            key = heapq.heappop(self._tails)  # never empty: every sender's tail has its key
            entry = self._entries.get(key[3])
            if entry is not None and self._tail_key(self._senders[entry.vtx.sender]) == key:
                return entry
