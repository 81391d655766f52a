"""A fork-server entry point for tests: runs Python source under the model sandbox.

The tests start a second `ForkServerSandbox` with `entry="tests.helpers.hostile_payload"`, so
the code runs in exactly the confinement a model gets. The payload sees the job's feature arrays
as `datasets` and sets `result` (a str) to report.
"""

from __future__ import annotations

# Imported here, by the trusted server: once a child runs under its own uid it may not read
# the interpreter's files (here they live under /root), so imports after confinement can fail.
import encodings.idna  # noqa: F401  (socket's host name encoding)
import subprocess  # noqa: F401
from typing import Any

import numpy as np


def run(args: dict[str, Any], blob: bytes, datasets: list[np.ndarray]) -> list[np.ndarray]:
    namespace: dict[str, Any] = {"datasets": datasets}
    exec(compile(blob.decode(), "<payload>", "exec"), namespace)  # the point of this module
    return [np.frombuffer(str(namespace.get("result", "")).encode(), dtype=np.uint8)]
