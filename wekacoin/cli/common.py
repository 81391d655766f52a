"""What every command shares: where the node and the key are, passwords, and output."""

from __future__ import annotations

import getpass
import itertools
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

from wekacoin.errors import WekaError

if TYPE_CHECKING:  # imported where used: `wekacoin --help` imports no command's dependencies
    from wekacoin.crypto.keys import KeyPair
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
        from wekacoin.rpc.client import RpcClient

        return RpcClient(self.rpc, token=self.token())

    def reader(self) -> ReadClient:
        """A client for commands that only read (see ReadClient)."""
        return ReadClient(self.rpc, token=self.token())

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
        from wekacoin.keyfile import load_keystore

        return load_keystore(self.key, read_password(self.password_file, confirm=False))


class ReadClient:
    """JSON-RPC calls over the standard library's http.client, with RpcClient's errors, for
    the commands that only read (`status`, `block`...): httpx, with httpcore, trio, anyio and
    h2 behind it, takes longer to import than the rest of `wekacoin status` together."""

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        import http.client
        import urllib.parse

        self.url = url
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CliError(f"the RPC URL {url!r} is not an http:// or https:// URL")
        connection = (http.client.HTTPSConnection if parts.scheme == "https"
                      else http.client.HTTPConnection)
        self._http = connection(parts.hostname, parts.port, timeout=timeout)
        self._path = parts.path or "/"
        self._headers = {"Content-Type": "application/json",
                         **({"Authorization": f"Bearer {token}"} if token else {})}
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> Any:
        import http.client

        request = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            self._http.request("POST", self._path, json.dumps(request).encode(), self._headers)
            response = self._http.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException) as e:
            from wekacoin.rpc.client import NodeUnreachable  # the errors import httpx: only here

            self._http.close()
            raise NodeUnreachable(
                f"no node answers at {self.url} ({type(e).__name__})") from None
        try:
            body = json.loads(raw)
            error = body.get("error")
        except (ValueError, AttributeError):
            raise WekaError(f"{self.url} answered HTTP {response.status} without JSON") from None
        if error is not None:
            from wekacoin.rpc.client import RpcCallError

            raise RpcCallError(method, error.get("code", 0), error.get("message", ""),
                               error.get("data"))
        return body["result"]

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ReadClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
