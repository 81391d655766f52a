"""`wekacoin genesis new`: a genesis file the chain loads, with stakes only for validator keys
whose possession was shown (their keystore opened, or a key proof from `genesis key-proof`),
params from a TOML or JSON file, and one-line errors naming what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wekacoin.chain.genesis import genesis_state, load_genesis
from wekacoin.cli.genesis_cmds import genesis_key_message
from wekacoin.cli.main import app
from wekacoin.crypto.keys import KeyPair, format_address, verify_signature
from wekacoin.keyfile import save_keystore
from wekacoin.types.genesis import Params

PASSWORD = "genesis-test"


@pytest.fixture
def keys(tmp_path) -> dict[str, KeyPair]:
    """Two validator keystores, a wallet keystore, and the password file."""
    pairs = {name: KeyPair.from_seed(bytes([i]) * 32)
             for i, name in enumerate(("v0", "v1", "wallet", "staker"))}
    for name in ("v0", "v1", "wallet"):
        save_keystore(tmp_path / f"{name}.key", pairs[name], PASSWORD, cost="interactive")
    (tmp_path / "password").write_text(PASSWORD + "\n")
    return pairs


def genesis(tmp_path: Path, *args: str):
    return CliRunner().invoke(app, ["--password-file", str(tmp_path / "password"), "genesis",
                                    *args])


def error_of(result) -> str:
    assert result.exit_code != 0, result.output
    return str(result.exception)


def test_new_writes_a_genesis_the_chain_loads(tmp_path, keys):
    proof = genesis(tmp_path, "key-proof", "--key-file", str(tmp_path / "v1.key"),
                    "--chain-id", "my-chain", "--address", format_address(keys["staker"].address),
                    "--out", str(tmp_path / "v1.proof"))
    assert proof.exit_code == 0, proof.output
    (tmp_path / "params.toml").write_text("stake_lookback = 7\nmin_tx_fee = 3\n")
    out = tmp_path / "chain" / "genesis.json"
    result = genesis(
        tmp_path, "new", "--chain-id", "my-chain", "--time-ms", "1700000000000",
        "--account", f"{format_address(keys['v0'].address)}=1_000_000",
        "--account", f"{tmp_path / 'wallet.key'}=500",
        "--stake", f"{tmp_path / 'v0.key'}=4000",
        "--stake", f"{tmp_path / 'v1.proof'}=6000",
        "--params", str(tmp_path / "params.toml"), "--out", str(out))
    assert result.exit_code == 0, result.output
    g = load_genesis(out)
    assert (g.chain_id, g.time_ms) == ("my-chain", 1_700_000_000_000)
    assert [(a.address, a.balance) for a in g.accounts] == [
        (keys["v0"].address, 1_000_000), (keys["wallet"].address, 500)]
    assert [(s.address, s.amount, s.validator_key) for s in g.stakes] == [
        (keys["v0"].address, 4000, keys["v0"].public_key),
        (keys["staker"].address, 6000, keys["v1"].public_key)]
    assert g.params == Params(stake_lookback=7, min_tx_fee=3)
    assert g.hash.hex() in result.output
    assert genesis_state(g).tip.total_stake == 10_000
    shown = CliRunner().invoke(app, ["genesis", "show", str(out)])
    assert shown.exit_code == 0 and "stake_lookback = 7 (default 20)" in shown.output


def test_key_proof_signs_chain_and_account_and_prints_by_default(tmp_path, keys):
    result = genesis(tmp_path, "key-proof", "--key-file", str(tmp_path / "v0.key"),
                     "--chain-id", "c1")
    assert result.exit_code == 0, result.output
    proof = json.loads(result.stdout)
    assert proof["address"] == format_address(keys["v0"].address)
    assert proof["validator_key"] == keys["v0"].public_key.hex()
    key, signature = keys["v0"].public_key, bytes.fromhex(proof["proof"])
    assert verify_signature(key, genesis_key_message("c1", keys["v0"].address), signature)
    assert not verify_signature(key, genesis_key_message("c2", keys["v0"].address), signature)
    assert not verify_signature(key, genesis_key_message("c1", keys["v1"].address), signature)


def test_params_from_json_and_a_params_table(tmp_path, keys):
    for name, text in (("p.json", '{"min_stake": 5}'), ("p.toml", "[params]\nmin_stake = 5\n")):
        out = tmp_path / f"{name}.genesis.json"
        (tmp_path / name).write_text(text)
        result = genesis(tmp_path, "new", "--chain-id", "c", "--stake",
                         f"{tmp_path / 'v0.key'}=10000", "--params", str(tmp_path / name),
                         "--out", str(out))
        assert result.exit_code == 0, result.output
        assert load_genesis(out).params.min_stake == 5


@pytest.mark.parametrize("setup, args, message", [
    (None, ["--stake", "{d}/v0.key=0"], "each stake is at least min_stake"),
    (None, ["--chain-id", "bad id!"], "chain_id: 1-64 characters"),
    (None, ["--stake", "{d}/v0.key=1", "--stake", "{d}/v0.key=1"], "appears twice"),
    (None, ["--account", "Wnope=5"], "--account Wnope: neither an address nor a keystore"),
    (None, ["--account", "{d}/password=5"], "not a keystore file"),
    (None, ["--stake", "{d}/v0.key"], "expected WHAT=AMOUNT"),
    (None, ["--stake", "{d}/v0.key=lots"], "is not a whole number"),
    (None, ["--stake", "{d}/nothing=5"], "no such keystore or key proof file"),
    ("p.toml:tau_stp = 5", ["--params", "{d}/p.toml"], "params: unknown key 'tau_stp'"),
    ("p.json:{\"tau_step\": 1.5}", ["--params", "{d}/p.json"], "params.tau_step must be a"),
    ("p.toml:tau_step = [", ["--params", "{d}/p.toml"], "neither JSON nor TOML"),
    (None, ["--stake", "{d}/v0.key=100"], "cannot make a quorum"),
    ("p.toml:test_group_percent = 90", ["--params", "{d}/p.toml"],
     "params.test_group_percent (1-50): value out of range"),
])
def test_a_bad_genesis_is_refused_with_the_reason(tmp_path, keys, setup, args, message):
    if setup is not None:
        name, text = setup.split(":", 1)
        (tmp_path / name).write_text(text)
    args = [a.format(d=tmp_path) for a in args]
    if "--chain-id" not in args:
        args += ["--chain-id", "c"]
    if "--stake" not in args:
        args += ["--stake", f"{tmp_path / 'v0.key'}=10000"]
    out = tmp_path / "genesis.json"
    result = genesis(tmp_path, "new", *args, "--out", str(out))
    assert message in error_of(result)
    assert not out.exists()


def test_a_stake_needs_a_proof_for_this_chain_and_account(tmp_path, keys):
    proof_path = tmp_path / "v1.proof"
    made = genesis(tmp_path, "key-proof", "--key-file", str(tmp_path / "v1.key"),
                   "--chain-id", "other", "--out", str(proof_path))
    assert made.exit_code == 0, made.output
    stake = ["--stake", f"{proof_path}=10000"]
    assert "is for chain 'other', not 'c'" in error_of(genesis(
        tmp_path, "new", "--chain-id", "c", *stake, "--out", str(tmp_path / "g.json")))
    proof = json.loads(proof_path.read_text())
    proof_path.write_text(json.dumps(dict(proof, address=format_address(keys["wallet"].address))))
    assert "not its validator key's signature" in error_of(genesis(
        tmp_path, "new", "--chain-id", "other", *stake, "--out", str(tmp_path / "g.json")))
    proof_path.write_text(json.dumps(dict(proof, validator_key="zz")))
    assert "is damaged" in error_of(genesis(
        tmp_path, "new", "--chain-id", "other", *stake, "--out", str(tmp_path / "g.json")))


def test_new_needs_a_validator_the_password_and_never_overwrites(tmp_path, keys):
    out = tmp_path / "genesis.json"
    assert "at least one validator" in error_of(genesis(tmp_path, "new", "--chain-id", "c",
                                                        "--out", str(out)))
    (tmp_path / "password").write_text("wrong\n")
    assert "wrong password" in error_of(genesis(
        tmp_path, "new", "--chain-id", "c", "--stake", f"{tmp_path / 'v0.key'}=10000",
        "--out", str(out)))
    out.write_text("{}")
    assert "already exists" in error_of(genesis(
        tmp_path, "new", "--chain-id", "c", "--stake", f"{tmp_path / 'v0.key'}=10000",
        "--out", str(out)))
    (tmp_path / "password").write_text(PASSWORD)
    forced = genesis(tmp_path, "new", "--chain-id", "c", "--stake", f"{tmp_path / 'v0.key'}=10000",
                     "--out", str(out), "--force")
    assert forced.exit_code == 0, forced.output
    assert load_genesis(out).chain_id == "c"
