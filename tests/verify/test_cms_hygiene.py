"""CMS hygiene on every path: MD5 / SHA-1 (as the message digest or inside the signature algorithm), and
signed attributes without a matching contentType, are refused in PDF signatures (the fast path declines,
the full path reports), bare CMS, and timestamp tokens.

Every attacked CMS is signed afresh with a real key certified by the demo hierarchy (or, for timestamps,
with the TSA's key in custody), so the defect under test is the only one: the same builder with sound
algorithms passes.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from asn1crypto import cms, core, tsp, x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from api.context import Context
from gm import der, oids, sm2
from gm.sm3 import sm3
from signing.cms import attribute
from tests.verify.test_pdf_fast_attacks import _check, _contents, _put_cms, _sealed
from verify.pdf import PdfVerifier
from verify.report import FAILED, INDETERMINATE, PASSED, Report

ID_DATA, ID_SIGNED_DATA, ID_TST_INFO = "1.2.840.113549.1.7.1", "1.2.840.113549.1.7.2", "1.2.840.113549.1.9.16.1.4"
CONTENT_TYPE, MESSAGE_DIGEST = "1.2.840.113549.1.9.3", "1.2.840.113549.1.9.4"
DIGESTS = {"sm3": oids.SM3, "sha256": "2.16.840.1.101.3.4.2.1", "sha1": "1.3.14.3.2.26", "md5": "1.2.840.113549.2.5"}
ECDSA_SHA256, ECDSA_SHA1 = oids.ECDSA_WITH_SHA256, "1.2.840.10045.4.1"
WEAK, BAD_FORMAT = (INDETERMINATE, "CRYPTO_CONSTRAINTS_FAILURE_NO_POE"), (FAILED, "FORMAT_FAILURE")


def _oid(dotted: str) -> bytes:
    encoded: bytes = core.ObjectIdentifier(dotted).dump()
    return encoded


def _digest(name: str, data: bytes) -> bytes:
    return sm3(data) if name == "sm3" else hashlib.new(name, data).digest()


@dataclass
class Signer:
    """A fresh key and its `person` certificate from a demo regional CA: real, trusted, unrevoked."""

    family: str
    cert: bytes
    chain: list[bytes]
    sign: Callable[[bytes, str], bytes]  # (data, signature algorithm OID) -> DER signature


def _signer(context: Context, family: str) -> Signer:
    ca = f"cn-370000-{family}"
    subject = {"common_name": f"CMS hygiene {family} {secrets.token_hex(3)}", "country_name": "CN"}
    if family == "sm2":
        key = sm2.SM2PrivateKey.generate()
        issued = context.ca.issue_for_key(key.public_key.spki_der(), subject, "person", ca)
        return Signer(family, issued.der, issued.chain, lambda data, _: key.sign(data))
    private = ec.generate_private_key(ec.SECP256R1())
    spki = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    issued = context.ca.issue_for_key(spki, subject, "person", ca)
    chosen = {ECDSA_SHA256: hashes.SHA256, ECDSA_SHA1: hashes.SHA1}
    return Signer(family, issued.der, issued.chain, lambda data, alg: private.sign(data, ec.ECDSA(chosen[alg]())))


def signed_data(
    signer: Signer,
    content: bytes,
    *,
    digest: str,
    signature_oid: str,
    content_type: str | None = ID_DATA,
    encapsulated: str = ID_DATA,
    econtent: bytes | None = None,
    extra_attrs: tuple[bytes, ...] = (),
) -> bytes:
    """A DER ContentInfo: SignedData by `signer` over `content` (signed attributes: contentType if
    given, messageDigest), detached unless `econtent`."""
    value = _digest(digest, content)
    attrs = [attribute(MESSAGE_DIGEST, der.octet_string(value)), *extra_attrs]
    if content_type is not None:
        attrs.append(attribute(CONTENT_TYPE, _oid(content_type)))
    signed = b"".join(sorted(attrs))
    cert = x509.Certificate.load(signer.cert)
    digest_alg, signature_alg = der.sequence(_oid(DIGESTS[digest])), der.sequence(_oid(signature_oid))
    sid = der.sequence(cert.issuer.dump(), der.integer(cert.serial_number))
    info = der.sequence(der.integer(1), sid, digest_alg, der.tlv(0xA0, signed), signature_alg,
                        der.octet_string(signer.sign(der.tlv(0x31, signed), signature_oid)))  # fmt: skip
    encap = der.sequence(_oid(encapsulated), *([der.explicit(0, der.octet_string(econtent))] if econtent else []))
    certs = der.tlv(0xA0, signer.cert + b"".join(signer.chain))
    body = der.sequence(der.integer(1), der.tlv(0x31, digest_alg), encap, certs, der.tlv(0x31, info))
    return der.sequence(_oid(ID_SIGNED_DATA), der.tlv(0xA0, body))


def _resigned_pdf(pdf: bytes, signer: Signer, **options: Any) -> bytes:
    """`pdf` (sealed) with its CMS replaced by one from `signer` over the same byte ranges."""
    import re

    match = re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", pdf)
    assert match is not None
    a, b, c, d = (int(x) for x in match.groups())
    return _put_cms(pdf, signed_data(signer, pdf[a:b] + pdf[c : c + d], **options))


@pytest.fixture(scope="module")
def signers(context: Context) -> dict[str, Signer]:
    from seal.demo import create_demo_seals

    create_demo_seals(context.seals, actor="test")
    return {family: _signer(context, family) for family in ("sm2", "p256")}


@pytest.fixture(scope="module")
def unsealed(context: Context, signers: dict[str, Signer]) -> bytes:
    return _sealed(context, "B-B")


def _signature_check(report: Report) -> tuple[str, str, str]:
    found = next(c for s in report.signatures for c in s.checks if c.name == "signature")
    return found.status, found.code, found.detail


CASES = [
    # (name, family, options, expected (status, code), word in the detail)
    ("SHA-1 message digest", "p256", {"digest": "sha1", "signature_oid": ECDSA_SHA256}, WEAK, "SHA-1"),
    ("ecdsa-with-SHA1", "p256", {"digest": "sha256", "signature_oid": ECDSA_SHA1}, WEAK, "ecdsa-with-SHA1"),
    ("MD5 message digest", "p256", {"digest": "md5", "signature_oid": ECDSA_SHA256}, WEAK, "MD5"),
    ("SM2 over a SHA-1 message digest", "sm2", {"digest": "sha1", "signature_oid": oids.SM2_WITH_SM3}, WEAK, "SHA-1"),
    ("no contentType", "p256", {"digest": "sha256", "signature_oid": ECDSA_SHA256, "content_type": None},
     BAD_FORMAT, "contentType"),
    ("contentType of another type", "sm2", {"digest": "sm3", "signature_oid": oids.SM2_WITH_SM3,
                                            "content_type": ID_SIGNED_DATA}, BAD_FORMAT, "contentType"),
]  # fmt: skip
SOUND = {"sm2": {"digest": "sm3", "signature_oid": oids.SM2_WITH_SM3},
         "p256": {"digest": "sha256", "signature_oid": ECDSA_SHA256}}  # fmt: skip


@pytest.mark.parametrize("family", ["sm2", "p256"])
def test_the_builder_with_sound_algorithms_passes_both_paths(
    context: Context, signers: dict[str, Signer], unsealed: bytes, family: str
) -> None:
    verifier = context.verification.verifier()
    data = _resigned_pdf(unsealed, signers[family], **SOUND[family])
    report = verifier.pdf.verify(data)
    assert report.result == PASSED and verifier.pdf.fast_declined == "", (report.as_json(), verifier.pdf.fast_declined)
    assert verifier.pdf.full(data).result == PASSED
    content = b"a licence, signed as bare CMS"
    bare = signed_data(signers[family], content, **SOUND[family])  # type: ignore[arg-type]
    assert verifier.verify(bare, content=content).result == PASSED


@pytest.mark.parametrize(("name", "family", "options", "expected", "word"), CASES)
def test_pdf_signatures(
    context: Context,
    signers: dict[str, Signer],
    unsealed: bytes,
    name: str,
    family: str,
    options: dict[str, Any],
    expected: tuple[str, str],
    word: str,
) -> None:
    pdf: PdfVerifier = context.verification.verifier().pdf
    data = _resigned_pdf(unsealed, signers[family], **options)
    report = pdf.verify(data)
    assert pdf.fast_declined, name  # the fast path declines; the full path reports
    status, code, detail = _signature_check(report)
    assert (status, code) == expected and word in detail, (name, report.as_json())
    assert report.result == expected[0]


@pytest.mark.parametrize(("name", "family", "options", "expected", "word"), CASES)
def test_bare_cms(
    context: Context,
    signers: dict[str, Signer],
    name: str,
    family: str,
    options: dict[str, Any],
    expected: tuple[str, str],
    word: str,
) -> None:
    content = b"a licence, signed as bare CMS"
    blob = signed_data(signers[family], content, **options)
    report = context.verification.verifier().verify(blob, content=content)
    status, code, detail = _signature_check(report)
    assert (status, code) == expected and word in detail, (name, report.as_json())
    assert report.result == expected[0]


def test_bare_cms_with_a_mismatched_encapsulated_type(context: Context, signers: dict[str, Signer]) -> None:
    """contentType says id-data, the encapsulated content says TSTInfo."""
    content = b"not a TSTInfo"
    blob = signed_data(signers["sm2"], content, **SOUND["sm2"], encapsulated=ID_TST_INFO, econtent=content)  # type: ignore[arg-type]
    status, code, detail = _signature_check(context.verification.verifier().verify(blob))
    assert (status, code) == BAD_FORMAT and ID_TST_INFO in detail


# ---- timestamp tokens ------------------------------------------------------------------------------------
def _token(context: Context, family: str, signature_value: bytes, *, digest: str, content_type: bool) -> Any:
    """A timestamp token over `signature_value`, signed with the real TSA unit's key from custody."""
    unit = context.signing.tsa.unit(family)
    imprint = "sm3" if family == "sm2" else "sha256"
    info = tsp.TSTInfo({
        "version": "v1", "policy": oids.TSA_POLICY, "serial_number": secrets.randbits(100),
        "message_imprint": {"hash_algorithm": {"algorithm": imprint},
                            "hashed_message": _digest(imprint, signature_value)},
        "gen_time": datetime.now(UTC).replace(microsecond=0), "accuracy": {"seconds": 1},
        "tsa": x509.GeneralName(name="directory_name", value=unit.certificate.subject),
    }).dump()  # fmt: skip
    cert_hash = hashlib.sha256(unit.certificate_der).digest()
    ess = tsp.SigningCertificateV2({"certs": [{"hash_algorithm": {"algorithm": "sha256"}, "cert_hash": cert_hash}]})
    attrs = [attribute(MESSAGE_DIGEST, der.octet_string(_digest(digest, info))),
             attribute("1.2.840.113549.1.9.16.2.47", ess.dump())]  # fmt: skip
    if content_type:
        attrs.append(attribute(CONTENT_TYPE, _oid(ID_TST_INFO)))
    signed = b"".join(sorted(attrs))
    mechanism = oids.SM2_WITH_SM3 if family == "sm2" else ECDSA_SHA256
    digest_alg = der.sequence(_oid(DIGESTS[digest]))
    sid = der.sequence(unit.certificate.issuer.dump(), der.integer(unit.certificate.serial_number))
    signer_info = der.sequence(der.integer(1), sid, digest_alg, der.tlv(0xA0, signed), der.sequence(_oid(mechanism)),
                               der.octet_string(unit.handle.sign(der.tlv(0x31, signed))))  # fmt: skip
    encap = der.sequence(_oid(ID_TST_INFO), der.explicit(0, der.octet_string(info)))
    certs = der.tlv(0xA0, unit.certificate_der + b"".join(unit.chain))
    body = der.sequence(der.integer(3), der.tlv(0x31, digest_alg), encap, certs, der.tlv(0x31, signer_info))
    return cms.ContentInfo.load(der.sequence(_oid(ID_SIGNED_DATA), der.tlv(0xA0, body)))


@pytest.mark.parametrize(
    ("family", "digest", "content_type", "expected"),
    [
        ("sm2", "sm3", True, (PASSED, "TIMESTAMP")),  # the control: a sound token made here
        ("p256", "sha256", True, (PASSED, "TIMESTAMP")),
        ("p256", "sha1", True, WEAK),
        ("sm2", "sha1", True, WEAK),
        ("p256", "sha256", False, BAD_FORMAT),
        ("sm2", "sm3", False, BAD_FORMAT),
    ],
)
def test_timestamp_tokens(
    context: Context,
    signers: dict[str, Signer],
    family: str,
    digest: str,
    content_type: bool,
    expected: tuple[str, str],
) -> None:
    sealed = _sealed(context, "B-T", seal_id=f"demo-370000-{family}")
    ours = cms.ContentInfo.load(_contents(sealed)[0])
    info = ours["content"]["signer_infos"][0]
    token = _token(context, family, info["signature"].native, digest=digest, content_type=content_type)
    info["unsigned_attrs"] = cms.CMSAttributes([{"type": "signature_time_stamp_token", "values": [token]}])
    data = _put_cms(sealed, ours.dump(force=False))
    pdf: PdfVerifier = context.verification.verifier().pdf
    report = pdf.verify(data)
    assert _check(report, "signing_time") == expected, report.as_json()
    if expected[0] != PASSED:
        assert pdf.fast_declined
        assert report.result != PASSED
