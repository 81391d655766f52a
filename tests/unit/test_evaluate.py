"""Real models on bundled datasets, scored through the whole sandboxed path."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap

import numpy as np
import onnxruntime as ort
import pytest
from sklearn import metrics as skm

from tests.helpers import hostile_models as hostile
from tests.helpers.evaluation_helpers import model_bytes, shared_sandbox, task_data, trained
from wekacoin.errors import WekaError
from wekacoin.evaluation import (
    BaselineMismatch,
    BaselineRejected,
    DataError,
    EvaluationSession,
    ForkServerSandbox,
    Limits,
    Outcome,
    PredictionFailed,
    Status,
    Submission,
    TaskEvaluation,
    TaskSpec,
    check_baseline,
    evaluate_task,
    predict,
    sha256_verifier,
)
from wekacoin.evaluation.data import encode_group
from wekacoin.types.metric import SCORE_SCALE, Metric

CASES = [
    ("iris", "logreg", "onnx", Metric.ACCURACY),
    ("iris", "logreg", "onnx", Metric.ROC_AUC),  # multiclass: one-vs-rest macro
    ("iris", "logistic", "skops", Metric.LOG_LOSS),
    ("breast_cancer", "forest", "onnx", Metric.ROC_AUC),  # binary
    ("breast_cancer", "forest", "onnx", Metric.BALANCED_ACCURACY),
    ("wine", "boosting", "onnx", Metric.COHEN_KAPPA),
    ("wine", "boosting", "onnx", Metric.LOG_LOSS),
    ("digits", "mlp", "onnx", Metric.F1),
    ("diabetes", "mlp_reg", "onnx", Metric.R2),
    ("diabetes", "boosting_reg", "onnx", Metric.MAE),
    ("diabetes", "linear", "skops", Metric.RMSE),
]


def reference_score(dataset: str, name: str, fmt: str, metric: Metric, split: str) -> int:
    """The same model's predictions made in this process, scored by scikit-learn directly."""
    data = task_data(dataset)
    X, y = (data.X_train, data.y_train) if split == "train" else (data.X_test, data.y_test)
    if fmt == "skops":
        model = trained(dataset, name)
        out = model.predict(X)
        proba = model.predict_proba(X) if hasattr(model, "predict_proba") else None
    else:
        so = ort.SessionOptions()
        so.intra_op_num_threads = so.inter_op_num_threads = 1
        session = ort.InferenceSession(model_bytes(dataset, name), so)
        results = session.run(None, {session.get_inputs()[0].name: X.astype(np.float32)})
        out = np.asarray(results[0]).ravel()
        proba = results[1] if len(results) > 1 else None
        if isinstance(proba, list):  # ZipMap: one {class: probability} per row
            proba = np.array([[row[k] for k in sorted(row)] for row in proba])
    proba = None if proba is None else np.asarray(proba, dtype=np.float64)
    value = {
        Metric.ACCURACY: lambda: skm.accuracy_score(y, out),
        Metric.BALANCED_ACCURACY: lambda: skm.balanced_accuracy_score(y, out),
        Metric.F1: lambda: skm.f1_score(y, out, average="macro"),
        Metric.COHEN_KAPPA: lambda: skm.cohen_kappa_score(y, out),
        Metric.ROC_AUC: lambda: (
            skm.roc_auc_score(y, proba[:, 1])
            if proba.shape[1] == 2
            else skm.roc_auc_score(y, proba, multi_class="ovr")
        ),
        Metric.LOG_LOSS: lambda: _quiet(skm.log_loss, y, proba),
        Metric.RMSE: lambda: skm.root_mean_squared_error(y, out.astype(np.float64)),
        Metric.MAE: lambda: skm.mean_absolute_error(y, out.astype(np.float64)),
        Metric.R2: lambda: skm.r2_score(y, out.astype(np.float64)),
    }[metric]()
    return round(value * SCORE_SCALE)


def spec(dataset: str, metric: Metric, **kw) -> TaskSpec:
    return TaskSpec(metric, task_data(dataset).schema, **kw)


@pytest.mark.parametrize("dataset, name, fmt, metric", CASES)
def test_sandboxed_score_equals_scikit_learn_on_the_same_predictions(dataset, name, fmt, metric):
    data, model = task_data(dataset), model_bytes(dataset, name, fmt)
    claimed = reference_score(dataset, name, fmt, metric, "train")
    runs = [
        evaluate_task(
            spec(dataset, metric),
            data.training_groups,
            data.test_groups,
            model,
            claimed,
            [Submission("s1", claimed, model)],
            shared_sandbox(),
        )
        for _ in range(2)
    ]
    expected = Outcome.scored(reference_score(dataset, name, fmt, metric, "test"))
    assert runs[0].baseline == expected
    assert runs[0].results[0].outcome == expected
    assert runs[0].results[0].model_size == len(model)
    assert runs[0] == runs[1]  # identical across repeated runs


def test_every_metric_is_covered():
    assert {case[3] for case in CASES} | {Metric.ACCURACY} == set(Metric)


@pytest.mark.slow
def test_scores_are_identical_in_a_fresh_process(tmp_path):
    picked = [CASES[1], CASES[3], CASES[6], CASES[8]]
    here = {}
    for i, (dataset, name, fmt, metric) in enumerate(picked):
        (tmp_path / f"{i}.model").write_bytes(model_bytes(dataset, name, fmt))
        data = task_data(dataset)
        result = check_baseline(
            spec(dataset, metric),
            data.training_groups,
            model_bytes(dataset, name, fmt),
            reference_score(dataset, name, fmt, metric, "train"),
            shared_sandbox(),
        )
        here[str(i)] = result
    script = textwrap.dedent(f"""
        import json, pathlib
        from tests.helpers.evaluation_helpers import task_data
        from wekacoin.evaluation import ForkServerSandbox, TaskSpec, check_baseline
        from wekacoin.evaluation.evaluate import BaselineMismatch
        from wekacoin.types.metric import Metric
        out = {{}}
        with ForkServerSandbox() as sandbox:
            for i, (dataset, metric) in enumerate({[(c[0], c[3].value) for c in picked]!r}):
                data = task_data(dataset)
                model = pathlib.Path({str(tmp_path)!r}, f"{{i}}.model").read_bytes()
                try:
                    check_baseline(TaskSpec(Metric(metric), data.schema), data.training_groups,
                                   model, -1, sandbox)
                except BaselineMismatch as e:
                    out[str(i)] = int(str(e).split()[2])
        print(json.dumps(out))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=300
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == here


def test_claimed_training_score_must_match_exactly():
    data, model = task_data("iris"), model_bytes("iris", "logreg")
    claimed = reference_score("iris", "logreg", "onnx", Metric.ACCURACY, "train")
    result = evaluate_task(
        spec("iris", Metric.ACCURACY),
        data.training_groups,
        data.test_groups,
        model,
        claimed,
        [Submission("off-by-one", claimed + 1, model)],
        shared_sandbox(),
    )
    outcome = result.results[0].outcome
    assert outcome.status is Status.INVALID and "claimed training score" in outcome.reason


def test_check_baseline_accepts_refuses_and_explains():
    data, model = task_data("wine"), model_bytes("wine", "boosting")
    task = spec("wine", Metric.COHEN_KAPPA)
    claimed = reference_score("wine", "boosting", "onnx", Metric.COHEN_KAPPA, "train")
    assert check_baseline(task, data.training_groups, model, claimed, shared_sandbox()) == claimed
    with pytest.raises(BaselineMismatch):
        check_baseline(task, data.training_groups, model, claimed - 1, shared_sandbox())
    with pytest.raises(BaselineRejected, match="pickle"):
        check_baseline(task, data.training_groups, b"\x80\x04\x95junk.", claimed, shared_sandbox())


def test_fetch_and_cid_verification_seam():
    data, good = task_data("iris"), model_bytes("iris", "logreg")
    claimed = reference_score("iris", "logreg", "onnx", Metric.ACCURACY, "train")
    store = {hashlib.sha256(good).hexdigest(): good, "liar": good}

    def fetch(cid: str) -> bytes:
        if cid not in store:
            raise WekaError(f"blob {cid} not found")
        return store[cid]

    subs = [
        Submission("fetched", claimed, None, cid=hashlib.sha256(good).hexdigest()),
        Submission("mismatch", claimed, None, cid="liar"),
        Submission("missing", claimed, None, cid="nowhere"),
        Submission("never-revealed", claimed, None),
        Submission(
            "wrong-bytes-given", claimed, good[:-1] + b"\x00", cid=hashlib.sha256(good).hexdigest()
        ),
    ]
    result = evaluate_task(
        spec("iris", Metric.ACCURACY),
        data.training_groups,
        data.test_groups,
        good,
        claimed,
        subs,
        shared_sandbox(),
        fetch=fetch,
        verify=sha256_verifier,
    )
    by_id = {r.submission_id: r for r in result.results}
    assert by_id["fetched"].outcome.status is Status.SCORED
    assert "do not match" in by_id["mismatch"].outcome.reason
    # Not fetched is this node's problem, not the model's: no verdict, never INVALID.
    assert by_id["missing"].outcome.status is Status.UNEVALUATED
    assert "could not be fetched" in by_id["missing"].outcome.reason
    assert by_id["mismatch"].outcome.status is Status.INVALID
    assert by_id["never-revealed"].outcome.status is Status.INVALID
    assert by_id["never-revealed"].model_size == 0
    assert "do not match" in by_id["wrong-bytes-given"].outcome.reason


def test_unrevealed_test_set_scores_on_the_training_set():
    data, model = task_data("breast_cancer"), model_bytes("breast_cancer", "forest")
    claimed = reference_score("breast_cancer", "forest", "onnx", Metric.ROC_AUC, "train")
    result = evaluate_task(
        spec("breast_cancer", Metric.ROC_AUC),
        data.training_groups,
        None,
        model,
        claimed,
        [Submission("s", claimed, model)],
        shared_sandbox(),
    )
    assert result.baseline == result.results[0].outcome == Outcome.scored(claimed)


def test_invalid_task_data_raises_data_error():
    data, model = task_data("iris"), model_bytes("iris", "logreg")
    broken = dict(data.test_groups)
    broken[next(iter(broken))] = b"x0,x1\n1,2\n"
    with pytest.raises(DataError):
        evaluate_task(
            spec("iris", Metric.ACCURACY),
            data.training_groups,
            broken,
            model,
            0,
            [],
            shared_sandbox(),
        )


def test_oversized_model_is_invalid_without_running():
    data, model = task_data("iris"), model_bytes("iris", "logreg")
    result = evaluate_task(
        spec("iris", Metric.ACCURACY, max_model_bytes=100),
        data.training_groups,
        data.test_groups,
        model,
        0,
        [Submission("big", 0, model)],
        shared_sandbox(),
    )
    assert "exceeds the task's limit" in result.results[0].outcome.reason


def test_predict_matches_in_process_inference():
    data, model = task_data("digits"), model_bytes("digits", "mlp")
    csv = encode_group(data.X_test, data.y_test, data.schema)
    predictions = predict(model, csv, data.schema, shared_sandbox(), want_probabilities=True)
    session = ort.InferenceSession(model)
    labels, proba = session.run(
        None, {session.get_inputs()[0].name: data.X_test.astype(np.float32)}
    )
    assert np.array_equal(predictions.labels, labels)
    assert np.array_equal(predictions.probabilities, proba.astype(np.float64))
    with pytest.raises(PredictionFailed):
        predict(b"\x80\x05junk.", csv, data.schema, shared_sandbox())


def test_skops_without_preloading_scores_the_same():
    """The node's default sandbox imports skops per model process, after the clock is paused."""
    data, model = task_data("diabetes"), model_bytes("diabetes", "linear", "skops")
    claimed = reference_score("diabetes", "linear", "skops", Metric.RMSE, "train")
    with ForkServerSandbox() as sandbox:
        assert (
            check_baseline(
                spec("diabetes", Metric.RMSE), data.training_groups, model, claimed, sandbox
            )
            == claimed
        )


def _quiet(fn, *args):
    """float32 probabilities sum to 1 only within float32 rounding: scikit-learn warns."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args)


def test_zipmap_probabilities_are_read_without_building_maps():
    """The loader skips ZipMap's per-row dicts; the numbers must be the very same."""
    data, model = task_data("wine"), model_bytes("wine", "boosting")
    csv = encode_group(data.X_test, data.y_test, data.schema)
    predictions = predict(model, csv, data.schema, shared_sandbox(), want_probabilities=True)
    session = ort.InferenceSession(model)
    labels, maps = session.run(None, {session.get_inputs()[0].name: data.X_test.astype(np.float32)})
    assert isinstance(maps, list) and predictions.classes.tolist() == sorted(maps[0])
    expected = np.array([[row[k] for k in sorted(row)] for row in maps])
    assert np.array_equal(predictions.probabilities, expected)
    assert np.array_equal(predictions.labels, labels)


def test_models_scored_side_by_side_get_what_they_get_one_at_a_time():
    """`evaluate_task` runs a task's models at once (here four, whatever the cores): to the
    unit, the outcomes are those of the same models run one after another, crashing, hanging
    and refused neighbours included."""
    data = task_data("diabetes")
    baseline = model_bytes("diabetes", "linear")
    good = [model_bytes("diabetes", n) for n in ("boosting_reg", "mlp_reg", "linear")]
    good.append(model_bytes("diabetes", "linear", "skops"))
    odd = [
        hostile.time_hog(10),
        hostile.nan_output(10),
        hostile.memory_hog(10),
        b"not a model",
        hostile.wrong_output_shape(10),
    ]
    task = spec("diabetes", Metric.RMSE, limits=Limits(wall_seconds=3, memory_bytes=512 * 1024**2))
    with ForkServerSandbox(parallel=4, preload=("skops.io",)) as sandbox:
        with EvaluationSession(task, data.training_groups, None, sandbox) as training:
            claims = [training.evaluate(m, 0, check_claim=False).score for m in good]
        submissions = [Submission(f"good {i}", c or 0, m) for i, (c, m) in enumerate(zip(
            claims, good, strict=True))]
        submissions.append(Submission("wrong claim", (claims[0] or 0) + 1, good[0]))
        submissions += [Submission(f"odd {i}", 0, m) for i, m in enumerate(odd)]
        side_by_side = evaluate_task(
            task, data.training_groups, data.test_groups, baseline, claims[2] or 0, submissions,
            sandbox,
        )
        with EvaluationSession(task, data.training_groups, data.test_groups, sandbox) as one:
            one_by_one = TaskEvaluation(
                one.evaluate(baseline, claims[2] or 0),
                tuple(one.evaluate_submission(sub) for sub in submissions),
            )
    assert side_by_side == one_by_one
    statuses = [r.outcome.status for r in side_by_side.results]
    assert statuses[:5] == [Status.SCORED] * 4 + [Status.INVALID]
    assert Status.SCORED not in statuses[5:]
