"""Vendor certificates with GBK / UTF-8 bytes in PrintableString, TeletexString and IA5String names:
parsed, shown leniently, compared as encoded bytes, and no reason to stop building the chain."""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from asn1crypto import x509

from gm import ses
from tests.verify.test_pdf_fast_attacks import Node, issue
from verify import names, seal_checks
from verify.report import INDETERMINATE, PASSED, SignatureReport
from verify.service import Verifier
from verify.sources import Sources
from verify.trust import TrustStore

ZSBK = Path(__file__).resolve().parents[3] / "shared" / "interop" / "ofd" / "zsbk.ofd"
YUNNAN_CA = "云南省CA".encode("gbk")  # D4 C6 C4 CF CA A1 43 41
# 南 is GBK C4 CF, latin-1 "ÄÏ"; E4 EF is another character, latin-1 "äï": the same text once case-folded
LOOK_ALIKE = YUNNAN_CA.replace(b"\xc4\xcf", b"\xe4\xef")
PLACEHOLDER = b"yunnanCA"  # as long as the GBK bytes: the patch keeps every DER length


def _gbk_printable(encoded: bytes) -> Callable[[bytes], bytes]:
    """A TBSCertificate patch: the UTF8String common name PLACEHOLDER becomes a PrintableString of GBK bytes."""

    def patch(tbs: bytes) -> bytes:
        assert len(encoded) == len(PLACEHOLDER) and b"\x0c\x08" + PLACEHOLDER in tbs
        return tbs.replace(b"\x0c\x08" + PLACEHOLDER, b"\x13\x08" + encoded)

    return patch


def _gbk_ca(encoded: bytes = YUNNAN_CA) -> Node:
    return issue(PLACEHOLDER.decode(), ca=True, patch=_gbk_printable(encoded))


def _leaf(ca: Node) -> Node:
    """An end-entity certificate whose issuer name is `ca`'s GBK name (the same bytes)."""
    leaf = issue("vendor signer", ca, crl_dp=False)
    assert leaf.cert.issuer.dump() == ca.cert.subject.dump()
    return leaf


def test_gbk_in_a_printable_string_is_shown_as_gbk() -> None:
    ca = _gbk_ca()
    value = ca.cert.subject.chosen[2][0]["value"]
    assert value.name == "printable_string" and value.chosen.contents == YUNNAN_CA
    assert names.describe(ca.cert)["common_name"] == "云南省CA"
    assert names.describe(_leaf(ca).cert)["issuer"] == "云南省CA"
    assert "云南省CA" in ca.cert.subject.human_friendly
    names.parse_fully(ca.cert)  # does not raise
    assert names.lenient(b"\xff\xfe\x80") == "\ufffd\ufffd\ufffd"  # neither UTF-8 nor GB 18030


def test_names_with_gbk_bytes_are_compared_as_bytes() -> None:
    """asn1crypto reads a PrintableString as latin-1 and case-folds it: GBK C4 CF ('ÄÏ') and E4 EF ('äï')
    made the same name. Compared as bytes they are not."""
    genuine, impostor = _gbk_ca(), _gbk_ca(LOOK_ALIKE)
    a, b = (x509.NameTypeAndValue.load(n.cert.subject.chosen[2][0].dump()) for n in (genuine, impostor))
    assert names.ORIGINAL_PREPPED(a) == names.ORIGINAL_PREPPED(b)  # the old, text-based comparison
    assert genuine.cert.subject != impostor.cert.subject
    assert genuine.cert.subject.hashable != impostor.cert.subject.hashable
    assert genuine.cert.subject == x509.Name.load(genuine.cert.subject.dump())  # the same bytes still match
    plain = issue("plain ASCII CA", ca=True)  # conforming names keep RFC 5280 (case-insensitive) matching
    assert plain.cert.subject == x509.Name.build(
        {"country_name": "CN", "organization_name": "ATTACK LAB", "common_name": "Plain ascii ca"}
    )


def test_a_chain_through_a_gbk_named_ca_is_built() -> None:
    ca = _gbk_ca()
    leaf = _leaf(ca)
    trust = TrustStore()
    trust.add_anchor(ca.cert)
    out = SignatureReport()
    seal_checks.check_chain(out, leaf.der, [], datetime.now(UTC), trust, Sources())
    checks = {c.name: (c.status, c.code) for c in out.checks}
    assert checks["chain"] == (PASSED, "OK"), out.checks
    impostor = _gbk_ca(LOOK_ALIKE)  # a look-alike name is not the issuer
    other = TrustStore()
    other.add_anchor(impostor.cert)
    out = SignatureReport()
    seal_checks.check_chain(out, leaf.der, [], datetime.now(UTC), other, Sources())
    assert [(c.status, c.code) for c in out.checks if c.name == "chain"] == [
        (INDETERMINATE, "NO_CERTIFICATE_CHAIN_FOUND")
    ]


def test_zsbk_chain_building_no_longer_stops_on_a_codec_error() -> None:
    """zsbk.ofd's signer has UTF-8 bytes in an IA5String emailAddress: chain building goes on, to "no
    trust anchor" (its issuer YNCA_SM2 ships with no sample)."""
    report = Verifier(TrustStore()).verify(ZSBK.read_bytes()).as_json()
    assert len(report["signatures"]) == 2
    for signature in report["signatures"]:
        checks = {c["name"]: c for c in signature["checks"]}
        assert (checks["chain"]["status"], checks["chain"]["code"]) == (INDETERMINATE, "NO_CERTIFICATE_CHAIN_FOUND")
        assert not any("codec" in c["detail"] for c in signature["checks"]), signature["checks"]
        assert "电子邮箱" in checks["chain"]["detail"]  # shown as what it says
        assert signature["signer"]["issuer"] == "YNCA_SM2"


def test_zsbk_signer_names_parse() -> None:
    with zipfile.ZipFile(ZSBK) as package:
        blob = package.read("Doc_0/Signs/Sign_0/SignedValue.dat")
    cert = x509.Certificate.load(ses.parse_ses_signature(blob).signer_cert)
    names.parse_fully(cert)
    assert names.name_fields(cert.subject)["email_address"] == "电子邮箱"
