"""Why the chain store refuses to open a data directory or to write.

Each message says what is wrong and what the operator can do; none of these is raised after
the store has modified anything it was asked to protect.
"""

from pathlib import Path

from wekacoin.errors import WekaError


class StoreError(WekaError):
    """Base class of every error raised by `wekacoin.store`."""


class StoreInUseError(StoreError):
    """Another process (or another open store in this one) holds the database lock."""


class IncompatibleStoreError(StoreError):
    """The data directory belongs to another chain (chain id, genesis) or is written in a
    store format this node cannot read. Nothing in it was modified."""


class CorruptStoreError(StoreError):
    """The data directory contradicts itself: the tip's state does not hash to the state root
    its block header commits to, a record is missing or unreadable."""


class CommitError(StoreError):
    """A block that cannot be committed on the stored tip (wrong height, parent or state).
    Nothing was written."""


def damaged(root: Path, what: str) -> CorruptStoreError:
    """The error for the chain store in `root` when one of its files or records is damaged:
    what is wrong, and what the operator can do. The store never repairs or deletes itself:
    only the operator knows whether a backup exists."""
    return CorruptStoreError(
        f"the chain store {root} is damaged: {what}; restore that directory from a backup, "
        "or delete it and the node resyncs the chain from peers"
    )
