"""pyhanko-certvalidator, the library under our verifier, follows CRL partitions on its own: it fetches the
list a certificate's distribution point names from a real service on a loopback port and checks that
list's issuingDistributionPoint. CRLs only (the revocation policy requires a CRL for every certificate
and never asks OCSP), P-256, a partition size of 2."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from asn1crypto import x509
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator import errors as cv
from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend
from pyhanko_certvalidator.policy_decl import CertRevTrustPolicy, RevocationCheckingPolicy, RevocationCheckingRule

from api.app import create_app
from api.context import Context
from api.settings import Settings
from ca.authority import CertificateAuthorityService, IssuedCertificate
from ca.hierarchy import create_demo_hierarchy
from keys.local import LocalKeystore
from policies.profiles import default_profiles
from store.db import Database
from tests.fixtures import ORG_SUBJECT, make_csr

CA = "cn-370000-p256"
CRL_ONLY = CertRevTrustPolicy(
    RevocationCheckingPolicy(
        ee_certificate_rule=RevocationCheckingRule.CRL_REQUIRED,
        intermediate_ca_cert_rule=RevocationCheckingRule.CRL_REQUIRED,
    )
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CertificateAuthorityService]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    home = tmp_path_factory.mktemp("partitions")
    db = Database(f"sqlite:///{home / 'db.sqlite'}")
    db.migrate()
    keystore = LocalKeystore(home / "keys", passphrase="partitions", scrypt_n=2**10)
    ca = CertificateAuthorityService(db, keystore, default_profiles(), url, crl_partition_size=2)
    create_demo_hierarchy(ca, actor="test")
    settings = Settings(home=home, database_url=db.url, public_url=url, keystore="local", passphrase="partitions",
                        max_upload_bytes=1 << 20)  # fmt: skip
    context = Context(settings=settings, db=db, custody=keystore, ca=ca)
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
    yield ca
    server.should_exit = True
    thread.join(10)
    db.dispose()


def _validate(ca: CertificateAuthorityService, leaf: IssuedCertificate) -> object:
    context = ValidationContext(
        trust_roots=[ca.ca_certificate("cn-root-p256")],
        allow_fetching=True,
        revinfo_policy=CRL_ONLY,
        fetcher_backend=RequestsFetcherBackend(per_request_timeout=5),
    )
    validator = CertificateValidator(
        leaf.certificate, intermediate_certs=[x509.Certificate.load(d) for d in leaf.chain], validation_context=context
    )
    return asyncio.run(validator.async_validate_usage(set()))


def test_pyhanko_fetches_the_partition_named_by_the_certificate(
    served: CertificateAuthorityService, tmp_path: Path
) -> None:
    csr = make_csr(tmp_path, algorithm="p256", subject=ORG_SUBJECT)
    issued = [served.issue(csr, "org-seal", CA) for _ in range(5)]
    points = [item.certificate.crl_distribution_points[0].url for item in issued]
    assert points[1].endswith("/crl/p1") and points[-1].endswith("/crl/p2"), points
    good, victim = issued[1], issued[-1]  # p1 (not revoked) and p2
    served.revoke(victim.serial, "keyCompromise")
    assert _validate(served, good) is not None  # p1's list, fetched: not revoked
    with pytest.raises(cv.RevokedError):
        _validate(served, victim)  # p2's list, fetched: revoked
