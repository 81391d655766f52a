"""Signing and submitting transactions from the CLI: the key never leaves this process."""

from __future__ import annotations

from typing import Any

import typer

from wekacoin.cli.common import console, settings
from wekacoin.client.chainclient import ChainClient
from wekacoin.crypto.keys import KeyPair
from wekacoin.types.tx import TxBody


def submit(
    ctx: typer.Context, body: TxBody, *, fee: int | None = None, wait: bool = True,
    keypair: KeyPair | None = None,
) -> dict[str, Any]:
    """Sign `body` with the wallet key (`keypair` if it is already open) and submit it;
    optionally wait until it is in a block.

    Returns {"id": hex, "height": int | None}; a refusal is a ClientError with the reason.
    """
    s = settings(ctx)
    keypair = keypair or s.keypair()
    with s.client() as rpc:
        client = ChainClient(rpc, keypair)
        with console.status("waiting for the transaction to be in a block"):
            return client.send(body, fee=fee, wait=wait)
