"""Attacks found in the adversarial review of the reworked verifier (issue 10). Each test failed on the
code before its fix because the attack got a verdict it must not get. PDFs are verified on both paths
(tests/conftest.py compares them whenever the fast path answers).

The module's own hierarchy is changed by some tests (a CA withdrawn): those run last in the file."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from asn1crypto import x509

from api.context import Context
from ca.withdrawal import withdraw_ca
from seal.demo import create_demo_seals
from signing import tsa as signing_tsa
from signing.pdf import Placement, seal_pdf
from signing.tsa import TimestampAuthority, Unit, signature_timestamp_attribute
from tests.fixtures import make_pdf
from tests.verify import ofd_builder
from tests.verify.attackers import ATTACKER, Clock, Holder, both_paths, check, issue
from verify.report import FAILED, INDETERMINATE, PASSED
from verify.service import Verifier


@pytest.fixture(scope="module")
def verifier(context: Context) -> Iterator[Verifier]:
    create_demo_seals(context.seals, actor="test")
    yield context.verification.verifier()


def _ofd_signed_by(holder: Holder, files: dict[str, bytes], seal_file: bytes | None, seal_attr: bytes | None) -> bytes:
    """An OFD whose one signature (Type="Seal", Seal/BaseLoc naming `seal_file`) is a CMS SignedData by
    `holder` over Signature.xml (SESeal signed attribute `seal_attr`), References covering every file."""
    from gm.sm3 import sm3
    from signing.cms import CMSTemplate

    everything = {**files, **({"Doc_0/Signs/Sign_0/Seal.esl": seal_file} if seal_file is not None else {})}
    references = "".join(
        f'<ofd:Reference FileRef="/{name}"><ofd:CheckValue>{base64.b64encode(sm3(data)).decode()}'
        "</ofd:CheckValue></ofd:Reference>"
        for name, data in everything.items()
    )
    seal_el = "<ofd:Seal><ofd:BaseLoc>Seal.esl</ofd:BaseLoc></ofd:Seal>" if seal_file is not None else ""
    signature_xml = (
        f'<?xml version="1.0" encoding="UTF-8"?><ofd:Signature {ofd_builder.NS}><ofd:SignedInfo>'
        '<ofd:Provider ProviderName="attacker" Version="1" Company="a"/>'
        "<ofd:SignatureMethod>1.2.156.10197.1.501</ofd:SignatureMethod>"
        f'<ofd:References CheckMethod="1.2.156.10197.1.401">{references}</ofd:References>'
        f'<ofd:StampAnnot ID="90" PageRef="10" Boundary="100 200 40 40"/>{seal_el}</ofd:SignedInfo>'
        "<ofd:SignedValue>/Doc_0/Signs/Sign_0/SignedValue.dat</ofd:SignedValue></ofd:Signature>"
    ).encode()
    template = CMSTemplate.for_seal(holder.certificate, holder.chain, "sm2", seal_attr)
    signed_value = template.build(sm3(signature_xml), datetime.now(UTC), holder.handle.sign)
    return ofd_builder.zipped(
        {
            **everything,
            "Doc_0/Signs/Signatures.xml": (
                f'<ofd:Signatures {ofd_builder.NS}><ofd:MaxSignId>1</ofd:MaxSignId><ofd:Signature ID="1" '
                'Type="Seal" BaseLoc="Sign_0/Signature.xml"/></ofd:Signatures>'
            ).encode(),
            "Doc_0/Signs/Sign_0/Signature.xml": signature_xml,
            "Doc_0/Signs/Sign_0/SignedValue.dat": signed_value,
        }.items()
    )


def test_ofd_cms_signature_cannot_show_another_organisations_seal(context: Context, verifier: Verifier) -> None:
    """An ordinary certificate holder signs an OFD with a CMS SignedValue (Type="Seal") and names the
    victim's genuine, public seal (GET /v1/seals/{id}/esl) as its Seal/BaseLoc, also as the SESeal
    signed attribute: readers draw the victim's stamp. The seal lists the victim's certificate, not the
    signer's: the seal check must say so (SEAL_CERT_MISMATCH), as it does for PDFs and SES_Signatures.
    Before the fix: PASSED, the seal never looked at (a CMS signature had no seal check at all)."""
    holder = issue(context, "org-seal", "cn-370000-sm2", ATTACKER)
    victim = context.seals.get("demo-370000-sm2").esl_der
    for seal_file, seal_attr in ((victim, None), (None, victim), (victim, victim)):
        report = verifier.verify(_ofd_signed_by(holder, ofd_builder.content(), seal_file, seal_attr)).as_json()
        assert report["result"] == FAILED, report
        assert check(report, "seal") == (FAILED, "SEAL_CERT_MISMATCH")
    # the seal's own holder may sign so, and passes; without any seal the signature stays a plain one
    material = context.seals.for_signing("demo-370000-sm2", role="issuer", caller="t", caller_seal_ids=("*",))
    owner = Holder(material.handle, material.certificate, list(material.chain), "")
    genuine = verifier.verify(_ofd_signed_by(owner, ofd_builder.content(), victim, victim)).as_json()
    assert genuine["result"] == PASSED, genuine
    assert check(genuine, "seal") == (PASSED, "OK")
    plain = verifier.verify(_ofd_signed_by(holder, ofd_builder.content(), None, None)).as_json()
    assert plain["result"] == PASSED, plain
    # a seal file other than the signed seal attribute: which one a reader draws cannot be told
    other = context.seals.get("demo-530000-sm2").esl_der
    mixed = verifier.verify(_ofd_signed_by(owner, ofd_builder.content(), other, victim)).as_json()
    assert mixed["result"] == FAILED, mixed


def test_a_tls_certificate_signs_no_document(context: Context, verifier: Verifier) -> None:
    """A TLS client certificate (a CSR profile; this one carries an organisation's USCC, as tls-client
    allows) signs a PDF and a bare SES_Signature with a genuine seal listing it: the certificate names
    its purposes (client_auth) and signing documents is not one. Before the fix: the PDF PASSED."""
    from gm import ses
    from gm.sm3 import sm3

    holder = issue(context, "tls-client", "cn-370000-sm2", ATTACKER)
    document = seal_pdf(
        make_pdf(), handle=holder.handle, certificate=holder.certificate, chain=holder.chain, seal_der=None,
        picture_png=context.seals.get("demo-370000-sm2").picture_png, placement=Placement(),
    ).pdf  # fmt: skip
    report = both_paths(verifier, document)
    assert report["result"] == INDETERMINATE, report
    assert (INDETERMINATE, "CHAIN_CONSTRAINTS_FAILURE") in [
        (c["status"], c["code"]) for c in report["signatures"][0]["checks"] if c["name"] == "chain"
    ]
    assert report["subindication"] == "CHAIN_CONSTRAINTS_FAILURE"
    content = b"licence body"
    victim = context.seals.get("demo-370000-sm2").esl_der
    tbs = ses.build_tbs_sign(seal_der=victim, time_info=datetime.now(UTC), data_hash=sm3(content),
                             property_info="licence.txt")  # fmt: skip
    blob = ses.assemble_ses_signature(tbs, holder.certificate, holder.handle.sign(tbs))
    bare = verifier.verify(blob, content=content).as_json()
    assert bare["result"] != PASSED
    assert (INDETERMINATE, "CHAIN_CONSTRAINTS_FAILURE") in [
        (c["status"], c["code"]) for c in bare["signatures"][0]["checks"] if c["name"] == "chain"
    ]
    # an org-seal certificate (documentSigning) is still a signer
    signer = issue(context, "org-seal", "cn-370000-sm2", ATTACKER)
    fine = seal_pdf(
        make_pdf(), handle=signer.handle, certificate=signer.certificate, chain=signer.chain, seal_der=None,
        picture_png=context.seals.get("demo-370000-sm2").picture_png, placement=Placement(),
    ).pdf  # fmt: skip
    assert both_paths(verifier, fine)["result"] == PASSED


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
    signer = issue(context, "org-seal", "cn-370000-sm2", subject)
    tsa_subject = {"country_name": "CN", "organization_name": "Attacker", "common_name": "Attacker TSA"}
    tsa_holder = issue(context, "tsa", "cn-370000-sm2", tsa_subject)
    tsa = TimestampAuthority(context.db, context.custody, context.ca)
    tsa._units["sm2"] = Unit("sm2", tsa_holder.handle, x509.Certificate.load(tsa_holder.certificate),
                             tsa_holder.certificate, tsa_holder.chain)  # fmt: skip
    time.sleep(2.2)  # whole seconds: the backdated time below lies after the certificates' notBefore
    withdraw_ca(context.ca, "cn-root-sm2", reason="keyCompromise", actor="test",
                publisher=context.verification.publisher)  # fmt: skip
    verifier = context.verification.verifier()  # the new list: the root is withdrawn

    Clock.offset = timedelta(seconds=2)
    monkeypatch.setattr(signing_tsa, "datetime", Clock)
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
    assert check(both_paths(verifier, plain), "chain") == (INDETERMINATE, "CA_WITHDRAWN")  # without the TSA
    report = both_paths(verifier, document)
    assert report["result"] != PASSED, report
    assert report["result"] == INDETERMINATE
    assert check(report, "chain") == (INDETERMINATE, "CA_WITHDRAWN")
    assert check(report, "signing_time")[0] == INDETERMINATE
