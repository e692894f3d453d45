"""A ledger key rotation and its handover, as the service does it and as an auditor follows it.

`rotate_ledger_key` makes `ledger.sm2@2`, certified by cn-100000-sm2 with a `key.rotated` event; for the
handover window every checkpoint carries both keys in `signatures` (new first), each signature checked
here by OpenSSL alone against its own certificate; an auditor trusting only the old key (pin or state)
follows the handover and then trusts the new key; after the window only the new key signs, the old
version can be disabled in custody, and an auditor who only knows the old key is refused. Receipts made
before the rotation keep verifying with the old certificate."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from api.cli import app
from api.context import Context
from ca.ledger_key import LEDGER_KEY, LedgerKey, rotate_ledger_key
from ledger import receipt
from ledger.errors import CheckpointError
from ledger.events import record_event
from store.models import Event
from tests.ledger.test_checkpoint import openssl_verifies

runner = CliRunner()


def _verify(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["ledger", "verify", "--json", *args], env={"TRUSTSEAL_HOME": str(tmp_path)})
    return result.exit_code, json.loads(result.stdout)


def _activity(context: Context, tag: str) -> int:
    with context.db.session() as session:
        event_id = record_event(session, "test.handover", actor="test", subject=tag, payload={})
    return event_id


def _served(url: str, until: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 8.0  # a process re-reads the key within 5 s; the integrator then re-signs
    while True:
        body: dict[str, Any] = httpx.get(f"{url}/v1/ledger/checkpoint").json()
        if until(body):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.02)


def _key_ids(checkpoint: dict[str, Any]) -> list[str]:
    return [entry["key_id"] for entry in checkpoint["signatures"]]


@pytest.mark.openssl
def test_rotation_handover_and_after(live_url: str, context: Context, tmp_path: Path) -> None:
    old_cert = httpx.get(f"{live_url}/v1/ledger/key").content
    old = context.ledger_key()
    old_id = old.key_id
    follower = str(tmp_path / "follower.json")  # an auditor who keeps state through the handover
    code, body = _verify(tmp_path, "--url", live_url, "--pin", old_id, "--state", follower)
    assert code == 0, body

    before = context.ledger.wait_for(_activity(context, "before"))
    old_receipt = context.ledger.receipt(before)

    rotation = rotate_ledger_key(context.ledger_key, actor="officer:test")
    was = old.handle.version.version  # (the keystore is shared by the module's SQLite and PostgreSQL runs)
    assert (rotation.key, rotation.previous_version) == (LEDGER_KEY, was) and rotation.version > was
    new_id = rotation.key_id
    assert new_id != old_id and str(rotation.as_json()["certificate_pem"]).startswith("-----BEGIN CERTIFICATE-----")
    with context.db.session() as session:
        rotated = session.scalars(select(Event).where(Event.type == "ledger.handover_started")).one()
        custody_event = session.scalars(
            select(Event).where(Event.type == "key.rotated", Event.subject == LEDGER_KEY).order_by(Event.id.desc())
        ).first()
        issued = session.get(Event, rotation.event_id)
    assert custody_event is not None and custody_event.actor == "officer:test"
    assert custody_event.payload["version"] == rotation.version
    assert rotated.subject == LEDGER_KEY and rotated.actor == "officer:test"
    assert rotated.payload == {
        "key": LEDGER_KEY,
        "version": rotation.version,
        "previous_version": was,
        "key_id": new_id,
    }
    assert issued is not None and issued.type == "certificate.issued" and rotated.id == issued.id + 1

    # The handover: both keys sign, the new one first; each signature verified by OpenSSL with its certificate.
    size = context.ledger.size()
    handover = _served(live_url, lambda c: c["size"] >= size and _key_ids(c) == [new_id, old_id])
    assert handover["key_id"] == new_id
    new_cert = httpx.get(f"{live_url}/v1/ledger/key").content
    assert httpx.get(f"{live_url}/v1/ledger/key", params={"key_id": old_id}).content == old_cert
    assert httpx.get(f"{live_url}/v1/ledger/key", params={"key_id": new_id}).content == new_cert != old_cert
    note = handover["note"].encode()
    for entry, cert in zip(handover["signatures"], (new_cert, old_cert), strict=True):
        signature = base64.b64decode(entry["signature"])
        assert openssl_verifies(tmp_path, cert, note, signature, certin=True)
        assert not openssl_verifies(tmp_path, cert, note + b" ", signature, certin=True)
    assert not openssl_verifies(tmp_path, old_cert, note, base64.b64decode(handover["signatures"][0]["signature"]),
                                certin=True)  # fmt: skip

    code, body = _verify(tmp_path, "--url", live_url, "--state", follower)  # trusting only the old key
    assert code == 0, body
    assert body["new_trusted_keys"] == [new_id] and sorted(body["trusted_key_ids"]) == sorted([old_id, new_id])
    code, body = _verify(tmp_path, "--url", live_url, "--pin", old_id, "--state", str(tmp_path / "late.json"))
    assert code == 0 and body["new_trusted_keys"] == [new_id]  # a first-time auditor with the old pin, in the window

    # After the window only the new key signs; the old version is then never needed (disabled here).
    context.ledger_key.handover = timedelta(0)
    context.ledger_key.refresh()
    context.custody.disable(LEDGER_KEY, was)
    after_event = _activity(context, "after")
    after = context.ledger.wait_for(after_event)
    alone = _served(live_url, lambda c: c["size"] > after.index and _key_ids(c) == [new_id])
    assert alone["key_id"] == new_id
    code, body = _verify(tmp_path, "--url", live_url, "--state", follower)
    assert code == 0 and body["new_trusted_keys"] == [], body
    code, body = _verify(tmp_path, "--url", live_url, "--pin", old_id, "--state", str(tmp_path / "stale.json"))
    assert code == 1 and body["code"] == "untrusted_key", body
    assert not (tmp_path / "stale.json").exists()

    # Receipts: the one made before the rotation verifies with the old certificate only; new ones with the new.
    origin = context.ledger.origin
    receipt.verify_receipt(old_receipt, origin, before.index, before.leaf_hash, old_cert)
    with pytest.raises(CheckpointError):
        receipt.verify_receipt(old_receipt, origin, before.index, before.leaf_hash, new_cert)
    receipt.verify_receipt(context.ledger.receipt(after), origin, after.index, after.leaf_hash, new_cert)
    message = receipt.receipt_message(origin, before.index, before.leaf_hash)
    assert openssl_verifies(tmp_path, old_cert, message, old_receipt, certin=True)

    unknown = httpx.get(f"{live_url}/v1/ledger/key", params={"key_id": "0" * 64})
    assert unknown.status_code == 404 and unknown.json()["code"] == "ledger_key_unknown"
    assert httpx.get(f"{live_url}/v1/ledger/key", params={"key_id": "XYZ"}).status_code == 400


def test_another_process_switches_only_to_a_certified_version(context: Context) -> None:
    """A process that did not rotate sees the new key at its next re-read — but only once the new version
    is certified: a rotation that stopped between custody and the CA leaves the certified key signing."""
    elsewhere = LedgerKey(context.custody, context.ca, refresh_seconds=0)
    current = elsewhere()
    orphan = context.custody.rotate(LEDGER_KEY)  # custody rotated, no certificate (a crash before the CA)
    assert elsewhere().handle.version.version == current.handle.version.version != orphan.version
    assert elsewhere.certificate_for(current.key_id) == current.certificate_der
