"""`wekacoin model check`: a model file checked against a task as the validators check it.

The static checks (format, allow-list, the input and outputs against the task's feature
columns and kind, the work bound) run here, on the trainer's own file, with the very
functions the sandbox runs; then, once the training groups are revealed, the model is scored
in the sandbox under the validators' limits, on the training set and (once revealed) the test
set. Every problem is listed, each with its fix.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from wekacoin.client.chainclient import ChainClient
from wekacoin.client.competition import revealed_groups, task_spec_of, validator_limits
from wekacoin.evaluation.formats import ModelFormat, ModelRejected, detect_format
from wekacoin.evaluation.metrics import Needs, get_needs
from wekacoin.evaluation.sandbox import ForkServerSandbox
from wekacoin.types.metric import TaskKind

SHAPE_ROWS = 1_000
"""Rows to check shapes and work on while the training groups are not revealed."""


@dataclass
class CheckReport:
    task_id: int
    size: int
    format: str | None = None
    problems: list[str] = field(default_factory=list)
    rows: int | None = None  # the rows the work was computed on
    work: int | None = None
    work_limit: int | None = None
    training_score: int | None = None
    test_score: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def check_model_file(client: ChainClient, task_id: int, model: bytes,
                     sandbox: ForkServerSandbox | None) -> CheckReport:
    """The report on `model` for task `task_id`; `sandbox` None skips the scoring."""
    from wekacoin.evaluation.onnx_work import work_limit

    task = client.task(task_id)
    spec = task_spec_of(task)
    report = CheckReport(task_id, len(model))
    limit = spec.max_model_bytes
    if len(model) > limit:
        report.problems.append(f"the model has {len(model):,} bytes, the task accepts at most "
                               f"{limit:,}: use a smaller model")
    try:
        fmt = detect_format(model)
    except ModelRejected as e:
        report.problems += e.problems
        return report
    report.format = fmt.value
    training = revealed_groups(client, task["training_reveals"]) if task["training_reveals"] \
        else None
    test = revealed_groups(client, task["test_reveals"]) if task["test_reveals"] else None
    want_proba = get_needs(spec.metric) is Needs.PROBABILITIES
    if fmt is ModelFormat.ONNX:
        from wekacoin.evaluation.data import parse_split

        rows = [len(parse_split(g, spec.schema).labels) for g in (training, test) if g]
        report.work_limit = work_limit(task["spec"]["limits"]["eval_time_ms"])
        report.rows = max(rows) if rows else SHAPE_ROWS
        if not rows:
            report.notes.append(f"the training groups are not revealed yet: shapes and work "
                                f"checked on {SHAPE_ROWS} rows, no score")
        report.problems += _onnx_problems(model, spec.kind, len(spec.schema.feature_columns),
                                          want_proba, report)
    else:
        report.problems += _skops_problems(model)
    if report.problems or training is None or sandbox is None:
        return report
    _score(client, task, training, test, model, sandbox, report)
    return report


def _onnx_problems(model: bytes, kind: TaskKind, n_features: int, want_proba: bool,
                   report: CheckReport) -> list[str]:
    from wekacoin.evaluation import onnx_model

    assert report.rows is not None and report.work_limit is not None
    try:
        graph = onnx_model.parse(model)
    except ModelRejected as e:
        return list(e.problems)
    problems = onnx_model.find_problems(graph)
    more, report.work = onnx_model.find_contract_problems(
        graph, kind, want_proba, report.rows, n_features, report.work_limit)
    return problems + more


def _skops_problems(model: bytes) -> list[str]:
    import skops.io

    from wekacoin.evaluation.skops_model import untrusted_types_problem

    try:
        untrusted = skops.io.get_untrusted_types(data=model)
    except Exception as e:  # a damaged file fails in skops' own ways
        return [f"not a valid skops file ({type(e).__name__}): save it with skops.io.dump"]
    if untrusted:
        return [untrusted_types_problem(model, ValueError(str(untrusted)))]
    return []


def _score(client: ChainClient, task: dict[str, Any], training: dict[int, bytes],
           test: dict[int, bytes] | None, model: bytes, sandbox: ForkServerSandbox,
           report: CheckReport) -> None:
    """Score as the validators do: their limits, the training set, then the test set."""
    from wekacoin.evaluation.evaluate import EvaluationSession

    spec = task_spec_of(task, validator_limits(task, client.info()["params"]))
    with EvaluationSession(spec, training, None, sandbox) as session:
        outcome = session.evaluate(model, 0, check_claim=False)
    if outcome.score is None:
        report.problems.append(f"{outcome.status.value} on the training set: {outcome.reason}")
        return
    report.training_score = outcome.score
    if test is not None:
        with EvaluationSession(spec, training, test, sandbox) as session:
            outcome = session.evaluate(model, report.training_score)
        if outcome.score is None:
            report.problems.append(f"{outcome.status.value} on the test set: {outcome.reason}")
        else:
            report.test_score = outcome.score
