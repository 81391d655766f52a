"""Content addressing and blob storage (IPFS-compatible).

- `cid`: CIDs exactly as `ipfs add` computes them; parsing and verification of untrusted CIDs.
- `unixfs`: the byte encoding of dag-pb / UnixFS blocks behind those CIDs.
- `embedded`: the default `BlobStore`, blobs in the node's data directory.
- `kubo`: a `BlobStore` backed by an IPFS (Kubo) daemon over its HTTP RPC.
- `errors`: what all of them raise, every one a `WekaError`.

The `BlobStore` port itself lives in `wekacoin.ports`.
"""
