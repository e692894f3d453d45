"""Rotating the trust-list signer (ca/trust_list.py rotate_signer) and following it (verify/trust.py).

A verifier that pins the old signer by fingerprint (and holds no root) accepts the handover list — signed
by the new key, and by the old key over the same canonical JSON — and from then on the new signer's lists.
A new signer the old one did not vouch for is refused, however well certified; so is a handover list whose
old signature is forged or not the pinned signer's.
"""

from __future__ import annotations

import base64
import copy
import json
import secrets
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import pem
from typer.testing import CliRunner

from api.cli import app as cli
from api.context import Context
from gm import jcs
from keys.custody import KeyAlgorithm
from signing.pdf import Placement
from signing.service import Caller
from tests.fixtures import make_pdf
from verify.trust import TrustListError, TrustStore, fingerprint


def _der(text: str) -> bytes:
    der: bytes = pem.unarmor(text.encode("ascii"))[2]
    return der


@pytest.fixture(scope="module")
def lists(context: Context) -> dict[str, Any]:
    """The list before the rotation, the handover list, and a later list of the new signer alone."""
    from seal.demo import create_demo_seals

    create_demo_seals(context.seals, actor="test")
    publisher = context.verification.publisher
    before = publisher.current()
    new_ref, previous, new_der = publisher.rotate_signer("officer:test")
    assert new_ref.startswith("trust-list.sm2@")
    handover = publisher.current()
    context.ca.create_ca(  # a change, so the next list is a new one, signed by the new key alone
        "xx-440000-sm2",
        algorithm=KeyAlgorithm.SM2,
        subject={"country_name": "CN", "organization_name": "trustseal test", "common_name": "xx-440000-sm2"},
        ca_profile="regional-ca",
        parent="cn-root-sm2",
        region_code="440000",
        region_name="Guangdong",
    )
    later = publisher.current()
    return {"before": before, "handover": handover, "later": later, "new_der": new_der, "previous": previous}


def _sign(context: Context, doc: dict[str, Any], key: str) -> str:
    return base64.b64encode(context.custody.signer(key).sign(jcs.canonical(doc))).decode("ascii")


def test_the_handover_list(context: Context, lists: dict[str, Any]) -> None:
    before, handover, later = lists["before"], lists["handover"], lists["later"]
    assert handover["sequence"] == before["sequence"] + 1 and later["sequence"] == handover["sequence"] + 1
    assert handover["previous_signer_certificate"] == before["signer_certificate"]
    assert _der(handover["signer_certificate"]) == lists["new_der"] != _der(before["signer_certificate"])
    assert "previous_signer_certificate" not in later and "handover_signature" not in later
    assert later["signer_certificate"] == handover["signer_certificate"]
    # the service itself (root-based trust) accepts all three
    roots = [context.ca.ca_certificate("cn-root-sm2")]
    for document in (before, handover, later):
        TrustStore().add_list(document, roots=roots)


def test_a_verifier_pinned_to_the_old_signer_follows(lists: dict[str, Any]) -> None:
    old = fingerprint(_der(lists["before"]["signer_certificate"]))
    store = TrustStore()
    store.add_list(lists["before"], pinned=(old,))
    store.add_list(lists["handover"], pinned=(old,))
    assert store.followed == [fingerprint(lists["new_der"])]
    store.add_list(lists["later"], pinned=(old,))  # the new signer alone, followed
    assert [summary["sequence"] for summary in store.lists] == [lists["before"]["sequence"] + i for i in range(3)]
    # without having seen the handover, the new signer is nobody this verifier knows
    with pytest.raises(TrustListError) as refused:
        TrustStore().add_list(lists["later"], pinned=(old,))
    assert refused.value.code == "TRUST_LIST_SIGNER_UNTRUSTED"


def test_an_unrelated_new_signer_is_refused(context: Context, lists: dict[str, Any]) -> None:
    """A signer the root certified too, with the trust-list-signer profile, but the old signer never
    vouched for it: refused by a verifier that pins the old one, with or without a forged handover."""
    old_pem = lists["before"]["signer_certificate"]
    old = fingerprint(_der(old_pem))
    rogue_key = f"rogue-{secrets.token_hex(4)}.sm2"  # (the keystore is shared by the module's database runs)
    version = context.custody.create(rogue_key, KeyAlgorithm.SM2)
    subject = {"country_name": "CN", "organization_name": "trustseal", "common_name": "National trust list signer"}
    rogue = context.ca.issue_for_key(version.public_key_der, subject, "trust-list-signer", "cn-root-sm2")
    doc = {k: v for k, v in copy.deepcopy(lists["later"]).items() if k != "signature"}
    doc["signer_certificate"] = pem.armor("CERTIFICATE", rogue.der).decode("ascii")
    doc["sequence"] += 1
    plain = {**doc, "signature": _sign(context, doc, rogue_key)}
    # the root would accept it (it is a genuine signer certificate); the pinned verifier does not
    TrustStore().add_list(plain, roots=[context.ca.ca_certificate("cn-root-sm2")])
    with pytest.raises(TrustListError) as refused:
        TrustStore().add_list(plain, pinned=(old,))
    assert refused.value.code == "TRUST_LIST_SIGNER_UNTRUSTED"

    forged = {**doc, "previous_signer_certificate": old_pem}
    signature = _sign(context, forged, rogue_key)
    forged = {**forged, "signature": signature, "handover_signature": signature}  # not the old key's
    with pytest.raises(TrustListError) as refused:
        TrustStore().add_list(forged, pinned=(old,))
    assert refused.value.code == "TRUST_LIST_SIGNER_UNTRUSTED"

    # the genuine handover's old signature does not carry over to other content
    lifted = {**forged, "handover_signature": lists["handover"]["handover_signature"]}
    with pytest.raises(TrustListError):
        TrustStore().add_list(lifted, pinned=(old,))


def test_a_handover_from_a_signer_not_pinned_is_refused(lists: dict[str, Any]) -> None:
    with pytest.raises(TrustListError) as refused:
        TrustStore().add_list(lists["handover"], pinned=("00" * 32,))
    assert refused.value.code == "TRUST_LIST_SIGNER_UNTRUSTED"


def test_a_tampered_handover_list_is_refused(lists: dict[str, Any]) -> None:
    old = fingerprint(_der(lists["before"]["signer_certificate"]))
    tampered = copy.deepcopy(lists["handover"])
    tampered["regions"][0]["name"] = "Elsewhere"
    with pytest.raises(TrustListError):
        TrustStore().add_list(tampered, pinned=(old,))
    store = TrustStore()
    with pytest.raises(TrustListError):
        store.add_list(tampered, pinned=(old,))
    assert store.followed == [] and store.lists == []  # nothing learnt from a refused list


def test_the_cli_remembers_a_handover_across_runs(context: Context, lists: dict[str, Any], tmp_path: Path) -> None:
    """`trustseal verify --pin OLD`: a home that accepted the handover list follows the new signer in later
    runs, given only the later list; a home that never saw the handover refuses it (exit 4)."""
    sealed = context.signing.seal_pdf(
        make_pdf(), seal_id="demo-530000-sm2", caller=Caller(role="issuer", name="t", seal_ids=("*",)),
        placement=Placement(), level="B-LT",
    ).pdf  # fmt: skip
    document = tmp_path / "doc.pdf"
    document.write_bytes(sealed)
    files = {}
    for name in ("handover", "later"):
        files[name] = tmp_path / f"{name}.json"
        files[name].write_text(json.dumps(lists[name]))
    old = fingerprint(_der(lists["before"]["signer_certificate"]))

    def verify(home: Path, listing: Path) -> Any:
        home.mkdir(exist_ok=True)
        args = ["verify", str(document), "--json", "--trust-list", str(listing), "--pin", old]
        return CliRunner().invoke(cli, args, env={"TRUSTSEAL_HOME": str(home)})

    follower = tmp_path / "follower"
    assert verify(follower, files["handover"]).exit_code == 0
    later = verify(follower, files["later"])
    assert later.exit_code == 0 and json.loads(later.stdout)["result"] == "PASSED", later.output
    stranger = verify(tmp_path / "stranger", files["later"])
    assert stranger.exit_code == 4 and "TRUST_LIST_SIGNER_UNTRUSTED" in stranger.output


def test_a_signer_changed_elsewhere_still_hands_over(context: Context, lists: dict[str, Any]) -> None:
    """Custody rotated the signer key but no handover list was published (a rotation that failed after
    custody, or another process publishing first): the next list, from any publisher, is signed by the
    new key and vouched for by the previous list's signer, and a pinned verifier keeps following."""
    from ca.trust_list import SIGNER_KEY, TrustListPublisher

    context.custody.rotate(SIGNER_KEY)
    context.ca.create_ca(
        "xx-450000-sm2",
        algorithm=KeyAlgorithm.SM2,
        subject={"country_name": "CN", "organization_name": "trustseal test", "common_name": "xx-450000-sm2"},
        ca_profile="regional-ca",
        parent="cn-root-sm2",
        region_code="450000",
        region_name="Guangxi",
    )
    changed = TrustListPublisher(context.ca).current()  # another process's publisher
    assert changed["previous_signer_certificate"] == lists["later"]["signer_certificate"]
    assert changed["signer_certificate"] != lists["later"]["signer_certificate"]
    old = fingerprint(_der(lists["before"]["signer_certificate"]))
    store = TrustStore()
    for name in ("before", "handover", "later"):
        store.add_list(lists[name], pinned=(old,))
    store.add_list(changed, pinned=(old,))
    assert store.followed == [fingerprint(lists["new_der"]), fingerprint(_der(changed["signer_certificate"]))]
