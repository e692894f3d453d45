"""The electronic licence a sealed document claims to be, and the one rule for judging it.

Both PDF readers (verify/pdf.py through pyHanko, verify/pdf_fast.py with its own parser) hand the XMP
packet of the revision a signature covers to `read_claim`, and the `licence_status` check is written
by `judge` alone. The claim is what the signer signed, never what a later revision says: a later
revision with a different claim is a modification (`changed`), whoever wrote it. The identifier's
issuer segment must be the signer's own organisation (its certificate's organizationIdentifier):
otherwise anyone holding a trusted seal could present another organisation's licence as theirs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

from policies import licence_id
from verify.report import FAILED, INDETERMINATE, PASSED, SignatureReport
from verify.sources import Sources

DC = "{http://purl.org/dc/elements/1.1/}"
RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
ECL = "{urn:trustseal:licence:1.0#}"  # signing/licences.py XMP_NAMESPACE (verify/ may not import signing)
MAX_XMP = 1 << 20


@dataclass(frozen=True)
class LicenceClaim:
    """What one revision's XMP says about a licence: the licence identifiers (dc:identifier values under
    the 1.2.156.3005.2 arc) and every property of our licence namespace; `unreadable`: the SHA-256 of an
    XMP packet that mentions a licence but cannot be parsed (so two different ones never compare equal)."""

    identifiers: tuple[str, ...] = ()
    fields: tuple[tuple[str, str], ...] = ()
    unreadable: str | None = None

    @property
    def empty(self) -> bool:
        return not self.identifiers and not self.fields and self.unreadable is None

    def describe(self) -> str:
        if self.unreadable is not None:
            return "unreadable licence metadata"
        if self.identifiers:
            return ", ".join(self.identifiers)
        return "licence fields without an identifier" if self.fields else "no licence"


NONE = LicenceClaim()


def read_claim(xmp: bytes | None) -> LicenceClaim:
    """The licence claim of an XMP packet (`None`: the revision has no /Metadata)."""
    if not xmp:
        return NONE
    marks = (licence_id.PREFIX, ECL[1:-1])
    mentions = any(m.encode(e) in xmp for m in marks for e in ("utf-8", "utf-16-be", "utf-16-le"))
    try:
        if len(xmp) > MAX_XMP:
            raise ValueError("XMP packet too large")
        root = ElementTree.fromstring(xmp, forbid_dtd=True)  # the xpacket wrapper is a processing instruction
    except (ElementTree.ParseError, DefusedXmlException, ValueError):
        return LicenceClaim(unreadable=hashlib.sha256(xmp).hexdigest()) if mentions else NONE
    identifiers: set[str] = set()
    fields: set[tuple[str, str]] = set()
    for element in root.iter():
        for name, value in element.attrib.items():
            _collect(name, value, identifiers, fields)
        if element.tag == f"{DC}identifier" or element.tag.startswith(ECL):
            _collect(element.tag, _value(element), identifiers, fields)
    return LicenceClaim(tuple(sorted(identifiers)), tuple(sorted(fields)))


def _value(element: Element) -> str:
    """A property's value: its text, an rdf:resource, or its rdf:li items (a Bag/Seq/Alt), joined."""
    resource = element.get(f"{RDF}resource")
    if resource is not None:
        return resource.strip()
    items = [(li.text or "").strip() for li in element.iter(f"{RDF}li")]
    return "\n".join(items) if items else (element.text or "").strip()


def _collect(name: str, value: str, identifiers: set[str], fields: set[tuple[str, str]]) -> None:
    if name == f"{DC}identifier":
        identifiers.update(v.strip() for v in value.split("\n") if v.strip().startswith(licence_id.PREFIX))
    elif name.startswith(ECL):
        fields.add((name[len(ECL) :], value.strip()))


def changed(signed: LicenceClaim, later: LicenceClaim) -> str | None:
    """Why `later` (a revision after the signed one) is a modification of the signed licence claim."""
    if later == signed:
        return None
    if signed.empty:
        return f"the licence metadata changed after signing: a later revision adds {later.describe()}"
    if later.empty:
        return f"the licence metadata changed after signing: a later revision removes {signed.describe()}"
    if later.identifiers != signed.identifiers:
        return f"the licence metadata changed after signing: {signed.describe()} became {later.describe()}"
    return f"the licence metadata changed after signing: the fields of {signed.describe()} differ"


def judge(out: SignatureReport, claim: LicenceClaim, organization_identifier: str | None, sources: Sources) -> None:
    """The `licence_status` check for a signature whose signed revision makes `claim` (none: no check);
    `organization_identifier`: the signer certificate's (the report's signer shows it)."""
    if claim.empty:
        return
    if claim.unreadable is not None:
        out.add("licence_status", FAILED, "LICENCE_ID_INVALID", "the signed licence metadata cannot be parsed")
        return
    if len(claim.identifiers) != 1:
        why = "names several licence identifiers" if claim.identifiers else "has licence fields but no identifier"
        out.add("licence_status", FAILED, "LICENCE_ID_INVALID", f"the signed licence metadata {why}")
        return
    identifier = claim.identifiers[0]
    try:
        parsed = licence_id.parse(identifier)
    except licence_id.InvalidLicenceId as exc:
        out.add("licence_status", FAILED, "LICENCE_ID_INVALID", f"{identifier}: {exc}")
        return
    fields = dict(claim.fields)
    for name, expected in (("typeCode", parsed.type_code), ("issuerCode", parsed.issuer_uscc)):
        if name in fields and fields[name].upper() != expected:
            out.add("licence_status", FAILED, "LICENCE_ID_INVALID",
                    f"{identifier}: the metadata's {name} {fields[name]!r} is not the identifier's")  # fmt: skip
            return
    organisation = licence_id.organisation_uscc(organization_identifier)
    if organisation != parsed.issuer_uscc:
        whose = f"the signer's organisation is {organisation}" if organisation else "the signer names no organisation"
        out.add("licence_status", FAILED, "LICENCE_ISSUER_MISMATCH",
                f"{identifier} was issued by {parsed.issuer_uscc}; {whose}")  # fmt: skip
        return
    state = sources.licence_status(identifier)
    if state is None:
        out.add("licence_status", INDETERMINATE, "LICENCE_UNKNOWN", identifier)
    elif state == "01":
        out.add("licence_status", PASSED, "OK", f"{identifier} valid")
    else:
        code = "LICENCE_SUSPENDED" if state == "02" else "LICENCE_REVOKED"
        out.add("licence_status", FAILED, code, identifier)
