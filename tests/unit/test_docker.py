"""docker-compose.yml: a real compose parser accepts it, and it matches the node configs that
`wekacoin testnet init --docker` writes; so does the compose file that command writes for N
nodes, and the repository's file is the one it generates for 4. The image installs the
project the way CI does."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from wekacoin.cli.main import app
from wekacoin.node.config import load_config
from wekacoin.node.testnet import Layout, compose_file, generate

ROOT = Path(__file__).parents[2]
COMPOSE = ROOT / "docker-compose.yml"


def _compose_config(compose: Path = COMPOSE) -> dict:
    exe = shutil.which("docker-compose")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is not installed (.ci/run installs it)")
        pytest.skip("docker-compose is not installed")
    out = subprocess.run([exe, "-f", str(compose), "config"], capture_output=True, text=True,
                         timeout=60, cwd=compose.parent)
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


def test_compose_file_is_valid_and_matches_the_generated_testnet(tmp_path):
    compose = _compose_config()
    generate(tmp_path, 4, layout=Layout.docker(4))
    check_services(compose["services"], 4, tmp_path, ROOT / "docker-testnet", ROOT)


def test_the_repository_compose_file_is_the_one_testnet_init_writes_for_4_nodes():
    """One source: a change to the generator shows here until docker-compose.yml follows
    (`compose_file(4, testnet_dir="./docker-testnet", build=".")`)."""
    assert COMPOSE.read_text() == compose_file(4, testnet_dir="./docker-testnet", build=".")


@pytest.mark.parametrize("nodes", [1, 6])
def test_testnet_init_docker_writes_a_compose_file_for_its_nodes(tmp_path, nodes):
    root = tmp_path / "dt"
    result = CliRunner().invoke(app, ["testnet", "init", "--docker", "--nodes", str(nodes),
                                      "--dir", str(root)])
    assert result.exit_code == 0, result.output
    path = root / "docker-compose.yml"
    assert path.is_file() and str(path) in result.output
    raw = yaml.safe_load(path.read_text())  # anchors and merge keys resolved
    check_services(raw["services"], nodes, root, root, ROOT, relative_to=root)
    assert set(raw["volumes"]) == {f"kubo{i}" for i in range(nodes)}
    # a real compose parser agrees (and finds the build context: this checkout)
    check_services(_compose_config(path)["services"], nodes, root, root, ROOT)


def check_services(services: dict, count: int, testnet: Path, mount: Path, build: Path,
                   relative_to: Path | None = None) -> None:
    """`count` node<i> and kubo<i> services running the configs generated in `testnet`,
    with `mount` at /testnet and node0 building `build`; relative paths (a compose file as
    written, not as `docker-compose config` resolves it) against `relative_to`."""
    def resolved(path: str) -> Path:
        return (relative_to / path).resolve() if relative_to else Path(path)

    nodes = sorted(s for s in services if s.startswith("node"))
    kubos = sorted(s for s in services if s.startswith("kubo"))
    assert nodes == [f"node{i}" for i in range(count)] and len(kubos) == count
    build_context = services["node0"]["build"]
    if isinstance(build_context, dict):
        build_context = build_context["context"]
    assert resolved(build_context) == build.resolve()
    for i, name in enumerate(nodes):
        service = services[name]
        assert service["image"] == "wekacoin:latest"
        assert f"kubo{i}" in service["depends_on"]
        mounts = dict(_volume(v) for v in service["volumes"])
        assert resolved(mounts["/testnet"]) == mount.resolve()
        config_in_container = service["command"][service["command"].index("--config") + 1]
        config = load_config(testnet / Path(config_in_container).relative_to("/testnet"))
        assert config.blobs.backend == "kubo"
        assert config.blobs.kubo_api == f"/dns4/kubo{i}/tcp/5001/http"
        ports = [_port(p) for p in service["ports"]]
        assert {config.rpc.port, config.metrics.port} == {target for _, _, target in ports}
        assert {host for _, host, _ in ports} == {8645 + i, 9645 + i}
        assert all(host_ip == "127.0.0.1" for host_ip, _, _ in ports)
        peers = {a.split("/")[2] for a in config.network.bootstrap}
        assert peers == {n for n in nodes if n != name}
        assert config.network.listen == "/ip4/0.0.0.0/tcp/30333"
    for name in kubos:
        assert services[name]["image"].startswith("ipfs/kubo:")


def _volume(v) -> tuple[str, str]:
    """(target, source) from compose's short ("src:dst:mode") or long syntax."""
    if isinstance(v, dict):
        return v["target"], v["source"]
    source, target = v.split(":")[:2]
    return target, source


def _port(p) -> tuple[str, int, int]:
    """(host ip, host port, container port) from "ip:host:container/proto" or the long
    syntax."""
    if isinstance(p, dict):
        return p["host_ip"], int(p["published"]), int(p["target"])
    host_ip, host, container = p.split(":")
    return host_ip, int(host), int(container.split("/")[0])


def test_image_installs_like_ci():
    dockerfile = (ROOT / "Dockerfile").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert ".ci/system-packages runtime" in dockerfile
    assert ".ci/system-packages test" in ci
    assert "pip install" in dockerfile and "pip install" in ci
    # setup.py declares the C extension: without it the image would install and fail at import.
    assert re.search(r"^COPY .*\bsetup\.py\b", dockerfile, re.MULTILINE)
