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
    with pytest.raises(TrustListError) as stale:
        TrustStore().add_list(document, roots=_roots(context), now=later)
    assert stale.value.code == "TRUST_LIST_STALE"

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
