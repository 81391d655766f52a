"""Signing and submitting transactions from the CLI: the key never leaves this process."""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.progress import Progress, SpinnerColumn, TextColumn

from wekacoin.chain.transactions import sign_tx
from wekacoin.cli.common import CliError, console, settings
from wekacoin.crypto.keys import format_address
from wekacoin.rpc.client import RpcCallError
from wekacoin.types.codec import encode
from wekacoin.types.tx import TxBody

WAIT_TIMEOUT_S = 120


def submit(ctx: typer.Context, body: TxBody, *, fee: int | None = None, wait: bool = True) -> dict[str, Any]:
    """Sign `body` with the wallet key and submit it; optionally wait until it is in a block.

    Returns {"id": hex, "height": int | None}.
    """
    s = settings(ctx)
    keypair = s.keypair()
    with s.client() as client:
        info = client.call("chain.info")
        account = client.call("chain.account", address=format_address(keypair.address))
        tx = sign_tx(
            keypair, bytes.fromhex(info["genesis_hash"]), account["next_nonce"],
            info["params"]["min_tx_fee"] if fee is None else fee, body,
        )
        try:
            tx_id = client.call("tx.submit", tx=encode(tx).hex())["id"]
        except RpcCallError as e:
            raise CliError(f"the node refused the transaction: {e.message}") from None
        if not wait:
            return {"id": tx_id, "height": None}
        return {"id": tx_id, "height": wait_for_tx(client, tx_id)}


def wait_for_tx(client, tx_id: str, timeout_s: float = WAIT_TIMEOUT_S) -> int:
    deadline = time.monotonic() + timeout_s
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=console,
                  transient=True) as progress:
        progress.add_task(f"waiting for {tx_id[:16]}… to be final", total=None)
        while time.monotonic() < deadline:
            found = client.call("chain.tx", id=tx_id)
            if found is not None and found.get("height") is not None:
                return found["height"]
            if found is not None and found.get("rejected"):
                raise CliError(f"transaction {tx_id} was dropped: {found['rejected']}")
            time.sleep(0.25)
    raise CliError(f"transaction {tx_id} is not final after {timeout_s:.0f} s (it may still be)")
