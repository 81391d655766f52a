"""`wekacoin testnet up|down|status`: a local network of validator processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from wekacoin.cli.common import CliError, console, print_json
from wekacoin.errors import WekaError

app = typer.Typer(help="A local testnet of validator processes on 127.0.0.1.", no_args_is_help=True)

DIR_OPTION = typer.Option(Path(".testnet"), "--dir", help="Testnet directory.")


@app.command()
def init(
    nodes: int = typer.Option(4, min=1, max=16, help="Number of validators."),
    dir: Path = DIR_OPTION,
    docker: bool = typer.Option(
        False, help="For docker-compose: service names, Kubo sidecars, and a "
                    "docker-compose.yml with a service per node in the testnet directory."),
) -> None:
    """Create a testnet directory (keys, genesis, one node.toml per node) without starting it."""
    from wekacoin.node import testnet as tn

    layout = tn.Layout.docker(nodes) if docker else None
    tn.generate(dir, nodes, layout=layout)
    console.print(f"created a {nodes}-validator testnet in {dir}")
    if docker:
        compose = tn.write_compose_file(dir, nodes)
        console.print(f"start it with: docker compose -f {compose} up --build",
                      markup=False, soft_wrap=True)  # a command to copy: whole, as typed


@app.command()
def up(
    nodes: int = typer.Option(4, min=1, max=16, help="Number of validators (first run only)."),
    dir: Path = DIR_OPTION,
    wait: float = typer.Option(60, help="Seconds to wait until every node makes blocks."),
) -> None:
    """Create the testnet (first time) and start every node that is not running."""
    from wekacoin.node import testnet as tn
    from wekacoin.node.launcher import start_all
    from wekacoin.waiting import WaitTimeout

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
    status(dir, json_out=False)


@app.command()
def down(dir: Path = DIR_OPTION) -> None:
    """Stop every node of the testnet (SIGTERM, then SIGKILL after 30 s)."""
    from wekacoin.node import testnet as tn
    from wekacoin.node.launcher import stop_all

    stopped = stop_all(tn.processes(dir))
    console.print(f"stopped {', '.join(stopped) or 'nothing (none running)'}")


@app.command()
def status(
    dir: Path = DIR_OPTION,
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """One line per node: process, height, peers, state root."""
    from rich.table import Table

    from wekacoin.node import testnet as tn

    rows: list[dict[str, Any]] = []
    for node in tn.processes(dir):
        row: dict[str, Any] = {"node": node.name, "pid": node.pid, "rpc": node.rpc_url,
                               "status": None, "error": None}
        try:
            row["status"] = node.status()
        except WekaError as e:
            row["error"] = str(e)
        rows.append(row)
    if json_out:
        print_json(rows)
        return
    table = Table("node", "pid", "height", "peers", "state root", "round.step", "rpc")
    for row in rows:
        st = row["status"]
        cells = [row["node"], str(row["pid"] or "-")]
        if st is None:
            cells += ["-", "-", "-", "-"]
        else:
            c = st["consensus"]
            cells += [str(st["height"]), str(st["peers"]), st["state_root"][:16],
                      f"{c['round']}.{c['step']}"]
        table.add_row(*cells, row["rpc"])
    console.print(table)
