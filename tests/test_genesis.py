"""The genesis file: strict parsing, validation, and the state it defines."""

import json

import pytest

from wekacoin.chain.errors import GenesisError
from wekacoin.chain.genesis import genesis_state, genesis_to_json, parse_genesis
from wekacoin.crypto.keys import format_address
from wekacoin.testing.chain import LocalChain, dev_key


def _doc():
    return json.loads(genesis_to_json(LocalChain().genesis))


def test_round_trip():
    chain = LocalChain()
    assert parse_genesis(genesis_to_json(chain.genesis)) == chain.genesis


def test_partial_params_take_defaults():
    doc = _doc()
    doc["params"] = {"min_training_period": 30}
    g = parse_genesis(json.dumps(doc))
    assert g.params.min_training_period == 30
    assert (g.params.test_split_delay, g.params.training_reveal_window) == (5, 20)
    assert g.params.tau_step == 2000


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(colour="blue"), "unknown key 'colour'"),
    (lambda d: d["params"].update(tau_stpe=3), "unknown key 'tau_stpe'"),
    (lambda d: d["params"].update(tau_step=2000.0), "integers"),
    (lambda d: d["params"].update(tau_step=-1), "params.tau_step"),
    (lambda d: d["params"].update(step_threshold_permille=400), "step_threshold_permille"),
    (lambda d: d["params"].update(min_groups=1), "min_groups"),
    (lambda d: d["params"].update(test_split_delay=0), "test_split_delay"),
    (lambda d: d["params"].update(max_settlements_per_block=0), "max_settlements_per_block"),
    # The training data must be revealed before tbh: min_training_period > 1 + 3 here.
    (lambda d: d["params"].update(test_split_delay=1, training_reveal_window=3,
                                  min_training_period=4), "min_training_period"),
    (lambda d: d["accounts"][0].update(balance="10"), r"accounts\[0\].balance"),
    (lambda d: d["accounts"][0].update(address="nope"), r"accounts\[0\].address"),
    (lambda d: d["accounts"].append(dict(d["accounts"][0])), "appears twice"),
    (lambda d: d["stakes"][0].update(validator_key="ab"), "validator_key"),
    (lambda d: d["stakes"][1].update(validator_key=d["stakes"][0]["validator_key"]), "appears twice"),
    (lambda d: d.pop("chain_id"), "missing key 'chain_id'"),
    (lambda d: d.update(chain_id="has space"), "chain_id"),
    (lambda d: d["accounts"][0].update(balance=2**63), "supply"),
])
def test_bad_genesis_is_refused_with_the_key(mutate, message):
    doc = _doc()
    mutate(doc)
    with pytest.raises(GenesisError, match=message):
        parse_genesis(json.dumps(doc))


def test_the_shortest_training_period_still_fits_the_split_and_the_reveal():
    doc = _doc()
    doc["params"].update(test_split_delay=1, training_reveal_window=3, min_training_period=5)
    assert parse_genesis(json.dumps(doc)).params.min_training_period == 5


def test_not_json():
    with pytest.raises(GenesisError, match="not valid JSON"):
        parse_genesis("{")


def test_genesis_state():
    chain = LocalChain(n_keys=3, validators=2, balance=100, stake=7)
    state = genesis_state(chain.genesis)
    k = chain.keys
    assert state.height == 0
    assert state.block_hash == chain.genesis.hash
    assert state.get_account(k[0].address).balance == 100
    assert state.get_bond(k[0].address).stake == 7
    assert state.get_weight(k[1].public_key) == 7
    assert state.get_weight(k[2].public_key) == 0
    assert state.tip.total_stake == 14
    # The root is a function of the genesis alone.
    assert genesis_state(chain.genesis).root() == state.root()
    other = LocalChain(n_keys=3, validators=2, balance=101, stake=7)
    assert genesis_state(other.genesis).root() != state.root()
    assert format_address(dev_key(0).address).startswith("W")
