"""The CA snapshot (ca/snapshot.py): one versioned view that invalidate() renews in one place; entries of
unchanged CAs (parsed certificate, templates) carry over; a view stale about another process's
withdrawal issues nothing, because the write transaction re-checks the CA row."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from ca.authority import CertificateAuthorityService
from ca.errors import CANotIssuing, UnknownCA
from ca.withdrawal import withdraw_ca
from keys.custody import KeyAlgorithm
from store.models import Certificate, Event
from tests.fixtures import ORG_SUBJECT, make_csr


def _new_ca(service: CertificateAuthorityService, name: str) -> None:
    service.create_ca(
        name,
        algorithm=KeyAlgorithm("p256"),
        subject={"country_name": "CN", "organization_name": "trustseal test", "common_name": name},
        ca_profile="regional-ca",
        parent="cn-root-p256",
        region_code="440000",
        region_name="Guangdong",
    )


def test_one_invalidation_renews_the_view_and_keeps_unchanged_entries(ca_service: CertificateAuthorityService) -> None:
    first = ca_service.snapshot()
    assert ca_service.snapshot() is first  # within the TTL: the same immutable view
    with pytest.raises(UnknownCA):
        first.get("snap-440000-p256")
    _new_ca(ca_service, "snap-440000-p256")  # invalidates
    second = ca_service.snapshot()
    assert second.version > first.version
    assert second.get("snap-440000-p256").chain[1:] == second.get("cn-root-p256").chain
    assert second.get("cn-root-p256") is first.get("cn-root-p256")  # unchanged: parsed once, templates kept
    withdraw_ca(ca_service, "snap-440000-p256", reason="superseded")
    assert ca_service.ca_status("snap-440000-p256") == "withdrawn"  # seen at once in this process
    assert ca_service.snapshot().get("cn-root-p256") is first.get("cn-root-p256")


def test_a_view_stale_about_a_withdrawal_elsewhere_issues_nothing(
    ca_service: CertificateAuthorityService, tmp_path: Path
) -> None:
    _new_ca(ca_service, "stale-440000-p256")
    other = CertificateAuthorityService(ca_service.db, ca_service.custody, ca_service.profiles, ca_service.public_url)
    csr = make_csr(tmp_path, algorithm="p256", subject=ORG_SUBJECT)
    other.issue(csr, "org-seal", "stale-440000-p256")  # `other` now holds a view with the CA active
    withdraw_ca(ca_service, "stale-440000-p256", reason="caCompromise")  # another "process"
    assert other.snapshot().get("stale-440000-p256").status == "active"  # stale, within its TTL

    def counts() -> tuple[int, int]:
        with ca_service.db.session() as session:
            return (
                session.scalar(select(func.count()).select_from(Certificate)) or 0,
                session.scalar(select(func.count()).select_from(Event)) or 0,
            )

    before = counts()
    with pytest.raises(CANotIssuing, match="changed while the certificate was signed"):
        other.issue(csr, "org-seal", "stale-440000-p256")
    assert counts() == before
    assert other.ca_status("stale-440000-p256") == "withdrawn"  # the refusal renewed its view
