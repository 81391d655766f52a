"""Byzantine behaviours of simulated nodes.

A node runs the real state machine; its behaviour decides what actually leaves it (and what
its sandbox reports). Each is written with the node's own keys, so what it sends carries
valid signatures and credentials: the honest nodes must cope with it on the merits.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from wekacoin.consensus.actions import AssembleBlock
from wekacoin.consensus.assemble import assemble_block
from wekacoin.consensus.driver import Message
from wekacoin.consensus.messages import UnverifiedProposal, UnverifiedVote, sign_proposal, sign_vote
from wekacoin.types.ranking import Outcome, RankEntry

if TYPE_CHECKING:
    from wekacoin.testing.sim import SimNode, Simulation


class Behaviour:
    """Honest: send everything to everyone, report the sandbox's true scores."""

    name = "honest"
    byzantine = False

    def send(self, sim: Simulation, node: SimNode, messages: list[Message]) -> None:
        sim.broadcast(node, messages)

    def scores(self, truth: tuple[RankEntry, ...]) -> tuple[RankEntry, ...]:
        """What this node reports for a task whose true scores are `truth`."""
        return truth


class Silent(Behaviour):
    """Sends nothing at all (a crashed or mute validator that keeps its stake)."""

    name = "silent"
    byzantine = True

    def send(self, sim: Simulation, node: SimNode, messages: list[Message]) -> None:
        pass


class WithholdVotes(Behaviour):
    """Proposes, but keeps its votes to itself."""

    name = "withhold-votes"
    byzantine = True

    def send(self, sim: Simulation, node: SimNode, messages: list[Message]) -> None:
        sim.broadcast(node, [m for m in messages if not isinstance(m, UnverifiedVote)])


def _halves(sim: Simulation, node: SimNode) -> tuple[list[int], list[int]]:
    others = [n.index for n in sim.nodes if n.index != node.index]
    sim.rng.shuffle(others)
    return others[: len(others) // 2], others[len(others) // 2:]


class EquivocatingVoter(Behaviour):
    """Every vote it casts goes to one half of the network; the other half gets a vote for
    another value (the empty block, or a random hash if it voted empty) with the same
    credential and a valid signature."""

    name = "equivocating-voter"
    byzantine = True

    def send(self, sim: Simulation, node: SimNode, messages: list[Message]) -> None:
        left, right = _halves(sim, node)
        twins: list[Message] = []
        for m in messages:
            if isinstance(m, UnverifiedVote):
                empty = sim.empty_hash(node)
                other = empty if m.body.value != empty else sim.rng.randbytes(32)
                body = dataclasses.replace(m.body, value=other)
                twins.append(sign_vote(node.key(m.body.voter), sim.genesis.hash, body))
            else:
                twins.append(m)
        sim.broadcast(node, messages, only=left)
        sim.broadcast(node, twins, only=right)


class EquivocatingProposer(Behaviour):
    """Each of its proposals goes to one half; the other half gets a different block with
    the same credential (another timestamp), also signed."""

    name = "equivocating-proposer"
    byzantine = True

    def send(self, sim: Simulation, node: SimNode, messages: list[Message]) -> None:
        left, right = _halves(sim, node)
        twins: list[Message] = []
        for m in messages:
            if isinstance(m, UnverifiedProposal):
                header, meta = m.block.header, m.block.meta
                proposer, proof = header.proposer, meta.seed_proof
                assert proposer is not None and proof is not None, "a proposal has both"
                request = AssembleBlock(header.height, m.period, proposer, header.seed, proof,
                                        meta.rankings)
                block = assemble_block(node.state, request, [], header.time_ms + 1)
                key = node.key(proposer)
                twins.append(sign_proposal(key, sim.genesis.hash, m.period, block))
            else:
                twins.append(m)
        sim.broadcast(node, messages, only=left)
        sim.broadcast(node, twins, only=right)


class WrongRanking(Behaviour):
    """An evaluator that reports false scores: it swaps the scores of the best and the
    worst model (or nudges the score of a lone one)."""

    name = "wrong-ranking"
    byzantine = True

    def scores(self, truth: tuple[RankEntry, ...]) -> tuple[RankEntry, ...]:
        scored = sorted((e for e in truth if e.outcome is Outcome.SCORED), key=lambda e: e.score)
        if len(scored) < 2:
            return tuple(
                dataclasses.replace(e, score=e.score + 1) if e.outcome is Outcome.SCORED else e
                for e in truth
            )
        low, high = scored[0], scored[-1]
        swap = {low.submission_id: high.score, high.submission_id: low.score}
        return tuple(
            dataclasses.replace(e, score=swap[e.submission_id]) if e.submission_id in swap else e
            for e in truth
        )


BEHAVIOURS = {b.name: b for b in (
    Behaviour, Silent, WithholdVotes, EquivocatingVoter, EquivocatingProposer, WrongRanking,
)}
