"""The approvals sweep (api/operations.py effects) takes a stuck approval as `executed` only when the visible
effect is the one its params asked for: a withdrawal by someone else with another reason or invalidity
date, or a CA of that name made by someone else without the approved name constraints, is somebody
else's work → `failed`, code `effect_mismatch`, naming the event that did it; nothing is re-run."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from api.context import Context
from api.operations import sweep
from ca.withdrawal import withdraw_ca
from keys.custody import KeyAlgorithm
from store.models import Certificate, CertificateAuthority, Event
from tests.api.test_approvals_sweep import NOW, _events, _row, _stuck


def _ca(context: Context, **extra: Any) -> str:
    name = f"mm-{secrets.token_hex(3)}-p256"
    context.ca.create_ca(
        name,
        algorithm=KeyAlgorithm.P256,
        subject={"country_name": "CN", "organization_name": "trustseal", "common_name": name},
        ca_profile="regional-ca",
        parent="cn-root-p256",
        region_code="440000",
        **extra,
    )
    return name


def _event_id(context: Context, kind: str, subject: str) -> int:
    with context.db.session() as session:
        found = session.scalars(
            select(Event.id).where(Event.type == kind, Event.subject == subject).order_by(Event.id.desc())
        ).first()
    assert found is not None
    return int(found)


def _assert_mismatch(context: Context, approval_id: str, event: str) -> None:
    row = _row(context, approval_id)
    assert row.status == "failed" and row.result is None and row.error is not None
    assert row.error["code"] == "effect_mismatch" and row.error["event"] == event, row.error
    (kind, payload), = _events(context, approval_id)  # fmt: skip
    assert kind == "approval.failed" and payload["code"] == "effect_mismatch" and payload["event"] == event


def test_a_break_glass_withdrawal_with_another_reason_is_not_the_approved_one(context: Context) -> None:
    ca = _ca(context)
    moment = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)
    params = {"ca": ca, "reason": "caCompromise", "invalidity_date": moment.isoformat()}
    approval_id = _stuck(context, "ca.withdraw", params, NOW)
    # the approved run died before doing anything; an operator withdraws by break-glass, no reason or date
    withdraw_ca(context.ca, ca, reason=None, invalidity_date=None, actor="cli:op")

    assert sweep(context, NOW)[approval_id] == "failed"
    _assert_mismatch(context, approval_id, f"ca.withdrawn#{_event_id(context, 'ca.withdrawn', ca)}")
    row = _row(context, approval_id)
    assert row.error is not None and "cli:op" in row.error["detail"] and "ca_compromise" in row.error["detail"]
    with context.db.session() as session:  # nothing re-run: the certificate stays as the break-glass left it
        ca_row = session.get(CertificateAuthority, ca)
        assert ca_row is not None
        cert = session.get(Certificate, ca_row.certificate_serial)
        assert cert is not None and cert.revocation_reason == "unspecified" and cert.invalidity_date is None


def test_a_withdrawal_with_the_approved_reason_but_no_invalidity_date_is_not_the_approved_one(
    context: Context,
) -> None:
    ca = _ca(context)
    moment = (datetime.now(UTC) - timedelta(days=1)).replace(microsecond=0)
    approval_id = _stuck(
        context, "ca.withdraw", {"ca": ca, "reason": "caCompromise", "invalidity_date": moment.isoformat()}, NOW
    )
    withdraw_ca(context.ca, ca, reason="caCompromise", invalidity_date=None, actor="cli:op")

    assert sweep(context, NOW)[approval_id] == "failed"
    _assert_mismatch(context, approval_id, f"ca.withdrawn#{_event_id(context, 'ca.withdrawn', ca)}")


def test_the_approved_withdrawal_with_its_invalidity_date_is_executed(context: Context) -> None:
    ca = _ca(context)
    moment = (datetime.now(UTC) - timedelta(days=2)).replace(microsecond=0)
    approval_id = _stuck(
        context, "ca.withdraw", {"ca": ca, "reason": "keyCompromise", "invalidity_date": moment.isoformat()}, NOW
    )
    done = withdraw_ca(
        context.ca, ca, reason="keyCompromise", invalidity_date=moment, actor="token:officer-a",
        publisher=context.verification.publisher,
    )  # fmt: skip

    assert sweep(context, NOW)[approval_id] == "executed"
    assert _row(context, approval_id).result == done.as_json()


def _create_params(name: str, permitted: list[str]) -> dict[str, Any]:
    return {"name": name, "parent": "cn-root-p256", "region": "440000", "algorithm": "p256", "region_name": None,
            "organization": "trustseal", "common_name": name, "permitted_dns": permitted}  # fmt: skip


def test_a_ca_of_that_name_made_without_the_approved_name_constraints_is_not_the_approved_one(
    context: Context,
) -> None:
    name = f"mm-{secrets.token_hex(3)}-p256"
    approval_id = _stuck(context, "ca.create", _create_params(name, ["gd.gov.cn"]), NOW)
    context.ca.create_ca(  # someone else's CA of that name, unconstrained
        name,
        algorithm=KeyAlgorithm.P256,
        subject={"country_name": "CN", "organization_name": "trustseal", "common_name": name},
        ca_profile="regional-ca",
        parent="cn-root-p256",
        region_code="440000",
        actor="cli:op",
    )

    assert sweep(context, NOW)[approval_id] == "failed"
    _assert_mismatch(context, approval_id, f"ca.created#{_event_id(context, 'ca.created', name)}")
    assert "permitted_dns" in (_row(context, approval_id).error or {})["detail"]


def test_a_ca_of_that_name_in_another_region_is_not_the_approved_one(context: Context) -> None:
    name = f"mm-{secrets.token_hex(3)}-p256"
    approval_id = _stuck(context, "ca.create", {**_create_params(name, []), "region": "350000"}, NOW)
    _ca_named = context.ca.create_ca(
        name,
        algorithm=KeyAlgorithm.P256,
        subject={"country_name": "CN", "organization_name": "trustseal", "common_name": name},
        ca_profile="regional-ca",
        parent="cn-root-p256",
        region_code="440000",
    )
    del _ca_named

    assert sweep(context, NOW)[approval_id] == "failed"
    assert "region" in (_row(context, approval_id).error or {})["detail"]


def test_the_approved_ca_with_its_name_constraints_is_executed(context: Context) -> None:
    name = f"mm-{secrets.token_hex(3)}-p256"
    approval_id = _stuck(context, "ca.create", _create_params(name, ["gd.gov.cn", "sz.gov.cn"]), NOW)
    _ca_row = context.ca.create_ca(
        name,
        algorithm=KeyAlgorithm.P256,
        subject={"country_name": "CN", "organization_name": "trustseal", "common_name": name},
        ca_profile="regional-ca",
        parent="cn-root-p256",
        region_code="440000",
        permitted_dns=("sz.gov.cn", "gd.gov.cn"),
    )
    del _ca_row

    assert sweep(context, NOW)[approval_id] == "executed"
    result = _row(context, approval_id).result
    assert result is not None and result["name"] == name and result["permitted_dns"] == ["gd.gov.cn", "sz.gov.cn"]
