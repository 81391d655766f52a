"""`wekacoin demo`."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from wekacoin.cli.common import console


def demo(
    nodes: int = typer.Option(4, min=4, max=8, help="Validator processes."),
    dir: Path = typer.Option(
        None, "--dir", help="Keep the testnet here (default: a temporary directory)."),
    keep: bool = typer.Option(False, help="Leave the testnet running afterwards."),
) -> None:
    """Run a whole competition on a fresh local testnet and print who won."""
    from wekacoin.cli.chain_cmds import print_validators
    from wekacoin.cli.competition_cmds import print_task
    from wekacoin.client.demo import run_demo

    def say(message: str) -> None:
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}", highlight=False)

    task = run_demo(dir, nodes, keep, say, print_task, print_validators)
    record = task.get("settlement") or {}
    if record.get("resolution") not in ("won", "baseline_kept"):
        raise typer.Exit(1)  # the competition did not settle: print_task said why
