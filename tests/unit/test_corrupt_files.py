"""Every file a node reads at start, damaged the ways disks and people damage files.

Each case ends one of two ways: the node refuses with one typed error whose one-line message
names the file (or, when LevelDB cannot tell which of its files, the chain store directory)
and says what the operator can do; or the node starts, because the file is recreated or not
needed. Never a traceback, and never a store that "repairs" itself by dropping data.

`start` reads what `wekacoin node` reads before it goes on the network, in the same order,
through the same functions. tests/functional/test_functional_corrupt.py checks that the
real process prints such an error as one line on stderr.
"""

from __future__ import annotations

import dataclasses
import os
import random
import shutil
from pathlib import Path

import plyvel
import pytest
import tomli_w

from tests.helpers.store_helpers import StoredChain, dir_fingerprint
from wekacoin.chain.errors import GenesisError
from wekacoin.chain.genesis import genesis_to_json, load_genesis
from wekacoin.cli import node_cmds
from wekacoin.cli.common import CliError
from wekacoin.consensus.checkpoint import Checkpoint, encode_checkpoint
from wekacoin.content.embedded import EmbeddedBlobStore
from wekacoin.content.errors import BlobStoreError
from wekacoin.crypto.keystore import KeystoreError, WrongPasswordError
from wekacoin.errors import WekaError
from wekacoin.keyfile import save_keystore
from wekacoin.node.chain import ChainService
from wekacoin.node.config import ConfigError, load_config
from wekacoin.store import ChainStore, CorruptStoreError, StoreError
from wekacoin.store.layout import CHECKPOINT_KEY, META_KEY, TIP_KEY
from wekacoin.testing.chain import LocalChain
from wekacoin.types.primitives import Round
from wekacoin.types.tx import Transfer

PASSWORD = "correct horse"
CHAIN = "data/chain"
LEVELDB = "data/chain/leveldb"


# -- a node's home, as `wekacoin init` and a first run leave it --


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A node home whose chain store has blocks in a LevelDB table and in its log, and a
    consensus checkpoint."""
    home = tmp_path_factory.mktemp("home")
    chain = LocalChain()
    (home / "genesis.json").write_text(genesis_to_json(chain.genesis))
    (home / "password").write_text(PASSWORD + "\n")
    save_keystore(home / "validator.key", chain.keys[0], PASSWORD, cost="interactive")
    (home / "node.toml").write_text(tomli_w.dumps({
        "node": {"data_dir": "data", "genesis": "genesis.json"},
        "keys": {"keystore": "validator.key", "password_file": "password"},
        "rpc": {"token_file": "data/rpc.token"},
    }))
    stored = StoredChain(home / CHAIN, chain)
    for round_ in (1, 2):  # closed and reopened in between: the first blocks go to a table
        for _ in range(3):
            stored.commit([stored.tx(1, Transfer(chain.keys[2].address, 5))])
        stored.store.put_checkpoint(encode_checkpoint(Checkpoint(
            Round(stored.store.height + 1), stored.store.stored_tip().block_hash, 0, 0, 0,
            None, None, (), ())))
        if round_ == 1:
            stored.reopen()
    stored.store.close()
    (home / "data" / "rpc.token").write_text("a-token\n")
    assert _one(home, "*.ldb").stat().st_size > 0 and _one(home, "0*.log").stat().st_size > 0
    return home


@pytest.fixture
def home(template, tmp_path) -> Path:
    copy = tmp_path / "node"
    shutil.copytree(template, copy)
    return copy


def start(home: Path) -> int:
    """What `wekacoin node` reads before it starts the network; the tip's height."""
    cfg = load_config(home / "node.toml")
    genesis = load_genesis(cfg.node.genesis)
    node_cmds._node_key(cfg)
    node_cmds._check_token_file(cfg.rpc.token_file)
    store = ChainStore.open(cfg.node.data_dir / "chain", genesis)
    try:
        ChainService(store, genesis)
        return store.height
    finally:
        store.close()


def _one(home: Path, pattern: str) -> Path:
    (found,) = (home / LEVELDB).glob(pattern)
    return found


def _file(home: Path, name: str) -> Path:
    if name.startswith("leveldb/"):
        pattern = name.removeprefix("leveldb/")
        return _one(home, pattern) if "*" in pattern else home / LEVELDB / pattern
    return home / name


# -- the damage --


def flip(path: Path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0xFF
    path.write_bytes(bytes(data))


def empty(path: Path) -> None:
    path.write_bytes(b"")


def cut_in_half(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def garbage(path: Path) -> None:
    path.write_bytes(random.Random(7).randbytes(max(path.stat().st_size, 64)))


def delete(path: Path) -> None:
    path.unlink()


def directory(path: Path) -> None:
    """A directory where the file should be: every read fails, as on an unreadable file."""
    path.unlink()
    path.mkdir()


def flip_magic(path: Path) -> None:
    """Flip the last byte of a table: its magic number."""
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGE = {f.__name__: f for f in (flip, empty, cut_in_half, garbage, delete, directory)}

# (file, damage, error type, what the message names besides the file, when not the file)
REFUSED = [
    ("node.toml", "flip", ConfigError, "not valid TOML"),
    ("node.toml", "cut_in_half", ConfigError, "not valid TOML"),
    ("node.toml", "garbage", ConfigError, "not valid TOML"),
    ("node.toml", "delete", ConfigError, "no config file"),
    ("node.toml", "directory", ConfigError, "cannot read"),
    ("genesis.json", "flip", GenesisError, "put back the chain's genesis file"),
    ("genesis.json", "empty", GenesisError, "put back the chain's genesis file"),
    ("genesis.json", "cut_in_half", GenesisError, "put back the chain's genesis file"),
    ("genesis.json", "garbage", GenesisError, "put back the chain's genesis file"),
    ("genesis.json", "delete", GenesisError, "cannot read"),
    ("genesis.json", "directory", GenesisError, "cannot read"),
    ("validator.key", "flip", KeystoreError, "restore it from a backup"),
    ("validator.key", "empty", KeystoreError, "restore it from a backup"),
    ("validator.key", "cut_in_half", KeystoreError, "restore it from a backup"),
    ("validator.key", "garbage", KeystoreError, "restore it from a backup"),
    ("validator.key", "delete", KeystoreError, "no keystore"),
    ("validator.key", "directory", KeystoreError, "cannot read"),
    ("password", "flip", CliError, "write the keystore's password back"),
    ("password", "empty", CliError, "check both files"),
    ("password", "cut_in_half", CliError, "check both files"),
    ("password", "garbage", CliError, "write the keystore's password back"),
    ("password", "delete", CliError, "cannot read"),
    ("password", "directory", CliError, "cannot read"),
    ("data/rpc.token", "flip", CliError, "delete it and the node writes a new token"),
    ("data/rpc.token", "garbage", CliError, "delete it and the node writes a new token"),
    ("data/rpc.token", "directory", CliError, "delete it and the node writes a new token"),
    ("data/chain/chainstore.json", "flip", CorruptStoreError, "resyncs the chain"),
    ("data/chain/chainstore.json", "empty", CorruptStoreError, "resyncs the chain"),
    ("data/chain/chainstore.json", "cut_in_half", CorruptStoreError, "resyncs the chain"),
    ("data/chain/chainstore.json", "garbage", CorruptStoreError, "resyncs the chain"),
    ("data/chain/chainstore.json", "delete", CorruptStoreError, "resyncs the chain"),
    ("data/chain/chainstore.json", "directory", StoreError, "cannot read"),
    ("leveldb/CURRENT", "flip", CorruptStoreError, "resyncs the chain"),
    ("leveldb/CURRENT", "empty", CorruptStoreError, "resyncs the chain"),
    ("leveldb/CURRENT", "cut_in_half", CorruptStoreError, "resyncs the chain"),
    ("leveldb/CURRENT", "garbage", CorruptStoreError, "resyncs the chain"),
    ("leveldb/CURRENT", "delete", CorruptStoreError, "holds LevelDB data files"),
    ("leveldb/CURRENT", "directory", CorruptStoreError, "resyncs the chain"),
    ("leveldb/MANIFEST-*", "flip", CorruptStoreError, "resyncs the chain"),
    ("leveldb/MANIFEST-*", "empty", CorruptStoreError, "resyncs the chain"),
    ("leveldb/MANIFEST-*", "cut_in_half", CorruptStoreError, "resyncs the chain"),
    ("leveldb/MANIFEST-*", "garbage", CorruptStoreError, "resyncs the chain"),
    ("leveldb/MANIFEST-*", "delete", CorruptStoreError, "resyncs the chain"),
    ("leveldb/MANIFEST-*", "directory", CorruptStoreError, "resyncs the chain"),
    ("leveldb/*.ldb", "empty", CorruptStoreError, "resyncs the chain"),
    ("leveldb/*.ldb", "cut_in_half", CorruptStoreError, "resyncs the chain"),
    ("leveldb/*.ldb", "garbage", CorruptStoreError, "resyncs the chain"),
    ("leveldb/*.ldb", "delete", CorruptStoreError, "resyncs the chain"),
    ("leveldb/*.ldb", "directory", CorruptStoreError, "resyncs the chain"),
    ("leveldb/0*.log", "flip", CorruptStoreError, "resyncs the chain"),
    ("leveldb/0*.log", "directory", CorruptStoreError, "resyncs the chain"),
]


def _case_id(case: tuple) -> str:
    return f"{case[0]}-{case[1]}"


@pytest.mark.parametrize("name, damage, error, says", REFUSED, ids=map(_case_id, REFUSED))
def test_a_damaged_file_is_refused_in_one_line_naming_it(home, name, damage, error, says):
    path = _file(home, name)
    DAMAGE[damage](path)
    with pytest.raises(error) as refused:
        start(home)
    message = str(refused.value)
    assert "\n" not in message
    assert says in message
    # LevelDB names its file when it knows it; the store's own message names its directory
    named = str(path) if not name.startswith("leveldb/") else str(home / CHAIN)
    assert named in message


@pytest.mark.parametrize("name", ["data/chain/chainstore.json", "validator.key", "password",
                                  "genesis.json", "data/rpc.token"])
@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_an_unreadable_file_is_refused_naming_it(home, name):
    path = home / name
    path.chmod(0)
    with pytest.raises(WekaError, match="Permission denied") as refused:
        start(home)
    assert str(path) in str(refused.value)


def test_a_table_with_a_damaged_footer_is_refused(home):
    flip_magic(_one(home, "*.ldb"))
    with pytest.raises(CorruptStoreError, match=f"{home / CHAIN} is damaged: LevelDB"):
        start(home)


# -- what a node recreates or does not need --


def test_the_intact_home_starts(home):
    assert start(home) == 6


@pytest.mark.parametrize("name, damage", [
    ("data/rpc.token", "empty"),  # the node writes a new token (clients need the new one)
    ("data/rpc.token", "delete"),
    ("leveldb/LOG", "garbage"),  # LevelDB's own text log, never read
    ("leveldb/LOG", "delete"),
    ("leveldb/LOCK", "garbage"),  # only locked, never read
    ("leveldb/LOCK", "delete"),
])
def test_a_file_the_node_recreates_or_does_not_need(home, name, damage):
    DAMAGE[damage](_file(home, name))
    assert start(home) == 6


@pytest.mark.parametrize("damage", ["empty", "cut_in_half"])
def test_a_log_cut_short_opens_as_after_a_crash(home, damage):
    """A log that ends early is what a crash mid-write leaves: LevelDB keeps the batches
    before the cut, whole, and the node starts on that older tip and syncs the rest."""
    DAMAGE[damage](_one(home, "0*.log"))
    assert 3 <= start(home) < 6


def test_a_missing_current_file_leaves_the_database_untouched(home):
    """Without CURRENT, LevelDB would create a new database over the old files and delete
    them as obsolete: every block would be gone. The store refuses first."""
    (home / LEVELDB / "CURRENT").unlink()
    before = dir_fingerprint(home / CHAIN)
    with pytest.raises(CorruptStoreError, match="CURRENT is missing"):
        start(home)
    assert dir_fingerprint(home / CHAIN) == before


def test_a_damaged_log_is_refused_not_skipped(home):
    """Without LevelDB's paranoid checks the damaged batches would be dropped silently (the
    node would start on an older tip, and LevelDB would then delete the log)."""
    log = _one(home, "0*.log")
    flip(log, at=0.9)
    before = log.read_bytes()
    with pytest.raises(CorruptStoreError, match="LevelDB"):
        start(home)
    assert log.read_bytes() == before


# -- records inside the database --


def _put(home: Path, key: bytes, value: bytes) -> None:
    db = plyvel.DB(str(home / LEVELDB))
    try:
        db.put(key, value)
    finally:
        db.close()


@pytest.mark.parametrize("key, says", [
    (CHECKPOINT_KEY, "consensus checkpoint"),
    (TIP_KEY, "tip record"),
    (META_KEY, "identity record"),
])
@pytest.mark.parametrize("value", [b"", b"\x01garbage", bytes(300)])
def test_a_record_that_does_not_decode_is_refused(home, key, says, value):
    _put(home, key, value)
    with pytest.raises(CorruptStoreError) as refused:
        start(home)
    message = str(refused.value)
    assert says in message and str(home / CHAIN) in message and "\n" not in message


def test_a_truncated_checkpoint_is_refused(home):
    db = plyvel.DB(str(home / LEVELDB))
    try:
        db.put(CHECKPOINT_KEY, db.get(CHECKPOINT_KEY)[:-7])
    finally:
        db.close()
    with pytest.raises(CorruptStoreError, match="consensus checkpoint"):
        start(home)


# -- the embedded blob store --


def test_a_file_where_the_blob_store_keeps_a_directory_is_refused(tmp_path):
    root = tmp_path / "blobs"
    root.mkdir()
    (root / "blobs").write_bytes(b"x")
    with pytest.raises(BlobStoreError, match=f"{root / 'blobs'}: File exists"):
        EmbeddedBlobStore(root)


def test_a_directory_left_in_the_blob_store_tmp_is_refused(tmp_path):
    root = tmp_path / "blobs"
    EmbeddedBlobStore(root)
    (root / "tmp" / "stray").mkdir()
    with pytest.raises(BlobStoreError, match="stray"):
        EmbeddedBlobStore(root)


# -- the one place the node command turns these into one line --


def test_errors_out_of_the_running_node_become_one_error(tmp_path):
    store_error = CorruptStoreError("the chain store x is damaged: ...")
    assert node_cmds._file_error(ExceptionGroup("trio", [store_error]), tmp_path) is store_error
    leveldb = node_cmds._file_error(plyvel.CorruptionError(b"Corruption: bad block"), tmp_path)
    assert isinstance(leveldb, CorruptStoreError)
    assert f"{tmp_path} is damaged: LevelDB: Corruption: bad block" in str(leveldb)
    oserror = node_cmds._file_error(PermissionError(13, "Permission denied", "/x/f"), tmp_path)
    assert str(oserror) == "/x/f: Permission denied"
    # anything else is a bug: its traceback is kept
    assert node_cmds._file_error(ValueError("bug"), tmp_path) is None
    assert node_cmds._file_error(ExceptionGroup("trio", [store_error, KeyError()]),
                                 tmp_path) is None


def test_a_wrong_password_without_a_password_file_names_the_keystore(home, monkeypatch):
    cfg = load_config(home / "node.toml")
    cfg = dataclasses.replace(cfg, keys=dataclasses.replace(cfg.keys, password_file=None))
    monkeypatch.setenv("WEKACOIN_PASSWORD", "not it")
    with pytest.raises(WrongPasswordError, match=str(home / "validator.key")):
        node_cmds._node_key(cfg)
