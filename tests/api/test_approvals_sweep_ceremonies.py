"""The approvals sweep and ceremony requests (issue 12), under the SM2 root moved offline: an approval whose
run opened a ceremony request is `executed` with that request as its result (a `ca.create` or
`ca.cross_certify` under an offline parent included, whose effect is no CA or certificate yet); a request
opened by someone else (another officer's rotation, another CA plan) is `effect_mismatch` naming its
`ceremony.requested` event, and its provisional key version stays enabled for the ceremony; a cancelled
request is nobody's result."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import pem
from sqlalchemy import select

from api.context import Context
from api.keys import rotate
from api.operations import REGISTRY, sweep
from ca.authority import CertificateAuthorityService
from ca.ceremony import CeremonyRequired, cancel_request
from ca.ceremony_home import CeremonyHome, move_offline
from ca.trust_list import SIGNER_KEY
from keys.custody import KeyAlgorithm
from keys.local import LocalKeystore
from policies.profiles import default_profiles
from store.db import Database
from store.models import Event
from tests.api.test_approvals_sweep import NOW, _ca_params, _row, _stuck

ROOT = "cn-root-sm2"
APPROVED = "token:officer-a"  # the requester_actor `_stuck` writes: the actor the approved run ran as


def _requested_event(context: Context, request_id: str) -> str:
    with context.db.session() as session:
        found = session.scalars(
            select(Event.id).where(Event.type == "ceremony.requested", Event.subject == request_id)
        ).first()
    return f"ceremony.requested#{found}"


@pytest.fixture(scope="module")
def offline(context: Context, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Two regional CAs made under the SM2 root while online, then the root moved to a ceremony home."""
    context.verification.publisher.current()  # the trust-list signer certified while the root is online
    names = {}
    for key in ("other", "cancelled"):
        name = f"cs-{secrets.token_hex(3)}-sm2"
        context.ca.create_ca(
            name,
            algorithm=KeyAlgorithm.SM2,
            subject={"country_name": "CN", "organization_name": "trustseal", "common_name": name},
            ca_profile="regional-ca",
            parent=ROOT,
            region_code="440000",
        )
        names[key] = name
    vault = CeremonyHome.open(
        tmp_path_factory.mktemp("ceremony") / "home", "ceremony-" + secrets.token_hex(6), create=True
    )
    move_offline(
        context.ca,
        getattr(context.custody, "inner", context.custody),
        ROOT,
        vault,
        "test",
        context.verification.publisher,
    )
    return names


def test_a_ca_create_that_opened_a_ceremony_is_executed_with_the_request(
    context: Context, offline: dict[str, str]
) -> None:
    del offline
    params = _ca_params(f"cs-{secrets.token_hex(3)}-sm2")
    approval_id = _stuck(context, "ca.create", params, NOW)
    answered = REGISTRY["ca.create"].run(context, params, APPROVED)  # the run; its end was lost
    assert answered["ceremony"]["operation"] == "ca.create"

    assert sweep(context, NOW)[approval_id] == "executed"
    assert _row(context, approval_id).result == answered


def test_a_ca_create_request_for_another_plan_is_not_the_approved_one(
    context: Context, offline: dict[str, str]
) -> None:
    del offline
    name = f"cs-{secrets.token_hex(3)}-sm2"
    approval_id = _stuck(context, "ca.create", {**_ca_params(name), "permitted_dns": ["gd.gov.cn"]}, NOW)
    with pytest.raises(CeremonyRequired) as opened:  # someone else's plan for that name: no name constraints
        context.ca.create_ca(
            name,
            algorithm=KeyAlgorithm.SM2,
            subject={"country_name": "CN", "organization_name": "trustseal", "common_name": name},
            ca_profile="regional-ca",
            parent=ROOT,
            region_code="440000",
            actor="cli:op",
        )

    assert sweep(context, NOW)[approval_id] == "failed"
    row = _row(context, approval_id)
    assert row.error is not None and row.error["code"] == "effect_mismatch"
    assert row.error["event"] == _requested_event(context, opened.value.request["id"])
    assert "permitted_dns" in row.error["detail"]


def test_another_officers_rollover_request_is_not_the_approved_rotation(
    context: Context, offline: dict[str, str]
) -> None:
    name = offline["other"]
    approval_id = _stuck(context, "key.rotate", {"key": name}, NOW)
    with pytest.raises(CeremonyRequired) as opened:
        rotate(context, {"key": name}, "token:officer-z")
    made = context.custody.versions(name)[-1]

    assert sweep(context, NOW)[approval_id] == "failed"
    row = _row(context, approval_id)
    assert row.error is not None and row.error["code"] == "effect_mismatch"
    assert row.error["event"] == _requested_event(context, opened.value.request["id"])
    assert next(v for v in context.custody.versions(name) if v.version == made.version).enabled  # its ceremony waits


def test_another_officers_signer_rotation_request_is_not_the_approved_rotation(
    context: Context, offline: dict[str, str]
) -> None:
    del offline
    approval_id = _stuck(context, "key.rotate", {"key": SIGNER_KEY}, NOW)
    with pytest.raises(CeremonyRequired) as opened:
        context.verification.publisher.rotate_signer("token:officer-z")
    made = context.custody.versions(SIGNER_KEY)[-1]

    assert sweep(context, NOW)[approval_id] == "failed"
    row = _row(context, approval_id)
    assert row.error is not None and row.error["code"] == "effect_mismatch"
    assert row.error["event"] == _requested_event(context, opened.value.request["id"])
    assert next(v for v in context.custody.versions(SIGNER_KEY) if v.version == made.version).enabled


def test_a_cancelled_request_is_nobodys_result(context: Context, offline: dict[str, str]) -> None:
    name = offline["cancelled"]
    approval_id = _stuck(context, "key.rotate", {"key": name}, NOW)
    answered: dict[str, Any] = REGISTRY["key.rotate"].run(context, {"key": name}, APPROVED)
    cancel_request(context.db, context.custody, answered["ceremony"]["id"], "token:officer-c", "changed our mind")

    assert sweep(context, NOW)[approval_id] == "failed"
    assert (_row(context, approval_id).error or {})["code"] == "interrupted"


def test_a_cross_certification_that_opened_a_ceremony_is_executed_with_the_request(
    context: Context, offline: dict[str, str], tmp_path: Path
) -> None:
    del offline
    db = Database(f"sqlite:///{tmp_path / 'foreign.db'}")
    db.migrate()
    foreign = CertificateAuthorityService(
        db, LocalKeystore(tmp_path / "keys", passphrase="x", scrypt_n=2**10), default_profiles(), "http://x.example"
    )
    subject = {"country_name": "CN", "organization_name": "Elsewhere", "common_name": "Elsewhere Root"}
    foreign.create_ca("x-root-sm2", algorithm=KeyAlgorithm.SM2, ca_profile="root-ca", subject=subject)
    certificate_pem = pem.armor("CERTIFICATE", foreign.ca_certificate("x-root-sm2").dump()).decode("ascii")
    db.dispose()
    params = {"ca": ROOT, "certificate_pem": certificate_pem}
    approval_id = _stuck(context, "ca.cross_certify", params, NOW)
    answered = REGISTRY["ca.cross_certify"].run(context, params, APPROVED)  # the root is offline: a request
    assert answered["ceremony"]["operation"] == "ca.cross_certify"

    assert sweep(context, NOW)[approval_id] == "executed"
    assert _row(context, approval_id).result == answered
