"""Consensus: Algorand's BA* as a pure state machine, its messages and their checks.

    player, actions = step(player, event)

- `player.py`: the state machine (`Player`, `step`); `events.py` in, `actions.py` out.
- `messages.py`: wire records (`UnverifiedVote`, `UnverifiedProposal`, `Certificate`) and
  the step numbering; `verify.py`: the only way to a counted `Vote` or a votable `Proposal`
  (with `Verifier`, a cache in front of the checks), and `verify_certificate` for sync.
- `tally.py` counts one step; `ballot.py` signs our votes, one value per step;
  `proposals.py` keeps the round's blocks; `rankings.py` our side of ranking agreement;
  `checkpoint.py` what is persisted before a vote leaves; `assemble.py` helps drivers.

Where the state machine departs from the paper (Gilad et al. SOSP'17), and why:
- Certificate catch-up: a quorum for a value in a terminating step (BinaryBA* returns, or
  the final step) decides the round when it arrives for the step being counted or a later
  one, so a node that fell behind jumps ahead. A quorum that completes in a step the node
  has already left does not count, exactly as Alg. 5 counts only the current step (late
  votes there could otherwise overturn what others decided meanwhile).
- Fast-forward: at a timeout, a node that sees more than a third of a committee (more than
  Byzantine stake) voting in a later period, or two or more BinaryBA* steps ahead, jumps
  there as if its timers had fired without quorums (a legal run under message delay, so
  no safety argument changes). After a partition heals nodes otherwise stay out of step.
- Alg. 8's votes in steps b+1..b+3 after deciding at b are cast on demand: when a vote of
  a node still in one of those steps arrives. Same help to stragglers, none of the cost
  (three sortitions per user per round) when nobody is late.
- Recovery instead of HangForever: after MAXSTEPS BinaryBA* steps the node starts the next
  period of the same round (new proposer and committee credentials: period is part of the
  sortition input). A node that decided never votes again in that round, so a later period
  cannot gather a final quorum against a FINAL block: FINAL needs more than 74 % of a
  final committee, of which at most 20 % are Byzantine, so more than 54 % honest stake
  decided and left.
- TENTATIVE blocks are applied; the first FINAL block after them makes them final. A node
  that sees the network two rounds ahead, or votes extending another tip, emits
  `RequestSync`; the driver fetches certified blocks and may replace TENTATIVE blocks by a
  branch with a FINAL block or a longer one, never a FINAL block (`testing/sim_sync.py`).
- Proposals carry the block itself (no separate priority message): after lambda_priority +
  lambda_stepvar the node votes the best block it has, or waits up to lambda_block for one.
"""
