"""Functional test of docs/models.md: one model per framework it documents (scikit-learn,
LightGBM and XGBoost through onnxmltools, a PyTorch MLP and CNN) is checked with
`wekacoin model check`, submitted to a task on the session's four validators, revealed, and
scored by the validators' sandboxes.

The task is scikit-learn's digits (64 pixel columns, 10 classes). The PyTorch models are the
fixtures of scripts/export_torch_fixtures.py (PyTorch itself is too large for CI); the others
are trained here before the task opens; the trainer downloads the data with `task data`.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from wekacoin.client import competition as comp
from wekacoin.client.chainclient import ChainClient
from wekacoin.client.datasets import dataset_from_arrays, prepare_dataset
from wekacoin.client.model_check import check_model_file
from wekacoin.evaluation.data import parse_split
from wekacoin.evaluation.sandbox import ForkServerSandbox
from wekacoin.testing.functional import NodeGroup, run_cli
from wekacoin.types.metric import Metric, TaskKind

pytestmark = pytest.mark.slow

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
TRAINERS = ["trainer1", "trainer2", "trainer3", "alice", "bob"]


def framework_models(features: np.ndarray, labels: np.ndarray) -> dict[str, bytes]:
    """docs/models.md's recipes."""
    from onnxmltools.convert import convert_lightgbm, convert_xgboost
    from onnxmltools.convert.common.data_types import FloatTensorType
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    lgb = pytest.importorskip("lightgbm")
    xgb = pytest.importorskip("xgboost")
    X = features.astype(np.float32)
    types = [("X", FloatTensorType([None, X.shape[1]]))]
    sklearn_model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    return {
        "scikit-learn": to_onnx(sklearn_model.fit(X, labels), X[:1], options={"zipmap": False},
                                target_opset=17).SerializeToString(),
        "lightgbm": convert_lightgbm(
            lgb.LGBMClassifier(n_estimators=20, verbose=-1).fit(X, labels),
            initial_types=types, zipmap=False, target_opset=15).SerializeToString(),
        "xgboost": convert_xgboost(
            xgb.XGBClassifier(n_estimators=20, max_depth=4).fit(X, labels),
            initial_types=types, target_opset=15).SerializeToString(),
        "pytorch mlp": (FIXTURES / "torch_mlp_digits.onnx").read_bytes(),
        "pytorch cnn": (FIXTURES / "torch_cnn_digits.onnx").read_bytes(),
    }


def test_a_model_of_every_documented_framework_is_scored(network: NodeGroup,
                                                          tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    nodes = network.nodes
    X, y = load_digits(return_X_y=True)
    names = [f"px{i}" for i in range(64)]
    data = dataset_from_arrays(X, y, names, "digit", TaskKind.CLASSIFICATION)
    prepared = prepare_dataset(data, "digit", TaskKind.CLASSIFICATION, 10, seed=5)
    # trained before the task opens, so that its training window is not spent training
    models = framework_models(X, y)
    with ForkServerSandbox() as sandbox:
        supplier = ChainClient(nodes[0].rpc, network.wallet("supplier"))
        supplier_ws = comp.Workspace(tmp_path / "supplier")
        assert comp.preflight_publish(
            supplier, prepared, None, sandbox, metric=Metric.ACCURACY, reward=200_000,
            hosting_fee=10_000, participation_fee=None, training_blocks=45, eval_seconds=30,
            max_model_bytes=4 * 2**20) == []
        task_id = comp.publish_task(
            supplier, supplier_ws, prepared, None, title="digits, every framework",
            metric=Metric.ACCURACY, reward=200_000, hosting_fee=10_000, participation_fee=None,
            training_blocks=45, eval_seconds=30, max_model_bytes=4 * 2**20,
        )
        comp.reveal_training(supplier, supplier_ws, task_id, sandbox)

        # a trainer's view: the data as `task data` writes it, each model checked, submitted
        reader = ChainClient(nodes[1].rpc, None)
        files = comp.save_task_data(reader, reader.task(task_id), tmp_path / "data")
        train = parse_split({0: files["training"].read_bytes()}, prepared.schema)
        assert train.features.shape[1] == 64 and len(train.labels) > 1000
        for framework, model in models.items():
            report = check_model_file(reader, task_id, model, sandbox)
            assert report.ok, (framework, report.problems)
        cli = run_cli("--rpc", nodes[1].rpc_url, "model", "check", "--task", str(task_id),
                      "--json", "--no-score", str(FIXTURES / "torch_cnn_digits_legacy.onnx"))
        assert cli.code == 0, cli.stderr
        assert json.loads(cli.stdout)["ok"] is True

        trainers = [ChainClient(nodes[1 + i % 3].rpc, network.wallet(name))
                    for i, name in enumerate(TRAINERS)]
        workspaces = [comp.Workspace(tmp_path / name) for name in TRAINERS]
        with ThreadPoolExecutor(len(TRAINERS)) as pool:
            submitted = pool.map(lambda t: comp.submit_model(t[0], t[1], task_id, t[2], sandbox),
                                 zip(trainers, workspaces, models.values(), strict=True))
            cids = {framework: cid for framework, (cid, _) in zip(models, submitted,
                                                                  strict=True)}

        supplier.wait_for_phase(task_id, ("test reveal",), timeout_s=180)
        comp.reveal_test(supplier, supplier_ws, task_id)
        with ThreadPoolExecutor(len(TRAINERS)) as pool:
            list(pool.map(lambda tw: comp.reveal_model(tw[0], tw[1], task_id),
                          zip(trainers, workspaces, strict=True)))
        supplier.wait_for_phase(task_id, ("settled", "expired"), timeout_s=300)

    task = nodes[0].call("tasks.get", task_id=task_id)
    assert task["phase"] == "settled", task["phase"]
    rows = {row["model_cid"]: row for row in task["leaderboard"] if not row["baseline"]}
    for framework, cid in cids.items():
        assert rows[cid]["outcome"] == "scored", (framework, rows[cid])
        assert rows[cid]["score"] > 850_000, (framework, rows[cid])
