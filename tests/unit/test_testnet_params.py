"""The parameters a local testnet's genesis gets for its number of nodes."""

import dataclasses

import pytest

from wekacoin.chain.genesis import load_genesis
from wekacoin.node.testnet import LOCAL_PARAMS, generate, local_params


@pytest.mark.parametrize("nodes", [1, 2, 3, 4])
def test_up_to_four_nodes_get_the_local_parameters(nodes):
    assert local_params(nodes) == LOCAL_PARAMS


def test_more_nodes_on_one_machine_get_a_longer_proposal_window_and_nothing_else():
    """8 validators on 2 cores with LOCAL_PARAMS' 0.5 s window split their first votes and
    decided empty blocks under load (local_params's docstring has the figures)."""
    windows = [local_params(n).lambda_priority_ms + local_params(n).lambda_stepvar_ms
               for n in range(4, 9)]
    assert windows == sorted(set(windows))  # grows with every node
    assert windows[-1] == 1_000  # 8 nodes: 1 s
    eight = local_params(8)
    assert dataclasses.replace(eight, lambda_priority_ms=LOCAL_PARAMS.lambda_priority_ms) \
        == LOCAL_PARAMS


def test_generate_writes_them_unless_told_otherwise(tmp_path):
    generate(tmp_path / "six", 6)
    assert load_genesis(tmp_path / "six" / "genesis.json").params == local_params(6)
    chosen = dataclasses.replace(LOCAL_PARAMS, lambda_block_ms=5_000)
    generate(tmp_path / "chosen", 6, params=chosen)
    assert load_genesis(tmp_path / "chosen" / "genesis.json").params == chosen
