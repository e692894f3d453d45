"""The CA's error taxonomy. `api/` maps each `code` to problem+json in one place."""

from __future__ import annotations


class CAError(Exception):
    code = "ca_error"
    status = 400

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class CSRMalformed(CAError):
    code = "csr_malformed"


class CSRSignatureInvalid(CAError):
    code = "csr_signature_invalid"


class UnknownProfile(CAError):
    code = "unknown_profile"
    status = 404


class UnknownCA(CAError):
    code = "unknown_ca"
    status = 404


class SubjectNotAllowed(CAError):
    code = "subject_not_allowed"


class KeyAlgorithmNotAllowed(CAError):
    code = "key_algorithm_not_allowed"


class SanNotAllowed(CAError):
    code = "san_not_allowed"


class CertificateNotFound(CAError):
    code = "certificate_not_found"
    status = 404


class AlreadyRevoked(CAError):
    code = "certificate_already_revoked"
    status = 409


class InvalidRevocationReason(CAError):
    code = "invalid_revocation_reason"


class CertificateHoldNotSupported(CAError):
    """Revocation here is final: no unhold, no removeFromCRL, no delta CRLs. A seal is suspended instead."""

    code = "certificate_hold_not_supported"
    status = 422


class OCSPMalformed(CAError):
    code = "ocsp_malformed_request"


class CAExists(CAError):
    code = "ca_exists"
    status = 409


class CANotIssuing(CAError):
    code = "ca_not_issuing"


class ProfileNotForCSR(CAError):
    """Infrastructure and CA profiles are issued only for keys in the service's custody."""

    code = "profile_not_for_csr"
    status = 422


class CAWithdrawn(CANotIssuing):
    code = "ca_withdrawn"
    status = 409


class CAAlreadyWithdrawn(CAError):
    code = "ca_already_withdrawn"
    status = 409


class CACertificateNotRevocable(CAError):
    """A CA's own certificate is revoked by withdrawing the CA (ca/withdrawal.py), never directly."""

    code = "ca_certificate_not_revocable"
    status = 409


class UseSealRevoke(CAError):
    """A seal's certificate is revoked by revoking the seal, so the seal's status follows."""

    code = "use_seal_revoke"
    status = 409


class InvalidInvalidityDate(CAError):
    code = "invalid_invalidity_date"
    status = 422


class NameNotAllowed(CAError):
    """The name policy (policies/names.py) refused a subject or subjectAltName value. The code is the
    policy's: `san_type_not_allowed`, `dns_name_invalid`, `wildcard_not_allowed`, `ip_not_allowed`,
    `uri_not_allowed`, `email_invalid`, `name_character_forbidden`, `common_name_not_in_san`,
    `uscc_not_permitted` (README, "Name policy")."""

    code = "name_not_allowed"

    def __init__(self, code: str, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.code = code
        self.status = status


class UnknownCRLScope(CAError):
    """No such CRL scope (a CA key, or a partition of one: ca/crl.py) for a CA: GET /v1/cas/{ca}/crl/{scope}.
    The detail shows at most SHOWN_CHARS of the scope asked for: it comes from a public URL, and the
    answer must not reflect whatever an anonymous caller sent (a 60 KB path was echoed whole)."""

    code = "unknown_crl_scope"
    status = 404

    def __init__(self, ca_name: str, scope: str) -> None:
        super().__init__(f"{shown(ca_name)} has no CRL scope {shown(scope)}")


SHOWN_CHARS = 64


def shown(value: str, limit: int = SHOWN_CHARS) -> str:
    """`value` quoted for an error detail, cut to `limit` characters (with how long it was)."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value)} characters)"


class CAKeyRolloverRefused(CAError):
    """A CA whose key cannot roll over now (its parent withdrawn, a root offline …)."""

    code = "ca_rollover_refused"
    status = 409


class CRLUnavailable(CAError):
    """No CRL stored yet for a CA (one is made at creation, on revocation and by the scheduler): reads
    never sign one, so the answer is 503 rather than a CRL made on a public request."""

    code = "crl_unavailable"
    status = 503


class UnknownCAKey(CAError):
    """No such key (custody reference) among a CA's current and earlier keys."""

    code = "unknown_ca_key"
    status = 404


class RolloverInProgress(CAError):
    """Another rollover of the same CA committed while this one was making its keys: this one changed
    nothing (its provisional key versions are disabled), so two concurrent requests never stack two keys."""

    code = "rollover_in_progress"
    status = 409
