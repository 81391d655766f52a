"""The trainer's and supplier's tools over a node's RPC (a fake node answering from memory):
`model check`, `task data`, the publish pre-flight, string class labels, the task timeline
and the reveals `task watch` makes."""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pytest

from tests.helpers.evaluation_helpers import shared_sandbox, to_onnx_bytes
from wekacoin.client import competition as comp
from wekacoin.client.chainclient import ChainClient, ClientError
from wekacoin.client.datasets import dataset_from_arrays, get_class_names, prepare_dataset
from wekacoin.client.model_check import check_model_file
from wekacoin.client.timeline import compute_timeline
from wekacoin.client.watch import Holdings, get_due_actions
from wekacoin.content.cid import compute_cid
from wekacoin.crypto.keys import KeyPair, format_address
from wekacoin.evaluation.data import parse_split
from wekacoin.types.metric import Metric, TaskKind

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
PARAMS = {
    "min_groups": 5, "max_groups": 100, "max_group_bytes": 2**30, "min_training_period": 10,
    "max_model_bytes": 2**26, "max_eval_time_ms": 120_000, "min_participation_fee": 100,
    "min_tx_fee": 1, "eval_cpu_ms": 60_000, "eval_memory_mib": 1024, "eval_file_mib": 64,
    "settlement_window": 20,
}
KEY = KeyPair.from_seed(bytes(32))


class FakeNode:
    """Enough of a node's RPC for the client: one task, its blobs, an account, blocks."""

    def __init__(self, task: dict, blobs: dict[str, bytes], balance: int = 10**9) -> None:
        self.task, self.blobs, self.balance = task, blobs, balance

    def call(self, method: str, **params):
        if method == "tasks.get":
            return self.task
        if method == "blobs.get":
            return {"data": base64.b64encode(self.blobs[params["cid"]]).decode()}
        if method == "chain.info":
            return {"params": PARAMS}
        if method == "chain.account":
            return {"balance": self.balance}
        if method == "chain.head":
            return {"height": 50, "time_ms": 50 * 2000}
        if method == "chain.block":
            return {"height": params["height"], "time_ms": params["height"] * 2000}
        raise AssertionError(f"unexpected call {method}")


def digits_task(test_revealed: bool = False, corrupt: bool = False):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    names = [f"px{i}" for i in range(64)]
    csv = dataset_from_arrays(X, y, names, "digit", TaskKind.CLASSIFICATION)
    prepared = prepare_dataset(csv, "digit", TaskKind.CLASSIFICATION, 5, seed=1)
    reveal = [{"index": i, "cid": prepared.cids[i], "size": len(prepared.groups[i])}
              for i in range(5)]
    blobs = {c: g for c, g in zip(prepared.cids, prepared.groups, strict=True)}
    if corrupt:
        reveal[0]["size"] += 1
    task = {
        "id": 7, "phase": "training", "supplier": "Wsupplier",
        "spec": {"metric": "accuracy", "schema": {
            "kind": "classification", "feature_columns": names, "label_column": "digit"},
            "limits": {"max_model_bytes": 2**24, "eval_time_ms": 30_000}},
        "test_groups": [4], "training_reveals": reveal[:4],
        "test_reveals": reveal[4:] if test_revealed else [], "submissions": [],
        "heights": {"published": 1, "split": 6, "training_reveal_deadline": 26, "tbh": 60,
                    "test_reveal_end": 80, "upload_end": 100, "ready": 110, "settled": None},
        "settlement": None,
    }
    return task, blobs, prepared


def test_model_check_accepts_a_pytorch_cnn_and_scores_it_on_both_splits():
    task, blobs, _ = digits_task(test_revealed=True)
    client = ChainClient(FakeNode(task, blobs), None)  # type: ignore[arg-type]
    model = (FIXTURES / "torch_cnn_digits.onnx").read_bytes()
    report = check_model_file(client, 7, model, shared_sandbox())
    assert report.ok, report.problems
    assert report.format == "onnx" and report.work_limit == 30_000 * 10**6
    assert report.rows == 1438 and 0 < report.work < report.work_limit  # 4 of 5 groups
    assert report.training_score > 900_000 and report.test_score > 900_000


def test_model_check_lists_every_problem_of_a_logits_only_model():
    task, blobs, _ = digits_task()
    task["spec"]["metric"] = "log_loss"  # needs probabilities
    client = ChainClient(FakeNode(task, blobs), None)  # type: ignore[arg-type]
    report = check_model_file(client, 7, (FIXTURES / "torch_mlp_logits.onnx").read_bytes(),
                              shared_sandbox())
    assert not report.ok
    assert [p.split(":")[0] for p in report.problems] == [
        "logits only", "this task's metric needs probabilities"]
    assert report.training_score is None  # not scored: its problems come first


def test_model_check_refuses_a_model_for_another_feature_count():
    task, blobs, _ = digits_task()
    client = ChainClient(FakeNode(task, blobs), None)  # type: ignore[arg-type]
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    model = to_onnx_bytes(LogisticRegression(max_iter=500).fit(X, y), X)
    report = check_model_file(client, 7, model, None)
    assert any("takes 4 features, the task has 64" in p for p in report.problems)


def test_task_data_writes_the_splits_checked_against_cid_and_size(tmp_path):
    task, blobs, prepared = digits_task(test_revealed=True)
    client = ChainClient(FakeNode(task, blobs), None)  # type: ignore[arg-type]
    written = comp.save_task_data(client, task, tmp_path)
    assert set(written) == {"training", "test"}
    groups = dict(enumerate(prepared.groups))
    expected = parse_split({i: groups[i] for i in range(4)}, prepared.schema)
    got = parse_split({0: written["training"].read_bytes()}, prepared.schema)
    assert np.array_equal(got.features, expected.features)
    assert np.array_equal(got.labels, expected.labels)
    # a blob of another size than its reveal states is refused, like a CID mismatch
    task, blobs, _ = digits_task(corrupt=True)
    with pytest.raises(ClientError, match="its reveal states"):
        comp.save_task_data(ChainClient(FakeNode(task, blobs), None), task,  # type: ignore
                            tmp_path / "bad")
    blobs[task["training_reveals"][1]["cid"]] = b"other bytes"
    with pytest.raises(ClientError, match="do not match"):
        comp.revealed_groups(ChainClient(FakeNode(task, blobs), None),  # type: ignore
                             task["training_reveals"][1:2])


def test_string_class_labels_become_integers_recorded_in_the_schema():
    csv = b"a,b,species\n1,2,setosa\n3,4,virginica\n5,6,setosa\n7,8,versicolor\n9,9,setosa\n"
    prepared = prepare_dataset(csv, "species", TaskKind.CLASSIFICATION, 5, seed=1)
    assert prepared.schema.label_column == "species[setosa|versicolor|virginica]"
    assert get_class_names(prepared.schema.label_column) == ["setosa", "versicolor",
                                                             "virginica"]
    labels = parse_split(dict(enumerate(prepared.groups)), prepared.schema).labels
    assert sorted(labels.tolist()) == [0, 0, 0, 1, 2]
    with pytest.raises(ClientError, match="cannot be recorded"):
        prepare_dataset(b"a,y\n1,x|y\n2,z\n3,z\n4,z\n5,z\n", "y", TaskKind.CLASSIFICATION, 5)
    long = b"a,y\n" + b"".join(b"%d,%s\n" % (i, b"c" * 40 + b"%d" % i) for i in range(8))
    with pytest.raises(ClientError, match="the chain allows 256"):
        prepare_dataset(long, "y", TaskKind.CLASSIFICATION, 5)


def preflight(node: FakeNode, prepared, **overrides) -> list[str]:
    client = ChainClient(node, KEY)  # type: ignore[arg-type]
    options = dict(metric=Metric.ACCURACY, reward=1000, hosting_fee=100, participation_fee=None,
                   training_blocks=10, eval_seconds=30, max_model_bytes=2**20)
    options.update(overrides)
    return comp.preflight_publish(client, prepared, None, shared_sandbox(), **options)


def test_publish_preflight_passes_a_good_task_and_names_each_problem():
    task, blobs, prepared = digits_task()
    assert preflight(FakeNode(task, blobs), prepared) == []
    problems = preflight(FakeNode(task, blobs, balance=500), prepared, metric=Metric.RMSE,
                         training_blocks=3, eval_seconds=500, participation_fee=1)
    text = "\n".join(problems)
    assert "metric rmse does not apply to classification tasks: use one of accuracy" in text
    assert "the balance 500 does not cover reward 1,000 + hosting fee 100" in text
    assert "--training-blocks 3 is below the chain's minimum 10" in text
    assert "--eval-seconds must be at most 120" in text
    assert "--participation-fee 1 is below the chain's minimum 100" in text
    few = prepare_dataset(dataset_from_arrays(np.eye(4), np.arange(4), ["a", "b", "c", "d"],
                                              "y", TaskKind.CLASSIFICATION),
                          "y", TaskKind.CLASSIFICATION, 2)
    assert any("2 groups: the chain takes 5 to 100" in p
               for p in preflight(FakeNode(task, blobs), few))


def test_publish_preflight_refuses_a_metric_the_data_cannot_support():
    """roc_auc where every label is the same: undefined, said before any money moves."""
    task, blobs, _ = digits_task()
    X = np.arange(20, dtype=float).reshape(10, 2)
    one_class = prepare_dataset(dataset_from_arrays(X, np.zeros(10), ["a", "b"], "y",
                                                    TaskKind.CLASSIFICATION),
                                "y", TaskKind.CLASSIFICATION, 5)
    problems = preflight(FakeNode(task, blobs), one_class, metric=Metric.ROC_AUC)
    assert len(problems) == 1 and "cannot be scored with roc_auc" in problems[0], problems


def test_the_timeline_gives_deadlines_etas_and_the_viewers_next_action():
    task, _, _ = digits_task()
    line = compute_timeline(task, 50, 2000, PARAMS, viewer="Wtrainer")
    by_name = {d["name"]: d for d in line["deadlines"]}
    assert by_name["tbh"] == {"name": "tbh", "height": 60, "what": by_name["tbh"]["what"],
                              "blocks": 10, "eta_s": 20}
    assert by_name["expiry"]["height"] == 131 and by_name["split"]["eta_s"] is None
    assert line["feature_columns"][:2] == ["px0", "px1"] and line["classes"] is None
    assert "wekacoin task data 7" in line["next_action"]
    supplier = compute_timeline(task, 50, 2000, PARAMS, viewer="Wsupplier")
    assert supplier["role"] == "supplier" and "task watch 7" in supplier["next_action"]
    task["phase"], task["settlement"] = "cancelled", {
        "resolution": "cancelled", "height": 27, "winner": 0, "burned": 100, "minted": 0,
        "payments": [{"address": "Wsupplier", "amount": 1000}]}
    ending = compute_timeline(task, 50, None, PARAMS)["ending"]
    assert ending["reason"].startswith("the training groups were not revealed by height 26")
    assert ending["payments"] == [{"address": "Wsupplier", "amount": 1000}]
    assert ending["burned"] == 100


def test_watch_makes_each_reveal_when_its_window_opens():
    me = format_address(KEY.address)
    task = {"phase": "awaiting training reveal", "supplier": me, "test_groups": [],
            "test_reveals": [], "submissions": []}
    supplier = Holdings(secrets=True, models=())
    assert get_due_actions(task, me, supplier) == []  # the split is not drawn yet
    task["test_groups"] = [3]
    assert get_due_actions(task, me, supplier) == ["reveal training"]
    assert get_due_actions(task, me, Holdings(secrets=False, models=())) == []
    task["phase"] = "training"
    assert get_due_actions(task, me, supplier) == []
    task["phase"] = "test reveal"
    assert get_due_actions(task, me, supplier) == ["reveal test"]
    trainer = Holdings(secrets=False, models=("cidA", "cidB"))
    task["supplier"] = "Wsomeone"
    task["submissions"] = [{"trainer": me, "model_cid": None}, {"trainer": me,
                                                                "model_cid": "cidA"}]
    assert get_due_actions(task, me, trainer) == []  # the test set is not in yet
    task["test_reveals"] = [{"index": 3}]
    assert get_due_actions(task, me, trainer) == ["reveal models"]
    task["submissions"][0]["model_cid"] = "cidB"
    assert get_due_actions(task, me, trainer) == []


def test_block_interval_is_the_median_of_recent_gaps():
    task, blobs, _ = digits_task()
    client = ChainClient(FakeNode(task, blobs), None)  # type: ignore[arg-type]
    assert comp.get_block_interval_ms(client) == 2000
    assert compute_cid(b"x")  # the fake node's blobs are checked against real CIDs
