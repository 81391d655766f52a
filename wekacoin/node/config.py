"""`node.toml`: every operator setting, with defaults, validated strictly.

Unknown keys and bad values are refused with the key's dotted name, so a typo never silently
falls back to a default. Relative paths are resolved against the config file's directory.
See the repository's `node.toml` for a documented example of every setting.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multiaddr import Multiaddr
from multiaddr.exceptions import Error as MultiaddrError

from wekacoin.errors import WekaError

LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(WekaError):
    """A node.toml that cannot run a node."""


@dataclass(frozen=True)
class NodeSection:
    data_dir: Path = Path("data")
    genesis: Path = Path("genesis.json")
    log_level: str = "info"
    log_format: str = "text"
    """"text" for people, "json" for log collectors (one object per line)."""


@dataclass(frozen=True)
class KeysSection:
    keystore: Path = Path("data/validator.key")
    password_file: Path | None = None
    """File holding the keystore password; if unset, WEKACOIN_PASSWORD or a prompt."""


@dataclass(frozen=True)
class NetworkSection:
    listen: str = "/ip4/0.0.0.0/tcp/30333"
    bootstrap: tuple[str, ...] = ()
    max_peers: int = 50
    target_peers: int = 8
    """Dial addresses that peers share (peer exchange) until this many peers are connected."""


@dataclass(frozen=True)
class RpcSection:
    enabled: bool = True
    bind: str = "127.0.0.1"
    port: int = 8645
    token_file: Path = Path("data/rpc.token")
    """Methods that change the node need this token; created (0600) at first start."""
    max_request_bytes: int = 2**20
    """A request without the token (anyone who can reach the port)."""
    max_upload_bytes: int = 192 * 2**20
    """A request with the token: blob uploads, base64 (4/3 of `blobs.max_blob_bytes`)."""
    max_response_bytes: int = 192 * 2**20


@dataclass(frozen=True)
class MetricsSection:
    enabled: bool = True
    bind: str = "127.0.0.1"
    port: int = 9645


@dataclass(frozen=True)
class BlobsSection:
    backend: str = "embedded"
    """"embedded" (blobs in the data directory, exchanged with WekaCoin peers) or "kubo"."""
    max_blob_bytes: int = 128 * 2**20
    quota_bytes: int = 0
    """0 means no quota."""
    kubo_api: str = "/ip4/127.0.0.1/tcp/5001/http"
    kubo_timeout_s: int = 60


@dataclass(frozen=True)
class SandboxSection:
    """Isolation and capacity only: the limits that decide a model's outcome are the same on
    every node, so they come from genesis (`Params.eval_*`) and the task, never from here."""

    isolation: str = "auto"
    """"auto" (strongest available), "bwrap", "unshare" or "rlimits"."""
    workers: int = 1
    """Model sandboxes (fork servers): how many tasks' models can be scored at once."""


@dataclass(frozen=True)
class StorageSection:
    """Proof-of-storage weight (on chains whose genesis gives weight for it): the chain's
    blobs this node keeps, claims and proves (`wekacoin.node.storage`)."""

    max_bytes: int = 2**30
    """Claim held chain blobs up to this many bytes, rarest first; 0: claim nothing (and drop
    what was claimed)."""


# Settings that used to be node.toml's and now are the same for every node.
_MOVED_TO_GENESIS = {
    "sandbox.memory_mb": "eval_memory_mib",
    "sandbox.cpu_seconds": "eval_cpu_ms",
    "sandbox.max_file_mb": "eval_file_mib",
}


@dataclass(frozen=True)
class ConsensusSection:
    validate: bool = True
    """Take part in sortition when the node key has stake (otherwise only follow the chain)."""


@dataclass(frozen=True)
class NodeConfig:
    node: NodeSection = field(default_factory=NodeSection)
    keys: KeysSection = field(default_factory=KeysSection)
    network: NetworkSection = field(default_factory=NetworkSection)
    rpc: RpcSection = field(default_factory=RpcSection)
    metrics: MetricsSection = field(default_factory=MetricsSection)
    blobs: BlobsSection = field(default_factory=BlobsSection)
    sandbox: SandboxSection = field(default_factory=SandboxSection)
    consensus: ConsensusSection = field(default_factory=ConsensusSection)
    storage: StorageSection = field(default_factory=StorageSection)


_CHOICES = {
    "node.log_level": LOG_LEVELS,
    "node.log_format": ("text", "json"),
    "blobs.backend": ("embedded", "kubo"),
    "sandbox.isolation": ("auto", "bwrap", "unshare", "rlimits"),
}
_PORTS = ("rpc.port", "metrics.port")
_POSITIVE = ("network.max_peers", "rpc.max_request_bytes", "rpc.max_upload_bytes",
             "rpc.max_response_bytes", "blobs.max_blob_bytes",
             "blobs.kubo_timeout_s", "sandbox.workers")


def load_config(path: Path) -> NodeConfig:
    """The config in the file at `path`; ConfigError, naming the file, if it cannot be read,
    is not TOML or holds a bad setting."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"no config file at {path}") from None
    except OSError as e:
        raise ConfigError(f"cannot read the config file {path}: {e.strerror}") from None
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise ConfigError(
            f"the config file {path} is not valid TOML ({e}): fix it, or restore it from a "
            "backup (the repository's node.toml documents every setting)"
        ) from None
    try:
        return parse_config(doc, base_dir=path.parent)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


def parse_config(doc: dict[str, Any], base_dir: Path = Path(".")) -> NodeConfig:
    sections = {}
    hints = typing.get_type_hints(NodeConfig)
    unknown = sorted(set(doc) - set(hints))
    if unknown:
        raise ConfigError(f"unknown section [{unknown[0]}]")
    for name, cls in hints.items():
        raw = doc.get(name, {})
        if not isinstance(raw, dict):
            raise ConfigError(f"[{name}] must be a table")
        sections[name] = _parse_section(name, cls, raw, base_dir)
    config = NodeConfig(**sections)
    _validate(config)
    return config


def _parse_section(name: str, cls: type, raw: dict[str, Any], base_dir: Path) -> Any:
    hints = typing.get_type_hints(cls)
    unknown = sorted(set(raw) - set(hints))
    for key in unknown:
        if (param := _MOVED_TO_GENESIS.get(f"{name}.{key}")) is not None:
            raise ConfigError(
                f"{name}.{key} is no longer a node setting: the limit now comes from genesis "
                f"(params.{param}), the same on every node; remove it from node.toml"
            )
    if unknown:
        raise ConfigError(f"unknown key {name}.{unknown[0]}")
    values = {}
    for key, value in raw.items():
        values[key] = _coerce(f"{name}.{key}", hints[key], value, base_dir)
    for f in dataclasses.fields(cls):  # defaults are relative to the config file too
        if f.name not in values and isinstance(f.default, Path):
            values[f.name] = base_dir / f.default
    return cls(**values)


def _coerce(where: str, tp: Any, value: Any, base_dir: Path) -> Any:
    optional = type(None) in typing.get_args(tp)
    if optional:
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
        if value == "":
            return None
    if tp is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where} must be a path")
        p = Path(value).expanduser()
        return p if p.is_absolute() else (base_dir / p)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false")
        return value
    if tp is int:
        if type(value) is not int:
            raise ConfigError(f"{where} must be an integer")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string")
        return value
    if typing.get_origin(tp) is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of strings")
        return tuple(value)
    raise ConfigError(f"{where}: unsupported setting type")  # pragma: no cover


def _validate(config: NodeConfig) -> None:
    for where, choices in _CHOICES.items():
        value = _lookup(config, where)
        if value not in choices:
            raise ConfigError(f"{where} must be one of {', '.join(choices)} (got {value!r})")
    for where in _PORTS:
        if not 0 <= _lookup(config, where) <= 65535:
            raise ConfigError(f"{where} must be a TCP port (0-65535)")
    for where in _POSITIVE:
        if _lookup(config, where) <= 0:
            raise ConfigError(f"{where} must be positive")
    if config.blobs.quota_bytes < 0:
        raise ConfigError("blobs.quota_bytes must be 0 (no quota) or positive")
    if not 0 <= config.network.target_peers <= config.network.max_peers:
        raise ConfigError("network.target_peers must be between 0 and network.max_peers")
    if config.storage.max_bytes < 0:
        raise ConfigError("storage.max_bytes must be 0 (claim nothing) or positive")
    for where in ("rpc.bind", "metrics.bind"):
        try:
            ipaddress.ip_address(_lookup(config, where))
        except ValueError:
            raise ConfigError(f"{where} must be an IP address") from None
    _check_multiaddr("network.listen", config.network.listen, needs_peer_id=False)
    for i, addr in enumerate(config.network.bootstrap):
        _check_multiaddr(f"network.bootstrap[{i}]", addr, needs_peer_id=True)


def _check_multiaddr(where: str, text: str, needs_peer_id: bool) -> None:
    try:
        addr = Multiaddr(text)
    except (ValueError, TypeError, MultiaddrError) as e:
        raise ConfigError(f"{where}: {text!r} is not a multiaddr ({e})") from None
    protocols = {p.name for p in addr.protocols()}
    if "tcp" not in protocols:
        raise ConfigError(f"{where}: {text!r} needs a /tcp/<port> part")
    if needs_peer_id and "p2p" not in protocols:
        raise ConfigError(f"{where}: {text!r} needs the peer's /p2p/<id>")


def _lookup(config: NodeConfig, dotted: str) -> Any:
    section, key = dotted.split(".")
    return getattr(getattr(config, section), key)


def config_to_toml(config: NodeConfig) -> dict[str, Any]:
    """The config as a TOML-ready dict (paths as strings): `wekacoin init` and testnets write it."""
    out: dict[str, Any] = {}
    for section in dataclasses.fields(config):
        values = {}
        for f in dataclasses.fields(getattr(config, section.name)):
            v = getattr(getattr(config, section.name), f.name)
            if v is None:
                continue
            if isinstance(v, Path):
                v = str(v)
            elif isinstance(v, tuple):
                v = list(v)
            values[f.name] = v
        out[section.name] = values
    return out
