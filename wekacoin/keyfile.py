"""Keystore files on disk: the file side of `wekacoin.crypto.keystore`."""

from __future__ import annotations

import json
from pathlib import Path

from wekacoin.crypto.keys import KeyPair
from wekacoin.crypto.keystore import KeystoreError, WrongPasswordError, decrypt_key, encrypt_key
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
    """The key in the keystore file at `path`; KeystoreError, naming the file, if it is
    missing, unreadable or damaged, or WrongPasswordError if it does not open with
    `password`."""
    try:
        document = json.loads(Path(path).read_bytes())  # invalid UTF-8 is a ValueError too
    except FileNotFoundError:
        raise KeystoreError(f"no keystore at {path}") from None
    except OSError as e:
        raise KeystoreError(f"cannot read the keystore {path}: {e.strerror}") from None
    except ValueError as e:
        raise KeystoreError(f"the keystore {path} is damaged (not JSON: {e}): {_RESTORE}") from None
    try:
        return decrypt_key(document, password)
    except WrongPasswordError:
        raise WrongPasswordError(
            f"cannot open the keystore {path}: wrong password, or the file is damaged"
        ) from None
    except KeystoreError as e:
        raise KeystoreError(f"the keystore {path} cannot be used ({e}): {_RESTORE}") from None


_RESTORE = "restore it from a backup; the key cannot be recovered from anywhere else"
