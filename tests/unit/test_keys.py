"""Ed25519 keys, addresses and the encrypted keystore."""

import json
import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wekacoin.crypto.keys import (
    AddressError,
    KeyPair,
    format_address,
    parse_address,
    verify_signature,
)
from wekacoin.crypto.keystore import KeystoreError, decrypt_key, encrypt_key
from wekacoin.keyfile import load_keystore, save_keystore


def test_sign_and_verify():
    k = KeyPair.generate()
    sig = k.sign(b"message")
    assert verify_signature(k.public_key, b"message", sig)
    assert not verify_signature(k.public_key, b"messagE", sig)
    assert not verify_signature(KeyPair.generate().public_key, b"message", sig)


@settings(max_examples=200)
@given(st.binary(max_size=40), st.binary(max_size=80), st.binary(max_size=10))
def test_verify_never_raises(pk, sig, msg):
    assert verify_signature(pk, msg, sig) in (True, False)


def test_small_order_public_key_is_refused():
    identity = (1).to_bytes(32, "little")
    assert not verify_signature(identity, b"m", identity + bytes(32))


def test_seed_determines_key():
    seed = bytes(range(32))
    assert KeyPair.from_seed(seed) == KeyPair.from_seed(seed)
    with pytest.raises(ValueError):
        KeyPair.from_seed(b"short")


def test_address_text_round_trip_and_checksum():
    k = KeyPair.generate()
    text = format_address(k.address)
    assert text.startswith("W")
    assert parse_address(text) == k.address
    typo = text[:-1] + ("2" if text[-1] != "2" else "3")
    with pytest.raises(AddressError):
        parse_address(typo)
    for junk in ["", "hello", "0x" + "00" * 20, "1" * 34]:
        with pytest.raises(AddressError):
            parse_address(junk)


def test_repr_never_shows_the_seed():
    k = KeyPair.generate()
    assert k.seed.hex() not in repr(k)


def test_keystore_round_trip_and_wrong_password():
    k = KeyPair.generate()
    doc = encrypt_key(k, "correct horse", cost="interactive")
    assert k.seed.hex() not in json.dumps(doc)
    assert decrypt_key(doc, "correct horse") == k
    with pytest.raises(KeystoreError, match="wrong password"):
        decrypt_key(doc, "battery staple")


@pytest.mark.parametrize("mutate", [
    lambda d: d["cipher"].update(ciphertext="00" + d["cipher"]["ciphertext"][2:]),
    lambda d: d["cipher"].update(ciphertext=d["cipher"]["ciphertext"][:-2]),
    lambda d: d["kdf"].update(salt="zz"),
    lambda d: d["kdf"].update(opslimit=10**12),
    lambda d: d.update(version=99),
    lambda d: d.pop("cipher"),
    lambda d: d.update(address="W" + "1" * 33),
])
def test_tampered_keystore_fails_whole(mutate):
    doc = encrypt_key(KeyPair.generate(), "pw", cost="interactive")
    mutate(doc)
    with pytest.raises(KeystoreError):
        decrypt_key(doc, "pw")


def test_keystore_file(tmp_path):
    k = KeyPair.generate()
    path = tmp_path / "key.json"
    save_keystore(path, k, "pw", cost="interactive")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert load_keystore(path, "pw") == k
    with pytest.raises(KeystoreError, match="refusing to overwrite"):
        save_keystore(path, KeyPair.generate(), "pw", cost="interactive")
    with pytest.raises(KeystoreError, match="no keystore"):
        load_keystore(tmp_path / "missing.json", "pw")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(KeystoreError, match="bad.json is damaged"):
        load_keystore(tmp_path / "bad.json", "pw")
