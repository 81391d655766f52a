"""Catching up from a peer against replaying from a local store.

A chain of N certified blocks (each with a transfer, each certified by real FINAL votes of the
genesis validators) is written to a chain store. Baseline: replay it from that store into a
fresh one in-process, doing exactly what sync does per block (decode, verify the certificate,
apply, commit). Measured: a real node process serving that store, and a fresh real node process
that bootstraps to it and syncs over libp2p; its rate counts from its first synced block to the
last (process start-up and the first connection excluded).

    python bench/sync.py [--quick] [--blocks N]

RESULT sync_ratio = (local replay blocks/s) / (sync blocks/s).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import tomli_w  # noqa: E402

from wekacoin.chain.blocks import apply_block  # noqa: E402
from wekacoin.chain.genesis import genesis_to_json  # noqa: E402
from wekacoin.consensus.messages import Certificate  # noqa: E402
from wekacoin.consensus.verify import RoundContext, Verifier, verify_certificate  # noqa: E402
from wekacoin.crypto.keys import KeyPair  # noqa: E402
from wekacoin.keyfile import save_keystore  # noqa: E402
from wekacoin.net import peer_id_from_seed  # noqa: E402
from wekacoin.node import testnet as tn  # noqa: E402
from wekacoin.node.launcher import NodeProcess, stop_all  # noqa: E402
from wekacoin.rpc.client import NodeUnreachable  # noqa: E402
from wekacoin.store import ChainStore  # noqa: E402
from wekacoin.testing.certify import certify_block  # noqa: E402
from wekacoin.testing.chain import LocalChain  # noqa: E402
from wekacoin.types.block import Block  # noqa: E402
from wekacoin.types.codec import decode, encode  # noqa: E402
from wekacoin.types.tx import Transfer  # noqa: E402
from wekacoin.waiting import wait_until  # noqa: E402


def build_chain(path: Path, blocks: int) -> LocalChain:
    chain = LocalChain(n_keys=8, validators=4)
    validators = chain.keys[:4]
    with ChainStore.open(path, chain.genesis) as store:
        for h in range(1, blocks + 1):
            sender = chain.keys[4 + h % 4]
            tx = chain.tx(sender, Transfer(chain.keys[h % 8].address, 1))
            block, state = chain.build([tx])
            store.commit(block, state, encode(certify_block(chain.state, block, validators)))
            chain.state = state.flattened()
            chain._nonces.clear()
            if h % 1000 == 0:
                print(f"  built {h} blocks", flush=True)
    return chain


def local_replay(source: Path, chain: LocalChain, blocks: int, into: Path) -> float:
    """Seconds to decode, certify-check, apply and commit every block, store to store."""
    verifier = Verifier()
    with ChainStore.open(source, chain.genesis) as src, ChainStore.open(into, chain.genesis) as dst:
        raws = list(src.iter_raw_blocks(1, blocks + 1))
        tip_time = chain.genesis.time_ms
        t0 = time.perf_counter()
        for raw in raws:
            state = dst.state()
            block = decode(Block, raw.data)
            verify_certificate(decode(Certificate, raw.certificate), RoundContext(state, tip_time),
                               verifier)
            dst.commit(block, apply_block(state, block), raw.certificate)
            tip_time = block.header.time_ms
        return time.perf_counter() - t0


def node_home(root: Path, name: str, genesis_file: Path, port: tn.NodePorts,
              bootstrap: list[str]) -> tuple[Path, KeyPair]:
    home = root / name
    home.mkdir(parents=True, exist_ok=True)
    key = KeyPair.generate()
    save_keystore(home / "validator.key", key, tn.PASSWORD, cost="interactive")
    (home / "node.toml").write_text(tomli_w.dumps({
        "node": {"data_dir": "data", "genesis": str(genesis_file)},
        "keys": {"keystore": "validator.key", "password_file": str(root / "password")},
        "network": {"listen": f"/ip4/127.0.0.1/tcp/{port.p2p}", "bootstrap": bootstrap},
        "rpc": {"port": port.rpc}, "metrics": {"port": port.metrics},
        "consensus": {"validate": False},
    }))
    return home, key


def measure_sync(root: Path, chain: LocalChain, source_store: Path, blocks: int) -> float:
    """Seconds from the follower's first synced block to its last."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "password").write_text(tn.PASSWORD + "\n")
    genesis_file = root / "genesis.json"
    genesis_file.write_text(genesis_to_json(chain.genesis))
    flat = tn.free_ports(6)
    ports = [tn.NodePorts(*flat[:3]), tn.NodePorts(*flat[3:])]
    source_home, source_key = node_home(root, "source", genesis_file, ports[0], [])
    shutil.move(str(source_store), source_home / "data" / "chain")
    source_addr = f"/ip4/127.0.0.1/tcp/{ports[0].p2p}/p2p/{peer_id_from_seed(source_key.seed)}"
    follower_home, _ = node_home(root, "follower", genesis_file, ports[1], [source_addr])
    source, follower = NodeProcess(source_home), NodeProcess(follower_home)
    try:
        source.start(wait=False)
        _wait_for(source, lambda h: h == blocks, 60, "the serving node to start")
        follower.start(wait=False)
        _wait_for(follower, lambda h: h >= 1, 120, "the follower's first synced block")
        t0, h0 = time.perf_counter(), _height(follower)
        _wait_for(follower, lambda h: h >= blocks, 3600, "the follower to catch up")
        return (time.perf_counter() - t0) * blocks / (blocks - h0)
    finally:
        stop_all([source, follower])


def _height(node: NodeProcess) -> int:
    node.check_running()
    return node.status()["height"]


def _wait_for(node: NodeProcess, ok: Callable[[int], bool], timeout: float, what: str) -> None:
    wait_until(lambda: ok(_height(node)), timeout=timeout, interval=0.1,
               retry_on=(NodeUnreachable,), what=what)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 blocks (under a minute)")
    parser.add_argument("--blocks", type=int, default=None)
    args = parser.parse_args()
    blocks = args.blocks or (1_000 if args.quick else 10_000)
    root = Path(tempfile.mkdtemp(prefix="wekacoin-bench-sync-"))
    try:
        print(f"building {blocks} certified blocks")
        t = time.perf_counter()
        chain = build_chain(root / "built", blocks)
        print(f"  built in {time.perf_counter() - t:.1f} s")
        local = local_replay(root / "built", chain, blocks, root / "replayed")
        print(f"local replay: {blocks / local:.0f} blocks/s ({local:.1f} s)")
        synced = measure_sync(root / "nodes", chain, root / "built", blocks)
        print(f"sync from a peer: {blocks / synced:.0f} blocks/s ({synced:.1f} s)")
        print(f"RESULT sync_ratio {synced / local:.3f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
