"""POST /v1/witness/add-checkpoint over HTTP: public, a cosignature OpenSSL verifies with the key GET
/v1/ledger/key serves, each refusal a problem+json with its status and code (409 with `size`, 422 with
the alarm's event id, which officers find through GET /v1/events?type=witness.alarm), a body that is
not JSON, too large or too deep refused before any work, the rate limit, and witness.yaml errors
stopping the start with a message that names the file and the entry."""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.context import Context
from api.problems import PROBLEM_JSON
from api.ratelimit import RateLimiter
from api.settings import Settings
from ca.authority import CertificateAuthorityService
from keys.custody import KeyAlgorithm, SigningHandle
from keys.local import LocalKeystore
from ledger.service import origin_of
from ledger.witness_config import WitnessConfigError, load_witness_endpoints, load_witnessed_logs
from store.models import Event
from tests.fixtures import PUBLIC_URL, pem
from tests.ledger.test_checkpoint import certificate, openssl_verifies
from tests.ledger.witnessing import SignedLog

REMOTE = "shandong.example/ledger"
URL = "/v1/witness/add-checkpoint"


@pytest.fixture(scope="module")
def log_key(keystore: LocalKeystore) -> SigningHandle:
    keystore.create("remote-log", KeyAlgorithm.SM2)
    return keystore.signer("remote-log")


@pytest.fixture(scope="module")
def context(
    ca_service: CertificateAuthorityService,
    keystore: LocalKeystore,
    tmp_path_factory: pytest.TempPathFactory,
    log_key: SigningHandle,
) -> Context:
    """This instance witnessing one remote log (its key pinned by a certificate in witness.yaml)."""
    home = tmp_path_factory.mktemp("home")
    logs = [{"origin": REMOTE, "certificate": pem(certificate(log_key)).decode()}]
    (home / "witness.yaml").write_text(yaml.safe_dump({"logs": logs}))
    settings = Settings(
        home=home,
        database_url=ca_service.db.url,
        public_url=PUBLIC_URL,
        keystore="local",
        passphrase="test-passphrase",
        max_upload_bytes=1024 * 1024,
    )
    return Context(settings=settings, db=ca_service.db, custody=keystore, ca=ca_service)


@pytest.fixture(scope="module")
def client(context: Context) -> Iterator[TestClient]:
    with TestClient(create_app(context), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def remote(log_key: SigningHandle, context: Context) -> SignedLog:
    """The remote log at size 6, first seen and cosigned (the module shares one witness head)."""
    log = SignedLog(log_key, REMOTE, 0)
    head = context.witness.head(REMOTE)
    log.grow(head.size if head else 0)
    if head is not None and head.root_hash != log.tree.root(head.size):
        pytest.fail("the witness head is not this log's")
    old = log.size
    log.grow(6)
    context.witness.add_checkpoint(log.submission(old))
    return log


def _state(context: Context) -> tuple[object, int]:
    with context.db.session() as session:
        events = session.execute(select(func.count()).select_from(Event)).scalar_one()
    return context.witness.head(REMOTE), events


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, Any] = response.json()
    assert body["code"] == code and body["status"] == status
    return body


@pytest.mark.openssl
def test_cosignature_over_http_verified_by_openssl(
    client: TestClient, remote: SignedLog, tmp_path: Path, context: Context
) -> None:
    old = remote.size
    remote.grow(3)
    body = remote.submission(old)
    response = client.post(URL, json=body)  # no token: a witness is public
    assert response.status_code == 200, response.text
    cosignature = response.json()["cosignature"]
    assert set(cosignature) == {"witness", "key_id", "time", "signature"}
    assert cosignature["witness"] == origin_of(PUBLIC_URL) == context.ledger.origin
    assert cosignature["key_id"] == client.get("/v1/ledger/checkpoint").json()["key_id"]  # its ledger key
    message = f"cosignature/v1\ntime {cosignature['time']}\n{body['checkpoint']['note']}".encode()
    key_pem = client.get("/v1/ledger/key").content
    signature = base64.b64decode(cosignature["signature"])
    assert openssl_verifies(tmp_path, key_pem, message, signature, certin=True)
    assert not openssl_verifies(tmp_path, key_pem, message.replace(b"time ", b"time 1"), signature, certin=True)
    assert context.witness.head(REMOTE).size == remote.size  # type: ignore[union-attr]


def test_refusals_are_problems_and_the_alarm_reaches_officers(
    client: TestClient, remote: SignedLog, context: Context, officer: dict[str, str]
) -> None:
    stored = remote.size
    remote.grow(2)
    before = _state(context)
    stale = _problem(client.post(URL, json=remote.submission(stored - 1)), 409, "witness_old_size_mismatch")
    assert stale["size"] == stored
    foreign = SignedLog(remote.handle, "elsewhere.example/ledger", 2)
    _problem(client.post(URL, json=foreign.submission(0)), 404, "witness_origin_unknown")
    forged = remote.submission(stored)
    forged["checkpoint"]["signature"] = forged["checkpoint"]["signatures"][0]["signature"] = base64.b64encode(
        bytes(72)
    ).decode()
    _problem(client.post(URL, json=forged), 403, "witness_log_signature_invalid")
    _problem(client.post(URL, json={**remote.submission(stored), "old_size": 2**64}), 400, "witness_old_size_invalid")
    assert _state(context) == before

    rewritten = remote.fork(1)
    submitted = rewritten.submission(stored)
    refused = _problem(client.post(URL, json=submitted), 422, "witness_inconsistent")
    assert refused["kind"] == "proof_failed" and isinstance(refused["alarm_event"], int)
    head, events = _state(context)
    assert head == before[0] and events == before[1] + 1

    assert client.get("/v1/events", params={"type": "witness.alarm"}).status_code == 401
    found = client.get("/v1/events", params={"type": "witness.alarm", "subject": REMOTE}, headers=officer)
    assert found.status_code == 200, found.text
    [alarm] = [event for event in found.json()["events"] if event["id"] == refused["alarm_event"]]
    assert alarm["type"] == "witness.alarm" and alarm["actor"] == "witness" and alarm["subject"] == REMOTE
    assert alarm["payload"]["submitted"]["note"] == submitted["checkpoint"]["note"]
    assert alarm["payload"]["cosigned"]["size"] == stored
    assert alarm["payload"]["submitted"]["root_hash"] == rewritten.tree.root(stored + 2).hex()


def test_bodies_refused_before_any_work(client: TestClient, context: Context) -> None:
    before = _state(context)
    for data in (b"", b"not json", b"\xff\xfe", b'{"old_size": ' + b"9" * 5000 + b"}", b"[" * 60000):
        _problem(client.post(URL, content=data), 400, "witness_request_malformed")
    _problem(client.post(URL, json=[1, 2]), 400, "witness_request_malformed")
    big = json.dumps({"old_size": 0, "proof": [], "checkpoint": {"pad": "x" * 70_000}}).encode()
    _problem(client.post(URL, content=big), 413, "payload_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
        for _ in range(20):
            yield b" " * 8192

    _problem(client.post(URL, content=chunks()), 413, "payload_too_large")
    assert client.get(URL).status_code == 405
    assert _state(context) == before


def test_rate_limited(client: TestClient, context: Context, remote: SignedLog) -> None:
    original = context.witness_rate_limiter
    context.witness_rate_limiter = RateLimiter(per_minute=60, burst=1)
    try:
        client.post(URL, json=remote.submission(remote.size))
        limited = client.post(URL, json=remote.submission(remote.size))
    finally:
        context.witness_rate_limiter = original
    _problem(limited, 429, "rate_limited")
    assert "retry-after" in limited.headers


def _write(path: Path, document: object) -> Path:
    path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
    return path


def test_configuration_errors_name_the_file_and_entry(tmp_path: Path, log_key: SigningHandle) -> None:
    cert = pem(certificate(log_key)).decode()
    good = {"logs": [{"origin": REMOTE, "certificate": cert}, {"origin": "b.example/ledger",
            "certificates": [cert, pem(log_key.public_key_der, "PUBLIC KEY").decode()], "hash": "sha256"}]}  # fmt: skip
    logs = load_witnessed_logs(_write(tmp_path / "witness.yaml", good))
    assert logs[REMOTE].keys == (log_key.public_key_der,) and logs["b.example/ledger"].hasher.name == "sha256"
    assert load_witnessed_logs(tmp_path / "absent.yaml") == {}
    (tmp_path / "log.pem").write_text(cert)
    endpoints = load_witness_endpoints(_write(tmp_path / "witnesses.yaml", {"witnesses": [
        {"name": "w.example/ledger", "url": "http://127.0.0.1:9/", "certificate_file": "log.pem"}]}))  # fmt: skip
    assert endpoints[0].submission_url == "http://127.0.0.1:9/v1/witness/add-checkpoint"
    assert endpoints[0].key == log_key.public_key_der

    bad_logs: list[tuple[object, str]] = [
        ("logs: [", "not YAML"),
        ({"log": []}, "one key, 'logs'"),
        ({"logs": [{"origin": REMOTE}]}, "logs[0]: give exactly one of"),
        ({"logs": [{"origin": REMOTE, "certificate": "nonsense"}]}, "logs[0]: a key is a PEM"),
        ({"logs": [{"origin": REMOTE, "certificate": cert.replace("MII", "MIX", 1)}]}, "logs[0]: not an SM2"),
        ({"logs": [{"origin": "a\nb", "certificate": cert}]}, "logs[0]: origin"),
        ({"logs": [{"origin": "x" * 129, "certificate": cert}]}, "at most 128"),
        ({"logs": [{"origin": REMOTE, "certificate": cert}] * 2}, "logs[1]: origin 'shandong.example/ledger' is list"),
        ({"logs": [{"origin": REMOTE, "certificate": cert, "hash": "md5"}]}, "hash 'md5'"),
        ({"logs": [{"origin": REMOTE, "certificate": cert, "key": 1}]}, "unknown keys ['key']"),
        ({"logs": [{"origin": REMOTE, "certificate_file": "missing.pem"}]}, "cannot read"),
    ]  # fmt: skip
    for document, message in bad_logs:
        path = _write(tmp_path / f"w-{secrets.token_hex(3)}.yaml", document)
        with pytest.raises(WitnessConfigError) as caught:
            load_witnessed_logs(path)
        assert str(path) in str(caught.value) and message in str(caught.value), caught.value
    bad_witnesses: list[tuple[object, str]] = [
        ({"witnesses": [{"name": "w", "url": "ftp://x", "certificate": cert}]}, "url must be an http(s) URL"),
        ({"witnesses": [{"name": "w", "url": "http://x", "certificates": [cert, cert]}]}, "one key"),
        ({"witnesses": [{"url": "http://x", "certificate": cert}]}, "witnesses[0]: origin"),
    ]
    for document, message in bad_witnesses:
        path = _write(tmp_path / f"ws-{secrets.token_hex(3)}.yaml", document)
        with pytest.raises(WitnessConfigError) as caught:
            load_witness_endpoints(path)
        assert str(path) in str(caught.value) and message in str(caught.value), caught.value
