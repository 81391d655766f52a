"""Functional test harness, one node: `FunctionalNode`, a `wekacoin node` process (started,
stopped, killed and paused by `wekacoin.node.launcher`) with its RPC client (with the node's
token), metrics, log, and the CLI pointed at it; and `wait_until`, the harness's way of
waiting. See `wekacoin.testing.functional`.
"""

from __future__ import annotations

import atexit
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import httpx
import tomli_w

from wekacoin import waiting
from wekacoin.errors import WekaError
from wekacoin.node.launcher import LOG_TAIL_LINES, NodeProcess
from wekacoin.rpc.client import RpcClient
from wekacoin.testing.functional_cli import CliResult, child_env, run_cli

T = TypeVar("T")

DEFAULT_TIMEOUT = 60.0
POLL_S = 0.25
SNAPSHOT_TRIES = 20
"""How often a reader of several values tries to read them all at one height."""
NOT_YET = (WekaError, OSError, httpx.HTTPError)
"""What a predicate may raise while a node is still starting or catching up: "not yet"."""

_started: dict[int, FunctionalNode] = {}  # every node this process started: logs, atexit guard


# -- waiting -------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], T | None], *, timeout: float = DEFAULT_TIMEOUT,
               what: str = "a condition", nodes: Iterable[FunctionalNode] | None = None,
               interval: float = POLL_S) -> T:
    """`wekacoin.waiting.wait_until` with the harness's defaults: errors of a node that does
    not answer yet (`NOT_YET`) count as "not yet", and a timeout shows the tail of the log
    of `nodes` (default: every node this process started)."""
    chosen = None if nodes is None else list(nodes)
    return waiting.wait_until(predicate, timeout=timeout, interval=interval, what=what,
                              retry_on=NOT_YET, detail=lambda: log_tails(chosen))


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


class FunctionalNode(NodeProcess):
    """One `wekacoin node` process for a home directory (node.toml, keys, data/, node.log),
    with the environment of the harness's children (`child_env`)."""

    def __init__(self, home: Path, name: str | None = None) -> None:
        super().__init__(home, name=name, env=child_env())
        self.keep = False  # left running at exit (--keep-testnet)
        self._rpc: RpcClient | None = None
        self._rpc_token: str | None = None

    # -- configuration --

    def update_config(self, section: str, **values: Any) -> None:
        """Change node.toml (takes effect at the next start)."""
        doc = self.config()
        doc.setdefault(section, {}).update(values)
        self.config_path.write_text(tomli_w.dumps(doc))

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.config()['metrics']['port']}/metrics/"

    @property
    def p2p_port(self) -> int:
        return int(self.config()["network"]["listen"].rsplit("/", 1)[1])

    # -- process: the launcher's, plus the harness's bookkeeping --

    def start(self, *, wait: bool = True, timeout: float = DEFAULT_TIMEOUT) -> int:
        """Start the process (appending to node.log); with `wait`, until its RPC answers."""
        pid = super().start(wait=False)
        _started.setdefault(id(self), self)
        self._reset_rpc()
        if wait:
            self.wait_for_rpc(timeout)
        return pid

    def wait_for_exit(self, timeout: float) -> int | None:
        code = super().wait_for_exit(timeout)
        self._reset_rpc()
        return code

    # -- RPC --

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

    def balances(self, addresses: Mapping[str, str]) -> tuple[int, dict[str, int]]:
        """The named accounts' balances as of one block: `(height, {name: balance})`. Blocks
        keep coming while we read; a block landing between two reads makes it read them all
        again (at most `SNAPSHOT_TRIES` times)."""
        heights: set[int] = set()
        for _ in range(SNAPSHOT_TRIES):
            read = {name: self.call("chain.account", address=a) for name, a in addresses.items()}
            heights = {r["height"] for r in read.values()}
            if len(heights) <= 1:
                return (heights.pop() if heights else self.height(),
                        {name: r["balance"] for name, r in read.items()})
        raise AssertionError(f"{self.name}: blocks kept landing while reading {len(addresses)} "
                             f"balances ({SNAPSHOT_TRIES} tries, last at {sorted(heights)})")

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
