"""Every RPC method the node serves is documented in docs/rpc.md, and nothing else is."""

import re
from pathlib import Path

from wekacoin.node import rpc_api

NAMESPACES = {"chain": rpc_api.ChainRpc, "tasks": rpc_api.TaskRpc, "tx": rpc_api.TxRpc,
              "blobs": rpc_api.BlobRpc, "node": rpc_api.NodeRpc}


def test_every_method_is_documented_with_its_token_requirement():
    served, mutating = set(), set()
    for namespace, cls in NAMESPACES.items():
        for attr in dir(cls):
            meta = getattr(getattr(cls, attr), "__rpc__", None)
            if meta is not None:
                served.add(f"{namespace}.{attr}")
                if meta["mutating"]:
                    mutating.add(f"{namespace}.{attr}")
    text = (Path(__file__).parents[2] / "docs" / "rpc.md").read_text()
    headings = re.findall(r"^### `([a-z]+\.[a-z_]+)\(.*$", text, re.M)
    assert set(headings) == served
    token = {m for m in served if re.search(rf"^### `{re.escape(m)}\(.*— token$", text, re.M)}
    assert token == mutating
