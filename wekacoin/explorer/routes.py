"""The explorer's HTTP routes, added to the RPC app (`wekacoin.rpc.server.make_app`).

    GET /explorer             -> redirect to /explorer/
    GET /explorer/            -> index.html
    GET /explorer/<asset>     -> one of the files in assets/ (an allow-list read at start-up:
                                 no path from a request ever reaches the file system)
    GET /explorer/blob/<cid>  -> a blob's bytes as a download, through `blobs.get` without a
                                 token, exactly as an anonymous RPC client would get them

Every answer carries `SECURITY_HEADERS`: a Content Security Policy that lets the pages load
scripts, styles and images from this origin only and talk to nothing but it, no framing, no
MIME sniffing. Only GET (and HEAD) is routed: anything else is 405.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from importlib import resources

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from wekacoin.rpc.protocol import INVALID_PARAMS, NOT_FOUND, UNAUTHORIZED, Dispatcher

PREFIX = "/explorer"

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",  # small files; a node upgrade must not leave stale scripts
}

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}

_CID = re.compile(r"[A-Za-z0-9]{1,128}")  # base32 (CIDv1) or base58 (CIDv0); blobs.get checks
_STATUS = {NOT_FOUND: 404, INVALID_PARAMS: 400, UNAUTHORIZED: 403}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str


def load_assets() -> dict[str, Asset]:
    """The files of `assets/` by name, those with a known content type."""
    out = {}
    for entry in (resources.files(__package__) / "assets").iterdir():
        suffix = "." + entry.name.rpartition(".")[2]
        if entry.is_file() and suffix in CONTENT_TYPES:
            out[entry.name] = Asset(entry.read_bytes(), CONTENT_TYPES[suffix])
    return out


def explorer_routes(dispatcher: Dispatcher) -> list[BaseRoute]:
    assets = load_assets()

    async def redirect(request: Request) -> Response:
        return RedirectResponse("explorer/", headers=SECURITY_HEADERS)  # relative: proxy-safe

    async def asset(request: Request) -> Response:
        found = assets.get(request.path_params.get("name") or "index.html")
        if found is None:
            return _text(404, "no such page")
        return Response(found.body, media_type=found.content_type, headers=SECURITY_HEADERS)

    async def blob(request: Request) -> Response:
        cid = request.path_params["cid"]
        if not _CID.fullmatch(cid):
            return _text(400, "not a CID")
        call = {"jsonrpc": "2.0", "id": 0, "method": "blobs.get", "params": {"cid": cid}}
        out = await dispatcher.handle(json.dumps(call).encode(), None)  # never the token
        answer = json.loads(out or b"{}")
        if "result" not in answer:
            error = answer.get("error", {})
            return _text(_STATUS.get(error.get("code"), 502), error.get("message", "no answer"))
        try:
            data = base64.b64decode(answer["result"]["data"], validate=True)
        except (KeyError, TypeError, binascii.Error):
            return _text(502, "blobs.get answered without the bytes")
        return Response(data, media_type="application/octet-stream", headers={
            **SECURITY_HEADERS, "Content-Disposition": f'attachment; filename="{cid}"',
        })

    return [
        Route(PREFIX, redirect, methods=["GET"]),
        Route(PREFIX + "/", asset, methods=["GET"]),
        Route(PREFIX + "/blob/{cid}", blob, methods=["GET"]),
        Route(PREFIX + "/{name:path}", asset, methods=["GET"]),
    ]


def _text(status: int, message: str) -> Response:
    return PlainTextResponse(message, status_code=status, headers=SECURITY_HEADERS)
