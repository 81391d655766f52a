"""Genesis: the JSON file format, its validation, and the state it defines.

    {
      "chain_id": "wekacoin-local",
      "time_ms": 0,
      "accounts": [{"address": "W...", "balance": 1000000}],
      "stakes": [{"address": "W...", "amount": 1000, "validator_key": "<64 hex>"}],
      "params": {"min_training_period": 10, ...}     # any subset of Params; the rest default
    }

Every number is a JSON integer (a float such as 1.0 is refused); unknown keys are refused
with their name, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from pathlib import Path
from typing import Any

from wekacoin.chain.errors import GenesisError
from wekacoin.chain.state import ChainConfig, State
from wekacoin.crypto.keys import AddressError, format_address, parse_address
from wekacoin.sortition.binomial import MAX_TAU
from wekacoin.types.codec import MAX_INT
from wekacoin.types.genesis import Genesis, GenesisAccount, GenesisStake, Params
from wekacoin.types.ledger import Account, Bond, ChainTip
from wekacoin.types.primitives import Hash, Height, PublicKey, SubmissionId, TaskId

FIRST_ID = 1
_MAX_SUPPLY = 2**62  # keeps every sum of balances far inside 64 bits
MAX_SETTLEMENT_REWARD = 2**32
"""At most one task settles per block, so from a supply of at most 2^62 the minted coins keep
every balance and sum below 2^64 for more than 3 * 2^30 blocks."""
_PARAM_TYPES = typing.get_type_hints(Params)
# Sandbox limits become rlimits: bytes must fit in 64 bits (with the runtime's own mapping on
# top), and RLIMIT_CPU counts whole seconds.
_MAX_EVAL_MIB = 2**24  # 16 TiB
# Storage weight is integer arithmetic that must stay inside the encoding's 2^64: one
# validator's storage weight is capped at 2^47 (chain.storage) and at most 2^16 accounts hold
# storage records, so the total stays below 2^63 whatever the per-MiB weight.
MAX_STORAGE_WEIGHT_PER_MIB = 2**24
MAX_STORAGE_CHALLENGES = 2
MAX_STORAGE_CLAIMS = 65_536
MAX_BLOB_BYTES = 2**40
_MAX_EVAL_CPU_MS = 86_400_000  # a day


def parse_genesis(text: str) -> Genesis:
    """A validated Genesis from JSON text, or GenesisError naming the offending key."""
    try:
        doc = json.loads(text, parse_float=_refuse_float, parse_constant=_refuse_float)
    except ValueError as e:
        raise GenesisError(f"genesis is not valid JSON: {e}") from None
    genesis = genesis_from_dict(doc)
    validate_genesis(genesis)
    return genesis


def load_genesis(path: Path) -> Genesis:
    """The genesis in the file at `path`; GenesisError, naming the file, if it cannot be read
    or is not a valid genesis."""
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise GenesisError(f"cannot read the genesis file {path}: {e.strerror}") from None
    try:
        return parse_genesis(raw.decode("utf-8"))
    except (UnicodeDecodeError, GenesisError) as e:
        raise GenesisError(
            f"the genesis file {path} is damaged or not a genesis ({e}): put back the chain's "
            "genesis file (every node of the chain has the same one)"
        ) from None


def genesis_from_dict(doc: Any) -> Genesis:
    _check_keys(doc, "genesis", {"chain_id", "time_ms", "accounts", "stakes", "params"},
                required={"chain_id", "accounts"})
    accounts = []
    for i, a in enumerate(_list(doc["accounts"], "accounts")):
        where = f"accounts[{i}]"
        _check_keys(a, where, {"address", "balance"}, required={"address", "balance"})
        accounts.append(GenesisAccount(_address(a, where), _int(a["balance"], f"{where}.balance")))
    stakes = []
    for i, s in enumerate(_list(doc.get("stakes", []), "stakes")):
        where = f"stakes[{i}]"
        keys = {"address", "amount", "validator_key"}
        _check_keys(s, where, keys, required=keys)
        stakes.append(GenesisStake(
            _address(s, where), _int(s["amount"], f"{where}.amount"),
            _validator_key(s["validator_key"], f"{where}.validator_key"),
        ))
    params_doc = doc.get("params", {})
    _check_keys(params_doc, "params", set(_PARAM_TYPES))
    params = Params(**{k: _int(v, f"params.{k}") for k, v in params_doc.items()})
    chain_id = doc["chain_id"]
    if not isinstance(chain_id, str):
        raise GenesisError("chain_id must be a string")
    return Genesis(
        chain_id, _int(doc.get("time_ms", 0), "time_ms"), tuple(accounts), tuple(stakes), params
    )


def genesis_to_json(genesis: Genesis) -> str:
    doc = {
        "chain_id": genesis.chain_id,
        "time_ms": genesis.time_ms,
        "accounts": [
            {"address": format_address(a.address), "balance": a.balance} for a in genesis.accounts
        ],
        "stakes": [
            {"address": format_address(s.address), "amount": s.amount,
             "validator_key": s.validator_key.hex()}
            for s in genesis.stakes
        ],
        "params": dataclasses.asdict(genesis.params),
    }
    return json.dumps(doc, indent=2) + "\n"


def validate_genesis(genesis: Genesis) -> None:
    cid = genesis.chain_id
    if not 0 < len(cid) <= 64 or not all(c.isalnum() or c in "-_." for c in cid):
        raise GenesisError("chain_id: 1-64 characters of letters, digits, '-', '_' or '.'")
    addresses = [a.address for a in genesis.accounts]
    if len(set(addresses)) != len(addresses):
        raise GenesisError("accounts: an address appears twice")
    stakers = [s.address for s in genesis.stakes]
    keys = [s.validator_key for s in genesis.stakes]
    if len(set(stakers)) != len(stakers) or len(set(keys)) != len(keys):
        raise GenesisError("stakes: an address or a validator key appears twice")
    if any(s.amount < genesis.params.min_stake for s in genesis.stakes):
        raise GenesisError(f"stakes: each stake is at least min_stake {genesis.params.min_stake}")
    supply = sum(a.balance for a in genesis.accounts) + sum(s.amount for s in genesis.stakes)
    if supply > _MAX_SUPPLY:
        raise GenesisError("the total supply is too large")
    validate_params(genesis.params)
    validate_committees(genesis.params, sum(s.amount for s in genesis.stakes))


def validate_committees(p: Params, total_stake: int) -> None:
    """The genesis stake must be able to certify a block: a quorum is more than T * tau
    sub-users, and all the stake together carries at most W of them (every sub-user when
    tau >= W), so W * 1000 <= permille * tau would halt the chain at its first round."""
    for name, tau, permille in (
        ("tau_step", p.tau_step, p.step_threshold_permille),
        ("tau_final", p.tau_final, p.final_threshold_permille),
    ):
        if total_stake * 1000 <= permille * tau:
            raise GenesisError(
                f"params.{name}: the genesis stake {total_stake} cannot make a quorum of more"
                f" than {permille}/1000 of {tau} sub-users; lower {name} or stake more"
            )


def validate_params(p: Params) -> None:
    for name in _PARAM_TYPES:
        value = getattr(p, name)
        if type(value) is not int or not 0 <= value <= MAX_INT:
            raise GenesisError(f"params.{name}: an integer in [0, 2^64)")
    checks = [
        (p.min_tx_fee >= 0, "min_tx_fee"),
        (p.settlement_reward <= MAX_SETTLEMENT_REWARD, "settlement_reward (at most 2^32)"),
        (p.max_block_txs >= 1, "max_block_txs"),
        (p.max_tx_bytes >= 1024, "max_tx_bytes (at least 1024)"),
        (p.min_training_period >= 1, "min_training_period"),
        (p.test_split_delay >= 1, "test_split_delay"),
        (p.training_reveal_window >= 1, "training_reveal_window"),
        (p.min_training_period > p.test_split_delay + p.training_reveal_window,
         "min_training_period (more than test_split_delay + training_reveal_window, so the"
         " training data is out before tbh)"),
        (p.test_reveal_window >= 1, "test_reveal_window"),
        (p.upload_window >= 1, "upload_window"),
        (p.evaluation_window >= 1, "evaluation_window"),
        (p.settlement_window >= 1, "settlement_window"),
        (p.max_settlements_per_block >= 1, "max_settlements_per_block"),
        (2 <= p.min_groups <= p.max_groups, "min_groups/max_groups (2 <= min <= max)"),
        (1 <= p.test_group_percent <= 50, "test_group_percent (1-50)"),
        (0 <= p.refund_top_percent <= 100, "refund_top_percent (0-100)"),
        (p.max_submissions_per_task >= 1, "max_submissions_per_task"),
        (p.min_participation_fee >= 1,
         "min_participation_fee (at least 1: one account could take every free slot)"),
        (p.max_model_bytes >= 1, "max_model_bytes"),
        (p.max_eval_time_ms >= 1, "max_eval_time_ms"),
        (1 <= p.eval_memory_mib <= _MAX_EVAL_MIB, f"eval_memory_mib (1-{_MAX_EVAL_MIB})"),
        (1 <= p.eval_file_mib <= _MAX_EVAL_MIB, f"eval_file_mib (1-{_MAX_EVAL_MIB})"),
        (1_000 <= p.eval_cpu_ms <= _MAX_EVAL_CPU_MS and p.eval_cpu_ms % 1_000 == 0,
         f"eval_cpu_ms (whole seconds: a multiple of 1000, 1000-{_MAX_EVAL_CPU_MS})"),
        (1 <= p.max_title_chars, "max_title_chars"),
        (p.max_columns >= 2, "max_columns"),
        (p.stake_lookback >= 1, "stake_lookback"),
        (p.min_stake >= 1, "min_stake"),
        (1 <= p.tau_proposer <= MAX_TAU, f"tau_proposer (1-{MAX_TAU})"),
        (1 <= p.tau_step <= MAX_TAU, f"tau_step (1-{MAX_TAU})"),
        (1 <= p.tau_final <= MAX_TAU, f"tau_final (1-{MAX_TAU})"),
        (1 <= p.tau_evaluators <= MAX_TAU, f"tau_evaluators (1-{MAX_TAU})"),
        (500 < p.step_threshold_permille < 1000, "step_threshold_permille (501-999)"),
        (500 < p.final_threshold_permille < 1000, "final_threshold_permille (501-999)"),
        (50 <= p.ranking_quorum_percent < 100,
         "ranking_quorum_percent (50-99: below half, two rankings could both reach k)"),
        (p.max_steps >= 4, "max_steps (at least 4)"),
        (p.storage_weight_per_mib <= MAX_STORAGE_WEIGHT_PER_MIB,
         f"storage_weight_per_mib (at most {MAX_STORAGE_WEIGHT_PER_MIB})"),
        (p.storage_epoch >= 2, "storage_epoch (at least 2)"),
        (1 <= p.storage_challenges <= MAX_STORAGE_CHALLENGES,
         f"storage_challenges (1-{MAX_STORAGE_CHALLENGES}: a proof must fit in a proposal)"),
        (1 <= p.storage_response_window < p.storage_epoch,
         "storage_response_window (at least 1, less than storage_epoch)"),
        (1 <= p.max_storage_claims <= MAX_STORAGE_CLAIMS,
         f"max_storage_claims (1-{MAX_STORAGE_CLAIMS})"),
        (1 <= p.max_group_bytes <= MAX_BLOB_BYTES, f"max_group_bytes (1-{MAX_BLOB_BYTES})"),
        (p.lambda_priority_ms >= 1, "lambda_priority_ms"),
        (p.lambda_stepvar_ms >= 1, "lambda_stepvar_ms"),
        (p.lambda_block_ms >= 1, "lambda_block_ms"),
        (p.lambda_step_ms >= 1, "lambda_step_ms"),
    ]
    for ok, name in checks:
        if not ok:
            raise GenesisError(f"params.{name}: value out of range")


def genesis_state(genesis: Genesis) -> State:
    """The ledger at height 0: balances, bonded stakes, and a seed derived from the genesis."""
    validate_genesis(genesis)
    config = ChainConfig(genesis.chain_id, genesis.hash, genesis.params)
    state = State(config, {})
    for a in genesis.accounts:
        state.put_account(a.address, Account(balance=a.balance))
    for s in genesis.stakes:
        state.put_bond(s.address, Bond(PublicKey(s.validator_key), stake=s.amount))
        state.put_validator(s.validator_key, s.address)
    state.put_tip(ChainTip(
        height=Height(0),
        seed=Hash(hashlib.sha256(b"wekacoin/genesis-seed/v1" + genesis.hash).digest()),
        next_task_id=TaskId(FIRST_ID), next_submission_id=SubmissionId(FIRST_ID),
        total_stake=sum(s.amount for s in genesis.stakes), minted=0, burned=0, open_tasks=(),
    ))
    entries = {k: v for k, v in state.changes().items() if v is not None}
    return State(config, entries, block_hash=genesis.hash)


# -- strict JSON field helpers --


def _refuse_float(text: str) -> Any:
    raise GenesisError(f"numbers in genesis are integers, not {text}")


def _check_keys(
    doc: Any, where: str, allowed: set[str], required: frozenset[str] | set[str] = frozenset()
) -> None:
    if not isinstance(doc, dict):
        raise GenesisError(f"{where} must be an object")
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise GenesisError(f"{where}: unknown key {unknown[0]!r}")
    missing = sorted(required - set(doc))
    if missing:
        raise GenesisError(f"{where}: missing key {missing[0]!r}")


def _list(value: Any, where: str) -> list:
    if not isinstance(value, list):
        raise GenesisError(f"{where} must be a list")
    return value


def _int(value: Any, where: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_INT:
        raise GenesisError(f"{where} must be a non-negative integer")
    return value


def _address(doc: dict, where: str) -> bytes:
    try:
        return parse_address(doc.get("address", ""))
    except (AddressError, AttributeError) as e:
        raise GenesisError(f"{where}.address: {e}") from None


def _validator_key(value: Any, where: str) -> bytes:
    try:
        key = bytes.fromhex(value)
    except (TypeError, ValueError):
        key = b""
    if len(key) != 32:
        raise GenesisError(f"{where} must be 64 hex characters")
    return key
