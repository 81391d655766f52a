"""`wekacoin wallet`: keys, balances and transfers."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from wekacoin.cli.common import (
    CliError,
    console,
    format_amount,
    print_json,
    read_password,
    settings,
)

app = typer.Typer(help="Keys, balances and transfers.", no_args_is_help=True)


@app.command()
def new(
    ctx: typer.Context,
    cost: str = typer.Option("moderate", help="Argon2id cost: moderate, or interactive for tests."),
) -> None:
    """Create a new key in the wallet keystore file (--key)."""
    from wekacoin.crypto.keys import KeyPair, format_address
    from wekacoin.keyfile import save_keystore

    s = settings(ctx)
    if s.key.exists():
        raise CliError(f"{s.key} already exists; use --key to choose another file")
    if cost not in ("moderate", "interactive"):
        raise CliError("--cost is moderate or interactive")
    keypair = KeyPair.generate()
    s.key.parent.mkdir(parents=True, exist_ok=True)
    save_keystore(s.key, keypair, read_password(s.password_file, confirm=True), cost=cost)
    console.print(f"new key in {s.key}")
    console.print(f"address [bold]{format_address(keypair.address)}[/]")


@app.command()
def address(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Print the wallet's address (no password needed)."""
    s = settings(ctx)
    try:
        found = json.loads(Path(s.key).read_text())["address"]
    except (OSError, ValueError, KeyError, TypeError):
        raise CliError(f"no readable keystore at {s.key}") from None
    if json_out:
        print_json({"address": found, "keystore": str(s.key)})
        return
    console.print(found)


@app.command()
def balance(
    ctx: typer.Context,
    who: str = typer.Argument(None, help="An address; default: the wallet's own."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show an account's balance, nonce and stake."""
    from wekacoin.crypto.keys import parse_address

    s = settings(ctx)
    if who is None:
        try:
            who = json.loads(Path(s.key).read_text())["address"]
        except (OSError, ValueError, KeyError):
            raise CliError(
                f"give an address, or a readable keystore with --key ({s.key})"
            ) from None
    parse_address(who)
    with s.reader() as client:
        account = client.call("chain.account", address=who)
    if json_out:
        print_json(account)
        return
    console.print(f"{who}")
    console.print(f"  balance  {format_amount(account['balance'])}")
    console.print(f"  nonce    {account['nonce']}")
    if account.get("stake"):
        console.print(f"  stake    {format_amount(account['stake'])}")


@app.command()
def send(
    ctx: typer.Context,
    to: str = typer.Argument(..., help="Recipient address."),
    amount: int = typer.Argument(..., min=1, help="Amount in base units."),
    fee: int = typer.Option(None, help="Fee; default: the chain's minimum."),
    wait: bool = typer.Option(True, help="Wait until the transfer is final."),
) -> None:
    """Sign a transfer locally and submit it."""
    from wekacoin.cli.transactions import submit
    from wekacoin.crypto.keys import parse_address
    from wekacoin.types.tx import Transfer

    result = submit(ctx, Transfer(parse_address(to), amount), fee=fee, wait=wait)
    outcome = f"final at height {result['height']}" if wait else "submitted"
    console.print(f"transfer {result['id']} {outcome}")


@app.command()
def stake(
    ctx: typer.Context,
    amount: int = typer.Argument(..., min=1, help="Amount to bond."),
    validator_key_file: Path = typer.Option(
        ..., help="The validator node's keystore (`validator.key` in the home `wekacoin init` "
                  "made): its key signs a proof of possession for the wallet's address."),
    validator_password_file: Path = typer.Option(
        None, help="File holding that keystore's password; default: the wallet's password."),
    wait: bool = typer.Option(True, help="Wait until the transaction is in a block."),
) -> None:
    """Bond stake for a validator; it counts for sortition after the chain's look-back.

    The chain accepts a validator key only with the key's signature over the chain's genesis
    hash and the staking address, so the node's keystore must be at hand (its key never leaves
    this process)."""
    from wekacoin.chain.transactions import sign_stake
    from wekacoin.cli.transactions import submit
    from wekacoin.keyfile import load_keystore

    s = settings(ctx)
    if not validator_key_file.expanduser().is_file():
        raise CliError(f"no validator keystore at {validator_key_file}")
    password = read_password(validator_password_file or s.password_file, confirm=False)
    validator = load_keystore(validator_key_file.expanduser(), password)
    wallet = s.keypair()
    with s.client() as rpc:
        genesis_hash = bytes.fromhex(rpc.call("chain.info")["genesis_hash"])
    body = sign_stake(validator, genesis_hash, wallet.address, amount)
    result = submit(ctx, body, wait=wait, keypair=wallet)
    outcome = f"in block {result['height']}" if wait else "submitted"
    console.print(f"stake {result['id']} {outcome}")


@app.command()
def unstake(
    ctx: typer.Context,
    amount: int = typer.Argument(..., min=1, help="Amount to unbond."),
    wait: bool = typer.Option(True, help="Wait until the transaction is in a block."),
) -> None:
    """Unbond stake; it keeps counting (and stays locked) until the look-back has passed."""
    from wekacoin.cli.transactions import submit
    from wekacoin.types.tx import Unstake

    result = submit(ctx, Unstake(amount), wait=wait)
    outcome = f"in block {result['height']}" if wait else "submitted"
    console.print(f"unstake {result['id']} {outcome}")
