"""Two rollovers of one CA at once (review finding 4): each used to make its key before taking the CA row
lock, and both switched — two new keys stacked, one of them never announced as the result. Now the one
that finds the CA re-keyed under the lock is refused (409 `rollover_in_progress`) and disables its
provisional key versions (keys/rotation.py)."""

from __future__ import annotations

import secrets
from typing import Any, cast

import pytest

from ca.authority import CertificateAuthorityService
from ca.errors import RolloverInProgress
from ca.rollover import roll_over
from keys.custody import KeyAlgorithm, KeyCustody, KeyVersion


class _RacingCustody:
    """Custody that, when the first rollover makes its CA key, lets a second rollover run to completion."""

    def __init__(self, service: CertificateAuthorityService, name: str) -> None:
        self.inner = service.custody
        self.service = service
        self.name = name
        self.raced = False

    def rotate(self, name: str) -> KeyVersion:
        version = self.inner.rotate(name)
        if name == self.name and not self.raced:
            self.raced = True
            roll_over(self.service, self.name, actor="the other officer")
        return version

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.inner, attribute)


def test_the_second_of_two_concurrent_rollovers_is_refused_and_its_keys_disabled(
    ca_service: CertificateAuthorityService,
) -> None:
    name = f"tmp-{secrets.token_hex(3)}-p256"
    ca_service.create_ca(
        name,
        algorithm=KeyAlgorithm.P256,
        subject={"country_name": "CN", "organization_name": "trustseal test", "common_name": f"{name} CA"},
        ca_profile="regional-ca",
        parent="cn-root-p256",
        region_code="440000",
        actor="test",
    )
    racing = _RacingCustody(ca_service, name)
    with pytest.raises(RolloverInProgress) as refused:
        roll_over(ca_service, name, actor="officer", custody=cast(KeyCustody, racing))
    assert refused.value.code == "rollover_in_progress" and refused.value.status == 409
    assert racing.raced
    entry = ca_service.snapshot().get(name)
    assert len(entry.generations) == 2  # the first key and the winner's: nothing stacked
    assert entry.previous_keys is not None and entry.previous_keys[0]["key_ref"] == f"{name}@1"
    versions = {v.ref: v.enabled for v in ca_service.custody.versions(name)}
    ocsp_versions = {v.ref: v.enabled for v in ca_service.custody.versions(f"{name}.ocsp")}
    assert len(versions) == 3 and len(ocsp_versions) == 3
    live = {entry.key_ref, f"{name}@1"}
    # the loser's versions are disabled, the winner's and the first key stay enabled
    assert {ref for ref, enabled in versions.items() if enabled} == live
    assert {ref for ref, enabled in ocsp_versions.items() if enabled} == {g.ocsp_key_ref for g in entry.generations}
