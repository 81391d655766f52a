"""`wekacoin task watch`: follow a task and make the viewer's reveals when they are due.

`get_due_actions` is pure: from the task (RPC `tasks.get`), the viewer's address and what
its workspace holds, the reveals due now. `watch` is the loop: it polls the node, shows the
progress, carries the due reveals out, and returns once the task is over.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from wekacoin.client import competition as comp
from wekacoin.client.chainclient import ChainClient, ClientError

if TYPE_CHECKING:
    from wekacoin.evaluation.sandbox import ForkServerSandbox

FINISHED = ("settled", "cancelled", "expired")
POLL_S = 1.0


@dataclass(frozen=True)
class Holdings:
    """What the viewer's workspace holds for the task."""

    secrets: bool  # the supplier's group secrets
    models: tuple[str, ...]  # CIDs of models it submitted


def get_due_actions(task: dict[str, Any], viewer: str, holdings: Holdings) -> list[str]:
    """The reveals due now: "reveal training", "reveal test", "reveal models"."""
    phase, due = task["phase"], []
    if viewer == task["supplier"] and holdings.secrets:
        if phase == "awaiting training reveal" and task["test_groups"]:
            due.append("reveal training")
        if phase == "test reveal" and not task["test_reveals"]:
            due.append("reveal test")
    revealed = {s.get("model_cid") for s in task["submissions"] if s["trainer"] == viewer}
    pending = [cid for cid in holdings.models if cid not in revealed]
    models_open = (phase == "test reveal" and task["test_reveals"]) or phase == "model upload"
    if pending and models_open:
        due.append("reveal models")
    return due


def get_holdings(workspace: comp.Workspace, task_id: int) -> Holdings:
    secrets = (workspace.root / "tasks" / str(task_id) / "secrets.json").exists()
    return Holdings(secrets, tuple(workspace.models(task_id)))


def reveal_pending_models(client: ChainClient, workspace: comp.Workspace,
                          task: dict[str, Any]) -> list[str]:
    """Reveal the workspace's models of the task that the chain does not have yet."""
    from wekacoin.types.tx import RevealModel

    revealed = {s.get("model_cid") for s in task["submissions"] if s["trainer"] == client.address}
    done = []
    for cid, model in workspace.models(task["id"]).items():
        if cid not in revealed:
            comp.upload(client, model)
            client.send(RevealModel(task["id"], cid, len(model)))
            done.append(cid)
    return done


def watch(client: ChainClient, workspace: comp.Workspace, task_id: int,
          show: Callable[[dict[str, Any], int], None], say: Callable[[str], None],
          sandbox_factory: Callable[[], AbstractContextManager[ForkServerSandbox]],
          ) -> dict[str, Any]:
    """Until the task is over: show it at every new height, carry out the due reveals.
    Returns the task as it ended. A failed reveal is said and tried again at the next poll,
    until its window closes."""
    last = -1
    while True:
        task, height = client.task(task_id), client.height()
        if height != last:
            show(task, height)
            last = height
        if task["phase"] in FINISHED:
            return task
        for action in get_due_actions(task, client.address, get_holdings(workspace, task_id)):
            try:
                if action == "reveal training":
                    with sandbox_factory() as sandbox:
                        score = comp.reveal_training(client, workspace, task_id, sandbox)
                    say(f"revealed the training groups (baseline training score {score})")
                elif action == "reveal test":
                    comp.reveal_test(client, workspace, task_id)
                    say("revealed the test groups")
                else:
                    cids = reveal_pending_models(client, workspace, task)
                    say(f"revealed {len(cids)} model(s)")
            except ClientError as e:
                say(f"{action} failed, trying again: {e}")
            task = client.task(task_id)
        time.sleep(POLL_S)
