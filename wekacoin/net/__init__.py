"""The network adapter: a py-libp2p host, gossip topics, and stream protocols for block sync
and blob exchange. The node driver uses `Network` (see `wekacoin.net.network` for its
contract); nothing else here needs libp2p or trio types from the caller.
"""

from wekacoin.net.api import (
    Accept,
    GossipMessage,
    Ignore,
    PeerConnected,
    PeerDisconnected,
    PeerEvent,
    PeerStatus,
    Reject,
    Topic,
    Validator,
    Verdict,
    topic_name,
)
from wekacoin.net.blobs import BlobProvider, Verifier
from wekacoin.net.blocks import BlockProvider
from wekacoin.net.config import GossipTuning, NetConfig, TopicLimits
from wekacoin.net.host import peer_id_from_seed
from wekacoin.net.messages import SyncedBlock
from wekacoin.net.network import NetStats, Network

__all__ = [
    "Accept", "BlobProvider", "BlockProvider", "GossipMessage", "GossipTuning", "Ignore",
    "NetConfig", "NetStats", "Network", "PeerConnected", "PeerDisconnected", "PeerEvent",
    "PeerStatus", "Reject", "SyncedBlock", "Topic", "TopicLimits", "Validator", "Verdict",
    "Verifier",
    "peer_id_from_seed", "topic_name",
]
