"""`wekacoin init`, `wekacoin node`, `wekacoin status` and `wekacoin peers`."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from wekacoin.cli.common import CliError, console, print_json, read_password, settings
from wekacoin.errors import WekaError

if TYPE_CHECKING:
    from wekacoin.crypto.keys import KeyPair
    from wekacoin.node.config import NodeConfig


def init(
    home: Path = typer.Option(Path("wekacoin-node"), help="Directory for the node (created)."),
    genesis: Path = typer.Option(None, help="Genesis file of the chain to join (copied in)."),
    listen: str = typer.Option("/ip4/0.0.0.0/tcp/30333", help="libp2p listen multiaddr."),
    rpc_port: int = typer.Option(8645, help="JSON-RPC port (bound to 127.0.0.1)."),
    metrics_port: int = typer.Option(9645, help="Prometheus metrics port."),
    bootstrap: list[str] = typer.Option([], help="Bootstrap peer multiaddr (repeatable)."),
    password_file: Path = typer.Option(None, help="File holding the new keystore's password."),
    cost: str = typer.Option("moderate", help="Argon2id cost: moderate, or interactive."),
    storage_bytes: int = typer.Option(
        2**30, min=0,  # node.config.StorageSection's default (not imported: CLI start-up)
        help="Bytes of the chain's blobs to claim for storage weight (0: none)."),
) -> None:
    """Create a node: its key (encrypted keystore) and a node.toml that documents every
    setting."""
    from wekacoin.cli.node_toml import render_node_toml
    from wekacoin.crypto.keys import KeyPair, format_address
    from wekacoin.keyfile import save_keystore
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
    config_path.write_text(render_node_toml(init_values(
        listen=listen, bootstrap=bootstrap, rpc_port=rpc_port, metrics_port=metrics_port,
        password_file=password_file, storage_bytes=storage_bytes,
    )))
    console.print(f"node created in {home}")
    console.print(f"  address        {format_address(keypair.address)}")
    console.print(f"  validator key  {keypair.public_key.hex()}")
    console.print(f"  peer id        {peer_id_from_seed(keypair.seed)}")
    if genesis is None:
        console.print(f"  put the chain's genesis file at {home / 'genesis.json'}")


def init_values(*, listen: str, bootstrap: list[str], rpc_port: int, metrics_port: int,
                password_file: Path | None, storage_bytes: int) -> dict[str, dict[str, Any]]:
    """The settings `wekacoin init` writes into node.toml; every other one is the default."""
    return {
        "node": {"data_dir": "data", "genesis": "genesis.json"},
        "keys": {"keystore": "validator.key",
                 "password_file": str(password_file.resolve()) if password_file else ""},
        "network": {"listen": listen, "bootstrap": list(bootstrap)},
        "rpc": {"port": rpc_port, "token_file": "data/rpc.token"},
        "metrics": {"port": metrics_port},
        "storage": {"max_bytes": storage_bytes},
    }


def node(
    config: Path = typer.Option(Path("node.toml"), "--config", "-c", help="The node.toml to run."),
) -> None:
    """Run a node until SIGINT/SIGTERM."""
    import trio

    from wekacoin.chain.genesis import load_genesis
    from wekacoin.node.config import load_config
    from wekacoin.node.daemon import Node
    from wekacoin.node.logs import setup_logging

    cfg = load_config(config)
    setup_logging(cfg.node.log_level, cfg.node.log_format, node_name=cfg.node.data_dir.parent.name)
    genesis = load_genesis(cfg.node.genesis)
    keypair = _node_key(cfg)
    if cfg.rpc.enabled:
        _check_token_file(cfg.rpc.token_file)
    store_dir = cfg.node.data_dir  # until the node says where its chain store is
    try:
        running = Node(cfg, keypair, genesis)
        store_dir = running.store.root
        trio.run(running.run)
    except BaseException as e:  # the one place a node's file errors become one line
        error = _file_error(e, store_dir)
        if error is None:
            raise
        raise error from None


def _node_key(cfg: NodeConfig) -> KeyPair:
    from wekacoin.crypto.keystore import WrongPasswordError
    from wekacoin.keyfile import load_keystore

    password_file = cfg.keys.password_file
    try:
        return load_keystore(cfg.keys.keystore, read_password(password_file, confirm=False))
    except WrongPasswordError as e:
        if password_file is None:
            raise
        raise CliError(f"{e} (the password is read from {password_file}: check both files "
                       "against your backups)") from None


def _check_token_file(path: Path) -> None:
    """Refuse, in one line, an RPC token file the running node would stop on with a
    traceback (`rpc.server.load_or_create_token` reads it only once the node runs). Missing
    or empty is fine: the node writes a new token."""
    try:
        path.read_text()
    except FileNotFoundError:
        return
    except OSError as e:
        raise CliError(f"cannot read the RPC token file {path}: {e.strerror}; make it a file "
                       "the node's user can read, or delete it and the node writes a new token"
                       ) from None
    except UnicodeDecodeError:
        raise CliError(f"the RPC token file {path} is damaged (not text): delete it and the "
                       "node writes a new token at start (clients then need the new one)"
                       ) from None


def _file_error(e: BaseException, store_dir: Path) -> WekaError | None:
    """The one-line error for what stopped the node, if it is about its files: one of ours
    (even from inside trio's exception groups), a LevelDB error from the chain store, or an
    OS error on a named file. None for anything else (a bug: its traceback is needed)."""
    import plyvel

    from wekacoin.store.chainstore import leveldb_error

    if isinstance(e, BaseExceptionGroup):
        errors = [_file_error(leaf, store_dir) for leaf in e.exceptions]
        return errors[0] if errors and all(errors) else None
    if isinstance(e, WekaError):
        return e
    if isinstance(e, plyvel.Error):
        return leveldb_error(store_dir, e)
    if isinstance(e, OSError) and e.filename is not None:
        return CliError(f"{e.filename}: {e.strerror}")
    return None


def status(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Height, state root, peers and consensus progress of the node at --rpc."""
    with settings(ctx).reader() as client:
        st = client.call("node.status")
    if json_out:
        print_json(st)
        return
    console.print(f"[bold]{st['chain_id']}[/] height {st['height']}  peers {st['peers']}"
                  f"  mempool {st['mempool']}{'  (syncing)' if st['syncing'] else ''}")
    console.print(f"  state root  {st['state_root']}")
    console.print(f"  consensus   round {st['consensus']['round']} period "
                  f"{st['consensus']['period']} step {st['consensus']['step']}")
    v = st["validator"]
    console.print(f"  validator   {v['address']} stake {v['stake']:,}  weight {v['weight']:,}")
    console.print(f"  sandbox     {st['sandbox']}   blobs {st['blobs']}")
    for line in storage_lines(st["storage"]):
        console.print(line)


def peers(
    ctx: typer.Context,
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """The peers of the node at --rpc that passed the chain handshake, and their tips."""
    from rich.table import Table

    with settings(ctx).reader() as client:
        rows = client.call("node.peers")
    if json_out:
        print_json(rows)
        return
    table = Table("peer id", "height", "tip", "version")
    for p in rows:
        table.add_row(p["peer_id"], str(p["height"]), str(p["tip"])[:16], str(p["version"]))
    console.print(table)
    console.print(f"{len(rows)} peer(s)")


def storage_lines(s: dict) -> list[str]:
    """`wekacoin status` lines for the `storage` part of node.status."""
    def blobs(part: dict) -> str:
        return f"{part['blobs']} blobs ({part['bytes']:,} B)"

    held = "not kept here" if s["held"] is None else f"held {blobs(s['held'])}"
    lines = [f"  storage     {held}, claimed {blobs(s['claimed'])}, proven "
             f"{blobs(s['proven'])}",
             f"              credited {s['credited_bytes']:,} B, weight {s['weight']:,}"
             + (f" (then {s['pending_weight']['amount']:,} from height "
                f"{s['pending_weight']['height']})" if s["pending_weight"] else "")]
    last = s["last_challenge"]
    challenge = ("no challenge yet" if last["result"] == "none"
                 else f"last challenge epoch {last['epoch']} {last['result']}")
    if s["challenge"] is not None:
        c = s["challenge"]
        challenge += f"; open challenge epoch {c['epoch']}, answer by height {c['deadline']}"
    lines.append(f"              {challenge}")
    return lines
