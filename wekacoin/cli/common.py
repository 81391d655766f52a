"""What every command shares: where the node and the key are, passwords, and output."""

from __future__ import annotations

import getpass
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from wekacoin.crypto.keys import KeyPair
from wekacoin.errors import WekaError
from wekacoin.keyfile import load_keystore
from wekacoin.rpc.client import RpcClient

console = Console(highlight=False)
errors = Console(stderr=True, highlight=False)

DEFAULT_RPC = "http://127.0.0.1:8645/"
DEFAULT_KEY = Path("~/.wekacoin/wallet.key").expanduser()


class CliError(WekaError):
    """A user mistake the command explains in one line."""


@dataclass
class Settings:
    rpc: str
    token_file: Path | None
    key: Path
    password_file: Path | None

    def client(self) -> RpcClient:
        return RpcClient(self.rpc, token=self.token())

    def token(self) -> str | None:
        if os.environ.get("WEKACOIN_RPC_TOKEN"):
            return os.environ["WEKACOIN_RPC_TOKEN"]
        if self.token_file is None:
            return None
        try:
            return self.token_file.read_text().strip()
        except OSError as e:
            raise CliError(
                f"cannot read the RPC token at {self.token_file}: {e.strerror}"
            ) from None

    def keypair(self) -> KeyPair:
        return load_keystore(self.key, read_password(self.password_file, confirm=False))


def settings(ctx: typer.Context) -> Settings:
    return ctx.find_root().obj


def read_password(password_file: Path | None, *, confirm: bool) -> str:
    """From a file, WEKACOIN_PASSWORD, or a hidden prompt (asked twice for a new key)."""
    if password_file is not None:
        try:
            return password_file.read_text(encoding="utf-8").rstrip("\n")
        except OSError as e:
            raise CliError(f"cannot read the password file {password_file}: {e.strerror}") from None
        except UnicodeDecodeError as e:
            raise CliError(f"the password file {password_file} is damaged (not UTF-8 text: "
                           f"{e}): write the keystore's password back into it") from None
    if "WEKACOIN_PASSWORD" in os.environ:
        return os.environ["WEKACOIN_PASSWORD"]
    if not sys.stdin.isatty():
        raise CliError("no password: use --password-file or set WEKACOIN_PASSWORD")
    password = getpass.getpass("Keystore password: ")
    if confirm and getpass.getpass("Again: ") != password:
        raise CliError("the passwords differ")
    return password


def print_json(value: Any) -> None:
    console.print_json(json.dumps(value))


def format_amount(amount: int) -> str:
    return f"{amount:,}"
