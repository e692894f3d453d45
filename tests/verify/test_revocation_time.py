"""verify/revocation_time.py: an earlier invalidityDate moves the moment a certificate counts as revoked."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from asn1crypto import crl
from hypothesis import given
from hypothesis import strategies as st

from verify import revocation_time

REVOKED = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _entry(invalid_from: datetime | None) -> crl.RevokedCertificate:
    extensions: list[dict[str, object]] = [{"extn_id": "crl_reason", "extn_value": "key_compromise"}]
    if invalid_from is not None:
        extensions.append({"extn_id": "invalidity_date", "extn_value": invalid_from})
    entry = crl.RevokedCertificate(
        {"user_certificate": 7, "revocation_date": crl.Time({"utc_time": REVOKED}), "crl_entry_extensions": extensions}
    )
    return crl.RevokedCertificate.load(entry.dump())  # as a verifier reads it


def test_a_crl_entry_without_an_invalidity_date_counts_from_its_revocation_date() -> None:
    assert revocation_time.crl_entry(_entry(None)) == REVOKED


@given(st.integers(min_value=1, max_value=10**8))
def test_an_earlier_invalidity_date_counts_and_a_later_one_does_not(seconds: int) -> None:
    earlier = (REVOKED - timedelta(seconds=seconds)).replace(microsecond=0)
    later = (REVOKED + timedelta(seconds=seconds)).replace(microsecond=0)
    assert revocation_time.crl_entry(_entry(earlier)) == earlier
    assert revocation_time.crl_entry(_entry(later)) == REVOKED
