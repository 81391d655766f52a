"""The `wekacoin` command."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.text import Text

import wekacoin
from wekacoin.cli import chain_cmds, competition_cmds, demo_cmd, node_cmds, testnet, wallet
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
app.command()(chain_cmds.tx)
app.command()(chain_cmds.block)
app.command()(chain_cmds.validators)


def _version(value: bool) -> None:
    if value:
        print(f"wekacoin {wekacoin.__version__}")
        raise typer.Exit()


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
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    ctx.obj = Settings(
        rpc=rpc, token_file=token_file, key=key.expanduser(), password_file=password_file
    )


# The exceptions of the click that typer runs on: click's own, or the copy that typer >= 0.2x
# vendors (typer._click), whose classes are not the `click` package's.
_click = sys.modules[typer.BadParameter.__module__]
_NoArgsIsHelp = getattr(_click, "NoArgsIsHelpError", ())  # click >= 8.2: a group run bare


def main() -> None:
    """Console entry point: errors become one line on stderr and a non-zero exit."""
    try:
        app(standalone_mode=False)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        errors.print("aborted")
        sys.exit(130)
    except _NoArgsIsHelp as e:
        e.show()  # the group's help
        sys.exit(e.exit_code)
    except _click.ClickException as e:
        ctx = getattr(e, "ctx", None)
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        fail(e.format_message().rstrip(".") + hint, e.exit_code)
    except WekaError as e:
        fail(str(e), 1)
    except KeyboardInterrupt:
        sys.exit(130)


def fail(message: str, code: int) -> None:
    """`error: <message>` as one line on stderr, then exit: never wrapped at the terminal's
    width, and never read as rich markup (a path or a node's reason may hold brackets)."""
    errors.print(Text.assemble(("error:", "red"), " ", message), soft_wrap=True)
    sys.exit(code)
