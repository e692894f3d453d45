"""The witness: this instance cosigns other regions' checkpoints once they prove consistent with the
last one it cosigned (C2SP tlog-witness, JSON wire of DESIGN.md "Ledger wire format").

`add_checkpoint` takes `{"old_size", "proof": [hex…], "checkpoint": {…as GET /v1/ledger/checkpoint}}`
and answers a `Cosignature` by this instance's ledger key (`witness` = its own origin), or raises
`WitnessError` with the protocol's status, in C2SP's order:

* 400 malformed (`witness_request_malformed`, `witness_old_size_invalid`, `witness_proof_malformed`,
  `witness_proof_too_long`, the checkpoint's own codes, `checkpoint_size_out_of_range`);
* 404 `witness_origin_unknown`: not a log of witness.yaml;
* 403 `witness_log_signature_invalid`: no configured key of that origin signed the note (a key of
  another log signing this origin is no better than none);
* 400 `witness_hash_mismatch`, `checkpoint_root_invalid` (an empty tree with another root),
  `witness_old_size_too_large` (old_size > size), `witness_proof_not_empty`
  (a first sight, old_size 0, or old_size = size, has no proof), `checkpoint_timestamp_future`
  (more than MAX_SKEW ahead);
* 409 `witness_old_size_mismatch` with `size`, the size it last cosigned: a client that did not know
  it, or a replayed older checkpoint;
* 422 `witness_inconsistent`: the proof does not take the stored tree head to the submitted one, or
  the same size comes with another root. The one change then is an alarm: a `witness.alarm` event in
  this instance's own ledger (and a `witness_alarms` row so that the same refused note alarms once),
  carrying the stored signed note and the submitted one, signatures and proof. Same size with another
  root is C2SP's 409; here it is 422 with an alarm of kind `fork`, since two notes signed by the log
  for one size are proof of a split view. A failing proof (`proof_failed`) is evidence to weigh, not
  proof: anyone may submit a log's genuine checkpoint with a wrong proof.

Success advances the stored head by compare-and-swap on (size, root) in the same transaction that
signs: of two submissions from the same old size only one cosigns, the other gets 409.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from gm.sm3 import sm3
from keys.custody import SigningHandle
from ledger import sm2_signatures
from ledger.checkpoint import (
    Checkpoint,
    Cosignature,
    KeySignature,
    format_timestamp,
    parse_checkpoint,
    verify_checkpoint,
)
from ledger.cosignature import cosign
from ledger.errors import CheckpointError, WitnessError
from ledger.events import record_event
from ledger.merkle import verify_consistency
from ledger.sm2_signatures import b64encode
from ledger.witness_config import WitnessedLog
from store.db import Database
from store.models import WitnessAlarm, WitnessHead

MAX_PROOF = 63  # C2SP: a client MUST NOT send more consistency proof lines
MAX_SIZE = 2**63 - 1  # the stored sizes are signed 64-bit
MAX_SKEW = timedelta(minutes=5)  # a checkpoint's timestamp may run this far ahead of the witness's clock
ALARM = "witness.alarm"
_HEX = re.compile(r"^[0-9a-f]{2,128}$")

_W = WitnessHead.__table__.c
_A = WitnessAlarm.__table__.c


@dataclass(frozen=True)
class Submission:
    old_size: int
    proof: tuple[bytes, ...]
    checkpoint: Checkpoint
    document: Mapping[str, Any]


def parse_submission(body: object) -> Submission:
    """The request's structure (400 for anything malformed); nothing about keys or state yet."""
    if not isinstance(body, Mapping):
        raise WitnessError(400, "witness_request_malformed", "the body is a JSON object")
    missing = {"old_size", "proof", "checkpoint"} - set(body)
    if missing:
        raise WitnessError(400, "witness_request_malformed", f"the body lacks {sorted(missing)}")
    old_size = body["old_size"]
    if isinstance(old_size, bool) or not isinstance(old_size, int) or not 0 <= old_size <= MAX_SIZE:
        raise WitnessError(400, "witness_old_size_invalid", f"old_size is an integer in [0, 2^63), not {old_size!r}")
    proof = body["proof"]
    if not isinstance(proof, list):
        raise WitnessError(400, "witness_proof_malformed", "proof is a list of hex hashes")
    if len(proof) > MAX_PROOF:
        raise WitnessError(400, "witness_proof_too_long", f"at most {MAX_PROOF} proof hashes, not {len(proof)}")
    if not all(isinstance(value, str) and _HEX.match(value) and len(value) % 2 == 0 for value in proof):
        raise WitnessError(400, "witness_proof_malformed", "each proof hash is lowercase hex")
    document = body["checkpoint"]
    try:
        checkpoint = parse_checkpoint(document)
    except CheckpointError as exc:
        raise WitnessError(400, exc.code, f"checkpoint: {exc}") from None
    assert isinstance(document, Mapping)
    if checkpoint.size > MAX_SIZE:
        raise WitnessError(400, "checkpoint_size_out_of_range", "a checkpoint size is below 2^63")
    return Submission(old_size, tuple(bytes.fromhex(value) for value in proof), checkpoint, document)


@dataclass(frozen=True)
class Head:
    """The stored head of a witnessed log (what was cosigned last)."""

    size: int
    root_hash: bytes
    note: str
    key_id: str
    signature: bytes
    cosigned_at: datetime


class Witness:
    def __init__(
        self,
        db: Database,
        name: str,
        signer: Callable[[], SigningHandle],
        logs: Mapping[str, WitnessedLog],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.db = db
        self.name = name  # the `witness` of every cosignature: this instance's own origin
        self.signer = signer
        self.logs = dict(logs)
        self.clock = clock

    def head(self, origin: str) -> Head | None:
        with self.db.engine.connect() as connection:
            return _head(connection, origin)

    def add_checkpoint(self, body: object) -> Cosignature:
        submission = parse_submission(body)
        checkpoint, signed = self._authentic(submission)
        now = self.clock()
        if checkpoint.timestamp > now + MAX_SKEW:
            raise WitnessError(
                400, "checkpoint_timestamp_future",
                f"the checkpoint is dated {format_timestamp(checkpoint.timestamp)}, ahead of this witness's clock",
            )  # fmt: skip
        handle = self.signer()  # before the transaction: a first use may certify the key (its own writes)
        try:
            return self._advance(submission, checkpoint, signed, handle, now)
        except IntegrityError:  # another submission stored the first head of this origin meanwhile
            head = self.head(checkpoint.origin)
            raise WitnessError(
                409, "witness_old_size_mismatch", "another checkpoint was cosigned meanwhile",
                size=head.size if head else 0,
            ) from None  # fmt: skip

    def _authentic(self, submission: Submission) -> tuple[Checkpoint, KeySignature]:
        """The checkpoint and the log signature that verified under a key pinned for its origin."""
        checkpoint = submission.checkpoint
        log = self.logs.get(checkpoint.origin)
        if log is None:
            raise WitnessError(404, "witness_origin_unknown", f"this witness does not witness {checkpoint.origin!r}")
        signed = next(filter(None, (_signed_by(submission.document, key) for key in log.keys)), None)
        if signed is None:
            raise WitnessError(
                403, "witness_log_signature_invalid", f"no signature of {checkpoint.origin}'s key verifies the note"
            )
        if checkpoint.hash != log.hasher.name:
            raise WitnessError(400, "witness_hash_mismatch", f"{checkpoint.origin} hashes with {log.hasher.name}")
        if checkpoint.size == 0 and checkpoint.root_hash != log.hasher.empty_root():
            raise WitnessError(400, "checkpoint_root_invalid", "the empty tree's root is the hash of nothing")
        if any(len(value) != log.hasher.size for value in submission.proof):
            raise WitnessError(400, "witness_proof_malformed", f"each proof hash has {log.hasher.size} bytes")
        if submission.old_size > checkpoint.size:
            raise WitnessError(
                400, "witness_old_size_too_large", f"old_size {submission.old_size} > size {checkpoint.size}"
            )
        if submission.old_size in (0, checkpoint.size) and submission.proof:  # else a junk proof alarms "fork"
            raise WitnessError(400, "witness_proof_not_empty", "a proof from size 0, or to the same size, is empty")
        return checkpoint, signed

    def _advance(
        self, submission: Submission, checkpoint: Checkpoint, signed: KeySignature, handle: SigningHandle, now: datetime
    ) -> Cosignature:
        log = self.logs[checkpoint.origin]
        alarm: tuple[int, str] | None = None
        with self.db.write_connection() as connection:
            head = _head(connection, checkpoint.origin)
            stored = head.size if head else 0
            if submission.old_size != stored:
                raise WitnessError(
                    409, "witness_old_size_mismatch",
                    f"old_size {submission.old_size} is not the size last cosigned for {checkpoint.origin}",
                    size=stored,
                )  # fmt: skip
            if head is not None and not verify_consistency(
                head.size, checkpoint.size, head.root_hash, checkpoint.root_hash, submission.proof, hasher=log.hasher
            ):
                kind = "fork" if head.size == checkpoint.size else "proof_failed"
                alarm = (self._alarm(connection, head, submission, kind, now), kind)
            else:
                cosignature = cosign(handle, checkpoint, witness=self.name, time=int(now.timestamp()))
                self._store(connection, head, checkpoint, signed, now)
        if alarm is not None:  # committed: the alarm stays, nothing else changed
            event_id, kind = alarm
            raise WitnessError(
                422, "witness_inconsistent",
                f"the checkpoint of size {checkpoint.size} is not consistent with the one of size {stored} "
                f"this witness cosigned ({kind})",
                alarm_event=event_id, kind=kind,
            )  # fmt: skip
        return cosignature

    @staticmethod
    def _store(
        connection: Connection, head: Head | None, checkpoint: Checkpoint, signed: KeySignature, now: datetime
    ) -> None:
        values = {
            "size": checkpoint.size,
            "root_hash": checkpoint.root_hash,
            "note": checkpoint.note,
            "key_id": signed.key_id,
            "signature": signed.signature,
            "cosigned_at": now,
        }
        if head is None:
            connection.execute(insert(WitnessHead.__table__).values(origin=checkpoint.origin, **values))  # type: ignore[arg-type]
            return
        swapped = connection.execute(
            update(WitnessHead.__table__)  # type: ignore[arg-type]
            .where(_W.origin == checkpoint.origin, _W.size == head.size, _W.root_hash == head.root_hash)
            .values(**values)
        )
        if swapped.rowcount != 1:
            raise WitnessError(409, "witness_old_size_mismatch", "another checkpoint was cosigned meanwhile",
                               size=_head(connection, checkpoint.origin).size)  # type: ignore[union-attr]  # fmt: skip

    def _alarm(self, connection: Connection, head: Head, submission: Submission, kind: str, now: datetime) -> int:
        """The alarm event (once per refused note), in the refusing transaction; returns its event id."""
        checkpoint = submission.checkpoint
        note_sm3 = sm3(checkpoint.note.encode("utf-8")).hex()
        known = connection.execute(
            select(_A.event_id).where(_A.origin == checkpoint.origin, _A.note_sm3 == note_sm3)
        ).scalar()
        if known is not None:
            return int(known)
        payload = {
            "kind": kind,
            "origin": checkpoint.origin,
            "cosigned": {
                "size": head.size,
                "root_hash": head.root_hash.hex(),
                "note": head.note,
                "key_id": head.key_id,
                "signature": b64encode(head.signature),
                "cosigned_at": format_timestamp(head.cosigned_at),
            },
            "submitted": {
                "old_size": submission.old_size,
                "size": checkpoint.size,
                "root_hash": checkpoint.root_hash.hex(),
                "note": checkpoint.note,
                "signatures": [entry.to_json() for entry in checkpoint.signatures],
                "proof": [value.hex() for value in submission.proof],
            },
            "evidence": "two notes signed by the log for one size" if kind == "fork" else "a proof that fails",
        }
        event_id = record_event(connection, ALARM, actor="witness", subject=checkpoint.origin, payload=payload)
        connection.execute(
            insert(WitnessAlarm.__table__).values(  # type: ignore[arg-type]
                origin=checkpoint.origin, note_sm3=note_sm3, event_id=event_id, created_at=now
            )
        )
        return event_id


def _signed_by(document: Mapping[str, Any], key: bytes) -> KeySignature | None:
    """The signature by `key` over the note, if there is one and it verifies."""
    try:
        checkpoint = verify_checkpoint(document, key)
    except CheckpointError:
        return None
    wanted = sm2_signatures.key_id(sm2_signatures.public_key_der(key))
    return next(entry for entry in checkpoint.signatures if entry.key_id == wanted)


def _head(connection: Connection, origin: str) -> Head | None:
    row = connection.execute(select(WitnessHead.__table__).where(_W.origin == origin)).first()
    if row is None:
        return None
    return Head(int(row.size), bytes(row.root_hash), row.note, row.key_id, bytes(row.signature), row.cosigned_at)
