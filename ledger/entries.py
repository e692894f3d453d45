"""The ledger's entries: what each event becomes in the log (DESIGN.md, "Ledger wire format").

An entry is the JSON object `{"type", "time", "actor", "subject", …payload}` and its leaf input is the
RFC 8785 canonical JSON of that object (gm/jcs.py): the exact bytes hashed as the Merkle leaf, kept
with the event row so that a reader gets them back byte for byte. `time` is the event's commit-side
timestamp, RFC 3339 UTC with microseconds. Personal data is already a keyed digest in the payload
(ledger/pii.py); nothing here sees it in clear.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from gm import jcs
from ledger.errors import LedgerError

RESERVED = frozenset({"type", "time", "actor", "subject"})
_JSON_SAFE_INT = 2**53


def check_payload(payload: dict[str, Any]) -> None:
    """A payload may not name the entry's own fields (it is spread into the entry beside them)."""
    clash = RESERVED.intersection(payload)
    if clash:
        raise LedgerError(f"an event payload may not use the entry's fields {sorted(clash)}", code="payload_reserved")


def format_time(moment: datetime) -> str:
    """RFC 3339 UTC with microseconds: `2026-05-01T08:00:00.123456Z`."""
    if moment.tzinfo is None:
        raise LedgerError("an event time must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _jcs_safe(value: Any) -> Any:
    """JSON values RFC 8785 can carry interoperably: a float or an integer beyond 2^53 (none of which
    trustseal writes; only a foreign or legacy row could hold one) is logged as its decimal string,
    so that one odd row cannot stop the log."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        return value if abs(value) <= _JSON_SAFE_INT else str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, dict):
        return {str(key): _jcs_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jcs_safe(item) for item in value]
    return str(value)


def entry(
    type_: str, time: datetime, actor: str | None, subject: str | None, payload: dict[str, Any] | None
) -> dict[str, Any]:
    """The entry of one event: the payload's fields beside type, time, actor and subject (which win
    over a legacy payload that used their names)."""
    fields: dict[str, Any] = {key: _jcs_safe(value) for key, value in (payload or {}).items()}
    fields.update({"type": type_, "time": format_time(time), "actor": actor, "subject": subject})
    return fields


def leaf_input(value: dict[str, Any]) -> bytes:
    """The exact bytes hashed as the Merkle leaf: RFC 8785 canonical JSON of the entry."""
    return jcs.canonical(value)


def parse_leaf_input(data: bytes) -> dict[str, Any]:
    """The entry stored as `data` (what /v1/ledger/entries shows beside the base64 leaf input)."""
    value = json.loads(data.decode("utf-8"))
    if not isinstance(value, dict):
        raise LedgerError("a leaf input is a JSON object")
    return value
