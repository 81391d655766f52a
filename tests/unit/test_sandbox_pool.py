"""The fork server's pool of model processes, and models run side by side, with hostile Python
run under exactly the confinement a model gets (`tests/helpers/hostile_payload.py`):
- spare processes are confined (rlimits, seccomp, own uid) before any model reaches them;
- a process runs one model and dies: no model ever finds another's process, nor anything a
  model running beside it leaves for it;
- a model that crashes, hangs, spins or hogs memory harms none of the models run beside it.
What the kernel says (/proc) is the judge, not the server's own account.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from wekacoin.evaluation.isolation import candidates
from wekacoin.evaluation.sandbox import (
    ForkServerSandbox,
    Limits,
    RunResult,
    RunStatus,
    SandboxError,
)
from wekacoin.waiting import wait_until

PARALLEL = 4  # more than this machine's cores, if need be: the point is to overlap
LIMITS = Limits(wall_seconds=20, memory_bytes=256 * 1024**2, file_bytes=1024**2, open_files=32)


@pytest.fixture(scope="module", params=[ns.value for ns in candidates("auto")])
def sandbox(request: pytest.FixtureRequest) -> Iterator[ForkServerSandbox]:
    box = ForkServerSandbox(
        mode=request.param, entry="tests.helpers.hostile_payload", parallel=PARALLEL
    )
    try:
        box.start()
    except SandboxError as e:
        pytest.skip(f"{request.param} does not work here: {e}")
    yield box
    box.close()


def run(sandbox: ForkServerSandbox, source: str, limits: Limits = LIMITS) -> RunResult:
    return sandbox.run(source.encode(), {}, [], limits, max_result_bytes=1 << 20)


def text(result: RunResult) -> str:
    assert result.status is RunStatus.OK, result
    return result.arrays[0].tobytes().decode()


def descendants(root: int) -> list[int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
    found, frontier = [], [root]
    while frontier:
        children = [pid for pid, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def proc_fields(pid: int, name: str) -> dict[str, str]:
    """`/proc/PID/status` or `/proc/PID/limits` as {field: rest of the line}."""
    with open(f"/proc/{pid}/{name}") as f:
        lines = f.read().splitlines()
    if name == "limits":  # fixed-width columns under a header
        return {line[:26].strip(): " ".join(line[26:].split()) for line in lines[1:]}
    return {k: v.strip() for k, v in (line.split(":", 1) for line in lines if ":" in line)}


def model_processes(sandbox: ForkServerSandbox) -> dict[int, dict[str, dict[str, str]]]:
    """Live model processes of the sandbox (host pid -> status and limits): its server's
    descendants that `confine` gave no right to start a process (nothing else does)."""
    server = sandbox.server_pid
    assert server is not None
    found = {}
    for pid in descendants(server):
        try:
            status, limits = proc_fields(pid, "status"), proc_fields(pid, "limits")
        except PermissionError:
            pytest.skip("this user cannot read other processes' /proc entries")
        except OSError:
            continue  # gone meanwhile
        if limits.get("Max processes", "").startswith("0 0") and status["State"][0] != "Z":
            found[pid] = {"status": status, "limits": limits}
    return found


def test_spares_are_confined_before_any_model_reaches_them(sandbox):
    assert text(run(sandbox, "result = 'first'")) == "first"  # the pool follows the jobs
    # No job is running now: every model process alive is a spare no model has reached.
    spares = wait_until(
        lambda: (found := model_processes(sandbox)) and len(found) == PARALLEL + 1 and found,
        timeout=120,
        what=f"{PARALLEL + 1} confined spares",
    )
    isolation = sandbox.isolation
    uids = set()
    for facts in spares.values():
        status, limits = facts["status"], facts["limits"]
        assert status["State"][0] == "S"  # asleep, waiting for a job
        assert limits["Max open files"].startswith(f"{LIMITS.open_files} {LIMITS.open_files}")
        size = LIMITS.file_bytes
        assert limits["Max file size"].startswith(f"{size} {size}")
        assert limits["Max core file size"].startswith("0 0")
        assert not limits["Max cpu time"].startswith("unlimited")
        if isolation.seccomp:
            assert status["Seccomp"] == "2" and status["NoNewPrivs"] == "1"
        if isolation.uid_drop:
            uid = int(status["Uid"].split()[0])
            assert uid != 0 and uid != os.getuid()
            uids.add(uid)
    if isolation.uid_drop:
        assert len(uids) == len(spares)  # a uid of its own each


def test_a_model_process_runs_one_model_and_dies(sandbox):
    source = """
import builtins, os
builtins.models_here = getattr(builtins, "models_here", 0) + 1
result = "%d %d %d" % (os.getpid(), os.getuid(), builtins.models_here)
"""
    with ThreadPoolExecutor(PARALLEL) as threads:
        answers = list(threads.map(lambda _: text(run(sandbox, source)), range(3 * PARALLEL)))
    answers += [text(run(sandbox, source)) for _ in range(4)]  # one after another, too
    pids, uids, counts = zip(*(map(int, a.split()) for a in answers), strict=True)
    assert set(counts) == {1}
    assert len(set(pids)) == len(pids)
    if sandbox.isolation.uid_drop:
        assert len(set(uids)) == len(uids)

    def namespace_pid(facts: dict[str, dict[str, str]]) -> int:
        return int(facts["status"]["NSpid"].split()[-1])

    # ...and each is gone once its model answered: the live ones are spares.
    wait_until(
        lambda: not {namespace_pid(f) for f in model_processes(sandbox).values()} & set(pids),
        timeout=60,
        what="the model processes that answered to be gone",
    )


def test_a_model_that_crashes_or_hangs_harms_none_beside_it(sandbox):
    quick = Limits(wall_seconds=2, memory_bytes=256 * 1024**2)
    hostile = {
        "hangs": ("import time; time.sleep(600)", quick, RunStatus.TIMED_OUT, "wall-clock"),
        "spins": ("while True: pass", Limits(wall_seconds=60, cpu_seconds=1),
                  RunStatus.TIMED_OUT, "CPU"),
        "crashes": ("import os, signal; os.kill(os.getpid(), signal.SIGSEGV)", LIMITS,
                    RunStatus.FAILED, "SIGSEGV"),
        "exits": ("import os; os._exit(3)", LIMITS, RunStatus.FAILED, "exit code 3"),
        "hogs memory": ("hog = bytearray(4 * 1024**3)", LIMITS, RunStatus.FAILED, "memory"),
        "raises": ("raise ValueError('bad model')", LIMITS, RunStatus.FAILED, "bad model"),
    }
    good = {f"good {i}": (f"result = str(sum(range({i})))", LIMITS) for i in range(10)}
    jobs = {**{k: v[:2] for k, v in hostile.items()}, **good}
    with ThreadPoolExecutor(PARALLEL) as threads:
        running = {name: threads.submit(run, sandbox, *job) for name, job in jobs.items()}
        results = {name: r.result() for name, r in running.items()}
    for name, (_, _, status, word) in hostile.items():
        assert results[name].status is status, (name, results[name])
        assert word in results[name].detail, (name, results[name])
    for i in range(10):
        assert text(results[f"good {i}"]) == str(sum(range(i)))


def test_a_model_cannot_leave_anything_for_a_model_beside_it(sandbox):
    isolation = sandbox.isolation
    if not isolation.uid_drop:
        pytest.skip("models share one uid here: nothing keeps them apart")
    leaves = """
import os, time
open("note", "w").write("for the model beside me")
tries = []
for path, mode in ((".", 0o777), ("note", 0o666)):
    try:
        os.chmod(path, mode)
        tries.append("opened")
    except OSError:
        tries.append("refused")
time.sleep(3)  # while the other model looks
result = " ".join(tries)
"""
    looks = """
import os, time
here = os.getcwd()
root, mine = os.path.dirname(here), os.path.basename(here)
found = []
end = time.monotonic() + 2.5
while not found and time.monotonic() < end:
    try:
        names = [n for n in os.listdir(root) if n != mine]
    except OSError:
        names = []
    for name in names:
        try:
            found.append(open(os.path.join(root, name, "note")).read())
        except OSError:
            pass
    time.sleep(0.05)
result = "read: " + found[0] if found else "nothing"
"""
    with ThreadPoolExecutor(2) as threads:
        leaving = threads.submit(run, sandbox, leaves)
        looking = threads.submit(run, sandbox, looks)
        assert text(looking.result()) == "nothing"
        tries = text(leaving.result())
    if isolation.seccomp:
        assert tries == "refused refused"
