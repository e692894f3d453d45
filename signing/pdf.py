"""Seal a PDF: a pyHanko signature whose CMS is SM2-with-SM3 (or ECDSA-P256 / SHA-256), signed by the seal
holder's certificate, with the seal picture as the visible appearance and the `SESeal` carried as a
signed attribute (OID `SESEAL_ATTRIBUTE`), so a verifier can show the seal and check it is the one the
signer meant: it is covered by the signature and cannot be swapped.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from asn1crypto import algos, cms, core, x509
from PIL import Image
from pyhanko.pdf_utils.images import PdfImage
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.attributes import CMSAttributeProvider
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko.stamp import StaticStampStyle
from pyhanko_certvalidator.registry import SimpleCertificateStore

import gm.asn1  # noqa: F401  (registers SM2 / SM3 with asn1crypto)
from keys.custody import SigningHandle
from signing.errors import (
    KeywordNotFound,
    PageOutOfRange,
    PdfEncrypted,
    PdfMalformed,
    PdfNoPages,
    PlacementInvalid,
)

SESEAL_ATTRIBUTE = "1.3.6.1.4.1.32473.2.1"  # trustseal: DER SESeal of the applied seal (signed attribute)
MM = 72 / 25.4


def _register_attribute() -> None:
    mapping = cms.CMSAttributeType._map
    if SESEAL_ATTRIBUTE not in mapping:
        mapping[SESEAL_ATTRIBUTE] = "trustseal_eseal"
        cms.CMSAttributeType._reverse_map = None  # rebuilt lazily by asn1crypto
        cms.CMSAttribute._oid_specs["trustseal_eseal"] = cms.SetOfOctetString


_register_attribute()


class _SealAttribute(CMSAttributeProvider):
    attribute_type = "trustseal_eseal"

    def __init__(self, seal_der: bytes) -> None:
        self.seal_der = seal_der

    async def build_attr_value(self, dry_run: bool = False) -> core.OctetString:
        return core.OctetString(self.seal_der)


class SealSigner(signers.Signer):
    """A pyHanko signer whose private key stays in custody: only `async_sign_raw` touches it."""

    def __init__(self, handle: SigningHandle, certificate: bytes, chain: list[bytes], seal_der: bytes | None) -> None:
        cert = x509.Certificate.load(certificate)
        self.family = str(handle.algorithm)
        mechanism = "sm2_sm3" if self.family == "sm2" else "sha256_ecdsa"
        super().__init__(
            signing_cert=cert,
            cert_registry=SimpleCertificateStore.from_certs([x509.Certificate.load(c) for c in chain]),  # type: ignore[no-untyped-call]
            signature_mechanism=algos.SignedDigestAlgorithm({"algorithm": mechanism}),
            embed_roots=True,
        )
        self._handle = handle
        self._seal_der = seal_der

    @property
    def digest_algorithm(self) -> str:
        return "sm3" if self.family == "sm2" else "sha256"

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        if digest_algorithm != self.digest_algorithm:
            raise ValueError(f"{self.family} seals sign with {self.digest_algorithm}, not {digest_algorithm}")
        if dry_run:
            return bytes(72)
        return self._handle.sign(data)

    def _signed_attr_providers(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        yield from super()._signed_attr_providers(*args, **kwargs)
        if self._seal_der is not None:
            yield _SealAttribute(self._seal_der)


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


def _page_box(reader: PdfFileReader, index: int) -> tuple[float, float, float, float]:
    page = reader.find_page_for_modification(index)[0].get_object()  # type: ignore[no-untyped-call]
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
    timestamper: object | None = None,
    find_keyword: object | None = None,
) -> Sealed:
    reader = open_pdf(data)
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
    signer = SealSigner(handle, certificate, chain, seal_der)
    style = StaticStampStyle(
        background=PdfImage(Image.open(io.BytesIO(picture_png)).convert("RGBA")),
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
        new_field_spec=fields.SigFieldSpec(sig_field_name=name, on_page=index, box=box),
        timestamper=timestamper,  # type: ignore[arg-type]
    )
    writer = IncrementalPdfFileWriter(io.BytesIO(data), strict=False)
    out = io.BytesIO()
    try:
        pdf_signer.sign_pdf(writer, output=out)
    except PdfError as exc:
        raise PdfMalformed(f"cannot seal this PDF: {exc}") from None
    return Sealed(pdf=out.getvalue(), field_name=name, page=page_number)


def _free_name(existing: set[str]) -> str:
    n = 1
    while f"Seal{n}" in existing:
        n += 1
    return f"Seal{n}"
