"""A withdrawal whose trust-list publish fails (ca/withdrawal.py): the withdrawal committed, so the approval
says `executed` and the result `trust_list_published: false`; the scheduler (api/app.py) publishes the list
on a later round, retrying until it succeeds."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import _republish_trust_list
from api.approvals import Approvals
from api.auth import create_token
from api.context import Context
from keys.custody import KeyAlgorithm
from policies.approvals import parse_policy
from store.models import Event, TrustListRecord


def _officer(context: Context) -> dict[str, str]:
    return {"Authorization": f"Bearer {create_token(context.db, 'officer', f'officer-{secrets.token_hex(4)}')}"}


def _listed_status(context: Context, name: str) -> str | None:
    with context.db.session() as session:
        newest = session.scalars(select(TrustListRecord).order_by(TrustListRecord.sequence.desc()).limit(1)).first()
    assert newest is not None
    document = json.loads(newest.document)
    return next((c["status"] for r in document["regions"] for c in r["cas"] if c["name"] == name), None)


def test_a_failed_publish_leaves_the_withdrawal_executed_and_the_scheduler_publishes(
    client: TestClient, context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    name = f"wd-{secrets.token_hex(3)}-p256"
    context.ca.create_ca(
        name,
        algorithm=KeyAlgorithm.P256,
        subject={"country_name": "CN", "organization_name": "trustseal test", "common_name": name},
        ca_profile="regional-ca",
        parent="cn-root-p256",
        region_code="440000",
    )
    publisher = context.verification.publisher
    publisher.current()
    assert _listed_status(context, name) == "granted"
    context.approvals = Approvals(context.db, parse_policy("operations:\n  ca.withdraw: 2\n", "test"))
    real = publisher._publish
    failures = {"left": 2}  # the withdrawal's own publish, then the scheduler's first round

    def flaky(*args: Any, **kwargs: Any) -> dict[str, Any]:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise ConnectionError("custody unreachable")
        return real(*args, **kwargs)

    monkeypatch.setattr(publisher, "_publish", flaky)

    asked = client.post(f"/v1/cas/{name}/withdraw", json={"reason": "caCompromise"}, headers=_officer(context))
    assert asked.status_code == 202, asked.text
    approval_id = asked.json()["approval"]["id"]
    done = client.post(f"/v1/approvals/{approval_id}/approve", headers=_officer(context))
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["approval"]["status"] == "executed"
    assert body["result"]["status"] == "withdrawn" and body["result"]["trust_list_published"] is False
    assert context.ca.ca_status(name) == "withdrawn"  # committed: CRL and OCSP already say so
    assert _listed_status(context, name) == "granted"  # the list does not yet
    with context.db.session() as session:
        types = list(session.scalars(select(Event.type).where(Event.subject == approval_id).order_by(Event.id)))
    assert types == ["approval.requested", "approval.approved", "approval.executed"]

    async def rounds() -> None:
        task = asyncio.create_task(_republish_trust_list(context, 0.01))
        for _ in range(1000):
            await asyncio.sleep(0.01)
            if _listed_status(context, name) == "withdrawn":
                break
        task.cancel()

    asyncio.run(rounds())
    assert failures["left"] == 0  # the scheduler's failed round was retried
    assert _listed_status(context, name) == "withdrawn"
