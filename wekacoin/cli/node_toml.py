"""The documented node.toml: every setting with a comment that says what it does.

`wekacoin init` writes it with the new node's values, and the repository's `node.toml` is
`render_node_toml()` (the defaults): one source, so the two cannot drift, and a test holds the
settings documented here to exactly those of `wekacoin.node.config.NodeConfig`. After a change
here, regenerate the example with `python -m wekacoin.cli.node_toml > node.toml`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

HEADER = """\
WekaCoin node configuration: every setting, with its default.
Relative paths are resolved against the directory of this file.
Unknown keys and bad values are refused at start-up with the key's name."""

# section -> (what the section is about, {key: what the key does}), in the order written.
SECTIONS: dict[str, tuple[str, dict[str, str]]] = {
    "node": ("", {
        "data_dir": "Where the chain store, blobs and the RPC token live.",
        "genesis": "The genesis file of the chain to join (chain id, balances, stakes, "
                   "protocol parameters).",
        "log_level": "debug | info | warning | error",
        "log_format": "text (for people) | json (one object per line, for log collectors)",
    }),
    "keys": ("", {
        "keystore": "The node's encrypted key (Ed25519): its libp2p identity, VRF key and vote "
                    "key.\nCreate it with `wekacoin init`.",
        "password_file": "A file holding the keystore password. If unset (\"\"), the node reads "
                         "WEKACOIN_PASSWORD\nor asks on the terminal.",
    }),
    "network": ("", {
        "listen": "The libp2p listen address (TCP; Noise encryption, yamux multiplexing).",
        "bootstrap": "Peers to dial at start-up and whenever they drop: multiaddrs ending in "
                     "/p2p/<peer id>.",
        "max_peers": "Most peers to keep connected: past it, a newcomer is told other peers' "
                     "addresses and\nturned away (bootstrap peers always have room).",
        "target_peers": "Peers share where their other peers listen; the node dials those "
                        "addresses until this\nmany peers are connected (0: only bootstrap "
                        "peers and those that dial in). It dials\nloopback and private "
                        "addresses only if it listens on one itself (or on 0.0.0.0).",
    }),
    "rpc": ("JSON-RPC 2.0 over HTTP (POST /).", {
        "enabled": "false: no RPC server (the CLI and the wallet then cannot reach this node).",
        "bind": "The address it listens on. Keep it on 127.0.0.1 unless you put a proxy in "
                "front.",
        "port": "The TCP port.",
        "token_file": "Methods that change the node (submitting transactions, uploading blobs, "
                      "admin) need\nthis token as \"Authorization: Bearer <token>\". Created "
                      "with mode 0600 at first start.",
        "max_request_bytes": "Largest request body without the token, in bytes (1 MiB). Bodies "
                             "are also refused above\n10,000 arrays and objects: parsing shares "
                             "a thread with consensus.",
        "max_upload_bytes": "Largest request body with the token (uploads of models and data: "
                            "base64 takes 4/3 of a\nblob's size, so keep it above 4/3 of "
                            "blobs.max_blob_bytes).",
        "max_response_bytes": "Largest response (a blob read with blobs.get is base64 too).",
    }),
    "metrics": ("Prometheus metrics at http://<bind>:<port>/metrics", {
        "enabled": "false: no metrics server.",
        "bind": "The address it listens on.",
        "port": "The TCP port.",
    }),
    "blobs": ("Where models and datasets (addressed by CID) are kept.", {
        "backend": "embedded: in data_dir, fetched from other WekaCoin nodes over libp2p\n"
                   "kubo:     an IPFS (Kubo) daemon, reached at kubo_api",
        "max_blob_bytes": "Largest blob (model or data group) the node stores or fetches, in "
                          "bytes (128 MiB).",
        "quota_bytes": "Total bytes the embedded store may hold; 0 means no quota.",
        "kubo_api": "The Kubo daemon's RPC API multiaddr (backend = \"kubo\").",
        "kubo_timeout_s": "Seconds to wait for the Kubo daemon's next bytes (not for a whole "
                          "transfer).",
    }),
    "sandbox": ("How untrusted models are isolated while they are scored. The limits that "
                "decide whether a\nmodel is SCORED, INVALID or UNEVALUATED (memory, CPU time, "
                "file size, wall-clock time,\nmodel size) are not set here: they are the same "
                "on every node, from genesis\n(params.eval_memory_mib, eval_cpu_ms, "
                "eval_file_mib) and from the task.", {
        "isolation": "auto (the strongest available) | bwrap | unshare | rlimits",
        "workers": "Model sandboxes (fork servers, each holding onnxruntime: about 70 MB): how "
                   "many tasks'\nmodels are scored at once. More adds throughput, never "
                   "changes a model's outcome.",
    }),
    "consensus": ("", {
        "validate": "Take part in sortition (propose, vote, evaluate) when the node key has "
                    "stake;\nfalse: only follow the chain.",
    }),
    "storage": ("On a chain whose genesis gives sortition weight for storage "
                "(params.storage_weight_per_mib\nabove 0), a validator keeps the chain's "
                "datasets and models (fetched as they are revealed),\nclaims them on chain, "
                "and answers the chain's storage challenges by itself, with its own\nkey (its "
                "account pays the small fees). Proven blobs add weight: each blob's size is "
                "split\namong the validators that hold it, so rare data counts most.", {
        "max_bytes": "Claim at most this many bytes of held blobs, rarest first (1 GiB); 0 "
                     "claims nothing and\ndrops what was claimed. Claimed blobs are pinned: "
                     "keep blobs.quota_bytes above this.",
    }),
}


def render_node_toml(values: Mapping[str, Mapping[str, Any]] | None = None) -> str:
    """node.toml with a comment above every setting: `values[section][key]` where given,
    else the default (an unset optional path is written as "")."""
    import tomli_w

    from wekacoin.node.config import NodeConfig, config_to_toml

    values = values or {}
    defaults = config_to_toml(NodeConfig())
    unknown = {f"{s}.{k}" for s, keys in values.items() for k in keys} - {
        f"{s}.{k}" for s, (_, keys) in SECTIONS.items() for k in keys}
    if unknown:
        raise ValueError(f"not node.toml settings: {', '.join(sorted(unknown))}")
    lines = _comment(HEADER)
    for section, (about, keys) in SECTIONS.items():
        lines += ["", f"[{section}]", *_comment(about)]
        for key, doc in keys.items():
            value = values.get(section, {}).get(key, defaults[section].get(key, ""))
            lines += [*_comment(doc), tomli_w.dumps({key: value}).rstrip("\n")]
    return "\n".join(lines) + "\n"


def _comment(text: str) -> list[str]:
    return [f"# {line}".rstrip() for line in text.splitlines()]


if __name__ == "__main__":
    sys.stdout.write(render_node_toml())
