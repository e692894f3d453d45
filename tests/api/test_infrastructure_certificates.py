"""Issue 10, fail-open 8: a CSR gets a subscriber profile only. Infrastructure certificates (OCSP signer,
TSA, seal maker, trust-list signer) and CA certificates are made by the service for keys in its own
custody; asked for by a CSR they are refused with `profile_not_for_csr` and nothing is written.

The demonstrated attack: an officer-token holder sent a CSR for `ocsp-signer`, got a certificate with
ocsp-nocheck from a regional CA, and a responder of their own then answered "good" for a revoked
certificate, which `openssl ocsp` accepted. The test replays it under the old policy (ocsp-signer open to
CSRs) to show the harm is real, then under the shipped policy.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import csr, keys, ocsp, pem, x509
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.context import Context
from api.problems import PROBLEM_JSON
from ca.authority import CertificateAuthorityService
from ca.errors import ProfileNotForCSR
from ca.ocsp import CertStatus, Responder, parse_request, respond
from keys.custody import KeyAlgorithm, SigningHandle
from keys.local import LocalKeystore
from policies.profiles import ProfileSet, default_profiles
from store.models import CRL, Certificate, Event
from tests.fixtures import ORG_SUBJECT, make_csr, openssl
from tests.fixtures import pem as pem_block

CA = "cn-530000-p256"
INFRASTRUCTURE = ("ocsp-signer", "tsa", "ledger", "seal-maker", "trust-list-signer")
CA_PROFILES = ("root-ca", "regional-ca", "issuing-ca")
SUBSCRIBER = ("org-seal", "person", "tls-server", "tls-client")


@pytest.fixture(scope="module")
def attacker(tmp_path_factory: pytest.TempPathFactory) -> SigningHandle:
    """A P-256 key in the attacker's own keystore: outside the service's custody."""
    store = LocalKeystore(tmp_path_factory.mktemp("attacker"), passphrase="attacker", scrypt_n=2**10)
    return store.signer(store.create("rogue-responder", KeyAlgorithm.P256).ref)


def _csr(handle: SigningHandle, subject: dict[str, str]) -> str:
    info = csr.CertificationRequestInfo(
        {
            "version": "v1",
            "subject": x509.Name.build(subject),
            "subject_pk_info": keys.PublicKeyInfo.load(handle.public_key_der),
            "attributes": [],
        }
    )
    request = csr.CertificationRequest(
        {
            "certification_request_info": info,
            "signature_algorithm": {"algorithm": "sha256_ecdsa"},
            "signature": handle.sign(info.dump()),
        }
    )
    armored: bytes = pem.armor("CERTIFICATE REQUEST", request.dump())
    return armored.decode("ascii")


def _counts(context: Context) -> tuple[int, int, int]:
    with context.db.session() as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(table)) or 0 for table in (Certificate, Event, CRL)
        )


def _cert_id(ca: x509.Certificate, serial: int) -> ocsp.CertId:
    return ocsp.CertId(
        {
            "hash_algorithm": {"algorithm": "sha1"},
            "issuer_name_hash": hashlib.sha1(ca.subject.dump()).digest(),
            "issuer_key_hash": ca.public_key.sha1,
            "serial_number": serial,
        }
    )


def _rogue_says_good(ca: x509.Certificate, serial: int, responder_cert: bytes, handle: SigningHandle) -> bytes:
    """A responder of the attacker's own answering "good" for `serial`, whatever the CA says."""
    request = ocsp.OCSPRequest({"tbs_request": {"request_list": [{"req_cert": _cert_id(ca, serial)}]}}).dump()
    rogue = Responder(CA, ca, x509.Certificate.load(responder_cert), handle)
    now = datetime.now(UTC).replace(microsecond=0)
    return respond(parse_request(request), [rogue], lambda *_: CertStatus("good"), now, timedelta(hours=1))


def _openssl_accepts(tmp_path: Path, context: Context, response: bytes, serial: int) -> tuple[bool, str]:
    issuer = tmp_path / "issuer.pem"
    issuer.write_bytes(pem_block(context.ca.ca_certificate(CA).dump()))
    trust = tmp_path / "trust.pem"
    trust.write_bytes(pem_block(context.ca.ca_certificate("cn-root-p256").dump()) + issuer.read_bytes())
    (tmp_path / "resp.der").write_bytes(response)
    result = openssl(
        "ocsp", "-respin", str(tmp_path / "resp.der"), "-issuer", str(issuer), "-serial", hex(serial),
        "-CAfile", str(trust), check=False,
    )  # fmt: skip
    out = (result.stdout + result.stderr).decode()
    return "Response verify OK" in out and bool(re.search(r": good", out)), out


def _revoked_victim(client: TestClient, officer: dict[str, str], tmp_path: Path) -> int:
    issued = client.post(
        "/v1/certificates",
        json={"csr_pem": make_csr(tmp_path, algorithm="p256", subject=ORG_SUBJECT).decode(), "profile": "org-seal",
              "ca": CA},
        headers=officer,
    )  # fmt: skip
    assert issued.status_code == 201, issued.text
    serial = issued.json()["serial"]
    revoked = client.post(f"/v1/certificates/{serial}/revoke", json={"reason": "keyCompromise"}, headers=officer)
    assert revoked.status_code == 200, revoked.text
    return int(serial, 16)


def test_the_attack_worked_under_the_old_policy(
    context: Context, client: TestClient, officer: dict[str, str], attacker: SigningHandle, tmp_path: Path
) -> None:
    """Control: with ocsp-signer open to CSRs (the policy before this fix), the rogue responder wins.
    This is what the refusal below prevents; it also shows the OpenSSL check can tell."""
    victim = _revoked_victim(client, officer, tmp_path)
    shipped = default_profiles()
    old = shipped.profiles["ocsp-signer"].model_copy(update={"csr": True})
    old_policy = ProfileSet(
        policy_oids=shipped.policy_oids,
        profiles={**shipped.profiles, "ocsp-signer": old},
        ca_profiles=shipped.ca_profiles,
    )
    service = CertificateAuthorityService(context.db, context.custody, old_policy, context.ca.public_url)
    issued = service.issue(_csr(attacker, {"common_name": "Totally the OCSP responder"}), "ocsp-signer", CA)
    accepted, out = _openssl_accepts(tmp_path, context, _rogue_says_good(
        context.ca.ca_certificate(CA), victim, issued.der, attacker), victim)  # fmt: skip
    assert accepted, out


@pytest.mark.parametrize("profile", INFRASTRUCTURE + CA_PROFILES)
def test_csr_for_infrastructure_or_ca_profile_is_refused(
    context: Context, client: TestClient, officer: dict[str, str], attacker: SigningHandle, profile: str
) -> None:
    subject = {"country_name": "CN", "organization_name": "Rogue", "common_name": "Rogue service"}
    before = _counts(context)
    response = client.post(
        "/v1/certificates", json={"csr_pem": _csr(attacker, subject), "profile": profile, "ca": CA}, headers=officer
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["code"] == "profile_not_for_csr"
    assert _counts(context) == before
    with pytest.raises(ProfileNotForCSR):
        context.ca.issue(_csr(attacker, subject), profile, CA)


def test_best_the_attacker_can_get_is_refused_by_openssl_as_a_responder(
    context: Context, client: TestClient, officer: dict[str, str], attacker: SigningHandle, tmp_path: Path
) -> None:
    """A subscriber certificate for the same key (tls-client) carries no OCSP-signing EKU: the same rogue
    "good" is not accepted."""
    victim = _revoked_victim(client, officer, tmp_path)
    response = client.post(
        "/v1/certificates",
        json={"csr_pem": _csr(attacker, {"common_name": "rogue.example.cn"}), "profile": "tls-client", "ca": CA},
        headers=officer,
    )
    assert response.status_code == 201, response.text
    der = pem.unarmor(response.json()["certificate_pem"].encode())[2]
    accepted, out = _openssl_accepts(
        tmp_path, context, _rogue_says_good(context.ca.ca_certificate(CA), victim, der, attacker), victim
    )
    assert not accepted, out


def test_subscriber_profiles_are_exactly_the_contract() -> None:
    assert {p.name for p in default_profiles().profiles.values() if p.csr} == set(SUBSCRIBER)


def test_tls_client_profile(context: Context, client: TestClient, officer: dict[str, str], tmp_path: Path) -> None:
    response = client.post(
        "/v1/certificates",
        json={"csr_pem": make_csr(tmp_path, algorithm="sm2", subject="/C=CN/O=Bank/CN=bank-gateway").decode(),
              "profile": "tls-client", "ca": "cn-370000-sm2"},
        headers=officer,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    cert = x509.Certificate.load(pem.unarmor(response.json()["certificate_pem"].encode())[2])
    assert cert.extended_key_usage_value.native == ["client_auth"]
    assert cert.key_usage_value.native == {"digital_signature"}
    assert cert.subject_alt_name_value is None
