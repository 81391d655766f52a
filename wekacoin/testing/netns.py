"""Network partitions for the chaos testnet: one network namespace per node, two bridges.

Each node runs in its own namespace (`ip netns exec`) with one veth link, addressed
10.<net>.0.<i+1>/24. The link's host end sits on bridge A or bridge B; the runner's own
namespace has 10.<net>.0.254 on bridge A, so it reaches every node on A (RPC, the
competition's clients) and none on B. A partition moves the minority's links to bridge B:
the kernel then drops every packet between the sides, TCP connections included, whatever
addresses the nodes learned from each other (a user-space proxy can be bypassed that way).
Healing moves them back.

With `isolated`, the nodes' bridge ports reach only the runner's address, never each other:
the chaos runner's link relays (`wekacoin.testing.links`) then carry, and delay, all traffic
between nodes (this machine's kernel has no netem qdisc to delay it instead).

It needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2's `ip` and `bridge`;
`unavailable()` says why not, and the chaos runner then schedules process faults only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable, Sequence

from wekacoin.errors import WekaError


class NetLabError(WekaError):
    """A namespace, link or bridge that could not be made or changed."""


def _ip(*args: str, netns: str | None = None) -> None:
    cmd = ["ip", *(["netns", "exec", netns, "ip"] if netns else []), *args]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise NetLabError(f"`{' '.join(cmd)}` failed: {done.stderr.strip()}")


def unavailable() -> str | None:
    """Why partitions cannot be made here, or None when they can."""
    if shutil.which("ip") is None or shutil.which("bridge") is None:
        return "iproute2 (`ip`, `bridge`) is not installed"
    if hasattr(os, "geteuid") and os.geteuid() != 0:
        return "network namespaces need root"
    probe = f"wkprobe{os.getpid()}"
    try:
        _ip("netns", "add", probe)
    except (NetLabError, OSError) as e:
        return f"cannot create a network namespace: {e}"
    try:
        _ip("netns", "del", probe)
    except NetLabError:
        pass
    return None


class NetLab:
    """`nodes` namespaces on two bridges; see the module docstring."""

    def __init__(self, nodes: int, *, net: int | None = None, tag: str | None = None,
                 isolated: bool = False) -> None:
        """`isolated`: the nodes' bridge ports reach only the runner's address, never each
        other (traffic between nodes then goes through the runner's link relays)."""
        if not 1 <= nodes <= 250:
            raise ValueError("1 to 250 nodes")
        self.nodes = nodes
        self.net = 100 + os.getpid() % 100 if net is None else net
        """The second byte of the addresses: by pid, so that two runs at once do not clash."""
        self.tag = tag or f"wk{os.getpid() % 10_000}"
        self.bridges = (f"{self.tag}a", f"{self.tag}b")
        self.namespaces = [f"{self.tag}n{i}" for i in range(nodes)]
        self._links = [f"{self.tag}v{i}" for i in range(nodes)]
        self.side_b: frozenset[int] = frozenset()
        self.isolated = isolated
        self._made = False

    def host(self, i: int) -> str:
        """Node i's address."""
        return f"10.{self.net}.0.{i + 1}"

    @property
    def runner_host(self) -> str:
        return f"10.{self.net}.0.254"

    def __enter__(self) -> NetLab:
        self.create()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create(self) -> None:
        self._made = True
        try:
            for bridge in self.bridges:
                _ip("link", "add", bridge, "type", "bridge")
                _ip("link", "set", bridge, "up")
            _ip("addr", "add", f"{self.runner_host}/24", "dev", self.bridges[0])
            for i, (ns, link) in enumerate(zip(self.namespaces, self._links, strict=True)):
                _ip("netns", "add", ns)
                _ip("link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", ns)
                _ip("link", "set", link, "master", self.bridges[0], "up")
                self._isolate(link)
                _ip("addr", "add", f"{self.host(i)}/24", "dev", "eth0", netns=ns)
                _ip("link", "set", "eth0", "up", netns=ns)
                _ip("link", "set", "lo", "up", netns=ns)
        except BaseException:
            self.close()
            raise

    def command(self, i: int) -> Sequence[str]:
        """The prefix that runs a program in node i's namespace (it execs: same pid)."""
        return ("ip", "netns", "exec", self.namespaces[i])

    def split(self, side_b: Iterable[int]) -> None:
        """Cut the nodes in `side_b` off from the others (and from the runner)."""
        side = frozenset(side_b)
        for i in range(self.nodes):
            bridge = self.bridges[1] if i in side else self.bridges[0]
            _ip("link", "set", self._links[i], "master", bridge)
            self._isolate(self._links[i])
        self.side_b = side

    def _isolate(self, link: str) -> None:
        if not self.isolated:
            return
        cmd = ["bridge", "link", "set", "dev", link, "isolated", "on"]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise NetLabError(f"`{' '.join(cmd)}` failed: {done.stderr.strip()}")

    def heal(self) -> None:
        self.split(())

    def close(self) -> None:
        """Remove every namespace (its veth goes with it) and both bridges; idempotent."""
        if not self._made:
            return
        for ns in self.namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        for name in (*self._links, *self.bridges):
            subprocess.run(["ip", "link", "del", name], capture_output=True, timeout=30)
        self._made = False
