"""Publishing the cross-region trust list: every region's root and CA certificates with their status
history and service endpoints, signed (SM2 over the RFC 8785 canonical JSON of the document without
`signature`) by the national platform key, whose certificate the national SM2 root issues.

A new list (sequence + 1) is made whenever the set or status of CAs changes, and when the newest is past
half its validity. Older lists stay in the store.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from asn1crypto import pem
from sqlalchemy import select

from ca.authority import CertificateAuthorityService
from gm import jcs, oids
from keys.custody import KeyAlgorithm, KeyNotFound
from ledger.events import record_event
from store.models import CertificateAuthority, TrustListRecord

VALIDITY = timedelta(days=1)
SIGNER_KEY = "trust-list.sm2"
NATIONAL = ("100000", "全国 National")
SIGNER_ROOT = "cn-root-sm2"


def _pem(der: bytes) -> str:
    armored: bytes = pem.armor("CERTIFICATE", der)
    return armored.decode("ascii")


def history(ca: CertificateAuthority) -> list[dict[str, str]]:
    """Granted from the start of the CA certificate's validity, then whatever changed since."""
    from asn1crypto import x509

    start = x509.Certificate.load(ca.certificate_der).not_valid_before
    return ca.status_history or [{"status": "granted", "from": start.isoformat()}]


class TrustListPublisher:
    def __init__(self, ca: CertificateAuthorityService) -> None:
        self.ca = ca
        self._lock = threading.Lock()
        self._signer_der: bytes | None = None

    def _signer(self) -> tuple[str, bytes]:
        """Key ref and certificate of the national platform key (made on first use)."""
        try:
            version = self.ca.custody.get(SIGNER_KEY)
        except KeyNotFound:
            version = self.ca.custody.create(SIGNER_KEY, KeyAlgorithm.SM2)
        if self._signer_der is None:
            self._signer_der = self._previous_signer()
        if self._signer_der is None or not self._signer_matches(version.public_key_der):
            issued = self.ca.issue_for_key(
                version.public_key_der,
                {"country_name": "CN", "organization_name": "trustseal", "common_name": "National trust list signer"},
                "trust-list-signer",
                SIGNER_ROOT,
                actor="trust-list",
            )
            self._signer_der = issued.der
        return version.ref, self._signer_der

    def _signer_matches(self, public_key_der: bytes) -> bool:
        """Same key, valid for at least a month more, and carrying the trust-list-signer EKU that
        verifiers require (homes made before it existed re-issue); else a fresh certificate is issued."""
        from asn1crypto import x509

        assert self._signer_der is not None
        cert = x509.Certificate.load(self._signer_der)
        fresh_enough = cert.not_valid_after > datetime.now(UTC) + timedelta(days=30)
        usages = {usage.dotted for usage in cert.extended_key_usage_value or []}
        return bool(cert.public_key.dump() == public_key_der and fresh_enough and oids.EKU_TRUST_LIST_SIGNER in usages)

    def _previous_signer(self) -> bytes | None:
        """The signer certificate of the newest published list: reused across restarts."""
        with self.ca.db.session() as session:
            newest = session.scalars(select(TrustListRecord).order_by(TrustListRecord.sequence.desc()).limit(1)).first()
        if newest is None:
            return None
        text = json.loads(newest.document).get("signer_certificate")
        return pem.unarmor(text.encode("ascii"))[2] if isinstance(text, str) else None

    def _stamp(self, cas: list[CertificateAuthority]) -> str:
        crossed = sorted(row.serial for row in self.ca.cross_certificates())
        material = json.dumps(
            [[(c.name, c.status, c.certificate_serial, history(c)) for c in cas], crossed], sort_keys=True
        )
        return hashlib.sha256(material.encode()).hexdigest()

    def current(self) -> dict[str, Any]:
        """The newest trust list, publishing a new one if the CAs changed or the newest is half expired."""
        with self._lock:
            with self.ca.db.session() as session:
                cas = list(session.scalars(select(CertificateAuthority).order_by(CertificateAuthority.name)))
                newest = session.scalars(
                    select(TrustListRecord).order_by(TrustListRecord.sequence.desc()).limit(1)
                ).first()
            stamp = self._stamp(cas)
            now = datetime.now(UTC)
            if newest is not None and newest.ca_stamp == stamp and now < newest.issued_at + VALIDITY / 2:
                document: dict[str, Any] = json.loads(newest.document)
                return document
            return self._publish(cas, stamp, (newest.sequence if newest else 0) + 1, now)

    def _publish(self, cas: list[CertificateAuthority], stamp: str, sequence: int, now: datetime) -> dict[str, Any]:
        key_ref, signer_der = self._signer()
        now = now.replace(microsecond=0)
        regions: dict[str, dict[str, Any]] = {}
        for ca in cas:
            code, name = (ca.region_code, ca.region_name) if ca.region_code else NATIONAL
            region = regions.setdefault(
                code,
                {
                    "code": code,
                    "name": name or code,
                    "cas": [],
                    "endpoints": {
                        "ocsp": self.ca.ocsp_url,
                        "licence_status": f"{self.ca.public_url}/v1/licences/{{identifier}}/status",
                        "seal_status": f"{self.ca.public_url}/v1/seals/{{id}}/status",
                        "crl": {},
                    },
                },
            )
            region["cas"].append(
                {
                    "name": ca.name,
                    "certificate": _pem(ca.certificate_der),
                    "status": "granted" if ca.status == "active" else "withdrawn",
                    "history": history(ca),
                }
            )
            region["endpoints"]["crl"][ca.name] = self.ca.crl_url(ca.name)
        cross = [
            {"issuer": row.issuer_ca, "certificate": _pem(row.der), "serial": row.serial}
            for row in self.ca.cross_certificates()
        ]
        document: dict[str, Any] = {
            "version": 1,
            "sequence": sequence,
            "issued_at": now.isoformat(),
            "next_update": (now + VALIDITY).isoformat(),
            "signer_certificate": _pem(signer_der),
            "regions": [regions[code] for code in sorted(regions)],
            "cross_certificates": cross,
        }
        signature = self.ca.custody.signer(key_ref).sign(jcs.canonical(document))
        document["signature"] = base64.b64encode(signature).decode("ascii")
        with self.ca.db.session() as session:
            session.add(
                TrustListRecord(
                    sequence=sequence,
                    issued_at=now,
                    next_update=now + VALIDITY,
                    ca_stamp=stamp,
                    document=json.dumps(document, ensure_ascii=False),
                )
            )
            record_event(
                session,
                "trust_list.published",
                actor="trust-list",
                subject=str(sequence),
                payload={"sequence": sequence, "sha256": hashlib.sha256(jcs.canonical(document)).hexdigest()},
            )
        return document


def withdraw_ca(service: CertificateAuthorityService, name: str, at: datetime, actor: str | None = None) -> None:
    """Withdraw a CA from the trust list as of `at` (which may be in the past: a compromise found late)."""
    with service.db.session() as session:
        ca = service.get_ca(session, name)
        ca.status_history = [*history(ca), {"status": "withdrawn", "from": at.astimezone(UTC).isoformat()}]
        ca.status = "withdrawn"
        record_event(session, "ca.withdrawn", actor=actor, subject=name, payload={"ca": name, "from": at.isoformat()})
    service.invalidate(name)
