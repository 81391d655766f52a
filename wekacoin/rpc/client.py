"""A JSON-RPC client for the node (used by the CLI, the tests and the testnet tools)."""

from __future__ import annotations

import itertools
from typing import Any

import httpx

from wekacoin.errors import WekaError


class RpcCallError(WekaError):
    """The node answered with a JSON-RPC error."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{method}: {message}")
        self.method = method
        self.code = code
        self.message = message
        self.data = data


class NodeUnreachable(WekaError):
    """No node answered at the RPC address."""


KEEPALIVE_EXPIRY_S = 5.0
"""How long the client reuses an idle connection: well under the server's keep-alive
(`wekacoin.rpc.server.KEEP_ALIVE_S`), so the server never closes one the client still uses."""


class RpcClient:
    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.url = url
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(headers=headers, timeout=timeout,
                                  limits=httpx.Limits(keepalive_expiry=KEEPALIVE_EXPIRY_S))
        self._ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> Any:
        request = {"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}
        try:
            response = self._http.post(self.url, json=request)
        except httpx.TransportError as e:
            raise NodeUnreachable(f"no node answers at {self.url} ({type(e).__name__})") from None
        try:
            body = response.json()
        except ValueError:
            raise WekaError(
                f"{self.url} answered HTTP {response.status_code} without JSON"
            ) from None
        if "error" in body:
            err = body["error"]
            raise RpcCallError(method, err.get("code", 0), err.get("message", ""), err.get("data"))
        return body["result"]

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RpcClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
