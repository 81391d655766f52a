"""The hostile-model corpus: each file ranks INVALID or UNEVALUATED, and the next model scores."""

from __future__ import annotations

import hashlib

import pytest

from tests.helpers import hostile_models as hostile
from tests.helpers.evaluation_helpers import model_bytes, shared_sandbox, task_data, trained
from wekacoin.evaluation import (
    BaselineMismatch,
    Limits,
    Status,
    Submission,
    TaskSpec,
    check_baseline,
    evaluate_task,
    sha256_verifier,
)
from wekacoin.evaluation.formats import ModelFormat, UnsupportedModelFormat, detect_format
from wekacoin.types.metric import Metric

LIMITS = Limits(wall_seconds=3, memory_bytes=512 * 1024**2)
D = 10  # diabetes has ten features
NAMES = [
    "pickle",
    "joblib",
    "skops os.system",
    "skops builtins.eval",
    "skops tree model",
    "zip bomb",
    "disallowed operator",
    "external data",
    "wrong output shape",
    "NaN output",
    "memory hog",
    "work hog",
    "time hog",
    "truncated onnx",
    "truncated skops",
    "empty",
]


def corpus() -> dict[str, tuple[bytes, Status, str]]:
    """name -> (model bytes, expected status, a word the reason must contain)."""
    linear = model_bytes("diabetes", "linear", "skops")
    onnx_model = model_bytes("diabetes", "boosting_reg")
    forest = trained("breast_cancer", "forest")
    return {
        "pickle": (hostile.pickle_file(forest), Status.INVALID, "pickle"),
        "joblib": (hostile.joblib_file(forest), Status.INVALID, "joblib"),
        "skops os.system": (
            hostile.skops_naming(linear, "os", "system"),
            Status.INVALID,
            "os.system",
        ),
        "skops builtins.eval": (
            hostile.skops_naming(linear, "builtins", "eval"),
            Status.INVALID,
            "builtins.eval",
        ),
        "skops tree model": (
            model_bytes("breast_cancer", "forest", "skops"),
            Status.INVALID,
            "untrusted",
        ),
        "zip bomb": (hostile.zip_bomb(linear, 600 * 1024**2), Status.INVALID, "expands"),
        "disallowed operator": (hostile.disallowed_operator(D), Status.INVALID, "ConstantOfShape"),
        "external data": (hostile.external_data(D), Status.INVALID, "external"),
        "wrong output shape": (hostile.wrong_output_shape(D), Status.INVALID, "shape"),
        "NaN output": (hostile.nan_output(D), Status.INVALID, "NaN"),
        # 2**14 times the input's width: under the work bound, over the memory limit
        "memory hog": (hostile.memory_hog(D, doublings=14), Status.INVALID, "memory"),
        # Graphs that ask for more work than any task allows are refused before they run,
        # on every node alike, instead of reaching the memory or the wall-clock limit.
        "work hog": (hostile.memory_hog(D), Status.INVALID, "work bound"),
        "time hog": (hostile.time_hog(D), Status.INVALID, "work bound"),
        "truncated onnx": (onnx_model[: len(onnx_model) // 2], Status.INVALID, "ONNX"),
        "truncated skops": (linear[: len(linear) // 2], Status.INVALID, "zip"),
        "empty": (b"", Status.INVALID, "empty"),
    }


def training_score(good: bytes) -> int:
    data = task_data("diabetes")
    try:
        check_baseline(
            TaskSpec(Metric.RMSE, data.schema), data.training_groups, good, -1, shared_sandbox()
        )
    except BaselineMismatch as e:  # "baseline scores N on the training set, ..."
        return int(str(e).split()[2])
    raise AssertionError("a training score of -1 cannot match")


@pytest.fixture(scope="module")
def evaluated():
    data = task_data("diabetes")
    good = model_bytes("diabetes", "boosting_reg")
    task = TaskSpec(Metric.RMSE, data.schema, limits=LIMITS)
    cases = corpus()
    assert list(cases) == NAMES
    # Everyone claims the good model's training score (for a hostile file it cannot matter).
    claimed = check_baseline(
        TaskSpec(Metric.RMSE, data.schema),
        data.training_groups,
        good,
        training_score(good),
        shared_sandbox(),
    )
    submissions = []
    for name, (blob, _, _) in cases.items():
        submissions.append(Submission(name, claimed, blob))
        submissions.append(Submission(f"good after {name}", claimed, good))
    # A correct file served for someone else's CID.
    submissions.append(
        Submission("cid mismatch", claimed, good, cid=hashlib.sha256(b"x").hexdigest())
    )
    result = evaluate_task(
        task,
        data.training_groups,
        data.test_groups,
        good,
        claimed,
        submissions,
        shared_sandbox(),
        verify=sha256_verifier,
    )
    return cases, {r.submission_id: r for r in result.results}, result


@pytest.mark.parametrize("name", NAMES)
def test_hostile_model_is_refused_and_the_next_one_scores(evaluated, name):
    cases, results, _ = evaluated
    _, status, word = cases[name]
    outcome = results[name].outcome
    assert outcome.status is status, outcome
    assert word.lower() in outcome.reason.lower(), outcome.reason
    assert results[f"good after {name}"].outcome.status is Status.SCORED


def test_cid_mismatch_and_baseline(evaluated):
    _, results, result = evaluated
    assert "do not match" in results["cid mismatch"].outcome.reason
    assert result.baseline.status is Status.SCORED
    assert {results[k].outcome for k in results if k.startswith("good after")} == {result.baseline}


def test_format_is_told_by_content_not_name():
    assert detect_format(model_bytes("iris", "logreg")) is ModelFormat.ONNX
    assert detect_format(model_bytes("diabetes", "linear", "skops")) is ModelFormat.SKOPS
    for refused in (
        hostile.pickle_file([1, 2]),
        hostile.joblib_file([1, 2]),
        b"(lp0\nI1\na.",
        b"\x1f\x8b\x08\x00gzip",
        b"plain text",
    ):
        with pytest.raises(UnsupportedModelFormat):
            detect_format(refused)
