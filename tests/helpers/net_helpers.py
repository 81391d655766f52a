"""Helpers for the network tests: configs, running several `Network`s in one trio run,
waiting on conditions (never bare sleeps), and checking that a shutdown left nothing behind.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import trio

from wekacoin.net import NetConfig, Network
from wekacoin.waiting import wait_until_async

CHAIN = "wekatest"
GENESIS = hashlib.sha256(b"wekatest genesis").digest()


def net_config(index: int, *, bootstrap: tuple[str, ...] = (), chain_id: str = CHAIN,
               genesis_hash: bytes = GENESIS, **overrides: Any) -> NetConfig:
    """A config on 127.0.0.1 with a free port and a seed derived from `index`."""
    seed = hashlib.sha256(b"net test node %d" % index).digest()
    defaults: dict[str, Any] = dict(reconnect_min_delay=0.2, reconnect_max_delay=1.0,
                                    dial_timeout=3.0, hello_timeout=3.0)
    defaults.update(overrides)
    return NetConfig(seed=seed, chain_id=chain_id, genesis_hash=genesis_hash,
                     bootstrap=bootstrap, **defaults)


async def wait_until(predicate: Callable[[], object], *, timeout: float = 10.0,
                     what: str = "condition") -> None:
    """`wekacoin.waiting.wait_until_async` with the network tests' defaults: every 20 ms,
    for at most 10 s."""
    await wait_until_async(predicate, timeout=timeout, interval=0.02, what=what)


@asynccontextmanager
async def running(*nets: Network) -> AsyncIterator[tuple[Network, ...]]:
    """Run the networks for the block; each is stopped (and fully shut down) on exit."""
    async with AsyncExitStack() as stack:
        for net in nets:
            await stack.enter_async_context(net.running())
        yield nets


def peer_ids(net: Network) -> set[str]:
    return {p.peer_id for p in net.peers()}


async def wait_for_mesh(nets: list[Network], topic: Any, *, timeout: float = 10.0) -> None:
    """Wait until every handshaken link carries full messages on `topic` both ways."""
    def ready() -> bool:
        return all(peer_ids(n) and peer_ids(n) <= set(n.mesh_peers(topic)) for n in nets)

    await wait_until(ready, timeout=timeout, what=f"gossip mesh on {topic}")


def other_tasks() -> list[str]:
    """Names of running trio tasks other than the current task and its ancestors."""
    current = trio.lowlevel.current_task()
    ancestors = set()
    task: Any = current
    while task is not None:
        ancestors.add(task)
        nursery = task.parent_nursery
        task = nursery.parent_task if nursery is not None else None
    found: list[str] = []

    def walk(t: Any) -> None:
        if t not in ancestors:
            found.append(t.name)
        for nursery in t.child_nurseries:
            for child in nursery.child_tasks:
                walk(child)

    walk(trio.lowlevel.current_root_task())
    return [n for n in found if "TrioToken.run_sync_soon" not in n]


class LogCapture(logging.Handler):
    """Every record at WARNING or above, from every logger, while installed."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def messages(self) -> list[str]:
        out = []
        for r in self.records:
            text = r.getMessage()
            if r.exc_info and r.exc_info[1] is not None:
                text += f" [{r.exc_info[1]!r}]"
            out.append(f"{r.name}: {text}")
        return out


def run_net_test(test: Callable[[], Awaitable[None]]) -> list[str]:
    """Run an async test in trio; afterwards no task may be left running and no log line may
    mention a closed nursery. Returns the WARNING+ log lines for further checks."""
    capture = LogCapture()
    root = logging.getLogger()
    root.addHandler(capture)
    try:
        async def main() -> None:
            await test()
            leftover = other_tasks()
            assert not leftover, f"tasks still running after shutdown: {leftover}"

        trio.run(main)
    finally:
        root.removeHandler(capture)
    lines = capture.messages()
    if os.environ.get("NET_TEST_SHOW_LOGS"):
        print("\n".join(lines), file=sys.stderr)
    closed = [line for line in lines if "Nursery is closed" in line]
    assert not closed, f"shutdown errors: {closed}"
    return lines
