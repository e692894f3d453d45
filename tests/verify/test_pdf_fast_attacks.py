"""Attacks on the fast PDF path (verify/pdf_fast.py and its readers verify/pdf_structure.py, verify/x509_fast.py):
each document is crafted here, and the fast path must decline it (raise Unsupported, so the full path
decides). Where the full path, or a PDF viewer, sees a modified, forged or untrusted document, the
verdict must not be PASSED. Where the full path passes a document the fast path declines (harmless to
pyHanko's analysis, or a weakness of the full path itself, marked xfail), declining is what is asserted.

tests/conftest.py checks every report the fast path makes against the full path's, so an attack the
fast path wrongly accepted would also fail there. Certificate, CRL and OCSP edge cases use a small
SM2 hierarchy made here (`Lab`), trusted as an explicit anchor; the documents are sealed PDFs whose CMS
is replaced (`_put_cms`: the byte range is untouched, only the unsigned /Contents hole changes).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import shutil
import subprocess
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asn1crypto import algos, core, tsp, x509
from asn1crypto import cms as asn1_cms
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp

import gm.asn1  # noqa: F401  (SM2 / SM3 names for asn1crypto)
from api.context import Context
from gm import der, oids, sm2
from gm.sm3 import sm3
from seal.demo import create_demo_seals
from signing.cms import attribute
from signing.pdf import Placement
from signing.service import Caller
from tests.fixtures import make_pdf
from tests.verify.test_fetch_revocation import online  # noqa: F401  (a live service for fetching)
from tests.verify.test_pdf_fast import _fast
from verify.pdf import PdfVerifier
from verify.pdf_structure import PdfFile, StructureError
from verify.report import FAILED, INDETERMINATE, PASSED, SKIPPED, Report
from verify.sources import Sources
from verify.trust import TrustStore
from verify.x509_fast import Unsupported

CALLER = Caller(role="issuer", name="test", seal_ids=("*",))
EVIL = b"<< /Length 40 >>\nstream\nBT /F1 30 Tf 72 500 Td (APPROVED) Tj ET\nendstream"


@pytest.fixture(scope="module")
def pdf_verifier(context: Context) -> PdfVerifier:
    create_demo_seals(context.seals, actor="test")
    return context.verification.verifier().pdf


def _sealed(context: Context, level: str = "B-LT", pdf: bytes | None = None, seal_id: str = "demo-370000-sm2") -> bytes:
    return context.signing.seal_pdf(
        pdf or make_pdf(), seal_id=seal_id, caller=CALLER, placement=Placement(), level=level
    ).pdf


def _declined(verifier: PdfVerifier, data: bytes, reason: str) -> Report:
    """The fast path refuses `data` for `reason`; the report is then the full path's."""
    with pytest.raises(Unsupported, match=reason):
        _fast(verifier, data)
    report = verifier.verify(data)
    assert verifier.fast_declined
    assert _timeless(report.as_json()) == _timeless(verifier.full(data).as_json())
    return report


def _timeless(report: dict[str, Any]) -> str:
    """The report without the clock's reading: pyHanko's staleness messages name the validation time
    (now), which moves between two verifications of one document."""
    return re.sub(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d\.\d+\+00:00", "<now>", json.dumps(report, sort_keys=True))


def _check(report: Report, name: str) -> tuple[str, str]:
    found = next(c for s in report.signatures for c in s.checks if c.name == name)
    return found.status, found.code


def _viewer_text(data: bytes) -> str | None:
    """What poppler's pdftotext reads on the pages (None without poppler)."""
    if shutil.which("pdftotext") is None:
        return None
    done = subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, timeout=60, check=False)
    return done.stdout.decode("utf-8", "replace")


# ---- raw incremental updates --------------------------------------------------------------------------
def _startxref(data: bytes) -> int:
    return int(re.findall(rb"startxref\s+(\d+)\s+%%EOF", data)[-1])


def _size(data: bytes) -> int:
    return max(int(x) for x in re.findall(rb"/Size (\d+)", data))


Entry = tuple[int, int | str, int]  # num, offset (or "xref": the xref section's own offset), gen


def _append_table(
    data: bytes,
    objects: list[tuple[int, bytes]],
    *,
    entries: list[Entry] | None = None,
    before_xref: bytes = b"",
    trailer: bytes = b"",
    info: bytes = b"6 0 R",
    after: bytes = b"",
    keywords: tuple[bytes, bytes] = (b"obj", b"endobj"),
) -> bytes:
    """`data` plus a classic incremental update writing `objects` (num, body) with generation 0."""
    out = bytearray(data if data.endswith(b"\n") else data + b"\n")
    offsets = {}
    for num, body in objects:
        offsets[num] = len(out)
        out += b"%d 0 %s\n%s\n%s\n" % (num, keywords[0], body, keywords[1])
    out += before_xref
    xref_at = len(out)
    listed = entries if entries is not None else [(num, offsets[num], 0) for num, _ in objects]
    out += b"xref\n0 1\n0000000000 65535 f \n"
    for num, offset, gen in listed:
        out += b"%d 1\n%010d %05d n \n" % (num, xref_at if isinstance(offset, str) else offset, gen)
    size = max(_size(data), *(num + 1 for num, _, _ in listed))
    out += b"trailer\n<< /Size %d /Root 1 0 R /Info %s /Prev %d%s >>\n" % (size, info, _startxref(data), trailer)
    out += b"startxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out) + after


def _append_stream(
    data: bytes, objects: list[tuple[int, bytes]], *, number: int | None = None, tail: bytes = b""
) -> bytes:
    """`data` plus an incremental update with an xref stream (object `number`, listing itself); `tail`
    is appended to the stream's rows (readers ignore bytes past the rows /Index announces)."""
    out = bytearray(data if data.endswith(b"\n") else data + b"\n")
    rows = []
    for num, body in objects:
        rows.append((num, len(out)))
        out += b"%d 0 obj\n%s\nendobj\n" % (num, body)
    xref_at = len(out)
    number = number if number is not None else max(_size(data), *(num + 1 for num, _ in objects))
    rows = sorted([*rows, (number, xref_at)])
    raw = zlib.compress(b"".join(b"\x01" + off.to_bytes(4, "big") + b"\x00\x00" for _, off in rows) + tail)
    index = b" ".join(b"%d 1" % num for num, _ in rows)
    size = max(_size(data), *(num + 1 for num, _ in rows))
    out += (
        b"%d 0 obj\n<< /Type /XRef /W [1 4 2] /Filter /FlateDecode /Root 1 0 R /Info 6 0 R /Size %d /Prev %d "
        b"/Index [%s] /Length %d >>\nstream\n" % (number, size, _startxref(data), index, len(raw))
    )
    out += raw + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def _page(entries: bytes) -> bytes:
    """make_pdf()'s page (object 5) with other /Contents and extra `entries`."""
    return (
        b"<< /Type /Page /MediaBox [ 0 0 595 842 ] /Resources << /Font << /F1 3 0 R >> >> /Parent 2 0 R %s >>" % entries
    )


def _last_body(data: bytes, num: int) -> bytes:
    return [m for m in re.finditer(rb"\n%d 0 obj\n(.*?)\nendobj" % num, data, re.S)][-1].group(1)


# ---- incremental saving, xref and trailer tricks ----------------------------------------------------------
def _classic_with_a_stray_page(stray: bytes) -> bytes:
    """A classic-xref original whose page content (object 4) has a second copy after it that no xref
    lists: invisible to a reader that follows the xref, found by one that rebuilds it by scanning."""

    def content(text: bytes) -> bytes:
        body = b"BT\n/F1 14 Tf\n1 0 0 1 72 780 Tm (%s) Tj\nET" % text
        return b"<< /Length %d >>\nstream\n%s\nendstream" % (len(body), body)

    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Count 1 /Kids [ 5 0 R ] >>",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>", content(b"Business licence page 1"),
               b"<< /Type /Page /MediaBox [ 0 0 595 842 ] /Contents 4 0 R /Resources << /Font << /F1 3 0 R >> >>"
               b" /Parent 2 0 R >>"]  # fmt: skip
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    out += b"4 0 obj\n%s\nendobj\n" % content(stray)
    xref = len(out)
    out += b"xref\n0 6\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size 6 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


@pytest.mark.parametrize("newlines", [1, 1100, 100_000])
def test_white_space_after_the_last_eof_that_hides_it_from_repairing_readers(
    context: Context, pdf_verifier: PdfVerifier, newlines: int
) -> None:
    """Found in review: the fast path took any white space after the last %%EOF. Appended newlines push
    %%EOF out of the window readers search (pyHanko 1 KB; qpdf and poppler then rebuild the xref by
    scanning and show the stray "forged" page that no xref lists)."""
    sealed = _sealed(context, "B-B", pdf=_classic_with_a_stray_page(b"FORGED: licence withdrawn"))
    assert pdf_verifier.verify(sealed).result == PASSED and pdf_verifier.fast_declined == ""
    report = _declined(pdf_verifier, sealed + b"\n" * newlines, "after the last")
    assert report.result != PASSED or newlines == 1, report.as_json()  # one newline: pyHanko reads a later change
    if newlines == 1:
        assert _check(report, "modifications")[1] == "LATER_SIGNATURES_ONLY"


def test_many_stray_startxref_lines_cost_no_more_than_reading_them() -> None:
    """Found in review: a per-revision forward search over junk `startxref` lines was quadratic (2 MB:
    12 s). Each revision's startxref is now the line right after its own xref section."""
    out = bytearray(b"%PDF-1.7\n")
    offsets: list[int] = []
    for index in range(100):
        offsets.append(len(out))
        prev = b" /Prev %d" % offsets[-2] if index else b""
        out += b"xref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size 1%s >>\n" % prev
    out += b"startxref 1 %%EOF\n" * 110_000
    out += b"".join(b"startxref\n%d\n%%%%EOF\n" % o for o in offsets)
    start = time.monotonic()
    with pytest.raises(StructureError, match="one after the other"):
        PdfFile(bytes(out))
    assert time.monotonic() - start < 2.0  # (a bound against quadratic work, not a speed target)


def test_an_xref_stream_numbered_as_the_page_content_stream(context: Context, pdf_verifier: PdfVerifier) -> None:
    """The update's xref stream is object 4, the page's content stream: viewers then draw the stream's
    data, here xref rows followed by text. The old reader skipped every entry at the xref's offset."""
    data = _append_stream(_sealed(context), [], number=4, tail=b"\nBT /F1 30 Tf 72 500 Td (APPROVED) Tj ET\n")
    report = _declined(pdf_verifier, data, "fill references")
    assert report.result == FAILED and _check(report, "modifications") == (FAILED, "MODIFIED_AFTER_SIGNING")
    # The viewer draws the xref rows as content: the signed page text is gone, and the added text shows
    # unless a random byte of the binary rows opens a string or comment that swallows it (CI saw that).
    shown = _viewer_text(data)
    assert shown is None or "Business licence" not in shown


def test_an_entry_aimed_at_the_xref_keyword_and_a_stray_redefinition(
    context: Context, pdf_verifier: PdfVerifier
) -> None:
    """Object 4's new entry points at the `xref` keyword (damaged: viewers rebuild the xref by scanning)
    and a stray `4 0 obj` no entry names sits in the update: the rebuilt xref takes it."""
    stray = b"4 0 obj\n" + EVIL + b"\nendobj\n"
    data = _append_table(_sealed(context), [], entries=[(4, "xref", 0)], before_xref=stray)
    report = _declined(pdf_verifier, data, "does not list exactly the objects")
    assert report.result != PASSED
    shown = _viewer_text(data)
    assert shown is None or "APPROVED" in shown


def test_an_object_listed_twice_in_one_xref_table(context: Context, pdf_verifier: PdfVerifier) -> None:
    sealed = _sealed(context) + b"\n"
    stray = b"4 0 obj\n" + EVIL + b"\nendobj\n"
    data = _append_table(sealed + stray, [], entries=[(4, len(sealed), 0), (4, "xref", 0)])
    assert _declined(pdf_verifier, data, "listed twice").result != PASSED


def test_a_dss_update_with_a_stray_object_or_comment(context: Context, pdf_verifier: PdfVerifier) -> None:
    """Bytes in an update that no xref entry accounts for are what a rebuilt xref finds: declined even
    when the xref itself is sound (the full path, reading the xref, passes these)."""
    sealed = _sealed(context)
    for extra in (b"4 0 obj\n" + EVIL + b"\nendobj\n", b"% a comment\n"):
        data = _append_table(sealed, [(90, b"<< >>")], before_xref=extra)
        _declined(pdf_verifier, data, "exactly the objects|bytes other than objects")


def test_a_new_objects_entry_aimed_at_another_objects_header(context: Context, pdf_verifier: PdfVerifier) -> None:
    sealed = _sealed(context) + b"\n"
    data = _append_table(sealed + b"4 0 obj\n" + EVIL + b"\nendobj\n", [], entries=[(90, len(sealed), 0)])
    _declined(pdf_verifier, data, "exactly the objects")


@pytest.mark.parametrize("writer", ["table", "stream"])
@pytest.mark.parametrize("level", ["B-B", "B-LT"])
def test_a_reference_prepared_before_sealing_is_filled_afterwards(
    context: Context, pdf_verifier: PdfVerifier, level: str, writer: str
) -> None:
    """A shadow attack: the document handed in for sealing draws a content stream that does not exist
    (60 0 R); after sealing, an update adds object 60 as a "new object". Viewers draw it."""
    page = _page(b"/Contents [ 4 0 R 60 0 R ]")
    prepared = _append_table(make_pdf(), [(5, page)])
    sealed = _sealed(context, level, prepared)
    assert pdf_verifier.verify(sealed).result == PASSED
    filled = (_append_table if writer == "table" else _append_stream)(sealed, [(60, EVIL)])
    _declined(pdf_verifier, filled, r"new objects \[60\] fill references")
    shown = _viewer_text(filled)
    assert shown is None or "APPROVED" in shown


def _with_object_stream(contents: bytes) -> bytes:
    """A one-page PDF whose page (5) and its /Contents array (9, `contents`) are compressed in object
    stream 6 (pyHanko rewrites the page when sealing, but not the array)."""
    out = bytearray(b"%PDF-1.7\n")
    page = _page(b"/Contents 9 0 R") + b"\n"
    objstm = b"5 0 9 %d\n" % len(page)
    objstm = b"%s%s%s" % (objstm, page, contents)
    first = objstm.index(b"<<")
    packed = zlib.compress(objstm)
    bodies = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Count 1 /Kids [ 5 0 R ] >>",
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        4: b"<< /Length 43 >>\nstream\nBT /F1 14 Tf 72 780 Td (Licence text) Tj ET\nendstream",
        6: b"<< /Type /ObjStm /N 2 /First %d /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream"
        % (first, len(packed), packed),
        8: b"<< /Producer (attack lab) >>",
    }
    offsets = {}
    for num, body in bodies.items():
        offsets[num] = len(out)
        out += b"%d 0 obj\n%s\nendobj\n" % (num, body)
    xref_at = len(out)
    rows = {
        0: (0, 0, 65535),
        5: (2, 6, 0),
        7: (1, xref_at, 0),
        9: (2, 6, 1),
        **{n: (1, o, 0) for n, o in offsets.items()},
    }
    raw = zlib.compress(b"".join(bytes([k]) + f.to_bytes(4, "big") + g.to_bytes(2, "big") for k, f, g in
                                 (rows[n] for n in range(10))))  # fmt: skip
    out += b"7 0 obj\n<< /Type /XRef /W [1 4 2] /Size 10 /Root 1 0 R /Info 8 0 R /Filter /FlateDecode "
    out += b"/Length %d >>\nstream\n%s\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % (len(raw), raw, xref_at)
    return bytes(out)


def test_a_prepared_reference_inside_an_object_stream(context: Context, pdf_verifier: PdfVerifier) -> None:
    """The same, with the reference to 60 0 R compressed in an object stream."""
    shown = _viewer_text(_with_object_stream(b"[ 4 0 R ]"))
    assert shown is None or "Licence text" in shown  # (the document is sound)
    prepared = _with_object_stream(b"[ 4 0 R 60 0 R ]")
    sealed = _sealed(context, "B-LT", prepared)
    assert pdf_verifier.verify(sealed).result == PASSED and pdf_verifier.fast_declined == ""
    assert b"60 0 R" not in sealed  # found only in the decoded object stream
    info = re.findall(rb"/Info (\d+ \d+ R)", sealed)[-1]
    filled = _append_table(sealed, [(60, EVIL)], info=info)
    _declined(pdf_verifier, filled, r"new objects \[60\] fill references")
    shown = _viewer_text(filled)
    assert shown is None or "APPROVED" in shown
    _fast(pdf_verifier, _append_table(sealed, [(61, EVIL)], info=info))  # an unreferenced new object is fine


@pytest.mark.parametrize("level", ["B-B", "B-LT"])
def test_the_full_path_also_catches_a_prepared_reference_filled_afterwards(
    context: Context, pdf_verifier: PdfVerifier, level: str
) -> None:
    """pyHanko's difference analysis clears "orphaned" new objects without asking whether the signed
    revision already referred to them; verify/pdf.py asks."""
    page = _page(b"/Contents [ 4 0 R 60 0 R ]")
    filled = _append_table(_sealed(context, level, _append_table(make_pdf(), [(5, page)])), [(60, EVIL)])
    report = pdf_verifier.full(filled).as_json()
    check = next(c for c in report["signatures"][0]["checks"] if c["name"] == "modifications")
    assert (check["status"], check["code"]) == (FAILED, "MODIFIED_AFTER_SIGNING") and "60" in check["detail"]
    assert pdf_verifier.verify(filled).result == FAILED


def test_the_info_entry_moved_onto_another_object(context: Context, pdf_verifier: PdfVerifier) -> None:
    """/Info redirected to an (empty) dictionary the page uses, which the update then rewrites."""
    page = _page(b"/Contents 4 0 R /AA 60 0 R")
    sealed = _sealed(context, "B-LT", _append_table(make_pdf(), [(5, page), (60, b"<< >>")]))
    data = _append_table(sealed, [(60, b"<< /Title (moved) >>")], info=b"60 0 R")
    report = _declined(pdf_verifier, data, "/Info moved")
    assert report.result == FAILED and _check(report, "modifications") == (FAILED, "MODIFIED_AFTER_SIGNING")


@pytest.mark.parametrize(("before", "after"), [(b"/HideToolbar true", b"/HideToolbar 1"),
                                               (b"/XYZ 0 842 1 ", b"/XYZ 0 842 true ")])  # fmt: skip
def test_a_catalog_value_that_changes_type(
    context: Context, pdf_verifier: PdfVerifier, before: bytes, after: bytes
) -> None:
    """Python's True == 1 made a rewritten catalog look unchanged."""
    catalog = b"<< /Type /Catalog /Pages 2 0 R /ViewerPreferences << /HideToolbar true >> "
    catalog += b"/OpenAction [ 5 0 R /XYZ 0 842 1 ] >>"
    sealed = _sealed(context, "B-LT", _append_table(make_pdf(), [(1, catalog)]))
    rewritten = _last_body(sealed, 1).replace(before, after)
    assert rewritten != _last_body(sealed, 1)
    report = _declined(pdf_verifier, _append_table(sealed, [(1, rewritten)]), "catalog keys changed")
    assert report.result == FAILED and _check(report, "modifications") == (FAILED, "MODIFIED_AFTER_SIGNING")


@pytest.mark.parametrize(("keywords", "harmless_to_full_path"), [((b"objX", b"endobj"), False),
                                                                  ((b"obj", b"endobjX"), True)])  # fmt: skip
def test_an_object_keyword_run_into_other_bytes(
    context: Context, pdf_verifier: PdfVerifier, keywords: tuple[bytes, bytes], harmless_to_full_path: bool
) -> None:
    """`6 0 objX` / `endobjX` are other keywords to a PDF parser; the old reader matched their prefix."""
    sealed = _sealed(context)
    data = _append_table(sealed, [(6, _last_body(sealed, 6))], keywords=keywords)
    report = _declined(pdf_verifier, data, "")
    assert (report.result == PASSED) == harmless_to_full_path


def _catalog_with(data: bytes, extra: bytes) -> bytes:
    return _last_body(data, 1)[:-2] + extra + b"\n>>"


def _free(data: bytes, num: int) -> bytes:
    out = _append_table(data, [(90, b"<< >>")])
    return out.replace(b"90 1\n", b"%d 1\n0000000000 00001 f \n90 1\n" % num, 1)


def _root_moved(data: bytes) -> bytes:
    out = _append_table(data, [(90, _last_body(data, 1))])
    return out.replace(b"/Root 1 0 R /Info 6 0 R /Prev", b"/Root 90 0 R /Info 6 0 R /Prev")


def _prev_skips_the_signed_revision(data: bytes) -> bytes:
    """The update's /Prev names the first revision's xref, not the signed one's."""
    first = int(re.findall(rb"startxref\s+(\d+)", data)[0])
    out = _append_table(data, [(90, b"<< >>")])
    head, tail = out[: len(data)], out[len(data) :]
    return head + tail.replace(b"/Prev %d >>" % _startxref(data), b"/Prev %d >>" % first)


@pytest.mark.parametrize(
    ("change", "reason", "harmless_to_full_path"),
    [
        (lambda d: _append_table(d, [(1, _catalog_with(d, b"/OpenAction [ 5 0 R /Fit ]"))]), "catalog keys", False),
        (lambda d: _append_table(d, [(90, b"<< >>"), (1, _catalog_with(d, b"/Perms << /DocMDP 90 0 R >>"))]),
         "certification", False),
        (lambda d: _append_table(d, [(90, b"<< /Fields [] >>"),
                                     (1, _last_body(d, 1).replace(b"/AcroForm 9 0 R", b"/AcroForm 90 0 R"))]),
         "not exactly one field", False),
        (lambda d: _append_table(d, [(5, _last_body(d, 5).replace(b"/Annots [ 10 0 R ]", b"/Annots [ 10 0 R 90 0 R ]")),
                                     (90, b"<< /Type /Annot /Subtype /Text /Rect [ 0 0 50 50 ] /Contents (hi) >>")]),
         "object 5 changed", False),
        (lambda d: _append_table(d, [(2, _last_body(d, 2).replace(b"/Count 1", b"/Count 2"))]), "object 2 changed",
         False),
        (lambda d: _free(d, 4), "freed or compressed", False),
        (lambda d: _append_table(d, [(90, b"<< >>")], trailer=b" /XRefStm 100"), "hybrid", False),
        (_prev_skips_the_signed_revision, "", False),
        (lambda d: _append_table(d, [(90, b"<< /Filter /Standard >>")], trailer=b" /Encrypt 90 0 R"),
         "encrypted|trailer keys", False),
        (_root_moved, "/Root moved", True),  # an identical catalog under another number: pyHanko lets it be
        (lambda d: d + b"\n4 0 obj\n" + EVIL + b"\nendobj\n", "after the last", True),  # ignored by pyHanko
    ],
    ids=["open action", "permissions", "another form", "an annotation", "the page tree", "an object freed",
         "hybrid trailer", "/Prev skipping the signed revision", "encryption", "/Root moved", "after %%EOF"],
)  # fmt: skip
def test_updates_that_are_not_dss_only(
    context: Context, pdf_verifier: PdfVerifier, change: Callable[[bytes], bytes], reason: str,
    harmless_to_full_path: bool,
) -> None:  # fmt: skip
    report = _declined(pdf_verifier, change(_sealed(context)), reason)
    assert (report.result == PASSED) == harmless_to_full_path, report.as_json()


# ---- revocation the fast path cannot see ---------------------------------------------------------------
def test_fetching_revocation_goes_to_the_full_path(online: Context) -> None:  # noqa: F811
    """The full path may fetch newer revocation material than a B-LT document embeds; the fast path only
    reads what it is given, so it must not answer for a verifier that fetches."""
    pdf = online.signing.seal_pdf(make_pdf(), seal_id="demo-370000-sm2", caller=CALLER, placement=Placement(),
                                  level="B-LT").pdf  # fmt: skip
    store = TrustStore()
    store.add_list(online.verification.trust_list(), roots=[online.ca.ca_certificate("cn-root-sm2")])
    verifier = PdfVerifier(store, Sources(fetch=True))
    with pytest.raises(Unsupported, match="fetching"):
        _fast(verifier, pdf)
    assert verifier.verify(pdf).result == PASSED and verifier.fast_declined
    serial = online.seals.get("demo-370000-sm2").certificate_serial
    online.ca.revoke_seal_certificate(
        serial, "demo-370000-sm2", "keyCompromise", actor="test", revoked_at=datetime.now(UTC) - timedelta(hours=1)
    )
    assert PdfVerifier(store, Sources(fetch=False)).verify(pdf).result == PASSED  # what the document carries
    fetching = PdfVerifier(store, Sources(fetch=True))  # (new Sources: nothing fetched before is reused)
    revoked = fetching.verify(pdf)
    assert fetching.fast_declined
    assert revoked.result == INDETERMINATE and _check(revoked, "revocation") == (INDETERMINATE, "REVOKED_NO_POE")


# ---- the timestamp -------------------------------------------------------------------------------------
def _contents(pdf: bytes) -> tuple[bytes, int, int]:
    """The CMS DER in /Contents and the hole (start, end) of its hex digits."""
    match = re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", pdf)
    assert match is not None
    b, c = int(match.group(2)), int(match.group(3))
    raw = bytes.fromhex(pdf[b + 1 : c - 1].decode())
    _, _, end = der.read(raw)
    return raw[:end], b + 1, c - 1


def _put_cms(pdf: bytes, cms_der: bytes) -> bytes:
    _, start, end = _contents(pdf)
    digits = cms_der.hex().encode()
    assert len(digits) <= end - start
    return pdf[:start] + digits.ljust(end - start, b"0") + pdf[end:]


def test_a_timestamp_token_taken_from_another_signature(context: Context, pdf_verifier: PdfVerifier) -> None:
    """A genuine token, by the trusted TSA, whose imprint is over another document's signature value."""
    first, second = _sealed(context, "B-T"), _sealed(context, "B-T")
    ours = asn1_cms.ContentInfo.load(_contents(first)[0])
    theirs = asn1_cms.ContentInfo.load(_contents(second)[0])
    token = theirs["content"]["signer_infos"][0]["unsigned_attrs"][0]["values"][0]
    ours["content"]["signer_infos"][0]["unsigned_attrs"] = asn1_cms.CMSAttributes(
        [{"type": "signature_time_stamp_token", "values": [token]}]
    )
    data = _put_cms(first, ours.dump(force=False))
    report = _declined(pdf_verifier, data, "imprint mismatch")
    # a transplanted timestamp proves nothing: validated now instead, and said so
    assert report.result == INDETERMINATE and _check(report, "signing_time") == (INDETERMINATE, "TIMESTAMP_FAILURE")


# ---- a hierarchy made here, for certificates, CRLs and OCSP responses -------------------------------------
NOW = datetime.now(UTC).replace(microsecond=0)
SM2_SM3 = algos.SignedDigestAlgorithm({"algorithm": "sm2_sm3"})
CONTENT_TYPE, MESSAGE_DIGEST, SIGNING_TIME = "1.2.840.113549.1.9.3", "1.2.840.113549.1.9.4", "1.2.840.113549.1.9.5"
ID_DATA = "1.2.840.113549.1.7.1"
UNKNOWN = "1.2.3.4.5.6.7"


def _oid(dotted: str) -> bytes:
    encoded: bytes = core.ObjectIdentifier(dotted).dump()
    return encoded


def _time(moment: datetime) -> x509.Time:
    return x509.Time(name="utc_time", value=moment)


@dataclass
class Node:
    name: str
    key: sm2.SM2PrivateKey
    cert: Any  # asn1crypto x509.Certificate

    @property
    def der(self) -> bytes:
        encoded: bytes = self.cert.dump()
        return encoded


def _key_id(key: sm2.SM2PrivateKey) -> bytes:
    return hashlib.sha1(key.public_key.spki()["public_key"].contents[1:], usedforsecurity=False).digest()


def _name(common_name: str, printable: bool = False) -> Any:
    return x509.Name.build({"country_name": "CN", "organization_name": "attack lab", "common_name": common_name},
                           use_printable=printable)  # fmt: skip


def _ext(name: str, value: Any, critical: bool = False) -> dict[str, Any]:
    return {"extn_id": name, "critical": critical, "extn_value": value}


def _raw_ext(dotted: str, critical: bytes | None, value: bytes) -> Any:
    flag = b"" if critical is None else b"\x01\x01" + critical
    return x509.Extension.load(der.sequence(_oid(dotted), flag, der.octet_string(value)))


def issue(
    name: str,
    issuer: Node | None = None,
    *,
    ca: bool = False,
    path_len: int | None = None,
    usage: set[str] | None = None,
    eku: list[str] | None = None,
    extra: tuple[Any, ...] = (),
    crl_dp: bool = True,
    ocsp: bool = False,
    valid_from: datetime | None = None,
    patch: Callable[[bytes], bytes] | None = None,
) -> Node:
    """A certificate for a fresh SM2 key; `patch` edits the TBSCertificate DER before it is signed."""
    key = sm2.SM2PrivateKey.generate()
    subject = _name(name)
    exts: list[Any] = []
    if ca:
        constraints: dict[str, Any] = {"ca": True}
        if path_len is not None:
            constraints["path_len_constraint"] = path_len
        exts += [_ext("basic_constraints", constraints, True),
                 _ext("key_usage", usage or {"key_cert_sign", "crl_sign"}, True)]  # fmt: skip
    else:
        exts.append(_ext("key_usage", usage or {"digital_signature", "non_repudiation"}, True))
    if eku:
        exts.append(_ext("extended_key_usage", eku))
    exts.append(_ext("key_identifier", _key_id(key)))
    if issuer is not None:
        exts.append(_ext("authority_key_identifier", {"key_identifier": _key_id(issuer.key)}))
        if crl_dp:
            url = x509.GeneralName(name="uniform_resource_identifier", value=f"http://lab.invalid/{issuer.name}.crl")
            exts.append(_ext("crl_distribution_points", [{"distribution_point": {"full_name": [url]}}]))
        if ocsp:
            url = x509.GeneralName(name="uniform_resource_identifier", value="http://lab.invalid/ocsp")
            exts.append(_ext("authority_information_access", [{"access_method": "ocsp", "access_location": url}]))
    exts += list(extra)
    tbs = x509.TbsCertificate({
        "version": "v3", "serial_number": secrets.randbits(100) | 1 << 90, "signature": SM2_SM3,
        "issuer": issuer.cert.subject if issuer else subject,
        "validity": {"not_before": _time(valid_from or NOW - timedelta(days=1)),
                     "not_after": _time(NOW + timedelta(days=365))},
        "subject": subject, "subject_public_key_info": key.public_key.spki(), "extensions": exts,
    }).dump()  # fmt: skip
    if patch is not None:
        tbs = patch(tbs)
    signed = der.sequence(tbs, SM2_SM3.dump(), der.bit_string((issuer.key if issuer else key).sign(tbs)))
    return Node(name, key, x509.Certificate.load(signed))


def make_crl(
    issuer: Node,
    revoked: tuple[int, ...] = (),
    *,
    extensions: list[Any] | None = None,
    issuer_name: Any = None,
    signer: sm2.SM2PrivateKey | None = None,
    next_update: datetime | None = None,
    patch: Callable[[bytes], bytes] | None = None,
) -> Any:
    entries = [{"user_certificate": s, "revocation_date": _time(NOW - timedelta(days=2))} for s in revoked]
    tbs = asn1_crl.TbsCertList({
        "version": "v2", "signature": SM2_SM3, "issuer": issuer_name or issuer.cert.subject,
        "this_update": _time(NOW - timedelta(hours=1)), "next_update": _time(next_update or NOW + timedelta(days=1)),
        "revoked_certificates": entries or None,
        "crl_extensions": extensions if extensions is not None else [{"extn_id": "crl_number", "extn_value": 1}],
    }).dump()  # fmt: skip
    if patch is not None:
        tbs = patch(tbs)
    signed = der.sequence(tbs, SM2_SM3.dump(), der.bit_string((signer or issuer.key).sign(tbs)))
    return asn1_crl.CertificateList.load(signed)


def make_ocsp(
    issuer: Node,
    cert: Node,
    *,
    good: bool = True,
    hash_name: str = "sha1",
    responder: Node | None = None,
    this_update: datetime | None = None,
    next_update: datetime | None = None,
    serial: Any = None,
) -> Any:
    """A basic OCSP response about `cert`, signed by `responder` (embedded) or by `issuer` itself."""
    signer = responder or issuer
    cert_id = {
        "hash_algorithm": {"algorithm": hash_name},
        "issuer_name_hash": hashlib.new(hash_name, issuer.cert.subject.dump()).digest(),
        "issuer_key_hash": hashlib.new(hash_name, issuer.cert.public_key["public_key"].contents[1:]).digest(),
        "serial_number": cert.cert.serial_number if serial is None else serial,
    }
    revoked = {"revocation_time": NOW - timedelta(days=2), "revocation_reason": "key_compromise"}
    status = asn1_ocsp.CertStatus(name="good", value=core.Null()) if good else asn1_ocsp.CertStatus(
        name="revoked", value=revoked)  # fmt: skip
    data = asn1_ocsp.ResponseData({
        "responder_id": asn1_ocsp.ResponderId(name="by_name", value=signer.cert.subject), "produced_at": NOW,
        "responses": [{"cert_id": cert_id, "cert_status": status,
                       "this_update": this_update or NOW - timedelta(minutes=5),
                       "next_update": next_update or NOW + timedelta(days=1)}],
    }).dump()  # fmt: skip
    certs = [der.explicit(0, der.sequence(responder.der))] if responder is not None else []
    basic = der.sequence(data, SM2_SM3.dump(), der.bit_string(signer.key.sign(data)), *certs)
    return asn1_ocsp.OCSPResponse({"response_status": "successful", "response_bytes": {
        "response_type": "basic_ocsp_response", "response": asn1_ocsp.BasicOCSPResponse.load(basic)}})  # fmt: skip


@dataclass
class Lab:
    """Root -> CA -> leaf; every certificate below the root names a CRL distribution point."""

    root: Node = field(default_factory=lambda: issue("lab root", ca=True))
    crls: list[Any] = field(default_factory=list)
    ocsps: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.ca = issue("lab ca", self.root, ca=True, path_len=0)
        self.crls = [make_crl(self.root), make_crl(self.ca)]

    def verifier(self) -> PdfVerifier:
        trust = TrustStore()
        trust.add_anchor(self.root.cert)
        return PdfVerifier(trust, Sources(revocation_lookup=lambda certs: (list(self.crls), list(self.ocsps))))


def _lab_cms(
    pdf: bytes,
    signer: Node,
    chain: list[Node],
    attributes: Callable[[list[bytes], bytes], list[bytes]] = lambda attrs, digest: attrs,
    *,
    digest: str = "sm3",
    digest_oid: str = oids.SM3,
    econtent: bytes | None = None,
) -> bytes:
    """The sealed `pdf` with its CMS replaced by one from `signer` (signed attributes: contentType,
    signingTime, messageDigest, then as `attributes` makes them)."""
    match = re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", pdf)
    assert match is not None
    a, b, c, d = (int(x) for x in match.groups())
    content = pdf[a:b] + pdf[c : c + d]
    value = sm3(content) if digest == "sm3" else hashlib.new(digest, content).digest()
    attrs = [attribute(CONTENT_TYPE, _oid(ID_DATA)), attribute(SIGNING_TIME, _time(NOW).chosen.dump()),
             attribute(MESSAGE_DIGEST, der.octet_string(value))]  # fmt: skip
    signed = b"".join(sorted(attributes(attrs, value)))
    digest_alg, signature_alg = der.sequence(_oid(digest_oid)), der.sequence(_oid(oids.SM2_WITH_SM3))
    sid = der.sequence(signer.cert.issuer.dump(), der.integer(signer.cert.serial_number))
    info = der.sequence(der.integer(1), sid, digest_alg, der.tlv(0xA0, signed), signature_alg,
                        der.octet_string(signer.key.sign(der.tlv(0x31, signed))))  # fmt: skip
    encap = der.sequence(_oid(ID_DATA), *([der.explicit(0, der.octet_string(econtent))] if econtent else []))
    certs = der.tlv(0xA0, signer.der + b"".join(n.der for n in chain))
    signed_data = der.sequence(der.integer(1), der.tlv(0x31, digest_alg), encap, certs, der.tlv(0x31, info))
    return _put_cms(pdf, der.sequence(_oid("1.2.840.113549.1.7.2"), der.tlv(0xA0, signed_data)))


@pytest.fixture(scope="module")
def unsealed(context: Context) -> bytes:
    """A sealed B-B document whose CMS the lab tests replace."""
    create_demo_seals(context.seals, actor="test")
    return _sealed(context, "B-B")


def test_the_lab_hierarchy_itself_takes_the_fast_path(unsealed: bytes) -> None:
    lab = Lab()
    leaf = issue("lab leaf", lab.ca, ocsp=True)
    lab.ocsps = [make_ocsp(lab.ca, leaf)]
    verifier = lab.verifier()
    assert verifier.verify(_lab_cms(unsealed, leaf, [lab.ca])).result == PASSED
    assert verifier.fast_declined == ""


# ---- signed attributes ----------------------------------------------------------------------------------
def _two_values(oid: str, *values: bytes) -> bytes:
    return der.sequence(_oid(oid), der.tlv(0x31, b"".join(sorted(values))))


def _ess_for(other: Node) -> bytes:
    encoded: bytes = tsp.SigningCertificateV2(
        {"certs": [{"hash_algorithm": {"algorithm": "sha256"}, "cert_hash": hashlib.sha256(other.der).digest()}]}
    ).dump()
    return encoded


@pytest.mark.parametrize(
    ("name", "attributes", "options", "reason"),
    [
        ("messageDigest twice", lambda a, d: [*a, attribute(MESSAGE_DIGEST, der.octet_string(bytes(32)))], {},
         "repeated"),
        ("messageDigest with two values", lambda a, d: [*a[:2], _two_values(MESSAGE_DIGEST, der.octet_string(d),
                                                                           der.octet_string(bytes(32)))], {},
         "several values"),
        ("no contentType", lambda a, d: a[1:], {}, "contentType"),
        ("no messageDigest", lambda a, d: a[:2], {}, "messageDigest"),
        ("contentType TSTInfo", lambda a, d: [attribute(CONTENT_TYPE, _oid("1.2.840.113549.1.9.16.1.4")), *a[1:]], {},
         "contentType"),
        ("SM2 over a SHA-256 digest", lambda a, d: a, {"digest": "sha256", "digest_oid": "2.16.840.1.101.3.4.2.1"},
         "algorithms"),
        ("encapsulated content", lambda a, d: a, {"econtent": b"another text"}, "encapsulated content"),
        ("ESS names another certificate", None, {}, "ESS certificate hash"),
        ("an unknown signed attribute", lambda a, d: [*a, attribute(UNKNOWN, b"\x05\x00")], {}, "unexpected signed"),
    ],
)  # fmt: skip
def test_signed_attribute_tricks(
    unsealed: bytes, name: str, attributes: Any, options: dict[str, Any], reason: str
) -> None:
    lab = Lab()
    leaf = issue("lab leaf", lab.ca)
    if attributes is None:
        other = issue("lab other", lab.ca)
        attributes = lambda a, d: [*a, attribute("1.2.840.113549.1.9.16.2.47", _ess_for(other))]  # noqa: E731
    data = _lab_cms(unsealed, leaf, [lab.ca], attributes, **options)
    report = _declined(lab.verifier(), data, reason)
    if name != "an unknown signed attribute":  # harmless to the full path
        assert report.result != PASSED, name


# ---- certificates -----------------------------------------------------------------------------------------
def _flag(value: bytes) -> Callable[[bytes], bytes]:
    """Re-encode the critical flag of the UNKNOWN extension (made DER TRUE)."""

    def patch(tbs: bytes) -> bytes:
        at = tbs.index(_oid(UNKNOWN)) + len(_oid(UNKNOWN))
        assert tbs[at : at + 3] == b"\x01\x01\xff"
        return tbs[:at] + b"\x01\x01" + value + tbs[at + 3 :]

    return patch


def _negative_path_length(tbs: bytes) -> bytes:
    at = tbs.index(b"\x30\x06\x01\x01\xff\x02\x01\x00")
    return tbs[:at] + b"\x30\x06\x01\x01\xff\x02\x01\xff" + tbs[at + 8 :]


def _excluding(name: str, critical: bool) -> Any:
    subtree = {"base": x509.GeneralName(name="directory_name", value=_name(name))}
    return x509.Extension({"extn_id": "name_constraints", "critical": critical,
                           "extn_value": {"excluded_subtrees": [subtree]}})  # fmt: skip


def _certificate_case(case: str) -> tuple[Lab, Node, list[Node]]:
    lab = Lab()
    unknown = _raw_ext(UNKNOWN, b"\xff", b"\x05\x00")
    if case == "unknown critical extension":
        return lab, issue("lab leaf", lab.ca, extra=(unknown,)), [lab.ca]
    if case == "unknown extension critical as BER TRUE":
        return lab, issue("lab leaf", lab.ca, extra=(unknown,), patch=_flag(b"\x01")), [lab.ca]
    if case in ("name constraints", "critical name constraints"):
        lab.ca = issue("lab ca", lab.root, ca=True, extra=(_excluding("lab leaf", case.startswith("critical")),))
        lab.crls = [make_crl(lab.root), make_crl(lab.ca)]
        return lab, issue("lab leaf", lab.ca), [lab.ca]
    if case == "CA without keyCertSign":
        lab.ca = issue("lab ca", lab.root, ca=True, usage={"crl_sign"})
        lab.crls = [make_crl(lab.root), make_crl(lab.ca)]
        return lab, issue("lab leaf", lab.ca), [lab.ca]
    if case == "path too long":
        sub = issue("lab sub", lab.ca, ca=True)
        lab.crls.append(make_crl(sub))
        return lab, issue("lab leaf", sub), [sub, lab.ca]
    if case == "leaf not yet valid":
        return lab, issue("lab leaf", lab.ca, valid_from=NOW + timedelta(hours=2)), [lab.ca]
    if case == "negative pathLenConstraint":
        lab.ca = issue("lab ca", lab.root, ca=True, path_len=0, patch=_negative_path_length)
        sub = issue("lab sub", lab.ca, ca=True)
        lab.crls = [make_crl(lab.root), make_crl(lab.ca), make_crl(sub)]
        return lab, issue("lab leaf", sub), [sub, lab.ca]
    if case == "leaf without nonRepudiation":
        return lab, issue("lab leaf", lab.ca, usage={"digital_signature"}), [lab.ca]
    raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "reason", "harmless_to_full_path"),
    [
        ("unknown critical extension", "unknown critical extension", False),
        ("unknown extension critical as BER TRUE", "not a DER BOOLEAN", False),
        ("name constraints", "name or policy constraints", False),
        ("critical name constraints", "unknown critical extension", False),
        ("CA without keyCertSign", "issuer key usage", False),
        ("path too long", "path length", False),
        ("leaf not yet valid", "not valid at the time", False),
        ("negative pathLenConstraint", "negative pathLenConstraint", True),  # pyhanko-certvalidator takes it
        ("leaf without nonRepudiation", "signer key usage", True),  # pyHanko does not ask for it
    ],
)
def test_certificate_tricks(unsealed: bytes, case: str, reason: str, harmless_to_full_path: bool) -> None:
    lab, leaf, chain = _certificate_case(case)
    report = _declined(lab.verifier(), _lab_cms(unsealed, leaf, chain), reason)
    assert (report.result == PASSED) == harmless_to_full_path, report.as_json()


# ---- CRLs and OCSP responses -----------------------------------------------------------------------------
def _crl_flag(tbs: bytes) -> bytes:
    at = tbs.index(_oid(UNKNOWN)) + len(_oid(UNKNOWN))
    assert tbs[at : at + 3] == b"\x01\x01\xff"
    return tbs[:at] + b"\x01\x01\x01" + tbs[at + 3 :]


def _revocation_case(case: str, lab: Lab, leaf: Node) -> None:
    number = {"extn_id": "crl_number", "extn_value": 2}
    if case == "revoking CRL with the serial encoded with a leading zero octet":
        contents = leaf.cert["tbs_certificate"]["serial_number"].contents
        padded = core.Integer(contents=b"\x00" + contents)  # (contents is minimal: one more zero is not)
        lab.crls = [make_crl(lab.root), make_crl(lab.ca, (padded,))]
    elif case == "revoked per OCSP, the CertID serial with a leading zero octet":
        padded = core.Integer(contents=b"\x00" + leaf.cert["tbs_certificate"]["serial_number"].contents)
        lab.ocsps, lab.crls = [make_ocsp(lab.ca, leaf, good=False, serial=padded)], [make_crl(lab.root)]
    elif case == "revoking CRL with the issuer's name in another encoding":
        lab.crls.append(make_crl(lab.ca, (leaf.cert.serial_number,), issuer_name=_name("lab ca", printable=True)))
    elif case == "only a delta CRL":
        delta = {"extn_id": "delta_crl_indicator", "critical": False, "extn_value": 1}
        lab.crls = [make_crl(lab.root), make_crl(lab.ca, extensions=[number, delta])]
    elif case == "only a CRL for CA certificates":
        scope = {"extn_id": "issuing_distribution_point", "critical": False,
                 "extn_value": {"only_contains_ca_certs": True}}  # fmt: skip
        lab.crls = [make_crl(lab.root), make_crl(lab.ca, extensions=[number, scope])]
    elif case == "CRL with an unknown extension critical as BER TRUE":
        unknown = asn1_crl.TBSCertListExtension.load(_raw_ext(UNKNOWN, b"\xff", b"\x05\x00").dump())
        lab.crls = [make_crl(lab.root), make_crl(lab.ca, extensions=[number, unknown], patch=_crl_flag)]
    elif case == "CRL signed by another key":
        lab.crls = [make_crl(lab.root), make_crl(lab.ca, signer=sm2.SM2PrivateKey.generate())]
    elif case == "stale CRL":
        lab.crls = [make_crl(lab.root), make_crl(lab.ca, next_update=NOW - timedelta(minutes=10))]
    elif case == "revoked per OCSP, CertID by SHA-384":
        lab.ocsps = [make_ocsp(lab.ca, leaf, good=False, hash_name="sha384")]
    elif case == "OCSP responder without the OCSP-signing EKU":
        responder = issue("lab responder", lab.ca, usage={"digital_signature"})
        lab.ocsps, lab.crls = [make_ocsp(lab.ca, leaf, responder=responder)], [make_crl(lab.root)]
    elif case == "OCSP responder certified by another CA of the same name":
        twin = issue("lab ca", lab.root, ca=True)
        nocheck = x509.Extension({"extn_id": "ocsp_no_check", "extn_value": None})
        responder = issue("lab responder", twin, usage={"digital_signature"}, eku=["ocsp_signing"], extra=(nocheck,))
        lab.ocsps, lab.crls = [make_ocsp(lab.ca, leaf, responder=responder)], [make_crl(lab.root)]
    elif case == "stale OCSP only":
        old = make_ocsp(lab.ca, leaf, this_update=NOW - timedelta(days=3), next_update=NOW - timedelta(days=1))
        lab.ocsps, lab.crls = [old], [make_crl(lab.root)]
    elif case == "OCSP only, certificate declares a CRL only":
        lab.ocsps, lab.crls = [make_ocsp(lab.ca, leaf)], [make_crl(lab.root)]
    else:
        raise AssertionError(case)


@pytest.mark.parametrize(
    ("case", "ocsp", "reason", "result"),
    [
        ("revoking CRL with the issuer's name in another encoding", False, "another encoding", INDETERMINATE),
        (
            "revoking CRL with the serial encoded with a leading zero octet",
            False,
            "not minimally encoded",
            INDETERMINATE,
        ),
        ("only a delta CRL", False, "limited scope", INDETERMINATE),
        ("only a CRL for CA certificates", False, "limited scope", INDETERMINATE),
        ("CRL with an unknown extension critical as BER TRUE", False, "not a DER BOOLEAN", INDETERMINATE),
        ("CRL signed by another key", False, "CRL signature", INDETERMINATE),
        ("stale CRL", False, "stale CRL", INDETERMINATE),
        ("revoked per OCSP, CertID by SHA-384", True, "CertID hashed", INDETERMINATE),
        ("revoked per OCSP, the CertID serial with a leading zero octet", True, "not minimally encoded", INDETERMINATE),
        ("OCSP responder without the OCSP-signing EKU", True, "responder EKU", INDETERMINATE),
        ("OCSP responder certified by another CA of the same name", True, "responder", INDETERMINATE),
        ("stale OCSP only", True, "stale OCSP", INDETERMINATE),
        ("OCSP only, certificate declares a CRL only", False, "of a kind the certificate declares", INDETERMINATE),
    ],
)
def test_revocation_material_tricks(unsealed: bytes, case: str, ocsp: bool, reason: str, result: str) -> None:
    lab = Lab()
    leaf = issue("lab leaf", lab.ca, ocsp=ocsp)
    _revocation_case(case, lab, leaf)
    report = _declined(lab.verifier(), _lab_cms(unsealed, leaf, [lab.ca]), reason)
    assert report.result == result, report.as_json()


def _revocation_check(report: Report) -> tuple[str, str, str]:
    check = next(c for c in report.signatures[0].checks if c.name == "revocation")
    return check.status, check.code, check.detail


def test_a_certificate_naming_no_revocation_service_is_reported_as_unchecked(unsealed: bytes) -> None:
    """Without a CRL distribution point or OCSP responder, and no revocation data about it at hand,
    nobody checked the certificate: the report says so rather than "not revoked"."""
    lab = Lab()
    leaf = issue("lab leaf", lab.ca, crl_dp=False)
    lab.crls = [make_crl(lab.root)]  # about the CA only
    report = _declined(lab.verifier(), _lab_cms(unsealed, leaf, [lab.ca]), "of a kind the certificate declares")
    status, code, detail = _revocation_check(report)
    assert (report.result, status, code) == (PASSED, SKIPPED, "NO_REVOCATION_SOURCE") and "lab leaf" in detail
    # a CRL from its CA at hand: checked after all, and it may revoke
    lab.crls.append(make_crl(lab.ca))
    assert _revocation_check(lab.verifier().full(_lab_cms(unsealed, leaf, [lab.ca])))[:2] == (PASSED, "OK")
    lab.crls[-1] = make_crl(lab.ca, (leaf.cert.serial_number,))
    report = lab.verifier().full(_lab_cms(unsealed, leaf, [lab.ca]))
    assert (report.result, *_revocation_check(report)[:2]) == (INDETERMINATE, INDETERMINATE, "REVOKED_NO_POE")


def test_a_ca_naming_no_revocation_service_is_named_in_the_revocation_detail(unsealed: bytes) -> None:
    lab = Lab()
    lab.ca = issue("lab bare ca", lab.root, ca=True, crl_dp=False)
    leaf = issue("lab leaf", lab.ca)
    lab.crls = [make_crl(lab.ca)]  # about the leaf only
    report = lab.verifier().full(_lab_cms(unsealed, leaf, [lab.ca]))
    status, code, detail = _revocation_check(report)
    assert (report.result, status, code) == (PASSED, PASSED, "OK") and "not checked" in detail
    assert "lab bare ca" in detail and "lab leaf" not in detail


# ---- last: revokes a demo certificate of this module's hierarchy ----------------------------------------
def test_a_revocation_dated_before_the_signing_time_of_a_b_lt_document(
    context: Context, pdf_verifier: PdfVerifier
) -> None:
    data = _sealed(context, "B-LT", seal_id="demo-530000-sm2")
    serial = context.seals.get("demo-530000-sm2").certificate_serial
    context.ca.revoke_seal_certificate(
        serial, "demo-530000-sm2", "keyCompromise", actor="test", revoked_at=datetime.now(UTC) - timedelta(hours=1)
    )
    verifier = context.verification.verifier().pdf
    with pytest.raises(Unsupported, match="revoked"):
        _fast(verifier, data)
    # The full path: the DSS's OCSP response said "good"; the service's newer CRL dates the
    # revocation before the signing time (the timestamp), and the newest word wins: the timestamp
    # came after the key was compromised, so it proves nothing (REVOKED_NO_POE).
    report = verifier.verify(data).as_json()
    assert report["result"] == INDETERMINATE
    check = next(c for c in report["signatures"][0]["checks"] if c["name"] == "revocation")
    assert (check["status"], check["code"]) == (INDETERMINATE, "REVOKED_NO_POE") and "key_compromise" in check["detail"]


def test_a_revocation_after_the_signing_time_leaves_a_b_lt_document_valid(
    context: Context, pdf_verifier: PdfVerifier
) -> None:
    """The twin: a certificate revoked (with today's date) after a document was timestamped leaves
    that document valid; only the seal's own status says what happened since."""
    from seal.service import SealRequest

    context.seals.create(
        SealRequest(name="后撤销章", organisation_name="后撤销章", organisation_uscc="11370000MB00000015",
                    ca="cn-530000-sm2", seal_id="revoked-later"),
        actor="test",
    )  # fmt: skip
    data = _sealed(context, "B-LT", seal_id="revoked-later")
    serial = context.seals.get("revoked-later").certificate_serial
    time.sleep(1.1)  # CRL dates have whole seconds: a revocation in the signing second counts as before it
    context.ca.revoke_seal_certificate(serial, "revoked-later", "keyCompromise", actor="test")
    report = context.verification.verifier().pdf.full(data).as_json()
    check = next(c for c in report["signatures"][0]["checks"] if c["name"] == "revocation")
    assert (check["status"], check["code"]) == (PASSED, "OK"), report
