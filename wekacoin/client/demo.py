"""`wekacoin demo`: a whole Proof-of-Learning competition on a local testnet.

Four validator processes; a supplier publishes scikit-learn's breast-cancer dataset as a task
(with a decision-stump baseline); three trainers, each talking to a different node, submit a
logistic regression, a random forest and gradient boosting (exported to ONNX); the supplier
reveals the test set, the trainers reveal their models, the validators evaluate them in the
sandbox, agree on the ranking and settle the task; the demo prints the leaderboard and the
balances that changed, and stops the network.
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Callable

import numpy as np

from wekacoin.client import competition as comp
from wekacoin.client.chainclient import ChainClient, ClientError
from wekacoin.client.datasets import dataset_from_arrays, prepare_dataset
from wekacoin.evaluation.data import parse_split
from wekacoin.evaluation.sandbox import ForkServerSandbox
from wekacoin.keyfile import load_keystore
from wekacoin.node import testnet as tn
from wekacoin.rpc.client import RpcClient
from wekacoin.types.metric import Metric, TaskKind

REWARD = 500_000
HOSTING_FEE = 100_000
PARTICIPATION_FEE = 1_000
TRAINING_BLOCKS = 40


def trainer_models():
    """Three genuinely different models, each a (name, scikit-learn estimator)."""
    from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return [
        ("logistic regression", make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))),
        ("random forest", RandomForestClassifier(n_estimators=40, max_depth=6, random_state=1)),
        ("gradient boosting", GradientBoostingClassifier(n_estimators=60, max_depth=2, random_state=2)),
    ]


def to_onnx_bytes(model, features: np.ndarray) -> bytes:
    from skl2onnx import to_onnx

    return to_onnx(model, features[:1].astype(np.float32), options={"zipmap": False},
                   target_opset=17).SerializeToString()


def run_demo(root: Path | None, nodes: int, keep: bool, say: Callable[[str], None],
             show_task: Callable[[dict], None]) -> dict:
    """Run the competition; returns the final task as the RPC reports it."""
    temporary = root is None
    root = Path(tempfile.mkdtemp(prefix="wekacoin-demo-")) if temporary else root
    homes: list[Path] = []
    try:
        say(f"starting a {nodes}-validator testnet in {root}")
        tn.generate(root, nodes)
        homes = tn.node_homes(root)
        for home in homes:
            tn.start_node(home)
        with ExitStack() as stack:
            sandbox = stack.enter_context(ForkServerSandbox())
            wallet = lambda name: load_keystore(root / "wallets" / f"{name}.key", tn.PASSWORD)  # noqa: E731

            def client(name: str, node: int) -> ChainClient:
                home = homes[node % len(homes)]
                rpc = stack.enter_context(RpcClient(
                    tn.rpc_url(home), token=(home / "data" / "rpc.token").read_text().strip()
                    if (home / "data" / "rpc.token").exists() else None))
                return ChainClient(rpc, wallet(name), on_wait=say)

            _wait_for_network(root, homes, say)
            supplier = client("supplier", 0)
            trainers = [client(f"trainer{i + 1}", i + 1) for i in range(3)]
            before = _balances(supplier, root)

            say("the supplier prepares the breast-cancer dataset: 10 committed groups")
            data = _breast_cancer_csv()
            prepared = prepare_dataset(data, "malignant", TaskKind.CLASSIFICATION, 10, seed=7)
            supplier_ws = comp.Workspace(root / "work" / "supplier")
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

            for trainer, (name, model) in zip(trainers, trainer_models()):
                task = trainer.task(task_id)
                train = parse_split(comp.training_data(trainer, task), prepared.schema)
                model.fit(train.features, train.labels)
                ws = comp.Workspace(root / "work" / trainer.address)
                cid, score = comp.submit_model(trainer, ws, task_id, to_onnx_bytes(model, train.features), sandbox)
                say(f"{name}: submitted (training accuracy {score / 1e6:.4f}) by {trainer.address}")

            task = supplier.wait_for_phase(task_id, ("test reveal",))
            comp.reveal_test(supplier, supplier_ws, task_id)
            say("test groups revealed")
            for trainer in trainers:
                comp.reveal_model(trainer, comp.Workspace(root / "work" / trainer.address), task_id)
            say("models revealed; the validators evaluate them in the sandbox and agree on a ranking")
            task = supplier.wait_for_phase(task_id, ("settled", "expired"), timeout_s=600)
            show_task(task)
            _report_balances(supplier, root, before, say)
            _check_agreement(homes, say)
            return task
    finally:
        if not keep:
            for home in homes:
                tn.stop_node(home)
            if temporary:
                shutil.rmtree(root, ignore_errors=True)
        else:
            say(f"the testnet keeps running in {root}; stop it with: wekacoin testnet down --dir {root}")


def _breast_cancer_csv() -> bytes:
    from sklearn.datasets import load_breast_cancer

    ds = load_breast_cancer()
    names = [n.replace(" ", "_") for n in ds.feature_names]
    return dataset_from_arrays(ds.data, ds.target, names, "malignant", TaskKind.CLASSIFICATION)


def _wait_for_network(root: Path, homes: list[Path], say) -> None:
    import time

    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        heights = []
        for home in homes:
            if tn.running_pid(home) is None:
                raise ClientError(f"{home.name} exited; see {home / 'node.log'}")
            try:
                with RpcClient(tn.rpc_url(home), timeout=2) as rpc:
                    heights.append(rpc.call("node.status")["height"])
            except Exception:  # noqa: BLE001 - not up yet: keep polling until the deadline
                break
        if len(heights) == len(homes) and min(heights) >= 2:
            say(f"the network makes blocks (height {max(heights)})")
            return
        time.sleep(0.5)
    raise ClientError("the testnet did not start producing blocks within 90 s")


def _balances(client: ChainClient, root: Path) -> dict[str, tuple[str, int]]:
    import json

    layout = json.loads((root / "testnet.json").read_text())
    names = {**{a: f"validator {i}" for i, a in enumerate(layout["validators"])},
             **{a: n for n, a in layout["wallets"].items()}}
    return {a: (n, client.rpc.call("chain.account", address=a)["balance"]) for a, n in names.items()}


def _report_balances(client: ChainClient, root: Path, before, say) -> None:
    after = _balances(client, root)
    say("balances that changed:")
    for address, (name, balance) in after.items():
        delta = balance - before[address][1]
        if delta:
            say(f"  {name:12} {address}  {delta:+,}")


def _check_agreement(homes: list[Path], say) -> None:
    """Every node holds the same block, hence the same state root, at a common height."""
    urls = [tn.rpc_url(home) for home in homes]
    heights = []
    for url in urls:
        with RpcClient(url, timeout=5) as rpc:
            heights.append(rpc.call("node.status")["height"])
    common = min(heights)
    roots = set()
    for url in urls:
        with RpcClient(url, timeout=5) as rpc:
            roots.add(rpc.call("chain.block", height=common, full=False)["state_root"])
    if len(roots) != 1:
        raise ClientError(f"the nodes disagree at height {common}: {sorted(roots)}")
    say(f"all {len(homes)} nodes hold the same state root at height {common}: {roots.pop()[:16]}…")
