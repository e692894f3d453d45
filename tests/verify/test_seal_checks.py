"""verify/seal_checks.py: what it remembers across documents (parsed seals, valid maker signatures)
never makes a changed seal pass."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from api.context import Context
from gm import ses
from seal.demo import create_demo_seals
from verify import seal_checks
from verify.report import FAILED, INDETERMINATE, PASSED, SKIPPED, SignatureReport
from verify.sources import Sources


@pytest.fixture(scope="module")
def seal_der(context: Context) -> bytes:
    create_demo_seals(context.seals, actor="test")
    return context.seals.get("demo-370000-sm2").esl_der


def _seal_check(context: Context, seal: ses.Seal) -> str:
    out = SignatureReport(field_name="test")
    trust = context.verification.verifier().pdf.trust
    seal_checks.check_seal(out, seal, None, datetime.now(UTC), trust, Sources())
    return next(c.status for c in out.checks if c.name == "seal")


def test_a_parsed_seal_is_the_parse_of_those_bytes(seal_der: bytes) -> None:
    assert seal_checks.parsed_seal(seal_der) == ses.parse_seal(seal_der)
    assert seal_checks.parsed_seal(bytes(seal_der)) is seal_checks.parsed_seal(seal_der)
    with pytest.raises(ses.SESFormatError):
        seal_checks.parsed_seal(seal_der[:-1])


def test_a_remembered_maker_signature_does_not_cover_a_changed_seal(context: Context, seal_der: bytes) -> None:
    seal = seal_checks.parsed_seal(seal_der)
    assert _seal_check(context, seal) == PASSED
    assert _seal_check(context, seal) == PASSED  # the remembered answer

    def flipped(value: bytes) -> bytes:
        return value[:-1] + bytes([value[-1] ^ 1])

    for changed in (
        dataclasses.replace(seal, signature=flipped(seal.signature)),
        dataclasses.replace(seal, signed_bytes=flipped(seal.signed_bytes)),
        dataclasses.replace(seal, maker_cert=context.ca.ca_certificate("cn-root-sm2").dump()),
    ):
        assert _seal_check(context, changed) == FAILED


def test_chain_checks_outside_a_pdf_say_when_nobody_checked_revocation() -> None:
    """OFD and bare CMS / SES signatures go through check_chain: the same honesty as the PDF path."""
    from tests.verify.test_pdf_fast_attacks import NOW, Lab, issue, make_crl

    lab = Lab()
    bare = issue("lab bare leaf", lab.ca, crl_dp=False)
    lab.crls = [make_crl(lab.root)]
    trust = lab.verifier().trust
    sources = Sources(revocation_lookup=lambda certs: (list(lab.crls), []))
    results = {}
    for name, leaf in (("bare", bare), ("declared", issue("lab leaf", lab.ca))):
        out = SignatureReport(field_name="test")
        seal_checks.check_chain(out, leaf.cert.dump(), [lab.ca.cert.dump()], NOW, trust, sources)
        results[name] = {c.name: (c.status, c.code) for c in out.checks}
    assert results["bare"]["revocation"] == (SKIPPED, "NO_REVOCATION_SOURCE")
    assert results["declared"]["revocation"] == (INDETERMINATE, "REVOCATION_UNKNOWN")  # names a CRL nobody has
    lab.crls.append(make_crl(lab.ca))
    out = SignatureReport(field_name="test")
    seal_checks.check_chain(out, bare.cert.dump(), [lab.ca.cert.dump()], NOW, trust, sources)
    assert {c.name: (c.status, c.code) for c in out.checks}["revocation"] == (PASSED, "OK")


def test_a_remembered_maker_signature_does_not_cover_another_algorithm_label(context: Context, seal_der: bytes) -> None:
    """Found in review: in v4 seals the algorithm lies outside the signed bytes, and the remembered
    answer ignored it, so a relabelled seal passed once the genuine one had been seen."""
    structure = ses.SESeal.load(seal_der)
    structure["sign_alg_id"] = "1.2.840.10045.4.3.2"  # ecdsa-with-SHA256 on an SM2 signature
    relabelled = seal_checks.parsed_seal(structure.dump(force=True))
    genuine = seal_checks.parsed_seal(seal_der)
    assert relabelled.signed_bytes == genuine.signed_bytes and relabelled.signature == genuine.signature
    assert _seal_check(context, genuine) == PASSED
    assert _seal_check(context, relabelled) == FAILED
