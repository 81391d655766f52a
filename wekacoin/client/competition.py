"""The competition workflows of suppliers and trainers, over a node's RPC.

Supplier: `publish_task` (commit to the groups, publish), `reveal_training` (once the chain
has drawn the split: the training groups, and a baseline trained on them unless the supplier
brought one, with its score on them), `reveal_test` after `tbh`. Trainer: `submit_model`
(score on the training set locally, commit), `reveal_model` after the test reveal. Secrets
(nonces, test groups, models) stay in a local workspace directory until their reveal.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wekacoin.chain.tasks import model_commitment
from wekacoin.client.chainclient import ChainClient, ClientError
from wekacoin.client.datasets import PreparedData, train_baseline
from wekacoin.content.cid import compute_cid
from wekacoin.evaluation.data import DataSchema, parse_split
from wekacoin.evaluation.evaluate import EvaluationSession, TaskSpec, predict
from wekacoin.evaluation.metrics import Predictions
from wekacoin.evaluation.sandbox import ForkServerSandbox, Limits
from wekacoin.types.metric import Metric, TaskKind
from wekacoin.types.tx import DataSchema as ChainSchema
from wekacoin.types.tx import (
    GroupReveal,
    PublishTask,
    RevealModel,
    RevealTest,
    RevealTraining,
    SubmitModel,
    TaskLimits,
)

log = logging.getLogger("wekacoin.client")


# -- the local workspace --


@dataclass
class Workspace:
    root: Path

    def task_dir(self, key: str) -> Path:
        path = self.root / "tasks" / key
        path.mkdir(parents=True, exist_ok=True)
        return path

    def save_task(self, task_id: int, data: PreparedData, baseline: bytes | None) -> None:
        d = self.task_dir(str(task_id))
        for i, blob in enumerate(data.groups):
            (d / f"group{i}.csv").write_bytes(blob)
        if baseline is not None:
            (d / "baseline.model").write_bytes(baseline)
        (d / "secrets.json").write_text(json.dumps({
            "cids": data.cids, "nonces": [n.hex() for n in data.nonces],
        }, indent=1))

    def load_task(self, task_id: int) -> tuple[list[bytes], list[str], list[bytes]]:
        d = self.root / "tasks" / str(task_id)
        try:
            secrets = json.loads((d / "secrets.json").read_text())
            groups = [(d / f"group{i}.csv").read_bytes() for i in range(len(secrets["cids"]))]
        except (OSError, ValueError, KeyError):
            raise ClientError(
                f"no secrets for task {task_id} in {d} (published from elsewhere?)"
            ) from None
        return groups, secrets["cids"], [bytes.fromhex(n) for n in secrets["nonces"]]

    def save_model(self, task_id: int, model: bytes) -> str:
        cid = compute_cid(model)
        (self.task_dir(f"model-{task_id}") / f"{cid}.model").write_bytes(model)
        return cid

    def models(self, task_id: int) -> dict[str, bytes]:
        d = self.root / "tasks" / f"model-{task_id}"
        return {p.stem: p.read_bytes() for p in sorted(d.glob("*.model"))} if d.exists() else {}


# -- shared helpers --


def task_spec_of(task: dict[str, Any], limits: Limits | None = None) -> TaskSpec:
    spec = task["spec"]
    schema = DataSchema(tuple(spec["schema"]["feature_columns"]), spec["schema"]["label_column"],
                        TaskKind(spec["schema"]["kind"]))
    limits = limits or Limits(wall_seconds=spec["limits"]["eval_time_ms"] / 1000)
    return TaskSpec(Metric(spec["metric"]), schema, spec["limits"]["max_model_bytes"], limits)


def upload(client: ChainClient, data: bytes) -> str:
    return client.rpc.call("blobs.put", data=base64.b64encode(data).decode())["cid"]


def download(client: ChainClient, cid: str) -> bytes:
    blob = base64.b64decode(client.rpc.call("blobs.get", cid=cid)["data"])
    if compute_cid(blob) != cid:
        raise ClientError(f"the node sent bytes that do not match {cid}")
    return blob


def training_score(task: dict, training: dict[int, bytes], model: bytes,
                   sandbox: ForkServerSandbox) -> int:
    """The score a model gets on the training groups: what a SubmitModel states and what
    evaluators recompute to the unit."""
    with EvaluationSession(task_spec_of(task), training, None, sandbox) as session:
        outcome = session.evaluate(model, 0, check_claim=False)
    if outcome.score is None:  # exactly when it is not SCORED
        raise ClientError(f"the model cannot be scored on the training set: {outcome.reason}")
    return outcome.score


# -- supplier --


def publish_task(
    client: ChainClient, workspace: Workspace, data: PreparedData, baseline: bytes | None, *,
    title: str, metric: Metric, reward: int, hosting_fee: int, participation_fee: int | None,
    training_blocks: int, eval_seconds: int, max_model_bytes: int,
) -> int:
    """Publish the task and wait until it is on the chain; returns its id. `baseline`: the
    supplier's own baseline model, or None for a decision stump trained on the training
    groups once the chain has drawn them. `participation_fee` None asks the chain's minimum
    (a task may not ask less)."""
    if participation_fee is None:
        participation_fee = client.info()["params"]["min_participation_fee"]
    height = client.height()
    spec = PublishTask(
        title=title, metric=metric,
        schema=ChainSchema(data.schema.kind, data.schema.feature_columns, data.schema.label_column),
        limits=TaskLimits(max_model_bytes, eval_seconds * 1000),
        tbh=height + 1 + training_blocks, reward=reward, hosting_fee=hosting_fee,
        participation_fee=participation_fee, group_commitments=data.commitments,
    )
    client.send(spec)
    commitments = [c.hex() for c in data.commitments]
    for summary in reversed(client.rpc.call("tasks.list")):
        task = client.task(summary["id"])
        if task["spec"]["group_commitments"] == commitments:
            workspace.save_task(task["id"], data, baseline)
            return task["id"]
    raise ClientError("the task is in a block but the node does not list it")


def reveal_training(client: ChainClient, workspace: Workspace, task_id: int,
                    sandbox: ForkServerSandbox) -> int:
    """Wait for the chain to draw the split, then upload the training groups and the
    baseline (trained on them now, unless the supplier brought one), score the baseline on
    them, and reveal."""
    groups, cids, nonces = workspace.load_task(task_id)
    task = client.task(task_id)
    if not task["test_groups"]:
        client.wait_for_height(task["heights"]["split"], what=f"the test split of task {task_id}")
        task = client.task(task_id)
    test = set(task["test_groups"])
    training = {i: groups[i] for i in range(len(groups)) if i not in test}
    for blob in training.values():
        upload(client, blob)
    own = workspace.root / "tasks" / str(task_id) / "baseline.model"
    if own.exists():
        baseline = own.read_bytes()
    else:
        schema = task_spec_of(task).schema
        split = parse_split(training, schema)
        baseline = train_baseline(schema.kind, split.features, split.labels)
    baseline_cid = upload(client, baseline)
    score = training_score(task, training, baseline, sandbox)
    reveals = tuple(
        GroupReveal(i, cids[i], len(groups[i]), nonces[i]) for i in sorted(training)
    )
    client.send(RevealTraining(task_id, reveals, baseline_cid, len(baseline), score))
    return score


def reveal_test(client: ChainClient, workspace: Workspace, task_id: int) -> None:
    groups, cids, nonces = workspace.load_task(task_id)
    task = client.task(task_id)
    indices = sorted(task["test_groups"])
    for i in indices:
        upload(client, groups[i])
    client.send(RevealTest(
        task_id, tuple(GroupReveal(i, cids[i], len(groups[i]), nonces[i]) for i in indices)
    ))


# -- trainer --


def training_data(client: ChainClient, task: dict) -> dict[int, bytes]:
    return {g["index"]: download(client, g["cid"]) for g in task["training_reveals"]}


def submit_model(client: ChainClient, workspace: Workspace, task_id: int, model: bytes,
                 sandbox: ForkServerSandbox) -> tuple[str, int]:
    """Score the model on the training groups, commit to it; returns (CID, training score)."""
    task = client.task(task_id)
    if task["phase"] != "training":
        raise ClientError(f"task {task_id} takes no submissions: it is {task['phase']}")
    if not task["training_reveals"]:
        raise ClientError(f"task {task_id}'s training groups are not revealed yet (on this "
                          "node): submit once the supplier has revealed them")
    score = training_score(task, training_data(client, task), model, sandbox)
    cid = workspace.save_model(task_id, model)
    commitment = model_commitment(client.key.address, cid)
    client.send(SubmitModel(task_id, commitment, score))
    return cid, score


def reveal_model(client: ChainClient, workspace: Workspace, task_id: int) -> list[str]:
    """Upload and reveal every model this workspace submitted to the task."""
    models = workspace.models(task_id)
    if not models:
        raise ClientError(f"no submitted models for task {task_id} in {workspace.root}")
    for cid, model in models.items():
        upload(client, model)
        client.send(RevealModel(task_id, cid, len(model)))
    return list(models)


def winning_model(client: ChainClient, task_id: int) -> tuple[dict, bytes]:
    task = client.task(task_id)
    winners = [row for row in task["leaderboard"] if row["winner"]]
    if not winners:
        raise ClientError(f"task {task_id} has no winning model ({task['phase']})")
    return task, download(client, winners[0]["model_cid"])


def predict_csv(
    task: dict, model: bytes, features_csv: bytes, sandbox: ForkServerSandbox
) -> Predictions:
    return predict(model, features_csv, task_spec_of(task).schema, sandbox)



# -- reading a task: its data, its limits as validators apply them, its timeline --


def validator_limits(task: dict[str, Any], params: dict[str, Any]) -> Limits:
    """The sandbox limits every validator applies to the task's models (node.evaluation's
    `task_limits`): the task's evaluation time, genesis' CPU, memory and file limits."""
    return Limits(
        wall_seconds=task["spec"]["limits"]["eval_time_ms"] / 1000,
        cpu_seconds=params["eval_cpu_ms"] // 1000,
        memory_bytes=params["eval_memory_mib"] * 2**20,
        file_bytes=params["eval_file_mib"] * 2**20,
    )


def revealed_groups(client: ChainClient, reveals: list[dict[str, Any]]) -> dict[int, bytes]:
    """The groups of a reveal, each checked against its CID and its stated size."""
    groups = {}
    for g in reveals:
        blob = download(client, g["cid"])
        if len(blob) != g["size"]:
            raise ClientError(f"group {g['index']} has {len(blob)} bytes, its reveal states "
                              f"{g['size']}")
        groups[g["index"]] = blob
    return groups


def join_groups(groups: dict[int, bytes]) -> bytes:
    """One CSV of the groups in ascending index (a split as validators read it): the first
    group's header, then every group's rows."""
    out = b""
    for i, index in enumerate(sorted(groups)):
        text = groups[index] if groups[index].endswith(b"\n") else groups[index] + b"\n"
        out += text if i == 0 else text.split(b"\n", 1)[1]
    return out


def save_task_data(client: ChainClient, task: dict[str, Any], out: Path) -> dict[str, Path]:
    """Write the task's revealed splits as `training.csv` (and `test.csv` once revealed) in
    `out`; every group checked against its CID and size first."""
    out.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, key in (("training", "training_reveals"), ("test", "test_reveals")):
        if task[key]:
            path = out / f"{name}.csv"
            path.write_bytes(join_groups(revealed_groups(client, task[key])))
            written[name] = path
    return written


def get_block_interval_ms(client: ChainClient, blocks: int = 16) -> int | None:
    """The median interval of the last `blocks` blocks (their proposers' timestamps), ms."""
    head = client.rpc.call("chain.head")
    times = []
    for height in range(max(1, head["height"] - blocks + 1), head["height"] + 1):
        block = head if height == head["height"] else client.rpc.call(
            "chain.block", height=height, full=False)
        times.append(block["time_ms"])
    gaps = sorted(b - a for a, b in zip(times, times[1:], strict=False))
    return gaps[len(gaps) // 2] if gaps else None


# -- the supplier's pre-flight: before any money moves --


def preflight_publish(
    client: ChainClient, data: PreparedData, baseline: bytes | None, sandbox: ForkServerSandbox,
    *, metric: Metric, reward: int, hosting_fee: int, participation_fee: int | None,
    training_blocks: int, eval_seconds: int, max_model_bytes: int,
) -> list[str]:
    """Every reason the publication would fail or the task could not run, each with its fix:
    the chain's limits, the balance, the metric and the data, and the baseline trained (or
    given) and scored on the data in the sandbox. Empty when the task can go."""
    from wekacoin.errors import WekaError
    from wekacoin.evaluation.data import DataError

    params = client.info()["params"]
    kind = data.schema.kind
    problems = []
    if kind not in metric.kinds:
        fits = ", ".join(m.value for m in Metric if kind in m.kinds)
        problems.append(f"metric {metric.value} does not apply to {kind.value} tasks: use one "
                        f"of {fits}")
    if not params["min_groups"] <= len(data.groups) <= params["max_groups"]:
        problems.append(f"{len(data.groups)} groups: the chain takes {params['min_groups']} to "
                        f"{params['max_groups']} (--groups)")
    largest = max(len(g) for g in data.groups)
    if largest > params["max_group_bytes"]:
        problems.append(f"a group has {largest:,} bytes, the chain takes at most "
                        f"{params['max_group_bytes']:,}: use more groups")
    if training_blocks < params["min_training_period"]:
        problems.append(f"--training-blocks {training_blocks} is below the chain's minimum "
                        f"{params['min_training_period']}")
    if not 0 < max_model_bytes <= params["max_model_bytes"]:
        problems.append(f"--max-model-bytes must be at most {params['max_model_bytes']:,}")
    if not 0 < eval_seconds * 1000 <= params["max_eval_time_ms"]:
        problems.append(f"--eval-seconds must be at most {params['max_eval_time_ms'] // 1000}")
    fee = params["min_participation_fee"] if participation_fee is None else participation_fee
    if fee < params["min_participation_fee"]:
        problems.append(f"--participation-fee {fee} is below the chain's minimum "
                        f"{params['min_participation_fee']}")
    needed = reward + hosting_fee + 3 * params["min_tx_fee"]  # publish and two reveals
    balance = client.rpc.call("chain.account", address=client.address)["balance"]
    if balance < needed:
        problems.append(f"the balance {balance:,} does not cover reward {reward:,} + hosting "
                        f"fee {hosting_fee:,} + 3 transaction fees ({needed:,} in all)")
    if problems:  # the baseline is worth trying only for a task that can be published
        return problems
    whole = dict(enumerate(data.groups))
    spec = TaskSpec(metric, data.schema, max_model_bytes,
                    validator_limits({"spec": {"limits": {"eval_time_ms": eval_seconds * 1000}}},
                                     params))
    try:
        split = parse_split(whole, data.schema)
        model = baseline if baseline is not None else train_baseline(
            kind, split.features, split.labels)
        with EvaluationSession(spec, whole, None, sandbox) as session:
            outcome = session.evaluate(model, 0, check_claim=False)
    except DataError as e:
        return [f"the data cannot be scored with {metric.value}: {e}"]
    except (WekaError, ValueError) as e:  # the stump cannot train on these labels
        return [f"the baseline cannot be trained on the data: {e}"]
    if outcome.score is None:
        which = "your baseline" if baseline is not None else "the default baseline"
        problems.append(f"{which} cannot be scored on the data ({outcome.status.value}: "
                        f"{outcome.reason}): fix it, see docs/models.md")
    return problems
