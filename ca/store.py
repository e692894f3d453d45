"""The one module that writes certificate rows, and the issuance event committed with each.

Two ways in, one SQL: `add` runs the Core INSERT in the caller's transaction (CA creation, cross-
certification, the OCSP signer provisioned with its CA); `IssuanceWriter` runs the same statement
compiled once on the DBAPI connection (store/raw.py), the issuance hot path (bench/bench_issuance.py:
SQLAlchemy's execution layer costs more than the rest of the transaction). Revocation marks rows here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, bindparam, insert, select
from sqlalchemy.orm import Session

from ca import ocsp_store
from ca.errors import CANotIssuing
from ledger.events import EVENT_TABLE, INSERT_EVENT
from store.db import Database
from store.models import Certificate, CertificateAuthority
from store.raw import RawStatement

_INSERT_CERTIFICATE = insert(Certificate.__table__)  # type: ignore[arg-type]  # built once: compiled-statement cache
_CERTIFICATE_COLUMNS = (
    "serial",
    "issuer_ca",
    "subject",
    "profile",
    "algorithm",
    "not_before",
    "not_after",
    "status",
    "fingerprint_sha256",
    "der",
    "is_ca",
    "created_at",
    "issuer_key_ref",
    "crl_scope",
)
_EVENT_COLUMNS = ("type", "created_at", "actor", "subject", "payload")
_T = CertificateAuthority.__table__.c
_SELECT_CA_FOR_ISSUANCE = (
    select(_T.status, _T.certificate_serial, _T.key_ref).where(_T.name == bindparam("name")).with_for_update(read=True)
)


@dataclass(frozen=True)
class PreparedCertificate:
    """A signed certificate and the columns of its row, before anything is written."""

    der: bytes
    serial_hex: str
    validity: tuple[datetime, datetime]
    subject_text: str
    fingerprint: str
    issuer_ca: str | None
    profile: str
    algorithm: str
    issuer_key_ref: str | None = None  # the CA key that signed it (custody `name@version`)
    crl_scope: str | None = None  # the CRL scope its distribution point names (ca/crl.py); None: its key's base


def certificate_row(prepared: PreparedCertificate, is_ca: bool = False) -> dict[str, object]:
    return {
        "serial": prepared.serial_hex,
        "issuer_ca": prepared.issuer_ca,
        "subject": prepared.subject_text,
        "profile": prepared.profile,
        "algorithm": prepared.algorithm,
        "not_before": prepared.validity[0],
        "not_after": prepared.validity[1],
        "status": "good",
        "fingerprint_sha256": prepared.fingerprint,
        "der": prepared.der,
        "is_ca": is_ca,
        "created_at": datetime.now(UTC),
        "issuer_key_ref": prepared.issuer_key_ref,
        "crl_scope": prepared.crl_scope,
    }


def add(
    session: Session | Connection,
    prepared: PreparedCertificate,
    *,
    is_ca: bool = False,
    event: dict[str, object] | None = None,
) -> None:
    """The certificate row (and its event row, if given) in the caller's transaction. Core INSERT: the
    unit of work adds ~0.5 ms per certificate and nothing we need. A duplicate serial (127 CSPRNG bits:
    only a broken RNG) fails the primary key at commit."""
    session.execute(_INSERT_CERTIFICATE, certificate_row(prepared, is_ca=is_ca))
    if event is not None:
        session.execute(INSERT_EVENT, event)


@dataclass(frozen=True)
class BulkRevocation:
    """The revocation columns `mark_revoked` sets, for rows bulk-loaded as already revoked."""

    revoked_at: datetime
    reason: str
    invalidity_date: datetime | None = None


def bulk_add(
    connection: Connection, prepared: Iterable[PreparedCertificate], revoked: BulkRevocation | None = None
) -> int:
    """Many certificate rows in the caller's transaction, each the row `add` and `IssuanceWriter` write
    (`certificate_row`, the same INSERT), or, with `revoked`, the row as `mark_revoked` then leaves it.
    For benches at scale (bench/bench_scale.py) only: no event rows, so the ledger never sees these
    certificates and no CRL is made. Returns the number of rows written."""
    rows = []
    for item in prepared:
        row = certificate_row(item)
        if revoked is not None:
            row |= {
                "status": "revoked",
                "revoked_at": revoked.revoked_at,
                "revocation_reason": revoked.reason,
                "invalidity_date": revoked.invalidity_date,
            }
        rows.append(row)
    if rows:
        connection.execute(_INSERT_CERTIFICATE, rows)
    return len(rows)


def mark_revoked(
    session: Session, row: Certificate, reason: str, revoked_at: datetime, invalidity_date: datetime | None
) -> None:
    """Revoked in the caller's transaction; the caller holds the CA row lock and has re-read `row` under it.
    Its pre-signed OCSP responses go in the same transaction (the next request signs `revoked`)."""
    row.status = "revoked"
    row.revoked_at = revoked_at
    row.revocation_reason = reason
    row.invalidity_date = invalidity_date
    session.flush()
    ocsp_store.forget(session, row.serial)


class IssuanceWriter:
    """Certificate row and event in one short transaction on the DBAPI connection, after the CA row is
    re-read inside it (FOR SHARE on PostgreSQL, IMMEDIATE on SQLite)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._raw: tuple[RawStatement, RawStatement, RawStatement] | None = None

    def commit(
        self,
        ca: tuple[str, str, str, str],
        prepared: PreparedCertificate,
        event: dict[str, object],
        also: Sequence[dict[str, object]] = (),
    ) -> int:
        """`ca`: (name, status, certificate serial, key ref) as read before signing; if the row differs
        now (withdrawn or re-keyed meanwhile), nothing is written and CANotIssuing is raised.
        Returns the event's id."""
        check, insert_certificate, insert_event = self._statements()
        name, *expected = ca
        with self.db.raw_writing() as cursor:
            row = check.execute(cursor, {"name": name}).fetchone()
            if row is None or list(row) != expected:
                raise CANotIssuing(f"{name} changed while the certificate was signed; nothing was issued")
            insert_certificate.execute(cursor, certificate_row(prepared))
            inserted = insert_event.execute(cursor, event).fetchone()
            for extra in also:
                insert_event.execute(cursor, extra).fetchone()
        return int(inserted[0])

    def _statements(self) -> tuple[RawStatement, RawStatement, RawStatement]:
        if self._raw is None:
            dialect = self.db.engine.dialect
            self._raw = (
                RawStatement(_SELECT_CA_FOR_ISSUANCE, dialect),
                RawStatement(_INSERT_CERTIFICATE, dialect, _CERTIFICATE_COLUMNS),
                RawStatement(
                    insert(EVENT_TABLE).returning(EVENT_TABLE.c.id),  # type: ignore[arg-type]
                    dialect,
                    _EVENT_COLUMNS,
                ),
            )
        return self._raw


def switch_key(
    session: Session,
    ca: CertificateAuthority,
    *,
    key_ref: str,
    crl_scope: str,
    certificate: PreparedCertificate,
    until: datetime,
) -> dict[str, str | None]:
    """A CA rolls over (ca/rollover.py), in the caller's transaction under the CA row lock: the new CA
    certificate's row, the row's current key / certificate / CRL scope switched to it, and the old key
    (with its certificate, CRL scope and OCSP signer) kept in `previous_keys`, where CRLs and OCSP keep
    answering for what it issued. The caller provisions the new key's OCSP signer. Returns the old key."""
    from asn1crypto import x509

    add(session, certificate, is_ca=True)
    ocsp_serial = None
    if ca.ocsp_certificate_der is not None:
        ocsp_serial = f"{x509.Certificate.load(ca.ocsp_certificate_der).serial_number:x}"
    previous: dict[str, str | None] = {
        "key_ref": ca.key_ref,
        "crl_scope": ca.crl_scope or "",
        "certificate_serial": ca.certificate_serial,
        "ocsp_key_ref": ca.ocsp_key_ref,
        "ocsp_certificate_serial": ocsp_serial,
        "until": until.isoformat(),
    }
    ca.previous_keys = [*(ca.previous_keys or []), previous]
    ca.key_ref = key_ref
    ca.crl_scope = crl_scope
    ca.certificate_serial = certificate.serial_hex
    ca.certificate_der = certificate.der
    session.flush()
    return previous


def set_ocsp_signer(session: Session, ca: CertificateAuthority, key_ref: str, certificate_der: bytes) -> None:
    """The CA's OCSP signer switched to `key_ref` (its certificate's row is written with `add`)."""
    ca.ocsp_key_ref = key_ref
    ca.ocsp_certificate_der = certificate_der
    session.flush()


def add_ca(
    session: Session,
    *,
    name: str,
    parent: str | None,
    algorithm: str,
    key_ref: str,
    certificate_serial: str,
    certificate_der: bytes,
    region_code: str | None = None,
    region_name: str | None = None,
    ocsp_key_ref: str | None = None,
    offline: bool = False,
) -> CertificateAuthority:
    """A new CA row, active, in the caller's transaction (its certificate's row is written with `add`):
    at creation, on a ceremony's import, or when an offline root is adopted."""
    row = CertificateAuthority(
        name=name,
        parent=parent,
        algorithm=algorithm,
        key_ref=key_ref,
        region_code=region_code,
        region_name=region_name,
        certificate_serial=certificate_serial,
        certificate_der=certificate_der,
        ocsp_key_ref=ocsp_key_ref,
        status="active",
        created_at=datetime.now(UTC),
        offline=offline,
    )
    session.add(row)
    session.flush()
    return row


def mark_withdrawn(session: Session, ca: CertificateAuthority, history: list[dict[str, str]], since: datetime) -> None:
    """A CA withdrawn (ca/withdrawal.py), under its row lock: its status and the trust list's history of it."""
    ca.status_history = [*history, {"status": "withdrawn", "from": since.isoformat()}]
    ca.status = "withdrawn"
    session.flush()


def set_previous_ocsp_signer(
    session: Session, ca: CertificateAuthority, key_ref: str, ocsp_key_ref: str, ocsp_certificate_serial: str
) -> None:
    """An earlier key's OCSP signer renewed (ca/rollover.py): its `previous_keys` entry names the new one."""
    kept = []
    for entry in ca.previous_keys or []:
        entry = dict(entry)
        if entry["key_ref"] == key_ref:
            entry["ocsp_key_ref"] = ocsp_key_ref
            entry["ocsp_certificate_serial"] = ocsp_certificate_serial
        kept.append(entry)
    ca.previous_keys = kept  # a new list: the JSON column sees the change
    session.flush()


def mark_offline(session: Session, ca: CertificateAuthority) -> None:
    """A root whose key left online custody for a ceremony home (ca/ceremony_home.py)."""
    ca.offline = True
    session.flush()
