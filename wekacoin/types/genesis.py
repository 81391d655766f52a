"""Genesis: the chain id, initial balances and stakes, and every protocol parameter."""

from __future__ import annotations

from dataclasses import dataclass

from wekacoin.types.codec import hash_of
from wekacoin.types.primitives import Address, Amount, Hash, Height, Millis, PublicKey


@dataclass(frozen=True, slots=True)
class Params:
    """Protocol parameters. Defaults: the paper's consensus values and mainnet-like windows.

    Thresholds are fractions in permille and percentages, never floats.
    """

    # -- money and blocks --
    min_tx_fee: Amount = 1
    settlement_reward: Amount = 1_000_000
    """Coins minted per settled task, split among the genuine evaluators."""
    max_block_txs: int = 5_000
    max_tx_bytes: int = 65_536
    # -- task lifecycle (in blocks) --
    min_training_period: Height = 100
    training_reveal_window: Height = 20
    """L: the supplier must reveal the training groups within this many blocks."""
    test_reveal_window: Height = 20
    upload_window: Height = 20
    evaluation_window: Height = 10
    settlement_window: Height = 20
    """Blocks after a task is ready in which it can be settled; then it expires (refunds)."""
    min_groups: int = 5
    max_groups: int = 1_000
    test_group_percent: int = 20
    refund_top_percent: int = 25
    max_submissions_per_task: int = 1_000
    min_participation_fee: Amount = 1_000
    """Least participation fee a task may ask: filling every submission slot of a task costs
    at least max_submissions_per_task times this (1,000,000 by default)."""
    max_model_bytes: int = 64 * 2**20
    max_eval_time_ms: Millis = 120_000
    max_title_chars: int = 200
    max_columns: int = 10_000
    # -- staking and sortition --
    stake_lookback: Height = 20
    """Stake changes count for sortition only this many blocks after their block."""
    min_stake: Amount = 1
    tau_proposer: int = 26
    tau_step: int = 2_000
    step_threshold_permille: int = 685
    tau_final: int = 10_000
    final_threshold_permille: int = 740
    tau_evaluators: int = 20
    ranking_quorum_percent: int = 50
    """k = floor(|vc| * percent / 100) + 1 evaluators must agree on a score."""
    max_steps: int = 150
    # -- timeouts (milliseconds) --
    lambda_priority_ms: Millis = 5_000
    lambda_stepvar_ms: Millis = 5_000
    lambda_block_ms: Millis = 60_000
    lambda_step_ms: Millis = 20_000


@dataclass(frozen=True, slots=True)
class GenesisAccount:
    address: Address
    balance: Amount


@dataclass(frozen=True, slots=True)
class GenesisStake:
    address: Address
    amount: Amount
    validator_key: PublicKey


@dataclass(frozen=True, slots=True)
class Genesis:
    chain_id: str
    time_ms: Millis
    accounts: tuple[GenesisAccount, ...]
    stakes: tuple[GenesisStake, ...]
    params: Params

    @property
    def hash(self) -> Hash:
        return hash_of(self)
