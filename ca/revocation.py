"""Revocation reasons (RFC 5280 §5.3.1) and CRL building."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import crl as asn1_crl
from asn1crypto import x509

from ca.certificates import signature_algorithm, to_time
from ca.errors import CertificateHoldNotSupported, InvalidRevocationReason
from keys.custody import SigningHandle

# certificateHold is not among them: a revocation here is final (no unhold, no removeFromCRL, which RFC 5280
# §5.3.1 allows only in delta CRLs, and we issue none), and a hold that cannot be lifted would be a
# revocation under a misleading name. Temporary suspension is a seal's lifecycle (POST /v1/seals/{id}/suspend).
REASONS = (
    "unspecified",
    "key_compromise",
    "ca_compromise",
    "affiliation_changed",
    "superseded",
    "cessation_of_operation",
    "privilege_withdrawn",
    "aa_compromise",
)
_CAMEL = {"".join(p.capitalize() if i else p for i, p in enumerate(r.split("_"))): r for r in REASONS}


def normalise_reason(reason: str | None) -> str:
    """Accept `key_compromise` or `keyCompromise`; refuse certificateHold, removeFromCRL and anything unknown."""
    if reason is None or reason == "":
        return "unspecified"
    if reason in REASONS:
        return reason
    if reason in _CAMEL:
        return _CAMEL[reason]
    if reason in ("certificate_hold", "certificateHold"):
        raise CertificateHoldNotSupported(
            "certificateHold is not offered: revocation is final here; suspend the seal instead "
            "(POST /v1/seals/{id}/suspend), or revoke with a final reason"
        )
    raise InvalidRevocationReason(f"unknown revocation reason {reason!r}; use one of {', '.join(REASONS)}")


@dataclass(frozen=True)
class RevokedEntry:
    serial: int
    revoked_at: datetime
    reason: str


def build_crl(
    *,
    issuer: x509.Certificate,
    signer: SigningHandle,
    number: int,
    this_update: datetime,
    next_update: datetime,
    revoked: Iterable[RevokedEntry],
) -> asn1_crl.CertificateList:
    algorithm = signature_algorithm(signer.algorithm)
    entries = []
    for entry in revoked:
        item: dict[str, object] = {"user_certificate": entry.serial, "revocation_date": to_time(entry.revoked_at)}
        if entry.reason != "unspecified":
            item["crl_entry_extensions"] = [{"extn_id": "crl_reason", "extn_value": entry.reason}]
        entries.append(item)
    tbs_fields: dict[str, object] = {
        "version": "v2",
        "signature": algorithm,
        "issuer": issuer.subject,
        "this_update": to_time(this_update),
        "next_update": to_time(next_update),
        "crl_extensions": [
            {"extn_id": "crl_number", "extn_value": number},
            {"extn_id": "authority_key_identifier", "extn_value": {"key_identifier": issuer.key_identifier}},
        ],
    }
    if entries:
        tbs_fields["revoked_certificates"] = entries
    tbs = asn1_crl.TbsCertList(tbs_fields)
    signature = signer.sign(tbs.dump())
    return asn1_crl.CertificateList({"tbs_cert_list": tbs, "signature_algorithm": algorithm, "signature": signature})
