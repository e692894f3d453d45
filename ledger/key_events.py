"""Key events: what custody does to a key is in the ledger (issue 11).

`RecordedCustody` wraps any `KeyCustody` (keys/ may not import the store). Each `create`, `rotate` and
`disable` opens a database transaction, does the custody operation, records `key.created`,
`key.rotated` or `key.disabled` and commits. Custody and the database are separate stores, so nothing
makes the two one atomic write; the order makes the one gap visible instead:

* custody fails → the transaction rolls back: no key, no event;
* custody succeeds, the commit fails (a crash, a lost connection) → a key version without its event.
  `reconcile_key_events` closes that gap: every custody version no key event names gets
  `key.discovered` (and a disabled one without `key.disabled` gets it, `discovered: true`). The API
  runs it at `trustseal init` and at every start of the service, so the log never silently misses a
  key; it is also how keys older than these events enter the log.

Writers are serialised by one lock (PostgreSQL advisory transaction lock; SQLite `BEGIN IMMEDIATE`), so
reconciliation never sees a custody change whose event is about to commit, and records nothing twice.
A key operation must therefore not run inside a write transaction of the same thread (on SQLite the
second writer waits for the first): callers create keys before they start writing.

Payloads name the key, its version, algorithm and `key_id` (hex SM3 of the SubjectPublicKeyInfo DER,
as checkpoints name keys; null for a MAC key, which has no public part) — never private material.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, select, text

from keys.custody import KeyAlgorithm, KeyCustody, KeyVersion, MacHandle, SigningHandle
from ledger import sm2_signatures
from ledger.events import record_event
from store.db import Database
from store.models import Event

CREATED = "key.created"
ROTATED = "key.rotated"
DISABLED = "key.disabled"
DISCOVERED = "key.discovered"
NEW_VERSION_TYPES = (CREATED, ROTATED, DISCOVERED)  # an event that says a version exists

# pg_advisory_xact_lock key of key events (ASCII "tskeyev1"): custody writers and reconciliation.
LOCK_KEY = 0x74736B6579657631

_E = Event.__table__.c


def payload(version: KeyVersion) -> dict[str, Any]:
    """What a key event says about one version: public facts only."""
    return {
        "key": version.name,
        "version": version.version,
        "algorithm": str(version.algorithm),
        "key_id": sm2_signatures.key_id(version.public_key_der) if version.public_key_der else None,
    }


@contextmanager
def _locked(db: Database) -> Iterator[Connection]:
    """One write transaction holding the key-events lock; committed on success, rolled back on any error."""
    with db.engine.connect() as connection:
        try:
            if db.is_sqlite:
                connection.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
            yield connection
            connection.commit()
        except BaseException:
            connection.rollback()
            raise


class RecordedCustody:
    """A `KeyCustody` whose changes are ledger events; reads go straight to the wrapped custody."""

    def __init__(self, inner: KeyCustody, db: Database, actor: str | None = None) -> None:
        self.inner = inner
        self.db = db
        self.actor = actor

    def as_actor(self, actor: str | None) -> RecordedCustody:
        """The same custody recording `actor` (e.g. an officer's rotation through the API)."""
        return RecordedCustody(self.inner, self.db, actor)

    def create(self, name: str, algorithm: KeyAlgorithm) -> KeyVersion:
        with _locked(self.db) as connection:
            version = self.inner.create(name, algorithm)
            record_event(connection, CREATED, actor=self.actor, subject=name, payload=payload(version))
            return version

    def rotate(self, name: str) -> KeyVersion:
        with _locked(self.db) as connection:
            previous = max(v.version for v in self.inner.versions(name))
            version = self.inner.rotate(name)
            record_event(
                connection,
                ROTATED,
                actor=self.actor,
                subject=name,
                payload={**payload(version), "previous_version": previous},
            )
            return version

    def disable(self, name: str, version: int) -> KeyVersion:
        with _locked(self.db) as connection:
            before = self.inner.get(f"{name}@{version}")
            after = self.inner.disable(name, version)
            if before.enabled:  # disabling a disabled version changes nothing: no event
                record_event(connection, DISABLED, actor=self.actor, subject=name, payload=payload(after))
            return after

    def versions(self, name: str) -> list[KeyVersion]:
        return self.inner.versions(name)

    def names(self) -> list[str]:
        return self.inner.names()

    def get(self, ref: str) -> KeyVersion:
        return self.inner.get(ref)

    def signer(self, ref: str) -> SigningHandle:
        return self.inner.signer(ref)

    def mac(self, ref: str) -> MacHandle:
        return self.inner.mac(ref)


def recorded(custody: KeyCustody, db: Database, actor: str | None = None) -> RecordedCustody:
    """`custody` with key events in `db`; a custody already recording into `db` is returned as it is."""
    if isinstance(custody, RecordedCustody) and custody.db is db:
        return custody
    return RecordedCustody(custody, db, actor)


def reconcile_key_events(db: Database, custody: KeyCustody, actor: str | None = None) -> list[int]:
    """Record `key.discovered` for every custody key version that no key event names, and
    `key.disabled` (`discovered: true`) for every disabled version without one. Returns the ids of
    the events recorded (none when the log already knows every key). Idempotent and safe to run in
    several processes at once."""
    inner = custody.inner if isinstance(custody, RecordedCustody) else custody
    recorded_ids: list[int] = []
    with _locked(db) as connection:
        known, disabled = _logged_versions(connection)
        for name in inner.names():
            for version in sorted(inner.versions(name), key=lambda v: v.version):
                key = (name, version.version)
                if key not in known:
                    body = {
                        **payload(version),
                        "enabled": version.enabled,
                        "created_at": version.created_at.isoformat(),
                    }
                    recorded_ids.append(record_event(connection, DISCOVERED, actor=actor, subject=name, payload=body))
                if not version.enabled and key not in disabled:
                    body = {**payload(version), "discovered": True}
                    recorded_ids.append(record_event(connection, DISABLED, actor=actor, subject=name, payload=body))
    return recorded_ids


def _logged_versions(connection: Connection) -> tuple[set[tuple[str, int]], set[tuple[str, int]]]:
    """(key, version) pairs that key events say exist, and those they say are disabled."""
    known: set[tuple[str, int]] = set()
    disabled: set[tuple[str, int]] = set()
    rows = connection.execute(select(_E.type, _E.payload).where(_E.type.in_((*NEW_VERSION_TYPES, DISABLED)))).all()
    for row in rows:
        body = row.payload or {}
        name, number = body.get("key"), body.get("version")
        if not isinstance(name, str) or not isinstance(number, int):
            continue
        (disabled if row.type == DISABLED else known).add((name, number))
    return known, disabled
