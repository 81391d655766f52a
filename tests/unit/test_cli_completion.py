"""Shell completion: `wekacoin --show-completion SHELL` prints the script to source (under the
name `wekacoin`, also when run as `python -m wekacoin`), and the completions the script asks
for name the commands, the lazily loaded groups' commands and the options."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def wekacoin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wekacoin", *args], capture_output=True,
                          text=True, timeout=120, env={**os.environ, **(env or {})})


@pytest.mark.parametrize("shell, expected", [
    ("bash", "complete -o default -F _wekacoin_completion wekacoin"),
    ("zsh", "compdef _wekacoin_completion wekacoin"),
    ("fish", "complete --command wekacoin"),
])
def test_show_completion_prints_the_script(shell, expected):
    # Without typer's test switch, --show-completion takes no value and prints the script for
    # the shell it finds among this process's parents.
    done = wekacoin("--show-completion", shell,
                    env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert done.returncode == 0, done.stderr
    assert expected in done.stdout and "_WEKACOIN_COMPLETE=complete_" in done.stdout


def complete_bash(line: str) -> list[str]:
    """What the bash script gets back for the words of `line` (the last one being typed)."""
    words = line.split(" ")
    done = wekacoin(env={"_WEKACOIN_COMPLETE": "complete_bash", "COMP_WORDS": line,
                         "COMP_CWORD": str(len(words) - 1)})
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_completion_names_commands_subcommands_and_options():
    assert complete_bash("wekacoin sta") == ["status"]
    assert set(complete_bash("wekacoin genesis ")) == {"new", "key-proof", "show"}
    assert "--json" in complete_bash("wekacoin status --j")
    assert {"publish", "list", "show"} <= set(complete_bash("wekacoin task "))  # a lazy group
