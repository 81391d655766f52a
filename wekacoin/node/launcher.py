"""Node processes: `wekacoin node` started in the background for a home directory, and
stopped, killed, paused or restarted. The one place that spawns nodes, for `wekacoin testnet`,
the demo, the benchmarks and the functional-test harness.

A home directory holds node.toml. While its node runs, node.pid holds the pid and node.log
collects its output (appended, one header line per start).

Only processes the launcher started are signalled, by pid: a child of this process, or the
pid in a home's node.pid when that process is `wekacoin node` for that home (a node that an
earlier `wekacoin testnet up` started, now reparented).

Children run the `wekacoin` this process imported: its checkout is put first on PYTHONPATH,
so a node started from a work tree never runs another installed copy.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import wekacoin
from wekacoin.errors import WekaError
from wekacoin.rpc.client import NodeUnreachable, RpcClient
from wekacoin.waiting import WaitTimeout, wait_until

START_TIMEOUT = 60.0
"""Seconds a fresh node gets to answer RPC (it imports, opens its store, binds its ports)."""
STOP_TIMEOUT = 30.0
"""Seconds between SIGTERM and SIGKILL."""
KILL_TIMEOUT = 10.0
LOG_TAIL_LINES = 30

__all__ = [
    "LOG_TAIL_LINES",
    "START_TIMEOUT",
    "STOP_TIMEOUT",
    "LauncherError",
    "NodeExited",
    "NodeProcess",
    "node_env",
    "package_root",
    "start_all",
    "stop_all",
]


class LauncherError(WekaError):
    """A node process that cannot be started or signalled as asked."""


class NodeExited(LauncherError):
    """A node process ended while we waited for it to answer."""


def package_root() -> Path:
    """The directory holding the `wekacoin` package this process imported."""
    return Path(wekacoin.__file__).resolve().parent.parent


def node_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """`base` (default: this process's environment) with this checkout first on PYTHONPATH."""
    env = dict(os.environ if base is None else base)
    paths = [str(package_root())] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


class NodeProcess:
    """The `wekacoin node` process of one home directory (node.toml, node.pid, node.log).

    Made for a home whose node an earlier process started, it finds that node through
    node.pid and can stop it; only a node it started itself reports an exit code."""

    def __init__(self, home: Path, *, name: str | None = None,
                 env: Mapping[str, str] | None = None, module: Sequence[str] = (),
                 prefix: Sequence[str] = ()) -> None:
        """`module`: run `python -m <module and args> --config node.toml` instead of
        `python -m wekacoin node --config node.toml` (the chaos testnet's Byzantine
        validators: `wekacoin.testing.byzantine --behaviour ...`). `prefix`: a command that
        execs the rest (the chaos testnet's `ip netns exec <namespace>`)."""
        self.home = Path(home).resolve()
        self.name = name or self.home.name
        self.env = node_env() if env is None else dict(env)
        self.module = list(module) or ["wekacoin", "node"]
        self.prefix = list(prefix)
        self._proc: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} pid={self.pid}>"

    # -- where things are --

    @property
    def config_path(self) -> Path:
        return self.home / "node.toml"

    @property
    def log_path(self) -> Path:
        return self.home / "node.log"

    @property
    def pid_path(self) -> Path:
        return self.home / "node.pid"

    def config(self) -> dict[str, Any]:
        return tomllib.loads(self.config_path.read_text())

    @property
    def rpc_url(self) -> str:
        rpc = self.config()["rpc"]
        host = rpc.get("bind", "127.0.0.1")
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{rpc['port']}/"

    @property
    def token_file(self) -> Path:
        return self.home / self.config().get("rpc", {}).get("token_file", "data/rpc.token")

    @property
    def token(self) -> str | None:
        """The node's RPC token, once it has written it (at its first start)."""
        try:
            return self.token_file.read_text().strip() or None
        except FileNotFoundError:
            return None

    # -- the process --

    @property
    def pid(self) -> int | None:
        """The running node's pid: our child's, or else the one node.pid names."""
        if self._proc is not None:
            return self._proc.pid if self._proc.poll() is None else None
        return self._recorded_pid()

    def _recorded_pid(self) -> int | None:
        """The pid in node.pid, if that process is `wekacoin node` for this home."""
        try:
            pid = int(self.pid_path.read_text())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        ours = b"wekacoin" in cmdline and bytes(self.config_path) in cmdline
        return pid if ours else None

    def is_running(self) -> bool:
        return self.pid is not None

    @property
    def returncode(self) -> int | None:
        """Our child's exit code once it has ended (None while it runs, or if not our child)."""
        return self._proc.poll() if self._proc is not None else None

    def start(self, *, wait: bool = True, timeout: float = START_TIMEOUT) -> int:
        """Start the node (its output appended to node.log) and record its pid in node.pid;
        with `wait`, return once its RPC answers. Returns the pid."""
        if self.is_running():
            raise LauncherError(f"{self.name} is already running (pid {self.pid})")
        with open(self.log_path, "ab") as log:
            log.write(f"==== launcher: starting {self.name} at {time.strftime('%H:%M:%S')} ====\n"
                      .encode())
            log.flush()
            self._proc = subprocess.Popen(
                [*self.prefix, sys.executable, "-m", *self.module,
                 "--config", str(self.config_path)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env=self.env, cwd=self.home,
            )
        self.pid_path.write_text(f"{self._proc.pid}\n")
        if wait:
            self.wait_for_rpc(timeout)
        return self._proc.pid

    def status(self) -> dict[str, Any]:
        """`node.status` over RPC (it needs no token)."""
        with RpcClient(self.rpc_url, timeout=5.0) as rpc:
            return rpc.call("node.status")

    def check_running(self) -> None:
        """Raise NodeExited unless the node runs."""
        if not self.is_running():
            code = self.returncode
            how = f" with code {code}" if code is not None else ""
            raise NodeExited(f"{self.name} exited{how}; see {self.log_path}")

    def wait_for_rpc(self, timeout: float = START_TIMEOUT) -> None:
        """Until the node answers `node.status`; NodeExited at once if it ends meanwhile."""
        def answers() -> bool:
            self.check_running()
            return self.status() is not None

        wait_until(answers, timeout=timeout, interval=0.1, retry_on=(NodeUnreachable,),
                   what=f"{self.name} to answer RPC at {self.rpc_url} (log: {self.log_path})")

    def signal(self, signum: int) -> None:
        """Send `signum` to the node, if it runs (by its pid; never a process group)."""
        pid = self.pid
        if pid is not None:
            os.kill(pid, signum)

    def terminate(self) -> None:
        """SIGTERM, and SIGCONT so that a paused node handles it too. Does not wait."""
        self.signal(signal.SIGTERM)
        self.signal(signal.SIGCONT)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, then SIGKILL after `timeout` s. Returns the exit code (0: a clean
        shutdown), None if the node was not running or is not our child."""
        self.terminate()
        return self.wait_for_exit(timeout)

    def kill(self) -> int | None:
        """SIGKILL: the node gets no chance to clean up. Returns the exit code (-9)."""
        self.signal(signal.SIGKILL)
        return self.wait_for_exit(KILL_TIMEOUT)

    def pause(self) -> None:
        """SIGSTOP: the node freezes (as in a long GC pause or a suspended VM)."""
        self.signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.signal(signal.SIGCONT)

    def restart(self, *, wait: bool = True, timeout: float = START_TIMEOUT) -> int:
        self.stop()
        return self.start(wait=wait, timeout=timeout)

    def wait_for_exit(self, timeout: float) -> int | None:
        """Until the node has ended, SIGKILLing it after `timeout` s; removes node.pid.
        Returns our child's exit code, else None."""
        if self._proc is not None:
            try:
                code: int | None = self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                code = self._proc.wait(KILL_TIMEOUT)
        else:
            code = None
            pid = self._recorded_pid()
            if pid is not None:
                try:
                    self._wait_gone(timeout)
                except WaitTimeout:
                    os.kill(pid, signal.SIGKILL)
                    self._wait_gone(KILL_TIMEOUT)
        self.pid_path.unlink(missing_ok=True)
        return code

    def _wait_gone(self, timeout: float) -> None:
        wait_until(lambda: self._recorded_pid() is None, timeout=timeout, interval=0.1,
                   what=f"{self.name} to exit")

    # -- its log --

    def log_text(self, since: int = 0) -> str:
        """node.log from character `since` on ("" before the first start)."""
        try:
            return self.log_path.read_text(errors="replace")[since:]
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        text = self.log_text()
        return "\n".join(text.splitlines()[-lines:]) if text else "(no log yet)"


def start_all(nodes: Iterable[NodeProcess], *, wait: bool = True,
              timeout: float = START_TIMEOUT) -> list[str]:
    """Start every node that is not running, all at once; with `wait`, then wait until each
    answers RPC. Returns the names of those it started."""
    chosen = [n for n in nodes if not n.is_running()]
    for node in chosen:
        node.start(wait=False)
    if wait:
        for node in chosen:
            node.wait_for_rpc(timeout)
    return [n.name for n in chosen]


def stop_all(nodes: Iterable[NodeProcess], *, timeout: float = STOP_TIMEOUT) -> list[str]:
    """SIGTERM every running node at once, then wait for each (SIGKILL after `timeout` s).
    Returns the names of those that were running."""
    nodes = list(nodes)
    running = [n.name for n in nodes if n.is_running()]
    for node in nodes:
        node.terminate()
    for node in nodes:  # every one: this also clears the node.pid of a node that crashed
        node.wait_for_exit(timeout)
    return running
