"""Functional test of a whole competition on the session's four validators: a supplier
publishes a task and reveals its training groups, three trainers (each through another node)
submit models of clearly different quality, the supplier reveals the test groups, the
trainers reveal their models, the validators evaluate them in their sandboxes and settle.

The test holds the data and the models, so it scores every model on the test groups itself
(onnxruntime, not the node's evaluator) and checks, on every node: the leaderboard's scores,
that the best test score wins, that every balance moved exactly as the settlement rules say
(docs/protocol.md, "Settlement"), and that all nodes hold the same state.
"""

from __future__ import annotations

import csv
import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from wekacoin.client import competition as comp
from wekacoin.client.chainclient import ChainClient
from wekacoin.client.datasets import dataset_from_arrays, prepare_dataset
from wekacoin.client.demo import to_onnx_bytes
from wekacoin.crypto.keys import parse_address
from wekacoin.evaluation.data import parse_split
from wekacoin.evaluation.sandbox import ForkServerSandbox
from wekacoin.testing.functional import NodeGroup
from wekacoin.types.metric import Metric, TaskKind
from wekacoin.types.tx import DataSchema

pytestmark = pytest.mark.slow

REWARD = 500_000
HOSTING_FEE = 100_000
PARTICIPATION_FEE = 1_000
TRAINING_BLOCKS = 40
LABEL = "malignant"
WEAK_COLUMN = "mean_smoothness"


def breast_cancer_csv() -> bytes:
    from sklearn.datasets import load_breast_cancer

    ds = load_breast_cancer()
    names = [n.replace(" ", "_") for n in ds.feature_names]
    return dataset_from_arrays(ds.data, ds.target, names, LABEL, TaskKind.CLASSIFICATION)


def uninformative_baseline(features: np.ndarray, labels: np.ndarray, schema: DataSchema) -> bytes:
    """The supplier's baseline: a decision stump that may only split on `mean_smoothness`,
    which alone predicts the majority class (63 % of the data). The chain draws the test
    groups at random, and a stump free to pick its column once scored as well as the best
    model on the draw (the baseline was kept); this one every real model beats."""
    from skl2onnx import to_onnx
    from sklearn.tree import DecisionTreeClassifier

    column = schema.feature_columns.index(WEAK_COLUMN)
    only = np.zeros_like(features)
    only[:, column] = features[:, column]
    stump = DecisionTreeClassifier(max_depth=1, random_state=0).fit(only, labels)
    return to_onnx(stump, features[:1].astype(np.float32), options={"zipmap": False},
                   target_opset=17).SerializeToString()


def models_of_three_qualities(features: np.ndarray, labels: np.ndarray) -> list[bytes]:
    """Noise (labels shuffled), a depth-2 tree, a scaled logistic regression: the best comes
    last, so submission order cannot be what makes it win."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    shuffled = np.random.default_rng(3).permutation(labels)
    noise = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    noise.fit(features, shuffled)
    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(features, labels)
    good = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(features, labels)
    return [to_onnx_bytes(m, features) for m in (noise, tree, good)]


def accuracy_on(model: bytes, groups: list[bytes]) -> int:
    """Accuracy on the test groups, scaled to the chain's integer score, by onnxruntime."""
    import onnxruntime

    rows = [row for g in groups for row in csv.DictReader(io.StringIO(g.decode()))]
    columns = [c for c in rows[0] if c != LABEL]
    x = np.array([[float(r[c]) for c in columns] for r in rows], dtype=np.float32)
    y = np.array([int(r[LABEL]) for r in rows])
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    predicted = session.run(["label"], {session.get_inputs()[0].name: x})[0]
    return round(float(np.mean(predicted == y)) * 10**6)


def split_by_weight(amount: int, recipients: list[tuple[str, int]]) -> dict[str, int]:
    """docs/protocol.md, "Settlement": in proportion to sub-users, the remainder one unit each
    to the first recipients in byte order of their addresses."""
    total = sum(j for _, j in recipients)
    shares = {a: amount * j // total for a, j in recipients}
    rest = amount - sum(shares.values())
    for i, a in enumerate(sorted(shares, key=parse_address)):
        shares[a] += 1 if i < rest else 0
    return shares


def test_competition_pays_the_best_model_on_every_node(network: NodeGroup, tmp_path: Path) -> None:
    nodes = network.nodes
    params = nodes[0].call("chain.info")["params"]
    fee = params["min_tx_fee"]
    names = ["supplier", "trainer1", "trainer2", "trainer3", "alice", "bob"]
    accounts = {n: network.address(n) for n in names}
    accounts.update({f"validator{i}": network.address(f"validator{i}") for i in range(len(nodes))})
    network.sync_all()
    # blocks after `first` hold only our transactions and the validators' storage claims and
    # proofs; the balances are read as of that one block, whatever lands meanwhile
    first, before = nodes[0].balances(accounts)

    with ForkServerSandbox() as sandbox:
        supplier = ChainClient(nodes[0].rpc, network.wallet("supplier"))
        trainers = [ChainClient(nodes[i].rpc, network.wallet(f"trainer{i}")) for i in (1, 2, 3)]
        prepared = prepare_dataset(breast_cancer_csv(), LABEL, TaskKind.CLASSIFICATION, 10, seed=7)
        whole = parse_split(dict(enumerate(prepared.groups)), prepared.schema)
        baseline = uninformative_baseline(whole.features, whole.labels, prepared.schema)
        supplier_ws = comp.Workspace(tmp_path / "supplier")
        task_id = comp.publish_task(
            supplier, supplier_ws, prepared, baseline, title="breast cancer, functional test",
            metric=Metric.ACCURACY, reward=REWARD, hosting_fee=HOSTING_FEE,
            participation_fee=PARTICIPATION_FEE, training_blocks=TRAINING_BLOCKS,
            eval_seconds=30, max_model_bytes=8 * 2**20,
        )
        comp.reveal_training(supplier, supplier_ws, task_id, sandbox)

        task = supplier.task(task_id)
        train = parse_split(comp.training_data(trainers[0], task), prepared.schema)
        models = models_of_three_qualities(train.features, train.labels)
        workspaces = [comp.Workspace(tmp_path / f"trainer{i}") for i in (1, 2, 3)]
        cids = [comp.submit_model(t, ws, task_id, m, sandbox)[0]
                for t, ws, m in zip(trainers, workspaces, models, strict=True)]

        supplier.wait_for_phase(task_id, ("test reveal",), timeout_s=180)
        comp.reveal_test(supplier, supplier_ws, task_id)
        # the upload window is a few blocks: the three trainers reveal at once
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda tw: comp.reveal_model(tw[0], tw[1], task_id),
                          zip(trainers, workspaces, strict=True)))
        supplier.wait_for_phase(task_id, ("settled", "expired"), timeout_s=300)

    network.sync_all()
    # every node tells the same story: the same balances at one height, the same blocks
    last, balances = network.balances_at_one_height(accounts)
    after = balances[0]
    for node, theirs in zip(nodes[1:], balances[1:], strict=True):
        assert theirs == after, node.name
    task = nodes[0].call("tasks.get", task_id=task_id)
    assert task["phase"] == "settled", task["phase"]
    for node in nodes[1:]:
        assert node.call("tasks.get", task_id=task_id) == task, node.name
    network.assert_same_blocks(range(first, last + 1))

    # the scores are the models' accuracy on the test groups, and the best one wins
    test_groups = [prepared.groups[i] for i in sorted(task["test_groups"])]
    expected = {cid: accuracy_on(m, test_groups) for cid, m in zip(cids, models, strict=True)}
    rows = {row["model_cid"]: row for row in task["leaderboard"] if not row["baseline"]}
    assert set(rows) == set(cids)
    baseline_rows = [row["trainer"] for row in task["leaderboard"] if row["baseline"]]
    assert baseline_rows == [accounts["supplier"]]
    assert task["settlement"]["resolution"] == "won"
    for cid in cids:
        assert rows[cid]["outcome"] == "scored", rows[cid]
        assert rows[cid]["score"] == expected[cid], (rows[cid], expected[cid])
    best = max(cids, key=lambda c: expected[c])
    assert sorted(expected.values())[-2] < expected[best], f"no clear best model: {expected}"
    assert best == cids[2]  # the logistic regression, submitted last
    winners = [row for row in task["leaderboard"] if row["winner"]]
    assert [w["model_cid"] for w in winners] == [best]
    assert rows[best]["trainer"] == accounts["trainer3"]
    assert expected[best] > accuracy_on(baseline, test_groups), "the winner must beat the baseline"

    # balances moved exactly as the settlement rules say
    owner = {s["key"]: s["address"] for s in (n.status()["validator"] for n in nodes)}
    evaluators = [(owner[e["evaluator"]], e["subusers"]) for e in task["settlement"]["evaluators"]]
    assert evaluators, "a settlement has genuine evaluators"
    refunded = (3 * params["refund_top_percent"] + 99) // 100  # the top quarter, rounded up
    assert refunded == 1
    forfeited = (3 - refunded) * PARTICIPATION_FEE
    shares = split_by_weight(HOSTING_FEE + forfeited + params["settlement_reward"], evaluators)
    proposer_fees = {a: 0 for a in accounts.values()}
    storage_fees = {a: 0 for a in accounts.values()}  # validators claim and prove storage
    for h in range(first + 1, last + 1):
        block = nodes[0].block(h, full=True)
        for tx in block["txs"]:
            proposer_fees[owner[block["proposer"]]] += tx["fee"]
            if tx["body"]["kind"] in ("claim_storage", "storage_proof"):
                storage_fees[tx["sender"]] += tx["fee"]

    expected_delta = {
        "supplier": -REWARD - HOSTING_FEE - 3 * fee,  # publish, reveal training, reveal test
        "trainer3": REWARD - 2 * fee,  # submit and reveal; its participation fee came back
        "trainer1": -PARTICIPATION_FEE - 2 * fee,
        "trainer2": -PARTICIPATION_FEE - 2 * fee,
        "alice": 0, "bob": 0,
    }
    for i in range(len(nodes)):
        a = network.address(f"validator{i}")
        expected_delta[f"validator{i}"] = shares.get(a, 0) + proposer_fees[a] - storage_fees[a]
    delta = {name: after[name] - before[name] for name in accounts}
    assert delta == expected_delta
    assert sum(delta.values()) == params["settlement_reward"]  # only the minted coins are new

