"""Signed OFD packages for tests: a small document (page, template, fonts, image, annotation, custom tag)
sealed with a demo seal the way vendors do it (References with SM3 CheckValues, SignedValue.dat a v4
SES_Signature whose dataHash is SM3 of Signature.xml), and zip writers that put any bytes in any name."""

from __future__ import annotations

import base64
import io
import struct
import zipfile
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from gm import ses
from gm.sm3 import sm3

NS = 'xmlns:ofd="http://www.ofdspec.org/2016"'
PAGE = "Doc_0/Pages/Page_0/Content.xml"


def _page(text: str) -> bytes:
    return (
        f'<ofd:Page {NS}><ofd:Content><ofd:Layer ID="20"><ofd:TextObject ID="21" Boundary="10 10 100 10" Font="3"'
        f' Size="5"><ofd:TextCode X="0" Y="5">{text}</ofd:TextCode></ofd:TextObject></ofd:Layer></ofd:Content>'
        "</ofd:Page>"
    ).encode()


def document(pages: int = 1, extra: str = "") -> bytes:
    listed = "".join(f'<ofd:Page ID="{10 + n}" BaseLoc="Pages/Page_{n}/Content.xml"/>' for n in range(pages))
    return (
        f"<ofd:Document {NS}><ofd:CommonData><ofd:MaxUnitID>99</ofd:MaxUnitID>"
        "<ofd:PageArea><ofd:PhysicalBox>0 0 210 297</ofd:PhysicalBox></ofd:PageArea>"
        "<ofd:PublicRes>PublicRes.xml</ofd:PublicRes><ofd:DocumentRes>DocumentRes.xml</ofd:DocumentRes>"
        '<ofd:TemplatePage ID="2" BaseLoc="Tpls/Tpl_0/Content.xml"/></ofd:CommonData>'
        f"<ofd:Pages>{listed}</ofd:Pages><ofd:Annotations>Annots/Annotations.xml</ofd:Annotations>"
        f"<ofd:CustomTags>Tags/CustomTags.xml</ofd:CustomTags>{extra}</ofd:Document>"
    ).encode()


def ofd_xml(*roots: str, signed: int = 0) -> bytes:
    bodies = "".join(
        f"<ofd:DocBody><ofd:DocInfo><ofd:DocID>t{n}</ofd:DocID></ofd:DocInfo><ofd:DocRoot>{root}</ofd:DocRoot>"
        + ("<ofd:Signatures>Doc_0/Signs/Signatures.xml</ofd:Signatures>" if n == signed else "")
        + "</ofd:DocBody>"
        for n, root in enumerate(roots)
    )
    return f'<ofd:OFD {NS} DocType="OFD" Version="1.1">{bodies}</ofd:OFD>'.encode()


def annotation_files() -> dict[str, bytes]:
    return {
        "Doc_0/Annots/Annotations.xml": (
            f'<ofd:Annotations {NS}><ofd:Page PageID="10"><ofd:FileLoc>Page_0/Annotation.xml</ofd:FileLoc>'
            "</ofd:Page></ofd:Annotations>"
        ).encode(),
        "Doc_0/Annots/Page_0/Annotation.xml": (
            f'<ofd:PageAnnot {NS}><ofd:Annot Type="Highlight" ID="40"><ofd:Appearance Boundary="0 0 50 10">'
            '<ofd:TextObject ID="41" Boundary="0 0 50 10" Font="3" Size="5"><ofd:TextCode X="0" Y="5">PAID'
            "</ofd:TextCode></ofd:TextObject></ofd:Appearance></ofd:Annot></ofd:PageAnnot>"
        ).encode(),
    }


def content(page_text: str = "Licence 0001: Example Co., Ltd.") -> dict[str, bytes]:
    """The document's files (no signature yet), OFD.xml first."""
    return {
        "OFD.xml": ofd_xml("Doc_0/Document.xml"),
        "Doc_0/Document.xml": document(),
        "Doc_0/PublicRes.xml": (
            f'<ofd:Res {NS} BaseLoc="Res"><ofd:Fonts><ofd:Font ID="3" FontName="SimSun">'
            "<ofd:FontFile>font_3.ttf</ofd:FontFile></ofd:Font></ofd:Fonts></ofd:Res>"
        ).encode(),
        "Doc_0/DocumentRes.xml": (
            f'<ofd:Res {NS} BaseLoc="Res"><ofd:MultiMedias><ofd:MultiMedia ID="7" Type="Image">'
            "<ofd:MediaFile>image_7.png</ofd:MediaFile></ofd:MultiMedia></ofd:MultiMedias></ofd:Res>"
        ).encode(),
        "Doc_0/Res/font_3.ttf": b"\x00\x01\x00\x00 a font",
        "Doc_0/Res/image_7.png": b"\x89PNG\r\n\x1a\n an image",
        "Doc_0/Tpls/Tpl_0/Content.xml": _page("Header"),
        PAGE: _page(page_text),
        **annotation_files(),
        "Doc_0/Tags/CustomTags.xml": f"<ofd:CustomTags {NS}/>".encode(),
    }


def seal(
    material: Any,
    files: dict[str, bytes],
    covered: Iterable[str] | None = None,
    seal_file: bytes | None = None,
) -> dict[str, bytes]:
    """`files` plus a signature whose References cover `covered` (default: every file), as vendors write it.
    `seal_file`: also store the seal as Sign_0/Seal.esl, named by Seal/BaseLoc and not covered."""
    names = list(files) if covered is None else list(covered)
    references = "".join(
        f'<ofd:Reference FileRef="/{name}"><ofd:CheckValue>{base64.b64encode(sm3(files[name])).decode()}'
        "</ofd:CheckValue></ofd:Reference>"
        for name in names
    )
    seal_el = "<ofd:Seal><ofd:BaseLoc>Seal.esl</ofd:BaseLoc></ofd:Seal>" if seal_file is not None else ""
    signature_xml = (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:Signature {NS}><ofd:SignedInfo>'
        '<ofd:Provider ProviderName="trustseal-tests" Version="1" Company="t"/>'
        "<ofd:SignatureMethod>1.2.156.10197.1.501</ofd:SignatureMethod>"
        "<ofd:SignatureDateTime>20250101000000Z</ofd:SignatureDateTime>"
        f'<ofd:References CheckMethod="1.2.156.10197.1.401">{references}</ofd:References>'
        f'<ofd:StampAnnot ID="90" PageRef="10" Boundary="100 200 40 40"/>{seal_el}</ofd:SignedInfo>'
        "<ofd:SignedValue>/Doc_0/Signs/Sign_0/SignedValue.dat</ofd:SignedValue></ofd:Signature>"
    ).encode()
    tbs = ses.build_tbs_sign(
        seal_der=material.seal.esl_der,
        time_info=datetime.now(UTC).replace(microsecond=0),
        data_hash=sm3(signature_xml),
        property_info="/Doc_0/Signs/Sign_0/Signature.xml",
    )
    signed = {
        **files,
        "Doc_0/Signs/Signatures.xml": (
            f'<ofd:Signatures {NS}><ofd:MaxSignId>1</ofd:MaxSignId><ofd:Signature ID="1" Type="Seal"'
            ' BaseLoc="Sign_0/Signature.xml"/></ofd:Signatures>'
        ).encode(),
        "Doc_0/Signs/Sign_0/Signature.xml": signature_xml,
        "Doc_0/Signs/Sign_0/SignedValue.dat": ses.assemble_ses_signature(
            tbs, material.certificate, material.handle.sign(tbs)
        ),
    }
    if seal_file is not None:
        signed["Doc_0/Signs/Sign_0/Seal.esl"] = seal_file
    return signed


def zipped(entries: Iterable[tuple[str, bytes]]) -> bytes:
    """A zip with the entries in this order, duplicates kept (as zipfile writes them)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as package:
        for name, data in entries:
            package.writestr(zipfile.ZipInfo(name, (2025, 1, 1, 0, 0, 0)), data)
    return out.getvalue()


def raw_zip(entries: Iterable[tuple[bytes, bytes]], utf8: bool = True) -> bytes:
    """A stored zip whose names are exactly these bytes (zipfile cuts names at NUL when writing)."""
    flags = 0x800 if utf8 else 0
    local, central, count = bytearray(), bytearray(), 0
    for name, data in entries:
        crc, offset, count = zlib.crc32(data), len(local), count + 1
        local += struct.pack("<4sHHHHHLLLHH", b"PK\x03\x04", 20, flags, 0, 0, 0x21, crc, len(data), len(data),
                             len(name), 0) + name + data  # fmt: skip
        central += struct.pack("<4sHHHHHHLLLHHHHHLL", b"PK\x01\x02", 20, 20, flags, 0, 0, 0x21, crc, len(data),
                               len(data), len(name), 0, 0, 0, 0, 0, offset) + name  # fmt: skip
    end = struct.pack("<4sHHHHLLH", b"PK\x05\x06", 0, 0, count, count, len(central), len(local), 0)
    return bytes(local + central + end)
