"""Chain store costs: commit throughput against raw LevelDB writes, disk use, memory.

1. Commit. Blocks of 1,000 transfers (distinct senders among 10,000 funded accounts) are built
   with `build_block` over the store's state and committed with `ChainStore.commit` (the
   checks, the block record, each transaction under its id, the state changes, the tip: one
   WriteBatch). The same keys and
   values (recorded from `write_block` outside the timing) go into a second database through
   a plain plyvel WriteBatch. Both with fsync (the store's default) and both without, in
   alternating order per block so that machine noise hits all alike. As `timeit` does, the
   cyclic garbage collector is off during the timed calls (a collection runs between blocks):
   the store allocates a few thousand objects per block and the raw writes none, so otherwise
   whichever commit happens to trigger a full collection of this benchmark's large heap pays
   for all of it.
   RESULT store_commit_ratio = store throughput / raw throughput (median per block, fsync).
2. Disk. Growth of the store's data directory per 1,000 such blocks, once compacted (LevelDB
   compresses with snappy; signatures and hashes do not compress).
3. Memory. Resident memory of a fresh process that opens a store (with the full state
   check), then its peaks while it walks every block with `iter_blocks`, for chains of
   1,000, 10,000 and 30,000 blocks (1,000 and 3,000 with --quick). Anonymous memory (the
   heap) is reported apart from file-backed pages: LevelDB reads its tables through mmap,
   so a walk maps up to the whole data directory as clean page cache that the kernel
   reclaims under pressure. Opening costs the same whatever the length; a walk fills the
   block cache (8 MiB) and no more. Building 10,000 blocks of 1,000 signed transfers would
   take hours here, so these chains have small blocks (5 transfers among 100 accounts, built
   with `build_block`, committed without fsync); the state is the same size in all, so any
   growth would come from chain length. Each measured directory is compacted first (see
   `settle`).

    python bench/store.py [--quick]
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import plyvel  # noqa: E402

from wekacoin.chain.blocks import build_block  # noqa: E402
from wekacoin.chain.genesis import genesis_state, genesis_to_json, parse_genesis  # noqa: E402
from wekacoin.chain.transactions import sign_tx, verify_tx  # noqa: E402
from wekacoin.store import ChainStore  # noqa: E402
from wekacoin.store.chainstore import LEVELDB_OPTIONS  # noqa: E402
from wekacoin.store.writes import write_block, write_genesis  # noqa: E402
from wekacoin.testing.chain import LocalChain  # noqa: E402
from wekacoin.types.block import BlockMeta  # noqa: E402
from wekacoin.types.tx import Transfer  # noqa: E402
from wekacoin.waiting import WaitTimeout, wait_until  # noqa: E402

META = BlockMeta(seed_proof=None, rankings=())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer blocks (under a minute)")
    parser.add_argument("--rss-of", nargs=2, metavar=("DIR", "GENESIS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rss_of:
        return measure_rss(*args.rss_of)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        bench_commit(Path(tmp), blocks=8 if args.quick else 40, txs=1000, accounts=10_000)
        bench_memory(Path(tmp), (1_000, 3_000) if args.quick else (1_000, 10_000, 30_000))
    print(f"total time: {time.perf_counter() - started:.0f} s")


# -- 1 and 2: commit throughput and disk use --


def bench_commit(tmp: Path, blocks: int, txs: int, accounts: int) -> None:
    chain = LocalChain(n_keys=accounts, validators=4)
    genesis_hash = chain.genesis.hash
    stores = {sync: ChainStore.open(tmp / f"store-{sync}", chain.genesis, sync_commits=sync)
              for sync in (True, False)}
    raws = {sync: plyvel.DB(str(tmp / f"raw-{sync}"), create_if_missing=True, **LEVELDB_OPTIONS)
            for sync in (True, False)}
    for sync, raw in raws.items():  # the same starting content
        write_raw(raw, record(write_genesis, stores[sync].stored_meta(),
                              genesis_state(chain.genesis)), sync=True)
    genesis_size = dir_size(tmp / "store-True")
    times: dict[str, list[float]] = {f"{kind}-{sync}": [] for kind in ("store", "raw")
                                     for sync in (True, False)}
    rng = random.Random(7)
    written = 0
    for height in range(1, blocks + 1):
        first = (height - 1) * txs % accounts
        state = stores[True].state()
        vtxs = []
        for i in range(txs):
            key = chain.keys[(first + i) % accounts]
            tx = sign_tx(key, genesis_hash, state.get_account(key.address).nonce, 1,
                         Transfer(chain.keys[rng.randrange(accounts)].address, 10))
            vtxs.append(verify_tx(tx, genesis_hash))
        order = [True, False] if height % 2 else [False, True]
        for sync in order:
            store = stores[sync]
            block, new = build_block(
                store.state(), vtxs=vtxs, seed=chain.seed_for(height),
                proposer=chain.keys[0].public_key, meta=META, time_ms=height,
            )
            writes = record(write_block, store.stored_tip(), block, new, b"")
            pair = [("store", functools.partial(store.commit, block, new)),
                    ("raw", functools.partial(write_raw, raws[sync], writes, sync=sync))]
            for kind, run in pair if height % 2 else pair[::-1]:
                gc.collect()
                gc.disable()
                t0 = time.perf_counter()
                run()
                times[f"{kind}-{sync}"].append(time.perf_counter() - t0)
                gc.enable()
        written += sum(len(k) + len(v or b"") for k, v in writes)
    for store in stores.values():
        store.close()
    for raw in raws.values():
        raw.close()

    print(f"commit: {blocks} blocks of {txs} transfers, {accounts} accounts, "
          f"{written / blocks / 1e3:.0f} kB of keys and values per block")
    for key, values in times.items():
        q = statistics.quantiles(values, n=4)
        print(f"  {key:11} quartiles (ms): " + " ".join(f"{x * 1e3:.2f}" for x in q))
    for sync in (True, False):
        s, r = (statistics.median(times[f"{k}-{sync}"]) for k in ("store", "raw"))
        total = sum(times[f"raw-{sync}"]) / sum(times[f"store-{sync}"])
        label = "fsync" if sync else "no fsync"
        print(f"  {label:8}: store {s * 1e3:6.2f} ms/block ({txs / s:8.0f} tx/s), raw plyvel "
              f"{r * 1e3:6.2f} ms/block; ratio {r / s:.3f} (medians), {total:.3f} (totals)")
    settle(tmp / "store-True")  # the log's contents into compacted tables
    size = dir_size(tmp / "store-True")
    per_1000 = (size - genesis_size) / blocks * 1000
    print(f"disk: {size / 1e6:.1f} MB after {blocks} blocks ({genesis_size / 1e6:.1f} MB at "
          f"genesis): {per_1000 / 1e9:.2f} GB per 1,000 blocks of {txs} transfers")
    s, r = (statistics.median(times[f"{k}-True"]) for k in ("store", "raw"))
    print(f"RESULT store_commit_ratio {r / s:.3f}")


Writes = list[tuple[bytes, bytes | None]]


def record(writer, *args) -> Writes:
    """The (key, value) pairs `writer` puts in its batch, in order (None: a delete)."""
    writes: Writes = []

    class Recorder:
        def put(self, key: bytes, value: bytes) -> None:
            writes.append((key, value))

        def delete(self, key: bytes) -> None:
            writes.append((key, None))

    writer(Recorder(), *args)
    return writes


def write_raw(db: plyvel.DB, writes: Writes, *, sync: bool) -> None:
    """The same batch on a bare database, taking keys and values from a list."""
    batch = db.write_batch(sync=sync)
    for key, value in writes:
        if value is None:
            batch.delete(key)
        else:
            batch.put(key, value)
    batch.write()


def dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# -- 3: memory against chain length --


def bench_memory(tmp: Path, lengths: tuple[int, ...]) -> None:
    chain = LocalChain(n_keys=100, validators=4)
    genesis_file = tmp / "genesis.json"
    genesis_file.write_text(genesis_to_json(chain.genesis))
    path = tmp / "long"
    t0 = time.perf_counter()
    copies = {}
    with ChainStore.open(path, chain.genesis, sync_commits=False) as store:
        for length in lengths:
            extend(store, chain, length)
            store.close()  # copy a closed directory, then go on
            copies[length] = tmp / f"len-{length}"
            shutil.copytree(path, copies[length])
            settle(copies[length])
            store = ChainStore.open(path, chain.genesis, sync_commits=False)
    print(f"memory: built {max(lengths)} blocks of 5 transfers in "
          f"{time.perf_counter() - t0:.0f} s")
    baseline = rss_of_child(None, genesis_file)["open"]
    print(f"  a process that imports the store and opens nothing: RSS {mib(baseline['VmRSS'])} "
          f"(anonymous {mib(baseline['RssAnon'])}); LevelDB block cache "
          f"{mib(LEVELDB_OPTIONS['lru_cache_size'] // 1024)}")
    for copy in copies.values():
        m = rss_of_child(copy, genesis_file)
        opened = m["open"]
        print(f"  {m['blocks']:6d} blocks ({dir_size(copy) / 1e6:5.1f} MB on disk): after open "
              f"RSS {mib(opened['VmRSS'])} (anonymous {mib(opened['RssAnon'])}); walking every "
              f"block: anonymous peak {mib(m['peak_anon'])} (LevelDB's cache and memtable "
              f"{mib(m['leveldb'] // 1024)}), file-backed (mmap) peak {mib(m['peak_file'])}, "
              f"RSS peak {mib(m['peak'])}")


def mib(kb: int) -> str:
    return f"{kb / 1024:.1f} MiB"


def settle(path: Path) -> None:
    """Let LevelDB finish its maintenance before a measurement: flush the log into tables,
    compact, and wait for the size-triggered compactions that follow (they run in a
    background thread). Otherwise the measured process replays the log and compacts while
    it walks: a one-off ~15-30 MiB arena here, bounded by LevelDB's compaction sizes (at
    most ~25 tables of 2 MiB per compaction), not by the chain's length."""
    db = plyvel.DB(str(path / "leveldb"), **LEVELDB_OPTIONS)
    db.compact_range(start=b"", stop=b"\xff")  # no arguments compacts the empty range
    last: list[bytes | None] = [None]

    def unchanged() -> bool:  # the same stats twice in a row, 0.5 s apart
        stats = db.get_property(b"leveldb.stats")
        same, last[0] = stats == last[0], stats
        return same

    try:
        wait_until(unchanged, timeout=30, interval=0.5, what="LevelDB compactions to finish")
    except WaitTimeout:
        pass  # measure anyway, as before: a compaction still running only adds noise
    db.close()


def extend(store: ChainStore, chain: LocalChain, height: int) -> None:
    genesis_hash = chain.genesis.hash
    keys = chain.keys
    while store.height < height:
        h = store.height + 1
        state = store.state()
        vtxs = []
        for j in range(5):
            key = keys[(h * 5 + j) % len(keys)]
            tx = sign_tx(key, genesis_hash, state.get_account(key.address).nonce, 1,
                         Transfer(keys[(h + j) % len(keys)].address, 1))
            vtxs.append(verify_tx(tx, genesis_hash))
        block, new = build_block(state, vtxs=vtxs, seed=chain.seed_for(h),
                                 proposer=keys[0].public_key, meta=META, time_ms=h)
        store.commit(block, new)


def rss_of_child(path: Path | None, genesis_file: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--rss-of", str(path or ""), str(genesis_file)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def measure_rss(path: str, genesis_file: str) -> None:
    """In a fresh process: open the store, walk all its blocks, report resident memory:
    anonymous (the heap: Python objects, LevelDB's cache) apart from file-backed (LevelDB
    reads table files through mmap: clean page cache the kernel reclaims at will)."""
    genesis = parse_genesis(Path(genesis_file).read_text())
    result = {"blocks": 0, "open": memory_kb()}
    peak_anon = peak_file = 0
    if path:
        store = ChainStore.open(path, genesis)
        result["open"] = memory_kb()
        for result["blocks"], _ in enumerate(store.iter_blocks(1), start=1):
            if result["blocks"] % 100 == 0:
                now = memory_kb()
                peak_anon = max(peak_anon, now["RssAnon"])
                peak_file = max(peak_file, now["RssFile"])
        result["leveldb"] = store.memory_usage()
        store.close()
    now = memory_kb()
    result["peak_anon"] = max(peak_anon, now["RssAnon"])
    result["peak_file"] = max(peak_file, now["RssFile"])
    result["peak"] = now["VmHWM"]
    print(json.dumps(result))


def memory_kb() -> dict[str, int]:
    """VmRSS, RssAnon, RssFile and VmHWM (peak) of this process, in kB. Not getrusage's
    ru_maxrss: after fork + exec it keeps the peak of the forked copy of the parent."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


if __name__ == "__main__":
    main()
