"""The public /v1/ledger/* reads over HTTP, checked from outside: the checkpoint's signature by OpenSSL
alone (`pkeyutl -verify -rawin -digest sm3`, default ID) with the certificate /v1/ledger/key serves,
that certificate's chain to the national CA, roots and proofs against the RFC 9162 reference written
from the RFC (tests/ledger/rfc9162.py) over the entries the API pages out; bad ranges are 400
problems with the ledger's code and change nothing."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import pem, x509
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.context import Context
from api.problems import PROBLEM_JSON
from ledger.events import record_event
from ledger.service import origin_of
from policies.profiles import default_profiles
from store.models import Event, LedgerNode
from tests.fixtures import PUBLIC_URL, openssl
from tests.fixtures import pem as pem_block
from tests.ledger.rfc9162 import Reference, sm3
from tests.ledger.test_checkpoint import openssl_verifies


@pytest.fixture(scope="module")
def client(context: Context) -> Iterator[TestClient]:
    with TestClient(create_app(context), raise_server_exceptions=False) as test_client:
        yield test_client


def _activity(context: Context, count: int) -> None:
    for n in range(count):
        with context.db.session() as session:
            record_event(session, "test.activity", actor="test", subject=f"a-{n}", payload={"n": n, "text": "印章"})


def _all_entries(client: TestClient, size: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for start in range(0, size, 1000):
        response = client.get("/v1/ledger/entries", params={"start": start, "end": min(size, start + 1000)})
        assert response.status_code == 200, response.text
        out += response.json()["entries"]
    return out


COVER_BOUND = 2.0  # the integrator publishes within a period (0.25 s) plus a pass and a signature


def _checkpoint(client: TestClient, context: Context | None = None) -> dict[str, Any]:
    """The served checkpoint — the background integrator's, the read itself signs nothing — once it
    covers every event committed before the call (each event is one entry), within COVER_BOUND."""
    wanted = _state(context)[0] if context is not None else 0
    deadline = time.monotonic() + COVER_BOUND
    while True:
        response = client.get("/v1/ledger/checkpoint")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["size"] >= wanted:
            return body
        assert time.monotonic() < deadline, f"no checkpoint covers {wanted} events after {COVER_BOUND} s: {body}"
        time.sleep(0.01)


def _state(context: Context) -> tuple[int, int, int]:
    with context.db.session() as session:
        return (
            session.execute(select(func.count()).select_from(Event)).scalar_one(),
            session.execute(select(func.count()).select_from(Event).where(Event.ledger_index.is_(None))).scalar_one(),
            session.execute(select(func.count()).select_from(LedgerNode)).scalar_one(),
        )


@pytest.mark.openssl
def test_checkpoint_and_key_verified_by_openssl(client: TestClient, context: Context, tmp_path: Path) -> None:
    _activity(context, 3)
    signed = _checkpoint(client, context)
    assert _state(context)[1] == 0  # the checkpoint covers every committed event (the demo hierarchy's too)
    key = client.get("/v1/ledger/key")
    assert key.status_code == 200 and key.headers["content-type"].startswith("application/x-pem-file")
    cert_pem = key.content
    assert cert_pem.startswith(b"-----BEGIN CERTIFICATE-----")
    assert openssl_verifies(
        tmp_path, cert_pem, signed["note"].encode(), base64.b64decode(signed["signature"]), certin=True
    )
    assert not openssl_verifies(
        tmp_path, cert_pem, signed["note"].replace("\n", "\n ", 1).encode(), base64.b64decode(signed["signature"]),
        certin=True,
    )  # fmt: skip

    origin = origin_of(PUBLIC_URL)
    assert origin == "127.0.0.1:8000/ledger" and signed["origin"] == origin
    assert signed["note"].startswith(f"{origin}\n{signed['size']}\n")
    assert signed["hash"] == "sm3" and signed["cosignatures"] == []
    _, _, der = pem.unarmor(cert_pem)
    certificate = x509.Certificate.load(der)
    spki = certificate["tbs_certificate"]["subject_public_key_info"].dump()
    assert signed["key_id"] == hashlib.new("sm3", spki).hexdigest()
    assert (
        certificate.issuer.native["common_name"]
        == context.ca.ca_certificate("cn-100000-sm2").subject.native["common_name"]
    )
    # The chain to the root, by OpenSSL link by link (its chain walk would use an empty SM2 ID).
    (tmp_path / "root.pem").write_bytes(pem_block(context.ca.ca_certificate("cn-root-sm2").dump()))
    (tmp_path / "national.pem").write_bytes(pem_block(context.ca.ca_certificate("cn-100000-sm2").dump()))
    (tmp_path / "ledger.pem").write_bytes(cert_pem)
    for parent, child in (("root.pem", "national.pem"), ("national.pem", "ledger.pem")):
        result = openssl(
            "verify", "-partial_chain", "-vfyopt", "distid:1234567812345678", "-CAfile", parent, child,
            cwd=tmp_path, check=False,
        )  # fmt: skip
        assert result.returncode == 0 and b": OK" in result.stdout, result.stdout + result.stderr
    assert certificate["tbs_certificate"]["extensions"] is not None
    assert "ledger" not in {p.name for p in default_profiles().profiles.values() if p.csr}
    # The same key and certificate next time (provisioned once, found again by a fresh service).
    assert client.get("/v1/ledger/key").content == cert_pem


def test_entries_and_proofs_match_the_rfc9162_reference(client: TestClient, context: Context) -> None:
    _activity(context, 5)
    first = _checkpoint(client, context)
    _activity(context, 9)
    second = _checkpoint(client, context)
    assert second["size"] == first["size"] + 9
    entries = _all_entries(client, second["size"])
    assert [entry["index"] for entry in entries] == list(range(second["size"]))
    leaves = [base64.b64decode(entry["leaf_input"]) for entry in entries]
    for entry, leaf in zip(entries, leaves, strict=True):
        assert json.loads(leaf) == entry["entry"]
        assert {"type", "time", "actor", "subject"} <= set(entry["entry"])
    assert entries[-1]["entry"]["type"] == "test.activity" and entries[-1]["entry"]["text"] == "印章"
    assert any(entry["entry"]["type"] == "certificate.issued" for entry in entries)  # the demo hierarchy's
    reference = Reference(leaves, sm3)
    assert first["root_hash"] == reference.mth(0, first["size"]).hex()
    assert second["root_hash"] == reference.mth(0, second["size"]).hex()

    size = second["size"]
    for index in sorted({0, 1, size // 2, size - 2, size - 1}):
        response = client.get("/v1/ledger/proofs/inclusion", params={"index": index, "size": size})
        assert response.status_code == 200, response.text
        assert response.json() == {
            "index": index,
            "size": size,
            "path": [value.hex() for value in reference.path(index, 0, size)],
        }
    response = client.get("/v1/ledger/proofs/consistency", params={"first": first["size"], "second": size})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "first": first["size"],
        "second": size,
        "path": [value.hex() for value in reference.proof(first["size"], size)],
    }
    same = client.get("/v1/ledger/proofs/consistency", params={"first": size, "second": size})
    assert same.json()["path"] == []


@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/v1/ledger/entries", {"start": 10**6, "end": 10**6 + 1}, "size_beyond_tree"),
        ("/v1/ledger/entries", {"start": 5, "end": 5}, "range_invalid"),
        ("/v1/ledger/entries", {"start": 6, "end": 2}, "range_invalid"),
        ("/v1/ledger/entries", {"start": 0, "end": 1001}, "page_too_large"),
        ("/v1/ledger/entries", {"start": -1, "end": 2}, "invalid_request"),
        ("/v1/ledger/entries", {"start": "x", "end": 2}, "invalid_request"),
        ("/v1/ledger/entries", {"start": 0}, "invalid_request"),
        ("/v1/ledger/proofs/inclusion", {"index": 3, "size": 3}, "proof_out_of_range"),
        ("/v1/ledger/proofs/inclusion", {"index": 0, "size": 0}, "proof_out_of_range"),
        ("/v1/ledger/proofs/inclusion", {"index": 0, "size": 10**9}, "size_beyond_tree"),
        ("/v1/ledger/proofs/consistency", {"first": 4, "second": 3}, "proof_inverted"),
        ("/v1/ledger/proofs/consistency", {"first": 0, "second": 3}, "proof_out_of_range"),
        ("/v1/ledger/proofs/consistency", {"first": 1, "second": 10**9}, "size_beyond_tree"),
        ("/v1/ledger/proofs/consistency", {"first": 1, "second": 2**70}, "invalid_request"),
    ],
)
def test_bad_ranges_are_400_problems_and_change_nothing(
    client: TestClient, context: Context, path: str, params: dict[str, Any], code: str
) -> None:
    _checkpoint(client, context)  # everything sequenced, so that nothing would change anyway
    before = _state(context)
    response = client.get(path, params=params)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["code"] == code
    assert _state(context) == before


def test_the_ledger_reads_need_no_token(client: TestClient) -> None:
    for path in ("/v1/ledger/checkpoint", "/v1/ledger/key"):
        assert client.get(path, headers={"Authorization": "Bearer nonsense"}).status_code == 200
