"""WekaCoin: a reference node for Proof-of-Learning.

Pure protocol logic lives in `types`, `crypto`, `chain`, `sortition`, `consensus` and the
ranking rules of `evaluation`; everything that does I/O (store, content, net, rpc, cli, the
sandbox runner) is an adapter, and `node` wires them together.
"""

__version__ = "0.1.0"
