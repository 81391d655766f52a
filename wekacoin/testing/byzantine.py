"""A Byzantine validator process, for the chaos testnet (`wekacoin/testing/chaos.py`) only.

    python -m wekacoin.testing.byzantine --config node.toml --behaviour equivocate-votes

It is the real node (`wekacoin.node.daemon.Node`) with its own stake and keys, and lies only
where a Byzantine validator can: in what it sends. Its driver's gossip port is wrapped, so
every message it would send goes through the behaviour first; what it sends is signed with
its own key, so the honest nodes must cope with it on the merits. It is not reachable from
node.toml: only this module's entry point makes a node Byzantine.

Behaviours:
    equivocate-votes      every vote, and a second one for another value, same step
    equivocate-proposals  every proposal, and a second block with the same credential
    false-rankings        rankings with the best and the worst model's scores swapped
    withhold              sends no proposal and serves no block or blob to peers
    flood                 sends every message three times and replays old votes
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import random
import sys
from collections import deque
from pathlib import Path
from typing import Callable

from wekacoin.chain.rankings import sign_ranking
from wekacoin.consensus.actions import AssembleBlock
from wekacoin.consensus.assemble import assemble_block
from wekacoin.consensus.driver import Message
from wekacoin.consensus.messages import UnverifiedProposal, UnverifiedVote, sign_proposal, sign_vote
from wekacoin.consensus.verify import RoundContext
from wekacoin.node.daemon import Node
from wekacoin.types.ranking import Outcome, SignedRanking

log = logging.getLogger("wekacoin.byzantine")

BEHAVIOURS = ("equivocate-votes", "equivocate-proposals", "false-rankings", "withhold", "flood")
_REPLAYED = 256  # old votes a flooding node keeps to replay


class ByzantineNode(Node):
    """The node with its sends and its block and blob serving in a behaviour's hands."""

    def __init__(self, *args: object, behaviour: str, seed: int = 0, **kwargs: object) -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}: one of {', '.join(BEHAVIOURS)}")
        self.behaviour = behaviour
        self.rng = random.Random(seed)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._send: Callable[[Message], None] = self.driver.publish
        self._old_votes: deque[UnverifiedVote] = deque(maxlen=_REPLAYED)
        self.driver.publish = self._publish  # type: ignore[method-assign]
        log.warning("this node is Byzantine: %s", behaviour)

    def _provide_blocks(self, from_height: int, count: int) -> list[tuple[bytes, bytes]]:
        if self.behaviour == "withhold":
            return []
        return super()._provide_blocks(from_height, count)

    # -- what leaves --

    def _publish(self, message: Message) -> None:
        b = self.behaviour
        if b == "equivocate-votes" and isinstance(message, UnverifiedVote):
            self._send(message)
            self._send(self._twin_vote(message))
        elif b == "equivocate-proposals" and isinstance(message, UnverifiedProposal):
            self._send(message)
            self._send(self._twin_proposal(message))
        elif b == "false-rankings" and isinstance(message, SignedRanking):
            self._send(self._false_ranking(message))
        elif b == "withhold" and isinstance(message, UnverifiedProposal):
            return
        elif b == "flood":
            for _ in range(3):
                self._send(message)
            if isinstance(message, UnverifiedVote):
                self._old_votes.append(message)
                for old in self.rng.sample(list(self._old_votes), min(8, len(self._old_votes))):
                    self._send(old)
        else:
            self._send(message)

    def _twin_vote(self, vote: UnverifiedVote) -> UnverifiedVote:
        state = self.chain.state
        empty = self.verifier.empty_block(RoundContext(state, self._tip_time()))[0].hash
        other = empty if vote.body.value != empty else self.rng.randbytes(32)
        body = dataclasses.replace(vote.body, value=other)
        return sign_vote(self.keypair, self.chain.config.genesis_hash, body)

    def _twin_proposal(self, proposal: UnverifiedProposal) -> UnverifiedProposal:
        header, meta = proposal.block.header, proposal.block.meta
        assert meta.seed_proof is not None, "a proposed block carries its seed proof"
        request = AssembleBlock(header.height, proposal.period, self.keypair.public_key,
                                header.seed, meta.seed_proof, meta.rankings)
        block = assemble_block(self.chain.state, request, [], header.time_ms + 1)
        return sign_proposal(self.keypair, self.chain.config.genesis_hash, proposal.period, block)

    def _false_ranking(self, signed: SignedRanking) -> SignedRanking:
        ranking = signed.ranking
        scored = sorted((e for e in ranking.entries if e.outcome is Outcome.SCORED),
                        key=lambda e: e.score)
        if len(scored) < 2:
            entries = tuple(dataclasses.replace(e, score=e.score + 1)
                            if e.outcome is Outcome.SCORED else e for e in ranking.entries)
        else:
            swap = {scored[0].submission_id: scored[-1].score,
                    scored[-1].submission_id: scored[0].score}
            entries = tuple(dataclasses.replace(e, score=swap[e.submission_id])
                            if e.submission_id in swap else e for e in ranking.entries)
        return sign_ranking(self.keypair, self.chain.config.genesis_hash,
                            dataclasses.replace(ranking, entries=entries))

    def _tip_time(self) -> int:
        return self.driver.core.ledger.tip_time()


def main(argv: list[str] | None = None) -> int:
    import trio

    from wekacoin.chain.genesis import parse_genesis
    from wekacoin.cli.common import read_password
    from wekacoin.keyfile import load_keystore
    from wekacoin.node.config import load_config
    from wekacoin.node.logs import setup_logging

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", "-c", type=Path, required=True)
    parser.add_argument("--behaviour", choices=BEHAVIOURS, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    setup_logging(cfg.node.log_level, cfg.node.log_format, node_name=cfg.node.data_dir.parent.name)
    genesis = parse_genesis(cfg.node.genesis.read_text())
    keypair = load_keystore(cfg.keys.keystore, read_password(cfg.keys.password_file, confirm=False))
    node = ByzantineNode(cfg, keypair, genesis, behaviour=args.behaviour, seed=args.seed)
    trio.run(node.run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
