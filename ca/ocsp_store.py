"""Pre-signed OCSP responses, Boulder style (its ocsp-updater and Let's Encrypt's responder): a response
for each certificate asked about is signed once, stored, served as stored bytes, and re-signed by the
scheduler before half its validity has passed.

A stored response is served only while two things hold in the one statement that reads it: the status it
states equals the certificate row's status (a revocation committed by any process makes every stored
`good` response of that certificate unservable at once, even one stored by a request that raced with the
revocation), and it was signed by the signer that answers for its CA key now (a rotated OCSP signer or a
rolled-over CA key is never answered with the old signer's bytes). Revocation also deletes the rows in its
own transaction (ca/store.py `mark_revoked`), so the table keeps no stale answers. Rows are keyed by
certificate serial and the CertID's hash algorithm (as spelt: `sha1+null` carries NULL parameters, `sm3`
none) and issuerKeyHash: the CA key that issued, and the exact CertID the client asked with, which the
stored response repeats byte for byte (RFC 6960 §4.2.1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Connection, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from store.db import Database
from store.models import Certificate, OCSPResponse
from store.raw import RawStatement

REFRESH_MARGIN = timedelta(minutes=15)  # more than the scheduler's period (TRUSTSEAL_OCSP_REFRESH_SECONDS)
_R = OCSPResponse.__table__.c
_C = Certificate.__table__.c
_LOOKUP = (
    select(_R.der, _R.this_update, _R.next_update)
    .join_from(OCSPResponse.__table__, Certificate.__table__, _C.serial == _R.serial)
    .where(
        _R.serial == bindparam("serial"),
        _R.hash_algorithm == bindparam("hash_algorithm"),
        _R.issuer_key_hash == bindparam("issuer_key_hash"),
        _R.signer == bindparam("signer"),
        _R.status == _C.status,  # a revocation committed anywhere outranks any stored `good`
    )
)


@dataclass(frozen=True)
class StoredKey:
    """What names a stored response: the certificate, the CertID's form and CA key, and the signer."""

    serial: str  # lowercase hex, as certificate rows
    hash_algorithm: str
    issuer_key_hash: str  # hex
    signer: str  # hex SHA-256 of the OCSP signer certificate


@dataclass(frozen=True)
class Stored:
    der: bytes
    this_update: datetime
    next_update: datetime
    kept: bool = True  # False: signed, but the row could not be written (the answer is right either way)


@dataclass(frozen=True)
class Due:
    """A stored response past half its validity (or signed by a signer no longer in use)."""

    serial: str
    hash_algorithm: str
    issuer_key_hash: str
    signer: str
    expired_certificate: bool


def forget(session: Session | Connection, serial: str) -> None:
    """Drop the stored responses of `serial` in the caller's transaction (revocation: ca/store.py)."""
    session.execute(delete(OCSPResponse).where(OCSPResponse.serial == serial))


class PresignedResponses:
    """Reads and writes the `ocsp_responses` table. `lookup` is the responder's hot path: one statement
    on a kept DBAPI connection (store/db.py `raw_reading`), no ORM."""

    def __init__(self, db: Database) -> None:
        self.db = db
        dialect = db.engine.dialect
        self._lookup = RawStatement(_LOOKUP, dialect)
        date_type = _R.this_update.type.dialect_impl(dialect)
        processor = date_type.result_processor(dialect, None)
        self._date = cast(Callable[[Any], datetime], processor or (lambda value: value))
        self._insert = postgresql.insert if dialect.name == "postgresql" else sqlite.insert

    def lookup(self, key: StoredKey, now: datetime) -> Stored | None:
        """The stored response for `key` if it still states the certificate's status and is current."""
        values = {
            "serial": key.serial,
            "hash_algorithm": key.hash_algorithm,
            "issuer_key_hash": key.issuer_key_hash,
            "signer": key.signer,
        }
        try:
            row = self._read(values)
        except Exception:  # a kept connection the server dropped (restart, idle timeout): once more, fresh
            row = self._read(values)
        if row is None:
            return None
        next_update = self._date(row[2])
        if next_update <= now:
            return None
        return Stored(bytes(row[0]), self._date(row[1]), next_update)

    def _read(self, values: dict[str, str]) -> Any:
        with self.db.raw_reading() as cursor:
            return self._lookup.execute(cursor, values).fetchone()

    def put(self, key: StoredKey, status: str, der: bytes, this_update: datetime, next_update: datetime) -> None:
        """Store (or replace) the response for `key`, stating `status`. A response signed from a status
        that changed meanwhile is stored too but never served (see `lookup`); the next request re-signs."""
        values = {
            "serial": key.serial,
            "hash_algorithm": key.hash_algorithm,
            "issuer_key_hash": key.issuer_key_hash,
            "signer": key.signer,
            "status": status,
            "this_update": this_update,
            "next_update": next_update,
            "der": der,
        }
        statement = self._insert(OCSPResponse).values(values)
        statement = statement.on_conflict_do_update(
            index_elements=["serial", "hash_algorithm", "issuer_key_hash"],
            set_={name: statement.excluded[name] for name in ("signer", "status", "this_update", "next_update", "der")},
        )
        with self.db.write_connection() as connection:
            connection.execute(statement)

    def due(self, now: datetime, validity: timedelta, signers: Sequence[str], limit: int) -> list[Due]:
        """Stored responses to re-sign or drop: within REFRESH_MARGIN of half their validity (so a
        scheduler running more often than that re-signs each before half has passed), or signed by a
        signer not in `signers` (the ones answering now)."""
        half = now + validity / 2 + REFRESH_MARGIN
        query = (
            select(_R.serial, _R.hash_algorithm, _R.issuer_key_hash, _R.signer, _C.not_after)
            .join_from(OCSPResponse.__table__, Certificate.__table__, _C.serial == _R.serial)
            .where((_R.next_update <= half) | _R.signer.not_in(list(signers)))
            .order_by(_R.next_update)
            .limit(limit)
        )
        with self.db.session() as session:
            rows = session.execute(query).all()
        return [Due(r[0], r[1], r[2], r[3], r[4] <= now) for r in rows]

    def drop(self, due: Due) -> None:
        with self.db.write_connection() as connection:
            connection.execute(
                delete(OCSPResponse).where(
                    OCSPResponse.serial == due.serial,
                    OCSPResponse.hash_algorithm == due.hash_algorithm,
                    OCSPResponse.issuer_key_hash == due.issuer_key_hash,
                )
            )
