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
from verify.report import INDETERMINATE, PASSED
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
    online.ca.revoke_seal_certificate(
        serial, "demo-530000-sm2", "keyCompromise", actor="test", revoked_at=datetime.now(UTC) - timedelta(hours=1)
    )
    revoked = Verifier(store, Sources(fetch=True)).verify(pdf).as_json()
    # B-B: no timestamp proves the document older than the revocation
    assert revoked["result"] == INDETERMINATE and _checks(revoked)["revocation"] == (INDETERMINATE, "REVOKED_NO_POE")


def test_fetched_material_is_reused_across_documents_for_the_cache_window(online: Context) -> None:
    """One Sources fetches once per window: after a revocation it still answers from what it fetched
    (as any relying party caching a CRL until it renews would), while a fresh window sees it at once."""
    caller = Caller(role="issuer", name="t", seal_ids=("*",))
    first = online.signing.seal_pdf(make_pdf(), seal_id="demo-370000-sm2", caller=caller, placement=Placement()).pdf
    second = online.signing.seal_pdf(
        make_pdf(["another licence"]), seal_id="demo-370000-sm2", caller=caller, placement=Placement()
    ).pdf
    store = TrustStore()
    store.add_list(online.verification.trust_list(), roots=[online.ca.ca_certificate("cn-root-sm2")])
    cached = Sources(fetch=True, fetch_cache_seconds=3600)
    uncached = Sources(fetch=True, fetch_cache_seconds=0)
    assert Verifier(store, cached).verify(first).result == PASSED
    assert Verifier(store, uncached).verify(first).result == PASSED

    serial = online.seals.get("demo-370000-sm2").certificate_serial
    online.ca.revoke_seal_certificate(
        serial, "demo-370000-sm2", "keyCompromise", actor="test", revoked_at=datetime.now(UTC) - timedelta(hours=1)
    )
    again = Verifier(store, cached).verify(second).as_json()
    assert again["result"] == PASSED, again  # answered from the window's cache: no new fetch
    fresh = Verifier(store, uncached).verify(second).as_json()
    assert fresh["result"] == INDETERMINATE and _checks(fresh)["revocation"] == (INDETERMINATE, "REVOKED_NO_POE")


def test_fetch_cache_is_per_thread(online: Context) -> None:
    sources = Sources(fetch=True)
    mine = sources.fetchers()
    assert mine is not None and sources.fetchers() is mine
    other: list[object] = []
    thread = threading.Thread(target=lambda: other.append(sources.fetchers()))
    thread.start()
    thread.join()
    assert other[0] is not None and other[0] is not mine
    assert Sources(fetch=False).fetchers() is None


@pytest.fixture(scope="module")
def unanswered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Context, socket.socket]]:
    """A hierarchy whose CRL / OCSP URLs point at a port that accepts connections and never answers."""
    blackhole = socket.socket()
    blackhole.bind(("127.0.0.1", 0))
    blackhole.listen(64)
    url = f"http://127.0.0.1:{blackhole.getsockname()[1]}"
    home = tmp_path_factory.mktemp("unanswered")
    db = Database(f"sqlite:///{home / 'db.sqlite'}")
    db.migrate()
    keystore = LocalKeystore(home / "keys", passphrase="unanswered", scrypt_n=2**10)
    ca = CertificateAuthorityService(db, keystore, default_profiles(), url)
    create_demo_hierarchy(ca, actor="test")
    settings = Settings(home=home, database_url=db.url, public_url=url, keystore="local", passphrase="unanswered",
                        max_upload_bytes=1 << 20)  # fmt: skip
    context = Context(settings=settings, db=db, custody=keystore, ca=ca)
    create_demo_seals(context.seals, actor="test")
    yield context, blackhole
    blackhole.close()
    db.dispose()


def test_a_server_that_never_answers_costs_the_timeout_not_a_hang(unanswered: tuple[Context, socket.socket]) -> None:
    context, _ = unanswered
    caller = Caller(role="issuer", name="t", seal_ids=("*",))
    pdf = context.signing.seal_pdf(make_pdf(), seal_id="demo-530000-sm2", caller=caller, placement=Placement()).pdf
    store = TrustStore()
    store.add_list(context.verification.trust_list(), roots=[context.ca.ca_certificate("cn-root-sm2")])
    start = time.monotonic()
    report = Verifier(store, Sources(fetch=True, fetch_timeout=0.3)).verify(pdf).as_json()
    elapsed = time.monotonic() - start
    assert report["result"] == INDETERMINATE
    assert _checks(report)["revocation"] == (INDETERMINATE, "REVOCATION_UNKNOWN")
    assert elapsed < 12, elapsed  # three fetches here at 0.3 s each; at pyHanko's default 10 s, ~30 s


def test_a_failed_fetch_is_not_remembered_for_the_next_document(
    unanswered: tuple[Context, socket.socket], online: Context
) -> None:
    """pyHanko's fetchers remember failures too: a verification left with revocation unknown starts
    the thread's cache window afresh, one that established the status keeps it."""
    caller = Caller(role="issuer", name="t", seal_ids=("*",))
    for context, seal_id, result in (
        (unanswered[0], "demo-530000-sm2", INDETERMINATE),
        (online, "demo-370000-p256", PASSED),
    ):  # (earlier tests revoke the SM2 ones)
        pdf = context.signing.seal_pdf(make_pdf(), seal_id=seal_id, caller=caller, placement=Placement()).pdf
        store = TrustStore()
        store.add_list(context.verification.trust_list(), roots=[context.ca.ca_certificate("cn-root-sm2")])
        sources = Sources(fetch=True, fetch_timeout=0.3)
        before = sources.fetchers()
        assert Verifier(store, sources).verify(pdf).result == result
        assert (sources.fetchers() is before) == (result == PASSED)


def test_a_path_left_open_while_fetching_also_starts_the_window_afresh(online: Context) -> None:
    """No anchor for the document's hierarchy: the chain is INDETERMINATE, which a failed issuer
    certificate download could also have caused, so nothing fetched meanwhile is kept."""
    caller = Caller(role="issuer", name="t", seal_ids=("*",))
    pdf = online.signing.seal_pdf(make_pdf(), seal_id="demo-370000-p256", caller=caller, placement=Placement()).pdf
    sources = Sources(fetch=True, fetch_timeout=0.3)
    before = sources.fetchers()
    report = Verifier(TrustStore(), sources).verify(pdf).as_json()
    assert report["result"] == INDETERMINATE and _checks(report)["chain"][0] == INDETERMINATE
    assert sources.fetchers() is not before


def test_a_fetching_verifier_sees_an_earlier_invalidity_date_on_a_fetched_crl(online: Context) -> None:
    """A standalone verifier (fetching the CRL / OCSP itself) and a document timestamped after a reported
    compromise but before the revocation: pyHanko reads revocationDate only, so the fetched list must reach
    the invalidityDate check as the service's own lists do (a review found it PASSED)."""
    import time
    from datetime import UTC, datetime

    from seal.service import RevokeOld, SealRequest
    from signing.pdf import Placement
    from signing.service import Caller
    from tests.fixtures import make_pdf

    seal_id = online.seals.create(
        SealRequest("Inv", "Inv Bureau", "91350100M000100Y43", "cn-370000-sm2"), actor="test"
    ).id
    caller = Caller(role="issuer", name="t", seal_ids=("*",))
    store = TrustStore()
    store.add_list(online.verification.trust_list(), roots=[online.ca.ca_certificate("cn-root-sm2")])
    compromised = datetime.now(UTC).replace(microsecond=0)
    time.sleep(1.2)  # whole seconds: the timestamp after the invalidity date
    pdf = online.signing.seal_pdf(make_pdf(), seal_id=seal_id, caller=caller, placement=Placement(), level="B-T").pdf
    time.sleep(1.2)  # and the revocation after the timestamp
    online.seals.rekey(seal_id, "test", None, RevokeOld.checked("keyCompromise", compromised))
    report = Verifier(store, Sources(fetch=True, fetch_cache_seconds=0)).verify(pdf).as_json()
    assert report["result"] != PASSED, report
    revocation = next(c for c in report["signatures"][0]["checks"] if c["name"] == "revocation")
    assert revocation["status"] == INDETERMINATE and "invalidityDate" in revocation["detail"], revocation
