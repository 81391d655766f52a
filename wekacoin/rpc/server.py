"""The HTTP side of JSON-RPC: a Starlette app served by Hypercorn under trio.

POST / takes JSON-RPC requests, the token read from `Authorization: Bearer <token>`; GET
/health answers "ok" for load balancers and scripts; GET /explorer/ serves the explorer, pages
that read the chain through POST / without the token (`wekacoin.explorer`).

Bodies are bounded before anything is parsed, because parsing runs on the event loop the node
shares with consensus (a thread would not help: `json.loads` holds the GIL throughout). A
request without a valid token may carry `limits.request_bytes` (1 MiB by default) and at most
`MAX_CONTAINERS` arrays and objects; one with the token (the operator: uploads of models and
datasets) `limits.upload_bytes`. Measured here, the worst 1 MiB body within those bounds
parses in a few milliseconds, where 57 MB of `[]` took 27 s and 2 GB of memory. Responses
larger than `limits.response_bytes` become an error asking for less.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

import trio
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from wekacoin.explorer.routes import explorer_routes
from wekacoin.rpc.protocol import INVALID_REQUEST, Dispatcher, Limits, _dump, _error

log = logging.getLogger("wekacoin.rpc")


def load_or_create_token(path: Path) -> str:
    """The node's RPC token, created (0600) on first use."""
    path = Path(path)
    try:
        token = path.read_text().strip()
        if token:
            return token
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


MAX_CONTAINERS = 10_000
"""Arrays and objects in a body (counted as `[` and `{` bytes, strings included: an upper
bound); a real request holds a few dozen."""


def make_app(dispatcher: Dispatcher, limits: Limits) -> Starlette:
    async def rpc(request: Request) -> Response:
        auth = request.headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        cap = limits.upload_bytes if dispatcher.authorized(token) else limits.request_bytes
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > cap):
            return _too_large(cap)
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > cap:
                return _too_large(cap)
        if body.count(b"[") + body.count(b"{") > MAX_CONTAINERS:
            return _refuse(400, f"more than {MAX_CONTAINERS} arrays and objects in one request")
        out = await dispatcher.handle(bytes(body), token)
        if out is None:
            return Response(status_code=204)
        return Response(out, media_type="application/json")

    async def health(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[
        Route("/", rpc, methods=["POST"]),
        Route("/health", health, methods=["GET"]),
        *explorer_routes(dispatcher),
    ])


def _too_large(limit: int) -> Response:
    return _refuse(413, f"request larger than {limit} bytes")


def _refuse(status: int, message: str) -> Response:
    body = _dump(_error(None, INVALID_REQUEST, message))
    return Response(body, status_code=status, media_type="application/json")


KEEP_ALIVE_S = 30
"""How long the server keeps an idle HTTP connection open. Longer than any client keeps one
for reuse (`wekacoin.rpc.client.KEEPALIVE_EXPIRY_S`, browsers' a few seconds more): when both
were Hypercorn's and httpx's 5 s, a client could send its next request on a connection the
server was closing that instant, and get a ReadError for a request the node never read."""


async def serve_http(
    app: Starlette, bind: str, port: int, shutdown: trio.Event, *,
    # trio-typing's stale stubs (a libp2p dependency) shadow trio's own types and hide TaskStatus
    task_status: trio.TaskStatus = trio.TASK_STATUS_IGNORED,  # type: ignore[name-defined]
) -> None:
    """Serve `app` until `shutdown` is set; `task_status.started` receives the bound URLs
    (port 0 picks a free port)."""
    config = HypercornConfig()
    config.bind = [f"{bind}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("wekacoin.rpc.http")
    config.graceful_timeout = 2
    config.keep_alive_timeout = KEEP_ALIVE_S
    # hypercorn's ASGI types refuse Starlette's equivalent ones (pgjones/hypercorn#353)
    await serve(
        app, config,  # type: ignore[arg-type]
        shutdown_trigger=shutdown.wait, task_status=task_status,
    )
