"""A fake Kubo (IPFS daemon) RPC server for the tests: no Kubo binary exists on this machine.

It speaks the part of the Kubo RPC API v0 that `wekacoin.content.kubo` uses, with the request
and response shapes of the Kubo RPC reference (docs.ipfs.tech/reference/kubo/rpc, generated
from Kubo v0.26-v0.35), served on 127.0.0.1 on a free port by a stdlib HTTP server in a thread:

- POST only: any other method gets 405, an unknown path 404 (`404 page not found`, as Go's mux).
- Arguments as `arg=` query parameters, flags as query parameters; booleans parsed like Go's
  `strconv.ParseBool` ("1", "t", "true", "True", ...); a bad value or missing `arg` gets 400.
- Errors as Kubo sends them: status 500 (400 for a malformed call) with the JSON body
  `{"Message": ..., "Code": 0, "Type": "error"}`.
- /api/v0/version -> `{"Version", "Commit", "Repo", "System", "Golang"}`.
- /api/v0/add: one file in a `multipart/form-data` body; flags `cid-version`, `raw-leaves`,
  `pin` (default true). Answers one JSON line `{"Name", "Hash", "Size"}` in a chunked stream
  (`X-Chunked-Output: 1`). Hash comes from `compute_cid`, so only the settings it implements
  are accepted (cid-version 0, or 1 with raw leaves). Size here is the file size; real Kubo
  reports the cumulative DAG size (the client does not use it).
- /api/v0/cat?arg=<cid or /ipfs/cid>: the bytes, `text/plain`, chunked (`X-Stream-Output: 1`).
  Unknown content gets Kubo's offline error; real Kubo would search the network first.
- /api/v0/pin/add, /api/v0/pin/rm -> `{"Pins": [cid]}`; /pin/rm of an unpinned CID fails
  with Kubo's "not pinned or pinned indirectly".
- /api/v0/pin/ls?type=recursive -> `{"Keys": {cid: {"Type": "recursive"}}}`.
- /api/v0/refs?arg=<cid>&recursive=true -> an empty NDJSON stream for held content (the fake
  keeps whole files, not blocks, so it lists no child refs), Kubo's offline error otherwise.
- /api/v0/block/get?arg=<cid> -> the block's bytes (`text/plain`), from the blocks `/add`
  wrote: `dag_blocks` rebuilds every block `ipfs add` makes from the file's real bytes (what a
  test deletes from `blocks` is lost, as a damaged repo would lose it). Kubo's offline error
  for a block it lacks (real Kubo, online, would ask the network first).

`fault` makes it misbehave on purpose: "garbage" (200 with HTML on every call),
"wrong-shape" (valid JSON of the wrong shape for every command but /cat),
"wrong-cid" (/add reports another CID), "tamper" (/cat flips a byte), "truncate" (/cat stops
early), "huge" (/cat sends more than asked), "hang" (never answers, until `stop()`).
"""

import hashlib
import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from wekacoin.content.cid import CHUNK_SIZE, compute_cid, compute_leaf_path, leaf_count, parse_cid
from wekacoin.content.errors import InvalidCidError
from wekacoin.content.unixfs import encode_leaf_envelope

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}
_STREAM_CHUNK = 64 * 1024


class _BadRequest(Exception):
    """A malformed RPC call: answered with 400."""


class _Failure(Exception):
    """The command ran and failed: answered with 500."""


@dataclass
class Request:
    """What the client sent, for tests that check request shapes."""

    method: str
    path: str
    query: dict[str, list[str]]


@dataclass
class FakeKubo:
    """The daemon's state, and the server once `start()`ed."""

    version: str = "0.26.0"
    fault: str | None = None
    blobs: dict[str, bytes] = field(default_factory=dict)
    pins: set[str] = field(default_factory=set)
    blocks: dict[bytes, bytes] = field(default_factory=dict)
    """Binary CID -> block, for every file added."""
    requests: list[Request] = field(default_factory=list)

    def start(self) -> "FakeKubo":
        self._release = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        # A short poll interval: stop() waits for the serving loop to notice.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()  # frees handlers stuck in the "hang" fault
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def multiaddr(self) -> str:
        return f"/ip4/127.0.0.1/tcp/{self.port}/http"

    def endpoints_called(self) -> list[str]:
        return [request.path.removeprefix("/api/v0") for request in self.requests]

    # --- the commands --------------------------------------------------------------------

    def run(self, command: str, query: dict[str, list[str]], body: bytes, content_type: str):
        """Return (content type, extra headers, list of body chunks) or raise."""
        if self.fault == "wrong-shape" and command != "/cat":
            return _json({"Unexpected": [1, 2, 3]})
        if command == "/version":
            info = {"Version": self.version, "Commit": "", "Repo": "15",
                    "System": "amd64/linux", "Golang": "go1.21.5"}
            return _json(info)
        if command == "/add":
            return self._add(query, body, content_type)
        if command == "/cat":
            return self._cat(self._held(_arg(query)))
        if command == "/pin/add":
            key = self._held(_arg(query))
            self.pins.add(key)
            return _json({"Pins": [key]})
        if command == "/pin/rm":
            key = _cid(_arg(query))
            if key not in self.pins:
                raise _Failure("not pinned or pinned indirectly")
            self.pins.discard(key)
            return _json({"Pins": [key]})
        if command == "/pin/ls":
            if _flag(query, "type", "all") not in ("all", "recursive"):
                return _json({"Keys": {}})
            return _json({"Keys": {key: {"Type": "recursive"} for key in sorted(self.pins)}})
        if command == "/refs":
            self._held(_arg(query))
            return "application/json", {"X-Chunked-Output": "1"}, []
        if command == "/block/get":
            key = _cid(_arg(query))
            block = self.blocks.get(parse_cid(key).to_bytes())
            if block is None:
                raise _Failure(f"block was not found locally (offline): ipld: could not find "
                               f"{key}")
            return "text/plain", {}, [block]
        raise LookupError(command)

    def _add(self, query, body: bytes, content_type: str):
        version = int(_flag(query, "cid-version", "0"))
        raw_leaves = _bool(_flag(query, "raw-leaves", "true" if version == 1 else "false"))
        if (version, raw_leaves) not in ((0, False), (1, True)):
            raise _Failure("the fake only implements cid-version 0, or 1 with raw leaves")
        name, data = _single_file(body, content_type)
        cid = compute_cid(data, version)
        self.blobs[str(parse_cid(cid))] = data
        self.blocks.update(dag_blocks(data, version))
        if _bool(_flag(query, "pin", "true")):
            self.pins.add(str(parse_cid(cid)))
        if self.fault == "wrong-cid":
            cid = compute_cid(data + b"!", version)
        line = json.dumps({"Name": name or cid, "Hash": cid, "Size": str(len(data))})
        return "application/json", {"X-Chunked-Output": "1"}, [line.encode() + b"\n"]

    def _cat(self, key: str):
        data = self.blobs[key]
        if self.fault == "tamper":
            data = bytes([data[0] ^ 1]) + data[1:] if data else b"?"
        elif self.fault == "truncate":
            data = data[: len(data) // 2]
        elif self.fault == "huge":
            data = data + bytes(len(data) + 1)
        chunks = [data[i : i + _STREAM_CHUNK] for i in range(0, len(data), _STREAM_CHUNK)]
        return "text/plain", {"X-Stream-Output": "1"}, chunks

    def _held(self, arg: str) -> str:
        key = _cid(arg)
        if key not in self.blobs:
            raise _Failure(f"block was not found locally (offline): ipld: could not find {key}")
        return key


def dag_blocks(data: bytes, version: int) -> dict[bytes, bytes]:
    """Every block `ipfs add` writes for `data` (CID version 0, or 1 with raw leaves): binary
    CID -> block, the leaves cut from the bytes and the nodes above them rebuilt."""
    blocks = {}
    for index in range(leaf_count(len(data))):
        for node in compute_leaf_path(data, version, index):
            digest = hashlib.sha256(node).digest()
            blocks[(b"\x01\x70" if version else b"") + b"\x12\x20" + digest] = node
        chunk = data[index * CHUNK_SIZE:(index + 1) * CHUNK_SIZE]
        if version == 0:  # a dag-pb UnixFS leaf around the chunk
            prefix, suffix = encode_leaf_envelope(len(chunk))
            chunk = prefix + chunk + suffix
        digest = hashlib.sha256(chunk).digest()
        blocks[(b"\x01\x55" if version else b"") + b"\x12\x20" + digest] = chunk
    assert parse_cid(compute_cid(data, version)).to_bytes() in blocks  # the root is one of them
    return blocks


def _handler_for(kubo: FakeKubo) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # chunked streaming, as Kubo

        def log_message(self, format: str, *args) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            self._reject_method()

        do_PUT = do_DELETE = do_GET

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            query = parse_qs(url.query, keep_blank_values=True)
            kubo.requests.append(Request("POST", url.path, query))
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)) \
                if "chunked" not in self.headers.get("Transfer-Encoding", "") \
                else self._read_chunked()
            if kubo.fault == "hang":
                kubo._release.wait(timeout=60)
                return
            if kubo.fault == "garbage":
                return self._send(200, "text/html", {}, [b"<html>this is not kubo</html>"])
            if not url.path.startswith("/api/v0/"):
                return self._send(404, "text/plain", {}, [b"404 page not found\n"])
            try:
                content_type, headers, chunks = kubo.run(
                    url.path.removeprefix("/api/v0"), query, body,
                    self.headers.get("Content-Type", ""),
                )
            except LookupError:
                return self._send(404, "text/plain", {}, [b"404 page not found\n"])
            except _BadRequest as exc:
                return self._send_error(400, str(exc))
            except _Failure as exc:
                return self._send_error(500, str(exc))
            self._send(200, content_type, headers, chunks)

        def _reject_method(self) -> None:
            kubo.requests.append(Request(self.command, urlsplit(self.path).path, {}))
            self._send(405, "text/plain", {}, [b"405 - Method Not Allowed\n"])

        def _send_error(self, status: int, message: str) -> None:
            error = json.dumps({"Message": message, "Code": 0, "Type": "error"}).encode()
            self._send(status, "application/json", {}, [error + b"\n"])

        def _send(self, status: int, content_type: str, headers: dict[str, str],
                  chunks: Iterable[bytes]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Trailer", "X-Stream-Error")
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            for chunk in chunks:
                if chunk:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _read_chunked(self) -> bytes:
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()

    return Handler


def _arg(query: dict[str, list[str]]) -> str:
    values = query.get("arg")
    if not values or not values[0]:
        raise _BadRequest('argument "ipfs-path" is required')
    return values[0]


def _flag(query: dict[str, list[str]], name: str, default: str) -> str:
    return query.get(name, [default])[0]


def _bool(text: str) -> bool:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _BadRequest(f'could not parse value "{text}" as bool')


def _cid(arg: str) -> str:
    try:
        return str(parse_cid(arg.removeprefix("/ipfs/")))
    except InvalidCidError as exc:
        raise _Failure(f"invalid path {arg!r}: {exc}") from None


def _json(value: object):
    return "application/json", {}, [json.dumps(value).encode() + b"\n"]


def _single_file(body: bytes, content_type: str) -> tuple[str, bytes]:
    """The one file part of a multipart/form-data body: (file name, content)."""
    if "boundary=" not in content_type:
        raise _BadRequest("expected a multipart/form-data body")
    boundary = content_type.split("boundary=", 1)[1].split(";")[0].strip('"').encode()
    files = []
    for part in body.split(b"--" + boundary)[1:]:
        if part.startswith(b"--"):  # the closing delimiter
            break
        head, _, content = part.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        name = ""
        for line in head.decode("latin-1").split("\r\n"):
            if line.lower().startswith("content-disposition") and 'filename="' in line:
                name = line.split('filename="', 1)[1].split('"', 1)[0]
        files.append((name, content.removesuffix(b"\r\n")))
    if len(files) != 1:
        raise _BadRequest(f"expected one file in the body, got {len(files)}")
    return files[0]
