"""Subjects: which attributes a profile allows, checked values, canonical order."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from asn1crypto import core, x509

from ca.errors import NameNotAllowed, SubjectNotAllowed
from gm import der
from policies import names as name_policy
from policies.errors import NameRefused
from policies.profiles import Profile, SubjectRule
from policies.uscc import is_valid_uscc

ORDER = (
    "country_name",
    "state_or_province_name",
    "locality_name",
    "organization_name",
    "organizational_unit_name",
    "organization_identifier",
    "serial_number",
    "common_name",
)
MAX_VALUE = 128


Pairs = Sequence[Sequence[tuple[str, object]]]  # RDNs, each a list of (attribute name, value)

_LABELS = {  # asn1crypto's NameType.human_friendly, for the attributes profiles allow
    "country_name": "Country",
    "state_or_province_name": "State/Province",
    "locality_name": "Locality",
    "organization_name": "Organization",
    "organizational_unit_name": "Organizational Unit",
    "organization_identifier": "Organization Identifier",
    "serial_number": "Serial Number",
    "common_name": "Common Name",
}
_OID_DER = {kind: x509.NameType(kind).dump() for kind in ORDER}


def pairs(name: x509.Name) -> list[list[tuple[str, object]]]:
    return [[(atv["type"].native, atv["value"].native) for atv in rdn] for rdn in name.chosen]


def attributes(rdns: Pairs) -> dict[str, str]:
    """Flatten RDNs to {attribute: value}; multi-valued RDNs and repeats are refused."""
    found: dict[str, str] = {}
    for rdn in rdns:
        if len(rdn) != 1:
            raise SubjectNotAllowed("multi-valued RDNs are not accepted")
        kind, value = rdn[0]
        if not isinstance(value, str):
            raise SubjectNotAllowed(f"subject attribute {kind} is not a string")
        if kind in found:
            raise SubjectNotAllowed(f"subject attribute {kind} appears twice")
        found[kind] = value
    return found


@dataclass(frozen=True)
class CheckedSubject:
    """A subject the profile allows, in canonical order and encoding."""

    values: dict[str, str]

    @property
    def der(self) -> bytes:
        """What `build_name(values).dump()` gives (tests compare), built directly: issuance hot path."""
        rdns = []
        for kind in ORDER:
            value = self.values.get(kind)
            if value is None:
                continue
            printable = kind in ("country_name", "serial_number") and value.isascii()
            encoded = der.tlv(0x13 if printable else 0x0C, value.encode("utf-8"))
            rdns.append(der.tlv(0x31, der.sequence(_OID_DER[kind], encoded)))
        return der.sequence(*rdns)

    @property
    def text(self) -> str:
        """What asn1crypto's `Name.human_friendly` shows for it (tests compare): the stored subject."""
        parts = [f"{_LABELS[kind]}: {self.values[kind]}" for kind in ORDER if kind in self.values]
        country_last = bool(parts) and parts[-1].startswith("Country: ")
        ordered = parts if country_last else parts[::-1]  # asn1crypto's rule: reversed unless Country is last
        separator = "; " if any("," in part for part in parts) else ", "
        return separator.join(ordered)

    @property
    def name(self) -> x509.Name:
        return x509.Name.load(self.der)


def checked_values(rdns: Pairs, rule: SubjectRule) -> CheckedSubject:
    values = attributes(rdns)
    allowed = set(rule.required) | set(rule.optional)
    extra = sorted(set(values) - allowed)
    if extra:
        raise SubjectNotAllowed(f"subject attributes not allowed by the profile: {', '.join(extra)}")
    missing = [a for a in rule.required if a not in values]
    if missing:
        raise SubjectNotAllowed(f"subject lacks required attributes: {', '.join(missing)}")
    with refusals():
        for kind, value in values.items():
            name_policy.check_text(f"subject {kind}", value)
    for kind, value in values.items():
        if not value.strip() or len(value) > MAX_VALUE:
            raise SubjectNotAllowed(f"subject attribute {kind} is empty or too long")
    country = values.get("country_name")
    if country is not None and (len(country) != 2 or not country.isascii() or not country.isupper()):
        raise SubjectNotAllowed("country must be a two-letter ISO 3166 code")
    org_id = values.get("organization_identifier")
    if org_id is not None and rule.organization_identifier == "uscc" and not is_valid_uscc(org_id):
        raise SubjectNotAllowed("organizationIdentifier is not a valid 18-character unified social credit code")
    return CheckedSubject({kind: values[kind] for kind in ORDER if kind in values})


@contextmanager
def refusals() -> Iterator[None]:
    """The name policy's refusals as the CA's error taxonomy (same stable code)."""
    try:
        yield
    except NameRefused as exc:
        raise NameNotAllowed(exc.code, exc.detail, exc.status) from None


def check_name_characters(name: x509.Name) -> None:
    """Every string attribute of a name we certify without a profile (a CA's own subject, another
    hierarchy's root we cross-certify) free of control and bidi/format characters."""
    with refusals():
        for rdn in pairs(name):
            for kind, value in rdn:
                if isinstance(value, str):
                    name_policy.check_text(f"subject {kind}", value)


def san_entries(san: x509.GeneralNames | None) -> list[name_policy.SanEntry]:
    """(type, raw octets) per entry: what the certificate will say, not asn1crypto's decoded reading."""
    return [(general_name.name, bytes(general_name.chosen.contents or b"")) for general_name in san or ()]


def apply_name_policy(
    profile: Profile,
    subject: CheckedSubject,
    san: x509.GeneralNames | None,
    requester: name_policy.Requester,
    namespaces: Sequence[frozenset[str]] = (),
) -> None:
    """Ask policies/names.py about every name of a request; raise `NameNotAllowed` on the first refusal.
    `namespaces`: the issuing chain's name constraints (ca/name_constraints.py)."""
    entries = san_entries(san)
    with refusals():
        name_policy.check_san(profile, entries)
        name_policy.check_subject(subject.values, profile, entries)
        name_policy.check_namespace(entries, namespaces)
        name_policy.check_organisation(subject.values, requester)


def checked_subject(requested: x509.Name, rule: SubjectRule) -> x509.Name:
    """As `checked_values`, for callers holding an asn1crypto Name; the result is canonical."""
    return checked_values(pairs(requested), rule).name


def build_name(values: dict[str, str]) -> x509.Name:
    rdns = []
    for kind in ORDER:
        if kind not in values:
            continue
        if kind in ("country_name", "serial_number"):
            value: object = (
                core.PrintableString(values[kind]) if values[kind].isascii() else core.UTF8String(values[kind])
            )
        else:
            value = x509.DirectoryString(name="utf8_string", value=values[kind])
        rdns.append(x509.RelativeDistinguishedName([{"type": kind, "value": value}]))
    return x509.Name(name="", value=x509.RDNSequence(rdns))
