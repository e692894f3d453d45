"""Officers' and auditors' search over the event log (`GET /v1/events`, `trustseal events`).

Newest first, by event id. The cursor is opaque (URL-safe base64 of `v1:<id of the last event
returned>`) and the next page holds the events with a smaller id. Ids only grow, so events appended
while a caller pages go above the first page, never into a later one: a walk lists every event
committed before its first page exactly once (no duplicates, no gaps), and a new walk (or
`since=`) picks up what came later. `ledger_index` is null until the sequencer gives the event its
index; a search never runs a pass, nor writes anything else.

Filters: `type` exact, or a prefix when it ends with a dot (`certificate.`); `actor` and `subject`
exact; `since` ≤ time < `until`, ISO 8601 with a zone; `limit` 1..1000 (default 100). Bad input is a
`SearchError` with a stable code (→ 400 problem+json). Payloads are returned as stored: personal data
is in them only as keyed digests (ledger/pii.py).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, select

from ledger.entries import format_time
from ledger.errors import LedgerError
from store.db import Database
from store.models import Event

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
PARAMETERS = frozenset({"type", "actor", "subject", "since", "until", "cursor", "limit"})

_TYPE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z0-9_]+)*\.?")
_FIELD_MAX = 128  # the width of events.actor / events.subject
_TYPE_MAX = 64
_CURSOR_PREFIX = "v1:"
_E = Event.__table__.c
_COLUMNS = (_E.id, _E.ledger_index, _E.type, _E.created_at, _E.actor, _E.subject, _E.payload)


class SearchError(LedgerError):
    """A search the log refuses. Codes: `parameter_unknown`, `parameter_repeated`, `type_invalid`,
    `actor_invalid`, `subject_invalid`, `time_invalid`, `time_range_invalid`, `cursor_invalid`,
    `limit_invalid`, `limit_out_of_range`."""

    code = "search_invalid"


@dataclass(frozen=True)
class EventQuery:
    type: str | None = None
    actor: str | None = None
    subject: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    before_id: int | None = None  # from the cursor
    limit: int = DEFAULT_LIMIT


def encode_cursor(event_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{event_id}".encode()).decode("ascii").rstrip("=")


def decode_cursor(cursor: str) -> int:
    bad = SearchError("cursor is not one this service gave out (pass next_cursor unchanged)", code="cursor_invalid")
    if not cursor or len(cursor) > 64 or not re.fullmatch(r"[A-Za-z0-9_-]+", cursor):
        raise bad
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad from None
    digits = text.removeprefix(_CURSOR_PREFIX)
    if not text.startswith(_CURSOR_PREFIX) or not re.fullmatch(r"[1-9][0-9]{0,18}", digits):
        raise bad
    if encode_cursor(int(digits)) != cursor:  # one spelling per cursor
        raise bad
    return int(digits)


def parse_time(name: str, value: str) -> datetime:
    """ISO 8601 with a zone (`Z` or an offset), as UTC; a time without a zone is ambiguous and refused."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise SearchError(f"{name} is not an ISO 8601 time: {value[:64]!r}", code="time_invalid") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise SearchError(f"{name} needs a zone (Z or ±hh:mm): {value[:64]!r}", code="time_invalid")
    try:
        return moment.astimezone(UTC)  # SQLite keeps the wall time only: compare in UTC, as stored
    except OverflowError:
        raise SearchError(f"{name} is out of range: {value[:64]!r}", code="time_invalid") from None


def _text(name: str, value: str, maximum: int) -> str:
    if not value or len(value) > maximum or not value.isprintable():
        raise SearchError(f"{name} must be 1 to {maximum} printable characters", code=f"{name}_invalid")
    return value


def parse_query(params: Mapping[str, list[str]]) -> EventQuery:
    """Validate raw parameters (name → every value given) into a query; any fault is a SearchError."""
    unknown = sorted(set(params) - PARAMETERS)
    if unknown:
        raise SearchError(
            f"unknown parameter {unknown[0]!r}; known: {', '.join(sorted(PARAMETERS))}", code="parameter_unknown"
        )
    for name, values in params.items():
        if len(values) != 1:
            raise SearchError(f"give {name} at most once", code="parameter_repeated")
    one = {name: values[0] for name, values in params.items()}
    type_ = one.get("type")
    if type_ is not None and (len(type_) > _TYPE_MAX or not _TYPE.fullmatch(type_)):
        raise SearchError(
            "type is an event type (certificate.issued) or a prefix ending with a dot (certificate.)",
            code="type_invalid",
        )
    actor = _text("actor", one["actor"], _FIELD_MAX) if "actor" in one else None
    subject = _text("subject", one["subject"], _FIELD_MAX) if "subject" in one else None
    since = parse_time("since", one["since"]) if "since" in one else None
    until = parse_time("until", one["until"]) if "until" in one else None
    if since is not None and until is not None and since > until:
        raise SearchError("since is after until", code="time_range_invalid")
    before_id = decode_cursor(one["cursor"]) if "cursor" in one else None
    limit = DEFAULT_LIMIT
    if "limit" in one:
        if not re.fullmatch(r"[0-9]{1,7}", one["limit"]):
            raise SearchError("limit is a whole number", code="limit_invalid")
        limit = int(one["limit"])
        if not 1 <= limit <= MAX_LIMIT:
            raise SearchError(f"limit is 1 to {MAX_LIMIT}, not {limit}", code="limit_out_of_range")
    return EventQuery(type_, actor, subject, since, until, before_id, limit)


def _statement(query: EventQuery) -> Select[Any]:
    statement = select(*_COLUMNS)
    if query.type is not None:
        if query.type.endswith("."):
            statement = statement.where(_E.type.startswith(query.type, autoescape=True))
        else:
            statement = statement.where(_E.type == query.type)
    if query.actor is not None:
        statement = statement.where(_E.actor == query.actor)
    if query.subject is not None:
        statement = statement.where(_E.subject == query.subject)
    if query.since is not None:
        statement = statement.where(_E.created_at >= query.since)
    if query.until is not None:
        statement = statement.where(_E.created_at < query.until)
    if query.before_id is not None:
        statement = statement.where(_E.id < query.before_id)
    return statement.order_by(_E.id.desc()).limit(query.limit + 1)


def search(db: Database, query: EventQuery) -> dict[str, Any]:
    """`{"events": [...], "next_cursor": str | None}`, newest first; reads only."""
    with db.engine.connect() as connection:
        rows = connection.execute(_statement(query)).all()
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    events = [
        {
            "id": int(row.id),
            "ledger_index": None if row.ledger_index is None else int(row.ledger_index),
            "type": row.type,
            "time": format_time(row.created_at),
            "actor": row.actor,
            "subject": row.subject,
            "payload": row.payload,
        }
        for row in rows
    ]
    return {"events": events, "next_cursor": encode_cursor(events[-1]["id"]) if more else None}
