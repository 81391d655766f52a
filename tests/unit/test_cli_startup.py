"""The `wekacoin` command starts without the node's heavy dependencies: importing the CLI,
`--help`, and `status` against a node import none of them (each checked in a fresh
interpreter); the lazily loaded command groups are the ones their modules define."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler

import pytest
import typer
from typer.testing import CliRunner

from tests.helpers.http_stub import serving
from wekacoin.cli.main import LAZY_GROUPS, app

HEAVY = ("numpy", "scipy", "sklearn", "onnx", "onnxruntime", "skl2onnx", "skops", "libp2p",
         "trio", "plyvel", "cryptography", "nacl", "httpx", "httpcore", "cbor2", "blake3",
         "multiaddr", "starlette", "hypercorn", "wekacoin.chain", "wekacoin.cli.competition_cmds")

IMPORTED_AFTER = """
import json, sys
try:
    {code}
except SystemExit:
    pass
heavy = {heavy!r}
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy or m in heavy)),
      file=sys.stderr)
"""


def heavy_imports(code: str) -> list[str]:
    """The heavy modules a fresh interpreter has imported after running `code`."""
    script = IMPORTED_AFTER.format(code=code, heavy=HEAVY)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    return json.loads(done.stderr.strip().splitlines()[-1])


def run_main(*args: str) -> str:
    return f"sys.argv = ['wekacoin', *{list(args)!r}]; from wekacoin.cli.main import main; main()"


def test_importing_the_cli_imports_no_heavy_module():
    assert heavy_imports("import wekacoin.cli.main") == []


def test_help_imports_no_heavy_module():
    assert heavy_imports(run_main("--help")) == []


class StatusNode(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        body = json.dumps({"jsonrpc": "2.0", "id": request["id"],
                           "result": {"method": request["method"]}}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def node_url() -> Iterator[str]:
    with serving(StatusNode) as served:
        yield served


def test_status_asks_the_node_without_importing_a_heavy_module(node_url):
    assert heavy_imports(run_main("--rpc", node_url, "status", "--json")) == []


@pytest.mark.parametrize("name", sorted(LAZY_GROUPS))
def test_a_lazy_group_is_its_modules_typer_with_the_same_help(name):
    module, attribute, help = LAZY_GROUPS[name]
    sub_app = getattr(__import__(module, fromlist=[attribute]), attribute)
    assert help == sub_app.info.help
    root = typer.main.get_command(app)
    lazy = root.commands[name]
    registered = [c.name or c.callback.__name__.replace("_", "-")
                  for c in sub_app.registered_commands]
    assert list(lazy.commands) == registered
    result = CliRunner().invoke(app, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert f"Usage: wekacoin {name}" in result.output or f"{name} [OPTIONS]" in result.output
    assert all(command in result.output for command in registered)
    listed = CliRunner().invoke(app, ["--help"]).output
    assert any(line.split()[:1] == [name] and help[:30] in line for line in listed.splitlines())


def test_the_node_starts_without_loading_what_only_scoring_needs():
    """scikit-learn and onnx take 2.5 s to import together: a node loads them when it first
    scores a model, not at start-up (a 4-node testnet makes its first block in about 10 s
    instead of 16)."""
    loaded = heavy_imports("import wekacoin.node.daemon")
    assert "libp2p" in loaded  # the probe sees what the node does load
    assert not {"sklearn", "onnx", "skl2onnx", "skops"} & {m.split(".")[0] for m in loaded}
