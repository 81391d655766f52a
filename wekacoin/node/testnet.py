"""Local testnets: generate N validators (keys, genesis, node.toml each), wait for them to
make blocks.

Layout of a testnet directory:

    password                 keystore password of every key in the testnet
    genesis.json             validators' stakes and balances, funded wallets, fast params
    wallets/<name>.key       funded wallets (supplier, trainers...) for users and the demo
    node<i>/node.toml        the node's config (ports, bootstrap peers: every other node)
    node<i>/validator.key    the node's key
    node<i>/data/            its chain store, blobs, RPC token
    node<i>/node.pid, node.log   while it runs, for `down` and debugging
    docker-compose.yml       with --docker: a service per node and its Kubo sidecar

The processes themselves are started and stopped by `wekacoin.node.launcher`.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import tomli_w

from wekacoin.chain.genesis import genesis_to_json
from wekacoin.crypto.keys import KeyPair, format_address
from wekacoin.errors import WekaError
from wekacoin.keyfile import save_keystore
from wekacoin.node.launcher import NodeProcess
from wekacoin.rpc.client import NodeUnreachable
from wekacoin.types.genesis import Genesis, GenesisAccount, GenesisStake, Params
from wekacoin.waiting import wait_until

PASSWORD = "wekacoin-testnet"
KUBO_IMAGE = "ipfs/kubo:v0.32.1"
RPC_PORT, METRICS_PORT = 8645, 9645
VALIDATOR_BALANCE = 10**9
VALIDATOR_STAKE = 10**6
WALLET_BALANCE = 10**9

# A local network answers in milliseconds: timeouts of a few hundred ms keep rounds short,
# and task windows of a dozen or so blocks (about a second each) let a whole competition run
# in a couple of minutes. The windows leave room for a loaded machine: a supplier's training
# reveal (train and score the baseline, upload, then every node re-scores it before relaying)
# took more than 8 blocks on 2 busy cores.
# Storage weight is on at 2^19 per MiB: 2 MiB proven and held alone weigh as much as
# VALIDATOR_STAKE, so the demo's data and models move the weights visibly while stake stays
# most of every validator's weight. Storage weight is the volatile part (a validator that
# restarts misses a challenge and loses all of it for an epoch or two), and a 4-validator
# network with one validator down is already near the step threshold: were storage most of
# the weight, one more validator's restart would stall it. Up to 4 MiB of chain data (the
# whole test suite's tasks make about 1.3 MiB) the margin holds (docs/protocol.md,
# "Liveness"). An epoch of 10 blocks and a 6-block answer window show challenges a few
# times per competition.
LOCAL_PARAMS = Params(
    min_training_period=20, test_split_delay=2, training_reveal_window=16, test_reveal_window=12,
    upload_window=12, evaluation_window=12, settlement_window=40, stake_lookback=5, min_groups=5,
    settlement_reward=1_000_000, lambda_priority_ms=300, lambda_stepvar_ms=200,
    lambda_block_ms=3_000, lambda_step_ms=3_000, min_participation_fee=100,
    storage_weight_per_mib=2**19, storage_epoch=10, storage_response_window=6,
    storage_challenges=1,
)


PROPOSAL_WINDOW_MS_PER_EXTRA_NODE = 125


def local_params(nodes: int) -> Params:
    """LOCAL_PARAMS for `nodes` validators on one machine: past 4, every node's proposal
    window (lambda_priority) grows by PROPOSAL_WINDOW_MS_PER_EXTRA_NODE ms each.

    All the processes share the machine's cores, so every gossip hop and every block check
    slows as nodes are added, and a proposal reaches fewer nodes within a fixed window. Nodes
    that have seen different proposals at the window's end split their first votes, the
    Reduction falls back to the empty block, and under load a testnet decides nothing else.
    Measured with bench/testnet.py --nodes 8 --quick on 2 cores, 8 tx/s: with 0.5 s, two
    runs of five committed no transfer in 30 s and the others took 5-16 s (p50); with 1 s,
    five of five committed every transfer, p50 3.7-6.0 s, every block FINAL."""
    extra = max(0, nodes - 4) * PROPOSAL_WINDOW_MS_PER_EXTRA_NODE
    return replace(LOCAL_PARAMS, lambda_priority_ms=LOCAL_PARAMS.lambda_priority_ms + extra)


class TestnetError(WekaError):
    """A testnet directory that cannot be created, started or stopped."""


@dataclass(frozen=True)
class NodePorts:
    p2p: int
    rpc: int
    metrics: int


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1 (held open together so none repeats)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass(frozen=True)
class Layout:
    """Where the nodes of a testnet listen and how they find each other."""

    ports: list[NodePorts]
    listen_host: str = "127.0.0.1"
    peer_hosts: list[str] | None = None
    """Multiaddr prefix peers dial for node i ("/ip4/127.0.0.1", "/dns4/node0"...)."""
    rpc_bind: str = "127.0.0.1"
    kubo: list[str] | None = None
    """Kubo API multiaddr per node (blob backend "kubo"); None: the embedded blob store."""
    hosts: list[str] | None = None
    """An IPv4 address per node that it listens, serves RPC and is dialled on (the chaos
    testnet's network namespaces); None: `listen_host`, `rpc_bind` and `peer_hosts`."""
    dial: dict[tuple[int, int], str] | None = None
    """(j, i) -> the "/ip4/<host>/tcp/<port>" node j dials node i at, when not node i's own
    address (the chaos testnet's link relays)."""

    @classmethod
    def on_hosts(cls, hosts: list[str]) -> Layout:
        """Node i alone on hosts[i]: the same ports on every host."""
        p2p, rpc, metrics = free_ports(3)
        return cls([NodePorts(p2p, rpc, metrics)] * len(hosts), hosts=list(hosts))

    def listen(self, i: int) -> str:
        return self.hosts[i] if self.hosts else self.listen_host

    def rpc_host(self, i: int) -> str:
        return self.hosts[i] if self.hosts else self.rpc_bind

    def peer_prefix(self, i: int) -> str:
        if self.hosts:
            return f"/ip4/{self.hosts[i]}"
        return self.peer_hosts[i] if self.peer_hosts else f"/ip4/{self.listen_host}"

    @classmethod
    def local(cls, nodes: int) -> Layout:
        flat = free_ports(3 * nodes)
        return cls([NodePorts(*flat[3 * i: 3 * i + 3]) for i in range(nodes)])

    @classmethod
    def docker(cls, nodes: int) -> Layout:
        """docker-compose: services node<i> and kubo<i>, the same ports in every container."""
        return cls(
            [NodePorts(30333, RPC_PORT, METRICS_PORT)] * nodes, listen_host="0.0.0.0",
            peer_hosts=[f"/dns4/node{i}" for i in range(nodes)], rpc_bind="0.0.0.0",
            kubo=[f"/dns4/kubo{i}/tcp/5001/http" for i in range(nodes)],
        )


def generate(
    root: Path, nodes: int, *,
    wallets: tuple[str, ...] = ("supplier", "trainer1", "trainer2", "trainer3"),
    params: Params | None = None, layout: Layout | None = None, chain_id: str = "wekacoin-testnet",
) -> Genesis:
    """Write a fresh testnet into `root`; refuses a directory that already holds one."""
    if (root / "genesis.json").exists():
        raise TestnetError(f"{root} already holds a testnet (remove it or use another --dir)")
    if nodes < 1:
        raise TestnetError("a testnet needs at least one node")
    layout = layout or Layout.local(nodes)
    if params is None:
        params = local_params(nodes)
    root.mkdir(parents=True, exist_ok=True)
    (root / "password").write_text(PASSWORD + "\n")
    keys = [KeyPair.generate() for _ in range(nodes)]
    wallet_keys = {name: KeyPair.generate() for name in wallets}
    (root / "wallets").mkdir(exist_ok=True)
    for name, key in wallet_keys.items():
        save_keystore(root / "wallets" / f"{name}.key", key, PASSWORD, cost="interactive")
    genesis = Genesis(
        chain_id=chain_id, time_ms=int(time.time() * 1000),
        accounts=tuple(
            [GenesisAccount(k.address, VALIDATOR_BALANCE) for k in keys]
            + [GenesisAccount(k.address, WALLET_BALANCE) for k in wallet_keys.values()]
        ),
        stakes=tuple(GenesisStake(k.address, VALIDATOR_STAKE, k.public_key) for k in keys),
        params=params,
    )
    (root / "genesis.json").write_text(genesis_to_json(genesis))
    from wekacoin.net import peer_id_from_seed

    ids = [peer_id_from_seed(k.seed) for k in keys]

    def dial(j: int, i: int) -> str:
        if layout.dial is not None:
            return f"{layout.dial[(j, i)]}/p2p/{ids[i]}"
        return f"{layout.peer_prefix(i)}/tcp/{layout.ports[i].p2p}/p2p/{ids[i]}"
    for i, (key, p) in enumerate(zip(keys, layout.ports, strict=True)):
        home = root / f"node{i}"
        home.mkdir()
        save_keystore(home / "validator.key", key, PASSWORD, cost="interactive")
        blobs = {"backend": "embedded"}
        if layout.kubo is not None:
            blobs = {"backend": "kubo", "kubo_api": layout.kubo[i]}
        config = {
            "node": {"data_dir": "data", "genesis": "../genesis.json"},
            "keys": {"keystore": "validator.key", "password_file": "../password"},
            "network": {"listen": f"/ip4/{layout.listen(i)}/tcp/{p.p2p}",
                        "bootstrap": [dial(i, j) for j in range(nodes) if j != i]},
            "rpc": {"bind": layout.rpc_host(i), "port": p.rpc, "token_file": "data/rpc.token"},
            "metrics": {"bind": layout.rpc_host(i), "port": p.metrics},
            "blobs": blobs,
        }
        (home / "node.toml").write_text(tomli_w.dumps(config))
    (root / "testnet.json").write_text(json.dumps({
        "chain_id": chain_id, "nodes": nodes,
        "rpc": [f"http://{layout.hosts[i] if layout.hosts else '127.0.0.1'}:{p.rpc}/"
                for i, p in enumerate(layout.ports)],
        "validators": [format_address(k.address) for k in keys],
        "wallets": {name: format_address(k.address) for name, k in wallet_keys.items()},
    }, indent=2) + "\n")
    return genesis


def compose_file(nodes: int, *, testnet_dir: str = ".", build: str | None = None) -> str:
    """A docker-compose file for a testnet generated with `Layout.docker(nodes)`: service
    node<i> with its Kubo sidecar kubo<i>, the testnet directory `testnet_dir` (relative to
    the compose file) mounted at /testnet, node i's RPC and metrics ports published on
    127.0.0.1 at 8645 + i and 9645 + i. `build`: the directory holding the Dockerfile, built
    into the image wekacoin:latest (None: the image must exist already)."""
    here = testnet_dir in (".", "./")
    shown = "" if here else testnet_dir.removeprefix("./") + "/"
    up = "docker compose up --build" if build is not None else "docker compose up"
    lines = [f"# A {nodes}-validator WekaCoin testnet across containers, each node with its "
             "own Kubo (IPFS)", "# sidecar as its blob store."]
    if here:
        lines += [f"# `wekacoin testnet init --docker --nodes {nodes}` wrote this file with "
                  "the testnet (keys,", "# genesis, node configs) in this directory.", "#",
                  f"#   {up}    # in this directory"]
    else:
        lines += ["#", f"#   wekacoin testnet init --docker --dir {shown.rstrip('/')}   "
                  "# keys, genesis, node configs", f"#   {up}"]
    if build is None:
        lines.append("# (first build the image from the wekacoin sources: "
                     "docker build -t wekacoin:latest .)")
    lines += [
        "#", f"# Node i answers JSON-RPC on 127.0.0.1:{RPC_PORT}+i (token: "
        f"{shown}node<i>/data/rpc.token)", f"# and Prometheus metrics on 127.0.0.1:"
        f"{METRICS_PORT}+i. Nodes find each other by service name",
        "# (/dns4/node<i>/tcp/30333/p2p/<id>, written by `testnet init --docker`); each talks "
        "to", "# kubo<i> on port 5001 inside the compose network only.", "",
        "x-node: &node", "  image: wekacoin:latest", "  restart: unless-stopped",
        "  stop_grace_period: 30s", "  volumes:", f"    - {testnet_dir}:/testnet", "",
        "x-kubo: &kubo", f"  image: {KUBO_IMAGE}", "  restart: unless-stopped",
        "  environment:", "    - IPFS_PROFILE=server", "", "services:",
    ]
    for i in range(nodes):
        lines += [f"  kubo{i}:", "    <<: *kubo", "    volumes:", f"      - kubo{i}:/data/ipfs",
                  "", f"  node{i}:", "    <<: *node"]
        if i == 0 and build is not None:  # the other nodes run the image node0 builds
            lines.append(f"    build: {build}")
        lines += [f'    command: ["node", "--config", "/testnet/node{i}/node.toml"]',
                  "    depends_on:", f"      - kubo{i}", *(["      - node0"] if i else []),
                  "    ports:", f'      - "127.0.0.1:{RPC_PORT + i}:{RPC_PORT}"',
                  f'      - "127.0.0.1:{METRICS_PORT + i}:{METRICS_PORT}"', ""]
    lines += ["volumes:", *(f"  kubo{i}:" for i in range(nodes))]
    return "\n".join(lines) + "\n"


def write_compose_file(root: Path, nodes: int) -> Path:
    """`root`/docker-compose.yml for the docker testnet generated in `root`; it builds the
    image from this checkout's Dockerfile when there is one (a source install)."""
    checkout = Path(__file__).resolve().parents[2]
    build = None
    if (checkout / "Dockerfile").is_file():
        build = os.path.relpath(checkout, root.resolve())
    path = root / "docker-compose.yml"
    path.write_text(compose_file(nodes, build=build))
    return path


def node_homes(root: Path) -> list[Path]:
    homes = sorted(root.glob("node[0-9]*"), key=lambda p: int(p.name[4:]))
    if not homes:
        raise TestnetError(f"no testnet in {root} (run `wekacoin testnet up` first)")
    return homes


def processes(root: Path, env: Mapping[str, str] | None = None) -> list[NodeProcess]:
    """The node process of every node home in `root` (running or not)."""
    return [NodeProcess(home, env=env) for home in node_homes(root)]


def wait_until_producing(nodes: Sequence[NodeProcess], *, height: int = 2,
                         timeout: float = 60.0) -> int:
    """Until every node answers RPC at `height` or above (the network connected and makes
    blocks); NodeExited at once if one ends meanwhile. Returns the highest height seen."""
    def heights() -> list[int]:
        for node in nodes:
            node.check_running()
        seen = [node.status()["height"] for node in nodes]
        return seen if min(seen) >= height else []  # []: not yet

    return max(wait_until(heights, timeout=timeout, interval=0.5, retry_on=(NodeUnreachable,),
                          what=f"every node of the testnet at height {height} or above"))
