"""The explorer's routes on the RPC app: packaged assets served with their content types and a
Content Security Policy, 404 for anything else (no path traversal, on the app and over real
HTTP), GET only and no token; its pages ask the node's read methods only, its model download
goes through `blobs.get` without the token, and its scripts never parse data as markup."""

from __future__ import annotations

import base64
import fnmatch
import re
import socket
import threading
import tomllib
from pathlib import Path

import pytest
import trio

from wekacoin.explorer.routes import CONTENT_TYPES, CSP, explorer_routes, load_assets
from wekacoin.node import rpc_api
from wekacoin.rpc.client import RpcClient
from wekacoin.rpc.protocol import Dispatcher, Limits, NotFound, get_rpc_mutating, rpc_method
from wekacoin.rpc.server import make_app, serve_http

REPO = Path(__file__).resolve().parents[2]
ASSETS = REPO / "wekacoin" / "explorer" / "assets"
TOKEN = "s3cret"
MODEL = b"\x08\x07onnx model bytes"
CID = "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
NAMESPACES = {"chain": rpc_api.ChainRpc, "tasks": rpc_api.TaskRpc, "tx": rpc_api.TxRpc,
              "blobs": rpc_api.BlobRpc, "node": rpc_api.NodeRpc,
              "validators": rpc_api.ValidatorRpc}  # as the daemon registers them


class Blobs:
    """blobs.get of one blob, as the node's BlobRpc answers it."""

    @rpc_method
    def get(self, cid: str) -> dict:
        if cid != CID:
            raise NotFound(f"nobody has {cid}")
        return {"cid": cid, "data": base64.b64encode(MODEL).decode(), "size": len(MODEL)}

    @rpc_method(mutating=True)
    def put(self, data: str) -> dict:
        raise AssertionError("the explorer never stores anything")


class GuardedBlobs:
    """A blobs.get that wants the token: the explorer must not get through."""

    @rpc_method(mutating=True)
    def get(self, cid: str) -> dict:
        return Blobs.get(Blobs(), cid)


def app(blobs: object | None = None):
    dispatcher = Dispatcher(TOKEN)
    dispatcher.register("blobs", Blobs() if blobs is None else blobs)
    return make_app(dispatcher, Limits(10_000, 100_000, 10**6))


def request(app, path: str, method: str = "GET", headers: dict[str, str] | None = None):
    """One request straight into the ASGI app, with `path` exactly as given (no client
    normalises it): (status, headers, body)."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        "headers": [(k.lower().encode(), v.encode())
                    for k, v in {"host": "127.0.0.1", **(headers or {})}.items()],
    }
    sent: list[dict] = []
    delivered = False

    async def receive() -> dict:
        nonlocal delivered
        if delivered:
            return {"type": "http.disconnect"}
        delivered = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    trio.run(app, scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


# -- assets --


def test_every_asset_is_package_data_and_the_page_loads_only_packaged_files():
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    setuptools = pyproject["tool"]["setuptools"]
    assert any(fnmatch.fnmatch("wekacoin.explorer", p) for p in setuptools["packages"]["find"]
               ["include"])
    patterns = setuptools["package-data"]["wekacoin.explorer"]
    files = sorted(p.name for p in ASSETS.iterdir())
    assert all(any(fnmatch.fnmatch(f"assets/{f}", p) for p in patterns) for f in files)
    assert sorted(load_assets()) == files  # every file is served, each with a content type

    index = (ASSETS / "index.html").read_text()
    referenced = set(re.findall(r'(?:src|href)="([^"#]+)"', index))
    imported = {m for f in ASSETS.glob("*.js")
                for m in re.findall(r'from "\./([^"]+)"', f.read_text())}
    assert referenced | imported <= set(files)
    assert {"app.js", "explorer.css"} <= referenced


def test_assets_fetch_nothing_remote_and_never_parse_data_as_markup():
    for path in ASSETS.iterdir():
        text = re.sub(r"/\*.*?\*/|^\s*//.*$", "", path.read_text(), flags=re.S | re.M)
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.\w+[^\s\"'`)]*", text))
        assert urls <= {"http://www.w3.org/2000/svg"}, (path.name, urls)
        if path.suffix == ".js":
            for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write",
                         "eval(", "Function(", "javascript:", "setTimeout(\""):
                assert sink not in text, (path.name, sink)
            # attributes are only set by dom.js's builder, never an event handler from data
            assert "setAttribute(" not in text or path.name == "dom.js", path.name


def test_pages_are_served_with_their_content_types_and_the_policy():
    served = app()
    status, headers, body = request(served, "/explorer/")
    assert status == 200 and body == (ASSETS / "index.html").read_bytes()
    assert headers["content-type"] == "text/html; charset=utf-8"
    for name in load_assets():
        status, headers, body = request(served, f"/explorer/{name}")
        assert status == 200, name
        assert body == (ASSETS / name).read_bytes()
        assert headers["content-type"] == CONTENT_TYPES[Path(name).suffix]
        assert headers["content-security-policy"] == CSP
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["x-frame-options"] == "DENY"
    status, headers, _ = request(served, "/explorer")
    assert status in (302, 307) and headers["location"] == "explorer/"
    assert headers["content-security-policy"] == CSP


def test_the_policy_allows_this_origin_only():
    directives = dict(d.strip().split(" ", 1) for d in CSP.split(";"))
    assert directives["default-src"] == "'none'"
    for name in ("script-src", "style-src", "img-src", "connect-src"):
        assert directives[name] == "'self'", name  # no inline script, no eval, no remote host
    assert directives["frame-ancestors"] == "'none'" and directives["form-action"] == "'none'"


@pytest.mark.parametrize("path", [
    "/explorer/nothing.js", "/explorer/assets/app.js", "/explorer/routes.py",
    "/explorer/__init__.py", "/explorer/app.js/", "/explorer/x/y", "/explorer/blob/a/b",
    "/explorer/../explorer/routes.py", "/explorer/..", "/explorer/../../../../etc/passwd",
    "/explorer/%2e%2e/routes.py", "/explorer/..%2froutes.py", "/explorer/assets/../routes.py",
    "/explorer/./app.js", "/explorer//etc/passwd",
])
def test_unknown_paths_are_not_found(path):
    status, headers, body = request(app(), path)
    assert status == 404, (path, status, body[:80])
    assert headers["content-security-policy"] == CSP
    assert b"import" not in body and b"<html" not in body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_only_get_is_routed(method):
    for path in ("/explorer/", "/explorer/app.js", f"/explorer/blob/{CID}"):
        status, _, _ = request(app(), path, method)
        assert status == 405, (method, path)


def test_no_traversal_over_real_http():
    """Hypercorn parses the request line itself: raw dot segments reach the routes as they are."""
    with LiveServer(app()) as server:
        for path in ("/explorer/../pyproject.toml", "/explorer/%2e%2e/%2e%2e/pyproject.toml",
                     "/explorer/..%2f..%2fpyproject.toml", "/explorer/../../README.md"):
            status, body = server.raw_get(path)
            assert status in (400, 404), (path, status)
            assert b"[project]" not in body and b"WekaCoin" not in body
        status, body = server.raw_get("/explorer/app.js")
        assert status == 200 and body == (ASSETS / "app.js").read_bytes()


# -- token-free, read-only --


def test_the_pages_need_no_token():
    served = app()
    for path in ["/explorer/", *(f"/explorer/{n}" for n in load_assets())]:
        assert request(served, path)[0] == 200, path  # no Authorization header at all


def test_the_pages_ask_only_read_methods_the_node_serves_without_a_token():
    rpc_js = (ASSETS / "rpc.js").read_text()
    listed = re.search(r"READ_METHODS = Object\.freeze\(\[(.*?)\]\)", rpc_js, re.S)
    assert listed
    allowed = set(re.findall(r'"([a-z]+\.[a-z_]+)"', listed.group(1)))
    asked = {m for f in ASSETS.glob("*.js")
             for m in re.findall(r'"((?:chain|tasks|tx|blobs|validators|node)\.[a-z_]+)"',
                                 f.read_text())}
    assert asked <= allowed and allowed
    served = {f"{namespace}.{attr}": get_rpc_mutating(getattr(cls, attr))
              for namespace, cls in NAMESPACES.items() for attr in dir(cls)
              if get_rpc_mutating(getattr(cls, attr)) is not None}
    for method in allowed:
        assert method in served, f"the node serves no {method}"
        assert served[method] is False, f"{method} needs the token: the explorer cannot use it"
    assert 'if (!READ_METHODS.includes(method)) throw' in rpc_js  # checked before any request


def test_a_model_downloads_through_blobs_get_without_the_token():
    served = app()
    status, headers, body = request(served, f"/explorer/blob/{CID}")
    assert status == 200 and body == MODEL
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-disposition"] == f'attachment; filename="{CID}"'
    assert headers["content-security-policy"] == CSP
    assert request(served, "/explorer/blob/bafkreiabsent")[0] == 404
    assert request(served, "/explorer/blob/not%22a%3Bcid")[0] == 400


def test_the_download_route_cannot_call_a_token_protected_method():
    served = app(GuardedBlobs())
    for headers in ({}, {"authorization": f"Bearer {TOKEN}"}):  # the token is never passed on
        status, _, body = request(served, f"/explorer/blob/{CID}", headers=headers)
        assert status == 403 and MODEL not in body, headers


def test_routes_stand_alone():
    """explorer_routes needs only a dispatcher: what make_app passes it."""
    paths = [getattr(r, "path", None) for r in explorer_routes(Dispatcher(None))]
    assert paths[:2] == ["/explorer", "/explorer/"]


# -- a real server --


class LiveServer:
    """The RPC app under Hypercorn in a trio thread, on a free port of 127.0.0.1."""

    def __init__(self, asgi) -> None:
        self.app = asgi
        self.ready = threading.Event()
        self.port = 0
        self.thread = threading.Thread(target=trio.run, args=(self._main,), daemon=True)

    async def _main(self) -> None:
        self.shutdown = trio.Event()
        self.token = trio.lowlevel.current_trio_token()
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(serve_http, self.app, "127.0.0.1", 0, self.shutdown)
            self.port = int(binds[0].rsplit(":", 1)[1])
            self.ready.set()

    def raw_get(self, path: str) -> tuple[int, bytes]:
        """GET `path` byte for byte as given (an HTTP client would remove dot segments)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                      .encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split()[1]), body

    def __enter__(self) -> LiveServer:
        self.thread.start()
        assert self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        trio.from_thread.run_sync(self.shutdown.set, trio_token=self.token)
        self.thread.join(10)
        assert not self.thread.is_alive()


def test_json_rpc_still_answers_beside_the_explorer():
    with LiveServer(app()) as server:
        with RpcClient(f"http://127.0.0.1:{server.port}/") as client:
            answer = client.call("blobs.get", cid=CID)
        assert base64.b64decode(answer["data"]) == MODEL
