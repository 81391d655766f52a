"""Keystore files on disk: the file side of `wekacoin.crypto.keystore`."""

from __future__ import annotations

import json
from pathlib import Path

from wekacoin.crypto.keys import KeyPair
from wekacoin.crypto.keystore import KeystoreError, decrypt_key, encrypt_key
from wekacoin.fsutil import write_atomically


def save_keystore(path: Path, keypair: KeyPair, password: str, cost: str = "moderate") -> None:
    """Write an encrypted keystore atomically, readable by the owner only; never overwrite."""
    path = Path(path)
    if path.exists():
        raise KeystoreError(f"{path} already exists; refusing to overwrite a key")
    document = encrypt_key(keypair, password, cost)
    try:
        write_atomically(path, json.dumps(document, indent=2).encode(), mode=0o600, exclusive=True)
    except FileExistsError:
        raise KeystoreError(f"{path} already exists; refusing to overwrite a key") from None


def load_keystore(path: Path, password: str) -> KeyPair:
    try:
        document = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise KeystoreError(f"no keystore at {path}") from None
    except (OSError, ValueError) as e:
        raise KeystoreError(f"cannot read keystore {path}: {e}") from None
    return decrypt_key(document, password)
