"""What a transaction may know about the block that includes it."""

from __future__ import annotations

from dataclasses import dataclass

from wekacoin.types.primitives import Hash, Height


@dataclass(slots=True)
class BlockContext:
    height: Height
    seed: Hash
    """The block's seed: it draws the test groups of the tasks this block publishes."""
    fees: int = 0
    """Fees collected so far in this block (paid to the proposer at its end)."""
