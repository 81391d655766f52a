"""Functional test harness, one node: a `wekacoin node` process for a home directory, its
RPC client (with the node's token), metrics, log, and the CLI pointed at it; and
`wait_until`, the harness's only way of waiting. See `wekacoin.testing.functional`.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import tomli_w

from wekacoin.errors import WekaError
from wekacoin.rpc.client import RpcClient
from wekacoin.testing.functional_cli import CliResult, child_env, run_cli

T = TypeVar("T")

DEFAULT_TIMEOUT = 60.0
POLL_S = 0.25
LOG_TAIL_LINES = 30

_started: dict[int, FunctionalNode] = {}  # every node this process started: logs, atexit guard


# -- waiting -------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], T], *, timeout: float = DEFAULT_TIMEOUT,
               what: str = "a condition", nodes: Iterable[FunctionalNode] | None = None,
               interval: float = POLL_S) -> T:
    """Poll `predicate` until it returns something truthy, and return that.

    A node that does not answer yet (WekaError, OSError from the predicate) counts as "not
    yet". After `timeout` seconds, fail with `what`, the last such error, and the tail of the
    log of `nodes` (default: every node this process started)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except (WekaError, OSError, httpx.HTTPError) as e:
            last_error = e
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error})" if last_error is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{detail}\n"
                                 + log_tails(nodes))
        time.sleep(interval)


def log_tails(nodes: Iterable[FunctionalNode] | None = None, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of each node's log, one titled block per node."""
    chosen = started_nodes() if nodes is None else list(nodes)
    return "\n".join(f"---- {n.name} ({n.home}) last {lines} log lines ----\n{n.log_tail(lines)}"
                     for n in chosen)


def started_nodes() -> list[FunctionalNode]:
    """Every node this process started (running or not), in start order."""
    return list(_started.values())


@atexit.register
def _kill_leftovers() -> None:
    """Last resort (an interrupted session): no node outlives the test process."""
    for node in started_nodes():
        if node.keep or not node.is_running():
            continue
        try:
            node.kill()
        except OSError:
            pass


# -- one node ------------------------------------------------------------------------------


class FunctionalNode:
    """One `wekacoin node` process for a home directory (node.toml, keys, data/, node.log)."""

    def __init__(self, home: Path, name: str | None = None) -> None:
        self.home = Path(home).resolve()
        self.name = name or self.home.name
        self.proc: subprocess.Popen[bytes] | None = None
        self.keep = False  # left running at exit (--keep-testnet)
        self._rpc: RpcClient | None = None
        self._rpc_token: str | None = None

    def __repr__(self) -> str:
        return f"<FunctionalNode {self.name} pid={self.pid}>"

    # -- configuration --

    @property
    def config_path(self) -> Path:
        return self.home / "node.toml"

    def config(self) -> dict[str, Any]:
        return tomllib.loads(self.config_path.read_text())

    def update_config(self, section: str, **values: Any) -> None:
        """Change node.toml (takes effect at the next start)."""
        doc = self.config()
        doc.setdefault(section, {}).update(values)
        self.config_path.write_text(tomli_w.dumps(doc))

    @property
    def rpc_url(self) -> str:
        return f"http://127.0.0.1:{self.config()['rpc']['port']}/"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.config()['metrics']['port']}/metrics/"

    @property
    def p2p_port(self) -> int:
        return int(self.config()["network"]["listen"].rsplit("/", 1)[1])

    @property
    def token_file(self) -> Path:
        return self.home / "data" / "rpc.token"

    @property
    def log_path(self) -> Path:
        return self.home / "node.log"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    # -- process --

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, *, wait: bool = True, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Start the process (appending to node.log); with `wait`, until its RPC answers."""
        if self.is_running():
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        with open(self.log_path, "ab") as log:
            log.write(f"==== harness: starting {self.name} at {time.strftime('%H:%M:%S')} ====\n"
                      .encode())
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "wekacoin", "node", "--config", str(self.config_path)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env=child_env(), cwd=self.home,
            )
        (self.home / "node.pid").write_text(f"{self.proc.pid}\n")  # `wekacoin testnet down`
        _started.setdefault(id(self), self)
        self._reset_rpc()
        if wait:
            self.wait_for_rpc(timeout)

    def wait_for_rpc(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        def answers() -> bool:
            if not self.is_running():
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}\n"
                                     + log_tails([self]))
            return self.status() is not None

        wait_until(answers, timeout=timeout, what=f"{self.name} to answer RPC", nodes=[self])

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`; returns the exit code (None if not running)."""
        self.signal(signal.SIGTERM)
        return self.wait_for_exit(timeout)

    def kill(self) -> int | None:
        """SIGKILL: the node gets no chance to clean up."""
        self.signal(signal.SIGKILL)
        return self.wait_for_exit(10.0)

    def restart(self, *, wait: bool = True) -> None:
        self.stop()
        self.start(wait=wait)

    def signal(self, signum: int) -> None:
        if self.is_running():
            os.kill(self.proc.pid, signum)  # our own child, by its pid

    def wait_for_exit(self, timeout: float) -> int | None:
        if self.proc is None:
            return None
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait(10.0)
        (self.home / "node.pid").unlink(missing_ok=True)
        self._reset_rpc()
        return code

    # -- RPC --

    @property
    def token(self) -> str | None:
        try:
            return self.token_file.read_text().strip() or None
        except FileNotFoundError:
            return None

    @property
    def rpc(self) -> RpcClient:
        """A client with this node's token (renewed at every start). The node writes its
        token when it starts serving: a client made before that is replaced once it exists."""
        if self._rpc is None or (self._rpc_token is None and self.token is not None):
            self._reset_rpc()
            self._rpc_token = self.token
            self._rpc = RpcClient(self.rpc_url, token=self._rpc_token, timeout=10.0)
        return self._rpc

    def _reset_rpc(self) -> None:
        if self._rpc is not None:
            self._rpc.close()
        self._rpc = None

    def call(self, method: str, **params: Any) -> Any:
        return self.rpc.call(method, **params)

    def status(self) -> dict[str, Any]:
        return self.call("node.status")

    def height(self) -> int:
        return self.status()["height"]

    def block(self, height: int, full: bool = False) -> dict[str, Any]:
        return self.call("chain.block", height=height, full=full)

    def peer_ids(self) -> set[str]:
        return {p["peer_id"] for p in self.call("node.peers")}

    def balance(self, address: str) -> int:
        return self.call("chain.account", address=address)["balance"]

    def metrics(self) -> dict[str, float]:
        """The Prometheus samples, keyed `name{labels}` as exposed."""
        text = httpx.get(self.metrics_url, timeout=5.0).text
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, _, value = line.rpartition(" ")
                out[key] = float(value)
        return out

    # -- logs and the CLI --

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log yet)"
        return "\n".join(text.splitlines()[-lines:])

    def log_text(self, since: int = 0) -> str:
        """The log from character `since` on (see `log_mark`)."""
        try:
            return self.log_path.read_text(errors="replace")[since:]
        except FileNotFoundError:
            return ""

    def log_mark(self) -> int:
        """Where the log ends now: `log_text(mark)` is what the node logged since."""
        return len(self.log_text())

    def cli(self, *args: str, key: Path | None = None, password_file: Path | None = None,
            timeout: float = 180.0) -> CliResult:
        """`python -m wekacoin --rpc <this node> --token-file <its token> [--key ...] args`."""
        root = ["--rpc", self.rpc_url, "--token-file", str(self.token_file)]
        if key is not None:
            root += ["--key", str(key)]
        if password_file is not None:
            root += ["--password-file", str(password_file)]
        return run_cli(*root, *args, cwd=self.home.parent, timeout=timeout)
