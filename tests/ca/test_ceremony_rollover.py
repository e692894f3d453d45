"""A CA rollover under the offline SM2 root, at the CA level (ca/rollover.py, ca/ceremony_import.py): the
request holds exactly the new certificate's TBS for the new key version, which stays enabled while pending
and is the only thing custody made; one pending rollover per CA; a completion refused (the CA withdrawn
meanwhile) changes nothing and leaves the request pending; the cancel hook (`ceremony_import.abandon`)
disables the provisional version. The HTTP flow with documents and AIA chasing:
tests/api/test_ceremony_rollover_api.py. Scenario steps are module fixtures (any order, any worker)."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import pytest
from asn1crypto import x509

from api.context import Context
from ca import ceremony, ceremony_import
from ca.ceremony_home import CeremonyHome, move_offline
from ca.errors import CAWithdrawn
from ca.rollover import OfflineCARollover, roll_over
from ca.withdrawal import withdraw_ca
from store.models import CeremonyRequest, CertificateAuthority
from tests.fixtures import table_snapshot

ROOT = "cn-root-sm2"
COMPLETED = "cn-370000-sm2"
WITHDRAWN = "cn-530000-sm2"


@pytest.fixture(scope="module")
def home(context: Context, tmp_path_factory: pytest.TempPathFactory) -> CeremonyHome:
    vault = CeremonyHome.open(
        tmp_path_factory.mktemp("ceremony") / "home", "ceremony-" + secrets.token_hex(6), create=True
    )
    raw = getattr(context.custody, "inner", context.custody)
    move_offline(context.ca, raw, ROOT, vault, "test", context.verification.publisher)
    return vault


def _rollover(context: Context, name: str) -> dict[str, Any]:
    with pytest.raises(ceremony.CeremonyRequired) as waiting:
        roll_over(context.ca, name, "test-officer")
    return ceremony.get_request(context.db, waiting.value.request["id"], with_tbs=True)


@pytest.fixture(scope="module")
def requested(context: Context, home: CeremonyHome) -> dict[str, Any]:
    """cn-370000-sm2's rollover asked for, a second attempt, and what custody and the row looked like."""
    del home
    steps: dict[str, Any] = {"before": [(v.version, v.enabled) for v in context.custody.versions(COMPLETED)]}
    steps["row_key"] = context.ca.snapshot().get(COMPLETED).key_ref
    steps["request"] = _rollover(context, COMPLETED)
    steps["after"] = context.custody.versions(COMPLETED)
    steps["tables"] = table_snapshot(context.db)
    try:
        roll_over(context.ca, COMPLETED, "test-officer")
    except ceremony.CeremonyPending as refused:
        steps["second"] = refused
    steps["tables_second"] = table_snapshot(context.db)
    steps["after_second"] = len(context.custody.versions(COMPLETED))
    steps["row_key_pending"] = context.ca.snapshot().get(COMPLETED).key_ref
    return steps


def test_the_request_is_the_new_certificate_for_the_new_key_version(
    context: Context, requested: dict[str, Any]
) -> None:
    request = requested["request"]
    assert (request["operation"], request["subject"], request["ca"], request["kind"]) == (
        "ca.rollover",
        COMPLETED,
        ROOT,
        "certificate",
    )
    tbs = x509.TbsCertificate.load(base64.b64decode(request["tbs"]))
    new_version = requested["after"][-1]
    assert [(v.version, v.enabled) for v in requested["after"][:-1]] == requested["before"]
    assert new_version.enabled and new_version.version == max(v for v, _ in requested["before"]) + 1
    assert tbs["subject_public_key_info"].dump() == new_version.public_key_der
    old = context.ca.ca_certificate(ROOT)
    assert (
        tbs["issuer"] == old.subject
        and tbs["subject"] == x509.Certificate.load(context.ca.key_certificate(COMPLETED, "")).subject
    )
    # the row still names the old key while pending: issuance goes on under it
    assert requested["row_key_pending"] == requested["row_key"]


def test_a_second_rollover_while_pending_is_refused_before_any_key_is_made(requested: dict[str, Any]) -> None:
    refused = requested["second"]
    assert (refused.code, refused.status) == ("ceremony_pending", 409)
    assert requested["tables_second"] == requested["tables"]
    assert requested["after_second"] == len(requested["after"])


@pytest.fixture(scope="module")
def completed(context: Context, home: CeremonyHome, requested: dict[str, Any]) -> dict[str, Any]:
    done = ceremony_import.import_output(
        context.ca, home.sign(requested["request"]), "test-officer", publisher=context.verification.publisher
    )
    return {"done": done, "entry": context.ca.snapshot().get(COMPLETED)}


def test_the_import_switches_the_ca_to_the_new_key(
    context: Context, requested: dict[str, Any], completed: dict[str, Any]
) -> None:
    done, entry = completed["done"], completed["entry"]
    assert done["status"] == "completed"
    new_version = requested["after"][-1]
    assert entry.key_ref == new_version.ref == done["result"]["key"]
    assert entry.certificate.public_key.dump() == new_version.public_key_der
    assert entry.crl_scope == f"k{new_version.version}" == done["result"]["crl_scope"]
    assert [g.current for g in entry.generations][:2] == [True, False]
    assert entry.generations[1].key_ref == requested["row_key"]
    assert context.custody.get(new_version.ref).enabled


@pytest.fixture(scope="module")
def withdrawn_meanwhile(context: Context, home: CeremonyHome) -> dict[str, Any]:
    """cn-530000-sm2's rollover asked for, then the CA withdrawn before the ceremony's output came back:
    the import is refused; then the request cancelled (its provisional key version disabled)."""
    request = _rollover(context, WITHDRAWN)
    withdraw_ca(context.ca, WITHDRAWN, reason="cessationOfOperation", publisher=context.verification.publisher)
    steps: dict[str, Any] = {"request": request}
    tables = table_snapshot(context.db)
    try:
        ceremony_import.import_output(context.ca, home.sign(request), "test-officer")
    except CAWithdrawn as refused:
        steps["refused"] = refused
    steps["unchanged"] = table_snapshot(context.db) == tables
    steps["status"] = ceremony.get_request(context.db, request["id"])["status"]
    key_ref = request["key"]
    new_ref = str(_params(context, request["id"])["key_ref"])
    steps["enabled_pending"] = context.custody.get(new_ref).enabled
    cancelled = ceremony.cancel_request(context.db, context.custody, request["id"], "test-officer", "withdrawn")
    steps["cancelled"] = cancelled["status"]
    steps["enabled_after"] = context.custody.get(new_ref).enabled
    steps["signer_key"] = key_ref
    with context.db.session() as session:
        row_ca = session.get(CertificateAuthority, WITHDRAWN)
        assert row_ca is not None
        steps["row_key"] = row_ca.key_ref
    steps["new_ref"] = new_ref
    return steps


def _params(context: Context, request_id: str) -> dict[str, Any]:
    with context.db.session() as session:
        row = session.get(CeremonyRequest, request_id)
        assert row is not None
        return dict(row.params)


def test_a_refused_completion_changes_nothing_and_the_cancel_hook_disables_the_key(
    withdrawn_meanwhile: dict[str, Any],
) -> None:
    steps = withdrawn_meanwhile
    assert steps["refused"].code == "ca_withdrawn" and steps["unchanged"] and steps["status"] == "pending"
    assert steps["enabled_pending"] and steps["cancelled"] == "cancelled" and not steps["enabled_after"]
    assert steps["row_key"] != steps["new_ref"]  # the CA never switched to it
    assert steps["signer_key"].startswith(ROOT)  # the key that was to sign: the root's


def test_the_offline_root_itself_is_refused(context: Context, home: CeremonyHome) -> None:
    del home
    tables = table_snapshot(context.db)
    with pytest.raises(OfflineCARollover) as refused:
        roll_over(context.ca, ROOT)
    assert (refused.value.code, refused.value.status) == ("ca_offline_rollover", 409)
    assert table_snapshot(context.db) == tables


def test_the_abandon_hook_ignores_operations_with_nothing_to_undo(context: Context) -> None:
    tables = table_snapshot(context.db)
    ceremony_import.abandon(context.ca, "crl", {"number": 1})
    assert table_snapshot(context.db) == tables
