"""A task's timeline as a viewer sees it: its deadlines with a time estimate, what the viewer
should do next, and how the task ended. Pure: the caller passes the task (RPC `tasks.get`),
the height, the recent block interval and the protocol parameters."""

from __future__ import annotations

from typing import Any

from wekacoin.client.datasets import get_class_names

# (key in the task's "heights", what happens there)
DEADLINES = (
    ("split", "the chain draws the test groups"),
    ("training_reveal_deadline", "last height for the training reveal (else cancelled)"),
    ("tbh", "submissions close; the test reveal opens"),
    ("test_reveal_end", "the test reveal closes"),
    ("upload_end", "model reveals close; evaluation starts"),
    ("ready", "the task can settle"),
    ("expiry", "unsettled: the task expires"),
)


def compute_timeline(
    task: dict[str, Any], height: int, block_ms: int | None, params: dict[str, Any],
    viewer: str | None = None,
) -> dict[str, Any]:
    """{"height", "block_ms", "feature_columns", "label_column", "classes", "role",
    "deadlines": [{"name", "height", "what", "blocks", "eta_s"}], "next_action", "ending"}."""
    heights = dict(task["heights"])
    heights["expiry"] = heights["ready"] + params["settlement_window"] + 1
    deadlines = []
    for name, what in DEADLINES:
        at = heights[name]
        blocks = at - height
        eta = None if block_ms is None or blocks <= 0 else blocks * block_ms // 1000
        deadlines.append({"name": name, "height": at, "what": what, "blocks": blocks,
                          "eta_s": eta})
    schema = task["spec"]["schema"]
    role = get_role(task, viewer)
    return {
        "height": height, "block_ms": block_ms,
        "feature_columns": list(schema["feature_columns"]),
        "label_column": schema["label_column"],
        "classes": get_class_names(schema["label_column"]),
        "role": role, "deadlines": deadlines,
        "next_action": get_next_action(task, heights, role, viewer),
        "ending": get_ending(task, heights),
    }


def get_role(task: dict[str, Any], viewer: str | None) -> str:
    if viewer is None:
        return "viewer"
    if viewer == task["supplier"]:
        return "supplier"
    if any(s["trainer"] == viewer for s in task["submissions"]):
        return "trainer"
    return "viewer"


def get_unrevealed(task: dict[str, Any], viewer: str | None) -> list[int]:
    return [s["id"] for s in task["submissions"]
            if s["trainer"] == viewer and not s.get("model_cid")]


def get_next_action(task: dict[str, Any], heights: dict[str, int], role: str,
                    viewer: str | None) -> str:
    n, phase = task["id"], task["phase"]
    if phase == "awaiting training reveal":
        if role == "supplier":
            return (f"reveal the training groups by height {heights['training_reveal_deadline']}"
                    f": wekacoin task reveal-training {n} (or wekacoin task watch {n})")
        return (f"wait for the supplier's training reveal (by height "
                f"{heights['training_reveal_deadline']}, else the task is cancelled)")
    if phase == "training":
        if role == "supplier":
            return (f"reveal the test groups from height {heights['tbh']}: keep "
                    f"wekacoin task watch {n} running")
        return (f"get the data (wekacoin task data {n} --out DIR), check a model (wekacoin "
                f"model check --task {n} FILE) and submit it before height {heights['tbh']}")
    if phase == "test reveal":
        if role == "supplier" and not task["test_reveals"]:
            return (f"reveal the test groups before height {heights['test_reveal_end']}: "
                    f"wekacoin task reveal-test {n}")
        if role == "trainer" and get_unrevealed(task, viewer):
            return (f"reveal your models before height {heights['upload_end']}: wekacoin model "
                    f"reveal --task {n}")
        return f"wait: models are revealed until height {heights['upload_end']}"
    if phase == "model upload":
        if role == "trainer" and get_unrevealed(task, viewer):
            return (f"reveal your models now, before height {heights['upload_end']}: "
                    f"wekacoin model reveal --task {n}")
        return f"wait: models are revealed until height {heights['upload_end']}"
    if phase in ("evaluation", "ready to settle"):
        return (f"nothing: validators score the models; the task settles from height "
                f"{heights['ready']} and expires after {heights['expiry'] - 1}")
    return "nothing: the task is over"


def get_ending(task: dict[str, Any], heights: dict[str, int]) -> dict[str, Any] | None:
    """How the task ended and where its funds went, from the chain's settlement record."""
    record = task.get("settlement")
    if record is None:
        return None
    resolution = record["resolution"]
    reasons = {
        "won": f"submission {record['winner']} won",
        "baseline_kept": "no model beat the baseline: the reward went back to the supplier",
        "expired": (f"no ranking was agreed by height {heights['expiry'] - 1}: reward and "
                    "participation fees refunded, hosting fee burned"),
        "cancelled": (f"the training groups were not revealed by height "
                      f"{heights['training_reveal_deadline']}: reward refunded, hosting fee "
                      "burned"),
    }
    return {
        "resolution": resolution, "height": record["height"],
        "reason": reasons.get(resolution, resolution),
        "payments": [{"address": p["address"], "amount": p["amount"]}
                     for p in record["payments"]],
        "burned": record["burned"], "minted": record["minted"],
    }


def format_eta(seconds: int | None) -> str:
    if seconds is None:
        return ""
    if seconds < 90:
        return f"~{seconds} s"
    if seconds < 5400:
        return f"~{seconds // 60} min"
    return f"~{seconds // 3600} h {seconds % 3600 // 60} min"
