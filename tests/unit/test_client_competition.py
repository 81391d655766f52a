"""The competition client's checks before it spends anything (no node process: a fake RPC)."""

from __future__ import annotations

import pytest

from wekacoin.client import competition as comp
from wekacoin.client.chainclient import ChainClient, ClientError
from wekacoin.crypto.keys import KeyPair


class TaskOnlyNode:
    """Answers `tasks.get` with a task in training whose training groups this node has not
    seen revealed yet (the supplier's reveal landed on another node a block earlier)."""

    def call(self, method: str, **params):
        assert method == "tasks.get", f"nothing but the task is read first, not {method}"
        return {"id": params["task_id"], "phase": "training", "training_reveals": []}


def test_a_model_is_not_submitted_before_this_node_has_the_training_groups(tmp_path):
    client = ChainClient(TaskOnlyNode(), KeyPair.from_seed(bytes(32)))  # type: ignore[arg-type]
    workspace = comp.Workspace(tmp_path)
    with pytest.raises(ClientError, match="training groups are not revealed yet"):
        comp.submit_model(client, workspace, 3, b"model bytes", sandbox=None)  # type: ignore[arg-type]
    assert not (tmp_path / "tasks").exists()  # nothing saved, nothing sent
