"""Confining a freshly forked model process, before it touches untrusted bytes.

Runs in the child of the fork server, in four steps, the first three before any job exists
for it (see `model_process.py`). `detach` right after the fork: own process group, die with
the server, default signal handlers, only its two pipes left open. Then the seccomp filter
(`seccomp_filter.install_filter`). Then `confine`: scratch dir as working directory, a umask
that keeps what it creates its own, resource limits (set while still privileged), drop to the
child's own unprivileged uid where we can (after which no hard limit can be raised again),
not dumpable. Last, once the job is read and
before its model is parsed, `tighten` to the job's own limits: they can only be lowered, and
the address-space limit is counted from what is mapped then, the job's bytes included, so it
means what it always meant: `memory_bytes` on top of the runtime and the model's own bytes.
Any failure raises: a child that cannot be confined must not run the model.
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
    """Everything but the address-space limit, which `tighten` sets once the job is read."""
    os.chdir(scratch)
    os.umask(0o077)  # what it creates, no other model may read (nor, with seccomp, ever will)
    for which, soft, hard in (
        (resource.RLIMIT_CORE, 0, 0),
        (resource.RLIMIT_CPU, *_cpu_limit(limits)),
        (resource.RLIMIT_FSIZE, limits.file_bytes, limits.file_bytes),
        (resource.RLIMIT_NOFILE, limits.open_files, limits.open_files),
        # Counts per user, and root ignores it: it bites once we run under our own uid.
        (resource.RLIMIT_NPROC, 0, 0),
    ):
        resource.setrlimit(which, (soft, hard))
    if drop_to_uid is not None:
        drop_privileges(drop_to_uid)
    _prctl(PR_SET_DUMPABLE, 0)


def tighten(limits: ChildLimits, spare_heap: int = 0) -> None:
    """The job's limits, at most the ones `confine` set (lowering needs no privilege).
    `spare_heap`: mapped bytes that the process's own set-up left free for the model to
    reuse (see `model_process`), which the address-space budget does not count as runtime."""
    address_space = mapped_bytes() - spare_heap + limits.memory_bytes
    for which, soft, hard in (
        (resource.RLIMIT_CPU, *_cpu_limit(limits)),
        (resource.RLIMIT_FSIZE, limits.file_bytes, limits.file_bytes),
        (resource.RLIMIT_NOFILE, limits.open_files, limits.open_files),
        (resource.RLIMIT_AS, address_space, address_space),
    ):
        old_soft, old_hard = resource.getrlimit(which)
        resource.setrlimit(which, (_at_most(soft, old_soft), _at_most(hard, old_hard)))


def fits(limits: ChildLimits, within: ChildLimits) -> bool:
    """Can a child confined under `within` tighten to `limits`? (Wall time is no rlimit and
    memory is set by `tighten` alone: any value of theirs fits.)"""
    return (
        limits.cpu_seconds <= within.cpu_seconds
        and limits.file_bytes <= within.file_bytes
        and limits.open_files <= within.open_files
    )


def _cpu_limit(limits: ChildLimits) -> tuple[int, int]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = math.ceil(usage.ru_utime + usage.ru_stime) + limits.cpu_seconds  # set-up used some
    return cpu, cpu + 1


def _at_most(value: int, limit: int) -> int:
    return value if limit == resource.RLIM_INFINITY else min(value, limit)


def drop_privileges(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def mapped_bytes() -> int:
    with open("/proc/self/statm") as f:  # first field: total program size, in pages
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _prctl(option: int, value: int) -> None:
    if _libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}) failed")
