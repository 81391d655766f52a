"""The read commands that need no node to refuse bad input, and `--version`."""

from __future__ import annotations

import subprocess
import sys

import pytest

import wekacoin
from wekacoin.cli.chain_cmds import _height
from wekacoin.cli.common import CliError


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "wekacoin", "--rpc", "http://127.0.0.1:9/",
                           *args], capture_output=True, text=True, timeout=60)


def test_version_prints_the_package_version_and_exits_zero():
    done = run("--version")
    assert (done.returncode, done.stdout.strip()) == (0, f"wekacoin {wekacoin.__version__}")


def test_a_block_argument_that_is_neither_height_nor_hash_is_one_line():
    done = run("block", "abc")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "neither a height nor" in done.stderr, done.stderr
    with pytest.raises(CliError, match="heights start at 1"):
        _height("0")
    assert _height("17") == 17


def test_a_read_command_without_a_node_is_one_line_naming_the_url():
    done = run("status", "--json")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == "error: no node answers at http://127.0.0.1:9/ (ConnectionRefusedError)\n"
