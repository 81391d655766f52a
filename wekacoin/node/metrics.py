"""Prometheus metrics of a node (served at /metrics on the metrics port)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_asgi_app
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from wekacoin.chain.tasks import Phase

OPEN_PHASES = tuple(p for p in Phase if p not in (Phase.SETTLED, Phase.EXPIRED, Phase.CANCELLED))
"""The phases of tasks still open (the others leave the open set)."""


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.height = Gauge("wekacoin_height", "Height of the chain tip", registry=r)
        self.peers = Gauge("wekacoin_peers", "Handshaken peers", registry=r)
        self.round = Gauge("wekacoin_consensus_round", "Current BA* round", registry=r)
        self.step = Gauge("wekacoin_consensus_step", "Current BA* step", registry=r)
        self.period = Gauge("wekacoin_consensus_period", "Current BA* period", registry=r)
        self.votes = Counter("wekacoin_votes_seen_total", "Votes received from peers", registry=r)
        self.votes_sent = Counter("wekacoin_votes_sent_total", "Own votes broadcast", registry=r)
        self.blocks = Counter("wekacoin_blocks_committed_total", "Committed blocks", ["final"],
                              registry=r)
        self.mempool = Gauge("wekacoin_mempool_txs", "Pending transactions", registry=r)
        self.tx_rejected = Counter("wekacoin_tx_rejected_total", "Refused transactions",
                                   registry=r)
        self.evaluation_seconds = Histogram(
            "wekacoin_evaluation_seconds", "Time to evaluate every model of a task",
            buckets=(0.5, 1, 2, 5, 10, 30, 60, 120, 300, 600), registry=r,
        )
        self.models_scored = Counter("wekacoin_models_scored_total", "Models evaluated",
                                     ["outcome"], registry=r)
        self.storage_held_bytes = Gauge(
            "wekacoin_storage_held_bytes", "Bytes of chain blobs held here", registry=r)
        self.storage_claimed_blobs = Gauge(
            "wekacoin_storage_claimed_blobs", "Blobs the validator claims on chain", registry=r)
        self.storage_credited_bytes = Gauge(
            "wekacoin_storage_credited_bytes", "Storage bytes credited at the last epoch",
            registry=r)
        self.storage_weight = Gauge(
            "wekacoin_storage_weight", "Storage weight counting now", registry=r)
        self.storage_last_result = Gauge(
            "wekacoin_storage_last_challenge", "Last storage challenge: 0 none, 1 passed, "
            "2 missed", registry=r)
        self.syncing = Gauge("wekacoin_syncing", "1 while catching up with peers", registry=r)
        self.sync_target_height = Gauge(
            "wekacoin_sync_target_height", "Highest tip the peers announced (at least ours)",
            registry=r)
        self.sync_progress = Gauge(
            "wekacoin_sync_progress_ratio", "Our height over the sync target height (1: caught "
            "up)", registry=r)
        self.tasks_open = Gauge("wekacoin_tasks_open", "Open tasks by phase", ["phase"],
                                registry=r)
        for phase in OPEN_PHASES:
            self.tasks_open.labels(phase=phase.name.lower())
        self.evaluations_running = Gauge(
            "wekacoin_evaluations_running", "Tasks being evaluated now", registry=r)
        self.peer_addrs_known = Gauge(
            "wekacoin_peer_addrs_known", "Peer addresses learned for dialling", registry=r)

    def asgi_app(self) -> Starlette:
        """/metrics (and /metrics/, answered the same, not redirected) in a Starlette app,
        which, unlike the bare exporter, speaks ASGI lifespan."""
        exporter = _Exporter(make_asgi_app(registry=self.registry))
        return Starlette(routes=[Route("/metrics", exporter), Route("/metrics/", exporter)])


class _Exporter:
    """The exporter as an ASGI app object: a Starlette `Route` calls an object as ASGI
    (a plain function would be taken for a request handler). A `Mount` would do the same
    but answers /metrics with a redirect to /metrics/, which some scrapers do not follow."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)
