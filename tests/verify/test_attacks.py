"""Attacks on sealed documents, each crafted here; each must end FAILED or INDETERMINATE with the right code."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

from api.context import Context
from seal.demo import create_demo_seals
from signing.pdf import Placement
from signing.service import Caller
from tests.fixtures import make_pdf
from verify.report import FAILED, INDETERMINATE, PASSED
from verify.service import Verifier
from verify.trust import TrustStore

CALLER = Caller(role="issuer", name="test", seal_ids=("*",))


@pytest.fixture(scope="module")
def verifier(context: Context) -> Iterator[Verifier]:
    create_demo_seals(context.seals, actor="test")
    yield context.verification.verifier()


def _seal(context: Context, pdf: bytes | None = None, seal_id: str = "demo-370000-sm2") -> bytes:
    return context.signing.seal_pdf(pdf or make_pdf(), seal_id=seal_id, caller=CALLER, placement=Placement()).pdf


def _check(report: dict[str, Any], name: str, index: int = 0) -> tuple[str, str]:
    check = next(c for c in report["signatures"][index]["checks"] if c["name"] == name)
    return check["status"], check["code"]


def _append_page_content(pdf: bytes, text: bytes) -> bytes:
    """An incremental update that replaces the first page's content stream."""
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    stream = generic.StreamObject(stream_data=b"BT /F1 24 Tf 72 400 Td (" + text + b") Tj ET")
    page["/Contents"] = writer.add_object(stream)
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_baseline_passes(context: Context, verifier: Verifier) -> None:
    assert verifier.verify(_seal(context)).result == PASSED


def test_page_content_changed_after_sealing(context: Context, verifier: Verifier) -> None:
    tampered = _append_page_content(_seal(context), b"Licence revoked? No: APPROVED")
    report = verifier.verify(tampered).as_json()
    assert report["result"] == FAILED
    assert _check(report, "integrity") == (PASSED, "OK")  # the signed revision itself is intact
    assert _check(report, "modifications") == (FAILED, "MODIFIED_AFTER_SIGNING")


def test_a_later_seal_is_not_a_suspicious_change(context: Context, verifier: Verifier) -> None:
    twice = _seal(context, _seal(context), seal_id="demo-530000-sm2")
    report = verifier.verify(twice).as_json()
    assert report["result"] == PASSED, report
    assert _check(report, "modifications", 0) == (PASSED, "LATER_SIGNATURES_ONLY")


def _byte_range(pdf: bytes) -> tuple[int, int, int, int, re.Match[bytes]]:
    match = re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", pdf)
    assert match is not None
    a, b, c, d = (int(x) for x in match.groups())
    return a, b, c, d, match


def _set_byte_range(pdf: bytes, values: tuple[int, int, int, int]) -> bytes:
    *_, match = _byte_range(pdf)
    text = b"/ByteRange [%d %d %d %d]" % values
    return pdf[: match.start()] + text.ljust(match.end() - match.start()) + pdf[match.end() :]


def test_byte_range_that_skips_bytes(context: Context, verifier: Verifier) -> None:
    pdf = _seal(context)
    a, b, c, d, _ = _byte_range(pdf)
    wrapped = _set_byte_range(pdf, (a, b - 100, c, d))  # 100 signed-over bytes silently left out
    report = verifier.verify(wrapped).as_json()
    assert report["result"] in (FAILED, INDETERMINATE)
    assert report["result"] == FAILED or _check(report, "format")[1] == "FORMAT_FAILURE"


def test_byte_range_that_does_not_reach_the_end(context: Context, verifier: Verifier) -> None:
    pdf = _seal(context)
    a, b, c, d, _ = _byte_range(pdf)
    shortened = _set_byte_range(pdf, (a, b, c, d - 50))
    report = verifier.verify(shortened).as_json()
    assert report["result"] == FAILED
    assert _check(report, "integrity")[0] == FAILED


@pytest.mark.parametrize("contents", [b"", b"00" * 10, b"30820100" + b"00" * 300, b"DEADBEEF" * 40])
def test_universal_forgery_contents(context: Context, verifier: Verifier, contents: bytes) -> None:
    pdf = _seal(context)
    match = re.search(rb"/Contents\s*<([0-9A-Fa-f]+)>", pdf)
    assert match is not None
    hole = match.end(1) - match.start(1)
    forged = pdf[: match.start(1)] + contents.ljust(hole, b"0")[:hole] + pdf[match.end(1) :]
    report = verifier.verify(forged).as_json()
    assert report["result"] in (FAILED, INDETERMINATE)
    assert (
        report["result"] == FAILED
        or report.get("code") == "FORMAT_FAILURE"
        or any(c["code"] == "FORMAT_FAILURE" for s in report["signatures"] for c in s["checks"])
    )


def test_shadow_attack_overlay_revealed_later(context: Context, verifier: Verifier) -> None:
    """Hidden content present before sealing (an unused XObject) made visible by a later update that
    rewrites the page's content to draw it: the signature stays intact, the change is caught."""
    base = make_pdf(["Approved: no"])
    writer = IncrementalPdfFileWriter(io.BytesIO(base))
    hidden = generic.StreamObject(
        {generic.NameObject("/Type"): generic.NameObject("/XObject"),
         generic.NameObject("/Subtype"): generic.NameObject("/Form"),
         generic.NameObject("/BBox"): generic.ArrayObject([generic.NumberObject(v) for v in (0, 0, 595, 842)])},
        stream_data=b"BT /F1 30 Tf 72 600 Td (Approved: YES) Tj ET",
    )  # fmt: skip
    writer.root["/HiddenOverlay"] = writer.add_object(hidden)
    writer.update_root()
    prepared = io.BytesIO()
    writer.write(prepared)
    sealed = _seal(context, prepared.getvalue())
    assert verifier.verify(sealed).result == PASSED
    revealed = _append_page_content(sealed, b"Approved: YES")
    report = verifier.verify(revealed).as_json()
    assert report["result"] == FAILED and _check(report, "modifications") == (FAILED, "MODIFIED_AFTER_SIGNING")


def test_impostor_root_with_the_same_name_and_key_id(context: Context, verifier: Verifier) -> None:
    """A self-made hierarchy copying our root's and regional CA's names and key identifiers."""
    from asn1crypto import keys, x509

    from ca import certificates as certs
    from gm import sm2

    real_root = context.ca.ca_certificate("cn-root-sm2")
    real_regional = context.ca.ca_certificate("cn-370000-sm2")
    fake_root_key, fake_regional_key, fake_leaf_key = (sm2.SM2PrivateKey.generate() for _ in range(3))

    def forge(template: x509.Certificate, key: sm2.SM2PublicKey, signer: sm2.SM2PrivateKey) -> x509.Certificate:
        tbs = template["tbs_certificate"].copy()
        tbs["subject_public_key_info"] = keys.PublicKeyInfo.load(key.spki_der())
        tbs["serial_number"] = certs.new_serial()
        signed = x509.Certificate(
            {
                "tbs_certificate": tbs,
                "signature_algorithm": template["signature_algorithm"],
                "signature_value": signer.sign(tbs.dump()),
            }
        )
        return x509.Certificate.load(signed.dump())

    fake_root = forge(real_root, fake_root_key.public_key, fake_root_key)
    fake_regional = forge(real_regional, fake_regional_key.public_key, fake_root_key)
    assert fake_root.key_identifier == real_root.key_identifier and fake_root.subject == real_root.subject
    # a document signed by a certificate from the impostor hierarchy, as an attacker would make it
    from asn1crypto import cms

    from signing.cms import CMSTemplate

    real = context.seals.for_signing("demo-370000-sm2", role="issuer", caller="t", caller_seal_ids=("*",))
    fake_leaf = forge(x509.Certificate.load(real.certificate), fake_leaf_key.public_key, fake_regional_key)
    template = CMSTemplate.for_seal(fake_leaf.dump(), [fake_regional.dump(), fake_root.dump()], "sm2", None)
    content = b"licence text"
    from gm.sm3 import sm3

    signed = template.build(sm3(content), datetime.now(UTC), fake_leaf_key.sign)
    assert cms.ContentInfo.load(signed)["content"]["signer_infos"][0]["sid"].chosen["serial_number"].native
    report = verifier.verify(signed, content=content).as_json()
    assert report["format"] == "cms" and report["result"] == INDETERMINATE
    assert _check(report, "signature") == (PASSED, "OK")  # the forgery is cryptographically sound...
    assert _check(report, "chain") == (INDETERMINATE, "NO_CERTIFICATE_CHAIN_FOUND")  # ...but leads nowhere trusted


def test_certificate_revoked_before_the_signing_time(context: Context, verifier: Verifier) -> None:
    from tests.verify.attackers import issue, seal_with

    holder = issue(context, "org-seal", "cn-530000-sm2")
    pdf = seal_with(holder, None, context.seals.get("demo-530000-sm2").picture_png)
    context.ca.revoke(holder.serial, "keyCompromise", actor="test", revoked_at=datetime.now(UTC) - timedelta(hours=1))
    report = verifier.verify(pdf).as_json()
    # no timestamp proves the signature older than the revocation: EN 319 102-1 says REVOKED_NO_POE
    assert report["result"] == INDETERMINATE and _check(report, "revocation") == (INDETERMINATE, "REVOKED_NO_POE")


def test_certificate_expired_at_the_signing_time(context: Context, verifier: Verifier) -> None:
    pdf = _seal(context, seal_id="demo-370000-p256")
    report = verifier.verify(pdf, at=datetime.now(UTC) + timedelta(days=4000)).as_json()
    assert report["result"] == INDETERMINATE and report["subindication"] == "OUT_OF_BOUNDS_NO_POE"
    assert _check(report, "chain") == (INDETERMINATE, "OUT_OF_BOUNDS_NO_POE")
    assert _check(report, "seal_validity") == (INDETERMINATE, "SEAL_EXPIRED")


def test_seal_used_outside_its_validity(context: Context, verifier: Verifier) -> None:
    pdf = _seal(context, seal_id="demo-370000-p256")
    report = verifier.verify(pdf, at=datetime.now(UTC) - timedelta(days=2)).as_json()
    assert report["result"] == INDETERMINATE  # `at` is a question, not a proof of when it was signed
    assert _check(report, "seal_validity") == (INDETERMINATE, "SEAL_EXPIRED")


def test_trust_list_with_a_bad_signature_or_stale_gives_no_trust(context: Context, verifier: Verifier) -> None:
    import copy

    from verify.trust import TrustListError

    document = context.verification.trust_list()
    forged = copy.deepcopy(document)
    forged["sequence"] = int(str(forged["sequence"])) + 100
    roots = [context.ca.ca_certificate("cn-root-sm2")]
    with pytest.raises(TrustListError) as error:
        TrustStore().add_list(forged, roots=roots)
    assert error.value.code == "TRUST_LIST_SIGNATURE_INVALID"
    stale = TrustStore()  # a stale list is loaded, but nothing resting on it is trusted (TRY_LATER)
    stale.add_list(document, roots=roots, now=datetime.now(UTC) + timedelta(days=3))
    late = Verifier(stale, context.verification.sources()).verify(_seal(context)).as_json()
    assert late["result"] == INDETERMINATE and _check(late, "chain") == (INDETERMINATE, "TRY_LATER")
    empty = Verifier(TrustStore(), context.verification.sources()).verify(_seal(context)).as_json()
    assert empty["result"] == INDETERMINATE and _check(empty, "chain")[1] == "NO_CERTIFICATE_CHAIN_FOUND"


def test_signature_value_flipped(context: Context, verifier: Verifier) -> None:
    pdf = _seal(context)
    reader = PdfFileReader(io.BytesIO(pdf))
    signature = reader.embedded_signatures[0].signer_info["signature"].native
    at = pdf.find(signature.hex().encode())
    if at < 0:
        at = pdf.find(signature.hex().upper().encode())
    assert at > 0
    flipped = pdf[:at] + (b"0" if pdf[at : at + 1] != b"0" else b"1") + pdf[at + 1 :]
    report = verifier.verify(flipped).as_json()
    assert report["result"] == FAILED and _check(report, "signature") == (FAILED, "SIG_CRYPTO_FAILURE")
