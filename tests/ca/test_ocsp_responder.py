"""The OCSP endpoint as OCSP clients meet it (issue 12): every answer is an OCSPResponse, refusals too
(malformedRequest, tryLater; HTTP 200, as OpenSSL's client reads no other status); the GET form takes
any base64 a client may write; signing never runs on the event loop; each client has a budget.
`openssl ocsp` is the independent client wherever it can speak the case."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from asn1crypto import core, ocsp, x509

from api.context import Context
from api.ratelimit import RateLimiter
from api.routes.ocsp import request_from_path
from ca.authority import CertificateAuthorityService
from ca.ocsp import OCSPAnswer
from tests.fixtures import ORG_SUBJECT, make_csr, openssl, pem

pytestmark = pytest.mark.openssl
OCSP_REQUEST = {"Content-Type": "application/ocsp-request"}


def _request(issuer_der: bytes, serials: list[int], nonce: bytes | None = None) -> bytes:
    issuer = x509.Certificate.load(issuer_der)
    singles = [
        {
            "req_cert": {
                "hash_algorithm": {"algorithm": "sha1"},
                "issuer_name_hash": hashlib.sha1(issuer.subject.dump()).digest(),
                "issuer_key_hash": hashlib.sha1(issuer.public_key["public_key"].contents[1:]).digest(),
                "serial_number": serial,
            }
        }
        for serial in serials
    ]
    tbs: dict[str, object] = {"request_list": singles}
    if nonce is not None:
        tbs["request_extensions"] = [{"extn_id": "nonce", "extn_value": core.OctetString(nonce)}]
    return ocsp.OCSPRequest({"tbs_request": tbs}).dump()


def _status(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/ocsp-response"
    status: str = ocsp.OCSPResponse.load(response.content)["response_status"].native
    return status


def _openssl_reads(tmp_path: Path, body: bytes) -> str:
    """What `openssl ocsp` makes of a response body (it prints the status of an unsuccessful one)."""
    path = tmp_path / f"{secrets.token_hex(4)}.der"
    path.write_bytes(body)
    done = openssl("ocsp", "-respin", str(path), "-resp_text", "-noverify", check=False)
    return (done.stdout + done.stderr).decode()


@pytest.fixture(scope="module")
def issued(ca_service: CertificateAuthorityService, tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """(leaf DER, issuer DER) of a good SM2 org-seal certificate."""
    csr = make_csr(tmp_path_factory.mktemp("csr"), algorithm="sm2", subject=ORG_SUBJECT)
    return ca_service.issue(csr, "org-seal", "cn-370000-sm2").der, ca_service.ca_certificate("cn-370000-sm2").dump()


# -- malformedRequest --------------------------------------------------------------------------------


def test_openssl_ocsp_reads_our_malformed_request_answer(
    ca_service: CertificateAuthorityService, live_url: str, tmp_path: Path
) -> None:
    """openssl sends a request it can build but we refuse (17 CertIDs, more than one answer may carry) and
    prints the status we answer; it would print a transport error for a 400 or a problem document."""
    issuer = tmp_path / "issuer.pem"
    issuer.write_bytes(pem(ca_service.ca_certificate("cn-370000-sm2").dump()))
    serials = [arg for n in range(17) for arg in ("-serial", str(n + 1))]
    done = openssl("ocsp", "-issuer", str(issuer), *serials, "-url", f"{live_url}/v1/ocsp", "-noverify", check=False)
    out = (done.stdout + done.stderr).decode()
    assert "Responder Error: malformedrequest (1)" in out, out


@pytest.mark.parametrize(
    "case",
    ["empty", "not_der", "truncated", "trailing", "wrong_type", "too_large", "get_not_base64", "get_bad_length",
     "get_empty_list"],
)  # fmt: skip
def test_malformed_requests_get_malformed_request(
    issued: tuple[bytes, bytes], live_url: str, tmp_path: Path, case: str
) -> None:
    leaf, issuer = issued
    good = _request(issuer, [x509.Certificate.load(leaf).serial_number])
    url = f"{live_url}/v1/ocsp"
    if case == "empty":
        response = httpx.post(url, content=b"", headers=OCSP_REQUEST)
    elif case == "not_der":
        response = httpx.post(url, content=b"GET / HTTP/1.0\r\n\r\n", headers=OCSP_REQUEST)
    elif case == "truncated":
        response = httpx.post(url, content=good[:-3], headers=OCSP_REQUEST)
    elif case == "trailing":
        response = httpx.post(url, content=good + b"\x00", headers=OCSP_REQUEST)
    elif case == "wrong_type":  # a valid request, declared as something else
        response = httpx.post(url, content=good, headers={"Content-Type": "application/json"})
    elif case == "too_large":
        response = httpx.post(url, content=b"\x30\x82" + b"\x00" * 20_000, headers=OCSP_REQUEST)
    elif case == "get_not_base64":
        response = httpx.get(f"{url}/MEow*SDBGMEQ!")
    elif case == "get_bad_length":
        response = httpx.get(f"{url}/{base64.b64encode(good).decode().rstrip('=')}A")  # 4n+1 characters
    else:
        response = httpx.get(f"{url}/" + base64.b64encode(b"\x30\x06\x30\x04\x30\x02\x30\x00").decode())
    assert _status(response) == "malformed_request"
    assert response.headers["cache-control"] == "no-store"
    assert "problem" not in response.headers["content-type"]
    assert "Responder Error: malformedrequest (1)" in _openssl_reads(tmp_path, response.content)


def test_the_responder_is_named_by_name(context: Context, issued: tuple[bytes, bytes]) -> None:
    """byName, the delegated signer's subject: GmSSL 3.x reads byKey as IMPLICIT [2] and drops the answer
    (tests/ca/test_gmssl_interop.py checks that with GmSSL itself)."""
    leaf, issuer = issued
    answer = ocsp.OCSPResponse.load(context.ca.ocsp(_request(issuer, [x509.Certificate.load(leaf).serial_number])))
    basic = answer["response_bytes"]["response"].parsed
    responder = basic["tbs_response_data"]["responder_id"]
    assert responder.name == "by_name" and responder.chosen.untag().dump() == basic["certs"][0].subject.dump()
    assert responder.dump()[0] == 0xA1  # [1] EXPLICIT


def test_a_request_without_content_type_is_still_read(issued: tuple[bytes, bytes], live_url: str) -> None:
    leaf, issuer = issued
    response = httpx.post(f"{live_url}/v1/ocsp", content=_request(issuer, [x509.Certificate.load(leaf).serial_number]))
    assert _status(response) == "successful"


# -- GET: any base64 a client writes ----------------------------------------------------------------


def _awkward_request(issuer: bytes, serial: int) -> tuple[bytes, bytes, str]:
    """A request whose standard base64 holds '+', '/' and padding, so every spelling differs."""
    for attempt in range(3000):
        nonce = secrets.token_bytes(16 + attempt % 3)  # the length moves the padding
        der = _request(issuer, [serial], nonce)
        text = base64.b64encode(der).decode()
        if "+" in text and "/" in text and text.endswith("=") and len(der) % 3 == 1:
            return der, nonce, text
    pytest.fail("no request with '+', '/' and '==' in its base64 found")


@pytest.mark.parametrize(
    "spelling",
    [
        lambda t: t,  # standard, padded, '/' as path separators
        lambda t: t.rstrip("="),  # standard, unpadded
        lambda t: t.replace("+", "-").replace("/", "_"),  # URL-safe, padded
        lambda t: t.replace("+", "-").replace("/", "_").rstrip("="),  # URL-safe, unpadded (RFC 7515 style)
        lambda t: quote(t, safe=""),  # percent-encoded: %2B %2F %3D
        lambda t: quote(t, safe="/"),  # '+' and '=' encoded, '/' as is
    ],
    ids=["standard", "unpadded", "urlsafe", "urlsafe-unpadded", "percent", "percent-keep-slash"],
)
def test_get_accepts_every_base64_spelling(
    issued: tuple[bytes, bytes], live_url: str, spelling: Callable[[str], str]
) -> None:
    leaf, issuer = issued
    serial = x509.Certificate.load(leaf).serial_number
    der, nonce, text = _awkward_request(issuer, serial)
    assert request_from_path(spelling(text)) == der
    response = httpx.get(f"{live_url}/v1/ocsp/{spelling(text)}")
    assert _status(response) == "successful"
    assert response.headers["cache-control"] == "no-store"  # signed live for its nonce: not for caches
    basic = ocsp.OCSPResponse.load(response.content)["response_bytes"]["response"].parsed
    single = basic["tbs_response_data"]["responses"][0]
    assert single["cert_id"]["serial_number"].native == serial and single["cert_status"].name == "good"
    echoed = [e["extn_value"].parsed.native for e in basic["tbs_response_data"]["response_extensions"]
              if e["extn_id"].native == "nonce"]  # fmt: skip
    assert echoed == [nonce]


def test_get_decoder_refuses_what_is_not_base64() -> None:
    for text in ("", "====", "A", "AAAAA", "AA=A", "AA*A", "%ZZ", "A" * 40_000):
        assert request_from_path(text) is None, text


# -- off the event loop ------------------------------------------------------------------------------


def test_signing_runs_off_the_event_loop_and_health_is_served_meanwhile(
    context: Context, issued: tuple[bytes, bytes], live_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The responder is held inside `ca.ocsp` until /v1/health has answered: on the event loop the health
    request could never be served (it would time out) — and the call must see no running loop."""
    leaf, issuer = issued
    real = context.ca.ocsp_answer
    release = threading.Event()
    seen: list[bool] = []

    def held(der: bytes) -> OCSPAnswer:
        try:
            asyncio.get_running_loop()
            seen.append(True)  # called on the event loop
        except RuntimeError:
            seen.append(False)
        release.wait(10)
        return real(der)

    monkeypatch.setattr(context.ca, "ocsp_answer", held)
    # a nonce: signed for this request (a repeated one without a nonce is served from its stored answer
    # on the loop, ca/ocsp.py `stored_answer`: no signature to hold)
    der = _request(issuer, [x509.Certificate.load(leaf).serial_number], nonce=secrets.token_bytes(16))
    results: list[httpx.Response] = []
    calls = [
        lambda: results.append(httpx.post(f"{live_url}/v1/ocsp", content=der, headers=OCSP_REQUEST, timeout=20)),
        lambda: results.append(httpx.get(f"{live_url}/v1/ocsp/{base64.b64encode(der).decode()}", timeout=20)),
    ]
    for call in calls:
        worker = threading.Thread(target=call)
        worker.start()
        try:
            health = httpx.get(f"{live_url}/v1/health", timeout=3)
            assert health.status_code == 200
        finally:
            release.set()
            worker.join(20)
            release.clear()
    assert seen == [False, False]
    assert [_status(r) for r in results] == ["successful", "successful"]


# -- rate limit --------------------------------------------------------------------------------------


def test_a_client_over_its_budget_is_told_try_later(
    context: Context, ca_service: CertificateAuthorityService, issued: tuple[bytes, bytes], live_url: str,
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    leaf, issuer = issued
    monkeypatch.setattr(context, "ocsp_rate_limiter", RateLimiter(per_minute=6, burst=2))
    calls: list[bytes] = []
    real = context.ca.ocsp_answer

    def counted(der: bytes) -> OCSPAnswer:
        calls.append(der)
        return real(der)

    monkeypatch.setattr(context.ca, "ocsp_answer", counted)
    der = _request(issuer, [x509.Certificate.load(leaf).serial_number], nonce=secrets.token_bytes(16))  # signed
    assert _status(httpx.post(f"{live_url}/v1/ocsp", content=der, headers=OCSP_REQUEST)) == "successful"
    assert _status(httpx.get(f"{live_url}/v1/ocsp/{base64.b64encode(der).decode()}")) == "successful"

    refused = httpx.post(f"{live_url}/v1/ocsp", content=der, headers=OCSP_REQUEST)
    assert _status(refused) == "try_later"
    assert int(refused.headers["retry-after"]) >= 1 and refused.headers["cache-control"] == "no-store"
    assert _status(httpx.get(f"{live_url}/v1/ocsp/{base64.b64encode(der).decode()}")) == "try_later"
    assert len(calls) == 2  # a refused request costs no lookup and no signature
    assert "Responder Error: trylater (3)" in _openssl_reads(tmp_path, refused.content)

    # openssl as the client, end to end
    issuer_pem = tmp_path / "issuer.pem"
    issuer_pem.write_bytes(pem(ca_service.ca_certificate("cn-370000-sm2").dump()))
    leaf_pem = tmp_path / "leaf.pem"
    leaf_pem.write_bytes(pem(leaf))
    done = openssl("ocsp", "-issuer", str(issuer_pem), "-cert", str(leaf_pem), "-url", f"{live_url}/v1/ocsp",
                   "-noverify", check=False)  # fmt: skip
    assert "Responder Error: trylater (3)" in (done.stdout + done.stderr).decode()


def test_budgets_are_per_client() -> None:
    limiter = RateLimiter(per_minute=60, burst=1)
    assert limiter.wait("10.0.0.1") is None
    wait = limiter.wait("10.0.0.1")
    assert wait is not None and 0 < wait <= 1.0
    assert limiter.wait("10.0.0.2") is None  # another client is not held back


def _mutated(good: bytes, how: str) -> bytes:
    """A request whose CertID is DER-valid on the outside but malformed where the responder reads it late:
    hash parameters that are not NULL-or-absent, an issuerKeyHash with another tag."""
    request = ocsp.OCSPRequest.load(good)
    cert_id = request["tbs_request"]["request_list"][0]["req_cert"]
    if how == "parameters":
        algorithm = cert_id["hash_algorithm"].dump()
        oid = algorithm[2 : 2 + 2 + algorithm[3]]  # the OBJECT IDENTIFIER's TLV
        bad = b"\x30" + bytes([len(oid) + 2]) + oid + b"\x33\x00"  # parameters: an unknown tag
        return good.replace(algorithm, bad)
    key_hash = cert_id["issuer_key_hash"].dump()
    return good.replace(key_hash, b"\x16" + key_hash[1:])  # IA5String where an OCTET STRING belongs


@pytest.mark.parametrize("how", ["parameters", "key_hash"])
def test_a_certid_malformed_inside_is_a_malformed_request_not_a_500(
    issued: tuple[bytes, bytes], live_url: str, tmp_path: Path, how: str
) -> None:
    """Parts of a CertID read only when answering (the stored answer's CertID spelling, the responder
    match): a review found both answering HTTP 500. Over POST and GET."""
    leaf, issuer = issued
    bad = _mutated(_request(issuer, [x509.Certificate.load(leaf).serial_number]), how)
    post = httpx.post(f"{live_url}/v1/ocsp", content=bad, headers=OCSP_REQUEST)
    get = httpx.get(f"{live_url}/v1/ocsp/" + base64.urlsafe_b64encode(bad).decode())
    for response in (post, get):
        assert _status(response) == "malformed_request"
        assert "Responder Error: malformedrequest (1)" in _openssl_reads(tmp_path, response.content)
