"""Consensus: BA* (Algorand) as a pure state machine, with its messages and their checks.

    player, actions = step(player, event)

`Player` (player.py) runs the rounds; `events.py` and `actions.py` are its inputs and outputs;
`messages.py` the wire records (`UnverifiedVote`, `UnverifiedProposal`, `Certificate`);
`verify.py` the only way to a counted `Vote` or a votable `Proposal`; `checkpoint.py` what is
persisted before a vote leaves; `assemble.py` a helper for drivers.
"""
