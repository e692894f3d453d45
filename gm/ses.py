"""GB/T 38540-2020 (v4), GM/T 0031-2014 (v1) and GM/T 0031-2025 (v5) electronic-seal structures.

Pure data: encode and decode `SESeal` / `SES_Signature`, and say which bytes each signature covers.
No keys, no I/O. The ASN.1 is in DESIGN.md; field names follow the standard in snake_case.
Versions are told apart by shape, never by the header's version number (vendors write 1, 2 or 4):
a v1 `SESeal` is a two-element SEQUENCE, v4 has four elements, v5 a fifth (`timeStamp [0]`).
"""

# ruff: noqa: RUF012  (asn1crypto declares structures as class-level lists)
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from asn1crypto import core

from gm import der, oids


class SESFormatError(ValueError):
    """The bytes are not a seal / seal signature of any version we read."""


# -- common --------------------------------------------------------------------------------------


class ExtData(core.Sequence):
    _fields = [
        ("extn_id", core.ObjectIdentifier),
        ("critical", core.Boolean, {"default": False}),
        ("extn_value", core.OctetString),
    ]


class ExtensionDatas(core.SequenceOf):
    _child_spec = ExtData


class Header(core.Sequence):
    _fields = [("id", core.IA5String), ("version", core.Integer), ("vid", core.IA5String)]


class PictureInfo(core.Sequence):
    _fields = [
        ("type", core.IA5String),
        ("data", core.OctetString),
        ("width", core.Integer),  # millimetres
        ("height", core.Integer),
    ]


class CertDigestObj(core.Sequence):
    _fields = [("type", core.PrintableString), ("value", core.OctetString)]


class CertDigestList(core.SequenceOf):
    _child_spec = CertDigestObj


class CertList(core.SequenceOf):
    _child_spec = core.OctetString


# -- v4 / v5 -------------------------------------------------------------------------------------


class PropertyInfo(core.Sequence):
    _fields = [
        ("type", core.Integer),
        ("name", core.UTF8String),
        ("cert_list_type", core.Integer),
        ("cert_list", core.Any),  # untagged CHOICE of two SEQUENCE OFs: decoded by cert_list_type
        ("create_date", core.GeneralizedTime),
        ("valid_start", core.GeneralizedTime),
        ("valid_end", core.GeneralizedTime),
    ]


class SealInfo(core.Sequence):
    _fields = [
        ("header", Header),
        ("es_id", core.IA5String),
        ("property", PropertyInfo),
        ("picture", PictureInfo),
        ("ext_datas", ExtensionDatas, {"optional": True}),
    ]


class SESeal(core.Sequence):
    _fields = [
        ("seal_info", SealInfo),
        ("cert", core.OctetString),  # seal maker's certificate, DER
        ("sign_alg_id", core.ObjectIdentifier),
        ("signed_value", core.BitString),
        ("time_stamp", core.OctetBitString, {"explicit": 0, "optional": True}),  # v5 only
    ]


class TBSSign(core.Sequence):
    _fields = [
        ("version", core.Integer),
        ("eseal", SESeal),
        ("time_info", core.GeneralizedTime),
        ("data_hash", core.OctetBitString),
        ("property_info", core.IA5String),
        ("ext_datas", ExtensionDatas, {"explicit": 0, "optional": True}),
    ]


class SESSignature(core.Sequence):
    _fields = [
        ("to_sign", TBSSign),
        ("cert", core.OctetString),  # signer's certificate, DER
        ("signature_alg_id", core.ObjectIdentifier),
        ("signature", core.OctetBitString),
        ("time_stamp", core.OctetBitString, {"explicit": 0, "optional": True}),
    ]


# -- v1 (GM/T 0031-2014) -------------------------------------------------------------------------


class PropertyInfoV1(core.Sequence):
    _fields = [
        ("type", core.Integer),
        ("name", core.UTF8String),
        ("cert_list", core.SequenceOf),  # vendors put certificates, or anything, here
        ("create_date", core.UTCTime),
        ("valid_start", core.UTCTime),
        ("valid_end", core.UTCTime),
    ]


class SealInfoV1(core.Sequence):
    _fields = [
        ("header", Header),
        ("es_id", core.IA5String),
        ("property", PropertyInfoV1),
        ("picture", PictureInfo),
        ("ext_datas", ExtensionDatas, {"optional": True}),
    ]


class SignInfoV1(core.Sequence):
    _fields = [
        ("cert", core.OctetString),
        ("signature_algorithm", core.ObjectIdentifier),
        ("sign_data", core.BitString),
    ]


class SESealV1(core.Sequence):
    _fields = [("seal_info", SealInfoV1), ("sign_info", SignInfoV1)]


class TBSSignV1(core.Sequence):
    _fields = [
        ("version", core.Integer),
        ("eseal", SESealV1),
        ("time_info", core.OctetBitString),
        ("data_hash", core.OctetBitString),
        ("property_info", core.IA5String),
        ("cert", core.OctetString),
        ("signature_algorithm", core.ObjectIdentifier),
    ]


class SESSignatureV1(core.Sequence):
    _fields = [("to_sign", TBSSignV1), ("signature", core.OctetBitString)]


# -- normalised views ----------------------------------------------------------------------------

SEAL_TYPES = {1: "official", 2: "personal", 3: "finance", 4: "contract", 5: "invoice", 6: "licence"}


@dataclass(frozen=True)
class Seal:
    """A parsed seal of any version, with the exact bytes its maker signed."""

    version: int  # 1, 4 or 5 (by structure)
    header_version: int
    vendor_id: str
    es_id: str
    seal_type: int
    name: str
    cert_list_type: int  # 1 certificates, 2 digests (v1: 1)
    certs: tuple[bytes, ...]
    cert_digests: tuple[tuple[str, bytes], ...]
    create_date: datetime
    valid_start: datetime
    valid_end: datetime
    picture_type: str
    picture: bytes
    width_mm: int
    height_mm: int
    maker_cert: bytes
    signature_algorithm: str  # dotted OID
    signature: bytes
    signed_bytes: bytes  # what `signature` covers
    extensions: tuple[tuple[str, bool, bytes], ...] = ()
    time_stamp: bytes | None = None
    der: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class SealSignature:
    """A parsed `SES_Signature` of any version, with the exact bytes its signer signed."""

    version: int  # 1 or 4
    seal: Seal
    time_info: datetime | bytes  # v1 carries it as a BIT STRING of text
    data_hash: bytes
    property_info: str
    signer_cert: bytes
    signature_algorithm: str
    signature: bytes
    signed_bytes: bytes
    time_stamp: bytes | None = None
    der: bytes = field(default=b"", repr=False)


def _extensions(value: ExtensionDatas | None) -> tuple[tuple[str, bool, bytes], ...]:
    if value is None or isinstance(value, core.Void):
        return ()
    return tuple((e["extn_id"].dotted, bool(e["critical"].native), e["extn_value"].native) for e in value)


def parse_seal(der: bytes) -> Seal:
    """Any version of `SESeal`; raises SESFormatError for anything else."""
    try:
        count = len(core.Sequence.load(der, strict=True))
        if count == 2:
            return _parse_v1(SESealV1.load(der, strict=True), der)
        if count in (4, 5):
            return _parse_v4(SESeal.load(der, strict=True), der)
    except SESFormatError:
        raise
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise SESFormatError(f"not a GB/T 38540 / GM/T 0031 seal: {exc}") from None
    raise SESFormatError(f"a seal is a SEQUENCE of 2 (v1) or 4-5 (v4/v5) elements, not {count}")


def _parse_v4(seal: SESeal, encoded: bytes) -> Seal:
    info = seal["seal_info"]
    prop = info["property"]
    list_type = prop["cert_list_type"].native
    raw_list = prop["cert_list"].dump()
    certs: tuple[bytes, ...] = ()
    digests: tuple[tuple[str, bytes], ...] = ()
    if list_type == 1:
        certs = tuple(c.native for c in CertList.load(raw_list, strict=True))
    elif list_type == 2:
        digests = tuple((d["type"].native, d["value"].native) for d in CertDigestList.load(raw_list, strict=True))
    else:
        raise SESFormatError(f"certListType must be 1 (certificates) or 2 (digests), not {list_type}")
    picture = info["picture"]
    stamp = seal["time_stamp"]
    return Seal(
        version=5 if stamp.native is not None else 4,
        header_version=info["header"]["version"].native,
        vendor_id=info["header"]["vid"].native,
        es_id=info["es_id"].native,
        seal_type=prop["type"].native,
        name=prop["name"].native,
        cert_list_type=list_type,
        certs=certs,
        cert_digests=digests,
        create_date=prop["create_date"].native,
        valid_start=prop["valid_start"].native,
        valid_end=prop["valid_end"].native,
        picture_type=picture["type"].native,
        picture=picture["data"].native,
        width_mm=picture["width"].native,
        height_mm=picture["height"].native,
        maker_cert=seal["cert"].native,
        signature_algorithm=seal["sign_alg_id"].dotted,
        signature=_bits(seal["signed_value"]),
        signed_bytes=info.dump(),
        extensions=_extensions(info["ext_datas"]),
        time_stamp=stamp.native,
        der=encoded,
    )


def _bits(value: core.BitString) -> bytes:
    """A BIT STRING's bytes (signatures are whole octets)."""
    contents = value.contents or b"\x00"
    if contents[0] != 0:
        raise SESFormatError("signature BIT STRING with unused bits")
    return bytes(contents[1:])


def _parse_v1(seal: SESealV1, encoded: bytes) -> Seal:
    info = seal["seal_info"]
    prop = info["property"]
    sign_info = seal["sign_info"]
    certs = tuple(
        c.contents for c in prop["cert_list"] if isinstance(c, core.Asn1Value) and c.tag == 4 and c.class_ == 0
    )
    picture = info["picture"]
    # GM/T 0031-2014: signData covers DER(SEQUENCE { SES_SealInfo, cert, signatureAlgorithm })
    body = info.dump() + sign_info["cert"].dump() + sign_info["signature_algorithm"].dump()
    signed = core.Sequence.load(der.tlv(0x30, body)).dump()
    return Seal(
        version=1,
        header_version=info["header"]["version"].native,
        vendor_id=info["header"]["vid"].native,
        es_id=info["es_id"].native,
        seal_type=prop["type"].native,
        name=prop["name"].native,
        cert_list_type=1,
        certs=certs,
        cert_digests=(),
        create_date=prop["create_date"].native,
        valid_start=prop["valid_start"].native,
        valid_end=prop["valid_end"].native,
        picture_type=picture["type"].native,
        picture=picture["data"].native,
        width_mm=picture["width"].native,
        height_mm=picture["height"].native,
        maker_cert=sign_info["cert"].native,
        signature_algorithm=sign_info["signature_algorithm"].dotted,
        signature=_bits(sign_info["sign_data"]),
        signed_bytes=signed,
        extensions=_extensions(info["ext_datas"]),
        der=encoded,
    )


def parse_ses_signature(der: bytes) -> SealSignature:
    """Any version of `SES_Signature`; raises SESFormatError for anything else."""
    try:
        outer = core.Sequence.load(der, strict=True)
        count = len(outer)
        if count == 2:
            return _parse_signature_v1(SESSignatureV1.load(der, strict=True), der)
        if count in (4, 5):
            return _parse_signature_v4(SESSignature.load(der, strict=True), der)
    except SESFormatError:
        raise
    except (ValueError, TypeError, KeyError, OverflowError) as exc:
        raise SESFormatError(f"not a GB/T 38540 / GM/T 0031 SES_Signature: {exc}") from None
    raise SESFormatError(f"an SES_Signature is a SEQUENCE of 2 (v1) or 4-5 (v4) elements, not {count}")


def _parse_signature_v4(signature: SESSignature, encoded: bytes) -> SealSignature:
    tbs = signature["to_sign"]
    seal_der = tbs["eseal"].dump()
    return SealSignature(
        version=4,
        seal=parse_seal(seal_der),
        time_info=tbs["time_info"].native,
        data_hash=tbs["data_hash"].native,
        property_info=tbs["property_info"].native,
        signer_cert=signature["cert"].native,
        signature_algorithm=signature["signature_alg_id"].dotted,
        signature=signature["signature"].native,
        signed_bytes=tbs.dump(),
        time_stamp=signature["time_stamp"].native,
        der=encoded,
    )


def _parse_signature_v1(signature: SESSignatureV1, encoded: bytes) -> SealSignature:
    tbs = signature["to_sign"]
    return SealSignature(
        version=1,
        seal=parse_seal(tbs["eseal"].dump()),
        time_info=tbs["time_info"].native,
        data_hash=tbs["data_hash"].native,
        property_info=tbs["property_info"].native,
        signer_cert=tbs["cert"].native,
        signature_algorithm=tbs["signature_algorithm"].dotted,
        signature=signature["signature"].native,
        signed_bytes=tbs.dump(),
        der=encoded,
    )


# -- building (v4) -------------------------------------------------------------------------------

VENDOR_ID = "TRUSTSEAL"


def build_seal_info(
    *,
    es_id: str,
    seal_type: int,
    name: str,
    certs: list[bytes] | None = None,
    cert_digests: list[tuple[str, bytes]] | None = None,
    create_date: datetime,
    valid_start: datetime,
    valid_end: datetime,
    picture_type: str,
    picture: bytes,
    width_mm: int,
    height_mm: int,
    extensions: list[tuple[str, bool, bytes]] | None = None,
    vendor_id: str = VENDOR_ID,
) -> bytes:
    """DER `SES_SealInfo` (v4): the bytes the seal maker signs."""
    if (certs is None) == (cert_digests is None):
        raise ValueError("give either certs (certListType 1) or cert_digests (certListType 2)")
    cert_list: core.Asn1Value
    if certs is not None:
        cert_list = CertList([core.OctetString(c) for c in certs])
    else:
        cert_list = CertDigestList([{"type": t, "value": v} for t, v in cert_digests or []])
    info = SealInfo(
        {
            "header": {"id": "ES", "version": 4, "vid": vendor_id},
            "es_id": es_id,
            "property": {
                "type": seal_type,
                "name": name,
                "cert_list_type": 1 if certs is not None else 2,
                "cert_list": core.Any(cert_list),
                "create_date": core.GeneralizedTime(create_date),
                "valid_start": core.GeneralizedTime(valid_start),
                "valid_end": core.GeneralizedTime(valid_end),
            },
            "picture": {"type": picture_type, "data": picture, "width": width_mm, "height": height_mm},
        }
    )
    if extensions:
        info["ext_datas"] = ExtensionDatas(
            [{"extn_id": oid, "critical": critical, "extn_value": value} for oid, critical, value in extensions]
        )
    der: bytes = info.dump()
    return der


def assemble_seal(
    seal_info_der: bytes, maker_cert: bytes, signature: bytes, algorithm: str = oids.SM2_WITH_SM3
) -> bytes:
    """DER `SESeal` (v4) from the signed `SES_SealInfo` bytes, kept byte for byte."""
    seal = SESeal(
        {
            "seal_info": SealInfo.load(seal_info_der),
            "cert": maker_cert,
            "sign_alg_id": algorithm,
            "signed_value": core.BitString.load(der.bit_string(signature)),
        }
    )
    encoded: bytes = seal.dump()
    return encoded


def build_tbs_sign(
    *,
    seal_der: bytes,
    time_info: datetime,
    data_hash: bytes,
    property_info: str,
    extensions: list[tuple[str, bool, bytes]] | None = None,
) -> bytes:
    """DER `TBS_Sign` (v4): the bytes a seal holder signs when applying a seal to data."""
    tbs = TBSSign(
        {
            "version": 4,
            "eseal": SESeal.load(seal_der),
            "time_info": core.GeneralizedTime(time_info),
            "data_hash": data_hash,
            "property_info": property_info,
        }
    )
    if extensions:
        tbs["ext_datas"] = ExtensionDatas(
            [{"extn_id": oid, "critical": critical, "extn_value": value} for oid, critical, value in extensions]
        )
    der: bytes = tbs.dump()
    return der


def assemble_ses_signature(
    tbs_der: bytes, signer_cert: bytes, signature: bytes, algorithm: str = oids.SM2_WITH_SM3
) -> bytes:
    value = SESSignature(
        {"to_sign": TBSSign.load(tbs_der), "cert": signer_cert, "signature_alg_id": algorithm, "signature": signature}
    )
    der: bytes = value.dump()
    return der
