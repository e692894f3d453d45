"""Publishing the cross-region trust list: every region's root and CA certificates with their status
history, its seal makers, and service endpoints, signed (SM2 over the RFC 8785 canonical JSON of the document without
`signature`) by the national platform key, whose certificate the national SM2 root issues.

A region's `seal_makers` are the maker certificates of its CAs' seal makers (store `seal_makers`) and every
maker certificate a stored seal names: a maker re-certified for the same custody key (e.g. to add the
seal-maker EKU) keeps its older certificate listed, so seals it made keep a listed maker. A maker is
withdrawn from the moment its certificate is revoked or its CA is withdrawn.

A new list (sequence + 1) is made whenever the set or status of CAs or seal makers changes, and when the
newest is past half its validity. Older lists stay in the store. Rotating the signer (`rotate_signer`)
publishes a handover list signed by the new key and the old one, which verifiers pinning the old signer
follow (verify/trust.py).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from asn1crypto import pem, x509
from sqlalchemy import or_, select, union
from sqlalchemy.orm import Session

from ca import ceremony
from ca.authority import CertificateAuthorityService, IssuedCertificate
from ca.errors import CAError
from gm import jcs, oids
from keys.custody import KeyAlgorithm, KeyCustody, KeyNotFound, KeyVersion
from keys.rotation import provisional_version
from ledger.events import record_event
from store.models import Certificate, CertificateAuthority, Seal, SealMaker, TrustListRecord

VALIDITY = timedelta(days=1)
SIGNER_KEY = "trust-list.sm2"
NATIONAL = ("100000", "全国 National")
SIGNER_ROOT = "cn-root-sm2"


class TrustListUnavailable(CAError):
    """No trust list can be served: none was ever published and the signer has no valid certificate (its
    root is offline; the scheduler asks the ceremony for one)."""

    code = "trust_list_unavailable"
    status = 503


def _region(ca: CertificateAuthority) -> tuple[str, str]:
    """(code, name) of a CA's region: roots and the national issuing CAs are national."""
    if not ca.region_code or ca.region_code == NATIONAL[0]:
        return NATIONAL
    return ca.region_code, ca.region_name or ca.region_code


def _pem(der: bytes) -> str:
    armored: bytes = pem.armor("CERTIFICATE", der)
    return armored.decode("ascii")


def history(ca: CertificateAuthority) -> list[dict[str, str]]:
    """Granted from the start of the CA certificate's validity, then whatever changed since."""
    start = x509.Certificate.load(ca.certificate_der).not_valid_before
    return ca.status_history or [{"status": "granted", "from": start.isoformat()}]


def _maker_certificates(session: Session) -> list[Certificate]:
    """Every current maker certificate and every one a seal names (now or before it was re-keyed), oldest
    first."""
    serials = union(select(SealMaker.certificate_serial), select(Seal.maker_certificate_serial))
    rekeyed = session.scalars(select(Seal.previous_versions).where(Seal.previous_versions.is_not(None)))
    older = {v["maker_certificate_serial"] for versions in rekeyed for v in versions or []}
    query = select(Certificate).where(
        or_(Certificate.serial.in_(select(serials.subquery().c[0])), Certificate.serial.in_(older))
    )
    return list(session.scalars(query.order_by(Certificate.not_before, Certificate.serial)))


def maker_entry(row: Certificate, ca: CertificateAuthority) -> dict[str, Any]:
    """A `seal_makers` entry: granted from the certificate's start; withdrawn from its revocation or its
    CA's withdrawal, whichever came first."""
    cert = x509.Certificate.load(row.der)
    ends = [row.revoked_at] if row.status == "revoked" and row.revoked_at is not None else []
    ends += [datetime.fromisoformat(h["from"]) for h in history(ca) if h["status"] == "withdrawn"]
    entries = [{"status": "granted", "from": cert.not_valid_before.isoformat()}]
    if ends:
        entries.append({"status": "withdrawn", "from": min(ends).astimezone(UTC).isoformat()})
    return {
        "name": cert.subject.native.get("common_name") or row.serial,
        "certificate": _pem(row.der),
        "status": entries[-1]["status"],
        "history": entries,
    }


def _key_material(
    service: CertificateAuthorityService, cas: list[CertificateAuthority], now: datetime
) -> dict[str, tuple[list[bytes], list[bytes]]]:
    """Per CA that rolled over: its earlier certificates still valid at `now` (newest first) and its valid,
    unrevoked link certificates (ca/rollover.py)."""
    from ca.rollover import LINK_PROFILE

    out: dict[str, tuple[list[bytes], list[bytes]]] = {}
    with service.db.session() as session:
        for ca in cas:
            if not ca.previous_keys:
                continue
            serials = [str(p["certificate_serial"]) for p in reversed(ca.previous_keys)]
            rows = {r.serial: r for r in session.scalars(select(Certificate).where(Certificate.serial.in_(serials)))}
            earlier = [rows[s].der for s in serials if s in rows and rows[s].not_after > now]
            links = session.scalars(
                select(Certificate.der)
                .where(
                    Certificate.issuer_ca == ca.name,
                    Certificate.profile == LINK_PROFILE,
                    Certificate.status == "good",
                    Certificate.not_after > now,
                )
                .order_by(Certificate.not_before, Certificate.serial)
            )
            out[ca.name] = (earlier, list(links))
    return out


class TrustListPublisher:
    def __init__(self, ca: CertificateAuthorityService) -> None:
        self.ca = ca
        self._lock = threading.Lock()
        self._signer_der: bytes | None = None

    def _signer(self, may_request: bool = False) -> tuple[str, bytes]:
        """Key ref and certificate of the national platform key (made on first use). `may_request`: the
        caller may open a ceremony request for its certificate (the scheduler, an officer's rotation; never
        a read)."""
        try:
            version = self.ca.custody.get(SIGNER_KEY)
        except KeyNotFound:
            version = self.ca.custody.create(SIGNER_KEY, KeyAlgorithm.SM2)
        if self._signer_der is None:
            self._signer_der = self._previous_signer()
        if self._signer_der is None or not self._signer_matches(version.public_key_der):
            self._signer_der = self._previous_signer()  # another process may have rotated and certified it
        if self._signer_der is None or not self._signer_matches(version.public_key_der):
            try:
                self._signer_der = self._certify(version.public_key_der, "trust-list").der
            except ceremony.SignatureDeferred as deferred:  # the root is offline
                return self._while_offline(deferred, version, may_request)
        return version.ref, self._signer_der

    def _while_offline(
        self, deferred: ceremony.SignatureDeferred, version: KeyVersion, may_request: bool
    ) -> tuple[str, bytes]:
        """The root is offline and the signer key's newest version lacks a fresh certificate: one ceremony
        request for it (`trust_list.signer`) — opened only by the scheduler: reads never write —, and
        meanwhile the version the published certificate names keeps signing while that certificate is
        valid. None valid: `ceremony_required` (`may_request`) or `trust_list_unavailable`."""
        with self.ca.db.session() as session:
            waiting = ceremony.pending(session, "trust_list.signer", version.ref)
            request = ceremony.request_json(waiting) if waiting is not None else None
        if request is None and may_request:
            params = {"key_ref": version.ref, "previous_key_ref": None, "rotation_actor": None}
            request = ceremony.open_request(
                self.ca.db, deferred, "trust_list.signer", version.ref, params, "trust-list"
            )
        published = self._previous_signer()
        if published is not None:
            cert = x509.Certificate.load(published)
            spki = cert.public_key.dump()
            if cert.not_valid_after > datetime.now(UTC):
                for candidate in self.ca.custody.versions(SIGNER_KEY):
                    if candidate.enabled and candidate.public_key_der == spki:
                        self._signer_der = published
                        return candidate.ref, published
        if request is None:
            raise TrustListUnavailable("the trust-list signer has no valid certificate; the scheduler asks for one")
        raise ceremony.CeremonyRequired(request)

    def _certify(self, public_key_der: bytes, actor: str) -> IssuedCertificate:
        return self.ca.issue_for_key(
            public_key_der,
            {"country_name": "CN", "organization_name": "trustseal", "common_name": "National trust list signer"},
            "trust-list-signer",
            SIGNER_ROOT,
            actor=actor,
        )

    def rotate_signer(self, actor: str, custody: KeyCustody | None = None) -> tuple[str, int, bytes]:
        """A new version of the signer key, certified by the root, and at once a **handover list**: signed by
        the new key (`signature`, `signer_certificate`) and by the old one (`handover_signature` over the same
        canonical JSON, which names the old certificate as `previous_signer_certificate`). A verifier that
        pins the old signer accepts the handover list because the old key vouches for the new one, and from
        then on follows the new signer (verify/trust.py). Returns (the new key's reference, the previous key
        version, the new certificate); `trust_list.signer_rotated` is recorded with the list."""
        with self._lock:
            with self.ca.db.session() as session:  # one signer rotation at a time through an offline root
                waiting = ceremony.pending_any(session, "trust_list.signer")
            if waiting is not None:
                raise ceremony.CeremonyPending(
                    f"ceremony request {waiting.id} for the trust-list signer's certificate is pending: import it first"
                )
            old_ref, old_der = self._signer(may_request=True)  # an officer's rotation may ask the ceremony
            # `custody`: one recording the officer; the new version is disabled again if no list names it —
            # unless the offline root is to certify it in a ceremony (ca/ceremony_import.py adopts it then)
            opened: dict[str, Any] | None = None
            with provisional_version(custody or self.ca.custody, SIGNER_KEY) as version:
                try:
                    new_der = self._certify(version.public_key_der, actor).der
                except ceremony.SignatureDeferred as deferred:  # the root is offline: the old signer keeps signing
                    params = {"key_ref": version.ref, "previous_key_ref": old_ref, "rotation_actor": actor}
                    opened = ceremony.open_request(
                        self.ca.db, deferred, "trust_list.signer", version.ref, params, actor
                    )
                else:
                    try:
                        return self._handover(version.ref, old_ref, old_der, new_der, actor)
                    except BaseException:
                        self._signer_der = old_der
                        raise
            assert opened is not None  # the block returned unless the ceremony was asked for
            raise ceremony.CeremonyRequired(opened)

    def adopt_signer(self, key_ref: str, new_der: bytes, actor: str) -> tuple[str, int, bytes]:
        """A signer certificate the offline root signed in a ceremony (ca/ceremony_import.py): the list is
        published at once under it, as a handover list signed by the previous signer too."""
        with self._lock:
            old_der = self._previous_signer()
            old_ref = None
            if old_der is not None:
                spki = x509.Certificate.load(old_der).public_key.dump()
                old_ref = next(
                    (v.ref for v in self.ca.custody.versions(SIGNER_KEY) if v.enabled and v.public_key_der == spki),
                    None,
                )
            if old_ref is None or old_der is None or old_der == new_der:
                self._signer_der = new_der
                self._republish()
                return key_ref, int(key_ref.partition("@")[2] or 1), new_der
            return self._handover(key_ref, old_ref, old_der, new_der, actor)

    def _republish(self) -> dict[str, Any]:
        with self.ca.db.session() as session:
            cas = list(session.scalars(select(CertificateAuthority).order_by(CertificateAuthority.name)))
            makers = _maker_certificates(session)
            newest = session.scalars(select(TrustListRecord).order_by(TrustListRecord.sequence.desc()).limit(1)).first()
        sequence = (newest.sequence if newest else 0) + 1
        return self._publish(cas, makers, self._stamp(cas, makers), sequence, datetime.now(UTC))

    def _handover(
        self, new_ref: str, old_ref: str, old_der: bytes, new_der: bytes, actor: str
    ) -> tuple[str, int, bytes]:
        """Publish the handover list under the new signer, vouched for by the old one (caller holds `_lock`)."""
        self._signer_der = new_der
        with self.ca.db.session() as session:
            cas = list(session.scalars(select(CertificateAuthority).order_by(CertificateAuthority.name)))
            makers = _maker_certificates(session)
            newest = session.scalars(select(TrustListRecord).order_by(TrustListRecord.sequence.desc()).limit(1)).first()
        sequence = (newest.sequence if newest else 0) + 1
        handover = (old_ref, old_der, actor)
        self._publish(cas, makers, self._stamp(cas, makers), sequence, datetime.now(UTC), handover)
        return new_ref, int(old_ref.partition("@")[2] or 1), new_der

    def _signer_matches(self, public_key_der: bytes) -> bool:
        """Same key, valid for at least a month more, and carrying the trust-list-signer EKU (verifiers
        accept no other signer; a certificate from before that EKU existed is replaced). Otherwise a fresh
        certificate is issued for the custody key."""
        assert self._signer_der is not None
        cert = x509.Certificate.load(self._signer_der)
        fresh_enough = cert.not_valid_after > datetime.now(UTC) + timedelta(days=30)
        usages = cert.extended_key_usage_value
        eku = usages is not None and bool(set(usages.native) & oids.EKU_TRUST_LIST_SIGNERS)
        return bool(cert.public_key.dump() == public_key_der and fresh_enough and eku)

    def _implicit_handover(self, signer_der: bytes) -> tuple[str, bytes, str] | None:
        """When this list's signer certificate is not the previous list's (a renewal, or a new key version
        certified by another process or by a rotation that failed after custody rotated), the previous
        signer's key — if custody still holds it enabled — signs the handover too, so a verifier pinning
        the previous certificate follows. None when the signer is unchanged or its key is gone."""
        previous = self._previous_signer()
        if previous is None or previous == signer_der:
            return None
        spki = x509.Certificate.load(previous).public_key.dump()
        for version in self.ca.custody.versions(SIGNER_KEY):
            if version.enabled and version.public_key_der == spki:
                return version.ref, previous, "trust-list"
        return None

    def signer_certificate(self) -> bytes | None:
        """The signer certificate of the newest published list (None before the first list)."""
        return self._previous_signer()

    def _previous_signer(self) -> bytes | None:
        """The signer certificate of the newest published list: reused across restarts."""
        with self.ca.db.session() as session:
            newest = session.scalars(select(TrustListRecord).order_by(TrustListRecord.sequence.desc()).limit(1)).first()
        if newest is None:
            return None
        text = json.loads(newest.document).get("signer_certificate")
        return pem.unarmor(text.encode("ascii"))[2] if isinstance(text, str) else None

    def _stamp(self, cas: list[CertificateAuthority], makers: list[Certificate]) -> str:
        crossed = sorted(row.serial for row in self.ca.cross_certificates())
        material = json.dumps(
            [
                [(c.name, c.status, c.certificate_serial, history(c)) for c in cas],
                crossed,
                [(m.serial, m.issuer_ca, m.status, m.revoked_at.isoformat() if m.revoked_at else None) for m in makers],
            ],
            sort_keys=True,
        )
        return hashlib.sha256(material.encode()).hexdigest()

    def current(self, *, scheduled: bool = False) -> dict[str, Any]:
        """The newest trust list, publishing a new one if the CAs or seal makers changed or the newest is
        half expired. When no signer certificate is valid (an offline root's ceremony pending), the newest
        list is served as it is (verifiers see its next_update), or `trust_list_unavailable` (503) if there
        is none; only `scheduled` (the scheduler's round) opens the ceremony request."""
        try:
            return self._current(scheduled)
        except (ceremony.CeremonyRequired, TrustListUnavailable):
            if scheduled:
                raise
            document = self.newest_document()
            if document is None:
                raise TrustListUnavailable("no trust list published yet and no signer certificate valid") from None
            return document

    def newest_document(self) -> dict[str, Any] | None:
        """The newest published list as it was signed (None before the first)."""
        with self.ca.db.session() as session:
            newest = session.scalars(select(TrustListRecord).order_by(TrustListRecord.sequence.desc()).limit(1)).first()
        return json.loads(newest.document) if newest is not None else None

    def _current(self, scheduled: bool) -> dict[str, Any]:
        with self._lock:
            with self.ca.db.session() as session:
                cas = list(session.scalars(select(CertificateAuthority).order_by(CertificateAuthority.name)))
                makers = _maker_certificates(session)
                newest = session.scalars(
                    select(TrustListRecord).order_by(TrustListRecord.sequence.desc()).limit(1)
                ).first()
            stamp = self._stamp(cas, makers)
            now = datetime.now(UTC)
            if newest is not None and newest.ca_stamp == stamp and now < newest.issued_at + VALIDITY / 2:
                document: dict[str, Any] = json.loads(newest.document)
                return document
            return self._publish(cas, makers, stamp, (newest.sequence if newest else 0) + 1, now, may_request=scheduled)

    def _publish(
        self,
        cas: list[CertificateAuthority],
        makers: list[Certificate],
        stamp: str,
        sequence: int,
        now: datetime,
        handover: tuple[str, bytes, str] | None = None,  # the old signer's key ref and certificate, the actor
        *,
        may_request: bool = False,
    ) -> dict[str, Any]:
        key_ref, signer_der = self._signer(may_request)
        if handover is None:
            handover = self._implicit_handover(signer_der)
        now = now.replace(microsecond=0)
        key_material = _key_material(self.ca, cas, now)
        crl_urls = self.ca.live_crl_urls(now)
        regions: dict[str, dict[str, Any]] = {}
        by_name = {ca.name: ca for ca in cas}
        for ca in cas:
            code, name = _region(ca)
            region = regions.setdefault(
                code,
                {
                    "code": code,
                    "name": name,
                    "cas": [],
                    "seal_makers": [],  # present, if empty, in every region: one shape for readers
                    "endpoints": {
                        "ocsp": self.ca.ocsp_url,
                        "licence_status": f"{self.ca.public_url}/v1/licences/{{identifier}}/status",
                        "seal_status": f"{self.ca.public_url}/v1/seals/{{id}}/status",
                        "crl": {},  # per CA, its current key's CRL
                        "crls": {},  # per CA, every live CRL scope's URL (earlier keys', partitions)
                    },
                },
            )
            earlier, links = key_material.get(ca.name, ([], []))
            region["cas"].append(
                {
                    "name": ca.name,
                    "certificate": _pem(ca.certificate_der),
                    # after a key rollover (ca/rollover.py): every still-valid certificate of the CA, newest
                    # first (the first is `certificate`), so paths build for documents under either key
                    "certificates": [_pem(ca.certificate_der), *(_pem(der) for der in earlier)],
                    "links": [_pem(der) for der in links],  # a root's link certificates (RFC 4210 §4.4)
                    "status": "granted" if ca.status == "active" else "withdrawn",
                    "history": history(ca),
                }
            )
            region["endpoints"]["crl"][ca.name] = self.ca.crl_url(ca.name, ca.crl_scope)
            region["endpoints"]["crls"][ca.name] = crl_urls.get(ca.name) or [self.ca.crl_url(ca.name, ca.crl_scope)]
        for maker in makers:
            issuer = by_name.get(maker.issuer_ca or "")
            if issuer is not None:  # issued by a CA of this region: the region vouches for it
                regions[_region(issuer)[0]]["seal_makers"].append(maker_entry(maker, issuer))
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
        if handover is not None:
            document["previous_signer_certificate"] = _pem(handover[1])
        canonical = jcs.canonical(document)
        signature = self.ca.custody.signer(key_ref).sign(canonical)
        document["signature"] = base64.b64encode(signature).decode("ascii")
        if handover is not None:
            vouched = self.ca.custody.signer(handover[0]).sign(canonical)
            document["handover_signature"] = base64.b64encode(vouched).decode("ascii")
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
            if handover is not None:
                record_event(
                    session,
                    "trust_list.signer_rotated",
                    actor=handover[2],
                    subject=SIGNER_KEY,
                    payload={
                        "sequence": sequence,
                        "key": key_ref,
                        "previous_key": handover[0],
                        "fingerprint_sha256": hashlib.sha256(signer_der).hexdigest(),
                        "previous_fingerprint_sha256": hashlib.sha256(handover[1]).hexdigest(),
                    },
                )
        return document


def withdraw_ca(service: CertificateAuthorityService, name: str, at: datetime, actor: str | None = None) -> None:
    """Withdraw a CA as of `at`: ca.withdrawal.withdraw_ca with reason unspecified (kept for callers that
    only name a time)."""
    from ca.withdrawal import withdraw_ca as withdraw

    withdraw(service, name, reason=None, invalidity_date=at, actor=actor)
