"""The simulator's ledger port: the chain, the real mempool and what a node persists, in
memory.

It is what `node/driver.py`'s `StoreLedger` is on LevelDB, for the driver core
(`consensus/driver.py`): the same calls with the same meaning. Everything but the mempool
survives a simulated crash (it stands for the node's disk); the mempool is memory and starts
empty after a restart, as on a real node. Height 0 is the genesis state, not a block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from wekacoin.chain.genesis import genesis_state
from wekacoin.chain.state import State
from wekacoin.consensus.actions import Commit, Persist
from wekacoin.consensus.messages import Certificate
from wekacoin.errors import WekaError
from wekacoin.mempool.policy import BlockLimits
from wekacoin.mempool.pool import Mempool
from wekacoin.types.block import Block
from wekacoin.types.genesis import Genesis
from wekacoin.types.primitives import Hash
from wekacoin.types.ranking import SignedRanking
from wekacoin.types.tx import Tx, VerifiedTx


@dataclass(slots=True)
class Committed:
    block: Block
    state: State
    certificate: Certificate
    final: bool
    """Its own certificate is FINAL (a later FINAL block makes it final too)."""


class MemoryLedger:
    def __init__(self, genesis: Genesis, on_commit: Callable[[Commit], None]) -> None:
        self.genesis = genesis
        self.genesis_state = genesis_state(genesis)
        self.blocks: list[Committed] = []
        """Heights 1, 2, ...: blocks[h - 1] is height h."""
        self._on_commit = on_commit
        self.checkpoint: bytes | None = None
        self.kept: dict[Hash, Block] = {}
        self.own_rankings: dict[tuple[int, bytes], SignedRanking] = {}
        self.mempool = Mempool(self.genesis_state)

    # -- reading --

    @property
    def state(self) -> State:
        return self.blocks[-1].state if self.blocks else self.genesis_state

    @property
    def height(self) -> int:
        return len(self.blocks)

    def tip_time(self) -> int:
        return self.blocks[-1].block.header.time_ms if self.blocks else self.genesis.time_ms

    def state_at(self, height: int) -> State:
        return self.blocks[height - 1].state if height else self.genesis_state

    def hashes(self, start: int = 1) -> list[Hash]:
        """Block hashes from height `start` to the tip."""
        return [c.block.hash for c in self.blocks[start - 1:]]

    def block(self, block_hash: Hash) -> Block | None:
        """A committed or kept block by hash (what this node can serve a peer)."""
        kept = self.kept.get(block_hash)
        if kept is not None:
            return kept
        return next((c.block for c in self.blocks if c.block.hash == block_hash), None)

    # -- the driver core's port --

    def commit(self, action: Commit) -> None:
        self.append(action.block, action.state, action.certificate, action.final)
        self._on_commit(action)

    def persist(self, action: Persist) -> None:
        self.checkpoint = action.checkpoint
        for block in action.blocks:
            self.kept[block.hash] = block
        for signed in action.rankings:
            self.own_rankings[(signed.ranking.task_id, signed.ranking.evaluator)] = signed

    def recovered(self) -> tuple[bytes | None, tuple[SignedRanking, ...]]:
        return self.checkpoint, tuple(s for _, s in sorted(self.own_rankings.items()))

    def kept_block(self, height: int, block_hash: Hash) -> Block | None:
        block = self.kept.get(block_hash)
        return block if block is not None and block.height == height else None

    def select(self, state: State, seed: bytes) -> list[VerifiedTx]:
        return self.mempool.select(state, BlockLimits.for_params(state.params), seed=seed)

    # -- what the simulator does to it --

    def append(self, block: Block, state: State, certificate: Certificate, final: bool) -> None:
        """Store a block on the tip (decided here, or synced) with the state it produced."""
        self.blocks.append(Committed(block, state, certificate, final))
        self.kept = {h: b for h, b in self.kept.items() if b.height > block.height}
        open_tasks = set(state.tip.open_tasks)
        self.own_rankings = {k: s for k, s in self.own_rankings.items() if k[0] in open_tasks}
        self.mempool.on_commit(state, block)

    def rollback(self, to_height: int, now: int) -> None:
        """Drop the blocks above `to_height` (the caller checked none is FINAL); their
        transactions go back to the mempool when still valid, as on the node."""
        dropped = self.blocks[to_height:]
        del self.blocks[to_height:]
        self.mempool.on_commit(self.state)
        for c in dropped:
            for tx in c.block.txs:
                self.admit(tx, now)

    def restart(self) -> None:
        """A crash loses the mempool (memory); everything else is on disk."""
        self.mempool = Mempool(self.state)

    def admit(self, tx: Tx, now: int) -> bool:
        """Take a gossiped transaction into the mempool; False if the mempool refuses it."""
        try:
            self.mempool.add(tx, now)
        except WekaError:
            return False
        return True
