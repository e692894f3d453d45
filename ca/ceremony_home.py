"""The ceremony home: where an offline root's key lives, and the two things done with it.

A ceremony home is a folder of its own (0700), with its own local keystore under its own passphrase
(never the online one: `move_offline` refuses the same passphrase) and `ceremony.json`, the certificates of
the CAs it holds keys for. It is meant to live on a machine without a network (or on removable media kept
in a safe).

- `move_offline` (online side, once): pre-signs what the root needs to keep working for a while (a root CRL
  valid `OFFLINE_CRL_VALIDITY`, a current trust-list signer certificate), copies every version of the
  root's key into the ceremony home, marks the CA offline with `ca.moved_offline`, and removes the key from
  online custody (local keystore only: see `CeremonyCustodyUnsupported`). A rolled-over root whose earlier
  key still has unexpired certificates is refused (`LiveEarlierKeys`, 409 `ca_has_live_earlier_keys`).
- `CeremonyHome.sign` (offline side): shows what a request signs (ca/ceremony_policy.py `describe`), checks
  that it is a TBS for this CA (issuer name, signature algorithm, key) and what the ceremony policy allows for
  its operation (ca/ceremony_policy.py `check`: the request file is unauthenticated), and signs it with the
  ceremony key. Needs nothing but the ceremony home and the request file.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asn1crypto import crl as asn1_crl
from asn1crypto import pem, x509

from ca import ceremony, ceremony_log, store
from ca import ceremony_policy as policy
from ca import certificates as certs
from ca import crl as crls
from ca.ceremony_policy import RequestRefused as RequestRefused  # where callers found it first
from ca.errors import CAError
from gm import der
from keys.custody import KeyCustody, parse_ref
from keys.local import LocalKeystore
from ledger.events import record_event

if TYPE_CHECKING:
    from ca.authority import CertificateAuthorityService
    from ca.trust_list import TrustListPublisher

MANIFEST = "ceremony.json"
HOME_FORMAT = "trustseal-ceremony-home/v1"


class CeremonyHomeError(CAError):
    code = "ceremony_home_invalid"
    status = 422


class CeremonyHomeLocation(CAError):
    """Where the ceremony home would be created defeats its purpose (on the online disk, inside the online
    home, or under a folder that does not exist: a typo must not quietly make a path)."""

    code = "ceremony_home_location"
    status = 422


def check_location(path: Path, online_home: Path, *, same_device_ok: bool = False) -> None:
    """Refuse a ceremony home inside the online home, under a parent folder that does not exist, or on the
    online home's device (its filesystem) unless `same_device_ok` (tests, or a deliberate first step before
    the folder is carried to removable media)."""
    target = Path(os.path.abspath(path))
    parent = target.parent
    if not parent.is_dir():
        raise CeremonyHomeLocation(f"{parent} does not exist: create the ceremony home on mounted offline media")
    online = Path(os.path.realpath(online_home))
    resolved = Path(os.path.realpath(target))
    if resolved == online or online in resolved.parents:
        raise CeremonyHomeLocation(f"{target} is inside the online home {online_home}")
    existing = resolved if resolved.exists() else Path(os.path.realpath(parent))
    if not same_device_ok and online.exists() and existing.stat().st_dev == online.stat().st_dev:
        raise CeremonyHomeLocation(
            f"{target} is on the same device as the online home {online_home}: use removable or offline media "
            "(or --same-device-ok, knowing the key's ciphertext stays on the online disk)"
        )


class CeremonyCustodyUnsupported(CAError):
    """Only the local keystore moves a key out. A Vault / OpenBao transit key is not exportable unless it was
    made so (and then it is no HSM-grade key); a PKCS#11 key is made non-extractable: for those, make the
    root in the offline HSM from the start."""

    code = "ceremony_custody_unsupported"
    status = 422


class NotARoot(CAError):
    code = "ceremony_not_a_root"
    status = 422


class AlreadyOffline(CAError):
    code = "ca_offline_already"
    status = 409


class LiveEarlierKeys(CAError):
    """A rolled-over root whose earlier key still has unexpired certificates stays online: an offline CA
    refreshes only its current key's CRL (ca/crl.py), so the earlier key's CRL (the regional CAs and links
    it certified) would go stale, and a revocation under it would have no ceremony path."""

    code = "ca_has_live_earlier_keys"
    status = 409


def _pem(der_bytes: bytes) -> str:
    armored: bytes = pem.armor("CERTIFICATE", der_bytes)
    return armored.decode("ascii")


@dataclass
class CeremonyHome:
    path: Path
    keystore: LocalKeystore

    @classmethod
    def open(cls, path: Path, passphrase: str, *, create: bool = False, online: str | None = None) -> CeremonyHome:
        """Open (or with `create`, make) a ceremony home; a wrong passphrase fails here (`custody_locked`).
        `online`: the online keystore's passphrase, which the ceremony home's must not be."""
        if online is not None and hmac.compare_digest(passphrase.encode(), online.encode()):
            raise CeremonyHomeError("the ceremony home's passphrase must not be the online keystore's")
        path = Path(path)
        if not create and not (path / MANIFEST).exists():
            raise CeremonyHomeError(f"{path} is not a ceremony home (no {MANIFEST})")
        previous = os.umask(0o077)
        try:
            path.mkdir(parents=True, exist_ok=True, mode=0o700)
            if path.stat().st_mode & 0o077:
                raise CeremonyHomeError(f"{path} is reachable by group or others: chmod 700 {path}")
            keystore = LocalKeystore(path / "keystore", passphrase=passphrase)
            home = cls(path, keystore)
            if not (path / MANIFEST).exists():
                home._write({"format": HOME_FORMAT, "cas": {}})
        finally:
            os.umask(previous)
        return home

    def manifest(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.path / MANIFEST).read_text())
        if data.get("format") != HOME_FORMAT:
            raise CeremonyHomeError(f"{self.path / MANIFEST} is not a {HOME_FORMAT} manifest")
        return data

    def _write(self, data: dict[str, Any]) -> None:
        tmp = self.path / (MANIFEST + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path / MANIFEST)

    def add_ca(self, name: str, certificate_der: bytes, key_ref: str, algorithm: str) -> None:
        data = self.manifest()
        data["cas"][name] = {
            "certificate": _pem(certificate_der),
            "key": key_ref,
            "algorithm": algorithm,
            "fingerprint_sha256": certs.fingerprint(certificate_der),
            "added_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self._write(data)

    def certificate(self, name: str) -> x509.Certificate:
        entry = self.manifest()["cas"].get(name)
        if entry is None:
            raise RequestRefused(f"this ceremony home holds no key for CA {name!r}")
        return x509.Certificate.load(pem.unarmor(entry["certificate"].encode("ascii"))[2])

    # -- the offline side -------------------------------------------------------------------------

    def describe(self, request: dict[str, Any]) -> list[str]:
        """What the request signs, for the people at the ceremony to read (and compare the TBS's SHA-256 with
        `ceremony list` online) before they sign it."""
        tbs = _tbs(request)
        lines = [
            f"request   {request.get('id')} ({request.get('operation')}, asked by {request.get('requested_by')} "
            f"at {request.get('created_at')})",
            f"signer    {request.get('ca')} key {request.get('key')}",
        ]
        return lines + policy.describe(tbs, base64.b64decode(request["tbs"]))

    def check(self, request: dict[str, Any]) -> dict[str, Any]:
        """Everything `sign` checks before it signs (RequestRefused otherwise): the TBS is one of a CA held
        here, under its key and algorithm, what the ceremony policy allows for the request's operation, and
        consistent with what this home signed before (ca/ceremony_log.py). Returns the log record."""
        ca, request_id = request.get("ca"), request.get("id")
        if not isinstance(ca, str):
            raise RequestRefused("the request names no CA")
        if not isinstance(request_id, str) or not request_id:
            raise RequestRefused("the request has no id")
        ca_cert = self.certificate(ca)
        key_ref = str(request.get("key"))
        entry = self.manifest()["cas"][ca]
        if parse_ref(key_ref)[0] != parse_ref(entry["key"])[0]:
            raise RequestRefused(f"the request names key {key_ref}; {ca}'s key here is {entry['key']}")
        tbs = _tbs(request)
        algorithm = certs.signature_algorithm(entry["algorithm"])
        if tbs["signature"].dump() != algorithm.dump():
            raise RequestRefused(f"the TBS names another signature algorithm than {ca}'s ({entry['algorithm']})")
        if tbs["issuer"].dump() != ca_cert.subject.dump():
            raise RequestRefused(f"the TBS names issuer {tbs['issuer'].human_friendly}, not {ca}")
        operation = request.get("operation")
        policy.check(operation, tbs, ca_cert)
        record = ceremony_log.record_for(request_id, str(operation), ca, tbs, base64.b64decode(request["tbs"]))
        ceremony_log.refuse(ceremony_log.history(ceremony_log.read(self.path)), record)
        return record

    def log(self) -> list[dict[str, Any]]:
        """What this home signed (ca/ceremony_log.py), oldest first."""
        return ceremony_log.read(self.path)

    def sign(self, request: dict[str, Any]) -> dict[str, Any]:
        """`check` the request, sign it, and record it in the home's log (fsynced) → the output document
        `import` takes (the caller writes it only after this returns)."""
        record = self.check(request)
        ca = str(request["ca"])
        ca_cert = self.certificate(ca)
        key_ref = str(request.get("key"))
        entry = self.manifest()["cas"][ca]
        algorithm = certs.signature_algorithm(entry["algorithm"])
        handle = self.keystore.signer(key_ref)
        if handle.public_key_der != ca_cert.public_key.dump():
            raise RequestRefused(f"key {key_ref} here is not the key of {ca}'s certificate")
        tbs_der = base64.b64decode(request["tbs"])
        signed = der.sequence(tbs_der, algorithm.dump(), der.bit_string(handle.sign(tbs_der)))
        ceremony_log.append(self.path, record)
        return {
            "format": ceremony.OUTPUT_FORMAT,
            "request": request["id"],
            "operation": request.get("operation"),
            "ca": ca,
            "kind": request.get("kind"),
            "signed": base64.b64encode(signed).decode("ascii"),
            "signed_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }


def _tbs(request: dict[str, Any]) -> x509.TbsCertificate | asn1_crl.TbsCertList:
    if request.get("format") != ceremony.REQUEST_FORMAT:
        raise RequestRefused(f"not a {ceremony.REQUEST_FORMAT} document (use `ceremony export`)")
    try:
        tbs_der = base64.b64decode(str(request["tbs"]), validate=True)
        parsed: x509.TbsCertificate | asn1_crl.TbsCertList = (
            asn1_crl.TbsCertList.load(tbs_der, strict=True)
            if request.get("kind") == "crl"
            else x509.TbsCertificate.load(tbs_der, strict=True)
        )
        parsed.native  # noqa: B018  (all of it parses before anyone reads it)
    except (KeyError, ValueError, TypeError, binascii.Error):
        raise RequestRefused("the request's TBS does not parse") from None
    return parsed


# -- the online side, once --------------------------------------------------------------------------


def move_offline(
    service: CertificateAuthorityService,
    custody: KeyCustody,
    name: str,
    home: CeremonyHome,
    actor: str,
    publisher: TrustListPublisher,
) -> dict[str, Any]:
    """Move root `name`'s key from online custody (the raw LocalKeystore, not its RecordedCustody wrapper) to
    `home`. Idempotent after an interruption: a CA marked offline whose key is still online is finished."""
    from store.models import CertificateAuthority

    if not isinstance(custody, LocalKeystore):
        raise CeremonyCustodyUnsupported(
            f"the online custody is {type(custody).__name__}: only the local keystore moves a key out; "
            "a Vault/OpenBao or PKCS#11 root is made in the offline HSM from the start"
        )
    with service.db.session() as session:
        ca = service.get_ca(session, name)
        if ca.parent is not None:
            raise NotARoot(f"{name} is not a root: only a root CA is kept offline")
        key_name = parse_ref(ca.key_ref)[0]
        if ca.offline and key_name not in custody.names():
            raise AlreadyOffline(f"{name} is offline already")
        resuming = ca.offline
        if not resuming:
            live = crls.live_scopes(session, ca, datetime.now(UTC), with_partitions=False)[1:]
            if live:
                keys = ", ".join(scope.key_ref for scope in live)
                raise LiveEarlierKeys(
                    f"{name} rolled over and its earlier key(s) {keys} still have unexpired certificates: "
                    "their CRLs would go stale offline; move it offline once they have expired"
                )
        key_ref, certificate_der, algorithm = ca.key_ref, ca.certificate_der, ca.algorithm
    crl_number, crl_der, ocsp_serial = None, None, None
    if not resuming:
        publisher.current()  # the trust-list signer certified (and fresh) while the root can still sign
        ocsp_serial = _recertify_ocsp_signer(service, name, actor)  # a full year before the first ceremony
        with service.crls.mutex, service.db.session() as session:
            crl = service.crls.issue(session, service.get_ca(session, name), actor, validity=crls.OFFLINE_CRL_VALIDITY)
            crl_number, crl_der = crl.number, crl.der
    copied = custody.copy_key_to(key_name, home.keystore)
    spki = x509.Certificate.load(certificate_der).public_key.dump()
    if not any(v.public_key_der == spki and v.ref == key_ref for v in copied):
        raise CeremonyHomeError(f"the copied key {key_ref} is not the key of {name}'s certificate; nothing removed")
    home.add_ca(name, certificate_der, key_ref, algorithm)
    if crl_der is not None:  # the home's log starts from the root's last online CRL: no later one goes below it
        tbs = asn1_crl.CertificateList.load(crl_der)["tbs_cert_list"]
        ceremony_log.append(home.path, ceremony_log.record_for(None, "move-offline", name, tbs, tbs.dump()))
    versions = [{"version": v.version, "spki_sha256": hashlib.sha256(v.public_key_der).hexdigest()} for v in copied]
    if not resuming:
        with service.db.session() as session:
            row = session.get(CertificateAuthority, name, with_for_update=True)
            assert row is not None
            store.mark_offline(session, row)
            record_event(
                session,
                "ca.moved_offline",
                actor=actor,
                subject=name,
                payload={
                    "ca": name,
                    "key": key_ref,
                    "versions": versions,
                    "fingerprint_sha256": certs.fingerprint(certificate_der),
                    "crl_number": crl_number,
                    "ocsp_signer_serial": ocsp_serial,
                    "crl_next_update_days": crls.OFFLINE_CRL_VALIDITY.days,
                },
            )
    custody.remove(key_name)  # after the row says offline: from now on nothing online asks for it
    service.invalidate(name)
    return {
        "ca": name,
        "key": key_ref,
        "versions": versions,
        "crl_number": crl_number,
        "ocsp_signer_serial": ocsp_serial,
        "ceremony_home": str(home.path),
    }


def _recertify_ocsp_signer(service: CertificateAuthorityService, name: str, actor: str) -> str | None:
    """A fresh certificate for the root's OCSP responder key (`<root>.ocsp`) while the root can still sign
    it; later renewals are `ocsp.signer` ceremonies (ca/ocsp_renewal.py). Returns its serial."""
    with service.db.session() as session:
        ca = service.get_ca(session, name)
        key_ref = ca.ocsp_key_ref
    if key_ref is None:
        return None
    version = service.custody.get(parse_ref(key_ref)[0])
    service.pii.prepare()
    with service.db.session() as session:
        ca = crls.lock_ca(session, name)
        prepared = service.sign_ocsp_signer(ca, version)
        service.adopt_ocsp_signer(session, ca, version.ref, prepared, actor)
    service.invalidate(name)
    return prepared.serial_hex
