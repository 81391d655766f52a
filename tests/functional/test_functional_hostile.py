"""Functional tests of hostile input: malformed RPC requests and garbage gossip leave every
node running and making blocks, and are answered (RPC) or rejected (gossip) cleanly."""

from __future__ import annotations

import json
import re
import socket

import httpx
import pytest
import trio

from wekacoin.net import Topic
from wekacoin.testing.functional import FunctionalNode, NodeGroup
from wekacoin.testing.functional_gossip import flood, make_intruder

pytestmark = pytest.mark.slow

PARSE_ERROR, INVALID_REQUEST, METHOD_NOT_FOUND, INVALID_PARAMS = -32700, -32600, -32601, -32602
INTERNAL_ERROR, UNAUTHORIZED, NOT_FOUND, REJECTED = -32603, -32001, -32004, -32010


def new_log(node: FunctionalNode, marks: dict[str, int]) -> str:
    return node.log_text(marks[node.name])


def assert_healthy(group: NodeGroup, marks: dict[str, int]) -> None:
    """Every node still runs, the chain still grows and agrees, and no node logged a crash."""
    for node in group.nodes:
        assert node.is_running(), f"{node.name} died\n{node.log_tail()}"
    group.wait_for_blocks(3)
    group.sync_all()
    group.assert_not_logged(marks, "Traceback")


def rpc_post(node: FunctionalNode, body: bytes, token: bool = True) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {node.token}"
    return httpx.post(node.rpc_url, content=body, headers=headers, timeout=30)


def call(method: str, params) -> bytes:
    return json.dumps({"jsonrpc": "2.0", "id": 7, "method": method, "params": params}).encode()


# (request body, the JSON-RPC error code it must get)
MALFORMED_REQUESTS = [
    (b"\x00\xff garbage {{{", PARSE_ERROR),
    (b'{"jsonrpc":"2.0","id":1,"method":"\xff\xfe"}', PARSE_ERROR),
    (b'{"jsonrpc":"2.0","id":' + b"9" * 5000 + b',"method":"node.status"}', PARSE_ERROR),
    (b"", PARSE_ERROR),
    (b"null", INVALID_REQUEST),
    (b"42", INVALID_REQUEST),
    (b"[]", INVALID_REQUEST),
    (json.dumps([{"jsonrpc": "2.0", "id": i, "method": "node.status"}
                 for i in range(101)]).encode(), INVALID_REQUEST),
    (b'{"jsonrpc":"1.0","id":1,"method":"node.status"}', INVALID_REQUEST),
    (b'{"jsonrpc":"2.0","id":{},"method":"node.status"}', INVALID_REQUEST),
    (b'{"jsonrpc":"2.0","id":1,"method":5}', INVALID_REQUEST),
    (b'{"jsonrpc":"2.0","id":1,"method":"no.such"}', METHOD_NOT_FOUND),
    (b'{"jsonrpc":"2.0","id":1,"method":"node.status","params":"x"}', INVALID_PARAMS),
    (call("node.status", {"x": 1}), INVALID_PARAMS),
    (call("node.peers", [1]), INVALID_PARAMS),
    (call("chain.block", {"height": "x"}), INVALID_PARAMS),
    (call("chain.block", {"height": 1.5}), INVALID_PARAMS),
    (call("chain.block", {"hash": 5}), INVALID_PARAMS),
    (call("chain.block", {"height": 10**30}), NOT_FOUND),
    (call("chain.tx", {"id": "ab"}), INVALID_PARAMS),
    (call("chain.account", {"address": "x" * 1000}), INVALID_PARAMS),
    (call("chain.account", {"address": 5}), INVALID_PARAMS),
    (call("chain.account", {"address": []}), INVALID_PARAMS),
    (call("tx.pending", {"address": 5}), INVALID_PARAMS),
    (call("tasks.get", {"task_id": "1"}), INVALID_PARAMS),
    (call("tasks.get", {"task_id": 10**6}), NOT_FOUND),
    (call("tasks.get", {"task_id": -1}), INVALID_PARAMS),
    (call("tasks.get", {"task_id": 2**64}), INVALID_PARAMS),
    (call("tx.submit", {"tx": "zz"}), INVALID_PARAMS),
    (call("tx.submit", {"tx": "00"}), REJECTED),
    (call("tx.submit", {"tx": "81" * 30000}), REJECTED),
    (call("blobs.get", {"cid": 5}), INVALID_PARAMS),
    (call("blobs.get", {"cid": "bafyxxxxxxxx"}), INVALID_PARAMS),
    (call("blobs.put", {"data": "!!!"}), INVALID_PARAMS),
]


def test_malformed_rpc_requests_get_errors_and_nodes_keep_going(network: NodeGroup) -> None:
    marks = network.log_marks()
    node = network.nodes[1]
    wrong = []
    for body, code in MALFORMED_REQUESTS:
        answer = rpc_post(node, body).json()
        error = answer.get("error", {}) if isinstance(answer, dict) else {}
        if error.get("code") != code:
            wrong.append(f"{body[:100]!r}: expected {code}, got {answer}")
        elif re.search(r"'\w+' object", error.get("message", "")):  # Python's words, not ours
            wrong.append(f"{body[:100]!r}: the message leaks an exception: {error['message']}")
    assert not wrong, "\n".join(wrong)
    # a mutating call without the token
    answer = rpc_post(node, call("tx.submit", {"tx": "00"}), token=False).json()
    assert answer["error"]["code"] == UNAUTHORIZED
    # bodies over rpc.max_request_bytes (64 MiB): declared, and streamed without a length
    r = _raw_http(node, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 1000000000000\r\nConnection: close\r\n\r\n{")
    assert r.startswith(b"HTTP/1.1 413"), r[:200]
    r2 = httpx.post(node.rpc_url, content=(b"[" * 2**20 for _ in range(70)), timeout=60)
    assert r2.status_code == 413 and r2.json()["error"]["code"] == INVALID_REQUEST
    # not HTTP at all, and HTTP that is not a POST
    assert _raw_http(node, b"\x00\x01\x02 GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert httpx.get(node.rpc_url, timeout=10).status_code == 405
    assert_healthy(network, marks)


def test_deeply_nested_json_is_a_parse_error(network: NodeGroup) -> None:
    node = network.nodes[1]
    r = rpc_post(node, b"[" * 5_000 + b"]" * 5_000)
    assert r.status_code == 200 and r.json()["error"]["code"] == PARSE_ERROR


def test_a_body_of_many_containers_is_refused_unparsed(network: NodeGroup) -> None:
    """Issue 11: 57 MB of `[]` stalled a node for 27 s. Bodies without the token stop at
    1 MiB and 10,000 arrays and objects, before parsing; the node answers at once."""
    node = network.nodes[1]
    r = rpc_post(node, b"[" * 100_000 + b"]" * 100_000, token=False)
    assert r.status_code == 400 and r.json()["error"]["code"] == INVALID_REQUEST
    big = rpc_post(node, b"[" + b"[]," * 400_000 + b"[]]", token=False)  # 1.2 MB
    assert big.status_code == 413
    assert node.status()["height"] >= 0


def _raw_http(node: FunctionalNode, data: bytes) -> bytes:
    port = int(node.rpc_url.rsplit(":", 1)[1].strip("/"))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out


def test_garbage_gossip_is_rejected_and_nodes_keep_going(network: NodeGroup) -> None:
    marks = network.log_marks()
    info = network.nodes[0].call("chain.info")
    genesis_hash = bytes.fromhex(info["genesis_hash"])
    addrs = [network.p2p_addr(n) for n in network.nodes]
    node_ids = {n.status()["peer_id"] for n in network.nodes}
    intruders = [make_intruder(t, info["chain_id"], genesis_hash, addrs) for t in Topic]

    def banned(intruder) -> bool:
        line = (f"refusing peer {intruder.peer_id} for 600 s: penalty threshold reached "
                f"(last: {intruder.topic.value} message rejected by the validator)")
        return all(line in new_log(n, marks) for n in network.nodes)

    trio.run(flood, intruders, node_ids, genesis_hash, banned)
    for node in network.nodes:
        peers = node.peer_ids()
        assert not peers & {i.peer_id for i in intruders}, f"{node.name} still peers an intruder"
    assert_healthy(network, marks)
    network.assert_not_logged(marks, "failed; message ignored")  # a validator that raised
