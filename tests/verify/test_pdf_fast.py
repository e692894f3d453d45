"""verify/pdf_fast.py: it takes the common layouts, gives exactly the full path's report for them, and
declines everything else (tests/conftest.py compares both paths on every PDF the suite verifies).

Its readers (verify/pdf_structure.py, verify/x509_fast.py) are checked against independent ones:
pyHanko's PDF writer and reader, asn1crypto.
"""

from __future__ import annotations

import contextlib
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from asn1crypto import core, x509
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from hypothesis import given, settings
from hypothesis import strategies as st
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader

from api.context import Context
from seal.demo import create_demo_seals
from signing.pdf import Placement
from signing.service import Caller
from tests.fixtures import make_pdf
from verify import pdf_fast, pdf_structure, x509_fast
from verify.pdf import PdfVerifier
from verify.report import PASSED
from verify.trust import TrustStore

CALLER = Caller(role="issuer", name="test", seal_ids=("*",))


@pytest.fixture(scope="module")
def pdf_verifier(context: Context) -> PdfVerifier:
    create_demo_seals(context.seals, actor="test")
    return context.verification.verifier().pdf


def _sealed(context: Context, seal_id: str = "demo-370000-sm2", level: str = "B-B", pdf: bytes | None = None) -> bytes:
    return context.signing.seal_pdf(
        pdf or make_pdf(), seal_id=seal_id, caller=CALLER, placement=Placement(), level=level
    ).pdf


def _fast(verifier: PdfVerifier, data: bytes) -> Any:
    checker = pdf_fast.Checker(verifier.trust, {})
    return pdf_fast.verify_fast(data, verifier.trust, verifier.sources, checker, None)


@pytest.mark.parametrize("seal_id", ["demo-370000-sm2", "demo-530000-sm2", "demo-370000-p256"])
@pytest.mark.parametrize("level", ["B-B", "B-T", "B-LT"])
def test_common_layouts_take_the_fast_path_with_the_full_paths_report(
    context: Context, pdf_verifier: PdfVerifier, seal_id: str, level: str
) -> None:
    data = _sealed(context, seal_id, level)
    report = pdf_verifier.verify(data)
    assert pdf_verifier.fast_declined == ""
    assert report.result == PASSED
    assert report.as_json() == pdf_verifier.full(data).as_json()
    checks = {c.name: c.code for c in report.signatures[0].checks}
    assert checks["modifications"] == ("LATER_SIGNATURES_ONLY" if level == "B-LT" else "OK")
    assert checks["signing_time"] == ("CLAIMED_TIME" if level == "B-B" else "TIMESTAMP")


def test_a_trust_store_changed_between_documents_is_read_again(context: Context, pdf_verifier: PdfVerifier) -> None:
    """The fast path keeps its view of the trust store across documents, but never a stale one."""
    data = _sealed(context, level="B-LT")
    store = TrustStore(cas=list(pdf_verifier.trust.cas), anchors=list(pdf_verifier.trust.anchors))
    verifier = PdfVerifier(store, pdf_verifier.sources)
    assert verifier.verify(data).result == PASSED and verifier.fast_declined == ""
    withdrawn = store.cas[:]
    store.cas.clear()
    assert verifier.verify(data).result != PASSED and verifier.fast_declined
    store.cas.extend(withdrawn)
    assert verifier.verify(data).result == PASSED and verifier.fast_declined == ""
    store.cas[:] = [ca for ca in withdrawn if ca.certificate.self_signed == "no"]  # same length, no roots
    store.cas.extend(ca for ca in withdrawn if ca.certificate.self_signed == "no")
    assert verifier.verify(data).result != PASSED and verifier.fast_declined


def test_a_trust_anchor_moved_to_path_material_is_no_longer_an_anchor(
    context: Context, pdf_verifier: PdfVerifier
) -> None:
    """Found in review: the view's key ran the store's lists together, so moving an anchor to the
    cross-certificates (path material only) kept the old view and its anchor."""
    data = _sealed(context, level="B-LT")
    source = pdf_verifier.trust
    roots = [ca.certificate for ca in source.cas if ca.certificate.self_signed != "no"]
    store = TrustStore(cas=[ca for ca in source.cas if ca.certificate.self_signed == "no"], anchors=roots)
    verifier = PdfVerifier(store, pdf_verifier.sources)
    assert verifier.verify(data).result == PASSED and verifier.fast_declined == ""
    store.cross.extend(store.anchors)
    store.anchors.clear()
    assert verifier.verify(data).result != PASSED and verifier.fast_declined


def test_a_given_validation_time_is_honoured_the_same_way(context: Context, pdf_verifier: PdfVerifier) -> None:
    data = _sealed(context, level="B-LT")
    when = datetime.now(UTC)
    assert pdf_verifier.verify(data, when).as_json() == pdf_verifier.full(data, when).as_json()
    assert pdf_verifier.fast_declined == ""


def _update(pdf: bytes, change: Any) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _new_page_content(writer: IncrementalPdfFileWriter) -> None:
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    page["/Contents"] = writer.add_object(generic.StreamObject(stream_data=b"BT /F1 24 Tf 72 400 Td (X) Tj ET"))
    writer.update_container(page)


def _catalog_key(writer: IncrementalPdfFileWriter) -> None:
    writer.root["/OpenAction"] = generic.NameObject("/Print")
    writer.update_root()


def _info_with_resources(writer: IncrementalPdfFileWriter) -> None:
    info = writer.trailer["/Info"].get_object()
    info["/Font"] = generic.NameObject("/F9")
    writer.update_container(info)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_new_page_content, "changed after signing"),
        (_catalog_key, "catalog keys changed"),
        (_info_with_resources, "document information"),
    ],
)
def test_updates_after_signing_other_than_dss_are_declined(
    context: Context, pdf_verifier: PdfVerifier, change: Any, reason: str
) -> None:
    data = _update(_sealed(context, level="B-LT"), change)
    with pytest.raises(x509_fast.Unsupported, match=reason):
        _fast(pdf_verifier, data)
    pdf_verifier.verify(data)
    assert pdf_verifier.fast_declined  # and the full path said what it is (tests/verify/test_attacks.py)


def test_a_second_seal_goes_to_the_full_path(context: Context, pdf_verifier: PdfVerifier) -> None:
    twice = _sealed(context, pdf=_sealed(context))
    assert pdf_verifier.verify(twice).result == PASSED
    assert "not exactly one field" in pdf_verifier.fast_declined


def _flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1 :]


def test_tampering_anywhere_is_declined(context: Context, pdf_verifier: PdfVerifier) -> None:
    data = _sealed(context, level="B-T")
    contents_at = data.index(b"/Contents <") + 11
    for offset in (300, contents_at + 2000, len(data) - 40):  # page content, CMS, trailer area
        tampered = _flip(data, offset)
        with pytest.raises((x509_fast.Unsupported, ValueError)):
            _fast(pdf_verifier, tampered)


# ---- readers against independent implementations ---------------------------------------------------
_NAMES = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.#()", min_size=1,
                 max_size=8)  # fmt: skip
_LEAVES = st.one_of(
    st.integers(min_value=-(10**12), max_value=10**12).map(generic.NumberObject),
    st.sampled_from([True, False]).map(generic.BooleanObject),
    st.just(generic.NullObject()),
    _NAMES.map(lambda n: generic.NameObject("/" + n)),
    st.binary(max_size=40).map(generic.ByteStringObject),
    st.binary(max_size=40).map(lambda b: generic.TextStringObject(b.decode("latin-1"))),
    st.tuples(st.integers(1, 5000), st.integers(0, 3)).map(lambda t: generic.IndirectObject(t[0], t[1], None)),
)
_VALUES = st.recursive(
    _LEAVES,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5).map(generic.ArrayObject),
        st.dictionaries(_NAMES.map(lambda n: generic.NameObject("/" + n)), inner, max_size=5).map(
            generic.DictionaryObject
        ),
    ),
    max_leaves=20,
)


def _plain(value: Any) -> Any:
    """pyHanko's object as our reader's plain Python value."""
    if isinstance(value, generic.IndirectObject):
        return pdf_structure.Ref(value.idnum, value.generation)
    if isinstance(value, generic.NameObject):
        return str(value)[1:]
    if isinstance(value, generic.BooleanObject):
        return bool(value)
    if isinstance(value, generic.NullObject):
        return None
    if isinstance(value, generic.NumberObject):
        return int(value)
    if isinstance(value, (generic.ByteStringObject, generic.TextStringObject)):
        return value.original_bytes
    if isinstance(value, generic.ArrayObject):
        return [_plain(v) for v in value]
    return {str(k)[1:]: _plain(v) for k, v in value.items()}


@settings(max_examples=300, deadline=None)
@given(_VALUES)
def test_values_read_as_pyhanko_wrote_them(value: Any) -> None:
    value = generic.ArrayObject([value])  # (pyHanko reads "1 0 R" as a reference only inside a container)
    out = io.BytesIO()
    value.write_to_stream(out, None)
    written = out.getvalue()
    theirs = _plain(generic.read_object(io.BytesIO(written), generic.TrailerReference(None)))
    parsed, end = pdf_structure.parse_value(written, 0)
    assert end == len(written)
    assert parsed == theirs
    framed = b"1 0 obj\n" + written + b"\nendobj\n"
    pdf = pdf_structure.PdfFile.__new__(pdf_structure.PdfFile)
    pdf.data, pdf._at = framed, {}
    assert pdf.object_at(0, pdf_structure.Ref(1, 0))[0] == theirs  # the one-call reader agrees


def test_objects_as_pyhanko_writes_them_take_the_one_call_reader() -> None:
    """The one-call reader (not the token-by-token fallback) reads an object followed by its newline:
    it once refused every such object because a later module-level name shadowed the white-space set."""
    written = b"<<\n/Type /Catalog\n/Pages 2 0 R\n/Ext <<\n/Level 1\n>>\n/M (D\\07220261202Z)\n>>\n"
    expected = {"Type": "Catalog", "Pages": pdf_structure.Ref(2, 0), "Ext": {"Level": 1}, "M": b"D:20261202Z"}
    assert pdf_structure._parse_simple(written, 0, len(written)) == expected
    assert pdf_structure._parse_simple(b"[ 1 2 ]\r\n \x00", 0, 10) == [1, 2]
    with pytest.raises(pdf_structure._NotSimple):
        pdf_structure._parse_simple(b"[ 1 2 ] x", 0, 9)


def test_a_keyword_inside_a_name_does_not_end_the_object() -> None:
    """Found in review: the one-call reader cut "/Xendobj" at its "endobj" and read the name X."""
    for body, expected in ((b"/Xendobj", "Xendobj"), (b"[ /Substream 1 ]", ["Substream", 1])):
        pdf = pdf_structure.PdfFile.__new__(pdf_structure.PdfFile)
        pdf.data, pdf._at = b"1 0 obj\n" + body + b"\nendobj\n", {}
        assert pdf.object_at(0, pdf_structure.Ref(1, 0))[0] == expected


_HEX_GAPS = st.sampled_from([b"", b"", b" ", b"\n", b"\r\n", b"\t", b"\x0c", b"\x00"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(b"0123456789abcdefABCDEF"), _HEX_GAPS), max_size=40))
def test_hex_strings_with_gaps_and_odd_lengths_as_pyhanko_reads_them(pieces: list[tuple[int, bytes]]) -> None:
    """White space anywhere inside <...> is ignored and an odd final digit is followed by an implied 0."""
    body = b"".join(bytes([digit]) + gap for digit, gap in pieces)
    written = b"[<" + body + b">]"
    theirs = _plain(generic.read_object(io.BytesIO(written), generic.TrailerReference(None)))
    assert pdf_structure.parse_value(written, 0) == (theirs, len(written))
    digits = bytes(digit for digit, _ in pieces)
    assert pdf_structure._hex(body) == bytes.fromhex((digits + b"0" * (len(digits) % 2)).decode())


def test_bad_hex_strings_are_refused() -> None:
    for body in (b"9G", b"0x12", b"12-34", b"12\x0b34", b"\xff"):
        with pytest.raises(pdf_structure.StructureError, match="bad hex string"):
            pdf_structure._hex(body)


def test_each_revision_ends_at_the_startxref_that_names_it(context: Context, pdf_verifier: PdfVerifier) -> None:
    data = _sealed(context, level="B-LT")
    revisions = pdf_structure.PdfFile(data).revisions
    assert [r.end for r in revisions] == [m.end() for m in pdf_structure._STARTXREF.finditer(data)]
    newest = revisions[-1].xref_offset
    for appended in (b"startxref\n%d\n%%%%EOF\n" % newest, b"startxref\nabc\n%%EOF\n", b"startxref\n"):
        with pytest.raises(pdf_structure.StructureError):
            pdf_structure.PdfFile(data + appended)


def test_nothing_may_follow_the_last_eof_line(context: Context, pdf_verifier: PdfVerifier) -> None:
    """Not even white space: pyHanko then no longer reads the signature as covering the entire file,
    and a large enough run hides the last %%EOF from readers that rebuild the xref by scanning and find
    objects no xref lists (the full path decides such files)."""
    data = _sealed(context)
    assert data.endswith(b"%%EOF\n") and len(pdf_structure.PdfFile(data).revisions) >= 2
    assert len(pdf_structure.PdfFile(data[:-1]).revisions) >= 2  # the end of line itself is optional
    for tail in (b"\n", b"\r\n\r\n", b" \x00\t\x0c", b"\n" * 1100, b"0", b"x0c", b"\n0 0 obj", b"%comment"):
        with pytest.raises(pdf_structure.StructureError, match="after the last"):
            pdf_structure.PdfFile(data + tail)
    report = pdf_verifier.verify(data + b"\n" * 1100)
    assert pdf_verifier.fast_declined and report.result != PASSED


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_garbage_only_ever_raises_structure_error(data: bytes) -> None:
    for candidate in (data, b"%PDF-1.7\n" + data, b"<<" + data, data + b"\nstartxref\n9\n%%EOF\n"):
        with contextlib.suppress(pdf_structure.StructureError):
            pdf_structure.PdfFile(candidate)
        with contextlib.suppress(pdf_structure.StructureError):
            pdf_structure.parse_value(candidate, 0)


def test_revisions_match_pyhankos_reader(context: Context) -> None:
    data = _sealed(context, level="B-LT")
    ours = pdf_structure.PdfFile(data)
    theirs = PdfFileReader(io.BytesIO(data))
    assert len(ours.revisions) == theirs.xrefs.total_revisions
    for index, revision in enumerate(ours.revisions):
        assert revision.xref_offset == theirs.xrefs.get_startxref_for_revision(index)
        for num, (kind, _, gen) in revision.entries.items():
            if kind == 1 and num:
                ref = generic.Reference(num, gen)
                assert theirs.xrefs.get_introducing_revision(ref) <= index
    catalog = ours.get(ours.revisions[-1].trailer["Root"])
    assert _plain(theirs.root) == catalog


def test_certificate_crl_and_ocsp_views_agree_with_asn1crypto(context: Context, pdf_verifier: PdfVerifier) -> None:
    data = _sealed(context, level="B-LT")  # (pdf_verifier: the demo seals exist on whichever worker runs this)
    pdf = pdf_structure.PdfFile(data)
    catalog = pdf.get(pdf.revisions[-1].trailer["Root"])
    certs, crls, ocsps = pdf_fast._dss(pdf, catalog)
    assert certs and crls and ocsps
    for der in certs:
        view, cert = x509_fast.certificate(der), x509.Certificate.load(der)
        assert view.serial == cert["tbs_certificate"]["serial_number"].contents
        assert view.issuer == cert.issuer.dump() and view.subject == cert.subject.dump()
        assert view.not_before == cert.not_valid_before and view.not_after == cert.not_valid_after
        assert view.spki == cert.public_key.dump() and view.tbs == cert["tbs_certificate"].dump()
        assert view.ca == (bool(cert.ca), cert.max_path_length)  # asn1crypto: None without basicConstraints
        usage = cert.key_usage_value.native if cert.key_usage_value is not None else None
        names = ["digital_signature", "non_repudiation", "key_encipherment", "data_encipherment", "key_agreement",
                 "key_cert_sign", "crl_sign", "encipher_only", "decipher_only"]  # fmt: skip
        assert (None if view.key_usage is None else {names[b] for b in view.key_usage}) == usage
    for der in crls:
        crl_view, parsed = x509_fast.crl(der), asn1_crl.CertificateList.load(der)
        assert crl_view.issuer == parsed.issuer.dump()
        assert crl_view.this_update == parsed["tbs_cert_list"]["this_update"].native
        assert crl_view.next_update == parsed["tbs_cert_list"]["next_update"].native
        revoked = {e["user_certificate"].contents for e in parsed["tbs_cert_list"]["revoked_certificates"]}
        assert crl_view.revoked == revoked
    for der in ocsps:
        ocsp_view, response = x509_fast.ocsp_response(der), asn1_ocsp.OCSPResponse.load(der)
        basic = response["response_bytes"]["response"].parsed
        data_ = basic["tbs_response_data"]
        assert ocsp_view.tbs == data_.dump() and ocsp_view.produced_at == data_["produced_at"].native
        assert [s.good for s in ocsp_view.responses] == [r["cert_status"].name == "good" for r in data_["responses"]]
        assert [s.serial for s in ocsp_view.responses] == [
            r["cert_id"]["serial_number"].contents for r in data_["responses"]
        ]


@pytest.mark.parametrize(
    ("text", "tag", "expected"),
    [
        (b"261201113048Z", 0x17, datetime(2026, 12, 1, 11, 30, 48, tzinfo=UTC)),
        (b"491231235959Z", 0x17, datetime(2049, 12, 31, 23, 59, 59, tzinfo=UTC)),
        (b"500101000000Z", 0x17, datetime(1950, 1, 1, tzinfo=UTC)),
        (b"20261201113048.25Z", 0x18, datetime(2026, 12, 1, 11, 30, 48, 250000, tzinfo=UTC)),
    ],
)
def test_times(text: bytes, tag: int, expected: datetime) -> None:
    assert x509_fast.parse_time(text, tag, 0, len(text)) == expected


@pytest.mark.parametrize(("text", "tag"), [(b"2612011130Z", 0x17), (b"20261201113048.50Z", 0x18),
                                           (b"20261201113048+0800", 0x18), (b"26121 113048Z", 0x17),
                                           (b"+61201113048Z", 0x17), (b"20261301113048Z", 0x18),
                                           (b"2026120111304\xffZ", 0x18), (b"2026120111304\xd9\xa3Z", 0x18),
                                           (b"20261201113060Z", 0x18)])  # fmt: skip
def test_times_outside_der_are_refused(text: bytes, tag: int) -> None:
    with pytest.raises(x509_fast.Unsupported):
        x509_fast.parse_time(text, tag, 0, len(text))


def _minimal(value: int) -> bytes:
    length = max(1, (value + (value < 0)).bit_length() // 8 + 1)
    return value.to_bytes(length, "big", signed=True)


@settings(max_examples=400, deadline=None)
@given(st.binary(min_size=0, max_size=12))
def test_serials_only_in_their_one_der_encoding(value: bytes) -> None:
    """Serials are compared as bytes: 00 05 and 05 must not both be accepted as serial numbers."""
    number = int.from_bytes(value, "big", signed=True)
    if value and value == _minimal(number):
        assert x509_fast._serial(value, 0, len(value)) == value
    else:
        with pytest.raises(x509_fast.Unsupported, match="not minimally encoded"):
            x509_fast._serial(value, 0, len(value))


def test_a_certificate_with_a_padded_serial_is_left_to_the_full_path(context: Context) -> None:
    cert = context.ca.ca_certificate("cn-370000-sm2")
    x509_fast.certificate(cert.dump())
    tbs = cert["tbs_certificate"].copy()
    tbs["serial_number"] = core.Integer(contents=b"\x00" + cert["tbs_certificate"]["serial_number"].contents)
    padded = x509.Certificate(
        {**{k: cert[k] for k in ("signature_algorithm", "signature_value")}, "tbs_certificate": tbs}
    )
    with pytest.raises(x509_fast.Unsupported, match="not minimally encoded"):
        x509_fast.certificate(padded.dump())


def test_the_fast_checker_remembers_a_ca_signature_only_under_its_own_algorithm(
    context: Context, pdf_verifier: PdfVerifier
) -> None:
    ca = x509_fast.certificate(context.ca.ca_certificate("cn-370000-sm2").dump())
    root = x509_fast.certificate(context.ca.ca_certificate("cn-root-sm2").dump())
    checker = pdf_fast.Checker(pdf_verifier.trust, {})
    assert root.spki in checker.ca_keys
    for _ in range(2):
        assert checker.verify(root, ca.signature_algorithm, ca.signature, ca.tbs)
    assert not checker.verify(root, x509_fast.OID_ECDSA_SHA256, ca.signature, ca.tbs)
