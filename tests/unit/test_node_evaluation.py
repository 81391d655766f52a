"""The node's evaluator (wekacoin/node/evaluation.py) with real models, a real sandbox and a
real embedded blob store:
- the limits that decide a model's outcome come from genesis and the task, so nodes with
  different node.toml sandbox sections rank a model near the memory limit identically;
- a blob that is late is asked for again until the deadline: a model that arrives in time is
  scored, one that never arrives is UNEVALUATED (never INVALID), and so are bytes a peer sends
  that do not match the CID; only what the model's own bytes decide is INVALID.
Time is a fake clock whose `sleep` advances it: no test waits for real.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field, replace

import pytest

from tests.helpers import hostile_models as hostile
from tests.helpers.clock import FakeClock
from tests.helpers.evaluation_helpers import model_bytes, shared_sandbox, task_data
from wekacoin.chain.tasks import ready_height
from wekacoin.content.cid import compute_cid
from wekacoin.content.embedded import EmbeddedBlobStore
from wekacoin.evaluation.evaluate import EvaluationSession
from wekacoin.evaluation.sandbox import ForkServerSandbox
from wekacoin.node.config import parse_config
from wekacoin.node.evaluation import (
    DEADLINE_MARGIN_MS,
    EvaluationService,
    SandboxPool,
    evaluation_budget_s,
    make_sandbox,
    task_limits,
)
from wekacoin.types.genesis import Params
from wekacoin.types.ledger import Submission, Task, TaskStatus
from wekacoin.types.metric import Metric
from wekacoin.types.ranking import Outcome, RankEntry
from wekacoin.types.tx import DataSchema, GroupReveal, PublishTask, TaskLimits

DATASET = "diabetes"
HOG_DOUBLINGS = 13  # widens the 10 features 2**13 times: needs about 440 MiB on this runtime


@dataclass
class Chain:
    """The part of a chain State the evaluator reads: one task, its submissions, params."""

    params: Params
    task: Task
    submissions: dict[int, Submission]
    height: int = 0

    def get_task(self, task_id: int) -> Task | None:
        return self.task if task_id == self.task.id else None

    def get_submission(self, sid: int) -> Submission | None:
        return self.submissions.get(sid)

    def get_existing_task(self, task_id: int) -> Task:
        assert task_id == self.task.id
        return self.task

    def get_existing_submission(self, sid: int) -> Submission:
        return self.submissions[sid]


@dataclass
class Peers:
    """The embedded store's fetcher: what other nodes would send us, and from when."""

    clock: FakeClock
    blobs: dict[str, tuple[float, bytes]] = field(default_factory=dict)

    def offer(self, cid: str, data: bytes, at: float = 0.0) -> None:
        self.blobs[cid] = (at, data)

    def __call__(self, cid: str, max_size: int) -> bytes | None:
        at, data = self.blobs.get(cid, (0.0, None))
        return data if data is not None and self.clock() >= at else None


@functools.cache
def claimed_training_score(model: bytes) -> int:
    """What an honest trainer claims: the model's recomputed score on the training groups
    (0 for bytes that do not score)."""
    data = task_data(DATASET)
    spec = task_limits(_spec(10**8), Params(eval_memory_mib=4096))
    with EvaluationSession(spec, data.training_groups, None, shared_sandbox()) as session:
        outcome = session.evaluate(model, 0, check_claim=False)
    return outcome.score or 0


def _spec(max_model_bytes: int) -> PublishTask:
    data = task_data(DATASET)
    return PublishTask(
        title="diabetes", metric=Metric.RMSE,
        schema=DataSchema(data.schema.kind, data.schema.feature_columns, data.schema.label_column),
        limits=TaskLimits(max_model_bytes=max_model_bytes, eval_time_ms=60_000), tbh=10,
        reward=1, hosting_fee=1, participation_fee=1,
        group_commitments=tuple(bytes(32) for _ in range(5)),
    )


def make_chain(
    models: dict[int, bytes | None], *, params: Params | None = None,
    max_model_bytes: int = 10**8,
) -> tuple[Chain, dict[str, bytes]]:
    """A task on diabetes (linear-regression baseline) with one submission per entry of
    `models` (None: never revealed), and every blob it names, by CID."""
    data = task_data(DATASET)
    baseline = model_bytes(DATASET, "linear")
    blobs = {compute_cid(baseline): baseline}
    training = []
    for i, group in sorted(data.training_groups.items()):
        blobs[compute_cid(group)] = group
        training.append(GroupReveal(i, compute_cid(group), len(group), bytes(32)))
    test = []
    for i, group in sorted(data.test_groups.items()):
        blobs[compute_cid(group)] = group
        test.append(GroupReveal(i, compute_cid(group), len(group), bytes(32)))
    submissions = {}
    for sid, model in models.items():
        cid = None if model is None else compute_cid(model)
        if model is not None:
            blobs[cid] = model
        claim = 0 if model is None else claimed_training_score(model)
        submissions[sid] = Submission(
            id=sid, task_id=1, trainer=bytes(20), trainer_key=bytes(32),
            commitment=hashlib.sha256(b"%d" % sid).digest(), train_score=claim, fee=1,
            height=1, model_cid=cid, model_size=0 if model is None else len(model),
        )
    task = Task(
        id=1, supplier=bytes(20), spec=_spec(max_model_bytes), baseline_cid=compute_cid(baseline),
        baseline_size=len(baseline), published_height=1, test_groups=tuple(data.test_groups),
        status=TaskStatus.ACTIVE,
        escrow=3, training_reveals=tuple(training),
        baseline_score=claimed_training_score(baseline), test_reveals=tuple(test),
        submissions=tuple(sorted(models)),
    )
    return Chain(params or Params(), task, submissions), blobs


def service(tmp_path, clock: FakeClock, pool: SandboxPool | None = None):
    peers = Peers(clock)
    store = EmbeddedBlobStore(tmp_path / "blobs", fetcher=peers)
    evaluator = EvaluationService(
        store, pool or SandboxPool([shared_sandbox()]), clock=clock, sleep=clock.sleep
    )
    return evaluator, peers


def by_submission(entries: tuple[RankEntry, ...]) -> dict[int, RankEntry]:
    return {int(e.submission_id): e for e in entries}


# -- (a) outcomes near a limit: genesis decides, node.toml does not --


@pytest.fixture(scope="module")
def two_nodes():
    """Two operators' sandboxes from two different node.toml [sandbox] sections."""
    pools = [
        make_sandbox(parse_config({"sandbox": {"isolation": "rlimits", "workers": 1}}).sandbox),
        make_sandbox(parse_config({"sandbox": {"isolation": "auto", "workers": 2}}).sandbox),
    ]
    for pool in pools:
        pool.start()
    yield pools
    for pool in pools:
        pool.close()


@pytest.mark.parametrize("memory_mib, hog_outcome", [
    (256, Outcome.INVALID),  # the hog needs more than genesis allows: INVALID on every node
    (768, Outcome.SCORED),  # enough: SCORED on every node
])
def test_nodes_with_different_node_toml_rank_a_model_near_the_memory_limit_alike(
    tmp_path, two_nodes, memory_mib, hog_outcome
):
    hog = hostile.memory_hog(10, doublings=HOG_DOUBLINGS)
    good = model_bytes(DATASET, "boosting_reg")
    chain, blobs = make_chain({1: hog, 2: good}, params=Params(eval_memory_mib=memory_mib))
    rankings = []
    for i, pool in enumerate(two_nodes):
        clock = FakeClock()
        evaluator, peers = service(tmp_path / f"node{i}", clock, pool)
        for cid, data in blobs.items():
            peers.offer(cid, data)
        scores = evaluator.evaluate(chain, 1, deadline=5.0)
        rankings.append((scores.baseline_outcome, scores.baseline_score, scores.entries))
    assert rankings[0] == rankings[1]
    entries = by_submission(rankings[0][2])
    assert entries[1].outcome is hog_outcome
    assert entries[2].outcome is Outcome.SCORED
    assert rankings[0][0] is Outcome.SCORED


def test_a_task_scored_on_every_core_ranks_as_it_does_scored_model_by_model(tmp_path):
    """Models run side by side (four at once, whatever the cores) each under its own limits:
    the ranking is the one a node scoring one model at a time signs."""
    models: dict[int, bytes | None] = {
        1: model_bytes(DATASET, "boosting_reg"),
        2: hostile.memory_hog(10),
        3: model_bytes(DATASET, "mlp_reg"),
        4: b"not a model",
        5: None,
        6: hostile.nan_output(10),
        7: model_bytes(DATASET, "linear"),
        8: model_bytes(DATASET, "linear", "skops"),
    }
    chain, blobs = make_chain(models)
    rankings = []
    for parallel in (1, 4):
        with ForkServerSandbox(parallel=parallel) as sandbox:
            clock = FakeClock()
            evaluator, peers = service(tmp_path / str(parallel), clock, SandboxPool([sandbox]))
            for cid, data in blobs.items():
                peers.offer(cid, data)
            scores = evaluator.evaluate(chain, 1, deadline=5.0)
        rankings.append((scores.baseline_outcome, scores.baseline_score, scores.entries))
    assert rankings[0] == rankings[1]
    outcomes = [e.outcome for e in rankings[0][2]]
    assert outcomes == [Outcome.SCORED, Outcome.INVALID, Outcome.SCORED, Outcome.INVALID,
                        Outcome.INVALID, Outcome.INVALID, Outcome.SCORED, Outcome.SCORED]


# -- (b) late blobs, missing blobs, wrong bytes --


def test_a_model_that_arrives_before_the_deadline_is_scored(tmp_path):
    clock = FakeClock()
    evaluator, peers = service(tmp_path, clock)
    late, on_time = model_bytes(DATASET, "mlp_reg"), model_bytes(DATASET, "boosting_reg")
    chain, blobs = make_chain({1: late, 2: on_time})
    for cid, data in blobs.items():
        peers.offer(cid, data, at=4.0 if data is late else 0.0)
    scores = evaluator.evaluate(chain, 1, deadline=30.0)
    entries = by_submission(scores.entries)
    assert entries[1].outcome is Outcome.SCORED and entries[1].model_size == len(late)
    assert entries[2].outcome is Outcome.SCORED
    assert 4.0 <= clock.now < 30.0  # it waited for the late model, not for the deadline
    assert clock.sleeps[:3] == [0.5, 1.0, 2.0]  # backoff


def test_a_model_that_never_arrives_is_unevaluated_not_invalid(tmp_path):
    clock = FakeClock()
    evaluator, peers = service(tmp_path, clock)
    lost, good = model_bytes(DATASET, "mlp_reg"), model_bytes(DATASET, "boosting_reg")
    chain, blobs = make_chain({1: lost, 2: good})
    for cid, data in blobs.items():
        if data is not lost:
            peers.offer(cid, data)
    scores = evaluator.evaluate(chain, 1, deadline=20.0)
    entries = by_submission(scores.entries)
    assert entries[1] == RankEntry(1, Outcome.UNEVALUATED, 0, 0)
    assert entries[2].outcome is Outcome.SCORED
    assert clock.now == 20.0  # asked again until the deadline, then gave up
    assert max(clock.sleeps) == 8.0  # the backoff is capped


def test_bytes_a_peer_sends_for_a_cid_they_do_not_match_are_not_the_model(tmp_path):
    """A lying peer cannot get a good model ranked INVALID: its bytes are dropped and the
    model is waited for; once an honest peer sends the real bytes, it scores."""
    clock = FakeClock()
    evaluator, peers = service(tmp_path, clock)
    model, other = model_bytes(DATASET, "mlp_reg"), model_bytes(DATASET, "boosting_reg")
    chain, blobs = make_chain({1: model})
    cid = chain.submissions[1].model_cid
    for c, data in blobs.items():
        peers.offer(c, other if c == cid else data)
    first = evaluator.evaluate(chain, 1, deadline=6.0)
    assert by_submission(first.entries)[1] == RankEntry(1, Outcome.UNEVALUATED, 0, 0)
    peers.offer(cid, model, at=clock.now + 3.0)
    second = evaluator.evaluate(chain, 1, deadline=clock.now + 10.0)
    assert by_submission(second.entries)[1].outcome is Outcome.SCORED


def test_what_the_models_own_bytes_decide_is_invalid(tmp_path):
    clock = FakeClock()
    evaluator, peers = service(tmp_path, clock)
    good = model_bytes(DATASET, "mlp_reg")
    garbage = b"not a model, under its own valid CID"
    chain, blobs = make_chain({1: good, 2: garbage, 3: None})
    for cid, data in blobs.items():
        peers.offer(cid, data)
    # The task's size limit sits between the two models.
    limits = TaskLimits(max_model_bytes=len(good) - 1, eval_time_ms=60_000)
    task = replace(chain.task, spec=replace(chain.task.spec, limits=limits))
    scores = evaluator.evaluate(replace(chain, task=task), 1, deadline=5.0)
    entries = by_submission(scores.entries)
    assert entries[1].outcome is Outcome.INVALID  # too large for the task
    assert entries[2].outcome is Outcome.INVALID  # not a model
    assert entries[3].outcome is Outcome.INVALID  # never revealed
    assert clock.now == 0.0  # nothing was missing: no waiting


def test_task_data_that_arrives_late_is_waited_for_and_never_arriving_leaves_all_unevaluated(
    tmp_path,
):
    good = model_bytes(DATASET, "mlp_reg")
    chain, blobs = make_chain({1: good})
    group = chain.task.training_reveals[0].cid
    for deadline, outcome in ((30.0, Outcome.SCORED), (3.0, Outcome.UNEVALUATED)):
        clock = FakeClock()
        evaluator, peers = service(tmp_path / str(deadline), clock)
        for cid, data in blobs.items():
            peers.offer(cid, data, at=5.0 if cid == group else 0.0)
        scores = evaluator.evaluate(chain, 1, deadline=deadline)
        assert scores.baseline_outcome is outcome
        assert by_submission(scores.entries)[1].outcome is outcome


# -- the deadline the driver passes --


def test_the_evaluation_budget_ends_a_margin_before_the_task_is_ready():
    params = Params(lambda_priority_ms=300, lambda_stepvar_ms=200, evaluation_window=10)
    chain, _ = make_chain({}, params=params)
    ready = ready_height(chain.task, params)
    chain.height = ready - 10
    assert evaluation_budget_s(chain, 1) == (10 * 500 - DEADLINE_MARGIN_MS) / 1000
    chain.height = ready - 2
    assert evaluation_budget_s(chain, 1) == 0.0  # less than the margin left: one try each
    chain.height = ready + 5
    assert evaluation_budget_s(chain, 1) == 0.0


def test_the_evaluation_budget_counts_blocks_at_the_rate_the_chain_makes_them():
    """On a loaded machine rounds take longer than the shortest round: the budget follows,
    so a slow fetch is not signed UNEVALUATED while the other evaluators score the model."""
    params = Params(lambda_priority_ms=300, lambda_stepvar_ms=200, evaluation_window=10)
    chain, _ = make_chain({}, params=params)
    chain.height = ready_height(chain.task, params) - 10
    assert evaluation_budget_s(chain, 1, 1_300) == (10 * 1_300 - DEADLINE_MARGIN_MS) / 1000
    # never faster than the shortest round, whatever the timestamps say
    assert evaluation_budget_s(chain, 1, 40) == (10 * 500 - DEADLINE_MARGIN_MS) / 1000
    assert evaluation_budget_s(chain, 1, None) == (10 * 500 - DEADLINE_MARGIN_MS) / 1000
