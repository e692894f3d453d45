"""What a verifier may ask of the outside world, as small interfaces: revocation material, seal status,
licence status. `api/` wires them to the service's own store; offline they fall back to fetching
(CRL distribution points / OCSP over HTTP, with timeouts) or to nothing, and the report says so."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from asn1crypto import crl, ocsp, x509

RevocationLookup = Callable[[list[x509.Certificate]], tuple[list[crl.CertificateList], list[ocsp.OCSPResponse]]]


@dataclass
class Sources:
    """Defaults: nothing local; `fetch` lets pyHanko fetch revocation data from the URLs in certificates."""

    fetch: bool = False
    revocation_lookup: (
        Callable[[list[x509.Certificate]], tuple[list[crl.CertificateList], list[ocsp.OCSPResponse]]] | None
    ) = None
    seal_status_lookup: Callable[[str], str | None] | None = None  # by esID
    licence_status_lookup: Callable[[str], str | None] | None = None  # by licence identifier
    _seal_cache: dict[str, str | None] = field(default_factory=dict)

    def revocation(self, certs: list[x509.Certificate]) -> tuple[list[crl.CertificateList], list[ocsp.OCSPResponse]]:
        if self.revocation_lookup is None:
            return [], []
        return self.revocation_lookup(certs)

    def seal_status(self, es_id: str) -> str | None:
        if self.seal_status_lookup is None:
            return None
        return self.seal_status_lookup(es_id)

    def licence_status(self, identifier: str) -> str | None:
        if self.licence_status_lookup is None:
            return None
        return self.licence_status_lookup(identifier)
