"""`wekacoin wallet stake` signs the validator key's proof of possession from the node's keystore
(--validator-key-file): the transaction it submits is accepted by a block, for the wallet's
account and this chain. The node is a fake RPC in front of a LocalChain (no process)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from wekacoin.cli.common import CliError, Settings
from wekacoin.cli.main import app
from wekacoin.crypto.keys import KeyPair
from wekacoin.crypto.keystore import KeystoreError
from wekacoin.keyfile import save_keystore
from wekacoin.testing.chain import LocalChain
from wekacoin.types.codec import decode
from wekacoin.types.tx import Stake, Tx

PASSWORD = "stake-test"


class FakeNode:
    """The three calls `ChainClient.send` makes, answered from a LocalChain."""

    def __init__(self, chain: LocalChain) -> None:
        self.chain = chain
        self.submitted: list[Tx] = []

    def __enter__(self) -> FakeNode:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def call(self, method: str, **params):
        if method == "chain.info":
            return {"genesis_hash": self.chain.genesis_hash.hex(),
                    "params": {"min_tx_fee": self.chain.params.min_tx_fee}}
        if method == "chain.account":
            return {"next_nonce": 0}
        if method == "tx.submit":
            self.submitted.append(decode(Tx, bytes.fromhex(params["tx"])))
            return {"id": "00" * 32}
        raise AssertionError(method)


@pytest.fixture
def setup(tmp_path, monkeypatch):
    chain = LocalChain()
    node = FakeNode(chain)
    monkeypatch.setattr(Settings, "client", lambda self: node)
    wallet = chain.keys[5]
    validator = KeyPair.from_seed(bytes(range(32)))
    save_keystore(tmp_path / "wallet.key", wallet, PASSWORD, cost="interactive")
    save_keystore(tmp_path / "validator.key", validator, PASSWORD, cost="interactive")
    (tmp_path / "password").write_text(PASSWORD + "\n")
    return chain, node, wallet, validator, tmp_path


def _stake(tmp_path, *extra):
    return CliRunner().invoke(app, [
        "--key", str(tmp_path / "wallet.key"), "--password-file", str(tmp_path / "password"),
        "wallet", "stake", "1000", "--no-wait", *extra,
    ])


def test_wallet_stake_proves_the_node_key_and_a_block_accepts_it(setup):
    chain, node, wallet, validator, tmp_path = setup
    result = _stake(tmp_path, "--validator-key-file", str(tmp_path / "validator.key"))
    assert result.exit_code == 0, result.output
    (tx,) = node.submitted
    body = tx.unsigned.body
    assert isinstance(body, Stake) and body.validator_key == validator.public_key
    chain.commit([tx])
    assert chain.state.get_validator(validator.public_key) == wallet.address


def test_wallet_stake_reads_a_separate_validator_password(setup):
    chain, node, wallet, validator, tmp_path = setup
    (tmp_path / "other").mkdir()
    other_key = tmp_path / "other" / "validator.key"
    save_keystore(other_key, validator, "node-secret", cost="interactive")
    (tmp_path / "other" / "password").write_text("node-secret\n")
    wrong = _stake(tmp_path, "--validator-key-file", str(other_key))
    assert isinstance(wrong.exception, KeystoreError) and not node.submitted
    result = _stake(tmp_path, "--validator-key-file", str(other_key),
                    "--validator-password-file", str(tmp_path / "other" / "password"))
    assert result.exit_code == 0, result.output
    chain.commit(node.submitted)
    assert chain.state.get_validator(validator.public_key) == wallet.address


def test_wallet_stake_needs_the_key_file(setup):
    _, node, _, _, tmp_path = setup
    assert _stake(tmp_path).exit_code != 0  # --validator-key-file is required
    missing = _stake(tmp_path, "--validator-key-file", str(tmp_path / "nope.key"))
    assert isinstance(missing.exception, CliError) and not node.submitted
