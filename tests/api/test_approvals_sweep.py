"""The sweep of approvals a crash left `executing` (api/approvals.py `sweep`, api/operations.py effects, run
at the service's start and on its schedule by api/app.py): past the bound, an approval whose operation's
effect is visible becomes `executed` with the operation's result, one whose effect is not becomes `failed`
with code `interrupted` (a key version custody made but nobody certified is disabled), each with its
event; younger ones are left alone and nothing is re-run."""

from __future__ import annotations

import dataclasses
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from api.app import create_app
from api.context import Context
from api.keys import rotate
from api.operations import sweep
from ca.trust_list import SIGNER_KEY
from keys.custody import KeyAlgorithm
from store.models import Approval, CertificateAuthority, Event

BOUND = timedelta(minutes=15)
NOW = timedelta(0)  # completed just now (after the test's setup); swept with a bound of 0


def _stuck(context: Context, operation: str, params: dict[str, Any], ago: timedelta) -> str:
    """An approval as a crash leaves it: completed by a second officer `ago`, its run never finished."""
    now = datetime.now(UTC)
    approval_id = secrets.token_urlsafe(16)
    with context.db.session() as session:
        session.execute(
            insert(Approval).values(
                id=approval_id,
                operation=operation,
                subject=None,
                params=params,
                requester="officer-a",
                requester_actor="token:officer-a",
                required=2,
                approvals=["officer-a", "officer-b"],
                status="executing",
                version=2,
                created_at=now - ago - timedelta(minutes=1),
                expires_at=now + timedelta(hours=23),
                decided_at=now - ago,
                decided_by="officer-b",
            )
        )
    return approval_id


def _row(context: Context, approval_id: str) -> Approval:
    with context.db.session() as session:
        row = session.get(Approval, approval_id)
        assert row is not None
        session.expunge(row)
        return row


def _events(context: Context, approval_id: str) -> list[tuple[str, dict[str, Any]]]:
    with context.db.session() as session:
        rows = session.execute(select(Event.type, Event.payload).where(Event.subject == approval_id).order_by(Event.id))
        return [(t, p) for t, p in rows]


def _ca_params(name: str) -> dict[str, Any]:
    return {"name": name, "parent": "cn-root-sm2", "region": "440000", "algorithm": "sm2", "region_name": None,
            "organization": "trustseal", "common_name": f"{name} CA"}  # fmt: skip


def test_a_ca_created_before_the_crash_is_executed_one_not_created_failed(context: Context) -> None:
    made, lost = f"sw-{secrets.token_hex(3)}-sm2", f"sw-{secrets.token_hex(3)}-sm2"
    done_id = _stuck(context, "ca.create", _ca_params(made), timedelta(hours=1))
    lost_id = _stuck(context, "ca.create", _ca_params(lost), timedelta(hours=1))
    young_id = _stuck(context, "ca.create", _ca_params(lost), timedelta(minutes=1))  # may still be running
    context.ca.create_ca(  # what the interrupted run did before the process died
        made,
        algorithm=KeyAlgorithm.SM2,
        subject={"country_name": "CN", "organization_name": "trustseal", "common_name": f"{made} CA"},
        ca_profile="regional-ca",
        parent="cn-root-sm2",
        region_code="440000",
    )

    resolved = sweep(context, BOUND)
    assert resolved[done_id] == "executed" and resolved[lost_id] == "failed" and young_id not in resolved

    done = _row(context, done_id)
    assert done.status == "executed" and done.result is not None
    assert done.result["name"] == made and done.result["status"] == "active"
    assert done.result["certificate_pem"].startswith("-----BEGIN CERTIFICATE-----")
    (kind, payload), = _events(context, done_id)  # fmt: skip
    assert kind == "approval.executed" and payload["swept"] is True and "result_sm3" in payload

    failed = _row(context, lost_id)
    assert failed.status == "failed" and failed.error is not None and failed.error["code"] == "interrupted"
    (kind, payload), = _events(context, lost_id)  # fmt: skip
    assert kind == "approval.failed" and payload["code"] == "interrupted" and payload["swept"] is True
    with context.db.session() as session:
        assert session.get(CertificateAuthority, lost) is None  # nothing re-run

    assert _row(context, young_id).status == "executing" and _events(context, young_id) == []
    assert done_id not in sweep(context, NOW) and lost_id not in sweep(context, NOW)  # final: never swept again


def test_a_rotation_interrupted_after_custody_leaves_no_enabled_uncertified_version(context: Context) -> None:
    context.verification.publisher.current()  # the trust-list signer, certified
    before = context.custody.get(SIGNER_KEY)
    approval_id = _stuck(context, "key.rotate", {"key": SIGNER_KEY}, NOW)
    made = context.custody.rotate(SIGNER_KEY)  # the run died before certifying it
    assert context.custody.get(SIGNER_KEY).version == made.version

    assert approval_id not in sweep(context, BOUND)  # not yet past the bound: it may still be running
    assert sweep(context, NOW)[approval_id] == "failed"
    assert _row(context, approval_id).error == {"code": "interrupted", "detail": "the service stopped mid-run"}
    assert not next(v for v in context.custody.versions(SIGNER_KEY) if v.version == made.version).enabled
    assert context.custody.get(SIGNER_KEY).version == before.version  # what `name` resolves to is certified


def test_a_rotation_that_finished_before_the_crash_is_executed_with_its_result(context: Context) -> None:
    context.verification.publisher.current()
    approval_id = _stuck(context, "key.rotate", {"key": SIGNER_KEY}, NOW)
    result = rotate(context, {"key": SIGNER_KEY}, "token:officer-a")  # ran; the approval's end was lost

    assert sweep(context, NOW)[approval_id] == "executed"
    assert _row(context, approval_id).result == result


def test_the_service_sweeps_at_start(context: Context) -> None:
    approval_id = _stuck(context, "ca.create", _ca_params(f"sw-{secrets.token_hex(3)}-sm2"), timedelta(hours=2))
    settings = dataclasses.replace(context.settings, ledger_integrate_seconds=0, crl_refresh_seconds=0)
    original = context.settings
    context.settings = settings
    try:
        with TestClient(create_app(context), raise_server_exceptions=False):
            assert _row(context, approval_id).status == "failed"
    finally:
        context.settings = original


def test_a_version_newer_than_the_bound_is_someone_elses_work_and_left_enabled(context: Context) -> None:
    context.verification.publisher.current()
    approval_id = _stuck(context, "key.rotate", {"key": SIGNER_KEY}, NOW)
    time.sleep(1.2)
    fresh = context.custody.rotate(SIGNER_KEY)  # made within the bound: a rotation under way, not the crashed run's
    try:
        assert sweep(context, timedelta(seconds=1))[approval_id] == "failed"
        assert next(v for v in context.custody.versions(SIGNER_KEY) if v.version == fresh.version).enabled
    finally:
        getattr(context.custody, "inner", context.custody).disable(SIGNER_KEY, fresh.version)


def test_a_run_that_ends_after_the_sweep_is_recorded_not_overwritten(context: Context) -> None:
    approval_id = _stuck(context, "ca.create", _ca_params(f"sw-{secrets.token_hex(3)}-sm2"), NOW)
    assert sweep(context, NOW)[approval_id] == "failed"
    context.approvals._finish(approval_id, "executed", names=["officer-a", "officer-b"], result={"name": "late"})
    row = _row(context, approval_id)
    assert row.status == "failed" and row.result is None
    kinds = [kind for kind, _ in _events(context, approval_id)]
    assert kinds == ["approval.failed", "approval.late_outcome"]
    assert _events(context, approval_id)[-1][1]["outcome"] == "executed"


def test_the_other_operations_effects_are_recognised(context: Context) -> None:
    """A withdrawal, a seal made (id drawn by the run), a seal revoked and an officer token stored before
    the crash: each approval becomes `executed` with the result its direct path gives."""
    from api.auth import add_token_hash, new_token
    from ca.withdrawal import withdraw_ca
    from seal.service import SealRequest

    ca = f"sw-{secrets.token_hex(3)}-p256"
    context.ca.create_ca(
        ca,
        algorithm=KeyAlgorithm.P256,
        subject={"country_name": "CN", "organization_name": "trustseal", "common_name": ca},
        ca_profile="regional-ca",
        parent="cn-root-p256",
        region_code="440000",
    )
    seal_name = f"Sweep {secrets.token_hex(2)}"
    seal_params = {"name": seal_name, "organisation_name": "Sweep Bureau", "organisation_uscc": "91350100M000100Y43",
                   "ca": "cn-370000-sm2", "seal_type": "official", "purpose": "", "shape": "round", "code": "",
                   "valid_days": 365, "allowed_callers": [], "id": None}  # fmt: skip
    revoked_seal = context.seals.create(
        SealRequest("Sweep Revoked", "Sweep Bureau", "91350100M000100Y43", "cn-370000-sm2")
    )
    _, token_hash = new_token()
    name = f"officer-{secrets.token_hex(3)}"
    token_params = {"role": "officer", "name": name, "seal_ids": [], "token_sha256": token_hash}
    stuck = {
        "withdraw": _stuck(context, "ca.withdraw", {"ca": ca, "reason": "caCompromise", "invalidity_date": None}, NOW),
        "seal": _stuck(context, "seal.create", seal_params, NOW),
        "revoke": _stuck(context, "seal.revoke", {"seal_id": revoked_seal.id, "reason": "lost"}, NOW),
        "token": _stuck(context, "token.create.officer", token_params, NOW),
    }
    # what each interrupted run did before the process died
    withdrawal = withdraw_ca(context.ca, ca, reason="caCompromise", publisher=context.verification.publisher)
    made = context.seals.create(SealRequest(seal_name, "Sweep Bureau", "91350100M000100Y43", "cn-370000-sm2"))
    context.seals.transition(revoked_seal.id, "revoked", "lost")
    add_token_hash(context.db, "officer", name, [], token_hash)

    resolved = sweep(context, NOW)
    assert all(resolved[approval_id] == "executed" for approval_id in stuck.values()), resolved
    assert _row(context, stuck["withdraw"]).result == withdrawal.as_json()
    assert _row(context, stuck["seal"]).result["id"] == made.id  # type: ignore[index]
    assert _row(context, stuck["revoke"]).result["status"] == "revoked"  # type: ignore[index]
    assert _row(context, stuck["token"]).result["name"] == name  # type: ignore[index]
