"""The genesis file: strict parsing, validation, and the state it defines."""

import dataclasses
import json

import pytest

from wekacoin.chain.errors import GenesisError
from wekacoin.chain.genesis import (
    MAX_SETTLEMENT_REWARD,
    genesis_state,
    genesis_to_json,
    parse_genesis,
    validate_genesis,
)
from wekacoin.crypto.keys import format_address
from wekacoin.sortition.binomial import MAX_TAU
from wekacoin.testing.chain import FAST_PARAMS, LocalChain, dev_key


def _doc():
    return json.loads(genesis_to_json(LocalChain().genesis))


def test_round_trip():
    chain = LocalChain()
    assert parse_genesis(genesis_to_json(chain.genesis)) == chain.genesis


def test_partial_params_take_defaults():
    doc = _doc()
    doc["params"] = {"min_training_period": 70}
    g = parse_genesis(json.dumps(doc))
    assert g.params.min_training_period == 70
    assert (g.params.test_split_delay, g.params.training_reveal_window) == (5, 20)
    assert g.params.tau_step == 2000


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(colour="blue"), "unknown key 'colour'"),
    (lambda d: d["params"].update(tau_stpe=3), "unknown key 'tau_stpe'"),
    (lambda d: d["params"].update(tau_step=2000.0), "integers"),
    (lambda d: d["params"].update(tau_step=-1), "params.tau_step"),
    (lambda d: d["params"].update(step_threshold_permille=400), "step_threshold_permille"),
    (lambda d: d["params"].update(min_groups=1), "min_groups"),
    (lambda d: d["params"].update(eval_memory_mib=0), "params.eval_memory_mib"),
    (lambda d: d["params"].update(eval_file_mib=2**30), "params.eval_file_mib"),
    (lambda d: d["params"].update(eval_cpu_ms=1_500), "params.eval_cpu_ms.*multiple of 1000"),
    (lambda d: d["params"].update(eval_cpu_ms=0), "params.eval_cpu_ms"),
    (lambda d: d["params"].update(test_split_delay=0), "test_split_delay"),
    (lambda d: d["params"].update(max_settlements_per_block=0), "max_settlements_per_block"),
    # The training data must be revealed before tbh: min_training_period > 1 + 3 here.
    (lambda d: d["params"].update(test_split_delay=1, training_reveal_window=3,
                                  min_training_period=4), "min_training_period"),
    (lambda d: d["accounts"][0].update(balance="10"), r"accounts\[0\].balance"),
    (lambda d: d["accounts"][0].update(address="nope"), r"accounts\[0\].address"),
    (lambda d: d["accounts"].append(dict(d["accounts"][0])), "appears twice"),
    (lambda d: d["stakes"][0].update(validator_key="ab"), "validator_key"),
    (lambda d: d["stakes"][1].update(validator_key=d["stakes"][0]["validator_key"]),
     "appears twice"),
    (lambda d: d.pop("chain_id"), "missing key 'chain_id'"),
    (lambda d: d.update(chain_id="has space"), "chain_id"),
    (lambda d: d["accounts"][0].update(balance=2**63), "supply"),
    (lambda d: d["params"].update(tau_step=2**64), "params.tau_step"),
    (lambda d: d["params"].update(settlement_reward=2**64), "params.settlement_reward"),
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
    chain = LocalChain(n_keys=3, validators=2, balance=100, stake=7_000)
    state = genesis_state(chain.genesis)
    k = chain.keys
    assert state.height == 0
    assert state.block_hash == chain.genesis.hash
    assert state.get_account(k[0].address).balance == 100
    assert state.get_bond(k[0].address).stake == 7_000
    assert state.get_weight(k[1].public_key) == 7_000
    assert state.get_weight(k[2].public_key) == 0
    assert state.tip.total_stake == 14_000
    # The root is a function of the genesis alone.
    assert genesis_state(chain.genesis).root() == state.root()
    other = LocalChain(n_keys=3, validators=2, balance=101, stake=7_000)
    assert genesis_state(other.genesis).root() != state.root()
    assert format_address(dev_key(0).address).startswith("W")


# -- parameters that are each valid but cannot run a chain together --


def _genesis(stake: int = 10**6, **params):
    """LocalChain's genesis (four validators) with each stake and some params replaced."""
    genesis = LocalChain().genesis
    return dataclasses.replace(
        genesis, stakes=tuple(dataclasses.replace(s, amount=stake) for s in genesis.stakes),
        params=dataclasses.replace(FAST_PARAMS, **params),
    )


@pytest.mark.parametrize("params, name", [
    # sortition refuses a larger committee: it bounds the CDF walk's cost
    ({"tau_proposer": MAX_TAU + 1}, "params.tau_proposer"),
    ({"tau_step": MAX_TAU + 1}, "params.tau_step"),
    ({"tau_final": MAX_TAU + 1}, "params.tau_final"),
    ({"tau_evaluators": MAX_TAU + 1}, "params.tau_evaluators"),
    # the training groups must be revealed before submissions close at tbh
    ({"min_training_period": 5, "training_reveal_window": 5}, "params.min_training_period"),
    ({"min_training_period": 5, "training_reveal_window": 9}, "params.min_training_period"),
    # amounts the ledger stores or adds up stay inside 64 bits
    ({"settlement_reward": 2**64}, "params.settlement_reward"),
    ({"settlement_reward": MAX_SETTLEMENT_REWARD + 1}, "params.settlement_reward"),
    ({"min_tx_fee": 2**64}, "params.min_tx_fee"),
    ({"min_stake": -1}, "params.min_stake"),
    ({"max_model_bytes": 2**70}, "params.max_model_bytes"),
    # a free slot can be taken many times by one account
    ({"min_participation_fee": 0}, "params.min_participation_fee"),
])
def test_inconsistent_params_are_refused_with_the_name(params, name):
    with pytest.raises(GenesisError, match=name):
        validate_genesis(_genesis(**params))


def test_bounds_themselves_are_accepted():
    validate_genesis(_genesis(
        tau_final=MAX_TAU, settlement_reward=MAX_SETTLEMENT_REWARD, min_training_period=5,
        training_reveal_window=3, test_split_delay=1,
    ))


@pytest.mark.parametrize("stake, name", [
    (0, "params.tau_step"),  # no stake at all: no vote can ever count
    (685 * 2_000 // 1000 // 4, "params.tau_step"),  # W * 1000 == T * tau_step: not more than
    (740 * 10_000 // 1000 // 4, "params.tau_final"),  # enough for tau_step, not tau_final
])
def test_a_genesis_stake_that_cannot_make_a_quorum_is_refused(stake, name):
    """A quorum is more than T * tau sub-users; W is the most the whole stake can carry."""
    genesis = _genesis(stake=stake) if stake else dataclasses.replace(_genesis(), stakes=())
    with pytest.raises(GenesisError, match=name):
        validate_genesis(genesis)
    with pytest.raises(GenesisError, match=name):
        parse_genesis(genesis_to_json(genesis))


def test_the_smallest_stake_that_can_make_a_quorum_is_accepted():
    validate_genesis(_genesis(stake=740 * 10_000 // 1000 // 4 + 1))
