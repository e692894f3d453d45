"""The ledger key's rotation in ca/: the `key.rotated` event commits in the certificate's transaction or
not at all, and only a certified version signs (the handover then starts with the old key co-signing)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from ca.authority import CertificateAuthorityService
from ca.ledger_key import LEDGER_CA, LEDGER_KEY, LEDGER_PROFILE, SUBJECT, LedgerKey, rotate_ledger_key
from keys.local import LocalKeystore
from ledger.events import event_row
from store.models import Certificate, Event


def _counts(ca: CertificateAuthorityService) -> tuple[int, int]:
    with ca.db.session() as session:
        return (
            session.execute(select(func.count()).select_from(Certificate)).scalar_one(),
            session.execute(select(func.count()).select_from(Event)).scalar_one(),
        )


def test_the_rotation_event_commits_with_the_certificate_or_not_at_all(
    ca_service: CertificateAuthorityService, keystore: LocalKeystore
) -> None:
    ledger_key = LedgerKey(keystore, ca_service, refresh_seconds=0)
    first = ledger_key.provision()
    version = keystore.rotate(LEDGER_KEY)
    before = _counts(ca_service)
    payload = {"key": LEDGER_KEY, "version": version.version, "previous_version": 1, "key_id": "x"}
    broken = {
        **event_row("ledger.handover_started", actor="t", subject=LEDGER_KEY, payload=payload),
        "created_at": None,
    }
    with pytest.raises(Exception):  # the event row breaks NOT NULL: the certificate goes with it
        ca_service.issue_for_key(version.public_key_der, SUBJECT, LEDGER_PROFILE, LEDGER_CA, actor="t", also=[broken])
    assert _counts(ca_service) == before
    assert ledger_key().key_id == first.key_id and ledger_key().handover == ()  # uncertified: never signs

    rotation = rotate_ledger_key(ledger_key, actor="officer:t")
    assert rotation.previous_version == first.handle.version.version and rotation.version == version.version + 1
    assert _counts(ca_service) == (before[0] + 1, before[1] + 2)  # certificate.issued, ledger.handover_started
    current = ledger_key()
    assert current.key_id == rotation.key_id and current.handle.version.version == rotation.version
    assert [h.version.version for h in current.handover] == [first.handle.version.version]  # in the window
    assert ledger_key.certificate_for(first.key_id) == first.certificate_der
    assert ledger_key.certificate_for(rotation.key_id) == rotation.certificate_der


def test_looking_up_key_ids_does_not_read_custody_per_request(
    ca_service: CertificateAuthorityService, keystore: LocalKeystore
) -> None:
    """Review: `GET /v1/ledger/key?key_id=` is public and not rate-limited, and each lookup read every
    custody version (a Vault round trip, or SM4-GCM openings) and every ledger certificate: any client
    could turn it into a load on key custody. The certified keys are now re-read at most once per
    refresh period (and at once after a rotation in this process), hits and misses alike."""
    reads = 0

    class Counting:
        def __getattr__(self, name: str) -> object:
            return getattr(keystore, name)

        def versions(self, name: str) -> list[object]:
            nonlocal reads
            reads += 1
            return keystore.versions(name)  # type: ignore[return-value]

    ledger_key = LedgerKey(Counting(), ca_service, refresh_seconds=60)  # type: ignore[arg-type]
    current = ledger_key.provision()
    reads = 0
    for n in range(50):
        assert ledger_key.certificate_for(f"{n:064x}") is None
        assert ledger_key.certificate_for(current.key_id) == current.certificate_der
    assert reads <= 1
    rotation = rotate_ledger_key(ledger_key, actor="officer:t")  # refreshes: the new key is known at once
    assert ledger_key.certificate_for(rotation.key_id) == rotation.certificate_der
    assert ledger_key.certificate_for(current.key_id) == current.certificate_der
