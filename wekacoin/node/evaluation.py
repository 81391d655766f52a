"""The node's evaluator: score every model of a task in the sandbox (blocking; the driver runs
it on a worker thread) and turn the result into ranking entries for consensus.

Data groups, the baseline and models come from the blob store, which fetches from peers (or
Kubo) what this node lacks and verifies every byte against its CID. If the task's own data
cannot be had or is malformed, no model can be judged: everything is UNEVALUATED, and the
task settles only if enough other evaluators did better, or else expires.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from wekacoin.chain.state import State
from wekacoin.content.cid import verify_cid
from wekacoin.errors import WekaError
from wekacoin.evaluation.data import DataSchema
from wekacoin.evaluation.evaluate import Submission, TaskSpec, check_baseline, evaluate_task
from wekacoin.evaluation.outcome import Outcome as EvalOutcome
from wekacoin.evaluation.outcome import Status
from wekacoin.evaluation.sandbox import ForkServerSandbox, Limits
from wekacoin.node.config import SandboxSection
from wekacoin.ports import BlobStore
from wekacoin.types.primitives import Score, SubmissionId
from wekacoin.types.ranking import Outcome, RankEntry
from wekacoin.types.tx import RevealTraining

log = logging.getLogger("wekacoin.node.evaluation")

_OUTCOMES = {Status.SCORED: Outcome.SCORED, Status.INVALID: Outcome.INVALID,
             Status.UNEVALUATED: Outcome.UNEVALUATED}


@dataclass(frozen=True)
class TaskScores:
    task_id: int
    baseline_outcome: Outcome
    baseline_score: Score
    entries: tuple[RankEntry, ...]
    seconds: float


def make_sandbox(settings: SandboxSection) -> ForkServerSandbox:
    mode = {"auto": "auto", "bwrap": "bwrap", "unshare": "unshare-net", "rlimits": "none"}
    return ForkServerSandbox(mode=mode[settings.isolation])


class EvaluationService:
    def __init__(self, blobs: BlobStore, sandbox: ForkServerSandbox, settings: SandboxSection) -> None:
        self.blobs = blobs
        self.sandbox = sandbox
        self.settings = settings

    def _task_spec(self, spec) -> TaskSpec:
        limits = Limits(
            wall_seconds=spec.limits.eval_time_ms / 1000,
            cpu_seconds=self.settings.cpu_seconds,
            memory_bytes=self.settings.memory_mb * 2**20,
            file_bytes=self.settings.max_file_mb * 2**20,
        )
        return TaskSpec(
            spec.metric,
            DataSchema(spec.schema.feature_columns, spec.schema.label_column, spec.schema.kind),
            spec.limits.max_model_bytes, limits,
        )

    def check_training_reveal(self, state: State, reveal: RevealTraining) -> None:
        """Blocking: raise a WekaError unless the revealed training groups and the task's
        baseline can be fetched and the baseline reproduces the stated training score. A node
        relays a training reveal only after this passes (docs/protocol.md, "Ranking agreement")."""
        task = state.get_task(reveal.task_id)
        if task is None:
            return  # the chain rules refuse it with a better message
        training = {g.index: self.blobs.get(g.cid) for g in reveal.groups}
        baseline = self.blobs.get(reveal.baseline_cid)
        check_baseline(self._task_spec(task.spec), training, baseline, reveal.baseline_score,
                       self.sandbox)

    def evaluate(self, state: State, task_id: int) -> TaskScores:
        """Blocking: fetch, score and rank every submission of `task_id` as of `state`."""
        started = time.monotonic()
        task = state.get_task(task_id)
        submissions = [state.get_submission(sid) for sid in task.submissions]
        spec = task.spec
        eval_spec = self._task_spec(spec)
        try:
            training = {g.index: self.blobs.get(g.cid) for g in task.training_reveals}
            test = {g.index: self.blobs.get(g.cid) for g in task.test_reveals} or None
            baseline = self.blobs.get(task.baseline_cid)
            result = evaluate_task(
                eval_spec, training, test, baseline, task.baseline_score,
                [Submission(str(s.id), s.train_score, None, s.model_cid) for s in submissions],
                self.sandbox, fetch=self.blobs.get, verify=verify_cid,
            )
        except WekaError as e:
            log.warning("task %d cannot be evaluated: %s", task_id, e)
            return TaskScores(
                task_id, Outcome.UNEVALUATED, 0,
                tuple(RankEntry(SubmissionId(s.id), Outcome.UNEVALUATED, 0, 0) for s in submissions),
                time.monotonic() - started,
            )
        entries = tuple(
            _entry(int(r.submission_id), r.outcome, r.model_size) for r in result.results
        )
        for r in result.results:
            log.info("task %d submission %s: %s %s", task_id, r.submission_id,
                     r.outcome.status.value, r.outcome.score if r.outcome.score is not None else r.outcome.reason)
        baseline_outcome = _OUTCOMES[result.baseline.status]
        return TaskScores(
            task_id, baseline_outcome, result.baseline.score or 0, entries,
            time.monotonic() - started,
        )


def _entry(submission_id: int, outcome: EvalOutcome, size: int) -> RankEntry:
    kind = _OUTCOMES[outcome.status]
    if kind is Outcome.SCORED:
        return RankEntry(SubmissionId(submission_id), kind, Score(outcome.score), size)
    return RankEntry(SubmissionId(submission_id), kind, 0, 0)
