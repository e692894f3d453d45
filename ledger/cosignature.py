"""Witness cosignatures (C2SP tlog-cosignature, SM2): a witness's signature over
"cosignature/v1\\ntime <unix seconds>\\n" + the checkpoint note, after it checked consistency."""

from __future__ import annotations

from keys.custody import SigningHandle
from ledger import sm2_signatures
from ledger.checkpoint import Checkpoint, Cosignature
from ledger.errors import CheckpointError


def cosignature_message(note: str, time: int) -> bytes:
    """The bytes a witness signs: its claim to have seen `note` (and checked it) at `time`."""
    if isinstance(time, bool) or not isinstance(time, int) or time < 0:
        raise CheckpointError(f"cosignature time {time!r} must be unix seconds", code="cosignature_invalid")
    return f"cosignature/v1\ntime {time}\n".encode() + note.encode("utf-8")


def cosign(handle: SigningHandle, checkpoint: Checkpoint, *, witness: str, time: int) -> Cosignature:
    """This instance's cosignature, as `witness`, on a checkpoint it has verified and found consistent."""
    signature = sm2_signatures.sign(handle, cosignature_message(checkpoint.note, time))
    return Cosignature(witness, sm2_signatures.key_id(handle.public_key_der), time, signature)


def verify_cosignature(cosignature: Cosignature, note: str, key: bytes) -> None:
    """Raise CheckpointError (`cosignature_invalid`) unless the witness key `key` (SPKI DER or its
    certificate) made `cosignature` over `note`."""
    spki = sm2_signatures.public_key_der(key)
    wanted = sm2_signatures.key_id(spki)
    if cosignature.key_id != wanted:
        raise CheckpointError(
            f"cosignature names key {cosignature.key_id}, not the witness key {wanted}", code="cosignature_invalid"
        )
    if not sm2_signatures.verify(spki, cosignature.signature, cosignature_message(note, cosignature.time)):
        raise CheckpointError(f"cosignature of {cosignature.witness} does not verify", code="cosignature_invalid")
