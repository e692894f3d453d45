"""A seal re-key racing an approved seal revocation (seal/service.py): whichever lands first, the revoked seal
ends with no good holder certificate and no enabled key version it does not use.

- The revocation lands while the re-key issues its new certificate: the re-key, re-checking under the seal's
  row lock, is refused `invalid_seal_transition`, its provisional key version is disabled and the certificate it
  had issued is revoked.
- The re-key commits between the revocation's read and its lock: the revocation revokes the certificate the
  locked row names (the new one) and the earlier versions' still-good ones."""

from __future__ import annotations

from typing import Any

import pytest

from api.context import Context
from policies import seals as seal_policy
from seal.errors import InvalidTransition
from seal.service import SealRequest
from store.models import Certificate


def _seal(context: Context) -> str:
    request = SealRequest("Race Test Bureau", "Race Test Bureau", "91350100M000100Y43", "cn-370000-sm2")
    return context.seals.create(request, actor="test").id


def _status(context: Context, serial: str) -> str:
    with context.db.session() as session:
        row = session.get(Certificate, serial)
        assert row is not None
        return row.status


def test_a_revocation_landing_during_a_rekey_refuses_the_rekey(
    context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    seal_id = _seal(context)
    before = context.seals.get(seal_id)
    issued: list[str] = []
    real = context.ca.issue_for_key

    def racing(*args: Any, **kwargs: Any) -> Any:
        context.seals.transition(seal_id, "revoked", "approved revocation", "token:b")  # the approved revoke lands
        made = real(*args, **kwargs)
        issued.append(made.serial)
        return made

    monkeypatch.setattr(context.ca, "issue_for_key", racing)
    with pytest.raises(InvalidTransition) as refused:
        context.seals.rekey(seal_id, "token:a")
    assert refused.value.code == "invalid_seal_transition"

    after = context.seals.get(seal_id)
    assert after.status == "revoked" and after.key_ref == before.key_ref
    assert after.certificate_serial == before.certificate_serial
    assert _status(context, before.certificate_serial) == "revoked"
    (orphan,) = issued
    assert _status(context, orphan) == "revoked"  # the re-key's certificate is nobody's: cut off too
    name = f"seal.{seal_id}"
    enabled = [v.ref for v in context.custody.versions(name) if v.enabled]
    assert enabled == [before.key_ref]  # the provisional version was disabled


def test_a_rekey_committing_before_the_revocations_lock_is_revoked_with_it(
    context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    seal_id = _seal(context)
    first = context.seals.get(seal_id)
    context.seals.rekey(seal_id, "token:a")  # an earlier version whose certificate is left to expire
    second = context.seals.get(seal_id)
    assert _status(context, first.certificate_serial) == "good"
    rekeyed: list[str] = []
    real = seal_policy.may_transition

    def racing(current: str, target: str) -> bool:
        if target == "revoked" and not rekeyed:  # the revocation has read the row; a re-key commits now
            rekeyed.append(context.seals.rekey(seal_id, "token:a")[0].certificate_serial)
        return real(current, target)

    monkeypatch.setattr(seal_policy, "may_transition", racing)
    context.seals.transition(seal_id, "revoked", "approved revocation", "token:b")

    after = context.seals.get(seal_id)
    assert after.status == "revoked" and after.certificate_serial == rekeyed[0] != second.certificate_serial
    for serial in (first.certificate_serial, second.certificate_serial, rekeyed[0]):
        assert _status(context, serial) == "revoked", serial


def test_a_revocation_of_a_seal_revoked_meanwhile_is_refused(context: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    seal_id = _seal(context)
    done: list[bool] = []
    real = seal_policy.may_transition

    def racing(current: str, target: str) -> bool:
        if not done:  # another officer's revocation lands between this one's read and its lock
            done.append(True)
            context.seals.transition(seal_id, "revoked", "first", "token:c")
        return real(current, target)

    monkeypatch.setattr(seal_policy, "may_transition", racing)
    with pytest.raises(InvalidTransition):
        context.seals.transition(seal_id, "revoked", "second", "token:b")
    assert context.seals.get(seal_id).status_reason == "first"
