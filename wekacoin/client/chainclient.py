"""A wallet's view of a node: sign locally, submit over RPC, wait for heights and blocks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from wekacoin.chain.transactions import sign_tx
from wekacoin.crypto.keys import KeyPair, format_address
from wekacoin.errors import WekaError
from wekacoin.rpc.client import RpcCallError, RpcClient
from wekacoin.types.codec import encode
from wekacoin.types.tx import TxBody
from wekacoin.waiting import wait_until

POLL_S = 0.25


class ClientError(WekaError):
    """A workflow step that cannot go on (refused or dropped transaction, missing task...).
    Waits that run out of time raise `wekacoin.waiting.WaitTimeout`."""


@dataclass
class ChainClient:
    rpc: RpcClient
    keypair: KeyPair | None
    """None for a client that only reads."""
    on_wait: Callable[[str], None] | None = None  # progress callback for long waits
    tx_timeout_s: float = 120.0
    """How long `send` waits for a transaction to be in a block."""

    @property
    def address(self) -> str:
        return format_address(self.key.address)

    @property
    def key(self) -> KeyPair:
        if self.keypair is None:
            raise ClientError("this needs a wallet key (--key)")
        return self.keypair

    def info(self) -> dict[str, Any]:
        return self.rpc.call("chain.info")

    def height(self) -> int:
        return self.rpc.call("node.status")["height"]

    def task(self, task_id: int) -> dict[str, Any]:
        return self.rpc.call("tasks.get", task_id=task_id)

    def send(self, body: TxBody, *, fee: int | None = None, wait: bool = True,
             timeout_s: float | None = None) -> dict[str, Any]:
        """Sign `body` and submit it; with `wait`, return once it is in a block:
        {"id": hex, "height": int | None}."""
        info = self.info()
        account = self.rpc.call("chain.account", address=self.address)
        tx = sign_tx(
            self.key, bytes.fromhex(info["genesis_hash"]), account["next_nonce"],
            info["params"]["min_tx_fee"] if fee is None else fee, body,
        )
        try:
            tx_id = self.rpc.call("tx.submit", tx=encode(tx).hex())["id"]
        except RpcCallError as e:
            raise ClientError(f"the node refused the {type(body).__name__}: {e.message}") from None
        if not wait:
            return {"id": tx_id, "height": None}
        return {"id": tx_id, "height": self.wait_for_tx(tx_id, timeout_s)}

    def wait_for_tx(self, tx_id: str, timeout_s: float | None = None) -> int:
        """Until the transaction is in a block; returns that block's height. A transaction
        the node dropped is a ClientError at once; WaitTimeout after `timeout_s` (default
        `tx_timeout_s`)."""
        timeout_s = self.tx_timeout_s if timeout_s is None else timeout_s
        self._note(f"waiting for transaction {tx_id[:12]}… to be in a block")

        def included() -> int | None:
            found = self.rpc.call("chain.tx", id=tx_id)
            if found is not None and found.get("rejected"):
                raise ClientError(f"transaction {tx_id} was dropped: {found['rejected']}")
            return None if found is None else found.get("height")  # never 0: genesis has no txs

        return wait_until(included, timeout=timeout_s, interval=POLL_S,
                          what=f"transaction {tx_id} to be in a block")

    def wait_for_height(self, height: int, timeout_s: float = 600.0, what: str = "") -> None:
        if self.height() >= height:
            return
        self._note(f"waiting for height {height}{' (' + what + ')' if what else ''}")
        wait_until(lambda: self.height() >= height, timeout=timeout_s, interval=POLL_S,
                   what=f"the chain to reach height {height}")

    def wait_for_phase(self, task_id: int, phases: tuple[str, ...],
                       timeout_s: float = 600.0) -> dict[str, Any]:
        """Until the task is in one of `phases`; returns the task."""
        self._note(f"waiting for task {task_id} to be {' or '.join(phases)}")

        def task_in_phase() -> dict[str, Any] | None:
            task = self.task(task_id)
            return task if task["phase"] in phases else None

        return wait_until(task_in_phase, timeout=timeout_s, interval=POLL_S,
                          what=f"task {task_id} to be {' or '.join(phases)}")

    def _note(self, message: str) -> None:
        if self.on_wait is not None:
            self.on_wait(message)
