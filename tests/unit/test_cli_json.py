"""Every command that reads and prints takes --json and prints one JSON document: the node's
answer as it came (the node is a fake RPC), or the local file's content. Also the read
client's errors, against a real HTTP server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
import typer
from typer.testing import CliRunner

from tests.helpers.http_stub import serving
from wekacoin.cli.common import ReadClient, Settings
from wekacoin.cli.main import app
from wekacoin.crypto.keys import KeyPair, format_address
from wekacoin.errors import WekaError
from wekacoin.keyfile import save_keystore
from wekacoin.rpc.client import NodeUnreachable, RpcCallError

ADDRESS = format_address(KeyPair.from_seed(bytes(32)).address)
TX_ID = "ab" * 32
ANSWERS = {
    "node.status": {"chain_id": "wekacoin-test", "height": 12, "peers": 3, "state_root": "00" * 32},
    "node.peers": [{"peer_id": "12D3KooWx", "height": 12, "tip": "11" * 32, "version": "0.1.0"}],
    "validators.list": [{"address": ADDRESS, "stake": 10, "weight": 10, "storage_weight": 0,
                         "credited_bytes": 0, "last_challenge": None}],
    "chain.tx": {"id": TX_ID, "sender": ADDRESS, "nonce": 0, "fee": 1, "height": 5,
                 "block_hash": "22" * 32, "index": 0, "body": {"kind": "transfer"}},
    "chain.block": {"height": 5, "hash": "22" * 32, "final": True, "txs": []},
    "chain.account": {"address": ADDRESS, "balance": 1_000, "nonce": 0, "next_nonce": 0,
                      "stake": 0},
    "tasks.list": [{"id": 1, "title": "t", "metric": "accuracy", "phase": "training",
                    "reward": 5, "submissions": 0, "tbh": 30, "supplier": ADDRESS}],
}

# Every read command outside competition_cmds.py (and `task list` in it), its arguments, and
# what its JSON holds: an RPC method's answer, or a function of the test's files.
READ_COMMANDS = {
    ("status",): ("node.status", []),
    ("peers",): ("node.peers", []),
    ("validators",): ("validators.list", []),
    ("tx",): ("chain.tx", [TX_ID]),
    ("block",): ("chain.block", ["5"]),
    ("wallet", "balance"): ("chain.account", [ADDRESS]),
    ("task", "list"): ("tasks.list", []),
}


class FakeNode:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def __enter__(self) -> FakeNode:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def call(self, method: str, **params):
        self.calls.append((method, params))
        return json.loads(json.dumps(ANSWERS[method]))


@pytest.fixture
def node(monkeypatch) -> FakeNode:
    fake = FakeNode()
    monkeypatch.setattr(Settings, "reader", lambda self: fake)
    monkeypatch.setattr(Settings, "client", lambda self: fake)
    return fake


def invoke(*args: str) -> object:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # one document: json.loads refuses anything after it


@pytest.mark.parametrize("path", sorted(READ_COMMANDS), ids=" ".join)
def test_a_read_command_prints_the_nodes_answer_as_json(node, path):
    method, args = READ_COMMANDS[path]
    shown = invoke(*path, *args, "--json")
    expected = dict(ANSWERS[method], final=True) if path == ("tx",) else ANSWERS[method]
    assert shown == expected
    assert node.calls[0][0] == method


def test_every_read_command_has_a_json_option():
    """The commands that print what they read: a new one needs --json (and a line above)."""
    root = typer.main.get_command(app)
    local = {("wallet", "address"), ("testnet", "status"), ("genesis", "show")}
    for path in [*READ_COMMANDS, *local]:
        command = root
        for name in path:
            command = command.commands[name]
        assert "--json" in {o for p in command.params for o in p.opts}, path


def test_wallet_address_as_json(tmp_path):
    key = tmp_path / "w.key"
    keypair = KeyPair.from_seed(bytes(range(32)))
    save_keystore(key, keypair, "pw", cost="interactive")
    shown = invoke("--key", str(key), "wallet", "address", "--json")
    assert shown == {"address": format_address(keypair.address), "keystore": str(key)}


def test_testnet_status_as_json_with_no_node_running(tmp_path):
    from wekacoin.node.testnet import generate

    generate(tmp_path, 2)
    shown = invoke("testnet", "status", "--dir", str(tmp_path), "--json")
    assert [row["node"] for row in shown] == ["node0", "node1"]
    for row in shown:
        assert row["pid"] is None and row["status"] is None
        assert "no node answers" in row["error"] and row["rpc"].startswith("http://127.0.0.1:")


def test_genesis_show_as_json(tmp_path):
    from wekacoin.chain.genesis import load_genesis
    from wekacoin.node.testnet import generate

    generate(tmp_path, 2)
    genesis = load_genesis(tmp_path / "genesis.json")
    shown = invoke("genesis", "show", str(tmp_path / "genesis.json"), "--json")
    assert shown["hash"] == genesis.hash.hex() and shown["chain_id"] == genesis.chain_id
    assert shown["total_stake"] == sum(s.amount for s in genesis.stakes)
    assert [s["validator_key"] for s in shown["stakes"]] == [
        s.validator_key.hex() for s in genesis.stakes]
    assert shown["params"]["stake_lookback"] == genesis.params.stake_lookback


# -- the read client over HTTP --


class Node(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        method = request["method"]
        if method == "html":
            self._send(502, b"<html>bad gateway</html>")
        elif method == "missing":
            self._send(200, json.dumps({"jsonrpc": "2.0", "id": request["id"], "error": {
                "code": -32004, "message": "not found", "data": {"x": 1}}}).encode())
        else:
            result = {"params": request["params"], "auth": self.headers.get("Authorization")}
            self._send(200, json.dumps({"jsonrpc": "2.0", "id": request["id"],
                                        "result": result}).encode())

    def _send(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    with serving(Node) as served:
        yield served


def test_the_read_client_speaks_json_rpc_with_rpc_clients_errors(url):
    with ReadClient(url, token="secret") as client:
        assert client.call("x", a=1) == {"params": {"a": 1}, "auth": "Bearer secret"}
        assert client.call("y")["params"] == {}  # the connection is used again
        with pytest.raises(RpcCallError, match="missing: not found") as raised:
            client.call("missing")
        assert (raised.value.code, raised.value.data) == (-32004, {"x": 1})
        with pytest.raises(WekaError, match="answered HTTP 502 without JSON"):
            client.call("html")
    with ReadClient(url) as client:
        assert client.call("x")["auth"] is None


def test_the_read_client_names_a_node_that_does_not_answer(url):
    closed = url.rsplit(":", 1)[0] + ":9/"
    with pytest.raises(NodeUnreachable, match=f"no node answers at {closed}"):
        ReadClient(closed).call("node.status")
    with pytest.raises(WekaError, match="not an http"):
        ReadClient("ftp://x/")

