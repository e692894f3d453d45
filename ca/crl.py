"""CRLs: made on a CA's creation, on each revocation (in its transaction) and by the scheduler ahead of
next_update; never on a read. A public request (GET /v1/cas/{ca}/crl, POST /v1/verify) answers the
newest stored CRL, so reads cost no signature and no write (issue 12).

One CRL per CA *key* (a scope): after a rollover (ca/rollover.py) the certificates the old key issued
stay on a CRL the old key signs, at the URL they carry (`/v1/cas/{ca}/crl` for the key a CA was created
with, scope ""); the new key's certificates carry `/v1/cas/{ca}/crl/k<version>`. A scope is a string so
that partition CRLs (an issuing distribution point, RFC 5280 §5.2.5) can later add a dimension
(`k2-p7`) without another URL shape. An old key's scope stays live, and the scheduler keeps refreshing
it, while any certificate it issued is unexpired.

Partitions (issue 12): once a key scope's open list has had `TRUSTSEAL_CRL_PARTITION_SIZE` subscriber
certificates issued into it, later ones go into the next partition (`p1`, `p2`, … for the first key;
`k2-p1` … after a rollover; ca/partitions.py decides at issuance), whose certificates carry that scope's
URL as their distribution point and whose CRL lists only them. A list that covers part of a key's
certificates carries a critical issuingDistributionPoint naming exactly that URL (RFC 5280 §5.2.5); so
does the key's base list once the key has partitions. CA certificates, OCSP signers and other
infrastructure stay on the base list. A partition exists from its first CRL, made when it is opened."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from asn1crypto import crl as asn1_crl
from asn1crypto import x509
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from ca import ceremony
from ca import certificates as certs
from ca import revocation as rev
from ca.errors import CRLUnavailable, UnknownCA, UnknownCRLScope, shown
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
        raise UnknownCA(f"no CA named {shown(name)}")
    return ca


def newest(session: Session, ca_name: str, scope: str = "") -> CRL | None:
    query = select(CRL).where(CRL.ca_name == ca_name, CRL.scope == scope).order_by(CRL.number.desc()).limit(1)
    return session.scalars(query).first()


def scope_url(base: str, ca_name: str, scope: str) -> str:
    """The distribution point of a CA key's CRL: the plain URL for the CA's first key."""
    return f"{base}/v1/cas/{ca_name}/crl" + (f"/{scope}" if scope else "")


_PARTITION = re.compile(r"^(?:(k[0-9]+)-)?p([1-9][0-9]*)$")


def partition_scope(key_scope: str, number: int) -> str:
    """Partition `number` of a key scope: 0 is the key's base list itself."""
    if number == 0:
        return key_scope
    return f"{key_scope}-p{number}" if key_scope else f"p{number}"


def split_scope(scope: str) -> tuple[str, int]:
    """(key scope, partition number) of a scope name; (scope, 0) for a key's base list."""
    found = _PARTITION.match(scope)
    if found is None:
        return scope, 0
    return found.group(1) or "", int(found.group(2))


@dataclass(frozen=True)
class Scope:
    """One CA key's CRL: the key that signs it, its certificate (the CRL's issuer), which rows it lists."""

    name: str
    key_ref: str
    certificate_der: bytes
    current: bool
    partition: int = 0  # 0: the key's base list (its infrastructure, CA certificates, first subscribers)

    @property
    def key_scope(self) -> str:
        return split_scope(self.name)[0]

    def part(self, number: int) -> Scope:
        """Partition `number` of this key scope."""
        return replace(self, name=partition_scope(self.key_scope, number), partition=number)


def scopes(session: Session, ca: CertificateAuthority) -> list[Scope]:
    """Every key scope of a CA, the current key first."""
    out = [Scope(ca.crl_scope or "", ca.key_ref, ca.certificate_der, True)]
    for previous in reversed(ca.previous_keys or []):
        row = session.get(Certificate, str(previous["certificate_serial"]))
        if row is not None:
            out.append(Scope(str(previous.get("crl_scope") or ""), str(previous["key_ref"]), row.der, False))
    return out


def scope_of(
    session: Session, ca: CertificateAuthority, issuer_key_ref: str | None, crl_scope: str | None = None
) -> Scope:
    """The scope listing a certificate signed by `issuer_key_ref` (None: a row from before keys were
    recorded, issued by the CA's first key) and recorded in `crl_scope` (None: its key's base list)."""
    every = scopes(session, ca)
    found = every[0]
    for scope in every:
        if scope.key_ref == issuer_key_ref or (issuer_key_ref is None and scope.name == ""):
            found = scope
            break
    if crl_scope:
        key_scope, number = split_scope(crl_scope)
        if number and key_scope == found.name:
            return found.part(number)
    return found


def partitions(session: Session, ca_name: str, key: Scope) -> list[Scope]:
    """The partitions (number ≥ 1) of a key scope: those with a CRL (each is opened with one)."""
    prefix = f"{key.name}-p" if key.name else "p"
    names = session.scalars(
        select(CRL.scope).where(CRL.ca_name == ca_name, CRL.scope.startswith(prefix, autoescape=True)).distinct()
    )
    numbers = sorted({n for k, n in map(split_scope, names) if n and k == key.name})
    return [key.part(n) for n in numbers]


def listed_rows(ca_name: str, scope: Scope) -> ColumnElement[bool]:
    """Which certificate rows a scope's CRL covers: a partition, the rows recorded in it; a key's base
    list, the rows that key signed and that no partition took (older rows record no scope)."""
    if scope.partition:
        return and_(Certificate.issuer_ca == ca_name, Certificate.crl_scope == scope.name)
    signed = Certificate.issuer_key_ref == scope.key_ref
    if scope.name == "":
        signed = or_(signed, Certificate.issuer_key_ref.is_(None))
    return and_(
        Certificate.issuer_ca == ca_name,
        signed,
        or_(Certificate.crl_scope.is_(None), Certificate.crl_scope == scope.name),
    )


def live_scopes(session: Session, ca: CertificateAuthority, now: datetime, with_partitions: bool = True) -> list[Scope]:
    """The current key's scope, and each earlier key's while a certificate it issued is unexpired; each
    followed by its partitions (unless `with_partitions` is False: the key scopes alone)."""
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
    if not with_partitions:
        return live
    return [found for key in live for found in (key, *partitions(session, ca.name, key))]


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

    def __init__(self, db: Database, custody: KeyCustody, clock: Clock = utc_now, public_url: str = "") -> None:
        self.db = db
        self.custody = custody
        self.clock = clock
        self.public_url = public_url.rstrip("/")  # the distribution points a partitioned key's lists name
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
        number = next_number(session, ca.name)
        now = certs.truncate(self.clock())
        next_update = now + (validity or validity_of(ca))
        revoked = session.execute(
            select(
                Certificate.serial, Certificate.revoked_at, Certificate.revocation_reason, Certificate.invalidity_date
            ).where(Certificate.status == "revoked", listed_rows(ca.name, chosen))
        )
        entries = [
            rev.RevokedEntry(int(serial, 16), revoked_at, reason or "unspecified", invalid_from)
            for serial, revoked_at, reason, invalid_from in revoked
            if revoked_at is not None
        ]
        # A list covering only part of the issuer's certificates names its URL (a critical IDP), or a relying
        # party takes it as complete for every certificate of that issuer name: a partition; a key's base list
        # once the key has partitions (ca/partitions.py); and every key's list once the CA has had more than
        # one key (ca/rollover.py) — else the new key's fresh list, with no entry for an old-key certificate,
        # would pass that certificate as not revoked (pyhanko-certvalidator, `openssl -extended_crl`).
        scoped = (
            chosen.partition > 0
            or chosen.name != ""
            or bool(ca.previous_keys)
            or bool(partitions(session, ca.name, chosen))
        )
        point = scope_url(self.public_url, ca.name, chosen.name) if scoped else None
        key = _KeyView(ca.name, chosen.key_ref, ca.algorithm, chosen.certificate_der, bool(ca.offline))
        try:
            crl = rev.build_crl(
                issuer=x509.Certificate.load(chosen.certificate_der),
                signer=ceremony.signer_for(self.custody, key),
                number=number,
                this_update=now,
                next_update=next_update,
                revoked=sorted(entries, key=lambda e: e.serial),
                distribution_point=point,
            )
        except ceremony.SignatureDeferred as deferred:
            params = {"number": number, "next_update": next_update.isoformat(), "entries": len(entries)}
            return ceremony.open_in_session(session, deferred, "crl", ca.name, "crl", params, actor, supersede=True)
        return store_crl(session, ca.name, crl.dump(), number, len(entries), actor, chosen)

    def current(self, ca_name: str, scope: str = "") -> bytes:
        """The newest stored CRL of one scope (a key's, or one of its partitions). Read-only: signs
        nothing, writes nothing."""
        with self.db.session() as session:
            ca = session.get(CertificateAuthority, ca_name)
            if ca is None:
                raise UnknownCA(f"no CA named {shown(ca_name)}")
            keys = {s.name for s in scopes(session, ca)}
            key_scope, _ = split_scope(scope)
            row = newest(session, ca_name, scope) if key_scope in keys else None
            if row is not None:
                return row.der
            if scope not in keys:  # a partition exists from its first CRL
                raise UnknownCRLScope(ca_name, scope)
            raise CRLUnavailable(f"{ca_name} has no CRL yet; the scheduler makes one shortly")

    def current_all(self, ca_name: str, with_partitions: bool = True) -> list[bytes]:
        """The newest stored CRL of every live scope of a CA, the current key's first (what a verifier
        or an LTV revision needs: certificates under an old key are on the old key's CRL). Without
        partitions: each key's base list only, which lists every CA and infrastructure certificate."""
        with self.db.session() as session:
            ca = session.get(CertificateAuthority, ca_name)
            if ca is None:
                raise UnknownCA(f"no CA named {shown(ca_name)}")
            out = []
            for scope in live_scopes(session, ca, self.clock(), with_partitions):
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

    def open_partition(self, ca_name: str, key_ref: str, number: int, actor: str | None = None) -> str:
        """Partition `number` of the key `key_ref` opened with its first CRL (empty), before any certificate
        carries its URL; and the key's base list re-issued with its issuingDistributionPoint when this is the
        key's first partition. Returns the scope name. Idempotent: another process may have opened it."""
        with self.mutex, self.db.session() as session:
            ca = lock_ca(session, ca_name)
            key = next((s for s in scopes(session, ca) if s.key_ref == key_ref), None)
            if key is None:
                raise CRLUnavailable(f"{ca_name} has no key {key_ref}")
            scope = key.part(number)
            if newest(session, ca_name, scope.name) is None:
                first = not partitions(session, ca_name, key)
                self.issue(session, ca, actor, scope=scope)
                if first:
                    self.issue(session, ca, actor, scope=key)
            return scope.name


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
