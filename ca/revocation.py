"""Revocation reasons (RFC 5280 §5.3.1) and CRL building."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from asn1crypto import crl as asn1_crl
from asn1crypto import x509

from ca.certificates import signature_algorithm, to_time
from ca.errors import CertificateHoldNotSupported, InvalidInvalidityDate, InvalidRevocationReason
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


def checked_invalidity_date(moment: datetime | None, now: datetime, action: str = "revoke") -> datetime | None:
    """RFC 5280 §5.3.2: the time from which the key or certificate is known or suspected to have been
    unfit, which may precede the revocation (a compromise found late) but not follow it. The one rule for
    every revocation, withdrawal and re-key that takes one (`action` only words the refusal); whole seconds."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        raise InvalidInvalidityDate("invalidity_date needs a time zone")
    if moment > now:
        raise InvalidInvalidityDate(f"invalidity_date lies in the future; {action} when the time comes")
    return moment.astimezone(UTC).replace(microsecond=0)


@dataclass(frozen=True)
class RevokedEntry:
    serial: int
    revoked_at: datetime
    reason: str
    invalidity_date: datetime | None = None  # RFC 5280 §5.3.2: when trust ended, if before revoked_at


def build_crl(
    *,
    issuer: x509.Certificate,
    signer: SigningHandle,
    number: int,
    this_update: datetime,
    next_update: datetime,
    revoked: Iterable[RevokedEntry],
    distribution_point: str | None = None,
) -> asn1_crl.CertificateList:
    """`distribution_point`: the URL of a list that covers only part of the issuer's certificates (a
    partition, ca/crl.py), written as a critical issuingDistributionPoint (RFC 5280 §5.2.5) whose fullName
    is exactly the URL those certificates carry; a list without one claims to cover every certificate."""
    algorithm = signature_algorithm(signer.algorithm)
    entries: list[asn1_crl.RevokedCertificate] = []
    for entry in revoked:
        item: dict[str, object] = {"user_certificate": entry.serial, "revocation_date": to_time(entry.revoked_at)}
        extensions: list[dict[str, object]] = []
        if entry.reason != "unspecified":
            extensions.append({"extn_id": "crl_reason", "extn_value": entry.reason})
        if entry.invalidity_date is not None:  # GeneralizedTime, whole seconds (RFC 5280 §5.3.2)
            moment = entry.invalidity_date.replace(microsecond=0)
            extensions.append({"extn_id": "invalidity_date", "extn_value": moment})
        if extensions:
            item["crl_entry_extensions"] = extensions
        # Encoded once and read back: a parsed entry keeps its bytes, where a built one is re-encoded at
        # every level of every dump (asn1crypto), which made a 10⁵-entry CRL take minutes.
        entries.append(asn1_crl.RevokedCertificate.load(asn1_crl.RevokedCertificate(item).dump()))
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
    if distribution_point is not None:
        point = {"full_name": [x509.GeneralName(name="uniform_resource_identifier", value=distribution_point)]}
        tbs_fields["crl_extensions"].append(  # type: ignore[attr-defined]
            {"extn_id": "issuing_distribution_point", "critical": True, "extn_value": {"distribution_point": point}}
        )
    if entries:
        tbs_fields["revoked_certificates"] = entries
    tbs = asn1_crl.TbsCertList(tbs_fields)
    signature = signer.sign(tbs.dump())
    return asn1_crl.CertificateList({"tbs_cert_list": tbs, "signature_algorithm": algorithm, "signature": signature})
