"""Confining a freshly forked model process, before it touches untrusted bytes.

Runs in the child of the fork server, in three steps. `detach` right after the fork: own
process group, die with the server, default signal handlers, only its two pipes left open.
Then, while it waits for its job, the seccomp filter (`seccomp_filter.install_filter`).
`confine` once the job is known: scratch dir as working directory, resource limits (set while
still privileged), drop to the child's own unprivileged uid where we can (after which no hard
limit can be raised again), not dumpable. Any failure raises: a child that cannot be confined
must not run the model.
"""

from __future__ import annotations

import ctypes
import math
import os
import resource
import signal
from dataclasses import dataclass

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
_libc = ctypes.CDLL(None, use_errno=True)

# Each model process gets its own unprivileged uid, unused by any account: no model can read
# another's scratch dir or signal another's process, even one still being torn down.
CHILD_UID_BASE = 2_000_000_000
CHILD_UID_COUNT = 100_000


def child_uid(serial: int) -> int:
    return CHILD_UID_BASE + serial % CHILD_UID_COUNT


@dataclass(frozen=True)
class ChildLimits:
    """The per-process limits, as the fork server receives them."""

    wall_seconds: float
    cpu_seconds: int
    memory_bytes: int  # address space allowed on top of what the fork server had mapped
    file_bytes: int
    open_files: int


def detach(keep_fds: tuple[int, ...]) -> None:
    os.setpgid(0, 0)
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    for sig in (signal.SIGPIPE, signal.SIGXCPU, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    low = 3
    for fd in sorted(keep_fds):
        os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, os.sysconf("SC_OPEN_MAX"))


def confine(limits: ChildLimits, scratch: str, drop_to_uid: int | None) -> None:
    os.chdir(scratch)
    set_limits(limits)
    if drop_to_uid is not None:
        drop_privileges(drop_to_uid)
    _prctl(PR_SET_DUMPABLE, 0)


def set_limits(limits: ChildLimits) -> None:
    address_space = _mapped_bytes() + limits.memory_bytes
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = math.ceil(usage.ru_utime + usage.ru_stime) + limits.cpu_seconds  # prepare() used some
    for which, soft, hard in (
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_FSIZE, limits.file_bytes, limits.file_bytes),
        (resource.RLIMIT_NOFILE, limits.open_files, limits.open_files),
        (resource.RLIMIT_AS, address_space, address_space),
        # Counts per user, and root ignores it: it bites once we run under our own uid.
        (resource.RLIMIT_NPROC, 0, 0),
    ):
        resource.setrlimit(which, (soft, hard))


def drop_privileges(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def _mapped_bytes() -> int:
    with open("/proc/self/statm") as f:  # first field: total program size, in pages
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _prctl(option: int, value: int) -> None:
    if _libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")
