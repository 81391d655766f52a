"""Fork choice: which of two certified branches a node keeps.

BA* can commit a TENTATIVE block that the rest of the network decided otherwise (the network
was asynchronous, or a Byzantine voter completed a quorum with votes it had withheld and
served that branch to some nodes only). Nodes on different branches must all move to the
same one, or the round they are in never gathers a quorum again. The rule, for two chains
that share every block up to a fork height and differ after it:

1. never drop a FINAL block: a branch with one after the fork is kept;
2. else a branch with a FINAL block after the fork wins (it is what the network agreed);
3. else the longer branch wins;
4. else (equal lengths) the branch whose first block after the fork has the lower hash.

It is a total order on the branches a fork can offer, so every node that sees both ends on
the same one whatever order it saw them in, and FINAL blocks are never replaced. Both the
node's sync (`node/sync.py`) and the simulator's call `prefers`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from wekacoin.types.primitives import Hash


@dataclass(frozen=True, slots=True)
class Branch:
    """A chain's blocks after the last block two chains share, oldest first."""

    hashes: tuple[Hash, ...]
    final: bool
    """Whether one of them is FINAL (its certificate, or a later one's on the branch)."""

    @classmethod
    def of(cls, hashes: Sequence[Hash], finals: Sequence[bool]) -> Branch:
        return cls(tuple(hashes), any(finals))


def prefers(ours: Branch, theirs: Branch) -> bool:
    """Whether a node on `ours` should move to `theirs` (see the module docstring)."""
    if not theirs.hashes or ours.final:
        return False
    if not ours.hashes or theirs.final:
        return True
    if len(theirs.hashes) != len(ours.hashes):
        return len(theirs.hashes) > len(ours.hashes)
    return theirs.hashes[0] < ours.hashes[0]


def fork_height(ours: Sequence[Hash], theirs: Sequence[Hash], start: int = 0) -> int:
    """The last height two chains share, given their block hashes from height `start + 1`
    on (`start` is known to be shared): the first difference, or the end of the shorter."""
    shared = start
    for a, b in zip(ours, theirs, strict=False):  # the shorter chain ends the comparison
        if a != b:
            break
        shared += 1
    return shared
