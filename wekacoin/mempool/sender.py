"""One sender's pending transactions, by nonce.

The sender's transactions from its account nonce on, without a gap, form the *ready run*:
each one was applied, in nonce order, with the real chain rules on a child of the base state
(the tip after the next block's opening events), so the run is what a block could include.
Transactions past a missing nonce are *future*: only checked so far as their turn allows
(signature, size, fee); they are validated when the gap fills.

Senders are validated independently: a transaction that only a pending transfer from
another sender would fund is refused until that transfer is committed.
"""

from __future__ import annotations

from dataclasses import dataclass

from wekacoin.chain.context import BlockContext
from wekacoin.chain.errors import TxError
from wekacoin.chain.state import State
from wekacoin.chain.transactions import apply_tx
from wekacoin.types.tx import VerifiedTx


@dataclass(slots=True)
class PoolEntry:
    vtx: VerifiedTx
    arrived_ms: int
    seq: int
    """Arrival order in the pool: breaks fee ties (earlier first) and orders expiry."""

    @property
    def nonce(self) -> int:
        return self.vtx.nonce

    @property
    def fee(self) -> int:
        return self.vtx.fee


@dataclass(frozen=True, slots=True)
class NextBlock:
    """Where pending transactions are checked: the tip after the next block's opening
    events (`begin_block`), at the next height. The pool's is never written (each sender
    applies its run on a child); block assembly makes its own and writes it."""

    base: State
    height: int
    seed: bytes

    def context(self) -> BlockContext:
        return BlockContext(self.height, self.seed)


class SenderQueue:
    __slots__ = ("sender", "entries", "next_nonce", "ready", "_state", "_next")

    def __init__(self, sender: bytes, next_block: NextBlock, next_nonce: int) -> None:
        self.sender = sender
        self.entries: dict[int, PoolEntry] = {}
        self.next_nonce = next_nonce
        """The account's nonce in the base state: the first nonce a block can include."""
        self.ready = 0
        """Length of the ready run."""
        self._next = next_block
        self._state = next_block.base.child()

    @property
    def expected(self) -> int:
        """The first nonce missing after the ready run."""
        return self.next_nonce + self.ready

    def is_ready(self, nonce: int) -> bool:
        return self.next_nonce <= nonce < self.expected

    def tail(self) -> PoolEntry | None:
        return self.entries[max(self.entries)] if self.entries else None

    def in_order(self) -> list[PoolEntry]:
        return [self.entries[n] for n in sorted(self.entries)]

    def place(self, entry: PoolEntry) -> tuple[PoolEntry | None, list[tuple[PoolEntry, TxError]]]:
        """Put `entry` at its nonce, replacing the entry there if any. Returns (replaced,
        dropped): entries that joining the run showed invalid, with the rule's error. Raises
        the TxError, changing nothing, if `entry` itself is invalid where it would run."""
        nonce = entry.nonce
        replaced = self.entries.get(nonce)
        if nonce < self.next_nonce:
            raise ValueError("a nonce below the account's is not placed")
        if nonce > self.expected:  # future: validated when its turn comes
            self.entries[nonce] = entry
            return replaced, []
        if nonce == self.expected:
            apply_tx(self._state, entry.vtx, self._next.context())  # raises, changing nothing
            self.entries[nonce] = entry
            self.ready += 1
            return replaced, self._extend()
        # a replacement inside the run: the run is rebuilt with it
        entries = dict(self.entries)
        entries[nonce] = entry
        state, ready, failure = _run(self._next, entries, self.next_nonce)
        if failure is not None and failure[0] is entry:
            raise failure[1]
        self.entries, self._state, self.ready = entries, state, ready
        dropped = [] if failure is None else [failure]
        if failure is not None:
            del self.entries[failure[0].nonce]
        return replaced, dropped

    def remove(self, nonce: int) -> PoolEntry:
        """Take out one entry; the run ends before it (later entries become future)."""
        entry = self.entries.pop(nonce)
        if self.is_ready(nonce):
            self._state, self.ready, failure = _run(self._next, self.entries, self.next_nonce)
            assert failure is None  # a prefix of a valid run is valid
        return entry

    def reset(
        self, next_block: NextBlock, next_nonce: int
    ) -> tuple[list[PoolEntry], list[tuple[PoolEntry, TxError]]]:
        """Revalidate against a new base (after a block). Returns (stale, invalid): entries
        whose nonce the account has passed, and entries the rules now refuse."""
        self._next = next_block
        self.next_nonce = next_nonce
        stale = [self.entries.pop(n) for n in sorted(self.entries) if n < next_nonce]
        self._state, self.ready, failure = _run(next_block, self.entries, next_nonce)
        if failure is None:
            return stale, []
        del self.entries[failure[0].nonce]  # the run stops at the gap it leaves
        return stale, [failure]

    def _extend(self) -> list[tuple[PoolEntry, TxError]]:
        """Grow the run over future entries now that the gap before them is filled."""
        ctx = self._next.context()
        while (entry := self.entries.get(self.expected)) is not None:
            try:
                apply_tx(self._state, entry.vtx, ctx)
            except TxError as e:
                del self.entries[entry.nonce]
                return [(entry, e)]
            self.ready += 1
        return []


def _run(
    next_block: NextBlock, entries: dict[int, PoolEntry], nonce: int,
) -> tuple[State, int, tuple[PoolEntry, TxError] | None]:
    """Apply entries from `nonce` on in order until a gap or the first invalid one."""
    state = next_block.base.child()
    ctx = next_block.context()
    ready = 0
    while (entry := entries.get(nonce + ready)) is not None:
        try:
            apply_tx(state, entry.vtx, ctx)
        except TxError as e:
            return state, ready, (entry, e)
        ready += 1
    return state, ready, None
