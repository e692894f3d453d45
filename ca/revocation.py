"""Revocation reasons (RFC 5280 §5.3.1) and CRL building."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from asn1crypto import crl as asn1_crl
from asn1crypto import x509

from ca.certificates import signature_algorithm, time_der, to_time
from ca.errors import CertificateHoldNotSupported, InvalidInvalidityDate, InvalidRevocationReason
from gm import der
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


EARLIEST_INVALIDITY_DATE = datetime(1950, 1, 1, tzinfo=UTC)  # RFC 5280 §4.1.2.5: times before it are not written


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
    if moment < EARLIEST_INVALIDITY_DATE:  # before any certificate of ours; years < 1000 are not DER-encodable
        raise InvalidInvalidityDate(
            f"invalidity_date lies before {EARLIEST_INVALIDITY_DATE.date()}: no certificate was valid then"
        )
    return moment.astimezone(UTC).replace(microsecond=0)


# RFC 5280 §5.3.1 CRLReason codes (7 unused; certificateHold and removeFromCRL are never written here)
_REASON_CODES = {
    "unspecified": 0,
    "key_compromise": 1,
    "ca_compromise": 2,
    "affiliation_changed": 3,
    "superseded": 4,
    "cessation_of_operation": 5,
    "privilege_withdrawn": 9,
    "aa_compromise": 10,
}
_CRL_REASON = der.tlv(0x06, bytes([0x55, 0x1D, 0x15]))  # id-ce-cRLReasons 2.5.29.21
_INVALIDITY_DATE = der.tlv(0x06, bytes([0x55, 0x1D, 0x18]))  # id-ce-invalidityDate 2.5.29.24


@dataclass(frozen=True)
class RevokedEntry:
    serial: int
    revoked_at: datetime
    reason: str
    invalidity_date: datetime | None = None  # RFC 5280 §5.3.2: when trust ended, if before revoked_at


def entry_der(entry: RevokedEntry) -> bytes:
    """One revokedCertificates entry, DER-assembled (a 10⁵-entry CRL spent nearly all its time in
    asn1crypto building entries): SEQUENCE { userCertificate, revocationDate, crlEntryExtensions? } with
    the reason (unless unspecified) and the invalidity date (GeneralizedTime, whole seconds). Byte for byte
    the asn1crypto construction (tests/ca/test_crl_encoding.py)."""
    parts = [der.integer(entry.serial), time_der(entry.revoked_at)]
    extensions = []
    if entry.reason != "unspecified":
        code = der.tlv(0x0A, bytes([_REASON_CODES[entry.reason]]))
        extensions.append(der.sequence(_CRL_REASON, der.octet_string(code)))
    if entry.invalidity_date is not None:
        moment = entry.invalidity_date.astimezone(UTC).strftime("%Y%m%d%H%M%SZ").encode("ascii")
        extensions.append(der.sequence(_INVALIDITY_DATE, der.octet_string(der.tlv(0x18, moment))))
    if extensions:
        parts.append(der.sequence(*extensions))
    return der.sequence(*parts)


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
    # The fields around the entries from asn1crypto; the entries DER-assembled and spliced in before the
    # crlExtensions ([0]): version, signature, issuer, thisUpdate, nextUpdate, revokedCertificates, [0].
    frame = asn1_crl.TbsCertList(tbs_fields).dump()
    fields = der.children(frame, *der.single(frame, 0x30))
    listed = b"".join(entry_der(entry) for entry in revoked)
    pieces = [frame[start:end] for _, start, _, end in fields]
    if listed:
        pieces.insert(5, der.sequence(listed))
    tbs = der.sequence(*pieces)
    signature = signer.sign(tbs)
    algorithm_der: bytes = algorithm.dump()
    return asn1_crl.CertificateList.load(der.sequence(tbs, algorithm_der, der.bit_string(signature)))
