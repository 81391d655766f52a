"""Hypothesis strategies for protocol objects."""

from hypothesis import strategies as st

from wekacoin.types.metric import Metric, TaskKind
from wekacoin.types.tx import (
    ClaimStorage,
    DataSchema,
    GroupReveal,
    LeafProof,
    PublishTask,
    RevealModel,
    RevealTest,
    RevealTraining,
    Stake,
    StorageProof,
    SubmitModel,
    TaskLimits,
    Transfer,
    UnsignedTx,
    Unstake,
)

u64 = st.integers(0, 2**64 - 1)
small = st.integers(0, 1000)
score = st.integers(-(2**63), 2**64 - 1)
h32 = st.binary(min_size=32, max_size=32)
sig64 = st.binary(min_size=64, max_size=64)
address = st.binary(min_size=20, max_size=20)
text = st.text(max_size=20)
cid = st.text("abcdefghijklmnopqrstuvwxyz234567", min_size=20, max_size=60).map(lambda s: "b" + s)

cids = st.lists(cid, max_size=3).map(tuple)
group_reveals = st.lists(st.builds(GroupReveal, small, cid, u64, h32), max_size=3).map(tuple)

tx_bodies = lambda: st.one_of(  # noqa: E731 - a factory keeps hypothesis' lazy building
    st.builds(Transfer, address, u64),
    st.builds(
        PublishTask, text, st.sampled_from(Metric),
        st.builds(
            DataSchema, st.sampled_from(TaskKind), st.lists(text, max_size=3).map(tuple), text
        ),
        st.builds(TaskLimits, u64, u64), u64, u64, u64, u64,
        st.lists(h32, max_size=4).map(tuple),
    ),
    st.builds(RevealTraining, u64, group_reveals, cid, u64, score),
    st.builds(SubmitModel, u64, h32, score),
    st.builds(RevealTest, u64, group_reveals),
    st.builds(RevealModel, u64, cid, u64),
    st.builds(Stake, u64, h32, sig64),
    st.builds(Unstake, u64),
    st.builds(ClaimStorage, cids, cids),
    st.builds(StorageProof, u64, st.lists(st.builds(
        LeafProof, cid, small, st.lists(st.binary(max_size=64), max_size=3).map(tuple),
        st.binary(max_size=64),
    ), max_size=2).map(tuple)),
)


def unsigned_txs():
    return st.builds(UnsignedTx, h32, u64, u64, tx_bodies())
