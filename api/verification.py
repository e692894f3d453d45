"""Wiring verify/ to this service: the trust list it publishes, CRLs of its own CAs, seal and licence
status from the store. verify/ itself knows none of these (it may be deployed alone)."""

from __future__ import annotations

from datetime import UTC, datetime

from asn1crypto import crl, ocsp, x509
from sqlalchemy import select

from api.context import Context
from ca.trust_list import TrustListPublisher
from gm.sm3 import sm3
from store.models import Licence
from store.models import Seal as SealRow
from verify.limits import WorkLimits
from verify.service import Verifier
from verify.sources import SealState, Sources
from verify.trust import TrustStore


class ServiceVerification:
    def __init__(self, context: Context) -> None:
        self.context = context
        self.publisher = TrustListPublisher(context.ca)
        self._cached: tuple[int, Verifier] | None = None
        self._crls: dict[bytes, crl.CertificateList] = {}

    def trust_list(self) -> dict[str, object]:
        return self.publisher.current()

    def verifier(self) -> Verifier:
        document = self.publisher.current()
        sequence = int(str(document["sequence"]))
        if self._cached is not None and self._cached[0] == sequence:
            return self._cached[1]
        trust = TrustStore()
        snapshot = self.context.ca.snapshot()
        root_names = sorted(ca.name for ca in snapshot.cas.values() if ca.parent is None)
        # every key of each root (a rolled-over root's old certificate certified the signer until it renews)
        roots = [g.certificate for name in root_names for g in snapshot.cas[name].generations]
        # the roots' CRLs (each key's): a revoked trust-list signer certificate is refused like any other signer
        crls = [crl.CertificateList.load(der) for name in root_names for der in self.context.ca.current_crls(name)]
        trust.add_list(document, roots=roots, crls=crls, now=datetime.now(UTC))
        settings = self.context.settings
        limits = WorkLimits(cpu_seconds=settings.verify_cpu_seconds, hash_cap=settings.verify_hash_cap_bytes)
        verifier = Verifier(trust, self.sources(), limits)
        self._cached = (sequence, verifier)
        return verifier

    def sources(self) -> Sources:
        return Sources(
            fetch=False,
            revocation_lookup=self._revocation,
            seal_status_lookup=self._seal_status,
            licence_status_lookup=self._licence_status,
        )

    def _revocation(self, certs: list[x509.Certificate]) -> tuple[list[crl.CertificateList], list[ocsp.OCSPResponse]]:
        """CRLs of the issuing CA of each certificate and of every CA above it (a CRL issuer's own status
        is checked too), not every partition's: a certificate's partition is the list its distribution point
        names. Parsed CRLs are cached by their bytes."""
        cas = self.context.ca.snapshot().cas  # one versioned view, certificates parsed once (ca/snapshot.py)
        by_subject = {ca.certificate.subject.dump(): name for name, ca in cas.items()}
        names: set[str] = {row.issuer_ca for row in self.context.ca.cross_certificates() if row.issuer_ca}
        names |= {cas[n].parent for n in list(names) if n in cas and cas[n].parent}  # type: ignore[misc]
        for cert in certs:
            name = by_subject.get(cert.issuer.dump()) if cert.self_signed == "no" else None
            while name is not None and name not in names:
                names.add(name)
                name = cas[name].parent
        # every live CA key's base list (ca/crl.py scopes: CA and infrastructure certificates, and subscribers
        # until a partition opens), and the list at each certificate's own distribution point (its partition)
        ders = [der for name in sorted(names) for der in self.context.ca.current_crls(name, with_partitions=False)]
        for cert in certs:
            for point in cert.crl_distribution_points:
                der = self.context.ca.crl_at(point.url) if point.url else None
                if der is not None and der not in ders:
                    ders.append(der)
        out = []
        for der in ders:
            parsed = self._crls.get(der)
            if parsed is None:
                parsed = crl.CertificateList.load(der)
                self._crls = {der: parsed, **dict(list(self._crls.items())[:63])}
            out.append(parsed)
        return out, []

    def _seal_status(self, es_id: str) -> SealState | None:
        with self.context.db.session() as session:
            row = session.scalars(select(SealRow).where(SealRow.es_id == es_id)).first()
            if row is None:
                return None
            previous = frozenset(bytes.fromhex(v["esl_sm3"]) for v in row.previous_versions or [])
            return SealState(self.context.seals.effective_status(row), sm3(row.esl_der), row.updated_at, previous)

    def _licence_status(self, identifier: str) -> str | None:
        with self.context.db.session() as session:
            row = session.get(Licence, identifier)
            return row.status if row is not None else None
