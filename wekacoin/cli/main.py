"""The `wekacoin` command."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import typer
from rich.text import Text

from wekacoin.cli import competition_cmds, demo_cmd, node_cmds, testnet, wallet
from wekacoin.cli.common import DEFAULT_KEY, DEFAULT_RPC, Settings, errors
from wekacoin.errors import WekaError

app = typer.Typer(
    help="WekaCoin: a cryptocurrency validated by machine-learning competitions.",
    no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
)
app.add_typer(wallet.app, name="wallet")
app.add_typer(testnet.app, name="testnet")
app.add_typer(competition_cmds.task_app, name="task")
app.add_typer(competition_cmds.model_app, name="model")
app.command()(demo_cmd.demo)
app.command()(node_cmds.init)
app.command()(node_cmds.node)
app.command()(node_cmds.status)


@app.callback()
def root(
    ctx: typer.Context,
    rpc: str = typer.Option(DEFAULT_RPC, envvar="WEKACOIN_RPC", help="The node's RPC URL."),
    token_file: Path = typer.Option(
        None, envvar="WEKACOIN_RPC_TOKEN_FILE",
        help="The node's RPC token file (needed to submit transactions and upload blobs).",
    ),
    key: Path = typer.Option(DEFAULT_KEY, envvar="WEKACOIN_KEY", help="Wallet keystore file."),
    password_file: Path = typer.Option(
        None, envvar="WEKACOIN_PASSWORD_FILE", help="File holding the keystore password.",
    ),
) -> None:
    ctx.obj = Settings(rpc=rpc, token_file=token_file, key=key.expanduser(), password_file=password_file)


def main() -> None:
    """Console entry point: errors become one line on stderr and a non-zero exit."""
    try:
        app(standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        errors.print("aborted")
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except WekaError as e:
        fail(str(e), 1)
    except KeyboardInterrupt:
        sys.exit(130)


def fail(message: str, code: int) -> None:
    """`error: <message>` as one line on stderr, then exit: never wrapped at the terminal's
    width, and never read as rich markup (a path or a node's reason may hold brackets)."""
    errors.print(Text.assemble(("error:", "red"), " ", message), soft_wrap=True)
    sys.exit(code)
