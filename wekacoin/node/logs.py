"""Logging: one line per event, as text for people or JSON for log collectors."""

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


class _DialNoise(logging.Filter):
    """libp2p logs every failed dial as an ERROR, which peers that are starting or stopping
    cause all the time; our network layer reports real connection problems itself."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and "Failed to open TCP stream" in record.getMessage():
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
        return True


def setup_logging(level: str, fmt: str, node_name: str = "") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_DialNoise())
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
