"""Data directories the store refuses: another chain, another format, in use, corrupted."""

import dataclasses
import json
import subprocess
import sys

import plyvel
import pytest

from tests.helpers.store_helpers import StoredChain, dir_fingerprint
from wekacoin.chain.state import account_key
from wekacoin.store import ChainStore, CorruptStoreError, IncompatibleStoreError, StoreInUseError
from wekacoin.store.layout import STATE_PREFIX, TIP_KEY, StoredTip
from wekacoin.testing.chain import LocalChain
from wekacoin.types.codec import decode, encode
from wekacoin.types.ledger import Account
from wekacoin.types.tx import Transfer


@pytest.fixture
def stored(tmp_path):
    """A closed data directory at height 3."""
    sc = StoredChain(tmp_path / "chain")
    for _ in range(3):
        sc.commit([sc.tx(5, Transfer(sc.chain.keys[6].address, 10))])
    sc.store.close()
    return sc


def _refused_untouched(path, genesis, error, match):
    before = dir_fingerprint(path)
    with pytest.raises(error, match=match):
        ChainStore.open(path, genesis)
    assert dir_fingerprint(path) == before


# -- another chain, another format: refused, nothing modified --


def test_another_chain_id_is_refused(stored):
    other = dataclasses.replace(stored.chain.genesis, chain_id="wekacoin-other")
    _refused_untouched(stored.path, other, IncompatibleStoreError, "holds chain 'wekacoin-test'")


def test_another_genesis_with_the_same_chain_id_is_refused(stored):
    other = LocalChain(balance=5).genesis
    assert other.chain_id == stored.chain.genesis.chain_id
    _refused_untouched(stored.path, other, IncompatibleStoreError, "different genesis")


def _set_format(path, version):
    meta = path / "chainstore.json"
    doc = json.loads(meta.read_text())
    doc["format_version"] = version
    meta.write_text(json.dumps(doc))


def test_a_newer_format_is_refused(stored):
    _set_format(stored.path, 2)
    _refused_untouched(stored.path, stored.chain.genesis, IncompatibleStoreError,
                       "format 2, this node reads format 1: run a newer node")


def test_an_older_format_is_refused(stored):
    _set_format(stored.path, 0)
    _refused_untouched(stored.path, stored.chain.genesis, IncompatibleStoreError,
                       "does not migrate")


def test_a_directory_that_is_not_a_store_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    _refused_untouched(tmp_path, LocalChain().genesis, IncompatibleStoreError, "not a chain store")


def test_a_garbled_identity_file_is_refused(stored):
    (stored.path / "chainstore.json").write_text("{not json")
    _refused_untouched(stored.path, stored.chain.genesis, CorruptStoreError, "identity file")


def test_a_leveldb_of_another_store_is_refused(stored, tmp_path):
    other = StoredChain(tmp_path / "other", LocalChain(balance=7))
    other.store.close()
    (stored.path / "leveldb").rename(tmp_path / "mine")
    (other.path / "leveldb").rename(stored.path / "leveldb")
    with pytest.raises(CorruptStoreError, match="identity record"):
        ChainStore.open(stored.path, stored.chain.genesis)


# -- already in use --


def test_a_second_open_in_this_process_is_refused(stored):
    with ChainStore.open(stored.path, stored.chain.genesis):
        with pytest.raises(StoreInUseError, match="already in use"):
            ChainStore.open(stored.path, stored.chain.genesis)
    ChainStore.open(stored.path, stored.chain.genesis).close()  # the lock went with the close


def test_a_store_held_by_another_process_is_refused(stored):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, plyvel; db = plyvel.DB(sys.argv[1]); print('open', flush=True); "
         "sys.stdin.read()", str(stored.path / "leveldb")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreInUseError, match="another node process"):
            ChainStore.open(stored.path, stored.chain.genesis)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    ChainStore.open(stored.path, stored.chain.genesis).close()


# -- corrupted: the tip does not match its state root --


def _tamper(path, fn):
    db = plyvel.DB(str(path / "leveldb"))
    try:
        fn(db)
    finally:
        db.close()


def test_a_changed_ledger_entry_is_detected(stored):
    key = STATE_PREFIX + account_key(stored.chain.keys[6].address)

    def richer(db):
        account = decode(Account, db.get(key))
        db.put(key, encode(Account(account.balance + 1, account.nonce)))

    _tamper(stored.path, richer)
    with pytest.raises(CorruptStoreError, match="ledger entries hash to state root"):
        ChainStore.open(stored.path, stored.chain.genesis)
    # the O(1) check trusts the stored accumulator and cannot see it: that is its limit
    ChainStore.open(stored.path, stored.chain.genesis, verify_state=False).close()


def test_a_lost_ledger_entry_is_detected(stored):
    key = STATE_PREFIX + account_key(stored.chain.keys[5].address)
    _tamper(stored.path, lambda db: db.delete(key))
    with pytest.raises(CorruptStoreError, match="changed or lost"):
        ChainStore.open(stored.path, stored.chain.genesis)


def test_a_tip_record_that_is_not_the_blocks_is_detected(stored):
    def bad_lattice(db):
        tip = decode(StoredTip, db.get(TIP_KEY))
        db.put(TIP_KEY, encode(dataclasses.replace(tip, lattice=bytes(2048))))

    _tamper(stored.path, bad_lattice)
    with pytest.raises(CorruptStoreError, match="accumulator is not the block's root"):
        ChainStore.open(stored.path, stored.chain.genesis)


def test_a_tip_pointing_at_another_block_is_detected(stored):
    def older_tip(db):
        tip = decode(StoredTip, db.get(TIP_KEY))
        db.put(TIP_KEY, encode(dataclasses.replace(tip, height=2)))

    _tamper(stored.path, older_tip)
    with pytest.raises(CorruptStoreError, match="tip block is missing or is another block"):
        ChainStore.open(stored.path, stored.chain.genesis)


def test_a_database_with_data_but_no_tip_is_detected(stored):
    _tamper(stored.path, lambda db: db.delete(TIP_KEY))
    with pytest.raises(CorruptStoreError, match="no tip"):
        ChainStore.open(stored.path, stored.chain.genesis)


def test_a_lost_chain_tip_entry_is_detected_even_without_the_full_scan(stored):
    _tamper(stored.path, lambda db: db.delete(STATE_PREFIX + b"G"))
    with pytest.raises(CorruptStoreError, match="chain tip entry says None"):
        ChainStore.open(stored.path, stored.chain.genesis, verify_state=False)
