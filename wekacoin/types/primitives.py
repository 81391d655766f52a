"""Named integer and byte-string types of the protocol.

Named types cost nothing at run time (they are `typing.NewType`s) but the codec checks them
when decoding untrusted bytes: unsigned integers lie in [0, 2**64), fixed-size byte strings
have exactly their length. The type checker sees each as its underlying `int` or `bytes`,
because the names are made by a function call it cannot follow.

Score is a metric value in fixed point: round(score * SCORE_SCALE); it may be negative (R2,
kappa). ByteSize is the length of a blob in bytes. Nonce32 is a random salt, e.g. the nonce
of a data-group commitment.
"""

from typing import TYPE_CHECKING

from wekacoin.types.codec import fixed_bytes, signed, unsigned

if TYPE_CHECKING:
    Height = int
    Amount = int
    Nonce = int
    TaskId = int
    SubmissionId = int
    Round = int
    Step = int
    Millis = int
    Score = int
    ByteSize = int
    Hash = bytes
    Address = bytes
    PublicKey = bytes
    Signature = bytes
    VrfProof = bytes
    Nonce32 = bytes
else:
    Height = unsigned("Height")
    Amount = unsigned("Amount")
    Nonce = unsigned("Nonce")
    TaskId = unsigned("TaskId")
    SubmissionId = unsigned("SubmissionId")
    Round = unsigned("Round")
    Step = unsigned("Step")
    Millis = unsigned("Millis")
    Score = signed("Score")
    ByteSize = unsigned("ByteSize")
    Hash = fixed_bytes("Hash", 32)
    Address = fixed_bytes("Address", 20)
    PublicKey = fixed_bytes("PublicKey", 32)
    Signature = fixed_bytes("Signature", 64)
    VrfProof = fixed_bytes("VrfProof", 80)
    Nonce32 = fixed_bytes("Nonce32", 32)

ZERO_HASH = bytes(32)
