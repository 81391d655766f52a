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
from rich.markup import escape
from rich.table import Table

from wekacoin.cli.common import CliError, console, print_json, settings
from wekacoin.client import competition as comp
from wekacoin.client.chainclient import ChainClient
from wekacoin.client.datasets import get_class_names, prepare_dataset
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
    label: str = typer.Option(
        ..., help="The label column (integers, or class names: mapped to 0..k-1 in sorted "
                  "order, recorded in the task's schema)."),
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
    dry_run: bool = typer.Option(False, help="Run the pre-flight checks only; send nothing."),
    workdir: Path = WORKDIR,
) -> None:
    """Commit to a dataset, publish the task, and reveal its training groups.

    Nothing is sent before the pre-flight checks pass: the chain's limits, the balance, the
    metric against the task kind, and the baseline trained and scored on the data."""
    raw = data.read_bytes()
    prepared = prepare_dataset(raw, label, kind, groups)
    classes = get_class_names(prepared.schema.label_column)
    if classes:
        console.print("string labels mapped to integers: "
                      + ", ".join(f"{i}={name}" for i, name in enumerate(classes)))
    baseline_bytes = None if baseline is None else baseline.read_bytes()
    ws = _workspace(workdir)
    with _client(ctx) as client:
        blocks = training_blocks or client.info()["params"]["min_training_period"]
        with _sandbox() as sandbox:
            problems = comp.preflight_publish(
                client, prepared, baseline_bytes, sandbox, metric=metric, reward=reward,
                hosting_fee=hosting_fee, participation_fee=participation_fee,
                training_blocks=blocks, eval_seconds=eval_seconds,
                max_model_bytes=max_model_bytes,
            )
        if problems:
            raise CliError("the task was not published: " + "; ".join(problems))
        if dry_run:
            console.print("pre-flight checks passed; nothing was sent (--dry-run)")
            return
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
def show(
    ctx: typer.Context, task_id: int, json_out: bool = typer.Option(False, "--json"),
    viewer: str = typer.Option(
        None, "--as", help="Whose next action to show (default: the --key wallet's address)."),
) -> None:
    """A task: its columns, deadlines, your next action, leaderboard and outcome."""
    from wekacoin.client.timeline import compute_timeline

    with settings(ctx).client() as rpc:
        client = ChainClient(rpc, None)
        task = client.task(task_id)
        height = client.height()
        block_ms = comp.get_block_interval_ms(client)
        params = client.info()["params"]
    timeline = compute_timeline(task, height, block_ms, params, viewer or _viewer(ctx))
    if json_out:
        print_json({**task, "timeline": timeline})
        return
    print_task(task, timeline)


def _viewer(ctx: typer.Context) -> str | None:
    """The --key wallet's address, read from the keystore without its password."""
    import json

    try:
        return json.loads(settings(ctx).key.read_text())["address"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


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


def print_task(task: dict, timeline: dict | None = None) -> None:
    from wekacoin.client.timeline import format_eta

    spec = task["spec"]
    console.print(f"[bold]task {task['id']}: {spec['title']}[/]  ({task['phase']})")
    console.print(f"  {spec['schema']['kind']}, metric {spec['metric']}, "
                  f"reward {spec['reward']:,}, hosting fee {spec['hosting_fee']:,}, "
                  f"participation fee {spec['participation_fee']:,}")
    if timeline is None:
        h = task["heights"]
        console.print(f"  heights: published {h['published']}, tbh {h['tbh']}, uploads end "
                      f"{h['upload_end']}, ready {h['ready']}"
                      + (f", settled {h['settled']}" if h["settled"] else ""))
    else:
        columns = timeline["feature_columns"]
        console.print(f"  {len(columns)} feature columns: " + ", ".join(columns[:20])
                      + (f", … ({len(columns) - 20} more; --json lists all)"
                         if len(columns) > 20 else ""))
        console.print(f"  label column: {timeline['label_column']}")
        if timeline["classes"]:
            console.print("  classes: " + ", ".join(
                f"{i}={name}" for i, name in enumerate(timeline["classes"])))
        interval = timeline["block_ms"]
        console.print(f"  height {timeline['height']}"
                      + (f" (a block every ~{interval / 1000:.1f} s)" if interval else ""))
        table = Table("deadline", "height", "in", "what")
        for d in timeline["deadlines"]:
            when = "passed" if d["blocks"] <= 0 else (
                f"{d['blocks']} blocks " + format_eta(d["eta_s"])).strip()
            table.add_row(d["name"], str(d["height"]), when, d["what"])
        console.print(table)
        console.print(f"  next ({timeline['role']}): {timeline['next_action']}", markup=False)
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
        ending = timeline and timeline["ending"]
        if ending:
            console.print(f"  {ending['reason']}", markup=False)
            for p in ending["payments"]:
                console.print(f"  paid {p['amount']:,} to {p['address']}", markup=False)
            if ending["burned"]:
                console.print(f"  burned {ending['burned']:,}", markup=False)


@task_app.command("data")
def data_cmd(
    ctx: typer.Context, task_id: int,
    out: Path = typer.Option(..., file_okay=False, help="Directory for the CSV files."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Download the task's revealed data (training, then test) as CSV, checked against the
    CIDs and sizes the chain states."""
    with settings(ctx).client() as rpc:
        client = ChainClient(rpc, None)
        task = client.task(task_id)
        if not task["training_reveals"]:
            raise CliError(f"task {task_id}'s training groups are not revealed yet "
                           f"({task['phase']})")
        written = comp.save_task_data(client, task, out)
    classes = get_class_names(task["spec"]["schema"]["label_column"])
    if json_out:
        print_json({"task_id": task_id, "files": {k: str(v) for k, v in written.items()},
                    "classes": classes})
        return
    for name, path in written.items():
        console.print(f"wrote {path} ({name} set)")
    if "test" not in written:
        console.print("the test groups are not revealed yet")
    if classes:
        console.print("classes: " + ", ".join(f"{i}={n}" for i, n in enumerate(classes)))


@task_app.command()
def watch(ctx: typer.Context, task_id: int, workdir: Path = WORKDIR) -> None:
    """Follow a task until it ends, making your reveals on time: the supplier's training and
    test reveals, a trainer's model reveals. Ctrl-C stops it; run it again to resume."""
    from wekacoin.client.timeline import compute_timeline, format_eta
    from wekacoin.client.watch import watch as follow

    ws = _workspace(workdir)

    def show(task: dict, height: int) -> None:
        line = compute_timeline(task, height, None, params, client.address)
        ahead = [d for d in line["deadlines"] if d["blocks"] > 0]
        nxt = f", next: {ahead[0]['name']} at {ahead[0]['height']}" if ahead else ""
        eta = format_eta(ahead[0]["blocks"] * block_ms // 1000) if ahead and block_ms else ""
        console.print(f"height {height}: {task['phase']}{nxt} {eta}".rstrip(), markup=False)

    try:
        with _client(ctx) as client:
            params = client.info()["params"]
            block_ms = comp.get_block_interval_ms(client)
            task = follow(client, ws, task_id, show, lambda m: console.print(m, markup=False),
                          lambda: _sandbox())
    except KeyboardInterrupt:
        console.print("stopped watching: a reveal already sent stays in the node's mempool; "
                      f"run 'wekacoin task watch {task_id}' again to go on")
        raise typer.Exit(130) from None
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




@model_app.command()
def check(
    ctx: typer.Context,
    model: Path = typer.Argument(..., exists=True, dir_okay=False, help="ONNX or skops model."),
    task_id: int = typer.Option(..., "--task", help="The task."),
    score: bool = typer.Option(True, help="Score it in the sandbox on the revealed data."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Check a model against a task as the validators will: format, operators, work bound,
    input and outputs against the task's columns, and its scores on the revealed data. Lists
    every problem with its fix; exits 1 if there is any."""
    from wekacoin.client.model_check import check_model_file

    with settings(ctx).client() as rpc:
        client = ChainClient(rpc, None)
        if score:
            with _sandbox() as sandbox:
                report = check_model_file(client, task_id, model.read_bytes(), sandbox)
        else:
            report = check_model_file(client, task_id, model.read_bytes(), None)
    if json_out:
        print_json(report.to_json())
    else:
        console.print(f"{model}: {report.format or 'unknown format'}, {report.size:,} bytes, "
                      f"task {task_id}", markup=False)
        if report.work is not None:
            console.print(f"  work {report.work:,} units on {report.rows:,} rows, the task "
                          f"allows {report.work_limit:,}", markup=False)
        for note in report.notes:
            console.print(f"  note: {note}", markup=False)
        for problem in report.problems:
            console.print(f"  [red]problem:[/] {escape(problem)}")
        if report.training_score is not None:
            console.print(f"  training score {report.training_score / 1e6:.6f}")
        if report.test_score is not None:
            console.print(f"  test score {report.test_score / 1e6:.6f}")
        console.print("[green]ok[/]: validators will accept it" if report.ok else
                      f"[red]{len(report.problems)} problem(s)[/]")
    if not report.ok:
        raise typer.Exit(1)
