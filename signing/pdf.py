"""Seal a PDF: a pyHanko signature whose CMS is SM2-with-SM3 (or ECDSA-P256 / SHA-256), signed by the seal
holder's certificate, with the seal picture as the visible appearance and the `SESeal` carried as a
signed attribute (OID `SESEAL_ATTRIBUTE`), so a verifier can show the seal and check it is the one the
signer meant: it is covered by the signature and cannot be swapped.
"""

from __future__ import annotations

import asyncio
import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

from asn1crypto import algos, x509
from PIL import Image
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.images import PdfImage
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.metadata.xmp_xml import MetadataStream
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.pdf_utils.writer import BasePdfFileWriter
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.sign.signers.pdf_signer import PdfTBSDocument
from pyhanko.sign.validation import read_certification_data
from pyhanko.stamp import StaticStampStyle
from pyhanko_certvalidator.registry import SimpleCertificateStore

import gm.asn1  # noqa: F401  (registers SM2 / SM3 with asn1crypto)
from keys.custody import SigningHandle
from policies.pdf_content import PYHANKO, find_active_content
from signing.cms import CMSTemplate
from signing.errors import (
    KeywordNotFound,
    PageOutOfRange,
    PdfActiveContent,
    PdfCertifiedNoChanges,
    PdfCertifyNotFirst,
    PdfEncrypted,
    PdfMalformed,
    PdfNoPages,
    PlacementInvalid,
)

MM = 72 / 25.4


class SealSigner(signers.Signer):
    """A pyHanko signer whose private key stays in custody. pyHanko uses it for the signature field,
    appearance and digest choice; the CMS itself comes from `signing.cms.CMSTemplate`."""

    def __init__(self, handle: SigningHandle, certificate: bytes) -> None:
        cert = x509.Certificate.load(certificate)
        self.family = str(handle.algorithm)
        mechanism = "sm2_sm3" if self.family == "sm2" else "sha256_ecdsa"
        super().__init__(
            signing_cert=cert,
            cert_registry=SimpleCertificateStore(),  # the CMS (and its certificates) is built by signing.cms
            signature_mechanism=algos.SignedDigestAlgorithm({"algorithm": mechanism}),
            embed_roots=True,
        )
        self._handle = handle

    @property
    def digest_algorithm(self) -> str:
        return "sm3" if self.family == "sm2" else "sha256"

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        if digest_algorithm != self.digest_algorithm:
            raise ValueError(f"{self.family} seals sign with {self.digest_algorithm}, not {digest_algorithm}")
        if dry_run:
            return bytes(72)
        return self._handle.sign(data)


@dataclass(frozen=True)
class _EncodedPicture:
    width: int
    height: int
    rgb: bytes  # Flate-compressed samples
    alpha: bytes | None


@lru_cache(maxsize=64)
def _encoded_picture(png: bytes) -> _EncodedPicture:
    """A seal picture as Flate-compressed image samples, compressed once per picture (not per document:
    compressing 500x500 RGBA was a third of the sealing time)."""
    image = Image.open(io.BytesIO(png)).convert("RGBA")
    alpha = image.getchannel("A")
    return _EncodedPicture(
        width=image.width,
        height=image.height,
        rgb=zlib.compress(image.convert("RGB").tobytes()),
        alpha=zlib.compress(alpha.tobytes()) if alpha.getextrema() != (255, 255) else None,
    )


class SealPicture(PdfImage):
    """pyHanko's PdfImage, writing pre-compressed samples instead of re-encoding the picture."""

    def __init__(self, png: bytes) -> None:
        self.encoded = _encoded_picture(png)
        super().__init__(Image.new("L", (self.encoded.width, self.encoded.height)))

    @property
    def image_ref(self) -> generic.IndirectObject:
        assert self.writer is not None
        ref = self._image_ref
        if ref is None or ref.get_pdf_handler() is not self.writer:
            self._image_ref = ref = self._write(self.writer)
        return ref

    def _write(self, writer: BasePdfFileWriter) -> generic.IndirectObject:
        picture = self.encoded

        def image(data: bytes, colour: str, extra: dict[generic.NameObject, object]) -> generic.IndirectObject:
            entries = {
                pdf_name("/Type"): pdf_name("/XObject"),
                pdf_name("/Subtype"): pdf_name("/Image"),
                pdf_name("/Width"): generic.NumberObject(picture.width),
                pdf_name("/Height"): generic.NumberObject(picture.height),
                pdf_name("/ColorSpace"): pdf_name(colour),
                pdf_name("/BitsPerComponent"): generic.NumberObject(8),
                pdf_name("/Filter"): pdf_name("/FlateDecode"),
                **extra,
            }
            ref: generic.IndirectObject = writer.add_object(generic.StreamObject(entries, encoded_data=data))
            return ref

        extra: dict[generic.NameObject, object] = {}
        if picture.alpha is not None:
            extra[pdf_name("/SMask")] = image(picture.alpha, "/DeviceGray", {})
        return image(picture.rgb, "/DeviceRGB", extra)


@dataclass(frozen=True)
class Placement:
    page: int | None = None  # 1-based; None = last page
    x_mm: float | None = None  # lower-left of the seal, from the page's lower left
    y_mm: float | None = None
    size_mm: float = 42.0
    keyword: str | None = None  # centre the seal on this text instead


@dataclass(frozen=True)
class Sealed:
    pdf: bytes
    field_name: str
    page: int  # 1-based
    document_digest: bytes  # the messageDigest: SM3 (or SHA-256) of the signed byte ranges
    cms: bytes = b""  # the CMS ContentInfo written into /Contents


def open_pdf(data: bytes) -> PdfFileReader:
    """Parse enough to refuse what cannot be sealed, with the reason."""
    if not data.lstrip()[:5].startswith(b"%PDF-"):
        raise PdfMalformed("not a PDF (no %PDF- header)")
    try:
        reader = PdfFileReader(io.BytesIO(data), strict=False)
        if reader.encrypted:
            raise PdfEncrypted("the PDF is encrypted; seal the unencrypted document")
        count = int(reader.root["/Pages"]["/Count"])
    except (PdfEncrypted, PdfNoPages):
        raise
    except (PdfError, KeyError, ValueError, TypeError, IndexError, AttributeError, RecursionError) as exc:
        raise PdfMalformed(f"unreadable PDF: {exc}") from None
    if count < 1:
        raise PdfNoPages("the PDF has no pages")
    return reader


def check_document(
    reader: PdfFileReader, *, certify: bool = False, adds_metadata: bool = False, allow_active_content: bool = False
) -> int | None:
    """What this document permits sealing to do. Active content (policies/pdf_content.py) is sealed
    only on request: a seal would vouch for a document that runs code or opens files by itself. A
    certification signature (/Perms /DocMDP) or a field lock on an approval signature sets a level: P=1
    forbids any change, a signature included; P=2 (form filling and signing) and P=3 (also annotations)
    allow signing an empty signature field the document has (see `_empty_field`), not licence metadata
    (a catalog change). A
    certification signature must be the first one. Returns the DocMDP level (None: not certified)."""
    try:
        found = find_active_content(reader.root, PYHANKO)
    except (PdfError, KeyError, ValueError, TypeError, IndexError, AttributeError, RecursionError) as exc:
        found = [f"not fully scanned: {exc}"]
    if found and not allow_active_content:
        raise PdfActiveContent(
            f"the PDF carries active content ({'; '.join(found)}); seal it only with allow_active_content=true",
            active_content=found,
        )
    signed = [name for name, _, _ in fields.enumerate_sig_fields(reader, filled_status=True)]
    if certify and signed:
        raise PdfCertifyNotFirst(f"a certification signature must be the first; the PDF is signed ({signed[0]})")
    level = mdp_level(reader)
    if level == 1:
        raise PdfCertifiedNoChanges("the PDF is certified with DocMDP P=1: no change, not even a seal, is permitted")
    if level is not None and adds_metadata:
        raise PdfCertifiedNoChanges(
            f"the PDF is certified with DocMDP P={level}: it permits a seal, not licence metadata (a catalog change)"
        )
    return level


def _empty_field(reader: PdfFileReader, wanted: str | None, level: int) -> tuple[str, int]:
    """The empty signature field a certified document (DocMDP P=2 or 3) is sealed in, and its page:
    a new visible field would break the certification (pyHanko's difference analysis, which our
    verifier uses, allows it only after approval signatures, as Acrobat does)."""
    empty = [(name, field) for name, _, field in fields.enumerate_sig_fields(reader, filled_status=False)]
    chosen = next(((n, f) for n, f in empty if n == wanted), None) if wanted else (empty[0] if empty else None)
    if chosen is None:
        raise PdfCertifiedNoChanges(
            f"the PDF is certified with DocMDP P={level}: a seal may only fill one of its empty signature fields, "
            + ("and it has none" if not empty else f"and {wanted!r} is not one of them")
        )
    name, field = chosen
    try:
        widget = field.get_object()
        if "/Kids" in widget:
            widget = widget["/Kids"][0]
        page_ref = widget.raw_get("/P")
        pages = int(reader.root["/Pages"]["/Count"])
        number = next(i + 1 for i in range(pages) if reader.find_page_for_modification(i)[0].idnum == page_ref.idnum)
    except (PdfError, KeyError, ValueError, TypeError, StopIteration, AttributeError):
        number = 0  # (a widget without /P: the page is not known)
    return name, number


def mdp_level(reader: PdfFileReader) -> int | None:
    """The strictest DocMDP permission any signature sets: the certification signature's (/Perms
    /DocMDP, P=2 when absent) or a field lock's /P (PDF 2.0 FieldMDP); one that cannot be read counts
    as P=1. None when no signature sets one."""
    levels: list[int] = []
    try:
        info = read_certification_data(reader)
        if info is not None:
            levels.append(int(info.permission.value))
        for _, value, _ in fields.enumerate_sig_fields(reader, filled_status=True):
            references = value.get_object().get("/Reference", generic.ArrayObject())
            for reference in references if isinstance(references, generic.ArrayObject) else [references]:
                transform = reference.get_object()
                if transform.get("/TransformMethod") not in ("/DocMDP", "/FieldMDP"):
                    continue
                permission = transform.get("/TransformParams", generic.DictionaryObject()).get("/P")
                if permission is not None:
                    levels.append(int(permission) if int(permission) in (1, 2, 3) else 1)
    except (PdfError, KeyError, ValueError, TypeError, IndexError, AttributeError, RecursionError):
        levels.append(1)
    return min(levels) if levels else None


def _page_box(reader: PdfFileReader, index: int) -> tuple[float, float, float, float]:
    page = reader.find_page_for_modification(index)[0].get_object()
    box = page.get("/CropBox") or page.get("/MediaBox") or reader.root["/Pages"].get("/MediaBox")
    if box is None:
        raise PdfMalformed(f"page {index + 1} has no MediaBox")
    values = [float(v) for v in box.get_object()]
    return values[0], values[1], values[2], values[3]


def seal_pdf(
    data: bytes,
    *,
    handle: SigningHandle,
    certificate: bytes,
    chain: list[bytes],
    seal_der: bytes | None,
    picture_png: bytes,
    placement: Placement,
    field_name: str | None = None,
    pades: bool = False,
    certify: bool = False,
    reason: str | None = None,
    location: str | None = None,
    xmp: bytes | None = None,
    unsigned: Callable[[bytes], list[bytes]] | None = None,
    unsigned_allowance: int = 0,
    find_keyword: object | None = None,
    allow_active_content: bool = False,
    unsigned_later: Callable[[], tuple[int, Callable[[bytes], list[bytes]]]] | None = None,
) -> Sealed:
    """Refused before anything is signed: active content unless `allow_active_content`, and what a
    certification signature's DocMDP permissions forbid (see `check_document`). `unsigned_later`
    gives (allowance, unsigned) once the document is accepted: preparing a timestamp unit may issue
    its certificate, which a refused document must not cause."""
    reader = open_pdf(data)
    level = check_document(
        reader, certify=certify, adds_metadata=xmp is not None, allow_active_content=allow_active_content
    )
    pages = int(reader.root["/Pages"]["/Count"])
    page_number = placement.page if placement.page is not None else pages
    if not 1 <= page_number <= pages:
        raise PageOutOfRange(f"page {page_number} is not in 1..{pages}")
    index = page_number - 1
    size = placement.size_mm * MM
    left, bottom, right, top = _page_box(reader, index)
    if placement.keyword:
        if find_keyword is None:
            raise KeywordNotFound("keyword placement needs text extraction")
        assert callable(find_keyword)
        centre = find_keyword(data, index, placement.keyword)
        if centre is None:
            raise KeywordNotFound(f"{placement.keyword!r} does not occur on page {page_number}")
        x, y = centre[0] - size / 2, centre[1] - size / 2
    elif placement.x_mm is not None and placement.y_mm is not None:
        x, y = left + placement.x_mm * MM, bottom + placement.y_mm * MM
    else:  # default: lower right, 20 mm from the edges
        x, y = right - 20 * MM - size, bottom + 20 * MM
    if not (0 < size <= min(right - left, top - bottom)):
        raise PlacementInvalid("seal size must be positive and fit the page")
    box = (round(x, 2), round(y, 2), round(x + size, 2), round(y + size, 2))
    if box[0] < left - 1 or box[1] < bottom - 1 or box[2] > right + 1 or box[3] > top + 1:
        raise PlacementInvalid(f"the seal at {box} falls outside the page {left, bottom, right, top}")

    existing = {f[0] for f in fields.enumerate_sig_fields(reader)}
    name = field_name or _free_name(existing)
    new_field: fields.SigFieldSpec | None = fields.SigFieldSpec(sig_field_name=name, on_page=index, box=box)
    if level is not None:  # certified: only an empty signature field it already has may be signed
        name, page_number = _empty_field(reader, field_name, level)
        new_field = None
    signer = SealSigner(handle, certificate)
    style = StaticStampStyle(
        background=SealPicture(picture_png),
        border_width=0,
        background_opacity=1.0,
    )
    meta = signers.PdfSignatureMetadata(
        field_name=name,
        md_algorithm=signer.digest_algorithm,
        subfilter=SigSeedSubFilter.PADES if pades else SigSeedSubFilter.ADOBE_PKCS7_DETACHED,
        reason=reason,
        location=location,
        certify=certify,
        use_pades_lta=False,
    )
    pdf_signer = signers.PdfSigner(
        meta,
        signer=signer,
        stamp_style=style,
        new_field_spec=new_field,
    )
    if unsigned_later is not None:  # every refusal is behind us
        unsigned_allowance, unsigned = unsigned_later()
    template = _template(certificate, tuple(chain), signer.family, seal_der)
    writer = IncrementalPdfFileWriter.from_reader(reader)
    if xmp is not None:  # licence metadata, in the same revision as the seal: covered by the signature
        # a pyHanko MetadataStream: pyHanko merges its producer / date fields into our packet on write
        metadata = MetadataStream(
            {pdf_name("/Type"): pdf_name("/Metadata"), pdf_name("/Subtype"): pdf_name("/XML")}, stream_data=xmp
        )
        writer.root[pdf_name("/Metadata")] = writer.add_object(metadata)
        writer.update_root()
    out = io.BytesIO()
    signing_time = datetime.now(UTC)

    async def interrupted() -> tuple[bytes, bytes]:
        # pyHanko lays out the field, appearance and byte ranges; the CMS is ours (see signing.cms)
        prepared, _, output = await pdf_signer.async_digest_doc_for_signing(
            writer,
            bytes_reserved=2 * template.max_size(unsigned_allowance),
            output=out,  # hex digits
        )
        content = template.build(prepared.document_digest, signing_time, handle.sign, unsigned)
        await PdfTBSDocument.async_finish_signing(output, prepared, content)
        digest: bytes = prepared.document_digest
        return digest, content

    try:
        document_digest, cms_der = asyncio.run(interrupted())
    except PdfError as exc:
        raise PdfMalformed(f"cannot seal this PDF: {exc}") from None
    return Sealed(pdf=out.getvalue(), field_name=name, page=page_number, document_digest=document_digest, cms=cms_der)


@lru_cache(maxsize=256)
def _template(certificate: bytes, chain: tuple[bytes, ...], family: str, seal_der: bytes | None) -> CMSTemplate:
    return CMSTemplate.for_seal(certificate, list(chain), family, seal_der)


def _free_name(existing: set[str]) -> str:
    n = 1
    while f"Seal{n}" in existing:
        n += 1
    return f"Seal{n}"
