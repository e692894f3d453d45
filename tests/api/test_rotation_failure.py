"""A rotation that fails after custody made the new key version (keys/rotation.py `provisional_version`, used
by the seal re-key, seal-maker, TSA, trust-list and ledger rotations): the error is answered as
problem+json (4xx), the new version is disabled (with its `key.disabled` event), and what the key's bare
name resolves to is still the certified version in use."""

from __future__ import annotations

import secrets
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.auth import create_token
from api.context import Context
from api.keys import inventory
from api.problems import PROBLEM_JSON
from ca.errors import CANotIssuing
from ca.withdrawal import withdraw_ca
from keys.custody import KeyAlgorithm
from seal.service import SealRequest
from store.models import Event


@pytest.fixture(scope="module")
def officer(context: Context) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(context.db, 'officer', f'officer-{secrets.token_hex(4)}')}"}


def _entry(context: Context, key: str) -> dict[str, Any]:
    return next(row for row in inventory(context) if row["key"] == key)


def _refused_and_disabled(client: TestClient, context: Context, officer: dict[str, str], key: str, code: str) -> None:
    before = _entry(context, key)
    versions_before = {v["version"] for v in before["versions"]}
    answer = client.post(f"/v1/keys/{key}/rotate", headers=officer)
    assert 400 <= answer.status_code < 500, answer.text
    assert answer.headers["content-type"].startswith(PROBLEM_JSON) and answer.json()["code"] == code
    after = _entry(context, key)
    (made,) = [v for v in after["versions"] if v["version"] not in versions_before]  # custody did make one
    assert made["enabled"] is False
    assert after["current_version"] == before["current_version"] == after["certificate"]["version"]
    assert context.custody.get(key).version == before["current_version"]  # the bare name: certified, in use
    with context.db.session() as session:
        disabled = session.scalars(select(Event.payload).where(Event.type == "key.disabled", Event.subject == key))
        assert any(p["version"] == made["version"] for p in disabled)


def test_a_seal_rekey_whose_ca_is_withdrawn_between_check_and_issue(
    client: TestClient, context: Context, officer: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = f"rf-{secrets.token_hex(3)}-sm2"
    context.ca.create_ca(
        ca,
        algorithm=KeyAlgorithm.SM2,
        subject={"country_name": "CN", "organization_name": "trustseal test", "common_name": ca},
        ca_profile="regional-ca",
        parent="cn-root-sm2",
        region_code="450000",
    )
    request = SealRequest("Nanning Test Bureau", "Nanning Test Bureau", "91350100M000100Y43", ca)
    seal = context.seals.create(request, actor="test")
    real = context.ca.issue_for_key

    def withdrawn_meanwhile(*args: Any, **kwargs: Any) -> Any:
        if context.ca.ca_status(ca) == "active":  # another officer withdraws it after the rotation's check
            withdraw_ca(context.ca, ca, reason="caCompromise")
        return real(*args, **kwargs)

    monkeypatch.setattr(context.ca, "issue_for_key", withdrawn_meanwhile)
    _refused_and_disabled(client, context, officer, f"seal.{seal.id}", "ca_withdrawn")
    _refused_and_disabled(client, context, officer, f"{ca}.seal-maker", "ca_withdrawn")
    assert context.seals.get(seal.id).key_ref.endswith("@1")


def test_tsa_trust_list_and_ledger_rotations_whose_issuance_fails(
    client: TestClient, context: Context, officer: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    context.signing.tsa.unit("sm2")  # provisioned (and certified) before issuance starts failing
    context.verification.publisher.current()
    context.ledger_key.provision()

    def refuse(*_: Any, **__: Any) -> Any:
        raise CANotIssuing("the issuing CA changed meanwhile; nothing was issued")

    monkeypatch.setattr(context.ca, "issue_for_key", refuse)
    for key in ("tsa.sm2", "trust-list.sm2", "ledger.sm2"):
        _refused_and_disabled(client, context, officer, key, "ca_not_issuing")
    monkeypatch.undo()
    assert client.get("/v1/trust-list").status_code == 200  # still signed by the certified signer
