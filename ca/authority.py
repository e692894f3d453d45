"""The CA service: one layer shared by the API and the CLI.

Policy (profiles) decides what goes into a certificate, custody signs, the store remembers.
Every issuance and revocation happens in one transaction with its event row: if anything fails,
nothing is written.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from urllib.parse import urlsplit

from asn1crypto import core, keys, x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from ca import ceremony, issuance, name_constraints, store
from ca import certificates as certs
from ca import crl as crls
from ca import revocation as rev
from ca.csr import key_algorithm, parse_csr
from ca.errors import (
    AlreadyRevoked,
    CACertificateNotRevocable,
    CAExists,
    CANotIssuing,
    CertificateNotFound,
    CRLUnavailable,
    CSRMalformed,
    ProfileNotForCSR,
    SubjectNotAllowed,
    UnknownCA,
    UnknownCRLScope,
    UnknownProfile,
    UseSealRevoke,
    shown,
)
from ca.issuance import BACKDATE, CALike, refuse_inactive
from ca.names import check_name_characters, pairs
from ca.ocsp import OCSPAnswer, OCSPResponder, Responder
from ca.partitions import DEFAULT_PARTITION_SIZE, Partitions
from ca.rollover import LINK_PROFILE
from ca.snapshot import DEFAULT_TTL_SECONDS, CAEntry, CASnapshot, Snapshots
from ca.store import PreparedCertificate
from gm import oids
from keys.custody import KeyAlgorithm, KeyCustody, KeyNotFound, KeyVersion
from ledger.events import event_row, record_event
from ledger.key_events import recorded
from ledger.pii import PiiDigests
from policies.names import ANY_ORGANISATION, Requester
from policies.profiles import CAProfile, Profile, ProfileSet
from store.db import Database
from store.models import Certificate, CertificateAuthority, Seal

CRL_VALIDITY = crls.CRL_VALIDITY
REKEY_RETRIES = 3  # an issuance that meets a CA rollover between signing and commit signs again
ISSUING_CA_TTL_SECONDS = DEFAULT_TTL_SECONDS  # how long the CA snapshot is trusted for other processes' changes


@dataclass(frozen=True)
class IssuedCertificate:
    serial: str
    der: bytes
    chain: list[bytes]  # issuing CA first, root last
    event_id: int | None = None  # the certificate.issued event (its ledger index: Ledger.wait_for after commit)

    @property
    def certificate(self) -> x509.Certificate:
        return x509.Certificate.load(self.der)


@dataclass(frozen=True)
class CAPlan:
    """What a CA's row is made of besides its certificate: kept in a ceremony request while an offline
    parent signs (ca/ceremony.py)."""

    name: str
    parent: str | None
    algorithm: str
    key_ref: str
    ocsp_key_ref: str
    region_code: str | None
    region_name: str | None
    ca_profile: str

    def as_params(self) -> dict[str, str | None]:
        return {
            "name": self.name,
            "parent": self.parent,
            "algorithm": self.algorithm,
            "key_ref": self.key_ref,
            "ocsp_key_ref": self.ocsp_key_ref,
            "region_code": self.region_code,
            "region_name": self.region_name,
            "ca_profile": self.ca_profile,
        }

    @classmethod
    def from_params(cls, params: dict[str, object]) -> CAPlan:
        def text(key: str) -> str | None:
            value = params.get(key)
            return None if value is None else str(value)

        return cls(
            str(params["name"]),
            text("parent"),
            str(params["algorithm"]),
            str(params["key_ref"]),
            str(params["ocsp_key_ref"]),
            text("region_code"),
            text("region_name"),
            str(params["ca_profile"]),
        )


class CertificateAuthorityService:
    def __init__(
        self,
        db: Database,
        custody: KeyCustody,
        profiles: ProfileSet,
        public_url: str,
        crl_partition_size: int = DEFAULT_PARTITION_SIZE,
    ) -> None:
        """`crl_partition_size`: subscriber certificates a CRL partition takes before the next opens
        (ca/partitions.py; TRUSTSEAL_CRL_PARTITION_SIZE), 0 never."""
        self.db = db
        self.custody: KeyCustody = recorded(custody, db)  # every key made here is a ledger event
        self.profiles = profiles
        self.public_url = public_url.rstrip("/")
        self.pii = PiiDigests(self.custody)  # keyed digests of subject names in events (ledger/pii.py)
        self.snapshots = Snapshots(db, ISSUING_CA_TTL_SECONDS)  # the one cache of CA state (ca/snapshot.py)
        self.crls = crls.CRLs(db, self.custody, public_url=self.public_url)  # on creation, revocation, schedule
        self.partitions = Partitions(db, self.crls, crl_partition_size)  # which list a new certificate joins
        self._crl_mutex = self.crls.mutex
        self.ocsp_responder = OCSPResponder(self.snapshots, db, self.custody)
        self._writer = store.IssuanceWriter(db)  # the issuance hot path (ca/store.py)

    # -- URLs written into certificates ----------------------------------------------------------

    def crl_url(self, ca: str, scope: str = "") -> str:
        """The CRL distribution point of one of a CA's keys (ca/crl.py: scope "" is the CA's first key)."""
        return crls.scope_url(self.public_url, ca, scope)

    def live_crl_urls(self, now: datetime | None = None) -> dict[str, list[str]]:
        """Per CA, the URL of every live CRL scope (ca/crl.py `live_scopes`): the current key's list first,
        its partitions, then each earlier key's (and its partitions') while a certificate it issued is
        unexpired. Certificates under an old key carry that key's URL; a relying party that fetches CRLs
        ahead (the trust list's `endpoints.crls`, `GET /v1/cas` `crls`) needs every one."""
        moment = now or datetime.now(UTC)
        with self.db.session() as session:
            return {
                ca.name: [self.crl_url(ca.name, scope.name) for scope in crls.live_scopes(session, ca, moment)]
                for ca in session.scalars(select(CertificateAuthority).order_by(CertificateAuthority.name))
            }

    def issuer_url(self, ca: str, scope: str = "") -> str:
        """The caIssuers URL of one of a CA's keys: the plain URL (the first key's certificate, for good:
        `first_key_certificate`) for its first key, `/certificate/k<version>` for a later one."""
        return f"{self.public_url}/v1/cas/{ca}/certificate" + (f"/{scope}" if scope else "")

    @cached_property
    def ocsp_url(self) -> str:
        return f"{self.public_url}/v1/ocsp"

    def invalidate(self, name: str | None = None) -> None:
        """A CA row changed (created, status, certificate): the snapshot is rebuilt on the next read."""
        self.snapshots.invalidate()  # the OCSP responders follow its version

    def snapshot(self) -> CASnapshot:
        """The current versioned view of every CA (ca/snapshot.py)."""
        return self.snapshots.current()

    # -- reading -------------------------------------------------------------------------------

    def list_cas(self) -> list[CertificateAuthority]:
        with self.db.session() as session:
            return list(session.scalars(select(CertificateAuthority).order_by(CertificateAuthority.name)))

    def get_ca(self, session: Session, name: str) -> CertificateAuthority:
        ca = session.get(CertificateAuthority, name)
        if ca is None:
            raise UnknownCA(f"no CA named {shown(name)}")
        return ca

    def ca_certificate(self, name: str) -> x509.Certificate:
        return self.snapshots.entry(name).certificate

    def first_key_certificate(self, name: str) -> bytes:
        """What the plain caIssuers URL (`GET /v1/cas/{ca}/certificate`) serves: the certificate of the CA's
        first key (scope ""), the issuer of every certificate that carries that URL, while it is valid; the
        current certificate otherwise (no rollover yet, or the first key's certificate expired, and with it
        everything it issued). A rollover must not make AIA chasing fetch a certificate whose key did not
        sign the child."""
        entry = self.snapshots.entry(name)
        now = datetime.now(UTC)
        for generation in entry.generations:
            if generation.crl_scope == "" and generation.certificate.not_valid_after > now:
                return generation.certificate_der
        return entry.certificate_der

    def key_certificate(self, ca_name: str, scope: str) -> bytes:
        """The CA certificate of one of a CA's keys, by its scope (`GET /v1/cas/{ca}/certificate/{scope}`)."""
        from ca.errors import UnknownCRLScope

        for generation in self.snapshots.entry(ca_name).generations:
            if generation.crl_scope == scope:
                return generation.certificate_der
        raise UnknownCRLScope(ca_name, scope)

    def chain_for(self, ca_name: str, certificate_der: bytes) -> list[bytes]:
        """The issuer chain (issuing CA first) of a certificate `ca_name` issued, under whichever of its
        keys signed it: a certificate from before a rollover chains through the old CA certificate."""
        return list(self.snapshots.chain_for(ca_name, certificate_der))

    def chain(self, session: Session, name: str) -> list[bytes]:
        out = []
        current: str | None = name
        while current is not None:
            ca = self.get_ca(session, current)
            out.append(ca.certificate_der)
            current = ca.parent
        return out

    def ca_status(self, name: str) -> str:
        """`active`, `withdrawn` …: read from the snapshot (another process's change is seen within a few
        seconds; a withdrawal in this process at once: invalidate())."""
        return self.snapshots.entry(name).status

    def get_certificate(self, serial: str) -> Certificate:
        with self.db.session() as session:
            row = session.get(Certificate, serial.lower())
            if row is None:
                raise CertificateNotFound(f"no certificate with serial {serial}")
            return row

    def profile(self, name: str) -> Profile:
        try:
            return self.profiles.profiles[name]
        except KeyError:
            raise UnknownProfile(f"no profile named {name!r}") from None

    # -- CA hierarchy ----------------------------------------------------------------------------

    def create_ca(
        self,
        name: str,
        *,
        algorithm: KeyAlgorithm,
        subject: dict[str, str],
        ca_profile: str,
        parent: str | None = None,
        region_code: str | None = None,
        region_name: str | None = None,
        actor: str | None = None,
        permitted_dns: tuple[str, ...] = (),
    ) -> CertificateAuthority:
        """`permitted_dns`: the region's DNS namespace, when known, as a critical nameConstraints extension
        (ca/name_constraints.py); the CA then issues no name outside it."""
        from ca.names import build_name

        profile: CAProfile = self.profiles.ca_profiles[ca_profile]
        check_name_characters(build_name(subject))  # before custody makes a key for it
        with self.db.session() as session:  # refusals first: a key made is a ledger event
            if session.get(CertificateAuthority, name) is not None:
                raise CAExists(f"CA {name} exists")
            if parent is not None:
                found = self.get_ca(session, parent)
                refuse_inactive(found.name, found.status)
        # Keys before the transaction writes: each key event commits on its own (ledger/key_events.py).
        version = self._custody_key(name, algorithm)
        ocsp_version = self._custody_key(f"{name}.ocsp", algorithm)
        self.pii.prepare()  # the OCSP signer's issuance event digests its subject
        plan = CAPlan(name, parent, str(algorithm), version.ref, ocsp_version.ref, region_code, region_name, ca_profile)
        try:
            with self.db.session() as session:
                if session.get(CertificateAuthority, name) is not None:
                    raise CAExists(f"CA {name} exists")
                spki = keys.PublicKeyInfo.load(version.public_key_der)
                subject_name = build_name(subject)
                now = datetime.now(UTC)
                not_before = certs.truncate(now - BACKDATE)
                not_after = certs.truncate(now + timedelta(days=profile.validity_days))
                if parent is None:
                    issuer_name, issuer_ski = subject_name, None
                    signer = self.custody.signer(version.ref)
                    extra: list[x509.Extension] = []
                else:
                    parent_row = self.get_ca(session, parent)
                    refuse_inactive(parent_row.name, parent_row.status)
                    parent_cert = x509.Certificate.load(parent_row.certificate_der)
                    issuer_name, issuer_ski = parent_cert.subject, parent_cert.key_identifier
                    signer = ceremony.signer_for(self.custody, parent_row)  # offline parent: SignatureDeferred
                    not_after = min(not_after, parent_cert["tbs_certificate"]["validity"]["not_after"].native)
                    extra = certs.distribution_extensions(
                        self.crl_url(parent, parent_row.crl_scope),
                        self.ocsp_url,
                        self.issuer_url(parent, parent_row.crl_scope),
                    )
                    if permitted_dns:
                        extra.append(name_constraints.extension(permitted_dns))
                cert = certs.sign_certificate(
                    issuer=issuer_name,
                    subject=subject_name,
                    spki=spki,
                    serial=certs.new_serial(),
                    not_before=not_before,
                    not_after=not_after,
                    extensions=certs.ca_extensions(spki, issuer_ski, profile.key_usage, profile.path_length) + extra,
                    signer=signer,
                )
                row = self.commit_ca(session, plan, cert.dump(), actor)
        except ceremony.SignatureDeferred as deferred:  # the parent is offline: nothing written but the request
            request = ceremony.open_request(self.db, deferred, "ca.create", name, plan.as_params(), actor)
            raise ceremony.CeremonyRequired(request) from None
        self.invalidate(name)
        return row

    def commit_ca(self, session: Session, plan: CAPlan, der: bytes, actor: str | None) -> CertificateAuthority:
        """The CA row, its certificate, `ca.created`, its OCSP signer and first CRL, in the caller's
        transaction: at creation, or when the offline parent's ceremony output is imported."""
        if session.get(CertificateAuthority, plan.name) is not None:
            raise CAExists(f"CA {plan.name} exists")
        cert = x509.Certificate.load(der)
        validity = cert["tbs_certificate"]["validity"]
        not_before, not_after = validity["not_before"].native, validity["not_after"].native
        serial = certs.serial_hex(cert.serial_number)
        row = store.add_ca(
            session,
            name=plan.name,
            parent=plan.parent,
            algorithm=plan.algorithm,
            key_ref=plan.key_ref,
            region_code=plan.region_code,
            region_name=plan.region_name,
            certificate_serial=serial,
            certificate_der=der,
        )
        store.add(
            session,
            PreparedCertificate(
                der,
                serial,
                (not_before, not_after),
                cert.subject.human_friendly,
                certs.fingerprint(der),
                issuer_ca=plan.parent,
                profile=plan.ca_profile,
                algorithm=plan.algorithm,
                issuer_key_ref=self.get_ca(session, plan.parent).key_ref if plan.parent is not None else None,
            ),
            is_ca=True,
        )
        record_event(
            session,
            "ca.created",
            actor=actor,
            subject=plan.name,
            payload={
                "ca": plan.name,
                "parent": plan.parent,
                "serial": serial,
                "algorithm": plan.algorithm,
                "key": plan.key_ref,
                "region": plan.region_code,
                "fingerprint_sha256": certs.fingerprint(der),
            },
        )
        self.provision_ocsp_signer(session, row, self.custody.get(plan.ocsp_key_ref), actor)
        self.crls.issue(session, row, actor)
        return row

    def _custody_key(self, name: str, algorithm: KeyAlgorithm) -> KeyVersion:
        """The newest enabled version of a custody key, created (and its event recorded) if missing."""
        try:
            return self.custody.get(name)
        except KeyNotFound:
            return self.custody.create(name, algorithm)

    def cross_certify(self, issuer_ca: str, subject_der: bytes, actor: str | None = None) -> IssuedCertificate:
        """Certify another hierarchy's root (or CA) under one of ours: same subject, same key, same key
        identifier, so paths from that hierarchy's documents can reach our anchors. Listed in the trust list."""
        try:
            subject = x509.Certificate.load(subject_der)
            subject.native  # noqa: B018
        except (ValueError, TypeError) as exc:
            raise CSRMalformed(f"not a certificate: {exc}") from None
        if not subject.ca:
            raise SubjectNotAllowed("only CA certificates are cross-certified")
        check_name_characters(subject.subject)  # we repeat their subject in a certificate we sign
        profile: CAProfile = self.profiles.ca_profiles["regional-ca"]
        subject_hmac = self.pii(subject.subject.human_friendly)  # custody before the transaction writes
        with self.db.session() as session:
            ca = self.get_ca(session, issuer_ca)
            refuse_inactive(ca.name, ca.status)
            issuer_cert = x509.Certificate.load(ca.certificate_der)
            if subject.public_key.dump() == issuer_cert.public_key.dump():
                raise SubjectNotAllowed("a CA does not cross-certify itself")
            now = datetime.now(UTC)
            not_before = certs.truncate(now - BACKDATE)
            not_after = certs.truncate(
                min(subject.not_valid_after, issuer_cert.not_valid_after, now + timedelta(days=profile.validity_days))
            )
            extensions = [
                ext
                for ext in certs.ca_extensions(
                    subject.public_key, issuer_cert.key_identifier, profile.key_usage, profile.path_length
                )
                if ext["extn_id"].native != "key_identifier"
            ]
            if subject.key_identifier is not None:  # keep theirs: their children's AKI points at it
                extensions.append(certs.extension("key_identifier", core.OctetString(subject.key_identifier)))
            extensions += certs.distribution_extensions(
                self.crl_url(issuer_ca, ca.crl_scope), self.ocsp_url, self.issuer_url(issuer_ca, ca.crl_scope)
            )
            serial = certs.new_serial()
            try:
                cert = certs.sign_certificate(
                    issuer=issuer_cert.subject,
                    subject=subject.subject,
                    spki=subject.public_key,
                    serial=serial,
                    not_before=not_before,
                    not_after=not_after,
                    extensions=extensions,
                    signer=ceremony.signer_for(self.custody, ca),
                )
            except ceremony.SignatureDeferred as deferred:
                pending = deferred
            else:
                return self.commit_cross_certificate(session, ca.name, cert.dump(), subject_hmac, subject_der, actor)
        # The CA is offline (outside the transaction above: SQLite would wait on its own read lock).
        params = {
            "issuer": issuer_ca,
            "subject_hmac": subject_hmac,
            "subject_der": base64.b64encode(subject_der).decode(),
        }
        request = ceremony.open_request(
            self.db, pending, "ca.cross_certify", certs.fingerprint(subject_der), params, actor
        )
        raise ceremony.CeremonyRequired(request)

    def commit_cross_certificate(
        self, session: Session, issuer_ca: str, der: bytes, subject_hmac: str, subject_der: bytes, actor: str | None
    ) -> IssuedCertificate:
        """Store a cross-certificate and record `ca.cross_certified` (at once, or at a ceremony's import)."""
        cert = x509.Certificate.load(der)
        validity = cert["tbs_certificate"]["validity"]
        not_before, not_after = validity["not_before"].native, validity["not_after"].native
        serial_hex = certs.serial_hex(cert.serial_number)
        subject = x509.Certificate.load(subject_der)
        ca = self.get_ca(session, issuer_ca)
        store.add(
            session,
            PreparedCertificate(
                der,
                serial_hex,
                (not_before, not_after),
                subject.subject.human_friendly,
                certs.fingerprint(der),
                issuer_ca=issuer_ca,
                profile="cross-certificate",
                algorithm=ca.algorithm,
                issuer_key_ref=ca.key_ref,
            ),
            is_ca=True,
        )
        record_event(
            session,
            "ca.cross_certified",
            actor=actor,
            subject=serial_hex,
            payload={
                "issuer": issuer_ca,
                "subject_hmac": subject_hmac,
                "subject_fingerprint_sha256": certs.fingerprint(subject_der),
                "serial": serial_hex,
            },
        )
        return IssuedCertificate(serial=serial_hex, der=der, chain=self.chain(session, ca.name))

    def cross_certificates(self) -> list[Certificate]:
        with self.db.session() as session:
            return list(
                session.scalars(
                    select(Certificate).where(Certificate.profile == "cross-certificate", Certificate.status == "good")
                )
            )

    def provision_ocsp_signer(
        self, session: Session, ca: CertificateAuthority, version: KeyVersion, actor: str | None
    ) -> None:
        """An OCSP-signer certificate for custody key `version`, from the CA's current key, put to use, in the
        caller's transaction (a new CA, a rollover, an OCSP-signer rotation: ca/rollover.py). The caller
        has prepared `self.pii` (the issuance event digests the subject)."""
        prepared = self.sign_ocsp_signer(ca, version)
        self.adopt_ocsp_signer(session, ca, version.ref, prepared, actor)

    def sign_ocsp_signer(
        self, ca: CertificateAuthority, version: KeyVersion, key: CALike | None = None
    ) -> PreparedCertificate:
        """The CA's delegated OCSP signer certificate for `version`, signed, nothing written. An offline CA
        raises `ceremony.SignatureDeferred` (ca/ocsp_renewal.py opens the `ocsp.signer` ceremony). `key`: one
        of the CA's earlier keys certifies it instead of the current one (ca/rollover.py `renew_ocsp_signer`)."""
        issuer: CALike = key if key is not None else ca
        ca_cert = x509.Certificate.load(issuer.certificate_der)
        subject = {"country_name": "CN", "common_name": f"{ca.name} OCSP responder"}
        approval = issuance.approve_ocsp_signer(
            self.profile("ocsp-signer"), version.public_key_der, pairs(_name(subject)), issuer, ca_cert
        )
        return self._sign(approval)

    def adopt_ocsp_signer(
        self, session: Session, ca: CertificateAuthority, key_ref: str, prepared: PreparedCertificate, actor: str | None
    ) -> None:
        """Store the OCSP signer certificate (with its event) and make it the CA's responder, in the caller's
        transaction (the responder switches at the next snapshot: `invalidate`)."""
        store.add(session, prepared, event=self._issued_event(prepared, actor))  # in the CA's transaction
        store.set_ocsp_signer(session, ca, key_ref, prepared.der)

    # -- issuance --------------------------------------------------------------------------------

    def subscriber_profile(self, name: str) -> Profile:
        """A profile a CSR may ask for. Infrastructure profiles (OCSP signer, TSA, seal maker, trust-list
        signer) and CA profiles are refused: an outside key with ocsp-nocheck or timeStamping would let
        its holder answer for our CAs or backdate anything."""
        if name in self.profiles.ca_profiles:
            raise ProfileNotForCSR(f"{name} is a CA profile: create CAs with POST /v1/cas")
        profile = self.profile(name)
        if not profile.csr:
            subscriber = ", ".join(p.name for p in self.profiles.profiles.values() if p.csr)
            raise ProfileNotForCSR(
                f"{name} certificates are made only for keys in the service's custody; a CSR may ask for {subscriber}"
            )
        return profile

    def issue(
        self,
        csr: bytes | str,
        profile_name: str,
        ca_name: str,
        actor: str | None = None,
        requester: Requester = ANY_ORGANISATION,
    ) -> IssuedCertificate:
        """Issue from a CSR. `requester` is whom the name policy asks about (an issuer token names only its
        own organisations); the default names any, as officers, admins and the local CLI do."""
        profile = self.subscriber_profile(profile_name)
        request = parse_csr(csr)
        for attempt in range(REKEY_RETRIES):
            ca = self.snapshots.entry(ca_name)
            approval = issuance.approve_csr(  # policy decides (policies/), the CA signs what it approved
                profile,
                request,
                ca,
                ca.certificate,
                parent=ca.parent,
                status=ca.status,
                namespaces=ca.namespaces,
                requester=requester,
            )
            prepared = self._sign(approval, self.partitions.assign(ca, self.snapshots.current().version))
            try:
                event_id = self._commit_end_entity(ca, prepared, actor)
            except CANotIssuing:
                if attempt == REKEY_RETRIES - 1 or not self._rekeyed(ca):
                    raise
                continue  # re-keyed meanwhile (a rollover): sign again under the new key
            return IssuedCertificate(
                serial=prepared.serial_hex, der=prepared.der, chain=list(ca.chain), event_id=event_id
            )
        raise AssertionError("unreachable")

    def issue_for_key(
        self,
        public_key_der: bytes,
        subject: dict[str, str],
        profile_name: str,
        ca_name: str,
        actor: str | None = None,
        also: Sequence[dict[str, object]] = (),
    ) -> IssuedCertificate:
        """Issue for a key that custody already holds (seal holders, seal makers): no CSR to check,
        the same profile rules and the same event. `also`: further event rows (`ledger.events.event_row`)
        committed in the certificate's transaction (a key rotation's `key.rotated`)."""
        profile = self.profile(profile_name)
        spki = keys.PublicKeyInfo.load(public_key_der)
        family = key_algorithm(spki)
        for attempt in range(REKEY_RETRIES):
            ca = self.snapshots.entry(ca_name)
            approval = issuance.approve_key(
                profile,
                family,
                public_key_der,
                pairs(_name(subject)),
                ca,
                ca.certificate,
                parent=ca.parent,
                status=ca.status,
            )
            # subscriber certificates (seal holders) are partitioned; seal makers, TSA, ledger: the base list
            scope = self.partitions.assign(ca, self.snapshots.current().version) if profile.csr else None
            prepared = self._sign(approval, scope)
            try:
                event_id = self._commit_end_entity(ca, prepared, actor, also)
            except CANotIssuing:
                if attempt == REKEY_RETRIES - 1 or not self._rekeyed(ca):
                    raise
                continue  # re-keyed meanwhile (a rollover): sign again under the new key
            return IssuedCertificate(
                serial=prepared.serial_hex, der=prepared.der, chain=list(ca.chain), event_id=event_id
            )
        raise AssertionError("unreachable")

    def _rekeyed(self, before: CAEntry) -> bool:
        """Whether a CA that refused a commit did so because its key rolled over (and is still active)."""
        now = self.snapshots.entry(before.name)
        return now.key_ref != before.key_ref and now.status == "active"

    def _commit_end_entity(
        self, ca: CAEntry, prepared: PreparedCertificate, actor: str | None, also: Sequence[dict[str, object]] = ()
    ) -> int:
        """Row and event through the store's hot path (ca/store.py); a CA changed meanwhile issues nothing."""
        event = self._issued_event(prepared, actor)  # its keyed digest asks custody: not under the write lock
        try:
            return self._writer.commit((ca.name, "active", ca.certificate_serial, ca.key_ref), prepared, event, also)
        except CANotIssuing:
            self.invalidate(ca.name)
            raise

    def _template(
        self, ca: CALike, ca_cert: x509.Certificate, profile: Profile, scope: str | None = None
    ) -> certs.Template:
        """`scope`: the CRL scope (a key's base list, the default, or a partition) its distribution point names."""
        if scope is None:
            scope = getattr(ca, "crl_scope", "") or ""
        memo = ca.templates if isinstance(ca, CAEntry) else {}  # a snapshot entry keeps its templates
        template = memo.get((profile.name, scope))
        if template is None:
            # No basicConstraints on end entities (RFC 5280 §4.2.1.9 lets them omit it): `{cA FALSE}` is DER
            # `SEQUENCE {}`, which GmSSL 3.x refuses, and it may be critical only on CAs there.
            before = [certs.extension("key_usage", x509.KeyUsage(set(profile.key_usage)), critical=True)]
            after = [
                certs.extension(
                    "authority_key_identifier", x509.AuthorityKeyIdentifier({"key_identifier": ca_cert.key_identifier})
                )
            ]
            if profile.extended_key_usage:
                eku = x509.ExtKeyUsageSyntax([_EKU[name] for name in profile.extended_key_usage])
                after.append(certs.extension("extended_key_usage", eku, critical=profile.extended_key_usage_critical))
            if profile.ocsp_no_check:
                after.append(certs.extension("ocsp_no_check", core.Null()))
            else:
                after += certs.distribution_extensions(
                    self.crl_url(ca.name, scope), self.ocsp_url, self.issuer_url(ca.name, crls.split_scope(scope)[0])
                )
            if profile.policies:
                after.append(certs.policies_extension([self.profiles.policy_oid(p) for p in profile.policies]))
            template = certs.Template(ca_cert.subject, ca.algorithm, before, after)
            memo[(profile.name, scope)] = template
        return template

    def _sign(self, approval: issuance.Approval, scope: str | None = None) -> PreparedCertificate:
        """Custody signs what policy approved (ca/issuance.py refuses anything else). `scope`: the CRL
        partition chosen for it (ca/partitions.py); None, the signing key's base list (ca/crl.py). An offline
        CA raises `ceremony.SignatureDeferred` instead, with what a ceremony's import needs to store the
        certificate (`prepared_from_signed`)."""
        if scope is None:
            scope = getattr(approval.ca, "crl_scope", "") or ""  # the signing key's base list (ca/crl.py)
        template = self._template(approval.ca, approval.ca_certificate, approval.profile, scope)
        recorded = None if approval.profile.ocsp_no_check else scope  # no distribution point: on no list's URL
        try:
            return issuance.sign(approval, template, ceremony.signer_for(self.custody, approval.ca), recorded)
        except ceremony.SignatureDeferred as deferred:
            deferred.params.update(
                issuer_ca=approval.ca.name,
                profile=approval.profile.name,
                subject_text=approval.subject.text,
                algorithm=approval.ca.algorithm,
            )
            raise

    @staticmethod
    def prepared_from_signed(der: bytes, params: dict[str, object]) -> PreparedCertificate:
        """The PreparedCertificate `_sign` would have made, from the certificate an offline CA signed."""
        cert = x509.Certificate.load(der)
        validity = cert["tbs_certificate"]["validity"]
        return PreparedCertificate(
            der=der,
            serial_hex=certs.serial_hex(cert.serial_number),
            validity=(validity["not_before"].native, validity["not_after"].native),
            subject_text=str(params["subject_text"]),
            fingerprint=certs.fingerprint(der),
            issuer_ca=str(params["issuer_ca"]),
            profile=str(params["profile"]),
            algorithm=str(params["algorithm"]),
        )

    def issued_event(self, prepared: PreparedCertificate, actor: str | None) -> dict[str, object]:
        """`certificate.issued` for a certificate an offline CA signed (a ceremony's import). It asks custody
        for a keyed digest: make it before the transaction that writes it."""
        return self._issued_event(prepared, actor)

    def _issued_event(self, prepared: PreparedCertificate, actor: str | None) -> dict[str, object]:
        not_before, not_after = prepared.validity
        return event_row(
            "certificate.issued",
            actor=actor,
            subject=prepared.serial_hex,
            payload={
                "serial": prepared.serial_hex,
                "ca": prepared.issuer_ca,
                "profile": prepared.profile,
                "subject_hmac": self.pii(prepared.subject_text),
                "not_before": not_before.isoformat(),
                "not_after": not_after.isoformat(),
                "fingerprint_sha256": prepared.fingerprint,
            },
        )

    # -- revocation ------------------------------------------------------------------------------

    def revoke(
        self,
        serial: str,
        reason: str | None,
        actor: str | None = None,
        revoked_at: datetime | None = None,
        invalidity_date: datetime | None = None,
    ) -> Certificate:
        """Revoke a subscriber (or infrastructure) certificate: POST /v1/certificates/{serial}/revoke.
        A CA's own certificate is revoked only by withdrawing the CA (ca/withdrawal.py), which also takes
        it off the trust list; a seal's certificate only by revoking the seal, so the seal's status follows.
        `invalidity_date`: when trust ended, if earlier (a compromise found late): the CRL entry's
        invalidityDate and OCSP's singleExtension."""
        return self._revoke(serial, reason, actor, revoked_at, self._refuse_ca_or_seal, invalidity_date)

    def revoke_seal_certificate(
        self,
        serial: str,
        seal_id: str,
        reason: str | None,
        actor: str | None = None,
        revoked_at: datetime | None = None,
    ) -> Certificate:
        """The certificate of seal `seal_id`, revoked because the seal is (seal/service.py)."""

        def only_that_seal(session: Session, row: Certificate) -> None:
            if session.scalar(select(Seal.certificate_serial).where(Seal.id == seal_id)) != row.serial:
                raise CertificateNotFound(f"{row.serial} is not the certificate of seal {seal_id}")

        return self._revoke(serial, reason, actor, revoked_at, only_that_seal)

    @staticmethod
    def _refuse_ca_or_seal(session: Session, row: Certificate) -> None:
        # A cross-certificate we issued to another hierarchy has no CA row of ours to withdraw, and a root's
        # link certificate (ca/rollover.py) is no CA's own certificate: both revocable, each on the CRL of the
        # key that signed it (the root's key scope).
        if row.is_ca and row.profile not in ("cross-certificate", LINK_PROFILE):
            raise CACertificateNotRevocable(
                f"{row.serial} is a CA certificate: withdraw the CA (POST /v1/cas/{{ca}}/withdraw) instead"
            )
        seal_id = session.scalar(select(Seal.id).where(Seal.certificate_serial == row.serial))
        if seal_id is not None:
            raise UseSealRevoke(
                f"{row.serial} is the certificate of seal {seal_id}: revoke the seal (POST /v1/seals/{seal_id}/revoke)"
            )

    def _revoke(
        self,
        serial: str,
        reason: str | None,
        actor: str | None,
        revoked_at: datetime | None,
        allowed: Callable[[Session, Certificate], None],
        invalidity_date: datetime | None = None,
    ) -> Certificate:
        normalised = rev.normalise_reason(reason)
        invalid_from = rev.checked_invalidity_date(invalidity_date, revoked_at or datetime.now(UTC))
        with self._crl_mutex, self.db.session() as session:
            row = session.get(Certificate, serial.lower())
            if row is None:
                raise CertificateNotFound(f"no certificate with serial {serial}")
            allowed(session, row)
            if row.status == "revoked":
                raise AlreadyRevoked(f"certificate {serial} was revoked at {row.revoked_at}")
            if row.issuer_ca is None:
                raise CertificateNotFound(f"{serial} is a self-signed root; retire it through the trust list")
            return self.revoke_in_session(session, row, normalised, actor, revoked_at, invalid_from)

    def revoke_in_session(
        self,
        session: Session,
        row: Certificate,
        reason: str,
        actor: str | None,
        revoked_at: datetime | None = None,
        invalidity_date: datetime | None = None,
    ) -> Certificate:
        """Mark `row` revoked, record the event and issue its CA's CRL, all in the caller's transaction
        (withdrawing a CA revokes its certificate in the same unit of work). Caller holds `_crl_mutex`."""
        assert row.issuer_ca is not None
        self._lock_ca(session, row.issuer_ca)
        session.refresh(row, with_for_update=True)
        if row.status == "revoked":  # revoked by another process while we waited for the lock
            raise AlreadyRevoked(f"certificate {row.serial} was revoked at {row.revoked_at}")
        revoked_moment = certs.truncate(revoked_at or datetime.now(UTC))
        store.mark_revoked(session, row, reason, revoked_moment, invalidity_date)
        record_event(
            session,
            "certificate.revoked",
            actor=actor,
            subject=row.serial,
            payload={
                "serial": row.serial,
                "ca": row.issuer_ca,
                "reason": reason,
                "revoked_at": revoked_moment.isoformat(),
                "invalidity_date": invalidity_date.isoformat() if invalidity_date else None,
            },
        )
        issuer = self.get_ca(session, row.issuer_ca)  # the CRL of the key that signed it; offline: a request
        scope = crls.scope_of(session, issuer, row.issuer_key_ref, row.crl_scope)
        self.crls.issue_or_request(session, issuer, actor, scope=scope)  # only the revoked certificate's list
        return row

    # -- CRL (ca/crl.py) ---------------------------------------------------------------------------

    def _lock_ca(self, session: Session, name: str) -> CertificateAuthority:
        return crls.lock_ca(session, name)

    def current_crl(self, ca_name: str, scope: str = "") -> bytes:
        """The newest stored CRL of one key scope (ca/crl.py; "" the CA's first key, at the plain URL).
        A read: it never signs (the scheduler keeps CRLs fresh)."""
        return self.crls.current(ca_name, scope)

    def current_crls(self, ca_name: str, with_partitions: bool = True) -> list[bytes]:
        """The newest CRL of every live scope of a CA (after a rollover, the old key's too; its partitions
        unless `with_partitions` is False, leaving the lists that cover its CA and infrastructure certificates)."""
        return self.crls.current_all(ca_name, with_partitions)

    def crl_at(self, url: str) -> bytes | None:
        """The newest CRL this service publishes at distribution point `url`, or None (not one of ours, or
        none yet): what a certificate's own CRL is, partition or not, without every partition's list."""
        # by path: a certificate issued before the public URL changed carries the old host (and the new
        # list's IDP spells the new one, so pyhanko does not take it as covering; our own readers of CRL
        # entries still see a revocation on it, verify/crl_scope.py `may_list`)
        path = urlsplit(url).path
        if not path.startswith("/v1/cas/"):
            return None
        name, _, rest = path[len("/v1/cas/") :].partition("/")
        if rest != "crl" and not rest.startswith("crl/"):
            return None
        try:
            return self.current_crl(name, rest[len("crl/") :] if rest.startswith("crl/") else "")
        except (UnknownCA, CRLUnavailable, UnknownCRLScope):
            return None

    def refresh_crls(self) -> dict[str, int]:
        """A new CRL for every CA."""
        return self.crls.refresh_all()

    def refresh_due_crls(self) -> dict[str, int]:
        """The scheduler's round (api/app.py): a new CRL for each CA past half its newest CRL's validity."""
        return self.crls.refresh_due()

    # -- OCSP (ca/ocsp.py) -------------------------------------------------------------------------

    def responders(self) -> list[Responder]:
        return self.ocsp_responder.responders()

    def ocsp(self, request_der: bytes) -> bytes:
        return self.ocsp_responder.answer(request_der)

    def ocsp_answer(self, request_der: bytes) -> OCSPAnswer:
        """The answer with its validity when pre-signed (the HTTP layer's caching headers)."""
        return self.ocsp_responder.respond_to(request_der)

    def refresh_due_ocsp(self) -> int:
        """The scheduler's round (api/app.py): stored OCSP responses re-signed before half their validity."""
        return self.ocsp_responder.refresh_due()

    def renew_due_ocsp_signers(self) -> list[str]:
        """The scheduler's round (api/app.py): each CA key's OCSP signer renewed within 30 days of its expiry
        while that key's certificates outlive it (ca/rollover.py `renew_due_ocsp_signers`). Returns the new
        signers' key references."""
        from ca.rollover import renew_due_ocsp_signers

        return [renewed.key_ref for renewed in renew_due_ocsp_signers(self)]


_EKU = {
    "server_auth": "server_auth",
    "client_auth": "client_auth",
    "email_protection": "email_protection",
    "time_stamping": "time_stamping",
    "ocsp_signing": "ocsp_signing",
    "document_signing": "1.3.6.1.5.5.7.3.36",  # RFC 9336
    "seal_maker": oids.EKU_SEAL_MAKER,
    "trust_list_signer": oids.EKU_TRUST_LIST_SIGNER,
}


def _name(values: dict[str, str]) -> x509.Name:
    from ca.names import build_name

    return build_name(values)
