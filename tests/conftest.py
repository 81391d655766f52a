"""Shared fixtures: the functional tests' 4-validator testnet, and node logs on failure."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from wekacoin.testing.functional import LOG_TAIL_LINES, NodeGroup, started_nodes


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--keep-testnet", action="store_true", default=False,
        help="functional tests: leave the shared testnet running at the end (stop it with "
             "`wekacoin testnet down --dir <dir>`)",
    )


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory,
            request: pytest.FixtureRequest) -> Iterator[NodeGroup]:
    """Four validator processes making blocks, shared by the functional tests.

    Tests may stop, kill and restart its nodes but must leave all four running."""
    group = NodeGroup.generate(tmp_path_factory.mktemp("functional") / "testnet", 4)
    keep = request.config.getoption("--keep-testnet")
    try:
        group.start()
        group.wait_for_height(2, timeout=90)
        yield group
    finally:
        if keep:
            for node in group.nodes:
                node.keep = True
            print(f"\nthe testnet keeps running in {group.root}; stop it with: "
                  f"python -m wekacoin testnet down --dir {group.root}")
        group.stop()


@pytest.hookimpl(tryfirst=True)  # before xdist's, which reads the xdist_group markers
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the tests in tiers (unit, then sim, then functional), the functional tests that
    start node processes (marked slow) after the others, and those that share the `network`
    testnet last: its four nodes run until the session ends, and every test after its first
    user would otherwise share the CPU with them.

    Under pytest-xdist (`-n auto`, the README's command; `--dist loadgroup` and
    `--no-loadscope-reorder` are in pyproject.toml) the tests that start nodes form one
    group, handed to one worker once every other test is handed out and run there in this
    order: a testnet never shares the machine with another test, as when run serially."""
    def tier(item: pytest.Item) -> int:
        parts = item.path.parts
        if "functional" not in parts:
            return 1 if "sim" in parts else 0
        if not item.get_closest_marker("slow"):
            return 2
        if "network" not in getattr(item, "fixturenames", ()):
            return 3
        return 5 if item.get_closest_marker("after_competition") else 4

    items.sort(key=tier)  # stable: the order within a tier is the collection order
    for item in items:
        if tier(item) >= 3:
            item.add_marker(pytest.mark.xdist_group("testnets"))
        elif "network" in getattr(item, "fixturenames", ()):
            raise pytest.UsageError(f"{item.nodeid} runs the shared testnet: mark it slow")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The files tests left for people to look at (`record_property("artifact", ...)`),
    listed at the end: printing them from a test is lost under xdist."""
    reports = [r for key in ("passed", "failed") for r in terminalreporter.stats.get(key, [])]
    artifacts = [(r.nodeid, value) for r in reports
                 for name, value in r.user_properties if name == "artifact"]
    if artifacts:
        terminalreporter.section("artifacts")
        for nodeid, value in artifacts:
            terminalreporter.write_line(f"{nodeid}: {value}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    """A failed test that ran node processes reports the end of each node's log."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and report.when in ("setup", "call"):
        for node in started_nodes():
            report.sections.append((f"{node.name} log (last {LOG_TAIL_LINES} lines)",
                                    node.log_tail()))
