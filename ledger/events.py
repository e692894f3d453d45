"""Append certificate / seal / key events. Each row is also its ledger entry's place in the
sequencer's queue (`ledger_index` NULL until ledger/sequencer.py gives it an index after commit).

Personal data goes into a payload only as a keyed digest from `ledger.pii.PiiDigests`, never clear.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert
from sqlalchemy.orm import Session

from ledger.entries import check_payload
from store.models import Event

EVENT_TABLE = Event.__table__
INSERT_EVENT = insert(EVENT_TABLE)  # type: ignore[arg-type]  # built once: compiled-statement cache


def event_row(type_: str, *, actor: str | None, subject: str | None, payload: dict[str, Any]) -> dict[str, Any]:
    """The column values of one event row (for callers that insert it themselves: store/raw.py)."""
    check_payload(payload)
    return {"type": type_, "created_at": datetime.now(UTC), "actor": actor, "subject": subject, "payload": payload}


def record_event(
    session: Session | Connection, type_: str, *, actor: str | None, subject: str | None, payload: dict[str, Any]
) -> int:
    """Append one event in the caller's transaction: it commits or rolls back with the change it records,
    and so does its place in the ledger's queue. Returns the event's id (after commit,
    `Sequencer.wait_for(id)` gives its ledger index)."""
    result = session.execute(INSERT_EVENT, event_row(type_, actor=actor, subject=subject, payload=payload))
    key = result.inserted_primary_key  # type: ignore[attr-defined]
    return int(key[0])
