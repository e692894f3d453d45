"""One document, one verdict: the service (its CRLs, seal and licence registry) and an offline verifier
holding only the trust list agree; a document sealed B-T a moment ago verifies at once; the public seal
status answers by esID with the registered seal's SM3 (issue 10)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.context import Context
from gm.sm3 import sm3
from seal.demo import create_demo_seals
from signing.pdf import Placement
from signing.service import Caller
from tests.fixtures import make_pdf
from verify.report import PASSED
from verify.service import Verifier
from verify.trust import TrustStore

CALLER = Caller(role="issuer", name="test", seal_ids=("*",))


@pytest.fixture(scope="module")
def client(context: Context) -> Iterator[TestClient]:
    create_demo_seals(context.seals, actor="test")
    with TestClient(create_app(context), raise_server_exceptions=False) as test_client:
        yield test_client


def _verdict(report: dict[str, Any]) -> tuple[str, list[tuple[str, str, str]]]:
    checks = [(c["name"], c["status"], c["code"]) for s in report["signatures"] for c in s["checks"]]
    return report["result"], checks


def _offline(context: Context, client: TestClient) -> Verifier:
    store = TrustStore()
    store.add_list(client.get("/v1/trust-list").json(), roots=[context.ca.ca_certificate("cn-root-sm2")])
    return Verifier(store)  # nothing but the list and the document


@pytest.mark.parametrize("seal_id", ["demo-370000-sm2", "demo-530000-p256"])
def test_online_and_offline_give_one_verdict_for_a_b_lt_document(
    client: TestClient, context: Context, seal_id: str
) -> None:
    pdf = context.signing.seal_pdf(make_pdf(), seal_id=seal_id, caller=CALLER, placement=Placement(), level="B-LT").pdf
    online = client.post("/v1/verify", files={"file": ("doc.pdf", pdf)}).json()
    offline = _offline(context, client).verify(pdf).as_json()
    assert online["result"] == PASSED, online
    assert _verdict(online) == _verdict(offline)


def test_a_document_sealed_b_t_a_moment_ago_verifies_passed(client: TestClient) -> None:
    """The default level; the service's revocation data is fresh at the validation time."""
    issuer_token = _token(client, "issuer")
    sealed = client.post(
        "/v1/sign",
        headers={"Authorization": f"Bearer {issuer_token}"},
        data={"seal_id": "demo-370000-sm2"},
        files={"file": ("doc.pdf", make_pdf())},
    )
    assert sealed.status_code == 200, sealed.text
    report = client.post("/v1/verify", files={"file": ("doc.pdf", sealed.content)}).json()
    assert report["result"] == PASSED, report
    checks = {c["name"]: c["code"] for c in report["signatures"][0]["checks"]}
    assert checks["signing_time"] == "TIMESTAMP"  # B-T by default


def _token(client: TestClient, role: str) -> str:
    from api.auth import create_token

    context: Context = client.app.state.context  # type: ignore[attr-defined]
    return create_token(context.db, role, f"{role}-{time.monotonic_ns()}", ["*"] if role == "issuer" else None)


def test_seal_status_by_esid_answers_the_registered_seals_sm3(client: TestClient, context: Context) -> None:
    row = context.seals.get("demo-370000-sm2")
    by_id = client.get("/v1/seals/demo-370000-sm2/status").json()
    by_es_id = client.get(f"/v1/seals/{row.es_id}/status").json()
    assert by_id == by_es_id
    assert by_id["sm3"] == sm3(row.esl_der).hex() == sm3(client.get("/v1/seals/demo-370000-sm2/esl").content).hex()


def test_our_oid_arc_is_one_configurable_private_enterprise_arc() -> None:
    """The demo keeps RFC 5612's documentation arc; another arc is configured, never a 2.25 UUID arc
    (pkilint and GmSSL refuse arcs over 32 bits); verifiers keep recognising the demo arc."""
    probe = "import gm.oids as o; print(o.SESEAL_ATTRIBUTE, sorted(o.SESEAL_ATTRIBUTES), o.IS_DEMO_ARC)"

    def run(arc: str | None) -> subprocess.CompletedProcess[str]:
        env = {"PATH": "/usr/bin:/bin"} | ({"TRUSTSEAL_OID_ARC": arc} if arc else {})
        return subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60,
                              cwd=str(__import__("pathlib").Path(__file__).parents[2]))  # fmt: skip

    demo = run(None)
    assert demo.stdout.split() == ["1.3.6.1.4.1.32473.2.1", "['1.3.6.1.4.1.32473.2.1']", "True"]
    own = run("1.3.6.1.4.1.61234")
    assert own.returncode == 0 and own.stdout.startswith("1.3.6.1.4.1.61234.2.1 ")
    assert "1.3.6.1.4.1.32473.2.1" in own.stdout and own.stdout.split()[-1] == "False"
    for bad in ("2.25.329800735698586629295641978511506172918", "1.3.6.1.4.1.4294967296", "1.2.3"):
        refused = run(bad)
        assert refused.returncode != 0 and "TRUSTSEAL_OID_ARC" in refused.stderr
