"""verify/rules.py: the one place the time rules of EN 319 102-1 turn evidence into checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from verify import rules
from verify.report import FAILED, INDETERMINATE, PASSED, SKIPPED, SignatureReport

T = datetime(2026, 6, 1, tzinfo=UTC)


def _first(out: SignatureReport) -> tuple[str, str, str]:
    check = out.checks[0]
    return check.name, check.status, check.code


def test_only_a_validated_timestamp_moves_validation_into_the_past() -> None:
    assert rules.validation_time(None, T) == (T, True)
    at = T + timedelta(days=1)
    assert rules.validation_time(at, T) == (at, False)  # `at` is a question, and no proof
    assert rules.validation_time(at, None) == (at, False)
    moment, proven = rules.validation_time(None, None)
    assert not proven and abs(moment - datetime.now(UTC)) < timedelta(seconds=5)


def test_revoked_is_never_failed_without_proof_the_signature_came_after() -> None:
    for proven in (True, False):
        out = SignatureReport()
        rules.revoked(out, "revoked on …", T, proven)
        assert _first(out) == ("revocation", INDETERMINATE, "REVOKED_NO_POE")
        assert out.subindication == "REVOKED_NO_POE"


def test_outside_validity_fails_only_with_a_timestamp_before_not_before() -> None:
    out = SignatureReport()
    rules.out_of_bounds(out, "NOT_YET_VALID", "not yet valid", T, True)
    assert _first(out) == ("chain", FAILED, "NOT_YET_VALID") and out.checks[1].status == SKIPPED
    for kind, proven in (("NOT_YET_VALID", False), ("EXPIRED", True), ("EXPIRED", False)):
        out = SignatureReport()
        rules.out_of_bounds(out, kind, "outside", T, proven)
        assert _first(out) == ("chain", INDETERMINATE, "OUT_OF_BOUNDS_NO_POE")


def test_signing_time_says_what_the_time_rests_on() -> None:
    cases = [
        ({"at": None, "proven": True, "claimed": None}, (PASSED, "TIMESTAMP")),
        ({"at": T, "proven": False, "claimed": T}, (PASSED, "OK")),
        ({"at": None, "proven": False, "claimed": T}, (PASSED, "CLAIMED_TIME")),
        (
            {"at": None, "proven": False, "claimed": None, "failed_timestamp": "bad"},
            (INDETERMINATE, "TIMESTAMP_FAILURE"),
        ),
    ]
    for kwargs, expected in cases:
        out = SignatureReport()
        rules.add_signing_time(out, moment=T, **kwargs)  # type: ignore[arg-type]
        assert (out.checks[0].status, out.checks[0].code) == expected
    out = SignatureReport()
    rules.add_signing_time(out, at=None, moment=T, proven=False, claimed=T - timedelta(days=9))
    assert "not relied on" in out.checks[0].detail
