"""Functional tests of the network: four validator processes on 127.0.0.1 agree on blocks,
survive a SIGKILL, let a new node sync from genesis, and refuse a peer of another chain.

They share the session's `network` (tests/conftest.py); each leaves its four validators running.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wekacoin.testing.functional import (
    FunctionalNode,
    NodeGroup,
    child_env,
    package_root,
    wait_until,
)

pytestmark = pytest.mark.slow


def test_nodes_run_this_checkout(network: NodeGroup) -> None:
    """Node processes import the `wekacoin` of this work tree, not another installed copy."""
    for node in network.nodes:
        environ = dict(e.split(b"=", 1) for e in
                       Path(f"/proc/{node.pid}/environ").read_bytes().split(b"\0") if b"=" in e)
        first = environ[b"PYTHONPATH"].decode().split(os.pathsep)[0]
        assert Path(first) == package_root()
        # what a child with that environment and that working directory imports
        where = subprocess.run([sys.executable, "-c", "import wekacoin; print(wekacoin.__file__)"],
                               env=child_env(), cwd=node.home, capture_output=True, text=True,
                               check=True).stdout.strip()
        assert Path(where).parent.parent == package_root()


def test_four_validators_finalize_and_agree(network: NodeGroup) -> None:
    start = min(network.heights().values())
    top = network.wait_for_blocks(10)
    network.sync_all()
    # every block from the first one on is the same everywhere (hash, hence state root)
    network.assert_same_blocks(range(1, top + 1))
    assert top >= start + 10
    final = [n.metrics().get('wekacoin_blocks_committed_total{final="true"}', 0)
             for n in network.nodes]
    assert all(f > 0 for f in final), f"some node never saw a FINAL block: {final}"


def votes_sent(node: FunctionalNode) -> float:
    return node.metrics().get("wekacoin_votes_sent_total", 0.0)


def wait_for_proposals(node: FunctionalNode, after: int, count: int, timeout: float = 60) -> None:
    """Until `node` has proposed `count` blocks above height `after`. With four equal
    validators it proposes about a quarter of them; a node that lags a round behind the
    others proposes none (its proposals come too late), so this shows it is in step."""
    key = node.status()["validator"]["key"]
    proposed, checked = [], [after]

    def enough() -> bool:
        now = node.height()
        proposed.extend(h for h in range(checked[0] + 1, now + 1)
                        if node.block(h)["proposer"] == key)
        checked[0] = now
        return len(proposed) >= count

    wait_until(enough, timeout=timeout, interval=2.0, nodes=[node],
               what=f"{count} blocks proposed by {node.name} after height {after}")


def test_sigkilled_validator_restarts_catches_up_and_votes(network: NodeGroup) -> None:
    victim = network.nodes[2]
    others = [n for n in network.nodes if n is not victim]
    network.wait_for_blocks(2)
    killed_at = victim.height()
    assert victim.kill() == -9
    # three of four validators hold more than the step threshold of stake: blocks go on
    behind = network.wait_for_blocks(8, others, timeout=90)
    marks = network.log_marks()
    victim.start()
    top = network.sync_all(timeout=90)
    assert top >= behind
    network.assert_same_blocks(range(max(1, killed_at - 3), top + 1))
    # it is a validator again, in step with the others
    wait_until(lambda: votes_sent(victim) >= 10, what=f"{victim.name} to vote again",
               nodes=[victim])
    wait_for_proposals(victim, after=top, count=3)
    network.sync_all()
    # nobody took the restart for misbehaviour
    network.assert_not_logged(marks, "Equivocation detected", "unusable block", "refusing peer")


def test_frozen_validator_resumes_in_step(network: NodeGroup) -> None:
    """A validator stopped (SIGSTOP) for five blocks, as a long GC pause or a suspended VM
    would: resumed, it sees the others' votes for later rounds, syncs, and is in step."""
    victim = network.nodes[1]
    others = [n for n in network.nodes if n is not victim]
    marks = network.log_marks()
    victim.pause()
    try:
        behind = network.wait_for_blocks(5, others, timeout=60)
    finally:
        victim.resume()
    network.wait_for_height(behind, [victim], timeout=30)
    wait_for_proposals(victim, after=behind, count=3)
    network.sync_all()
    network.assert_not_logged(marks, "Equivocation detected", "unusable block", "refusing peer")


def test_follower_started_after_50_blocks_syncs_from_genesis(network: NodeGroup) -> None:
    validators = list(network.nodes)
    network.wait_for_height(50, timeout=120)
    follower = network.add_follower()
    try:
        follower.start()
        assert follower.status()["validator"]["participating"] is False
        target = max(network.heights(validators).values())
        network.wait_for_height(target, [follower], timeout=90)
        # the whole chain, block by block, is the validators' chain
        network.assert_same_blocks(range(1, target + 1), [follower, validators[0]])
        # and it follows, in step: a node left a round behind cannot finish that round from
        # gossip, so it must sync again at once, not when its peers next announce their tips
        lags: list[int] = []
        end = max(network.heights(validators).values()) + 8

        def validators_at_end() -> bool:
            top = max(network.heights(validators).values())
            lags.append(top - follower.height())
            return top >= end

        wait_until(validators_at_end, what=f"height {end}", nodes=[follower, *validators])
        assert max(lags) <= 4, f"the follower lagged behind the validators by {lags} blocks"
        network.sync_all([follower, *validators])
        assert follower.status()["peers"] >= len(validators)
        assert votes_sent(follower) == 0
        assert follower.stop() == 0, "a clean shutdown (SIGTERM) exits 0"
        assert "stopped at height" in follower.log_text()
    finally:
        follower.stop()
        network.nodes.remove(follower)


def test_peer_on_another_chain_is_refused(network: NodeGroup, tmp_path: Path) -> None:
    target = network.nodes[0]
    other = NodeGroup.generate(tmp_path / "other", 1, chain_id="wekacoin-other")
    stranger = other.nodes[0]
    stranger.update_config("network", bootstrap=[network.p2p_addr(target)])
    target_id = target.status()["peer_id"]
    with other:
        other.start()
        stranger_id = stranger.status()["peer_id"]
        seen_as_peer = []

        def refused_both_ways() -> bool:
            for node in network.nodes:
                if stranger_id in node.peer_ids():
                    seen_as_peer.append(node.name)
            return (f"refusing peer {stranger_id} for good: on another chain" in target.log_text()
                    and f"refusing peer {target_id} for good: on another chain"
                    in stranger.log_text())

        wait_until(refused_both_ways, what="the refusal in both nodes' logs",
                   nodes=[target, stranger])
        # for a while longer, it never becomes anybody's peer, and both sides keep working
        network.wait_for_blocks(5)
        refused_both_ways()
        assert not seen_as_peer, f"the stranger was a peer of {seen_as_peer}"
        assert target_id not in stranger.peer_ids()
        assert stranger.is_running() and stranger.status()["chain_id"] == "wekacoin-other"
        assert f"not dialling bootstrap peer {target_id} again" in stranger.log_text()
    network.sync_all()


def test_whole_network_crash_resumes_from_the_stores(network: NodeGroup) -> None:
    """All four validators SIGKILLed at once (a power cut): restarted, each resumes from its
    store and consensus checkpoint, and together they go on from the same chain."""
    network.sync_all()
    before = {n.name: n.height() for n in network.nodes}
    for node in network.nodes:
        node.kill()
    network.start()
    # nothing committed was lost, and the four still agree on it
    for node in network.nodes:
        assert node.height() >= before[node.name], node.name
    common = min(before.values())
    network.assert_same_blocks(range(max(1, common - 5), common + 1))
    top = network.wait_for_blocks(10, timeout=120)
    network.sync_all()
    network.assert_same_blocks(range(common, top + 1))


def test_a_transaction_accepted_before_a_sigkill_is_pending_again_and_lands(
    network: NodeGroup,
) -> None:
    """Issue 11: transfers a node accepted were lost when it was killed. The node journals
    what it accepts over RPC: killed before any block could include it (the others are
    paused, so nothing is decided), it holds the transaction again after the restart, and
    the transaction lands once the others are back."""
    from wekacoin.chain.genesis import parse_genesis
    from wekacoin.chain.transactions import sign_tx
    from wekacoin.crypto.keys import parse_address
    from wekacoin.types.codec import encode
    from wekacoin.types.tx import Transfer

    node, others = network.nodes[1], [n for n in network.nodes if n is not network.nodes[1]]
    genesis = parse_genesis((network.root / "genesis.json").read_text())
    payer = network.wallet("trainer3")
    for other in others:
        other.pause()
    try:
        account = node.call("chain.account", address=network.address("trainer3"))
        tx = sign_tx(payer, genesis.hash, account["next_nonce"], 10,
                     Transfer(parse_address(network.address("supplier")), 7))
        tx_id = node.call("tx.submit", tx=encode(tx).hex())["id"]
        assert node.kill() == -9
        node.start()
        assert node.call("chain.tx", id=tx_id)["pending"] is True  # from the journal
    finally:
        for other in others:
            other.resume()
    wait_until(lambda: (node.call("chain.tx", id=tx_id) or {}).get("height") is not None,
               what="the journaled transfer to land in a block", nodes=network.nodes, timeout=120)
    network.sync_all(timeout=90)
