"""Name constraints on issuing CAs (RFC 5280 §4.2.1.10) where a region's DNS namespace is known.

A CA created with `permitted_dns` carries a critical nameConstraints extension: dNSName subtrees and URI
hosts under those domains only, and every IP address excluded (an IP SAN would escape the namespace).
Email addresses stay unconstrained: people's mailboxes are anywhere. Relying parties (OpenSSL,
pyhanko-certvalidator) enforce it; issuance asks policies/names.check_namespace first, so the CA never
signs a certificate its own constraint would make invalid.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from asn1crypto import x509

from ca import certificates as certs
from ca.names import refusals
from policies.dns import check_dns_syntax


def extension(permitted_dns: Sequence[str]) -> x509.Extension:
    """The critical nameConstraints extension for `permitted_dns` (domains such as `sd.gov.cn`)."""
    with refusals():
        for domain in permitted_dns:
            check_dns_syntax(domain)
    permitted = []
    for domain in permitted_dns:
        permitted.append({"base": x509.GeneralName(name="dns_name", value=domain)})
        permitted.append({"base": x509.GeneralName(name="uniform_resource_identifier", value=domain)})
        permitted.append({"base": x509.GeneralName(name="uniform_resource_identifier", value="." + domain)})
    excluded = [{"base": x509.GeneralName(name="ip_address", value=net)} for net in ("0.0.0.0/0", "::/0")]
    value = x509.NameConstraints({"permitted_subtrees": permitted, "excluded_subtrees": excluded})
    return certs.extension("name_constraints", value, critical=True)


def namespaces(chain: Iterable[x509.Certificate]) -> tuple[frozenset[str], ...]:
    """The permitted DNS domains of each constrained CA in `chain` (a name must lie within every one)."""
    out = []
    for certificate in chain:
        constraints = certificate.name_constraints_value
        if constraints is None or constraints["permitted_subtrees"].native is None:
            continue
        domains = frozenset(
            # the IA5 bytes as written: asn1crypto's `.native` decodes `xn--` labels to Unicode, and a
            # punycode namespace (xn--fiqs8s.cn) would then match none of the names issued in it
            subtree["base"].chosen.contents.decode("ascii").lstrip(".")
            for subtree in constraints["permitted_subtrees"]
            if subtree["base"].name == "dns_name"
        )
        if domains:
            out.append(domains)
    return tuple(out)
