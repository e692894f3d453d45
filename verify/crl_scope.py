"""Whether a CRL speaks about a certificate at all: RFC 5280 §5.2.5 / §6.3.3 (b), the issuing distribution
point. A CA that partitions its revocations (trustseal's own, ca/crl.py, or Let's Encrypt's shards) signs
several lists, each covering only the certificates whose distribution point names it: a certificate absent
from another partition's list says nothing about it (`covers`). An entry is another matter (`may_list`):
serial numbers are unique per issuer (RFC 5280 §4.1.2.2), so a list the issuer signed that names the serial
revokes it whatever its scope — a scope mismatch (a list re-issued after the service's public URL changed,
whose IDP no longer spells the URL older certificates carry) must never hide a revocation.
pyhanko-certvalidator applies the scope rule itself; our own readers of CRL entries ask here."""

from __future__ import annotations

from asn1crypto import crl, x509


def _full_names(point: x509.DistributionPointName) -> set[bytes]:
    """DER of each GeneralName of a fullName distribution point (a relative name: none we can match)."""
    if point.name != "full_name":
        return set()
    return {name.dump() for name in point.chosen}


def covers(listing: crl.CertificateList, cert: x509.Certificate) -> bool:
    """Whether `listing` (already known to come from `cert`'s issuer) is a complete list for `cert`: no
    issuingDistributionPoint, or one whose fullName is among the names `cert`'s CRL distribution points
    carry and whose flags admit `cert`. Delta, indirect, reason-limited and attribute-certificate lists,
    none of which trustseal issues, are not taken as covering anything."""
    if listing.delta_crl_indicator_value is not None:
        return False
    idp = listing.issuing_distribution_point_value
    if idp is None:
        return True
    if idp["indirect_crl"].native or idp["only_contains_attribute_certs"].native:
        return False
    if idp["only_some_reasons"].native is not None:
        return False
    if idp["only_contains_user_certs"].native and cert.ca:
        return False
    if idp["only_contains_ca_certs"].native and not cert.ca:
        return False
    point = idp["distribution_point"]
    if point.native is None:
        return True
    names = _full_names(point)
    for distribution in cert.crl_distribution_points_value or []:
        where = distribution["distribution_point"]
        if where.native is not None and names & _full_names(where):
            return True
    return False


def may_list(listing: crl.CertificateList) -> bool:
    """Whether an entry of `listing` (already known to come from the certificate's issuer) revokes the
    certificate with that serial: every list but an indirect one (its entries may name other issuers'
    certificates) and one of attribute certificates (another serial space)."""
    idp = listing.issuing_distribution_point_value
    if idp is None:
        return True
    return not (idp["indirect_crl"].native or idp["only_contains_attribute_certs"].native)
