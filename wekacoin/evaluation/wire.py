"""The one byte format that crosses the sandbox boundary: a small JSON header plus raw arrays.

    magic "WKF1" | u32 header length | u64 payload length | header (UTF-8 JSON object) | payload

The header's "arrays" lists each array's dtype (from a short allow-list) and shape; the payload
is their C-order bytes, back to back. Nothing here can run code when decoding (never pickle),
and every size is checked against the frame before anything is allocated.

Frames are big (a model, a feature matrix, a model's predictions) and cross three processes,
each freshly forked or sharing its pages with freshly forked children, where every page first
written costs a fault. So a frame is written from its parts (`encode_parts`, `write_parts`:
no joined copy) and read once, straight into a buffer of its own size (`read_frame`).
"""

from __future__ import annotations

import fcntl
import json
import math
import mmap
import os
import select
import struct
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from wekacoin.errors import WekaError

MAGIC = b"WKF1"
PREFIX = struct.Struct("<4sIQ")
MAX_HEADER_BYTES = 64 * 1024
ALLOWED_DTYPES = frozenset({"<f8", "<i8", "|u1"})
MAX_NDIM = 2


Buffer = bytearray | mmap.mmap  # what frames are read into
Frame = bytes | Buffer | memoryview  # anything holding one whole frame


class WireError(WekaError):
    """A frame is malformed, too big, or describes arrays that do not match its payload."""


def encode_parts(meta: dict[str, Any], arrays: Sequence[np.ndarray] = ()) -> list[memoryview]:
    """A frame as its prefix and header, then each array's own bytes (not copied)."""
    specs, parts = [], []
    for a in arrays:
        a = np.ascontiguousarray(a)
        if a.dtype.str not in ALLOWED_DTYPES or a.ndim > MAX_NDIM:
            raise WireError(f"cannot send an array of {a.dtype.str} with {a.ndim} dimensions")
        specs.append({"dtype": a.dtype.str, "shape": list(a.shape)})
        parts.append(array_bytes(a))
    header = json.dumps({**meta, "arrays": specs}, separators=(",", ":")).encode("utf-8")
    payload = sum(p.nbytes for p in parts)
    return [memoryview(PREFIX.pack(MAGIC, len(header), payload) + header), *parts]


def encode(meta: dict[str, Any], arrays: Sequence[np.ndarray] = ()) -> bytes:
    return b"".join(encode_parts(meta, arrays))


def write_parts(fd: int, parts: Sequence[Frame]) -> None:
    """Write the parts, in order, to a blocking fd: as few system calls as the pipe allows."""
    views = [v for v in map(_bytes_of, parts) if v.nbytes]
    while views:
        written = os.writev(fd, views[:_IOV_MAX])
        while written:
            if written >= views[0].nbytes:
                written -= views.pop(0).nbytes
            else:
                views[0], written = views[0][written:], 0


def parse_prefix(prefix: Frame, max_bytes: int) -> int:
    """The length of the rest of the frame, after checking the prefix against `max_bytes`."""
    magic, header_len, payload_len = PREFIX.unpack(prefix)
    if magic != MAGIC:
        raise WireError("bad frame magic")
    if header_len > MAX_HEADER_BYTES:
        raise WireError(f"frame header of {header_len} bytes is too big")
    if PREFIX.size + header_len + payload_len > max_bytes:
        raise WireError(f"frame of {header_len + payload_len} bytes exceeds {max_bytes}")
    return header_len + payload_len


def decode(frame: Frame) -> tuple[dict[str, Any], list[np.ndarray]]:
    """The header and the arrays, which are views on `frame` (no copy)."""
    frame = _bytes_of(frame)
    if len(frame) < PREFIX.size:
        raise WireError("truncated frame")
    _, header_len, payload_len = PREFIX.unpack_from(frame)
    parse_prefix(frame[: PREFIX.size], len(frame))
    if len(frame) != PREFIX.size + header_len + payload_len:
        raise WireError("frame length does not match its prefix")
    header_end = PREFIX.size + header_len
    try:
        meta = json.loads(bytes(frame[PREFIX.size : header_end]).decode("utf-8"))
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


def read_frame(
    fd: int,
    max_bytes: int,
    deadline: float | None = None,
    buffer: Callable[[int], Buffer] = bytearray,
) -> Buffer | None:
    """One whole frame from a pipe; None at a clean end of stream.

    `deadline` is a `time.monotonic()` instant; None waits for ever. Raises FrameTimeout,
    or WireError when the stream ends inside a frame or the frame exceeds `max_bytes`.
    `buffer(size)` makes the buffer it is read into.
    """
    prefix = read_exact(fd, PREFIX.size, deadline)
    if not prefix:
        return None
    if len(prefix) < PREFIX.size:
        raise WireError("stream ended inside a frame")
    return read_rest(fd, prefix, max_bytes, deadline, buffer)


def read_rest(
    fd: int,
    prefix: bytes,
    max_bytes: int,
    deadline: float | None,
    buffer: Callable[[int], Buffer] = bytearray,
) -> Buffer:
    """The frame that `prefix` begins, read into a buffer of its size (checked first)."""
    frame = buffer(PREFIX.size + parse_prefix(prefix, max_bytes))
    view = memoryview(frame)
    view[: PREFIX.size] = prefix
    if _read_into(fd, view[PREFIX.size :], deadline) < len(view) - PREFIX.size:
        raise WireError("stream ended inside a frame")
    return frame


def read_exact(fd: int, n: int, deadline: float | None) -> bytes:
    """Up to n bytes: fewer only when the stream ends."""
    buf = bytearray(n)
    return bytes(buf[: _read_into(fd, memoryview(buf), deadline)])


def _read_into(fd: int, view: memoryview, deadline: float | None) -> int:
    """Fill `view` from a blocking fd; how many bytes came (fewer at the end of the stream)."""
    poller = None
    got = 0
    while got < len(view):
        if deadline is not None:
            if poller is None:
                poller = select.poll()
                poller.register(fd, select.POLLIN)
            left = deadline - time.monotonic()
            if left <= 0 or not poller.poll(max(1, int(left * 1000))):
                if time.monotonic() >= deadline:
                    raise FrameTimeout("deadline passed")
                continue
        n = os.readv(fd, [view[got:]])
        if not n:
            break
        got += n
    return got


class FrameReader:
    """One frame gathered from a non-blocking fd over as many reads as it takes, so that one
    reader (the fork server) can wait on many writers (its model processes) at once, and a
    writer that sends half a frame and stalls holds up no one but itself."""

    def __init__(self, fd: int, max_bytes: int) -> None:
        self.fd, self.max_bytes = fd, max_bytes
        self._frame = bytearray(PREFIX.size)  # the prefix, then (once checked) the frame
        self._got = 0

    def read(self) -> bytearray | None:
        """Whatever is there now; the whole frame once it is complete, else None. Raises
        EOFError at the end of the stream (at a frame boundary or not: the caller knows
        which from `started`), WireError for a bad or oversized prefix."""
        view = memoryview(self._frame)
        while self._got < len(self._frame):
            try:
                n = os.readv(self.fd, [view[self._got :]])
            except BlockingIOError:
                return None
            if not n:
                raise EOFError
            self._got += n
            if self._got == PREFIX.size == len(self._frame):  # now the frame's own buffer
                frame = bytearray(PREFIX.size + parse_prefix(self._frame, self.max_bytes))
                frame[: PREFIX.size] = self._frame
                self._frame, view = frame, memoryview(frame)
        return self._frame

    @property
    def started(self) -> bool:
        return self._got > 0


_IOV_MAX = 1024


def array_bytes(a: np.ndarray) -> memoryview:
    """The bytes of a C-contiguous array, not copied."""
    return a.reshape(-1).view(np.uint8).data


def _bytes_of(data: Frame) -> memoryview:
    """A flat byte view of a frame, without copying it."""
    view = memoryview(data)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


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
