"""Who we are talking to: handshaken peers and their tips, penalties, refusals.

Pure bookkeeping with the clock as an argument; `Network` does the I/O (disconnecting,
dialling) that its answers call for.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from wekacoin.net.api import PeerStatus
from wekacoin.net.messages import Hello

FOREVER = math.inf


def check_hello(ours: Hello, theirs: Hello) -> str | None:
    """Why a peer that said `theirs` cannot be our peer, or None if it can."""
    if theirs.chain_id != ours.chain_id:
        return f"chain id {theirs.chain_id!r} is not ours ({ours.chain_id!r})"
    if theirs.genesis_hash != ours.genesis_hash:
        return f"genesis {theirs.genesis_hash.hex()[:16]}... is not ours"
    return None


@dataclass
class _Penalty:
    score: float
    at: float


class PeerBook:
    """Handshaken peers, decaying penalty scores, and refused peers with an expiry.

    A refusal is either permanent for this process (another chain: never retried) or a ban
    that expires (too many rejected messages).
    """

    def __init__(self, *, threshold: float, half_life: float) -> None:
        self._threshold = threshold
        self._half_life = half_life
        self._verified: dict[str, PeerStatus] = {}
        self._penalties: dict[str, _Penalty] = {}
        self._refused: dict[str, tuple[float, str]] = {}

    # -- handshaken peers ------------------------------------------------------------------

    def on_hello(self, peer_id: str, hello: Hello) -> bool:
        """Record a peer's hello (already checked); True if it is newly handshaken."""
        new = peer_id not in self._verified
        self._verified[peer_id] = PeerStatus(
            peer_id, hello.tip_height, hello.tip_hash, hello.node_version
        )
        return new

    def on_disconnected(self, peer_id: str) -> bool:
        """Forget a peer that lost its last connection; True if it was handshaken."""
        return self._verified.pop(peer_id, None) is not None

    def is_verified(self, peer_id: str) -> bool:
        return peer_id in self._verified

    def status(self, peer_id: str) -> PeerStatus | None:
        return self._verified.get(peer_id)

    def verified(self) -> list[PeerStatus]:
        return list(self._verified.values())

    # -- penalties and refusals ------------------------------------------------------------

    def penalize(self, peer_id: str, weight: float, now: float) -> bool:
        """Add `weight` to the peer's score (halving every half-life); True once it reaches
        the threshold, and the score starts again from zero."""
        p = self._penalties.get(peer_id)
        score = weight
        if p is not None:
            score += p.score * 0.5 ** ((now - p.at) / self._half_life)
        if score >= self._threshold:
            self._penalties.pop(peer_id, None)
            return True
        self._penalties[peer_id] = _Penalty(score, now)
        return False

    def penalty(self, peer_id: str, now: float) -> float:
        p = self._penalties.get(peer_id)
        return 0.0 if p is None else p.score * 0.5 ** ((now - p.at) / self._half_life)

    def refuse(self, peer_id: str, until: float, reason: str, now: float) -> bool:
        """Refuse the peer until `until` (FOREVER for this process); True unless it was
        already refused at least that long (a longer refusal wins)."""
        current = self.refusal(peer_id, now)
        self._verified.pop(peer_id, None)
        if current is not None and current[0] >= until:
            return False
        self._refused[peer_id] = (until, reason)
        return True

    def refusal(self, peer_id: str, now: float) -> tuple[float, str] | None:
        """(until, reason) while the peer is refused, else None (expired bans are dropped)."""
        r = self._refused.get(peer_id)
        if r is not None and r[0] <= now:
            del self._refused[peer_id]
            return None
        return r

    def is_refused(self, peer_id: str, now: float) -> bool:
        return self.refusal(peer_id, now) is not None
