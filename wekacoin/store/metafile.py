"""The store's identity file, `chainstore.json`, next to the LevelDB directory.

Opening a LevelDB database rewrites files even when nothing is read (a new log, a new
manifest, LOG renamed to LOG.old), so a data directory of another chain or of a newer
format is recognised from this small file *before* LevelDB opens, and refused untouched.
The same record is also kept inside the database (key `M`) and the two must agree.
"""

from __future__ import annotations

import json
from pathlib import Path

from wekacoin.fsutil import write_atomically
from wekacoin.store.errors import IncompatibleStoreError, StoreError, damaged
from wekacoin.store.layout import FORMAT_VERSION, StoreMeta
from wekacoin.types.primitives import Hash

META_FILE = "chainstore.json"
def is_unfinished_write(name: str) -> bool:
    """A temporary file `write_atomically` leaves when killed mid-write of the identity file."""
    return name.startswith(f".{META_FILE}.") and name.endswith(".tmp")
DB_DIR = "leveldb"
_KIND = "wekacoin-chain-store"


def read_meta_file(root: Path) -> StoreMeta | None:
    """The identity recorded in `root`, or None if there is no identity file.

    StoreError if the file cannot be read (permissions, not a file); CorruptStoreError if it
    is not an identity file (a flipped byte, truncated, overwritten)."""
    path = root / META_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise StoreError(
            f"cannot read {path}: {e.strerror}; make it a file the node's user can read"
        ) from None
    try:
        doc = json.loads(raw)  # invalid UTF-8 is a ValueError too
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        if doc.get("kind") != _KIND:
            raise ValueError(f"kind is {doc.get('kind')!r}, not {_KIND!r}")
        version = doc["format_version"]
        if type(version) is not int:
            raise ValueError("format_version is not an integer")
        if version != FORMAT_VERSION:
            # Other fields may mean something else in another format: report the version only.
            return StoreMeta(version, "", Hash(bytes(32)))
        genesis_hash = bytes.fromhex(doc["genesis_hash"])
        if len(genesis_hash) != 32 or not isinstance(doc["chain_id"], str):
            raise ValueError("bad chain_id or genesis_hash")
    except (ValueError, KeyError, TypeError) as e:
        raise damaged(root, f"{path} is not a chain store identity file ({_reason(e)})") from None
    return StoreMeta(version, doc["chain_id"], Hash(genesis_hash))


def _reason(e: Exception) -> str:
    return f"no {e}" if isinstance(e, KeyError) else str(e)


def write_meta_file(root: Path, meta: StoreMeta) -> None:
    """Write the identity file atomically and durably (temporary file, fsync, rename)."""
    doc = {
        "kind": _KIND,
        "format_version": meta.format_version,
        "chain_id": meta.chain_id,
        "genesis_hash": meta.genesis_hash.hex(),
    }
    write_atomically(root / META_FILE, (json.dumps(doc, indent=2) + "\n").encode())


def check_compatible(found: StoreMeta, expected: StoreMeta, root: Path) -> None:
    """Refuse a data directory of another format, chain id or genesis."""
    if found.format_version > expected.format_version:
        raise IncompatibleStoreError(
            f"{root} uses chain store format {found.format_version}, this node reads format "
            f"{expected.format_version}: run a newer node, or point it at another data directory"
        )
    if found.format_version != expected.format_version:
        raise IncompatibleStoreError(
            f"{root} uses chain store format {found.format_version}, which this node cannot "
            f"read (it reads format {expected.format_version}) and does not migrate"
        )
    if found.chain_id != expected.chain_id:
        raise IncompatibleStoreError(
            f"{root} holds chain {found.chain_id!r}, but the genesis is for chain "
            f"{expected.chain_id!r}: use another data directory or the matching genesis file"
        )
    if found.genesis_hash != expected.genesis_hash:
        raise IncompatibleStoreError(
            f"{root} holds chain {found.chain_id!r} from genesis {found.genesis_hash.hex()}, "
            f"but the genesis file hashes to {expected.genesis_hash.hex()}: same chain id, "
            "different genesis; use the genesis file this data directory was created with"
        )
