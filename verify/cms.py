"""A bare CMS SignedData (RFC 5652, or GB/T 35275 with its own content-type OID) over given content."""

from __future__ import annotations

import hashlib
from datetime import datetime

from asn1crypto import cms, core

from gm import oids, ses
from gm.sm3 import sm3
from verify import rules, seal_checks
from verify.names import describe
from verify.report import FAILED, INDETERMINATE, PASSED, SignatureReport
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


# Digests no longer collision resistant, alone or inside a signature algorithm (RFC 6151, RFC 9155)
WEAK_DIGESTS = {"1.2.840.113549.2.2": "MD2", "1.2.840.113549.2.5": "MD5", "1.3.14.3.2.26": "SHA-1"}
WEAK_SIGNATURES = {
    "1.2.840.113549.1.1.2": "md2WithRSAEncryption",
    "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.3.14.3.2.29": "sha1WithRSASignature (OIW)",
    "1.2.840.10045.4.1": "ecdsa-with-SHA1",
    "1.2.840.10040.4.3": "dsa-with-sha1",
}
ATTR_CONTENT_TYPE = "1.2.840.113549.1.9.3"
Problem = tuple[str, str, str]  # (status, code, detail) for the check that reports it


def weak_algorithm(signer: cms.SignerInfo) -> str | None:
    """The name of an MD5 / SHA-1 (or MD2) algorithm the SignerInfo relies on, else None."""
    digest = signer["digest_algorithm"]["algorithm"].dotted
    if digest in WEAK_DIGESTS:
        return f"{WEAK_DIGESTS[digest]} message digest"
    algorithm = signer["signature_algorithm"]
    oid = algorithm["algorithm"].dotted
    if oid in WEAK_SIGNATURES:
        return f"{WEAK_SIGNATURES[oid]} signature"
    if oid == "1.2.840.113549.1.1.10":  # RSASSA-PSS: the hash is a parameter
        parameters = algorithm["parameters"]
        for dotted in (parameters["hash_algorithm"]["algorithm"].dotted,
                       parameters["mask_gen_algorithm"]["parameters"]["algorithm"].dotted):  # fmt: skip
            if dotted in WEAK_DIGESTS:
                return f"RSASSA-PSS with {WEAK_DIGESTS[dotted]}"
    return None


def hygiene(signer: cms.SignerInfo, content_type: str) -> Problem | None:
    """What a SignerInfo breaks before its signature means anything, else None: a weak algorithm
    (INDETERMINATE CRYPTO_CONSTRAINTS_FAILURE_NO_POE: nothing proves the signature older than the
    attacks on it), or signed attributes without a contentType equal to `content_type`, the
    encapsulated content type (FAILED FORMAT_FAILURE, RFC 5652 §5.3). Every CMS path asks this."""
    weak = weak_algorithm(signer)
    if weak is not None:
        return INDETERMINATE, "CRYPTO_CONSTRAINTS_FAILURE_NO_POE", f"the signature relies on the {weak}"
    attrs = signer["signed_attrs"]
    if len(attrs) == 0:  # (not .native: that would parse, and change, other attributes' values)
        return None
    found = [a for a in attrs if a["type"].dotted == ATTR_CONTENT_TYPE]
    if len(found) != 1 or len(found[0]["values"]) != 1:
        return FAILED, "FORMAT_FAILURE", "the signed attributes carry no (single) contentType"
    declared = found[0]["values"][0].dotted
    if declared != content_type:
        return FAILED, "FORMAT_FAILURE", f"the signed contentType {declared} is not the content's type {content_type}"
    return None


def timestamp_hygiene(signer: cms.SignerInfo) -> Problem | None:
    """hygiene() of the signature timestamp token in `signer`'s unsigned attributes, if there is one."""
    for attr in signer["unsigned_attrs"] or []:
        if attr["type"].dotted == oids.ID_AA_SIGNATURE_TIMESTAMP:
            token = attr["values"][0]["content"]
            found = hygiene(token["signer_infos"][0], token["encap_content_info"]["content_type"].dotted)
            if found is not None:
                return found[0], found[1], f"timestamp token: {found[2]}"
    return None


def seal_attribute(signer_info: cms.SignerInfo) -> bytes | None:
    """The DER of the SESeal a SignerInfo carries as a signed attribute (any arc ever used), else None."""
    for attr in signer_info["signed_attrs"] or []:
        if attr["type"].dotted in oids.SESEAL_ATTRIBUTES:
            encoded: bytes = attr["values"][0].dump()  # an OCTET STRING holding the SESeal, however parsed
            if encoded[:1] != b"\x04":
                return encoded  # not as written by anyone: parse_seal then says what it is
            der: bytes = core.OctetString.load(encoded).native
            return der
    return None


def check_carried_seal(
    out: SignatureReport,
    signed_seal: bytes | None,
    named_seal: bytes | None,
    cert_der: bytes,
    moment: datetime,
    trust: TrustStore,
    sources: Sources,
    proven: bool = False,
) -> None:
    """`seal` and `seal_validity` for the seal a CMS signature carries (`signed_seal`, its SESeal signed
    attribute) or names for readers to draw (`named_seal`: an OFD signature's Seal/BaseLoc file): judged
    as a PDF's seal is, the signer listed in it and its maker trusted. A signature showing a seal is no
    plain signature: without this, anyone's CMS signature could present another organisation's public
    seal. Two different seals: which one a reader shows cannot be told. Neither: nothing to judge."""
    if signed_seal is not None and named_seal is not None and signed_seal != named_seal:
        out.add("seal", FAILED, "SEAL_MISMATCH", "the seal file the signature names is not the seal it signed")
        return
    der = signed_seal if signed_seal is not None else named_seal
    if der is None:
        return
    try:
        seal = seal_checks.parsed_seal(der)
    except ses.SESFormatError as exc:
        out.add("seal", FAILED, "FORMAT_FAILURE", str(exc))
        return
    out.seal = seal_checks.describe(seal)
    seal_checks.check_seal(out, seal, cert_der, moment, trust, sources, proven)


def _digest(name: str, data: bytes) -> bytes:
    return sm3(data) if name == "sm3" else hashlib.new(name, data).digest()


def check_signed_data(
    out: SignatureReport,
    signed: cms.SignedData,
    content: bytes | None,
    at: datetime | None,
    trust: TrustStore,
    sources: Sources,
    named_seal: bytes | None = None,
) -> None:
    """`named_seal`: a seal the signature names outside the CMS for readers to draw (check_carried_seal)."""
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
    moment, _ = rules.validation_time(at, None)  # a CMS signingTime is claimed, never proven
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
    rules.add_claimed_time(out, out.signing_time)
    ok, how = seal_checks.signature_ok(
        cert.dump(), signer["signature_algorithm"]["algorithm"].dotted, signer["signature"].native, signed_bytes
    )
    problem = hygiene(signer, signed["encap_content_info"]["content_type"].dotted)
    if problem is not None:  # first, as on the PDF path (where SM2 over a SHA-1 digest does not verify)
        out.add("signature", *problem)
    elif not ok:
        out.add("signature", FAILED, "SIG_CRYPTO_FAILURE", how)
    else:
        out.add("signature", PASSED, "OK", how)
    check_carried_seal(out, seal_attribute(signer), named_seal, cert.dump(), moment, trust, sources)
    seal_checks.check_chain(out, cert.dump(), [c.dump() for c in certs if c is not cert], moment, trust, sources)
    seal_checks.check_signer_role(out, cert)
