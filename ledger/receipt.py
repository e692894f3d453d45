"""Receipts: the ledger key's promise that an entry is logged at an index, for the caller to keep
(`X-Trustseal-Receipt`: base64 DER SM2 over "trustseal-receipt/v1\\n<origin>\\n<index>\\n<base64 leaf hash>\\n").
A receipt is given before a checkpoint covers the entry; an inclusion proof later shows it was kept."""

from __future__ import annotations

from keys.custody import SigningHandle
from ledger import sm2_signatures
from ledger.checkpoint import check_origin
from ledger.errors import CheckpointError


def receipt_message(origin: str, index: int, leaf_hash: bytes) -> bytes:
    check_origin(origin)
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        raise CheckpointError(f"receipt index {index!r} must be a non-negative integer", code="receipt_invalid")
    if len(leaf_hash) != 32:
        raise CheckpointError(f"a leaf hash has 32 bytes, not {len(leaf_hash)}", code="receipt_invalid")
    return f"trustseal-receipt/v1\n{origin}\n{index}\n{sm2_signatures.b64encode(leaf_hash)}\n".encode()


def sign_receipt(handle: SigningHandle, origin: str, index: int, leaf_hash: bytes) -> bytes:
    """The DER SM2 signature of the ledger key over the receipt message."""
    return sm2_signatures.sign(handle, receipt_message(origin, index, leaf_hash))


def verify_receipt(signature: bytes, origin: str, index: int, leaf_hash: bytes, key: bytes) -> None:
    """Raise CheckpointError (`receipt_invalid`) unless the ledger key `key` (SPKI DER or its
    certificate) signed this receipt."""
    spki = sm2_signatures.public_key_der(key)
    if not sm2_signatures.verify(spki, signature, receipt_message(origin, index, leaf_hash)):
        raise CheckpointError(f"receipt for index {index} does not verify", code="receipt_invalid")
