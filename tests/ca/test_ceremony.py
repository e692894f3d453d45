"""The offline root (ca/ceremony.py, ca/ceremony_home.py, ca/ceremony_import.py): after `move_offline` the
online custody holds no root key, whatever the root must sign becomes a ceremony request, the ceremony home
signs it, and an import completes it only if it is exactly the requested TBS signed by the root's key.
Both demo roots go offline in this module (one ceremony home); checks by OpenSSL where it applies."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import crl as asn1_crl
from asn1crypto import pem, x509
from sqlalchemy import select

from api.context import Context
from ca import ceremony
from ca import crl as crls
from ca.ceremony_home import AlreadyOffline, CeremonyCustodyUnsupported, CeremonyHome, NotARoot, move_offline
from ca.ceremony_import import (
    CeremonyNotPending,
    CeremonyOutputMalformed,
    CeremonyOutputMismatch,
    CeremonySignatureInvalid,
    import_output,
)
from ca.errors import CAError
from ca.trust_list import SIGNER_KEY
from gm import der
from keys.custody import KeyAlgorithm
from keys.local import LocalKeystore
from store.models import CeremonyRequest, CertificateAuthority, Event
from tests.fixtures import openssl, table_snapshot

ROOTS = ("cn-root-sm2", "cn-root-p256")
PASSPHRASE = "ceremony-" + secrets.token_hex(8)
DISTID = "distid:1234567812345678"


@dataclass(frozen=True)
class Offline:
    home: CeremonyHome
    moved: dict[str, dict[str, Any]]
    root_spki: dict[str, bytes]
    ocsp_before: dict[str, bytes]  # the roots' OCSP signer certificates before they left


@pytest.fixture(scope="module")
def offline(context: Context, tmp_path_factory: pytest.TempPathFactory) -> Offline:
    home = CeremonyHome.open(tmp_path_factory.mktemp("ceremony") / "home", PASSPHRASE, create=True, online=None)
    raw = getattr(context.custody, "inner", context.custody)
    spki = {name: context.ca.ca_certificate(name).public_key.dump() for name in ROOTS}
    ocsp_before = {name: _ocsp_signer_der(context, name) for name in ROOTS}
    moved = {
        name: move_offline(context.ca, raw, name, home, "test-ceremony", context.verification.publisher)
        for name in ROOTS
    }
    return Offline(home, moved, spki, ocsp_before)


def _ocsp_signer_der(context: Context, name: str) -> bytes:
    der_bytes = context.ca.snapshot().get(name).ocsp_certificate_der
    assert der_bytes is not None
    return der_bytes


def _pem(der_bytes: bytes, label: str = "CERTIFICATE") -> bytes:
    armored: bytes = pem.armor(label, der_bytes)
    return armored


def _request(context: Context, request_id: str) -> dict[str, Any]:
    return ceremony.get_request(context.db, request_id, with_tbs=True)


def _complete(context: Context, offline: Offline, request_id: str) -> dict[str, Any]:
    output = offline.home.sign(_request(context, request_id))
    return import_output(context.ca, output, "test-officer", publisher=context.verification.publisher)


def _new_ca(context: Context, name: str, parent: str = "cn-root-sm2") -> dict[str, Any]:
    """A regional CA under an offline root: CeremonyRequired → the pending request."""
    family = parent.rsplit("-", 1)[1]
    with pytest.raises(ceremony.CeremonyRequired) as waiting:
        context.ca.create_ca(
            name,
            algorithm=KeyAlgorithm(family),
            subject={"country_name": "CN", "organization_name": "trustseal test", "common_name": name},
            ca_profile="regional-ca",
            parent=parent,
            region_code="440000",
            region_name="Guangdong",
            actor="test",
        )
    return waiting.value.request


# -- after the ceremony ----------------------------------------------------------------------------


def test_the_online_custody_holds_no_root_key(context: Context, offline: Offline) -> None:
    raw = getattr(context.custody, "inner", context.custody)
    assert isinstance(raw, LocalKeystore)
    for name in ROOTS:
        assert name not in raw.names() and name not in context.custody.names()
        assert not (raw.root / f"{name}.key.json").exists()
        public = base64.b64encode(offline.root_spki[name]).decode()
        for path in raw.root.iterdir():  # no file of the online keystore names the root's key
            assert public not in path.read_text(errors="replace"), path
        held = offline.home.keystore.versions(name)  # the ceremony home has it, under its own passphrase
        assert [v.public_key_der for v in held] == [offline.root_spki[name]]
        with context.db.session() as session:
            row = session.get(CertificateAuthority, name)
            assert row is not None and row.offline
            event = session.scalars(select(Event).where(Event.type == "ca.moved_offline", Event.subject == name)).one()
        assert event.actor == "test-ceremony" and event.payload["key"] == offline.moved[name]["key"]
        assert context.ca.snapshot().get(name).offline
    with pytest.raises(Exception, match=r"wrong key-encryption key|check value"):  # not the online passphrase
        LocalKeystore(offline.home.keystore.root, passphrase="test-passphrase")
    assert (offline.home.path.stat().st_mode & 0o077) == 0


def test_issuance_under_the_offline_root_keeps_working(context: Context, offline: Offline, tmp_path: Path) -> None:
    from tests.fixtures import ORG_SUBJECT, make_csr

    for family in ("sm2", "p256"):
        csr = make_csr(tmp_path, algorithm=family, subject=ORG_SUBJECT)
        issued = context.ca.issue(csr, "org-seal", f"cn-370000-{family}")
        assert issued.chain[-1] == context.ca.ca_certificate(f"cn-root-{family}").dump()
    context.ca.refresh_crls()  # every online CA signs; the offline roots open one request each, never fail


def test_move_offline_refusals_change_nothing(context: Context, offline: Offline) -> None:
    raw = getattr(context.custody, "inner", context.custody)
    before = table_snapshot(context.db)
    with pytest.raises(AlreadyOffline):
        move_offline(context.ca, raw, "cn-root-sm2", offline.home, "t", context.verification.publisher)
    with pytest.raises(NotARoot):
        move_offline(context.ca, raw, "cn-370000-sm2", offline.home, "t", context.verification.publisher)
    with pytest.raises(CeremonyCustodyUnsupported):
        move_offline(context.ca, context.custody, "cn-root-sm2", offline.home, "t", context.verification.publisher)
    with pytest.raises(CAError, match="must not be the online"):
        CeremonyHome.open(offline.home.path, "same", online="same")
    assert table_snapshot(context.db) == before


# -- a CA under the offline root -------------------------------------------------------------------


def test_a_regional_ca_under_the_offline_root_completes_on_import(
    context: Context, offline: Offline, tmp_path: Path
) -> None:
    from tests.fixtures import ORG_SUBJECT, make_csr

    request = _new_ca(context, "cn-440000-sm2")
    assert request["operation"] == "ca.create" and request["status"] == "pending" and request["ca"] == "cn-root-sm2"
    with context.db.session() as session:
        assert session.get(CertificateAuthority, "cn-440000-sm2") is None  # nothing but the request
    with pytest.raises(ceremony.CeremonyPending):  # one pending request per CA name
        _new_ca(context, "cn-440000-sm2")
    lines = offline.home.describe(_request(context, request["id"]))
    assert any("Guangdong" in line or "cn-440000-sm2" in line for line in lines) and any(
        "CA        True" in line for line in lines
    )

    done = _complete(context, offline, request["id"])
    assert done["status"] == "completed" and done["result"]["ca"] == "cn-440000-sm2"
    child = context.ca.ca_certificate("cn-440000-sm2").dump()
    root = context.ca.ca_certificate("cn-root-sm2").dump()
    (tmp_path / "root.pem").write_bytes(_pem(root))
    (tmp_path / "child.pem").write_bytes(_pem(child))
    checked = openssl("verify", "-partial_chain", "-vfyopt", DISTID, "-CAfile", "root.pem", "child.pem", cwd=tmp_path)
    assert b"child.pem: OK" in checked.stdout
    listed = context.verification.publisher.current()
    assert any(ca["name"] == "cn-440000-sm2" for region in listed["regions"] for ca in region["cas"])
    issued = context.ca.issue(make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT), "org-seal", "cn-440000-sm2")
    assert issued.chain == [child, root]
    with pytest.raises(CeremonyNotPending):  # a second import of the same output
        _complete(context, offline, request["id"])


def test_a_withdrawal_changes_the_trust_list_at_once_and_the_root_crl_on_import(
    context: Context, offline: Offline, tmp_path: Path
) -> None:
    from ca.withdrawal import withdraw_ca

    _complete(context, offline, _new_ca(context, "cn-450000-p256", "cn-root-p256")["id"])
    serial = context.ca.ca_certificate("cn-450000-p256").serial_number
    crl_before = context.ca.current_crl("cn-root-p256")
    done = withdraw_ca(context.ca, "cn-450000-p256", reason="caCompromise", publisher=context.verification.publisher)
    assert done.ceremony is not None and done.ceremony["operation"] == "crl" and done.revoked_serial == f"{serial:x}"
    listed = context.verification.publisher.current()  # at once
    entry = next(ca for r in listed["regions"] for ca in r["cas"] if ca["name"] == "cn-450000-p256")
    assert entry["status"] == "withdrawn"
    assert context.ca.current_crl("cn-root-p256") == crl_before  # the served CRL waits for the ceremony

    completed = _complete(context, offline, done.ceremony["id"])
    served = context.ca.current_crl("cn-root-p256")
    assert served != crl_before and completed["result"]["crl_number"] == _crl_number(served)
    revoked = asn1_crl.CertificateList.load(served)["tbs_cert_list"]["revoked_certificates"]
    assert serial in [r["user_certificate"].native for r in revoked]
    _openssl_crl_verify(tmp_path, served, context.ca.ca_certificate("cn-root-p256").dump())


def _crl_number(der_bytes: bytes) -> int:
    tbs = asn1_crl.CertificateList.load(der_bytes)["tbs_cert_list"]
    number: int = next(e["extn_value"].native for e in tbs["crl_extensions"] if e["extn_id"].native == "crl_number")
    return number


def _openssl_crl_verify(directory: Path, crl_der: bytes, root_der: bytes) -> None:
    (directory / "crl.der").write_bytes(crl_der)
    (directory / "root-p256.pem").write_bytes(_pem(root_der))
    args = ("crl", "-inform", "DER", "-in", "crl.der", "-CAfile", "root-p256.pem", "-noout", "-verify")
    result = openssl(*args, cwd=directory)
    assert b"verify OK" in result.stderr + result.stdout


def _pkeyutl_verify(directory: Path, spki: bytes, signed: bytes, signature: bytes) -> bool:
    (directory / "pub.pem").write_bytes(_pem(spki, "PUBLIC KEY"))
    (directory / "tbs.der").write_bytes(signed)
    (directory / "sig.bin").write_bytes(signature)
    args = ["pkeyutl", "-verify", "-pubin", "-inkey", "pub.pem", "-rawin", "-in", "tbs.der", "-sigfile", "sig.bin"]
    result = openssl(*args, "-digest", "sm3", "-pkeyopt", DISTID, cwd=directory, check=False)
    return result.returncode == 0 and b"Signature Verified Successfully" in result.stdout


# -- the root CRL, refreshed offline ---------------------------------------------------------------


def test_a_root_crl_refresh_is_done_offline(context: Context, offline: Offline, tmp_path: Path) -> None:
    with context.db.session() as session:  # two weeks on: the newest root CRLs are past half their validity
        for name in ROOTS:
            newest = crls.newest(session, name)
            assert newest is not None
            newest.next_update = datetime.now(UTC) + timedelta(days=10)
    first = context.ca.refresh_due_crls()
    assert not set(first) & set(ROOTS)  # nothing signed for them online …
    with context.db.session() as session:
        waiting = {
            name: session.scalars(
                select(CeremonyRequest).where(
                    CeremonyRequest.operation == "crl",
                    CeremonyRequest.subject == name,
                    CeremonyRequest.status == "pending",
                )
            ).all()
            for name in ROOTS
        }
    assert all(len(rows) == 1 for rows in waiting.values()), waiting  # … but one request each
    ids = {name: rows[0].id for name, rows in waiting.items()}
    context.ca.refresh_due_crls()  # the next rounds open no second request and do not fail
    context.ca.refresh_due_crls()
    context.ca.refresh_crls()  # nor does a refresh of every CA: the ceremony may be signing that request
    assert {r["id"] for r in ceremony.list_requests(context.db, "pending") if r["operation"] == "crl"} == set(
        ids.values()
    )

    for name, request_id in ids.items():
        _complete(context, offline, request_id)
        served = context.ca.current_crl(name)
        crl = asn1_crl.CertificateList.load(served)
        assert crl["tbs_cert_list"]["next_update"].native - datetime.now(UTC) > timedelta(days=29)
        root = context.ca.ca_certificate(name)
        if name.endswith("p256"):
            _openssl_crl_verify(tmp_path, served, root.dump())
        else:
            assert _pkeyutl_verify(
                tmp_path, root.public_key.dump(), crl["tbs_cert_list"].dump(), crl["signature"].native
            )
    assert not set(context.ca.refresh_due_crls()) & set(ROOTS)  # fresh now: no request
    assert not [r for r in ceremony.list_requests(context.db, "pending") if r["operation"] == "crl"]


# -- the trust-list signer ---------------------------------------------------------------------------


def test_the_trust_list_signer_is_rotated_through_a_ceremony(context: Context, offline: Offline) -> None:
    from gm import jcs
    from gm.signatures import verify_signature

    publisher = context.verification.publisher
    before = publisher.current()
    with pytest.raises(ceremony.CeremonyRequired) as waiting:
        publisher.rotate_signer("test-officer")
    request = waiting.value.request
    assert request["operation"] == "trust_list.signer"
    with pytest.raises(ceremony.CeremonyPending):  # one rotation at a time
        publisher.rotate_signer("test-officer")
    meanwhile = publisher._republish()  # the list keeps being published, by the certified signer
    assert meanwhile["signer_certificate"] == before["signer_certificate"]

    _complete(context, offline, request["id"])
    after = publisher.current()
    assert after["signer_certificate"] != before["signer_certificate"]
    assert after["previous_signer_certificate"] == before["signer_certificate"]
    new_cert = x509.Certificate.load(pem.unarmor(after["signer_certificate"].encode())[2])
    old_cert = x509.Certificate.load(pem.unarmor(before["signer_certificate"].encode())[2])
    assert new_cert.public_key.dump() == context.custody.get(SIGNER_KEY).public_key_der
    assert new_cert.issuer == context.ca.ca_certificate("cn-root-sm2").subject
    body = {k: v for k, v in after.items() if k not in ("signature", "handover_signature")}
    algorithm = new_cert["signature_algorithm"]
    canonical = jcs.canonical(body)
    assert verify_signature(new_cert.public_key.dump(), algorithm, base64.b64decode(after["signature"]), canonical)
    assert verify_signature(
        old_cert.public_key.dump(), algorithm, base64.b64decode(after["handover_signature"]), canonical
    )


# -- bad imports: 4xx with a code, nothing changed ---------------------------------------------------


@pytest.fixture
def pending_ca(context: Context, offline: Offline) -> dict[str, Any]:
    return _request(context, _new_ca(context, f"cn-46{secrets.randbelow(9999):04d}-sm2")["id"])


def _refused(context: Context, output: object, error: type[CAError], status: int) -> None:
    before = table_snapshot(context.db)
    with pytest.raises(error) as refused:
        import_output(context.ca, output, "test-officer", publisher=context.verification.publisher)
    assert refused.value.status == status
    assert table_snapshot(context.db) == before


@pytest.mark.parametrize("family", ["sm2", "p256"])
def test_an_output_signed_by_another_key_is_refused(
    context: Context, offline: Offline, family: str, tmp_path: Path
) -> None:
    parent = f"cn-root-{family}"
    request = _request(context, _new_ca(context, f"cn-47{secrets.randbelow(9999):04d}-{family}", parent)["id"])
    other = LocalKeystore(tmp_path / "other", passphrase="other", scrypt_n=2**10)
    handle = other.signer(other.create("intruder", KeyAlgorithm(family)).ref)
    tbs = base64.b64decode(request["tbs"])
    algorithm = x509.TbsCertificate.load(tbs)["signature"].dump()
    forged = der.sequence(tbs, algorithm, der.bit_string(handle.sign(tbs)))
    signed = base64.b64encode(forged).decode()
    output = {"format": ceremony.OUTPUT_FORMAT, "request": request["id"], "signed": signed}
    _refused(context, output, CeremonySignatureInvalid, 422)
    genuine = offline.home.sign(request)  # the root's own signature over the same bytes is accepted
    assert import_output(context.ca, genuine, "test-officer")["status"] == "completed"


def test_a_certificate_for_another_key_or_a_tampered_tbs_is_refused(
    context: Context, offline: Offline, pending_ca: dict[str, Any]
) -> None:
    tbs = x509.TbsCertificate.load(base64.b64decode(pending_ca["tbs"]))
    from keys import material

    other_spki = material.generate("sm2").public_key_der()  # any SM2 key but the requested one
    for change in ({"subject_public_key_info": other_spki}, {"serial_number": tbs["serial_number"].native + 1}):
        altered = x509.TbsCertificate.load(tbs.dump())
        for field, value in change.items():
            altered[field] = x509.PublicKeyInfo.load(value) if isinstance(value, bytes) else value
        # signed by the real root key in the ceremony home (around `sign`, which would refuse a second TBS for
        # the request): only the TBS differs from the request
        output = _signed_by_root(offline, pending_ca, altered.dump())
        _refused(context, output, CeremonyOutputMismatch, 422)


def _signed_by_root(offline: Offline, request: dict[str, Any], tbs_der: bytes) -> dict[str, Any]:
    handle = offline.home.keystore.signer(request["key"])
    algorithm = x509.TbsCertificate.load(tbs_der)["signature"].dump()
    signed = der.sequence(tbs_der, algorithm, der.bit_string(handle.sign(tbs_der)))
    return {"format": ceremony.OUTPUT_FORMAT, "request": request["id"], "signed": base64.b64encode(signed).decode()}


def test_malformed_unknown_and_completed_requests_are_refused(
    context: Context, offline: Offline, pending_ca: dict[str, Any]
) -> None:
    good = offline.home.sign(pending_ca)
    _refused(context, {"format": "something else"}, CeremonyOutputMalformed, 422)
    _refused(context, {**good, "signed": "***"}, CeremonyOutputMalformed, 422)
    _refused(
        context, {**good, "signed": base64.b64encode(b"\x30\x03\x02\x01\x01").decode()}, CeremonyOutputMalformed, 422
    )
    _refused(context, {**good, "request": "0" * 32}, ceremony.CeremonyNotFound, 404)
    import_output(context.ca, good, "test-officer")
    _refused(context, good, CeremonyNotPending, 409)


def test_the_ceremony_home_signs_only_tbs_of_its_own_cas(
    context: Context, offline: Offline, pending_ca: dict[str, Any]
) -> None:
    from ca.ceremony_home import RequestRefused

    with pytest.raises(RequestRefused):
        offline.home.sign({**pending_ca, "ca": "cn-370000-sm2"})  # not a CA held here
    with pytest.raises(RequestRefused):
        offline.home.sign({**pending_ca, "ca": "cn-root-p256", "key": "cn-root-p256@1"})  # issuer is the SM2 root
    with pytest.raises(RequestRefused):
        offline.home.sign({**pending_ca, "tbs": base64.b64encode(b"not a tbs").decode()})
    with pytest.raises(RequestRefused):
        offline.home.sign({**pending_ca, "format": "x"})


def test_signer_for_never_asks_custody_for_an_offline_key(context: Context, offline: Offline) -> None:
    entry = context.ca.snapshot().get("cn-root-sm2")
    handle = ceremony.signer_for(context.custody, entry)
    with pytest.raises(ceremony.SignatureDeferred) as deferred:
        handle.sign(b"tbs")
    assert deferred.value.tbs == b"tbs" and deferred.value.key_ref == entry.key_ref
    assert json.dumps(deferred.value.params) == "{}"
    online = ceremony.signer_for(context.custody, context.ca.snapshot().get("cn-370000-sm2"))
    assert online.sign(b"x")


def test_the_store_admits_one_pending_request_per_operation_and_subject(
    context: Context, offline: Offline, pending_ca: dict[str, Any]
) -> None:
    from sqlalchemy.exc import IntegrityError

    twin = CeremonyRequest(
        id=secrets.token_hex(16),
        operation="ca.create",
        subject=pending_ca["subject"],
        ca_name="cn-root-sm2",
        key_ref=pending_ca["key"],
        kind="certificate",
        tbs_der=base64.b64decode(pending_ca["tbs"]),
        params={},
        status="pending",
        created_at=datetime.now(UTC),
    )
    with pytest.raises(IntegrityError), context.db.session() as session:  # a racing second writer
        session.add(twin)
    twin.status = "superseded"  # a superseded or completed twin is history, not a second pending request
    with context.db.session() as session:
        session.merge(twin)


# -- the offline side's policy: what it agrees to sign (ca/ceremony_policy.py) -------------------------


def _altered(request: dict[str, Any], change: Any, **fields: Any) -> dict[str, Any]:
    """The request with its TBS changed by `change(tbs)` (the request file is unauthenticated)."""
    kind = asn1_crl.TbsCertList if request["kind"] == "crl" else x509.TbsCertificate
    tbs = kind.load(base64.b64decode(request["tbs"]))
    change(tbs)
    return {**request, **fields, "tbs": base64.b64encode(tbs.dump(force=True)).decode()}


def _set_extension(name: str, value: Any, critical: bool = False) -> Any:
    def change(tbs: Any) -> None:
        extensions = [e for e in tbs["extensions"] if e["extn_id"].native != name]
        if value is not None:
            extensions.append(x509.Extension({"extn_id": name, "critical": critical, "extn_value": value}))
        tbs["extensions"] = extensions

    return change


def _refused_offline(offline: Offline, request: dict[str, Any], match: str) -> None:
    from ca.ceremony_home import RequestRefused

    with pytest.raises(RequestRefused, match=match):
        offline.home.sign(request)


def test_the_ceremony_home_refuses_ca_certificates_its_policy_does_not_allow(
    context: Context, offline: Offline, pending_ca: dict[str, Any]
) -> None:
    root = context.ca.ca_certificate("cn-root-sm2")
    no_path_len = x509.BasicConstraints({"ca": True})
    _refused_offline(offline, _altered(pending_ca, _set_extension("basic_constraints", no_path_len, True)), "pathLen")
    _refused_offline(offline, _altered(pending_ca, _set_extension("basic_constraints", None)), "not a CA")
    no_cert_sign = x509.KeyUsage({"digital_signature", "crl_sign"})
    _refused_offline(offline, _altered(pending_ca, _set_extension("key_usage", no_cert_sign, True)), "keyCertSign")

    def root_key(tbs: Any) -> None:
        tbs["subject_public_key_info"] = x509.PublicKeyInfo.load(root.public_key.dump())

    def root_subject(tbs: Any) -> None:
        tbs["subject"] = x509.Name.load(root.subject.dump())

    def outlives_root(tbs: Any) -> None:
        tbs["validity"]["not_after"] = x509.Time({"general_time": root.not_valid_after + timedelta(days=1)})

    _refused_offline(offline, _altered(pending_ca, root_key), "root's own key")
    _refused_offline(offline, _altered(pending_ca, root_subject), "root's own subject")
    _refused_offline(offline, _altered(pending_ca, outlives_root), "not inside the root's")
    _refused_offline(offline, {**pending_ca, "operation": "trust_list.signer"}, "not be a CA")
    _refused_offline(offline, {**pending_ca, "operation": "ocsp.signer"}, "not be a CA")
    _refused_offline(offline, {**pending_ca, "operation": "crl"}, "TBS is a certificate")
    _refused_offline(offline, {**pending_ca, "operation": "anything"}, "unknown operation")
    assert offline.home.sign(pending_ca)["request"] == pending_ca["id"]  # the request as asked is signed


def test_the_ceremony_home_refuses_a_forged_crl(context: Context, offline: Offline) -> None:
    """The reviewer's probe: a pending CRL request whose TBS is swapped for one with no entries, a lower
    number and a validity until 2049 was signed as is."""
    context.ca.refresh_crls()
    with context.db.session() as session:
        row = ceremony.pending(session, "crl", "cn-root-sm2")
        assert row is not None
        request = _request(context, row.id)

    def long_lived(tbs: Any) -> None:
        tbs["next_update"] = x509.Time({"general_time": datetime(2049, 1, 1, tzinfo=UTC)})

    def expired(tbs: Any) -> None:
        tbs["this_update"] = x509.Time({"utc_time": datetime(2020, 1, 1, tzinfo=UTC)})
        tbs["next_update"] = x509.Time({"utc_time": datetime(2020, 1, 2, tzinfo=UTC)})

    _refused_offline(offline, _altered(request, long_lived), "more than 90 days")
    _refused_offline(offline, _altered(request, expired), "expired")
    _refused_offline(offline, {**request, "operation": "ca.create", "kind": "crl"}, "CRL was handed in")


def test_the_trust_list_signer_certificate_must_carry_its_eku(context: Context, offline: Offline) -> None:
    from ca.ceremony_policy import check

    root = context.ca.ca_certificate("cn-root-sm2")
    signer = x509.Certificate.load(
        pem.unarmor(context.verification.publisher.current()["signer_certificate"].encode())[2]
    )
    tbs = x509.TbsCertificate.load(signer["tbs_certificate"].dump())
    check("trust_list.signer", tbs, root)  # the signer certificate the root issued before it left
    from ca.ceremony_home import RequestRefused

    with pytest.raises(RequestRefused, match="extended key usage"):
        check("ocsp.signer", tbs, root)
    _set_extension("extended_key_usage", x509.ExtKeyUsageSyntax(["code_signing"]))(tbs)
    with pytest.raises(RequestRefused, match="extended key usage"):
        check("trust_list.signer", tbs, root)
    _set_extension("key_usage", x509.KeyUsage({"digital_signature", "key_cert_sign"}), True)(tbs)
    with pytest.raises(RequestRefused, match="keyCertSign"):
        check("trust_list.signer", tbs, root)


def test_describe_shows_extension_values_and_the_tbs_digest(
    context: Context, offline: Offline, pending_ca: dict[str, Any]
) -> None:
    import hashlib

    lines = offline.home.describe(pending_ca)
    digest = hashlib.sha256(base64.b64decode(pending_ca["tbs"])).hexdigest()
    assert pending_ca["tbs_sha256"] == digest
    listed = next(r for r in ceremony.list_requests(context.db, "pending") if r["id"] == pending_ca["id"])
    assert listed["tbs_sha256"] == digest  # what a second officer compares
    text = "\n".join(lines)
    assert f"tbs       sha256 {digest}" in text
    assert "pathLen   1" in text and "key_cert_sign" in text
    assert "CRL DP    " in text and "/v1/cas/cn-root-sm2/crl" in text and "AIA       ocsp " in text


# -- the ceremony home's log (ca/ceremony_log.py) -----------------------------------------------------


def test_the_ceremony_home_logs_what_it_signs_and_refuses_to_contradict_it(
    context: Context, offline: Offline, pending_ca: dict[str, Any]
) -> None:
    from ca import ceremony_log

    seeded = [r for r in offline.home.log() if r["operation"] == "move-offline"]
    assert {r["ca"] for r in seeded} == set(ROOTS) and all(r["crl_number"] >= 1 for r in seeded)
    before = len(offline.home.log())
    output = offline.home.sign(pending_ca)
    record = offline.home.log()[-1]
    tbs = x509.TbsCertificate.load(base64.b64decode(pending_ca["tbs"]))
    assert len(offline.home.log()) == before + 1 and record["request"] == pending_ca["id"]
    assert record["tbs_sha256"] == pending_ca["tbs_sha256"] and record["kind"] == "certificate"
    assert record["serial"] == f"{tbs['serial_number'].native:x}" and "cn-46" in record["subject"]
    assert offline.home.sign(pending_ca)["request"] == output["request"]  # the same TBS again: a lost output

    def next_serial(t: Any) -> None:
        t["serial_number"] = t["serial_number"].native + 1

    _refused_offline(offline, _altered(pending_ca, next_serial), "signed before with another TBS")
    other = _request(context, _new_ca(context, f"cn-46{secrets.randbelow(9999):04d}-sm2")["id"])

    def same_serial(t: Any) -> None:
        t["serial_number"] = tbs["serial_number"].native

    _refused_offline(offline, _altered(other, same_serial), "was signed here before")
    assert len(offline.home.log()) == before + 2  # refusals write nothing

    lines = (offline.home.path / ceremony_log.LOG).read_text().splitlines()
    edited = [*lines[:-2], lines[-2].replace(pending_ca["id"], "0" * 32), lines[-1]]  # a line before the last
    (offline.home.path / ceremony_log.LOG).write_text("\n".join(edited) + "\n")
    try:
        with pytest.raises(ceremony_log.CeremonyLogBroken):
            offline.home.log()
        with pytest.raises(ceremony_log.CeremonyLogBroken):
            offline.home.sign(other)
    finally:
        (offline.home.path / ceremony_log.LOG).write_text("\n".join(lines) + "\n")


def test_the_ceremony_home_refuses_a_crl_below_its_last_or_dropping_an_entry(
    context: Context, offline: Offline
) -> None:
    from ca.withdrawal import withdraw_ca

    name = f"cn-45{secrets.randbelow(9999):04d}-p256"
    _complete(context, offline, _new_ca(context, name, "cn-root-p256")["id"])
    serial = context.ca.ca_certificate(name).serial_number
    done = withdraw_ca(context.ca, name, reason="caCompromise", publisher=context.verification.publisher)
    assert done.ceremony is not None
    listed = _request(context, done.ceremony["id"])
    offline.home.sign(listed)  # signed (and logged) but not imported: a newer request supersedes it
    with context.ca.crls.mutex, context.db.session() as session:  # as the next revocation by the root would
        row = context.ca.crls.issue_or_request(session, context.ca.get_ca(session, "cn-root-p256"))
        assert isinstance(row, CeremonyRequest) and row.id != listed["id"]
        newer_id = row.id
    newer = _request(context, newer_id)

    def renumber(number: int) -> Any:
        def change(t: Any) -> None:
            for e in t["crl_extensions"]:
                if e["extn_id"].native == "crl_number":
                    e["extn_value"] = number

        return change

    def drop(t: Any) -> None:
        t["revoked_certificates"] = [e for e in t["revoked_certificates"] if e["user_certificate"].native != serial]
        renumber(crls_number(listed) + 1)(t)

    _refused_offline(offline, _altered(newer, drop), f"drops serial.*{serial:x}")
    _refused_offline(offline, _altered(newer, renumber(crls_number(listed))), "is not above")
    _refused_offline(offline, _altered(newer, renumber(crls_number(listed) - 1)), "is not above")


def crls_number(request: dict[str, Any]) -> int:
    tbs = asn1_crl.TbsCertList.load(base64.b64decode(request["tbs"]))
    return int(next(e["extn_value"].native for e in tbs["crl_extensions"] if e["extn_id"].native == "crl_number"))


def test_a_superseding_crl_request_takes_a_number_above_every_one_asked_before(
    context: Context, offline: Offline
) -> None:
    """Two root CRLs with one number (a superseded request signed offline, then its successor) can never be."""
    with context.ca.crls.mutex, context.db.session() as session:
        first = context.ca.crls.issue_or_request(session, context.ca.get_ca(session, "cn-root-sm2"))
        assert isinstance(first, CeremonyRequest)
        first_id, first_number = first.id, int(first.params["number"])
    signed_first = offline.home.sign(_request(context, first_id))  # signed offline, never imported
    with context.ca.crls.mutex, context.db.session() as session:
        second = context.ca.crls.issue_or_request(session, context.ca.get_ca(session, "cn-root-sm2"))
        assert isinstance(second, CeremonyRequest)
        second_id, second_number = second.id, int(second.params["number"])
        stored = crls.newest(session, "cn-root-sm2")
        assert stored is not None and second_number > stored.number
    assert second_number > first_number
    assert crls_number(_request(context, second_id)) == second_number
    _refused(context, signed_first, CeremonyNotPending, 409)  # the superseded one is history
    done = _complete(context, offline, second_id)  # the ceremony home signs it: its number is above the first's
    assert done["result"]["crl_number"] == second_number == _crl_number(context.ca.current_crl("cn-root-sm2"))


# -- the offline root's OCSP signer (ca/ocsp_renewal.py) ----------------------------------------------


def _ocsp_answer_signer(context: Context, issuer: str, serial: int) -> x509.Certificate:
    import hashlib

    from asn1crypto import ocsp

    ca = context.ca.ca_certificate(issuer)
    cert_id = {
        "hash_algorithm": {"algorithm": "sha256"},
        "issuer_name_hash": hashlib.sha256(ca.subject.dump()).digest(),
        "issuer_key_hash": hashlib.sha256(ca.public_key["public_key"].contents[1:]).digest(),
        "serial_number": serial,
    }
    request = ocsp.OCSPRequest({"tbs_request": {"request_list": [{"req_cert": cert_id}]}}).dump()
    basic = ocsp.OCSPResponse.load(context.ca.ocsp(request))["response_bytes"]["response"].parsed
    assert basic["tbs_response_data"]["responses"][0]["cert_status"].name == "good"
    certificate: x509.Certificate = basic["certs"][0]
    return certificate


def test_move_offline_recertifies_the_roots_ocsp_signer(context: Context, offline: Offline) -> None:
    for name in ROOTS:
        now = x509.Certificate.load(_ocsp_signer_der(context, name))
        assert now.dump() != offline.ocsp_before[name]
        assert offline.moved[name]["ocsp_signer_serial"] == f"{now.serial_number:x}"
        assert now.not_valid_before > datetime.now(UTC) - timedelta(days=1)
        assert now.not_valid_after - datetime.now(UTC) > timedelta(days=360)


def test_the_offline_roots_ocsp_signer_is_renewed_through_a_ceremony(context: Context, offline: Offline) -> None:
    from ca import ocsp_renewal

    assert ocsp_renewal.request_due(context.ca) == []  # a fresh certificate: nothing due
    ends = {name: x509.Certificate.load(_ocsp_signer_der(context, name)).not_valid_after for name in ROOTS}
    later = max(ends.values()) - timedelta(days=10)  # eleven months on
    opened = ocsp_renewal.request_due(context.ca, now=later)
    assert len(opened) == len(ROOTS)
    assert ocsp_renewal.request_due(context.ca, now=later) == []  # one pending at a time
    requests = [_request(context, request_id) for request_id in opened]
    assert {r["operation"] for r in requests} == {"ocsp.signer"} and {r["subject"] for r in requests} == set(ROOTS)
    for request in requests:
        name = request["ca"]
        old = _ocsp_signer_der(context, name)
        assert any(line.startswith("EKU       ") and "ocsp_signing" in line for line in offline.home.describe(request))
        done = _complete(context, offline, request["id"])
        new = x509.Certificate.load(_ocsp_signer_der(context, name))
        assert new.dump() != old and done["result"]["serial"] == f"{new.serial_number:x}"
        assert new.public_key.dump() == x509.Certificate.load(old).public_key.dump()  # the same responder key
        assert new.issuer == context.ca.ca_certificate(name).subject
        child = context.ca.ca_certificate(name.replace("root", "370000"))
        assert _ocsp_answer_signer(context, name, child.serial_number).dump() == new.dump()  # the responder switched
    assert ocsp_renewal.request_due(context.ca) == []  # renewed, none pending: nothing due today


def _long_form(der_bytes: bytes, extra: int = 4) -> bytes:
    """The same SEQUENCE with its length in a non-minimal long form (valid BER, not DER)."""
    first = der_bytes[1]
    count = first & 0x7F if first & 0x80 else 0
    length = int.from_bytes(der_bytes[2 : 2 + count], "big") if count else first
    body = der_bytes[2 + count :]
    return der_bytes[:1] + bytes([0x80 | extra]) + length.to_bytes(extra, "big") + body


def test_an_output_that_is_not_canonical_der_is_refused(
    context: Context, offline: Offline, pending_ca: dict[str, Any]
) -> None:
    """The reviewer's probe: the outer SEQUENCE re-encoded with a non-minimal length was imported and stored
    as is."""
    good = offline.home.sign(pending_ca)
    signed = base64.b64decode(good["signed"])
    cert = x509.Certificate.load(signed)
    signature = cert["signature_value"].native
    inner_ber = der.sequence(
        _long_form(base64.b64decode(pending_ca["tbs"])), cert["signature_algorithm"].dump(), der.bit_string(signature)
    )
    for variant in (_long_form(signed), _long_form(signed, 3), signed + b"\x00"):
        _refused(context, {**good, "signed": base64.b64encode(variant).decode()}, CeremonyOutputMalformed, 422)
    _refused(context, {**good, "signed": base64.b64encode(inner_ber).decode()}, CeremonyOutputMismatch, 422)
    assert import_output(context.ca, good, "test-officer")["status"] == "completed"
    stored = context.ca.snapshot().get(pending_ca["subject"]).certificate_der
    assert stored == signed


def test_two_concurrent_imports_of_one_output_complete_it_once(
    context: Context, offline: Offline, pending_ca: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both importers pass the first check, then race into the completion: one completes, the other gets
    `ceremony_not_pending` (409), never a unique-key error (a 500) nor `ca_exists`."""
    import threading

    from ca import ceremony_import

    output = offline.home.sign(pending_ca)
    both_checked = threading.Barrier(2, timeout=30)
    real = ceremony_import.COMPLETIONS["ca.create"]

    def racing(done: Any) -> dict[str, Any]:
        both_checked.wait()
        return real(done)

    monkeypatch.setitem(ceremony_import.COMPLETIONS, "ca.create", racing)
    outcomes: list[object] = []

    def run() -> None:
        try:
            outcomes.append(import_output(context.ca, output, "test-officer")["status"])
        except Exception as exc:  # the outcome is what the test compares
            outcomes.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert "completed" in outcomes and len(outcomes) == 2, outcomes
    loser = next(o for o in outcomes if o != "completed")
    assert isinstance(loser, CeremonyNotPending) and loser.status == 409, repr(loser)
    assert context.ca.snapshot().get(pending_ca["subject"]).offline is False
