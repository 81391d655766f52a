"""Evaluating a task: every revealed model, and the baseline, scored in the sandbox.

A model is valid (docs/protocol.md, paper III-C) iff its bytes are available and match their CID, it
runs on the data within the task's limits, and its recomputed training score equals, as an
integer, the score claimed in its SubmitModel. Otherwise it is INVALID with a reason.

Only what the model's bytes decide, the same on every node, may make it INVALID: bytes that do
not match their CID or exceed the task's size limit, a format or graph the evaluator refuses,
a crash or unusable output, the memory or file-size limit (from genesis), a wrong claim. What
depends on this node - bytes it could not fetch (yet), a failure of its sandbox, a wall-clock
or CPU-time limit reached on its hardware - leaves the model UNEVALUATED: no verdict, which
another evaluator may still give.

One model process per model computes predictions on both the training and the evaluation set,
so each model pays for one fork and one session. The evaluation set is the test split, or the
training split when the test set was never revealed (docs/protocol.md, "Task lifecycle").
A task's models are scored side by side, one process per core (`EvaluationSession.submit`):
each under its own limits, so the outcomes are the very ones a one-at-a-time run gives.

Fetching stays outside: callers pass bytes, or a `fetch(cid) -> bytes` raising WekaError or
OSError when the blob is unavailable, and optionally `verify(cid, bytes) -> bool`
(`sha256_verifier` until the content layer's `compute_cid` exists).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from wekacoin.errors import WekaError
from wekacoin.evaluation.data import DataSchema, parse_features, parse_split
from wekacoin.evaluation.formats import ModelRejected, detect_format
from wekacoin.evaluation.metrics import (
    InvalidPrediction,
    Needs,
    Predictions,
    check_metric_defined,
    check_predictions,
    compute_score,
    get_needs,
)
from wekacoin.evaluation.outcome import Outcome, Status
from wekacoin.evaluation.sandbox import (
    DataHandle,
    ForkServerSandbox,
    Limits,
    RunStatus,
    get_memory_available,
)
from wekacoin.types.metric import Metric, TaskKind

log = logging.getLogger(__name__)

MAX_CLASSES = 256  # bounds the size of a model's answer: rows x classes probabilities
DEFAULT_MAX_MODEL_BYTES = 64 * 1024**2

Fetch = Callable[[str], bytes]
Verify = Callable[[str, bytes], bool]


class BaselineRejected(WekaError):
    """The task's baseline model cannot be scored: the task is not relayed."""


class BaselineMismatch(BaselineRejected):
    """The baseline runs but does not reproduce the task's claimed training score."""


class PredictionFailed(WekaError):
    """`predict` could not get predictions out of the model."""


@dataclass(frozen=True)
class TaskSpec:
    """What the evaluator needs from a PublishTask."""

    metric: Metric
    schema: DataSchema
    max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES
    limits: Limits = field(default_factory=Limits)  # wall_seconds: evaluation time per model

    @property
    def kind(self) -> TaskKind:
        return self.schema.kind


@dataclass(frozen=True)
class Submission:
    submission_id: str
    claimed_training_score: int
    model: bytes | None  # None: never revealed, or not fetched yet (then `cid` + `fetch`)
    cid: str | None = None


@dataclass(frozen=True)
class SubmissionResult:
    submission_id: str
    outcome: Outcome
    model_size: int  # bytes; 0 when the model was never available


@dataclass(frozen=True)
class TaskEvaluation:
    baseline: Outcome  # the baseline's score on the evaluation set, checked like any model
    results: tuple[SubmissionResult, ...]  # in the order of the submissions given


def sha256_verifier(cid: str, data: bytes) -> bool:
    """Stand-in CID check: the "CID" is the hex SHA-256 of the bytes."""
    return hashlib.sha256(data).hexdigest() == cid


def evaluate_task(
    task: TaskSpec,
    training_groups: Mapping[int, bytes],
    test_groups: Mapping[int, bytes] | None,
    baseline: bytes,
    baseline_training_score: int,
    submissions: Sequence[Submission],
    sandbox: ForkServerSandbox,
    *,
    fetch: Fetch | None = None,
    verify: Verify | None = None,
) -> TaskEvaluation:
    """The node's candidate ranking. Raises DataError when the task's data is invalid."""
    with EvaluationSession(task, training_groups, test_groups, sandbox) as data:
        baseline_run = data.submit(baseline, baseline_training_score)
        runs = [data.submit_submission(sub, fetch, verify) for sub in submissions]
        results = tuple(run.result() for run in runs)
        return TaskEvaluation(baseline_run.result(), results)


def check_baseline(
    task: TaskSpec,
    training_groups: Mapping[int, bytes],
    baseline: bytes,
    claimed_score: int,
    sandbox: ForkServerSandbox,
) -> int:
    """The baseline's recomputed training score; raises BaselineRejected/BaselineMismatch."""
    with EvaluationSession(task, training_groups, None, sandbox) as data:
        scored = data.evaluate(baseline, claimed_score, check_claim=False)
    if scored.status is not Status.SCORED:
        raise BaselineRejected(f"baseline model {scored.status.value}: {scored.reason}")
    assert scored.score is not None
    if scored.score != claimed_score:
        raise BaselineMismatch(
            f"baseline scores {scored.score} on the training set, the task claims {claimed_score}"
        )
    return scored.score


def predict(
    model: bytes,
    features_csv: bytes,
    schema: DataSchema,
    sandbox: ForkServerSandbox,
    *,
    limits: Limits | None = None,
    want_probabilities: bool = False,
) -> Predictions:
    """Run a model in the sandbox on a CSV's feature columns (label column optional)."""
    features = parse_features(features_csv, schema)
    needs = _needs_for(schema.kind, want_probabilities)
    limits = limits or Limits()
    handle = sandbox.put_data(features)
    try:
        result = sandbox.run(
            model,
            _args(model, schema.kind, needs, limits),
            [handle],
            limits,
            _max_result_bytes(len(features)),
        )
    except ModelRejected as e:
        raise PredictionFailed(str(e)) from e
    finally:
        sandbox.release(handle)
    if result.status is not RunStatus.OK:
        raise PredictionFailed(f"{result.status.value}: {result.detail}")
    try:
        predictions = _predictions(list(result.arrays), needs)
        check_predictions(needs, len(features), predictions)
    except InvalidPrediction as e:
        raise PredictionFailed(str(e)) from e
    return predictions


class EvaluationSession:
    """A task's parsed splits, held by the fork server while its models are evaluated.

    `evaluate_task` uses one for a whole ranking; a node may also keep one open and evaluate
    models as they are revealed. `evaluate` scores one model and waits for it; `submit` hands
    it to the session's threads and returns at once. Up to `parallel` models are in the
    sandbox at once: one per core, fewer if this machine's free memory cannot hold that many
    at the task's memory limit. There are twice as many threads, so that a model's process
    runs while another thread reads and scores the predictions of the last. Parsing raises
    DataError.
    """

    def __init__(
        self,
        task: TaskSpec,
        training: Mapping[int, bytes],
        test: Mapping[int, bytes] | None,
        sandbox: ForkServerSandbox,
    ) -> None:
        self.task, self.sandbox = task, sandbox
        self.splits = [parse_split(training, task.schema)]
        if test is not None:
            self.splits.append(parse_split(test, task.schema))
        for split in self.splits:
            check_metric_defined(task.metric, task.kind, split.labels)
        self.needs = get_needs(task.metric)
        self.handles: list[DataHandle] = []
        self.last_timing: dict[str, float] = {}  # the fork server's phases of the last run, ms
        self._threads: ThreadPoolExecutor | None = None
        by_memory = get_memory_available() // max(1, task.limits.memory_bytes)
        self.parallel = max(1, min(sandbox.parallel, by_memory))
        self._running = threading.BoundedSemaphore(self.parallel)

    def __enter__(self) -> EvaluationSession:
        self.handles = [self.sandbox.put_data(s.features) for s in self.splits]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._threads is not None:  # every model submitted is done before its data goes
            self._threads.shutdown(wait=True)
            self._threads = None
        for handle in self.handles:
            self.sandbox.release(handle)

    def submit(self, model: bytes, claimed: int, *, check_claim: bool = True) -> Future[Outcome]:
        """`evaluate` on the session's threads."""
        if self._threads is None:
            self._threads = ThreadPoolExecutor(2 * self.parallel, thread_name_prefix="evaluate")
        return self._threads.submit(self.evaluate, model, claimed, check_claim=check_claim)

    def submit_submission(
        self, sub: Submission, fetch: Fetch | None = None, verify: Verify | None = None
    ) -> Future[SubmissionResult]:
        """`evaluate_submission` with the model's run on the session's threads (fetching and
        checking its bytes on this one)."""
        model, outcome = _resolve(sub, fetch, verify)
        done: Future[SubmissionResult] = Future()
        if outcome is not None:
            done.set_result(SubmissionResult(sub.submission_id, outcome, len(model or b"")))
            return done
        assert model is not None
        size = len(model)

        def finish(run: Future[Outcome]) -> None:
            try:
                outcome = run.result()
            except BaseException as e:  # the sandbox's own failure: the caller's to see
                done.set_exception(e)
                return
            log.debug("submission %s: %s", sub.submission_id, outcome)
            done.set_result(SubmissionResult(sub.submission_id, outcome, size))

        self.submit(model, sub.claimed_training_score).add_done_callback(finish)
        return done

    def evaluate_submission(
        self, sub: Submission, fetch: Fetch | None = None, verify: Verify | None = None
    ) -> SubmissionResult:
        """A submission's result: its bytes resolved (given, or fetched), then evaluated."""
        model, outcome = _resolve(sub, fetch, verify)
        if outcome is None:
            assert model is not None
            outcome = self.evaluate(model, sub.claimed_training_score)
        log.debug("submission %s: %s", sub.submission_id, outcome)
        return SubmissionResult(sub.submission_id, outcome, len(model or b""))

    def evaluate(self, model: bytes, claimed: int, *, check_claim: bool = True) -> Outcome:
        """One model's outcome; never raises for anything the model does."""
        """SCORED with the evaluation-set score (training score when `check_claim` is off)."""
        task = self.task
        if len(model) > task.max_model_bytes:
            return Outcome.invalid(
                f"model of {len(model)} bytes exceeds the task's limit of {task.max_model_bytes}"
            )
        try:
            args = _args(model, task.kind, self.needs, task.limits)
        except ModelRejected as e:
            return Outcome.invalid(str(e))
        rows = sum(len(s.labels) for s in self.splits)
        with self._running:
            result = self.sandbox.run(
                model, args, self.handles, task.limits, _max_result_bytes(rows)
            )
        self.last_timing = result.timing
        if result.status is RunStatus.FAILED:  # the model's own doing, on any node
            return Outcome.invalid(result.detail)
        if result.status is not RunStatus.OK:  # timed out or sandbox error: this node's
            return Outcome.unevaluated(result.detail)
        per_split = 3 if self.needs is Needs.PROBABILITIES else 1
        if len(result.arrays) != per_split * len(self.splits):
            return Outcome.invalid(f"model process returned {len(result.arrays)} arrays")
        scores = []
        for i, split in enumerate(self.splits):
            try:
                predictions = _predictions(
                    list(result.arrays[i * per_split : (i + 1) * per_split]), self.needs
                )
                scores.append(compute_score(task.metric, split.labels, predictions))
            except InvalidPrediction as e:
                return Outcome.invalid(f"{'training' if i == 0 else 'test'} set: {e}")
        if check_claim and scores[0] != claimed:
            return Outcome.invalid(f"claimed training score {claimed}, recomputed {scores[0]}")
        return Outcome.scored(scores[-1] if check_claim else scores[0])


def _resolve(
    sub: Submission, fetch: Fetch | None, verify: Verify | None
) -> tuple[bytes | None, Outcome | None]:
    """The submission's model bytes, or the outcome that replaces them: INVALID when there
    is no model (never revealed) or the bytes are not the ones committed to (CID mismatch);
    UNEVALUATED when this node could not get them: another node may have them."""
    model = sub.model
    if model is None:
        if sub.cid is None:
            return None, Outcome.invalid("model was never revealed")
        if fetch is None:
            return None, Outcome.unevaluated("model bytes are not available on this node")
        try:
            model = fetch(sub.cid)
        except (WekaError, OSError) as e:
            return None, Outcome.unevaluated(f"model could not be fetched: {e}")
    if verify is not None and sub.cid is not None and not verify(sub.cid, model):
        return model, Outcome.invalid("model bytes do not match their CID")
    return model, None


def _needs_for(kind: TaskKind, want_probabilities: bool) -> Needs:
    if kind is TaskKind.REGRESSION:
        return Needs.VALUES
    return Needs.PROBABILITIES if want_probabilities else Needs.LABELS


def _args(model: bytes, kind: TaskKind, needs: Needs, limits: Limits) -> dict[str, object]:
    from wekacoin.evaluation.onnx_work import work_limit  # onnx: 1 s to import, on first use

    return {
        "format": detect_format(model).value,
        "kind": kind.value,
        "want_proba": needs is Needs.PROBABILITIES,
        "max_unpacked_bytes": limits.memory_bytes,
        # The task's work bound: from its evaluation time in whole ms, the same on every node.
        "max_work": work_limit(round(limits.wall_seconds * 1000)),
    }


def _max_result_bytes(rows: int) -> int:
    return rows * 8 * (2 + MAX_CLASSES) + MAX_CLASSES * 8 + (1 << 20)


def _predictions(arrays: list[np.ndarray], needs: Needs) -> Predictions:
    """Arrays as the worker orders them (`worker.run`), for one split."""
    if len(arrays) != (3 if needs is Needs.PROBABILITIES else 1):
        raise InvalidPrediction(f"model process returned {len(arrays)} arrays per split")
    if needs is Needs.VALUES:
        return Predictions(values=arrays[0])
    if needs is Needs.LABELS:
        return Predictions(labels=arrays[0])
    labels, probabilities, classes = arrays
    return Predictions(labels=labels, probabilities=probabilities, classes=classes)
