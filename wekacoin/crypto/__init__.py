"""Cryptographic primitives of the protocol: pure functions, no I/O and no clock."""
