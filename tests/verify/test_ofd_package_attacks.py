"""Attacks on the OFD package (issue 10): entry names that readers resolve differently, and rendered
content that the signature's References do not cover. Each attacked package is derived from a
document sealed with a demo seal that verifies PASSED; each attack verified PASSED before the fix."""

from __future__ import annotations

import io
import posixpath
import unicodedata
import zipfile
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.context import Context
from seal.demo import create_demo_seals
from tests.fixtures import examples
from tests.verify import ofd_builder as b
from verify.ofd_package import OfdFormatError, Package
from verify.report import FAILED, PASSED

SEAL = "demo-370000-sm2"
TAMPERED = b.content(page_text="Licence 0001: Mallory Ltd.")[b.PAGE]


@pytest.fixture(scope="module")
def material(context: Context) -> Any:
    create_demo_seals(context.seals, actor="test")
    return context.seals.for_signing(SEAL, role="issuer", caller="t", caller_seal_ids=("*",))


def _verify(context: Context, data: bytes) -> dict[str, Any]:
    report: dict[str, Any] = context.verification.verifier().verify(data).as_json()
    return report


def _check(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in report["signatures"][0]["checks"] if c["name"] == name)


def _is_format_failure(report: dict[str, Any], *named: str) -> bool:
    return (
        report["result"] == FAILED
        and report.get("code") == "FORMAT_FAILURE"
        and report["checks"][0]["code"] == "FORMAT_FAILURE"
        and all(repr(name) in report["detail"] for name in named)
    )


def test_the_sealed_test_document_passes(context: Context, material: Any) -> None:
    report = _verify(context, b.zipped(b.seal(material, b.content()).items()))
    assert report["result"] == PASSED, report
    assert "cover every rendered file" in _check(report, "references")["detail"]
    tampered = {**b.seal(material, b.content()), b.PAGE: TAMPERED}
    assert _check(_verify(context, b.zipped(tampered.items())), "references")["code"] == "REFERENCE_FAILURE"


# -- one name, two entries ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # the tampered page under the real name, the original under an alias that a normalising lookup
        # took for the same name (the last entry won): every exact-name reader shows the tampered page
        ((b.PAGE, TAMPERED), (b.PAGE.replace("/", "\\"), None)),
        ((b.PAGE, TAMPERED), ("Doc_0/./Pages/Page_0/Content.xml", None)),
        ((b.PAGE, TAMPERED), ("./" + b.PAGE, None)),
        ((b.PAGE, TAMPERED), ("Doc_0//Pages/Page_0/Content.xml", None)),
        ((b.PAGE, TAMPERED), ("Doc_0/Pages/../Pages/Page_0/Content.xml", None)),
        ((b.PAGE, TAMPERED), ("/" + b.PAGE, None)),
        # exact duplicate: zipfile's lookup takes the last entry, streaming readers the first
        ((b.PAGE, TAMPERED), (b.PAGE, None)),
        # the original under the real name, the tampered page under a name that a case-folding reader
        # (Windows, macOS: extracted later, it overwrites the original) takes for the same file
        ((b.PAGE, None), (b.PAGE.lower(), TAMPERED)),
        ((b.PAGE, None), (b.PAGE.upper(), TAMPERED)),
        ((b.PAGE, None), (b.PAGE + ".", TAMPERED)),
        ((b.PAGE, None), (b.PAGE.replace("Page_0", "Ｐａｇｅ_0"), TAMPERED)),  # fullwidth: NFKC folds it
    ],
)
def test_aliased_entry_names_are_a_format_failure(
    context: Context, material: Any, first: tuple[str, bytes | None], second: tuple[str, bytes | None]
) -> None:
    signed = b.seal(material, b.content())
    entries = [(n, d) for n, d in signed.items() if n != b.PAGE]
    entries += [(name, data if data is not None else signed[b.PAGE]) for name, data in (first, second)]
    report = _verify(context, b.zipped(entries))
    assert _is_format_failure(report, first[0], second[0]), report


def test_non_canonical_names_alone_are_a_format_failure(context: Context, material: Any) -> None:
    signed = b.seal(material, b.content())
    for name in ("../outside.xml", "Doc_0/../../outside.xml", "/Doc_0/extra.xml", "C:/extra.xml",
                 "Doc_0\\extra.xml", "Doc_0/\x01extra.xml", "Doc_0/./extra.xml"):  # fmt: skip
        report = _verify(context, b.zipped([*signed.items(), (name, b"x")]))
        assert _is_format_failure(report, name), (name, report)


def test_nul_in_a_name_is_a_format_failure(context: Context, material: Any) -> None:
    """zipfile cuts names at NUL (so "…Content.xml\\0.bak" is the page for it); other readers do not."""
    signed = b.seal(material, b.content())
    entries = [(n.encode(), d) for n, d in signed.items() if n != b.PAGE]
    entries += [(b.PAGE.encode(), TAMPERED), (b.PAGE.encode() + b"\x00.bak", signed[b.PAGE])]
    report = _verify(context, b.raw_zip(entries))
    assert report["result"] == FAILED and report["code"] == "FORMAT_FAILURE", report
    assert "NUL or control character" in report["detail"]


def test_names_without_the_utf8_flag_are_compared_in_every_encoding_readers_use(
    context: Context, material: Any
) -> None:
    """An unflagged name is CP437 to zipfile and GBK to many Chinese readers: the GBK bytes of 页.xml and
    the UTF-8 name 页.xml are one file to such a reader."""
    signed = b.seal(material, b.content())
    entries = [(n.encode(), d) for n, d in signed.items()]
    entries += [("Doc_0/页.xml".encode(), b"a"), ("Doc_0/页.xml".encode("gbk"), b"b")]
    report = _verify(context, b.raw_zip(entries, utf8=False))
    assert report["result"] == FAILED and report["code"] == "FORMAT_FAILURE", report


def test_a_local_header_naming_another_file_is_a_format_failure(context: Context, material: Any) -> None:
    """Streaming readers (Java's ZipInputStream, many OFD readers) see local headers, not the directory:
    an unreferenced entry whose local header carries the page's name is a second page for them."""
    signed = b.seal(material, b.content())
    decoy = b.PAGE[:-1] + "_"  # same length
    data = b.raw_zip([*((n.encode(), d) for n, d in signed.items()), (decoy.encode(), TAMPERED)])
    at = data.index(decoy.encode())  # the local header's copy comes first
    patched = data[:at] + b.PAGE.encode() + data[at + len(decoy) :]
    report = _verify(context, patched)
    assert report["result"] == FAILED and "local header names another file" in report["detail"], report


def test_an_entry_hidden_from_the_central_directory_is_a_format_failure(context: Context, material: Any) -> None:
    """A local entry that the central directory does not list: zipfile never sees it, a streaming reader
    shows it (here before everything else: zipfile takes leading bytes for a self-extractor stub)."""
    hidden = b.raw_zip([(b.PAGE.encode(), TAMPERED)])
    hidden = hidden[: hidden.index(b"PK\x01\x02")]
    signed = b.zipped(b.seal(material, b.content()).items())
    assert _verify(context, signed)["result"] == PASSED
    report = _verify(context, hidden + signed)
    assert report["result"] == FAILED and "no directory entry lists" in report["detail"], report


# -- rendered content that no Reference covers -----------------------------------------------------


def _uncovered(report: dict[str, Any], *named: str) -> bool:
    check = _check(report, "references")
    return (
        report["result"] == FAILED
        and (check["status"], check["code"]) == (FAILED, "UNCOVERED_CONTENT")
        and all(name in check["detail"] for name in named)
    )


def test_a_page_added_through_an_uncovered_document_root(context: Context, material: Any) -> None:
    """KingGrid (999.ofd) does not cover OFD.xml: pointing DocRoot at a new Document.xml that adds a page
    leaves every Reference intact."""
    files = b.content()
    signed = b.seal(material, files, covered=[n for n in files if n != "OFD.xml"])
    assert _verify(context, b.zipped(signed.items()))["result"] == PASSED
    attacked = {
        **signed,
        "OFD.xml": signed["OFD.xml"].replace(b"Doc_0/Document.xml", b"Doc_0/Document2.xml"),
        "Doc_0/Document2.xml": b.document(pages=2),
        "Doc_0/Pages/Page_1/Content.xml": TAMPERED,
    }
    report = _verify(context, b.zipped(attacked.items()))
    assert _uncovered(report, "Doc_0/Document2.xml (DocRoot)", "Doc_0/Pages/Page_1/Content.xml (page 2"), report


def test_a_page_added_to_an_uncovered_document_xml(context: Context, material: Any) -> None:
    files = b.content()
    signed = b.seal(material, files, covered=[n for n in files if n != "Doc_0/Document.xml"])
    attacked = {**signed, "Doc_0/Document.xml": b.document(pages=2), "Doc_0/Pages/Page_1/Content.xml": TAMPERED}
    report = _verify(context, b.zipped(attacked.items()))
    assert _uncovered(report, "Doc_0/Document.xml", "Doc_0/Pages/Page_1/Content.xml"), report


@pytest.mark.parametrize("swapped", ["Doc_0/Res/image_7.png", "Doc_0/Res/font_3.ttf", "Doc_0/Tpls/Tpl_0/Content.xml"])
def test_an_uncovered_resource_or_template_swapped(context: Context, material: Any, swapped: str) -> None:
    files = b.content()
    signed = b.seal(material, files, covered=[n for n in files if n != swapped])
    report = _verify(context, b.zipped({**signed, swapped: TAMPERED}.items()))
    assert _uncovered(report, swapped), report


def test_an_annotation_added_after_signing(context: Context, material: Any) -> None:
    """Document.xml names an annotation list that did not exist when it was sealed; adding one later changes
    no covered file."""
    files = {n: d for n, d in b.content().items() if not n.startswith("Doc_0/Annots/")}
    signed = b.seal(material, files)
    assert _verify(context, b.zipped(signed.items()))["result"] == PASSED
    report = _verify(context, b.zipped({**signed, **b.annotation_files()}.items()))
    assert _uncovered(report, "Doc_0/Annots/Annotations.xml", "Doc_0/Annots/Page_0/Annotation.xml"), report


def test_page_resources_are_rendered_content(context: Context, material: Any) -> None:
    files = b.content()
    page = files[b.PAGE].replace(b"<ofd:Content>", b"<ofd:PageRes>PageRes.xml</ofd:PageRes><ofd:Content>")
    files = {**files, b.PAGE: page, "Doc_0/Pages/Page_0/PageRes.xml": files["Doc_0/DocumentRes.xml"]}
    signed = b.seal(material, files, covered=[n for n in files if n != "Doc_0/Pages/Page_0/PageRes.xml"])
    assert _uncovered(_verify(context, b.zipped(signed.items())), "Doc_0/Pages/Page_0/PageRes.xml"), signed


def test_a_page_only_a_lenient_reader_finds_must_be_covered(context: Context, material: Any) -> None:
    """Document.xml names Pages/Page_1/Content.xml, which is not in the package when sealed: a reader that
    folds case shows pages/page_1/content.xml when it is added."""
    files = {**b.content(), "Doc_0/Document.xml": b.document(pages=2)}
    signed = b.seal(material, files)
    report = _verify(context, b.zipped(signed.items()))
    assert report["result"] == PASSED and "Doc_0/Pages/Page_1/Content.xml (page 2" in str(report), report
    report = _verify(context, b.zipped({**signed, "Doc_0/pages/page_1/content.xml": TAMPERED}.items()))
    assert _uncovered(report, "Doc_0/pages/page_1/content.xml"), report


def test_an_unsigned_document_beside_the_sealed_one(context: Context, material: Any) -> None:
    """A second DocBody (here put first: readers show the first document) that no signature covers."""
    files = b.content()
    signed = b.seal(material, files, covered=[n for n in files if n != "OFD.xml"])
    attacked = {
        **signed,
        "OFD.xml": b.ofd_xml("Doc_1/Document.xml", "Doc_0/Document.xml", signed=1),
        "Doc_1/Document.xml": b.document(),
        "Doc_1/Pages/Page_0/Content.xml": TAMPERED,
    }
    report = _verify(context, b.zipped(attacked.items()))
    assert report["signatures"][0]["result"] == PASSED  # the sealed document itself is intact
    assert report["result"] == FAILED, report
    check = report["checks"][0]
    assert (check["name"], check["code"]) == ("references", "UNCOVERED_CONTENT")
    assert "Doc_1/Pages/Page_0/Content.xml" in check["detail"]


def test_a_seal_file_that_is_not_the_signing_seal(context: Context, material: Any) -> None:
    """Seal/BaseLoc names a Seal.esl that no Reference covers (readers may draw the stamp from it): it must
    be the seal inside SignedValue.dat, not another organisation's."""
    other = context.seals.for_signing("demo-530000-sm2", role="issuer", caller="t", caller_seal_ids=("*",))
    signed = b.seal(material, b.content(), seal_file=material.seal.esl_der)
    report = _verify(context, b.zipped(signed.items()))
    assert report["result"] == PASSED, report
    swapped = {**signed, "Doc_0/Signs/Sign_0/Seal.esl": other.seal.esl_der}
    assert _uncovered(_verify(context, b.zipped(swapped.items())), "Doc_0/Signs/Sign_0/Seal.esl"), swapped


def test_unrendered_uncovered_files_are_listed_without_failing(context: Context, material: Any) -> None:
    files = {**b.content(), "Doc_0/Attachs/notes.txt": b"n"}
    signed = b.seal(material, files, covered=[n for n in files if not n.startswith(("Doc_0/Tags/", "Doc_0/Attachs/"))])
    report = _verify(context, b.zipped({**signed, "Doc_0/Tags/Extra.xml": b"<x/>"}.items()))
    check = _check(report, "references")
    assert report["result"] == PASSED and (check["status"], check["code"]) == (PASSED, "OK"), report
    assert (
        "not rendered, not covered: Doc_0/Attachs/notes.txt, Doc_0/Tags/CustomTags.xml, Doc_0/Tags/Extra.xml"
        in (check["detail"])
    )


# -- name canonicalisation, as a property ----------------------------------------------------------

TOKENS = ["a", "A", "b", "Page", "page", "/", "\\", ".", "..", "./", "//", " ", "é", "e\u0301", "Ａ", "\x00", "\x07"]


def _lenient(name: str) -> str:
    """What a forgiving reader makes of a name (independently of the implementation under test)."""
    name = name.split("\x00", 1)[0].replace("\\", "/")
    name = posixpath.normpath("/" + name).lstrip("/")
    return unicodedata.normalize("NFKC", name).casefold()


@settings(max_examples=examples(300), deadline=None)
@given(st.lists(st.sampled_from(TOKENS), min_size=1, max_size=6), st.lists(st.sampled_from(TOKENS), max_size=6))
def test_names_a_lenient_reader_could_confuse_are_refused(first: list[str], second: list[str]) -> None:
    one = "".join(first)
    other = "".join(second) or one  # an exact duplicate, sometimes
    data = b.raw_zip([(one.encode(), b"1"), (other.encode(), b"2")])
    try:
        package = Package(data)
    except OfdFormatError:
        return
    assert _lenient(one) != _lenient(other), (one, other)
    assert set(package.names) == {one, other} and package.read(one) == b"1" and package.read(other) == b"2"


def test_vendor_packages_have_canonical_names() -> None:
    from tests.verify.test_bad_input import INTEROP

    for path in sorted(INTEROP.glob("*.ofd")):
        package = Package(path.read_bytes())
        with zipfile.ZipFile(io.BytesIO(path.read_bytes())) as plain:
            assert set(package.names) == set(plain.namelist()), path.name


def test_vendor_samples_cover_what_they_render() -> None:
    """Every rendered file of the vendor samples is covered by their References; KingGrid (999.ofd) leaves
    OFD.xml out (it inserts the Signatures element into OFD.xml when sealing), which is listed, not failed:
    what OFD.xml selects (Document.xml and all below it) must be covered, and is."""
    from tests.verify.test_bad_input import INTEROP, VERIFIER

    details = {}
    for name in ("1.ofd", "999.ofd"):
        check = _check(VERIFIER.verify((INTEROP / name).read_bytes()).as_json(), "references")
        assert (check["status"], check["code"]) == (PASSED, "OK"), (name, check)
        details[name] = check["detail"]
    assert details["1.ofd"] == "all 13 protected files match their SM3 check values and cover every rendered file"
    assert details["999.ofd"].endswith("cover every rendered file; not rendered, not covered: OFD.xml (its metadata; "
                                       "what it selects is checked above)")  # fmt: skip


def test_following_the_structure_costs_bounded_work() -> None:
    """Thousands of DocBodies naming one large Document.xml: parsed structure is budgeted per package."""
    from tests.verify.test_bad_input import VERIFIER

    padding = "".join(f'<ofd:CustomTag ID="{n}">{"x" * 200}</ofd:CustomTag>' for n in range(500))
    files = {
        "OFD.xml": b.ofd_xml(*["Doc_0/Document.xml"] * 1000),
        "Doc_0/Document.xml": b.document(extra=padding),
    }
    report = VERIFIER.verify(b.zipped(files.items())).as_json()
    assert report["result"] == FAILED and "bytes of structure to follow" in report["detail"], report
