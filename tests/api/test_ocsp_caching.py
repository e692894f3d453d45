"""GET /v1/ocsp answered from a pre-signed response is cacheable the RFC 5019 way (§6.2): `max-age` no
longer than nextUpdate − now, `ETag`, `Last-Modified` = thisUpdate, `Expires` = nextUpdate, 304 for a
matching `If-None-Match`; live answers (a nonce) and POST answers are `no-store`. The app's scheduler task
re-signs stored responses (api/app.py `_refresh_ocsp`)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from asn1crypto import core, ocsp, x509
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import _refresh_ocsp, create_app
from api.context import Context
from api.routes.ocsp import MAX_CACHE_SECONDS, caching_headers
from ca.authority import CertificateAuthorityService
from ca.ocsp import OCSP_VALIDITY
from keys.local import LocalKeystore
from policies.profiles import default_profiles
from store.db import Database
from store.models import OCSPResponse
from tests.fixtures import ORG_SUBJECT, PUBLIC_URL, make_csr

OCSP_REQUEST = {"Content-Type": "application/ocsp-request"}


def _request(issuer: x509.Certificate, serial: int, nonce: bytes | None = None) -> str:
    cert_id = {
        "hash_algorithm": {"algorithm": "sha1"},
        "issuer_name_hash": hashlib.sha1(issuer.subject.dump()).digest(),
        "issuer_key_hash": hashlib.sha1(issuer.public_key["public_key"].contents[1:]).digest(),
        "serial_number": serial,
    }
    tbs: dict[str, object] = {"request_list": [{"req_cert": cert_id}]}
    if nonce is not None:
        tbs["request_extensions"] = [{"extn_id": "nonce", "extn_value": core.OctetString(nonce)}]
    return base64.urlsafe_b64encode(ocsp.OCSPRequest({"tbs_request": tbs}).dump()).decode().rstrip("=")


def _issue(context: Context, tmp_path: Path) -> tuple[x509.Certificate, int]:
    issued = context.ca.issue(make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT), "org-seal", "cn-370000-sm2")
    return context.ca.ca_certificate("cn-370000-sm2"), issued.certificate.serial_number


def _single(der: bytes) -> ocsp.SingleResponse:
    single: ocsp.SingleResponse = ocsp.OCSPResponse.load(der).basic_ocsp_response["tbs_response_data"]["responses"][0]
    return single


def test_a_presigned_get_answer_carries_rfc_5019_caching_headers(
    client: TestClient, context: Context, tmp_path: Path
) -> None:
    issuer, serial = _issue(context, tmp_path)
    path = f"/v1/ocsp/{_request(issuer, serial)}"
    answer = client.get(path)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/ocsp-response"
    single = _single(answer.content)
    this_update, next_update = single["this_update"].native, single["next_update"].native
    assert next_update - this_update == OCSP_VALIDITY
    control = dict(
        [*part.split("=", 1), ""][:2] for part in (p.strip() for p in answer.headers["cache-control"].split(","))
    )
    assert {"public", "no-transform", "must-revalidate"} <= set(control)
    max_age = int(control["max-age"])
    assert 0 < max_age <= (next_update - datetime.now(UTC)).total_seconds() + 1
    assert parsedate_to_datetime(answer.headers["last-modified"]) == this_update
    assert parsedate_to_datetime(answer.headers["expires"]) == next_update
    etag = answer.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')

    again = client.get(path)
    assert again.content == answer.content and again.headers["etag"] == etag
    unchanged = client.get(path, headers={"If-None-Match": etag})
    assert unchanged.status_code == 304 and unchanged.content == b"" and unchanged.headers["etag"] == etag
    other = client.get(path, headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200 and other.content == answer.content

    posted = client.post("/v1/ocsp", content=base64.urlsafe_b64decode(path.rsplit("/", 1)[1] + "=="),
                         headers=OCSP_REQUEST)  # fmt: skip
    assert posted.content == answer.content and posted.headers["cache-control"] == "no-store"
    assert "etag" not in posted.headers

    context.ca.revoke(format(serial, "x"), "superseded")
    revoked = client.get(path, headers={"If-None-Match": etag})  # the old validator no longer matches
    assert revoked.status_code == 200 and _single(revoked.content)["cert_status"].name == "revoked"
    assert revoked.headers["etag"] != etag


def test_a_second_app_on_the_same_database_answers_revoked_at_once(
    client: TestClient, context: Context, keystore: LocalKeystore, tmp_path: Path
) -> None:
    """Two services (own engine, caches, snapshot) on one database, the way two replicas run: the other one
    serves the stored `good`, this one revokes, the other's very next GET is `revoked` with a new ETag."""
    db = Database(context.db.url)
    try:
        service = CertificateAuthorityService(db, keystore, default_profiles(), PUBLIC_URL)
        other = TestClient(create_app(Context(settings=context.settings, db=db, custody=keystore, ca=service)))
        issuer, serial = _issue(context, tmp_path)
        path = f"/v1/ocsp/{_request(issuer, serial)}"
        first = other.get(path)
        assert _single(first.content)["cert_status"].name == "good"
        assert other.get(path).headers["etag"] == first.headers["etag"]  # served as stored
        assert client.get(path).content == first.content  # this app serves the same stored bytes
        context.ca.revoke(format(serial, "x"), "keyCompromise")
        after = other.get(path)
        assert (
            _single(after.content)["cert_status"].name == "revoked" and after.headers["etag"] != first.headers["etag"]
        )
    finally:
        db.dispose()


def test_a_nonce_answer_is_not_for_caches(client: TestClient, context: Context, tmp_path: Path) -> None:
    issuer, serial = _issue(context, tmp_path)
    answer = client.get(f"/v1/ocsp/{_request(issuer, serial, secrets.token_bytes(16))}")
    assert answer.status_code == 200 and _single(answer.content)["cert_status"].name == "good"
    assert answer.headers["cache-control"] == "no-store" and "etag" not in answer.headers


def test_max_age_never_passes_next_update() -> None:
    now = datetime(2026, 12, 2, 12, 0, 0, tzinfo=UTC)
    for left in (timedelta(hours=4), timedelta(seconds=90.9), timedelta(0), timedelta(seconds=-30)):
        headers = caching_headers(b"x", now - timedelta(hours=1), now + left, now)
        max_age = int(headers["Cache-Control"].split("max-age=")[1].split(",")[0])
        assert 0 <= max_age <= max(0, left.total_seconds())
        assert max_age <= MAX_CACHE_SECONDS  # a cached `good` outlives a revocation by at most this
    assert MAX_CACHE_SECONDS <= 300


@pytest.fixture
def later(context: Context) -> Iterator[datetime]:
    """The responder's clock past the refresh point of every stored response."""
    moment = datetime.now(UTC).replace(microsecond=0) + OCSP_VALIDITY / 2
    context.ca.ocsp_responder.clock = lambda: moment
    yield moment
    context.ca.ocsp_responder.clock = lambda: datetime.now(UTC)


def test_the_app_scheduler_task_re_signs_stored_responses(
    client: TestClient, context: Context, tmp_path: Path, later: datetime
) -> None:
    issuer, serial = _issue(context, tmp_path)
    context.ca.ocsp_responder.clock = lambda: datetime.now(UTC)
    client.get(f"/v1/ocsp/{_request(issuer, serial)}")
    context.ca.ocsp_responder.clock = lambda: later

    def this_update() -> datetime:
        with context.db.session() as session:
            row = session.scalars(select(OCSPResponse).where(OCSPResponse.serial == format(serial, "x"))).one()
            return row.this_update

    before = this_update()

    async def one_round() -> None:
        task = asyncio.create_task(_refresh_ocsp(context, 0.01))
        for _ in range(500):
            await asyncio.sleep(0.01)
            if this_update() != before:
                break
        task.cancel()

    asyncio.run(one_round())
    assert this_update() == later
