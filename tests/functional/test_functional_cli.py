"""Functional tests of the `wekacoin` command line against running nodes: a transfer made with
`wallet send` is final everywhere, `status --json` says where the node is, every command has
--help, and errors are one line on stderr with a non-zero exit."""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from wekacoin.cli.main import app
from wekacoin.node.launcher import NodeProcess, stop_all
from wekacoin.testing.functional import NodeGroup, fresh_address, run_cli, wait_until


def all_commands() -> list[list[str]]:
    """The path of every command and group, e.g. ["wallet", "send"] (the root is [])."""
    paths: list[list[str]] = []

    def walk(command, path: list[str]) -> None:  # a click command, typer's or click's own
        paths.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return paths


@pytest.mark.parametrize("path", all_commands(), ids=lambda p: " ".join(p) or "wekacoin")
def test_every_command_has_help(path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and "--help" in result.output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_one_line_error(result, code: int | None = None) -> str:
    """Non-zero exit, nothing on stdout, one `error: ...` line on stderr."""
    assert result.code != 0 if code is None else result.code == code, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert result.stdout == "", result.stdout
    return lines[0]


@pytest.mark.slow
def test_cli_errors_are_one_line(tmp_path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/"
    line = assert_one_line_error(run_cli("--rpc", nowhere, "status", "--json"), 1)
    assert nowhere in line
    line = assert_one_line_error(run_cli("--rpc", nowhere, "wallet", "send", "notanaddr", "5"), 1)
    assert "not an address" in line
    # a long message stays on one line, and brackets in it are text, not markup
    long_address = "W" + "x" * 150
    line = assert_one_line_error(run_cli("--rpc", nowhere, "wallet", "balance", long_address), 1)
    assert long_address in line
    key = tmp_path / "[red]" / "[/x].key"
    line = assert_one_line_error(run_cli("--key", str(key), "wallet", "address"), 1)
    assert line == f"error: no readable keystore at {key}"
    # usage mistakes: an unknown option, a missing argument
    line = assert_one_line_error(run_cli("status", "--bogus"), 2)
    assert "--bogus" in line
    line = assert_one_line_error(run_cli("wallet", "send"), 2)
    assert re.search(r"missing|TO", line, re.IGNORECASE), line
    # a group without its command shows the group's help, never a traceback
    bare = run_cli("wallet")
    assert "Traceback" not in bare.stderr and "Usage" in bare.stdout + bare.stderr, bare
    # a real --help in a real process, deep in the tree
    helped = run_cli("task", "publish", "--help").check()
    assert "--reward" in helped.stdout


@pytest.mark.slow
def test_status_json(network: NodeGroup) -> None:
    for node in (network.nodes[0], network.nodes[3]):
        status = node.cli("status", "--json").check().json()
        assert type(status["height"]) is int and status["height"] >= 1
        assert re.fullmatch(r"[0-9a-f]{64}", status["state_root"]), status["state_root"]
        assert type(status["peers"]) is int and status["peers"] == len(network.nodes) - 1
        assert status["chain_id"] == network.chain_id
        rpc = node.status()
        assert rpc["height"] >= status["height"]
        storage = status["storage"]  # the local testnet gives weight for storage
        assert storage["keeping"] is True and storage["held"] is not None
        assert storage["last_challenge"]["result"] in ("none", "passed", "missed")
        text = node.cli("status").check().stdout
        assert "storage" in text and "weight" in text, text
    validators = network.nodes[0].cli("validators", "--json").check().json()
    assert len(validators) == len(network.nodes)
    assert all(v["weight"] == v["stake"] + v["storage_weight"] for v in validators)


@pytest.mark.slow
def test_cli_transfer_is_final_on_every_node(network: NodeGroup) -> None:
    alice = network.address("alice")
    before = network.nodes[0].balance(alice)
    fee = network.nodes[0].call("chain.info")["params"]["min_tx_fee"]
    to, amount = fresh_address(), 12_345
    result = network.nodes[1].cli("wallet", "send", to, str(amount),
                                  key=network.wallet_key("alice"),
                                  password_file=network.password_file).check()
    match = re.search(r"transfer ([0-9a-f]{64}) final at height (\d+)", result.stdout)
    assert match, result.stdout
    tx_id, height = match.group(1), int(match.group(2))
    network.wait_for_height(height)
    for node in network.nodes:
        assert node.balance(to) == amount, node.name
        assert node.balance(alice) == before - amount - fee, node.name
        assert node.call("chain.tx", id=tx_id)["height"] == height, node.name
    network.assert_same_blocks([height])
    # the CLI reads it back from another node
    shown = network.nodes[3].cli("wallet", "balance", to, "--json").check().json()
    assert shown["balance"] == amount
    # `wekacoin tx` and `wekacoin block` show where it landed, by height and by hash
    assert f"in block {height} (FINAL)" in network.nodes[2].cli("tx", tx_id).check().stdout
    found = network.nodes[2].cli("tx", tx_id, "--json").check().json()
    assert (found["height"], found["final"], found["body"]["kind"]) == (height, True, "transfer")
    block = network.nodes[3].cli("block", str(height), "--json").check().json()
    assert tx_id in [t["id"] for t in block["txs"]] and block["final"] is True
    assert tx_id in network.nodes[3].cli("block", block["hash"]).check().stdout
    unknown = network.nodes[0].cli("tx", "00" * 32)
    assert "knows no transaction" in assert_one_line_error(unknown, 1)
    # a transfer the node refuses (more than the balance) is one line and a non-zero exit
    refused = network.nodes[2].cli("wallet", "send", to, str(10**18),
                                   key=network.wallet_key("alice"),
                                   password_file=network.password_file)
    line = assert_one_line_error(refused, 1)
    assert "refused" in line
    wait_until(lambda: network.nodes[0].balance(alice) == before - amount - fee,
               what="alice's balance to stay put")


@pytest.mark.slow
def test_testnet_up_status_down(tmp_path: Path) -> None:
    """`wekacoin testnet up` starts nodes that outlive it, found again through node.pid by
    `status` and `down`; `down` stops a paused node too, and leaves a stranger's pid alone."""
    root = tmp_path / "testnet"
    nodes = [NodeProcess(root / "node0"), NodeProcess(root / "node1")]
    try:
        up = run_cli("testnet", "up", "--nodes", "2", "--dir", str(root), "--wait", "90").check()
        assert "created a 2-validator testnet" in up.stdout and "started node0, node1" in up.stdout
        pids = [n.pid for n in nodes]
        assert all(pids) and pids == [int(n.pid_path.read_text()) for n in nodes]
        again = run_cli("testnet", "up", "--dir", str(root), "--wait", "90").check()
        assert "started nothing (all running)" in again.stdout
        status = run_cli("testnet", "status", "--dir", str(root)).check()
        assert all(str(pid) in status.stdout for pid in pids), status.stdout
        # a restart from this process: a child of ours now, with a new pid
        assert nodes[0].restart() > 0 and nodes[0].pid not in pids
        nodes[1].pause()
        down = run_cli("testnet", "down", "--dir", str(root)).check()
        assert "stopped node0, node1" in down.stdout
        assert [n.pid for n in nodes] == [None, None]
        assert nodes[0].wait_for_exit(5) == 0  # SIGTERM from `down`: a clean shutdown
        for node in nodes:
            assert not node.pid_path.exists()
            assert "stopped at height" in node.log_tail(5), node.log_tail()
        assert run_cli("testnet", "down", "--dir", str(root)).check().stdout.startswith(
            "stopped nothing")
        # a node.pid naming a process that is not this home's node is never signalled
        nodes[1].pid_path.write_text(f"{os.getpid()}\n")
        assert nodes[1].pid is None and not nodes[1].is_running()
        assert "stopped nothing" in run_cli("testnet", "down", "--dir", str(root)).check().stdout
    finally:
        stop_all(nodes)
