"""Online revocation: a verifier with no local revocation source fetches CRLs / OCSP from the URLs in the
certificates (CRL distribution point, AIA OCSP) — here a real service on a loopback port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import uvicorn

from api.app import create_app
from api.context import Context
from api.settings import Settings
from ca.authority import CertificateAuthorityService
from ca.hierarchy import create_demo_hierarchy
from keys.local import LocalKeystore
from policies.profiles import default_profiles
from seal.demo import create_demo_seals
from signing.pdf import Placement
from signing.service import Caller
from store.db import Database
from tests.fixtures import make_pdf
from verify.report import FAILED, INDETERMINATE, PASSED
from verify.service import Verifier
from verify.sources import Sources
from verify.trust import TrustStore


@pytest.fixture(scope="module")
def online(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Context]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    home = tmp_path_factory.mktemp("online")
    db = Database(f"sqlite:///{home / 'db.sqlite'}")
    db.migrate()
    keystore = LocalKeystore(home / "keys", passphrase="online", scrypt_n=2**10)
    ca = CertificateAuthorityService(db, keystore, default_profiles(), url)  # URLs in certificates: this server
    create_demo_hierarchy(ca, actor="test")
    settings = Settings(home=home, database_url=db.url, public_url=url, keystore="local", passphrase="online",
                        max_upload_bytes=1 << 20)  # fmt: skip
    context = Context(settings=settings, db=db, custody=keystore, ca=ca)
    create_demo_seals(context.seals, actor="test")
    server = uvicorn.Server(uvicorn.Config(create_app(context), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/v1/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    yield context
    server.should_exit = True
    thread.join(10)
    db.dispose()


def _checks(report: dict[str, object]) -> dict[str, tuple[str, str]]:
    signature = report["signatures"][0]  # type: ignore[index]
    return {c["name"]: (c["status"], c["code"]) for c in signature["checks"]}


def test_fetching_establishes_revocation_status(online: Context) -> None:
    caller = Caller(role="issuer", name="t", seal_ids=("*",))
    pdf = online.signing.seal_pdf(make_pdf(), seal_id="demo-530000-sm2", caller=caller, placement=Placement()).pdf
    store = TrustStore()
    store.add_list(online.verification.trust_list(), roots=[online.ca.ca_certificate("cn-root-sm2")])

    offline = Verifier(store, Sources(fetch=False)).verify(pdf).as_json()
    assert offline["result"] == INDETERMINATE
    assert _checks(offline)["revocation"] == (INDETERMINATE, "REVOCATION_UNKNOWN")

    fetched = Verifier(store, Sources(fetch=True)).verify(pdf).as_json()
    assert fetched["result"] == PASSED, fetched

    serial = online.seals.get("demo-530000-sm2").certificate_serial
    online.ca.revoke(serial, "keyCompromise", actor="test", revoked_at=datetime.now(UTC) - timedelta(hours=1))
    revoked = Verifier(store, Sources(fetch=True)).verify(pdf).as_json()
    assert revoked["result"] == FAILED and _checks(revoked)["revocation"] == (FAILED, "REVOKED")
