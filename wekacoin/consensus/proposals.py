"""The proposals of one round: every valid block by hash (the round may decide any of
them), and per period the best one this node may vote for."""

from __future__ import annotations

from wekacoin.chain.state import State
from wekacoin.consensus.messages import Proposal
from wekacoin.types.block import Block


class ProposalBook:
    def __init__(self) -> None:
        self.blocks: dict[bytes, tuple[Block, State]] = {}
        self._by_proposer: dict[tuple[int, bytes], set[bytes]] = {}
        self._votable: dict[int, list[Proposal]] = {}

    def add(self, p: Proposal) -> None:
        """Keep a verified proposal."""
        self.blocks[p.block.hash] = (p.block, p.state)
        self._by_proposer.setdefault((p.period, p.proposer), set()).add(p.block.hash)
        self._votable.setdefault(p.period, []).append(p)

    def best(self, period: int) -> Proposal | None:
        """Lowest priority wins; a proposer that signed two blocks in a period is ignored
        (both stay in `blocks`, should the network decide one)."""
        honest = [
            p for p in self._votable.get(period, ())
            if len(self._by_proposer[(period, p.proposer)]) == 1
        ]
        return min(honest, key=lambda p: p.priority, default=None)
