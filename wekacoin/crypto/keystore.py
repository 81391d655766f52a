"""Password-encrypted key documents (pure: bytes and dicts in, no files).

The seed is encrypted with XSalsa20-Poly1305 (libsodium secretbox) under a key derived from the
password with Argon2id; the KDF cost is stored in the document so it can be raised later. The
MAC makes a wrong password or a tampered document fail as a whole: decryption returns the full
seed or raises `KeystoreError`, never part of a key.
"""

from __future__ import annotations

import os
from typing import Any

import nacl.exceptions
import nacl.pwhash
import nacl.secret

from wekacoin.crypto.keys import KeyPair, format_address
from wekacoin.errors import WekaError

FORMAT_VERSION = 1

# Argon2id cost presets: "moderate" for operator keys, "interactive" for tests and demos.
KDF_COSTS = {
    "moderate": (nacl.pwhash.argon2id.OPSLIMIT_MODERATE, nacl.pwhash.argon2id.MEMLIMIT_MODERATE),
    "interactive": (
        nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE,
        nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE,
    ),
}
_MAX_OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE
_MAX_MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE


class KeystoreError(WekaError):
    """A keystore document that cannot be opened: wrong password, corrupted or unknown format."""


class WrongPasswordError(KeystoreError):
    """The MAC did not verify: the password is wrong, or the encrypted fields were changed."""


def encrypt_key(keypair: KeyPair, password: str, cost: str = "moderate") -> dict[str, Any]:
    opslimit, memlimit = KDF_COSTS[cost]
    salt = os.urandom(nacl.pwhash.argon2id.SALTBYTES)
    box = nacl.secret.SecretBox(_derive(password, salt, opslimit, memlimit))
    nonce = os.urandom(nacl.secret.SecretBox.NONCE_SIZE)
    ciphertext = box.encrypt(keypair.seed, nonce).ciphertext
    return {
        "version": FORMAT_VERSION,
        "address": format_address(keypair.address),
        "public_key": keypair.public_key.hex(),
        "kdf": {"name": "argon2id", "opslimit": opslimit, "memlimit": memlimit, "salt": salt.hex()},
        "cipher": {
            "name": "xsalsa20poly1305", "nonce": nonce.hex(), "ciphertext": ciphertext.hex(),
        },
    }


def decrypt_key(document: Any, password: str) -> KeyPair:
    try:
        if document["version"] != FORMAT_VERSION:
            raise KeystoreError(f"unsupported keystore version {document['version']!r}")
        kdf, cipher = document["kdf"], document["cipher"]
        if kdf["name"] != "argon2id" or cipher["name"] != "xsalsa20poly1305":
            raise KeystoreError("unsupported keystore algorithms")
        opslimit, memlimit = int(kdf["opslimit"]), int(kdf["memlimit"])
        salt = bytes.fromhex(kdf["salt"])
        nonce = bytes.fromhex(cipher["nonce"])
        ciphertext = bytes.fromhex(cipher["ciphertext"])
        expected_address = document["address"]
    except (KeyError, TypeError, ValueError) as e:
        raise KeystoreError(f"corrupted keystore: {e}") from None
    if not (0 < opslimit <= _MAX_OPSLIMIT and 0 < memlimit <= _MAX_MEMLIMIT):
        raise KeystoreError("corrupted keystore: KDF cost out of range")
    if len(salt) != nacl.pwhash.argon2id.SALTBYTES or len(nonce) != 24:
        raise KeystoreError("corrupted keystore: bad salt or nonce length")
    box = nacl.secret.SecretBox(_derive(password, salt, opslimit, memlimit))
    try:
        seed = box.decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError:
        raise WrongPasswordError("wrong password, or the keystore is corrupted") from None
    keypair = KeyPair.from_seed(seed)
    if format_address(keypair.address) != expected_address:
        raise KeystoreError("keystore address does not match its key")
    return keypair


def _derive(password: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE, password.encode("utf-8"), salt,
        opslimit=opslimit, memlimit=memlimit,
    )
