"""The rule book: how evidence becomes a check, written once for every reader (the full pyHanko path,
the fast PDF path, OFD, bare SES / CMS). Readers gather evidence — digests, parsed structures, a built
path, a validated timestamp — or decline; these functions turn it into the report's words. Time rules
follow ETSI EN 319 102-1 (the EU DSS model): the validation time is now, or the `at` a privileged
caller gives; only a validated timestamp (a proof of existence) moves it into the past, and what a
document claims about its own time is shown, never relied on."""

from __future__ import annotations

from datetime import UTC, datetime

from verify.report import FAILED, INDETERMINATE, PASSED, SKIPPED, SignatureReport


def validation_time(at: datetime | None, stamped: datetime | None) -> tuple[datetime, bool]:
    """(moment, proven): the time certificates and seals are judged at, and whether a timestamp proves
    the signature existed then. `stamped` must be a timestamp that validated."""
    if stamped is not None and at is None:
        return stamped, True
    return at or datetime.now(UTC), False


def add_signing_time(
    out: SignatureReport,
    *,
    at: datetime | None,
    moment: datetime,
    proven: bool,
    claimed: datetime | None,
    failed_timestamp: str | None = None,
) -> None:
    """`signing_time`: proven by a timestamp, given by the caller (`at`), or merely claimed.
    `failed_timestamp`: why a timestamp the signature carries proves nothing."""
    if proven:
        out.add("signing_time", PASSED, "TIMESTAMP", f"timestamped {moment.isoformat()}")
    elif failed_timestamp is not None and at is None:
        out.add("signing_time", INDETERMINATE, "TIMESTAMP_FAILURE", failed_timestamp)
    elif at is not None:
        out.add("signing_time", PASSED, "OK", f"validated as of {at.isoformat()} (given)")
    else:
        add_claimed_time(out, claimed.isoformat() if claimed else None)


def add_claimed_time(out: SignatureReport, claimed: str | None) -> None:
    """`signing_time` of a signature no timestamp dates: what it claims is shown, never relied on."""
    said = f"claimed {claimed}, not proven by a timestamp (not relied on)" if claimed else "no timestamp"
    out.add("signing_time", PASSED, "CLAIMED_TIME", f"{said}; validated at the validation time")


def _when(moment: datetime, proven: bool) -> str:
    return f"timestamped {moment.isoformat()}" if proven else "no timestamp"


def revoked(out: SignatureReport, detail: str, moment: datetime, proven: bool) -> None:
    """A certificate revoked at `moment`. FAILED/REVOKED needs proof that the signature was made after
    the revocation (EN 319 102-1: a content timestamp after it), which no document here carries; a
    signature timestamp after the revocation proves only that the signature existed then. So:
    INDETERMINATE/REVOKED_NO_POE — the key may have signed this after it was compromised."""
    why = f"{detail}; nothing proves the signature existed before the revocation ({_when(moment, proven)})"
    out.add("revocation", INDETERMINATE, "REVOKED_NO_POE", why)


def not_revoked(out: SignatureReport, unchecked: str = "") -> None:
    """`revocation` of a path whose every certificate was checked (or, named in `unchecked`, could
    not be: no CRL or OCSP service named, no data at hand)."""
    detail = "not revoked at the validation time"
    if unchecked:
        detail += f"; not checked (no CRL or OCSP service named, no data at hand): {unchecked}"
    out.add("revocation", PASSED, "OK", detail)


def out_of_bounds(out: SignatureReport, kind: str, detail: str, moment: datetime, proven: bool) -> None:
    """A certificate outside its validity at `moment`. Only a timestamp before notBefore proves the
    signature was made outside it (FAILED/NOT_YET_VALID); otherwise INDETERMINATE/OUT_OF_BOUNDS_NO_POE."""
    if kind == "NOT_YET_VALID" and proven:
        why = (f"{detail}; the timestamp ({moment.isoformat()}) proves the signature existed before the "
               "certificate was valid")  # fmt: skip
        out.add("chain", FAILED, "NOT_YET_VALID", why)
    else:
        when = _when(moment, proven)
        why = f"{detail}; nothing proves the signature was made within the certificate's validity ({when})"
        out.add("chain", INDETERMINATE, "OUT_OF_BOUNDS_NO_POE", why)
    out.add("revocation", SKIPPED)


def add_no_seal(out: SignatureReport) -> None:
    out.add("seal", SKIPPED, "SEAL_ABSENT", "a plain digital signature (no electronic seal attached)")
    out.add("seal_validity", SKIPPED)


def add_unmodified(out: SignatureReport) -> None:
    out.add("modifications", PASSED, "OK", "nothing was added after this signature")


def add_later_changes(out: SignatureReport, suspicious: str | None, level: str) -> None:
    """`modifications` after a signature whose later revisions were judged: `suspicious` is the
    objection (FAILED), else `level` names what was allowed (later seals, form filling, DSS updates)."""
    if suspicious is not None:
        out.modifications.append(suspicious)
        out.add("modifications", FAILED, "MODIFIED_AFTER_SIGNING", suspicious)
        return
    out.modifications.append(level)
    out.add("modifications", PASSED, "LATER_SIGNATURES_ONLY", f"later changes: {level}")
