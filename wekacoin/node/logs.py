"""Logging: one line per event, as text for people or JSON for log collectors.

What each level shows (the node's `log_level`, for the `wekacoin.*` loggers):
- INFO: the node's life (start-up, with the RPC, metrics and p2p ports each on a line; stop),
  peers joining and leaving, catching up, task phases and settlement, evaluations.
- DEBUG: everything per block or per message (each committed block, each decided round),
  and libp2p's own chatter below WARNING (its auto-connector logs at INFO every few
  seconds), shown as DEBUG.
libp2p's loggers stay at WARNING; the few ERROR lines it writes whenever a peer hangs up are
demoted to DEBUG too (our network layer reports real connection problems itself).
"""

from __future__ import annotations

import json
import logging
import sys
import time


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(), "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


# libp2p ERROR lines that peers starting, stopping or hanging up cause all the time.
_PEER_CHURN = (
    "Failed to open TCP stream", "Failed to open stream to peer",
    "MultiselectClient handshake", "Error in handle_incoming",
)


class _Libp2pChatter(logging.Filter):
    """Demote libp2p's chatter to DEBUG, shown only when the node logs at DEBUG: everything
    below WARNING (some of its modules set their own level to INFO, below the WARNING we set
    on `libp2p`) and the peer churn ERRORs."""

    def __init__(self, debug: bool) -> None:
        super().__init__()
        self._debug = debug

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name != "libp2p" and not record.name.startswith("libp2p."):
            return True
        churn = record.levelno >= logging.ERROR and any(
            text in record.getMessage() for text in _PEER_CHURN)
        if record.levelno >= logging.WARNING and not churn:
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return self._debug


def setup_logging(level: str, fmt: str, node_name: str = "") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Libp2pChatter(debug=level.lower() == "debug"))
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        prefix = f"{node_name} " if node_name else ""
        handler.setFormatter(logging.Formatter(
            f"%(asctime)s {prefix}%(levelname)-7s %(name)s: %(message)s", "%H:%M:%S",
        ))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("wekacoin").setLevel(level.upper())
    logging.getLogger("libp2p").setLevel(logging.WARNING)  # its INFO lines are per-dial chatter
