"""Ed25519 keys, signatures and addresses (PyNaCl / libsodium).

libsodium's verification is strict (canonical s, no small-order R or A), so every node accepts
exactly the same signatures. An address is the first 20 bytes of SHA-256 over a domain tag and
the public key; people see it as Base58Check with a version byte that makes it start with "W".
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

import base58
import nacl.bindings
import nacl.exceptions

from wekacoin.errors import WekaError
from wekacoin.types.primitives import Address, PublicKey, Signature

SEED_BYTES = 32
_ADDRESS_DOMAIN = b"wekacoin/address/v1"
_ADDRESS_VERSION = bytes([73])  # Base58Check strings then start with "W"
_MAX_ADDRESS_CHARS = 40
"""Longer than any address (34 characters): base58 decoding takes time quadratic in the
length, so a longer string is refused before it is decoded."""


class AddressError(WekaError):
    """A string that is not a WekaCoin address."""


@dataclass(frozen=True, repr=False)
class KeyPair:
    """An Ed25519 key pair; `seed` is the RFC 8032 secret key (also the VRF secret key)."""

    seed: bytes
    public_key: PublicKey

    @classmethod
    def from_seed(cls, seed: bytes) -> KeyPair:
        if len(seed) != SEED_BYTES:
            raise ValueError("an Ed25519 seed is 32 bytes")
        pk, _ = nacl.bindings.crypto_sign_seed_keypair(seed)
        return cls(seed, PublicKey(pk))

    @classmethod
    def generate(cls) -> KeyPair:
        return cls.from_seed(os.urandom(SEED_BYTES))

    @property
    def address(self) -> Address:
        return address_of(self.public_key)

    def sign(self, message: bytes) -> Signature:
        sk = self.seed + self.public_key
        return Signature(nacl.bindings.crypto_sign(message, sk)[:64])

    def __repr__(self) -> str:  # never print the seed
        return f"KeyPair(address={format_address(self.address)})"


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True iff `signature` is a valid Ed25519 signature; never raises on bad input."""
    if len(public_key) != 32 or len(signature) != 64:
        return False
    try:
        nacl.bindings.crypto_sign_open(signature + message, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError):
        return False
    return True


def address_of(public_key: bytes) -> Address:
    return Address(hashlib.sha256(_ADDRESS_DOMAIN + public_key).digest()[:20])


def format_address(address: bytes) -> str:
    return base58.b58encode_check(_ADDRESS_VERSION + address).decode("ascii")


def parse_address(text: str) -> Address:
    """The 20 address bytes of a Base58Check address string, or AddressError."""
    text = text.strip()
    if len(text) > _MAX_ADDRESS_CHARS:
        shown = text if len(text) <= 200 else text[:200] + "..."
        raise AddressError(f"not an address: {shown!r} has {len(text)} characters, at most "
                           f"{_MAX_ADDRESS_CHARS}")
    try:
        raw = base58.b58decode_check(text)
    except (ValueError, TypeError) as e:
        raise AddressError(f"not an address: {text!r} ({e})") from None
    if len(raw) != 21 or raw[:1] != _ADDRESS_VERSION:
        raise AddressError(f"not a WekaCoin address: {text!r}")
    return Address(raw[1:])
