"""caIssuers after an (online) rollover, checked by pyhanko-certvalidator: a certificate issued before the
rollover carries the plain `/v1/cas/{ca}/certificate`, which keeps serving the first key's certificate (its
issuer); one issued after carries `/certificate/k<n>`. Each certificate's AIA is followed through the app and
the fetched certificate is the only intermediate the validator gets; `GET /v1/cas` and `GET /v1/cas/{ca}`
show the current certificate. (The SM2 case under the offline root, checked by OpenSSL:
tests/api/test_ceremony_rollover_api.py.)"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

import pytest
from asn1crypto import pem, x509
from fastapi.testclient import TestClient
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError

from api.context import Context
from tests.fixtures import ORG_SUBJECT, make_csr

CA = "cn-370000-p256"
ROOT = "cn-root-p256"


def _leaf(context: Context, tmp_path_factory: pytest.TempPathFactory) -> x509.Certificate:
    csr = make_csr(tmp_path_factory.mktemp("leaf"), algorithm="p256", subject=ORG_SUBJECT)
    return x509.Certificate.load(context.ca.issue(csr, "org-seal", CA).der)


@pytest.fixture(scope="module")
def rolled(
    client: TestClient, context: Context, officer: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    steps: dict[str, Any] = {"old": context.ca.ca_certificate(CA), "before": _leaf(context, tmp_path_factory)}
    steps["rotation"] = client.post(f"/v1/keys/{CA}/rotate", headers=officer)
    steps["after"] = _leaf(context, tmp_path_factory)
    steps["new"] = context.ca.ca_certificate(CA)
    return steps


def _fetch_issuer(client: TestClient, certificate: x509.Certificate) -> tuple[str, x509.Certificate]:
    urls = [
        d["access_location"].native
        for d in certificate.authority_information_access_value or []
        if d["access_method"].native == "ca_issuers"
    ]
    assert len(urls) == 1, urls
    fetched = client.get(urlsplit(urls[0]).path)
    assert fetched.status_code == 200 and fetched.headers["content-type"] == "application/pkix-cert", fetched.text
    return urls[0], x509.Certificate.load(fetched.content)


def _validates(root: x509.Certificate, intermediate: x509.Certificate, leaf: x509.Certificate) -> bool:
    """pyhanko-certvalidator builds and validates the path with the fetched certificate as its only
    intermediate (revocation soft-fail: this is about the issuer, not its status)."""
    context = ValidationContext(trust_roots=[root], allow_fetching=False, revocation_mode="soft-fail")
    validator = CertificateValidator(leaf, intermediate_certs=[intermediate], validation_context=context)
    try:
        asyncio.run(validator.async_validate_usage({"digital_signature"}))
    except (PathBuildingError, PathValidationError):
        return False
    return True


def test_each_certificate_chases_its_own_issuer(client: TestClient, context: Context, rolled: dict[str, Any]) -> None:
    assert rolled["rotation"].status_code == 200, rolled["rotation"].text
    old, new = rolled["old"], rolled["new"]
    assert old.key_identifier != new.key_identifier
    root = context.ca.ca_certificate(ROOT)

    url, issuer = _fetch_issuer(client, rolled["before"])
    assert url.endswith(f"/v1/cas/{CA}/certificate")
    assert issuer.dump() == old.dump()
    assert _validates(root, issuer, rolled["before"])
    assert not _validates(root, new, rolled["before"])  # the current certificate is not its issuer

    url, issuer = _fetch_issuer(client, rolled["after"])
    assert url.endswith(
        f"/v1/cas/{CA}/certificate/k{context.custody.get(context.ca.snapshot().get(CA).key_ref).version}"
    )
    assert issuer.dump() == new.dump()
    assert _validates(root, issuer, rolled["after"])


def test_the_listings_show_the_current_certificate(client: TestClient, rolled: dict[str, Any]) -> None:
    assert rolled["rotation"].status_code == 200
    new = rolled["new"]
    listed = next(ca for ca in client.get("/v1/cas").json() if ca["name"] == CA)
    assert listed["serial"] == f"{new.serial_number:x}"
    assert client.get(urlsplit(listed["certificate_url"]).path).content == new.dump()
    detail = client.get(f"/v1/cas/{CA}").json()
    assert pem.unarmor(detail["certificate_pem"].encode())[2] == new.dump()
    assert {k: v for k, v in detail.items() if k != "certificate_pem"} == listed
    missing = client.get("/v1/cas/no-such-ca")
    assert (missing.status_code, missing.json()["code"]) == (404, "unknown_ca")
