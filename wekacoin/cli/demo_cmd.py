"""`wekacoin demo`."""

from __future__ import annotations

import time
from pathlib import Path

import typer

from wekacoin.cli.common import console


def demo(
    nodes: int = typer.Option(4, min=4, max=8, help="Validator processes."),
    dir: Path = typer.Option(None, "--dir", help="Keep the testnet here (default: a temporary directory)."),
    keep: bool = typer.Option(False, help="Leave the testnet running afterwards."),
) -> None:
    """Run a whole competition on a fresh local testnet and print who won."""
    from wekacoin.cli.competition_cmds import print_task
    from wekacoin.client.demo import run_demo

    def say(message: str) -> None:
        console.print(f"[dim]{time.strftime('%H:%M:%S')}[/] {message}", highlight=False)

    task = run_demo(dir, nodes, keep, say, print_task)
    winner = next((row for row in task["leaderboard"] if row["winner"]), None)
    if winner is None:
        console.print("[bold]no model beat the baseline: the reward went back to the supplier[/]")
    else:
        console.print(f"[bold green]submission {winner['submission_id']} by {winner['trainer']} "
                      f"won task {task['id']} with accuracy {winner['score'] / 1e6:.4f}[/]")
