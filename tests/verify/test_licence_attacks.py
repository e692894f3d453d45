"""Attacks on the licence a sealed PDF claims (issue 10, fail-opens 6 and 7), on both PDF paths.

The licence identifier and everything about it come from the XMP of the revision a signature covers;
a later revision that changes, drops or adds licence metadata is a modification; the identifier's
issuer segment must be the signer's organisation. The fast path (verify/pdf_fast.py) must decline
every attacked document (it never reports a failure) and the full path must say FAILED.
"""

from __future__ import annotations

import io
import itertools
from typing import Any

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import BasePdfFileWriter

from api.context import Context
from policies.uscc import check_character
from seal.demo import create_demo_seals
from signing.licences import LicenceRequest, xmp
from signing.pdf import Placement, seal_pdf
from signing.service import Caller
from tests.fixtures import make_pdf
from tests.verify.test_pdf_fast import _fast
from tests.verify.test_pdf_fast_attacks import _append_table, _catalog_with, _last_body
from tests.verify.test_vendor_pdf_formats import _bare_ses_pdf
from verify.pdf import PdfVerifier
from verify.report import FAILED, PASSED, Report
from verify.x509_fast import Unsupported

CALLER = Caller(role="issuer", name="licence-system", seal_ids=("*",))
SHANDONG = "11370000MB00000015"  # the demo seals demo-370000-* belong to it
BANK = "91370000MA3C00000" + check_character("91370000MA3C00000")  # another organisation's USCC
_numbers = itertools.count(1)


@pytest.fixture(scope="module")
def verifiers(context: Context) -> tuple[PdfVerifier, PdfVerifier]:
    create_demo_seals(context.seals, actor="test")
    fast = context.verification.verifier().pdf
    return fast, PdfVerifier(fast.trust, fast.sources, fast=False)


def _request(issuer: str = SHANDONG, type_code: str | None = None) -> LicenceRequest:
    return LicenceRequest.from_json(
        {
            "type_code": type_code or issuer + "001",
            "type_name": "营业执照",
            "number": f"ATTACK-{next(_numbers)}",
            "holder": {"name": "王五", "id": "370102199001011234", "id_type": "resident_id"},
            "issuer": {"name": "济南市市场监督管理局", "uscc": issuer},
            "issue_date": "2026-11-22",
        }
    )


def _sealed(context: Context, licence: LicenceRequest | None, level: str = "B-T", pdf: bytes | None = None,
            seal_id: str = "demo-370000-sm2") -> bytes:  # fmt: skip
    return context.signing.seal_pdf(
        pdf or make_pdf(), seal_id=seal_id, caller=CALLER, placement=Placement(), level=level, licence=licence
    ).pdf


def _xmp_of(licence: LicenceRequest) -> bytes:
    return xmp(licence, f"http://127.0.0.1:8000/v1/licences/{licence.identifier}/status")


def _unnamed(licence: LicenceRequest) -> bytes:
    """The licence's XMP without its dc:identifier."""
    return _xmp_of(licence).replace(b"<dc:identifier>%s</dc:identifier>" % licence.identifier.encode(), b"")


def _stream(packet: bytes) -> bytes:
    return b"<< /Type /Metadata /Subtype /XML /Length %d >>\nstream\n%s\nendstream" % (len(packet), packet)


def _metadata_number(data: bytes) -> int:
    ref = PdfFileReader(io.BytesIO(data), strict=False).root.raw_get("/Metadata")
    return int(ref.idnum)


def _catalog_without_metadata(data: bytes) -> bytes:
    body = _last_body(data, 1)
    start = body.index(b"/Metadata")
    end = body.index(b"R", start) + 1
    return body[:start] + body[end:]


def _both(verifiers: tuple[PdfVerifier, PdfVerifier], data: bytes) -> Report:
    """The full path's report, after proving that the fast path declines the document."""
    fast, full = verifiers
    with pytest.raises(Unsupported):
        _fast(fast, data)
    report = full.verify(data)
    assert fast.verify(data).as_json() == report.as_json()
    return report


def _checks(report: Report, index: int = 0) -> dict[str, tuple[str, str, str]]:
    return {c.name: (c.status, c.code, c.detail) for c in report.signatures[index].checks}


def _revoked_and_valid(context: Context, level: str = "B-T") -> tuple[bytes, LicenceRequest, LicenceRequest]:
    """A document sealed as licence A, then revoked; licence B of the same issuer, valid."""
    a, b = _request(), _request()
    sealed = _sealed(context, a, level)
    _sealed(context, b)
    context.signing.licences.set_status(a.identifier, "03", "withdrawn", role="officer", caller="test")
    return sealed, a, b


SWAPS = {
    "the metadata stream rewritten": lambda d, b: _append_table(d, [(_metadata_number(d), _stream(_xmp_of(b)))]),
    "a new metadata stream": lambda d, b: _append_table(
        d, [(90, _stream(_xmp_of(b))), (1, _catalog_without_metadata(d)[:-2] + b"/Metadata 90 0 R\n>>")]
    ),
    "XMP without identifier": lambda d, b: _append_table(d, [(_metadata_number(d), _stream(_unnamed(b)))]),
    "the metadata stream removed": lambda d, b: _append_table(d, [(1, _catalog_without_metadata(d))]),
}


@pytest.mark.parametrize("level", ["B-T", "B-LT"])
@pytest.mark.parametrize("swap", SWAPS, ids=list(SWAPS))
def test_a_later_revision_cannot_change_the_licence(
    context: Context, verifiers: tuple[PdfVerifier, PdfVerifier], swap: str, level: str
) -> None:
    sealed, a, b = _revoked_and_valid(context, level)
    attacked = SWAPS[swap](sealed, b)
    report = _both(verifiers, attacked)
    checks = _checks(report)
    assert report.result == FAILED
    status, code, detail = checks["modifications"]
    assert (status, code) == (FAILED, "MODIFIED_AFTER_SIGNING") and "licence metadata changed" in detail
    # the licence judged is the one signed: A, revoked (never B, never none)
    assert checks["licence_status"][:2] == (FAILED, "LICENCE_REVOKED") and a.identifier in checks["licence_status"][2]


def test_a_licence_cannot_be_added_to_a_sealed_document(
    context: Context, verifiers: tuple[PdfVerifier, PdfVerifier]
) -> None:
    b = _request()
    _sealed(context, b)
    sealed = _sealed(context, None)
    attacked = _append_table(sealed, [(90, _stream(_xmp_of(b))), (1, _catalog_with(sealed, b"/Metadata 90 0 R"))])
    report = _both(verifiers, attacked)
    checks = _checks(report)
    assert report.result == FAILED and checks["modifications"][:2] == (FAILED, "MODIFIED_AFTER_SIGNING")
    assert "licence_status" not in checks  # nothing about a licence was signed


def _with_foreign_licence(context: Context, licence: LicenceRequest, packet: bytes | None = None) -> bytes:
    """What fail-open 7 produced: the Shandong seal over a document whose XMP names `licence` (another
    organisation's), registered as valid (made below the service, which now refuses to)."""
    material = context.seals.for_signing("demo-370000-sm2", role="issuer", caller="x", caller_seal_ids=("*",))
    sealed = seal_pdf(make_pdf(), handle=material.handle, certificate=material.certificate, chain=material.chain,
                      seal_der=material.seal.esl_der, picture_png=material.seal.picture_png, placement=Placement(),
                      xmp=packet or _xmp_of(licence))  # fmt: skip
    with context.db.session() as session:
        context.signing.licences.insert(
            session, licence, seal_id="demo-370000-sm2", owner="x", actor="test", document_sm3="0"
        )
    return sealed.pdf


def test_a_licence_of_another_organisation_fails(context: Context, verifiers: tuple[PdfVerifier, PdfVerifier]) -> None:
    foreign = _request(BANK)
    data = _with_foreign_licence(context, foreign)
    assert context.verification.verifier().pdf.sources.licence_status(foreign.identifier) == "01"
    report = _both(verifiers, data)
    status, code, detail = _checks(report)["licence_status"]
    assert report.result == FAILED and (status, code) == (FAILED, "LICENCE_ISSUER_MISMATCH")
    assert BANK in detail and SHANDONG in detail


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda p, i: p.replace(i.encode(), i[:-1].encode() + (b"0" if i[-1] != "0" else b"1")), "LICENCE_ID_INVALID"),
        (lambda p, i: p.replace(b"<ecl:issuerCode>" + SHANDONG.encode(), b"<ecl:issuerCode>" + BANK.encode()),
         "LICENCE_ID_INVALID"),
        (lambda p, i: p.replace(b"</dc:identifier>", b"</dc:identifier><dc:identifier>%s</dc:identifier>"
                                % i.replace(".001.", ".002.").encode()), "LICENCE_ID_INVALID"),
        (lambda p, i: p.replace(b"</rdf:RDF>", b""), "LICENCE_ID_INVALID"),
    ],
    ids=["check character", "issuer code field", "two identifiers", "unparseable"],
)  # fmt: skip
def test_signed_licence_metadata_that_does_not_hold_together(
    context: Context, verifiers: tuple[PdfVerifier, PdfVerifier], change: Any, code: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    # pyHanko would merge its fields into the packet (and refuse what it cannot parse): keep it verbatim
    monkeypatch.setattr(BasePdfFileWriter, "_update_meta", lambda self: None)
    licence = _request()
    data = _with_foreign_licence(context, licence, change(_xmp_of(licence), licence.identifier))
    report = _both(verifiers, data)
    assert report.result == FAILED and _checks(report)["licence_status"][:2] == (FAILED, code)


@pytest.mark.parametrize("level", ["B-B", "B-T", "B-LT"])
def test_a_valid_licence_passes_on_both_paths(
    context: Context, verifiers: tuple[PdfVerifier, PdfVerifier], level: str
) -> None:
    fast, full = verifiers
    licence = _request()
    data = _sealed(context, licence, level)
    report = full.verify(data)
    assert report.result == PASSED, report.as_json()
    checks = _checks(report)
    assert checks["licence_status"] == (PASSED, "OK", f"{licence.identifier} valid")
    # (a DSS update rewrites the XMP, as pyHanko does on every incremental save: the claim stays)
    assert fast.verify(data).as_json() == report.as_json() and fast.fast_declined == ""


def test_each_signature_judges_its_own_signed_revision(
    context: Context, verifiers: tuple[PdfVerifier, PdfVerifier]
) -> None:
    """Licence A sealed, then swapped to B in an unsigned revision, then sealed again (B signed by the
    second seal): the first seal's licence stays A (revoked) and the swap is its modification."""
    sealed, a, b = _revoked_and_valid(context)
    swapped = SWAPS["the metadata stream rewritten"](sealed, b)
    twice = _sealed(context, None, pdf=swapped, seal_id="demo-370000-p256")
    report = _both(verifiers, twice)
    first, second = _checks(report, 0), _checks(report, 1)
    assert first["licence_status"][:2] == (FAILED, "LICENCE_REVOKED") and a.identifier in first["licence_status"][2]
    assert first["modifications"][:2] == (FAILED, "MODIFIED_AFTER_SIGNING")
    assert second["licence_status"] == (PASSED, "OK", f"{b.identifier} valid")
    assert second["modifications"][:2] == (PASSED, "OK")


def test_a_vendor_signature_judges_the_licence_it_signed(
    context: Context, verifiers: tuple[PdfVerifier, PdfVerifier]
) -> None:
    """A bare SES_Signature in /Contents (some vendors): the licence of its signed revision is judged,
    and a later revision naming another licence is a modification, as for CMS signatures."""
    a, b = _request(), _request()
    _sealed(context, a)  # registers A
    _sealed(context, b)
    unsigned = make_pdf()
    with_a = _append_table(unsigned, [(90, _stream(_xmp_of(a))), (1, _catalog_with(unsigned, b"/Metadata 90 0 R"))])
    vendor = _bare_ses_pdf(context, with_a)
    _, full = verifiers
    checks = _checks(full.verify(vendor))
    assert checks["licence_status"] == (PASSED, "OK", f"{a.identifier} valid")
    context.signing.licences.set_status(a.identifier, "03", "withdrawn", role="officer", caller="test")
    swapped = SWAPS["the metadata stream rewritten"](vendor, b)
    report = _both(verifiers, swapped)
    checks = _checks(report)
    assert report.result == FAILED and checks["modifications"][:2] == (FAILED, "MODIFIED_AFTER_SIGNING")
    assert checks["licence_status"][:2] == (FAILED, "LICENCE_REVOKED")


def test_a_co_seal_by_another_organisation_is_not_the_licence_issuer(
    context: Context, verifiers: tuple[PdfVerifier, PdfVerifier]
) -> None:
    """The second seal's signed revision still names the first organisation's licence (pyHanko keeps
    the XMP): that licence is not the second signer's to vouch for."""
    licence = _request()
    first = _sealed(context, licence)
    twice = _sealed(context, None, pdf=first, seal_id="demo-530000-sm2")
    report = _both(verifiers, twice)
    assert _checks(report, 0)["licence_status"][:2] == (PASSED, "OK")
    assert _checks(report, 0)["modifications"][:2] == (PASSED, "LATER_SIGNATURES_ONLY")
    assert _checks(report, 1)["licence_status"][:2] == (FAILED, "LICENCE_ISSUER_MISMATCH")
