"""A root made offline from the start: `trustseal ca ceremony init-root` and `adopt-root`.

`init_root` (offline side) generates the root key *inside* the ceremony home's keystore — it never exists
anywhere else — and self-signs the root certificate (the `root-ca` profile: keyCertSign, cRLSign, no
pathLen) and its first CRL (number 1, empty, valid `OFFLINE_CRL_VALIDITY`), logs both in the home's log
and writes a `trustseal-ceremony-root/v1` bundle: the certificate (PEM) and the CRL (base64 DER).

`adopt_root` (online side, local break-glass) takes that bundle as a new hierarchy root: it checks the
certificate is a self-signed CA certificate whose signature verifies with its own key and that the CRL is
signed by it, then creates the CA row already `offline` (no key in online custody), stores the
certificate (`ca.created` with `"adopted": "offline"`) and CRL, and makes the root's OCSP responder key
`<root>.ocsp` online; its certificate is the first `ocsp.signer` ceremony request, opened at once. The
trust list lists the new root from its next publication. Refusals: `ceremony_root_invalid` (422),
`ca_exists` (409).
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from asn1crypto import crl as asn1_crl
from asn1crypto import keys, pem, x509

from ca import ceremony_log, store
from ca import ceremony_policy as policy
from ca import certificates as certs
from ca import crl as crls
from ca import revocation as rev
from ca.ceremony_home import CeremonyHome
from ca.errors import CAError, CAExists
from ca.issuance import BACKDATE
from ca.names import build_name
from ca.store import PreparedCertificate
from gm.signatures import UnsupportedSignatureAlgorithm, verify_signature
from keys.custody import KeyAlgorithm, KeyNotFound
from ledger.events import record_event
from policies.profiles import ProfileSet

if TYPE_CHECKING:
    from ca.authority import CertificateAuthorityService

ROOT_FORMAT = "trustseal-ceremony-root/v1"


class CeremonyRootInvalid(CAError):
    code = "ceremony_root_invalid"
    status = 422


def init_root(
    home: CeremonyHome, name: str, algorithm: KeyAlgorithm, common_name: str, profiles: ProfileSet
) -> dict[str, Any]:
    """Generate root `name`'s key in the ceremony home, self-sign its certificate and first CRL → the bundle."""
    if name in home.manifest()["cas"] or name in home.keystore.names():
        raise CAExists(f"this ceremony home holds a CA {name} already")
    profile = profiles.ca_profiles["root-ca"]
    subject = build_name({"country_name": "CN", "organization_name": "trustseal", "common_name": common_name})
    version = home.keystore.create(name, algorithm)
    handle = home.keystore.signer(version.ref)
    spki = keys.PublicKeyInfo.load(version.public_key_der)
    now = datetime.now(UTC)
    cert = certs.sign_certificate(
        issuer=subject,
        subject=subject,
        spki=spki,
        serial=certs.new_serial(),
        not_before=certs.truncate(now - BACKDATE),
        not_after=certs.truncate(now + timedelta(days=profile.validity_days)),
        extensions=certs.ca_extensions(spki, None, profile.key_usage, profile.path_length),
        signer=handle,
    )
    this_update = certs.truncate(now)
    crl = rev.build_crl(
        issuer=cert,
        signer=handle,
        number=1,
        this_update=this_update,
        next_update=this_update + crls.OFFLINE_CRL_VALIDITY,
        revoked=[],
    )
    tbs_cert, tbs_crl = cert["tbs_certificate"], crl["tbs_cert_list"]
    ceremony_log.append(home.path, ceremony_log.record_for(None, "init-root", name, tbs_cert, tbs_cert.dump()))
    ceremony_log.append(home.path, ceremony_log.record_for(None, "init-root", name, tbs_crl, tbs_crl.dump()))
    home.add_ca(name, cert.dump(), version.ref, str(algorithm))
    armored: bytes = pem.armor("CERTIFICATE", cert.dump())
    return {
        "format": ROOT_FORMAT,
        "ca": name,
        "algorithm": str(algorithm),
        "key": version.ref,
        "certificate": armored.decode("ascii"),
        "crl": base64.b64encode(crl.dump()).decode("ascii"),
        "fingerprint_sha256": certs.fingerprint(cert.dump()),
    }


def _parse(bundle: object) -> tuple[str, str, str, x509.Certificate, asn1_crl.CertificateList]:
    if not isinstance(bundle, dict) or bundle.get("format") != ROOT_FORMAT:
        raise CeremonyRootInvalid(f"not a {ROOT_FORMAT} document (`ceremony init-root` writes one)")
    name, algorithm, key_ref = bundle.get("ca"), bundle.get("algorithm"), bundle.get("key")
    if not all(isinstance(v, str) and v for v in (name, algorithm, key_ref)):
        raise CeremonyRootInvalid("`ca`, `algorithm` and `key` are required")
    try:
        cert_der = pem.unarmor(str(bundle.get("certificate")).encode("ascii"))[2]
        cert = x509.Certificate.load(cert_der, strict=True)
        crl = asn1_crl.CertificateList.load(base64.b64decode(str(bundle.get("crl")), validate=True), strict=True)
        cert.native  # noqa: B018
        crl.native  # noqa: B018
    except (ValueError, TypeError, binascii.Error):
        raise CeremonyRootInvalid("the bundle's certificate or CRL does not parse") from None
    return str(name), str(algorithm), str(key_ref), cert, crl


def _signed_by(spki: bytes, algorithm: Any, signature: Any, tbs: bytes) -> bool:
    try:
        return bool(verify_signature(spki, algorithm, signature.native, tbs))
    except (UnsupportedSignatureAlgorithm, ValueError, TypeError):
        return False


def adopt_root(service: CertificateAuthorityService, bundle: object, actor: str) -> dict[str, Any]:
    """Take an offline-made root as a new hierarchy root (see the module's docstring)."""
    from ca import ocsp_renewal
    from store.models import CertificateAuthority

    name, algorithm, key_ref, cert, crl = _parse(bundle)
    spki = cert.public_key.dump()
    usage = cert.key_usage_value.native if cert.key_usage_value is not None else ()
    if cert.subject.dump() != cert.issuer.dump() or not cert.ca or "key_cert_sign" not in usage:
        raise CeremonyRootInvalid("not a self-signed CA certificate with keyCertSign")
    if cert["signature_algorithm"].dump() != certs.signature_algorithm(algorithm).dump():
        raise CeremonyRootInvalid(f"the certificate is not signed with {algorithm}'s algorithm")
    if not _signed_by(spki, cert["signature_algorithm"], cert["signature_value"], cert["tbs_certificate"].dump()):
        raise CeremonyRootInvalid("the certificate's self-signature does not verify")
    tbs = crl["tbs_cert_list"]
    if tbs["issuer"].dump() != cert.subject.dump() or not _signed_by(
        spki, crl["signature_algorithm"], crl["signature"], tbs.dump()
    ):
        raise CeremonyRootInvalid("the CRL is not signed by this root")
    if cert.not_valid_after <= datetime.now(UTC) or tbs["next_update"].native <= datetime.now(UTC):
        raise CeremonyRootInvalid("the certificate or its CRL has expired")
    with service.db.session() as session:
        if session.get(CertificateAuthority, name) is not None:
            raise CAExists(f"CA {name} exists")
    try:
        service.custody.get(name)
    except KeyNotFound:
        pass
    else:
        raise CeremonyRootInvalid(f"online custody holds a key named {name}: an offline root has none here")
    try:
        ocsp_version = service.custody.get(f"{name}.ocsp")
    except KeyNotFound:
        ocsp_version = service.custody.create(f"{name}.ocsp", KeyAlgorithm(algorithm))
    der = cert.dump()
    serial = certs.serial_hex(cert.serial_number)
    validity = (cert.not_valid_before, cert.not_valid_after)
    with service.db.session() as session:
        if session.get(CertificateAuthority, name) is not None:
            raise CAExists(f"CA {name} exists")
        store.add_ca(
            session,
            name=name,
            parent=None,
            algorithm=algorithm,
            key_ref=key_ref,
            certificate_serial=serial,
            certificate_der=der,
            ocsp_key_ref=ocsp_version.ref,
            offline=True,
        )
        prepared = PreparedCertificate(
            der,
            serial,
            validity,
            cert.subject.human_friendly,
            certs.fingerprint(der),
            issuer_ca=None,
            profile="root-ca",
            algorithm=algorithm,
        )
        store.add(session, prepared, is_ca=True)
        record_event(
            session,
            "ca.created",
            actor=actor,
            subject=name,
            payload={
                "ca": name,
                "parent": None,
                "serial": serial,
                "algorithm": algorithm,
                "key": key_ref,
                "region": None,
                "fingerprint_sha256": certs.fingerprint(der),
                "adopted": "offline",
            },
        )
        number = policy.crl_number(tbs)
        if number is None:
            raise CeremonyRootInvalid("the CRL carries no CRL number")
        crls.store_crl(session, name, crl.dump(), number, len(tbs["revoked_certificates"]), actor)
    service.invalidate(name)
    opened = ocsp_renewal.request_due(service)
    return {"ca": name, "serial": serial, "fingerprint_sha256": certs.fingerprint(der), "ocsp_requests": opened}
