"""The signed trust list: published by ca/, accepted by verify/ only when signed, trusted and fresh."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api.context import Context
from ca.trust_list import withdraw_ca
from gm import jcs
from verify.trust import TrustListError, TrustStore, fingerprint


@pytest.fixture(scope="module")
def document(context: Context) -> dict[str, Any]:
    from seal.demo import create_demo_seals

    create_demo_seals(context.seals, actor="test")  # their makers are on the list from the start
    return context.verification.trust_list()


def _roots(context: Context) -> list[Any]:
    return [context.ca.ca_certificate("cn-root-sm2")]


def test_layout_and_acceptance(context: Context, document: dict[str, Any]) -> None:
    assert {"version", "sequence", "issued_at", "next_update", "signer_certificate", "regions", "signature"} <= set(
        document
    )
    codes = {region["code"]: region for region in document["regions"]}
    assert {"100000", "370000", "530000"} <= set(codes)
    assert {ca["name"] for ca in codes["370000"]["cas"]} == {"cn-370000-sm2", "cn-370000-p256"}
    entry = codes["530000"]["cas"][0]
    assert entry["status"] == "granted" and entry["history"][0]["status"] == "granted"
    assert codes["370000"]["endpoints"]["crl"]["cn-370000-sm2"].endswith("/v1/cas/cn-370000-sm2/crl")
    store = TrustStore()
    store.add_list(document, roots=_roots(context))
    # two roots; under each the national issuing CA and two regional CAs
    assert len(store.cas) == 8 and len(store.trust_roots()) == 2 and len(store.intermediates()) == 6


def test_signature_is_over_the_canonical_json(context: Context, document: dict[str, Any]) -> None:
    from asn1crypto import pem, x509

    from gm import sm2

    body = {k: v for k, v in document.items() if k != "signature"}
    cert = x509.Certificate.load(pem.unarmor(document["signer_certificate"].encode())[2])
    import base64

    assert sm2.SM2PublicKey.from_spki(cert.public_key.dump()).verify(
        base64.b64decode(document["signature"]), jcs.canonical(body)
    )
    assert cert.issuer == context.ca.ca_certificate("cn-root-sm2").subject


def test_tampered_stale_and_untrusted_lists_are_refused(context: Context, document: dict[str, Any]) -> None:
    tampered = copy.deepcopy(document)
    tampered["regions"][0]["name"] = "Elsewhere"
    with pytest.raises(TrustListError) as bad:
        TrustStore().add_list(tampered, roots=_roots(context))
    assert bad.value.code == "TRUST_LIST_SIGNATURE_INVALID"

    later = datetime.fromisoformat(document["next_update"]) + timedelta(seconds=1)
    stale = TrustStore()  # a stale list is loaded, but marked: decisions resting on it are TRY_LATER
    stale.add_list(document, roots=_roots(context), now=later)
    assert stale.stale_since == datetime.fromisoformat(document["next_update"])
    assert stale.cas and all(ca.stale_since == stale.stale_since for ca in stale.cas)

    with pytest.raises(TrustListError) as untrusted:  # the P-256 root did not certify the signer
        TrustStore().add_list(document, roots=[context.ca.ca_certificate("cn-root-p256")])
    assert untrusted.value.code == "TRUST_LIST_SIGNER_UNTRUSTED"

    from asn1crypto import pem

    signer_der = pem.unarmor(document["signer_certificate"].encode())[2]
    TrustStore().add_list(json.dumps(document), pinned=(fingerprint(signer_der),))  # pinned instead of chained

    unsigned = {k: v for k, v in document.items() if k != "signature"}
    with pytest.raises(TrustListError) as missing:
        TrustStore().add_list(unsigned, roots=_roots(context))
    assert missing.value.code == "TRUST_LIST_MALFORMED"


# ---- a list past next_update: loaded, and every decision resting on it is TRY_LATER ----------------------
# (before the withdrawals below: it seals with the demo seals, made here)
@pytest.fixture(scope="module")
def pdf(context: Context) -> bytes:
    """A B-LT document sealed with the Shandong SM2 demo seal (made here, before any CA is withdrawn):
    it verifies offline, from its own revocation material."""
    from seal.demo import create_demo_seals
    from signing.pdf import Placement
    from signing.service import Caller
    from tests.fixtures import make_pdf

    create_demo_seals(context.seals, actor="test")
    caller = Caller(role="issuer", name="test", seal_ids=("*",))
    return context.signing.seal_pdf(
        make_pdf(), seal_id="demo-370000-sm2", caller=caller, placement=Placement(), level="B-LT"
    ).pdf


def test_a_stale_list_leaves_the_chain_try_later(context: Context, document: dict[str, Any], pdf: bytes) -> None:
    from verify.pdf import PdfVerifier
    from verify.report import INDETERMINATE, PASSED
    from verify.service import Verifier

    later = datetime.fromisoformat(document["next_update"]) + timedelta(seconds=1)
    sources = context.verification.sources()

    def chain(store: TrustStore, fast: bool = True) -> tuple[str, str, str]:
        report = PdfVerifier(store, sources, fast=fast).verify(pdf).as_json()
        check = next(c for c in report["signatures"][0]["checks"] if c["name"] == "chain")
        return report["result"], check["status"], check["code"]

    fresh = TrustStore()
    fresh.add_list(document, roots=_roots(context))
    assert chain(fresh) == (PASSED, PASSED, "OK")
    stale = TrustStore()
    stale.add_list(document, roots=_roots(context), now=later)
    for fast in (True, False):
        assert chain(stale, fast) == (INDETERMINATE, INDETERMINATE, "TRY_LATER")
    report = Verifier(stale, sources).verify(pdf).as_json()
    check = next(c for c in report["signatures"][0]["checks"] if c["name"] == "chain")
    assert "expired at" in check["detail"] and document["next_update"][:19] in check["detail"]
    anchored = TrustStore()  # the user's own --anchor rests on no list
    anchored.add_list(document, roots=_roots(context), now=later)
    anchored.add_anchor(context.ca.ca_certificate("cn-root-sm2"))
    # the chain rests on the anchor; the seal maker still rests on the stale list alone
    assert chain(anchored) == (INDETERMINATE, PASSED, "OK")
    seal = next(c for c in PdfVerifier(anchored, sources).verify(pdf).signatures[0].checks if c.name == "seal")
    assert (seal.status, seal.code) == (INDETERMINATE, "TRY_LATER")


def test_withdrawal_publishes_a_new_sequence_with_history(context: Context, document: dict[str, Any]) -> None:
    first = document["sequence"]
    assert context.verification.trust_list()["sequence"] == first  # nothing changed: same list
    moment = datetime.now(UTC)
    withdraw_ca(context.ca, "cn-530000-p256", moment, actor="test")
    newer = context.verification.trust_list()
    assert newer["sequence"] == first + 1
    regions: list[dict[str, Any]] = newer["regions"]  # type: ignore[assignment]
    entry = next(ca for region in regions for ca in region["cas"] if ca["name"] == "cn-530000-p256")
    assert entry["status"] == "withdrawn" and [h["status"] for h in entry["history"]] == ["granted", "withdrawn"]
    store = TrustStore()
    store.add_list(newer, roots=_roots(context))
    listed = next(c for c in store.cas if c.name == "cn-530000-p256")
    assert listed.status_at(moment) == "withdrawn"
    assert listed.status_at(moment - timedelta(microseconds=1)) == "granted"


def test_jcs_orders_keys_and_escapes_like_rfc_8785() -> None:
    assert jcs.canonical({"b": 1, "a": [True, None, "x"], "é": "\u2028\n"}) == (
        '{"a":[true,null,"x"],"b":1,"é":"\u2028\\n"}'.encode()
    )
    assert jcs.canonical({"\ufb33": 3, "\U0001f600": 2, "\u20ac": 1}) == (
        '{"\u20ac":1,"\U0001f600":2,"\ufb33":3}'.encode()
    )  # UTF-16 code-unit order (RFC 8785 §3.2.3): U+20AC < U+D83D (surrogate) < U+FB33
    with pytest.raises(ValueError, match="floats"):
        jcs.canonical({"a": 1.5})


def test_signer_certificate_is_reused_across_restarts(context: Context) -> None:
    from ca.trust_list import TrustListPublisher, withdraw_ca

    before = context.verification.trust_list()
    restarted = TrustListPublisher(context.ca)  # a new process: nothing cached in memory
    withdraw_ca(context.ca, "cn-370000-p256", datetime.now(UTC), actor="test")  # forces a new list
    republished = restarted.current()
    assert republished["sequence"] == int(str(before["sequence"])) + 1
    assert republished["signer_certificate"] == before["signer_certificate"]


# ---- the trust-list signer: only a certificate of the trust-list-signer profile --------------------------
def _key_ref(context: Context, name: str) -> str:
    return next(ca.key_ref for ca in context.ca.list_cas() if ca.name == name)


def _signer_der(document: dict[str, Any]) -> bytes:
    from asn1crypto import pem as asn1_pem

    der: bytes = asn1_pem.unarmor(document["signer_certificate"].encode())[2]
    return der


def _signed_by(context: Context, document: dict[str, Any], key_ref: str, signer_der: bytes) -> dict[str, Any]:
    """`document` with `signer_der` as its signer certificate, signed with the custody key `key_ref`."""
    import base64

    from tests.fixtures import pem

    body = {k: v for k, v in copy.deepcopy(document).items() if k != "signature"}
    body["signer_certificate"] = pem(signer_der).decode()
    body["signature"] = base64.b64encode(context.custody.signer(key_ref).sign(jcs.canonical(body))).decode()
    return body


def _reissued(
    context: Context,
    document: dict[str, Any],
    *,
    issuer: str = "cn-root-sm2",
    eku: list[str] | None = None,
    ca: bool = False,
    key_usage: set[str] | None = None,
    not_after: datetime | None = None,
) -> Any:
    """The service's own trust-list signer certificate (same key, fresh serial) with one property
    changed, signed with the real key of `issuer` from custody: the only defect is the one under test."""
    import secrets

    from asn1crypto import x509

    from gm import der, oids

    genuine = x509.Certificate.load(_signer_der(document))
    tbs = genuine["tbs_certificate"]
    parent = context.ca.ca_certificate(issuer)
    extensions: list[Any] = [
        {"extn_id": "basic_constraints", "critical": True, "extn_value": {"ca": ca}},
        {"extn_id": "key_usage", "critical": True, "extn_value": key_usage or {"digital_signature", "non_repudiation"}},
        {"extn_id": "authority_key_identifier", "critical": False,
         "extn_value": {"key_identifier": parent.key_identifier}},
    ]  # fmt: skip
    usages = [oids.EKU_TRUST_LIST_SIGNER] if eku is None else eku
    if usages:
        extensions.append({"extn_id": "extended_key_usage", "critical": False, "extn_value": usages})
    validity = tbs["validity"].native
    body = x509.TbsCertificate({
        "version": "v3", "serial_number": secrets.randbits(120) | 1 << 100, "signature": tbs["signature"],
        "issuer": parent.subject, "subject": tbs["subject"],
        "validity": {"not_before": x509.Time(name="utc_time", value=validity["not_before"]),
                     "not_after": x509.Time(name="utc_time", value=not_after or validity["not_after"])},
        "subject_public_key_info": tbs["subject_public_key_info"], "extensions": extensions,
    }).dump()  # fmt: skip
    signature = context.custody.signer(_key_ref(context, issuer)).sign(body)
    return x509.Certificate.load(der.sequence(body, genuine["signature_algorithm"].dump(), der.bit_string(signature)))


def _evil(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with an extra region whose only CA is an attacker's self-made "Evil Root"."""
    from tests.fixtures import pem
    from tests.verify.test_pdf_fast_attacks import issue

    evil = issue("Evil Root", ca=True)
    forged = copy.deepcopy(document)
    forged["regions"].append({"code": "990000", "name": "Evil", "cas": [
        {"name": "evil-root", "certificate": pem(evil.der).decode(), "status": "granted", "history": []}]})  # fmt: skip
    return forged


def test_a_list_signed_by_a_regional_ca_is_refused(context: Context, document: dict[str, Any]) -> None:
    """The demonstrated fail-open: a regional CA's certificate chains to the national root, so a list it
    signed was accepted with --root and its Evil Root became a trust anchor."""
    regional = context.ca.ca_certificate("cn-370000-sm2")
    forged = _signed_by(context, _evil(document), _key_ref(context, "cn-370000-sm2"), regional.dump())
    store = TrustStore()
    with pytest.raises(TrustListError) as refused:
        store.add_list(forged, roots=_roots(context))
    assert refused.value.code == "TRUST_LIST_SIGNER_UNTRUSTED" and "extended key usage" in refused.value.detail
    assert not store.cas and not store.lists  # nothing of it was kept
    with pytest.raises(TrustListError):  # pinning the CA's certificate does not make it a list signer
        TrustStore().add_list(forged, pinned=(fingerprint(regional.dump()),))


@pytest.mark.parametrize(
    ("case", "options", "rule"),
    [
        ("no EKU", {"eku": []}, "extended key usage"),
        ("the old document-signing EKU", {"eku": ["1.3.6.1.5.5.7.3.36"]}, "extended key usage"),
        ("a CA certificate with the EKU", {"ca": True, "key_usage": {"key_cert_sign", "crl_sign"}}, "CA certificate"),
        ("no signing key usage", {"key_usage": {"key_encipherment"}}, "key usage"),
        ("expired", {"not_after": datetime(2024, 1, 1, tzinfo=UTC)}, "not valid now"),
        ("issued by a regional CA, not the root", {"issuer": "cn-370000-sm2"}, "issued by a trusted national root"),
    ],
)  # fmt: skip
def test_signer_certificate_rules(
    context: Context, document: dict[str, Any], case: str, options: dict[str, Any], rule: str
) -> None:
    signer_ref = context.custody.get("trust-list.sm2").ref
    good = _reissued(context, document)  # the control: the same re-issuing, nothing wrong, is accepted
    TrustStore().add_list(_signed_by(context, document, signer_ref, good.dump()), roots=_roots(context))
    bad = _reissued(context, document, **options)
    forged = _signed_by(context, _evil(document), signer_ref, bad.dump())
    with pytest.raises(TrustListError) as refused:
        TrustStore().add_list(forged, roots=_roots(context))
    assert refused.value.code == "TRUST_LIST_SIGNER_UNTRUSTED" and rule in refused.value.detail, case
    if "issued by" not in rule:  # a pinned certificate must be a trust-list signer too
        with pytest.raises(TrustListError) as pinned:
            TrustStore().add_list(forged, pinned=(fingerprint(bad.dump()),))
        assert pinned.value.code == "TRUST_LIST_SIGNER_UNTRUSTED" and rule in pinned.value.detail, case


def test_a_revoked_signer_is_refused_when_the_roots_crl_is_at_hand(context: Context, document: dict[str, Any]) -> None:
    from tests.verify.test_pdf_fast_attacks import Node, make_crl

    root = context.ca.ca_certificate("cn-root-sm2")
    signer = _reissued(context, document)
    forged = _signed_by(context, document, context.custody.get("trust-list.sm2").ref, signer.dump())

    def crl_by(ca: str, *serials: int) -> Any:  # the root's name, signed with the custody key of `ca`
        return make_crl(Node("root", context.custody.signer(_key_ref(context, ca)), root), serials)  # type: ignore[arg-type]

    TrustStore().add_list(forged, roots=_roots(context), crls=[crl_by("cn-root-sm2")])  # not on it: accepted
    with pytest.raises(TrustListError) as refused:
        TrustStore().add_list(forged, roots=_roots(context), crls=[crl_by("cn-root-sm2", signer.serial_number)])
    assert refused.value.code == "TRUST_LIST_SIGNER_UNTRUSTED" and "revoked" in refused.value.detail
    # a CRL the root did not sign is no evidence either way
    TrustStore().add_list(forged, roots=_roots(context), crls=[crl_by("cn-370000-sm2", signer.serial_number)])


def test_the_service_signer_carries_the_trust_list_signer_eku(document: dict[str, Any]) -> None:
    from asn1crypto import x509

    from gm import oids

    cert = x509.Certificate.load(_signer_der(document))
    assert {u.dotted for u in cert.extended_key_usage_value} == {oids.EKU_TRUST_LIST_SIGNER}
    assert cert.basic_constraints_value is None  # an end entity: no basicConstraints (RFC 5280 §4.2.1.9)


# ---- anti-rollback -----------------------------------------------------------------------------------
def test_a_lower_sequence_than_seen_is_refused(context: Context, document: dict[str, Any]) -> None:
    sequence = int(document["sequence"])
    TrustStore().add_list(document, roots=_roots(context), min_sequence=sequence)
    with pytest.raises(TrustListError) as rollback:
        TrustStore().add_list(document, roots=_roots(context), min_sequence=sequence + 1)
    assert rollback.value.code == "TRUST_LIST_ROLLBACK"
    signer_ref = context.custody.get("trust-list.sm2").ref
    for bad in (0, -1, "7", True, None):
        odd = _signed_by(context, {**document, "sequence": bad}, signer_ref, _signer_der(document))
        with pytest.raises(TrustListError) as malformed:
            TrustStore().add_list(odd, roots=_roots(context))
        assert malformed.value.code == "TRUST_LIST_MALFORMED", bad


# ---- the CLI: --root, --min-sequence, the home's memory, stale warnings, --maker -------------------------
def test_cli_trust_list_options(context: Context, document: dict[str, Any], pdf: bytes, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from api import trust_state
    from api.cli import app
    from tests.fixtures import pem
    from verify.trust import publisher

    runner = CliRunner()
    home = tmp_path / "home"
    home.mkdir()
    env = {"TRUSTSEAL_HOME": str(home)}
    (tmp_path / "doc.pdf").write_bytes(pdf)
    (tmp_path / "root.pem").write_bytes(pem(context.ca.ca_certificate("cn-root-sm2").dump()))

    def run(listed: dict[str, Any], *extra: str) -> Any:
        (tmp_path / "list.json").write_text(json.dumps(listed))
        args = ["verify", str(tmp_path / "doc.pdf"), "--trust-list", str(tmp_path / "list.json"),
                "--root", str(tmp_path / "root.pem"), *extra]  # fmt: skip
        return runner.invoke(app, args, env=env)

    regional = context.ca.ca_certificate("cn-370000-sm2")  # the demonstrated attack, through the CLI
    evil = _signed_by(context, _evil(document), _key_ref(context, "cn-370000-sm2"), regional.dump())
    refused = run(evil)
    assert refused.exit_code == 4 and "TRUST_LIST_SIGNER_UNTRUSTED" in refused.output

    sequence = int(document["sequence"])
    assert run(document, "--min-sequence", str(sequence + 1)).exit_code == 4
    assert "TRUST_LIST_ROLLBACK" in run(document, "--min-sequence", str(sequence + 1)).output
    assert not (home / trust_state.FILE).exists()  # a refused list is not remembered
    accepted = run(document)
    assert accepted.exit_code == 0, accepted.output
    assert trust_state.highest(home, publisher(document)) == sequence
    # the home has seen a newer list: the older one is a rollback now, without any option
    trust_state.remember(home, publisher(document), sequence + 5)
    rolled_back = run(document)
    assert rolled_back.exit_code == 4 and "TRUST_LIST_ROLLBACK" in rolled_back.output

    (home / trust_state.FILE).unlink()
    signer_ref = context.custody.get("trust-list.sm2").ref
    expired = {**document, "next_update": (datetime.now(UTC) - timedelta(hours=1)).isoformat()}
    stale = run(_signed_by(context, expired, signer_ref, _signer_der(document)))
    assert stale.exit_code == 3 and "TRY_LATER" in stale.output
    assert "warning: a trust list expired at" in stale.stderr

    maker = tmp_path / "maker.pem"  # --maker loads a maker; a file that is no certificate cannot run
    maker.write_bytes(b"not a certificate")
    assert run(document, "--maker", str(maker)).exit_code == 4
