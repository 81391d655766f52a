"""The sandbox itself: hostile Python run under exactly the confinement a model gets."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wekacoin.evaluation import wire
from wekacoin.evaluation.isolation import Namespaces, candidates
from wekacoin.evaluation.sandbox import (
    ForkServerSandbox,
    Limits,
    RunResult,
    RunStatus,
    SandboxError,
)
from wekacoin.waiting import wait_until

LIMITS = Limits(wall_seconds=20, memory_bytes=256 * 1024**2, file_bytes=1024**2, open_files=32)


@pytest.fixture(scope="module", params=[ns.value for ns in candidates("auto")])
def payload_sandbox(request: pytest.FixtureRequest):
    sandbox = ForkServerSandbox(mode=request.param, entry="tests.helpers.hostile_payload")
    try:
        sandbox.start()
    except SandboxError as e:
        pytest.skip(f"{request.param} does not work here: {e}")
    yield sandbox
    sandbox.close()


def run_payload(sandbox: ForkServerSandbox, source: str, limits: Limits = LIMITS) -> RunResult:
    result = sandbox.run(source.encode(), {}, [], limits, max_result_bytes=1 << 20)
    # Whatever the payload did, the next job in the same sandbox still runs.
    after = sandbox.run(b"result = 'alive'", {}, [], LIMITS, max_result_bytes=1 << 20)
    assert text(after) == "alive"
    return result


def text(result: RunResult) -> str:
    assert result.status is RunStatus.OK, result
    return result.arrays[0].tobytes().decode()


def test_reports_the_isolation_in_force(payload_sandbox, caplog):
    isolation = payload_sandbox.isolation
    assert isolation.describe().endswith("rlimits")
    if os.geteuid() == 0:
        assert isolation.uid_drop  # root can always drop its uid, outside a user namespace
    with caplog.at_level(logging.INFO, logger="wekacoin.evaluation.sandbox"):
        fresh = ForkServerSandbox(
            mode=isolation.namespaces.value, entry="tests.helpers.hostile_payload"
        )
        try:
            assert fresh.isolation == isolation
        finally:
            fresh.close()
    assert f"isolation: {isolation.describe()}" in caplog.text


def test_auto_picks_bubblewrap_when_it_works():
    works = (
        shutil.which("bwrap")
        and subprocess.run(
            ["bwrap", "--unshare-net", "--ro-bind", "/", "/", "true"], capture_output=True
        ).returncode
        == 0
    )
    if not works:
        pytest.skip("bubblewrap does not work here")
    with ForkServerSandbox(entry="tests.helpers.hostile_payload") as sandbox:
        assert sandbox.isolation.namespaces is Namespaces.BWRAP


def test_cannot_connect_even_to_loopback(payload_sandbox):
    isolation = payload_sandbox.isolation
    if isolation.namespaces is Namespaces.NONE and not isolation.seccomp:
        pytest.skip("no network isolation available at this level")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        result = run_payload(
            payload_sandbox,
            f"""
import socket
try:
    socket.create_connection(("127.0.0.1", {port}), timeout=2)
    result = "connected"
except OSError as e:
    result = "blocked: " + type(e).__name__
""",
        )
        assert text(result).startswith("blocked"), text(result)
        listener.settimeout(0)
        with pytest.raises(BlockingIOError):
            listener.accept()


def test_cannot_write_outside_scratch(payload_sandbox):
    target = tempfile.mkdtemp(dir="/var/tmp")
    try:
        os.chmod(target, 0o777)  # writable by anyone: only a read-only root stops this
        if payload_sandbox.isolation.namespaces is not Namespaces.BWRAP:
            os.chmod(target, 0o755)  # without a mount namespace, ownership is the guard
        result = run_payload(
            payload_sandbox,
            f"""
import os
outcomes = []
for path in ({target!r} + "/owned", "/etc/wekacoin-owned", os.path.expanduser("~") + "/owned"):
    try:
        open(path, "w").write("x")
        outcomes.append("wrote " + path)
    except OSError as e:
        outcomes.append("blocked")
open("scratch-file", "w").write("scratch is writable")
outcomes.append(open("scratch-file").read())
result = ";".join(outcomes)
""",
        )
        assert text(result) == "blocked;blocked;blocked;scratch is writable"
        assert os.listdir(target) == []
    finally:
        shutil.rmtree(target)


def test_cannot_start_processes(payload_sandbox):
    if not payload_sandbox.isolation.seccomp and not payload_sandbox.isolation.uid_drop:
        pytest.skip("neither seccomp nor a drop to an unprivileged uid available here")
    result = run_payload(
        payload_sandbox,
        """
import os, subprocess
outcomes = []
for attempt in (os.fork, lambda: subprocess.run(["/bin/true"]),
                lambda: os.posix_spawn("/bin/true", ["true"], {})):
    try:
        pid = attempt()
        if pid == 0:
            os._exit(0)
        outcomes.append("started")
    except OSError:
        outcomes.append("blocked")
result = ";".join(outcomes)
""",
    )
    assert text(result) == "blocked;blocked;blocked"


def test_memory_limit(payload_sandbox):
    result = run_payload(payload_sandbox, "hog = bytearray(4 * 1024**3)")
    assert result.status is RunStatus.FAILED
    assert "memory" in result.detail


def test_cpu_time_limit(payload_sandbox):
    result = run_payload(
        payload_sandbox, "while True: pass", Limits(wall_seconds=60, cpu_seconds=1)
    )
    assert result.status is RunStatus.TIMED_OUT
    assert "CPU" in result.detail


def test_wall_clock_limit(payload_sandbox):
    result = run_payload(payload_sandbox, "import time; time.sleep(600)", Limits(wall_seconds=1))
    assert result.status is RunStatus.TIMED_OUT
    assert "wall-clock" in result.detail


def test_a_model_process_killed_by_the_system_is_our_failure_not_the_models(payload_sandbox):
    """SIGKILL comes from the kernel's OOM killer (this machine's RAM) or an operator, never
    from a model's data: no verdict (UNEVALUATED), where a crash of its own is FAILED."""
    killed = run_payload(payload_sandbox, "import os, signal; os.kill(os.getpid(), signal.SIGKILL)")
    assert killed.status is RunStatus.SANDBOX_ERROR
    assert "killed" in killed.detail
    crashed = run_payload(
        payload_sandbox, "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"
    )
    assert crashed.status is RunStatus.FAILED and "SIGSEGV" in crashed.detail


def test_file_size_and_open_file_limits(payload_sandbox):
    result = run_payload(
        payload_sandbox,
        """
files = []
try:
    for i in range(100):
        files.append(open(f"f{i}", "w"))
    result = "opened 100"
except OSError:
    result = f"stopped at {len(files)}"
""",
    )
    assert text(result).startswith("stopped at")
    big = run_payload(payload_sandbox, "open('big', 'wb').write(b'x' * (8 * 1024**2))")
    assert big.status is RunStatus.FAILED  # killed by SIGXFSZ, or EFBIG


def test_model_output_is_bounded(payload_sandbox):
    result = payload_sandbox.run(b"result = 'x' * 100000", {}, [], LIMITS, max_result_bytes=1000)
    assert result.status is RunStatus.FAILED
    assert "exceeds" in result.detail


def test_data_reaches_the_child_through_the_server(payload_sandbox):
    source = b"result = 'sum=%d' % int(sum(d.sum() for d in datasets))"
    first = payload_sandbox.put_data(np.arange(12, dtype=np.float64).reshape(4, 3))
    try:
        assert text(payload_sandbox.run(source, {}, [first], LIMITS, 1 << 20)) == "sum=66"
        # Put after the server forked its spare child: the spare lacks it and must be replaced.
        second = payload_sandbox.put_data(np.ones((2, 2)))
        try:
            assert (
                text(payload_sandbox.run(source, {}, [first, second], LIMITS, 1 << 20)) == "sum=70"
            )
        finally:
            payload_sandbox.release(second)
    finally:
        payload_sandbox.release(first)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_decoding_random_bytes_only_ever_raises_wire_error(data):
    try:
        wire.decode(data)
    except wire.WireError:
        pass  # refusing garbage is the expected outcome


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["<f8", "<i8", "|u1"]), st.integers(0, 5), st.integers(0, 5)),
        max_size=4,
    )
)
def test_wire_round_trip(specs):
    arrays = [np.arange(r * c).astype(dtype).reshape(r, c) for dtype, r, c in specs]
    meta, back = wire.decode(wire.encode({"k": 1}, arrays))
    assert meta == {"k": 1}
    pairs = zip(arrays, back, strict=True)
    assert all(np.array_equal(a, b) and a.dtype == b.dtype for a, b in pairs)


def test_a_dead_fork_server_is_restarted_with_its_data():
    with ForkServerSandbox(entry="tests.helpers.hostile_payload") as sandbox:
        handle = sandbox.put_data(np.full((3, 1), 2.0))
        source = b"result = 'sum=%d' % int(datasets[0].sum())"
        assert text(sandbox.run(source, {}, [handle], LIMITS, 1 << 20)) == "sum=6"
        server = sandbox.server_pid
        assert server is not None
        os.killpg(server, 9)  # whatever killed it, the node must keep evaluating
        # SIGKILL lands asynchronously: a run sent before the server is dead may be answered
        # by it, so wait until it has exited (a zombie until the sandbox reaps it)
        wait_until(lambda: process_state(server) in ("Z", "X", None), timeout=10,
                   what="the killed fork server to exit")
        assert text(sandbox.run(source, {}, [handle], LIMITS, 1 << 20)) == "sum=6"
        assert sandbox.server_pid != server


def process_state(pid: int) -> str | None:
    """The state letter of /proc/PID/stat (R, S, Z, ...), None once the pid is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def test_limits_cannot_be_raised_again(payload_sandbox):
    if not payload_sandbox.isolation.uid_drop and os.geteuid() == 0:
        pytest.skip("a model process that stays root could raise its limits")
    result = run_payload(
        payload_sandbox,
        """
import resource
soft, hard = resource.getrlimit(resource.RLIMIT_AS)
try:
    resource.setrlimit(resource.RLIMIT_AS, (hard, hard + 1024**3))
    result = "raised"
except (OSError, ValueError):
    result = "refused"
""",
    )
    assert text(result) == "refused"


def test_one_model_process_cannot_reach_anothers_scratch(payload_sandbox):
    first = payload_sandbox.run(
        b"""
import os
open("note", "w").write("left for the next model")
try:  # its own dir: it may try to open it to all (seccomp says no)
    os.chmod("note", 0o666)
    os.chmod(".", 0o777)
except OSError:
    pass
result = os.path.abspath("note") + " " + str(os.getuid())
""",
        {},
        [],
        LIMITS,
        1 << 20,
    )
    path, first_uid = text(first).split()
    second = payload_sandbox.run(
        f"""
import os
try:
    result = open({path!r}).read()
except OSError:
    result = "blocked " + str(os.getuid())
""".encode(),
        {},
        [],
        LIMITS,
        1 << 20,
    )
    verdict, second_uid = text(second).split()
    assert verdict == "blocked"
    if payload_sandbox.isolation.uid_drop:
        assert first_uid != second_uid
