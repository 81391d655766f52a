"""A validator that crashes right after signing its ranking re-sends the very same ranking
after the restart (restored from what it persisted), never evaluates or signs again, and
is paid for it."""

from __future__ import annotations

import dataclasses

import pytest

from wekacoin.testing.sim import SIM_PARAMS, SimConfig, Simulation
from wekacoin.testing.sim_byzantine import Behaviour
from wekacoin.testing.sim_tasks import TASK_ID, Competition
from wekacoin.types.ranking import Outcome, Resolution, SignedRanking

CRASH_FOR_MS = 1_500


class CrashAfterRanking(Behaviour):
    """Honest, but the process dies the instant after its ranking was persisted: with
    `sent` the ranking left first, without it the crash came before the send. Its sandbox
    would score differently after a restart (timing-dependent scores), so a node that
    evaluated again would sign a second, different ranking."""

    name = "crash-after-ranking"

    def __init__(self, sent: bool) -> None:
        self.sent = sent
        self.crashed = False
        self.evaluations = 0
        self.rankings: list[SignedRanking] = []

    def send(self, sim, node, messages):
        rankings = [m for m in messages if isinstance(m, SignedRanking)]
        self.rankings += rankings
        if rankings and not self.crashed:
            self.crashed = True
            if self.sent:
                sim.broadcast(node, messages)
            sim.crash(node)
            sim.schedule(sim.now + CRASH_FOR_MS, node, "restart")
            return
        sim.broadcast(node, messages)

    def scores(self, truth):
        self.evaluations += 1
        if self.evaluations == 1:
            return truth
        return tuple(dataclasses.replace(e, score=e.score + 1) if e.outcome is Outcome.SCORED else e
                     for e in truth)


@pytest.mark.parametrize("sent", [True, False], ids=["sent-then-crash", "crash-before-send"])
def test_a_restarted_evaluator_resends_its_identical_ranking_and_is_paid(sent):
    behaviour = CrashAfterRanking(sent)
    params = dataclasses.replace(SIM_PARAMS, evaluation_window=10)
    sim = Simulation(SimConfig(seed=11, nodes=5, target_height=44, params=params,
                               competition=Competition(), behaviours={2: behaviour}))
    result = sim.run()
    assert result.settled == [TASK_ID], result.describe()
    assert behaviour.crashed, "the node never signed a ranking"
    assert behaviour.evaluations == 1  # restored, not evaluated again
    first = behaviour.rankings[0]
    assert len(behaviour.rankings) >= 2  # re-sent after the restart...
    assert set(behaviour.rankings) == {first}  # ...identical, and nothing else ever signed
    node = sim.nodes[2]
    record = node.state.get_settlement(TASK_ID)
    assert record.resolution is Resolution.WON
    evaluator = first.ranking.evaluator
    assert evaluator in {e.evaluator for e in record.evaluators}
    paid = {p.address for p in record.payments}
    assert node.keys[0].address in paid
