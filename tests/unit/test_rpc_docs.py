"""Every RPC method the node serves is documented in docs/rpc.md, and nothing else is."""

import re
from pathlib import Path

from wekacoin.node import rpc_api
from wekacoin.rpc.protocol import get_rpc_mutating

NAMESPACES = {"chain": rpc_api.ChainRpc, "tasks": rpc_api.TaskRpc, "tx": rpc_api.TxRpc,
              "blobs": rpc_api.BlobRpc, "node": rpc_api.NodeRpc,
              "validators": rpc_api.ValidatorRpc}


def test_every_method_is_documented_with_its_token_requirement():
    served, mutating = set(), set()
    for namespace, cls in NAMESPACES.items():
        for attr in dir(cls):
            marked = get_rpc_mutating(getattr(cls, attr))
            if marked is not None:
                served.add(f"{namespace}.{attr}")
                if marked:
                    mutating.add(f"{namespace}.{attr}")
    text = (Path(__file__).parents[2] / "docs" / "rpc.md").read_text()
    headings = re.findall(r"^### `([a-z]+\.[a-z_]+)\(.*$", text, re.M)
    assert set(headings) == served
    token = {m for m in served if re.search(rf"^### `{re.escape(m)}\(.*— token$", text, re.M)}
    assert token == mutating
