"""docker-compose.yml: a real compose parser accepts it, and it matches the node configs that
`wekacoin testnet init --docker` writes. The image installs the project the way CI does."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from wekacoin.node.config import load_config
from wekacoin.node.testnet import Layout, generate

ROOT = Path(__file__).parents[2]
COMPOSE = ROOT / "docker-compose.yml"


def _compose_config() -> dict:
    exe = shutil.which("docker-compose")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is not installed (.ci/run installs it)")
        pytest.skip("docker-compose is not installed")
    out = subprocess.run([exe, "-f", str(COMPOSE), "config"], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


def test_compose_file_is_valid_and_matches_the_generated_testnet(tmp_path):
    compose = _compose_config()
    services = compose["services"]
    nodes = sorted(s for s in services if s.startswith("node"))
    kubos = sorted(s for s in services if s.startswith("kubo"))
    assert len(nodes) == len(kubos) == 4
    generate(tmp_path, len(nodes), layout=Layout.docker(len(nodes)))
    for i, name in enumerate(nodes):
        service = services[name]
        assert service["image"] == "wekacoin:latest"
        assert f"kubo{i}" in service["depends_on"]
        mounts = dict(_volume(v) for v in service["volumes"])
        assert Path(mounts["/testnet"]) == ROOT / "docker-testnet"
        config_in_container = service["command"][service["command"].index("--config") + 1]
        config = load_config(tmp_path / Path(config_in_container).relative_to("/testnet"))
        assert config.blobs.backend == "kubo"
        assert config.blobs.kubo_api == f"/dns4/kubo{i}/tcp/5001/http"
        ports = [_port(p) for p in service["ports"]]
        assert {config.rpc.port, config.metrics.port} == {target for _, target in ports}
        assert all(host_ip == "127.0.0.1" for host_ip, _ in ports)
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


def _port(p) -> tuple[str, int]:
    """(host ip, container port) from "ip:host:container/proto" or the long syntax."""
    if isinstance(p, dict):
        return p["host_ip"], int(p["target"])
    host_ip, _, container = p.split(":")
    return host_ip, int(container.split("/")[0])


def test_image_installs_like_ci():
    dockerfile = (ROOT / "Dockerfile").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert ".ci/system-packages runtime" in dockerfile
    assert ".ci/system-packages test" in ci
    assert "pip install" in dockerfile and "pip install" in ci
    # setup.py declares the C extension: without it the image would install and fail at import.
    assert re.search(r"^COPY .*\bsetup\.py\b", dockerfile, re.MULTILINE)
