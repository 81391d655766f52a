"""Storage proofs (`wekacoin.content.proof`): proofs made by js-ipfs's importer and decoders (an
independent implementation, tests/helpers/unixfs_dag.js) pass; ours are byte-identical to
them; every mutation of them fails with `StorageProofError` and nothing else.

The shapes: one leaf (short, and exactly one chunk), one full node of 174 leaves, and 175
leaves (a root over a full node and a node holding one short leaf), each under CIDv0 and
CIDv1. Each file is its own random bytes, so no two files share a leaf.
"""

import base64
import hashlib
import json
import os
import random
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wekacoin.content.cid import CHUNK_SIZE, MAX_LINKS, Cid, compute_cid, parse_cid
from wekacoin.content.errors import StorageProofError
from wekacoin.content.proof import (
    MAX_FILE_SIZE,
    MAX_NODE_SIZE,
    LeafPath,
    build_leaf_proof,
    build_leaf_proof_from_blocks,
    clear_path_node_cache,
    leaf_count,
    verify_leaf_proof,
)
from wekacoin.content.unixfs import (
    MAX_UINT64,
    decode_file_node,
    encode_file_node,
    encode_leaf_envelope,
)

REPO = Path(__file__).resolve().parents[2]
NODE_MODULES = REPO / ".ci" / "npm" / "node_modules"
HELPER = Path(__file__).parents[1] / "helpers" / "unixfs_dag.js"
NPM_PACKAGES = ("ipfs-unixfs-importer", "ipld-dag-pb", "ipfs-unixfs")
K = CHUNK_SIZE
_HUGE = 10**5000  # `str()` of it raises ValueError: a message must not try

FILE_SIZES = {
    "short": 1000,
    "one-chunk": K,
    "full-node": MAX_LINKS * K,  # 174 leaves under one node
    "two-levels": MAX_LINKS * K + 1000,  # 175 leaves: the last one short, alone in its node
}


def _data(name: str) -> bytes:
    return random.Random(f"storage proof {name}").randbytes(FILE_SIZES[name])


def _indices(size: int) -> list[int]:
    """The challenged leaves: first, a middle one and the last."""
    return sorted({0, leaf_count(size) // 2, leaf_count(size) - 1})


@dataclass(frozen=True)
class Case:
    """One file under one CID version, as the JS importer made it."""

    name: str
    version: int
    data: bytes = field(repr=False)  # (46 MB in a failure report would take a minute)
    cid: str
    proofs: dict[int, LeafPath] = field(repr=False)  # leaf index -> the JS proof

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class JsDags:
    cases: dict[tuple[str, int], Case]
    block_dir: Path

    def get_block(self, cid: bytes) -> bytes:
        return (self.block_dir / cid.hex()).read_bytes()


CASE_IDS = [(name, version) for name in FILE_SIZES for version in (0, 1)]
CASE_NAMES = [f"{name}-v{version}" for name, version in CASE_IDS]


@pytest.fixture(scope="module")
def js(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JsDags]:
    """Every file imported by js-ipfs in one node process, with its blocks and the JS proofs.

    Skips when node or the npm packages are missing, except under CI (env CI set), where a
    silently skipped cross-check would hide a broken prover or checker: there it fails.
    """
    node = shutil.which("node")
    missing = [] if node else ["`node` is not on PATH"]
    missing += [f"{NODE_MODULES / p} is missing" for p in NPM_PACKAGES
                if not (NODE_MODULES / p).is_dir()]
    if missing:
        reason = (
            "cross-check against js-ipfs unavailable: " + "; ".join(missing)
            + " (install with `npm install --prefix .ci/npm ipfs-only-hash`)"
        )
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    assert node is not None
    workdir = tmp_path_factory.mktemp("unixfs_dag")
    block_dir = workdir / "blocks"
    block_dir.mkdir()
    args: list[str] = []
    data = {}
    for name, size in FILE_SIZES.items():
        data[name] = _data(name)
        (workdir / name).write_bytes(data[name])
        args += [str(workdir / name), ",".join(map(str, _indices(size)))]
    env = {**os.environ, "NODE_PATH": str(NODE_MODULES)}
    done = subprocess.run(
        [node, str(HELPER), str(block_dir), *args],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    cases = {}
    for line in done.stdout.splitlines():
        row = json.loads(line)
        name = Path(row["file"]).name
        proofs = {
            int(index): LeafPath(
                tuple(bytes.fromhex(block) for block in proof["nodes"]),
                base64.b64decode(proof["leaf"]),
            )
            for index, proof in row["proofs"].items()
        }
        cases[name, row["version"]] = Case(name, row["version"], data[name], row["root"], proofs)
    assert sorted(cases) == sorted(CASE_IDS)
    yield JsDags(cases, block_dir)
    shutil.rmtree(workdir)  # ~280 MB of inputs and blocks


def _refused(cid: object, size: object, index: object, nodes: object, leaf: object) -> bool:
    """True iff the proof is refused with StorageProofError; any other error propagates."""
    try:
        verify_leaf_proof(cid, size, index, nodes, leaf)  # type: ignore[arg-type]
    except StorageProofError:
        return True
    return False


def _accepted_among(variants: Sequence[tuple[object, object, object, object, object]]) -> list[int]:
    """The positions of the variants that were accepted (should be none)."""
    return [i for i, variant in enumerate(variants) if not _refused(*variant)]


# --- the layout ------------------------------------------------------------------------------


def test_leaf_count() -> None:
    assert [leaf_count(n) for n in (0, 1, K - 1, K, K + 1, MAX_LINKS * K + 1)] == [
        1, 1, 1, 1, 2, MAX_LINKS + 1
    ]
    with pytest.raises(ValueError):
        leaf_count(-1)


def test_max_node_size_bounds_the_longest_node() -> None:
    # 174 CIDv1 links, each Tsize and blocksize a 10-byte varint, filesize at the uint64 limit
    big = 2**63
    longest = encode_file_node(
        [(b"\x01\x70\x12\x20" + bytes(32), MAX_UINT64)] * MAX_LINKS,
        [big] + [(MAX_UINT64 - big) // (MAX_LINKS - 1)] * (MAX_LINKS - 1),
    )
    decode_file_node(longest)
    assert len(longest) <= MAX_NODE_SIZE == 11_152


# --- JS proofs pass, and ours are the same bytes ---------------------------------------------


@pytest.mark.parametrize("case_id", CASE_IDS, ids=CASE_NAMES)
def test_js_proofs_verify(js: JsDags, case_id: tuple[str, int]) -> None:
    case = js.cases[case_id]
    assert case.cid == compute_cid(case.data, case.version)
    assert case.cid.startswith(
        {0: "Qm", 1: "bafkrei" if case.size <= K else "bafybei"}[case.version]
    )
    assert sorted(case.proofs) == _indices(case.size)
    for index, proof in case.proofs.items():
        verify_leaf_proof(case.cid, case.size, index, proof.nodes, proof.leaf)
        verify_leaf_proof(parse_cid(case.cid), case.size, index, list(proof.nodes), proof.leaf)
        assert proof.leaf == case.data[index * K : (index + 1) * K]


@pytest.mark.parametrize("case_id", CASE_IDS, ids=CASE_NAMES)
def test_build_leaf_proof_matches_js(js: JsDags, case_id: tuple[str, int]) -> None:
    case = js.cases[case_id]
    for index, proof in case.proofs.items():
        assert build_leaf_proof(case.data, case.version, index) == proof


@pytest.mark.parametrize("case_id", CASE_IDS, ids=CASE_NAMES)
def test_build_from_blocks_matches_js(js: JsDags, case_id: tuple[str, int]) -> None:
    case = js.cases[case_id]
    for index, proof in case.proofs.items():
        assert build_leaf_proof_from_blocks(js.get_block, case.cid, case.size, index) == proof


def test_build_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError):
        build_leaf_proof(b"x", 2, 0)
    for index in (-1, 1):
        with pytest.raises(ValueError):
            build_leaf_proof(b"x", 1, index)
        with pytest.raises(ValueError):
            build_leaf_proof_from_blocks(lambda cid: b"x", compute_cid(b"x"), 1, index)
    with pytest.raises(StorageProofError):
        build_leaf_proof_from_blocks(lambda cid: b"x", "not a cid", 1, 0)


def test_build_from_blocks_refuses_a_lying_store(js: JsDags) -> None:
    case = js.cases["two-levels", 0]
    leaf_1 = case.cid, case.size, 1
    honest = js.get_block
    # the leaf block of leaf 0 where leaf 1 is asked for
    first_leaf_cid = decode_file_node(case.proofs[0].nodes[1]).links[0][0]

    def swapped(cid: bytes) -> bytes:
        block = honest(cid)
        return honest(first_leaf_cid) if block.startswith(b"\x0a") else block

    def flipped(cid: bytes) -> bytes:
        block = bytearray(honest(cid))
        block[-1] ^= 1
        return bytes(block)

    stores: list[Callable[[bytes], object]] = [
        swapped, flipped, lambda cid: b"", lambda cid: "text", lambda cid: None,
        lambda cid: case.proofs[0].nodes[0],  # the root wherever asked: a cycle
    ]
    for store in stores:
        with pytest.raises(StorageProofError):
            build_leaf_proof_from_blocks(store, *leaf_1)  # type: ignore[arg-type]

    def missing(cid: bytes) -> bytes:
        raise KeyError(cid)

    with pytest.raises(KeyError):  # the store's own errors pass through
        build_leaf_proof_from_blocks(missing, *leaf_1)


# --- mutations: each is refused with StorageProofError ---------------------------------------


@pytest.mark.parametrize("case_id", CASE_IDS, ids=CASE_NAMES)
def test_every_path_byte_mutation_is_refused(js: JsDags, case_id: tuple[str, int]) -> None:
    case = js.cases[case_id]
    cid = parse_cid(case.cid)  # parsed once: this loop runs ~20 000 times per case
    rng = random.Random(1)
    seen = set()  # leaves under one node share its path: mutate each path prefix once
    for index, proof in case.proofs.items():
        for level, block in enumerate(proof.nodes):
            if proof.nodes[: level + 1] in seen:
                continue
            seen.add(proof.nodes[: level + 1])
            for pos in range(len(block)):
                for new in (block[pos] ^ 0x01, (block[pos] + rng.randrange(1, 256)) % 256):
                    mutated = block[:pos] + bytes((new,)) + block[pos + 1 :]
                    nodes = proof.nodes[:level] + (mutated,) + proof.nodes[level + 1 :]
                    assert _refused(cid, case.size, index, nodes, proof.leaf), (index, level, pos)


@pytest.mark.parametrize("case_id", CASE_IDS, ids=CASE_NAMES)
def test_leaf_byte_mutations_are_refused(js: JsDags, case_id: tuple[str, int]) -> None:
    case = js.cases[case_id]
    cid = parse_cid(case.cid)
    rng = random.Random(2)
    for index, proof in case.proofs.items():
        leaf = proof.leaf
        if len(leaf) < K:
            positions = list(range(len(leaf)))
        else:  # hashing 256 KiB per mutation: a sample
            positions = [0, len(leaf) - 1] + rng.sample(range(1, len(leaf) - 1), 64)
        for pos in positions:
            for new in (leaf[pos] ^ 0x01, (leaf[pos] + rng.randrange(1, 256)) % 256):
                mutated = leaf[:pos] + bytes((new,)) + leaf[pos + 1 :]
                assert _refused(cid, case.size, index, proof.nodes, mutated), (index, pos)


@pytest.mark.parametrize("case_id", CASE_IDS, ids=CASE_NAMES)
def test_wrong_index_is_refused(js: JsDags, case_id: tuple[str, int]) -> None:
    case = js.cases[case_id]
    last = leaf_count(case.size) - 1
    for index, proof in case.proofs.items():
        others = {index - 1, index + 1, 0, last, last + 1, -1, 2**64} - {index}
        for other in sorted(others):
            assert _refused(case.cid, case.size, other, proof.nodes, proof.leaf), (index, other)


@pytest.mark.parametrize("case_id", CASE_IDS, ids=CASE_NAMES)
def test_a_cached_path_node_changes_no_verdict(js: JsDags, case_id: tuple[str, int]) -> None:
    """Decoded path nodes are cached by their digest: every check that depends on the proof
    (the index, the size, the link followed, the leaf) still runs on a cached node."""
    case = js.cases[case_id]
    last = leaf_count(case.size) - 1
    variants: list[tuple[object, object, object, object, object]] = []
    for index, proof in case.proofs.items():
        variants.append((case.cid, case.size, index, proof.nodes, proof.leaf))
        for other in sorted({index - 1, index + 1, 0, last} - {index}):
            variants.append((case.cid, case.size, other, proof.nodes, proof.leaf))
        variants.append((case.cid, case.size + K, index, proof.nodes, proof.leaf))
    cold = []
    for variant in variants:
        clear_path_node_cache()
        cold.append(_refused(*variant))
    warm = [_refused(*variant) for variant in variants]  # every node decoded once already
    assert cold == warm
    assert not cold[0] and any(cold)


@pytest.mark.parametrize("case_id", CASE_IDS, ids=CASE_NAMES)
def test_leaf_or_path_of_another_file_is_refused(js: JsDags, case_id: tuple[str, int]) -> None:
    case = js.cases[case_id]
    foreign = [c for c in js.cases.values() if c.name != case.name]
    foreign_leaves = [p.leaf for c in foreign for p in c.proofs.values()]
    # whole foreign paths, and every window of them as long as ours: among these, the first
    # node under the two-level root has exactly the shape of the full-node file's root
    foreign_paths = {p.nodes for c in foreign for p in c.proofs.values()}
    for nodes in list(foreign_paths):
        foreign_paths |= {nodes[i : i + d] for d in (1, 2) for i in range(len(nodes) - d + 1)}
    for index, proof in case.proofs.items():
        for leaf in foreign_leaves:
            assert _refused(case.cid, case.size, index, proof.nodes, leaf)
        for nodes in foreign_paths - {proof.nodes}:  # a one-leaf file's path is empty too
            assert _refused(case.cid, case.size, index, nodes, proof.leaf), [n[:8] for n in nodes]
            assert _refused(case.cid, case.size, index, nodes, b"")


@pytest.mark.parametrize("case_id", CASE_IDS, ids=CASE_NAMES)
def test_wrong_path_length_or_leaf_length_is_refused(
    js: JsDags, case_id: tuple[str, int]
) -> None:
    case = js.cases[case_id]
    for index, proof in case.proofs.items():
        nodes, leaf = proof.nodes, proof.leaf
        paths = [nodes[1:], nodes[:-1], (), nodes + nodes[-1:], nodes[:1] + nodes, nodes * 2]
        paths += [nodes + (leaf,)] if len(leaf) <= MAX_NODE_SIZE else []
        leaves = [leaf[:-1], leaf[1:], leaf + b"\x00", b"\x00" + leaf, b""] if leaf else [b"\0"]
        variants = [(case.cid, case.size, index, p, leaf) for p in paths if p != nodes]
        variants += [(case.cid, case.size, index, nodes, bad) for bad in leaves]
        assert _accepted_among(variants) == []


@pytest.mark.parametrize("case_id", CASE_IDS, ids=CASE_NAMES)
def test_wrong_size_or_cid_is_refused(js: JsDags, case_id: tuple[str, int]) -> None:
    case = js.cases[case_id]
    other_version = js.cases[case.name, 1 - case.version].cid
    other_files = [c.cid for c in js.cases.values() if c.name != case.name]
    sizes = {case.size - 1, case.size + 1, *FILE_SIZES.values(), 0, MAX_FILE_SIZE} - {case.size}
    for index, proof in case.proofs.items():
        variants = [(case.cid, size, index, proof.nodes, proof.leaf) for size in sorted(sizes)]
        variants += [(cid, case.size, index, proof.nodes, proof.leaf) for cid in other_files]
        if proof.nodes:  # the links name CIDs of the version
            variants.append((other_version, case.size, index, proof.nodes, proof.leaf))
        else:  # one leaf: no path, and the same file bytes prove the file under either CID
            verify_leaf_proof(other_version, case.size, index, proof.nodes, proof.leaf)
        assert _accepted_among(variants) == []


# --- the order of the checks -----------------------------------------------------------------


class _NoHashing:
    @staticmethod
    def sha256(*args: object) -> object:
        raise AssertionError("hashed before the cheap checks refused the proof")


def test_cheap_checks_come_before_any_hashing(
    js: JsDags, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = js.cases["two-levels", 1]
    proof = case.proofs[0]
    monkeypatch.setattr("wekacoin.content.proof.hashlib", _NoHashing)
    variants: list[tuple[object, object, object, object, object]] = [
        (case.cid, case.size, 0, proof.nodes[:1], proof.leaf),  # too few nodes
        (case.cid, case.size, 0, (proof.nodes[0], bytes(MAX_NODE_SIZE + 1)), proof.leaf),
        (case.cid, case.size, 0, proof.nodes, proof.leaf + b"\x00"),  # leaf too long
        (case.cid, case.size, 0, proof.nodes, proof.leaf[:-1]),
        (case.cid, case.size, leaf_count(case.size), proof.nodes, proof.leaf),
        (case.cid, MAX_FILE_SIZE + 1, 0, proof.nodes, proof.leaf),
        (js.cases["short", 1].cid, case.size, 0, proof.nodes, proof.leaf),  # raw CID, 175 leaves
    ]
    assert _accepted_among(variants) == []


@pytest.mark.parametrize(
    "size,index",
    [(_HUGE, 0), (-_HUGE, 0), (1000, _HUGE), (1000, -_HUGE), (True, 0), (1.0, 0), (0, False)],
    ids=["huge-size", "huge-negative-size", "huge-index", "huge-negative-index", "bool-size",
         "float-size", "bool-index"],
)
def test_absurd_numbers_are_refused(size: object, index: object) -> None:
    with pytest.raises(StorageProofError):
        verify_leaf_proof(compute_cid(b""), size, index, [], b"")  # type: ignore[arg-type]


def test_errors_say_what_and_where(js: JsDags) -> None:
    case = js.cases["two-levels", 0]
    nodes, leaf = case.proofs[0].nodes, case.proofs[0].leaf
    bad_node = nodes[1][:-1] + bytes((nodes[1][-1] ^ 1,))
    with pytest.raises(StorageProofError, match="path node 1 .*link in path node 0"):
        verify_leaf_proof(case.cid, case.size, 0, (nodes[0], bad_node), leaf)
    with pytest.raises(StorageProofError, match="2 blocks, not 1"):
        verify_leaf_proof(case.cid, case.size, 0, nodes[:1], leaf)
    with pytest.raises(StorageProofError, match="leaf 0 does not hash"):
        verify_leaf_proof(case.cid, case.size, 0, nodes, bytes(K))
    with pytest.raises(StorageProofError, match="not a CID"):
        verify_leaf_proof("Qm", case.size, 0, nodes, leaf)


# --- the strict decoder ----------------------------------------------------------------------


def _node() -> bytes:
    """Two links of 42 bytes each (tag, length 40, Hash, empty Name, Tsize), then Data."""
    return encode_file_node([(b"\x12\x20" + bytes(32), 30), (b"\x12\x20" + b"\1" * 32, 5)], [2, 3])


_LINKS_END = 2 * 42
assert _node()[_LINKS_END] == 0x0A  # the Data field's tag


def _named_link() -> bytes:
    """A one-link node whose link has the Name "x" (with the lengths fixed up)."""
    node = encode_file_node([(b"\x12\x20" + bytes(32), 5)], [5])
    assert node.startswith(b"\x12\x28\x0a\x22") and node[38:41] == b"\x12\x00\x18"
    return b"\x12\x29" + node[2:38] + b"\x12\x01x" + node[40:]


@pytest.mark.parametrize(
    "block",
    [
        b"",
        b"\x0a",  # truncated Data
        b"\x0a\x05\x08\x02",  # Data runs past the end
        b"\x0a\x02\x08\x00",  # UnixFS type Raw
        b"\x0a\x02\x08\x01",  # UnixFS type Directory
        b"\x0a\x04\x08\x02\x18\x00" + b"\x0a\x04\x08\x02\x18\x00",  # Data twice
        b"\x0a\x05\x08\x02\x18\x80\x00",  # non-minimal varint
        b"\x0a\x0e\x08\x02\x18" + b"\xff" * 10 + b"\x01",  # varint of 11 bytes
        b"\x0a\x0d\x08\x02\x18" + b"\xff" * 9 + b"\x02",  # 10 bytes, past 2**64 - 1
        b"\x0a\x04\x08\x02\x18\x00\x1a\x00",  # PBNode field 3
        b"\x0a\x04\x08\x02\x18\x00\x0d\x00\x00\x00\x00",  # a fixed32 field
        b"\x0a\x06\x08\x02\x18\x00\x28\x00",  # UnixFS field 5 (hashType)
        b"\x0a\x06\x08\x02\x18\x00\x20\x00",  # a leaf with a blocksize
        b"\x0a\x06\x08\x02\x12\x00\x18\x00",  # an empty Data field written out
        b"\x0a\x04\x08\x02\x18\x01",  # a leaf's filesize that is not its length
        _node()[:-1],
        _node() + b"\x00",
        _named_link(),
        encode_file_node([(b"\x12\x20" + bytes(32), 5)] * 2, [3]),  # a blocksize short
        encode_file_node([(b"\x12\x20" + bytes(32), 5)], [1, 2]),  # one too many
        _node()[_LINKS_END:] + _node()[:_LINKS_END],  # Data before Links
    ],
)
def test_decoder_refuses_all_but_the_canonical_form(block: bytes) -> None:
    with pytest.raises(ValueError):
        decode_file_node(block)


def test_decoder_round_trips() -> None:
    node = decode_file_node(_node())
    assert node.links == ((b"\x12\x20" + bytes(32), 30), (b"\x12\x20" + b"\1" * 32, 5))
    assert (node.filesize, node.blocksizes, node.data) == (5, (2, 3), b"")
    leaf = decode_file_node(b"\x0a\x09\x08\x02\x12\x03abc\x18\x03")
    assert (leaf.links, leaf.filesize, leaf.data) == ((), 3, b"abc")


# --- anything else: only StorageProofError escapes -------------------------------------------


_JUNK = st.one_of(
    st.none(), st.booleans(), st.integers(), st.sampled_from([_HUGE, -_HUGE, 2**64]),
    st.floats(), st.text(max_size=20),
    st.binary(max_size=64), st.lists(st.binary(max_size=64), max_size=3),
)
_CIDS = st.one_of(
    st.sampled_from([
        compute_cid(b""), compute_cid(b"", 0), compute_cid(bytes(K + 1)),
        compute_cid(bytes(K + 1), 0), "Qm", "",
    ]),
    st.builds(Cid, st.integers(-1, 2), st.sampled_from(["raw", "dag-pb", "x"]), _JUNK),
    _JUNK,
)


@settings(max_examples=300, deadline=None)
@given(cid=_CIDS, size=st.one_of(st.integers(-5, 3 * K), _JUNK), index=st.one_of(
    st.integers(-2, 3), _JUNK), nodes=st.one_of(st.lists(st.binary(max_size=200), max_size=3),
    _JUNK), leaf=st.one_of(st.binary(max_size=300), _JUNK))
def test_random_arguments_raise_only_storage_proof_error(
    cid: object, size: object, index: object, nodes: object, leaf: object
) -> None:
    _refused(cid, size, index, nodes, leaf)  # (the empty file's proof is valid: () and b"")


_Proof = tuple[Cid, int, int, list[bytes], bytes]
_PREFIXES = {"v0": b"\x12\x20", "dag-pb": b"\x01\x70\x12\x20", "raw": b"\x01\x55\x12\x20"}
_MUTATIONS = ["blocksize", "drop blocksize", "drop link", "add link", "prefix", "tsize", "byte",
              "garbage"]


@st.composite
def _synthetic_proofs(draw: st.DrawFn) -> tuple[str | None, _Proof]:
    """A proof laid out like `ipfs add` (random leaf bytes, Tsizes and sibling links) whose
    hashes all agree, and, in most draws, one node changed (then rehashed up to the CID): so
    every check past the hashes runs on random input. Returns (the mutation or None, proof)."""
    version = draw(st.sampled_from([0, 1]))
    leaves = draw(st.one_of(st.integers(2, MAX_LINKS), st.integers(MAX_LINKS + 1, 3 * MAX_LINKS)))
    last = draw(st.integers(1, 64))  # the last leaf's length
    size = (leaves - 1) * K + last
    index = draw(st.sampled_from([0, leaves - 2, leaves - 1]))
    leaf = random.Random(draw(st.integers(0, 99))).randbytes(K if index < leaves - 1 else last)
    mutation = draw(st.sampled_from([None, *_MUTATIONS]))
    depth = 1 if leaves <= MAX_LINKS else 2
    at_level = draw(st.integers(0, depth - 1))

    if version == 1:
        link = _PREFIXES["raw"] + hashlib.sha256(leaf).digest()
    else:
        envelope_prefix, envelope_suffix = encode_leaf_envelope(len(leaf))
        link = _PREFIXES["v0"] + hashlib.sha256(envelope_prefix + leaf + envelope_suffix).digest()
    nodes: list[bytes] = []
    for level in reversed(range(depth)):
        height = depth - level
        span = MAX_LINKS ** (height - 1)  # leaves under each child
        first = index // (span * MAX_LINKS) * MAX_LINKS  # the node's first child, on its level
        children = range(first, min(first + MAX_LINKS, -(-leaves // span)))
        sizes = [min((c + 1) * span * K, size) - c * span * K for c in children]
        links = [
            (link if c == index // span else link[:-32] + random.Random(c).randbytes(32),
             draw(st.integers(0, 2**40)))
            for c in children
        ]
        if mutation is not None and level == at_level:
            links, sizes, block = _mutated(draw, mutation, links, sizes)
        else:
            block = encode_file_node(links, sizes)
        nodes.insert(0, block)
        prefix = _PREFIXES["v0" if version == 0 else "dag-pb"]
        link = prefix + hashlib.sha256(block).digest()
    return mutation, (Cid(version, "dag-pb", link[-32:]), size, index, nodes, leaf)


def _mutated(
    draw: st.DrawFn, mutation: str, links: list[tuple[bytes, int]], sizes: list[int]
) -> tuple[list[tuple[bytes, int]], list[int], bytes]:
    i = draw(st.integers(0, len(links) - 1))
    if mutation == "blocksize":
        sizes = sizes[:i] + [sizes[i] + draw(st.sampled_from([-1, 1, K]))] + sizes[i + 1 :]
    elif mutation == "drop blocksize":
        sizes = sizes[:i] + sizes[i + 1 :]
    elif mutation == "drop link":
        links, sizes = links[:i] + links[i + 1 :], sizes[:i] + sizes[i + 1 :]
    elif mutation == "add link":
        links, sizes = links[:i] + [links[i]] + links[i:], sizes[:i] + [K] + sizes[i:]
    elif mutation == "prefix":  # every link: the one followed too
        now = links[0][0][:-32]
        new = draw(st.sampled_from([p for p in _PREFIXES.values() if p != now] + [b"", now * 2]))
        links = [(new + cid[-32:], tsize) for cid, tsize in links]
    elif mutation == "tsize":
        links = links[:i] + [(links[i][0], draw(st.integers(0, 2**64 - 1)))] + links[i + 1 :]
    block = encode_file_node(links, sizes)
    if mutation == "byte":
        pos = draw(st.integers(0, len(block) - 1))
        block = block[:pos] + bytes((block[pos] ^ draw(st.integers(1, 255)),)) + block[pos + 1 :]
    elif mutation == "garbage":
        block = draw(st.binary(max_size=300))
    return links, sizes, block


@settings(max_examples=300, deadline=None)
@given(drawn=_synthetic_proofs())
def test_synthetic_proofs_pass_and_their_mutations_raise_only_storage_proof_error(
    drawn: tuple[str | None, _Proof],
) -> None:
    mutation, proof = drawn
    if mutation in (None, "tsize"):  # Tsize is bound by the hashes, but not checked
        verify_leaf_proof(*proof)
    elif mutation == "byte":  # (it may have hit a Tsize)
        _refused(*proof)
    else:
        assert _refused(*proof)
