"""PKCS#10 requests: parse strictly, identify the key family, check proof of possession."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass

from asn1crypto import csr as asn1_csr
from asn1crypto import keys, x509

from ca.errors import CSRMalformed, CSRSignatureInvalid, KeyAlgorithmNotAllowed
from gm import oids, sm2
from gm.signatures import UnsupportedSignatureAlgorithm, verify_signature

MAX_CSR_BYTES = 64 * 1024
_PEM = re.compile(rb"-----BEGIN (?:NEW )?CERTIFICATE REQUEST-----(.+?)-----END (?:NEW )?CERTIFICATE REQUEST-----", re.S)


@dataclass(frozen=True)
class ParsedCSR:
    subject: x509.Name
    spki: keys.PublicKeyInfo
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
    der = _der(data)
    try:
        request = asn1_csr.CertificationRequest.load(der, strict=True)
        info = request["certification_request_info"]
        subject = info["subject"]
        spki = info["subject_pk_info"]
        algorithm = request["signature_algorithm"]
        algorithm.native  # noqa: B018  (force the lazy parse: a malformed AlgorithmIdentifier fails here)
        signature = request["signature"].native
        tbs = info.dump()
        subject.native  # noqa: B018  (force a full parse of the name now)
        family = key_algorithm(spki)
        san = _requested_san(info)
        if san is not None:
            san.native  # noqa: B018  (asn1crypto parses lazily: fail here, not deep in issuance)
    except (ValueError, TypeError, KeyError) as exc:
        raise CSRMalformed(f"not a DER PKCS#10 request: {exc}") from None
    if family == "other":
        raise KeyAlgorithmNotAllowed("CSR key is neither SM2, P-256 nor RSA")
    if family == "sm2" and algorithm["algorithm"].dotted != oids.SM2_WITH_SM3:
        raise CSRSignatureInvalid("an SM2 key must sign its CSR with SM2-with-SM3")
    try:
        if family == "sm2":
            # Standard ID first; OpenSSL 3 `req` without `-sigopt distid:` signs with an empty ID.
            # Either proves possession of the key; the certificate is always signed with the standard ID.
            key = sm2.SM2PublicKey(bytes(spki["public_key"].native))
            valid = key.verify(signature, tbs, one_shot=True) or key.verify(signature, tbs, b"", one_shot=True)
        else:
            valid = verify_signature(spki.dump(), algorithm, signature, tbs)
    except UnsupportedSignatureAlgorithm as exc:
        raise CSRSignatureInvalid(f"unsupported CSR signature algorithm {exc}") from None
    except (ValueError, TypeError, sm2.InvalidKey) as exc:
        raise CSRMalformed(f"CSR public key unusable: {exc}") from None
    if not valid:
        raise CSRSignatureInvalid("CSR signature does not verify with its own public key")
    return ParsedCSR(subject=subject, spki=spki, key_algorithm=family, subject_alt_name=san)


def _requested_san(info: asn1_csr.CertificationRequestInfo) -> x509.GeneralNames | None:
    for attribute in info["attributes"]:
        if attribute["type"].native != "extension_request":
            continue
        for extensions in attribute["values"]:
            for ext in extensions:
                if ext["extn_id"].native == "subject_alt_name":
                    names: x509.GeneralNames = ext["extn_value"].parsed
                    return names
    return None
