"""Checks on every core answer exactly what the serial loop answers: `parallel_map`, blocks
(signatures checked in the pool by `apply_block`) and batches of votes.

Each comparison runs the same input with the pool off (`set_workers(0)`: the plain loop) and
with one and with several workers; a consensus rule must not depend on the machine's cores.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wekacoin.chain.blocks import apply_block, compute_tx_root
from wekacoin.chain.errors import BadNonce, BadSignature, BlockError, InvalidBlockTx
from wekacoin.consensus.messages import (
    Certificate,
    UnverifiedVote,
    VoteBody,
    binary_step,
    sign_vote,
)
from wekacoin.consensus.verify import (
    InvalidCertificate,
    InvalidVote,
    RoundContext,
    Verifier,
    step_committee,
    verify_certificate,
    verify_vote,
    verify_votes,
)
from wekacoin.crypto import parallel
from wekacoin.crypto.keys import KeyPair, verify_signature
from wekacoin.sortition import select, sortition_alpha
from wekacoin.testing.chain import LocalChain
from wekacoin.types.block import Block
from wekacoin.types.primitives import Signature
from wekacoin.types.tx import Transfer, Tx

WORKERS = [0, 1, 3]


@pytest.fixture(autouse=True)
def default_pool() -> Iterator[None]:
    yield
    parallel.set_workers(None)


# --- parallel_map --------------------------------------------------------------------------


class Refused(Exception):
    def __init__(self, index: int) -> None:
        super().__init__(index)
        self.index = index


def outcome(fn, *args):
    """The result of fn(*args), or the type and arguments of what it raised."""
    try:
        return ("ok", fn(*args))
    except Exception as e:  # compared, not handled
        return ("raised", type(e).__name__, e.args)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 300), bad=st.sets(st.integers(0, 299), max_size=6),
       workers=st.sampled_from(WORKERS), min_chunk=st.integers(1, 20))
def test_parallel_map_is_the_loop(n, bad, workers, min_chunk):
    def check(i: int) -> int:
        if i in bad:
            raise Refused(i)
        return i * i

    parallel.set_workers(workers)
    expected = outcome(lambda: [check(i) for i in range(n)])
    assert outcome(lambda: parallel.parallel_map(check, range(n), min_chunk=min_chunk)) == expected


def test_the_lowest_index_wins_even_when_it_fails_last():
    """Item 0 fails only after the last item has: the exception raised is still item 0's."""
    parallel.set_workers(3)
    last_failed = threading.Event()
    n = 64

    def check(i: int) -> int:
        if i == 0:
            last_failed.wait(timeout=30)  # a safety net, not a timing assumption
            raise Refused(0)
        if i == n - 1:
            last_failed.set()
            raise Refused(i)
        return i

    with pytest.raises(Refused) as err:
        parallel.parallel_map(check, range(n))
    assert err.value.index == 0


def test_nested_calls_finish():
    """A check that itself fans out: the caller runs what no worker has started."""
    parallel.set_workers(1)

    def outer(i: int) -> int:
        return sum(parallel.parallel_map(lambda j: i * j, range(40)))

    assert parallel.parallel_map(outer, range(40)) == [i * 780 for i in range(40)]


def test_workers_cannot_be_negative():
    with pytest.raises(ValueError):
        parallel.set_workers(-1)


# --- signatures in batches ---------------------------------------------------------------


SMALL_ORDER = [bytes(32), (1).to_bytes(32, "little"),
               bytes.fromhex("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
               bytes.fromhex("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a")]


def signature_cases() -> list[tuple[bytes, bytes, bytes]]:
    """Valid signatures, every single-bit mutation of a few of them (key, message, signature),
    small-order keys and R, s >= L, wrong lengths, empty and long messages."""
    rng = random.Random(2024)
    keys = [KeyPair.from_seed(rng.randbytes(32)) for _ in range(4)]
    cases = []
    for i in range(40):
        key = keys[i % 4]
        message = rng.randbytes(rng.choice([0, 1, 70, 200, 10_000]))
        cases.append((key.public_key, message, key.sign(message)))
    for pk, message, sig in cases[:3]:
        for field, value in enumerate((pk, message[:16], sig)):
            for bit in range(len(value) * 8):
                flipped = bytearray(value)
                flipped[bit // 8] ^= 1 << (bit % 8)
                case = [pk, message[:16], sig]
                case[field] = bytes(flipped)
                cases.append((case[0], case[1], case[2]))
    pk, message, sig = cases[0]
    for point in SMALL_ORDER:
        cases.append((point, message, sig))
        cases.append((pk, message, point + sig[32:]))
    cases.append((pk, message, sig[:32] + b"\xff" * 32))
    cases += [(pk[:31], message, sig), (pk + b"\0", message, sig), (pk, message, sig[:63]),
              (pk, message, sig + b"\0"), (b"", b"", b"")]
    return cases


def test_batched_signatures_answer_what_one_by_one_answers():
    cases = signature_cases()
    expected = [verify_signature(*case) for case in cases]
    assert 40 <= sum(expected) < len(cases)  # both answers occur
    assert parallel.verify_signatures(cases) == expected
    for workers in WORKERS:
        parallel.set_workers(workers)
        for start in (0, 1, 40, 41):
            checks = parallel.SignatureChecks(cases[start:])
            bad = [i for i, ok in enumerate(expected[start:]) if not ok]
            assert checks.first_failure() == bad[0]
        assert parallel.SignatureChecks(cases[:40]).first_failure() is None
    assert parallel.verify_signatures([]) == []


def test_a_batch_refuses_what_is_not_bytes():
    pk, message, sig = signature_cases()[0]
    for item in [(pk, message), (pk, bytearray(message), sig), [pk, message, sig], "abc"]:
        with pytest.raises(TypeError):
            parallel.verify_signatures([item])  # type: ignore[list-item]


# --- blocks --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chain() -> LocalChain:
    return LocalChain(n_keys=400)


def block_of(chain: LocalChain, n: int) -> tuple[Block, list[Tx]]:
    """A valid block of n transfers from distinct senders, and its transactions."""
    txs = [chain.tx(chain.keys[i], Transfer(chain.keys[(i + 1) % n].address, 1 + i))
           for i in range(n)]
    chain._nonces.clear()  # the block is never committed: the nonces start again at 0
    return chain.build(txs)[0], txs


def with_txs(block: Block, txs: list[Tx]) -> Block:
    """`block` carrying `txs` instead, its header committing to them (the state root is left
    alone: a bad transaction must be found before it matters)."""
    header = dataclasses.replace(block.header, tx_root=compute_tx_root(tuple(txs)))
    return dataclasses.replace(block, header=header, txs=tuple(txs))


def forge(rng: random.Random, chain: LocalChain, tx: Tx) -> Tx:
    """`tx` with a signature that does not verify, of one of a few kinds."""
    kind = rng.randrange(4)
    sig = bytearray(tx.signature)
    if kind == 0:  # one bit flipped
        sig[rng.randrange(64)] ^= 1 << rng.randrange(8)
    elif kind == 1:  # a valid signature of another key
        sig = bytearray(chain.keys[-1].sign(b"wekacoin/tx/v1" + chain.genesis_hash + tx.id))
    elif kind == 2:  # s >= L, which libsodium refuses before any arithmetic
        sig[32:] = b"\xff" * 32
    else:  # a signature over another chain
        sig = bytearray(chain.keys[0].sign(b"wekacoin/tx/v1" + bytes(32) + tx.id))
    return Tx(tx.payload, Signature(bytes(sig)))


def result_of(chain: LocalChain, block: Block, workers: int):
    """What apply_block answers with `workers` pool threads: the state root, or the error
    with, for a bad transaction, its index and the kind of its error."""
    parallel.set_workers(workers)
    try:
        return ("ok", apply_block(chain.state, block).root())
    except InvalidBlockTx as e:
        return ("invalid tx", e.index, type(e.error), str(e))
    except BlockError as e:
        return (type(e).__name__, str(e))


def test_random_bad_signatures_give_the_lowest_index_on_any_pool(chain):
    rng = random.Random(13)
    for _ in range(12):
        n = rng.randrange(1, 240)
        block, txs = block_of(chain, n)
        bad = sorted(rng.sample(range(n), rng.randrange(1, min(n, 6) + 1)))
        forged = list(txs)
        for i in bad:
            forged[i] = forge(rng, chain, txs[i])
        block = with_txs(block, forged)
        results = {result_of(chain, block, w) for w in WORKERS}
        assert len(results) == 1, results
        (result,) = results
        assert result[:3] == ("invalid tx", bad[0], BadSignature)


def test_a_bad_signature_beats_an_earlier_broken_rule(chain):
    """Serially every signature is checked before any rule: so does the pool."""
    block, txs = block_of(chain, 100)
    stale = chain.tx(chain.keys[10], Transfer(chain.keys[11].address, 5), nonce=7)  # signed
    rng = random.Random(5)
    forged = list(txs)
    forged[10] = stale
    forged[90] = forge(rng, chain, txs[90])
    results = {result_of(chain, with_txs(block, forged), w) for w in WORKERS}
    assert len(results) == 1 and next(iter(results))[:3] == ("invalid tx", 90, BadSignature)
    forged[90] = txs[90]
    results = {result_of(chain, with_txs(block, forged), w) for w in WORKERS}
    assert len(results) == 1 and next(iter(results))[:3] == ("invalid tx", 10, BadNonce)


@pytest.mark.parametrize("n", [0, 1, 2, 17, 200])
def test_valid_blocks_apply_alike(chain, n):
    block, _ = block_of(chain, n)
    results = {result_of(chain, block, w) for w in WORKERS}
    assert results == {("ok", block.header.state_root)}


@pytest.mark.parametrize("n", [1, 2])
def test_tiny_blocks_with_a_bad_signature(chain, n):
    block, txs = block_of(chain, n)
    forged = list(txs)
    forged[-1] = forge(random.Random(n), chain, txs[-1])
    results = {result_of(chain, with_txs(block, forged), w) for w in WORKERS}
    assert len(results) == 1 and next(iter(results))[:3] == ("invalid tx", n - 1, BadSignature)


def test_the_same_answer_every_time(chain):
    rng = random.Random(99)
    block, txs = block_of(chain, 200)
    forged = list(txs)
    for i in (150, 40, 41, 199):
        forged[i] = forge(rng, chain, txs[i])
    block = with_txs(block, forged)
    results = [result_of(chain, block, 3) for _ in range(8)]
    assert results == [results[0]] * 8 and results[0][:2] == ("invalid tx", 40)


# --- votes ---------------------------------------------------------------------------------


class Votes:
    """A genesis tip with five validators (each sits on every committee) and a sixth key
    without stake."""

    def __init__(self) -> None:
        self.chain = LocalChain(validators=5, n_keys=6)
        self.state = self.chain.state
        self.ctx = RoundContext(self.state, 0)

    def vote(self, i: int, step: int, value: bytes) -> UnverifiedVote:
        role, tau, _ = step_committee(self.state.params, step)
        alpha = sortition_alpha(self.state.tip.seed, role, 1, 0, step)
        key = self.chain.keys[i]
        staked = self.chain.keys[i % 5]  # the stakeless key borrows a credential
        seat = select(staked, alpha, self.state.get_weight(staked.public_key),
                      self.state.tip.total_weight, tau)
        assert seat is not None
        body = VoteBody(1, 0, step, self.ctx.prev_hash, value, key.public_key, seat.proof)
        return sign_vote(key, self.ctx.genesis_hash, body)

    def mixed(self, rng: random.Random, value: bytes) -> list[UnverifiedVote]:
        """Valid votes and votes broken in each way `verify_vote` notices."""
        out = []
        for _ in range(40):
            i = rng.randrange(5)
            uv = self.vote(i, binary_step(1), value)
            match rng.randrange(6):
                case 0:
                    uv = dataclasses.replace(uv, signature=Signature(bytes(64)))
                case 1:  # signed, but the credential is that of another step
                    other = self.vote(i, binary_step(2), value).body.credential
                    body = dataclasses.replace(uv.body, credential=other)
                    uv = sign_vote(self.chain.keys[i], self.ctx.genesis_hash, body)
                case 2:
                    uv = self.vote(5, binary_step(1), value)  # no stake
                case 3:
                    uv = dataclasses.replace(uv, body=dataclasses.replace(uv.body, round=2))
            out.append(uv)
        return out


@pytest.fixture(scope="module")
def votes() -> Votes:
    return Votes()


def vote_outcome(result):
    if isinstance(result, InvalidVote):
        return ("invalid", str(result))
    return ("vote", result.unverified, result.subusers, result.output)


def test_verify_votes_is_verify_vote_of_each(votes):
    uvs = votes.mixed(random.Random(3), b"\x05" * 32)
    expected = [vote_outcome(outcome_or_error(uv, votes.ctx)) for uv in uvs]
    assert {e[0] for e in expected} == {"vote", "invalid"}
    assert len({e[1] for e in expected if e[0] == "invalid"}) == 4  # every kind of refusal
    for w in WORKERS:
        parallel.set_workers(w)
        assert [vote_outcome(r) for r in verify_votes(uvs, votes.ctx)] == expected


def outcome_or_error(uv: UnverifiedVote, ctx: RoundContext):
    try:
        return verify_vote(uv, ctx)
    except InvalidVote as e:
        return e


def test_a_verifier_answers_checked_votes_from_its_cache(votes):
    uvs = votes.mixed(random.Random(4), b"\x06" * 32)
    parallel.set_workers(0)
    serial = Verifier()
    expected = [outcome(serial.vote, uv, votes.ctx) for uv in uvs]
    parallel.set_workers(3)
    batch = Verifier()
    batch.check_votes(uvs + uvs, votes.ctx)
    checked = batch.counts["vote"]
    assert checked == len(set(uvs))
    assert [outcome(batch.vote, uv, votes.ctx) for uv in uvs] == expected
    assert batch.counts["vote"] == checked  # nothing verified twice


def test_certificates_fail_alike(votes):
    value = b"\x07" * 32
    good = [votes.vote(i, binary_step(1), value) for i in range(5)]
    bad = dataclasses.replace(good[3], signature=Signature(bytes(64)))
    for cert_votes, message in (
        (good, None),
        (good[:2] + [bad] + good[4:], "a vote is invalid: bad signature"),
        (good[:2] + [good[1]] + good[3:], "one per voter"),
    ):
        cert = Certificate(1, 0, binary_step(1), value, tuple(cert_votes))
        results = set()
        for w in WORKERS:
            parallel.set_workers(w)
            results.add(outcome(verify_certificate, cert, votes.ctx, Verifier()))
        assert len(results) == 1, results
        (result,) = results
        if message is None:
            assert result == ("ok", None)
        else:
            assert result[:2] == ("raised", InvalidCertificate.__name__)
            assert message in result[2][0]
