"""Running `python -m wekacoin ...` the way a user does, for the functional tests.

Child processes (the CLI and the nodes) get PYTHONPATH pointing at the checkout this process
imported `wekacoin` from, so a test of a work tree never runs another copy's code, and none of
the WEKACOIN_* variables of the caller's shell (they would change the CLI's defaults).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wekacoin.node.launcher import node_env, package_root

__all__ = ["CliResult", "child_env", "package_root", "run_cli"]


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The launcher's `node_env` (this checkout first on PYTHONPATH) without the caller's
    WEKACOIN_* variables."""
    env = node_env({k: v for k, v in os.environ.items() if not k.startswith("WEKACOIN_")})
    env["COLUMNS"] = "100"  # what a terminal-less rich console assumes anyway, made explicit
    env.update(extra or {})
    return env


@dataclass(frozen=True)
class CliResult:
    code: int
    stdout: str
    stderr: str

    def __iter__(self) -> Iterator[object]:  # `code, out, err = node.cli(...)`
        return iter((self.code, self.stdout, self.stderr))

    def json(self) -> Any:
        return json.loads(self.stdout)

    def check(self) -> CliResult:
        """Fail with the command's output unless it exited 0."""
        if self.code != 0:
            raise AssertionError(f"the command exited {self.code}\nstdout:\n{self.stdout}\n"
                                 f"stderr:\n{self.stderr}")
        return self


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 180.0,
            env: dict[str, str] | None = None) -> CliResult:
    """`python -m wekacoin *args` with no stdin; returns (exit code, stdout, stderr)."""
    done = subprocess.run(
        [sys.executable, "-m", "wekacoin", *args], capture_output=True, text=True,
        stdin=subprocess.DEVNULL, timeout=timeout, cwd=cwd, env=child_env(env), check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)
