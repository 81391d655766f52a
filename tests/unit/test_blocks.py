"""Block validation: header commitments, linkage, empty blocks, the state root, determinism."""

import ast
import dataclasses
from pathlib import Path

import pytest

from wekacoin.chain.blocks import apply_block, build_block
from wekacoin.chain.errors import BlockError, StateRootMismatch
from wekacoin.chain.transactions import verify_tx
from wekacoin.testing.chain import LocalChain
from wekacoin.types.block import Block, BlockMeta
from wekacoin.types.codec import decode, encode
from wekacoin.types.tx import Transfer


@pytest.fixture
def chain():
    return LocalChain()


def _block(chain):
    return chain.build([chain.tx(chain.keys[5], Transfer(chain.keys[6].address, 10))])[0]


def test_a_built_block_applies_and_survives_the_wire(chain):
    block = _block(chain)
    wire = decode(Block, encode(block))
    assert wire == block
    state = apply_block(chain.state, wire)
    assert state.root() == block.header.state_root
    assert state.block_hash == block.hash
    assert state.height == 1


@pytest.mark.parametrize("field, value, message", [
    ("height", 5, "expected a block at height 1"),
    ("prev_hash", b"\x07" * 32, "does not extend"),
    ("tx_root", b"\x07" * 32, "transaction root"),
    ("meta_hash", b"\x07" * 32, "metadata hash"),
])
def test_header_commitments(chain, field, value, message):
    block = _block(chain)
    bad = dataclasses.replace(block, header=dataclasses.replace(block.header, **{field: value}))
    with pytest.raises(BlockError, match=message):
        apply_block(chain.state, bad)


def test_state_root_mismatch(chain):
    block = _block(chain)
    bad = dataclasses.replace(
        block, header=dataclasses.replace(block.header, state_root=b"\x01" * 32)
    )
    with pytest.raises(StateRootMismatch):
        apply_block(chain.state, bad)


def test_a_different_seed_changes_the_root_through_the_tip(chain):
    block = _block(chain)
    bad = dataclasses.replace(block, header=dataclasses.replace(block.header, seed=b"\x01" * 32))
    with pytest.raises(StateRootMismatch):
        apply_block(chain.state, bad)


def test_swapped_transactions_break_the_tx_root(chain):
    txs = [chain.tx(chain.keys[5], Transfer(chain.keys[6].address, 10)),
           chain.tx(chain.keys[6], Transfer(chain.keys[5].address, 10))]
    block, _ = chain.build(txs)
    with pytest.raises(BlockError, match="transaction root"):
        apply_block(chain.state, dataclasses.replace(block, txs=block.txs[::-1]))


def test_too_many_transactions(chain):
    params = dataclasses.replace(chain.params, max_block_txs=1)
    small = LocalChain(params=params)
    txs = [small.tx(small.keys[5], Transfer(small.keys[6].address, 1)) for _ in range(2)]
    block, _ = small.build(txs[:1])
    block2 = dataclasses.replace(block, txs=tuple(txs))
    with pytest.raises(BlockError, match="exceed"):
        apply_block(small.state, block2)


def test_empty_block_has_no_proposer_and_no_content(chain):
    state = chain.state
    empty, new = build_block(state, vtxs=[], seed=b"\x02" * 32, proposer=None,
                             meta=BlockMeta(None, ()), time_ms=0)
    assert apply_block(state, empty).root() == new.root()
    tx = verify_tx(chain.tx(chain.keys[5], Transfer(chain.keys[6].address, 1)), chain.genesis.hash)
    with pytest.raises(BlockError, match="empty block"):
        build_block(state, vtxs=[tx], seed=b"\x02" * 32, proposer=None,
                    meta=BlockMeta(None, ()), time_ms=0)


def test_fees_need_a_staked_proposer(chain):
    tx = verify_tx(chain.tx(chain.keys[5], Transfer(chain.keys[6].address, 1)), chain.genesis.hash)
    with pytest.raises(BlockError, match="no stake"):
        build_block(chain.state, vtxs=[tx], seed=b"\x02" * 32, proposer=chain.keys[7].public_key,
                    meta=BlockMeta(None, ()), time_ms=0)


def test_apply_block_never_modifies_its_input_state(chain):
    before = dict(chain.state.items())
    root = chain.state.root()
    block = _block(chain)
    apply_block(chain.state, block)
    bad = dataclasses.replace(block, header=dataclasses.replace(block.header, state_root=bytes(32)))
    with pytest.raises(StateRootMismatch):
        apply_block(chain.state, bad)
    assert dict(chain.state.items()) == before and chain.state.root() == root


def test_two_nodes_agree_bit_for_bit():
    a, b = LocalChain(), LocalChain()
    for chain in (a, b):
        for i in range(5):
            chain.commit([chain.tx(chain.keys[5], Transfer(chain.keys[i].address, 100 + i))])
    assert [x.hash for x in a.blocks] == [x.hash for x in b.blocks]
    assert a.state.root() == b.state.root()


def test_incremental_root_equals_a_full_recomputation(chain):
    for i in range(4):
        chain.commit([chain.tx(chain.keys[5], Transfer(chain.keys[i].address, 1 + i)),
                      chain.tx(chain.keys[6], Transfer(chain.keys[7].address, 3))])
    from wekacoin.chain.state import State, compute_root, lattice_of
    full = compute_root(lattice_of(chain.state.items()))
    assert full == chain.state.root() == chain.blocks[-1].header.state_root
    assert State(chain.state.config, dict(chain.state.items())).root() == full


PURE_PACKAGES = ["types", "crypto", "chain", "sortition", "consensus"]
PURE_FILES: list[str] = []  # pure modules outside PURE_PACKAGES


def test_no_floats_in_consensus_code():
    """No float literal, float() call or true division in the pure protocol code."""
    root = Path(__file__).parents[2] / "wekacoin"
    paths = [p for package in PURE_PACKAGES for p in (root / package).rglob("*.py")]
    paths += [root / f for f in PURE_FILES]
    offenders = []
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, float):
                offenders.append(f"{path}:{node.lineno} float literal")
            if isinstance(node, ast.Name) and node.id == "float":
                offenders.append(f"{path}:{node.lineno} float")
            if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
                offenders.append(f"{path}:{node.lineno} true division")
    assert offenders == []
