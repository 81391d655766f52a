"""`wekacoin init`, `wekacoin node` and `wekacoin status`."""

from __future__ import annotations

import shutil
from pathlib import Path

import tomli_w
import typer

from wekacoin.cli.common import CliError, console, print_json, read_password, settings
from wekacoin.crypto.keys import KeyPair, format_address
from wekacoin.keyfile import load_keystore, save_keystore


def init(
    home: Path = typer.Option(Path("wekacoin-node"), help="Directory for the node (created)."),
    genesis: Path = typer.Option(None, help="Genesis file of the chain to join (copied in)."),
    listen: str = typer.Option("/ip4/0.0.0.0/tcp/30333", help="libp2p listen multiaddr."),
    rpc_port: int = typer.Option(8645, help="JSON-RPC port (bound to 127.0.0.1)."),
    metrics_port: int = typer.Option(9645, help="Prometheus metrics port."),
    bootstrap: list[str] = typer.Option([], help="Bootstrap peer multiaddr (repeatable)."),
    password_file: Path = typer.Option(None, help="File holding the new keystore's password."),
    cost: str = typer.Option("moderate", help="Argon2id cost: moderate, or interactive."),
) -> None:
    """Create a node: its key (encrypted keystore) and a node.toml."""
    from wekacoin.net import peer_id_from_seed

    key_path = home / "validator.key"
    config_path = home / "node.toml"
    if key_path.exists() or config_path.exists():
        raise CliError(f"{home} already holds a node (validator.key or node.toml)")
    if cost not in ("moderate", "interactive"):
        raise CliError("--cost is moderate or interactive")
    home.mkdir(parents=True, exist_ok=True)
    keypair = KeyPair.generate()
    save_keystore(key_path, keypair, read_password(password_file, confirm=True), cost=cost)
    if genesis is not None:
        if not genesis.is_file():
            raise CliError(f"no genesis file at {genesis}")
        shutil.copyfile(genesis, home / "genesis.json")
    doc = {
        "node": {"data_dir": "data", "genesis": "genesis.json"},
        "keys": {"keystore": "validator.key",
                 **({"password_file": str(password_file.resolve())} if password_file else {})},
        "network": {"listen": listen, "bootstrap": list(bootstrap)},
        "rpc": {"port": rpc_port, "token_file": "data/rpc.token"},
        "metrics": {"port": metrics_port},
    }
    config_path.write_text(tomli_w.dumps(doc))
    console.print(f"node created in {home}")
    console.print(f"  address        {format_address(keypair.address)}")
    console.print(f"  validator key  {keypair.public_key.hex()}")
    console.print(f"  peer id        {peer_id_from_seed(keypair.seed)}")
    if genesis is None:
        console.print(f"  put the chain's genesis file at {home / 'genesis.json'}")


def node(
    config: Path = typer.Option(Path("node.toml"), "--config", "-c", help="The node.toml to run."),
) -> None:
    """Run a node until SIGINT/SIGTERM."""
    import trio

    from wekacoin.chain.genesis import parse_genesis
    from wekacoin.node.config import load_config
    from wekacoin.node.daemon import Node
    from wekacoin.node.logs import setup_logging

    cfg = load_config(config)
    setup_logging(cfg.node.log_level, cfg.node.log_format, node_name=cfg.node.data_dir.parent.name)
    try:
        genesis = parse_genesis(cfg.node.genesis.read_text())
    except OSError as e:
        raise CliError(f"cannot read the genesis file {cfg.node.genesis}: {e.strerror}") from None
    keypair = load_keystore(cfg.keys.keystore, read_password(cfg.keys.password_file, confirm=False))
    trio.run(Node(cfg, keypair, genesis).run)


def status(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Height, state root, peers and consensus progress of the node at --rpc."""
    with settings(ctx).client() as client:
        st = client.call("node.status")
    if json_out:
        print_json(st)
        return
    console.print(f"[bold]{st['chain_id']}[/] height {st['height']}  peers {st['peers']}"
                  f"  mempool {st['mempool']}{'  (syncing)' if st['syncing'] else ''}")
    console.print(f"  state root  {st['state_root']}")
    console.print(f"  consensus   round {st['consensus']['round']} period "
                  f"{st['consensus']['period']} step {st['consensus']['step']}")
    console.print(f"  validator   {st['validator']['address']} stake {st['validator']['stake']}")
    console.print(f"  sandbox     {st['sandbox']}   blobs {st['blobs']}")
