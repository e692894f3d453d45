"""Pre-signed OCSP responses (ca/ocsp.py, ca/ocsp_store.py, issue 12): one CertID without a nonce is
answered from a stored response; a revocation is answered `revoked` by the very next request, in this
process and in another one sharing the database, even when a `good` response was stored in a race with the
revocation; the scheduler re-signs before half the validity; a nonce still gets a live, nonce-bearing
answer. OpenSSL's `ocsp` is the independent verifier (P-256 fully; SM2 parsed, its signature checked with
`pkeyutl`, as tests/ca/test_interop.py explains)."""

from __future__ import annotations

import hashlib
import os
import re
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import algos, core, ocsp, x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from ca.authority import CertificateAuthorityService
from ca.ocsp import OCSP_VALIDITY, OCSPResponder
from ca.ocsp_store import REFRESH_MARGIN, Stored
from ca.rollover import roll_over, rotate_ocsp_signer
from keys.local import LocalKeystore
from store.models import CertificateAuthority, OCSPResponse
from tests.fixtures import ORG_SUBJECT, PUBLIC_URL, examples, make_csr, openssl, pem

pytestmark = pytest.mark.openssl
ROOT = Path(__file__).resolve().parents[2]
DISTID = "distid:1234567812345678"


def _request(issuer: x509.Certificate, serial: int, algorithm: str = "sha1", nonce: bytes | None = None) -> bytes:
    cert_id = {
        "hash_algorithm": {"algorithm": algorithm},
        "issuer_name_hash": hashlib.new(algorithm, issuer.subject.dump()).digest(),
        "issuer_key_hash": hashlib.new(algorithm, issuer.public_key["public_key"].contents[1:]).digest(),
        "serial_number": serial,
    }
    tbs: dict[str, object] = {"request_list": [{"req_cert": cert_id}]}
    if nonce is not None:
        tbs["request_extensions"] = [{"extn_id": "nonce", "extn_value": core.OctetString(nonce)}]
    return ocsp.OCSPRequest({"tbs_request": tbs}).dump()


def _single(response_der: bytes) -> ocsp.SingleResponse:
    response = ocsp.OCSPResponse.load(response_der)
    assert response["response_status"].native == "successful"
    single: ocsp.SingleResponse = response.basic_ocsp_response["tbs_response_data"]["responses"][0]
    return single


def _issue(ca_service: CertificateAuthorityService, tmp_path: Path, family: str) -> tuple[x509.Certificate, int]:
    csr = make_csr(tmp_path, algorithm=family, subject=ORG_SUBJECT)
    issued = ca_service.issue(csr, "org-seal", f"cn-370000-{family}")
    return ca_service.ca_certificate(f"cn-370000-{family}"), issued.certificate.serial_number


def _stored(ca_service: CertificateAuthorityService, serial: int) -> list[OCSPResponse]:
    with ca_service.db.session() as session:
        return list(session.scalars(select(OCSPResponse).where(OCSPResponse.serial == format(serial, "x"))))


def _signer_der(ca_service: CertificateAuthorityService, name: str) -> bytes:
    with ca_service.db.session() as session:
        row = session.get(CertificateAuthority, name)
        assert row is not None and row.ocsp_certificate_der is not None
        return row.ocsp_certificate_der


def _write(directory: Path, name: str, data: bytes) -> str:
    path = directory / name
    path.write_bytes(data)
    return str(path)


# -- served from the store ---------------------------------------------------------------------------


def test_one_certid_without_nonce_is_signed_once_and_served_as_stored(
    ca_service: CertificateAuthorityService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    issuer, serial = _issue(ca_service, tmp_path, "sm2")
    responder = ca_service.ocsp_responder
    signed: list[int] = []
    real = responder._presign

    def counted(*args: Any) -> Stored | None:
        signed.append(1)
        return real(*args)

    monkeypatch.setattr(responder, "_presign", counted)
    der = _request(issuer, serial)
    first = ca_service.ocsp_answer(der)
    assert first.this_update is not None and first.next_update == first.this_update + OCSP_VALIDITY
    again = [ca_service.ocsp_answer(der) for _ in range(5)]
    assert {a.der for a in again} == {first.der} and len(signed) == 1  # one signature, then stored bytes
    single = _single(first.der)
    assert single["cert_status"].name == "good" and single["cert_id"]["serial_number"].native == serial
    assert single["this_update"].native == first.this_update and single["next_update"].native == first.next_update
    (row,) = _stored(ca_service, serial)
    assert row.status == "good" and row.der == first.der and row.hash_algorithm == "sha1+null"
    # the same question with another hash algorithm is another CertID: its own stored answer
    sha256 = ca_service.ocsp_answer(_request(issuer, serial, "sha256"))
    assert _single(sha256.der)["cert_id"]["hash_algorithm"]["algorithm"].native == "sha256"
    assert sorted(r.hash_algorithm for r in _stored(ca_service, serial)) == ["sha1+null", "sha256+null"]


def _spelt(algorithm: str, null: bool) -> algos.DigestAlgorithm:
    oid = algos.DigestAlgorithmId(algorithm).dump() + (b"\x05\x00" if null else b"")
    return algos.DigestAlgorithm.load(b"\x30" + bytes([len(oid)]) + oid)


@pytest.mark.parametrize("algorithm", ["sha1", "sha256", "sm3"])
def test_the_stored_certid_is_the_requests_byte_for_byte(
    ca_service: CertificateAuthorityService, tmp_path: Path, algorithm: str
) -> None:
    """With and without NULL hash parameters (clients write both; Bouncy Castle matches a response to its
    request by the whole CertID), each spelling gets its own stored answer echoing it exactly; a CertID we
    would not write ourselves (a zero-padded serial) is answered live, echoed as it came."""
    issuer, serial = _issue(ca_service, tmp_path, "sm2")
    plain = ocsp.OCSPRequest.load(_request(issuer, serial, algorithm))
    cert_id = plain["tbs_request"]["request_list"][0]["req_cert"]
    for null in (False, True):
        spelt = ocsp.CertId(
            {
                "hash_algorithm": _spelt(algorithm, null),
                "issuer_name_hash": cert_id["issuer_name_hash"].native,
                "issuer_key_hash": cert_id["issuer_key_hash"].native,
                "serial_number": serial,
            }
        )
        der = ocsp.OCSPRequest({"tbs_request": {"request_list": [{"req_cert": spelt}]}}).dump()
        answer = ca_service.ocsp_answer(der)
        assert answer.this_update is not None  # stored
        assert _single(answer.der)["cert_id"].dump() == spelt.dump()
        assert ca_service.ocsp(der) == answer.der
    assert sorted(r.hash_algorithm for r in _stored(ca_service, serial)) == [algorithm, algorithm + "+null"]
    padded_serial = b"\x02" + bytes([len(serial.to_bytes(17, "big"))]) + serial.to_bytes(17, "big")
    padded = cert_id.dump()[: -len(cert_id["serial_number"].dump())] + padded_serial
    padded = bytes([0x30, len(padded) - 2]) + padded[2:]
    request = b"\x30" + bytes([len(padded) + 6]) + b"\x30" + bytes([len(padded) + 4])
    request += b"\x30" + bytes([len(padded) + 2]) + b"\x30" + bytes([len(padded)]) + padded
    answer = ca_service.ocsp_answer(request)
    assert answer.this_update is None  # live
    assert _single(answer.der)["cert_id"].dump() == padded


def test_a_nonce_gets_a_live_answer_that_echoes_it_and_nothing_is_stored(
    ca_service: CertificateAuthorityService, tmp_path: Path
) -> None:
    """RFC 8954 lets a responder ignore nonces; ours honours them (OpenSSL's client sends one by default
    and checks it), so a request with a nonce is signed for that request, not served from the store."""
    issuer, serial = _issue(ca_service, tmp_path, "sm2")
    answers = []
    for _ in range(2):
        nonce = secrets.token_bytes(16)
        answer = ca_service.ocsp_answer(_request(issuer, serial, nonce=nonce))
        assert answer.this_update is None  # live: no HTTP caching
        basic = ocsp.OCSPResponse.load(answer.der).basic_ocsp_response
        echoed = [e["extn_value"].parsed.native for e in basic["tbs_response_data"]["response_extensions"]
                  if e["extn_id"].native == "nonce"]  # fmt: skip
        assert echoed == [nonce] and basic["tbs_response_data"]["responses"][0]["cert_status"].name == "good"
        answers.append(answer.der)
    assert answers[0] != answers[1] and _stored(ca_service, serial) == []


def test_unknown_serials_and_several_certids_are_answered_live_and_not_stored(
    ca_service: CertificateAuthorityService, tmp_path: Path
) -> None:
    issuer, serial = _issue(ca_service, tmp_path, "sm2")
    stranger = int.from_bytes(secrets.token_bytes(16), "big")
    unknown = ca_service.ocsp_answer(_request(issuer, stranger))
    assert _single(unknown.der)["cert_status"].name == "unknown" and unknown.this_update is None
    assert _stored(ca_service, stranger) == []
    singles = [{"req_cert": ocsp.OCSPRequest.load(_request(issuer, s))["tbs_request"]["request_list"][0]["req_cert"]}
               for s in (serial, stranger)]  # fmt: skip
    both = ca_service.ocsp_answer(ocsp.OCSPRequest({"tbs_request": {"request_list": singles}}).dump())
    statuses = [r["cert_status"].name for r in ocsp.OCSPResponse.load(both.der).basic_ocsp_response[
        "tbs_response_data"]["responses"]]  # fmt: skip
    assert statuses == ["good", "unknown"] and both.this_update is None and _stored(ca_service, serial) == []


def test_a_serial_another_ca_issued_is_unknown_and_not_stored(
    ca_service: CertificateAuthorityService, tmp_path: Path
) -> None:
    issuer = ca_service.ca_certificate("cn-370000-sm2")
    csr = make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT)
    elsewhere = ca_service.issue(csr, "org-seal", "cn-530000-sm2").certificate.serial_number
    answer = ca_service.ocsp_answer(_request(issuer, elsewhere))
    assert _single(answer.der)["cert_status"].name == "unknown" and _stored(ca_service, elsewhere) == []


@pytest.fixture(scope="module")
def known(ca_service: CertificateAuthorityService, tmp_path_factory: pytest.TempPathFactory) -> list[int]:
    """Serials of cn-370000-sm2: two good, one revoked."""
    directory = tmp_path_factory.mktemp("known")
    serials = [_issue(ca_service, directory, "sm2")[1] for _ in range(3)]
    ca_service.revoke(format(serials[2], "x"), "superseded")
    return serials


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), algorithm=st.sampled_from(["sha1", "sha256", "sha384", "sha512"]))
def test_stored_answers_say_what_live_answers_say(
    ca_service: CertificateAuthorityService, known: list[int], data: st.DataObject, algorithm: str
) -> None:
    """Whatever the serial (issued, revoked, never issued, zero, negative, longer than ours) and the CertID
    hash: the answer without a nonce (stored when it can be) states what a nonce answer (signed live) states,
    for the CertID asked about."""
    serial = data.draw(st.one_of(st.sampled_from(known), st.integers(-(2**70), 2**70), st.integers(2**127, 2**160)))
    issuer = ca_service.ca_certificate("cn-370000-sm2")
    stored = _single(ca_service.ocsp(_request(issuer, serial, algorithm)))
    live = _single(ca_service.ocsp(_request(issuer, serial, algorithm, secrets.token_bytes(8))))
    assert stored["cert_status"].name == live["cert_status"].name
    assert stored["cert_status"].name == (
        "good" if serial in known[:2] else "revoked" if serial == known[2] else "unknown"
    )
    assert stored["cert_id"]["serial_number"].native == serial
    assert stored["cert_id"]["hash_algorithm"]["algorithm"].native == algorithm
    assert stored["cert_id"]["issuer_key_hash"].native == live["cert_id"]["issuer_key_hash"].native


# -- revocation ----------------------------------------------------------------------------------------


def test_revocation_deletes_the_stored_answer_in_its_transaction_and_the_next_is_revoked(
    ca_service: CertificateAuthorityService, tmp_path: Path
) -> None:
    issuer, serial = _issue(ca_service, tmp_path, "sm2")
    der = _request(issuer, serial)
    assert _single(ca_service.ocsp(der))["cert_status"].name == "good"
    assert [r.status for r in _stored(ca_service, serial)] == ["good"]
    invalid_from = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    ca_service.revoke(format(serial, "x"), "keyCompromise", invalidity_date=invalid_from)
    assert _stored(ca_service, serial) == []  # gone with the revocation's commit
    single = _single(ca_service.ocsp(der))
    assert single["cert_status"].name == "revoked"
    assert single["cert_status"].chosen["revocation_reason"].native == "key_compromise"
    extensions = {e["extn_id"].native: e["extn_value"].native for e in single["single_extensions"]}
    assert extensions["invalidity_date"] == invalid_from
    assert [r.status for r in _stored(ca_service, serial)] == ["revoked"]
    assert ca_service.ocsp(der) == ca_service.ocsp(der)  # the revoked answer is stored and served too


def test_a_good_answer_stored_in_a_race_with_the_revocation_is_never_served(
    ca_service: CertificateAuthorityService, tmp_path: Path
) -> None:
    """A request that read `good` before the revocation committed and stored its answer after it (the row
    the revocation deleted comes back): the stored status no longer equals the certificate's, so the read
    statement skips it and the answer is signed again, `revoked`."""
    issuer, serial = _issue(ca_service, tmp_path, "p256")
    der = _request(issuer, serial)
    good = ca_service.ocsp_answer(der)
    key = ca_service.ocsp_responder._parsed[der].key
    ca_service.revoke(format(serial, "x"), "superseded")
    assert good.this_update is not None and good.next_update is not None
    ca_service.ocsp_responder.presigned.put(key, "good", good.der, good.this_update, good.next_update)  # the race
    assert [r.status for r in _stored(ca_service, serial)] == ["good"]
    assert _single(ca_service.ocsp(der))["cert_status"].name == "revoked"


WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ca.authority import CertificateAuthorityService
    from keys.local import LocalKeystore
    from policies.profiles import default_profiles
    from store.db import Database

    db = Database(sys.argv[1])
    service = CertificateAuthorityService(db, LocalKeystore(Path(sys.argv[2]), passphrase=sys.argv[3], scrypt_n=2**10),
                                          default_profiles(), sys.argv[4])
    for line in sys.stdin:
        print(service.ocsp(bytes.fromhex(line.strip())).hex(), flush=True)
    """
)


@pytest.fixture
def other_process(ca_service: CertificateAuthorityService, keystore: LocalKeystore) -> Iterator[subprocess.Popen[str]]:
    """A second responder process on the same database and keystore, answering requests from stdin."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, ca_service.db.url, str(keystore.root), "test-passphrase", PUBLIC_URL],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    try:
        yield worker
    finally:
        assert worker.stdin is not None
        worker.stdin.close()
        worker.wait(30)


def _ask(worker: subprocess.Popen[str], der: bytes) -> bytes:
    assert worker.stdin is not None and worker.stdout is not None
    worker.stdin.write(der.hex() + "\n")
    worker.stdin.flush()
    return bytes.fromhex(worker.stdout.readline().strip())


def test_another_process_answers_revoked_as_soon_as_the_revocation_commits(
    ca_service: CertificateAuthorityService, tmp_path: Path, other_process: subprocess.Popen[str]
) -> None:
    issuer, serial = _issue(ca_service, tmp_path, "sm2")
    der = _request(issuer, serial)
    first = _ask(other_process, der)  # the other process signs and stores `good`, and keeps its caches warm
    assert _single(first)["cert_status"].name == "good"
    assert _ask(other_process, der) == first and ca_service.ocsp(der) == first  # both serve the stored bytes
    ca_service.revoke(format(serial, "x"), "cessationOfOperation")  # this process revokes
    assert _single(_ask(other_process, der))["cert_status"].name == "revoked"  # the other's very next answer
    assert _single(ca_service.ocsp(der))["cert_status"].name == "revoked"


# -- signer and CA key -----------------------------------------------------------------------------------


def test_an_answer_stored_by_another_signer_is_not_served(
    ca_service: CertificateAuthorityService, tmp_path: Path
) -> None:
    """Stored rows name the signer (its certificate's SHA-256): after an OCSP-signer rotation, answers the
    old signer made are re-signed by the new one, never served. Simulated by re-labelling the row."""
    issuer, serial = _issue(ca_service, tmp_path, "sm2")
    der = _request(issuer, serial)
    first = ca_service.ocsp(der)
    with ca_service.db.session() as session:
        session.execute(update(OCSPResponse).where(OCSPResponse.serial == format(serial, "x")).values(signer="00" * 32))
    again = ca_service.ocsp(der)
    assert again != first  # signed again (a fresh randomised signature), not the relabelled bytes
    (row,) = _stored(ca_service, serial)
    signer = x509.Certificate.load(_signer_der(ca_service, "cn-370000-sm2"))
    assert row.signer == signer.sha256.hex()
    assert _single(again)["cert_status"].name == "good"


def test_rows_are_keyed_by_the_ca_key_hash(ca_service: CertificateAuthorityService, tmp_path: Path) -> None:
    """The CertID's issuerKeyHash is part of the key: a CA rollover's new key never picks up a response
    stored for the old key's CertID (and a CertID naming another key is not answered from it)."""
    issuer, serial = _issue(ca_service, tmp_path, "p256")
    ca_service.ocsp(_request(issuer, serial, "sha256"))
    (row,) = _stored(ca_service, serial)
    assert row.issuer_key_hash == hashlib.sha256(issuer.public_key["public_key"].contents[1:]).hexdigest()


# -- the scheduler's refresh ------------------------------------------------------------------------------


@pytest.fixture
def clock(ca_service: CertificateAuthorityService) -> Iterator[list[datetime]]:
    """The responder's clock, set by the test (one-element list)."""
    now = [datetime.now(UTC).replace(microsecond=0)]
    ca_service.ocsp_responder.clock = lambda: now[0]
    try:
        yield now
    finally:
        ca_service.ocsp_responder.clock = lambda: datetime.now(UTC)


def test_the_scheduler_re_signs_before_half_the_validity(
    ca_service: CertificateAuthorityService, tmp_path: Path, clock: list[datetime]
) -> None:
    responder: OCSPResponder = ca_service.ocsp_responder
    responder.refresh_due()  # whatever other tests left due
    issuer, serial = _issue(ca_service, tmp_path, "sm2")
    der = _request(issuer, serial)
    start = clock[0]
    first = ca_service.ocsp_answer(der)
    assert first.this_update == start
    clock[0] = start + OCSP_VALIDITY / 2 - REFRESH_MARGIN - timedelta(minutes=1)  # not yet due
    assert responder.refresh_due() == 0 and ca_service.ocsp(der) == first.der
    clock[0] = start + OCSP_VALIDITY / 2 - REFRESH_MARGIN + timedelta(minutes=1)  # due, before half
    assert responder.refresh_due() >= 1 and responder.refresh_due() == 0
    refreshed = ca_service.ocsp_answer(der)
    assert refreshed.der != first.der and refreshed.this_update == clock[0]
    assert refreshed.next_update == clock[0] + OCSP_VALIDITY
    assert clock[0] < start + OCSP_VALIDITY / 2  # the old answer was replaced before half its validity
    single = _single(refreshed.der)
    assert single["this_update"].native == clock[0] and single["cert_status"].name == "good"


def test_without_the_scheduler_an_expired_answer_is_never_served(
    ca_service: CertificateAuthorityService, tmp_path: Path, clock: list[datetime]
) -> None:
    issuer, serial = _issue(ca_service, tmp_path, "sm2")
    der = _request(issuer, serial)
    first = ca_service.ocsp_answer(der)
    clock[0] = clock[0] + OCSP_VALIDITY  # exactly nextUpdate: no longer current
    late = ca_service.ocsp_answer(der)
    assert late.der != first.der and late.this_update == clock[0]
    assert late.next_update is not None and late.next_update > clock[0]


def test_refresh_drops_answers_of_expired_certificates(
    ca_service: CertificateAuthorityService, tmp_path: Path, clock: list[datetime]
) -> None:
    issuer, serial = _issue(ca_service, tmp_path, "sm2")
    ca_service.ocsp(_request(issuer, serial))
    with ca_service.db.session() as session:
        from store.models import Certificate

        row = session.get(Certificate, format(serial, "x"))
        assert row is not None
        not_after = row.not_after
    clock[0] = not_after + timedelta(days=1)
    ca_service.ocsp_responder.refresh_due()
    assert _stored(ca_service, serial) == []


# -- OpenSSL verifies the stored responses ------------------------------------------------------------


def test_openssl_verifies_presigned_p256_good_and_revoked(
    ca_service: CertificateAuthorityService, live_url: str, tmp_path: Path
) -> None:
    issuer, good = _issue(ca_service, tmp_path, "p256")
    _, revoked = _issue(ca_service, tmp_path, "p256")
    issuer_pem = _write(tmp_path, "issuer.pem", pem(issuer.dump()))
    root = pem(ca_service.ca_certificate("cn-root-p256").dump())
    trust = _write(tmp_path, "trust.pem", root + pem(issuer.dump()))
    signer = _write(tmp_path, "signer.pem", pem(_signer_der(ca_service, "cn-370000-p256")))

    def ask(serial: int, name: str) -> tuple[str, bytes]:
        out = _write(tmp_path, f"{name}.der", b"")
        done = openssl("ocsp", "-issuer", issuer_pem, "-serial", hex(serial), "-url", f"{live_url}/v1/ocsp",
                       "-no_nonce", "-CAfile", trust, "-respout", out, check=False)  # fmt: skip
        text = (done.stdout + done.stderr).decode()
        assert done.returncode == 0 and "Response verify OK" in text, text
        return text, Path(out).read_bytes()

    text, first = ask(good, "good1")
    assert re.search(r": good", text), text
    _, second = ask(good, "good2")
    assert second == first  # served as stored: the same bytes, the same producedAt
    # verified against the delegated signer alone (-VAfile), as a relying party pinning it would
    pinned = openssl("ocsp", "-respin", _write(tmp_path, "first.der", first), "-issuer", issuer_pem,
                     "-VAfile", signer, "-serial", hex(good), check=False)  # fmt: skip
    assert b"Response verify OK" in pinned.stdout + pinned.stderr and b": good" in pinned.stdout

    _, before = ask(revoked, "before")  # stored `good` ...
    assert _single(before)["cert_status"].name == "good"
    ca_service.revoke(format(revoked, "x"), "keyCompromise")
    text, after = ask(revoked, "after")  # ... and the next answer is `revoked`
    assert ": revoked" in text and "Reason: keyCompromise" in text, text
    assert ask(revoked, "after2")[1] == after


def test_openssl_parses_presigned_sm2_and_pkeyutl_verifies_it(
    ca_service: CertificateAuthorityService, tmp_path: Path
) -> None:
    issuer, serial = _issue(ca_service, tmp_path, "sm2")
    issuer_pem = _write(tmp_path, "issuer.pem", pem(issuer.dump()))
    signer_der = _signer_der(ca_service, "cn-370000-sm2")
    spki = _write(tmp_path, "signer.pub", pem(x509.Certificate.load(signer_der).public_key.dump(), "PUBLIC KEY"))
    der = _request(issuer, serial)
    for expected in ("good", "revoked"):
        if expected == "revoked":
            ca_service.revoke(format(serial, "x"), "affiliationChanged")
        response = ca_service.ocsp(der)
        assert response == ca_service.ocsp(der)  # stored
        done = openssl("ocsp", "-respin", _write(tmp_path, f"{expected}.der", response), "-issuer", issuer_pem,
                       "-serial", hex(serial), "-no_signature_verify", "-noverify", check=False)  # fmt: skip
        assert done.returncode == 0 and f": {expected}".encode() in done.stdout, done.stdout + done.stderr
        basic = ocsp.OCSPResponse.load(response).basic_ocsp_response
        assert basic["certs"][0].dump() == signer_der
        tbs = _write(tmp_path, f"{expected}-tbs.der", basic["tbs_response_data"].dump())
        sig = _write(tmp_path, f"{expected}.sig", basic["signature"].native)
        verified = openssl("pkeyutl", "-verify", "-pubin", "-inkey", spki, "-rawin", "-in", tbs, "-sigfile", sig,
                           "-digest", "sm3", "-pkeyopt", DISTID, check=False)  # fmt: skip
        assert b"Signature Verified Successfully" in verified.stdout, verified.stdout + verified.stderr
        flipped = _write(tmp_path, f"{expected}-flipped.der", basic["tbs_response_data"].dump()[:-1] + b"\x00")
        refused = openssl("pkeyutl", "-verify", "-pubin", "-inkey", spki, "-rawin", "-in", flipped, "-sigfile", sig,
                          "-digest", "sm3", "-pkeyopt", DISTID, check=False)  # fmt: skip
        assert b"Signature Verified Successfully" not in refused.stdout


def test_a_store_that_cannot_be_written_still_gets_the_right_answer(
    ca_service: CertificateAuthorityService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Storing is an optimisation: when the write fails (a locked or read-only database) the request is
    still answered, signed for it, and nothing is stored."""
    issuer, serial = _issue(ca_service, tmp_path, "sm2")

    def refuse(*_: Any) -> None:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(ca_service.ocsp_responder.presigned, "put", refuse)
    answer = ca_service.ocsp_answer(_request(issuer, serial))
    assert _single(answer.der)["cert_status"].name == "good" and _stored(ca_service, serial) == []


def test_a_refresh_whose_writes_fail_stops_instead_of_re_signing_one_batch_again_and_again(
    ca_service: CertificateAuthorityService, tmp_path: Path, clock: list[datetime], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read-only database (after a failover): the due rows stay due; one pass signs each once and the
    round stops, reporting nothing refreshed (a review found up to 10,000 passes over the same batch)."""
    responder: OCSPResponder = ca_service.ocsp_responder
    responder.refresh_due()  # whatever other tests left due
    start = clock[0]
    for _ in range(3):
        issuer, serial = _issue(ca_service, tmp_path, "p256")
        ca_service.ocsp_answer(_request(issuer, serial))
    clock[0] = start + OCSP_VALIDITY / 2  # every stored row due
    signed = []
    real_presign = responder._presign

    def counted(*args: Any) -> Any:
        signed.append(1)
        return real_presign(*args)

    def refuse(*_: Any) -> None:
        raise OperationalError("UPDATE", {}, Exception("cannot execute UPDATE in a read-only transaction"))

    monkeypatch.setattr(responder, "_presign", counted)
    monkeypatch.setattr(responder.presigned, "put", refuse)
    assert responder.refresh_due(batch=2) == 0
    assert 1 <= len(signed) <= 2  # one pass, at most one batch signed
    monkeypatch.undo()
    assert responder.refresh_due() >= 3  # the next round, with a writable database, does the work


# -- OCSP-signer rotation and CA key rollover (ca/rollover.py) --------------------------------------------


def test_after_a_signer_rotation_a_stored_answer_is_re_signed_by_the_new_signer(
    ca_service: CertificateAuthorityService, tmp_path: Path
) -> None:
    csr = make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT)
    serial = ca_service.issue(csr, "org-seal", "cn-530000-sm2").certificate.serial_number
    der = _request(ca_service.ca_certificate("cn-530000-sm2"), serial)
    before = ca_service.ocsp(der)
    assert ca_service.ocsp(der) == before  # stored
    rotation = rotate_ocsp_signer(ca_service, "cn-530000-sm2", actor="test")
    after = ca_service.ocsp(der)
    basic = ocsp.OCSPResponse.load(after).basic_ocsp_response
    assert basic["certs"][0].dump() == rotation.certificate_der  # the old signer's stored bytes are not served
    (row,) = _stored(ca_service, serial)
    assert row.signer == x509.Certificate.load(rotation.certificate_der).sha256.hex() and row.der == after


def test_after_a_rollover_each_key_answers_for_its_own_certificates_from_the_store(
    ca_service: CertificateAuthorityService, tmp_path: Path
) -> None:
    old_issuer = ca_service.ca_certificate("cn-530000-sm2")
    old_signer = _signer_der(ca_service, "cn-530000-sm2")
    csr = make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT)
    old_serial = ca_service.issue(csr, "org-seal", "cn-530000-sm2").certificate.serial_number
    old_answer = ca_service.ocsp(_request(old_issuer, old_serial))
    roll_over(ca_service, "cn-530000-sm2", actor="test")
    new_issuer = ca_service.ca_certificate("cn-530000-sm2")
    assert new_issuer.public_key.dump() != old_issuer.public_key.dump()
    # the old key's CertID: still its stored answer, by the old key's signer
    assert ca_service.ocsp(_request(old_issuer, old_serial)) == old_answer
    assert ocsp.OCSPResponse.load(old_answer).basic_ocsp_response["certs"][0].dump() == old_signer
    # the new key's CertID for the old key's certificate: unknown, signed live, nothing stored for it
    mixed = ca_service.ocsp_answer(_request(new_issuer, old_serial))
    assert _single(mixed.der)["cert_status"].name == "unknown" and mixed.this_update is None
    assert [r.issuer_key_hash for r in _stored(ca_service, old_serial)] == [
        hashlib.sha1(old_issuer.public_key["public_key"].contents[1:]).hexdigest()
    ]
    # a certificate of the new key: stored under the new key, signed by the new key's signer
    csr = make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT)
    new_serial = ca_service.issue(csr, "org-seal", "cn-530000-sm2").certificate.serial_number
    new_answer = ca_service.ocsp_answer(_request(new_issuer, new_serial))
    assert _single(new_answer.der)["cert_status"].name == "good" and new_answer.this_update is not None
    signer = ocsp.OCSPResponse.load(new_answer.der).basic_ocsp_response["certs"][0]
    assert signer.issuer == new_issuer.subject and signer.dump() != old_signer
    assert _single(ca_service.ocsp(_request(old_issuer, new_serial)))["cert_status"].name == "unknown"


def test_the_event_loop_path_answers_only_what_is_stored_and_current(
    ca_service: CertificateAuthorityService, tmp_path: Path
) -> None:
    """`stored_answer` (what the HTTP layer asks on the event loop): None for a request never seen (it
    would have to parse and sign), the stored bytes once answered, None again as soon as the certificate is
    revoked (the same status rule as every stored answer) — the next answer is then signed `revoked`."""
    responder: OCSPResponder = ca_service.ocsp_responder
    issuer, serial = _issue(ca_service, tmp_path, "p256")
    der = _request(issuer, serial)
    assert responder.stored_answer(der) is None
    first = ca_service.ocsp_answer(der)
    again = responder.stored_answer(der)
    assert again is not None and again.der == first.der
    assert responder.stored_answer(_request(issuer, serial, nonce=b"n" * 16)) is None  # a nonce: never stored
    ca_service.revoke(f"{serial:x}", "keyCompromise")
    assert responder.stored_answer(der) is None
    assert _single(ca_service.ocsp(der))["cert_status"].name == "revoked"
