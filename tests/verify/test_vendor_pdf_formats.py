"""PDFs whose /Contents is not a plain RFC 5652 CMS, as some Chinese vendors write them: a bare
GB/T 38540 SES_Signature, or a CMS labelled with the GM/T 0010 signedData OID. Made here with pyHanko's
interrupted signing so the byte ranges are real; checked by our own rules over those ranges."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from asn1crypto import cms, core
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.signers.pdf_signer import PdfTBSDocument

from api.context import Context
from gm import der, oids, ses
from seal.demo import create_demo_seals
from signing.cms import CMSTemplate
from signing.pdf import Placement, SealSigner
from signing.service import Caller
from tests.fixtures import make_pdf
from verify.cms import _tlv
from verify.report import FAILED, PASSED

SEAL = "demo-370000-sm2"


def _pdf_with_contents(context: Context, build: Callable[[bytes], bytes], pdf: bytes | None = None) -> bytes:
    """Lay out a signature field with pyHanko (in `pdf`, default make_pdf()); /Contents is whatever
    `build(document_sm3)` returns."""
    material = context.seals.for_signing(SEAL, role="issuer", caller="t", caller_seal_ids=("*",))
    signer = SealSigner(material.handle, material.certificate)
    meta = signers.PdfSignatureMetadata(field_name="VendorSeal", md_algorithm="sm3")
    pdf_signer = signers.PdfSigner(meta, signer=signer, new_field_spec=fields.SigFieldSpec("VendorSeal"))
    out = io.BytesIO()

    async def go() -> None:
        prepared, _, output = await pdf_signer.async_digest_doc_for_signing(
            IncrementalPdfFileWriter(io.BytesIO(pdf or make_pdf())), bytes_reserved=80_000, output=out
        )
        await PdfTBSDocument.async_finish_signing(output, prepared, build(prepared.document_digest))

    asyncio.run(go())
    return out.getvalue()


@pytest.fixture(scope="module")
def seal_material(context: Context) -> object:
    create_demo_seals(context.seals, actor="test")
    return context.seals.for_signing(SEAL, role="issuer", caller="t", caller_seal_ids=("*",))


def _checks(report: dict[str, object]) -> dict[str, tuple[str, str]]:
    signature = report["signatures"][0]  # type: ignore[index]
    return {c["name"]: (c["status"], c["code"]) for c in signature["checks"]}


def test_bare_ses_signature_in_contents(context: Context, seal_material: object) -> None:
    material = context.seals.for_signing(SEAL, role="issuer", caller="t", caller_seal_ids=("*",))

    def build(digest: bytes) -> bytes:
        tbs = ses.build_tbs_sign(seal_der=material.seal.esl_der, time_info=datetime.now(UTC).replace(microsecond=0),
                                 data_hash=digest, property_info="licence.pdf")  # fmt: skip
        return ses.assemble_ses_signature(tbs, material.certificate, material.handle.sign(tbs))

    pdf = _pdf_with_contents(context, build)
    report = context.verification.verifier().verify(pdf).as_json()
    checks = _checks(report)
    assert checks["format"] == (PASSED, "OK") and checks["signature"] == (PASSED, "OK")
    assert checks["integrity"] == (PASSED, "OK") and checks["seal"] == (PASSED, "OK")
    assert checks["chain"] == (PASSED, "OK") and report["result"] == PASSED, report
    at = pdf.index(b"Business licence")
    tampered = context.verification.verifier().verify(pdf[:at] + b"X" + pdf[at + 1 :]).as_json()
    assert _checks(tampered)["integrity"] == (FAILED, "DATA_HASH_FAILURE")


def test_cms_with_the_gm_t_0010_content_type(context: Context, seal_material: object) -> None:
    material = context.seals.for_signing(SEAL, role="issuer", caller="t", caller_seal_ids=("*",))
    template = CMSTemplate.for_seal(material.certificate, material.chain, "sm2", material.seal.esl_der)

    def build(digest: bytes) -> bytes:
        standard = template.build(digest, datetime.now(UTC), material.handle.sign)
        _, start, _ = _tlv(standard, 0)
        _, _, oid_end = _tlv(standard, start)  # keep the [0] EXPLICIT SignedData, swap the OID before it
        relabelled = der.sequence(core.ObjectIdentifier(oids.GM_SIGNED_DATA).dump(), standard[oid_end:])
        assert cms.ContentInfo.load(standard)["content_type"].native == "signed_data"
        return relabelled

    pdf = _pdf_with_contents(context, build)
    report = context.verification.verifier().verify(pdf).as_json()
    checks = _checks(report)
    assert checks["format"][0] == PASSED and "GM/T 0010" in str(report)
    assert checks["integrity"] == (PASSED, "OK") and checks["signature"] == (PASSED, "OK")
    assert checks["chain"] == (PASSED, "OK"), report
    at = pdf.index(b"Business licence")
    tampered = context.verification.verifier().verify(pdf[:at] + b"X" + pdf[at + 1 :]).as_json()
    assert _checks(tampered)["integrity"] == (FAILED, "HASH_FAILURE")


def test_garbage_contents_is_a_format_failure(context: Context, seal_material: object) -> None:
    pdf = _pdf_with_contents(context, lambda digest: b"\x30\x03\x02\x01\x00")
    report = context.verification.verifier().verify(pdf).as_json()
    assert report["result"] == FAILED and _checks(report)["format"][1] == "FORMAT_FAILURE"


def _bare_ses_pdf(context: Context, pdf: bytes | None = None) -> bytes:
    material = context.seals.for_signing(SEAL, role="issuer", caller="t", caller_seal_ids=("*",))

    def build(digest: bytes) -> bytes:
        tbs = ses.build_tbs_sign(seal_der=material.seal.esl_der, time_info=datetime.now(UTC).replace(microsecond=0),
                                 data_hash=digest, property_info="licence.pdf")  # fmt: skip
        return ses.assemble_ses_signature(tbs, material.certificate, material.handle.sign(tbs))

    return _pdf_with_contents(context, build, pdf)


def test_vendor_signature_then_a_later_seal_is_not_a_suspicious_change(context: Context, seal_material: object) -> None:
    caller = Caller(role="issuer", name="t", seal_ids=("*",))
    vendor = _bare_ses_pdf(context)
    assert _checks(context.verification.verifier().verify(vendor).as_json())["modifications"] == (PASSED, "OK")
    twice = context.signing.seal_pdf(vendor, seal_id="demo-530000-sm2", caller=caller, placement=Placement()).pdf
    report = context.verification.verifier().verify(twice).as_json()
    assert len(report["signatures"]) == 2
    first = {c["name"]: (c["status"], c["code"]) for c in report["signatures"][0]["checks"]}
    assert first["modifications"] == (PASSED, "LATER_SIGNATURES_ONLY"), report
    assert report["result"] == PASSED, report


def test_vendor_signature_then_changed_page_content_is_caught(context: Context, seal_material: object) -> None:
    vendor = _bare_ses_pdf(context)
    writer = IncrementalPdfFileWriter(io.BytesIO(vendor))
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    page["/Contents"] = writer.add_object(generic.StreamObject(stream_data=b"BT /F1 24 Tf 72 400 Td (VOID) Tj ET"))
    writer.update_container(page)
    out = io.BytesIO()
    writer.write(out)
    report = context.verification.verifier().verify(out.getvalue()).as_json()
    checks = _checks(report)
    assert checks["integrity"] == (PASSED, "OK")  # the signed revision itself is intact
    assert checks["modifications"] == (FAILED, "MODIFIED_AFTER_SIGNING")
    assert report["result"] == FAILED


def test_vendor_signature_dictionary_rewritten_by_a_later_update(context: Context, seal_material: object) -> None:
    """An incremental update that redefines the signature dictionary itself (same /Contents and
    /ByteRange, another /Reason): the dictionary now lives in a revision the signed bytes do not end
    with, so the later revision cannot be excused as an addition."""
    vendor = _bare_ses_pdf(context)
    writer = IncrementalPdfFileWriter(io.BytesIO(vendor))
    field = next(f.get_object() for f in writer.root["/AcroForm"]["/Fields"] if f.get_object().get("/V"))
    signature = field.raw_get("/V")
    value = signature.get_object()
    value["/Reason"] = generic.TextStringObject("approved by the director")
    writer.mark_update(signature)
    out = io.BytesIO()
    writer.write(out)
    report = context.verification.verifier().verify(out.getvalue()).as_json()
    checks = _checks(report)
    assert checks["integrity"] == (PASSED, "OK"), report  # the signed bytes are untouched
    assert checks["modifications"] == (FAILED, "MODIFIED_AFTER_SIGNING"), report
    assert report["result"] == FAILED
