"""CMS SignedData for PDF seals, assembled from pre-encoded parts.

pyHanko builds the CMS with asn1crypto and re-encodes it (plus a dry run to size it): that is most of its
signing time. For a given seal everything but three values is the same in every signature, so the
constant parts are encoded once per seal, with asn1crypto, and per document only the message digest,
the signing time and the signature are encoded (RFC 5652 §5; signed attributes as a DER SET, sorted).

Signed attributes: contentType, signingTime, messageDigest, CMSAlgorithmProtection (RFC 6211),
signingCertificateV2 (RFC 5035, required by PAdES) and the applied seal (`SESEAL_ATTRIBUTE`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import algos, cms, core, tsp, x509

import gm.asn1  # noqa: F401  (registers SM2 / SM3 with asn1crypto)
from gm import der, oids

SESEAL_ATTRIBUTE = oids.SESEAL_ATTRIBUTE
ID_DATA = "1.2.840.113549.1.7.1"
ID_SIGNED_DATA = "1.2.840.113549.1.7.2"
MAX_SIGNATURE = 72  # DER ECDSA / SM2 over a 256-bit curve


def _oid(dotted: str) -> bytes:
    encoded: bytes = core.ObjectIdentifier(dotted).dump()
    return encoded


def attribute(oid: str, value_der: bytes) -> bytes:
    return der.sequence(_oid(oid), der.tlv(0x31, value_der))


def _set_of(elements: list[bytes]) -> bytes:
    """DER SET OF: elements in ascending order of their encodings (X.690 §11.6)."""
    return b"".join(sorted(elements))


def _utc_time(moment: datetime) -> bytes:
    if 1950 <= moment.year < 2050:
        encoded: bytes = core.UTCTime(moment).dump()
    else:
        encoded = core.GeneralizedTime(moment).dump()
    return encoded


@dataclass(frozen=True)
class CMSTemplate:
    """Everything about a seal's signatures that does not change from one document to the next."""

    digest_algorithm: str  # sm3 | sha256
    digest_alg_der: bytes
    signature_alg_der: bytes
    constant_attributes: tuple[bytes, ...]
    certificates_der: bytes  # content of certificates [0] IMPLICIT SET
    sid_der: bytes

    @classmethod
    def for_seal(cls, certificate: bytes, chain: list[bytes], family: str, seal_der: bytes | None) -> CMSTemplate:
        cert = x509.Certificate.load(certificate)
        if family == "sm2":
            digest_name, digest_oid, signature_oid = "sm3", oids.SM3, oids.SM2_WITH_SM3
        else:
            digest_name, digest_oid, signature_oid = "sha256", "2.16.840.1.101.3.4.2.1", oids.ECDSA_WITH_SHA256
        digest_alg = der.sequence(_oid(digest_oid))
        signature_alg = der.sequence(_oid(signature_oid))
        ess = tsp.SigningCertificateV2(
            {
                "certs": [
                    {
                        "hash_algorithm": {"algorithm": "sha256"},
                        "cert_hash": hashlib.sha256(certificate).digest(),
                        "issuer_serial": {
                            "issuer": [x509.GeneralName(name="directory_name", value=cert.issuer)],
                            "serial_number": cert.serial_number,
                        },
                    }
                ]
            }
        ).dump()
        protection = cms.CMSAlgorithmProtection(
            {
                "digest_algorithm": algos.DigestAlgorithm.load(digest_alg),
                "signature_algorithm": algos.SignedDigestAlgorithm.load(signature_alg),
            }
        ).dump()
        constant = [
            attribute("1.2.840.113549.1.9.3", _oid(ID_DATA)),  # contentType
            attribute("1.2.840.113549.1.9.52", protection),  # CMSAlgorithmProtection
            attribute("1.2.840.113549.1.9.16.2.47", ess),  # signingCertificateV2
        ]
        if seal_der is not None:
            constant.append(attribute(SESEAL_ATTRIBUTE, der.octet_string(seal_der)))
        sid = der.sequence(cert.issuer.dump(), der.integer(cert.serial_number))
        return cls(
            digest_algorithm=digest_name,
            digest_alg_der=digest_alg,
            signature_alg_der=signature_alg,
            constant_attributes=tuple(constant),
            certificates_der=b"".join([certificate, *chain]),
            sid_der=sid,
        )

    def signed_attributes(self, document_digest: bytes, signing_time: datetime) -> bytes:
        """The content of the signed-attributes SET (what is signed is this with tag 0x31)."""
        attributes = [
            *self.constant_attributes,
            attribute("1.2.840.113549.1.9.5", _utc_time(signing_time)),  # signingTime
            attribute("1.2.840.113549.1.9.4", der.octet_string(document_digest)),  # messageDigest
        ]
        return _set_of(attributes)

    def build(
        self,
        document_digest: bytes,
        signing_time: datetime,
        sign: Callable[[bytes], bytes],
        unsigned: Callable[[bytes], list[bytes]] | None = None,
    ) -> bytes:
        """DER ContentInfo. `sign` gets DER(SET OF signed attributes); `unsigned` may add attributes
        (e.g. a signature timestamp token) given the signature value."""
        attributes = self.signed_attributes(document_digest, signing_time)
        signature = sign(der.tlv(0x31, attributes))
        signer_info = [
            der.integer(1),
            self.sid_der,
            self.digest_alg_der,
            der.tlv(0xA0, attributes),
            self.signature_alg_der,
            der.octet_string(signature),
        ]
        if unsigned is not None:
            extra = unsigned(signature)
            if extra:
                signer_info.append(der.tlv(0xA1, _set_of(extra)))
        signed_data = der.sequence(
            der.integer(1),
            der.tlv(0x31, self.digest_alg_der),
            der.sequence(_oid(ID_DATA)),
            der.tlv(0xA0, self.certificates_der),
            der.tlv(0x31, der.sequence(*signer_info)),
        )
        return der.sequence(_oid(ID_SIGNED_DATA), der.tlv(0xA0, signed_data))

    def max_size(self, unsigned_allowance: int = 0) -> int:
        """An upper bound of `build`'s output, to reserve /Contents without a dry run."""
        from datetime import UTC

        sample = self.build(
            b"\x00" * 64, datetime(2049, 12, 31, tzinfo=UTC), lambda _: b"\x30" + b"\x00" * (MAX_SIGNATURE - 1)
        )
        return len(sample) + 16 + unsigned_allowance
