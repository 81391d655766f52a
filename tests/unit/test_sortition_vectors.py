"""Sortition conformance vectors: the binomial walk at its knife edges, and full sortitions.

    python3 -m tests.unit.test_sortition_vectors > tests/vectors/sortition.json

regenerates the file; the tests check that this code still produces exactly the committed
values. Another implementation can run the same file: `binomial` gives (w, W, tau, x) -> j
with x the first 32 bytes of a VRF output, `sortition` gives a secret seed and the inputs of
one sortition, and the proof, output, j (and a proposer's priority) they produce.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest

from wekacoin.crypto import vrf
from wekacoin.crypto.keys import KeyPair
from wekacoin.sortition import (
    Role,
    compute_block_seed,
    compute_empty_seed,
    compute_priority,
    compute_subusers,
    select,
    sortition_alpha,
    verify,
)
from wekacoin.sortition.binomial import _walk

PATH = Path(__file__).parents[1] / "vectors" / "sortition.json"

BINOMIAL_CASES = [
    (1, 100, 10),
    (7, 1_000, 26),
    (100, 1_000_000, 2_000),
    (1_000_000, 4_000_000, 10_000),
    (500_000_000, 1_000_000_000, 26),
    (3, 10**12, 10_000),
    (2**40, 2**62, 2_000),
    (1_000, 1_000, 2_000),  # tau >= W: every sub-user is selected
    # 1/2 < p < 1: the reflected walk (its `<=` rule)
    (46, 47, 46),
    (60, 100, 70),
    (2_500, 10_004, 10_000),
    (10_000, 15_000, 10_000),
]


def _edges(w: int, total: int, tau: int) -> list[int]:
    rng = random.Random(f"{w}/{total}/{tau}")
    xs = [0, 2**256 - 1, 2**255] + [rng.getrandbits(256) for _ in range(3)]
    if 2 * tau <= total:
        walk = _walk(w, total, tau)
        compute_subusers(w, total, tau, (2**256 - 1).to_bytes(32, "big"))  # fill the table
        for b in walk.bounds[:3] + walk.bounds[len(walk.bounds) // 2:][:2]:
            xs += [b - 1, b]
    elif tau < total:  # reflected: x = TOP - y, with a boundary between y = b - 1 and y = b
        walk = _walk(w, total, total - tau, True)
        walk.last_bound()  # fill the table; its last boundary is where j leaves 0
        for b in walk.bounds[:3] + walk.bounds[len(walk.bounds) // 2:][:2] + walk.bounds[-1:]:
            xs += [2**256 - b, 2**256 - 1 - b]
    return sorted({x for x in xs if 0 <= x < 2**256})


def _key(i: int) -> KeyPair:
    return KeyPair.from_seed(hashlib.sha256(b"sortition-vector" + bytes([i])).digest())


SORTITION_CASES = [
    # key, role, round, period, step, weight, total, tau
    (0, Role.PROPOSER, 1, 0, 0, 1_000, 4_000, 26),
    (1, Role.PROPOSER, 7, 2, 0, 1, 1_000_000, 26),
    (2, Role.COMMITTEE, 5, 0, 1, 10_000, 1_000_000, 2_000),
    (3, Role.COMMITTEE, 5, 0, 4, 10_000, 1_000_000, 2_000),
    (4, Role.FINAL, 9, 1, 2**32 - 1, 250_000, 1_000_000, 10_000),
    (5, Role.EVALUATOR, 3, 0, 0, 100, 10_000, 20),
    (6, Role.COMMITTEE, 1, 0, 2, 5, 10**9, 2_000),
]
SEED = hashlib.sha256(b"sortition-vector-seed").digest()


def generate() -> dict:
    binomial = []
    for w, total, tau in BINOMIAL_CASES:
        for x in _edges(w, total, tau):
            j = compute_subusers(w, total, tau, x.to_bytes(32, "big") + bytes(32))
            binomial.append({"weight": w, "total": total, "tau": tau, "x": f"{x:064x}", "j": j})
    sortitions = []
    for i, role, rnd, period, step, w, total, tau in SORTITION_CASES:
        key = _key(i)
        alpha = sortition_alpha(SEED, role, rnd, period, step)
        proof = vrf.prove(key.seed, alpha)
        output = vrf.proof_to_hash(proof)
        j = compute_subusers(w, total, tau, output)
        entry = {
            "secret_seed": key.seed.hex(), "public_key": key.public_key.hex(),
            "seed": SEED.hex(), "role": int(role), "round": rnd, "period": period, "step": step,
            "weight": w, "total": total, "tau": tau, "alpha": alpha.hex(),
            "proof": proof.hex(), "output": output.hex(), "j": j,
        }
        if role is Role.PROPOSER and j:
            entry["priority"] = compute_priority(output, j).hex()
            entry["block_seed"] = compute_block_seed(output).hex()
        sortitions.append(entry)
    empty = {"prev_seed": SEED.hex(), "round": 12, "seed": compute_empty_seed(SEED, 12).hex()}
    return {
        "about": "WekaCoin sortition vectors; see tests/unit/test_sortition_vectors.py and "
                 "wekacoin/sortition/binomial.py for the rounding rule",
        "binomial": binomial, "sortition": sortitions, "empty_seed": empty,
    }


@pytest.fixture(scope="module")
def vectors():
    assert PATH.exists(), f"{PATH} is missing: regenerate it (see the module docstring)"
    return json.loads(PATH.read_text())


def test_binomial_vectors(vectors):
    assert len(vectors["binomial"]) > 50
    for v in vectors["binomial"]:
        x = bytes.fromhex(v["x"]) + bytes(32)
        assert compute_subusers(v["weight"], v["total"], v["tau"], x) == v["j"], v


def test_binomial_vectors_cover_knife_edges(vectors):
    """Consecutive x on either side of a boundary give different j."""
    by_case: dict[tuple, dict[int, int]] = {}
    for v in vectors["binomial"]:
        by_case.setdefault((v["weight"], v["total"], v["tau"]), {})[int(v["x"], 16)] = v["j"]
    edges = sum(1 for xs in by_case.values() for x, j in xs.items() if xs.get(x + 1, j) != j)
    assert edges >= 10


def test_sortition_vectors(vectors):
    for v in vectors["sortition"]:
        key = KeyPair.from_seed(bytes.fromhex(v["secret_seed"]))
        assert key.public_key.hex() == v["public_key"]
        alpha = sortition_alpha(bytes.fromhex(v["seed"]), Role(v["role"]), v["round"],
                                v["period"], v["step"])
        assert alpha.hex() == v["alpha"]
        assert vrf.prove(key.seed, alpha).hex() == v["proof"]
        args = (alpha, v["weight"], v["total"], v["tau"])
        mine, theirs = select(key, *args), verify(key.public_key, bytes.fromhex(v["proof"]), *args)
        if v["j"] == 0:
            assert mine is None and theirs is None
            continue
        assert mine == theirs
        ours = (mine.proof.hex(), mine.output.hex(), mine.subusers)
        assert ours == (v["proof"], v["output"], v["j"])
        if "priority" in v:
            assert compute_priority(mine.output, mine.subusers).hex() == v["priority"]
            assert compute_block_seed(mine.output).hex() == v["block_seed"]
    assert any(v["j"] == 0 for v in vectors["sortition"])
    assert any(v["j"] > 1 for v in vectors["sortition"])


def test_empty_seed_vector(vectors):
    e = vectors["empty_seed"]
    assert compute_empty_seed(bytes.fromhex(e["prev_seed"]), e["round"]).hex() == e["seed"]


def test_the_committed_file_is_what_this_code_generates(vectors):
    assert generate() == vectors


if __name__ == "__main__":
    print(json.dumps(generate(), indent=1))
