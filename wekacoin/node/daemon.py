"""The node: wires the ports to the protocol and runs them under one trio nursery.

    store + mempool -> ChainService          (the ledger, `chain.py`)
    libp2p Network  -> gossip validators      (`gossip.py`), block/blob serving, sync (`sync.py`)
    BA* Player      -> ConsensusDriver        (`driver.py`), evaluation on worker threads
    blob store      -> Replicator, StorageKeeper (`replication.py`, `storage.py`)
    JSON-RPC + Prometheus over HTTP

SIGINT/SIGTERM stop it cleanly: the network leaves its peers, the servers stop, the sandbox
and the store close; a crash at any instant loses nothing committed (the store commits each
block in one atomic batch, and the consensus checkpoint is written before votes leave).
"""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVarTuple

import trio
from multiaddr import Multiaddr
from starlette.applications import Starlette

import wekacoin
from wekacoin.chain.state import State
from wekacoin.chain.storage import storage_proof_tx_bytes
from wekacoin.chain.transactions import sign_tx
from wekacoin.consensus.player import Player
from wekacoin.consensus.verify import Verifier
from wekacoin.content.embedded import EmbeddedBlobStore
from wekacoin.content.kubo import KuboBlobStore
from wekacoin.crypto.keys import KeyPair, format_address
from wekacoin.net import Network
from wekacoin.net.api import Topic
from wekacoin.net.blobstore import store_fetcher, store_provider
from wekacoin.net.config import GOSSIP_CEILING, NetConfig, TopicLimits
from wekacoin.node.admission import Admissions
from wekacoin.node.chain import ChainService
from wekacoin.node.config import NodeConfig
from wekacoin.node.driver import ConsensusDriver
from wekacoin.node.evaluation import EvaluationService, TaskScores, make_sandbox
from wekacoin.node.gossip import Validators
from wekacoin.node.holdings import holdings_of
from wekacoin.node.metrics import NodeMetrics
from wekacoin.node.phases import TaskPhases
from wekacoin.node.replication import Replicator
from wekacoin.node.rpc_api import BlobRpc, ChainRpc, NodeRpc, TaskRpc, TxRpc, ValidatorRpc
from wekacoin.node.storage import StorageKeeper, storage_status
from wekacoin.node.sync import Syncer
from wekacoin.rpc.protocol import Dispatcher, Limits
from wekacoin.rpc.server import load_or_create_token, make_app, serve_http
from wekacoin.store import ChainStore
from wekacoin.types.block import Block
from wekacoin.types.codec import encode
from wekacoin.types.genesis import Genesis, Params
from wekacoin.types.tx import TxBody

log = logging.getLogger("wekacoin.node")

HOUSEKEEPING_S = 1.0
GOSSIP_TOPICS = (Topic.TX, Topic.VOTE, Topic.PROPOSAL, Topic.RANKING)

Args = TypeVarTuple("Args")


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Node:
    def __init__(self, config: NodeConfig, keypair: KeyPair, genesis: Genesis,
                 clock: Callable[[], int] = wall_clock_ms) -> None:
        self.config = config
        self.keypair = keypair
        self.clock = clock
        data_dir = Path(config.node.data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        self.metrics = NodeMetrics()
        self.store = ChainStore.open(data_dir / "chain", genesis)
        try:
            self.chain = ChainService(self.store, genesis)
            pending, dropped = self.chain.resume_local(clock())
            if pending or dropped:
                log.info("transactions submitted here before the restart: %d pending again, "
                         "%d no longer valid", pending, dropped)
            self.blobs = self._open_blobs(data_dir)
            self.sandbox = make_sandbox(config.sandbox)
            self.evaluation = EvaluationService(self.blobs, self.sandbox)
            self.verifier = Verifier()
            keys = [keypair] if config.consensus.validate else []
            self.player = Player(keys, self.verifier)
            host, port = _host_port(config.network.listen)
            net_config = NetConfig(
                seed=keypair.seed, chain_id=genesis.chain_id,
                genesis_hash=self.chain.config.genesis_hash,
                listen_host=host, listen_port=port, bootstrap=config.network.bootstrap,
                max_peers=config.network.max_peers, target_peers=config.network.target_peers,
                topic_limits=TopicLimits(tx=gossip_tx_limit(genesis.params)),
            )
            self.net = Network(
                net_config, block_provider=self._provide_blocks,
                blob_provider=store_provider(self.blobs) if self._embedded else None,
            )
            self.syncer = Syncer(self.chain, self.net, self.verifier, self._synced, clock)
            self.driver = ConsensusDriver(
                self.chain, self.player, self.net.publish, self.metrics, clock,
                self._evaluate, self.syncer.fetch_block, self.syncer.sync,
                self.net.penalize,
            )
            self.admissions = Admissions(self.chain, self.evaluation)
            self.validators = Validators(self.chain, self.admissions, self.player, clock)
            self.phases = TaskPhases(self.chain.config.params, self.metrics)
            self.chain.on_tip(self._on_tip)
            self.replicator = Replicator(self.blobs)
            if config.consensus.validate:  # an evaluator needs every revealed blob
                self.chain.on_block(self.replicator.on_block)
            self.storage: StorageKeeper | None = None
            if config.consensus.validate and genesis.params.storage_weight_per_mib > 0:
                self.storage = StorageKeeper(
                    self.chain, holdings_of(self.blobs), keypair, config.storage.max_bytes,
                    self.send_own_tx, self.replicator.enqueue, self.metrics,
                )
                self.chain.on_block(self.storage.on_block)
                self.replicator.on_held(self.storage.on_held)
        except BaseException:
            self.store.close()
            raise
        self._nursery: trio.Nursery | None = None
        self.rpc_url: str | None = None
        self.shutdown: trio.Event | None = None  # created inside trio.run

    @property
    def _embedded(self) -> bool:
        return self.config.blobs.backend == "embedded"

    def _open_blobs(self, data_dir: Path) -> EmbeddedBlobStore | KuboBlobStore:
        b = self.config.blobs
        if self._embedded:
            return EmbeddedBlobStore(data_dir / "blobs", max_blob_size=b.max_blob_bytes,
                                     quota=b.quota_bytes or None)
        return KuboBlobStore(b.kubo_api, timeout=b.kubo_timeout_s, max_blob_size=b.max_blob_bytes)

    # -- running --

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        self.shutdown = trio.Event()
        self.sandbox.start()
        log.info("model sandbox: %s", self.sandbox.isolation.describe())
        try:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(self._watch_signals, signals, self.shutdown)
                    await self._start(nursery, self.shutdown)
                    task_status.started()
                    await self.shutdown.wait()
                    log.info("stopping")
                    self.net.stop()
                    nursery.cancel_scope.cancel()
        finally:
            self.sandbox.close()
            self.store.close()
            log.info("stopped at height %d", self.chain.height)

    async def _start(self, nursery: trio.Nursery, shutdown: trio.Event) -> None:
        await nursery.start(self.net.run)
        self.net.set_tip(self.chain.height, self.chain.state.get_block_hash())
        if isinstance(self.blobs, EmbeddedBlobStore):
            self.blobs.set_fetcher(store_fetcher(self.net.fetch_blob))
        for topic in GOSSIP_TOPICS:
            self.net.set_validator(topic, self.validators.for_topic(topic))
            nursery.start_soon(self._consume, topic)
        nursery.start_soon(self._peer_events)
        log.info("p2p (libp2p) on %s", ", ".join(self.net.listen_addrs()))
        if self.config.rpc.enabled:
            binds = await nursery.start(serve_http, self._rpc_app(), self.config.rpc.bind,
                                        self.config.rpc.port, shutdown)
            self.rpc_url = binds[0] + "/"
            log.info("RPC (JSON-RPC, for the CLI and wallets) on %s", self.rpc_url)
        if self.config.metrics.enabled:
            binds = await nursery.start(serve_http, self.metrics.asgi_app(),
                                        self.config.metrics.bind, self.config.metrics.port,
                                        shutdown)
            log.info("metrics (Prometheus) on %s/metrics", binds[0])
        log.info("node %s (peer %s) at height %d", format_address(self.keypair.address),
                 self.net.peer_id, self.chain.height)
        self._on_tip(self.chain.state)
        await nursery.start(self.driver.run)
        nursery.start_soon(self._housekeeping)
        nursery.start_soon(self.replicator.run)
        if self.storage is not None:
            nursery.start_soon(self.storage.run)
        nursery.start_soon(self.syncer.sync)

    async def _watch_signals(self, signals: AsyncIterator[int], shutdown: trio.Event) -> None:
        async for signum in signals:
            log.info("received %s", signal.Signals(signum).name)
            shutdown.set()
            return

    async def _consume(self, topic: Topic) -> None:
        async for message in self.net.messages(topic):
            if topic is not Topic.TX:  # transactions were admitted by the validator
                self.driver.on_gossip(topic, message.data, message.forwarder or "")

    async def _peer_events(self) -> None:
        async for event in self.net.events():
            status = getattr(event, "status", None)
            if status is not None and status.tip_height > self.chain.height:
                self._start_soon(self.syncer.sync)

    async def _housekeeping(self) -> None:
        while True:
            await trio.sleep(HOUSEKEEPING_S)
            self.chain.expire(self.clock())
            for raw in self.chain.local_due(self.clock()):
                self._relay_tx(raw)
            self._update_metrics()
            if self.syncer.best_peer_height() > self.chain.height + 1:
                self._start_soon(self.syncer.sync)

    def _update_metrics(self) -> None:
        m = self.metrics
        m.peers.set(len(self.net.peers()))
        m.peer_addrs_known.set(self.net.known_addrs())
        m.mempool.set(len(self.chain.mempool))
        progress = self.syncer.progress()
        m.syncing.set(int(progress.syncing))
        m.sync_target_height.set(progress.target_height)
        m.sync_progress.set(progress.local_height / max(1, progress.target_height))

    def _start_soon(self, fn: Callable[[*Args], Awaitable[object]], *args: *Args) -> None:
        assert self._nursery is not None, "the node is not running"
        self._nursery.start_soon(fn, *args)

    def _on_tip(self, state: State) -> None:
        self.net.set_tip(state.height, state.get_block_hash())
        self.metrics.height.set(state.height)
        self.phases.on_tip(state)

    def _evaluate(self, state: State, task_id: int, deadline: float) -> TaskScores:
        with self.metrics.evaluations_running.track_inprogress():
            return self.evaluation.evaluate(state, task_id, deadline)

    def _synced(self, block: Block | None) -> None:
        self.driver.on_ledger_advanced(block)

    def _provide_blocks(self, from_height: int, count: int) -> list[tuple[bytes, bytes]]:
        if from_height < 1:
            return []
        return list(self.chain.blocks(from_height, count))

    # -- RPC --

    def _rpc_app(self) -> Starlette:
        token = load_or_create_token(self.config.rpc.token_file)
        rpc = self.config.rpc
        dispatcher = Dispatcher(token, rpc.max_response_bytes)
        dispatcher.register("chain", ChainRpc(self.chain))
        dispatcher.register("tasks", TaskRpc(self.chain))
        dispatcher.register("tx", TxRpc(self.chain, self.admissions, self.clock, self._relay_tx))
        dispatcher.register("blobs", BlobRpc(self.blobs, rpc.max_response_bytes * 3 // 4))
        dispatcher.register("validators", ValidatorRpc(self.chain))
        dispatcher.register(
            "node", NodeRpc(self.status, self.peers, lambda: list(self.driver.vote_log))
        )
        return make_app(dispatcher, Limits(rpc.max_request_bytes, rpc.max_upload_bytes,
                                           rpc.max_response_bytes))

    def _relay_tx(self, raw: bytes) -> None:
        self._start_soon(self.net.publish, Topic.TX, raw)

    async def send_own_tx(self, body: TxBody) -> bytes:
        """Sign `body` with the node key and submit it the way `tx.submit` takes a client's
        transaction: admitted, journaled (pending across restarts, re-sent while pending) and
        gossiped. Returns its id; raises `Rejected` or a `MempoolError` when refused.

        The nonce is the mempool's next one for the key, and nothing awaits between reading it
        and admitting (only training reveals make `admit` wait), so two calls never take the
        same nonce."""
        address = self.keypair.address
        tx = sign_tx(self.keypair, self.chain.config.genesis_hash,
                     self.chain.mempool.next_nonce(address), self.chain.config.params.min_tx_fee,
                     body)
        raw = encode(tx)
        admission = await self.admissions.admit(tx, self.clock(), submitted=raw)
        self._relay_tx(raw)
        return admission.vtx.id

    def status(self) -> dict[str, Any]:
        state = self.chain.state
        address = self.keypair.address
        bond = state.get_bond(address)
        consensus = self.driver.status()
        return {
            "version": wekacoin.__version__, "chain_id": self.chain.config.chain_id,
            "genesis_hash": self.chain.config.genesis_hash.hex(),
            "height": state.height, "block_hash": state.get_block_hash().hex(),
            "state_root": state.root().hex(), "peers": len(self.net.peers()),
            "peer_id": self.net.peer_id, "listen": self.net.listen_addrs(),
            "syncing": self.syncer.syncing, "sync": self.syncer.progress().to_json(),
            "mempool": len(self.chain.mempool),
            "validator": {
                "address": format_address(address), "key": self.keypair.public_key.hex(),
                "stake": 0 if bond is None else bond.stake,
                "weight": 0 if bond is None else bond.weight,
                "participating": self.config.consensus.validate,
            },
            "storage": self._storage_status(state),
            "consensus": {"round": consensus.round, "period": consensus.period,
                          "step": consensus.step},
            "sandbox": self.sandbox.isolation.describe(),
            "blobs": self.config.blobs.backend,
        }

    def _storage_status(self, state: State) -> dict[str, Any]:
        if self.storage is not None:
            return self.storage.status(state)
        return storage_status(state, self.keypair.public_key)

    def peers(self) -> list[dict[str, Any]]:
        return [{"peer_id": p.peer_id, "height": p.tip_height, "tip": p.tip_hash.hex(),
                 "version": p.node_version} for p in self.net.peers()]


def gossip_tx_limit(params: Params) -> int:
    """The largest transaction gossip carries: the chain's largest (a storage proof holds up
    to two 256 KiB leaves), within what one pubsub frame can hold."""
    largest = params.max_tx_bytes
    if params.storage_weight_per_mib > 0:
        largest = max(largest, storage_proof_tx_bytes(params))
    return min(GOSSIP_CEILING, max(TopicLimits().tx, largest))


def _host_port(listen: str) -> tuple[str, int]:
    addr = Multiaddr(listen)
    host = addr.value_for_protocol("ip4")
    port = int(addr.value_for_protocol("tcp"))
    return host, port
