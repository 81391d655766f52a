"""Errors of the content layer: CIDs, the blob stores and the Kubo daemon.

Each is a `WekaError`, so an adapter can catch what untrusted input or a remote daemon can
provoke without catching programming errors.
"""

from wekacoin.errors import WekaError


class ContentError(WekaError):
    """Base class of every error raised by `wekacoin.content`."""


class InvalidCidError(ContentError):
    """A string is not a CID this node can verify (garbage, unknown codec or hash, a path)."""


class StorageProofError(ContentError):
    """A storage proof does not show that its sender holds the challenged leaf of a blob, or a
    proof could not be built from the blocks a store returned; the message says which check
    failed and at which level of the DAG."""


class BlobStoreError(ContentError):
    """The embedded store's directory cannot be used: unreadable, or holding something the
    store did not write where it keeps its own files."""


class BlobNotFoundError(ContentError):
    """The store does not hold the blob and no peer (fetcher) supplied valid bytes."""


class CorruptBlobError(BlobNotFoundError):
    """The local copy did not match its CID (it was quarantined) and no valid copy was fetched.

    A subclass of `BlobNotFoundError`: either way the caller has no bytes, but this one also
    tells the operator the disk returned wrong data.
    """


class BlobTooLargeError(ContentError):
    """A blob exceeds the store's per-blob size limit."""


class QuotaExceededError(ContentError):
    """Storing a blob would exceed the store's total quota."""


class KuboError(ContentError):
    """The IPFS daemon could not be used: unreachable, too old, or answering garbage."""


class KuboUnavailableError(KuboError):
    """The daemon did not answer (connection refused, timeout)."""


class KuboVersionError(KuboError):
    """The daemon is older than the oldest version this node supports."""


class KuboProtocolError(KuboError):
    """The daemon answered, but with an error, an unexpected shape, or bytes that do not match."""
