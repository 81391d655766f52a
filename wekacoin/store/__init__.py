"""The LevelDB chain store (see `chainstore`)."""

from wekacoin.store.chainstore import ChainStore
from wekacoin.store.errors import (
    CommitError,
    CorruptStoreError,
    IncompatibleStoreError,
    StoreError,
    StoreInUseError,
)
from wekacoin.store.layout import FORMAT_VERSION, TxLocation
from wekacoin.store.reader import ChainReader, RawBlock, StoredTx, TaskView, Tip

__all__ = [
    "FORMAT_VERSION", "ChainReader", "ChainStore", "CommitError", "CorruptStoreError",
    "IncompatibleStoreError", "RawBlock", "StoreError", "StoreInUseError", "StoredTx",
    "TaskView", "Tip", "TxLocation",
]
