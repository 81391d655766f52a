"""The `wekacoin` command.

It starts in a fraction of a second: the command modules import only typer and rich at module
level and their dependencies inside the commands, and the command groups of `LAZY_GROUPS`,
whose modules import scikit-learn and onnx, are imported only when one of their commands runs
(`wekacoin --help` lists them from the one-line help given here).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import typer
from rich.text import Text
from typer.core import TyperGroup

import wekacoin
from wekacoin.cli import chain_cmds, demo_cmd, genesis_cmds, node_cmds, testnet, wallet
from wekacoin.cli.common import DEFAULT_KEY, DEFAULT_RPC, Settings, errors
from wekacoin.errors import WekaError

LAZY_GROUPS = {
    # name: (module, its typer.Typer, the group's one-line help: the Typer's own `help`)
    "task": ("wekacoin.cli.competition_cmds", "task_app",
             "Publish and follow machine-learning tasks."),
    "model": ("wekacoin.cli.competition_cmds", "model_app", "Submit, reveal and run models."),
}


class LazyGroup(TyperGroup):
    """A command group listed by name and help, built from its module's Typer when used."""

    def __init__(self, name: str, help: str, module: str, attribute: str) -> None:
        super().__init__(name=name, help=help)
        self.target = (name, module, attribute)
        self._loaded: Any = None

    def load(self) -> Any:
        """The real click group (importing its module)."""
        if self._loaded is None:
            name, module, attribute = self.target
            # added to a Typer like `app`, as `app.add_typer` would: plain help, no completion
            # options of its own
            holder = typer.Typer(rich_markup_mode=None, add_completion=False)
            holder.add_typer(getattr(importlib.import_module(module), attribute), name=name)
            self._loaded = typer.main.get_group(holder).commands[name]
        return self._loaded

    # Running the group, its --help and shell completion all start with a context: the real
    # group's, so everything after it (subcommands, options, help) is the real group's.
    def make_context(self, info_name: str | None, args: list[str], parent: Any = None,
                     **extra: Any) -> Any:
        return self.load().make_context(info_name, args, parent=parent, **extra)

    def invoke(self, ctx: Any) -> Any:
        return self.load().invoke(ctx)

    # What code that walks the command tree sees (the help of `wekacoin` itself reads only
    # the name and the help above).
    @property
    def commands(self) -> Any:
        return self.load().commands

    @commands.setter
    def commands(self, value: Any) -> None:
        pass  # TyperGroup.__init__ sets an empty one

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        return self.load().get_command(ctx, cmd_name)

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.load().list_commands(ctx))


class RootGroup(TyperGroup):
    """`wekacoin`: the commands registered on `app`, then the lazy groups."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        for name, (module, attribute, help) in LAZY_GROUPS.items():
            self.add_command(LazyGroup(name, help, module, attribute))


app = typer.Typer(
    cls=RootGroup,
    help="WekaCoin: a cryptocurrency validated by machine-learning competitions.",
    no_args_is_help=True, pretty_exceptions_enable=False,
    # Plain help: typer's rich help imports markdown-it and pygments, most of a second on a
    # slow machine. 100 columns: what the one-line helps need.
    rich_markup_mode=None, context_settings={"max_content_width": 100},
)
app.add_typer(wallet.app, name="wallet")
app.add_typer(testnet.app, name="testnet")
app.add_typer(genesis_cmds.app, name="genesis")
app.command()(demo_cmd.demo)
app.command()(node_cmds.init)
app.command()(node_cmds.node)
app.command()(node_cmds.status)
app.command()(node_cmds.peers)
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
        # The name shell completion is installed under, even when run as `python -m wekacoin`.
        app(prog_name="wekacoin", standalone_mode=False)
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
