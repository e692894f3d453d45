"""CRLs: made on a CA's creation, on each revocation (in its transaction) and by the scheduler ahead of
next_update; never on a read. A public request (GET /v1/cas/{ca}/crl, POST /v1/verify) answers the
newest stored CRL, so reads cost no signature and no write (issue 12)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from asn1crypto import crl as asn1_crl
from asn1crypto import x509
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ca import ceremony
from ca import certificates as certs
from ca import revocation as rev
from ca.errors import CRLUnavailable, UnknownCA
from gm.sm3 import sm3
from keys.custody import KeyCustody
from ledger.events import record_event
from store.db import Database
from store.models import CRL, CeremonyRequest, Certificate, CertificateAuthority

CRL_VALIDITY = timedelta(days=1)
# An offline CA's CRL (ca/ceremony.py) lives longer: the scheduler asks for the next one half-way through,
# which leaves the officers about two weeks to hold the ceremony.
OFFLINE_CRL_VALIDITY = timedelta(days=30)
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


def validity_of(ca: CertificateAuthority) -> timedelta:
    return OFFLINE_CRL_VALIDITY if ca.offline else CRL_VALIDITY


def is_due(row: CRL | None, now: datetime, validity: timedelta = CRL_VALIDITY) -> bool:
    """A CA needs a new CRL when it has none or its newest is past half its validity."""
    return row is None or row.next_update - now < validity / 2


def store_crl(session: Session, ca_name: str, der: bytes, number: int, entries: int, actor: str | None) -> CRL:
    """The CRL row and `crl.published`, in the caller's transaction (signed here, or imported from a ceremony)."""
    tbs = asn1_crl.CertificateList.load(der)["tbs_cert_list"]
    this_update, next_update = tbs["this_update"].native, tbs["next_update"].native
    row = CRL(ca_name=ca_name, number=number, this_update=this_update, next_update=next_update, der=der)
    session.add(row)
    session.flush()
    record_event(
        session,
        "crl.published",
        actor=actor,
        subject=ca_name,
        payload={
            "ca": ca_name,
            "number": number,
            "this_update": row.this_update.isoformat(),
            "next_update": row.next_update.isoformat(),
            "sm3": sm3(der).hex(),  # of the DER (not `…_sm3`: that suffix names legacy personal-data digests)
            "entries": entries,
        },
    )
    return row


def next_number(session: Session, ca_name: str) -> int:
    """Above every CRL number the CA ever stored *or asked its ceremony for* (pending, superseded or
    completed): a superseded request may have been signed offline already, and two CRLs of one issuer must
    never share a number (RFC 5280 §5.2.3). Caller holds the CA row lock."""
    stored = session.scalar(select(func.max(CRL.number)).where(CRL.ca_name == ca_name)) or 0
    asked = session.scalars(
        select(CeremonyRequest.params).where(CeremonyRequest.operation == "crl", CeremonyRequest.ca_name == ca_name)
    )
    return max([stored, *(int(p.get("number") or 0) for p in asked if isinstance(p, dict))]) + 1


def pending_request(session: Session, ca_name: str) -> CeremonyRequest | None:
    """The offline CA's pending CRL request, if any (ca/ceremony.py)."""
    return ceremony.pending(session, "crl", ca_name)


class CRLs:
    """Issues and reads CRLs. `mutex` is the in-process counterpart of the CA row lock: revocation
    (ca/authority.py, ca/withdrawal.py) holds it around the transaction that ends in `issue`."""

    def __init__(self, db: Database, custody: KeyCustody, clock: Clock = utc_now) -> None:
        self.db = db
        self.custody = custody
        self.clock = clock
        self.mutex = threading.RLock()

    def issue(
        self, session: Session, ca: CertificateAuthority, actor: str | None = None, validity: timedelta | None = None
    ) -> CRL:
        """Sign and store the CA's next CRL (an online CA's: an offline one raises `ca_offline`)."""
        made = self.issue_or_request(session, ca, actor, validity)
        if not isinstance(made, CRL):
            raise ceremony.CAOffline(f"CA {ca.name} is offline: its CRL waits for ceremony request {made.id}")
        return made

    def issue_or_request(
        self, session: Session, ca: CertificateAuthority, actor: str | None = None, validity: timedelta | None = None
    ) -> CRL | CeremonyRequest:
        """Sign and store the CA's next CRL, and record `crl.published`, in the caller's transaction. For an
        offline CA a pending ceremony request for that CRL instead (superseding an older pending one: the
        new list has every entry the old one had), in the same transaction as the revocation that asked."""
        lock_ca(session, ca.name)
        number = next_number(session, ca.name)
        now = certs.truncate(self.clock())
        next_update = now + (validity or validity_of(ca))
        revoked = session.scalars(
            select(Certificate).where(Certificate.issuer_ca == ca.name, Certificate.status == "revoked")
        )
        entries = [
            rev.RevokedEntry(int(r.serial, 16), r.revoked_at, r.revocation_reason or "unspecified", r.invalidity_date)
            for r in revoked
            if r.revoked_at is not None
        ]
        try:
            crl = rev.build_crl(
                issuer=x509.Certificate.load(ca.certificate_der),
                signer=ceremony.signer_for(self.custody, ca),
                number=number,
                this_update=now,
                next_update=next_update,
                revoked=sorted(entries, key=lambda e: e.serial),
            )
        except ceremony.SignatureDeferred as deferred:
            params = {"number": number, "next_update": next_update.isoformat(), "entries": len(entries)}
            return ceremony.open_in_session(session, deferred, "crl", ca.name, "crl", params, actor, supersede=True)
        return store_crl(session, ca.name, crl.dump(), number, len(entries), actor)

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
        """A new CRL for every online CA (operators, tests); for an offline one a ceremony request, unless one
        is pending already."""
        numbers = {}
        with self.mutex, self.db.session() as session:
            for ca in session.scalars(select(CertificateAuthority)):
                if ca.offline and _still_useful(pending_request(session, ca.name), self.clock()):
                    continue  # the ceremony may be signing it: a superseding request would void that work
                made = self.issue_or_request(session, ca)
                if isinstance(made, CRL):  # an offline CA's is a ceremony request
                    numbers[ca.name] = made.number
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
                now = self.clock()
                if not is_due(newest(session, name), now, validity_of(ca)):
                    continue
                if ca.offline and _still_useful(pending_request(session, name), now):
                    continue  # one request waits for the ceremony: never a second, never a retry loop
                made = self.issue_or_request(session, ca)
                if isinstance(made, CRL):
                    numbers[name] = made.number
        return numbers


def _still_useful(request: CeremonyRequest | None, now: datetime) -> bool:
    """A pending CRL request whose CRL would still be current once signed (else a fresh one replaces it)."""
    if request is None:
        return False
    return datetime.fromisoformat(str(request.params["next_update"])) - now > CRL_VALIDITY
