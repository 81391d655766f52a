"""WekaCoin: a reference node for Proof-of-Learning.

Pure protocol logic lives in `types`, `crypto`, `chain`, `sortition`, `consensus` and the
ranking rules of `evaluation`; everything that does I/O (store, content, net, rpc, cli, the
sandbox runner) is an adapter, and `node` wires them together.
"""

import os as _os

# onnxruntime (>= 1.29) collects telemetry on Linux: it writes a device id and uploads
# events. A node scoring models has no business doing either; opt out before any import of
# onnxruntime (the sandbox's fork server inherits this environment). Both spellings exist.
_os.environ.setdefault("ORT_TELEMETRY_DISABLED", "1")
_os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
