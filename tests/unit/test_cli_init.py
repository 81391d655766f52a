"""node.toml comes from one source (`wekacoin.cli.node_toml`): it documents exactly the
settings `NodeConfig` has, the repository's node.toml is its rendering of the defaults, and
`wekacoin init` writes the same documented file with the node's own values."""

from __future__ import annotations

import dataclasses
import re
import tomllib
import typing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wekacoin.cli.main import app
from wekacoin.cli.node_toml import SECTIONS, render_node_toml
from wekacoin.node.config import NodeConfig, load_config

EXAMPLE = Path(__file__).parents[2] / "node.toml"


def keys_of(doc: dict) -> set[str]:
    return {f"{section}.{key}" for section, table in doc.items() for key in table}


def test_every_setting_is_documented_and_nothing_else():
    sections = typing.get_type_hints(NodeConfig)
    config = {f"{name}.{f.name}" for name, cls in sections.items()
              for f in dataclasses.fields(cls)}
    documented = {f"{section}.{key}" for section, (_, keys) in SECTIONS.items() for key in keys}
    assert documented == config
    assert all(doc.strip() for _, keys in SECTIONS.values() for doc in keys.values())


def test_the_repository_node_toml_is_the_rendered_defaults():
    """Regenerate it with `python -m wekacoin.cli.node_toml > node.toml`."""
    assert EXAMPLE.read_text() == render_node_toml()


def commented_keys(text: str) -> list[str]:
    """The `key = ` lines whose line above is not a comment (should be none)."""
    lines = text.splitlines()
    return [line for above, line in zip(lines, lines[1:], strict=False)
            if re.match(r"^\w+ = ", line) and not above.startswith("#")]


def test_init_writes_the_documented_node_toml_with_its_values(tmp_path):
    (tmp_path / "password").write_text("pw\n")
    (tmp_path / "genesis.json").write_text("{}")
    home = tmp_path / "home"
    peer = "/ip4/10.0.0.2/tcp/30333/p2p/12D3KooWGmgeGxFBgk2UW8z3dyrSAnVhRGQMNJdQeTXTLDG1z9oS"
    result = CliRunner().invoke(app, [
        "init", "--home", str(home), "--genesis", str(tmp_path / "genesis.json"),
        "--password-file", str(tmp_path / "password"), "--cost", "interactive",
        "--listen", "/ip4/0.0.0.0/tcp/4001", "--bootstrap", peer, "--rpc-port", "18645",
        "--metrics-port", "19645", "--storage-bytes", "0",
    ])
    assert result.exit_code == 0, result.output
    text = (home / "node.toml").read_text()
    assert commented_keys(text) == []
    assert keys_of(tomllib.loads(text)) == keys_of(tomllib.loads(EXAMPLE.read_text()))
    config = load_config(home / "node.toml")
    assert config.keys.keystore == home / "validator.key" and config.keys.keystore.is_file()
    assert config.keys.password_file == (tmp_path / "password").resolve()
    assert config.node.genesis == home / "genesis.json" and config.node.genesis.is_file()
    assert config.node.data_dir == home / "data"
    assert (config.network.listen, config.network.bootstrap) == ("/ip4/0.0.0.0/tcp/4001", (peer,))
    assert (config.rpc.port, config.metrics.port, config.storage.max_bytes) == (18645, 19645, 0)
    assert config.rpc.bind == "127.0.0.1" and config.sandbox == NodeConfig().sandbox
    again = CliRunner().invoke(app, ["init", "--home", str(home)])
    assert again.exit_code != 0 and "already holds a node" in str(again.exception)


def test_rendering_refuses_a_setting_that_does_not_exist():
    with pytest.raises(ValueError, match="rpc.prot"):
        render_node_toml({"rpc": {"prot": 1}})
    assert "\nport = 1\n" in render_node_toml({"rpc": {"port": 1}})
