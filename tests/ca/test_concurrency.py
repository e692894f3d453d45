"""Concurrent revocations and CRL fetches: no lost revocation, no duplicate or missing CRL number."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from asn1crypto import crl as asn1_crl
from sqlalchemy import select

from ca.authority import CertificateAuthorityService
from store.models import CRL
from tests.fixtures import ORG_SUBJECT, make_csr


def test_parallel_revocations_all_reach_the_newest_crl(ca_service: CertificateAuthorityService, tmp_path: Path) -> None:
    csr = make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT)
    serials = [ca_service.issue(csr, "org-seal", "cn-530000-sm2").serial for _ in range(8)]

    def revoke(serial: str) -> None:
        ca_service.revoke(serial, "superseded")

    def fetch(_: int) -> bytes:
        return ca_service.current_crl("cn-530000-sm2")

    with ThreadPoolExecutor(max_workers=6) as pool:
        futures = [pool.submit(revoke, s) for s in serials] + [pool.submit(fetch, i) for i in range(6)]
        for future in futures:
            future.result()

    newest = asn1_crl.CertificateList.load(ca_service.current_crl("cn-530000-sm2"))
    listed = {
        format(entry["user_certificate"].native, "x") for entry in newest["tbs_cert_list"]["revoked_certificates"]
    }
    assert set(serials) <= listed
    with ca_service.db.session() as session:
        numbers = list(session.scalars(select(CRL.number).where(CRL.ca_name == "cn-530000-sm2").order_by(CRL.id)))
    assert numbers == sorted(numbers)
    assert len(numbers) == len(set(numbers))
    assert newest.crl_number_value.native == numbers[-1]


def test_ca_disabled_by_another_process_issues_nothing(ca_service: CertificateAuthorityService, tmp_path: Path) -> None:
    """Issuance reads the CA row before signing (and may remember it briefly); the write transaction
    re-reads it, so a CA disabled elsewhere in between gets no certificate written."""
    import pytest
    from sqlalchemy import func, update

    from ca.errors import CANotIssuing
    from store.models import Certificate, CertificateAuthority, Event

    csr = make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT)
    ca_service.issue(csr, "org-seal", "cn-530000-sm2")  # the active CA row is now cached in this process

    def counts() -> tuple[int, int]:
        with ca_service.db.session() as session:
            return (
                session.scalar(select(func.count()).select_from(Certificate)) or 0,
                session.scalar(select(func.count()).select_from(Event)) or 0,
            )

    try:
        with ca_service.db.session() as session:  # "another process": no invalidate() on this service
            session.execute(
                update(CertificateAuthority)
                .where(CertificateAuthority.name == "cn-530000-sm2")
                .values(status="disabled")
            )
        before = counts()
        with pytest.raises(CANotIssuing, match="changed while"):
            ca_service.issue(csr, "org-seal", "cn-530000-sm2")
        with pytest.raises(CANotIssuing, match="is disabled"):  # the cache was dropped: read afresh
            ca_service.issue(csr, "org-seal", "cn-530000-sm2")
        assert counts() == before
    finally:
        with ca_service.db.session() as session:
            session.execute(
                update(CertificateAuthority).where(CertificateAuthority.name == "cn-530000-sm2").values(status="active")
            )
        ca_service.invalidate("cn-530000-sm2")
    assert ca_service.issue(csr, "org-seal", "cn-530000-sm2").serial
