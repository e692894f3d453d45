"""Subjects: which attributes a profile allows, checked values, canonical order."""

from __future__ import annotations

from asn1crypto import core, x509

from ca.errors import SubjectNotAllowed
from policies.profiles import SubjectRule
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


def attributes(name: x509.Name) -> dict[str, str]:
    """Flatten a Name to {attribute: value}; multi-valued RDNs and repeats are refused."""
    found: dict[str, str] = {}
    for rdn in name.chosen:
        if len(rdn) != 1:
            raise SubjectNotAllowed("multi-valued RDNs are not accepted")
        atv = rdn[0]
        kind = atv["type"].native
        value = atv["value"].native
        if not isinstance(value, str):
            raise SubjectNotAllowed(f"subject attribute {kind} is not a string")
        if kind in found:
            raise SubjectNotAllowed(f"subject attribute {kind} appears twice")
        found[kind] = value
    return found


def checked_subject(requested: x509.Name, rule: SubjectRule) -> x509.Name:
    values = attributes(requested)
    allowed = set(rule.required) | set(rule.optional)
    extra = sorted(set(values) - allowed)
    if extra:
        raise SubjectNotAllowed(f"subject attributes not allowed by the profile: {', '.join(extra)}")
    missing = [a for a in rule.required if a not in values]
    if missing:
        raise SubjectNotAllowed(f"subject lacks required attributes: {', '.join(missing)}")
    for kind, value in values.items():
        if not value.strip() or len(value) > MAX_VALUE or any(ord(c) < 0x20 for c in value):
            raise SubjectNotAllowed(f"subject attribute {kind} is empty, too long or has control characters")
    country = values.get("country_name")
    if country is not None and (len(country) != 2 or not country.isascii() or not country.isupper()):
        raise SubjectNotAllowed("country must be a two-letter ISO 3166 code")
    org_id = values.get("organization_identifier")
    if org_id is not None and rule.organization_identifier == "uscc" and not is_valid_uscc(org_id):
        raise SubjectNotAllowed("organizationIdentifier is not a valid 18-character unified social credit code")
    if _canonical(requested, values):
        return requested  # keeps the requested encoding: no rebuild on the issuance hot path
    return build_name(values)


def _canonical(name: x509.Name, values: dict[str, str]) -> bool:
    if list(values) != [kind for kind in ORDER if kind in values]:
        return False
    for rdn in name.chosen:
        atv = rdn[0]
        chosen = atv["value"].chosen if isinstance(atv["value"], x509.DirectoryString) else atv["value"]
        if not isinstance(chosen, core.UTF8String | core.PrintableString):
            return False
    return True


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
