"""A bare CMS SignedData (RFC 5652, or GB/T 35275 with its own content-type OID) over given content."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

from asn1crypto import cms

from gm.sm3 import sm3
from verify import seal_checks
from verify.names import describe
from verify.report import FAILED, PASSED, SignatureReport
from verify.sources import Sources
from verify.trust import TrustStore


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
        if claimed is not None and at is None:
            moment = claimed
            out.signing_time, out.signing_time_source = claimed.isoformat(), "claimed"
    ok, how = seal_checks.signature_ok(
        cert.dump(), signer["signature_algorithm"]["algorithm"].dotted, signer["signature"].native, signed_bytes
    )
    out.add(*(("signature", PASSED, "OK", how) if ok else ("signature", FAILED, "SIG_CRYPTO_FAILURE", how)))
    seal_checks.check_chain(out, cert.dump(), [c.dump() for c in certs if c is not cert], moment, trust, sources)
