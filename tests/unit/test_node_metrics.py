"""The node's operator view: /metrics served as is, the sync progress in node.status and on
/metrics, open tasks by phase (with their INFO lines), evaluations in progress."""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import trio

from wekacoin.chain.tasks import Phase, training_reveal_deadline
from wekacoin.net.api import PeerStatus
from wekacoin.node.metrics import OPEN_PHASES, NodeMetrics
from wekacoin.node.phases import TaskPhases
from wekacoin.node.sync import CATCH_UP_BLOCKS, Syncer
from wekacoin.rpc.server import serve_http
from wekacoin.testing.chain import LocalChain

DOCS = (Path(__file__).parents[2] / "docs" / "rpc.md").read_text()


def sample(metrics: NodeMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_metrics_are_served_at_slash_metrics_without_a_redirect() -> None:
    metrics = NodeMetrics()
    metrics.height.set(42)

    async def main() -> dict[str, httpx.Response]:
        shutdown = trio.Event()
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(serve_http, metrics.asgi_app(), "127.0.0.1", 0, shutdown)
            async with httpx.AsyncClient(timeout=10) as client:
                got = {path: await client.get(binds[0] + path, follow_redirects=False)
                       for path in ("/metrics", "/metrics/", "/")}
            shutdown.set()
        return got

    got = trio.run(main)
    for path in ("/metrics", "/metrics/"):
        assert got[path].status_code == 200, (path, got[path].headers)
        assert "wekacoin_height 42.0" in got[path].text
        assert got[path].headers["content-type"].startswith("text/plain")
    assert got["/"].status_code == 404


def test_every_metric_has_the_prefix_and_is_listed_in_the_docs() -> None:
    names = {f.name + ("_total" if f.type == "counter" else "")
             for f in NodeMetrics().registry.collect()}
    assert names and all(n.startswith("wekacoin_") for n in names)
    for name in ["wekacoin_syncing", "wekacoin_sync_target_height",
                 "wekacoin_sync_progress_ratio", "wekacoin_tasks_open",
                 "wekacoin_evaluations_running", "wekacoin_peer_addrs_known"]:
        assert name in names
    listed = set(re.findall(r"^\| `(wekacoin_[a-z_]+)`", DOCS, re.M))
    assert listed == names, f"undocumented: {names - listed}, gone: {listed - names}"


def test_evaluations_in_progress_count_up_and_down() -> None:
    metrics = NodeMetrics()
    inside, release = threading.Event(), threading.Event()

    def evaluate() -> None:
        with metrics.evaluations_running.track_inprogress():
            inside.set()
            release.wait(10)

    worker = threading.Thread(target=evaluate)
    worker.start()
    assert inside.wait(10)
    assert sample(metrics, "wekacoin_evaluations_running") == 1
    release.set()
    worker.join(10)
    assert sample(metrics, "wekacoin_evaluations_running") == 0


# -- sync progress -------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> int:
        return self.ms


def syncer_at(height: int, peer_tips: list[int], clock: FakeClock) -> Syncer:
    chain = SimpleNamespace(height=height)
    net = SimpleNamespace(peers=lambda: [PeerStatus(f"p{i}", tip, b"\0" * 32, "v")
                                         for i, tip in enumerate(peer_tips)])
    return Syncer(chain, net, None, lambda block: None, clock)  # type: ignore[arg-type]


def test_sync_progress_against_the_peers_tips() -> None:
    clock = FakeClock()
    syncer = syncer_at(10, [25, 40], clock)
    progress = syncer.progress()
    assert (progress.syncing, progress.target_height, progress.local_height) == (False, 40, 10)
    assert progress.behind == 30 and progress.blocks_per_s is None
    assert progress.to_json() == {"syncing": False, "target_height": 40, "local_height": 10,
                                  "behind": 30, "blocks_per_s": None}
    ahead = syncer_at(50, [25], clock).progress()  # peers behind us: the target is our tip
    assert (ahead.target_height, ahead.behind) == (50, 0)
    alone = syncer_at(0, [], clock).progress()
    assert (alone.target_height, alone.behind) == (0, 0)


def test_the_catch_up_rate_is_known_after_a_second_of_syncing() -> None:
    clock = FakeClock()
    syncer = syncer_at(10, [100], clock)
    syncer.syncing, syncer._started = True, (clock.ms, 10)
    clock.ms += 500
    syncer.chain.height = 12  # type: ignore[misc]
    assert syncer.progress().blocks_per_s is None  # under a second: not yet
    clock.ms += 1_500
    syncer.chain.height = 30  # type: ignore[misc]
    assert syncer.progress().blocks_per_s == pytest.approx(10.0)
    assert syncer.progress().to_json()["blocks_per_s"] == 10.0


def test_a_long_catch_up_is_logged_at_info_and_a_short_one_at_debug(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()

    async def sync_from(height: int, tips: list[int], gain: int) -> None:
        syncer = syncer_at(height, tips, clock)

        async def catch_up() -> None:
            clock.ms += 2_000
            syncer.chain.height += gain  # type: ignore[misc]

        syncer._catch_up = catch_up  # type: ignore[method-assign]
        await syncer.sync()

    with caplog.at_level(logging.INFO, logger="wekacoin"):
        trio.run(sync_from, 10, [11], 1)  # following the tip
        assert not caplog.records
        trio.run(sync_from, 10, [10 + 5 * CATCH_UP_BLOCKS], 5 * CATCH_UP_BLOCKS)
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [f"catching up: height 10, peers at {10 + 5 * CATCH_UP_BLOCKS} "
                     f"({5 * CATCH_UP_BLOCKS} blocks behind)",
                     f"caught up at height {10 + 5 * CATCH_UP_BLOCKS}: "
                     f"{5 * CATCH_UP_BLOCKS} blocks in 2.0 s"]


def test_sync_fields_are_documented() -> None:
    section = DOCS.split("### `node.status()`", 1)[1].split("###", 1)[0]
    for field in syncer_at(1, [2], FakeClock()).progress().to_json():
        assert f'"{field}"' in section


# -- task phases ---------------------------------------------------------------------------


def test_open_tasks_by_phase_and_a_line_per_phase(caplog: pytest.LogCaptureFixture) -> None:
    chain = LocalChain()
    metrics = NodeMetrics()
    phases = TaskPhases(chain.params, metrics)
    phases.on_tip(chain.state)
    assert all(sample(metrics, "wekacoin_tasks_open", phase=p.name.lower()) == 0
               for p in OPEN_PHASES)
    spec, _ = chain.task_spec()
    chain.commit([chain.tx(chain.keys[4], spec)])
    with caplog.at_level(logging.INFO, logger="wekacoin"):
        phases.on_tip(chain.state)
        assert sample(metrics, "wekacoin_tasks_open", phase="awaiting_training") == 1
        deadline = training_reveal_deadline(chain.state.get_existing_task(1), chain.params)
        while chain.height <= deadline:  # the supplier never reveals: the task is cancelled
            chain.commit()
            phases.on_tip(chain.state)
    assert sample(metrics, "wekacoin_tasks_open", phase="awaiting_training") == 0
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [f"task 1: {Phase.AWAITING_TRAINING.value} (height 1)",
                     f"task 1: {Phase.CANCELLED.value} (height {deadline + 1})"]
