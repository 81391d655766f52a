"""`wekacoin tx ID`, `wekacoin block N|HASH` and `wekacoin validators`: what the chain
holds, as bitcoin-cli's gettransaction / getblock show it."""

from __future__ import annotations

from typing import Any

import typer

from wekacoin.cli.common import CliError, console, print_json, settings


def tx(
    ctx: typer.Context,
    tx_id: str = typer.Argument(..., metavar="ID", help="The transaction id (64 hex digits)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A transaction: the block that holds it, pending, or dropped with the reason."""
    with settings(ctx).reader() as client:
        found = client.call("chain.tx", id=tx_id)
        block = None
        if found is not None and found.get("height") is not None:
            block = client.call("chain.block", height=found["height"], full=False)
    if found is None:
        raise CliError(f"the node knows no transaction {tx_id}")
    if block is not None:
        found["final"] = bool(block.get("final")) and block["hash"] == found["block_hash"]
    if json_out:
        print_json(found)
        return
    if found.get("rejected"):
        console.print(f"transaction {tx_id}: [red]dropped[/] ({found['rejected']})")
        return
    where = "pending in the mempool" if found.get("pending") else (
        f"in block {found['height']} ({'FINAL' if found.get('final') else 'TENTATIVE'}), "
        f"position {found['index']}")
    console.print(f"transaction {found['id']}: {where}")
    console.print(f"  sender {found['sender']}  nonce {found['nonce']}  fee {found['fee']:,}")
    _body(found["body"])


def block(
    ctx: typer.Context,
    which: str = typer.Argument(..., metavar="HEIGHT|HASH",
                                help="A height, or a block hash (64 hex digits)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A block: header, finality, and its transactions."""
    params: dict[str, Any] = {"hash": which} if len(which) == 64 else {"height": _height(which)}
    with settings(ctx).reader() as client:
        found = client.call("chain.block", **params, full=True)
    if json_out:
        print_json(found)
        return
    state = "FINAL" if found.get("final") else "TENTATIVE"
    console.print(f"block {found['height']} {found['hash']} ({state})")
    for name in ("prev_hash", "state_root", "seed", "proposer", "time_ms"):
        if found.get(name) is not None:
            console.print(f"  {name:<11} {found[name]}")
    console.print(f"  {len(found['txs'])} transactions, "
                  f"{len(found.get('meta', {}).get('rankings', []))} rankings")
    for t in found["txs"]:
        console.print(f"  {t['id']}  {t['body'].get('kind', '?'):<16} from {t['sender']}")


def validators(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Validators: stake, storage they proved, and the sortition weight of both."""
    with settings(ctx).reader() as client:
        rows = client.call("validators.list")
    if json_out:
        print_json(rows)
        return
    print_validators(rows)


def print_validators(rows: list[dict[str, Any]]) -> None:
    """A table of `validators.list` rows: stake, credited storage, storage and total weight."""
    from rich.table import Table

    table = Table("validator", "stake", "credited storage", "storage weight", "total weight",
                  "last challenge (epoch)")
    for v in rows:
        last = v.get("last_challenge") or {}
        table.add_row(
            v["address"], f"{v['stake']:,}", f"{v['credited_bytes']:,} B",
            f"{v['storage_weight']:,}", f"{v['weight']:,}",
            f"{last['result']} ({last['epoch']})" if last.get("epoch") else "-",
        )
    console.print(table)


def _height(text: str) -> int:
    try:
        height = int(text)
    except ValueError:
        raise CliError(f"{text!r} is neither a height nor a 64-hex-digit block hash") from None
    if height < 1:
        raise CliError("heights start at 1 (block 0 is the genesis, not stored as a block)")
    return height


def _body(body: dict[str, Any]) -> None:
    for key, value in body.items():
        console.print(f"  {key:<11} {value}")
