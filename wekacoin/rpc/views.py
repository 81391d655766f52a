"""JSON views of protocol objects for RPC answers and `--json` output.

Driven by the records' type hints: addresses print as Base58Check (like the CLI takes
them), other bytes as hex, enums by value, a union variant gains a "kind" name.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import typing
from functools import cache
from typing import Any

from wekacoin.crypto.keys import format_address
from wekacoin.types.primitives import Address
from wekacoin.types.tx import LeafProof

TX_KINDS = {
    "Transfer": "transfer", "PublishTask": "publish_task", "RevealTraining": "reveal_training",
    "SubmitModel": "submit_model", "RevealTest": "reveal_test", "RevealModel": "reveal_model",
    "Stake": "stake", "Unstake": "unstake", "ClaimStorage": "claim_storage",
    "StorageProof": "storage_proof",
}


def to_json(value: Any) -> Any:
    if isinstance(value, LeafProof):  # a 256 KiB leaf is no use as hex: its size and hash
        return {"cid": value.cid, "leaf_index": value.leaf_index,
                "nodes": [_digest(n) for n in value.nodes], "leaf": _digest(value.leaf)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        name = type(value).__name__
        if hasattr(type(value), "KIND"):
            out["kind"] = TX_KINDS.get(name, name)
        hints = _hints(type(value))
        for f in dataclasses.fields(value):
            if f.init:
                out[f.name] = _field(getattr(value, f.name), hints[f.name])
        return out
    return _field(value, None)


def _field(value: Any, hint: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bytes):
        return format_address(value) if _is_address(hint) else value.hex()
    if isinstance(value, enum.Enum):
        return value.value if not isinstance(value, enum.IntEnum) else value.name.lower()
    if isinstance(value, tuple):
        inner = typing.get_args(hint)[0] if hint is not None and typing.get_args(hint) else None
        return [_field(v, inner) for v in value]
    if dataclasses.is_dataclass(value):
        return to_json(value)
    return value


def _digest(data: bytes) -> dict[str, Any]:
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def _is_address(hint: Any) -> bool:
    if hint is Address:
        return True
    return any(a is Address for a in typing.get_args(hint))


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)
