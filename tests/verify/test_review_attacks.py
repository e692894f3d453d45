"""Attacks found in the adversarial review of the reworked verifier (issue 10). Each test failed on the
code before its fix because the attack got a verdict it must not get. PDFs are verified on both paths
(tests/conftest.py compares them whenever the fast path answers).

The module's own hierarchy is changed by some tests (a CA withdrawn): those run last in the file."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from asn1crypto import x509

from api.context import Context
from ca.withdrawal import withdraw_ca
from keys.custody import KeyAlgorithm, SigningHandle
from seal.demo import create_demo_seals
from signing import tsa as signing_tsa
from signing.pdf import Placement, seal_pdf
from signing.tsa import TimestampAuthority, Unit, signature_timestamp_attribute
from tests.fixtures import make_pdf
from verify.report import INDETERMINATE, PASSED
from verify.service import Verifier


@pytest.fixture(scope="module")
def verifier(context: Context) -> Iterator[Verifier]:
    create_demo_seals(context.seals, actor="test")
    yield context.verification.verifier()


@dataclass(frozen=True)
class Holder:
    handle: SigningHandle
    certificate: bytes
    chain: list[bytes]
    serial: str


def _issue(context: Context, profile: str, ca: str, subject: dict[str, str]) -> Holder:
    version = context.custody.create(f"review-{secrets.token_hex(6)}", KeyAlgorithm.SM2)
    issued = context.ca.issue_for_key(version.public_key_der, subject, profile, ca)
    return Holder(context.custody.signer(version.ref), issued.der, list(issued.chain), issued.serial)


def _check(report: dict[str, Any], name: str, index: int = 0) -> tuple[str, str]:
    check = next(c for c in report["signatures"][index]["checks"] if c["name"] == name)
    return check["status"], check["code"]


def _both_paths(verifier: Verifier, data: bytes, at: datetime | None = None) -> dict[str, Any]:
    fast = verifier.pdf.verify(data, at).as_json()
    full = verifier.pdf.full(data, at).as_json()
    assert fast["result"] == full["result"], (fast, full)
    return full


class _Clock(datetime):
    """datetime whose now() is `offset` behind the real clock: a TSA that backdates its tokens."""

    offset = timedelta(0)

    @classmethod
    def now(cls, tz: Any = None) -> Any:
        return datetime.now(tz) - cls.offset


# ---- last: these withdraw a CA of the module's hierarchy ----------------------------------------------


def test_timestamp_by_a_tsa_under_a_withdrawn_ca_proves_no_time(
    context: Context, verifier: Verifier, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SM2 root's key is compromised and the root withdrawn from the trust list. With that key the
    attacker has a signer certificate and a TSA certificate (here: made before the withdrawal, as a
    thief holding the key could make them any time, with any dates). After the withdrawal the attacker
    signs and has the own TSA date the signature before it. A timestamp is proof of existence only if
    its TSA is trusted *now* (EN 319 102-1: the POE's own validation at the current time): a TSA on a
    path through a withdrawn CA proves nothing, so the signature is judged now: CA_WITHDRAWN.
    Before the fix: PASSED on both paths (the TSA's path was never judged against the trust list)."""
    subject = {"country_name": "CN", "organization_name": "Attacker Trading Co",
               "organization_identifier": "91350100M000100Y43", "common_name": "Attacker Trading Co Seal"}  # fmt: skip
    signer = _issue(context, "org-seal", "cn-370000-sm2", subject)
    tsa_subject = {"country_name": "CN", "organization_name": "Attacker", "common_name": "Attacker TSA"}
    tsa_holder = _issue(context, "tsa", "cn-370000-sm2", tsa_subject)
    tsa = TimestampAuthority(context.db, context.custody, context.ca)
    tsa._units["sm2"] = Unit("sm2", tsa_holder.handle, x509.Certificate.load(tsa_holder.certificate),
                             tsa_holder.certificate, tsa_holder.chain)  # fmt: skip
    time.sleep(2.2)  # whole seconds: the backdated time below lies after the certificates' notBefore
    withdraw_ca(context.ca, "cn-root-sm2", reason="keyCompromise", actor="test",
                publisher=context.verification.publisher)  # fmt: skip
    verifier = context.verification.verifier()  # the new list: the root is withdrawn

    _Clock.offset = timedelta(seconds=2)
    monkeypatch.setattr(signing_tsa, "datetime", _Clock)
    document = seal_pdf(
        make_pdf(), handle=signer.handle, certificate=signer.certificate, chain=signer.chain, seal_der=None,
        picture_png=context.seals.get("demo-370000-sm2").picture_png, placement=Placement(),
        unsigned_later=lambda: signature_timestamp_attribute(tsa, "sm2"),
    ).pdf  # fmt: skip
    monkeypatch.undo()
    plain = seal_pdf(
        make_pdf(), handle=signer.handle, certificate=signer.certificate, chain=signer.chain, seal_der=None,
        picture_png=context.seals.get("demo-370000-sm2").picture_png, placement=Placement(),
    ).pdf  # fmt: skip
    assert _check(_both_paths(verifier, plain), "chain") == (INDETERMINATE, "CA_WITHDRAWN")  # without the TSA
    report = _both_paths(verifier, document)
    assert report["result"] != PASSED, report
    assert report["result"] == INDETERMINATE
    assert _check(report, "chain") == (INDETERMINATE, "CA_WITHDRAWN")
    assert _check(report, "signing_time")[0] == INDETERMINATE
