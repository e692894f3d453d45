"""PKCS#10 requests: parse strictly, identify the key family, check proof of possession."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from asn1crypto import algos, core, keys, x509
from cryptography import x509 as cx509
from cryptography.x509.oid import ExtensionOID

from ca.errors import CSRMalformed, CSRSignatureInvalid, KeyAlgorithmNotAllowed
from gm import der, oids, sm2
from gm.signatures import UnsupportedSignatureAlgorithm, verify_signature

MAX_CSR_BYTES = 64 * 1024
_PEM = re.compile(rb"-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----(.+?)-----END (?:NEW )?CERTIFICATE REQUEST-----", re.S)


@dataclass(frozen=True)
class ParsedCSR:
    subject: list[list[tuple[str, object]]]  # RDNs as (attribute name, value), as requested
    spki_der: bytes
    key_algorithm: str  # sm2 | p256 | rsa | other
    subject_alt_name: x509.GeneralNames | None


def _der(data: bytes | str) -> bytes:
    raw = data.encode("ascii", "replace") if isinstance(data, str) else data
    if len(raw) > MAX_CSR_BYTES:
        raise CSRMalformed("CSR larger than 64 KiB")
    match = _PEM.search(raw)
    if match:
        try:
            return base64.b64decode(b"".join(match.group(1).split()), validate=True)
        except ValueError:
            raise CSRMalformed("CSR PEM body is not base64") from None
    if raw.lstrip().startswith(b"-----"):
        raise CSRMalformed("not a PEM CERTIFICATE REQUEST")
    return raw


def key_algorithm(spki: keys.PublicKeyInfo) -> str:
    if spki["algorithm"]["algorithm"].native == "rsa":
        return "rsa"
    if spki["algorithm"]["algorithm"].dotted == oids.ID_EC_PUBLIC_KEY:
        params = spki["algorithm"]["parameters"]
        if params.name == "named":
            if params.chosen.dotted == oids.SM2_CURVE:
                return "sm2"
            if params.chosen.dotted == oids.SECP256R1:
                return "p256"
    return "other"


def parse_csr(data: bytes | str) -> ParsedCSR:
    """Parse (pyca/cryptography's strict DER parser) and check the proof of possession.

    cryptography reads the structure and the subject; it cannot verify SM2, so the signature is
    checked here (gm/ for SM2, cryptography for the rest) over the CertificationRequestInfo bytes.
    """
    raw = _der(data)
    try:
        request = cx509.load_der_x509_csr(raw)
        tbs = request.tbs_certrequest_bytes
        signature = request.signature
        subject: list[list[tuple[str, object]]] = [
            [(x509.NameType.map(attribute.oid.dotted_string), attribute.value) for attribute in rdn]
            for rdn in request.subject.rdns
        ]
        algorithm_der = _signature_algorithm_der(raw)
        spki_der = _spki(tbs)
        sm2_point = _sm2_point(spki_der)  # the common case without asn1crypto (~60 µs)
        if sm2_point is not None and algorithm_der in _SM2_WITH_SM3_DER:
            family, algorithm = "sm2", None
        else:
            algorithm = algos.SignedDigestAlgorithm.load(algorithm_der, strict=True)
            algorithm.native  # noqa: B018  (a malformed AlgorithmIdentifier fails here)
            spki = keys.PublicKeyInfo.load(spki_der, strict=True)
            family = key_algorithm(spki)
            if family == "sm2":
                sm2_point = bytes(spki["public_key"].native)
        san = _requested_san(request)
    except Exception as exc:
        raise CSRMalformed(f"not a DER PKCS#10 request: {exc}") from None
    if family == "other":
        raise KeyAlgorithmNotAllowed("CSR key is neither SM2, P-256 nor RSA")
    if family == "sm2" and algorithm is not None and algorithm["algorithm"].dotted != oids.SM2_WITH_SM3:
        raise CSRSignatureInvalid("an SM2 key must sign its CSR with SM2-with-SM3")
    try:
        if family == "sm2":
            # Standard ID first; OpenSSL 3 `req` without `-sigopt distid:` signs with an empty ID.
            # Either proves possession of the key; the certificate is always signed with the standard ID.
            assert sm2_point is not None
            key = sm2.SM2PublicKey(sm2_point)
            valid = key.verify(signature, tbs, one_shot=True) or key.verify(signature, tbs, b"", one_shot=True)
        else:
            assert algorithm is not None
            valid = verify_signature(spki_der, algorithm, signature, tbs)
    except UnsupportedSignatureAlgorithm as exc:
        raise CSRSignatureInvalid(f"unsupported CSR signature algorithm {exc}") from None
    except (ValueError, TypeError, sm2.InvalidKey) as exc:
        raise CSRMalformed(f"CSR public key unusable: {exc}") from None
    if not valid:
        raise CSRSignatureInvalid("CSR signature does not verify with its own public key")
    return ParsedCSR(subject=subject, spki_der=spki_der, key_algorithm=family, subject_alt_name=san)


def _signature_algorithm_der(request_der: bytes) -> bytes:
    start, end = der.single(request_der, 0x30)
    parts = der.children(request_der, start, end)
    if len(parts) != 3:
        raise der.DERError("CertificationRequest is not SEQUENCE { info, algorithm, signature }")
    _, header, _, stop = parts[1]
    return request_der[header:stop]


def _oid(dotted: str) -> bytes:
    encoded: bytes = core.ObjectIdentifier(dotted).dump()
    return encoded


_SM2_SPKI_ALGORITHM = der.sequence(_oid(oids.ID_EC_PUBLIC_KEY), _oid(oids.SM2_CURVE))
_SM2_WITH_SM3_DER = {der.sequence(_oid(oids.SM2_WITH_SM3)), der.sequence(_oid(oids.SM2_WITH_SM3), b"\x05\x00")}


def _sm2_point(spki_der: bytes) -> bytes | None:
    """The uncompressed point of an SM2 SubjectPublicKeyInfo in its one DER form, else None
    (then asn1crypto reads whatever it is)."""
    start, end = der.single(spki_der, 0x30)
    parts = der.children(spki_der, start, end)
    if len(parts) != 2 or spki_der[parts[0][1] : parts[0][3]] != _SM2_SPKI_ALGORITHM or parts[1][0] != 0x03:
        return None
    bits = spki_der[parts[1][2] : parts[1][3]]
    return bits[1:] if len(bits) == 66 and bits[0] == 0 else None


def _spki(info_der: bytes) -> bytes:
    start, end = der.single(info_der, 0x30)
    parts = der.children(info_der, start, end)
    if len(parts) < 3:
        raise der.DERError("CertificationRequestInfo too short")
    _, header, _, stop = parts[2]
    return info_der[header:stop]


def _requested_san(request: cx509.CertificateSigningRequest) -> x509.GeneralNames | None:
    for extension in request.extensions:
        if extension.oid == ExtensionOID.SUBJECT_ALTERNATIVE_NAME:
            names = x509.GeneralNames.load(extension.value.public_bytes(), strict=True)
            for general_name in names:  # asn1crypto parses lazily: fail here, not deep in issuance
                general_name.chosen.contents  # noqa: B018  (raw octets: .native would IDNA/IRI-decode them)
            return names
    return None
