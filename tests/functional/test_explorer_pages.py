"""Functional test of the explorer (wekacoin/explorer/) in headless Chromium, on the session's
four validators: the pages render the chain, a block, a transaction, a settled competition
(lifecycle, leaderboard with its baseline row and winner, the SVG plot of the scores), the
models, the validators and the node's status, from the node's own RPC port and nothing else.

The browser is driven over the DevTools protocol on a pipe (`--remote-debugging-pipe`, no
Python dependency): one browser for every page, each page waited on by a condition on its
DOM, a screenshot of each saved (the path is printed for CI to keep). No page may throw or
trip the Content Security Policy.

A settled task that a model won is taken from the network when one is there (the competition
test settles one); otherwise the test runs a small one, whose title and a column name hold
markup that must come out as text, and loads the pages that need no task while it runs. The
lifecycle's windows fix that at ~60 blocks: about 80 s of the chain on 2 busy cores.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from wekacoin.client import competition as comp
from wekacoin.client.chainclient import ChainClient
from wekacoin.client.datasets import dataset_from_arrays, prepare_dataset
from wekacoin.client.demo import to_onnx_bytes
from wekacoin.content.cid import compute_cid
from wekacoin.evaluation.data import parse_split
from wekacoin.evaluation.sandbox import ForkServerSandbox
from wekacoin.testing.functional import NodeGroup, wait_until
from wekacoin.types.metric import Metric, TaskKind
from wekacoin.waiting import WaitTimeout

pytestmark = [pytest.mark.slow, pytest.mark.after_competition]

MARKUP = "<img src=x onerror=document.title=1>"
"""In the title and a column name: rendered as these characters, never as an element."""
TITLE = f"explorer test {MARKUP} & co"
LABEL = "malignant"
WINDOW = (1280, 900)
PAGE_TIMEOUT = 60.0
PUBLISH_MARGIN = 3
"""Blocks the PublishTask may wait for inclusion: tbh counts from the height it was signed at,
and must stay `min_training_period` past the block that includes it."""


# -- a settled competition ------------------------------------------------------------------


def settled_task(network: NodeGroup, work: Path) -> int:
    """A settled task that a model won: the newest on the network, else a new one."""
    node = network.nodes[0]
    for summary in reversed(node.call("tasks.list")):
        if summary["phase"] == "settled":
            task = node.call("tasks.get", task_id=summary["id"])
            if any(row["winner"] for row in task["leaderboard"]):
                return summary["id"]
    return run_competition(network, work)


def run_competition(network: NodeGroup, work: Path) -> int:
    """Breast cancer in 10 groups, two trainers (a depth-2 tree, a logistic regression),
    about the shortest training period the chain allows; returns the task id once settled."""
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    nodes = network.nodes
    params = nodes[0].call("chain.info")["params"]
    ds = load_breast_cancer()
    names = [n.replace(" ", "_") for n in ds.feature_names]
    names[0] = f"radius {MARKUP}"
    data = dataset_from_arrays(ds.data, ds.target, names, LABEL, TaskKind.CLASSIFICATION)
    prepared = prepare_dataset(data, LABEL, TaskKind.CLASSIFICATION, 10, seed=11)
    supplier = ChainClient(nodes[0].rpc, network.wallet("supplier"))
    trainers = [ChainClient(nodes[i].rpc, network.wallet(f"trainer{i}")) for i in (1, 2)]
    with ForkServerSandbox() as sandbox:
        supplier_ws = comp.Workspace(work / "supplier")
        task_id = comp.publish_task(
            supplier, supplier_ws, prepared, None, title=TITLE, metric=Metric.ACCURACY,
            reward=200_000, hosting_fee=50_000, participation_fee=None,
            training_blocks=params["min_training_period"] + PUBLISH_MARGIN, eval_seconds=30,
            max_model_bytes=2**20,
        )
        comp.reveal_training(supplier, supplier_ws, task_id, sandbox)
        height = supplier.height()
        workspaces = [comp.Workspace(work / f"trainer{i}") for i in (1, 2)]
        for trainer, ws, model in zip(trainers, workspaces, (
            DecisionTreeClassifier(max_depth=2, random_state=0),
            make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
        ), strict=True):
            trainer.wait_for_height(height, timeout_s=60)  # its node has the training reveal
            train = parse_split(comp.training_data(trainer, trainer.task(task_id)),
                                prepared.schema)
            model.fit(train.features, train.labels)
            comp.submit_model(trainer, ws, task_id, to_onnx_bytes(model, train.features),
                              sandbox)
    supplier.wait_for_phase(task_id, ("test reveal",), timeout_s=120)
    comp.reveal_test(supplier, supplier_ws, task_id)
    height = supplier.height()
    with ThreadPoolExecutor(2) as pool:  # the upload window is a few blocks
        list(pool.map(lambda tw: (tw[0].wait_for_height(height, timeout_s=60),
                                  comp.reveal_model(tw[0], tw[1], task_id)),
                      zip(trainers, workspaces, strict=True)))
    task = supplier.wait_for_phase(task_id, ("settled", "expired"), timeout_s=180)
    assert task["settlement"]["resolution"] == "won", task["settlement"]
    return task_id


# -- a browser on the DevTools protocol -----------------------------------------------------


def find_chromium() -> str:
    """Debian's chromium (`.ci/system-packages test`); a skip without it, a failure under CI."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    reason = "chromium is not installed (apt-get install chromium): the explorer's pages untested"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


TRAMPOLINE = ("import os, sys; os.dup2(int(sys.argv[1]), 3); os.dup2(int(sys.argv[2]), 4); "
              "os.closerange(5, os.sysconf('SC_OPEN_MAX')); os.execv(sys.argv[3], sys.argv[3:])")


class Browser:
    """Headless Chromium on `--remote-debugging-pipe`: DevTools messages are JSON ended by a
    NUL byte, read by the browser from its fd 3, written to its fd 4. One tab; `events` keeps
    every event (console messages, exceptions) for the checks at the end."""

    def __init__(self, executable: str, profile: Path, shots: Path) -> None:
        self.shots = shots
        self.events: list[dict[str, Any]] = []
        self._next_id = 0
        self._buffer = b""
        commands, self._commands = os.pipe()
        self._answers, answers = os.pipe()
        commands, answers = (_above(fd, 10) for fd in (commands, answers))
        flags = ["--headless", "--remote-debugging-pipe", "--user-data-dir=" + str(profile),
                 "--no-first-run", "--no-default-browser-check", "--disable-gpu",
                 "--disable-extensions", "--disable-background-networking", "--disable-sync",
                 "--hide-scrollbars", "--window-size={},{}".format(*WINDOW)]
        if os.geteuid() == 0:
            flags.append("--no-sandbox")  # chromium refuses root without it (CI containers)
        # a Python trampoline moves the pipes to fds 3 and 4 (not preexec_fn: threads run)
        self.process = subprocess.Popen(
            [sys.executable, "-c", TRAMPOLINE, str(commands), str(answers), executable, *flags,
             "about:blank"], pass_fds=(commands, answers),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(commands)
        os.close(answers)
        try:
            target = self.send("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.send("Target.attachToTarget", targetId=target, flatten=True)[
                "sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                self.send(f"{domain}.enable", session=True)
            self.send("Emulation.setDeviceMetricsOverride", session=True, width=WINDOW[0],
                      height=WINDOW[1], deviceScaleFactor=1, mobile=False)
        except BaseException:
            self.close()
            raise

    def send(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = self.session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._receive(PAGE_TIMEOUT)
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise AssertionError(f"{method}: {answer['error']}")
                return answer["result"]
            self.events.append(answer)

    def _receive(self, timeout: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._answers], [], [], timeout)
            chunk = os.read(self._answers, 1 << 20) if ready else b""
            if not chunk:
                raise AssertionError("chromium stopped answering on its DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def evaluate(self, expression: str) -> Any:
        out = self.send("Runtime.evaluate", session=True, expression=expression,
                        returnByValue=True)
        if "exceptionDetails" in out:
            raise AssertionError(f"{expression}: {out['exceptionDetails']}")
        return out["result"].get("value")

    def show(self, url: str, ready: str, what: str) -> None:
        """Go to `url` and wait until the explorer has drawn it and `ready` (JS) holds."""
        self.send("Page.navigate", session=True, url=url)
        self.wait_drawn("#" + url.partition("#")[2], ready, what)

    def wait_drawn(self, route: str, ready: str, what: str) -> None:
        drawn = f"document.getElementById('page')?.dataset.ready === {json.dumps(route)}"
        try:
            wait_until(lambda: self.evaluate(f"({drawn}) && !!({ready})"),
                       timeout=PAGE_TIMEOUT, interval=0.2, what=what)
        except WaitTimeout as e:
            page = self.evaluate("document.getElementById('page')?.textContent")
            raise AssertionError(f"{e}\npage: {page!r}\nbrowser: {self.problems()}") from None

    def text(self, selector: str = "main") -> str:
        return self.evaluate(f"document.querySelector({json.dumps(selector)}).textContent")

    def count(self, selector: str) -> int:
        return self.evaluate(f"document.querySelectorAll({json.dumps(selector)}).length")

    def texts(self, selector: str) -> list[str]:
        return self.evaluate(f"[...document.querySelectorAll({json.dumps(selector)})]"
                             ".map((e) => e.textContent)")

    def screenshot(self, name: str) -> Path:
        size = self.send("Page.getLayoutMetrics", session=True)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": WINDOW[0], "height": min(size["height"], 8000),
                "scale": 1}
        shot = self.send("Page.captureScreenshot", session=True, format="png", clip=clip,
                         captureBeyondViewport=True)
        path = self.shots / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def problems(self) -> list[str]:
        """Exceptions and console errors (a CSP violation is one) seen so far."""
        out = []
        for event in self.events:
            if event.get("method") == "Runtime.exceptionThrown":
                out.append(json.dumps(event["params"]["exceptionDetails"])[:500])
            elif (event.get("method") == "Log.entryAdded"
                  and event["params"]["entry"]["level"] == "error"):
                out.append(json.dumps(event["params"]["entry"])[:500])
        return out

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except (AssertionError, OSError):
            pass  # it closed the pipe first, or had stopped
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._answers)


def _above(fd: int, lowest: int) -> int:
    """`fd` moved to a number >= `lowest`, clear of the 3 and 4 the browser reads."""
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, lowest)
    os.close(fd)
    return moved


@contextmanager
def browser(work: Path) -> Iterator[Browser]:
    executable = find_chromium()
    shots = work / "explorer-screenshots"
    shots.mkdir(parents=True)
    b = Browser(executable, work / "chromium-profile", shots)
    try:
        yield b
    finally:
        b.close()


# -- the pages ------------------------------------------------------------------------------


def test_explorer_shows_the_chain_a_competition_and_the_validators(
    network: NodeGroup, tmp_path: Path, record_property: Callable[[str, object], None],
) -> None:
    node = network.nodes[0]
    base = node.rpc_url + "explorer/"
    with browser(tmp_path) as b:
        try:
            with ThreadPoolExecutor(1) as pool:
                competition = pool.submit(settled_task, network, tmp_path / "competition")
                check_chain(b, base, network)
                check_validators(b, base, network)
                check_status(b, base, network)
                task_id = competition.result()
            task = node.call("tasks.get", task_id=task_id)  # settled: it stays as it is
            check_task(b, base, task)
            check_models(b, base, task)
            check_block_and_tx(b, base, network, task)
            assert not b.problems(), "\n".join(b.problems())  # no exception, no CSP refusal
        finally:
            record_property("artifact", f"screenshots: {b.shots}")  # listed at the end


SCRIPT_ROWS = """[...document.querySelectorAll(%s)].map((r) => ({
    cls: r.className, cells: [...r.cells].map((c) => c.textContent),
    full: [...r.querySelectorAll(".mono")].map((e) => e.title),
    links: [...r.querySelectorAll("a.download")].map((a) => a.href)}))"""


def rows(b: Browser, selector: str) -> list[dict[str, Any]]:
    """The rows of a table as text, with the full values behind shortened ones."""
    return b.evaluate(SCRIPT_ROWS % json.dumps(selector))


def check_chain(b: Browser, base: str, network: NodeGroup) -> None:
    b.show(base + "#/", "document.querySelector('#blocks tbody tr')", "the chain page")
    assert f"Chain {network.chain_id}" in b.text("main h1")
    drawn = b.evaluate("""(() => ({
        height: +document.getElementById("page").dataset.height,
        heights: [...document.querySelectorAll("#blocks tbody tr td:first-child")]
            .map((td) => +td.textContent),
        status: [...document.querySelectorAll("#blocks .badge")].map((e) => e.textContent)}))()""")
    assert drawn["heights"] == list(range(drawn["height"], max(0, drawn["height"] - 20), -1))
    assert set(drawn["status"]) <= {"FINAL", "TENTATIVE"} and "FINAL" in drawn["status"]
    b.screenshot("chain")
    # live: the page redraws itself when a block lands, nobody reloading it
    wait_until(lambda: b.evaluate("+document.querySelector('#blocks tbody td').textContent")
               > drawn["height"], timeout=PAGE_TIMEOUT, interval=0.2,
               what="the chain page to show a new block by itself")


def check_validators(b: Browser, base: str, network: NodeGroup) -> None:
    expected = {v["address"]: v for v in network.nodes[0].call("validators.list")}
    b.show(base + "#/validators", "document.querySelector('tr.validator')", "the validators")
    shown = rows(b, "tr.validator")
    assert {r["cells"][0] for r in shown} == set(expected) == {
        network.address(f"validator{i}") for i in range(len(network.nodes))}
    for r in shown:
        stake, storage, weight = (int(c.replace(",", "")) for c in r["cells"][2:5])
        assert stake == expected[r["cells"][0]]["stake"]
        assert weight == stake + storage  # what sortition counts
        assert r["full"][1] == expected[r["cells"][0]]["validator_key"]
    assert b.count("#weights rect.bar.stake") == len(expected)
    b.screenshot("validators")
    address = shown[0]["cells"][0]
    b.show(base + f"#/account/{address}", "document.querySelector('#pending')", "an account")
    assert address in b.text("main dl") and f"{expected[address]['stake']:,}" in b.text("main dl")
    b.screenshot("account")


def check_status(b: Browser, base: str, network: NodeGroup) -> None:
    status = network.nodes[0].status()
    b.show(base + "#/status", "document.querySelector('#peers')", "the node's status")
    text = b.text()
    for value in (status["version"], status["chain_id"], status["peer_id"], status["sandbox"],
                  status["validator"]["address"]):
        assert value in text, value
    b.screenshot("status")


def check_task(b: Browser, base: str, task: dict[str, Any]) -> None:
    b.show(base + f"#/task/{task['id']}", "document.querySelector('#scores svg')", "the task")
    assert b.text("main h1 .title") == task["spec"]["title"]
    assert b.texts("li.column") == task["spec"]["schema"]["feature_columns"]
    assert b.count("main img") == 0 and b.evaluate("document.title") == "WekaCoin explorer"
    assert badge_text(b, "main dl") == task["phase"] == "settled"
    lifecycle = [int(r["cells"][1]) for r in rows(b, "#lifecycle tbody tr")]
    assert lifecycle == [h for h in task["heights"].values() if h is not None]

    board = rows(b, "#leaderboard tbody tr")
    assert len(board) == len(task["leaderboard"]) >= 3  # two models and the baseline
    for shown, row in zip(board, task["leaderboard"], strict=True):
        assert shown["cells"][4] == f"{row['score'] / 1e6:.6f}"
        assert row["model_cid"] in shown["full"] and row["trainer"] in shown["full"]
        kind = "baseline" if row["baseline"] else "winner" if row["winner"] else ""
        assert shown["cls"] == kind, (shown, row)
    assert [r["cls"] for r in board].count("winner") == 1
    assert [r["cls"] for r in board].count("baseline") == 1

    scored = [r for r in task["leaderboard"] if r["outcome"] == "scored"]
    assert b.count("#scores rect.bar") == len(scored)
    assert b.count("#scores rect.bar.baseline") == b.count("#scores rect.bar.winner") == 1
    assert b.texts("#scores text.value") == [f"{r['score'] / 1e6:.6f}" for r in scored]
    assert "won" in b.text("#settlement")
    b.screenshot("task")

    winner = next(r for r in board if r["cls"] == "winner")
    model = httpx.get(winner["links"][0], timeout=30)
    assert model.status_code == 200 and compute_cid(model.content) == winner["full"][1]


def badge_text(b: Browser, scope: str) -> str:
    return b.text(f"{scope} .badge")


def check_models(b: Browser, base: str, task: dict[str, Any]) -> None:
    b.show(base + "#/models", "document.querySelector('main tbody tr')", "the models")
    cids = {full for r in rows(b, "main tbody tr") for full in r["full"]}
    assert {r["model_cid"] for r in task["leaderboard"]} <= cids
    b.screenshot("models")
    b.show(base + "#/tasks", "document.querySelector('main tbody tr')", "the tasks")
    assert task["spec"]["title"] in b.texts("main tbody td:nth-child(2)")
    b.screenshot("tasks")


def check_block_and_tx(b: Browser, base: str, network: NodeGroup, task: dict[str, Any]) -> None:
    height = task["heights"]["published"]
    block = network.nodes[0].block(height, full=True)
    publish = next(t for t in block["txs"] if t["body"]["kind"] == "publish_task"
                   and t["body"]["title"] == task["spec"]["title"])
    b.show(base + f"#/block/{height}", "document.querySelector('#transactions')", "the block")
    assert [r["full"][0] for r in rows(b, "#transactions tbody tr")] == [
        t["id"] for t in block["txs"]]
    assert task["spec"]["title"] in b.texts("#transactions q")
    assert badge_text(b, "main h1") == "FINAL"  # long since
    b.screenshot("block")
    b.evaluate("(() => { const form = document.getElementById('search');"
               f"form.elements.q.value = {json.dumps(publish['id'])}; form.requestSubmit(); }})()")
    b.wait_drawn(f"#/tx/{publish['id']}", "document.querySelector('#body')",
                 "the transaction, searched by its id")
    assert "publish_task" in b.text() and f"in block {height} at index" in b.text()
    assert task["spec"]["title"] in b.texts("#body dd")
    b.screenshot("transaction")
