"""`wekacoin testnet up|down|status`: a local network of validator processes."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from wekacoin.cli.common import CliError, console
from wekacoin.errors import WekaError
from wekacoin.node import testnet as tn
from wekacoin.node.launcher import start_all, stop_all
from wekacoin.waiting import WaitTimeout

app = typer.Typer(help="A local testnet of validator processes on 127.0.0.1.", no_args_is_help=True)

DIR_OPTION = typer.Option(Path(".testnet"), "--dir", help="Testnet directory.")


@app.command()
def init(
    nodes: int = typer.Option(4, min=1, max=16, help="Number of validators."),
    dir: Path = DIR_OPTION,
    docker: bool = typer.Option(False, help="For docker-compose: service names, Kubo sidecars."),
) -> None:
    """Create a testnet directory (keys, genesis, one node.toml per node) without starting it."""
    layout = tn.Layout.docker(nodes) if docker else None
    tn.generate(dir, nodes, layout=layout)
    console.print(f"created a {nodes}-validator testnet in {dir}")
    if docker:
        console.print("start it with: docker compose up (see docker-compose.yml)")


@app.command()
def up(
    nodes: int = typer.Option(4, min=1, max=16, help="Number of validators (first run only)."),
    dir: Path = DIR_OPTION,
    wait: float = typer.Option(60, help="Seconds to wait until every node makes blocks."),
) -> None:
    """Create the testnet (first time) and start every node that is not running."""
    if not (dir / "genesis.json").exists():
        tn.generate(dir, nodes)
        console.print(f"created a {nodes}-validator testnet in {dir}")
    processes = tn.processes(dir)
    started = start_all(processes, wait=False)
    console.print(f"started {', '.join(started) or 'nothing (all running)'}")
    with console.status("waiting for the nodes to connect and make blocks"):
        try:
            tn.wait_until_producing(processes, timeout=wait)
        except WaitTimeout:
            raise CliError(f"the testnet is not producing blocks after {wait:.0f} s; "
                           "see the node.log files") from None
    status(dir)


@app.command()
def down(dir: Path = DIR_OPTION) -> None:
    """Stop every node of the testnet (SIGTERM, then SIGKILL after 30 s)."""
    stopped = stop_all(tn.processes(dir))
    console.print(f"stopped {', '.join(stopped) or 'nothing (none running)'}")


@app.command()
def status(dir: Path = DIR_OPTION) -> None:
    """One line per node: process, height, peers, state root."""
    table = Table("node", "pid", "height", "peers", "state root", "round.step", "rpc")
    for node in tn.processes(dir):
        url = node.rpc_url
        row = [node.name, str(node.pid or "-")]
        try:
            st = node.status()
            c = st["consensus"]
            row += [str(st["height"]), str(st["peers"]), st["state_root"][:16],
                    f"{c['round']}.{c['step']}", url]
        except WekaError:
            row += ["-", "-", "-", "-", url]
        table.add_row(*row)
    console.print(table)
