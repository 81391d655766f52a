"""The real `wekacoin node` process on a data directory whose chain store identity file has
one byte flipped: it exits non-zero with one line on stderr that names the file, and leaves
the directory as it was. (Every other file and damage: tests/unit/test_corrupt_files.py.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import tomli_w

from tests.helpers.store_helpers import dir_fingerprint
from wekacoin.chain.genesis import genesis_to_json
from wekacoin.keyfile import save_keystore
from wekacoin.store import ChainStore
from wekacoin.testing.chain import LocalChain

PASSWORD = "correct horse"
EXIT_TIMEOUT_S = 60  # the process stops before it opens a socket; this bounds a hang


def make_home(home: Path) -> Path:
    """A node home as `wekacoin init` and a first run leave it; its node.toml."""
    chain = LocalChain()
    home.mkdir()
    (home / "genesis.json").write_text(genesis_to_json(chain.genesis))
    (home / "password").write_text(PASSWORD + "\n")
    save_keystore(home / "validator.key", chain.keys[0], PASSWORD, cost="interactive")
    config = home / "node.toml"
    config.write_text(tomli_w.dumps({
        "node": {"data_dir": "data", "genesis": "genesis.json"},
        "keys": {"keystore": "validator.key", "password_file": "password"},
        "network": {"listen": "/ip4/127.0.0.1/tcp/0"},
        "rpc": {"port": 0, "token_file": "data/rpc.token"},
        "metrics": {"enabled": False},
    }))
    ChainStore.open(home / "data" / "chain", chain.genesis).close()
    return config


@pytest.mark.slow
def test_a_flipped_byte_in_the_store_identity_file_stops_the_node_in_one_line(tmp_path):
    config = make_home(tmp_path / "node")
    identity = tmp_path / "node" / "data" / "chain" / "chainstore.json"
    data = bytearray(identity.read_bytes())
    data[len(data) // 2] ^= 0xFF
    identity.write_bytes(bytes(data))
    before = dir_fingerprint(tmp_path / "node" / "data")

    done = subprocess.run(
        [sys.executable, "-m", "wekacoin", "node", "--config", str(config)],
        cwd=Path(__file__).parents[2], capture_output=True, text=True, timeout=EXIT_TIMEOUT_S,
    )

    assert done.returncode != 0
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and str(identity) in lines[0]
    assert "restore" in lines[0] and "Traceback" not in done.stderr
    assert dir_fingerprint(tmp_path / "node" / "data") == before
