"""The one byte format that crosses the sandbox boundary: a small JSON header plus raw arrays.

    magic "WKF1" | u32 header length | u64 payload length | header (UTF-8 JSON object) | payload

The header's "arrays" lists each array's dtype (from a short allow-list) and shape; the payload
is their C-order bytes, back to back. Nothing here can run code when decoding (never pickle),
and every size is checked against the frame before anything is allocated.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import select
import struct
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from wekacoin.errors import WekaError

MAGIC = b"WKF1"
PREFIX = struct.Struct("<4sIQ")
MAX_HEADER_BYTES = 64 * 1024
ALLOWED_DTYPES = frozenset({"<f8", "<i8", "|u1"})
MAX_NDIM = 2


class WireError(WekaError):
    """A frame is malformed, too big, or describes arrays that do not match its payload."""


def encode(meta: dict[str, Any], arrays: Sequence[np.ndarray] = ()) -> bytes:
    specs, parts = [], []
    for a in arrays:
        a = np.ascontiguousarray(a)
        if a.dtype.str not in ALLOWED_DTYPES or a.ndim > MAX_NDIM:
            raise WireError(f"cannot send an array of {a.dtype.str} with {a.ndim} dimensions")
        specs.append({"dtype": a.dtype.str, "shape": list(a.shape)})
        parts.append(a.tobytes())
    header = json.dumps({**meta, "arrays": specs}, separators=(",", ":")).encode("utf-8")
    payload = b"".join(parts)
    return PREFIX.pack(MAGIC, len(header), len(payload)) + header + payload


def parse_prefix(prefix: bytes, max_bytes: int) -> int:
    """The length of the rest of the frame, after checking the prefix against `max_bytes`."""
    magic, header_len, payload_len = PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise WireError("bad frame magic")
    if header_len > MAX_HEADER_BYTES:
        raise WireError(f"frame header of {header_len} bytes is too big")
    if PREFIX.size + header_len + payload_len > max_bytes:
        raise WireError(f"frame of {header_len + payload_len} bytes exceeds {max_bytes}")
    return header_len + payload_len


def decode(frame: bytes) -> tuple[dict[str, Any], list[np.ndarray]]:
    if len(frame) < PREFIX.size:
        raise WireError("truncated frame")
    _, header_len, payload_len = PREFIX.unpack_from(frame)
    parse_prefix(frame[: PREFIX.size], len(frame))
    if len(frame) != PREFIX.size + header_len + payload_len:
        raise WireError("frame length does not match its prefix")
    header_end = PREFIX.size + header_len
    try:
        meta = json.loads(frame[PREFIX.size : header_end].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise WireError(f"frame header is not JSON: {e}") from e
    if not isinstance(meta, dict) or not isinstance(meta.get("arrays"), list):
        raise WireError("frame header must be an object with an 'arrays' list")
    arrays, offset = [], header_end
    for spec in meta.pop("arrays"):
        dtype, shape = _parse_spec(spec)
        size = dtype.itemsize * math.prod(shape)  # Python ints: no overflow
        if offset + size > len(frame):
            raise WireError("arrays overrun the payload")
        arrays.append(
            np.frombuffer(frame, dtype=dtype, count=size // dtype.itemsize, offset=offset).reshape(
                shape
            )
        )
        offset += size
    if offset != len(frame):
        raise WireError("payload has bytes no array claims")
    return meta, arrays


PIPE_BYTES = 1024 * 1024
F_SETPIPE_SZ = 1031


def enlarge_pipe(fd: int) -> None:
    """Let a whole typical frame fit in the pipe: one write, one wake-up, instead of sixteen.
    Best effort: the system may cap pipe sizes lower."""
    try:
        fcntl.fcntl(fd, F_SETPIPE_SZ, PIPE_BYTES)
    except OSError:
        pass  # a smaller pipe still works, in more round trips


class FrameTimeout(WireError):
    """The deadline passed before a whole frame arrived."""


def read_frame(fd: int, max_bytes: int, deadline: float | None = None) -> bytes | None:
    """One whole frame from a pipe; None at a clean end of stream.

    `deadline` is a `time.monotonic()` instant; None waits for ever. Raises FrameTimeout,
    or WireError when the stream ends inside a frame or the frame exceeds `max_bytes`.
    """
    prefix = read_exact(fd, PREFIX.size, deadline)
    if not prefix:
        return None
    if len(prefix) < PREFIX.size:
        raise WireError("stream ended inside a frame")
    rest_len = parse_prefix(prefix, max_bytes)
    rest = read_exact(fd, rest_len, deadline)
    if len(rest) < rest_len:
        raise WireError("stream ended inside a frame")
    return prefix + rest


def read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    """Up to n bytes: fewer only when the stream ends."""
    buf = bytearray()
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    while len(buf) < n:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(max(1, int(left * 1000))):
                if time.monotonic() >= deadline:
                    raise FrameTimeout("deadline passed")
                continue
        chunk = os.read(fd, min(n - len(buf), 1 << 20))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def _parse_spec(spec: object) -> tuple[np.dtype, tuple[int, ...]]:
    if not isinstance(spec, dict) or spec.get("dtype") not in ALLOWED_DTYPES:
        raise WireError(f"array spec {str(spec)[:80]} has no allowed dtype")
    shape = spec.get("shape")
    if (
        not isinstance(shape, list)
        or len(shape) > MAX_NDIM
        or not all(type(s) is int and 0 <= s < 2**40 for s in shape)
    ):
        raise WireError(f"array spec {str(spec)[:80]} has a bad shape")
    return np.dtype(spec["dtype"]), tuple(shape)
