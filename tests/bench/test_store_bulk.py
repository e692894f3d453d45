"""ca/store.py `bulk_add` (bench/bench_scale.py's bulk load) writes the very row issuance writes for the
same signed certificate, and, revoked, the row revocation leaves; on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

from bench.bench_scale import prepared_certificates
from ca import store
from ca.authority import CertificateAuthorityService
from store.models import Certificate

CA = "cn-370000-sm2"
SKIPPED = {"created_at"}  # the clock at the write


def _row(ca_service: CertificateAuthorityService, serial: str) -> dict[str, Any]:
    with ca_service.db.session() as session:
        row = session.scalars(select(Certificate).where(Certificate.serial == serial)).one()
        return {c.name: getattr(row, c.key) for c in Certificate.__table__.columns if c.name not in SKIPPED}


def _rewrite_in_bulk(
    ca_service: CertificateAuthorityService, prepared: store.PreparedCertificate, revoked: Any = None
) -> dict[str, Any]:
    with ca_service.db.engine.begin() as connection:
        connection.execute(delete(Certificate).where(Certificate.serial == prepared.serial_hex))
        assert store.bulk_add(connection, [prepared], revoked) == 1
    return _row(ca_service, prepared.serial_hex)


def test_a_bulk_row_is_the_row_issuance_writes(ca_service: CertificateAuthorityService) -> None:
    prepared = next(prepared_certificates(ca_service, CA, 1))
    ca_service._commit_end_entity(ca_service.snapshots.entry(CA), prepared, "test")  # the issuance write
    issued = _row(ca_service, prepared.serial_hex)
    assert issued["status"] == "good" and issued["der"] == prepared.der
    assert _rewrite_in_bulk(ca_service, prepared) == issued


def test_a_bulk_revoked_row_is_the_row_revocation_leaves(ca_service: CertificateAuthorityService) -> None:
    prepared = next(prepared_certificates(ca_service, CA, 1))
    ca_service._commit_end_entity(ca_service.snapshots.entry(CA), prepared, "test")
    at = datetime.now(UTC).replace(microsecond=0)
    ca_service.revoke(prepared.serial_hex, "key_compromise", "test", revoked_at=at, invalidity_date=at - timedelta(1))
    revoked = _row(ca_service, prepared.serial_hex)
    assert revoked["status"] == "revoked" and revoked["revoked_at"] == at
    bulk = store.BulkRevocation(at, revoked["revocation_reason"], at - timedelta(1))
    assert _rewrite_in_bulk(ca_service, prepared, bulk) == revoked


def test_bulk_rows_are_distinct_certificates(ca_service: CertificateAuthorityService) -> None:
    batch = list(prepared_certificates(ca_service, CA, 3))
    with ca_service.db.engine.begin() as connection:
        assert store.bulk_add(connection, batch) == 3
        assert store.bulk_add(connection, []) == 0
    assert len({p.serial_hex for p in batch}) == 3
    assert all(_row(ca_service, p.serial_hex)["fingerprint_sha256"] == p.fingerprint for p in batch)
