"""Sealed PDFs checked by implementations that are not ours: pyHanko's validator (with only our SM2
signature hook), Bouncy Castle, `openssl pkeyutl` / `dgst`, poppler's `pdfsig` and `qpdf --check`.
Every positive check has a tampered twin."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from asn1crypto import cms, x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from ca.authority import CertificateAuthorityService
from gm import oids, ses
from seal.service import SealService
from signing.cms import SESEAL_ATTRIBUTE
from signing.errors import PdfCertifiedNoChanges
from signing.pdf import Placement, Sealed, seal_pdf
from tests.fixtures import make_pdf, openssl, pem
from verify.sm2_validator import SM2SignatureValidator

JAVA_DIR = Path(__file__).parent / "java"
BC_JARS = ["/usr/share/java/bcprov.jar", "/usr/share/java/bcpkix.jar", "/usr/share/java/bcutil.jar"]


def _seal(service: SealService, seal_id: str, data: bytes, **placement: object) -> Sealed:
    material = service.for_signing(seal_id, role="issuer", caller="test", caller_seal_ids=("*",))
    return seal_pdf(
        data,
        handle=material.handle,
        certificate=material.certificate,
        chain=material.chain,
        seal_der=material.seal.esl_der,
        picture_png=material.seal.picture_png,
        placement=Placement(**placement),  # type: ignore[arg-type]
    )


def _validate(pdf: bytes, root: x509.Certificate) -> list[tuple[bool, bool, bool]]:
    import io

    context = ValidationContext(
        trust_roots=[root],
        allow_fetching=False,
        revocation_mode="soft-fail",
        signature_validator=SM2SignatureValidator(),
    )
    reader = PdfFileReader(io.BytesIO(pdf))
    out = []
    for embedded in reader.embedded_signatures:
        status = validate_pdf_signature(embedded, context)
        out.append((status.intact, status.valid, status.trusted))
    return out


def _cms_and_content(pdf: bytes, index: int = 0) -> tuple[bytes, bytes]:
    import io

    embedded = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[index]
    ranges = [int(v) for v in embedded.sig_object["/ByteRange"]]
    content = b"".join(pdf[ranges[i] : ranges[i] + ranges[i + 1]] for i in range(0, len(ranges), 2))
    der: bytes = cms.ContentInfo.load(embedded.pkcs7_content).dump()  # /Contents without its zero padding
    return der, content


@pytest.fixture(scope="module")
def sealed(seal_service: SealService) -> dict[str, bytes]:
    document = make_pdf()
    return {family: _seal(seal_service, f"demo-370000-{family}", document).pdf for family in ("sm2", "p256")}


@pytest.mark.parametrize("family", ["sm2", "p256"])
def test_pyhanko_validator_says_intact_valid_trusted(
    sealed: dict[str, bytes], ca_service: CertificateAuthorityService, family: str
) -> None:
    root = ca_service.ca_certificate(f"cn-root-{family}")
    assert _validate(sealed[family], root) == [(True, True, True)]
    # not trusted under the other family's root
    other = ca_service.ca_certificate(f"cn-root-{'p256' if family == 'sm2' else 'sm2'}")
    assert _validate(sealed[family], other) == [(True, True, False)]


@pytest.mark.parametrize("family", ["sm2", "p256"])
def test_changed_document_fails_pyhanko(
    sealed: dict[str, bytes], ca_service: CertificateAuthorityService, family: str
) -> None:
    pdf = sealed[family]
    at = pdf.index(b"Business licence")
    tampered = pdf[:at] + b"Bxsiness" + pdf[at + 8 :]
    root = ca_service.ca_certificate(f"cn-root-{family}")
    ((intact, _, _),) = _validate(tampered, root)
    assert not intact  # the document digest no longer matches what was signed


def test_cms_shape_and_seal_attribute(sealed: dict[str, bytes], seal_service: SealService) -> None:
    der, _ = _cms_and_content(sealed["sm2"])
    signed = cms.ContentInfo.load(der)["content"]
    signer = signed["signer_infos"][0]
    assert signer["digest_algorithm"]["algorithm"].dotted == oids.SM3
    assert signer["signature_algorithm"]["algorithm"].dotted == oids.SM2_WITH_SM3
    attrs = {a["type"].dotted: a for a in signer["signed_attrs"]}
    assert {"1.2.840.113549.1.9.3", "1.2.840.113549.1.9.4"} <= set(attrs)  # contentType, messageDigest
    seal_der = attrs[SESEAL_ATTRIBUTE]["values"][0].native
    assert seal_der == seal_service.get("demo-370000-sm2").esl_der
    seal = ses.parse_seal(seal_der)
    holder = _signer_cert(signed).dump()
    assert holder in seal.certs  # the signer is the holder the seal names


def _signer_cert(signed: cms.SignedData) -> x509.Certificate:
    sid = signed["signer_infos"][0]["sid"].chosen
    for choice in signed["certificates"]:
        cert = choice.chosen
        if cert.serial_number == sid["serial_number"].native and cert.issuer == sid["issuer"]:
            return cert
    raise AssertionError("signer certificate not embedded")


def _pdf_sig_parts(pdf: bytes) -> tuple[bytes, bytes, bytes, bytes]:
    """(signed attributes as a SET, signature, signer SPKI, messageDigest) of the first signature."""
    der, _ = _cms_and_content(pdf)
    signed = cms.ContentInfo.load(der)["content"]
    signer = signed["signer_infos"][0]
    attrs = signer["signed_attrs"].dump()
    as_set = b"\x31" + attrs[1:]  # [0] IMPLICIT → SET OF, as RFC 5652 §5.4 prescribes for the signature
    digest = next(a["values"][0].native for a in signer["signed_attrs"] if a["type"].native == "message_digest")
    cert = _signer_cert(signed)
    return as_set, signer["signature"].native, cert.public_key.dump(), digest


def test_openssl_verifies_the_sm2_cms(sealed: dict[str, bytes], tmp_path: Path) -> None:
    pdf = sealed["sm2"]
    attrs, signature, spki, digest = _pdf_sig_parts(pdf)
    (tmp_path / "pub.pem").write_bytes(pem(spki, "PUBLIC KEY"))

    def verify(data: bytes, sig: bytes) -> bool:
        (tmp_path / "attrs.der").write_bytes(data)
        (tmp_path / "sig.bin").write_bytes(sig)
        result = openssl(
            "pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "attrs.der", "-sigfile", "sig.bin",
            "-digest", "sm3", "-pkeyopt", "distid:1234567812345678", cwd=tmp_path, check=False,
        )  # fmt: skip
        return result.returncode == 0 and b"Signature Verified Successfully" in result.stdout

    assert verify(attrs, signature)
    flipped = bytearray(signature)
    flipped[-1] ^= 1
    assert not verify(attrs, bytes(flipped))
    # the messageDigest the signature covers is OpenSSL's SM3 of the signed byte ranges
    _, content = _cms_and_content(pdf)
    (tmp_path / "content.bin").write_bytes(content)
    sm3 = openssl("dgst", "-sm3", "-binary", "content.bin", cwd=tmp_path).stdout
    assert sm3 == digest
    at = pdf.index(b"Business licence")
    (tmp_path / "content.bin").write_bytes(_cms_and_content(pdf[:at] + b"X" + pdf[at + 1 :])[1])
    assert openssl("dgst", "-sm3", "-binary", "content.bin", cwd=tmp_path).stdout != digest


def _bouncy_castle(tmp_path: Path, cms_der: bytes, content: bytes) -> subprocess.CompletedProcess[str]:
    java = shutil.which("java")
    if java is None or not all(Path(j).exists() for j in BC_JARS):
        pytest.fail("Bouncy Castle checks need java and Debian's libbcprov-java / libbcpkix-java (make sysdeps)")
    (tmp_path / "sig.p7s").write_bytes(cms_der)
    (tmp_path / "content.bin").write_bytes(content)
    return subprocess.run(
        [java, "-cp", ":".join(BC_JARS), str(JAVA_DIR / "VerifyCms.java"), "sig.p7s", "content.bin"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("family", ["sm2", "p256"])
def test_bouncy_castle_verifies_the_cms(sealed: dict[str, bytes], tmp_path: Path, family: str) -> None:
    pdf = sealed[family]
    der, content = _cms_and_content(pdf)
    ok = _bouncy_castle(tmp_path, der, content)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    expected = oids.SM2_WITH_SM3 if family == "sm2" else oids.ECDSA_WITH_SHA256
    assert ok.stdout.startswith("VALID") and expected in ok.stdout
    # twins: one flipped bit in the document, then in the signature
    changed = bytearray(content)
    changed[len(content) // 3] ^= 1
    assert _bouncy_castle(tmp_path, der, bytes(changed)).returncode != 0
    signed = cms.ContentInfo.load(der)
    signature = bytearray(signed["content"]["signer_infos"][0]["signature"].native)
    signature[-2] ^= 1
    signed["content"]["signer_infos"][0]["signature"] = bytes(signature)
    assert _bouncy_castle(tmp_path, signed.dump(), content).returncode != 0


def test_pdfsig_accepts_p256_and_qpdf_is_clean(sealed: dict[str, bytes], tmp_path: Path) -> None:
    for family, pdf in sealed.items():
        path = tmp_path / f"{family}.pdf"
        path.write_bytes(pdf)
        check = subprocess.run(["qpdf", "--check", str(path)], capture_output=True, text=True, timeout=60, check=False)
        assert check.returncode == 0 and "No syntax or stream encoding errors" in check.stdout, check.stdout
    result = subprocess.run(["pdfsig", str(tmp_path / "p256.pdf")], capture_output=True, text=True, timeout=60)
    assert "Signature Validation: Signature is Valid." in result.stdout, result.stdout
    pdf = sealed["p256"]
    at = pdf.index(b"Business licence")
    (tmp_path / "bad.pdf").write_bytes(pdf[:at] + b"X" + pdf[at + 1 :])
    bad = subprocess.run(["pdfsig", str(tmp_path / "bad.pdf")], capture_output=True, text=True, timeout=60)
    assert "Signature is Valid" not in bad.stdout


def test_sealed_twice_keeps_both_valid(seal_service: SealService, ca_service: CertificateAuthorityService) -> None:
    first = _seal(seal_service, "demo-370000-sm2", make_pdf(pages=2), page=1, x_mm=20, y_mm=20)
    second = _seal(seal_service, "demo-530000-sm2", first.pdf)
    assert (first.field_name, second.field_name, second.page) == ("Seal1", "Seal2", 2)
    root = ca_service.ca_certificate("cn-root-sm2")
    assert _validate(second.pdf, root) == [(True, True, True), (True, True, True)]
    assert second.pdf.startswith(first.pdf)  # an incremental update


def test_placement_lands_where_asked(seal_service: SealService) -> None:
    import io

    result = _seal(seal_service, "demo-370000-p256", make_pdf(), x_mm=30, y_mm=40, size_mm=40)
    embedded = PdfFileReader(io.BytesIO(result.pdf)).embedded_signatures[0]
    rect = [float(v) for v in embedded.sig_field["/Rect"]]
    mm = 72 / 25.4
    assert rect == pytest.approx([30 * mm, 40 * mm, 70 * mm, 80 * mm], abs=0.02)


def test_certification_signature_locks_the_document(
    seal_service: SealService, ca_service: CertificateAuthorityService
) -> None:
    """A certifying seal (DocMDP, form filling allowed) validates with no modification; a visible seal
    added afterwards would be a new field, which pyHanko's analysis of DocMDP P=2 does not allow: the
    seal is refused (tests/signing/test_sealing_refusals.py has the rest)."""
    import io

    from pyhanko.sign.diff_analysis import ModificationLevel

    material = seal_service.for_signing("demo-370000-sm2", role="issuer", caller="t", caller_seal_ids=("*",))
    certified = seal_pdf(
        make_pdf(),
        handle=material.handle,
        certificate=material.certificate,
        chain=material.chain,
        seal_der=material.seal.esl_der,
        picture_png=material.seal.picture_png,
        placement=Placement(x_mm=20, y_mm=20),
        certify=True,
    )
    root = ca_service.ca_certificate("cn-root-sm2")
    context = ValidationContext(trust_roots=[root], allow_fetching=False, signature_validator=SM2SignatureValidator())
    (alone,) = PdfFileReader(io.BytesIO(certified.pdf)).embedded_signatures
    assert alone.docmdp_level is not None
    status = validate_pdf_signature(alone, context)
    assert status.bottom_line and status.docmdp_ok and status.modification_level == ModificationLevel.NONE
    with pytest.raises(PdfCertifiedNoChanges):
        _seal(seal_service, "demo-530000-sm2", certified.pdf)
