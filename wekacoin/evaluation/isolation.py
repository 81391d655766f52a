"""Which isolation this machine offers, and how to launch the fork server inside it.

Strongest first, each layered with what the fork server adds in every child (rlimits always,
seccomp and the drop to a uid of the child's own when they work, as its probe reports):
- "bwrap": bubblewrap gives the server (and so every child it forks) no network, its own
  pid/ipc/uts namespaces, a read-only view of / and a small private tmpfs (mounted over an
  empty directory of ours) holding the per-model scratch dirs. Run as root we skip the user
  namespace, so children can still drop to their own uids, and keep only the capabilities
  the server needs to do that, clean up, and let spare children prepare at idle priority.
  Unprivileged, `--unshare-all` applies (its user namespace maps only our own uid).
- "unshare-net": `unshare --net`: no network, but the filesystem is the host's; writes are
  stopped only by file permissions once children run under their own uids (so, for
  instance, a world-writable /tmp stays writable).
- "none": rlimits (and seccomp and own uids if available) alone.
One bwrap start is amortised over every model the server forks: per-model bwrap would cost a
fresh interpreter with onnxruntime (seconds), where a fork costs a few milliseconds.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from enum import Enum

TMPFS_BYTES = 256 * 1024 * 1024


class Namespaces(str, Enum):
    BWRAP = "bwrap"
    UNSHARE_NET = "unshare-net"
    NONE = "none"


@dataclass(frozen=True)
class Isolation:
    """The isolation in force, as verified by the running fork server."""

    namespaces: Namespaces
    seccomp: bool
    uid_drop: bool

    def describe(self) -> str:
        parts = [] if self.namespaces is Namespaces.NONE else [self.namespaces.value]
        parts += ["seccomp"] * self.seccomp + ["own-uid"] * self.uid_drop + ["rlimits"]
        return "+".join(parts)


def candidates(mode: str) -> list[Namespaces]:
    """What to try, strongest first: all installed tools for "auto", else just `mode`."""
    if mode != "auto":
        return [Namespaces(mode)]
    found = [Namespaces.NONE]
    if shutil.which("unshare"):
        found.insert(0, Namespaces.UNSHARE_NET)
    if shutil.which("bwrap"):
        found.insert(0, Namespaces.BWRAP)
    return found


def launcher(ns: Namespaces, scratch_root: str) -> list[str]:
    """The command prefix that puts the fork server in `ns`."""
    if ns is Namespaces.NONE:
        return []
    if ns is Namespaces.UNSHARE_NET:
        return ["unshare", "--net", "--"]
    if os.geteuid() == 0:
        namespaces = [
            "--unshare-ipc",
            "--unshare-pid",
            "--unshare-net",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--cap-drop",
            "ALL",
        ]
        for cap in ("SETUID", "SETGID", "CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SYS_NICE"):
            namespaces += ["--cap-add", f"CAP_{cap}"]
    else:
        namespaces = ["--unshare-all"]
    return [
        "bwrap",
        *namespaces,
        "--die-with-parent",
        "--new-session",
        "--ro-bind",
        "/",
        "/",
        "--proc",
        "/proc",
        "--dev",
        "/dev",
        "--size",
        str(TMPFS_BYTES),
        "--tmpfs",
        scratch_root,
        "--chdir",
        scratch_root,
        "--",
    ]


def is_verified(ns: Namespaces, hello: dict[str, object]) -> bool:
    """Does the server's own report match what `ns` promises?"""
    if ns is Namespaces.NONE:
        return True
    if ns is Namespaces.UNSHARE_NET:
        return hello.get("net_isolated") is True
    return hello.get("net_isolated") is True and hello.get("root_readonly") is True
