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
    test_split_delay: Height = 5
    """The test groups are drawn from the seed of the block this many blocks after the one
    that publishes the task, so nobody knows the split when the data is committed."""
    training_reveal_window: Height = 20
    """L: the supplier must reveal the training groups within this many blocks of the split."""
    test_reveal_window: Height = 20
    upload_window: Height = 20
    evaluation_window: Height = 10
    settlement_window: Height = 20
    """Blocks after a task is ready in which it can be settled; then it expires (refunds)."""
    max_settlements_per_block: int = 4
    """Ready tasks one block settles at most (in priority order, see chain.settlement)."""
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
    # -- model sandbox limits: the same on every node, so that no node's own settings decide
    # whether a model is SCORED or INVALID (node.toml only adds capacity) --
    eval_memory_mib: int = 1_024
    """Address space a model process may map beyond the pre-loaded runtime (MiB); also the
    most a skops file may unpack to. Beyond it the model is INVALID."""
    eval_cpu_ms: Millis = 120_000
    """CPU time of one model process, in whole seconds (a multiple of 1000). Beyond it the
    model is UNEVALUATED: CPU time depends on the machine, like wall time."""
    eval_file_mib: int = 64
    """Largest file a model process may write in its scratch directory (MiB); beyond, INVALID."""
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
    tau_evaluators: int = 100
    """Expected evaluation sub-users a task. The drawn total is about Poisson(tau), and k
    below never falls under half of tau: at 20, one honest committee in a hundred drew too few
    seats to settle even unanimously (docs/protocol.md, "Ranking agreement")."""
    ranking_quorum_percent: int = 50
    """k = max(floor(tau_evaluators * percent / 100), floor(present * percent / 100)) + 1
    sub-users must agree on a value, `present` being the weight of the recorded rankings."""
    max_steps: int = 150
    # -- proof-of-storage weight (chain.storage) --
    storage_weight_per_mib: Amount = 0
    """Sortition weight per MiB of credited storage, added to stake (0: weight is stake
    only, and storage claims are refused). A high value runs the paper's mode, where the
    data a validator keeps decides how often it is selected."""
    storage_epoch: Height = 100
    """Every this many blocks the epoch's first block draws new challenges and the storage
    weights are recomputed (they count after stake_lookback, like stake)."""
    storage_challenges: int = 2
    """(blob, leaf) pairs each claiming validator must prove per epoch; at most 2, so that
    a proof transaction (a 256 KiB leaf each) fits in a proposal."""
    storage_response_window: Height = 20
    """Blocks after the draw in which the proof must be included (less than storage_epoch)."""
    max_storage_claims: int = 4_096
    """Claims one validator may hold."""
    max_group_bytes: int = 1 << 30
    """Largest data group a reveal may state."""
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
