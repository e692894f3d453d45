"""CRLs: made on a CA's creation, on each revocation (in its transaction) and by the scheduler ahead of
next_update; never on a read. A public request (GET /v1/cas/{ca}/crl, POST /v1/verify) answers the
newest stored CRL, so reads cost no signature and no write (issue 12)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from asn1crypto import x509
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ca import certificates as certs
from ca import revocation as rev
from ca.errors import CRLUnavailable, UnknownCA
from gm.sm3 import sm3
from keys.custody import KeyCustody
from ledger.events import record_event
from store.db import Database
from store.models import CRL, Certificate, CertificateAuthority

CRL_VALIDITY = timedelta(days=1)
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def lock_ca(session: Session, name: str) -> CertificateAuthority:
    """Serialise revocation and CRL issuance per CA: a CRL with a higher number must never miss
    a revocation that a lower one lists. Row lock on PostgreSQL; SQLite serialises writers."""
    ca = session.get(CertificateAuthority, name, with_for_update=True, populate_existing=True)
    if ca is None:
        raise UnknownCA(f"no CA named {name!r}")
    return ca


def newest(session: Session, ca_name: str) -> CRL | None:
    return session.scalars(select(CRL).where(CRL.ca_name == ca_name).order_by(CRL.number.desc()).limit(1)).first()


def is_due(row: CRL | None, now: datetime) -> bool:
    """A CA needs a new CRL when it has none or its newest is past half its validity."""
    return row is None or row.next_update - now < CRL_VALIDITY / 2


class CRLs:
    """Issues and reads CRLs. `mutex` is the in-process counterpart of the CA row lock: revocation
    (ca/authority.py, ca/withdrawal.py) holds it around the transaction that ends in `issue`."""

    def __init__(self, db: Database, custody: KeyCustody, clock: Clock = utc_now) -> None:
        self.db = db
        self.custody = custody
        self.clock = clock
        self.mutex = threading.RLock()

    def issue(self, session: Session, ca: CertificateAuthority, actor: str | None = None) -> CRL:
        """Sign and store the CA's next CRL, and record `crl.published`, in the caller's transaction."""
        lock_ca(session, ca.name)
        last = session.scalar(select(func.max(CRL.number)).where(CRL.ca_name == ca.name))
        number = (last or 0) + 1
        now = certs.truncate(self.clock())
        revoked = session.scalars(
            select(Certificate).where(Certificate.issuer_ca == ca.name, Certificate.status == "revoked")
        )
        entries = [
            rev.RevokedEntry(int(r.serial, 16), r.revoked_at, r.revocation_reason or "unspecified", r.invalidity_date)
            for r in revoked
            if r.revoked_at is not None
        ]
        crl = rev.build_crl(
            issuer=x509.Certificate.load(ca.certificate_der),
            signer=self.custody.signer(ca.key_ref),
            number=number,
            this_update=now,
            next_update=now + CRL_VALIDITY,
            revoked=sorted(entries, key=lambda e: e.serial),
        )
        der = crl.dump()
        row = CRL(ca_name=ca.name, number=number, this_update=now, next_update=now + CRL_VALIDITY, der=der)
        session.add(row)
        session.flush()
        record_event(
            session,
            "crl.published",
            actor=actor,
            subject=ca.name,
            payload={
                "ca": ca.name,
                "number": number,
                "this_update": row.this_update.isoformat(),
                "next_update": row.next_update.isoformat(),
                "sm3": sm3(der).hex(),  # of the DER (not `…_sm3`: that suffix names legacy personal-data digests)
                "entries": len(entries),
            },
        )
        return row

    def current(self, ca_name: str) -> bytes:
        """The newest stored CRL. Read-only: signs nothing, writes nothing."""
        with self.db.session() as session:
            if session.get(CertificateAuthority, ca_name) is None:
                raise UnknownCA(f"no CA named {ca_name!r}")
            row = newest(session, ca_name)
            if row is None:
                raise CRLUnavailable(f"{ca_name} has no CRL yet; the scheduler makes one shortly")
            return row.der

    def refresh_all(self) -> dict[str, int]:
        """A new CRL for every CA (operators, tests)."""
        numbers = {}
        with self.mutex, self.db.session() as session:
            for ca in session.scalars(select(CertificateAuthority)):
                numbers[ca.name] = self.issue(session, ca).number
        return numbers

    def refresh_due(self) -> dict[str, int]:
        """The scheduler's round: a new CRL for each CA without one or past half its CRL's validity.
        Each CA in its own transaction, re-checked under its row lock (another process may have just made it)."""
        with self.db.session() as session:
            names = list(session.scalars(select(CertificateAuthority.name).order_by(CertificateAuthority.name)))
        numbers = {}
        for name in names:
            with self.mutex, self.db.session() as session:
                ca = lock_ca(session, name)
                if is_due(newest(session, name), self.clock()):
                    numbers[name] = self.issue(session, ca).number
        return numbers
