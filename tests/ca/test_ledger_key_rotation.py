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
