"""`wekacoin task ...` (suppliers) and `wekacoin model ...` (trainers)."""

from __future__ import annotations

import contextlib
import csv
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from wekacoin.cli.common import console, print_json, settings
from wekacoin.client import competition as comp
from wekacoin.client.chainclient import ChainClient
from wekacoin.client.datasets import prepare_dataset
from wekacoin.types.metric import Metric, TaskKind

if TYPE_CHECKING:
    from wekacoin.evaluation.sandbox import ForkServerSandbox

task_app = typer.Typer(help="Publish and follow machine-learning tasks.", no_args_is_help=True)
model_app = typer.Typer(help="Submit, reveal and run models.", no_args_is_help=True)

WORKDIR = typer.Option(Path("~/.wekacoin/work"), envvar="WEKACOIN_WORKDIR",
                       help="Where task secrets and submitted models are kept until revealed.")


@contextlib.contextmanager
def _client(ctx: typer.Context) -> Iterator[ChainClient]:
    s = settings(ctx)
    with s.client() as rpc:
        yield ChainClient(rpc, s.keypair(), on_wait=lambda m: console.log(m))


@contextlib.contextmanager
def _sandbox() -> Iterator[ForkServerSandbox]:
    from wekacoin.evaluation.sandbox import ForkServerSandbox

    with ForkServerSandbox() as sandbox:
        yield sandbox


def _workspace(workdir: Path) -> comp.Workspace:
    return comp.Workspace(workdir.expanduser())


@task_app.command()
def publish(
    ctx: typer.Context,
    data: Path = typer.Option(
        ..., exists=True, dir_okay=False, help="Labelled dataset (CSV with a header)."),
    label: str = typer.Option(..., help="The label column."),
    kind: TaskKind = typer.Option(TaskKind.CLASSIFICATION, help="Task kind."),
    metric: Metric = typer.Option(Metric.ACCURACY, help="How models are scored."),
    title: str = typer.Option(..., help="A short title."),
    groups: int = typer.Option(
        10, min=2, help="Data groups to commit to (20 % become the test set)."),
    reward: int = typer.Option(..., min=1, help="Reward for the best model."),
    hosting_fee: int = typer.Option(0, min=0, help="Paid to the evaluators."),
    participation_fee: int = typer.Option(
        None, min=1, help="Paid by each submission; default: the chain's min_participation_fee."),
    training_blocks: int = typer.Option(
        None, help="Blocks of training (default: the chain's minimum)."),
    eval_seconds: int = typer.Option(30, min=1, help="Evaluation time limit per model."),
    max_model_bytes: int = typer.Option(16 * 2**20, min=1, help="Largest model accepted."),
    baseline: Path = typer.Option(None, exists=True, dir_okay=False,
                                  help="Baseline model (ONNX or skops); default: a decision stump "
                                       "trained on the training groups once the chain draws them."),
    reveal: bool = typer.Option(
        True, help="Reveal the training groups as soon as the split is drawn."),
    workdir: Path = WORKDIR,
) -> None:
    """Commit to a dataset, publish the task, and reveal its training groups."""
    raw = data.read_bytes()
    prepared = prepare_dataset(raw, label, kind, groups)
    baseline_bytes = None if baseline is None else baseline.read_bytes()
    ws = _workspace(workdir)
    with _client(ctx) as client:
        blocks = training_blocks or client.info()["params"]["min_training_period"]
        task_id = comp.publish_task(
            client, ws, prepared, baseline_bytes, title=title, metric=metric, reward=reward,
            hosting_fee=hosting_fee, participation_fee=participation_fee,
            training_blocks=blocks, eval_seconds=eval_seconds, max_model_bytes=max_model_bytes,
        )
        console.print(f"published task [bold]{task_id}[/]")
        if reveal:
            with _sandbox() as sandbox:
                score = comp.reveal_training(client, ws, task_id, sandbox)
            console.print(f"revealed its training groups (baseline training score {score})")


@task_app.command("reveal-training")
def reveal_training(ctx: typer.Context, task_id: int, workdir: Path = WORKDIR) -> None:
    """Reveal the training groups (within the chain's window after publication)."""
    with _client(ctx) as client, _sandbox() as sandbox:
        score = comp.reveal_training(client, _workspace(workdir), task_id, sandbox)
    console.print(f"revealed the training groups of task {task_id} (baseline score {score})")


@task_app.command("reveal-test")
def reveal_test(
    ctx: typer.Context, task_id: int, workdir: Path = WORKDIR,
    wait: bool = typer.Option(True, help="Wait for the test release height first."),
) -> None:
    """Reveal the test groups (from the test release height on)."""
    with _client(ctx) as client:
        if wait:
            client.wait_for_phase(task_id, ("test reveal",))
        comp.reveal_test(client, _workspace(workdir), task_id)
    console.print(f"revealed the test groups of task {task_id}")


@task_app.command("list")
def list_tasks(ctx: typer.Context, json_out: bool = typer.Option(False, "--json")) -> None:
    """Every task with its phase."""
    with settings(ctx).client() as rpc:
        tasks = rpc.call("tasks.list")
    if json_out:
        print_json(tasks)
        return
    table = Table("id", "title", "metric", "phase", "reward", "submissions", "tbh")
    for t in tasks:
        table.add_row(str(t["id"]), t["title"], t["metric"], t["phase"], f"{t['reward']:,}",
                      str(t["submissions"]), str(t["tbh"]))
    console.print(table)


@task_app.command()
def show(ctx: typer.Context, task_id: int, json_out: bool = typer.Option(False, "--json")) -> None:
    """A task and its leaderboard."""
    with settings(ctx).client() as rpc:
        task = rpc.call("tasks.get", task_id=task_id)
    if json_out:
        print_json(task)
        return
    print_task(task)


def outcome_line(task: dict) -> str:
    """What happened to a task, from the chain's own settlement record."""
    record = task.get("settlement")
    if record is None:
        return f"task {task['id']} is open: {task['phase']}"
    resolution = record["resolution"]
    if resolution == "won":
        row = next(r for r in task["leaderboard"] if r["submission_id"] == record["winner"])
        return (f"[bold green]submission {row['submission_id']} by {row['trainer']} won task "
                f"{task['id']} with {task['spec']['metric']} {row['score'] / 1e6:.4f}[/]")
    if resolution == "baseline_kept":
        return (f"[bold]no model beat the baseline of task {task['id']}: the reward went back "
                "to the supplier[/]")
    if resolution == "expired":
        return (f"[bold red]task {task['id']} expired: no ranking was agreed before its "
                "settlement deadline; reward and participation fees refunded, hosting fee "
                "burned[/]")
    return (f"[bold red]task {task['id']} was cancelled: its training data was never "
            "revealed; reward refunded, hosting fee burned[/]")


def print_task(task: dict) -> None:
    spec = task["spec"]
    console.print(f"[bold]task {task['id']}: {spec['title']}[/]  ({task['phase']})")
    console.print(f"  {spec['schema']['kind']}, metric {spec['metric']}, "
                  f"reward {spec['reward']:,}, hosting fee {spec['hosting_fee']:,}, "
                  f"participation fee {spec['participation_fee']:,}")
    h = task["heights"]
    console.print(f"  heights: published {h['published']}, tbh {h['tbh']}, uploads end "
                  f"{h['upload_end']}, ready {h['ready']}"
                  + (f", settled {h['settled']}" if h["settled"] else ""))
    table = Table("rank", "submission", "trainer", "outcome", "score", "size", "model")
    for row in task["leaderboard"]:
        score = "" if row["score"] is None else f"{row['score'] / 1e6:.6f}"
        table.add_row(
            str(row["rank"] or "-") + (" 🏆" if row["winner"] else ""),
            "baseline" if row["baseline"] else str(row["submission_id"]),
            row["trainer"], row["outcome"] or "pending", score,
            "" if row["model_size"] is None else f"{row['model_size']:,}",
            (row["model_cid"] or "(not revealed)")[:20],
        )
    console.print(table)
    if task.get("settlement") is not None:
        console.print(outcome_line(task))


@model_app.command()
def submit(
    ctx: typer.Context,
    task_id: int = typer.Option(..., "--task", help="The task."),
    model: Path = typer.Option(..., exists=True, dir_okay=False, help="ONNX or skops model file."),
    workdir: Path = WORKDIR,
) -> None:
    """Score a model on the task's training set and commit to it (before tbh)."""
    with _client(ctx) as client, _sandbox() as sandbox:
        cid, score = comp.submit_model(
            client, _workspace(workdir), task_id, model.read_bytes(), sandbox
        )
    console.print(f"submitted {cid} to task {task_id} (training score {score / 1e6:.6f})")


@model_app.command()
def reveal(
    ctx: typer.Context, task_id: int = typer.Option(..., "--task"), workdir: Path = WORKDIR,
    wait: bool = typer.Option(True, help="Wait until models can be revealed."),
) -> None:
    """Upload and reveal your submitted models (after the test reveal)."""
    with _client(ctx) as client:
        if wait:
            task = client.wait_for_phase(task_id, ("test reveal", "model upload"))
            while task["phase"] == "test reveal" and not task["test_reveals"]:
                task = client.wait_for_phase(task_id, ("model upload",))
        cids = comp.reveal_model(client, _workspace(workdir), task_id)
    console.print(f"revealed {len(cids)} model(s) for task {task_id}")


@model_app.command("predict")
def predict_cmd(
    ctx: typer.Context, task_id: int = typer.Option(..., "--task"),
    data: Path = typer.Option(
        ..., exists=True, dir_okay=False, help="CSV with the feature columns."),
    out: Path = typer.Option(None, help="Write predictions here (default: stdout)."),
) -> None:
    """Run the task's winning model locally, in the sandbox, on a CSV."""
    with settings(ctx).client() as rpc:
        client = ChainClient(rpc, None)  # reading only: no key needed
        task, model = comp.winning_model(client, task_id)
    with _sandbox() as sandbox:
        predictions = comp.predict_csv(task, model, data.read_bytes(), sandbox)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["prediction"])
    column = predictions.labels if predictions.labels is not None else predictions.values
    assert column is not None  # predict() fills in one of the two without probabilities
    for value in column:
        writer.writerow([value.item() if hasattr(value, "item") else value])
    if out is None:
        sys.stdout.write(buffer.getvalue())
    else:
        out.write_text(buffer.getvalue())
        console.print(f"wrote {out}")


