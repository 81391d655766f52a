"""Request/response streams: block ranges, blobs, limits, timeouts, and garbage."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import trio
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID

from tests.helpers.net_helpers import net_config, peer_ids, run_net_test, running, wait_until
from wekacoin.net import Network, reqresp
from wekacoin.net.blobs import BLOB_PROTOCOL
from wekacoin.net.blocks import BLOCKS_PROTOCOL
from wekacoin.net.errors import (
    BlobUnavailableError,
    ProtocolViolationError,
    RemoteStatusError,
    RequestTimeoutError,
    ResponseTooLargeError,
    SyncError,
)
from wekacoin.net.handshake import HELLO_PROTOCOL
from wekacoin.net.messages import BlobRequest, BlockRangeRequest
from wekacoin.net.reqresp import Status
from wekacoin.types.codec import encode

CHAIN = [(b"block %d" % h, b"cert %d" % h) for h in range(100)]


def chain_provider(calls: list[tuple[int, int]]):  # type: ignore[no-untyped-def]
    def provide(from_height: int, count: int) -> list[tuple[bytes, bytes]]:
        calls.append((from_height, count))
        return CHAIN[from_height:from_height + count]
    return provide


async def pair(a: Network, b: Network) -> None:
    await b.connect(a.listen_addrs()[0])
    await wait_until(lambda: a.peer_id in peer_ids(b) and b.peer_id in peer_ids(a),
                     what="handshake")


def test_block_ranges_in_bounded_batches() -> None:
    async def scenario() -> None:
        calls: list[tuple[int, int]] = []
        server = Network(net_config(80, max_blocks_per_request=8),
                         block_provider=chain_provider(calls))
        client = Network(net_config(81))
        async with running(server, client):
            await pair(server, client)
            blocks = await client.request_blocks(server.peer_id, 10, 50, batch_size=16)
            assert [(b.block, b.certificate) for b in blocks] == CHAIN[10:60]
            assert all(count <= 8 for _, count in calls) and len(calls) == 7
            tail = await client.request_blocks(server.peer_id, 95, 20)
            assert [b.block for b in tail] == [b"block %d" % h for h in range(95, 100)]
            assert await client.request_blocks(server.peer_id, 500, 3) == []
            # A node without a provider answers NOT_FOUND.
            with pytest.raises(SyncError) as err:
                await server.request_blocks(client.peer_id, 0, 1)
            assert isinstance(err.value.__cause__, RemoteStatusError)

    run_net_test(scenario)


def test_block_requests_time_out_per_batch_and_in_total() -> None:
    async def scenario() -> None:
        async def stuck(from_height: int, count: int) -> list[tuple[bytes, bytes]]:
            await trio.sleep_forever()
            return []

        async def slow(from_height: int, count: int) -> list[tuple[bytes, bytes]]:
            await trio.sleep(0.2)
            return CHAIN[from_height:from_height + count]

        silent = Network(net_config(82), block_provider=stuck)
        sluggish = Network(net_config(83), block_provider=slow)
        client = Network(net_config(84))
        async with running(silent, sluggish, client):
            await pair(silent, client)
            await pair(sluggish, client)
            start = trio.current_time()
            with pytest.raises(SyncError) as err:
                await client.request_blocks(silent.peer_id, 0, 5, request_timeout=0.5)
            assert isinstance(err.value.__cause__, RequestTimeoutError)
            assert err.value.partial == () and trio.current_time() - start < 2.0

            with pytest.raises(SyncError) as err:
                await client.request_blocks(sluggish.peer_id, 0, 50, batch_size=5,
                                            total_timeout=0.7)
            assert 5 <= len(err.value.partial) < 50
            assert [b.block for b in err.value.partial] == [
                b"block %d" % h for h in range(len(err.value.partial))]

    run_net_test(scenario)


def test_blobs_come_verified_from_whichever_peer_has_them() -> None:
    good = b"model bytes " * 100
    cid = "cid-" + hashlib.sha256(good).hexdigest()

    def verify(data: bytes) -> bool:
        return "cid-" + hashlib.sha256(data).hexdigest() == cid

    async def scenario() -> None:
        holder = Network(net_config(90), blob_provider=lambda c: good if c == cid else None)
        empty = Network(net_config(91), blob_provider=lambda c: None)
        liar = Network(net_config(92), blob_provider=lambda c: b"not the model")
        client = Network(net_config(93))
        async with running(holder, empty, liar, client):
            for server in (holder, empty, liar):
                await pair(server, client)
            order = [empty.peer_id, liar.peer_id, holder.peer_id]
            data = await client.fetch_blob(cid, verify, 1 << 20, peers=order)
            assert data == good
            assert client.penalty(liar.peer_id) >= 4.9
            assert await client.fetch_blob(cid, verify, 1 << 20) == good  # any peer
            with pytest.raises(BlobUnavailableError):
                await client.fetch_blob("cid-unknown", verify, 1 << 20,
                                        peers=[empty.peer_id, holder.peer_id])

    run_net_test(scenario)


def test_oversized_blobs_are_refused_without_reading_them() -> None:
    big = bytes(2 << 20)

    async def scenario() -> None:
        server = Network(net_config(100), blob_provider=lambda c: big)
        client = Network(net_config(101))
        verified: list[int] = []
        async with running(server, client):
            await pair(server, client)
            with pytest.raises(BlobUnavailableError):
                await client.fetch_blob("x", lambda d: verified.append(len(d)) or True,
                                        1 << 20, peers=[server.peer_id])
            assert verified == []

            # A peer that announces 1 GiB and then stalls is cut off at the length.
            async def liar(stream) -> None:  # type: ignore[no-untyped-def]
                await stream.read(100)
                await stream.write(bytes([Status.OK]) + (1 << 30).to_bytes(4, "big") + b"x")
                await trio.sleep(30)

            server._host.set_stream_handler(TProtocol("/test/huge"), liar)
            start = trio.current_time()
            with pytest.raises(ResponseTooLargeError):
                await reqresp.request(client._host, server.peer_id, "/test/huge",
                                      b"give", timeout=10, max_response=1 << 20)
            assert trio.current_time() - start < 2.0

            # And the size the blob really has is within reach once the caller allows it.
            assert await client.fetch_blob("x", lambda d: True, 4 << 20) == big

    run_net_test(scenario)


def test_garbage_on_our_streams_never_crashes_a_server() -> None:
    async def scenario() -> None:
        calls: list[tuple[int, int]] = []
        server = Network(net_config(110, penalty_threshold=1000.0),
                         block_provider=chain_provider(calls),
                         blob_provider=lambda c: b"blob")
        client = Network(net_config(111))
        async with running(server, client):
            await pair(server, client)
            peer = ID.from_base58(server.peer_id)
            junk = [
                b"",  # nothing, then close
                b"\x00\x00",  # half a length
                b"\xff\xff\xff\xff",  # 4 GiB request
                b"\x00\x00\x00\x05abc",  # truncated body
                b"\x00\x00\x00\x03\xff\xfe\xfd",  # not CBOR
                (len(encode(BlobRequest("x"))) + 1).to_bytes(4, "big")
                + encode(BlobRequest("x")) + b"\x00",  # trailing byte
                len(encode(BlockRangeRequest(1, 2))).to_bytes(4, "big")
                + encode(BlockRangeRequest(1, 2))[:-1] + b"\xff",  # wrong type
            ]
            for protocol in (HELLO_PROTOCOL, BLOCKS_PROTOCOL, BLOB_PROTOCOL):
                for data in junk:
                    stream = await client._host.new_stream(peer, [TProtocol(protocol)])
                    await stream.write(data)
                    await stream.close()
                    with trio.move_on_after(2):
                        try:
                            while await stream.read(1024):
                                pass
                        except Exception:
                            pass
            # Requests of the right shape still work.
            got = await client.request_blocks(server.peer_id, 3, 2)
            assert [b.block for b in got] == [b"block 3", b"block 4"]
            assert await client.fetch_blob("y", lambda d: True, 100) == b"blob"
            with pytest.raises(ProtocolViolationError):
                await reqresp.request(client._host, server.peer_id, "/not/served", b"",
                                      timeout=5, max_response=10)
            assert server.peers()  # malformed requests are penalised, not fatal
            assert server.penalty(client.peer_id) > 10

    run_net_test(scenario)


def test_embedded_blob_stores_fetch_from_each_other(tmp_path: Path) -> None:
    from wekacoin.content.embedded import EmbeddedBlobStore
    from wekacoin.content.errors import BlobNotFoundError
    from wekacoin.net.blobstore import store_fetcher, store_provider

    model = bytes(range(256)) * 2000  # 512 KB: more than one 256 KiB chunk

    async def scenario() -> None:
        holder_store = EmbeddedBlobStore(tmp_path / "a")
        cid = holder_store.put(model)
        holder = Network(net_config(120), blob_provider=store_provider(holder_store))
        asker = Network(net_config(121))
        async with running(holder, asker):
            fetcher = store_fetcher(asker.fetch_blob)
            asker_store = EmbeddedBlobStore(tmp_path / "b", fetcher=fetcher)
            asker.blob_provider = store_provider(asker_store)
            await pair(holder, asker)
            assert await trio.to_thread.run_sync(asker_store.get, cid) == model
            assert asker_store.has(cid)  # cached after verification
            missing = EmbeddedBlobStore(tmp_path / "c").put(b"only here")
            with pytest.raises(BlobNotFoundError):
                await trio.to_thread.run_sync(asker_store.get, missing)
            # Garbage CIDs are the asker's fault: answered BAD_REQUEST, counted against it.
            with pytest.raises(BlobUnavailableError):
                await asker.fetch_blob("../../etc/passwd", lambda d: True, 100)
            assert holder.penalty(asker.peer_id) > 0

    run_net_test(scenario)
