"""`wekacoin demo`: a whole Proof-of-Learning competition on a local testnet.

Four validator processes; a supplier publishes scikit-learn's breast-cancer dataset as a task
(with a decision-stump baseline); three trainers, each talking to a different node, submit a
logistic regression, a random forest and gradient boosting (exported to ONNX); the supplier
reveals the test set, the trainers reveal their models, the validators evaluate them in the
sandbox, agree on the ranking and settle the task; the demo prints the leaderboard, the
balances that changed and the validators' weights (stake, plus the storage weight each earned
by keeping and proving the task's data and models), and stops the network.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Callable

import numpy as np

from wekacoin.client import competition as comp
from wekacoin.client.chainclient import ChainClient, ClientError
from wekacoin.client.datasets import dataset_from_arrays, prepare_dataset
from wekacoin.evaluation.data import parse_split
from wekacoin.evaluation.sandbox import ForkServerSandbox
from wekacoin.keyfile import load_keystore
from wekacoin.node import testnet as tn
from wekacoin.node.launcher import NodeProcess, start_all, stop_all
from wekacoin.rpc.client import RpcClient
from wekacoin.types.metric import Metric, TaskKind

REWARD = 500_000
HOSTING_FEE = 100_000
PARTICIPATION_FEE = 1_000
TRAINING_BLOCKS = 40


def trainer_models() -> list[tuple[str, Any]]:
    """Three genuinely different models, each a (name, scikit-learn estimator)."""
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return [
        ("logistic regression", make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))),
        ("random forest", RandomForestClassifier(n_estimators=40, max_depth=6, random_state=1)),
        ("gradient boosting",
         GradientBoostingClassifier(n_estimators=60, max_depth=2, random_state=2)),
    ]


def to_onnx_bytes(model: Any, features: np.ndarray) -> bytes:
    from skl2onnx import to_onnx

    return to_onnx(model, features[:1].astype(np.float32), options={"zipmap": False},
                   target_opset=17).SerializeToString()


def run_demo(root: Path | None, nodes: int, keep: bool, say: Callable[[str], None],
             show_task: Callable[[dict], None],
             show_validators: Callable[[list[dict]], None] | None = None) -> dict:
    """Run the competition; returns the final task as the RPC reports it."""
    temporary = root is None
    root = Path(tempfile.mkdtemp(prefix="wekacoin-demo-")) if root is None else root
    processes: list[NodeProcess] = []
    try:
        say(f"starting a {nodes}-validator testnet in {root}")
        tn.generate(root, nodes)
        processes = tn.processes(root)
        start_all(processes, wait=False)
        with ExitStack() as stack:
            sandbox = stack.enter_context(ForkServerSandbox())
            wallet = lambda name: load_keystore(root / "wallets" / f"{name}.key", tn.PASSWORD)  # noqa: E731

            def client(name: str, node: int) -> ChainClient:
                process = processes[node % len(processes)]
                rpc = stack.enter_context(RpcClient(process.rpc_url, token=process.token))
                return ChainClient(rpc, wallet(name), on_wait=say)

            height = tn.wait_until_producing(processes, timeout=90)
            say(f"the network makes blocks (height {height})")
            supplier = client("supplier", 0)
            trainers = [client(f"trainer{i + 1}", i + 1) for i in range(3)]
            before = _balances(supplier, root)

            task_id = run_competition(supplier, trainers, root / "work", sandbox, say)
            task = supplier.wait_for_phase(task_id, ("settled", "expired"), timeout_s=600)
            show_task(task)
            _report_balances(supplier, root, before, say)
            _check_agreement(processes, say)
            if show_validators is not None:
                say("validators: stake, the storage they proved, and their sortition weight")
                show_validators(supplier.rpc.call("validators.list"))
            return task
    finally:
        if not keep:
            stop_all(processes)
            if temporary:
                shutil.rmtree(root, ignore_errors=True)
        else:
            say(f"the testnet keeps running in {root}; stop it with: "
                f"wekacoin testnet down --dir {root}")


def run_competition(supplier: ChainClient, trainers: list[ChainClient], work: Path,
                    sandbox: ForkServerSandbox, say: Callable[[str], None]) -> int:
    """The breast-cancer competition up to the model reveals: the supplier publishes and
    reveals, three trainers submit and reveal; returns the task id (the validators then
    evaluate and settle it)."""
    say("the supplier prepares the breast-cancer dataset: 10 committed groups")
    data = _breast_cancer_csv()
    prepared = prepare_dataset(data, "malignant", TaskKind.CLASSIFICATION, 10, seed=7)
    supplier_ws = comp.Workspace(work / "supplier")
    task_id = comp.publish_task(
        supplier, supplier_ws, prepared, None, title="breast cancer diagnosis",
        metric=Metric.ACCURACY, reward=REWARD, hosting_fee=HOSTING_FEE,
        participation_fee=PARTICIPATION_FEE, training_blocks=TRAINING_BLOCKS,
        eval_seconds=30, max_model_bytes=8 * 2**20,
    )
    say(f"task {task_id} published; the chain draws its test groups a few blocks later")
    score = comp.reveal_training(supplier, supplier_ws, task_id, sandbox)
    say("training groups revealed with a decision-stump baseline trained on them "
        f"(training accuracy {score / 1e6:.4f})")

    _catch_up(trainers, supplier.height())  # each trainer's node has the training reveal
    for trainer, (name, model) in zip(trainers, trainer_models(), strict=True):
        task = trainer.task(task_id)
        train = parse_split(comp.training_data(trainer, task), prepared.schema)
        model.fit(train.features, train.labels)
        ws = comp.Workspace(work / trainer.address)
        onnx = to_onnx_bytes(model, train.features)
        _, score = comp.submit_model(trainer, ws, task_id, onnx, sandbox)
        say(f"{name}: submitted (training accuracy {score / 1e6:.4f}) by {trainer.address}")

    task = supplier.wait_for_phase(task_id, ("test reveal",))
    comp.reveal_test(supplier, supplier_ws, task_id)
    say("test groups revealed")
    _catch_up(trainers, supplier.height())  # a model is revealed after the test groups
    for trainer in trainers:
        comp.reveal_model(trainer, comp.Workspace(work / trainer.address), task_id)
    say("models revealed; the validators evaluate them in the sandbox and agree on a "
        "ranking")
    return task_id


def _catch_up(clients: list[ChainClient], height: int) -> None:
    """Until every client's node has reached `height`: the trainers talk to other nodes than
    the supplier, which may be a block behind the supplier's when its transaction lands."""
    for client in clients:
        client.wait_for_height(height, timeout_s=120)


def _breast_cancer_csv() -> bytes:
    from sklearn.datasets import load_breast_cancer

    ds = load_breast_cancer()
    names = [n.replace(" ", "_") for n in ds.feature_names]
    return dataset_from_arrays(ds.data, ds.target, names, "malignant", TaskKind.CLASSIFICATION)


def _balances(client: ChainClient, root: Path) -> dict[str, tuple[str, int]]:
    import json

    layout = json.loads((root / "testnet.json").read_text())
    names = {**{a: f"validator {i}" for i, a in enumerate(layout["validators"])},
             **{a: n for n, a in layout["wallets"].items()}}
    return {a: (n, client.rpc.call("chain.account", address=a)["balance"])
            for a, n in names.items()}


def _report_balances(client: ChainClient, root: Path, before: dict[str, tuple[str, int]],
                     say: Callable[[str], None]) -> None:
    after = _balances(client, root)
    say("balances that changed:")
    for address, (name, balance) in after.items():
        delta = balance - before[address][1]
        if delta:
            say(f"  {name:12} {address}  {delta:+,}")


def _check_agreement(processes: list[NodeProcess], say: Callable[[str], None]) -> None:
    """Every node holds the same block, hence the same state root, at a common height."""
    common = min(p.status()["height"] for p in processes)
    roots = set()
    for process in processes:
        with RpcClient(process.rpc_url, timeout=5) as rpc:
            roots.add(rpc.call("chain.block", height=common, full=False)["state_root"])
    if len(roots) != 1:
        raise ClientError(f"the nodes disagree at height {common}: {sorted(roots)}")
    say(f"all {len(processes)} nodes hold the same state root at height {common}: "
        f"{roots.pop()[:16]}…")
