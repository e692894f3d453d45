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

Refused (nothing changed): an unknown CA (404 `unknown_ca`), a withdrawn CA (409 `ca_withdrawn`), a CA
whose parent is withdrawn (409 `ca_rollover_refused`), an offline CA or one under an offline parent (409
`ca_offline`: the rollover is not wired into the ceremony seam yet, ca/ceremony.py shows how).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from asn1crypto import keys, pem, x509
from sqlalchemy.orm import Session

from ca import certificates as certs
from ca import crl as crls
from ca import store
from ca.ceremony import CAOffline
from ca.errors import CAKeyRolloverRefused
from ca.issuance import BACKDATE, refuse_inactive
from ca.store import PreparedCertificate
from keys.custody import KeyCustody, parse_ref
from ledger.events import record_event
from store.models import Certificate, CertificateAuthority

if TYPE_CHECKING:
    from ca.authority import CertificateAuthorityService

LINK_PROFILE = "link-certificate"
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
        raise UnknownCA(f"no CA named {name!r}")
    refuse_inactive(ca.name, ca.status)
    if ca.offline:
        raise CAOffline(f"{name} is offline: its rollover has no ceremony path yet (ca/ceremony.py)")
    if ca.parent is not None:
        parent = session.get(CertificateAuthority, ca.parent)
        if parent is None or parent.status != "active":
            raise CAKeyRolloverRefused(f"{name}'s parent {ca.parent} is not active: it certifies no new key")
        if parent.offline:
            raise CAOffline(f"{name}'s parent {ca.parent} is offline: a rollover under it has no ceremony path yet")
    return ca


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


def roll_over(
    service: CertificateAuthorityService, name: str, actor: str | None = None, custody: KeyCustody | None = None
) -> Rollover:
    """Roll CA `name` over to a new key (module docstring). `custody`: one recording the officer for
    `key.rotated` (ledger/key_events.py); the CA's own recorded custody otherwise."""
    keeper = custody or service.custody
    with service.db.session() as session:
        row = session.get(Certificate, check_rollover(session, name).certificate_serial)
        profile_name = row.profile if row is not None else "root-ca"  # the profile the CA was created under
    profile = service.profiles.ca_profiles.get(profile_name)
    version = keeper.rotate(name)
    ocsp_version = keeper.rotate(f"{name}.ocsp")  # each CA key its own OCSP signer; the old one keeps answering
    service.pii.prepare()  # the OCSP signer's issuance event digests its subject
    now = datetime.now(UTC)
    with service.crls.mutex, service.db.session() as session:
        ca = crls.lock_ca(session, name)
        check_rollover(session, name)  # withdrawn meanwhile: nothing written (the key versions stay unused)
        old = x509.Certificate.load(ca.certificate_der)
        spki = keys.PublicKeyInfo.load(version.public_key_der)
        validity = timedelta(days=profile.validity_days) if profile is not None else old.not_valid_after - now
        not_before = certs.truncate(now - BACKDATE)
        not_after = certs.truncate(now + validity)
        path_length = _path_length(old)
        if ca.parent is not None:
            parent = service.get_ca(session, ca.parent)
            parent_cert = x509.Certificate.load(parent.certificate_der)
            issuer_name, issuer_ski = parent_cert.subject, parent_cert.key_identifier
            signer, issuer_key_ref = keeper.signer(parent.key_ref), parent.key_ref
            not_after = min(not_after, parent_cert.not_valid_after)
            distribution = certs.distribution_extensions(
                service.crl_url(parent.name, parent.crl_scope),
                service.ocsp_url,
                service.issuer_url(parent.name, parent.crl_scope),
            )
        else:
            issuer_name, issuer_ski = old.subject, None
            signer, issuer_key_ref = keeper.signer(version.ref), None
            distribution = []
        serial = certs.new_serial()
        cert = certs.sign_certificate(
            issuer=issuer_name,
            subject=old.subject,
            spki=spki,
            serial=serial,
            not_before=not_before,
            not_after=not_after,
            extensions=_ca_extensions(old, spki, issuer_ski, path_length) + distribution,
            signer=signer,
        )
        der = cert.dump()
        prepared = PreparedCertificate(
            der,
            certs.serial_hex(serial),
            (not_before, not_after),
            old.subject.human_friendly,
            certs.fingerprint(der),
            issuer_ca=ca.parent,
            profile=profile_name,
            algorithm=ca.algorithm,
            issuer_key_ref=issuer_key_ref,
        )
        new_scope = f"k{version.version}"
        links: list[PreparedCertificate] = []
        if ca.parent is None:
            links = _links(service, keeper, ca, old, cert, version.ref, new_scope, not_before)
            for link in links:
                store.add(session, link, is_ca=True)
        previous = store.switch_key(
            session, ca, key_ref=version.ref, crl_scope=new_scope, certificate=prepared, until=now
        )
        service.provision_ocsp_signer(session, ca, ocsp_version, actor)
        record_event(
            session,
            "ca.rolled_over",
            actor=actor,
            subject=name,
            payload={
                "ca": name,
                "key": version.ref,
                "previous_key": previous["key_ref"],
                "version": version.version,
                "previous_version": parse_ref(str(previous["key_ref"]))[1],
                "serial": prepared.serial_hex,
                "previous_serial": previous["certificate_serial"],
                "fingerprint_sha256": prepared.fingerprint,
                "previous_fingerprint_sha256": certs.fingerprint(old.dump()),
                "crl_scope": new_scope,
                "previous_crl_scope": previous["crl_scope"],
                "ocsp_key": ocsp_version.ref,
                "links": [link.serial_hex for link in links],
            },
        )
        service.crls.issue(session, ca, actor)  # the new key's first CRL, at its new distribution point
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
    still verifies."""
    keeper = custody or service.custody
    with service.db.session() as session:
        ca = session.get(CertificateAuthority, name)
        if ca is None:
            from ca.errors import UnknownCA

            raise UnknownCA(f"no CA named {name!r}")
        refuse_inactive(ca.name, ca.status)
        if ca.offline:
            raise CAOffline(f"{name} is offline: its OCSP signer is certified through a ceremony (not wired yet)")
    version = keeper.rotate(f"{name}.ocsp")
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
