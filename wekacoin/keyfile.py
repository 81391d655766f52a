"""Keystore files on disk: the file side of `wekacoin.crypto.keystore`."""

from __future__ import annotations

import json
import os
from pathlib import Path

from wekacoin.crypto.keys import KeyPair
from wekacoin.crypto.keystore import KeystoreError, decrypt_key, encrypt_key


def save_keystore(path: Path, keypair: KeyPair, password: str, cost: str = "moderate") -> None:
    """Write an encrypted keystore atomically, readable by the owner only; never overwrite."""
    path = Path(path)
    if path.exists():
        raise KeystoreError(f"{path} already exists; refusing to overwrite a key")
    document = encrypt_key(keypair, password, cost)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(document, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def load_keystore(path: Path, password: str) -> KeyPair:
    try:
        document = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise KeystoreError(f"no keystore at {path}") from None
    except (OSError, ValueError) as e:
        raise KeystoreError(f"cannot read keystore {path}: {e}") from None
    return decrypt_key(document, password)
