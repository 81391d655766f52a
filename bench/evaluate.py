"""Benchmark: sandboxed model scoring against bare in-process scoring of the same models, and
a task's models scored one at a time against scored on every core.

    python bench/evaluate.py [--quick]

Trains a mix of scikit-learn models (logistic regression, random forests, gradient boosting,
MLPs; classifiers and regressors), exports them to ONNX, and scores each on a 10,000-row test
set twice, alternating model by model:
- bare: in this process, the evaluator's own loader (allow-list check, one-thread session,
  output conversion) and the metric: what scoring costs with no isolation at all;
- sandboxed: the full path (`EvaluationSession.evaluate`): fork server request, a confined
  model process, frame back, decode, the same metric.
Each model is timed over several rounds and its fastest run kept: the machine is shared, and
the minimum is the run least disturbed by others. Prints `RESULT eval_sandbox_ratio`
(sandboxed time / bare time, summed over models) and `RESULT eval_overhead_ms` (the fixed
cost per model: sandboxed minus bare for a model that does next to nothing), with where the
sandboxed time goes; it stops if the two paths ever give different scores.

Then it scores 50 models (with --quick, the same few models over again) through the sandbox
three ways, rotating round by round: on one core (a second sandbox whose fork server, and so
every model process, is pinned to one CPU, with the calling thread pinned there too), one at a
time on every core (`evaluate`), and all at once on every core (`submit`: one per core). It
prints `RESULT eval_parallel_speedup` (fastest one-core round / fastest all-cores round), and
the all-at-once gain over one at a time, which is smaller: one at a time already uses part of
a second core, where the next confined spare process starts while a model runs. It stops
unless every model gets the same outcome every way.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import statistics
import sys
import time
import warnings
from collections.abc import Iterator

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402
from skl2onnx import to_onnx  # noqa: E402
from sklearn.datasets import make_classification, make_regression  # noqa: E402
from sklearn.ensemble import (  # noqa: E402
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge  # noqa: E402
from sklearn.neural_network import MLPClassifier, MLPRegressor  # noqa: E402

from wekacoin.evaluation import onnx_model  # noqa: E402
from wekacoin.evaluation.data import DataSchema, encode_group  # noqa: E402
from wekacoin.evaluation.evaluate import EvaluationSession, TaskSpec  # noqa: E402
from wekacoin.evaluation.metrics import Needs, Predictions, compute_score, get_needs  # noqa: E402
from wekacoin.evaluation.outcome import Outcome  # noqa: E402
from wekacoin.evaluation.sandbox import ForkServerSandbox, Limits  # noqa: E402
from wekacoin.types.metric import Metric, TaskKind  # noqa: E402

TEST_ROWS = 10_000
FEATURES = 20
PARALLEL_MODELS = 50


def classifiers(count: int) -> list[object]:
    makers = [
        lambda i: LogisticRegression(C=0.1 * (i + 1), max_iter=300),
        lambda i: RandomForestClassifier(
            n_estimators=10 + 10 * (i % 5), max_depth=8, random_state=i
        ),
        lambda i: GradientBoostingClassifier(
            n_estimators=20 + 10 * (i % 4), max_depth=3, random_state=i
        ),
        lambda i: MLPClassifier(
            hidden_layer_sizes=(16 + 16 * (i % 3),), max_iter=80, random_state=i
        ),
    ]
    return [makers[i % len(makers)](i // len(makers)) for i in range(count)]


def regressors(count: int) -> list[object]:
    makers = [
        lambda i: LinearRegression() if i % 2 == 0 else Ridge(alpha=float(i)),
        lambda i: RandomForestRegressor(
            n_estimators=10 + 10 * (i % 4), max_depth=8, random_state=i
        ),
        lambda i: GradientBoostingRegressor(n_estimators=20 + 10 * (i % 4), random_state=i),
        lambda i: MLPRegressor(
            hidden_layer_sizes=(16 + 16 * (i % 3),), max_iter=80, random_state=i
        ),
    ]
    return [makers[i % len(makers)](i // len(makers)) for i in range(count)]


def build(
    kind: TaskKind, count: int, train_rows: int
) -> tuple[np.ndarray, np.ndarray, list[bytes]]:
    make = make_classification if kind is TaskKind.CLASSIFICATION else make_regression
    X, y = make(n_samples=train_rows + TEST_ROWS, n_features=FEATURES, random_state=1)
    X_train, y_train, X_test, y_test = (
        X[:train_rows],
        y[:train_rows],
        X[train_rows:],
        y[train_rows:],
    )
    estimators = classifiers(count) if kind is TaskKind.CLASSIFICATION else regressors(count)
    blobs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for est in estimators:
            est.fit(X_train, y_train)
            blobs.append(to_onnx(est, X_train[:1].astype(np.float32)).SerializeToString())
    return X_test, y_test, blobs


def bare_score(blob: bytes, X: np.ndarray, y: np.ndarray, metric: Metric, kind: TaskKind) -> int:
    needs = get_needs(metric)
    arrays = onnx_model.load(blob).predict(X, kind, needs is Needs.PROBABILITIES)
    if needs is Needs.VALUES:
        predictions = Predictions(values=arrays[0])
    elif needs is Needs.LABELS:
        predictions = Predictions(labels=arrays[0])
    else:
        predictions = Predictions(labels=arrays[0], probabilities=arrays[1], classes=arrays[2])
    return compute_score(metric, y, predictions)


def time_models(sandbox: ForkServerSandbox, suites: list, rounds: int) -> tuple[list, list, dict]:
    """Fastest-of-`rounds` seconds per model, bare and sandboxed, alternating model by model."""
    bare_times, boxed_times, phases = [], [], {}
    cpu = {"bare": 0.0, "parent": 0.0, "runs": 0}
    for kind, metric, X, y, blobs, schema in suites:
        task = TaskSpec(metric, schema, limits=Limits(wall_seconds=60))
        # The test set stands in as the only split: each model is scored on it once.
        with EvaluationSession(task, {0: encode_group(X, y, schema)}, None, sandbox) as session:
            for blob in blobs:
                bare, boxed = [], []
                for _ in range(rounds):
                    t, c = time.perf_counter(), time.process_time()
                    expected = bare_score(blob, X, y, metric, kind)
                    bare.append(time.perf_counter() - t)
                    cpu["bare"] += time.process_time() - c
                    t, c = time.perf_counter(), time.process_time()
                    outcome = session.evaluate(blob, expected)
                    boxed.append(time.perf_counter() - t)
                    cpu["parent"] += time.process_time() - c
                    cpu["runs"] += 1
                    if outcome.score != expected:
                        raise SystemExit(f"sandboxed score {outcome} differs from {expected}")
                    for phase, ms in session.last_timing.items():
                        phases.setdefault(phase, []).append(ms)
                bare_times.append(min(bare))
                boxed_times.append(min(boxed))
    phases["cpu"] = [cpu["bare"], cpu["parent"], cpu["runs"]]
    return bare_times, boxed_times, phases


def cpu_line(phases: dict) -> str:
    """CPU per model, which other users of the machine do not inflate as they do wall time."""
    bare, parent, runs = phases["cpu"]
    server = phases["server_cpu_total"][-1] - phases["server_cpu_total"][0]
    children = phases["children_cpu_total"][-1] - phases["children_cpu_total"][0]
    per_run = (runs - 1) or 1  # the running totals start after the first sandboxed run
    return (
        f"CPU per model: bare {bare / runs * 1e3:.2f} ms; sandboxed: parent "
        f"{parent / runs * 1e3:.2f} + fork server {server / per_run:.2f} + model processes "
        f"{children / per_run:.2f} ms (their warm-up included)"
    )


def fixed_overhead_ms(sandbox: ForkServerSandbox, runs: int) -> float:
    """Sandboxed minus bare time for a model that does next to nothing (a 2-row regression)."""
    graph = helper.make_graph(
        [
            helper.make_node(
                "LinearRegressor",
                ["X"],
                ["Y"],
                domain="ai.onnx.ml",
                coefficients=[2.0],
                intercepts=[1.0],
            )
        ],
        "trivial",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
    )
    opsets = [helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]
    blob = helper.make_model(graph, opset_imports=opsets, ir_version=8).SerializeToString()
    schema = DataSchema(("x",), "y", TaskKind.REGRESSION)
    X, y = np.array([[1.0], [2.0]]), np.array([3.0, 5.0])
    suite = [(TaskKind.REGRESSION, Metric.RMSE, X, y, [blob] * runs, schema)]
    bare, boxed, _ = time_models(sandbox, suite, rounds=1)
    return (min(boxed) - min(bare)) * 1e3


@contextlib.contextmanager
def pinned(cpu: int) -> Iterator[None]:
    """This thread, and every process and thread it starts meanwhile, on one core."""
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


MODES = ("one core", "one at a time", "all at once")


def time_parallel(wide: ForkServerSandbox, narrow: ForkServerSandbox, cpu: int, suites: list,
                  rounds: int) -> dict[str, list]:
    """Per round, seconds and CPU seconds (this process, the fork server, the model processes
    reaped so far) to score PARALLEL_MODELS models: on one core (`narrow`, whose server was
    started pinned to `cpu`, with this thread pinned there too), one at a time on every core,
    and all at once on every core (`wide`)."""
    jobs = list(itertools.islice(
        itertools.cycle([(i, blob) for i, suite in enumerate(suites) for blob in suite[4]]),
        PARALLEL_MODELS,
    ))
    expected = {}  # (suite, blob) -> bare score
    measured: dict[str, list] = {m: [] for m in MODES} | {f"{m} cpu": [] for m in MODES}
    with contextlib.ExitStack() as stack:
        sessions: dict[str, list] = {"narrow": [], "wide": []}
        for kind, metric, X, y, blobs, schema in suites:
            task = TaskSpec(metric, schema, limits=Limits(wall_seconds=60))
            group = {0: encode_group(X, y, schema)}
            for name, sandbox in (("narrow", narrow), ("wide", wide)):
                sessions[name].append(
                    stack.enter_context(EvaluationSession(task, group, None, sandbox)))
            for blob in blobs:
                score = bare_score(blob, X, y, metric, kind)
                expected[len(sessions["wide"]) - 1, blob] = Outcome.scored(score)

        def cpu_now(mine: list) -> float:
            totals = [s.last_timing for s in mine if s.last_timing]
            server = max((t["server_cpu_total"] for t in totals), default=0.0)
            children = max((t["children_cpu_total"] for t in totals), default=0.0)
            return time.process_time() + (server + children) / 1e3

        def score(mode: str) -> list:
            if mode == "one core":
                with pinned(cpu):
                    return [sessions["narrow"][i].evaluate(b, 0, check_claim=False)
                            for i, b in jobs]
            if mode == "one at a time":
                return [sessions["wide"][i].evaluate(b, 0, check_claim=False) for i, b in jobs]
            runs = [sessions["wide"][i].submit(b, 0, check_claim=False) for i, b in jobs]
            return [run.result() for run in runs]

        for mode in MODES:  # once through, untimed: every session's data in place, warm
            score(mode)
        for r in range(rounds):
            for mode in MODES[r % 3:] + MODES[:r % 3]:  # rotate: noise hits every mode alike
                mine = sessions["narrow" if mode == "one core" else "wide"]
                t, c = time.perf_counter(), cpu_now(mine)
                outcomes = score(mode)
                measured[mode].append(time.perf_counter() - t)
                measured[f"{mode} cpu"].append(cpu_now(mine) - c)
                for (i, blob), outcome in zip(jobs, outcomes, strict=True):
                    if outcome != expected[i, blob]:
                        raise SystemExit(f"{mode}: outcome {outcome} != {expected[i, blob]}")
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer models and rounds (< 1 min)")
    args = parser.parse_args()
    models, rounds, train_rows = (12, 3, 1000) if args.quick else (50, 5, 3000)

    t0 = time.perf_counter()
    suites = []
    for kind, metric, share in (
        (TaskKind.CLASSIFICATION, Metric.ROC_AUC, models // 2),
        (TaskKind.REGRESSION, Metric.RMSE, models - models // 2),
    ):
        X, y, blobs = build(kind, share, train_rows)
        schema = DataSchema(tuple(f"x{i}" for i in range(FEATURES)), "y", kind)
        suites.append((kind, metric, X, y, blobs, schema))
    print(f"trained and exported {models} models in {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    with ForkServerSandbox() as sandbox:
        print(
            f"fork server up in {time.perf_counter() - t0:.2f} s, "
            f"isolation {sandbox.isolation.describe()}"
        )
        bare_times, boxed_times, phases = time_models(sandbox, suites, rounds)
        fixed = fixed_overhead_ms(sandbox, 30)
        one_cpu = min(os.sched_getaffinity(0))
        with pinned(one_cpu):  # the one-core sandbox: its server and every model process there
            narrow = ForkServerSandbox()
            narrow.start()
        with narrow:
            measured = time_parallel(sandbox, narrow, one_cpu, suites, rounds)
        parallel = sandbox.parallel

    n = len(bare_times)
    bare_total, boxed_total = sum(bare_times), sum(boxed_times)
    print(f"models: {n}, test rows: {TEST_ROWS}, rounds: {rounds}; every score equal both ways")
    print(f"bare in-process: {bare_total * 1e3:.1f} ms total, {bare_total / n * 1e3:.2f} ms/model")
    print(
        f"sandboxed:       {boxed_total * 1e3:.1f} ms total, {boxed_total / n * 1e3:.2f} ms/model"
    )
    print(f"added per model on these models: {(boxed_total - bare_total) / n * 1e3:.2f} ms")
    print(cpu_line(phases))
    shown = ("queue", "model")
    print(
        "fork server phases, median ms per model: "
        + ", ".join(f"{p} {statistics.median(ms):.2f}" for p, ms in phases.items() if p in shown)
    )
    print(
        "  (queue: from the job's arrival until a confined model process has it, next to none"
        " when a spare was ready; model: the job read, load, predict and answer)"
    )
    best = {mode: min(measured[mode]) for mode in MODES}
    print(
        f"{PARALLEL_MODELS} models, {rounds} rounds each way, every outcome equal every way; "
        "fastest round: "
        f"one core {best['one core'] * 1e3:.0f} ms, "
        f"one at a time on {parallel} cores {best['one at a time'] * 1e3:.0f} ms, "
        f"{parallel} at once {best['all at once'] * 1e3:.0f} ms"
    )
    for mode in MODES:
        times, cpus = measured[mode], measured[f"{mode} cpu"]
        cpu = statistics.median(cpus)
        print(
            f"  {mode}: median round {statistics.median(times) * 1e3:.0f} ms, CPU "
            f"{cpu / PARALLEL_MODELS * 1e3:.2f} ms per model (all processes), "
            f"{cpu / statistics.median(times):.2f} cores busy"
        )
    print(
        "  all at once against one at a time (the next confined spare already starts on the"
        f" other core while a model runs): {best['one at a time'] / best['all at once']:.3f}"
    )
    print(f"RESULT eval_sandbox_ratio {boxed_total / bare_total:.3f}")
    print(f"RESULT eval_overhead_ms {fixed:.2f}")
    print(f"RESULT eval_parallel_speedup {best['one core'] / best['all at once']:.3f}")


if __name__ == "__main__":
    main()
