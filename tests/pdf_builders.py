"""PDFs with active content, and documents certified by another signer with a chosen DocMDP level,
built with pyHanko's writer for the verification and sealing tests (issue 10)."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name, pdf_string
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import MDPPerm
from pyhanko_certvalidator.registry import SimpleCertificateStore

from tests.fixtures import make_pdf

D = generic.DictionaryObject
N = pdf_name


def _action(kind: str, **entries: generic.PdfObject) -> generic.DictionaryObject:
    return D({N("/Type"): N("/Action"), N("/S"): N("/" + kind), **{N("/" + k): v for k, v in entries.items()}})


def _js(code: str = "app.alert('hi')") -> generic.DictionaryObject:
    return _action("JavaScript", JS=pdf_string(code))


def _edit(change: Callable[[IncrementalPdfFileWriter], None], pdf: bytes | None = None) -> bytes:
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf or make_pdf()))
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _set_root(**entries: Callable[[IncrementalPdfFileWriter], generic.PdfObject]) -> Callable[[], bytes]:
    def build() -> bytes:
        def change(writer: IncrementalPdfFileWriter) -> None:
            for key, make in entries.items():
                writer.root[N("/" + key)] = make(writer)
            writer.update_root()

        return _edit(change)

    return build


def _page(**entries: Callable[[IncrementalPdfFileWriter], generic.PdfObject]) -> Callable[[], bytes]:
    def build() -> bytes:
        def change(writer: IncrementalPdfFileWriter) -> None:
            page = writer.root["/Pages"]["/Kids"][0].get_object()
            for key, make in entries.items():
                page[N("/" + key)] = make(writer)
            writer.update_container(page)

        return _edit(change)

    return build


def _page_ref(writer: IncrementalPdfFileWriter) -> generic.PdfObject:
    ref: generic.PdfObject = writer.root["/Pages"].raw_get("/Kids")[0]
    return ref


def _annotation(subtype: str, **entries: generic.PdfObject) -> Callable[[IncrementalPdfFileWriter], generic.PdfObject]:
    def make(writer: IncrementalPdfFileWriter) -> generic.PdfObject:
        rect = generic.ArrayObject([generic.NumberObject(v) for v in (72, 72, 144, 144)])
        annotation = D({N("/Type"): N("/Annot"), N("/Subtype"): N("/" + subtype), N("/Rect"): rect,
                        **{N("/" + k): v for k, v in entries.items()}})  # fmt: skip
        return generic.ArrayObject([writer.add_object(annotation)])

    return make


def _embedded_file(writer: IncrementalPdfFileWriter) -> generic.PdfObject:
    stream = writer.add_object(generic.StreamObject({N("/Type"): N("/EmbeddedFile")}, stream_data=b"MZ not really"))
    spec = D({N("/Type"): N("/Filespec"), N("/F"): pdf_string("run.exe"), N("/EF"): D({N("/F"): stream})})
    return writer.add_object(spec)


def _outline(writer: IncrementalPdfFileWriter) -> generic.PdfObject:
    outlines = writer.add_object(D({N("/Type"): N("/Outlines"), N("/Count"): generic.NumberObject(1)}))
    item = writer.add_object(D({N("/Title"): pdf_string("Start"), N("/Parent"): outlines, N("/A"): _js()}))
    outlines.get_object()[N("/First")] = item
    outlines.get_object()[N("/Last")] = item
    return outlines


def _destination(writer: IncrementalPdfFileWriter) -> generic.ArrayObject:
    return generic.ArrayObject([_page_ref(writer), N("/Fit")])


# name -> (a PDF carrying it, what the report and the refusal name)
ACTIVE: dict[str, tuple[Callable[[], bytes], str]] = {
    "open-action-javascript": (_set_root(OpenAction=lambda w: _js()), "/OpenAction (JavaScript)"),
    "open-action-uri": (
        _set_root(OpenAction=lambda w: _action("URI", URI=pdf_string("http://x.example/"))),
        "/OpenAction (URI)",
    ),
    "open-action-goto-then-javascript": (
        _set_root(OpenAction=lambda w: _action("GoTo", D=_destination(w), Next=_js())),
        "/OpenAction (JavaScript)",
    ),
    "document-additional-actions": (_set_root(AA=lambda w: D({N("/WC"): _js()})), "document /AA (JavaScript)"),
    "javascript-name-tree": (
        _set_root(
            Names=lambda w: D({N("/JavaScript"): D({N("/Names"): generic.ArrayObject([pdf_string("a"), _js()])})})
        ),
        "/Names /JavaScript",
    ),
    "embedded-files": (
        _set_root(
            Names=lambda w: D(
                {N("/EmbeddedFiles"): D({N("/Names"): generic.ArrayObject([pdf_string("run.exe"), _embedded_file(w)])})}
            )
        ),
        "/Names /EmbeddedFiles",
    ),
    "page-open-launch": (
        _page(AA=lambda w: D({N("/O"): _action("Launch", F=pdf_string("calc.exe"))})),
        "page 1 /AA (Launch)",
    ),
    "link-launch": (
        _page(Annots=_annotation("Link", A=_action("Launch", F=pdf_string("cmd.exe")))),
        "annotation /A on page 1 (Launch)",
    ),
    "file-attachment": (
        _page(Annots=lambda w: _annotation("FileAttachment", FS=_embedded_file(w))(w)),
        "file attachment annotation on page 1",
    ),
    "outline-javascript": (_set_root(Outlines=_outline), "outline item /A (JavaScript)"),
}

# plain navigation and links: not active content
BENIGN: dict[str, Callable[[], bytes]] = {
    "open-at-page": _set_root(OpenAction=_destination),
    "open-action-goto": _set_root(OpenAction=lambda w: _action("GoTo", D=_destination(w))),
    "web-link": _page(Annots=_annotation("Link", A=_action("URI", URI=pdf_string("https://www.gov.cn/")))),
}


def certified(pdf: bytes, level: int, empty_field: str | None = None) -> bytes:
    """`pdf` certified (an author signature with /Perms /DocMDP P=`level`) by an outside P-256 signer;
    `empty_field`: with an empty visible signature field of that name on page 1, for a later seal."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Another vendor's author")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    signer = signers.SimpleSigner(
        signing_cert=asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER)),
        signing_key=asn1_keys.PrivateKeyInfo.load(
            key.private_bytes(
                serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        ),
        cert_registry=SimpleCertificateStore(),
    )
    meta = signers.PdfSignatureMetadata(field_name="Author", certify=True, docmdp_permissions=MDPPerm(level))
    writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
    if empty_field is not None:
        fields.append_signature_field(writer, fields.SigFieldSpec(empty_field, on_page=0, box=(380, 60, 500, 180)))
    out: bytes = signers.sign_pdf(writer, meta, signer).getvalue()
    return out
