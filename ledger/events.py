"""Append certificate / seal / key events. The Merkle ledger (a later issue) chains these rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from gm.sm3 import sm3
from store.models import Event


def pii_digest(value: str) -> str:
    """Events carry SM3 digests of personal data, never the clear value (PIPL)."""
    return sm3(value.encode("utf-8")).hex()


def record_event(
    session: Session, type_: str, *, actor: str | None, subject: str | None, payload: dict[str, Any]
) -> Event:
    event = Event(type=type_, created_at=datetime.now(UTC), actor=actor, subject=subject, payload=payload)
    session.add(event)
    return event
