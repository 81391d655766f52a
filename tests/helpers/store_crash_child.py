"""Child process of the crash test: commits the given blocks to a store until killed.

    python tests/helpers/store_crash_child.py <data dir> <genesis.json> <blocks.cbor>

Opens the store (printing `open <height>`), then for each block above the tip: applies it
on the store's state, commits it with a certificate, writes a checkpoint, and prints
`committed <height>` only once both returned, so every printed height is acknowledged.
Prints `done` after the last block.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import cbor2  # noqa: E402

from wekacoin.chain.blocks import apply_block  # noqa: E402
from wekacoin.chain.genesis import parse_genesis  # noqa: E402
from wekacoin.store import ChainStore  # noqa: E402
from wekacoin.types.block import Block  # noqa: E402
from wekacoin.types.codec import decode  # noqa: E402


def main(data_dir: str, genesis_file: str, blocks_file: str) -> None:
    genesis = parse_genesis(Path(genesis_file).read_text())
    encoded = cbor2.loads(Path(blocks_file).read_bytes())
    store = ChainStore.open(data_dir, genesis)
    print(f"open {store.height}", flush=True)
    for data in encoded[store.height:]:
        block = decode(Block, data)
        store.commit(block, apply_block(store.state(), block), b"cert %d" % block.height)
        store.put_checkpoint(b"after %d" % block.height)
        print(f"committed {block.height}", flush=True)
    store.close()
    print("done", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:4])
