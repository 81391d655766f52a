"""node.toml: the documented example parses, documents every setting, and bad input is
refused with the key's name."""

import dataclasses
import re
from pathlib import Path

import pytest

from wekacoin.node.config import ConfigError, NodeConfig, SandboxSection, load_config, parse_config

EXAMPLE = Path(__file__).parents[2] / "node.toml"


def test_example_is_the_defaults_and_documents_every_setting():
    config = load_config(EXAMPLE)
    base = EXAMPLE.parent
    assert config.node.data_dir == base / "data"
    assert config.rpc.bind == "127.0.0.1"
    text = EXAMPLE.read_text()
    for section in dataclasses.fields(NodeConfig):
        assert f"[{section.name}]" in text
        for f in dataclasses.fields(getattr(config, section.name)):
            documented = re.search(rf"^{f.name} = ", text, re.M)
            assert documented, f"{section.name}.{f.name} is not documented"
    # The example holds the defaults, so an empty file means the same thing.
    empty = parse_config({}, base_dir=base)
    assert empty == config


@pytest.mark.parametrize("doc, message", [
    ({"nodes": {}}, r"unknown section \[nodes\]"),
    ({"rpc": {"prot": 1}}, "unknown key rpc.prot"),
    ({"rpc": {"port": "8645"}}, "rpc.port must be an integer"),
    ({"rpc": {"port": 70000}}, "rpc.port must be a TCP port"),
    ({"rpc": {"bind": "localhost"}}, "rpc.bind must be an IP address"),
    ({"rpc": {"enabled": 1}}, "rpc.enabled must be true or false"),
    ({"node": {"log_level": "verbose"}}, "node.log_level must be one of"),
    ({"blobs": {"backend": "s3"}}, "blobs.backend"),
    ({"sandbox": {"workers": 0}}, "sandbox.workers must be positive"),
    ({"network": {"listen": "0.0.0.0:30333"}}, "network.listen"),
    ({"network": {"bootstrap": ["/ip4/127.0.0.1/tcp/1"]}}, r"network.bootstrap\[0\].*p2p"),
    ({"network": {"bootstrap": "x"}}, "network.bootstrap must be a list"),
    ({"rpc": []}, r"\[rpc\] must be a table"),
])
def test_bad_settings_are_refused_by_name(doc, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(doc)


def test_unreadable_files(tmp_path):
    with pytest.raises(ConfigError, match="no config file"):
        load_config(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[rpc\nport=")
    with pytest.raises(ConfigError, match="bad.toml"):
        load_config(bad)


def test_paths_resolve_against_the_config_directory(tmp_path):
    cfg = tmp_path / "n.toml"
    cfg.write_text('[node]\ndata_dir = "d"\n[keys]\nkeystore = "/abs/k"\npassword_file = "pw"\n')
    config = load_config(cfg)
    assert config.node.data_dir == tmp_path / "d"
    assert config.keys.keystore == Path("/abs/k")
    assert config.keys.password_file == tmp_path / "pw"


@pytest.mark.parametrize("key, param", [
    ("memory_mb", "eval_memory_mib"),
    ("cpu_seconds", "eval_cpu_ms"),
    ("max_file_mb", "eval_file_mib"),
])
def test_a_limit_that_decides_outcomes_is_refused_and_points_to_genesis(tmp_path, key, param):
    """The sandbox limits that make a model SCORED or INVALID moved to genesis: an old
    node.toml still setting one must not start (its value would silently not apply)."""
    cfg = tmp_path / "node.toml"
    cfg.write_text(f'[sandbox]\nisolation = "auto"\n{key} = 4096\n')
    with pytest.raises(ConfigError) as refused:
        load_config(cfg)
    message = str(refused.value)
    assert "\n" not in message
    assert f"sandbox.{key}" in message and f"genesis (params.{param})" in message


def test_the_sandbox_section_holds_only_isolation_and_capacity():
    assert [f.name for f in dataclasses.fields(SandboxSection)] == ["isolation", "workers"]
    assert parse_config({"sandbox": {"workers": 3}}).sandbox.workers == 3
