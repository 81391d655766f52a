"""`wekacoin genesis new|key-proof|show`: make a new chain's genesis file and read one.

A genesis stake names the validator key that speaks for it. On a running chain a Stake
carries the key's proof of possession over the genesis hash, which a genesis cannot hold (its
hash covers its stakes), so the genesis file itself carries none; `genesis new` checks
possession instead before it writes a stake: it opens the validator's keystore (the operator
holds the key), or checks a key proof the validator's operator made with `genesis key-proof`:
the key's signature over `genesis_key_message(chain id, staking address)`. So no genesis
gives stake to a mistyped key that nobody holds, which would be committee weight that never
votes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from wekacoin.cli.common import CliError, console, print_json, read_password, settings

if TYPE_CHECKING:
    from wekacoin.types.genesis import Genesis

app = typer.Typer(help="Make a new chain's genesis file, or show one.", no_args_is_help=True)

GENESIS_KEY_DOMAIN = b"wekacoin/genesis-validator-key/v1"


def genesis_key_message(chain_id: str, staker: bytes) -> bytes:
    """What a genesis key proof signs: the validator key consents to speak for the genesis
    stake of the account `staker` (20-byte address) on the chain named `chain_id`."""
    cid = chain_id.encode()
    return GENESIS_KEY_DOMAIN + bytes([len(cid)]) + cid + staker


@app.command()
def new(
    ctx: typer.Context,
    chain_id: str = typer.Option(..., help="The chain's name: 1-64 letters, digits, '-_.'."),
    account: list[str] = typer.Option(
        [], metavar="ADDRESS|KEYFILE=BALANCE",
        help="An initial balance (repeatable): an address, or a keystore file whose address "
             "is read without its password."),
    stake: list[str] = typer.Option(
        [], metavar="KEYFILE|PROOF=AMOUNT",
        help="A validator's bonded stake (repeatable): its keystore (opened with the password: "
             "the stake is the key's own account's), or a key proof file from `wekacoin "
             "genesis key-proof` (the stake is the proof's account's)."),
    params: Path = typer.Option(
        None, help="TOML or JSON file of protocol parameters (a table of Params fields); the "
                   "others keep their defaults."),
    time_ms: int = typer.Option(
        None, min=0, help="Genesis time, milliseconds since 1970; default: now."),
    out: Path = typer.Option(Path("genesis.json"), "--out", "-o", help="Where to write it."),
    force: bool = typer.Option(False, help="Overwrite --out if it exists."),
    password_file: Path = typer.Option(
        None, help="File holding the validator keystores' password; default: the global "
                   "--password-file, then WEKACOIN_PASSWORD."),
) -> None:
    """Write a new chain's genesis file, validated by the chain's own genesis rules."""
    from wekacoin.chain.errors import GenesisError
    from wekacoin.chain.genesis import genesis_from_dict, genesis_to_json, validate_genesis
    from wekacoin.crypto.keys import format_address

    if out.exists() and not force:
        raise CliError(f"{out} already exists (use --force to overwrite it)")
    if not stake:
        raise CliError("a chain needs at least one validator: give --stake")
    doc: dict[str, Any] = {
        "chain_id": chain_id,
        "time_ms": int(time.time() * 1000) if time_ms is None else time_ms,
        "accounts": [{"address": _account_address(spec), "balance": amount}
                     for spec, amount in map(_split_amount, account)],
        "stakes": [],
        "params": {} if params is None else _read_params(params),
    }
    password = None
    for spec, amount in map(_split_amount, stake):
        if _is_key_proof(spec):
            address, key = _check_key_proof(Path(spec), chain_id)
        else:
            if password is None:
                password = read_password(password_file or settings(ctx).password_file,
                                         confirm=False)
            address, key = _open_validator(Path(spec), password)
        doc["stakes"].append({"address": format_address(address), "amount": amount,
                              "validator_key": key.hex()})
    try:
        genesis = genesis_from_dict(doc)
        validate_genesis(genesis)
    except GenesisError as e:
        raise CliError(f"that genesis would be invalid: {e}") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(genesis_to_json(genesis))
    console.print(f"wrote {out}: chain {genesis.chain_id}, genesis hash {genesis.hash.hex()}")
    console.print(f"  {len(genesis.accounts)} accounts, {len(genesis.stakes)} validators "
                  f"(total stake {sum(s.amount for s in genesis.stakes):,})")


@app.command("key-proof")
def key_proof(
    ctx: typer.Context,
    key_file: Path = typer.Option(
        ..., help="The validator node's keystore (`validator.key` of `wekacoin init`)."),
    chain_id: str = typer.Option(..., help="The chain id the genesis will have."),
    address: str = typer.Option(
        None, help="The staking account; default: the validator key's own address."),
    out: Path = typer.Option(None, "--out", "-o", help="Write the proof here (default: stdout)."),
    password_file: Path = typer.Option(
        None, help="File holding the keystore's password; default: the global --password-file, "
                   "then WEKACOIN_PASSWORD."),
) -> None:
    """Sign a proof that a validator key speaks for an account's genesis stake: give the file
    to whoever makes the genesis (`genesis new --stake PROOF=AMOUNT`); the key stays here."""
    from wekacoin.crypto.keys import format_address, parse_address
    from wekacoin.keyfile import load_keystore

    validator = load_keystore(
        key_file, read_password(password_file or settings(ctx).password_file, confirm=False))
    staker = validator.address if address is None else parse_address(address)
    proof = {
        "chain_id": chain_id,
        "address": format_address(staker),
        "validator_key": validator.public_key.hex(),
        "proof": validator.sign(genesis_key_message(chain_id, staker)).hex(),
    }
    text = json.dumps(proof, indent=2) + "\n"
    if out is None:
        print(text, end="")
    else:
        out.write_text(text)
        console.print(f"wrote the key proof of {proof['validator_key']} for "
                      f"{proof['address']} on {chain_id} to {out}")


@app.command()
def show(
    path: Path = typer.Argument(Path("genesis.json"), help="The genesis file."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """A genesis file, checked: chain id, genesis hash, balances, stakes, changed params."""
    import dataclasses

    from wekacoin.chain.genesis import load_genesis
    from wekacoin.crypto.keys import format_address
    from wekacoin.types.genesis import Params

    genesis = load_genesis(path)
    if json_out:
        print_json(genesis_summary(genesis))
        return
    console.print(f"[bold]{genesis.chain_id}[/] genesis hash {genesis.hash.hex()}")
    console.print(f"  time_ms     {genesis.time_ms}")
    for a in genesis.accounts:
        console.print(f"  account     {format_address(a.address)}  {a.balance:,}")
    for s in genesis.stakes:
        console.print(f"  stake       {format_address(s.address)}  {s.amount:,}  "
                      f"key {s.validator_key.hex()}")
    defaults = Params()
    for f in dataclasses.fields(Params):
        if getattr(genesis.params, f.name) != getattr(defaults, f.name):
            console.print(f"  param       {f.name} = {getattr(genesis.params, f.name)}"
                          f" (default {getattr(defaults, f.name)})")


def genesis_summary(genesis: Genesis) -> dict[str, Any]:
    """The genesis file's document with its hash and totals."""
    from wekacoin.chain.genesis import genesis_to_json

    return {"hash": genesis.hash.hex(), **json.loads(genesis_to_json(genesis)),
            "total_balance": sum(a.balance for a in genesis.accounts),
            "total_stake": sum(s.amount for s in genesis.stakes)}


def _split_amount(spec: str) -> tuple[str, int]:
    what, sep, amount = spec.rpartition("=")
    if not sep or not what:
        raise CliError(f"{spec!r}: expected WHAT=AMOUNT")
    try:
        value = int(amount)
    except ValueError:
        raise CliError(f"{spec!r}: the amount {amount!r} is not a whole number") from None
    if value < 0:
        raise CliError(f"{spec!r}: the amount is negative")
    return what, value


def _account_address(spec: str) -> str:
    """An address as given, or the address a keystore file states (no password needed)."""
    from wekacoin.crypto.keys import AddressError, parse_address

    try:
        parse_address(spec)
        return spec
    except AddressError:
        pass
    path = Path(spec)
    if not path.is_file():
        raise CliError(f"--account {spec}: neither an address nor a keystore file")
    try:
        address = json.loads(path.read_text())["address"]
        parse_address(address)
        return str(address)
    except (OSError, ValueError, KeyError, TypeError, AddressError):
        raise CliError(f"--account {spec}: not a keystore file (no address in it)") from None


def _is_key_proof(spec: str) -> bool:
    try:
        doc = json.loads(Path(spec).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and "proof" in doc


def _check_key_proof(path: Path, chain_id: str) -> tuple[bytes, bytes]:
    """(staking address, validator key) of a key proof file, checked for this chain."""
    from wekacoin.crypto.keys import AddressError, parse_address, verify_signature

    doc = json.loads(path.read_text())
    try:
        staker = parse_address(doc["address"])
        key = bytes.fromhex(doc["validator_key"])
        signature = bytes.fromhex(doc["proof"])
        proof_chain = doc["chain_id"]
    except (KeyError, TypeError, ValueError, AddressError) as e:
        raise CliError(f"the key proof {path} is damaged ({e}): make it again with "
                       "`wekacoin genesis key-proof`") from None
    if proof_chain != chain_id:
        raise CliError(f"the key proof {path} is for chain {proof_chain!r}, not {chain_id!r}")
    if len(key) != 32 or not verify_signature(key, genesis_key_message(chain_id, staker),
                                              signature):
        raise CliError(f"the key proof {path} is not its validator key's signature for "
                       f"{doc['address']} on {chain_id}")
    return staker, key


def _open_validator(path: Path, password: str) -> tuple[bytes, bytes]:
    """(address, public key) of a validator keystore, opened: proof that its key is held."""
    from wekacoin.keyfile import load_keystore

    if not path.is_file():
        raise CliError(f"--stake {path}: no such keystore or key proof file")
    key = load_keystore(path, password)
    return key.address, key.public_key


def _read_params(path: Path) -> dict[str, Any]:
    """The parameter table of a TOML or JSON file (JSON if it starts with '{')."""
    import tomllib

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise CliError(f"cannot read the params file {path}: {e}") from None
    try:
        if text.lstrip().startswith("{"):
            doc = json.loads(text)
        else:
            doc = tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as e:
        raise CliError(f"the params file {path} is neither JSON nor TOML: {e}") from None
    if isinstance(doc, dict) and set(doc) == {"params"}:
        doc = doc["params"]  # a [params] table, as in a genesis file
    if not isinstance(doc, dict):
        raise CliError(f"the params file {path} must hold a table of parameters")
    return doc
