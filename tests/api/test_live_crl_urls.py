"""The trust list's `endpoints.crls` and `GET /v1/cas` `crls` name every live CRL scope of a CA (review
finding 8): after a rollover the earlier key's CRL (at the URL its certificates carry) as well as the
current key's; `endpoints.crl` / `crl_url` still name the current key's alone."""

from __future__ import annotations

import secrets
from pathlib import Path

from fastapi.testclient import TestClient

from api.context import Context
from ca.rollover import roll_over
from keys.custody import KeyAlgorithm
from tests.fixtures import ORG_SUBJECT, PUBLIC_URL, make_csr


def test_every_live_crl_scope_is_advertised(client: TestClient, context: Context, tmp_path: Path) -> None:
    name = f"tmp-{secrets.token_hex(3)}-p256"
    context.ca.create_ca(
        name,
        algorithm=KeyAlgorithm.P256,
        subject={"country_name": "CN", "organization_name": "trustseal test", "common_name": f"{name} CA"},
        ca_profile="regional-ca",
        parent="cn-root-p256",
        region_code="440000",
        actor="test",
    )
    old_url = f"{PUBLIC_URL}/v1/cas/{name}/crl"
    context.ca.issue(make_csr(tmp_path, algorithm="p256", subject=ORG_SUBJECT), "org-seal", name)
    listed = {ca["name"]: ca for ca in client.get("/v1/cas").json()}
    assert listed[name]["crls"] == [old_url] == [listed[name]["crl_url"]]
    rolled = roll_over(context.ca, name, actor="test")
    new_url = f"{PUBLIC_URL}/v1/cas/{name}/crl/{rolled.crl_scope}"
    listed = {ca["name"]: ca for ca in client.get("/v1/cas").json()}
    assert listed[name]["crl_url"] == new_url and listed[name]["crls"] == [new_url, old_url]
    document = context.verification.publisher.current()
    region = next(r for r in document["regions"] if any(ca["name"] == name for ca in r["cas"]))
    assert region["endpoints"]["crl"][name] == new_url
    assert region["endpoints"]["crls"][name] == [new_url, old_url]
    for each in document["regions"]:  # every CA's list starts with its current key's CRL
        assert {ca: urls[0] for ca, urls in each["endpoints"]["crls"].items()} == each["endpoints"]["crl"]
    # every advertised URL answers with a CRL
    for url in region["endpoints"]["crls"][name]:
        response = client.get(url.removeprefix(PUBLIC_URL))
        assert response.status_code == 200, (url, response.text[:200])
