"""Build and sign X.509 certificates with asn1crypto (cryptography cannot sign SM2).

The builder takes only decided values: subject, key, validity, extensions. Deciding them is the
job of `ca.issuance` (from a profile) and `ca.hierarchy` (for CA certificates).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from asn1crypto import algos, core, keys, x509

from gm import asn1 as _asn1  # noqa: F401
from gm import der
from keys.custody import SigningHandle

SERIAL_BITS = 127  # positive INTEGER of at most 16 octets, >= 64 bits of CSPRNG output


def new_serial() -> int:
    """128-bit-class serial: 127 random bits, forced non-zero and >= 2**64."""
    while True:
        value = secrets.randbits(SERIAL_BITS)
        if value >= 1 << 64:
            return value


def serial_hex(serial: int) -> str:
    return format(serial, "x")


def signature_algorithm(key_algorithm: str) -> algos.SignedDigestAlgorithm:
    if key_algorithm == "sm2":
        return algos.SignedDigestAlgorithm({"algorithm": "sm2_sm3"})  # no parameters (GM/T 0015)
    if key_algorithm == "p256":
        return algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"})
    raise ValueError(f"no signature algorithm for {key_algorithm}")


def to_time(moment: datetime) -> x509.Time:
    moment = moment.astimezone(UTC).replace(microsecond=0)
    if moment.year < 2050:
        return x509.Time(name="utc_time", value=moment)
    return x509.Time(name="general_time", value=moment)


def time_der(moment: datetime) -> bytes:
    """`to_time(moment).dump()` without asn1crypto's per-call cost (RFC 5280 §4.1.2.5: UTCTime
    before 2050, GeneralizedTime from then on; seconds, Z)."""
    moment = moment.astimezone(UTC)
    if moment.year < 2050:
        return der.tlv(0x17, moment.strftime("%y%m%d%H%M%SZ").encode("ascii"))
    return der.tlv(0x18, moment.strftime("%Y%m%d%H%M%SZ").encode("ascii"))


def truncate(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(microsecond=0)


def key_identifier(spki: keys.PublicKeyInfo) -> bytes:
    """RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits."""
    return hashlib.sha1(spki["public_key"].contents[1:], usedforsecurity=False).digest()


def extension(name: str, value: core.Asn1Value, critical: bool = False) -> x509.Extension:
    return x509.Extension({"extn_id": name, "critical": critical, "extn_value": value})


def ca_extensions(
    spki: keys.PublicKeyInfo,
    issuer_ski: bytes | None,
    key_usage: Sequence[str],
    path_length: int | None,
) -> list[x509.Extension]:
    constraints: dict[str, object] = {"ca": True}
    if path_length is not None:
        constraints["path_len_constraint"] = path_length
    exts = [
        extension("basic_constraints", x509.BasicConstraints(constraints), critical=True),
        extension("key_usage", x509.KeyUsage(set(key_usage)), critical=True),
        extension("key_identifier", core.OctetString(key_identifier(spki))),
    ]
    if issuer_ski is not None:
        exts.append(extension("authority_key_identifier", x509.AuthorityKeyIdentifier({"key_identifier": issuer_ski})))
    return exts


def distribution_extensions(crl_url: str, ocsp_url: str, issuer_url: str) -> list[x509.Extension]:
    return [
        extension(
            "crl_distribution_points",
            x509.CRLDistributionPoints(
                [
                    {
                        "distribution_point": {
                            "full_name": [x509.GeneralName(name="uniform_resource_identifier", value=crl_url)]
                        }
                    }
                ]
            ),
        ),
        extension(
            "authority_information_access",
            x509.AuthorityInfoAccessSyntax(
                [
                    {
                        "access_method": "ocsp",
                        "access_location": x509.GeneralName(name="uniform_resource_identifier", value=ocsp_url),
                    },
                    {
                        "access_method": "ca_issuers",
                        "access_location": x509.GeneralName(name="uniform_resource_identifier", value=issuer_url),
                    },
                ]
            ),
        ),
    ]


def policies_extension(policy_oids: Sequence[str]) -> x509.Extension:
    return extension(
        "certificate_policies", x509.CertificatePolicies([{"policy_identifier": oid} for oid in policy_oids])
    )


def sign_certificate(
    *,
    issuer: x509.Name,
    subject: x509.Name,
    spki: keys.PublicKeyInfo,
    serial: int,
    not_before: datetime,
    not_after: datetime,
    extensions: Sequence[x509.Extension],
    signer: SigningHandle,
) -> x509.Certificate:
    algorithm = signature_algorithm(signer.algorithm)
    tbs = x509.TbsCertificate(
        {
            "version": "v3",
            "serial_number": serial,
            "signature": algorithm,
            "issuer": issuer,
            "validity": {"not_before": to_time(not_before), "not_after": to_time(not_after)},
            "subject": subject,
            "subject_public_key_info": spki,
            "extensions": list(extensions),
        }
    )
    signature = signer.sign(tbs.dump())
    return x509.Certificate({"tbs_certificate": tbs, "signature_algorithm": algorithm, "signature_value": signature})


class Template:
    """The constant parts of certificates one CA issues under one profile, encoded once.

    Per certificate only serial, validity, subject, key, key identifier and SAN change; they are
    DER-assembled around the cached bytes. The result is byte-identical to building the whole
    structure with asn1crypto (a test pins that).
    """

    def __init__(
        self, issuer: x509.Name, algorithm: str, before: Sequence[x509.Extension], after: Sequence[x509.Extension]
    ) -> None:
        self.algorithm = signature_algorithm(algorithm)
        self._algorithm_der = self.algorithm.dump()
        self._issuer_der = issuer.dump()
        self._before = b"".join(e.dump() for e in before)
        self._after = b"".join(e.dump() for e in after)

    def tbs(
        self,
        *,
        serial: int,
        not_before: datetime,
        not_after: datetime,
        subject_der: bytes,
        spki_der: bytes,
        middle: Sequence[x509.Extension | bytes] = (),
    ) -> bytes:
        validity = der.sequence(time_der(not_before), time_der(not_after))
        middle_der = b"".join(m if isinstance(m, bytes) else m.dump() for m in middle)
        extensions = der.explicit(3, der.sequence(self._before + middle_der + self._after))
        return der.sequence(
            der.explicit(0, der.integer(2)),
            der.integer(serial),
            self._algorithm_der,
            self._issuer_der,
            validity,
            subject_der,
            spki_der,
            extensions,
        )

    def sign(self, tbs_der: bytes, signer: SigningHandle) -> bytes:
        return der.sequence(tbs_der, self._algorithm_der, der.bit_string(signer.sign(tbs_der)))


_SKI_EXTENSION_PREFIX = der.tlv(0x06, bytes([0x55, 0x1D, 0x0E]))  # id-ce-subjectKeyIdentifier 2.5.29.14


def key_identifier_extension(spki_der: bytes) -> bytes:
    """The SKI extension, method 1, from the SPKI's DER without a full parse (issuance hot path)."""
    start, end = der.single(spki_der, 0x30)
    parts = der.children(spki_der, start, end)
    if len(parts) != 2 or parts[1][0] != 0x03:
        raise der.DERError("SubjectPublicKeyInfo is not SEQUENCE { algorithm, BIT STRING }")
    _, _, bits_start, bits_end = parts[1]
    identifier = hashlib.sha1(spki_der[bits_start + 1 : bits_end], usedforsecurity=False).digest()
    return der.sequence(_SKI_EXTENSION_PREFIX, der.octet_string(der.octet_string(identifier)))


def fingerprint(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()
