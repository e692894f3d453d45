"""A bare CMS SignedData (RFC 5652, or GB/T 35275 with its own content-type OID) over given content."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from asn1crypto import cms, core

from gm import oids
from gm.sm3 import sm3
from verify import seal_checks
from verify.names import describe
from verify.report import FAILED, PASSED, SignatureReport
from verify.sources import Sources
from verify.trust import TrustStore

ID_SIGNED_DATA = "1.2.840.113549.1.7.2"


def _tlv(data: bytes, at: int) -> tuple[int, int, int]:
    """(tag, start of contents, end) of the DER element at `at`; ValueError if malformed."""
    if at + 2 > len(data):
        raise ValueError("truncated DER")
    tag, first = data[at], data[at + 1]
    if first < 0x80:
        start, length = at + 2, first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or at + 2 + count > len(data):
            raise ValueError("unsupported DER length")
        start, length = at + 2 + count, int.from_bytes(data[at + 2 : at + 2 + count], "big")
    if start + length > len(data):
        raise ValueError("DER length beyond the data")
    return tag, start, start + length


def load_signed_data(data: bytes) -> cms.SignedData:
    """The SignedData of a ContentInfo labelled with either OID (strict DER); ValueError otherwise."""
    tag, start, end = _tlv(data, 0)
    if tag != 0x30 or end != len(data):
        raise ValueError("not a DER SEQUENCE with nothing after it")
    oid_tag, _, oid_end = _tlv(data, start)
    if oid_tag != 0x06:
        raise ValueError("ContentInfo does not start with an OID")
    content_type = core.ObjectIdentifier.load(data[start:oid_end]).dotted
    if content_type not in (ID_SIGNED_DATA, oids.GM_SIGNED_DATA):
        raise ValueError(f"content type {content_type} is not signedData")
    wrapper, inner_start, inner_end = _tlv(data, oid_end)
    if wrapper != 0xA0 or inner_end != end:
        raise ValueError("ContentInfo content is not [0] EXPLICIT")
    signed = cms.SignedData.load(data[inner_start:inner_end], strict=True)
    signed.native  # noqa: B018  (full parse now, not half-way through the checks)
    return signed


def _digest(name: str, data: bytes) -> bytes:
    return sm3(data) if name == "sm3" else hashlib.new(name, data).digest()


def check_signed_data(
    out: SignatureReport,
    signed: cms.SignedData,
    content: bytes | None,
    at: datetime | None,
    trust: TrustStore,
    sources: Sources,
) -> None:
    signer = signed["signer_infos"][0]
    sid = signer["sid"].chosen
    certs = [c.chosen for c in signed["certificates"] or [] if c.name == "certificate"]
    cert = next(
        (c for c in certs if c.serial_number == sid["serial_number"].native and c.issuer == sid["issuer"]), None
    )
    if cert is None:
        out.add("signature", FAILED, "NO_SIGNING_CERTIFICATE_FOUND", "the signer's certificate is not embedded")
        return
    out.signer = dict(describe(cert))
    data = content if content is not None else signed["encap_content_info"]["content"].native
    md = signer["digest_algorithm"]["algorithm"].native
    attrs = signer["signed_attrs"]
    moment = at or datetime.now(UTC)
    if attrs.native is None or len(attrs) == 0:
        signed_bytes = data
        out.add("integrity", PASSED, "OK", "no signed attributes: the signature covers the content itself")
    else:
        digest = next((a["values"][0].native for a in attrs if a["type"].native == "message_digest"), None)
        if digest != _digest(md, data):
            out.add("integrity", FAILED, "HASH_FAILURE", "messageDigest does not match the content")
        else:
            out.add("integrity", PASSED, "OK", f"messageDigest ({md}) matches")
        signed_bytes = b"\x31" + attrs.dump()[1:]
        claimed = next((a["values"][0].native for a in attrs if a["type"].native == "signing_time"), None)
        if claimed is not None:
            out.signing_time, out.signing_time_source = claimed.isoformat(), "claimed"
    seal_checks.add_claimed_time(out, out.signing_time, moment)
    ok, how = seal_checks.signature_ok(
        cert.dump(), signer["signature_algorithm"]["algorithm"].dotted, signer["signature"].native, signed_bytes
    )
    out.add(*(("signature", PASSED, "OK", how) if ok else ("signature", FAILED, "SIG_CRYPTO_FAILURE", how)))
    seal_checks.check_chain(out, cert.dump(), [c.dump() for c in certs if c is not cert], moment, trust, sources)
