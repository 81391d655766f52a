"""Functional test harness: real `wekacoin node` processes on 127.0.0.1, driven over RPC and
the CLI, in the manner of Bitcoin Core's test/functional/test_framework (STYLE.md 9).

    group = NodeGroup.generate(tmp / "net", 4)     # a fresh testnet (wekacoin.node.testnet)
    group.start()                                  # every node, waits until each answers RPC
    group.wait_for_height(5)
    height = group.sync_all()                      # same block and state root everywhere
    group.nodes[2].kill(); group.nodes[2].start()  # SIGKILL, then a restart on its data dir
    group.nodes[1].pause(); group.nodes[1].resume()  # SIGSTOP, SIGCONT
    code, out, err = group.nodes[0].cli("status", "--json")
    group.stop()                                   # SIGTERM every node (SIGKILL after 30 s)

Rules the harness keeps: it never sleeps blindly (`wait_until` polls a condition and fails
with what it waited for and the tail of every node's log); it stops only processes it started,
by pid; child processes import this checkout's `wekacoin` (PYTHONPATH), not whichever copy
happens to be installed; nothing listens beyond 127.0.0.1.

Processes are started and signalled by `wekacoin.node.launcher`, as for `wekacoin testnet`
and the demo. `NodeGroup` (a testnet directory's nodes) lives here, `FunctionalNode` (one
process) and `wait_until` in `functional_node`, the command line in `functional_cli`, hostile
libp2p hosts in `functional_gossip`; import them all from here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import tomli_w

from wekacoin.crypto.keys import KeyPair, format_address
from wekacoin.keyfile import load_keystore, save_keystore
from wekacoin.node import testnet as tn
from wekacoin.node.launcher import start_all, stop_all
from wekacoin.testing.functional_cli import CliResult, child_env, package_root, run_cli
from wekacoin.testing.functional_node import (
    DEFAULT_TIMEOUT,
    LOG_TAIL_LINES,
    SNAPSHOT_TRIES,
    FunctionalNode,
    log_tails,
    started_nodes,
    wait_until,
)
from wekacoin.types.genesis import Params

__all__ = [
    "LOG_TAIL_LINES",
    "CliResult",
    "FunctionalNode",
    "NodeGroup",
    "child_env",
    "fresh_address",
    "package_root",
    "run_cli",
    "started_nodes",
    "wait_until",
]

WALLETS = ("supplier", "trainer1", "trainer2", "trainer3", "alice", "bob")


# -- a network of nodes --------------------------------------------------------------------


class NodeGroup:
    """The nodes of one testnet directory (`wekacoin.node.testnet` layout), plus followers."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).resolve()
        self.layout = json.loads((self.root / "testnet.json").read_text())
        self.nodes = [FunctionalNode(home) for home in tn.node_homes(self.root)]

    @classmethod
    def generate(cls, root: Path, nodes: int = 4, *, chain_id: str = "wekacoin-functional",
                 wallets: tuple[str, ...] = WALLETS, params: Params | None = None) -> NodeGroup:
        """A fresh testnet in `root` (free ports, the fast local parameters for `nodes`), not
        started."""
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
        start_all(self.nodes if nodes is None else nodes, timeout=timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM every running node at once, then wait for each (SIGKILL after `timeout`);
        nodes marked `keep` are left running."""
        stop_all([n for n in self.nodes if not n.keep], timeout=timeout)

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

    def balances_at_one_height(
        self, addresses: Mapping[str, str], nodes: Iterable[FunctionalNode] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> tuple[int, list[dict[str, int]]]:
        """Every chosen node's balances of the named accounts, all as of one height:
        `(height, [balances per node])`. A node a block ahead of the others makes them catch
        up and everyone read again (at most `SNAPSHOT_TRIES` times)."""
        chosen = self._chosen(nodes)
        heights: set[int] = set()
        for _ in range(SNAPSHOT_TRIES):
            read = [n.balances(addresses) for n in chosen]
            heights = {h for h, _ in read}
            if len(heights) == 1:
                return heights.pop(), [b for _, b in read]
            self.wait_for_height(max(heights), chosen, timeout)
        raise AssertionError(f"blocks kept landing while reading balances on "
                             f"{', '.join(n.name for n in chosen)} ({SNAPSHOT_TRIES} tries, last "
                             f"at heights {sorted(heights)})")

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


def fresh_address() -> str:
    """An address nobody holds a key file for: a recipient that starts at balance 0."""
    return format_address(KeyPair.generate().address)
