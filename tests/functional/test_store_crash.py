"""A store killed (SIGKILL) at random instants reopens on a committed tip.

A child process (tests/helpers/store_crash_child.py) commits 200 real transfer blocks; the parent
kills it at random instants (mostly while it commits, sometimes while it opens and
recovers), reopens the store after every kill and checks:
- the store opens (its own check recomputes the state root from the stored entries);
- no acknowledged block or checkpoint was lost;
- the stored blocks are the ones sent, and replaying them from genesis gives exactly the
  tip's ledger entries and state root;
then spawns a new child, until all 200 blocks are in.
"""

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cbor2
import pytest

from tests.helpers.store_helpers import transfer_blocks
from wekacoin.chain.blocks import apply_block
from wekacoin.chain.genesis import genesis_state, genesis_to_json
from wekacoin.store import ChainStore
from wekacoin.testing.chain import LocalChain
from wekacoin.types.codec import encode

CHILD = Path(__file__).parents[1] / "helpers" / "store_crash_child.py"
BLOCKS = 120
MIN_KILLS = 20
DEADLINE_S = 150
MAX_SPAWNS = 300
LINE_TIMEOUT_S = 30


class Child:
    """One child process and a thread turning its stdout into a queue of lines."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), *args], stdout=subprocess.PIPE, text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.printed: list[str] = []
        """Every line taken from the queue so far."""
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.put(line.strip())
        self.lines.put(None)

    def next_line(self, timeout: float = LINE_TIMEOUT_S) -> str | None:
        line = self.lines.get(timeout=timeout)
        if line is not None:
            self.printed.append(line)
        return line

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)  # only the PID this test started
        self.proc.wait(timeout=LINE_TIMEOUT_S)
        self._reader.join(timeout=LINE_TIMEOUT_S)

    def all_lines(self) -> list[str]:
        """Everything it printed (call once it is dead)."""
        while self.next_line() is not None:
            pass
        return self.printed


class Replay:
    """The stored chain replayed from genesis, extended as the store grows."""

    def __init__(self, chain: LocalChain) -> None:
        self.state = genesis_state(chain.genesis)
        self.hashes: list[bytes] = []

    def check(self, store: ChainStore) -> None:
        for height, block_hash in enumerate(self.hashes, start=1):  # the prefix never changes
            assert store.get_block_hash(height) == block_hash
        for block in store.iter_blocks(len(self.hashes) + 1):
            self.state = apply_block(self.state, block).flattened()
            self.hashes.append(block.hash)
        tip = store.tip()
        assert len(self.hashes) == tip.height
        assert self.state.root() == tip.state_root
        assert dict(store.state().items()) == dict(self.state.items())


@pytest.mark.slow
def test_a_store_killed_at_random_instants_reopens_on_a_committed_tip(tmp_path):
    seed = int(os.environ.get("STORE_CRASH_SEED", random.randrange(2**32)))
    print(f"crash test seed {seed} (rerun with STORE_CRASH_SEED={seed})")
    rng = random.Random(seed)

    chain = LocalChain(n_keys=40)
    blocks = transfer_blocks(chain, BLOCKS, 25, seed=11)
    genesis_file, blocks_file = tmp_path / "genesis.json", tmp_path / "blocks.cbor"
    genesis_file.write_text(genesis_to_json(chain.genesis))
    blocks_file.write_bytes(cbor2.dumps([encode(b) for b in blocks]))
    data_dir = tmp_path / "chain"
    args = [str(data_dir), str(genesis_file), str(blocks_file)]

    replay = Replay(chain)
    acknowledged, kills, early, spawns, done = 0, 0, 0, 0, False
    start = time.monotonic()
    deadline = start + DEADLINE_S
    while not done:
        assert time.monotonic() < deadline, f"out of time after {kills} kills (seed {seed})"
        assert spawns < MAX_SPAWNS, f"no progress after {spawns} children (seed {seed})"
        child, spawns = Child(args), spawns + 1
        try:
            if rng.random() < 0.1:
                early += 1
                try:  # while it starts, opens, recovers: at the latest when it says "open"
                    child.next_line(timeout=rng.uniform(0.0, 0.6))
                except queue.Empty:
                    pass
            else:
                line = child.next_line()
                assert line is not None and line.startswith("open"), line
                # let it commit a few more blocks, then strike at a random instant
                for _ in range(rng.randint(0, 4)):
                    line = child.next_line()
                    if line is None or line == "done":
                        break
                time.sleep(rng.uniform(0.0, 0.02))
            child.kill()
        finally:
            if child.proc.poll() is None:
                child.kill()
        lines = child.all_lines()
        assert child.proc.returncode in (0, -signal.SIGKILL), (
            f"the child failed on its own (exit {child.proc.returncode}, seed {seed})")
        done = "done" in lines
        kills += 0 if done else 1
        committed = [int(x.split()[1]) for x in lines if x.startswith("committed")]
        acknowledged = max([acknowledged, *committed])

        with ChainStore.open(data_dir, chain.genesis) as store:
            height = store.height
            assert height >= acknowledged, f"acknowledged block lost (seed {seed})"
            if height:
                assert store.get_block(height) == blocks[height - 1]
                assert store.get_certificate(height) == b"cert %d" % height
            checkpoint = store.get_checkpoint()
            if acknowledged:
                assert int(checkpoint.split()[1]) >= acknowledged
            replay.check(store)

    elapsed = time.monotonic() - start
    print(f"{kills} kills ({early} while opening), {spawns} children, {elapsed:.1f} s")
    # Every block is in; `acknowledged` may end below BLOCKS: a child can be killed after a
    # commit and before saying so (the tip >= acknowledged check after each kill covers it).
    assert replay.state.height == BLOCKS
    assert kills >= MIN_KILLS, f"only {kills} kills (seed {seed})"
