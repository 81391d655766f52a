"""Proof-of-storage weight on a real testnet: four validators of equal stake, of which three
keep the chain's data (the default) and one keeps nothing (`[storage] max_bytes = 0`).

A supplier publishes a task on scikit-learn's digits and reveals its training groups. The
keepers replicate the revealed blobs, claim them, answer their challenges, and once their
storage weight counts they are selected more often than the validator that holds nothing:
the test reads the certificates of the blocks decided meanwhile and counts each validator's
committee sub-users (recomputed from each vote's VRF credential, as every node checks it).
Then every copy of the data is deleted from disk: the keepers can neither prove nor fetch it
any more, and lose the weight.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from wekacoin.chain.genesis import MAX_STORAGE_WEIGHT_PER_MIB, load_genesis
from wekacoin.client import competition as comp
from wekacoin.client.chainclient import ChainClient
from wekacoin.client.datasets import dataset_from_arrays, prepare_dataset, train_baseline
from wekacoin.consensus.messages import Certificate
from wekacoin.consensus.verify import step_committee
from wekacoin.evaluation.data import parse_split
from wekacoin.evaluation.sandbox import ForkServerSandbox
from wekacoin.node import testnet as tn
from wekacoin.sortition import sortition_alpha
from wekacoin.sortition import verify as verify_seat
from wekacoin.store.chainstore import ChainStore
from wekacoin.testing.functional import NodeGroup
from wekacoin.types.codec import decode
from wekacoin.types.metric import Metric, TaskKind
from wekacoin.waiting import wait_until

pytestmark = pytest.mark.slow

LABEL = "digit"
WINDOW_BLOCKS = 12


def digits_csv() -> bytes:
    from sklearn.datasets import load_digits

    ds = load_digits()
    return dataset_from_arrays(ds.data, ds.target, [f"p{i}" for i in range(64)], LABEL,
                               TaskKind.CLASSIFICATION)


def weights(node) -> dict[str, dict]:
    return {v["validator_key"]: v for v in node.call("validators.list")}


def test_keeping_the_data_earns_selection_and_losing_it_loses_the_weight(tmp_path: Path):
    # the paper's mode: storage weight as high as genesis allows, so the data outweighs stake
    params = dataclasses.replace(tn.LOCAL_PARAMS, storage_weight_per_mib=MAX_STORAGE_WEIGHT_PER_MIB)
    group = NodeGroup.generate(tmp_path / "testnet", 4, chain_id="wekacoin-storage",
                               params=params)
    nodes = group.nodes
    idle = nodes[3]
    idle.update_config("storage", max_bytes=0)
    with group:
        group.start()
        group.wait_for_height(2, timeout=90)
        supplier = ChainClient(nodes[0].rpc, group.wallet("supplier"))
        prepared = prepare_dataset(digits_csv(), LABEL, TaskKind.CLASSIFICATION, 10, seed=1)
        whole = parse_split(dict(enumerate(prepared.groups)), prepared.schema)
        baseline = train_baseline(TaskKind.CLASSIFICATION, whole.features, whole.labels)
        workspace = comp.Workspace(tmp_path / "supplier")
        with ForkServerSandbox() as sandbox:
            task_id = comp.publish_task(
                supplier, workspace, prepared, baseline, title="digits, storage test",
                metric=Metric.ACCURACY, reward=100_000, hosting_fee=10_000,
                participation_fee=None, training_blocks=200, eval_seconds=30,
                max_model_bytes=2**20,
            )
            comp.reveal_training(supplier, workspace, task_id, sandbox)
        task = supplier.task(task_id)
        data_cids = [g["cid"] for g in task["training_reveals"]]
        data_bytes = sum(len(prepared.groups[g["index"]]) for g in task["training_reveals"])

        # The keepers' storage weight counts (claimed, proven at an epoch, credited at the
        # next, then the look-back), the idle validator's never does.
        keepers = [n.status()["validator"]["key"] for n in nodes[:3]]
        idle_key = idle.status()["validator"]["key"]

        per_mib = nodes[0].call("chain.info")["params"]["storage_weight_per_mib"]
        share = data_bytes // 3 * per_mib // 2**20  # each keeper's third of the data

        def keepers_weighed() -> bool:
            w = weights(nodes[0])
            return all(w[k]["storage_weight"] >= share for k in keepers)

        wait_until(keepers_weighed, timeout=400, what="the keepers' storage weight counts")
        before = weights(nodes[0])
        assert before[idle_key]["storage_weight"] == 0
        assert before[idle_key]["claimed_blobs"] == 0
        for k in keepers:
            assert before[k]["stake"] == before[idle_key]["stake"]
            assert before[k]["credited_bytes"] >= data_bytes // 3  # every keeper holds it all
        start = nodes[0].height()
        group.wait_for_height(start + WINDOW_BLOCKS, nodes=[nodes[0]], timeout=180)
        end = nodes[0].height()
        moved = {k: v["weight"] for k, v in weights(nodes[0]).items()}
        assert moved == {k: v["weight"] for k, v in before.items()}, "weights moved meanwhile"

        # Every copy of the data goes: the keepers can neither prove it nor fetch it.
        removed = 0
        for node in nodes:
            for cid in data_cids:
                for path in node.home.rglob(cid):
                    path.unlink()
                    removed += 1
        assert removed >= 3 * len(data_cids)

        def weight_lost() -> bool:
            w = weights(nodes[0])
            return all(w[k]["storage_weight"] < before[k]["storage_weight"] for k in keepers)

        wait_until(weight_lost, timeout=300, what="the keepers lose the deleted data's weight")
        after = weights(nodes[0])
        for k in keepers:
            # nothing deleted stays claimed: dropped before its challenge, or every claim lost
            # with a missed one (then what is still held, the baseline, is claimed again)
            assert after[k]["claimed_blobs"] <= before[k]["claimed_blobs"] - len(data_cids)
            assert after[k]["credited_bytes"] < before[k]["credited_bytes"]
        results = {k: after[k]["last_challenge"]["result"] for k in keepers}
        print(f"after the deletion: last challenge results {results}")

    # Selection over the window, from node 0's certificates (the nodes are stopped now).
    config = nodes[0].config()["node"]
    genesis = load_genesis(nodes[0].home / config.get("genesis", "genesis.json"))
    data_dir = nodes[0].home / config.get("data_dir", "data")
    with ChainStore.open(data_dir / "chain", genesis) as store:
        total = sum(v["weight"] for v in before.values())
        subusers = {k: 0 for k in before}
        for height in range(start + 1, end + 1):
            certificate = decode(Certificate, store.get_certificate(height))
            seed = store.get_header(height - 1).seed
            _, tau, _ = step_committee(genesis.params, certificate.step)
            role = step_committee(genesis.params, certificate.step)[0]
            alpha = sortition_alpha(seed, role, certificate.round, certificate.period,
                                    certificate.step)
            for vote in certificate.votes:
                key = vote.body.voter.hex()
                seat = verify_seat(vote.body.voter, vote.body.credential, alpha,
                                   before[key]["weight"], total, tau)
                assert seat is not None
                subusers[key] += seat.subusers
    idle_seats = subusers[idle_key]
    for k in keepers:
        ratio = before[k]["weight"] / before[idle_key]["weight"]
        assert subusers[k] > 1.3 * idle_seats, (subusers, ratio)
    print(f"sub-users over blocks {start + 1}-{end}: keepers "
          f"{[subusers[k] for k in keepers]}, idle {idle_seats}; weights "
          f"{[before[k]['weight'] for k in keepers]} vs {before[idle_key]['weight']}")
