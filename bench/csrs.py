"""Distinct SM2 / P-256 CSRs for benchmarks, made in-process (keys from gm and cryptography)."""

from __future__ import annotations

from asn1crypto import csr, keys, pem, x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gm import sm2

SUBJECT = {
    "country_name": "CN",
    "organization_name": "Jinan Market Regulation Bureau",
    "organization_identifier": "91350100M000100Y43",
    "common_name": "Jinan Market Regulation Bureau Seal",
}


def _name() -> x509.Name:
    from ca.names import build_name

    return build_name(SUBJECT)


def sm2_csr() -> str:
    key = sm2.SM2PrivateKey.generate()
    info = csr.CertificationRequestInfo(
        {"version": "v1", "subject": _name(), "subject_pk_info": key.public_key.spki(), "attributes": []}
    )
    request = csr.CertificationRequest(
        {
            "certification_request_info": info,
            "signature_algorithm": {"algorithm": "sm2_sm3"},
            "signature": key.sign(info.dump()),
        }
    )
    return pem.armor("CERTIFICATE REQUEST", request.dump()).decode("ascii")


def p256_csr() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    spki = keys.PublicKeyInfo.load(
        key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    info = csr.CertificationRequestInfo(
        {"version": "v1", "subject": _name(), "subject_pk_info": spki, "attributes": []}
    )
    signature = key.sign(info.dump(), ec.ECDSA(hashes.SHA256()))
    request = csr.CertificationRequest(
        {
            "certification_request_info": info,
            "signature_algorithm": {"algorithm": "sha256_ecdsa"},
            "signature": signature,
        }
    )
    return pem.armor("CERTIFICATE REQUEST", request.dump()).decode("ascii")
