"""The log side of witnessing: ask the configured witnesses (witnesses.yaml) to cosign each new
checkpoint, keep the cosignatures that verify, and serve them with the checkpoint they sign.

A `Collector` thread (started with the app, like the integrator) looks every `every` seconds at the
checkpoint this process last published and submits it to each witness that has not cosigned it yet:
`old_size` is the size that witness last cosigned (from `ledger_cosignatures`, or learned from its 409
answer), with our consistency proof from there. A returned cosignature is kept only if it verifies
under that witness's configured key and names it. Only the newest checkpoint is submitted (a busy log
signs several a second), and a witness that is down, slow or refusing costs its own short timeouts and
an exponential back-off in this thread: requests and the integrator never wait for it. Refusals are
logged; a 422 (the witness holds a head our log is not consistent with) is logged as an error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime

import httpx
from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from gm.sm3 import sm3
from ledger.checkpoint import Checkpoint, Cosignature, parse_cosignature
from ledger.cosignature import verify_cosignature
from ledger.errors import CheckpointError
from ledger.periodic import Periodic
from ledger.witness_config import WitnessEndpoint
from store.db import Database
from store.models import LedgerCosignature

log = logging.getLogger("trustseal.ledger.witnessing")

DEFAULT_EVERY = 1.0
TIMEOUT = httpx.Timeout(3.0, connect=1.0)
MIN_BACKOFF = 1.0  # a failing witness is retried after 1, 2, 4 … s, at most every MAX_BACKOFF
MAX_BACKOFF = 60.0
_MAX_INT64 = 2**63 - 1

_C = LedgerCosignature.__table__.c


def note_digest(note: str) -> str:
    return sm3(note.encode("utf-8")).hex()


class CosignatureStore:
    """`ledger_cosignatures`: verified cosignatures by the SM3 of the note they sign."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, checkpoint: Checkpoint, cosignature: Cosignature) -> None:
        row = {
            "note_sm3": note_digest(checkpoint.note),
            "key_id": cosignature.key_id,
            "witness": cosignature.witness,
            "size": checkpoint.size,
            "time": cosignature.time,
            "signature": cosignature.signature,
            "created_at": datetime.now(UTC),
        }
        try:
            with self.db.session() as session:
                session.execute(insert(LedgerCosignature.__table__), row)  # type: ignore[arg-type]
        except IntegrityError:  # that witness already cosigned this note (another process asked too)
            pass

    def for_note(self, note: str) -> tuple[Cosignature, ...]:
        with self.db.engine.connect() as connection:
            rows = connection.execute(
                select(_C.witness, _C.key_id, _C.time, _C.signature)
                .where(_C.note_sm3 == note_digest(note))
                .order_by(_C.witness)
            ).all()
        return tuple(Cosignature(row.witness, row.key_id, int(row.time), bytes(row.signature)) for row in rows)

    def attach(self, checkpoint: Checkpoint) -> Checkpoint:
        """The checkpoint with every stored cosignature over exactly its note."""
        return replace(checkpoint, cosignatures=self.for_note(checkpoint.note))

    def last_size(self, key_id: str) -> int:
        """The largest size a witness key cosigned for this log (0 if none)."""
        with self.db.engine.connect() as connection:
            found = connection.execute(select(func.max(_C.size)).where(_C.key_id == key_id)).scalar()
        return 0 if found is None else int(found)


class SubmissionFailed(RuntimeError):
    pass


class Collector(Periodic):
    thread_name = "ledger-cosignatures"

    def __init__(
        self,
        published: Callable[[], Checkpoint | None],
        consistency_proof: Callable[[int, int], list[bytes]],
        store: CosignatureStore,
        witnesses: list[WitnessEndpoint],
        *,
        every: float = DEFAULT_EVERY,
        client: httpx.Client | None = None,
    ) -> None:
        super().__init__(every, "collection")
        self.published = published
        self.consistency_proof = consistency_proof
        self.store = store
        self.witnesses = list(witnesses)
        self.client = client or httpx.Client(timeout=TIMEOUT, follow_redirects=False, trust_env=False)
        self._sizes: dict[str, int] = {}  # witness name -> size it last cosigned
        self._done: dict[str, str] = {}  # witness name -> note it cosigned last
        self._retry_at: dict[str, float] = {}
        self._failures: dict[str, int] = {}

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        self.client.close()

    def tick(self) -> None:
        """One round over the witnesses; never raises."""
        checkpoint = self.published()
        if checkpoint is None:
            return
        for witness in self.witnesses:
            if self._done.get(witness.name) == checkpoint.note:
                continue
            if time.monotonic() < self._retry_at.get(witness.name, 0.0):
                continue
            try:
                self.submit(witness, checkpoint)
            except Exception as exc:
                failures = self._failures.get(witness.name, 0) + 1
                self._failures[witness.name] = failures
                backoff = min(MAX_BACKOFF, max(MIN_BACKOFF, self.every) * 2 ** (failures - 1))
                self._retry_at[witness.name] = time.monotonic() + backoff
                level = logging.ERROR if isinstance(exc, SubmissionFailed) else logging.WARNING
                log.log(level, "witness %s did not cosign checkpoint %d: %s", witness.name, checkpoint.size, exc)
            else:
                self._failures.pop(witness.name, None)
                self._retry_at.pop(witness.name, None)
                self._done[witness.name] = checkpoint.note

    def submit(self, witness: WitnessEndpoint, checkpoint: Checkpoint) -> Cosignature:
        """Submit one checkpoint; on a 409 learn the witness's size and submit once more from there."""
        old = self._sizes.get(witness.name)
        if old is None:
            old = self.store.last_size(witness.key_id)
        for _ in range(2):
            if old > checkpoint.size:
                raise SubmissionFailed(f"the witness cosigned size {old}, beyond this checkpoint's {checkpoint.size}")
            proof = self.consistency_proof(old, checkpoint.size) if old > 0 else []
            body = {"old_size": old, "proof": [value.hex() for value in proof], "checkpoint": checkpoint.to_json()}
            response = self.client.post(witness.submission_url, json=body)
            if response.status_code == 409:
                size = _conflict_size(response)
                if size == old:
                    raise SubmissionFailed(f"409 for old_size {old} naming the same size")
                self._sizes[witness.name] = old = size
                continue
            if response.status_code != 200:
                raise SubmissionFailed(f"HTTP {response.status_code} {_code(response)}")
            cosignature = self._verified(witness, checkpoint, response)
            self.store.add(checkpoint, cosignature)
            self._sizes[witness.name] = checkpoint.size
            return cosignature
        raise SubmissionFailed("the witness's size kept changing")

    @staticmethod
    def _verified(witness: WitnessEndpoint, checkpoint: Checkpoint, response: httpx.Response) -> Cosignature:
        try:
            body = response.json()
            cosignature = parse_cosignature(body.get("cosignature") if isinstance(body, dict) else None)
            if cosignature.witness != witness.name:
                raise CheckpointError(f"it names itself {cosignature.witness!r}", code="cosignature_invalid")
            if cosignature.time > _MAX_INT64:
                raise CheckpointError("its time is beyond 2^63", code="cosignature_invalid")
            verify_cosignature(cosignature, checkpoint.note, witness.key)
        except (ValueError, CheckpointError) as exc:
            raise SubmissionFailed(f"its answer is not a valid cosignature: {exc}") from None
        return cosignature


def _conflict_size(response: httpx.Response) -> int:
    try:
        size = response.json().get("size")
    except (ValueError, AttributeError):
        size = None
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= _MAX_INT64:
        raise SubmissionFailed("409 without a size")
    return size


def _code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("code", ""))
    except (ValueError, AttributeError):
        return ""
