"""The seccomp filter every model process runs under: compiled once, installed per child.

The trusted fork server compiles the filter with libseccomp (through the `seccomp` bindings or
the API-compatible `pyseccomp`, whichever is installed) and keeps the raw BPF program; each
child installs those bytes with one prctl, so no child pays for compiling it.

The filter allows by default and makes dangerous calls fail with EPERM: no sockets (so no
network, even on loopback), no new processes or programs (fork, vfork, clone, execve: a model
process is single-threaded, so even thread creation is refused), no tracing, no namespace or
mount tricks, no io_uring (its operations bypass seccomp). Models run side by side, so nothing
that could open a channel from one to another either: no changing permissions (chmod, ACLs
and other extended attributes: what a model creates stays its own, see `confine`'s umask), no
System V or POSIX message queues, semaphores or shared memory, whose modes are set at creation.

It leaves setrlimit/prlimit64 alone: a spare child installs the filter before it knows its
job's limits (installing costs ~0.4 ms, off the critical path that way), and sets them after.
Raising a hard limit needs CAP_SYS_RESOURCE in the initial user namespace, which a model
process never has: it runs under a uid of its own, or unprivileged, or in a user namespace.
"""

from __future__ import annotations

import ctypes
import errno
import tempfile
from types import ModuleType

# fmt: off
_DENIED = (
    # network
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
    # processes and programs
    "fork", "vfork", "clone", "execve", "execveat",
    # looking into or changing other processes
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_open", "pidfd_getfd",
    # namespaces, mounts, roots
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot", "move_mount", "open_tree",
    "fsopen", "fsmount", "fsconfig", "fspick", "mount_setattr",
    # channels to a model running beside it: permissions, extended attributes (ACLs), IPC
    "chmod", "fchmod", "fchmodat", "fchmodat2",
    "setxattr", "lsetxattr", "fsetxattr", "setxattrat",
    "removexattr", "lremovexattr", "fremovexattr", "removexattrat",
    "shmget", "shmat", "shmctl", "shmdt", "msgget", "msgsnd", "msgrcv", "msgctl",
    "semget", "semop", "semtimedop", "semctl",
    "mq_open", "mq_unlink", "mq_timedsend", "mq_timedreceive", "mq_notify", "mq_getsetattr",
    # kernel facilities a model never needs
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "kexec_load", "kexec_file_load",
    "init_module", "finit_module", "delete_module", "reboot", "swapon", "swapoff", "syslog",
    "acct", "quotactl", "name_to_handle_at", "open_by_handle_at", "iopl", "ioperm",
    "personality", "settimeofday", "clock_settime", "adjtimex",
)
# Newer than some libseccomp releases know by name; numbered alike on every architecture
# (the common table, from 424 on), so they are denied by number when the name is unknown.
_BY_NUMBER = {"fchmodat2": 452, "setxattrat": 463, "removexattrat": 466}
# fmt: on

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
_libc = ctypes.CDLL(None, use_errno=True)


def _bindings() -> ModuleType | None:
    for name in ("seccomp", "pyseccomp"):
        try:
            return __import__(name)
        except (ImportError, OSError):  # OSError: bindings present, libseccomp.so missing
            continue
    return None


def compile_filter() -> bytes | None:
    """The BPF program for this machine's architecture, or None without libseccomp bindings."""
    sc = _bindings()
    if sc is None:
        return None
    f = sc.SyscallFilter(sc.ALLOW)
    for name in _DENIED:
        for syscall in (name, _BY_NUMBER.get(name)):
            if syscall is None:
                break
            try:
                f.add_rule(sc.ERRNO(errno.EPERM), syscall)
                break
            except (OSError, ValueError, RuntimeError):  # not a syscall on this architecture
                continue
    # clone3 passes its flags in memory the filter cannot read: say "not implemented".
    f.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    with tempfile.TemporaryFile() as out:
        f.export_bpf(out)
        out.seek(0)
        return out.read()


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install_filter(program: bytes) -> None:
    """Install a compiled program on the calling (single-threaded) process, for good."""
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    buf = ctypes.create_string_buffer(program, len(program))
    prog = _SockFprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))  # 8 bytes/insn
    if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")
