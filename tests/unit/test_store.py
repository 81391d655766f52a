"""The chain store: genesis initialisation, commits, queries, checkpoint, snapshots."""

import dataclasses

import pytest

from tests.helpers.store_helpers import StoredChain, transfer_blocks
from wekacoin.chain.blocks import apply_block
from wekacoin.chain.genesis import genesis_state
from wekacoin.chain.tasks import settlement_deadline, split_height
from wekacoin.chain.transactions import compute_tx_id
from wekacoin.store import ChainStore, CommitError
from wekacoin.testing.chain import LocalChain
from wekacoin.types.codec import encode
from wekacoin.types.ledger import Account
from wekacoin.types.ranking import Resolution
from wekacoin.types.tx import SubmitModel, Transfer


@pytest.fixture
def sc(tmp_path):
    stored = StoredChain(tmp_path / "chain")
    yield stored
    stored.store.close()


def test_an_empty_directory_starts_at_genesis(tmp_path):
    chain = LocalChain()
    with ChainStore.open(tmp_path / "new", chain.genesis) as store:
        tip = store.tip()
        assert (tip.height, tip.block_hash) == (0, chain.genesis.hash)
        genesis = genesis_state(chain.genesis)
        assert tip.state_root == genesis.root()
        assert dict(store.state().items()) == dict(genesis.items())
        assert store.get_block(0) is None and store.get_block(1) is None
        assert list(store.iter_blocks(0)) == []


def test_committed_blocks_move_the_tip_and_the_state(sc):
    for i in range(3):
        sc.commit([sc.tx(5, Transfer(sc.chain.keys[6].address, 10 + i))], certificate=b"c%d" % i)
    tip = sc.store.tip()
    assert tip.height == 3
    assert tip.block_hash == sc.chain.blocks[-1].hash
    assert tip.state_root == sc.chain.state.root()
    assert dict(sc.store.state().items()) == dict(sc.chain.state.items())
    assert sc.store.get_account(sc.chain.keys[6].address) == sc.chain.state.get_account(
        sc.chain.keys[6].address)


def test_blocks_by_height_and_hash_headers_and_certificates(sc):
    blocks = [sc.commit([sc.tx(5, Transfer(sc.chain.keys[6].address, 1))], b"cert%d" % i)
              for i in range(4)]
    for i, block in enumerate(blocks, start=1):
        assert sc.store.get_block(i) == block
        assert sc.store.get_block_by_hash(block.hash) == block
        assert sc.store.get_block_hash(i) == block.hash
        assert sc.store.get_header(i) == block.header
        assert sc.store.get_certificate(i) == b"cert%d" % (i - 1)
        assert sc.store.get_block_bytes(block.hash) == encode(block)
    assert sc.store.get_block(5) is None
    assert sc.store.get_block_by_hash(b"\x01" * 32) is None
    assert sc.store.get_certificate(9) is None


def test_block_ranges_are_lazy_iterators(sc):
    blocks = [sc.commit() for _ in range(6)]
    assert list(sc.store.iter_blocks(2, 5)) == blocks[1:4]
    assert list(sc.store.iter_blocks(0)) == blocks
    assert list(sc.store.iter_blocks(6, 100)) == blocks[5:]
    assert list(sc.store.iter_blocks(7)) == []
    raws = sc.store.iter_raw_blocks(1)
    first = next(raws)
    assert (first.height, first.block_hash, first.data) == (1, blocks[0].hash, encode(blocks[0]))
    raws.close()


def test_transactions_by_id_with_their_location(sc):
    txs = [sc.tx(5, Transfer(sc.chain.keys[6].address, 10)),
           sc.tx(6, Transfer(sc.chain.keys[7].address, 20)),
           sc.tx(7, Transfer(sc.chain.keys[5].address, 30))]
    sc.commit()
    block = sc.commit(txs)
    for index, tx in enumerate(txs):
        found = sc.store.get_tx(compute_tx_id(tx.payload))
        assert found.tx == tx
        assert (found.location.height, found.location.block_hash, found.location.index) == (
            2, block.hash, index)
    assert sc.store.get_tx(b"\x00" * 32) is None


def test_a_task_with_its_submissions(sc):
    chain = sc.chain
    spec, data = chain.task_spec()
    sc.commit([sc.tx(4, spec)])
    while chain.height < split_height(chain.state.get_task(1), chain.params):
        sc.commit()
    task = sc.store.get_task(1).task
    sc.commit([sc.tx(4, data.reveal_training(1, task.test_groups))])
    sc.commit([sc.tx(k, SubmitModel(1, chain.commitment_for(chain.keys[k], f"m{k}"), 900_000))
               for k in (5, 6)])
    view = sc.store.get_task(1)
    assert view.task == chain.state.get_task(1)
    assert [s.trainer for s in view.submissions] == [chain.keys[5].address, chain.keys[6].address]
    assert view.submissions == tuple(chain.state.get_submission(s) for s in view.task.submissions)
    assert view.settlement is None
    assert sc.store.get_task(2) is None
    # Its end (here: no committee ranked it, it expires) is kept with it.
    while chain.height <= settlement_deadline(chain.state.get_task(1), chain.params):
        sc.commit()
    view = sc.store.get_task(1)
    assert view.settlement == chain.state.get_settlement(1)
    assert view.settlement.resolution is Resolution.EXPIRED


def test_reopening_keeps_everything(sc):
    blocks = [sc.commit([sc.tx(5, Transfer(sc.chain.keys[6].address, 7))], b"x") for _ in range(3)]
    sc.store.put_checkpoint(b"round 3 step 2")
    store = sc.reopen()
    assert store.tip().height == 3
    assert list(store.iter_blocks(1)) == blocks
    assert store.get_checkpoint() == b"round 3 step 2"
    assert dict(store.state().items()) == dict(sc.chain.state.items())
    sc.commit()  # and committing goes on
    assert store.height == 4


def test_checkpoint_slot(sc):
    assert sc.store.get_checkpoint() is None
    sc.store.put_checkpoint(b"a")
    sc.store.put_checkpoint(b"b")
    assert sc.store.get_checkpoint() == b"b"


def test_proposals_kept_with_a_checkpoint_survive_reopening_until_their_height_commits(sc):
    sc.commit()
    h2, h3 = b"\x02" * 32, b"\x03" * 32
    sc.store.put_checkpoint(b"round 2 step 3", [(2, h2, b"block two"), (3, h3, b"block three")])
    store = sc.reopen()
    assert store.get_checkpoint() == b"round 2 step 3"
    assert store.get_proposed(2, h2) == b"block two"
    assert store.get_proposed(2, h3) is None  # kept under its own height only
    sc.commit()  # height 2 is decided: its proposals go, later ones stay
    assert store.get_proposed(2, h2) is None
    assert store.get_proposed(3, h3) == b"block three"
    sc.commit()
    assert store.get_proposed(3, h3) is None


def test_own_rankings_survive_reopening_while_their_task_is_open(sc):
    """Kept with the checkpoint; dropped by the first commit after which the task is not
    open (no task is open on this chain)."""
    evaluator = b"\x07" * 32
    sc.store.put_checkpoint(b"cp", (), [(1, evaluator, b"signed ranking of task 1")])
    store = sc.reopen()
    assert store.own_rankings() == [b"signed ranking of task 1"]
    sc.commit()
    assert sc.store.own_rankings() == []


def test_a_snapshot_keeps_its_tip_while_blocks_commit(sc):
    sc.commit()
    view = sc.store.snapshot()
    state = sc.store.state()
    before = dict(state.items())
    sc.commit([sc.tx(5, Transfer(sc.chain.keys[6].address, 1_000))])
    assert view.tip().height == 1 and sc.store.tip().height == 2
    assert view.get_block(2) is None
    assert dict(state.items()) == before
    assert state.get_account(sc.chain.keys[6].address) == Account(10**12, 0)


# -- refused commits: nothing written --


def _next(sc, txs=()):
    block, _ = sc.chain.build(list(txs))
    return block


def _assert_untouched(sc, height):
    assert sc.store.tip().height == height
    assert sc.store.get_block(height + 1) is None
    assert dict(sc.store.state().items()) == dict(sc.chain.state.items())


def test_a_block_that_does_not_extend_the_tip_is_refused(sc):
    sc.commit()
    block = _next(sc)
    state = apply_block(sc.store.state(), block)
    wrong_height = dataclasses.replace(block, header=dataclasses.replace(block.header, height=5))
    with pytest.raises(CommitError, match="does not extend"):
        sc.store.commit(wrong_height, state)
    wrong_parent = dataclasses.replace(
        block, header=dataclasses.replace(block.header, prev_hash=b"\x02" * 32))
    with pytest.raises(CommitError, match="does not extend"):
        sc.store.commit(wrong_parent, state)
    _assert_untouched(sc, 1)


def test_a_state_that_is_not_the_blocks_is_refused(sc):
    block = _next(sc, [sc.tx(5, Transfer(sc.chain.keys[6].address, 3))])
    state = apply_block(sc.store.state(), block)
    with pytest.raises(CommitError, match="apply_block"):
        sc.store.commit(block, state.flattened())
    other_block, other_state = sc.chain.build([])
    with pytest.raises(CommitError, match="not made by it"):
        sc.store.commit(block, other_state)
    _assert_untouched(sc, 0)
    sc.store.commit(block, state)  # the right pair still commits
    assert sc.store.height == 1


def test_many_transfer_blocks_match_the_in_memory_chain(tmp_path):
    chain = LocalChain(n_keys=12)
    reference = LocalChain(n_keys=12)
    blocks = transfer_blocks(reference, 20, 8, seed=3)
    with ChainStore.open(tmp_path / "c", chain.genesis) as store:
        for block in blocks:
            store.commit(block, apply_block(store.state(), block))
        assert store.tip().state_root == reference.state.root()
        assert dict(store.state().items()) == dict(reference.state.items())


def test_a_store_killed_while_being_created_opens(tmp_path):
    """Killed after writing the temporary identity file, before renaming it."""
    root = tmp_path / "new"
    root.mkdir()
    (root / ".chainstore.json.k1llx9.tmp").write_text('{"kind": "wekacoin-chain-')
    chain = LocalChain()
    with ChainStore.open(root, chain.genesis) as store:
        assert store.height == 0
    assert sorted(p.name for p in root.iterdir()) == ["chainstore.json", "leveldb"]
