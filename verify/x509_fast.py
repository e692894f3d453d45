"""Read-only DER views of certificates, CRLs, OCSP responses and CMS pieces for verify/pdf_fast.py.

Only the fields path validation and revocation checking need, read straight from the DER with
gm/der.py's strict reader. Each view is parsed once per DER (fair to cache: parsing, not results).
Anything outside what these views understand raises Unsupported, and the caller falls back to the
full validator.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property, lru_cache

from asn1crypto import core

from gm import der, oids


class Unsupported(ValueError):
    """Outside the fast path's scope (or malformed): use the full validator."""


def oid_der(dotted: str) -> bytes:
    """The contents octets of an OBJECT IDENTIFIER, for comparison with what the reader returns."""
    encoded: bytes = core.ObjectIdentifier(dotted).dump()
    return encoded[2:]


OID_SM2_SM3 = oid_der(oids.SM2_WITH_SM3)
OID_ECDSA_SHA256 = oid_der("1.2.840.10045.4.3.2")
OID_EC_PUBLIC_KEY = oid_der(oids.ID_EC_PUBLIC_KEY)
OID_SM2_CURVE = oid_der(oids.SM2_CURVE)
OID_P256 = oid_der(oids.SECP256R1)
OID_SM3 = oid_der(oids.SM3)
OID_SHA256 = oid_der("2.16.840.1.101.3.4.2.1")
OID_SHA1 = oid_der("1.3.14.3.2.26")
EXT_KEY_USAGE = oid_der("2.5.29.15")
EXT_BASIC_CONSTRAINTS = oid_der("2.5.29.19")
EXT_EXTENDED_KEY_USAGE = oid_der("2.5.29.37")
EXT_SKI = oid_der("2.5.29.14")
EXT_AKI = oid_der("2.5.29.35")
EXT_SAN = oid_der("2.5.29.17")
EXT_POLICIES = oid_der("2.5.29.32")
EXT_CRL_DP = oid_der("2.5.29.31")
EXT_AIA = oid_der("1.3.6.1.5.5.7.1.1")
EXT_OCSP_NOCHECK = oid_der("1.3.6.1.5.5.7.48.1.5")
EXT_CRL_NUMBER = oid_der("2.5.29.20")
EXT_NAME_CONSTRAINTS = oid_der("2.5.29.30")
EXT_POLICY_MAPPINGS = oid_der("2.5.29.33")
EXT_POLICY_CONSTRAINTS = oid_der("2.5.29.36")
EXT_INHIBIT_ANY_POLICY = oid_der("2.5.29.54")
EXT_DELTA_CRL_INDICATOR = oid_der("2.5.29.27")
EXT_ISSUING_DISTRIBUTION_POINT = oid_der("2.5.29.28")
EXT_CERTIFICATE_ISSUER = oid_der("2.5.29.29")
EXT_FRESHEST_CRL = oid_der("2.5.29.46")
AD_OCSP = oid_der("1.3.6.1.5.5.7.48.1")
EKU_TIME_STAMPING = oid_der("1.3.6.1.5.5.7.3.8")
EKU_OCSP_SIGNING = oid_der("1.3.6.1.5.5.7.3.9")
# critical extensions path validation knows how to honour; any other critical one: Unsupported
KNOWN_CRITICAL = {EXT_KEY_USAGE, EXT_BASIC_CONSTRAINTS, EXT_EXTENDED_KEY_USAGE, EXT_SAN, EXT_POLICIES}
# constraints the full path's validator enforces whether marked critical or not, and this one does not
PATH_CONSTRAINTS = {EXT_NAME_CONSTRAINTS, EXT_POLICY_MAPPINGS, EXT_POLICY_CONSTRAINTS, EXT_INHIBIT_ANY_POLICY}
# CRL extensions that narrow what a CRL covers (scope, delta, indirect): the full path may find such
# a CRL inapplicable, this one would read it as a complete list. One shape of issuingDistributionPoint is
# read here (a fullName distribution point and nothing else: partition lists, ca/crl.py); any other declines.
CRL_SCOPE = {EXT_DELTA_CRL_INDICATOR, EXT_ISSUING_DISTRIBUTION_POINT, EXT_FRESHEST_CRL}
SIGNATURE_ALGORITHMS = {OID_SM2_SM3: "sm3", OID_ECDSA_SHA256: "sha256"}
DIGESTS = {OID_SM3: "sm3", OID_SHA256: "sha256", OID_SHA1: "sha1"}

KU_DIGITAL_SIGNATURE, KU_NON_REPUDIATION, KU_KEY_CERT_SIGN, KU_CRL_SIGN = 0, 1, 5, 6


def _calendar(text: str) -> datetime:
    """YYYYMMDDHHMMSS, every one an ASCII digit (strptime also takes "1" for "01", and is slow)."""
    if len(text) != 14 or not text.isdigit():
        raise ValueError(f"not YYYYMMDDHHMMSS: {text!r}")
    return datetime(int(text[:4]), int(text[4:6]), int(text[6:8]), int(text[8:10]), int(text[10:12]), int(text[12:]))


def parse_time(data: bytes, tag: int, start: int, end: int) -> datetime:
    try:
        text = data[start:end].decode("ascii")
        if tag == 0x17 and len(text) == 13 and text.endswith("Z"):  # UTCTime YYMMDDHHMMSSZ
            year = int(text[:2])
            moment = _calendar(("19" if year >= 50 else "20") + text[:-1])
        elif tag == 0x18 and text.endswith("Z") and len(text) >= 15:  # GeneralizedTime, optional fraction
            base = _calendar(text[:14])
            fraction = text[14:-1]
            if fraction and (not fraction.startswith(".") or not fraction[1:].isdigit() or fraction.endswith("0")):
                raise Unsupported("malformed GeneralizedTime fraction")
            moment = base.replace(microsecond=int((fraction[1:] + "000000")[:6]) if fraction else 0)
        else:
            raise Unsupported("time is neither UTCTime nor GeneralizedTime in Z form")
    except ValueError as exc:
        raise Unsupported(f"malformed time: {exc}") from None
    return moment.replace(tzinfo=UTC)


def _parts(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    try:
        return der.children(data, start, end)
    except der.DERError as exc:
        raise Unsupported(str(exc)) from None


def _whole(data: bytes, tag: int) -> tuple[int, int]:
    try:
        return der.single(data, tag)
    except der.DERError as exc:
        raise Unsupported(str(exc)) from None


def _serial(data: bytes, start: int, end: int) -> bytes:
    """A serial number's INTEGER contents, in DER's one encoding. Serials are compared as bytes here
    and as numbers by the full path: a CRL entry, CertID or certificate holding 00 05 for 05 must
    not slip past a byte comparison (a revoked certificate would read as good)."""
    value = data[start:end]
    if not value or (len(value) > 1 and (value[0], value[1] >> 7) in ((0x00, 0), (0xFF, 1))):
        raise Unsupported("a serial number INTEGER that is not minimally encoded")
    return value


def _bits(data: bytes, start: int, end: int) -> set[int]:
    """Set bit numbers of a BIT STRING's contents."""
    if end - start < 1 or data[start] > 7:
        raise Unsupported("bad BIT STRING")
    out = set()
    for i, byte in enumerate(data[start + 1 : end]):
        for bit in range(8):
            if byte & (0x80 >> bit):
                out.add(8 * i + bit)
    return out


@dataclass(frozen=True)
class Cert:
    der: bytes
    tbs: bytes
    signature_algorithm: bytes  # OID contents
    signature: bytes
    serial: bytes  # INTEGER contents
    issuer: bytes  # Name DER
    subject: bytes
    not_before: datetime
    not_after: datetime
    spki: bytes  # SubjectPublicKeyInfo DER
    public_key_bits: bytes  # the BIT STRING's key bytes (for OCSP key hashes)
    key_family: str  # sm2 | p256
    extensions: dict[bytes, tuple[bool, bytes]]  # OID -> (critical, extnValue contents)

    # The extension readers below are worked out once per certificate (certificate() keeps these
    # views by DER across documents); the answers are immutable.
    @cached_property
    def key_usage(self) -> frozenset[int] | None:
        found = self.extensions.get(EXT_KEY_USAGE)
        if found is None:
            return None
        tag, start, end = der.read(found[1])
        if tag != 0x03 or end != len(found[1]):
            raise Unsupported("bad keyUsage")
        return frozenset(_bits(found[1], start, end))

    @cached_property
    def ca(self) -> tuple[bool, int | None]:
        """(cA, pathLenConstraint) from basicConstraints; (False, None) without the extension."""
        found = self.extensions.get(EXT_BASIC_CONSTRAINTS)
        if found is None:
            return False, None
        value = found[1]
        start, end = _whole(value, 0x30)
        is_ca, path_len = False, None
        for tag, _, cstart, cend in _parts(value, start, end):
            if tag == 0x01 and value[cstart:cend] == b"\xff":
                is_ca = True
            elif tag == 0x02 and cend > cstart:
                path_len = int.from_bytes(value[cstart:cend], "big", signed=True)
                if path_len < 0:
                    raise Unsupported("negative pathLenConstraint")
            else:
                raise Unsupported("unexpected basicConstraints content")
        return is_ca, path_len

    @cached_property
    def declared_revocation(self) -> tuple[bool, bool]:
        """(CRL distribution points present, an OCSP responder in the AIA): the material the full
        path's validator consults for this certificate ('hard-fail': checked if declared)."""
        found = self.extensions.get(EXT_AIA)
        ocsp = False
        if found is not None:
            value = found[1]
            start, end = _whole(value, 0x30)
            for tag, _, cstart, cend in _parts(value, start, end):
                items = _parts(value, cstart, cend)
                if tag != 0x30 or len(items) != 2 or items[0][0] != 0x06:
                    raise Unsupported("bad authorityInfoAccess")
                ocsp = ocsp or value[items[0][2] : items[0][3]] == AD_OCSP
        return EXT_CRL_DP in self.extensions, ocsp

    @cached_property
    def crl_points(self) -> tuple[frozenset[bytes], ...]:
        """The fullName of each CRL distribution point (DER of its GeneralNames): what a partition list's
        issuingDistributionPoint must name for the list to cover this certificate. A point with reasons or
        a cRLIssuer, or named relatively, is outside this path."""
        found = self.extensions.get(EXT_CRL_DP)
        if found is None:
            return ()
        value = found[1]
        start, end = _whole(value, 0x30)
        out = []
        for tag, _, cstart, cend in _parts(value, start, end):
            items = _parts(value, cstart, cend)
            if tag != 0x30 or len(items) != 1 or items[0][0] != 0xA0:
                raise Unsupported("a CRL distribution point with reasons or a cRLIssuer, or without a name")
            out.append(_full_name(value, items[0][2], items[0][3]))
        return tuple(out)

    @cached_property
    def extended_key_usage(self) -> frozenset[bytes] | None:
        found = self.extensions.get(EXT_EXTENDED_KEY_USAGE)
        if found is None:
            return None
        value = found[1]
        start, end = _whole(value, 0x30)
        return frozenset(value[cs:ce] for tag, _, cs, ce in _parts(value, start, end) if tag == 0x06)

    def extension_octets(self, oid: bytes) -> bytes | None:
        found = self.extensions.get(oid)
        return None if found is None else found[1]


@lru_cache(maxsize=4096)
def certificate(data: bytes) -> Cert:
    """A certificate's view; Unsupported for anything but X.509 v3 with SM2 or P-256 keys."""
    start, end = _whole(data, 0x30)
    top = _parts(data, start, end)
    if len(top) != 3 or top[0][0] != 0x30 or top[1][0] != 0x30 or top[2][0] != 0x03:
        raise Unsupported("not a certificate")
    tbs = data[top[0][1] : top[0][3]]
    algorithm = _algorithm_oid(data, top[1][2], top[1][3])
    sig_start, sig_end = top[2][2], top[2][3]
    if sig_end - sig_start < 2 or data[sig_start] != 0:
        raise Unsupported("bad signature BIT STRING")
    fields = _parts(data, top[0][2], top[0][3])
    if not fields or fields[0][0] != 0xA0:
        raise Unsupported("not an X.509 v3 certificate")
    version = _parts(data, fields[0][2], fields[0][3])
    if len(version) != 1 or data[version[0][2] : version[0][3]] != b"\x02":
        raise Unsupported("not an X.509 v3 certificate")
    if len(fields) < 7 or [f[0] for f in fields[1:7]] != [0x02, 0x30, 0x30, 0x30, 0x30, 0x30]:
        raise Unsupported("unexpected TBSCertificate layout")
    if _algorithm_oid(data, fields[2][2], fields[2][3]) != algorithm:
        raise Unsupported("inner and outer signature algorithms differ")
    validity = _parts(data, fields[4][2], fields[4][3])
    if len(validity) != 2:
        raise Unsupported("bad validity")
    not_before = parse_time(data, validity[0][0], validity[0][2], validity[0][3])
    not_after = parse_time(data, validity[1][0], validity[1][2], validity[1][3])
    spki = data[fields[6][1] : fields[6][3]]
    family, key_bits = _key(spki)
    extensions: dict[bytes, tuple[bool, bytes]] = {}
    for tag, _, cstart, cend in fields[7:]:
        if tag in (0x81, 0x82):
            raise Unsupported("unique identifiers")
        if tag != 0xA3:
            raise Unsupported("unexpected TBSCertificate field")
        wrapped = _parts(data, cstart, cend)
        if len(wrapped) != 1 or wrapped[0][0] != 0x30:
            raise Unsupported("bad extensions")
        for etag, _, es, ee in _parts(data, wrapped[0][2], wrapped[0][3]):
            if etag != 0x30:
                raise Unsupported("bad extension")
            items = _parts(data, es, ee)
            critical = _critical(data, items)
            oid = data[items[0][2] : items[0][3]]
            if oid in extensions:
                raise Unsupported("duplicate extension")
            extensions[oid] = (critical, data[items[-1][2] : items[-1][3]])
    for oid, (critical, _) in extensions.items():
        if critical and oid not in KNOWN_CRITICAL:
            raise Unsupported("unknown critical extension")
    if PATH_CONSTRAINTS.intersection(extensions):
        raise Unsupported("name or policy constraints")
    return Cert(
        der=data,
        tbs=tbs,
        signature_algorithm=algorithm,
        signature=data[sig_start + 1 : sig_end],
        serial=_serial(data, fields[1][2], fields[1][3]),
        issuer=data[fields[3][1] : fields[3][3]],
        subject=data[fields[5][1] : fields[5][3]],
        not_before=not_before,
        not_after=not_after,
        spki=spki,
        public_key_bits=key_bits,
        key_family=family,
        extensions=extensions,
    )


def _algorithm_oid(data: bytes, start: int, end: int) -> bytes:
    """The OID of an AlgorithmIdentifier for the signature algorithms we take (no parameters)."""
    items = _parts(data, start, end)
    if not items or items[0][0] != 0x06:
        raise Unsupported("bad AlgorithmIdentifier")
    oid = data[items[0][2] : items[0][3]]
    if len(items) > 1 and not (len(items) == 2 and data[items[1][1] : items[1][3]] == b"\x05\x00"):
        raise Unsupported("AlgorithmIdentifier with parameters")
    return oid


def _key(spki: bytes) -> tuple[str, bytes]:
    start, end = _whole(spki, 0x30)
    items = _parts(spki, start, end)
    if len(items) != 2 or items[0][0] != 0x30 or items[1][0] != 0x03:
        raise Unsupported("bad SubjectPublicKeyInfo")
    alg = _parts(spki, items[0][2], items[0][3])
    if len(alg) != 2 or alg[0][0] != 0x06 or alg[1][0] != 0x06:
        raise Unsupported("not a named-curve EC key")
    if spki[alg[0][2] : alg[0][3]] != OID_EC_PUBLIC_KEY:
        raise Unsupported("not an EC key")
    curve = spki[alg[1][2] : alg[1][3]]
    family = "sm2" if curve == OID_SM2_CURVE else "p256" if curve == OID_P256 else None
    if family is None:
        raise Unsupported("unsupported curve")
    bits = spki[items[1][2] : items[1][3]]
    if len(bits) != 66 or bits[0] != 0 or bits[1] != 4:
        raise Unsupported("not an uncompressed point")
    return family, bits[1:]


@dataclass(frozen=True)
class CRLView:
    der: bytes
    tbs: bytes
    signature_algorithm: bytes
    signature: bytes
    issuer: bytes
    this_update: datetime
    next_update: datetime
    revoked: frozenset[bytes]  # serial INTEGER contents
    # DER of each GeneralName of the issuingDistributionPoint's fullName: the list covers only certificates
    # whose distribution point names one of them (RFC 5280 §5.2.5, a partition); None: every certificate
    scope: frozenset[bytes] | None = None


def _general_names(data: bytes, start: int, end: int) -> frozenset[bytes]:
    """DER of each GeneralName in GeneralNames contents [start, end)."""
    names = frozenset(data[item[1] : item[3]] for item in _parts(data, start, end))
    if not names:
        raise Unsupported("an empty fullName")
    return names


def _full_name(data: bytes, start: int, end: int) -> frozenset[bytes]:
    """A DistributionPointName's contents [start, end) that must be `fullName [0] GeneralNames`."""
    inner = _parts(data, start, end)
    if len(inner) != 1 or inner[0][0] != 0xA0:
        raise Unsupported("a distribution point named otherwise than by fullName")
    return _general_names(data, inner[0][2], inner[0][3])


def _idp_scope(value: bytes) -> frozenset[bytes]:
    """The names of an issuingDistributionPoint holding a fullName distributionPoint and nothing else (no
    onlyContains…, onlySomeReasons or indirectCRL flag, all DEFAULT FALSE and so absent in DER)."""
    start, end = _whole(value, 0x30)
    items = _parts(value, start, end)
    if len(items) != 1 or items[0][0] != 0xA0:
        raise Unsupported("a CRL of limited scope: an IDP with flags, or without a distribution point")
    return _full_name(value, items[0][2], items[0][3])


def _crl_extensions(data: bytes, start: int, end: int) -> frozenset[bytes] | None:
    """Check a CRL's extensions: none critical but an IDP of the one shape read here, no delta or
    freshest-CRL pointer. Returns the IDP's names, or None without one."""
    flags = _extension_flags(data, start, end)
    scope = None
    for _, _, es, ee in _parts(data, start, end):
        items = _parts(data, es, ee)
        if data[items[0][2] : items[0][3]] == EXT_ISSUING_DISTRIBUTION_POINT:
            scope = _idp_scope(data[items[-1][2] : items[-1][3]])
    others = {oid: critical for oid, critical in flags.items() if oid != EXT_ISSUING_DISTRIBUTION_POINT}
    if any(others.values()) or CRL_SCOPE.intersection(others):
        raise Unsupported("critical CRL extension, or a CRL of limited scope (delta, ...)")
    return scope


@lru_cache(maxsize=256)
def crl(data: bytes) -> CRLView:
    """A v2 CRL with no critical extensions but a partition's issuingDistributionPoint (fullName only),
    not a delta, nextUpdate present."""
    start, end = _whole(data, 0x30)
    top = _parts(data, start, end)
    if len(top) != 3 or top[0][0] != 0x30 or top[2][0] != 0x03:
        raise Unsupported("not a CRL")
    algorithm = _algorithm_oid(data, top[1][2], top[1][3])
    fields = _parts(data, top[0][2], top[0][3])
    if len(fields) < 5 or fields[0][0] != 0x02 or data[fields[0][2] : fields[0][3]] != b"\x01":
        raise Unsupported("not a v2 CRL with nextUpdate")
    if _algorithm_oid(data, fields[1][2], fields[1][3]) != algorithm or fields[2][0] != 0x30:
        raise Unsupported("bad CRL header")
    this_update = parse_time(data, fields[3][0], fields[3][2], fields[3][3])
    if fields[4][0] not in (0x17, 0x18):
        raise Unsupported("CRL without nextUpdate")
    next_update = parse_time(data, fields[4][0], fields[4][2], fields[4][3])
    revoked: set[bytes] = set()
    scope = None
    for tag, _, cs, ce in fields[5:]:
        if tag == 0x30:
            for etag, _, es, ee in _parts(data, cs, ce):
                entry = _parts(data, es, ee)
                if etag != 0x30 or len(entry) not in (2, 3) or entry[0][0] != 0x02:
                    raise Unsupported("bad CRL entry")
                if len(entry) == 3:
                    flags = _extension_flags(data, entry[2][2], entry[2][3])
                    if any(flags.values()) or EXT_CERTIFICATE_ISSUER in flags:
                        raise Unsupported("critical CRL entry extension, or an indirect CRL")
                revoked.add(_serial(data, entry[0][2], entry[0][3]))
        elif tag == 0xA0:
            scope = _crl_extensions(data, *_only(data, cs, ce))
        else:
            raise Unsupported("unexpected CRL field")
    sig_start, sig_end = top[2][2], top[2][3]
    if sig_end - sig_start < 2 or data[sig_start] != 0:
        raise Unsupported("bad CRL signature")
    return CRLView(
        der=data,
        tbs=data[top[0][1] : top[0][3]],
        signature_algorithm=algorithm,
        signature=data[sig_start + 1 : sig_end],
        issuer=data[fields[2][1] : fields[2][3]],
        this_update=this_update,
        next_update=next_update,
        revoked=frozenset(revoked),
        scope=scope,
    )


def _critical(data: bytes, items: list[tuple[int, int, int, int]]) -> bool:
    """The flag of an Extension split into [extnID, critical?, extnValue]. Only DER booleans: a
    BER TRUE (any non-zero octet) is critical to the full path's parser."""
    if len(items) not in (2, 3) or items[0][0] != 0x06 or items[-1][0] != 0x04:
        raise Unsupported("bad extension")
    if len(items) == 2:
        return False
    flag = data[items[1][2] : items[1][3]]
    if items[1][0] != 0x01 or flag not in (b"\x00", b"\xff"):
        raise Unsupported("extension criticality is not a DER BOOLEAN")
    return flag == b"\xff"


def _extension_flags(data: bytes, start: int, end: int) -> dict[bytes, bool]:
    """OID -> critical for the Extensions SEQUENCE contents [start, end)."""
    out: dict[bytes, bool] = {}
    for tag, _, es, ee in _parts(data, start, end):
        items = _parts(data, es, ee)
        if tag != 0x30:
            raise Unsupported("bad extension")
        critical = _critical(data, items)
        oid = data[items[0][2] : items[0][3]]
        if oid in out:
            raise Unsupported("duplicate extension")
        out[oid] = critical
    return out


def _any_critical(data: bytes, start: int, end: int) -> bool:
    return any(_extension_flags(data, start, end).values())


@dataclass(frozen=True)
class SingleStatus:
    hash_algorithm: bytes
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: bytes
    good: bool
    this_update: datetime
    next_update: datetime | None


@dataclass(frozen=True)
class OCSPView:
    der: bytes
    tbs: bytes  # ResponseData DER
    signature_algorithm: bytes
    signature: bytes
    responder_name: bytes | None  # byName: Name DER
    responder_key_hash: bytes | None  # byKey
    produced_at: datetime
    responses: tuple[SingleStatus, ...]
    certs: tuple[bytes, ...]


@lru_cache(maxsize=256)
def ocsp_response(data: bytes) -> OCSPView:
    """A successful basic OCSP response (RFC 6960), v1, no critical extensions."""
    start, end = _whole(data, 0x30)
    top = _parts(data, start, end)
    if len(top) != 2 or data[top[0][1] : top[0][3]] != b"\x0a\x01\x00" or top[1][0] != 0xA0:
        raise Unsupported("not a successful OCSP response")
    bytes_seq = _parts(data, top[1][2], top[1][3])
    inner = _parts(data, bytes_seq[0][2], bytes_seq[0][3]) if len(bytes_seq) == 1 else []
    if len(inner) != 2 or data[inner[0][2] : inner[0][3]] != oid_der("1.3.6.1.5.5.7.48.1.1") or inner[1][0] != 0x04:
        raise Unsupported("not a basic OCSP response")
    basic_start, basic_end = inner[1][2], inner[1][3]
    basic = _parts(data, basic_start, basic_end)
    if len(basic) != 1 or basic[0][0] != 0x30:
        raise Unsupported("bad BasicOCSPResponse")
    parts = _parts(data, basic[0][2], basic[0][3])
    if len(parts) not in (3, 4) or parts[0][0] != 0x30 or parts[2][0] != 0x03:
        raise Unsupported("bad BasicOCSPResponse")
    algorithm = _algorithm_oid(data, parts[1][2], parts[1][3])
    certs: list[bytes] = []
    if len(parts) == 4:
        if parts[3][0] != 0xA0:
            raise Unsupported("bad BasicOCSPResponse certs")
        seq = _parts(data, parts[3][2], parts[3][3])
        if len(seq) != 1:
            raise Unsupported("bad BasicOCSPResponse certs")
        certs = [data[h:e] for _, h, _, e in _parts(data, seq[0][2], seq[0][3])]
    rd = _parts(data, parts[0][2], parts[0][3])
    if rd and rd[0][0] == 0xA0:
        raise Unsupported("OCSP ResponseData version other than v1")
    if len(rd) < 3:
        raise Unsupported("bad ResponseData")
    responder_name = responder_key = None
    if rd[0][0] == 0xA1:
        responder_name = data[rd[0][2] : rd[0][3]]
    elif rd[0][0] == 0xA2:
        key = _parts(data, rd[0][2], rd[0][3])
        if len(key) != 1 or key[0][0] != 0x04:
            raise Unsupported("bad responderID")
        responder_key = data[key[0][2] : key[0][3]]
    else:
        raise Unsupported("bad responderID")
    produced_at = parse_time(data, rd[1][0], rd[1][2], rd[1][3])
    if rd[2][0] != 0x30:
        raise Unsupported("bad responses")
    for tag, _, cs, ce in rd[3:]:
        if tag != 0xA1 or _any_critical(data, *_only(data, cs, ce)):
            raise Unsupported("critical response extension")
    statuses = []
    for _, _, ss, se in _parts(data, rd[2][2], rd[2][3]):
        single = _parts(data, ss, se)
        if len(single) < 3:
            raise Unsupported("bad SingleResponse")
        cert_id = _parts(data, single[0][2], single[0][3])
        if len(cert_id) != 4 or [item[0] for item in cert_id[1:]] != [0x04, 0x04, 0x02]:
            raise Unsupported("bad CertID")
        hash_alg = _algorithm_oid(data, cert_id[0][2], cert_id[0][3])
        good = single[1][0] == 0x80 and single[1][2] == single[1][3]
        this_update = parse_time(data, single[2][0], single[2][2], single[2][3])
        next_update = None
        for tag, _, cs, ce in single[3:]:
            if tag == 0xA0:
                inner_time = _parts(data, cs, ce)
                next_update = parse_time(data, inner_time[0][0], inner_time[0][2], inner_time[0][3])
            elif tag == 0xA1:
                if _any_critical(data, *_only(data, cs, ce)):
                    raise Unsupported("critical single extension")
            else:
                raise Unsupported("bad SingleResponse")
        statuses.append(
            SingleStatus(
                hash_algorithm=hash_alg,
                issuer_name_hash=data[cert_id[1][2] : cert_id[1][3]],
                issuer_key_hash=data[cert_id[2][2] : cert_id[2][3]],
                serial=_serial(data, cert_id[3][2], cert_id[3][3]),
                good=good,
                this_update=this_update,
                next_update=next_update,
            )
        )
    sig_start, sig_end = parts[2][2], parts[2][3]
    if sig_end - sig_start < 2 or data[sig_start] != 0:
        raise Unsupported("bad OCSP signature")
    return OCSPView(
        der=data,
        tbs=data[parts[0][1] : parts[0][3]],
        signature_algorithm=algorithm,
        signature=data[sig_start + 1 : sig_end],
        responder_name=responder_name,
        responder_key_hash=responder_key,
        produced_at=produced_at,
        responses=tuple(statuses),
        certs=tuple(certs),
    )


def _only(data: bytes, start: int, end: int) -> tuple[int, int]:
    items = _parts(data, start, end)
    if len(items) != 1 or items[0][0] != 0x30:
        raise Unsupported("expected one SEQUENCE")
    return items[0][2], items[0][3]
