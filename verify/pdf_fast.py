"""The fast path for sealed PDFs in the common layout: one signature field holding a CMS signature
(SM2 or P-256), optionally timestamped, followed by nothing or by DSS-only updates (PAdES B-LT).

It proves such a document valid with its own strict reading — file structure (verify/pdf_structure),
CMS, chain, revocation from embedded material (verify/x509_fast) — and builds the same report the
full path (pyHanko) builds for a valid document. It never reports a failure: anything unusual,
anything outside its scope, any check that does not pass raises Unsupported, and the full path
then examines the document and says precisely what is wrong. Each rule here is at least as strict
as the full path's (tests/verify/test_pdf_fast.py compares both on valid and on attacked documents).

What it may remember across documents (fair, and the same as the full path): parsed certificates,
CRLs and OCSP responses by DER; verified signatures made by trusted CA keys. Never a document's own
signature, digest or result.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from asn1crypto import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from gm import der, oids, ses, sm2
from policies.pdf_content import find_active_content
from verify import licence, pdf_speedups, rules, seal_checks
from verify.limits import Budget
from verify.names import describe as describe_cert
from verify.pdf_structure import PdfDict, PdfFile, Ref, Stream, StructureError, decode_stream
from verify.report import PASSED, Report, SignatureReport
from verify.sources import Sources
from verify.trust import TrustStore
from verify.x509_fast import (
    DIGESTS,
    EKU_OCSP_SIGNING,
    EKU_TIME_STAMPING,
    EXT_OCSP_NOCHECK,
    KU_CRL_SIGN,
    KU_DIGITAL_SIGNATURE,
    KU_KEY_CERT_SIGN,
    KU_NON_REPUDIATION,
    OID_ECDSA_SHA256,
    OID_SM2_SM3,
    SIGNATURE_ALGORITHMS,
    Cert,
    CRLView,
    OCSPView,
    Unsupported,
    certificate,
    crl,
    ocsp_response,
    oid_der,
    parse_time,
)

ID_SIGNED_DATA = oid_der("1.2.840.113549.1.7.2")
ID_DATA = oid_der("1.2.840.113549.1.7.1")
ID_TST_INFO = oid_der("1.2.840.113549.1.9.16.1.4")
ATTR_CONTENT_TYPE = oid_der("1.2.840.113549.1.9.3")
ATTR_MESSAGE_DIGEST = oid_der("1.2.840.113549.1.9.4")
ATTR_SIGNING_TIME = oid_der("1.2.840.113549.1.9.5")
ATTR_ALGORITHM_PROTECTION = oid_der("1.2.840.113549.1.9.52")
ATTR_SIGNING_CERTIFICATE = oid_der("1.2.840.113549.1.9.16.2.12")
ATTR_SIGNING_CERTIFICATE_V2 = oid_der("1.2.840.113549.1.9.16.2.47")
ATTR_SIGNATURE_TIMESTAMP = oid_der(oids.ID_AA_SIGNATURE_TIMESTAMP)
ATTR_SESEALS = frozenset(oid_der(oid) for oid in oids.SESEAL_ATTRIBUTES)
SIGNED_ATTRS = {ATTR_CONTENT_TYPE, ATTR_MESSAGE_DIGEST, ATTR_SIGNING_TIME, ATTR_ALGORITHM_PROTECTION,
                ATTR_SIGNING_CERTIFICATE, ATTR_SIGNING_CERTIFICATE_V2, *ATTR_SESEALS}  # fmt: skip
SUB_FILTERS = {"adbe.pkcs7.detached", "ETSI.CAdES.detached"}
SIG_DICT_KEYS = {"Type", "Filter", "SubFilter", "ByteRange", "Contents", "M", "Reason", "Location", "Name",
                 "ContactInfo", "Prop_Build"}  # fmt: skip
INFO_KEYS = {"Title", "Author", "Subject", "Keywords", "Creator", "Producer", "CreationDate", "ModDate"}
MAX_PATH = 6


def _hash(name: str, *parts: bytes | memoryview) -> bytes:
    h = hashlib.new(name)
    for part in parts:
        h.update(part)
    return h.digest()


def _need(condition: bool, why: str) -> None:
    if not condition:
        raise Unsupported(why)


# ---- DER helpers --------------------------------------------------------------------------------
def _parts(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    try:
        return der.children(data, start, end)
    except der.DERError as exc:
        raise Unsupported(str(exc)) from None


def _algorithm(data: bytes, start: int, end: int) -> bytes:
    items = _parts(data, start, end)
    _need(bool(items) and items[0][0] == 0x06, "bad AlgorithmIdentifier")
    _need(len(items) == 1 or (len(items) == 2 and data[items[1][1] : items[1][3]] == b"\x05\x00"), "parameters")
    return data[items[0][2] : items[0][3]]


@dataclass
class Signer:
    certs: list[bytes]
    content_type: bytes
    content: bytes | None  # eContent (for timestamp tokens)
    cert: Cert
    digest: str
    digest_algorithm_der: bytes
    signature_algorithm: bytes
    signature_algorithm_der: bytes
    signature: bytes
    signed_attrs: bytes  # DER with the SET tag, as signed
    attrs: dict[bytes, bytes]  # OID -> the single value's TLV
    unsigned: dict[bytes, bytes]


def signed_data(data: bytes, unsigned_allowed: frozenset[bytes]) -> Signer:
    """A ContentInfo holding SignedData with exactly one signer identified by issuer and serial."""
    try:
        start, end = der.single(data, 0x30)
    except der.DERError as exc:
        raise Unsupported(str(exc)) from None
    ci = _parts(data, start, end)
    _need(len(ci) == 2 and ci[0][0] == 0x06 and data[ci[0][2] : ci[0][3]] == ID_SIGNED_DATA, "not SignedData")
    _need(ci[1][0] == 0xA0, "bad ContentInfo")
    wrapped = _parts(data, ci[1][2], ci[1][3])
    _need(len(wrapped) == 1 and wrapped[0][0] == 0x30, "bad ContentInfo")
    sd = _parts(data, wrapped[0][2], wrapped[0][3])
    _need(len(sd) >= 4 and sd[0][0] == 0x02 and sd[1][0] == 0x31 and sd[2][0] == 0x30, "bad SignedData")
    _need(data[sd[0][2] : sd[0][3]] in (b"\x01", b"\x03"), "SignedData version")
    encap = _parts(data, sd[2][2], sd[2][3])
    _need(bool(encap) and encap[0][0] == 0x06, "bad encapContentInfo")
    content_type = data[encap[0][2] : encap[0][3]]
    content = None
    if len(encap) == 2:
        _need(encap[1][0] == 0xA0, "bad eContent")
        octets = _parts(data, encap[1][2], encap[1][3])
        _need(len(octets) == 1 and octets[0][0] == 0x04, "eContent is not one OCTET STRING")
        content = data[octets[0][2] : octets[0][3]]
    _need(len(encap) <= 2, "bad encapContentInfo")
    certs: list[bytes] = []
    rest = sd[3:]
    if rest and rest[0][0] == 0xA0:
        for tag, header, _, stop in _parts(data, rest[0][2], rest[0][3]):
            _need(tag == 0x30, "only plain certificates")
            certs.append(data[header:stop])
        rest = rest[1:]
    _need(len(rest) == 1 and rest[0][0] == 0x31, "CRLs inside the CMS, or no signerInfos")
    infos = _parts(data, rest[0][2], rest[0][3])
    _need(len(infos) == 1 and infos[0][0] == 0x30, "not exactly one signer")
    si = _parts(data, infos[0][2], infos[0][3])
    _need(len(si) in (6, 7) and data[si[0][1] : si[0][3]] == b"\x02\x01\x01", "SignerInfo v1 expected")
    _need(si[1][0] == 0x30 and si[2][0] == 0x30 and si[3][0] == 0xA0 and si[4][0] == 0x30, "bad SignerInfo")
    _need(si[5][0] == 0x04, "bad SignerInfo signature")
    ias = _parts(data, si[1][2], si[1][3])
    _need(len(ias) == 2 and ias[0][0] == 0x30 and ias[1][0] == 0x02, "bad issuerAndSerialNumber")
    issuer, serial = data[ias[0][1] : ias[0][3]], data[ias[1][2] : ias[1][3]]
    chosen = [c for c in (certificate(d) for d in certs) if c.issuer == issuer and c.serial == serial]
    _need(len(chosen) == 1, "signer certificate not embedded exactly once")
    digest_oid = _algorithm(data, si[2][2], si[2][3])
    _need(digest_oid in DIGESTS and DIGESTS[digest_oid] != "sha1", "digest algorithm")
    sig_oid = _algorithm(data, si[4][2], si[4][3])
    _need(sig_oid in SIGNATURE_ALGORITHMS and SIGNATURE_ALGORITHMS[sig_oid] == DIGESTS[digest_oid], "algorithms")
    attrs = _attributes(data, si[3][2], si[3][3])
    unsigned: dict[bytes, bytes] = {}
    if len(si) == 7:
        _need(si[6][0] == 0xA1, "bad unsignedAttrs")
        unsigned = _attributes(data, si[6][2], si[6][3])
        _need(set(unsigned) <= unsigned_allowed, "unexpected unsigned attribute")
    return Signer(
        certs=certs,
        content_type=content_type,
        content=content,
        cert=chosen[0],
        digest=DIGESTS[digest_oid],
        digest_algorithm_der=data[si[2][1] : si[2][3]],
        signature_algorithm=sig_oid,
        signature_algorithm_der=data[si[4][1] : si[4][3]],
        signature=data[si[5][2] : si[5][3]],
        signed_attrs=b"\x31" + data[si[3][1] + 1 : si[3][3]],
        attrs=attrs,
        unsigned=unsigned,
    )


def _attributes(data: bytes, start: int, end: int) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    for tag, _, s, e in _parts(data, start, end):
        items = _parts(data, s, e)
        _need(tag == 0x30 and len(items) == 2 and items[0][0] == 0x06 and items[1][0] == 0x31, "bad attribute")
        values = _parts(data, items[1][2], items[1][3])
        oid = data[items[0][2] : items[0][3]]
        _need(len(values) == 1 and oid not in out, "attribute with several values, or repeated")
        out[oid] = data[values[0][1] : values[0][3]]
    return out


def _octets(value: bytes) -> bytes:
    tag, start, end = der.read(value)
    _need(tag == 0x04 and end == len(value), "OCTET STRING expected")
    return value[start:end]


def _check_signed_attributes(signer: Signer, content_type: bytes, digest: bytes) -> None:
    attrs = signer.attrs
    _need(set(attrs) <= SIGNED_ATTRS, "unexpected signed attribute")
    _need(attrs.get(ATTR_CONTENT_TYPE) == b"\x06" + bytes([len(content_type)]) + content_type, "contentType")
    _need(signer.content_type == content_type, "eContentType")
    found = attrs.get(ATTR_MESSAGE_DIGEST)
    _need(found is not None and _octets(found) == digest, "messageDigest")
    protection = attrs.get(ATTR_ALGORITHM_PROTECTION)
    if protection is not None:  # RFC 6211: the same algorithms as outside, signature one as [1]
        _, start, end = der.read(protection)
        items = _parts(protection, start, end)
        _need(len(items) == 2 and protection[items[0][1] : items[0][3]] == signer.digest_algorithm_der,
              "CMSAlgorithmProtection digest")  # fmt: skip
        _need(items[1][0] == 0xA1 and b"\x30" + protection[items[1][1] + 1 : items[1][3]]
              == signer.signature_algorithm_der, "CMSAlgorithmProtection signature")  # fmt: skip
    for oid, v2 in ((ATTR_SIGNING_CERTIFICATE_V2, True), (ATTR_SIGNING_CERTIFICATE, False)):
        value = attrs.get(oid)
        if value is not None:
            _check_ess(value, signer.cert, v2)
            break


def _check_ess(value: bytes, cert: Cert, v2: bool) -> None:
    """The first ESSCertID(v2) names the signer's certificate (hash, and issuerSerial if present)."""
    _, start, end = der.read(value)
    outer = _parts(value, start, end)
    _need(bool(outer) and outer[0][0] == 0x30, "bad SigningCertificate")
    ids = _parts(value, outer[0][2], outer[0][3])
    _need(bool(ids) and ids[0][0] == 0x30, "empty SigningCertificate")
    first = _parts(value, ids[0][2], ids[0][3])
    algorithm = "sha1"
    if v2 and first and first[0][0] == 0x30:
        oid = _algorithm(value, first[0][2], first[0][3])
        _need(oid in DIGESTS, "ESS hash algorithm")
        algorithm, first = DIGESTS[oid], first[1:]
    elif v2:
        algorithm = "sha256"
    _need(bool(first) and first[0][0] == 0x04, "bad ESSCertID")
    _need(value[first[0][2] : first[0][3]] == _hash(algorithm, cert.der), "ESS certificate hash")
    if len(first) == 2:  # IssuerSerial: GeneralNames with the issuer's directoryName, and the serial
        serial_parts = _parts(value, first[1][2], first[1][3])
        _need(len(serial_parts) == 2 and serial_parts[1][0] == 0x02, "bad IssuerSerial")
        _need(value[serial_parts[1][2] : serial_parts[1][3]] == cert.serial, "ESS serial")
        names = _parts(value, serial_parts[0][2], serial_parts[0][3])
        _need(len(names) == 1 and names[0][0] == 0xA4, "ESS issuer")
        _need(_explicit_name(value, names[0]) == cert.issuer, "ESS issuer")
    _need(len(first) <= 2, "bad ESSCertID")


def _explicit_name(value: bytes, item: tuple[int, int, int, int]) -> bytes:
    inner = _parts(value, item[2], item[3])
    _need(len(inner) == 1 and inner[0][0] == 0x30, "bad directoryName")
    return value[inner[0][1] : inner[0][3]]


# ---- signatures and paths -------------------------------------------------------------------------
@lru_cache(maxsize=256)
def _p256(spki: bytes) -> ec.EllipticCurvePublicKey:
    key = serialization.load_der_public_key(spki)
    _need(isinstance(key, ec.EllipticCurvePublicKey), "not an EC key")
    assert isinstance(key, ec.EllipticCurvePublicKey)
    return key


VerifiedKey = tuple[bytes, bytes, bytes, bytes]  # (CA key SPKI, algorithm OID, signature, SHA-256 of the data)


@dataclass(frozen=True)
class TrustView:
    """What the checks read from a trust store, in this path's terms."""

    ca_keys: frozenset[bytes]
    roots: dict[bytes, x509.Certificate]  # DER -> the anchor
    intermediates: list[Cert]


class TrustViews:
    """The TrustView of a trust store, made again only when its members change (the store's lists
    are public and may be appended to at any time; asn1crypto's dump() of every CA per document
    cost more than the rest of path building)."""

    def __init__(self) -> None:
        self._last: tuple[tuple[object, ...], object, TrustView] | None = None

    def of(self, trust: TrustStore) -> TrustView:
        lists = (tuple(trust.cas), tuple(trust.anchors), tuple(trust.cross))  # one snapshot, used below
        key = (id(trust), *(tuple(map(id, members)) for members in lists))  # (held below: no id reused)
        last = self._last
        if last is not None and last[0] == key:
            return last[2]
        snapshot = TrustStore(cas=list(lists[0]), anchors=list(lists[1]), cross=list(lists[2]))
        view = TrustView(
            ca_keys=snapshot.ca_keys(),
            roots={certificate(c.dump()).der: c for c in snapshot.trust_roots()},
            intermediates=[certificate(c.dump()) for c in snapshot.intermediates()],
        )
        self._last = (key, (trust, lists), view)
        return view


class Checker:
    """Signature checks and path validation against one trust store; remembers only verified
    signatures by trusted CA keys (as the full path's validator does)."""

    def __init__(self, trust: TrustStore, verified: dict[VerifiedKey, bool], view: TrustView | None = None) -> None:
        """Built per document from the trust store as it is now (`view`: its TrustView, if the caller
        keeps one); `verified` is kept by the caller."""
        view = view or TrustViews().of(trust)
        self.trust = trust
        self.ca_keys = view.ca_keys
        self.roots = view.roots
        self.intermediates = view.intermediates
        self._verified = verified

    def verify(self, key: Cert, algorithm: bytes, signature: bytes, data: bytes) -> bool:
        remember = key.spki in self.ca_keys
        if remember:  # (the algorithm too: an OCSP response's lies outside what is signed)
            cache_key = (key.spki, algorithm, signature, hashlib.sha256(data).digest())
            if cache_key in self._verified:
                return True
        if algorithm == OID_SM2_SM3 and key.key_family == "sm2":
            try:
                ok = sm2.public_key(key.public_key_bits).verify(signature, data)
            except (sm2.InvalidKey, ValueError):
                return False
        elif algorithm == OID_ECDSA_SHA256 and key.key_family == "p256":
            try:
                _p256(key.spki).verify(signature, data, ec.ECDSA(hashes.SHA256()))
                ok = True
            except (InvalidSignature, ValueError):
                ok = False
        else:
            return False
        if ok and remember:
            if len(self._verified) > 4096:
                self._verified.clear()
            self._verified[cache_key] = True
        return ok

    def path(self, leaf: Cert, pool: list[Cert], moment: datetime) -> list[Cert]:
        """[leaf, issuing CA, ..., trust anchor]: one candidate issuer at every step (else the full path
        decides), every signature valid, every certificate but the anchor valid at `moment`, CA
        constraints honoured."""
        chain = [leaf]
        current = leaf
        candidates = [*self.intermediates, *pool]
        _need(leaf.der not in self.roots, "the signer is a trust anchor")
        while current.der not in self.roots:
            _need(len(chain) <= MAX_PATH, "path too long")
            issuers = {c.der: c for c in candidates if c.subject == current.issuer and c.der != current.der}
            issuers.update({d: certificate(d) for d in self.roots if certificate(d).subject == current.issuer})
            _need(len(issuers) == 1, "no single candidate issuer")
            issuer = next(iter(issuers.values()))
            _need(self.verify(issuer, current.signature_algorithm, current.signature, current.tbs), "signature")
            is_ca, path_len = issuer.ca
            _need(is_ca, "issuer is not a CA")
            _need(path_len is None or path_len >= len(chain) - 1, "path length")
            usage = issuer.key_usage
            _need(usage is None or KU_KEY_CERT_SIGN in usage, "issuer key usage")
            chain.append(issuer)
            current = issuer
        for cert in chain[:-1]:
            _need(cert.not_before <= moment <= cert.not_after, "certificate not valid at the time")
        return chain


@dataclass
class Revinfo:
    crls: list[CRLView]
    ocsps: list[OCSPView]


def _revocation(checker: Checker, cert: Cert, issuer: Cert, moment: datetime, info: Revinfo, hard: bool) -> None:
    """Every piece of revocation material about `cert` must be usable and say good; `hard`: at least
    one of a kind the certificate declares (as the full path's validator requires) must exist.
    Retroactive (material issued after `moment` is fine), but `moment` <= nextUpdate."""
    declares_crl, declares_ocsp = cert.declared_revocation
    found = False
    for view in info.ocsps:
        for single in view.responses:
            if single.serial != cert.serial:
                continue
            name = DIGESTS.get(single.hash_algorithm)
            if name is None:
                raise Unsupported("OCSP CertID hashed with an algorithm this path does not compute")
            if single.issuer_name_hash != _hash(name, issuer.subject):
                continue
            if single.issuer_key_hash != _hash(name, issuer.public_key_bits):
                continue
            _ocsp_signed_by_authority(checker, view, issuer, moment)
            _need(single.good, "OCSP status is not good")
            _need(single.next_update is not None and moment <= single.next_update, "stale OCSP response")
            found = found or declares_ocsp
    for listing in info.crls:
        if listing.issuer != issuer.subject:
            # the full path compares names as X.500 does (case, white space, string types)
            _need(not _same_name(listing.issuer, issuer.subject), "a CRL names its issuer in another encoding")
            continue
        if listing.scope is not None and not any(listing.scope & names for names in cert.crl_points):
            # another partition's list (RFC 5280 §5.2.5): silent about this certificate. The full path's
            # validator matches names as it does; one listing this serial is left to it all the same.
            _need(cert.serial not in listing.revoked, "a CRL of another scope lists this serial")
            continue
        usage = issuer.key_usage
        _need(usage is None or KU_CRL_SIGN in usage, "CRL issuer may not sign CRLs")
        _need(checker.verify(issuer, listing.signature_algorithm, listing.signature, listing.tbs), "CRL signature")
        _need(moment <= listing.next_update, "stale CRL")
        _need(cert.serial not in listing.revoked, "revoked")
        found = found or declares_crl
    _need(found or not hard, "no revocation information of a kind the certificate declares")


@lru_cache(maxsize=256)
def _same_name(a: bytes, b: bytes) -> bool:
    """Two Name encodings the full path's validator takes for the same name (unreadable: assume so)."""
    try:
        return bool(x509.Name.load(a) == x509.Name.load(b))
    except (ValueError, TypeError, KeyError):
        return True


def _ocsp_signed_by_authority(checker: Checker, view: OCSPView, issuer: Cert, moment: datetime) -> None:
    def named(candidate: Cert) -> bool:
        if view.responder_name is not None:
            return view.responder_name == candidate.subject
        # RFC 6960 KeyHash is SHA-1 by definition: an identifier, not a security function
        return view.responder_key_hash == hashlib.sha1(candidate.public_key_bits, usedforsecurity=False).digest()

    if named(issuer):
        _need(checker.verify(issuer, view.signature_algorithm, view.signature, view.tbs), "OCSP signature")
        return
    responders = [certificate(d) for d in view.certs]
    chosen = [r for r in responders if named(r) and r.issuer == issuer.subject]
    _need(len(chosen) == 1, "no single delegated responder")
    responder = chosen[0]
    _need(checker.verify(issuer, responder.signature_algorithm, responder.signature, responder.tbs), "responder")
    _need(EKU_OCSP_SIGNING in (responder.extended_key_usage or set()), "responder EKU")
    _need(EXT_OCSP_NOCHECK in responder.extensions, "responder without ocsp-nocheck")
    usage = responder.key_usage
    _need(usage is None or KU_DIGITAL_SIGNATURE in usage, "responder key usage")
    for when in (moment, view.produced_at):
        _need(responder.not_before <= when <= responder.not_after, "responder not valid")
    _need(checker.verify(responder, view.signature_algorithm, view.signature, view.tbs), "OCSP signature")


# ---- the PDF --------------------------------------------------------------------------------------
class StructureObjects:
    """policies.pdf_content's view of this reader (the newest revision)."""

    def __init__(self, pdf: PdfFile) -> None:
        self.pdf = pdf

    def get(self, mapping: Mapping[Any, Any], key: str) -> Any:
        return mapping.get(key)

    def resolve(self, value: Any) -> Any:
        return self.pdf.resolve(value)

    def identity(self, value: Any) -> Hashable | None:
        return value if isinstance(value, Ref) else None

    def mapping(self, value: Any) -> Mapping[Any, Any] | None:
        return value if isinstance(value, PdfDict) else value.info if isinstance(value, Stream) else None


def _text(value: Any) -> str:
    _need(isinstance(value, bytes), "text string expected")
    if value.startswith(b"\xfe\xff"):
        return value[2:].decode("utf-16-be")
    _need(value.isascii(), "non-ASCII PDFDocEncoding text")
    return value.decode("ascii")


_PDF_DATE = re.compile(rb"D:(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:(Z)|([+-])(\d{2})'?(\d{2})?'?)?$")


def _pdf_date(value: bytes) -> datetime:
    match = _PDF_DATE.match(value)
    _need(match is not None, "unreadable /M")
    assert match is not None
    year, month, day, hour, minute, second = (
        int(g) if g else d for g, d in zip(match.groups()[:6], (0, 1, 1, 0, 0, 0), strict=True)
    )
    _need(match.group(7) is not None, "/M without Z")  # offsets: leave them to pyHanko
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@dataclass
class Layout:
    field_name: str
    sig: PdfDict
    revision: int  # index of the revision the signature covers
    contents: bytes  # the CMS DER (padding removed)
    ranges: tuple[tuple[int, int], tuple[int, int]]
    catalog: PdfDict
    later_only_dss: bool


def _layout(pdf: PdfFile) -> Layout:
    revisions = pdf.revisions
    root_ref = revisions[-1].trailer.get("Root")
    _need(isinstance(root_ref, Ref) and all(r.trailer.get("Root") == root_ref for r in revisions), "/Root moved")
    assert isinstance(root_ref, Ref)
    catalog = pdf.get(root_ref)
    _need(isinstance(catalog, PdfDict) and catalog.get("Type") == "Catalog", "no catalog")
    _need("Perms" not in catalog and "Collection" not in catalog, "certification or portfolio")
    form = pdf.resolve(catalog.get("AcroForm"))
    _need(isinstance(form, PdfDict), "no AcroForm")
    fields = pdf.resolve(form.get("Fields"))
    _need(isinstance(fields, list) and len(fields) == 1 and isinstance(fields[0], Ref), "not exactly one field")
    field = pdf.get(fields[0])
    _need(isinstance(field, PdfDict) and field.get("FT") == "Sig" and "Kids" not in field, "not a signature field")
    _need("Lock" not in field and "SV" not in field and "Parent" not in field, "field locks or seed values")
    sig_ref = field.get("V")
    _need(isinstance(sig_ref, Ref), "signature dictionary not indirect")
    entry = pdf.entry(sig_ref.num)
    _need(entry is not None and entry[1] == 1 and entry[3] == sig_ref.gen, "signature dictionary missing")
    assert entry is not None
    sig = pdf.get(sig_ref)
    _need(isinstance(sig, PdfDict) and set(sig) <= SIG_DICT_KEYS, "unexpected signature dictionary keys")
    _need(sig.get("Type", "Sig") == "Sig" and sig.get("SubFilter") in SUB_FILTERS, "SubFilter")
    _need(sig.get("Filter") == "Adobe.PPKLite", "Filter")
    byte_range = sig.get("ByteRange")
    _need(isinstance(byte_range, list) and len(byte_range) == 4 and all(type(v) is int for v in byte_range),
          "ByteRange")  # fmt: skip
    a, b, c, d = byte_range
    index = entry[0]
    revision = revisions[index]
    contents = sig.get("Contents")
    span = sig.spans.get("Contents")
    _need(isinstance(contents, bytes) and span is not None, "Contents")
    assert span is not None
    # the hole is exactly this dictionary's /Contents string, and the signature covers its whole revision
    _need(a == 0 and span == (b, c) and b < c and c + d == revision.end, "ByteRange does not cover the revision")
    _need(revision.start <= entry[2] < b, "signature dictionary outside its revision")
    try:
        _, _, end = der.read(contents)
    except der.DERError as exc:
        raise Unsupported(str(exc)) from None
    cms = contents[:end]  # (not rstrip: the DER itself may end with a zero octet)
    _need(not contents[end:].strip(b"\x00"), "bytes after the CMS in /Contents")
    name = _text(field.get("T"))
    for later in range(index + 1, len(revisions)):
        _dss_only(pdf, later, root_ref, (b, c))
    return Layout(name, sig, index, cms, ((a, b), (c, c + d)), catalog, index + 1 < len(revisions))


def _dss_only(pdf: PdfFile, index: int, root_ref: Ref, hole: tuple[int, int]) -> None:
    """Revision `index` changes nothing a reader sees: it rewrites the catalog with only /DSS (and
    /Extensions) different, may rewrite a plain /Info and the XMP metadata stream (pyHanko does on every
    incremental save, always for PDF 2.0 files such as P-256 seals) if its licence claim stays the
    signed one (verify/licence.py's rule, as on the full path), and otherwise adds new objects only: object numbers
    the signed document never refers to (else a "new" object fills a reference prepared before
    signing). Its bytes are exactly the objects its xref section lists, so nothing is hidden from
    this check (for a reader that rebuilds the xref, or finds an entry pointing elsewhere)."""
    revision = pdf.revisions[index]
    info_ref = revision.trailer.get("Info")
    _need(info_ref is None or info_ref == pdf.revisions[index - 1].trailer.get("Info"), "/Info moved")
    previous_catalog = pdf.get(root_ref, index - 1)
    metadata_ref = previous_catalog.get("Metadata") if isinstance(previous_catalog, PdfDict) else None
    _need(set(revision.trailer) <= {"Root", "Info", "ID", "Size", "Prev", "Type", "W", "Index", "Filter",
                                    "Length", "DecodeParms"}, "unexpected trailer keys")  # fmt: skip
    written = pdf.objects_in(index)
    listed = {num: entry for num, entry in revision.entries.items() if num != 0}
    fresh: list[int] = []
    xref = revision.xref_ref
    if xref is not None:  # the xref stream's own entry, if listed, is that object and only that
        _need(listed.pop(xref.num, None) in (None, (1, revision.xref_offset, xref.gen)), "xref stream entry")
        fresh.append(xref.num)
    _need(all(kind == 1 for kind, _, _ in listed.values()), "an object freed or compressed after signing")
    _need({num: (offset, gen) for num, (_, offset, gen) in listed.items()} == written,
          "the xref section does not list exactly the objects the revision writes")  # fmt: skip
    for num, (_, offset, gen) in listed.items():
        for target in _references(pdf.object_at(offset, Ref(num, gen))[0]):
            found = pdf.entry(target.num, index)  # what a later revision adds must not dangle (pyHanko fails
            _need(found is not None and found[1] != 0 and found[3] == target.gen, "a dangling reference")  # on it)
        before = pdf.entry(num, index - 1)
        ref = Ref(num, gen)
        if before is None or before[1] == 0:
            fresh.append(num)
            continue
        _need(before[1] == 1 and before[3] == gen, "an object changed generation or left an object stream")
        old, new = pdf.get(ref, index - 1), pdf.object_at(offset, ref)[0]
        if ref == root_ref:
            _need(isinstance(old, PdfDict) and isinstance(new, PdfDict), "catalog")
            changed = {k for k in set(old) | set(new) if not _same(old.get(k), new.get(k))}
            _need(changed <= {"DSS", "Extensions"}, f"catalog keys changed: {sorted(changed)}")
            _need(not isinstance(new.get("Extensions"), Ref), "indirect /Extensions")
        elif ref == metadata_ref:
            for value in (old, new):
                _need(isinstance(value, Stream) and value.info.get("Type") == "Metadata", "metadata")
            _need(_well_formed_xml(decode_stream(new)), "metadata that is not well-formed XML")  # pyHanko objects
            claims = (licence.read_claim(decode_stream(old)), licence.read_claim(decode_stream(new)))
            _need(licence.changed(*claims) is None, "the licence metadata changed after signing")
        elif ref == info_ref:
            for value in (old, new):
                _need(isinstance(value, PdfDict) and set(value) <= INFO_KEYS, "document information")
                _need(all(isinstance(v, bytes) for v in value.values()), "document information")
        else:
            raise Unsupported(f"object {num} changed after signing")
    if fresh:
        filled = pdf.refers_to(set(fresh), revision.start, hole)
        _need(not filled, f"new objects {sorted(filled)} fill references made before they existed")


def _references(value: Any) -> list[Ref]:
    """The references inside one object (not followed)."""
    if isinstance(value, Ref):
        return [value]
    if isinstance(value, Stream):
        value = value.info
    if isinstance(value, dict):
        return [ref for item in value.values() for ref in _references(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in _references(item)]
    return []


def _well_formed_xml(data: bytes) -> bool:
    """Whether an XMP packet parses as XML (no DTD, no entities) with an x:xmpmeta root: pyHanko's
    difference analysis (MetadataUpdateRule) calls any other metadata update suspicious, so this path
    must not pass one (both found by fuzzing)."""
    from defusedxml import ElementTree
    from defusedxml.common import DefusedXmlException

    try:
        root = ElementTree.fromstring(data)
    except (ElementTree.ParseError, DefusedXmlException, ValueError):
        return False
    return bool(root.tag == "{adobe:ns:meta/}xmpmeta")


def _same(a: Any, b: Any) -> bool:
    """Equal as PDF objects: Python's True == 1 (and b"" != "" aside, its other cross-type equalities)
    must not hide a changed value; an integer and a real of the same value are the same number."""
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return a == b
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


_DSS_KEYS = {"Type", "VRI", "Certs", "CRLs", "OCSPs"}
_VRI_KEYS = {"Type", "TU", "TS", "Cert", "CRL", "OCSP"}
_VRI_KEY = re.compile(r"[A-Z0-9]{40}")


def _stream_refs(pdf: PdfFile, value: Any) -> None:
    items = pdf.resolve(value)
    _need(isinstance(items, list) and all(isinstance(item, Ref) for item in items), "DSS array of references")
    _need(all(isinstance(pdf.resolve(item), Stream) for item in items), "DSS entry is not a stream")


def _dss_shape(pdf: PdfFile, dss: PdfDict) -> None:
    """The DSS as pyHanko's difference analysis accepts one (its DSSCompareRule), or decline: only
    /Type, /VRI and arrays of stream references, VRI entries keyed by 40 upper-case hex digits holding
    only /Type /TU /TS /Cert /CRL /OCSP (fuzzing found DSS keys the full path calls suspicious)."""
    _need(set(dss) <= _DSS_KEYS, "unexpected DSS keys")
    for key in ("Certs", "CRLs", "OCSPs"):
        if key in dss:
            _stream_refs(pdf, dss[key])
    vri = pdf.resolve(dss.get("VRI", {}))
    _need(isinstance(vri, PdfDict) and not isinstance(vri, Stream), "VRI is not a dictionary")
    for name, entry in vri.items():
        _need(_VRI_KEY.match(name) is not None, "VRI key format")
        value = pdf.resolve(entry)
        _need(isinstance(value, PdfDict) and set(value) <= _VRI_KEYS, "VRI entry")
        for key in ("Cert", "CRL", "OCSP"):
            if key in value:
                _stream_refs(pdf, value[key])


def _dss(pdf: PdfFile, catalog: PdfDict) -> tuple[list[bytes], list[bytes], list[bytes]]:
    dss = pdf.resolve(catalog.get("DSS"))
    if dss is None:
        return [], [], []
    _need(isinstance(dss, PdfDict), "DSS")
    _dss_shape(pdf, dss)
    out: list[list[bytes]] = []
    for key in ("Certs", "CRLs", "OCSPs"):
        items = pdf.resolve(dss.get(key, []))
        _need(isinstance(items, list) and len(items) <= 64, "DSS array")
        streams = [pdf.resolve(item) for item in items]
        _need(all(isinstance(s, Stream) for s in streams), "DSS entry is not a stream")
        out.append([decode_stream(s) for s in streams])
    return out[0], out[1], out[2]


def _xmp_licence(pdf: PdfFile, revision: int) -> licence.LicenceClaim:
    """The licence claim of the XMP the signed revision's catalog names (later revisions may not change
    the catalog's /Metadata, nor the claim in the stream: _dss_only)."""
    root_ref = pdf.revisions[revision].trailer.get("Root")
    _need(isinstance(root_ref, Ref), "/Root")
    assert isinstance(root_ref, Ref)
    catalog = pdf.get(root_ref, revision)
    _need(isinstance(catalog, PdfDict), "no catalog")
    metadata = pdf.resolve(catalog.get("Metadata"), revision)
    if metadata is None:
        return licence.NONE
    _need(isinstance(metadata, Stream), "metadata")
    return licence.read_claim(decode_stream(metadata))


def _timestamp(checker: Checker, token: bytes, signature: bytes, info: Revinfo, extra: list[Cert]) -> datetime:
    """The signature timestamp's genTime, once the token is proven sound: imprint over the signature
    value, TSA signature, TSA certificate for time stamping with a path valid now (soft revocation)."""
    signer = signed_data(token, frozenset())
    _need(signer.content is not None, "timestamp token without TSTInfo")
    assert signer.content is not None
    _check_signed_attributes(signer, ID_TST_INFO, _hash(signer.digest, signer.content))
    tst = signer.content
    try:
        start, end = der.single(tst, 0x30)
    except der.DERError as exc:
        raise Unsupported(str(exc)) from None
    items = _parts(tst, start, end)
    _need(len(items) >= 5 and tst[items[0][1] : items[0][3]] == b"\x02\x01\x01", "TSTInfo v1")
    imprint = _parts(tst, items[2][2], items[2][3])
    _need(len(imprint) == 2 and imprint[1][0] == 0x04, "messageImprint")
    algorithm = _algorithm(tst, imprint[0][2], imprint[0][3])
    _need(algorithm in DIGESTS and DIGESTS[algorithm] != "sha1", "imprint algorithm")
    _need(tst[imprint[1][2] : imprint[1][3]] == _hash(DIGESTS[algorithm], signature), "imprint mismatch")
    _need(items[4][0] == 0x18, "genTime")
    gen_time = parse_time(tst, 0x18, items[4][2], items[4][3])
    tsa = signer.cert
    _need(checker.verify(tsa, signer.signature_algorithm, signer.signature, signer.signed_attrs), "TSA signature")
    _need(EKU_TIME_STAMPING in (tsa.extended_key_usage or set()), "TSA EKU")
    now = datetime.now(UTC)
    chain = checker.path(tsa, [*extra, *(certificate(c) for c in signer.certs)], now)
    for child, parent in itertools.pairwise(chain):
        _revocation(checker, child, parent, now, info, hard=False)
    listed_path = [checker.roots[chain[-1].der], *(_parsed(c.der) for c in reversed(chain[:-1]))]
    _need(seal_checks.tsa_untrusted(listed_path, checker.trust, now) is None, "the TSA is not trusted now")
    return gen_time


def verify_fast(data: bytes, trust: TrustStore, sources: Sources, checker: Checker, at: datetime | None,
                budget: Budget | None = None) -> Report:  # fmt: skip
    """The report of a valid document in the common layout; Unsupported for anything else (also when
    `budget` does not allow hashing the signed bytes: the full path then says so)."""
    # the full path may fetch newer revocation material than the document carries (and find a
    # revocation dated before the signing time): this path only reads what it is given
    _need(not sources.fetch, "revocation fetching is enabled")
    try:
        pdf = PdfFile(data)
        layout = _layout(pdf)
    except StructureError as exc:
        raise Unsupported(str(exc)) from None
    signer = signed_data(layout.contents, frozenset({ATTR_SIGNATURE_TIMESTAMP}))
    _need(signer.content is None, "a detached signature with encapsulated content")
    (a, b), (c, d) = layout.ranges
    _need(budget is None or budget.take(b - a + d - c) is None, "work limit")
    view = memoryview(data)
    digest = _hash(signer.digest, view[a:b], view[c:d])
    _check_signed_attributes(signer, ID_DATA, digest)
    cert = signer.cert
    _need(checker.verify(cert, signer.signature_algorithm, signer.signature, signer.signed_attrs), "signature")
    try:
        dss_certs, dss_crls, dss_ocsps = _dss(pdf, layout.catalog)
        claim = _xmp_licence(pdf, layout.revision)
        active = find_active_content(layout.catalog, StructureObjects(pdf))
    except StructureError as exc:
        raise Unsupported(str(exc)) from None
    extra_crls: list[Any] = []
    extra_ocsps: list[Any] = []
    if sources.revocation_lookup is not None:  # the same question the full path asks
        embedded = [_parsed(d) for d in signer.certs if d != cert.der]
        extra_crls, extra_ocsps = sources.revocation([*embedded, _parsed(cert.der)])
    info = Revinfo(
        crls=[crl(x) for x in [*dss_crls, *(item.dump() for item in extra_crls)]],
        ocsps=[ocsp_response(x) for x in [*dss_ocsps, *(item.dump() for item in extra_ocsps)]],
    )
    pool = [certificate(x) for x in [*signer.certs, *dss_certs]]

    out = SignatureReport(field_name=layout.field_name)
    out.signer = dict(describe_cert(_parsed(cert.der)))
    out.add("format", PASSED)
    token = signer.unsigned.get(ATTR_SIGNATURE_TIMESTAMP)
    stamped = _timestamp(checker, token, signer.signature, info, pool) if token is not None else None
    claimed = _claimed(signer, layout.sig)
    shown = stamped or claimed
    out.signing_time = shown.isoformat() if shown else None
    out.signing_time_source = "timestamp" if stamped else "claimed" if claimed else None
    moment, proven = rules.validation_time(at, stamped)  # (_timestamp declines a token that does not validate)
    out.add("integrity", PASSED)
    out.add("signature", PASSED)
    rules.add_signing_time(out, at=at, moment=moment, proven=proven, claimed=claimed)

    usage = cert.key_usage
    _need(usage is not None and KU_NON_REPUDIATION in usage, "signer key usage")
    _need(seal_checks.signer_role_problem(_parsed(cert.der)) is None, "signer not certified for signing documents")
    chain = checker.path(cert, pool, moment)
    for child, parent in itertools.pairwise(chain):
        _revocation(checker, child, parent, moment, info, hard=True)
    listed_path = [checker.roots[chain[-1].der], *(_parsed(c.der) for c in reversed(chain[1:-1]))]
    seal_checks.judge_cas(out, listed_path, moment, trust)
    _need(out.checks[-1].status == PASSED, "a CA on the path is withdrawn")
    rules.not_revoked(out)

    seal_der = next((signer.attrs[oid] for oid in ATTR_SESEALS if oid in signer.attrs), None)
    if seal_der is None:
        rules.add_no_seal(out)
    else:
        try:
            seal = seal_checks.parsed_seal(_seal_octets(seal_der))
        except ses.SESFormatError as exc:
            raise Unsupported(str(exc)) from None
        out.seal = seal_checks.describe(seal)
        seal_checks.check_seal(out, seal, cert.der, moment, trust, sources, proven)
        _need(all(check.status == PASSED for check in out.checks[-2:]), "seal checks")

    if layout.later_only_dss:
        rules.add_later_changes(out, None, "lta_updates")
    else:
        rules.add_unmodified(out)
    licence.judge(out, claim, out.signer.get("organization_identifier"), sources)
    _need(all(check.status == PASSED for check in out.checks if check.name == "licence_status"), "licence")
    report = Report(format="pdf", active_content=active)
    report.signatures.append(out)
    return report


def _parsed(data: bytes) -> x509.Certificate:
    return pdf_speedups.intern_certificate(x509.Certificate.load(data))


def _seal_octets(value: bytes) -> bytes:
    tag, start, end = der.read(value)
    _need(tag == 0x04 and end == len(value), "SESeal attribute is not an OCTET STRING")
    return value[start:end]


def _claimed(signer: Signer, sig: PdfDict) -> datetime | None:
    value = signer.attrs.get(ATTR_SIGNING_TIME)
    if value is not None:
        tag, start, end = der.read(value)
        return parse_time(value, tag, start, end)
    m = sig.get("M")
    return _pdf_date(m) if isinstance(m, bytes) else None
