"""Block sync in the simulation: a node that fell behind, or sits on another branch, adopts
a peer's certified blocks.

Fork choice between branches that share blocks up to some height: never drop a FINAL
block; else prefer the branch with a FINAL block, then the longer one, then the one whose
first block after the fork has the lower hash. It is a total order, so nodes that end up on
different TENTATIVE branches (possible when the network was asynchronous, or when a
Byzantine node completes a quorum with votes it had withheld and serves that branch) all
converge to one branch and can make progress again; FINAL blocks are never replaced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from wekacoin.consensus.verify import RoundContext, verify_certificate
from wekacoin.errors import WekaError

if TYPE_CHECKING:
    from wekacoin.testing.sim import Committed, SimNode, Simulation


def fork_height(ours: list[Committed], theirs: list[Committed]) -> int:
    """The first height where the chains differ (the shorter length if one extends the other)."""
    common = min(len(ours), len(theirs))
    return next((h for h in range(1, common) if ours[h].block.hash != theirs[h].block.hash), common)


def prefers(node: SimNode, theirs: list[Committed]) -> bool:
    """Whether `node` should move to the chain `theirs` (see the module docstring)."""
    ours = node.chain
    fork = fork_height(ours, theirs)
    if fork >= len(theirs) or node.final_upto >= fork:
        return False
    if fork == len(ours) or any(c.final for c in theirs[fork:]):
        return True
    if len(theirs) != len(ours):
        return len(theirs) > len(ours)
    return theirs[fork].block.hash < ours[fork].block.hash


def sync_from(sim: Simulation, node: SimNode, theirs: list[Committed]) -> bool:
    """Adopt `theirs` if the fork choice prefers it: drop our blocks after the fork, then
    append theirs, each checked against its certificate and the chain rules (stopping at the
    first that fails). True if our tip changed."""
    from wekacoin.testing.sim import Committed

    if not prefers(node, theirs):
        return False
    chain = node.chain
    fork = fork_height(chain, theirs)
    kept = chain[fork:]
    del chain[fork:]
    for c in theirs[fork:]:
        tip = chain[-1]
        ctx = RoundContext(tip.state, tip.block.header.time_ms)
        try:
            verify_certificate(c.certificate, ctx, sim.verifier)
            if c.block.hash != c.certificate.value:
                break
            state = sim.verifier.block(c.block, ctx)
        except WekaError:
            break
        chain.append(Committed(c.block, state, c.certificate, c.certificate.final))
        if c.certificate.final:
            sim.mark_final(node)
    if len(chain) == fork:
        chain.extend(kept)  # nothing of theirs held up: keep ours
        return False
    return True
