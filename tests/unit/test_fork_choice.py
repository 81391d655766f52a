"""The fork choice: FINAL blocks are never given up, a FINAL branch wins, then the longer,
then the lower first hash; a total order, so nodes converge whatever they saw first."""

from hypothesis import given
from hypothesis import strategies as st

from wekacoin.consensus.fork_choice import Branch, fork_height, prefers

hashes = st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=4)


def branch(*names: bytes, final: bool = False) -> Branch:
    return Branch(tuple(n.ljust(32, b"\0") for n in names), final)


def test_a_final_block_is_never_given_up():
    assert not prefers(branch(b"a", final=True), branch(b"b", b"c", b"d", final=True))
    assert not prefers(branch(b"a", final=True), branch(b"b", b"c"))


def test_a_final_branch_beats_a_longer_tentative_one():
    assert prefers(branch(b"a", b"b", b"c"), branch(b"x", final=True))


def test_longer_then_lower_first_hash():
    assert prefers(branch(b"a"), branch(b"b", b"c"))
    assert not prefers(branch(b"b", b"c"), branch(b"a"))
    assert prefers(branch(b"b"), branch(b"a"))
    assert not prefers(branch(b"a"), branch(b"b"))


def test_extending_our_chain_and_nothing_new():
    assert prefers(branch(), branch(b"a"))
    assert not prefers(branch(b"a"), branch())
    assert not prefers(branch(), branch())


@given(hashes, hashes, st.booleans(), st.booleans())
def test_two_different_branches_agree_on_one(a, b, final_a, final_b):
    """Branches that part at their first block (so they differ): never both move; exactly
    one moves unless both are FINAL (a safety violation the choice does not resolve)."""
    if a[0] == b[0]:
        return
    x, y = Branch(tuple(a), final_a), Branch(tuple(b), final_b)
    moves = prefers(x, y) + prefers(y, x)
    assert moves == (0 if final_a and final_b else 1)


def test_fork_height():
    assert fork_height([b"a", b"b", b"c"], [b"a", b"x"]) == 1
    assert fork_height([b"a", b"b"], [b"a", b"b", b"c"], start=10) == 12
    assert fork_height([], [b"a"]) == 0
