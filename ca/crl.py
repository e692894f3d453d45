"""CRLs: made on a CA's creation, on each revocation (in its transaction) and by the scheduler ahead of
next_update; never on a read. A public request (GET /v1/cas/{ca}/crl, POST /v1/verify) answers the
newest stored CRL, so reads cost no signature and no write (issue 12).

One CRL per CA *key* (a scope): after a rollover (ca/rollover.py) the certificates the old key issued
stay on a CRL the old key signs, at the URL they carry (`/v1/cas/{ca}/crl` for the key a CA was created
with, scope ""); the new key's certificates carry `/v1/cas/{ca}/crl/k<version>`. A scope is a string so
that partition CRLs (an issuing distribution point, RFC 5280 §5.2.5) can later add a dimension
(`k2-p7`) without another URL shape. An old key's scope stays live, and the scheduler keeps refreshing
it, while any certificate it issued is unexpired."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from asn1crypto import crl as asn1_crl
from asn1crypto import x509
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from ca import ceremony
from ca import certificates as certs
from ca import revocation as rev
from ca.errors import CRLUnavailable, UnknownCA, UnknownCRLScope
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


def newest(session: Session, ca_name: str, scope: str = "") -> CRL | None:
    query = select(CRL).where(CRL.ca_name == ca_name, CRL.scope == scope).order_by(CRL.number.desc()).limit(1)
    return session.scalars(query).first()


def scope_url(base: str, ca_name: str, scope: str) -> str:
    """The distribution point of a CA key's CRL: the plain URL for the CA's first key."""
    return f"{base}/v1/cas/{ca_name}/crl" + (f"/{scope}" if scope else "")


@dataclass(frozen=True)
class Scope:
    """One CA key's CRL: the key that signs it, its certificate (the CRL's issuer), which rows it lists."""

    name: str
    key_ref: str
    certificate_der: bytes
    current: bool


def scopes(session: Session, ca: CertificateAuthority) -> list[Scope]:
    """Every key scope of a CA, the current key first."""
    out = [Scope(ca.crl_scope or "", ca.key_ref, ca.certificate_der, True)]
    for previous in reversed(ca.previous_keys or []):
        row = session.get(Certificate, str(previous["certificate_serial"]))
        if row is not None:
            out.append(Scope(str(previous.get("crl_scope") or ""), str(previous["key_ref"]), row.der, False))
    return out


def scope_of(session: Session, ca: CertificateAuthority, issuer_key_ref: str | None) -> Scope:
    """The scope listing a certificate signed by `issuer_key_ref` (None: a row from before keys were
    recorded, issued by the CA's first key)."""
    every = scopes(session, ca)
    for scope in every:
        if scope.key_ref == issuer_key_ref or (issuer_key_ref is None and scope.name == ""):
            return scope
    return every[0]


def live_scopes(session: Session, ca: CertificateAuthority, now: datetime) -> list[Scope]:
    """The current key's scope, and each earlier key's while a certificate it issued is unexpired."""
    every = scopes(session, ca)
    live = [every[0]]
    for scope in every[1:]:
        condition = Certificate.issuer_key_ref == scope.key_ref
        if scope.name == "":
            condition = or_(condition, Certificate.issuer_key_ref.is_(None))
        last = session.scalar(
            select(func.max(Certificate.not_after)).where(Certificate.issuer_ca == ca.name, condition)
        )
        if last is not None and last > now:
            live.append(scope)
    return live


def validity_of(ca: CertificateAuthority) -> timedelta:
    return OFFLINE_CRL_VALIDITY if ca.offline else CRL_VALIDITY


def is_due(row: CRL | None, now: datetime, validity: timedelta = CRL_VALIDITY) -> bool:
    """A CA needs a new CRL when it has none or its newest is past half its validity."""
    return row is None or row.next_update - now < validity / 2


def store_crl(
    session: Session,
    ca_name: str,
    der: bytes,
    number: int,
    entries: int,
    actor: str | None,
    scope: Scope | None = None,
) -> CRL:
    """The CRL row and `crl.published`, in the caller's transaction (signed here, or imported from a
    ceremony: the offline CA's current key, whose scope `scope` None stands for)."""
    tbs = asn1_crl.CertificateList.load(der)["tbs_cert_list"]
    this_update, next_update = tbs["this_update"].native, tbs["next_update"].native
    if scope is None:
        owner = session.get(CertificateAuthority, ca_name)
        scope = scopes(session, owner)[0] if owner is not None else Scope("", "", b"", True)
    row = CRL(
        ca_name=ca_name, number=number, this_update=this_update, next_update=next_update, der=der, scope=scope.name
    )
    session.add(row)
    session.flush()
    record_event(
        session,
        "crl.published",
        actor=actor,
        subject=ca_name,
        payload={
            "ca": ca_name,
            "scope": scope.name,
            "key": scope.key_ref,
            "number": number,
            "this_update": row.this_update.isoformat(),
            "next_update": row.next_update.isoformat(),
            "sm3": sm3(der).hex(),  # of the DER (not `…_sm3`: that suffix names legacy personal-data digests)
            "entries": entries,
        },
    )
    return row


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
        self,
        session: Session,
        ca: CertificateAuthority,
        actor: str | None = None,
        scope: Scope | None = None,
        validity: timedelta | None = None,
    ) -> CRL:
        """Sign and store the next CRL of one of the CA's keys (default: the current key) (an online CA's:
        an offline one raises `ca_offline`)."""
        made = self.issue_or_request(session, ca, actor, validity, scope)
        if not isinstance(made, CRL):
            raise ceremony.CAOffline(f"CA {ca.name} is offline: its CRL waits for ceremony request {made.id}")
        return made

    def issue_or_request(
        self,
        session: Session,
        ca: CertificateAuthority,
        actor: str | None = None,
        validity: timedelta | None = None,
        scope: Scope | None = None,
    ) -> CRL | CeremonyRequest:
        """Sign and store the next CRL of one of the CA's keys (default: the current key), and record
        `crl.published` (naming the scope), in the caller's transaction. For an offline CA a pending
        ceremony request for that CRL instead (superseding an older pending one: the new list has every
        entry the old one had), in the same transaction as the revocation that asked."""
        lock_ca(session, ca.name)
        chosen = scope or scopes(session, ca)[0]
        last = session.scalar(select(func.max(CRL.number)).where(CRL.ca_name == ca.name))
        number = (last or 0) + 1
        now = certs.truncate(self.clock())
        next_update = now + (validity or validity_of(ca))
        listed = Certificate.issuer_key_ref == chosen.key_ref
        if chosen.name == "":
            listed = or_(listed, Certificate.issuer_key_ref.is_(None))
        revoked = session.scalars(
            select(Certificate).where(Certificate.issuer_ca == ca.name, Certificate.status == "revoked", listed)
        )
        entries = [
            rev.RevokedEntry(int(r.serial, 16), r.revoked_at, r.revocation_reason or "unspecified", r.invalidity_date)
            for r in revoked
            if r.revoked_at is not None
        ]
        key = _KeyView(ca.name, chosen.key_ref, ca.algorithm, chosen.certificate_der, bool(ca.offline))
        try:
            crl = rev.build_crl(
                issuer=x509.Certificate.load(chosen.certificate_der),
                signer=ceremony.signer_for(self.custody, key),
                number=number,
                this_update=now,
                next_update=next_update,
                revoked=sorted(entries, key=lambda e: e.serial),
            )
        except ceremony.SignatureDeferred as deferred:
            params = {"number": number, "next_update": next_update.isoformat(), "entries": len(entries)}
            return ceremony.open_in_session(session, deferred, "crl", ca.name, "crl", params, actor, supersede=True)
        return store_crl(session, ca.name, crl.dump(), number, len(entries), actor, chosen)

    def current(self, ca_name: str, scope: str = "") -> bytes:
        """The newest stored CRL of one key scope. Read-only: signs nothing, writes nothing."""
        with self.db.session() as session:
            ca = session.get(CertificateAuthority, ca_name)
            if ca is None:
                raise UnknownCA(f"no CA named {ca_name!r}")
            if scope not in {s.name for s in scopes(session, ca)}:
                raise UnknownCRLScope(f"{ca_name} has no CRL scope {scope!r}")
            row = newest(session, ca_name, scope)
            if row is None:
                raise CRLUnavailable(f"{ca_name} has no CRL yet; the scheduler makes one shortly")
            return row.der

    def current_all(self, ca_name: str) -> list[bytes]:
        """The newest stored CRL of every live key scope of a CA, the current key's first (what a verifier
        or an LTV revision needs: certificates under an old key are on the old key's CRL)."""
        with self.db.session() as session:
            ca = session.get(CertificateAuthority, ca_name)
            if ca is None:
                raise UnknownCA(f"no CA named {ca_name!r}")
            out = []
            for scope in live_scopes(session, ca, self.clock()):
                row = newest(session, ca_name, scope.name)
                if row is not None:
                    out.append(row.der)
            if not out:
                raise CRLUnavailable(f"{ca_name} has no CRL yet; the scheduler makes one shortly")
            return out

    def refresh_all(self) -> dict[str, int]:
        """A new CRL for every live key scope of every online CA (operators, tests), keyed `ca` or
        `ca/scope`; for an offline one a ceremony request for its current key's, unless one is pending."""
        numbers = {}
        with self.mutex, self.db.session() as session:
            for ca in session.scalars(select(CertificateAuthority)):
                if ca.offline and _still_useful(pending_request(session, ca.name), self.clock()):
                    continue  # the ceremony may be signing it: a superseding request would void that work
                for scope in _refreshed_scopes(session, ca, self.clock()):
                    made = self.issue_or_request(session, ca, scope=scope)
                    if isinstance(made, CRL):  # an offline CA's is a ceremony request
                        numbers[_label(ca.name, scope.name)] = made.number
        return numbers

    def refresh_due(self) -> dict[str, int]:
        """The scheduler's round: a new CRL for each live key scope without one or past half its CRL's
        validity. Each CA in its own transaction, re-checked under its row lock (another process may have
        just made it)."""
        with self.db.session() as session:
            names = list(session.scalars(select(CertificateAuthority.name).order_by(CertificateAuthority.name)))
        numbers = {}
        for name in names:
            with self.mutex, self.db.session() as session:
                ca = lock_ca(session, name)
                now = self.clock()
                for scope in _refreshed_scopes(session, ca, now):
                    if not is_due(newest(session, name, scope.name), now, validity_of(ca)):
                        continue
                    if ca.offline and _still_useful(pending_request(session, name), now):
                        continue  # one request waits for the ceremony: never a second, never a retry loop
                    made = self.issue_or_request(session, ca, scope=scope)
                    if isinstance(made, CRL):
                        numbers[_label(name, scope.name)] = made.number
        return numbers


def _refreshed_scopes(session: Session, ca: CertificateAuthority, now: datetime) -> list[Scope]:
    """The key scopes the scheduler keeps fresh: every live one of an online CA; of an offline CA its
    current key's only (the ceremony signs with the key it holds; a rollover of an offline CA is refused,
    ca/rollover.py)."""
    live = live_scopes(session, ca, now)
    return live[:1] if ca.offline else live


def _label(ca_name: str, scope: str) -> str:
    return f"{ca_name}/{scope}" if scope else ca_name


@dataclass(frozen=True)
class _KeyView:
    """One key of a CA as `ceremony.signer_for` asks about it (the key of a CRL scope, ca/ceremony.py)."""

    name: str
    key_ref: str
    algorithm: str
    certificate_der: bytes
    offline: bool


def _still_useful(request: CeremonyRequest | None, now: datetime) -> bool:
    """A pending CRL request whose CRL would still be current once signed (else a fresh one replaces it)."""
    if request is None:
        return False
    return datetime.fromisoformat(str(request.params["next_update"])) - now > CRL_VALIDITY
