"""The node's evaluator: score every model of a task in the sandbox (blocking; the driver runs
it on a worker thread) and turn the result into ranking entries for consensus.

Every limit that decides a model's outcome is the same on every node: memory, CPU time and
file size come from genesis (`Params.eval_*`), model size and wall-clock time from the task.
node.toml only chooses the isolation and how many sandboxes run side by side (`workers`).

Data groups, the baseline and models come from the blob store, which fetches from peers (or
Kubo) what this node lacks and verifies every byte against its CID. What cannot be had yet is
asked for again, with backoff, until the caller's deadline; models are scored as they arrive.
If the task's own data cannot be had or is malformed, no model can be judged: everything is
UNEVALUATED, and the task settles only if enough other evaluators did better, or else
expires. A model still missing at the deadline is UNEVALUATED, never INVALID: that it did not
reach this node says nothing about the model.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass

from wekacoin.chain.state import State
from wekacoin.chain.tasks import ready_height
from wekacoin.content.cid import verify_cid
from wekacoin.errors import WekaError
from wekacoin.evaluation.data import DataSchema
from wekacoin.evaluation.evaluate import (
    EvaluationSession,
    Submission,
    SubmissionResult,
    TaskSpec,
    check_baseline,
)
from wekacoin.evaluation.isolation import Isolation
from wekacoin.evaluation.outcome import Outcome as EvalOutcome
from wekacoin.evaluation.outcome import Status
from wekacoin.evaluation.sandbox import ForkServerSandbox, Limits
from wekacoin.node.config import SandboxSection
from wekacoin.ports import BlobStore
from wekacoin.types.genesis import Params
from wekacoin.types.ledger import Submission as ChainSubmission
from wekacoin.types.primitives import Score, SubmissionId
from wekacoin.types.ranking import Outcome, RankEntry
from wekacoin.types.tx import PublishTask, RevealTraining

log = logging.getLogger("wekacoin.node.evaluation")

_OUTCOMES = {Status.SCORED: Outcome.SCORED, Status.INVALID: Outcome.INVALID,
             Status.UNEVALUATED: Outcome.UNEVALUATED}

RETRY_FIRST_S = 0.5  # wait before fetching a missing blob again; doubles each round...
RETRY_MAX_S = 8.0  # ...up to this
DEADLINE_MARGIN_MS = 2_000  # the evaluation's fetching ends this long before the task is ready

Clock = Callable[[], float]  # monotonic seconds
Sleep = Callable[[float], None]


@dataclass(frozen=True)
class TaskScores:
    task_id: int
    baseline_outcome: Outcome
    baseline_score: Score
    entries: tuple[RankEntry, ...]
    seconds: float


class SandboxPool:
    """`workers` fork servers. Each task's evaluation session goes to the least busy one,
    which scores the session's models side by side, one per core. How many servers there are
    changes throughput, never an outcome."""

    def __init__(self, sandboxes: Sequence[ForkServerSandbox]) -> None:
        if not sandboxes:
            raise ValueError("a sandbox pool needs at least one sandbox")
        self.sandboxes = tuple(sandboxes)
        self._busy = [0] * len(self.sandboxes)
        self._lock = threading.Lock()

    @property
    def isolation(self) -> Isolation:
        return self.sandboxes[0].isolation

    def start(self) -> None:
        for sandbox in self.sandboxes:
            sandbox.start()

    def close(self) -> None:
        for sandbox in self.sandboxes:
            sandbox.close()

    @contextmanager
    def sandbox(self) -> Iterator[ForkServerSandbox]:
        with self._lock:
            i = min(range(len(self.sandboxes)), key=self._busy.__getitem__)
            self._busy[i] += 1
        try:
            yield self.sandboxes[i]
        finally:
            with self._lock:
                self._busy[i] -= 1


def make_sandbox(settings: SandboxSection) -> SandboxPool:
    mode = {"auto": "auto", "bwrap": "bwrap", "unshare": "unshare-net", "rlimits": "none"}
    return SandboxPool([ForkServerSandbox(mode=mode[settings.isolation])
                        for _ in range(settings.workers)])


def task_limits(spec: PublishTask, params: Params) -> TaskSpec:
    """What the evaluator needs of a task: its own limits, and the chain's sandbox limits."""
    limits = Limits(
        wall_seconds=spec.limits.eval_time_ms / 1000,
        cpu_seconds=params.eval_cpu_ms // 1000,  # validate_params: whole seconds
        memory_bytes=params.eval_memory_mib * 2**20,
        file_bytes=params.eval_file_mib * 2**20,
    )
    return TaskSpec(
        spec.metric,
        DataSchema(spec.schema.feature_columns, spec.schema.label_column, spec.schema.kind),
        spec.limits.max_model_bytes, limits,
    )


def evaluation_budget_s(state: State, task_id: int, block_ms: int | None = None) -> float:
    """How long an evaluation of `task_id` started at `state` may keep fetching: until
    DEADLINE_MARGIN_MS before the task's ready height, counting each block remaining at the
    rate the chain has been making them (`block_ms`, the median recent interval), and never
    faster than the shortest round (lambda_priority + lambda_stepvar, the proposal wait every
    round spends). On a loaded machine blocks come slower and the models take longer to
    arrive: a budget counted at the shortest round would then sign UNEVALUATED for models
    that the other evaluators scored, and no value would reach k. The margin leaves time to
    score the last models and gossip the ranking before the task can settle."""
    params = state.params
    blocks = max(0, ready_height(state.get_existing_task(task_id), params) - state.height)
    per_block = max(params.lambda_priority_ms + params.lambda_stepvar_ms, block_ms or 0)
    return max(0, blocks * per_block - DEADLINE_MARGIN_MS) / 1000


class EvaluationService:
    def __init__(self, blobs: BlobStore, sandboxes: SandboxPool, *,
                 clock: Clock = time.monotonic, sleep: Sleep = time.sleep) -> None:
        self.blobs = blobs
        self.sandboxes = sandboxes
        self.clock = clock
        self.sleep = sleep

    def check_training_reveal(self, state: State, reveal: RevealTraining) -> None:
        """Blocking: raise a WekaError unless the revealed training groups and the task's
        baseline can be fetched and the baseline reproduces the stated training score. A node
        relays a training reveal only after this passes (DESIGN.md, Evaluation)."""
        task = state.get_task(reveal.task_id)
        if task is None:
            return  # the chain rules refuse it with a better message
        training = {g.index: self.blobs.get(g.cid) for g in reveal.groups}
        baseline = self.blobs.get(reveal.baseline_cid)
        for g in reveal.groups:
            check_stated_size(f"training group {g.index}", training[g.index], g.size)
        check_stated_size("the baseline", baseline, reveal.baseline_size)
        with self.sandboxes.sandbox() as sandbox:
            check_baseline(task_limits(task.spec, state.params), training, baseline,
                           reveal.baseline_score, sandbox)

    def evaluate(self, state: State, task_id: int, deadline: float) -> TaskScores:
        """Blocking: fetch, score and rank every submission of `task_id` as of `state`.

        `deadline` (monotonic seconds, on `self.clock`) ends the fetching: blobs missing until
        then are asked for again with backoff, and each model is scored as soon as it arrives
        (those that arrive in the last round are still scored, past the deadline). What is
        still missing then is UNEVALUATED."""
        started = self.clock()
        task = state.get_existing_task(task_id)
        submissions = [state.get_existing_submission(sid) for sid in task.submissions]
        spec = task_limits(task.spec, state.params)
        training_cids = {g.index: g.cid for g in task.training_reveals}
        test_cids = {g.index: g.cid for g in task.test_reveals}
        data_cids = [*training_cids.values(), *test_cids.values(), task.baseline_cid]
        data = dict(self._fetch_until(data_cids, deadline))
        missing = [cid for cid in data_cids if cid not in data]

        def unevaluated(reason: str) -> TaskScores:
            log.warning("task %d cannot be evaluated: %s", task_id, reason)
            return TaskScores(
                task_id, Outcome.UNEVALUATED, 0,
                tuple(RankEntry(SubmissionId(s.id), Outcome.UNEVALUATED, 0, 0)
                      for s in submissions),
                self.clock() - started,
            )

        if missing:
            return unevaluated(f"{len(missing)} task blobs not fetched by the deadline "
                               f"(first {missing[0]})")
        stated = [(f"group {g.index}", g.cid, g.size)
                  for g in (*task.training_reveals, *task.test_reveals)]
        try:
            for what, cid, size in (*stated, ("the baseline", task.baseline_cid,
                                              task.baseline_size)):
                check_stated_size(what, data[cid], size)
        except BlobSizeMismatch as e:  # the supplier's reveal is wrong, the same for every node
            return unevaluated(str(e))
        training = {i: data[cid] for i, cid in training_cids.items()}
        test = {i: data[cid] for i, cid in test_cids.items()} or None
        results: dict[int, SubmissionResult] = {}
        by_cid: dict[str, list[ChainSubmission]] = {}
        for s in submissions:
            if s.model_cid is not None:
                by_cid.setdefault(s.model_cid, []).append(s)
        try:
            with self.sandboxes.sandbox() as sandbox, \
                    EvaluationSession(spec, training, test, sandbox) as session:
                # Models are scored on the session's threads, one per core, while the next
                # ones are fetched; the results are collected in submission order below.
                baseline_run = session.submit(data[task.baseline_cid], task.baseline_score)
                runs: dict[int, Future[SubmissionResult]] = {}
                for s in submissions:
                    if s.model_cid is None:  # never revealed: INVALID
                        results[s.id] = session.evaluate_submission(_submission(s))
                for cid, model in self._fetch_until(list(by_cid), deadline):
                    for s in by_cid.pop(cid):
                        if len(model) != s.model_size:  # deterministic: the trainer's fault
                            results[s.id] = SubmissionResult(str(s.id), EvalOutcome.invalid(
                                f"model {cid} is {len(model)} bytes; its reveal states"
                                f" {s.model_size}"), 0)
                            continue
                        runs[s.id] = session.submit_submission(_submission(s, model))
                baseline = baseline_run.result()
                for sid, run in runs.items():
                    results[sid] = run.result()
        except WekaError as e:  # malformed task data, or our sandbox failed
            return unevaluated(str(e))
        for cid, subs in by_cid.items():  # never arrived
            for s in subs:
                results[s.id] = SubmissionResult(str(s.id), EvalOutcome.unevaluated(
                    f"model {cid} not fetched by the deadline"), 0)
        for s in submissions:
            r = results[s.id].outcome
            log.info("task %d submission %s: %s %s", task_id, s.id, r.status.value,
                     r.score if r.score is not None else r.reason)
        entries = tuple(_entry(s.id, results[s.id].outcome, results[s.id].model_size)
                        for s in submissions)
        return TaskScores(
            task_id, _OUTCOMES[baseline.status], baseline.score or 0, entries,
            self.clock() - started,
        )

    def _fetch_until(self, cids: Iterable[str], deadline: float) -> Iterator[tuple[str, bytes]]:
        """(cid, bytes) for each blob as it is fetched and verified. Bytes that do not match
        their CID are not that blob, whoever sent them: they count as not fetched (the model
        behind the CID is not at fault), unlike a submitter's own bytes given with a CID that
        they do not match (`evaluate._resolve`: INVALID). Every CID is tried at least once;
        those that fail are tried again, after a wait that doubles each round, while the
        deadline allows. Each blob is handed over as soon as it is fetched, so the caller
        scores one model while others are still missing."""
        pending = list(dict.fromkeys(cids))
        wait = RETRY_FIRST_S
        while pending:
            failed = []
            for cid in pending:
                try:
                    data = self.blobs.get(cid)
                except (WekaError, OSError) as e:
                    log.debug("blob %s not fetched yet: %s", cid, e)
                    failed.append(cid)
                    continue
                if not verify_cid(cid, data):  # the store broke its contract: not the model
                    log.error("the blob store returned bytes that do not match %s", cid)
                    failed.append(cid)
                    continue
                yield cid, data
            pending = failed
            left = deadline - self.clock()
            if not pending or left <= 0:
                return
            log.info("%d blobs missing; asking again in %.1f s", len(pending), min(wait, left))
            self.sleep(min(wait, left))
            wait = min(2 * wait, RETRY_MAX_S)


class BlobSizeMismatch(WekaError):
    """A blob matches its CID but not the size its reveal states: like a CID mismatch, the
    reveal does not name these bytes."""


def check_stated_size(what: str, data: bytes, size: int) -> None:
    if len(data) != size:
        raise BlobSizeMismatch(f"{what} is {len(data)} bytes; its reveal states {size}")


def _submission(s: ChainSubmission, model: bytes | None = None) -> Submission:
    return Submission(str(s.id), s.train_score, model, s.model_cid)


def _entry(submission_id: int, outcome: EvalOutcome, size: int) -> RankEntry:
    kind = _OUTCOMES[outcome.status]
    if outcome.score is not None:  # exactly when SCORED
        return RankEntry(SubmissionId(submission_id), kind, Score(outcome.score), size)
    return RankEntry(SubmissionId(submission_id), kind, 0, 0)
