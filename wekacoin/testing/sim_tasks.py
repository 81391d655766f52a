"""A competition run through the simulated chain: a supplier publishes a task, trainers
submit and reveal models, the evaluation committee ranks them, a block settles the task.

The transactions are signed for real and gossiped to every node's mempool as soon as the
chain (seen by an honest node) is ready for them; proposers include what their mempool
selects. Scores come from a "sandbox" oracle: every honest evaluator gets the same, true
scores; a `WrongRanking` node reports others.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import TYPE_CHECKING

from wekacoin.chain.state import State
from wekacoin.chain.tasks import group_commitment, model_commitment
from wekacoin.chain.transactions import sign_tx
from wekacoin.crypto.keys import KeyPair
from wekacoin.testing.chain import FAKE_BLOB_SIZE, fake_cid
from wekacoin.types.ledger import TaskStatus
from wekacoin.types.metric import Metric, TaskKind
from wekacoin.types.ranking import Outcome, RankEntry
from wekacoin.types.tx import (
    DataSchema,
    GroupReveal,
    PublishTask,
    RevealModel,
    RevealTest,
    RevealTraining,
    SubmitModel,
    TaskLimits,
    TxBody,
)

if TYPE_CHECKING:
    from wekacoin.testing.sim import SimNode, Simulation

TASK_ID = 1
GROUPS = 10


def _key(label: str) -> KeyPair:
    return KeyPair.from_seed(hashlib.sha256(b"wekacoin-sim-competition/" + label.encode()).digest())


class Competition:
    def __init__(self, trainers: int = 3) -> None:
        self.supplier = _key("supplier")
        self.trainers = [_key(f"trainer-{i}") for i in range(trainers)]
        self.cids = [fake_cid(f"sim-group-{i}") for i in range(GROUPS)]
        self.nonces = [hashlib.sha256(b"sim-nonce" + bytes([i])).digest() for i in range(GROUPS)]
        self.models = [fake_cid(f"sim-model-{i}") for i in range(trainers)]
        self.stage = 0
        self._sent: set[str] = set()
        self._nonce: dict[bytes, int] = {}
        self.tbh = 0

    def accounts(self) -> list[KeyPair]:
        return [self.supplier, *self.trainers]

    def _tx(self, sim: Simulation, node: SimNode, key: KeyPair, body: TxBody) -> bool:
        """Send a transaction through `node`; False (and the nonce not used) if its mempool
        refuses it, to be tried again after the next block."""
        nonce = self._nonce.get(key.address, 0)
        if not sim.submit_tx(node, sign_tx(key, sim.genesis.hash, nonce, 1, body)):
            return False
        self._nonce[key.address] = nonce + 1
        return True

    def _reveals(self, indices: Iterable[int]) -> tuple[GroupReveal, ...]:
        return tuple(
            GroupReveal(i, self.cids[i], FAKE_BLOB_SIZE, self.nonces[i]) for i in sorted(indices)
        )

    def _each(
        self, sim: Simulation, node: SimNode, sends: list[tuple[str, KeyPair, TxBody]]
    ) -> bool:
        """Send each (label, key, body) not sent yet in this stage; True once all went."""
        for label, key, body in sends:
            if label not in self._sent and self._tx(sim, node, key, body):
                self._sent.add(label)
        if all(label in self._sent for label, _, _ in sends):
            self._sent.clear()
            return True
        return False

    def on_commit(self, sim: Simulation, node: SimNode) -> None:
        """Move the competition on as far as the chain allows, sending through `node` as a
        client of it would. The client acts on the block before the tip: gossip relays a
        transaction only through nodes whose mempool takes it, and a node that has not
        committed the tip yet refuses what the tip just made valid."""
        if node.height == 0:
            return
        state = node.ledger.state_at(node.height - 1)
        task = state.get_task(TASK_ID)
        if self.stage == 0:
            self.tbh = self.tbh or state.height + 8 + state.params.min_training_period
            if self._each(sim, node, [("publish", self.supplier, PublishTask(
                title="simulated competition", metric=Metric.ACCURACY,
                schema=DataSchema(TaskKind.CLASSIFICATION, ("x0", "x1"), "y"),
                limits=TaskLimits(max_model_bytes=10**6, eval_time_ms=10_000), tbh=self.tbh,
                reward=50_000, hosting_fee=10_000, participation_fee=100,
                group_commitments=tuple(
                    group_commitment(n, c) for n, c in zip(self.nonces, self.cids, strict=True)
                ),
            ))]):
                self.stage = 1
        elif task is None:
            return  # sent, but not on the chain this node has
        elif self.stage == 1 and task.test_groups:
            training = [i for i in range(GROUPS) if i not in task.test_groups]
            reveal = RevealTraining(
                TASK_ID, self._reveals(training), fake_cid("sim-baseline"), FAKE_BLOB_SIZE, 500_000
            )
            if self._each(sim, node, [("training", self.supplier, reveal)]):
                self.stage = 2
        elif self.stage == 2 and task.status is TaskStatus.ACTIVE:
            if self._each(sim, node, [
                (f"submit-{i}", key,
                 SubmitModel(TASK_ID, model_commitment(key.address, cid), 700_000))
                for i, (key, cid) in enumerate(zip(self.trainers, self.models, strict=True))
            ]):
                self.stage = 3
        elif self.stage == 3 and state.height + 2 >= self.tbh:
            if self._each(sim, node, [("test", self.supplier, RevealTest(
                TASK_ID, self._reveals(task.test_groups)))]):
                self.stage = 4
        elif self.stage == 4 and task.test_revealed:
            if self._each(sim, node, [
                (f"reveal-{i}", key, RevealModel(TASK_ID, cid, FAKE_BLOB_SIZE))
                for i, (key, cid) in enumerate(zip(self.trainers, self.models, strict=True))
            ]):
                self.stage = 5
        elif self.stage == 5 and task.status is TaskStatus.SETTLED:
            sim.settled.append(TASK_ID)
            self.stage = 6

    @staticmethod
    def truth(state: State, task_id: int) -> tuple[tuple[Outcome, int], tuple[RankEntry, ...]]:
        """What an honest sandbox reports: the same scores on every node."""
        task = state.get_existing_task(task_id)
        entries = []
        for sid in task.submissions:
            if state.get_existing_submission(sid).model_cid is None:
                entries.append(RankEntry(sid, Outcome.INVALID, 0, 0))
                continue
            digest = hashlib.sha256(b"sim-score" + sid.to_bytes(8, "big")).digest()
            h = int.from_bytes(digest[:4], "big")
            entries.append(RankEntry(sid, Outcome.SCORED, 600_000 + h % 300_000, 1_000 + sid))
        return (Outcome.SCORED, task.baseline_score), tuple(entries)
