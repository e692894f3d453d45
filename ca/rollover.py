"""CA key rollover (issue 12) and OCSP-signer rotation: `POST /v1/keys/{ca}/rotate`, `{ca}.ocsp`.

A rollover makes a new custody version of the CA key and a new CA certificate with the same subject and
a new key identifier — a regional (issuing) CA's signed by its parent's current key, a root's
self-signed — and switches issuance to it at once (the CA row's key, certificate and CRL scope, and the
snapshot invalidated). The old key is kept (`previous_keys` on the row, its custody version enabled):
certificates it issued keep verifying until they expire, because

- its CRL keeps being issued, signed by the old key, at the URL those certificates carry (ca/crl.py:
  one CRL scope per CA key; the new key's certificates carry `/v1/cas/{ca}/crl/k<version>`);
- its OCSP signer keeps answering for them (a CertID's issuerKeyHash picks the responder, ca/ocsp.py),
  and the new key gets an OCSP signer of its own (a new version of `{ca}.ocsp`, certified by the new key);
- the trust list lists every still-valid certificate of the CA (ca/trust_list.py `certificates`), so
  verifiers build paths through the old certificate for old documents and the new one for new.

**Link certificates** (RFC 4210 §4.4: NewWithOld, the new key certified by the old; OldWithNew, the old
key certified by the new) are made for a **root**: a relying party that holds only the old root reaches
certificates under the new root through NewWithOld, and one that installs only the new root still
validates what the old root signed through OldWithNew. A **regional CA** gets none: its relying parties
anchor at the root, not at the regional CA, and both of its certificates already chain to the root (the
new one signed by the parent's current key); a link would only add a second path whose revocation rests
on the CA vouching for itself, and a path builder that wandered onto it would need the CA's own CRL for
the link where the document's LTV material holds the parent's.

**Under an offline parent** (a regional or national issuing CA below the root that `trustseal ca ceremony`
moved offline) the parent's signature on the new CA certificate waits for the ceremony: custody makes the
new CA key version (provisional, keys/rotation.py, and enabled while the request is pending: the CA row still
names the old version, so issuance, CRLs and OCSP go on under the old key), the certificate's TBS becomes a
ceremony request `ca.rollover` (one pending per CA: a second is 409 `ceremony_pending`, refused before any
key is made) and the caller gets `CeremonyRequired` (202 `{"ceremony": …}`). Importing the ceremony's output
(ca/ceremony_import.py checks it is exactly that TBS signed by the parent's key) completes the rollover the
way an online one does (`complete_by_ceremony`): the row switched, a new OCSP signer certified online by
the CA's new key, the new key's first CRL, `ca.rolled_over`, the trust list republished. A request that
will never complete gives its key version up through `abandon_by_ceremony` (the cancel hook).

Refused (nothing changed): an unknown CA (404 `unknown_ca`), a withdrawn CA (409 `ca_withdrawn`), a CA
whose parent is withdrawn (409 `ca_rollover_refused`), a CA whose rollover waits for a ceremony (409
`ceremony_pending`), and an offline CA itself (409 `ca_offline_rollover`: a new root key is generated at
the ceremony, out of this service's reach; README).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from asn1crypto import keys, pem, x509
from sqlalchemy import select
from sqlalchemy.orm import Session

from ca import ceremony, ocsp_renewal, store
from ca import certificates as certs
from ca import crl as crls
from ca.ceremony import CAOffline
from ca.errors import CAKeyRolloverRefused, RolloverInProgress, shown
from ca.issuance import BACKDATE, refuse_inactive
from ca.store import PreparedCertificate
from keys.custody import CustodyError, KeyCustody, KeyVersion, SigningHandle, parse_ref
from keys.rotation import provisional_version
from ledger.events import record_event
from store.models import CeremonyRequest, Certificate, CertificateAuthority

if TYPE_CHECKING:
    from ca.authority import CertificateAuthorityService
    from ca.ceremony_import import Completion

log = logging.getLogger("trustseal.ca")

LINK_PROFILE = "link-certificate"
OPERATION = "ca.rollover"  # the ceremony request of a rollover under an offline parent


class OfflineCARollover(CAOffline):
    """An offline CA (the root in its ceremony home) does not roll over through this service."""

    code = "ca_offline_rollover"


_REBUILT = {"key_identifier", "authority_key_identifier", "crl_distribution_points", "authority_information_access"}


@dataclass(frozen=True)
class Rollover:
    ca: str
    key_ref: str
    previous_key_ref: str
    certificate_der: bytes
    serial: str
    previous_serial: str
    crl_scope: str
    links: tuple[str, ...]  # serials of the link certificates (roots only)

    def as_json(self) -> dict[str, Any]:
        """DESIGN.md's rotation result."""
        return {
            "key": self.ca,
            "version": parse_ref(self.key_ref)[1],
            "certificate_pem": pem.armor("CERTIFICATE", self.certificate_der).decode("ascii"),
            "previous_version": parse_ref(self.previous_key_ref)[1],
        }


def check_rollover(session: Session, name: str) -> CertificateAuthority:
    """The refusals, before custody makes a key (a key made is a ledger event)."""
    from ca.errors import UnknownCA

    ca = session.get(CertificateAuthority, name)
    if ca is None:
        raise UnknownCA(f"no CA named {shown(name)}")
    refuse_inactive(ca.name, ca.status)
    if ca.offline:
        raise OfflineCARollover(
            f"{name} is offline: a new key for it is generated and self-certified at the ceremony, not here"
        )
    if ca.parent is not None:
        parent = session.get(CertificateAuthority, ca.parent)
        if parent is None or parent.status != "active":
            raise CAKeyRolloverRefused(f"{name}'s parent {ca.parent} is not active: it certifies no new key")
    waiting = session.scalars(
        select(CeremonyRequest.id).where(
            CeremonyRequest.operation == OPERATION, CeremonyRequest.subject == name, CeremonyRequest.status == "pending"
        )
    ).first()
    if waiting is not None:
        raise ceremony.CeremonyPending(
            f"{name}'s rollover waits for ceremony request {waiting}: import its output first", request=waiting
        )
    return ca


def _under_offline_parent(session: Session, ca: CertificateAuthority) -> bool:
    if ca.parent is None:
        return False
    parent = session.get(CertificateAuthority, ca.parent)
    return parent is not None and bool(parent.offline)


def _ca_extensions(
    old: x509.Certificate, spki: keys.PublicKeyInfo, issuer_ski: bytes | None, path_length: int | None
) -> list[x509.Extension]:
    """The old certificate's CA extensions (basic constraints, key usage, name constraints …) with the
    key identifiers rebuilt for the new key and issuer."""
    key_usage = sorted(old.key_usage_value.native) if old.key_usage_value is not None else ["key_cert_sign"]
    out = certs.ca_extensions(spki, issuer_ski, key_usage, path_length)
    made = {ext["extn_id"].native for ext in out}
    for ext in old["tbs_certificate"]["extensions"] or []:
        name = ext["extn_id"].native
        if name not in made and name not in _REBUILT:
            out.append(ext)
    return out


def _path_length(old: x509.Certificate) -> int | None:
    constraints = old.basic_constraints_value
    value = constraints["path_len_constraint"].native if constraints is not None else None
    return int(value) if value is not None else None


@dataclass(frozen=True)
class _Draft:
    """The new CA certificate's content before anyone signs it (its parent's key, or its own for a root)."""

    issuer: x509.Name
    subject: x509.Name
    spki: keys.PublicKeyInfo
    serial: int
    not_before: datetime
    not_after: datetime
    extensions: list[x509.Extension]
    issuer_key_ref: str | None  # None: self-signed (a root)

    def sign(self, signer: SigningHandle) -> x509.Certificate:
        return certs.sign_certificate(
            issuer=self.issuer,
            subject=self.subject,
            spki=self.spki,
            serial=self.serial,
            not_before=self.not_before,
            not_after=self.not_after,
            extensions=self.extensions,
            signer=signer,
        )


def _draft(
    service: CertificateAuthorityService,
    session: Session,
    ca: CertificateAuthority,
    version: KeyVersion,
    profile_name: str,
    now: datetime,
) -> _Draft:
    """Same subject and CA extensions as the old certificate, the new key, a fresh validity (no longer than
    the parent's), the distribution points of the parent key that signs it."""
    profile = service.profiles.ca_profiles.get(profile_name)
    old = x509.Certificate.load(ca.certificate_der)
    spki = keys.PublicKeyInfo.load(version.public_key_der)
    validity = timedelta(days=profile.validity_days) if profile is not None else old.not_valid_after - now
    not_before = certs.truncate(now - BACKDATE)
    not_after = certs.truncate(now + validity)
    extensions = _ca_extensions(old, spki, None, _path_length(old))
    if ca.parent is None:
        return _Draft(old.subject, old.subject, spki, certs.new_serial(), not_before, not_after, extensions, None)
    parent = service.get_ca(session, ca.parent)
    parent_cert = x509.Certificate.load(parent.certificate_der)
    extensions = _ca_extensions(old, spki, parent_cert.key_identifier, _path_length(old))
    extensions += certs.distribution_extensions(
        service.crl_url(parent.name, parent.crl_scope),
        service.ocsp_url,
        service.issuer_url(parent.name, parent.crl_scope),
    )
    return _Draft(
        parent_cert.subject,
        old.subject,
        spki,
        certs.new_serial(),
        not_before,
        certs.truncate(min(not_after, parent_cert.not_valid_after)),
        extensions,
        parent.key_ref,
    )


def _prepared(
    der: bytes, ca: CertificateAuthority, profile_name: str, issuer_key_ref: str | None
) -> PreparedCertificate:
    """The store row of a new CA certificate, read from the certificate itself (online or ceremony-signed)."""
    cert = x509.Certificate.load(der)
    validity = cert["tbs_certificate"]["validity"]
    return PreparedCertificate(
        der,
        certs.serial_hex(cert.serial_number),
        (validity["not_before"].native, validity["not_after"].native),
        cert.subject.human_friendly,
        certs.fingerprint(der),
        issuer_ca=ca.parent,
        profile=profile_name,
        algorithm=ca.algorithm,
        issuer_key_ref=issuer_key_ref,
    )


def _switch(
    service: CertificateAuthorityService,
    session: Session,
    ca: CertificateAuthority,
    version: KeyVersion,
    ocsp_version: KeyVersion,
    prepared: PreparedCertificate,
    links: list[PreparedCertificate],
    now: datetime,
    actor: str | None,
    ceremony_id: str | None = None,
) -> dict[str, str | None]:
    """Issuance moves to the new key, in the caller's transaction under the CA row lock: the row switched,
    the new key's OCSP signer certified by it, `ca.rolled_over`, the new key's first CRL. Returns the old key."""
    old_der = ca.certificate_der
    new_scope = f"k{version.version}"
    for link in links:
        store.add(session, link, is_ca=True)
    previous = store.switch_key(session, ca, key_ref=version.ref, crl_scope=new_scope, certificate=prepared, until=now)
    service.provision_ocsp_signer(session, ca, ocsp_version, actor)
    payload: dict[str, Any] = {
        "ca": ca.name,
        "key": version.ref,
        "previous_key": previous["key_ref"],
        "version": version.version,
        "previous_version": parse_ref(str(previous["key_ref"]))[1],
        "serial": prepared.serial_hex,
        "previous_serial": previous["certificate_serial"],
        "fingerprint_sha256": prepared.fingerprint,
        "previous_fingerprint_sha256": certs.fingerprint(old_der),
        "crl_scope": new_scope,
        "previous_crl_scope": previous["crl_scope"],
        "ocsp_key": ocsp_version.ref,
        "links": [link.serial_hex for link in links],
    }
    if ceremony_id is not None:
        payload["ceremony"] = ceremony_id  # the parent signed offline (ca/ceremony.py)
    record_event(session, "ca.rolled_over", actor=actor, subject=ca.name, payload=payload)
    service.crls.issue(session, ca, actor)  # the new key's first CRL, at its new distribution point
    return previous


def roll_over(
    service: CertificateAuthorityService, name: str, actor: str | None = None, custody: KeyCustody | None = None
) -> Rollover:
    """Roll CA `name` over to a new key (module docstring). `custody`: one recording the officer for
    `key.rotated` (ledger/key_events.py); the CA's own recorded custody otherwise. Under an offline parent:
    `ceremony.CeremonyRequired` (the rollover completes when the ceremony's output is imported)."""
    keeper = custody or service.custody
    with service.db.session() as session:
        current = check_rollover(session, name)
        seen_key = current.key_ref  # a concurrent rollover that commits first changes it: this one is refused
        row = session.get(Certificate, current.certificate_serial)
        profile_name = row.profile if row is not None else "root-ca"  # the profile the CA was created under
        by_ceremony = _under_offline_parent(session, current)
    if by_ceremony:
        _request_by_ceremony(service, keeper, name, profile_name, actor)
    # Each key version stays provisional until the switch commits: a refusal under the lock (withdrawn
    # meanwhile, or another rollover of this CA won the race) disables both again (keys/rotation.py).
    with (
        provisional_version(keeper, name) as version,
        provisional_version(keeper, f"{name}.ocsp") as ocsp_version,  # each CA key its own OCSP signer
    ):
        service.pii.prepare()  # the OCSP signer's issuance event digests its subject
        now = datetime.now(UTC)
        with service.crls.mutex, service.db.session() as session:
            ca = crls.lock_ca(session, name)
            check_rollover(session, name)  # withdrawn meanwhile: nothing written
            if ca.key_ref != seen_key:
                raise RolloverInProgress(
                    f"{name} rolled over to {ca.key_ref} meanwhile (another rollover): this one made no change"
                )
            old = x509.Certificate.load(ca.certificate_der)
            draft = _draft(service, session, ca, version, profile_name, now)
            if ca.parent is not None:
                signer = ceremony.signer_for(keeper, service.get_ca(session, ca.parent))
            else:
                signer = keeper.signer(version.ref)
            der = draft.sign(signer).dump()
            prepared = _prepared(der, ca, profile_name, draft.issuer_key_ref)
            new_scope = f"k{version.version}"
            links: list[PreparedCertificate] = []
            if ca.parent is None:
                new = x509.Certificate.load(der)
                links = _links(service, keeper, ca, old, new, version.ref, new_scope, draft.not_before)
            previous = _switch(service, session, ca, version, ocsp_version, prepared, links, now, actor)
    service.invalidate(name)
    return Rollover(
        ca=name,
        key_ref=version.ref,
        previous_key_ref=str(previous["key_ref"]),
        certificate_der=der,
        serial=prepared.serial_hex,
        previous_serial=str(previous["certificate_serial"]),
        crl_scope=new_scope,
        links=tuple(link.serial_hex for link in links),
    )


def _request_by_ceremony(
    service: CertificateAuthorityService, keeper: KeyCustody, name: str, profile_name: str, actor: str | None
) -> NoReturn:
    """The new key made (provisional: disabled again if no request is opened) and its certificate's TBS put
    to the offline parent as a `ca.rollover` ceremony request; nothing else written. Raises
    `CeremonyRequired` (202) with the request."""
    opened: dict[str, Any] | None = None
    with provisional_version(keeper, name) as version:
        try:
            with service.db.session() as session:
                ca = crls.lock_ca(session, name)
                check_rollover(session, name)  # withdrawn, or another rollover requested, meanwhile
                draft = _draft(service, session, ca, version, profile_name, datetime.now(UTC))
                parent = service.get_ca(session, ca.parent) if ca.parent is not None else None
                if parent is None or not parent.offline:
                    raise CAKeyRolloverRefused(f"{name}'s parent is no longer offline: roll it over again")
                params: dict[str, Any] = {
                    "rolled_over": name,
                    "key_ref": version.ref,
                    "previous_key_ref": ca.key_ref,
                    "profile": profile_name,
                    "issuer_key_ref": draft.issuer_key_ref,
                    "rotation_actor": actor,
                }
                draft.sign(ceremony.signer_for(keeper, parent))  # an offline parent's handle never signs
            raise CAKeyRolloverRefused(f"{name}'s parent signed online: roll it over again")  # pragma: no cover
        except ceremony.SignatureDeferred as deferred:  # the session rolled back: it wrote nothing anyway
            # the version stays enabled while the request is pending: the CA row names the old one, so
            # issuance goes on under it; the import switches to the new one (or a cancel disables it)
            opened = ceremony.open_request(service.db, deferred, OPERATION, name, params, actor)
    assert opened is not None  # the block raised unless the request was opened
    raise ceremony.CeremonyRequired(opened)


def complete_by_ceremony(done: Completion) -> dict[str, Any]:
    """`ca.rollover`'s completion (ca/ceremony_import.py): the parent-signed certificate (checked there:
    exactly the requested TBS, the parent's key) put to use as an online rollover does, with a new OCSP
    signer version certified online by the CA's new key, all in one transaction ending in `done.finish`."""
    from ca.ceremony_import import CeremonyStale
    from ledger.key_events import RecordedCustody

    service = done.service
    name, key_ref = str(done.params["rolled_over"]), str(done.params["key_ref"])
    keeper = service.custody
    if isinstance(keeper, RecordedCustody):  # its key.rotated event names the importing officer
        keeper = keeper.as_actor(done.actor)
    version = keeper.get(key_ref)
    if not version.enabled:
        raise CeremonyStale(f"{key_ref} was disabled meanwhile: this rollover of {name} cannot complete")
    now = datetime.now(UTC)
    with service.db.session() as session:
        ca = _completable(service, session, name, done.params)  # before custody makes the OCSP signer's key
        prepared = _prepared(done.der, ca, str(done.params["profile"]), done.params.get("issuer_key_ref"))
    if x509.Certificate.load(done.der).public_key.dump() != version.public_key_der:  # the request's TBS
        raise CeremonyStale(f"the certificate does not certify {key_ref}")
    if prepared.validity[1] <= now:
        raise CeremonyStale(f"the new certificate of {name} expired before it was imported: roll over again")
    service.pii.prepare()
    # the OCSP signer's new version is certified online by the CA's new key; disabled again if this fails
    with (
        provisional_version(keeper, f"{name}.ocsp") as ocsp_version,
        service.crls.mutex,
        service.db.session() as session,
    ):
        crls.lock_ca(session, name)
        ca = _completable(service, session, name, done.params)  # again, under the row lock
        previous = _switch(service, session, ca, version, ocsp_version, prepared, [], now, done.actor, done.request_id)
        result = {
            "rolled_over": name,
            "key": version.ref,
            "previous_key": previous["key_ref"],
            "serial": prepared.serial_hex,
            "previous_serial": previous["certificate_serial"],
            "crl_scope": f"k{version.version}",
            "ocsp_key": ocsp_version.ref,
        }
        done.finish(session, result)
    service.invalidate(name)
    return result


def _completable(
    service: CertificateAuthorityService, session: Session, name: str, params: dict[str, Any]
) -> CertificateAuthority:
    """The CA and its parent still active and the CA still on the key the request replaces; else the
    import is refused (`ca_withdrawn`, `ceremony_stale`) and nothing changes."""
    from ca.ceremony_import import CeremonyStale

    ca = service.get_ca(session, name)
    refuse_inactive(ca.name, ca.status)  # withdrawn meanwhile: nothing switched
    refuse_inactive(str(ca.parent), service.get_ca(session, str(ca.parent)).status)
    if ca.key_ref != params["previous_key_ref"]:
        raise CeremonyStale(f"{name} moved to {ca.key_ref} meanwhile: this rollover is overtaken")
    return ca


def abandon_by_ceremony(custody: KeyCustody, params: dict[str, Any]) -> None:
    """The cancel hook: a `ca.rollover` request that will never complete (cancelled, or refused for good)
    gives up its provisional CA key version, so the CA's bare key name never resolves to a key no
    certificate certifies. Call it once the request is marked so (ca/ceremony_import.py `abandon`)."""
    name, number = parse_ref(str(params["key_ref"]))
    if number is None:
        return
    try:
        custody.disable(name, number)
    except CustodyError:  # the sweep (api/key_sweep.py) disables uncertified versions left enabled
        log.exception("could not disable %s@%s after its rollover request was abandoned", name, number)


def _links(
    service: CertificateAuthorityService,
    keeper: KeyCustody,
    ca: CertificateAuthority,
    old: x509.Certificate,
    new: x509.Certificate,
    new_key_ref: str,
    new_scope: str,
    not_before: datetime,
) -> list[PreparedCertificate]:
    """NewWithOld and OldWithNew for a root (RFC 4210 §4.4), each valid no longer than the old root, each
    pointing at the CRL of the key that signed it."""
    out = []
    path_length = _path_length(old)
    for subject_cert, issuer_cert, key_ref, scope in (
        (new, old, ca.key_ref, ca.crl_scope or ""),  # NewWithOld
        (old, new, new_key_ref, new_scope),  # OldWithNew
    ):
        serial = certs.new_serial()
        not_after = certs.truncate(min(old.not_valid_after, new.not_valid_after))
        extensions = _ca_extensions(old, subject_cert.public_key, issuer_cert.key_identifier, path_length)
        extensions += certs.distribution_extensions(
            service.crl_url(ca.name, scope), service.ocsp_url, service.issuer_url(ca.name, scope)
        )
        link = certs.sign_certificate(
            issuer=old.subject,
            subject=old.subject,
            spki=subject_cert.public_key,
            serial=serial,
            not_before=not_before,
            not_after=not_after,
            extensions=extensions,
            signer=keeper.signer(key_ref),
        )
        der = link.dump()
        out.append(
            PreparedCertificate(
                der,
                certs.serial_hex(serial),
                (not_before, not_after),
                old.subject.human_friendly,
                certs.fingerprint(der),
                issuer_ca=ca.name,
                profile=LINK_PROFILE,
                algorithm=ca.algorithm,
                issuer_key_ref=key_ref,
            )
        )
    return out


@dataclass(frozen=True)
class SignerRotation:
    ca: str
    key_ref: str
    previous_key_ref: str | None
    certificate_der: bytes

    def as_json(self) -> dict[str, Any]:
        return {
            "key": parse_ref(self.key_ref)[0],
            "version": parse_ref(self.key_ref)[1],
            "certificate_pem": pem.armor("CERTIFICATE", self.certificate_der).decode("ascii"),
            "previous_version": parse_ref(self.previous_key_ref)[1] if self.previous_key_ref else None,
        }


def rotate_ocsp_signer(
    service: CertificateAuthorityService, name: str, actor: str | None = None, custody: KeyCustody | None = None
) -> SignerRotation:
    """A new version of `{name}.ocsp`, certified by the CA's current key; the responder switches to it at
    once. The old version stays enabled and its certificate unrevoked: a response signed a moment ago
    still verifies. The new version is provisional: disabled again if the switch fails."""
    keeper = custody or service.custody
    with service.db.session() as session:
        ca = session.get(CertificateAuthority, name)
        if ca is None:
            from ca.errors import UnknownCA

            raise UnknownCA(f"no CA named {shown(name)}")
        refuse_inactive(ca.name, ca.status)
        if ca.offline:
            raise CAOffline(f"{name} is offline: its OCSP signer is certified through a ceremony (not wired yet)")
    # provisional until the switch commits: a failure (the CA withdrawn meanwhile, the database gone)
    # disables it again, so `{name}.ocsp` never resolves to an uncertified version (keys/rotation.py)
    with provisional_version(keeper, f"{name}.ocsp") as version:
        service.pii.prepare()
        with service.crls.mutex, service.db.session() as session:
            ca = crls.lock_ca(session, name)
            refuse_inactive(ca.name, ca.status)
            previous = ca.ocsp_key_ref
            service.provision_ocsp_signer(session, ca, version, actor)
            assert ca.ocsp_certificate_der is not None
            der = ca.ocsp_certificate_der
            record_event(
                session,
                "ocsp_signer.rotated",
                actor=actor,
                subject=f"{name}.ocsp",
                payload={
                    "ca": name,
                    "key": version.ref,
                    "previous_key": previous,
                    "serial": f"{x509.Certificate.load(der).serial_number:x}",
                    "fingerprint_sha256": certs.fingerprint(der),
                    "issuer_key": ca.key_ref,
                },
            )
    service.invalidate(name)
    return SignerRotation(ca=name, key_ref=version.ref, previous_key_ref=previous, certificate_der=der)


RENEW_BEFORE = ocsp_renewal.RENEW_BEFORE  # a signer this close to expiry is renewed (`renew_due_ocsp_signers`)
OCSP_SIGNER_PROFILE = "ocsp-signer"


@dataclass(frozen=True)
class KeyView:
    """One key of a CA as issuance sees an issuer (ca/issuance.py `CALike`): an earlier key certifies its
    own OCSP signer with it."""

    name: str
    algorithm: str
    key_ref: str
    certificate_serial: str
    certificate_der: bytes
    crl_scope: str
    offline: bool = False


def renew_ocsp_signer(
    service: CertificateAuthorityService,
    name: str,
    key_ref: str,
    actor: str | None = None,
    custody: KeyCustody | None = None,
) -> SignerRotation:
    """A new OCSP signer for CA `name`'s key `key_ref` — the current key or an earlier one whose
    certificates are still unexpired — certified by that key (its custody version stays enabled after a
    rollover for this). A signer lives 365 days, the certificates it answers for up to 1825: without this
    an old key's responder would go silent years before its certificates expire. The responder of that key
    switches to it at once; the old signer's pre-signed answers are not served any more (ca/ocsp_store.py
    keys them by signer) and the scheduler re-signs them. Event `ocsp_signer.renewed`. Offline CAs are
    refused (409 `ca_offline`): the `ocsp.signer` ceremony renews an offline root's signer
    (ca/ocsp_renewal.py), and a root with live earlier keys does not go offline (ca/ceremony_home.py)."""
    if key_ref == _current_key(service, name):
        rotated = rotate_ocsp_signer(service, name, actor, custody)
        _renewed_event(service, rotated, name, key_ref, actor)
        return rotated
    keeper = custody or service.custody
    with service.db.session() as session:
        _check_renewable(session, name, key_ref)
    version = keeper.rotate(f"{name}.ocsp")
    service.pii.prepare()
    with service.crls.mutex, service.db.session() as session:
        ca = crls.lock_ca(session, name)
        previous = _check_renewable(session, name, key_ref)
        row = session.get(Certificate, str(previous["certificate_serial"]))
        assert row is not None  # _check_renewable found it
        view = KeyView(name, ca.algorithm, key_ref, row.serial, row.der, str(previous.get("crl_scope") or ""))
        signed = service.sign_ocsp_signer(ca, version, key=view)
        store.add(session, signed, event=service.issued_event(signed, actor))  # not the CA's current responder
        der = signed.der
        store.set_previous_ocsp_signer(
            session, ca, key_ref, version.ref, f"{x509.Certificate.load(der).serial_number:x}"
        )
        result = SignerRotation(
            ca=name, key_ref=version.ref, previous_key_ref=previous.get("ocsp_key_ref"), certificate_der=der
        )
        _record_renewed(session, result, name, key_ref, actor)
    service.invalidate(name)
    return result


def _current_key(service: CertificateAuthorityService, name: str) -> str:
    with service.db.session() as session:
        ca = session.get(CertificateAuthority, name)
        if ca is None:
            from ca.errors import UnknownCA

            raise UnknownCA(f"no CA named {shown(name)}")
        return ca.key_ref


def _check_renewable(session: Session, name: str, key_ref: str) -> dict[str, Any]:
    """The refusals of a renewal for an earlier key; its `previous_keys` entry."""
    from ca.errors import UnknownCA, UnknownCAKey

    ca = session.get(CertificateAuthority, name)
    if ca is None:
        raise UnknownCA(f"no CA named {shown(name)}")
    refuse_inactive(ca.name, ca.status)
    if ca.offline:
        raise CAOffline(f"{name} is offline: its OCSP signer is certified through a ceremony")
    entry = next((p for p in ca.previous_keys or [] if p.get("key_ref") == key_ref), None)
    if entry is None or session.get(Certificate, str(entry.get("certificate_serial"))) is None:
        raise UnknownCAKey(f"{name} has no key {shown(key_ref)}")
    return dict(entry)


def _renewed_event(
    service: CertificateAuthorityService, rotated: SignerRotation, name: str, key_ref: str, actor: str | None
) -> None:
    with service.db.session() as session:
        _record_renewed(session, rotated, name, key_ref, actor)


def _record_renewed(session: Session, result: SignerRotation, name: str, key_ref: str, actor: str | None) -> None:
    cert = x509.Certificate.load(result.certificate_der)
    record_event(
        session,
        "ocsp_signer.renewed",
        actor=actor,
        subject=f"{name}.ocsp",
        payload={
            "ca": name,
            "key": result.key_ref,
            "previous_key": result.previous_key_ref,
            "issuer_key": key_ref,
            "serial": f"{cert.serial_number:x}",
            "fingerprint_sha256": certs.fingerprint(result.certificate_der),
            "not_after": cert.not_valid_after.isoformat(),
        },
    )


def due_ocsp_signers(
    service: CertificateAuthorityService, now: datetime, within: timedelta = RENEW_BEFORE
) -> list[tuple[str, str]]:
    """(CA, key) pairs whose OCSP signer expires within `within` of `now` while a certificate that key
    issued (other than its OCSP signers) outlives the signer — and a renewal would outlive it too (the key's
    own certificate ends later). Online, active CAs only."""
    from sqlalchemy import func, select

    due = []
    for ca in service.snapshot().cas.values():
        if ca.offline or ca.status != "active":
            continue
        for generation in ca.generations:
            if generation.ocsp_certificate_der is None:
                continue
            signer_until = x509.Certificate.load(generation.ocsp_certificate_der).not_valid_after
            if signer_until - now > within or generation.certificate.not_valid_after <= signer_until:
                continue
            signed = Certificate.issuer_key_ref == generation.key_ref
            if generation is ca.generations[-1]:
                from sqlalchemy import or_

                signed = or_(signed, Certificate.issuer_key_ref.is_(None))  # rows from before keys were recorded
            with service.db.session() as session:
                last = session.scalar(
                    select(func.max(Certificate.not_after)).where(
                        Certificate.issuer_ca == ca.name, signed, Certificate.profile != OCSP_SIGNER_PROFILE
                    )
                )
            if generation.current or (last is not None and last > signer_until):
                due.append((ca.name, generation.key_ref))
    return due


def renew_due_ocsp_signers(
    service: CertificateAuthorityService, now: datetime | None = None, actor: str | None = "scheduler"
) -> list[SignerRotation]:
    """The scheduler's round (api/app.py): each due OCSP signer (`due_ocsp_signers`) renewed. One that
    fails (withdrawn meanwhile, custody unreachable) is logged and retried next round; the others go on."""
    renewed = []
    for name, key_ref in due_ocsp_signers(service, now or datetime.now(UTC)):
        try:
            renewed.append(renew_ocsp_signer(service, name, key_ref, actor))
        except Exception:
            log.exception("the OCSP signer of %s key %s could not be renewed; the next round retries", name, key_ref)
    return renewed
