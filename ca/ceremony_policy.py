"""What the offline side agrees to sign, by kind (ca/ceremony_home.py).

The request file that reaches the offline machine is unauthenticated: anyone who can hand it in could ask
the root to sign anything with the root's issuer name. So the ceremony home checks the TBS itself against
the operation the request names, before any signature and independently of the online service:

- a CA certificate (`ca.create`, `ca.cross_certify`, `ca.rollover`): basicConstraints cA with a pathLen,
  keyUsage keyCertSign, a subject and key other than the root's, validity inside the root certificate's;
- a trust-list signer certificate (`trust_list.signer`): the trust-list-signer EKU, not a CA;
- an OCSP signer certificate (`ocsp.signer`): the OCSP-signing EKU, not a CA;
- a CRL (`crl`): nextUpdate after thisUpdate and at most `MAX_CRL_VALIDITY` later, not already expired.
  (Number and entries against what this home signed before: ca/ceremony_log.py.)

`describe` renders the values people compare at the ceremony (pathLen, name constraints, EKU, SAN, CRL DP
and AIA URLs, CRL entries, the TBS's SHA-256).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from asn1crypto import crl as asn1_crl
from asn1crypto import x509

from ca.errors import CAError
from gm import oids

MAX_CRL_VALIDITY = timedelta(days=90)

CA_OPERATIONS = frozenset({"ca.create", "ca.cross_certify", "ca.rollover"})
EE_OPERATIONS = {"trust_list.signer": "trust-list signer", "ocsp.signer": "OCSP signer"}
_CERT_SIGNING = frozenset({"key_cert_sign", "crl_sign"})


class RequestRefused(CAError):
    """The offline side will not sign this request (not for a CA it holds, not a TBS of that CA, or not what
    its policy allows for the operation)."""

    code = "ceremony_request_refused"
    status = 422


def tbs_sha256(tbs_der: bytes) -> str:
    return hashlib.sha256(tbs_der).hexdigest()


def _extension(extensions: Any, name: str) -> Any:
    return next((e["extn_value"].native for e in extensions if e["extn_id"].native == name), None)


def _ekus(tbs: x509.TbsCertificate) -> set[str]:
    value = _extension(tbs["extensions"], "extended_key_usage")
    return set(value or ())


def check(
    operation: object,
    tbs: x509.TbsCertificate | asn1_crl.TbsCertList,
    root: x509.Certificate,
    now: datetime | None = None,
) -> None:
    """Refuse (RequestRefused) a TBS that is not what `operation` may make the root sign."""
    now = now or datetime.now(UTC)
    if isinstance(tbs, asn1_crl.TbsCertList):
        if operation != "crl":
            raise RequestRefused(f"a CRL was handed in for operation {operation!r}")
        _check_crl(tbs, now)
        return
    if operation == "crl":
        raise RequestRefused("operation crl, but the TBS is a certificate")
    _check_validity(tbs, root)
    if operation in CA_OPERATIONS:
        _check_ca(tbs, root)
    elif operation in EE_OPERATIONS:
        _check_end_entity(tbs, str(operation))
    else:
        raise RequestRefused(f"the ceremony home signs no {operation!r} (unknown operation)")


def _check_validity(tbs: x509.TbsCertificate, root: x509.Certificate) -> None:
    validity = tbs["validity"]
    not_before, not_after = validity["not_before"].native, validity["not_after"].native
    if not not_before < not_after:
        raise RequestRefused("the certificate's validity is empty or reversed")
    if not_before < root.not_valid_before or not_after > root.not_valid_after:
        raise RequestRefused(
            f"validity {not_before.isoformat()} .. {not_after.isoformat()} is not inside the root's "
            f"{root.not_valid_before.isoformat()} .. {root.not_valid_after.isoformat()}"
        )


def _check_ca(tbs: x509.TbsCertificate, root: x509.Certificate) -> None:
    basic = _extension(tbs["extensions"], "basic_constraints")
    if not basic or not basic.get("ca"):
        raise RequestRefused("a CA operation, but the certificate is not a CA certificate (basicConstraints cA)")
    if basic.get("path_len_constraint") is None:
        raise RequestRefused("a CA certificate below the root must set basicConstraints pathLenConstraint")
    usage = _extension(tbs["extensions"], "key_usage")
    if not usage or "key_cert_sign" not in usage:
        raise RequestRefused("a CA certificate without keyUsage keyCertSign")
    if tbs["subject"].dump() == root.subject.dump():
        raise RequestRefused("the certificate names the root's own subject")
    if tbs["subject_public_key_info"].dump() == root.public_key.dump():
        raise RequestRefused("the certificate is for the root's own key")


def _check_end_entity(tbs: x509.TbsCertificate, operation: str) -> None:
    what = EE_OPERATIONS[operation]
    basic = _extension(tbs["extensions"], "basic_constraints")
    if basic and basic.get("ca"):
        raise RequestRefused(f"a {what} certificate must not be a CA certificate")
    usage = set(_extension(tbs["extensions"], "key_usage") or ())
    if usage & _CERT_SIGNING:
        raise RequestRefused(f"a {what} certificate must not carry keyCertSign or cRLSign")
    ekus = _ekus(tbs)
    wanted = oids.EKU_TRUST_LIST_SIGNERS if operation == "trust_list.signer" else {"ocsp_signing"}
    if not ekus & set(wanted):
        raise RequestRefused(f"a {what} certificate must carry the {what} extended key usage")
    if operation == "trust_list.signer" and "ocsp_signing" in ekus:
        raise RequestRefused("a trust-list signer certificate must not also sign OCSP responses")


def _check_crl(tbs: asn1_crl.TbsCertList, now: datetime) -> None:
    this_update, next_update = tbs["this_update"].native, tbs["next_update"].native
    if next_update is None:
        raise RequestRefused("a CRL without nextUpdate")
    if not this_update < next_update:
        raise RequestRefused("the CRL's nextUpdate is not after its thisUpdate")
    if next_update - this_update > MAX_CRL_VALIDITY:
        raise RequestRefused(f"the CRL is valid {next_update - this_update}: more than {MAX_CRL_VALIDITY.days} days")
    if next_update <= now:
        raise RequestRefused(f"the CRL expired at {next_update.isoformat()}")
    if crl_number(tbs) is None:
        raise RequestRefused("a CRL without a CRL number")


def crl_number(tbs: asn1_crl.TbsCertList) -> int | None:
    value = _extension(tbs["crl_extensions"], "crl_number")
    return int(value) if value is not None else None


def crl_scope(tbs: asn1_crl.TbsCertList) -> str:
    """Which list of the CA this CRL is: its issuer key (authority key identifier) and, for a partition or a
    rolled-over key's list, its issuing distribution point. Entries carry over only within one scope."""
    aki = _extension(tbs["crl_extensions"], "authority_key_identifier") or {}
    key_id = aki.get("key_identifier") if isinstance(aki, dict) else None
    idp = _extension(tbs["crl_extensions"], "issuing_distribution_point") or {}
    point = idp.get("distribution_point") if isinstance(idp, dict) else None
    return f"{key_id.hex() if isinstance(key_id, bytes) else ''}|{_names(point) if point else ''}"


def crl_serials(tbs: asn1_crl.TbsCertList) -> list[str]:
    return [f"{entry['user_certificate'].native:x}" for entry in tbs["revoked_certificates"]]


def _names(value: Any) -> str:
    """GeneralNames (native) as `type:value, …`."""
    if not value:
        return "-"
    return ", ".join(f"{n}" for n in value)


def describe(tbs: x509.TbsCertificate | asn1_crl.TbsCertList, tbs_der: bytes) -> list[str]:
    """The values the officers read before they sign."""
    lines: list[str] = []
    if isinstance(tbs, asn1_crl.TbsCertList):
        entries = tbs["revoked_certificates"]
        lines += [
            f"CRL       number {crl_number(tbs)}, issuer {tbs['issuer'].human_friendly}",
            f"validity  {tbs['this_update'].native.isoformat()} .. {tbs['next_update'].native.isoformat()}",
            f"entries   {len(entries)}",
        ]
        for entry in entries:
            reason = _extension(entry["crl_entry_extensions"], "crl_reason") or "unspecified"
            revoked = entry["revocation_date"].native.isoformat()
            lines.append(f"  serial {entry['user_certificate'].native:x} revoked {revoked} ({reason})")
        lines.append(f"tbs       sha256 {tbs_sha256(tbs_der)}")
        return lines
    extensions = tbs["extensions"]
    validity = tbs["validity"]
    basic = _extension(extensions, "basic_constraints") or {}
    spki = tbs["subject_public_key_info"].dump()
    constraints = _extension(extensions, "name_constraints") or {}
    points = _extension(extensions, "crl_distribution_points") or []
    crl_urls = [n for p in points for n in ((p.get("distribution_point") or []) if isinstance(p, dict) else [])]
    aia = _extension(extensions, "authority_information_access") or []
    lines += [
        f"subject   {tbs['subject'].human_friendly}",
        f"serial    {tbs['serial_number'].native:x}",
        f"validity  {validity['not_before'].native.isoformat()} .. {validity['not_after'].native.isoformat()}",
        f"key       {tbs['subject_public_key_info'].algorithm} sha256 {hashlib.sha256(spki).hexdigest()}",
        f"CA        {bool(basic.get('ca'))}",
        f"pathLen   {basic.get('path_len_constraint')}",
        f"keyUsage  {', '.join(sorted(_extension(extensions, 'key_usage') or ())) or '-'}",
        f"EKU       {', '.join(sorted(_ekus(tbs))) or '-'}",
        f"SAN       {_names(_extension(extensions, 'subject_alt_name'))}",
        "nameConstraints permitted "
        f"{_names([s['base'] for s in constraints.get('permitted_subtrees') or []])}; excluded "
        f"{_names([s['base'] for s in constraints.get('excluded_subtrees') or []])}",
        f"CRL DP    {_names(crl_urls)}",
        "AIA       " + (", ".join(f"{a['access_method']} {a['access_location']}" for a in aia) or "-"),
        "extensions " + ", ".join(str(e["extn_id"].native) for e in extensions),
        f"tbs       sha256 {tbs_sha256(tbs_der)}",
    ]
    return lines
