"""JSON mutations for the fuzzer's RPC target: a JSON-RPC request as a tree, one node changed
to a value of another type, a huge number (as text Python parses to an int of thousands of
digits, or to infinity), deep nesting, a long string, an unknown or missing key; then
sometimes a blind mutation of the text."""

from __future__ import annotations

import json
import random
from typing import Any

from wekacoin.testing.fuzz_mutate import (
    BYTE_LENGTHS,
    INTS,
    MAX_MUTATIONS,
    NESTING,
    STRINGS,
    Raw,
    get_at,
    mutate_bytes,
    random_path,
    set_at,
)


def random_json_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randrange(11)
    if kind == 0:
        return rng.choice(INTS + (10**30, -(10**30)))
    if kind == 1:
        return rng.choice(STRINGS)
    if kind == 2:
        return rng.choice((None, True, False))
    if kind == 3:
        return rng.choice((0.5, -0.0, 1e308, 2.0**64, 1e-320))
    if kind == 4:
        return Raw(rng.choice(("NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1" * 5_000,
                               "1" * 4_300, "-0", "1.0", "0.1e1", "1E+2", "123456789" * 10)))
    if kind == 5:
        return [] if depth > 2 else [random_json_value(rng, depth + 1)
                                     for _ in range(rng.randint(0, 3))]
    if kind == 6:
        return {} if depth > 2 else {rng.choice(STRINGS): random_json_value(rng, depth + 1)}
    if kind == 7:
        n = rng.choice(NESTING)
        return Raw("[" * n + "]" * n if rng.random() < 0.5 else '{"a":' * n + "1" + "}" * n)
    if kind == 8:
        return rng.choice(("x", "ab", "ff", "\u00ff", "0")) * rng.choice((100, 10_000, 100_000))
    if kind == 9:
        return rng.randbytes(rng.choice(BYTE_LENGTHS)).hex()
    return rng.randrange(-5, 100)


def json_dumps(value: Any) -> bytes:
    """JSON text of a tree whose `Raw` nodes hold text to splice in verbatim."""
    raws: list[str] = []

    def default(obj: Any) -> Any:
        if isinstance(obj, Raw):
            raws.append(obj.data)
            return f"\x00raw{len(raws) - 1}\x00"
        raise TypeError(f"{type(obj).__name__} is not JSON")

    text = json.dumps(value, default=default, separators=(",", ":"))
    for i, raw in enumerate(raws):
        text = text.replace(json.dumps(f"\x00raw{i}\x00"), raw, 1)
    return text.encode("utf-8", "surrogatepass")


def mutate_json_node(rng: random.Random, node: Any, donor: Any) -> Any:
    op = rng.randrange(8)
    if op == 0 and isinstance(node, dict):
        copy = dict(node)
        if copy and rng.random() < 0.5:
            del copy[rng.choice(list(copy))]
        else:
            copy[rng.choice(STRINGS + ("height", "hash", "full", "id", "address", "limit", "tx",
                                       "data", "pin", "cid", "task_id", "open_only", "params",
                                       "__class__", "self"))] = random_json_value(rng)
        return copy
    if op == 1 and isinstance(node, list):
        items = list(node)
        if items and rng.random() < 0.5:
            del items[rng.randrange(len(items))]
        else:
            items.insert(rng.randint(0, len(items)), random_json_value(rng))
        return items
    if op == 2 and isinstance(node, str):
        n = len(node)
        return rng.choice((node[: n // 2], node + node, node.upper(), "0x" + node, node + "\x00",
                           node[1:], " " + node))
    if op == 3 and isinstance(node, int) and not isinstance(node, bool):
        return node + rng.choice((-1, 1, 2**63, -(2**64), 10**20))
    if op == 4:
        return donor
    if op == 5:
        return [node] if rng.random() < 0.5 else {"value": node}
    return random_json_value(rng)


def mutate_json(rng: random.Random, tree: Any, donor_tree: Any, within: tuple = ()) -> bytes:
    """1 to MAX_MUTATIONS mutations of a JSON tree, of the node at `within` or below it;
    sometimes a blind one of its text."""
    for _ in range(rng.randint(1, MAX_MUTATIONS)):
        path = random_path(rng, tree, within)
        donor = get_at(donor_tree, random_path(rng, donor_tree))
        tree = set_at(tree, path, mutate_json_node(rng, get_at(tree, path), donor))
    text = json_dumps(tree)
    if rng.random() < 0.15:
        text = mutate_bytes(rng, text, json_dumps(donor_tree))
    return text
