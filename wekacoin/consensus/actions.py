"""Actions: commands the state machine gives its driver, to be carried out in order.

`Persist` always comes before the `Broadcast`s of the node's own votes and proposals in the
same list: the driver must have written the checkpoint durably before any of them leaves.
"""

from __future__ import annotations

from dataclasses import dataclass

from wekacoin.chain.state import State
from wekacoin.consensus.messages import Certificate, UnverifiedProposal, UnverifiedVote
from wekacoin.types.block import Block
from wekacoin.types.primitives import Hash, PublicKey, TaskId, VrfProof
from wekacoin.types.ranking import SignedRanking


@dataclass(frozen=True, slots=True)
class Persist:
    """Write, durably and at once, everything the messages that follow depend on: the
    consensus checkpoint (replaces the previous one), the proposed blocks received since the
    last Persist (a vote names a block by hash only: if every node crashed after voting, a
    block the network decided would exist nowhere else), and this node's newly signed
    rankings (after a restart it re-sends them, it never signs different ones: two rankings
    from one evaluator cost it its pay)."""

    checkpoint: bytes
    blocks: tuple[Block, ...] = ()
    rankings: tuple[SignedRanking, ...] = ()


@dataclass(frozen=True, slots=True)
class Broadcast:
    message: UnverifiedVote | UnverifiedProposal | SignedRanking


@dataclass(frozen=True, slots=True)
class SetDeadline:
    """Report `DeadlineReached` at this time (replaces any earlier deadline); None: none."""

    at: int | None


@dataclass(frozen=True, slots=True)
class AssembleBlock:
    """Build our proposal for (round, period) on the current tip with `build_block`, from
    the mempool, and report `BlockAssembled`."""

    round: int
    period: int
    proposer: PublicKey
    seed: Hash
    seed_proof: VrfProof
    rankings: tuple[SignedRanking, ...]
    """Received rankings the chain has not recorded; the block records those it can."""


@dataclass(frozen=True, slots=True)
class FetchBlock:
    """The round decided a block we do not have: get it from peers, report `BlockReceived`."""

    round: int
    block_hash: Hash


@dataclass(frozen=True, slots=True, eq=False)
class Commit:
    """Append `block` (whose ledger state is `state`) with its certificate, then report
    `LedgerAdvanced`. A TENTATIVE block becomes final with the first FINAL block after it."""

    block: Block
    state: State
    certificate: Certificate
    final: bool
    steps: int
    """BA* voting steps this node took for the round (Reduction 2, BinaryBA* b, final 1,
    and MAXSTEPS + 2 per failed period): 4 in the common case. For logs and metrics."""


@dataclass(frozen=True, slots=True)
class Evaluate:
    """Score every submission of the task in the sandbox; report `EvaluationFinished`."""

    task_id: TaskId


@dataclass(frozen=True, slots=True)
class RequestSync:
    """Peers are ahead of `round`: fetch certified blocks, apply them, report
    `LedgerAdvanced`."""

    round: int


@dataclass(frozen=True, slots=True)
class Refuse:
    """A message was dropped, and why: for the logs and for peer scoring. `origin` is the
    peer that delivered it ("" if unknown); `penalise` when an honest peer could not have
    sent it (a bad signature or credential, a vote for a block that breaks the rules)."""

    reason: str
    origin: str
    penalise: bool


Action = (
    Persist | Broadcast | SetDeadline | AssembleBlock | FetchBlock | Commit | Evaluate
    | RequestSync | Refuse
)
