"""CA key rollover and OCSP-signer rotation through the API (`POST /v1/keys/{key}/rotate`, issue 12).

Documents sealed (B-T and B-LT, demo seal demo-370000-sm2) before a regional CA rollover and before a root
rollover verify PASSED after them, online (POST /v1/verify) and offline (`trustseal verify` with the trust
list file and the root the relying party held); documents sealed afterwards chain to the new key. Sealing
(POST /v1/sign) and issuance (POST /v1/certificates) keep succeeding while a CA key, an OCSP signer and a
seal holder key rotate. A root rollover is the approved operation `key.rotate`. Refusals change nothing.
The module shares one database: tests run in file order and build on each other.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from asn1crypto import pem, x509
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from api.approvals import Approvals
from api.auth import create_token
from api.cli import app as cli
from api.context import Context
from api.problems import PROBLEM_JSON
from ca.withdrawal import withdraw_ca
from keys.custody import KeyAlgorithm
from policies.approvals import parse_policy
from seal.demo import demo_seal_ids
from seal.service import SealService
from signing.pdf import Placement
from signing.service import Caller
from store.models import Certificate, Event, TrustListRecord
from tests.fixtures import ORG_SUBJECT, make_csr, make_pdf
from verify.report import PASSED

SEAL = "demo-370000-sm2"
REGIONAL = "cn-370000-sm2"
ROOT = "cn-root-sm2"
CALLER = Caller(role="issuer", name="t", seal_ids=("*",))
runner = CliRunner()


@pytest.fixture(scope="module", autouse=True)
def _no_public_rate_limit(context: Context) -> None:
    """This module verifies every document its loads produce (the whole module passes the public
    120/min budget of POST /v1/verify from one test client: 429 `rate_limited`); 0 turns it off."""
    from api.ratelimit import RateLimiter

    context.rate_limiter = RateLimiter(0)


@pytest.fixture(scope="module")
def sealed_before(context: Context, seal_service: SealService) -> dict[str, bytes]:
    """Documents sealed before any rollover, at both levels that carry a timestamp."""
    del seal_service  # the demo seals exist
    return {
        level: context.signing.seal_pdf(make_pdf(), seal_id=SEAL, caller=CALLER, placement=Placement(), level=level).pdf
        for level in ("B-T", "B-LT")
    }


@pytest.fixture(scope="module")
def held_root(context: Context, sealed_before: dict[str, bytes]) -> bytes:
    """The SM2 root certificate a relying party installed before any rollover."""
    del sealed_before
    return context.ca.ca_certificate(ROOT).dump()


def _problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["code"] == code


def _online(client: TestClient, pdf: bytes) -> dict[str, Any]:
    response = client.post("/v1/verify", files={"file": ("doc.pdf", pdf, "application/pdf")})
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def _offline(client: TestClient, pdf: bytes, roots: list[bytes], tmp_path: Path) -> dict[str, Any]:
    """`trustseal verify` with the service's current trust list as a file and the given roots: no server,
    no home."""
    listing = tmp_path / "trust-list.json"
    listing.write_text(json.dumps(client.get("/v1/trust-list").json()))
    root = tmp_path / "roots.pem"
    root.write_bytes(b"".join(pem.armor("CERTIFICATE", der) for der in roots))
    document = tmp_path / "doc.pdf"
    document.write_bytes(pdf)
    args = ["verify", str(document), "--json", "--trust-list", str(listing), "--root", str(root)]
    result = runner.invoke(cli, args, env={"TRUSTSEAL_HOME": str(tmp_path / "no-home")})
    assert result.stdout.startswith("{"), result.output
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def _still_verify(client: TestClient, documents: dict[str, bytes], roots: list[bytes], tmp_path: Path) -> None:
    """Online every document PASSED; offline a B-LT document PASSED on the LTV material it carries, and a
    B-T one, which carries none, as it did before any rollover: INDETERMINATE (TRY_LATER) for want of
    revocation information, never FAILED, every other check PASSED."""
    for level, pdf in documents.items():
        online = _online(client, pdf)
        assert online["result"] == PASSED, (level, online)
        offline = _offline(client, pdf, roots, tmp_path)
        if "B-LT" in level:
            assert offline["result"] == PASSED, (level, offline)
        else:
            assert (offline["result"], offline["subindication"]) == ("INDETERMINATE", "TRY_LATER"), (level, offline)
            checks = {c["name"]: c["status"] for c in offline["signatures"][0]["checks"]}
            assert {k: v for k, v in checks.items() if v != PASSED} == {"revocation": "INDETERMINATE"}, checks


def _signer_certificate(pdf: bytes) -> x509.Certificate:
    from io import BytesIO

    from pyhanko.pdf_utils.reader import PdfFileReader

    signer: x509.Certificate = PdfFileReader(BytesIO(pdf)).embedded_signatures[-1].signer_cert
    return signer


def _entry(client: TestClient, name: str) -> dict[str, Any]:
    listing = client.get("/v1/trust-list").json()
    entry: dict[str, Any] = next(ca for region in listing["regions"] for ca in region["cas"] if ca["name"] == name)
    return entry


def _der(text: str) -> bytes:
    der: bytes = pem.unarmor(text.encode("ascii"))[2]
    return der


def _state(context: Context) -> tuple[object, ...]:
    with context.db.session() as session:
        counts = tuple(
            session.scalar(select(func.count()).select_from(t)) for t in (Certificate, Event, TrustListRecord)
        )
    versions = {name: len(context.custody.versions(name)) for name in context.custody.names()}
    return counts, versions


def test_documents_verify_before_any_rollover(
    client: TestClient, sealed_before: dict[str, bytes], held_root: bytes, tmp_path: Path
) -> None:
    """The baseline the rollovers below must keep."""
    _still_verify(client, sealed_before, [held_root], tmp_path)


@pytest.fixture(scope="module")
def regional_rollover(
    client: TestClient, context: Context, officer: dict[str, str], sealed_before: dict[str, bytes], held_root: bytes
) -> tuple[x509.Certificate, Any]:
    """The regional CA's rollover, done once for the module (tests run in any order, on any worker): the CA
    certificate before it and the rotation's response."""
    del sealed_before, held_root  # made before the rollover
    old = context.ca.ca_certificate(REGIONAL)
    return old, client.post(f"/v1/keys/{REGIONAL}/rotate", headers=officer)


def test_regional_rollover_keeps_old_documents_and_new_ones_chain_to_the_new_key(
    client: TestClient,
    context: Context,
    officer: dict[str, str],
    sealed_before: dict[str, bytes],
    held_root: bytes,
    regional_rollover: tuple[x509.Certificate, Any],
    tmp_path: Path,
) -> None:
    old, response = regional_rollover
    assert response.status_code == 200, response.text
    result = response.json()
    assert set(result) == {"key", "version", "certificate_pem", "previous_version"}
    assert result["key"] == REGIONAL and result["version"] > result["previous_version"]
    new = x509.Certificate.load(_der(result["certificate_pem"]))
    assert new.subject == old.subject and new.key_identifier != old.key_identifier
    # the trust list, republished at once: `certificate` the newest, `certificates` both
    entry = _entry(client, REGIONAL)
    assert _der(entry["certificate"]) == new.dump()
    assert [_der(c) for c in entry["certificates"]] == [new.dump(), old.dump()]
    assert entry["links"] == [] and entry["status"] == "granted"
    # the inventory shows the CA's current certificate
    keys = {row["key"]: row for row in client.get("/v1/keys", headers=officer).json()}
    assert keys[REGIONAL]["certificate"]["serial"] == f"{new.serial_number:x}"
    assert keys[REGIONAL]["certificate"]["version"] == result["version"] == keys[REGIONAL]["current_version"]
    _still_verify(client, sealed_before, [held_root], tmp_path)
    # the seal's holder certificate is still the old key's until the seal is re-keyed; then it is the new key's
    rekeyed = client.post(f"/v1/keys/seal.{SEAL}/rotate", headers=officer)
    assert rekeyed.status_code == 200, rekeyed.text
    after = context.signing.seal_pdf(make_pdf(), seal_id=SEAL, caller=CALLER, placement=Placement(), level="B-LT").pdf
    assert _signer_certificate(after).authority_key_identifier == new.key_identifier
    _still_verify(client, {"B-LT after": after}, [held_root], tmp_path)


@pytest.fixture(scope="module")
def root_rollover(context: Context, client: TestClient, held_root: bytes) -> dict[str, Any]:
    """The root's rollover under a policy where `key.rotate` needs two officers, done once for the module
    (the policy is lifted before any other test runs): what each step answered, for the tests to check."""
    text = "version: 1\nexpires_after_hours: 24\noperations:\n  key.rotate: 2\n"
    context.approvals = Approvals(context.db, parse_policy(text, "test"))
    try:
        run = secrets.token_hex(3)
        first, second = (
            {"Authorization": f"Bearer {create_token(context.db, 'officer', f'rollover-officer-{run}-{i}')}"}
            for i in range(2)
        )
        steps: dict[str, Any] = {"versions": len(context.custody.versions(ROOT))}
        steps["pending"] = client.post(f"/v1/keys/{ROOT}/rotate", headers=first)
        steps["versions_pending"] = len(context.custody.versions(ROOT))
        steps["root_pending"] = context.ca.ca_certificate(ROOT).dump()
        approval_id = steps["pending"].json().get("approval", {}).get("id")
        steps["own"] = client.post(f"/v1/approvals/{approval_id}/approve", headers=first)
        steps["done"] = client.post(f"/v1/approvals/{approval_id}/approve", headers=second)
        # an OCSP signer's rotation stays one officer's, even under this policy
        steps["ocsp"] = client.post(f"/v1/keys/{REGIONAL}.ocsp/rotate", headers=first)
        return steps
    finally:
        context.approvals = Approvals(context.db, parse_policy("version: 1\noperations: {}\n", "test"))


def test_root_rollover_waits_for_a_second_officer_and_keeps_everything_verifying(
    client: TestClient,
    context: Context,
    root_rollover: dict[str, Any],
    sealed_before: dict[str, bytes],
    held_root: bytes,
    tmp_path: Path,
) -> None:
    versions, pending = root_rollover["versions"], root_rollover["pending"]
    assert pending.status_code == 202, pending.text
    approval = pending.json()["approval"]
    assert (approval["operation"], approval["status"], approval["required"]) == ("key.rotate", "pending", 2)
    assert root_rollover["versions_pending"] == versions  # nothing rotated yet
    assert root_rollover["root_pending"] == held_root
    _problem(root_rollover["own"], 403, "approval_own_request")
    done = root_rollover["done"]
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["approval"]["status"] == "executed"
    result = body["result"]
    assert set(result) == {"key", "version", "certificate_pem", "previous_version"}
    assert result["key"] == ROOT and result["version"] == versions + 1
    new_root = x509.Certificate.load(_der(result["certificate_pem"]))
    old_root = x509.Certificate.load(held_root)
    assert new_root.subject == old_root.subject and new_root.key_identifier != old_root.key_identifier
    entry = _entry(client, ROOT)
    assert [_der(c) for c in entry["certificates"]] == [new_root.dump(), held_root]
    links = [x509.Certificate.load(_der(text)) for text in entry["links"]]
    assert {link.public_key.dump() for link in links} == {new_root.public_key.dump(), old_root.public_key.dump()}
    with context.db.session() as session:
        event = session.scalars(select(Event).where(Event.type == "ca.rolled_over", Event.subject == ROOT)).one()
        assert len(event.payload["links"]) == 2 and event.actor is not None
    # the regional CAs under it keep their certificates (old root key) and keep working
    _still_verify(client, sealed_before, [held_root], tmp_path)
    _still_verify(client, sealed_before, [held_root, new_root.dump()], tmp_path)
    # a relying party that installed only the NEW root: the trust-list signer (certified by the old root key)
    # is reached through OldWithNew, which the new root signed (verify/trust.py linked_roots)
    _still_verify(client, sealed_before, [new_root.dump()], tmp_path)
    pdf = context.signing.seal_pdf(make_pdf(), seal_id=SEAL, caller=CALLER, placement=Placement(), level="B-LT").pdf
    _still_verify(client, {"B-LT after the root": pdf}, [held_root], tmp_path)
    assert root_rollover["ocsp"].status_code == 200, root_rollover["ocsp"].text


def test_the_national_issuing_ca_rolls_over_and_timestamps_keep_verifying(
    client: TestClient, context: Context, officer: dict[str, str], held_root: bytes, tmp_path: Path
) -> None:
    """cn-100000-sm2 certifies the TSA unit: after its rollover the unit's certificate (old key) travels with
    the old CA certificate, so B-T and B-LT documents sealed before and after verify."""
    national = "cn-100000-sm2"
    before = {
        level: context.signing.seal_pdf(make_pdf(), seal_id=SEAL, caller=CALLER, placement=Placement(), level=level).pdf
        for level in ("B-T", "B-LT")
    }
    response = client.post(f"/v1/keys/{national}/rotate", headers=officer)
    assert response.status_code == 200, response.text
    after = {
        f"{level} after": context.signing.seal_pdf(
            make_pdf(), seal_id=SEAL, caller=CALLER, placement=Placement(), level=level
        ).pdf
        for level in ("B-T", "B-LT")
    }
    unit = context.signing.tsa.unit("sm2")
    assert unit.chain[0] != context.ca.ca_certificate(national).dump()  # the old key's certificate
    assert x509.Certificate.load(unit.chain[0]).key_identifier == unit.certificate.authority_key_identifier
    _still_verify(client, {**before, **after}, [held_root], tmp_path)


def test_only_links_a_held_root_signed_count(
    client: TestClient, context: Context, root_rollover: dict[str, Any]
) -> None:
    """A link certificate counts as a root's other key only when a root the caller holds signed it: one
    with the root's name made by another key (here a regional CA's) is ignored."""
    assert root_rollover["done"].status_code == 200
    from datetime import UTC, datetime, timedelta

    from ca import certificates as certs
    from verify.trust import linked_roots

    listing = client.get("/v1/trust-list").json()
    entry = _entry(client, ROOT)
    new_root, old_root = (x509.Certificate.load(_der(text)) for text in entry["certificates"])
    now = datetime.now(UTC)
    assert [link.public_key.dump() for link in linked_roots(listing, [new_root], [], now)] == [
        old_root.public_key.dump()
    ]
    assert [link.public_key.dump() for link in linked_roots(listing, [old_root], [], now)] == [
        new_root.public_key.dump()
    ]
    forged = certs.sign_certificate(
        issuer=new_root.subject,
        subject=new_root.subject,
        spki=context.ca.ca_certificate(REGIONAL).public_key,
        serial=certs.new_serial(),
        not_before=now - timedelta(minutes=5),
        not_after=now + timedelta(days=30),
        extensions=certs.ca_extensions(
            context.ca.ca_certificate(REGIONAL).public_key, new_root.key_identifier, ["key_cert_sign", "crl_sign"], None
        ),
        signer=context.custody.signer(context.ca.snapshot().get(REGIONAL).key_ref),
    )
    tampered = json.loads(json.dumps(listing))
    for region in tampered["regions"]:
        for ca in region["cas"]:
            if ca["name"] == ROOT:
                ca["links"] = [pem.armor("CERTIFICATE", forged.dump()).decode("ascii")]
    assert linked_roots(tampered, [new_root], [], now) == []


def test_refusals_change_nothing(client: TestClient, context: Context, officer: dict[str, str]) -> None:
    name = f"gone-{secrets.token_hex(3)}-sm2"
    context.ca.create_ca(
        name,
        algorithm=KeyAlgorithm.SM2,
        subject={"country_name": "CN", "organization_name": "trustseal test", "common_name": f"{name} CA"},
        ca_profile="regional-ca",
        parent=ROOT,
        region_code="440000",
        actor="test",
    )
    withdraw_ca(context.ca, name, reason="cessationOfOperation")
    before = _state(context)
    _problem(client.post(f"/v1/keys/{name}/rotate", headers=officer), 409, "ca_withdrawn")
    _problem(client.post(f"/v1/keys/{name}.ocsp/rotate", headers=officer), 409, "ca_withdrawn")
    _problem(client.post("/v1/keys/cn-999999-sm2/rotate", headers=officer), 404, "key_not_found")
    _problem(client.post("/v1/keys/cn-999999-sm2.ocsp/rotate", headers=officer), 404, "key_not_found")
    _problem(client.get(f"/v1/cas/{REGIONAL}/crl/k999"), 404, "unknown_crl_scope")
    assert _state(context) == before


def test_scoped_crls_are_served_at_the_urls_certificates_carry(
    client: TestClient, context: Context, regional_rollover: tuple[x509.Certificate, Any]
) -> None:
    assert regional_rollover[1].status_code == 200
    entry = context.ca.snapshot().get(REGIONAL)
    plain = client.get(f"/v1/cas/{REGIONAL}/crl")
    scoped = client.get(f"/v1/cas/{REGIONAL}/crl/{entry.crl_scope}")
    assert plain.status_code == scoped.status_code == 200
    assert plain.headers["content-type"] == "application/pkix-crl" and plain.content != scoped.content
    certificate = client.get(f"/v1/cas/{REGIONAL}/certificate/{entry.crl_scope}")
    assert certificate.status_code == 200 and certificate.content == entry.certificate_der
    _problem(client.get(f"/v1/cas/{REGIONAL}/certificate/k999"), 404, "unknown_crl_scope")
    listed = {ca["name"]: ca["crl_url"] for ca in client.get("/v1/cas").json()}
    assert listed[REGIONAL].endswith(f"/v1/cas/{REGIONAL}/crl/{entry.crl_scope}")


# -- no downtime ----------------------------------------------------------------------------------


class Load:
    """Seals over HTTP (POST /v1/sign, B-T and B-LT in turn) and issues over HTTP (POST /v1/certificates)
    in two threads until stopped; every failure is kept."""

    def __init__(self, url: str, context: Context, seal_id: str, ca: str, tmp_path: Path) -> None:
        self.url = url
        self.seal_id = seal_id
        self.ca = ca
        run = secrets.token_hex(3)
        self.issuer = create_token(context.db, "issuer", f"rollover-issuer-{run}", demo_seal_ids())
        self.officer = create_token(context.db, "officer", f"rollover-load-officer-{run}")
        self.csrs = [make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT) for _ in range(2)]
        self.stop = threading.Event()
        self.failures: list[str] = []
        self.documents: list[bytes] = []
        self.certificates: list[bytes] = []
        self.threads = [threading.Thread(target=self._seal), threading.Thread(target=self._issue)]

    def _seal(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as http:
            n = 0
            while not self.stop.is_set():
                level = ("B-T", "B-LT")[n % 2]
                n += 1
                try:
                    response = http.post(
                        "/v1/sign",
                        headers={"Authorization": f"Bearer {self.issuer}"},
                        data={"seal_id": self.seal_id, "level": level},
                        files={"file": ("doc.pdf", make_pdf(), "application/pdf")},
                    )
                    if response.status_code == 200:
                        self.documents.append(response.content)
                    else:
                        self.failures.append(f"sign {level}: {response.status_code} {response.text[:300]}")
                except httpx.HTTPError as exc:
                    self.failures.append(f"sign: {exc!r}")

    def _issue(self) -> None:
        with httpx.Client(base_url=self.url, timeout=60) as http:
            n = 0
            while not self.stop.is_set():
                csr = self.csrs[n % len(self.csrs)]
                n += 1
                try:
                    response = http.post(
                        "/v1/certificates",
                        headers={"Authorization": f"Bearer {self.officer}"},
                        json={"csr_pem": csr.decode("ascii"), "profile": "org-seal", "ca": self.ca},
                    )
                    if response.status_code == 201 or response.status_code == 200:
                        self.certificates.append(_der(response.json()["certificate_pem"]))
                    else:
                        self.failures.append(f"issue: {response.status_code} {response.text[:300]}")
                except httpx.HTTPError as exc:
                    self.failures.append(f"issue: {exc!r}")

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def wait_for_more(self, documents: int = 2, certificates: int = 2) -> None:
        want = (len(self.documents) + documents, len(self.certificates) + certificates)
        deadline = time.monotonic() + 60
        while (len(self.documents), len(self.certificates)) < want and time.monotonic() < deadline:
            if self.failures:
                return
            time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(60)


def _all_verify(client: TestClient, documents: list[bytes]) -> None:
    for pdf in documents:
        report = _online(client, pdf)
        assert report["result"] == PASSED, report


@pytest.fixture(scope="module")
def load_across_rollover(
    client: TestClient,
    context: Context,
    officer: dict[str, str],
    live_url: str,
    sealed_before: dict[str, bytes],
    root_rollover: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> tuple[x509.Certificate, Any, Load]:
    """cn-530000-sm2 rolls over (after the root did: its new certificate comes from the new root key) while
    a load seals and issues against it; done once for the module."""
    del sealed_before, root_rollover  # the demo seals exist; the root rolled over first
    ca = "cn-530000-sm2"
    old = context.ca.ca_certificate(ca)
    with Load(live_url, context, "demo-530000-sm2", ca, tmp_path_factory.mktemp("load")) as load:
        load.wait_for_more()
        response = client.post(f"/v1/keys/{ca}/rotate", headers=officer)
        load.wait_for_more()
    return old, response, load


def test_sealing_and_issuance_keep_succeeding_during_a_ca_rollover(
    client: TestClient, context: Context, load_across_rollover: tuple[x509.Certificate, Any, Load]
) -> None:
    ca = "cn-530000-sm2"
    old, response, load = load_across_rollover
    assert response.status_code == 200, response.text
    assert load.failures == []
    new = context.ca.ca_certificate(ca)
    issuers = {x509.Certificate.load(der).authority_key_identifier for der in load.certificates}
    assert issuers == {old.key_identifier, new.key_identifier}  # issuance ran across the rollover
    assert x509.Certificate.load(load.certificates[-1]).authority_key_identifier == new.key_identifier
    assert len(load.documents) >= 4
    _all_verify(client, load.documents)


def test_sealing_and_issuance_keep_succeeding_while_the_ocsp_signer_and_the_seal_key_rotate(
    client: TestClient,
    context: Context,
    officer: dict[str, str],
    live_url: str,
    held_root: bytes,
    load_across_rollover: tuple[x509.Certificate, Any, Load],
    tmp_path: Path,
) -> None:
    assert load_across_rollover[1].status_code == 200  # cn-530000-sm2 rolled over after the root did
    ca = "cn-530000-sm2"
    seal_id = "demo-530000-sm2"
    with Load(live_url, context, seal_id, ca, tmp_path) as load:
        for key in (f"{ca}.ocsp", f"seal.{seal_id}"):
            load.wait_for_more()
            response = client.post(f"/v1/keys/{key}/rotate", headers=officer)
            assert response.status_code == 200, response.text
        load.wait_for_more()
    assert load.failures == []
    assert len({_signer_certificate(pdf).serial_number for pdf in load.documents}) == 2  # across the re-key
    assert len(load.documents) >= 6
    _all_verify(client, load.documents)
    # the re-keyed holder certificate comes from the regional CA's new key, whose certificate the new root key
    # signed (the root rolled over above): offline, a relying party holding only the old root still verifies
    regional = context.ca.ca_certificate(ca)
    assert _signer_certificate(load.documents[-1]).authority_key_identifier == regional.key_identifier
    assert regional.authority_key_identifier == context.ca.ca_certificate(ROOT).key_identifier
    assert regional.authority_key_identifier != x509.Certificate.load(held_root).key_identifier
    lt = next(pdf for pdf in reversed(load.documents) if b"/DSS" in pdf)
    _still_verify(client, {"B-LT under the new keys": lt}, [held_root], tmp_path)
