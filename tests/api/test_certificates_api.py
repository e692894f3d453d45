"""The certificate, CA and OCSP endpoints: roles, problem+json codes, nothing written on error, events."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from asn1crypto import crl, csr, ocsp, pem, x509
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from api.app import create_app
from api.auth import create_token
from api.context import Context
from api.problems import PROBLEM_JSON
from store.models import CRL, Certificate, Event
from tests.fixtures import ORG_SUBJECT, examples, make_csr

SM2_CA = "cn-370000-sm2"


@pytest.fixture(scope="module")
def client(context: Context) -> Iterator[TestClient]:
    with TestClient(create_app(context), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def tokens(context: Context) -> dict[str, str]:
    return {role: create_token(context.db, role, f"test-{role}") for role in ("officer", "verifier", "admin")}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _counts(context: Context) -> tuple[int, int, int]:
    with context.db.session() as session:
        return (
            session.scalar(select(func.count()).select_from(Certificate)) or 0,
            session.scalar(select(func.count()).select_from(Event)) or 0,
            session.scalar(select(func.count()).select_from(CRL)) or 0,
        )


def _problem(response: object, status: int, code: str) -> dict[str, object]:
    from httpx import Response

    assert isinstance(response, Response)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    body: dict[str, object] = response.json()
    assert body["code"] == code and body["status"] == status
    assert "Traceback" not in response.text
    return body


def _issue(client: TestClient, token: str, csr_pem: bytes, profile: str = "org-seal", ca: str = SM2_CA) -> object:
    return client.post(
        "/v1/certificates",
        json={"csr_pem": csr_pem.decode(), "profile": profile, "ca": ca},
        headers=_auth(token),
    )


def test_issue_revoke_and_read_back_with_events(
    client: TestClient, context: Context, tokens: dict[str, str], tmp_path: Path
) -> None:
    certs0, events0, _ = _counts(context)
    response = client.post(
        "/v1/certificates",
        json={
            "csr_pem": make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT).decode(),
            "profile": "org-seal",
            "ca": SM2_CA,
        },
        headers=_auth(tokens["officer"]),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    serial = body["serial"]
    assert serial == serial.lower() and int(serial, 16) >= 2**64
    _, _, der = pem.unarmor(body["certificate_pem"].encode())
    assert format(x509.Certificate.load(der).serial_number, "x") == serial
    assert body["chain_pem"].count("BEGIN CERTIFICATE") == 2
    entry = client.get("/v1/ledger/entries", params={"start": body["ledger_index"], "end": body["ledger_index"] + 1})
    assert entry.status_code == 200, entry.text
    assert entry.json()["entries"][0]["entry"]["type"] == "certificate.issued"
    assert entry.json()["entries"][0]["entry"]["serial"] == serial
    assert _counts(context)[:2] == (certs0 + 1, events0 + 1)

    revoked = client.post(f"/v1/certificates/{serial}/revoke", json={"reason": "keyCompromise"},
                          headers=_auth(tokens["admin"]))  # fmt: skip
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["status"] == "revoked" and revoked.json()["revocation_reason"] == "key_compromise"

    info = client.get(f"/v1/certificates/{serial}")  # public
    assert info.status_code == 200 and info.json()["status"] == "revoked"

    with context.db.session() as session:
        events = session.scalars(select(Event).where(Event.subject == serial).order_by(Event.id)).all()
        assert [e.type for e in events] == ["certificate.issued", "certificate.revoked"]
        assert events[0].ledger_index == body["ledger_index"]  # answered after its entry got its index
        assert events[0].actor == "officer:test-officer" and events[1].actor == "admin:test-admin"
        # the event names the subject by digest only (PIPL): no clear organisation name
        assert "Jinan" not in str(events[0].payload)

    # the CRL served publicly now lists it
    crl_der = client.get(f"/v1/cas/{SM2_CA}/crl")
    assert crl_der.status_code == 200 and crl_der.headers["content-type"] == "application/pkix-crl"
    listed = {e["user_certificate"].native for e in crl.CertificateList.load(crl_der.content)["tbs_cert_list"][
        "revoked_certificates"]}  # fmt: skip
    assert int(serial, 16) in listed


def test_roles_and_tokens(client: TestClient, context: Context, tokens: dict[str, str], tmp_path: Path) -> None:
    csr_pem = make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT)
    before = _counts(context)
    _problem(client.post("/v1/certificates", json={"csr_pem": csr_pem.decode(), "profile": "org-seal", "ca": SM2_CA}),
             401, "unauthenticated")  # fmt: skip
    _problem(_issue(client, "ts_not-a-real-token", csr_pem), 401, "invalid_token")
    _problem(_issue(client, tokens["verifier"], csr_pem), 403, "forbidden_role")
    response = client.post("/v1/certificates", json={}, headers={"Authorization": "Basic abc"})
    _problem(response, 401, "unauthenticated")
    assert _counts(context) == before


def _tampered_csr(csr_pem: bytes) -> bytes:
    _, _, der = pem.unarmor(csr_pem)
    request = csr.CertificationRequest.load(der)
    info = request["certification_request_info"].copy()
    info["subject"] = x509.Name.build(
        {
            "country_name": "CN",
            "organization_name": "Forged Bureau",
            "organization_identifier": "91350100M000100Y43",
            "common_name": "Forged Bureau Seal",
        }
    )
    forged = csr.CertificationRequest(
        {
            "certification_request_info": info,
            "signature_algorithm": request["signature_algorithm"],
            "signature": request["signature"],
        }
    )
    armored: bytes = pem.armor("CERTIFICATE REQUEST", forged.dump())
    return armored


@pytest.mark.parametrize(
    ("case", "status", "code"),
    [
        ("garbage", 400, "csr_malformed"),
        ("truncated", 400, "csr_malformed"),
        ("forged", 400, "csr_signature_invalid"),
        ("unknown_profile", 404, "unknown_profile"),
        ("unknown_ca", 404, "unknown_ca"),
        ("no_uscc", 400, "subject_not_allowed"),
        ("bad_uscc", 400, "subject_not_allowed"),
        ("root_issues", 400, "ca_not_issuing"),
        ("extra_field", 400, "invalid_request"),
        ("wrong_family", 400, "key_algorithm_not_allowed"),
    ],
)
def test_bad_issuance_requests_write_nothing(
    client: TestClient, context: Context, tokens: dict[str, str], tmp_path: Path, case: str, status: int, code: str
) -> None:
    good = make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT)
    body: dict[str, object] = {"csr_pem": good.decode(), "profile": "org-seal", "ca": SM2_CA}
    if case == "garbage":
        body["csr_pem"] = "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
    elif case == "truncated":
        body["csr_pem"] = good.decode()[:200] + "\n-----END CERTIFICATE REQUEST-----\n"
    elif case == "forged":
        body["csr_pem"] = _tampered_csr(good).decode()
    elif case == "unknown_profile":
        body["profile"] = "no-such-profile"
    elif case == "unknown_ca":
        body["ca"] = "cn-999999-sm2"
    elif case == "no_uscc":
        body["csr_pem"] = make_csr(
            tmp_path, algorithm="sm2", subject="/C=CN/O=Some Bureau/CN=Some Bureau Seal"
        ).decode()
    elif case == "bad_uscc":
        bad = ORG_SUBJECT.replace("91350100M000100Y43", "91350100M000100Y44")
        body["csr_pem"] = make_csr(tmp_path, algorithm="sm2", subject=bad).decode()
    elif case == "root_issues":
        body["ca"] = "cn-root-sm2"
    elif case == "extra_field":
        body["not_after"] = "2099-01-01"
    elif case == "wrong_family":
        body["csr_pem"] = make_csr(tmp_path, algorithm="p256", subject=ORG_SUBJECT).decode()
    before = _counts(context)
    _problem(client.post("/v1/certificates", json=body, headers=_auth(tokens["officer"])), status, code)
    assert _counts(context) == before


def test_revocation_errors_write_nothing(
    client: TestClient, context: Context, tokens: dict[str, str], tmp_path: Path
) -> None:
    officer = _auth(tokens["officer"])
    issued = _issue(client, tokens["officer"], make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT))
    serial = issued.json()["serial"]  # type: ignore[attr-defined]
    before = _counts(context)
    _problem(client.post("/v1/certificates/" + "ab" * 16 + "/revoke", json={}, headers=officer),
             404, "certificate_not_found")  # fmt: skip
    _problem(client.post("/v1/certificates/not-hex!/revoke", json={}, headers=officer), 404, "certificate_not_found")
    _problem(client.post(f"/v1/certificates/{serial}/revoke", json={"reason": "because"}, headers=officer),
             400, "invalid_revocation_reason")  # fmt: skip
    assert _counts(context) == before
    ok = client.post(f"/v1/certificates/{serial.upper()}/revoke", json={"reason": "superseded"}, headers=officer)
    assert ok.status_code == 200, ok.text
    after = _counts(context)
    _problem(client.post(f"/v1/certificates/{serial}/revoke", json={}, headers=officer),
             409, "certificate_already_revoked")  # fmt: skip
    assert _counts(context) == after
    _problem(client.get("/v1/certificates/" + "cd" * 16), 404, "certificate_not_found")


def test_oversize_upload_is_413(client: TestClient, context: Context, tokens: dict[str, str]) -> None:
    before = _counts(context)
    huge = b"x" * (context.settings.max_upload_bytes + 1)
    _problem(client.post("/v1/certificates", content=huge, headers={**_auth(tokens["officer"]),
             "Content-Type": "application/json"}), 413, "payload_too_large")  # fmt: skip

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit holds while streaming
        for _ in range(context.settings.max_upload_bytes // 65536 + 2):
            yield b"y" * 65536

    _problem(client.post("/v1/ocsp", content=chunks()), 413, "payload_too_large")
    assert _counts(context) == before


def test_ca_endpoints_are_public(client: TestClient) -> None:
    listing = client.get("/v1/cas")
    assert listing.status_code == 200
    names = {ca["name"] for ca in listing.json()}
    assert {"cn-root-sm2", "cn-root-p256", "cn-370000-sm2", "cn-530000-sm2", "cn-370000-p256",
            "cn-530000-p256"} <= names  # fmt: skip
    der = client.get(f"/v1/cas/{SM2_CA}/certificate")
    assert der.status_code == 200 and der.headers["content-type"] == "application/pkix-cert"
    assert der.headers["x-content-type-options"] == "nosniff"
    assert x509.Certificate.load(der.content).ca
    as_pem = client.get(f"/v1/cas/{SM2_CA}/certificate?format=pem")
    assert pem.unarmor(as_pem.content)[2] == der.content
    _problem(client.get("/v1/cas/cn-000000-sm2/certificate"), 404, "unknown_ca")
    _problem(client.get("/v1/cas/cn-000000-sm2/crl"), 404, "unknown_ca")


@pytest.mark.parametrize(
    "payload",
    [b"", b"\x00", b"garbage that is not DER", b"\x30\x03\x02\x01\x01", b"\x30\x80" + b"\x00" * 10],
)
def test_garbage_ocsp_is_answered_malformed_request(client: TestClient, payload: bytes) -> None:
    """An OCSP client reads OCSPResponses only: a bad request is answered malformedRequest, not problem+json."""
    _malformed(client.post("/v1/ocsp", content=payload, headers={"Content-Type": "application/ocsp-request"}))
    encoded = base64.b64encode(payload).decode() or "AA"
    _malformed(client.get(f"/v1/ocsp/{encoded}"))


def test_ocsp_get_with_non_base64_is_malformed_request(client: TestClient) -> None:
    _malformed(client.get("/v1/ocsp/not*base64!"))


def _malformed(response: object) -> None:
    from httpx import Response

    assert isinstance(response, Response)
    assert response.status_code == 200 and response.headers["content-type"] == "application/ocsp-response"
    assert ocsp.OCSPResponse.load(response.content)["response_status"].native == "malformed_request"
    assert response.headers["cache-control"] == "no-store"


def test_ocsp_answers_through_the_app(client: TestClient, tokens: dict[str, str], tmp_path: Path) -> None:
    issued = _issue(client, tokens["officer"], make_csr(tmp_path, algorithm="p256", subject=ORG_SUBJECT),
                    ca="cn-530000-p256")  # fmt: skip
    body = issued.json()  # type: ignore[attr-defined]
    ca_der = client.get("/v1/cas/cn-530000-p256/certificate").content
    ca = x509.Certificate.load(ca_der)
    import hashlib

    request = ocsp.OCSPRequest(
        {
            "tbs_request": {
                "request_list": [
                    {
                        "req_cert": {
                            "hash_algorithm": {"algorithm": "sha256"},
                            "issuer_name_hash": hashlib.sha256(ca.subject.dump()).digest(),
                            "issuer_key_hash": hashlib.sha256(ca.public_key["public_key"].contents[1:]).digest(),
                            "serial_number": int(body["serial"], 16),
                        }
                    }
                ]
            }
        }
    ).dump()
    response = client.post("/v1/ocsp", content=request)
    parsed = ocsp.OCSPResponse.load(response.content)
    single = parsed["response_bytes"]["response"].parsed["tbs_response_data"]["responses"][0]
    assert single["cert_status"].name == "good"
    assert single["cert_id"]["hash_algorithm"]["algorithm"].native == "sha256"


def test_no_secrets_in_responses_or_logs(
    client: TestClient, context: Context, tokens: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    seen.append(_issue(client, tokens["officer"], make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT)).text)  # type: ignore[attr-defined]
    seen.append(_issue(client, tokens["officer"], b"garbage").text)  # type: ignore[attr-defined]
    seen.append(client.get("/v1/cas").text)
    secrets_we_hold = [context.settings.passphrase or "", tokens["officer"], tokens["admin"]]
    for ref in ("cn-370000-sm2@1", "cn-370000-sm2.ocsp@1"):
        handle = context.custody.signer(ref)
        assert ref.split("@")[0] in repr(handle) and "private" not in repr(handle).lower()
    blob = "\n".join(seen) + "\n" + caplog.text
    for secret in secrets_we_hold:
        assert secret and secret not in blob
    assert "PRIVATE KEY" not in blob
    with context.db.session() as session:
        for row in session.scalars(select(Event)).all():
            assert "PRIVATE" not in str(row.payload)
    # the token table stores digests only
    from store.models import ApiToken

    with context.db.session() as session:
        stored = [t.token_hash for t in session.scalars(select(ApiToken)).all()]
    assert tokens["officer"] not in stored and all(len(h) == 64 for h in stored)


def test_unknown_route_and_method_are_problems(client: TestClient) -> None:
    _problem(client.get("/v1/nothing-here"), 404, "not_found")
    _problem(client.delete("/v1/cas"), 405, "method_not_allowed")


@settings(max_examples=examples(200), deadline=None)
@given(st.binary(max_size=3000))
def test_to_pem_matches_asn1crypto_armor(der: bytes) -> None:
    from api.routes.certificates import to_pem

    assert to_pem(der) == pem.armor("CERTIFICATE", der).decode("ascii")


@pytest.mark.parametrize("on_loop", [True, False])
def test_issuance_runs_on_the_event_loop_only_for_the_embedded_default(
    client: TestClient, context: Context, tokens: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    on_loop: bool,
) -> None:  # fmt: skip
    """Both ways give the same answers; the thread pool is used whenever a network wait is possible."""
    import asyncio
    import dataclasses

    def loop_running() -> bool:
        try:
            asyncio.get_running_loop()
            return True
        except RuntimeError:
            return False

    seen: list[bool] = []
    original = context.ca.issue

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(loop_running())
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Context, "issuance_on_event_loop", property(lambda self: on_loop))
    monkeypatch.setattr(context.ca, "issue", spy)
    good = _issue(client, tokens["officer"], make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT))
    assert good.status_code == 201, good.text  # type: ignore[attr-defined]
    garbage = b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"
    _problem(_issue(client, tokens["officer"], garbage), 400, "csr_malformed")
    assert seen == [on_loop, on_loop]

    monkeypatch.undo()
    settings = context.settings
    decide = vars(Context)["issuance_on_event_loop"].fget
    for url, keystore, expected in [
        ("sqlite:///x.db", "local", True),
        ("postgresql+psycopg://postgres@127.0.0.1/test", "local", False),
        ("sqlite:///x.db", "vault", False),
    ]:
        changed = dataclasses.replace(settings, database_url=url, keystore=keystore)
        assert decide(type("C", (), {"settings": changed})()) is expected
