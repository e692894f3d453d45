"""Differential fuzzing of the two PDF readers: whenever the fast path (verify/pdf_fast.py) gives a
report for a mutated sealed PDF, the full pyHanko path must give the same report; and no input makes
either path raise. `make test` runs a bounded number of mutants per base document; `make soak`
(TRUSTSEAL_SOAK=1) runs >= 100,000 in all. A disagreement is written to the temporary directory
(trustseal-fuzz-cases/); each found case is kept as a regression test below, rebuilt on a fresh
hierarchy (a mutant of another run's document no longer verifies here)."""

from __future__ import annotations

import io
import os
import random
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

from api.context import Context
from seal.demo import create_demo_seals
from signing.pdf import Placement
from signing.service import Caller
from tests.fixtures import make_pdf
from verify import pdf_fast
from verify.pdf import PdfVerifier
from verify.pdf_structure import StructureError
from verify.x509_fast import Unsupported

CALLER = Caller(role="issuer", name="test", seal_ids=("*",))
CASES = Path(tempfile.gettempdir()) / "trustseal-fuzz-cases"
BOUNDED = 150  # mutants per base document in `make test`
SOAK_TOTAL = 100_000
BASES = [("demo-370000-sm2", "B-B"), ("demo-370000-sm2", "B-T"), ("demo-370000-sm2", "B-LT"),
         ("demo-530000-p256", "B-LT")]  # fmt: skip
TOKENS = [b"/ByteRange", b"/Contents", b"/Type", b"/Sig", b"/DSS", b"/Root", b"/Size", b"/Prev", b"startxref",
          b"xref", b"trailer", b"%%EOF", b"obj", b"endobj", b"stream", b"endstream", b"/Length", b"0", b"1", b" ",
          b"\n", b"\r\n", b"<<", b">>", b"[", b"]", b"(", b")", b"<", b">", b"/Metadata", b"/AcroForm"]  # fmt: skip


NUMBER = re.compile(rb"(?<![0-9A-Za-z.])\d{1,10}(?![0-9A-Za-z.])")


def _count() -> int:
    if os.environ.get("TRUSTSEAL_SOAK"):
        return SOAK_TOTAL // len(BASES) + 1
    return BOUNDED


def _flip(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data))
    return data[:at] + bytes([data[at] ^ (1 << rng.randrange(8))]) + data[at + 1 :]


def _splice_token(rng: random.Random, data: bytes) -> bytes:
    at = rng.randrange(len(data))
    cut = rng.randrange(0, 8)
    return data[:at] + rng.choice(TOKENS) + data[at + cut :]


def _number(rng: random.Random, data: bytes) -> bytes:
    """Change one number of the file structure (offsets, lengths, ByteRange, object numbers)."""
    numbers = list(NUMBER.finditer(data))
    if not numbers:
        return _flip(rng, data)
    hit = rng.choice(numbers)
    value = int(hit.group()) + rng.choice([-1, 1, -2, 2, 10, -10, 1000, -1000])
    return data[: hit.start()] + str(max(0, value)).encode() + data[hit.end() :]


def _truncate(rng: random.Random, data: bytes) -> bytes:
    return data[: rng.randrange(1, len(data))]


def _append(rng: random.Random, data: bytes) -> bytes:
    """An incremental update: a new object, a changed catalog entry, or bytes after %%EOF."""
    choice = rng.randrange(4)
    if choice == 0:
        return data + rng.choice([b"\n", b"\r\n", b"\x00" * rng.randrange(1, 16), b"% comment\n"])
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
        if choice == 1:
            writer.root["/Trustseal"] = generic.NameObject("/Mutated")
            writer.update_root()
        elif choice == 2:
            page = writer.root["/Pages"]["/Kids"][0].get_object()
            page["/Contents"] = writer.add_object(generic.StreamObject(stream_data=b"BT /F1 9 Tf (x) Tj ET"))
            writer.update_container(page)
        else:
            writer.add_object(generic.TextStringObject("orphan"))
            writer.update_root()
        out = io.BytesIO()
        writer.write(out)
        return out.getvalue()
    except Exception:
        return _flip(rng, data)


def _contents(rng: random.Random, data: bytes) -> bytes:
    """Change one hex digit inside /Contents (the CMS)."""
    match = re.search(rb"/Contents\s*<([0-9A-Fa-f]+)>", data)
    if match is None:
        return _flip(rng, data)
    used = match.group(1).rstrip(b"0") or match.group(1)
    at = match.start(1) + rng.randrange(len(used))
    return data[:at] + bytes([rng.choice(b"0123456789abcdef")]) + data[at + 1 :]


MUTATORS: list[Callable[[random.Random, bytes], bytes]] = [_flip, _splice_token, _number, _truncate, _append,
                                                            _contents]  # fmt: skip


def mutate(rng: random.Random, data: bytes) -> bytes:
    out = data
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        out = rng.choice(MUTATORS)(rng, out)
    return out


def compare(verifier: PdfVerifier, data: bytes) -> str:
    """'declined' or 'agreed'; raises AssertionError when the paths disagree."""
    checker = pdf_fast.Checker(verifier.trust, {})
    try:
        fast = pdf_fast.verify_fast(data, verifier.trust, verifier.sources, checker, None)
    except (Unsupported, StructureError):
        return "declined"
    except Exception:
        return "declined"
    full = verifier.full(data)
    assert fast.as_json() == full.as_json(), "fast and full paths disagree"
    return "agreed"


@pytest.fixture(scope="module")
def pdf_verifier(context: Context) -> PdfVerifier:
    create_demo_seals(context.seals, actor="test")
    return context.verification.verifier().pdf


@pytest.mark.parametrize(("seal_id", "level"), BASES)
def test_fast_path_never_disagrees_with_the_full_path(
    context: Context, pdf_verifier: PdfVerifier, seal_id: str, level: str
) -> None:
    base = context.signing.seal_pdf(make_pdf(), seal_id=seal_id, caller=CALLER, placement=Placement(), level=level).pdf
    assert compare(pdf_verifier, base) == "agreed"  # the unmutated document takes the fast path
    rng = random.Random(f"{seal_id}/{level}/{os.environ.get('TRUSTSEAL_FUZZ_SEED', '')}")
    counts = {"declined": 0, "agreed": 0}
    for _ in range(_count()):
        mutant = mutate(rng, base)
        try:
            counts[compare(pdf_verifier, mutant)] += 1
            if rng.random() < 0.02:  # now and then the full path on a declined mutant too: it must report
                assert pdf_verifier.full(mutant).result in ("PASSED", "FAILED", "INDETERMINATE")
        except Exception:
            CASES.mkdir(exist_ok=True)
            (CASES / f"disagreement-{seal_id}-{level}-{rng.getrandbits(32):08x}.pdf").write_bytes(mutant)
            raise
    print(f"\n{seal_id} {level}: {counts}")
    assert counts["agreed"] + counts["declined"] == _count()


def _sealed(context: Context, level: str = "B-LT") -> bytes:
    return context.signing.seal_pdf(
        make_pdf(), seal_id="demo-370000-sm2", caller=CALLER, placement=Placement(), level=level
    ).pdf


def _dss_tsa_certificate(base: bytes) -> bytes:
    """The TSA certificate's DER as the B-LT update's DSS holds it: a certificate nothing else in the
    document names first, so pyHanko registers that copy (a copy of the signer's CA would be skipped as
    already known, and a broken one would test nothing)."""
    from asn1crypto import x509
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    dss = DocumentSecurityStore.read_dss(PdfFileReader(io.BytesIO(base)))
    for cert in dss.load_certs():
        usages = cert.extended_key_usage_value
        if usages is not None and "time_stamping" in usages.native:
            return bytes(x509.Certificate.load(cert.dump()).dump())
    raise AssertionError("no TSA certificate in the DSS")


def test_found_a_dss_certificate_with_a_broken_name(context: Context, pdf_verifier: PdfVerifier) -> None:
    """Found by this fuzzer: an unparsable certificate in the DSS (unsigned material, on no path) made
    the full path fail the signature with FORMAT_FAILURE while the fast path passed it."""
    from asn1crypto import x509

    base = _sealed(context)
    der = _dss_tsa_certificate(base)
    at = base.index(der) + der.index(x509.Certificate.load(der).subject.dump()) + 2  # the first RDN's SET
    assert base[at] == 0x31
    broken = base[: at + 1] + b"\x7f" + base[at + 2 :]  # its length now runs past the name
    assert compare(pdf_verifier, broken) in ("agreed", "declined")
    assert pdf_verifier.full(broken).result == "PASSED"


def test_found_an_embedded_ca_look_alike(context: Context, pdf_verifier: PdfVerifier) -> None:
    """Found by this fuzzer: one byte changed in the CMS's copy of the root (an attribute type of its
    subject name) gave pyHanko a look-alike of a trusted CA to try first; the full path ended
    INDETERMINATE, the fast path PASSED. Unsigned look-alikes of trusted CAs are now ignored."""
    base = _sealed(context, "B-B")
    hexed = context.ca.ca_certificate("cn-root-sm2").dump().hex().upper().encode()
    start = base.index(hexed)
    subject = hexed.index(b"060355040A", hexed.index(b"060355040A") + 10)  # the second name: the subject
    at = start + subject
    mutant = base[:at] + b"060395040A" + base[at + 10 :]
    assert compare(pdf_verifier, mutant) in ("agreed", "declined")
    assert pdf_verifier.full(mutant).result == "PASSED"


def test_found_a_dangling_reference_in_the_dss_revision(context: Context, pdf_verifier: PdfVerifier) -> None:
    """Found by this fuzzer: a VRI entry of the B-LT update pointing at a missing object; pyHanko
    cannot evaluate the signature (INDETERMINATE), the fast path (which does not read VRI) passed it.
    Now what a later revision adds may not dangle, or the fast path declines."""
    base = _sealed(context)
    match = re.search(rb"/OCSP \[ (\d+) 0 R", base)
    assert match is not None
    mutant = base[: match.end() - 3] + b"1 R" + base[match.end() :]
    assert compare(pdf_verifier, mutant) == "declined"
    assert pdf_verifier.full(mutant).result != "PASSED"


def test_found_metadata_that_is_not_xml_in_a_later_revision(context: Context, pdf_verifier: PdfVerifier) -> None:
    """Found by this fuzzer: one control character in the XMP packet pyHanko rewrote with the B-LT
    update (PDF 2.0, P-256); pyHanko's difference analysis calls it suspicious (FAILED), the fast path
    passed it. Now it declines metadata that is not well-formed XML."""
    base = context.signing.seal_pdf(
        make_pdf(), seal_id="demo-530000-p256", caller=CALLER, placement=Placement(), level="B-LT"
    ).pdf
    at = base.rindex(b"<rdf:Description") + len(b"<rdf:Description")
    assert base[at : at + 1] in (b" ", b"\n")
    mutant = base[:at] + b"\x08" + base[at + 1 :]
    assert compare(pdf_verifier, mutant) in ("declined", "agreed")
    assert pdf_verifier.full(mutant).result != "PASSED"


def test_found_a_damaged_xref_stream(context: Context, pdf_verifier: PdfVerifier) -> None:
    """Found by this fuzzer: a damaged Flate xref stream made pyHanko's reader raise zlib.error out of
    the full path (a crash, not a report)."""
    base = _sealed(context, "B-B")
    at = base.rindex(b"/Type /XRef")
    start = base.index(b"stream", at) + len(b"stream\n")
    mutant = base[: start + 4] + bytes([base[start + 4] ^ 0xFF]) + base[start + 5 :]
    report = pdf_verifier.full(mutant)
    assert report.result in ("FAILED", "INDETERMINATE")
    assert compare(pdf_verifier, mutant) in ("declined", "agreed")


def test_found_an_ocsp_response_with_unreadable_certificates(context: Context, pdf_verifier: PdfVerifier) -> None:
    """Found by this fuzzer: an OCSP response in the DSS whose certificate list no longer parses
    (unsigned material) failed the signature on the full path (FORMAT_FAILURE) while the fast path
    passed it. Such a response says nothing and is set aside, as the fast path does."""
    from asn1crypto import ocsp as asn1_ocsp
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    base = _sealed(context)
    dss = DocumentSecurityStore.read_dss(PdfFileReader(io.BytesIO(base)))
    for ref in dss.ocsps:
        response = asn1_ocsp.OCSPResponse.load(ref.get_object().data)
        certs = response["response_bytes"]["response"].parsed["certs"]
        if certs:
            break
    else:
        pytest.skip("no OCSP response in the DSS carries certificates")
    encoded = certs.dump()
    inner = 2 if encoded[1] < 0x80 else 2 + (encoded[1] & 0x7F)  # the SEQUENCE OF inside [0]
    assert encoded[inner] == 0x30
    at = base.index(encoded) + inner
    mutant = base[:at] + b"\x31" + base[at + 1 :]
    assert compare(pdf_verifier, mutant) in ("declined", "agreed")
    assert pdf_verifier.full(mutant).result == "PASSED"


def test_found_a_certificate_with_a_broken_extension(context: Context, pdf_verifier: PdfVerifier) -> None:
    """Found by this fuzzer: a DSS certificate no other source names first (here the TSA's) whose
    extended key usage no longer parses made pyHanko raise while registering path material
    (FORMAT_FAILURE) where the fast path passed."""
    base = _sealed(context)
    der = _dss_tsa_certificate(base)
    eku = der.index(b"\x06\x03\x55\x1d\x25")  # id-ce-extKeyUsage
    inner = der.index(b"\x04", eku + 5) + 2  # its OCTET STRING, then the SEQUENCE inside
    assert der[inner] == 0x30
    at = base.index(der) + inner
    mutant = base[:at] + b"\x31" + base[at + 1 :]
    assert compare(pdf_verifier, mutant) in ("declined", "agreed")
    assert pdf_verifier.full(mutant).result == "PASSED"


def test_found_an_unknown_filter_on_the_xref_stream(context: Context, pdf_verifier: PdfVerifier) -> None:
    """Found by this fuzzer: an xref stream with an unknown /Filter made pyHanko's reader raise
    NotImplementedError out of the full path (a crash, not a report)."""
    base = _sealed(context, "B-B")
    at = base.rindex(b"/FlateDecode", 0, base.rindex(b"/Type /XRef") + 200)
    mutant = base[:at] + b"/FmateDecode" + base[at + len(b"/FlateDecode") :]
    assert pdf_verifier.full(mutant).result in ("FAILED", "INDETERMINATE")
    assert compare(pdf_verifier, mutant) in ("declined", "agreed")


def test_found_an_exponential_literal_string() -> None:
    """Found by this fuzzer (it hung): a literal string that does not close on its line, full of octal
    escapes, made the fast reader's string pattern backtrack 3^n ways. A bound, not a speed target:
    with 40 escapes the old pattern would run for years."""
    import time

    from verify import pdf_structure

    data = b"(" + b"\\1234" * 40 + b"\n)"
    start = time.thread_time()
    value, end = pdf_structure._parse_literal(data, 0)
    assert time.thread_time() - start < 2.0
    assert end == len(data) and value.startswith(b"\x534")  # \123 is S, then the digit 4
    start = time.thread_time()
    assert pdf_structure._SIMPLE.match(data, 0) is not None  # the one-call reader's pattern too
    assert time.thread_time() - start < 2.0


def test_found_a_dss_with_a_key_pyhanko_does_not_expect(context: Context, pdf_verifier: PdfVerifier) -> None:
    """Found by this fuzzer: a DSS key changed (here /CRLs → /CRLz); pyHanko's difference analysis calls
    it suspicious (FAILED), the fast path read past it and passed. It now declines any DSS shape the
    full path would not accept."""
    base = _sealed(context)
    at = base.rindex(b"/CRLs")
    mutant = base[:at] + b"/CRLz" + base[at + 5 :]
    assert compare(pdf_verifier, mutant) == "declined"
    assert pdf_verifier.full(mutant).result != "PASSED"


def test_found_metadata_that_is_not_xmp_in_a_later_revision(context: Context, pdf_verifier: PdfVerifier) -> None:
    """Found by this fuzzer: well-formed XML whose root is not x:xmpmeta in the XMP pyHanko rewrote with
    the B-LT update ("Metadata does not look like XMP": FAILED on the full path); the fast path passed."""
    base = context.signing.seal_pdf(
        make_pdf(), seal_id="demo-530000-p256", caller=CALLER, placement=Placement(), level="B-LT"
    ).pdf
    start = base.rindex(b"<x:xmpmeta")
    end = base.index(b"</x:xmpmeta>", start)
    mutant = base[:start] + b"<x:xmpmetx" + base[start + 10 : end] + b"</x:xmpmetx>" + base[end + 12 :]
    assert compare(pdf_verifier, mutant) in ("declined", "agreed")
    assert pdf_verifier.full(mutant).result != "PASSED"


def test_found_strings_and_names_pyhanko_refuses(context: Context, pdf_verifier: PdfVerifier) -> None:
    """Found by this fuzzer: a raw non-ASCII byte in a name, and an escape such as backslash-0xB0 in a
    literal string, in the B-LT update: the PDF spec lets a reader take them, pyHanko refuses them (a
    FORMAT_FAILURE), and the fast path passed. It now reads names and strings as pyHanko does."""
    from verify import pdf_structure

    for bad in (b"/Ab\xb0c", b"/A#zz"):
        with pytest.raises(pdf_structure.StructureError):
            pdf_structure.parse_value(bad, 0)
    for bad in (b"(a\\\xb0b\n)", b"(a\\8b\n)"):
        with pytest.raises(pdf_structure.StructureError):
            pdf_structure._parse_literal(bad, 0)
    assert pdf_structure._parse_literal(b"(a\\%b\\_c\n)", 0)[0] == b"a%b_c\n"
    base = _sealed(context)
    at = base.rindex(b"/Type /VRI")
    mutant = base[: at + 6] + b"\xb0" + base[at + 7 :]  # /Type /\xb0RI
    assert compare(pdf_verifier, mutant) == "declined"
    assert pdf_verifier.full(mutant).result != "PASSED"


def test_found_references_and_octal_escapes_pyhanko_refuses(context: Context, pdf_verifier: PdfVerifier) -> None:
    """Found by this fuzzer: "22 0\\x00R" (NUL as the space inside a reference) and an octal escape
    beyond a byte (\\477) in the B-LT update: the spec allows both, pyHanko refuses them (FORMAT_FAILURE),
    the fast path passed. It now reads them as pyHanko does, or declines."""
    from verify import pdf_structure

    with pytest.raises(pdf_structure.StructureError):
        pdf_structure.parse_value(b"[ 22 0\x00R ]", 0)
    for bad in (b"(a\\477b)", b"(a\\477b\n)"):
        with pytest.raises(pdf_structure.StructureError):
            pdf_structure.parse_value(bad, 0)
    assert pdf_structure.parse_value(b"(a\\377b)", 0)[0] == b"a\xffb"
    base = _sealed(context)
    at = base.rindex(b" 0 R ]", 0, base.rindex(b"/Type /VRI") + 400)
    mutant = base[: at + 2] + b"\x00" + base[at + 3 :]  # "N 0\x00R ]"
    assert compare(pdf_verifier, mutant) == "declined"
    assert pdf_verifier.full(mutant).result != "PASSED"
