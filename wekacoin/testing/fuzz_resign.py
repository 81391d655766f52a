"""Typed, re-signed mutations for the fuzzer: a transaction, vote, proposal or ranking with a
few fields changed to other values of their types, signed again by the key it names (when a
scenario key), so that it passes decoding and the signature check and meets the rules behind
them. A proposal may instead get changed transactions and rankings with its header's roots
made to match, so that `apply_block` runs the chain rules on them."""

from __future__ import annotations

import dataclasses
import random
from typing import Any

from wekacoin.chain.blocks import compute_tx_root
from wekacoin.consensus.messages import (
    UnverifiedProposal,
    UnverifiedVote,
    VoteBody,
    sign_proposal,
    sign_vote,
)
from wekacoin.testing.fuzz_corpus import Scenario
from wekacoin.testing.fuzz_mutate import mutate_typed
from wekacoin.types import codec
from wekacoin.types.block import Block
from wekacoin.types.codec import DecodeError
from wekacoin.types.ranking import CandidateRanking, SignedRanking, ranking_signing_message
from wekacoin.types.tx import Tx, UnsignedTx, signing_message


def typed(rng: random.Random, cls: Any, obj: Any) -> Any | None:
    """`obj` with one to three type-preserving mutations that still decode as a `cls`, or
    None if a few tries found none."""
    original = codec.to_primitive(obj)
    for _ in range(6):
        tree = original
        for _ in range(rng.choice((1, 1, 2, 3))):
            tree = mutate_typed(rng, tree, original)
        try:
            return codec.from_primitive(cls, tree)
        except DecodeError:
            continue
    return None


def resigned_tx(rng: random.Random, s: Scenario, tx: Tx) -> bytes | None:
    unsigned = typed(rng, UnsignedTx, tx.unsigned)
    if unsigned is None:
        return None
    key = s.key_for(unsigned.sender) or s.key_for(tx.unsigned.sender)
    if key is None:
        return None  # a sender nobody here holds the key of
    payload = codec.encode(unsigned)
    return codec.encode(Tx(payload, key.sign(signing_message(s.genesis_hash, payload))))


def resigned_vote(rng: random.Random, s: Scenario, vote: UnverifiedVote) -> bytes | None:
    body = typed(rng, VoteBody, vote.body)
    if body is None:
        return None
    key = s.key_for(body.voter) or s.key_for(vote.body.voter)
    if key is None:
        return None  # a sender nobody here holds the key of
    return codec.encode(sign_vote(key, s.genesis_hash, body))


def resigned_proposal(rng: random.Random, s: Scenario, up: UnverifiedProposal) -> bytes | None:
    """Typed changes anywhere in the proposal; or, half the time, changes to its transactions
    and rankings (each re-signed) with the header's roots made to match, so that the block
    passes the proposer's credential and its header and meets the chain rules."""
    if rng.random() < 0.5:
        mutated = typed(rng, UnverifiedProposal, up)
        if mutated is None:
            return None
        period, block = mutated.period, mutated.block
    else:
        period, block = up.period, consistent_block(rng, s, up.block)
    original = up.block.header.proposer
    assert original is not None
    key = s.key_for(block.header.proposer or original) or s.key_for(original)
    if key is None:
        return None  # a sender nobody here holds the key of
    return codec.encode(sign_proposal(key, s.genesis_hash, period, block))


def consistent_block(rng: random.Random, s: Scenario, block: Block) -> Block:
    txs, rankings = list(block.txs), list(block.meta.rankings)
    for _ in range(rng.choice((1, 1, 2, 3))):
        what = rng.randrange(5)
        if what == 0 and txs:
            i = rng.randrange(len(txs))
            changed = resigned_tx(rng, s, txs[i])
            if changed is not None:
                txs[i] = codec.decode(Tx, changed)
        elif what == 1:
            changed = resigned_tx(rng, s, rng.choice(s.tip_txs))
            if changed is not None:
                txs.insert(rng.randint(0, len(txs)), codec.decode(Tx, changed))
        elif what == 2 and txs:
            i = rng.randrange(len(txs))
            txs.insert(rng.randint(0, len(txs)), txs[i]) if rng.random() < 0.5 else txs.pop(i)
        elif what == 3 and rankings:
            i = rng.randrange(len(rankings))
            changed = resigned_ranking(rng, s, rankings[i])
            if changed is not None:
                rankings[i] = codec.decode(SignedRanking, changed)
        elif rankings:
            i = rng.randrange(len(rankings))
            rankings.insert(i, rankings[i]) if rng.random() < 0.5 else rankings.pop(i)
    meta = dataclasses.replace(block.meta, rankings=tuple(rankings))
    header = dataclasses.replace(block.header, tx_root=compute_tx_root(tuple(txs)),
                                 meta_hash=codec.hash_of(meta))
    return Block(header, tuple(txs), meta)


def resigned_ranking(rng: random.Random, s: Scenario, signed: SignedRanking) -> bytes | None:
    ranking = typed(rng, CandidateRanking, signed.ranking)
    if ranking is None:
        return None
    key = s.key_for(ranking.evaluator) or s.key_for(signed.ranking.evaluator)
    if key is None:
        return None  # a sender nobody here holds the key of
    signature = key.sign(ranking_signing_message(s.genesis_hash, ranking))
    return codec.encode(SignedRanking(ranking, signature))
