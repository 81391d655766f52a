"""JSON-RPC 2.0: request validation, dispatch to namespaces, error objects. No I/O.

Methods are named `<namespace>.<method>` and registered from namespace objects whose public
methods carry the `@rpc_method` decorator. Params may be positional (a list) or named (an
object); they are bound to the method's signature, so a wrong call is an "invalid params"
error, never a crash. Methods that change the node are marked `mutating=True` and need the
node's token. Every failure becomes a JSON-RPC error object:

    -32700 parse error      -32600 invalid request   -32601 method not found
    -32602 invalid params   -32603 internal error    -32001 unauthorized
    -32004 not found        -32010 rejected (a transaction or blob the node refused)
    -32000 any other WekaError, with its message
"""

from __future__ import annotations

import inspect
import json
import logging
import secrets
import weakref
from dataclasses import dataclass
from typing import Any, Callable

from wekacoin.errors import WekaError

log = logging.getLogger("wekacoin.rpc")

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
SERVER_ERROR = -32000
UNAUTHORIZED = -32001
NOT_FOUND = -32004
REJECTED = -32010

MAX_BATCH = 100


@dataclass(frozen=True)
class Limits:
    """Sizes in bytes (node.toml [rpc]; see server.py)."""

    request_bytes: int = 2**20
    """A request without the token."""
    upload_bytes: int = 192 * 2**20
    """A request with the token (blob uploads: base64 of a `blobs.max_blob_bytes` blob)."""
    response_bytes: int = 192 * 2**20


class RpcError(WekaError):
    """An error with a JSON-RPC code; raise it from a method to choose the code."""

    def __init__(self, code: int, message: str, data: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data


class NotFound(RpcError):
    def __init__(self, message: str) -> None:
        super().__init__(NOT_FOUND, message)


class InvalidParams(RpcError):
    def __init__(self, message: str) -> None:
        super().__init__(INVALID_PARAMS, message)


_RPC_METHODS: weakref.WeakKeyDictionary[object, bool] = weakref.WeakKeyDictionary()
"""The functions `@rpc_method` marked, and whether each is mutating."""


def rpc_method(fn: Callable | None = None, *, mutating: bool = False) -> Any:
    """Mark a namespace method as callable over RPC."""

    def mark(f: Callable) -> Callable:
        _RPC_METHODS[f] = mutating
        return f

    return mark(fn) if fn is not None else mark


def get_rpc_mutating(fn: object) -> bool | None:
    """Whether a function or method that `@rpc_method` marked is mutating; None for anything
    it did not mark."""
    try:
        return _RPC_METHODS.get(getattr(fn, "__func__", fn))
    except TypeError:  # not weakly referenceable, so never marked
        return None


@dataclass(frozen=True)
class Method:
    name: str
    fn: Callable[..., Any]
    mutating: bool
    doc: str


class Dispatcher:
    def __init__(self, token: str | None, max_response_bytes: int = Limits.response_bytes) -> None:
        self._methods: dict[str, Method] = {}
        self._token = token
        self._max_response = max_response_bytes

    def register(self, namespace: str, obj: object) -> None:
        for attr in dir(obj):
            fn = getattr(obj, attr)
            mutating = get_rpc_mutating(fn)
            if mutating is not None:
                name = f"{namespace}.{attr}"
                self._methods[name] = Method(name, fn, mutating, inspect.getdoc(fn) or "")

    @property
    def methods(self) -> dict[str, Method]:
        return dict(self._methods)

    async def handle(self, body: bytes, token: str | None) -> bytes | None:
        """The response to one HTTP body (None for notifications only)."""
        try:
            request = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            return _dump(_error(None, PARSE_ERROR, f"parse error: {e}"))
        except RecursionError:
            return _dump(_error(None, PARSE_ERROR, "parse error: nested too deeply"))
        if isinstance(request, list):
            if not request or len(request) > MAX_BATCH:
                return _dump(_error(None, INVALID_REQUEST, f"a batch holds 1 to {MAX_BATCH} calls"))
            responses = [r for r in [await self._one(item, token) for item in request] if r]
            return self._bounded(_dump(responses), None) if responses else None
        response = await self._one(request, token)
        if response is None:
            return None
        return self._bounded(_dump(response), response.get("id"))

    def _bounded(self, out: bytes, rid: Any) -> bytes:
        if len(out) <= self._max_response:
            return out
        return _dump(_error(rid, INVALID_REQUEST, f"the response would be {len(out)} bytes, "
                            f"more than the node's limit of {self._max_response}: ask for less"))

    async def _one(self, request: Any, token: str | None) -> dict | None:
        if not isinstance(request, dict) or request.get("jsonrpc") != "2.0":
            return _error(None, INVALID_REQUEST, "expected a JSON-RPC 2.0 request object")
        rid = request.get("id")
        notification = "id" not in request
        if not (rid is None or isinstance(rid, (str, int))) or isinstance(rid, bool):
            return _error(None, INVALID_REQUEST, "id must be a string, a number or null")
        name, params = request.get("method"), request.get("params", [])
        if not isinstance(name, str):
            return _error(rid, INVALID_REQUEST, "method must be a string")
        method = self._methods.get(name)
        if method is None:
            return _error(rid, METHOD_NOT_FOUND, f"no method {name!r}")
        if method.mutating and not self.authorized(token):
            return _error(rid, UNAUTHORIZED, f"{name} changes the node: send the RPC token")
        if not isinstance(params, (list, dict)):
            return _error(rid, INVALID_PARAMS, "params must be an array or an object")
        try:
            bound = inspect.signature(method.fn).bind(
                *params if isinstance(params, list) else (),
                **params if isinstance(params, dict) else {},
            )
        except TypeError as e:
            return _error(rid, INVALID_PARAMS, f"{name}: {e}")
        try:
            result = method.fn(*bound.args, **bound.kwargs)
            if inspect.isawaitable(result):
                result = await result
        except RpcError as e:
            return _error(rid, e.code, e.message, e.data)
        except WekaError as e:
            return _error(rid, SERVER_ERROR, str(e) or type(e).__name__)
        except Exception:
            log.exception("RPC method %s failed", name)
            return _error(rid, INTERNAL_ERROR, "internal error (see the node's log)")
        if notification:
            return None
        return {"jsonrpc": "2.0", "id": rid, "result": result}

    def authorized(self, token: str | None) -> bool:
        return (
            self._token is not None and token is not None
            and secrets.compare_digest(token.encode(), self._token.encode())
        )


def _error(rid: Any, code: int, message: str, data: Any = None) -> dict:
    err: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        err["data"] = data
    return {"jsonrpc": "2.0", "id": rid, "error": err}


def _dump(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def parse_hex(value: Any, what: str, length: int | None = None) -> bytes:
    """Bytes from a hex string param, or InvalidParams naming `what`."""
    try:
        raw = bytes.fromhex(value.removeprefix("0x"))
    except (AttributeError, TypeError, ValueError):
        raise InvalidParams(f"{what} must be a hex string") from None
    if length is not None and len(raw) != length:
        raise InvalidParams(f"{what} must be {length} bytes")
    return raw
