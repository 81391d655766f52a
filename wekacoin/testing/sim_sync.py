"""Block sync in the simulation: a node that fell behind, or sits on another branch, adopts
a peer's certified blocks when the fork choice (`consensus/fork_choice.py`, the node's own)
prefers them. Each block is checked against its certificate and the chain rules before it
is appended; FINAL blocks are never replaced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wekacoin.consensus.fork_choice import Branch, fork_height, prefers
from wekacoin.consensus.verify import RoundContext, verify_certificate
from wekacoin.errors import WekaError
from wekacoin.testing.sim_ledger import Committed, MemoryLedger

if TYPE_CHECKING:
    from wekacoin.testing.sim import SimNode, Simulation


def _branches(node: SimNode, theirs: list[Committed]) -> tuple[int, Branch, Branch]:
    ours = node.ledger.blocks
    fork = fork_height([c.block.hash for c in ours], [c.block.hash for c in theirs])
    mine = Branch.of([c.block.hash for c in ours[fork:]], [node.final_upto > fork])
    other = Branch.of([c.block.hash for c in theirs[fork:]], [c.final for c in theirs[fork:]])
    return fork, mine, other


def prefers_chain(node: SimNode, peer: MemoryLedger) -> bool:
    """Whether `node` should move to the chain `peer` holds."""
    _, mine, other = _branches(node, peer.blocks)
    return prefers(mine, other)


def sync_from(sim: Simulation, node: SimNode, theirs: list[Committed]) -> bool:
    """Adopt `theirs` if the fork choice prefers it: drop our blocks after the fork, then
    append theirs, each checked (stopping at the first that fails). True if our tip changed."""
    fork, mine, other = _branches(node, theirs)
    if not prefers(mine, other):
        return False
    ledger = node.ledger
    kept = ledger.blocks[fork:]
    ledger.rollback(fork, sim.now)
    for c in theirs[fork:]:
        ctx = RoundContext(ledger.state, ledger.tip_time())
        try:
            verify_certificate(c.certificate, ctx, sim.verifier)
            if c.block.hash != c.certificate.value:
                break
            state = sim.verifier.block(c.block, ctx)
        except WekaError:
            break
        ledger.append(c.block, state, c.certificate, c.certificate.final)
        if c.certificate.final:
            sim.mark_final(node)
    if ledger.height == fork:
        for c in kept:  # nothing of theirs held up: keep ours
            ledger.append(c.block, c.state, c.certificate, c.final)
        return False
    return True
