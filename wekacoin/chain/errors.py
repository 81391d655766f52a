"""Why a transaction or a block is invalid. Every rule raises one of these, with a message a
user can act on."""

from wekacoin.errors import WekaError


class ChainError(WekaError):
    """A transaction or block that breaks a chain rule."""


class TxError(ChainError):
    """An invalid transaction."""


class BadSignature(TxError):
    pass


class BadNonce(TxError):
    pass


class FeeTooLow(TxError):
    pass


class InsufficientFunds(TxError):
    pass


class TxTooLarge(TxError):
    pass


class ParticipationFeeTooLow(TxError):
    """A task asks a participation fee below the chain's min_participation_fee."""


class InvalidField(TxError):
    """A field with a value the protocol does not allow (empty title, zero amount...)."""


class LimitExceeded(TxError):
    pass


class UnknownTask(TxError):
    pass


class WrongPhase(TxError):
    """The task is not in the phase this transaction belongs to (too early or too late)."""


class NotSupplier(TxError):
    pass


class CommitmentMismatch(TxError):
    """A revealed group or model does not match what was committed."""


class DuplicateSubmission(TxError):
    pass


class StakeError(TxError):
    pass


class BadValidatorKeyProof(StakeError):
    """A Stake whose key_proof is not the validator key's signature for this account and chain."""


class BlockError(ChainError):
    """An invalid block."""


class InvalidBlockTx(BlockError):
    def __init__(self, index: int, error: TxError) -> None:
        super().__init__(f"transaction {index} is invalid: {type(error).__name__}: {error}")
        self.index = index
        self.error = error


class InvalidRanking(BlockError):
    """A candidate ranking that cannot be recorded: not signed by a member of the task's
    evaluation committee, malformed for its task, a second one by the same evaluator, or for
    a task that is not being ranked."""


class StateRootMismatch(BlockError):
    pass


class GenesisError(ChainError):
    """A genesis file that cannot define a chain."""


class StorageError(TxError):
    """A storage claim or proof the chain refuses: no stake, an unknown or unclaimed blob, no
    open challenge, or storage weight switched off on this chain."""


class InvalidStorageProof(StorageError):
    """A StorageProof that does not answer the open challenge: another (blob, leaf), or a
    proof that does not check against the blob's CID and size."""
