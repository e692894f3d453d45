"""Long-term validation material (PAdES B-LT): the certificates, CRLs and OCSP responses that prove the
signer's and the timestamping unit's chains valid, added in a DSS revision after the signature."""

from __future__ import annotations

import hashlib
import io

from asn1crypto import crl, ocsp, x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation.dss import DocumentSecurityStore

from ca.authority import CertificateAuthorityService


def _ocsp_request(issuer: x509.Certificate, serial: int) -> bytes:
    request = ocsp.OCSPRequest(
        {
            "tbs_request": {
                "request_list": [
                    {
                        "req_cert": {
                            "hash_algorithm": {"algorithm": "sha256"},
                            "issuer_name_hash": hashlib.sha256(issuer.subject.dump()).digest(),
                            "issuer_key_hash": hashlib.sha256(issuer.public_key["public_key"].contents[1:]).digest(),
                            "serial_number": serial,
                        }
                    }
                ]
            }
        }
    )
    der: bytes = request.dump()
    return der


def material(
    ca: CertificateAuthorityService, leaves: list[tuple[bytes, list[bytes]]]
) -> tuple[list[x509.Certificate], list[ocsp.OCSPResponse], list[crl.CertificateList]]:
    """For each (leaf, chain issuer-first): every certificate, an OCSP response for the leaf, the current
    CRL of every CA key on the chain (issuing CA and above), and the leaf's own (partition) CRL."""
    certs: dict[bytes, x509.Certificate] = {}
    responses: list[ocsp.OCSPResponse] = []
    ca_names: dict[bytes, str] = {}
    for entry in ca.snapshot().cas.values():
        for generation in entry.generations:  # every key of every CA: an old-key chain after a rollover
            ca_names[generation.certificate_der] = entry.name
    crl_for: set[str] = set()
    for leaf, chain in leaves:
        for der in [leaf, *chain]:
            certs.setdefault(der, x509.Certificate.load(der))
        issuer = certs[chain[0]]
        responses.append(ocsp.OCSPResponse.load(ca.ocsp(_ocsp_request(issuer, certs[leaf].serial_number))))
        for der in chain:
            if der in ca_names:
                crl_for.add(ca_names[der])
    # each CA's base lists (its CA and infrastructure certificates), and each leaf's own list: the
    # partition its distribution point names (ca/crl.py), not every partition's
    ders = [der for name in sorted(crl_for) for der in ca.current_crls(name, with_partitions=False)]
    for leaf, _ in leaves:
        for point in certs[leaf].crl_distribution_points:
            found = ca.crl_at(point.url) if point.url else None
            if found is not None and found not in ders:
                ders.append(found)
    return list(certs.values()), responses, [crl.CertificateList.load(der) for der in ders]


def add_dss(pdf: bytes, cms_der: bytes, certs: list[x509.Certificate], ocsps: list[ocsp.OCSPResponse],
            crls: list[crl.CertificateList]) -> bytes:  # fmt: skip
    """An incremental update with the DSS (and a VRI entry for the signature)."""
    out = io.BytesIO(pdf)
    writer = IncrementalPdfFileWriter.from_reader(PdfFileReader(out, strict=False))
    DocumentSecurityStore.supply_dss_in_writer(writer, cms_der, certs=certs, ocsps=ocsps, crls=crls)
    result = io.BytesIO()
    writer.write(result)
    return result.getvalue()
