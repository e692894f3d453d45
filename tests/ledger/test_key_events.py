"""ledger/key_events.py on both custody backends (local keystore, OpenBao) and both databases: each key
change is one event, a change custody refuses is none, reconciliation records each unlogged version
exactly once even while other threads create and rotate keys, and the service records what it finds
at startup."""

from __future__ import annotations

import secrets
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.context import Context
from gm.sm3 import sm3
from keys.custody import KeyAlgorithm, KeyCustody, KeyExists, KeyNotFound
from keys.local import LocalKeystore
from keys.vault import VaultKeystore
from ledger.key_events import RecordedCustody, reconcile_key_events
from store.db import Database
from store.models import Event
from tests.conftest import Bao


@pytest.fixture(params=["local", pytest.param("vault", marks=pytest.mark.vault)])
def custody(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[KeyCustody]:
    if request.param == "local":
        yield LocalKeystore(tmp_path / "ks", passphrase="key events", scrypt_n=2**10)
    else:
        bao: Bao = request.getfixturevalue("openbao")
        yield VaultKeystore(hvac.Client(url=bao.addr, token=bao.token), prefix=f"ts-events/{secrets.token_hex(4)}")


def key_events(database: Database, name: str) -> list[Event]:
    with database.session() as session:
        return list(session.scalars(select(Event).where(Event.subject == name).order_by(Event.id)))


def test_each_change_is_one_event(database: Database, custody: KeyCustody) -> None:
    recording = RecordedCustody(custody, database).as_actor("officer:keys")
    name = f"k-{secrets.token_hex(4)}"
    v1 = recording.create(name, KeyAlgorithm.SM2)
    v2 = recording.rotate(name)
    recording.disable(name, 1)
    recording.disable(name, 1)  # already disabled: nothing changes, nothing is logged
    with pytest.raises(KeyExists):
        recording.create(name, KeyAlgorithm.P256)
    with pytest.raises(KeyNotFound):
        recording.rotate(f"missing-{secrets.token_hex(3)}")
    events = key_events(database, name)
    assert [(e.type, e.payload["version"], e.actor) for e in events] == [
        ("key.created", 1, "officer:keys"),
        ("key.rotated", 2, "officer:keys"),
        ("key.disabled", 1, "officer:keys"),
    ]
    assert events[0].payload["key_id"] == sm3(v1.public_key_der).hex()
    assert events[1].payload == {
        "key": name,
        "version": 2,
        "algorithm": "sm2",
        "key_id": sm3(v2.public_key_der).hex(),
        "previous_version": 1,
    }
    assert reconcile_key_events(database, recording) == []


def test_a_mac_key_event_names_no_key_id(database: Database, custody: KeyCustody) -> None:
    name = f"mac-{secrets.token_hex(4)}"
    RecordedCustody(custody, database).create(name, KeyAlgorithm.HMAC_SM3)
    [event] = key_events(database, name)
    assert event.payload == {"key": name, "version": 1, "algorithm": "hmac-sm3", "key_id": None}


def test_reconciliation_racing_with_key_changes_logs_each_version_once(database: Database, custody: KeyCustody) -> None:
    """Writers and reconcilers share one lock: a reconciler never sees a custody change whose event
    is about to commit, so no version is logged twice and none is missed."""
    recording = RecordedCustody(custody, database)
    prefix = f"race-{secrets.token_hex(3)}"
    behind = f"{prefix}-behind"
    custody.create(behind, KeyAlgorithm.SM2)  # made without the log
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            name = f"{prefix}-{n}"
            recording.create(name, KeyAlgorithm.SM2)
            recording.rotate(name)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def reconciler() -> None:
        try:
            for _ in range(3):
                reconcile_key_events(database, recording)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=reconciler) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    reconcile_key_events(database, recording)
    with database.session() as session:
        rows = session.scalars(select(Event).where(Event.subject.like(f"{prefix}-%"))).all()
    logged = Counter((e.subject, e.payload["version"]) for e in rows)
    expected = {(f"{prefix}-{n}", v) for n in range(4) for v in (1, 2)} | {(behind, 1)}
    assert set(logged) == expected
    assert all(times == 1 for times in logged.values()), logged
    assert [e.type for e in rows if e.subject == behind] == ["key.discovered"]


def test_the_service_reconciles_at_startup(context: Context) -> None:
    name = f"startup-{secrets.token_hex(4)}"
    context.custody.inner.create(name, KeyAlgorithm.P256)  # type: ignore[attr-defined]  # behind the log
    assert key_events(context.db, name) == []
    with TestClient(create_app(context)):
        pass
    [event] = key_events(context.db, name)
    assert event.type == "key.discovered" and event.payload["enabled"] is True
