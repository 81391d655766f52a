"""Functional test harness: real `wekacoin node` processes on 127.0.0.1, driven over RPC and
the CLI, in the manner of Bitcoin Core's test/functional/test_framework (STYLE.md 9).

    group = NodeGroup.generate(tmp / "net", 4)     # a fresh testnet (wekacoin.node.testnet)
    group.start()                                  # every node, waits until each answers RPC
    group.wait_for_height(5)
    height = group.sync_all()                      # same block and state root everywhere
    group.nodes[2].kill(); group.nodes[2].start()  # SIGKILL, then a restart on its data dir
    code, out, err = group.nodes[0].cli("status", "--json")
    group.stop()                                   # SIGTERM every node (SIGKILL after 30 s)

Rules the harness keeps: it never sleeps blindly (`wait_until` polls a condition and fails
with what it waited for and the tail of every node's log); it stops only processes it started,
by pid; child processes import this checkout's `wekacoin` (PYTHONPATH), not whichever copy
happens to be installed; nothing listens beyond 127.0.0.1.

Node processes and RPC helpers live here; `functional_cli` runs the command line.
"""

from __future__ import annotations

import atexit
import json
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

from wekacoin.crypto.keys import KeyPair, format_address
from wekacoin.errors import WekaError
from wekacoin.keyfile import load_keystore, save_keystore
from wekacoin.node import testnet as tn
from wekacoin.rpc.client import RpcClient
from wekacoin.testing.functional_cli import CliResult, child_env, package_root, run_cli
from wekacoin.types.genesis import Params

__all__ = ["CliResult", "FunctionalNode", "NodeGroup", "child_env", "fresh_address", "package_root",
           "run_cli", "wait_until"]

T = TypeVar("T")

DEFAULT_TIMEOUT = 60.0
POLL_S = 0.25
LOG_TAIL_LINES = 30
WALLETS = ("supplier", "trainer1", "trainer2", "trainer3", "alice", "bob")

_started: dict[int, FunctionalNode] = {}  # every node this process started: logs, atexit guard


# -- waiting -------------------------------------------------------------------------------


def wait_until(predicate: Callable[[], T], *, timeout: float = DEFAULT_TIMEOUT,
               what: str = "a condition", nodes: Iterable[FunctionalNode] | None = None,
               interval: float = POLL_S) -> T:
    """Poll `predicate` until it returns something truthy, and return that.

    A node that does not answer yet (WekaError, OSError from the predicate) counts as "not
    yet". After `timeout` seconds, fail with `what`, the last such error, and the tail of the
    log of `nodes` (default: every running node)."""
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


# -- a network of nodes --------------------------------------------------------------------


class NodeGroup:
    """The nodes of one testnet directory (`wekacoin.node.testnet` layout), plus followers."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.layout = json.loads((self.root / "testnet.json").read_text())
        self.nodes = [FunctionalNode(home) for home in tn.node_homes(self.root)]

    @classmethod
    def generate(cls, root: Path, nodes: int = 4, *, chain_id: str = "wekacoin-functional",
                 wallets: tuple[str, ...] = WALLETS, params: Params = tn.LOCAL_PARAMS) -> NodeGroup:
        """A fresh testnet in `root` (free ports, the fast local parameters), not started."""
        tn.generate(Path(root), nodes, wallets=wallets, params=params, chain_id=chain_id)
        return cls(root)

    def __enter__(self) -> NodeGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def chain_id(self) -> str:
        return self.layout["chain_id"]

    @property
    def password_file(self) -> Path:
        return self.root / "password"

    def wallet_key(self, name: str) -> Path:
        return self.root / "wallets" / f"{name}.key"

    def wallet(self, name: str) -> KeyPair:
        return load_keystore(self.wallet_key(name), tn.PASSWORD)

    def address(self, name: str) -> str:
        """A wallet's address by name, or validator `i`'s as "validator<i>"."""
        if name.startswith("validator"):
            return self.layout["validators"][int(name[9:])]
        return self.layout["wallets"][name]

    def p2p_addr(self, node: FunctionalNode) -> str:
        """`/ip4/127.0.0.1/tcp/<port>/p2p/<peer id>` of a validator, from the others' bootstraps."""
        port = f"/tcp/{node.p2p_port}/"
        for other in self.nodes:
            for addr in other.config()["network"]["bootstrap"]:
                if port in addr:
                    return addr
        raise LookupError(f"no bootstrap entry names {node.name}")

    # -- processes --

    def running(self) -> list[FunctionalNode]:
        return [n for n in self.nodes if n.is_running()]

    def start(self, nodes: Iterable[FunctionalNode] | None = None,
              timeout: float = DEFAULT_TIMEOUT) -> None:
        """Start the nodes (default: all that are not running) and wait until each answers."""
        chosen = [n for n in (self.nodes if nodes is None else nodes) if not n.is_running()]
        for node in chosen:
            node.start(wait=False)
        for node in chosen:
            node.wait_for_rpc(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every running node at once, then wait for each (SIGKILL after `timeout`)."""
        for node in self.nodes:
            if not node.keep:
                node.signal(signal.SIGTERM)
        for node in self.nodes:
            if not node.keep:
                node.wait_for_exit(timeout)

    def add_follower(self, name: str = "follower") -> FunctionalNode:
        """A new node home in the testnet with a fresh key and no stake, that only follows
        the chain (`consensus.validate = false`), bootstrapping from every validator."""
        home = self.root / name
        home.mkdir()
        save_keystore(home / "validator.key", KeyPair.generate(), tn.PASSWORD, cost="interactive")
        p2p, rpc, metrics = tn.free_ports(3)
        (home / "node.toml").write_text(tomli_w.dumps({
            "node": {"data_dir": "data", "genesis": "../genesis.json"},
            "keys": {"keystore": "validator.key", "password_file": "../password"},
            "network": {"listen": f"/ip4/127.0.0.1/tcp/{p2p}",
                        "bootstrap": [self.p2p_addr(n) for n in self.nodes]},
            "rpc": {"bind": "127.0.0.1", "port": rpc, "token_file": "data/rpc.token"},
            "metrics": {"bind": "127.0.0.1", "port": metrics},
            "consensus": {"validate": False},
        }))
        follower = FunctionalNode(home)
        self.nodes.append(follower)
        return follower

    # -- the chain --

    def _chosen(self, nodes: Iterable[FunctionalNode] | None) -> list[FunctionalNode]:
        return self.running() if nodes is None else list(nodes)

    def heights(self, nodes: Iterable[FunctionalNode] | None = None) -> dict[str, int]:
        return {n.name: n.height() for n in self._chosen(nodes)}

    def wait_for_height(self, height: int, nodes: Iterable[FunctionalNode] | None = None,
                        timeout: float = DEFAULT_TIMEOUT) -> None:
        chosen = self._chosen(nodes)
        wait_until(lambda: all(n.height() >= height for n in chosen), timeout=timeout,
                   what=f"height {height} on {', '.join(n.name for n in chosen)}", nodes=chosen)

    def wait_for_blocks(self, count: int, nodes: Iterable[FunctionalNode] | None = None,
                        timeout: float = DEFAULT_TIMEOUT) -> int:
        """Until every chosen node is `count` blocks past the highest tip now; returns that."""
        chosen = self._chosen(nodes)
        target = max(n.height() for n in chosen) + count
        self.wait_for_height(target, chosen, timeout)
        return target

    def sync_all(self, nodes: Iterable[FunctionalNode] | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> int:
        """Wait until every chosen node holds the highest tip seen now, and check they hold
        the same block (hash, state root) there. Returns that common height.

        Blocks keep coming while we look, so "the same height" means: all reached the
        height the leader had when we started, and agree on the block at it."""
        chosen = self._chosen(nodes)
        target = max(n.height() for n in chosen)
        self.wait_for_height(target, chosen, timeout)
        self.assert_same_blocks([target], chosen)
        return target

    def assert_same_blocks(self, heights: Iterable[int],
                           nodes: Iterable[FunctionalNode] | None = None) -> None:
        """Every node holds the same block hash and state root at each height."""
        chosen = self._chosen(nodes)
        for h in heights:
            seen = {n.name: _block_id(n.block(h)) for n in chosen}
            if len(set(seen.values())) != 1:
                lines = "\n".join(f"  {name}: hash {b} state root {r}"
                                  for name, (b, r) in seen.items())
                raise AssertionError(f"the nodes disagree at height {h}:\n{lines}\n"
                                     + log_tails(chosen))

    def log_tails(self, lines: int = LOG_TAIL_LINES) -> str:
        return log_tails(self.nodes, lines)

    def log_marks(self) -> dict[str, int]:
        return {n.name: n.log_mark() for n in self.nodes}

    def assert_not_logged(self, marks: dict[str, int], *needles: str) -> None:
        """No node logged any of `needles` since `marks` (from `log_marks`)."""
        for node in self.nodes:
            text = node.log_text(marks.get(node.name, 0))
            for needle in needles:
                if needle in text:
                    line = next(x for x in text.splitlines() if needle in x)
                    raise AssertionError(f"{node.name} logged {needle!r}: {line}")


def _block_id(block: dict[str, Any]) -> tuple[str, str]:
    return block["hash"], block["state_root"]


def validator_addresses(group: NodeGroup) -> list[str]:
    return list(group.layout["validators"])


def fresh_address() -> str:
    """An address nobody holds a key file for: a recipient that starts at balance 0."""
    return format_address(KeyPair.generate().address)
