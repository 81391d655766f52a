"""Block sync in the simulation: a node that fell behind adopts a peer's certified blocks."""

from __future__ import annotations

from typing import TYPE_CHECKING

from wekacoin.consensus.verify import RoundContext, verify_certificate
from wekacoin.errors import WekaError

if TYPE_CHECKING:
    from wekacoin.testing.sim import Committed, SimNode, Simulation


def sync_from(sim: Simulation, node: SimNode, peer_chain: list[Committed]) -> bool:
    """Append the peer's blocks after our tip, each checked against its certificate and the
    chain rules. If the peer's chain forks from ours at a height where ours is only
    TENTATIVE, and the peer's branch has a FINAL block or is longer, drop our branch first:
    the recovery from a tentative fork (the side that can still make progress wins; a
    FINAL block is never dropped). True if our tip changed."""
    from wekacoin.testing.sim import Committed

    chain = node.chain
    common = min(len(chain), len(peer_chain))
    fork = next((h for h in range(1, common) if chain[h].block.hash != peer_chain[h].block.hash), common)
    if fork < len(chain):
        if fork >= len(peer_chain) or node.final_upto >= fork:
            return False
        if not (len(peer_chain) > len(chain) or any(c.final for c in peer_chain[fork:])):
            return False
        del chain[fork:]
    changed = False
    for c in peer_chain[len(chain):]:
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
        changed = True
        if c.certificate.final:
            sim.mark_final(node)
    return changed
