"""The name policy: which subject and subjectAltName values a profile's certificate may carry, and who may
name which organisation. Policy decides, ca/ signs: ca/authority.py calls these before building anything,
and a refusal (`NameRefused`, with a stable code) leaves nothing written.

Values arrive as the requester wrote them: subject attributes as text, SAN entries as (type, raw octets)
— never asn1crypto's decoded form, which turns `xn--` labels and percent-escapes into Unicode and so hides
what the certificate would really say.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from policies.characters import describe, forbidden_character
from policies.dns import check_dns_name
from policies.errors import NameRefused
from policies.profiles import IpRange, Profile, SanTypes

SanEntry = tuple[str, bytes]  # (asn1crypto GeneralName choice: dns_name, ip_address …, the value's octets)

_TYPE_NAMES = {
    "dns_name": "dns",
    "ip_address": "ip",
    "rfc822_name": "email",
    "uniform_resource_identifier": "uri",
}
_PRIVATE = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")  # RFC 1918, 6598, 4193
)
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LOCAL_PART = re.compile(rf"{_ATOM}(?:\.{_ATOM})*\Z")
_URI_CHARACTERS = re.compile(r"[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+\Z")  # RFC 3986 unreserved, reserved, %


def check_text(kind: str, value: str) -> None:
    """No control or bidi/format character anywhere in a name (policies/characters.py)."""
    bad = forbidden_character(value)
    if bad is not None:
        raise NameRefused("name_character_forbidden", f"{kind} contains {describe(bad)}")


def check_subject(values: Mapping[str, str], profile: Profile, san: Sequence[SanEntry] = ()) -> None:
    """A TLS common name repeats one of the SAN names. (Each subject value went through `check_text` when
    ca/names.checked_values read it, on every issuance path.)"""
    common_name = values.get("common_name")
    named = {_san_text(kind, raw) for kind, raw in san}
    if profile.subject.common_name_in_san and common_name is not None and common_name not in named:
        raise NameRefused(
            "common_name_not_in_san", "the common name must repeat one of the subjectAltName DNS names or IPs"
        )


def check_san(profile: Profile, san: Sequence[SanEntry]) -> None:
    """Each SAN entry is of a type the profile lists and passes that type's rule."""
    types: SanTypes = profile.san_types
    for kind, raw in san:
        short = _TYPE_NAMES.get(kind)
        rule = getattr(types, short) if short is not None else None
        if rule is None:
            listed = ", ".join(t for t in ("dns", "ip", "email", "uri") if getattr(types, t) is not None)
            raise NameRefused(
                "san_type_not_allowed", f"profile {profile.name} takes no {kind} names (it takes: {listed or 'none'})"
            )
        if short == "ip":
            check_ip(raw, types.ip.ranges if types.ip else ())
            continue
        text = _ia5(kind, raw)
        if short == "dns":
            check_dns_name(text, wildcard_allowed=bool(types.dns and types.dns.wildcard))
        elif short == "email":
            check_email(text)
        else:
            check_uri(text, types.uri.schemes if types.uri else ())


def _ia5(kind: str, raw: bytes) -> str:
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        raise NameRefused("name_character_forbidden", f"{kind} is not IA5 (ASCII) text") from None
    check_text(kind, text)
    return text


def ip_range(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> IpRange | None:
    """`global`, `private` or `loopback`; None for what no certificate names (unspecified, multicast,
    link-local, reserved, documentation and other special-purpose ranges)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:  # before is_reserved: ::1 lies in the reserved ::/8
        return "loopback"
    if address.is_unspecified or address.is_multicast or address.is_link_local or address.is_reserved:
        return None
    if any(address in network for network in _PRIVATE):
        return "private"
    if address.is_global:
        return "global"
    return None


def check_ip(raw: bytes, ranges: Iterable[IpRange]) -> None:
    if len(raw) not in (4, 16):
        raise NameRefused("ip_not_allowed", f"an IP address SAN is 4 or 16 octets, not {len(raw)}")
    address = ipaddress.ip_address(raw)
    found = ip_range(address)
    allowed = tuple(ranges)
    if found is None or found not in allowed:
        what = found or "special-purpose (unspecified, multicast, link-local or reserved)"
        raise NameRefused("ip_not_allowed", f"{address} is {what}; this profile takes {', '.join(allowed)} addresses")


def check_email(text: str) -> None:
    local, at, domain = text.rpartition("@")
    if not at or not local or len(local) > 64 or not _LOCAL_PART.match(local):
        raise NameRefused("email_invalid", "an email address is local-part@domain (RFC 5321 dot-atom local part)")
    try:
        check_dns_name(domain, wildcard_allowed=False)
    except NameRefused as exc:
        raise NameRefused("email_invalid", f"email domain: {exc.detail}") from None


def check_uri(text: str, schemes: Iterable[str]) -> None:
    allowed = tuple(schemes)
    if not _URI_CHARACTERS.match(text):
        raise NameRefused("uri_not_allowed", "a URI is RFC 3986 characters only")
    check_text("URI (percent-decoded)", unquote(text, errors="replace"))
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise NameRefused("uri_not_allowed", "not a URI with a host") from None
    if parts.scheme not in allowed or not text.startswith(parts.scheme + "://"):
        raise NameRefused("uri_not_allowed", f"this profile takes {', '.join(allowed)} URIs only")
    if "@" in parts.netloc:
        raise NameRefused("uri_not_allowed", "a URI with user information")
    host = parts.hostname or ""
    if port is not None and not 0 < port < 65536:
        raise NameRefused("uri_not_allowed", "port out of range")
    try:
        check_dns_name(host, wildcard_allowed=False)
    except NameRefused as exc:
        raise NameRefused("uri_not_allowed", f"URI host: {exc.detail}") from None
    if parts.netloc.split(":")[0] != host:
        raise NameRefused("uri_not_allowed", "the URI host is written in lowercase")


def check_namespace(san: Sequence[SanEntry], namespaces: Sequence[frozenset[str]]) -> None:
    """Within the issuing CAs' name constraints (ca/name_constraints.py): every DNS name and URI host under
    one permitted domain of each constrained CA, and no IP address (those CAs exclude them all)."""
    if not namespaces:
        return
    for kind, raw in san:
        if kind == "ip_address":
            raise NameRefused("name_outside_namespace", "this CA's name constraints exclude IP addresses")
        if kind == "dns_name":
            host = raw.decode("ascii", "replace")
        elif kind == "uniform_resource_identifier":
            try:
                host = urlsplit(raw.decode("ascii", "replace")).hostname or ""
            except ValueError:
                raise NameRefused("uri_not_allowed", "not a URI with a host") from None
        else:
            continue
        for domains in namespaces:
            if not any(host == domain or host.endswith("." + domain) for domain in domains):
                raise NameRefused(
                    "name_outside_namespace", f"{host} is outside this CA's namespace ({', '.join(sorted(domains))})"
                )


def _san_text(kind: str, raw: bytes) -> str:
    if kind == "ip_address" and len(raw) in (4, 16):
        return str(ipaddress.ip_address(raw))
    return raw.decode("ascii", "replace")


@dataclass(frozen=True)
class Requester:
    """Who asks for a certificate, as the name policy sees it: the organisations (USCCs) it may name.
    `organisations=None` names any valid USCC: officers and admins, and the local CLI (break-glass)."""

    organisations: frozenset[str] | None

    @property
    def restricted(self) -> bool:
        return self.organisations is not None


ANY_ORGANISATION = Requester(organisations=None)


def check_organisation(values: Mapping[str, str], requester: Requester) -> None:
    """A restricted requester (an issuer token) gets only certificates naming one of its organisations."""
    if requester.organisations is None:
        return
    uscc = values.get("organization_identifier")
    if uscc is None:
        raise NameRefused(
            "uscc_not_permitted",
            "an issuer's certificates name one of its organisations (organizationIdentifier)",
            status=403,
        )
    if uscc not in requester.organisations:
        raise NameRefused(
            "uscc_not_permitted", "this token may not request certificates naming that organisation", status=403
        )
