"""What a node prints at each log level: no per-block lines and no libp2p chatter at INFO."""

from __future__ import annotations

import importlib
import logging
from collections.abc import Iterator

import pytest

import wekacoin.net  # noqa: F401  (as in the node: it lets libp2p's records reach our handler)
from wekacoin.node.logs import setup_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root, ours, libp2p = (logging.getLogger(n) for n in ("", "wekacoin", "libp2p"))
    saved = (root.handlers[:], root.level, ours.level, libp2p.level)
    yield
    root.handlers[:], *levels = saved
    for logger, level in zip((root, ours, libp2p), levels, strict=True):
        logger.setLevel(level)


def emit_a_running_node() -> None:
    """The lines a running node writes, from the loggers that write them."""
    # the module sets its own logger to INFO, under libp2p's WARNING: its lines reached stderr
    auto = importlib.import_module("libp2p.network.auto_connector").logger
    assert auto.level == logging.INFO
    auto.info("AUTO_CONNECTOR_STATE: num_connections=%s (in_flight=%s)", 5, 0)
    auto.info("Connections below target; initiating %s new dials", 195)
    logging.getLogger("libp2p.host.basic_host").error("Failed to open stream to peer 12D3Koo:")
    logging.getLogger("libp2p.protocol_muxer.multiselect_client").error(
        "MultiselectClient handshake: write failed: fail to write to multiselect communicator")
    logging.getLogger("libp2p.pubsub.gossipsub").warning("a real libp2p warning")
    logging.getLogger("wekacoin.node.chain").debug("block 7 1a2b3c txs=0 root=4d5e6f")
    logging.getLogger("wekacoin.node.driver").debug("round 7 decided 1a2b3c in 4 steps (FINAL)")
    logging.getLogger("wekacoin.node").info("RPC (JSON-RPC, for the CLI and wallets) on http://x/")
    logging.getLogger("wekacoin.net.peering").info("peer 12D3Koo joined (tip 7, wekacoin/0.1)")


@pytest.mark.usefixtures("restore_logging")
def test_at_info_a_node_prints_its_life_not_its_blocks_nor_libp2p_chatter(
        capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("info", "text", node_name="node0")
    emit_a_running_node()
    lines = capsys.readouterr().err.splitlines()
    assert [line.split(" ", 1)[1] for line in lines] == [
        "node0 WARNING libp2p.pubsub.gossipsub: a real libp2p warning",
        "node0 INFO    wekacoin.node: RPC (JSON-RPC, for the CLI and wallets) on http://x/",
        "node0 INFO    wekacoin.net.peering: peer 12D3Koo joined (tip 7, wekacoin/0.1)",
    ]


@pytest.mark.usefixtures("restore_logging")
def test_at_debug_the_blocks_and_libp2p_chatter_show_as_debug(
        capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging("debug", "json")
    emit_a_running_node()
    err = capsys.readouterr().err
    assert err.count('"level": "debug"') == 6
    for text in ["AUTO_CONNECTOR_STATE", "initiating 195 new dials", "Failed to open stream",
                 "block 7 1a2b3c txs=0", "round 7 decided"]:
        line = next(x for x in err.splitlines() if text in x)
        assert '"level": "debug"' in line, line
    assert '"level": "warning"' in err and err.count('"level": "info"') == 2
