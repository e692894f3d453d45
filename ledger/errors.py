"""Errors of the ledger core. Each carries a stable `code` so the API can answer problem+json with a 4xx."""

from __future__ import annotations


class LedgerError(ValueError):
    """Base of ledger errors: a request or a document the ledger refuses, never an internal fault."""

    code = "ledger_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code


class LedgerRangeError(LedgerError):
    """A tree size, index or size pair that names no proof or tree head of this log.

    Codes: `proof_out_of_range` (index ≥ size, size 0, first 0), `proof_inverted` (first > second),
    `size_beyond_tree` (larger than the log), `size_invalid` (negative)."""

    code = "proof_out_of_range"


class NodeMissing(RuntimeError):
    """The node store lacks a node a tree of a size it holds must have: a damaged store (5xx), not a bad request."""

    code = "ledger_node_missing"


class CheckpointError(LedgerError):
    """A checkpoint, cosignature or receipt that is malformed or does not verify.

    Codes: `checkpoint_malformed`, `checkpoint_note_mismatch`, `checkpoint_key_mismatch`,
    `checkpoint_signature_invalid`, `cosignature_invalid`, `receipt_invalid`."""

    code = "checkpoint_malformed"


class WitnessError(LedgerError):
    """A checkpoint submission a witness refuses (C2SP tlog-witness): `status` is the HTTP status the
    protocol names (400, 403, 404, 409, 422) and `extra` goes into the problem document (409: `size`)."""

    code = "witness_request_malformed"

    def __init__(self, status: int, code: str, message: str, **extra: object) -> None:
        super().__init__(message, code=code)
        self.status = status
        self.extra = extra
