"""Verifiers follow CRL partitions (issue 12). A seal whose certificate sits in partition p2 is revoked; a
document sealed after the revocation (a timestamp proves when) is revoked (REVOKED_NO_POE, the project's
verdict for any revoked signer, verify/rules.py) for the service's POST
/v1/verify (which hands the verifier the list at the certificate's distribution point, not every
partition's), offline with that partition's CRL at hand, and for `trustseal verify` on a B-LT document
whose DSS embeds it. With only another partition's CRL at hand and no OCSP, the answer is not PASSED:
that list says nothing about this certificate (its issuingDistributionPoint names another URL)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import crl, x509
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.reader import PdfFileReader
from typer.testing import CliRunner

from api.app import create_app
from api.context import Context
from ca.crl import split_scope
from seal.service import SealRequest
from signing import ltv
from signing.pdf import Placement
from signing.service import Caller
from tests.fixtures import make_pdf, pem
from verify.report import INDETERMINATE, PASSED
from verify.service import Verifier
from verify.sources import Sources
from verify.trust import TrustStore

CA = "cn-370000-sm2"
CALLER = Caller(role="issuer", name="t", seal_ids=("*",))


def _seal(context: Context, seal_id: str) -> str:
    """A seal on CA; returns its certificate's CRL scope (from its distribution point)."""
    context.seals.create(
        SealRequest(name="分区测试", organisation_name="分区测试", organisation_uscc="91350100M000100Y43", ca=CA,
                    seal_id=seal_id),
        actor="test",
    )  # fmt: skip
    cert = x509.Certificate.load(context.ca.get_certificate(context.seals.get(seal_id).certificate_serial).der)
    url: str = cert.crl_distribution_points[0].url
    return url.removeprefix(f"{context.ca.public_url}/v1/cas/{CA}/crl").lstrip("/")


@pytest.fixture(scope="module")
def partitioned(context: Context) -> Iterator[dict[str, str]]:
    """Seals in partitions p1 and p2 of CA (partition size 1: the base list already holds the OCSP signer)."""
    before = context.ca.partitions.size
    context.ca.partitions.size = 1
    scopes = {seal_id: _seal(context, seal_id) for seal_id in ("part-a", "part-b")}
    yield scopes
    context.ca.partitions.size = before


def _crl(context: Context, scope: str) -> crl.CertificateList:
    return crl.CertificateList.load(context.ca.current_crl(CA, scope))


def _roots_crls(context: Context) -> list[crl.CertificateList]:
    return [crl.CertificateList.load(der) for der in context.ca.current_crls("cn-root-sm2")]


def _trust(context: Context) -> TrustStore:
    store = TrustStore()
    store.add_list(context.verification.trust_list(), roots=[context.ca.ca_certificate("cn-root-sm2")])
    return store


def _offline(context: Context, pdf: bytes, lists: list[crl.CertificateList]) -> dict[str, Any]:
    """`pdf` verified with exactly these CRLs at hand (the roots' and `lists`), no OCSP, no fetching."""
    every = [*_roots_crls(context), *lists]
    sources = Sources(fetch=False, revocation_lookup=lambda certs: (every, []))
    report: dict[str, Any] = Verifier(_trust(context), sources).verify(pdf).as_json()
    return report


def _revocation(report: dict[str, Any]) -> tuple[str, str | None]:
    check = next(c for c in report["signatures"][0]["checks"] if c["name"] == "revocation")
    return check["status"], check["code"]


def _says_revoked(report: dict[str, Any]) -> bool:
    """Revoked, in this project's judgement (verify/rules.py `revoked`: no document proves it was signed
    before the revocation, so INDETERMINATE / REVOKED_NO_POE, never PASSED)."""
    return (
        report["result"] == INDETERMINATE
        and report["subindication"] == "REVOKED_NO_POE"
        and _revocation(report) == (INDETERMINATE, "REVOKED_NO_POE")
    )


@pytest.fixture(scope="module")
def revoked_after(context: Context, partitioned: dict[str, str]) -> dict[str, bytes]:
    """Documents sealed with part-b (B-T, B-LT) and part-a (B-T); then part-b's certificate revoked as of an
    hour before (`revoked_at`: the timestamps prove the documents younger than the revocation, as for a
    document sealed after it); then the B-LT document's DSS refreshed with the material of now (an
    archive's LTV update: the partition's CRL listing it, and an OCSP answer)."""
    assert split_scope(partitioned["part-b"])[1] >= 2 and partitioned["part-a"] != partitioned["part-b"]
    docs = {}
    for name, seal_id, level in (("b-t", "part-b", "B-T"), ("b-lt", "part-b", "B-LT"), ("a-t", "part-a", "B-T")):
        docs[name] = context.signing.seal_pdf(
            make_pdf([name]), seal_id=seal_id, caller=CALLER, placement=Placement(), level=level
        ).pdf
    serial = context.seals.get("part-b").certificate_serial
    context.ca.revoke_seal_certificate(
        serial, "part-b", "keyCompromise", actor="test", revoked_at=datetime.now(UTC) - timedelta(hours=1)
    )
    leaf = context.ca.get_certificate(serial).der
    embedded = PdfFileReader(io.BytesIO(docs["b-lt"])).embedded_signatures[0]
    certs, ocsps, crls = ltv.material(context.ca, [(leaf, context.ca.chain_for(CA, leaf))])
    docs["b-lt"] = ltv.add_dss(docs["b-lt"], bytes(embedded.pkcs7_content), certs, ocsps, crls)
    return docs


def test_the_partition_list_names_the_revoked_certificate_and_no_other_does(
    context: Context, partitioned: dict[str, str], revoked_after: dict[str, bytes]
) -> None:
    serial = int(context.seals.get("part-b").certificate_serial, 16)
    own = _crl(context, partitioned["part-b"])
    assert serial in {e["user_certificate"].native for e in own["tbs_cert_list"]["revoked_certificates"]}
    for scope in ("", partitioned["part-a"]):
        entries = _crl(context, scope)["tbs_cert_list"]["revoked_certificates"] or []
        assert serial not in {e["user_certificate"].native for e in entries}


def test_service_verify_says_revoked(context: Context, revoked_after: dict[str, bytes]) -> None:
    report = context.verification.verifier().verify(revoked_after["b-t"]).as_json()
    assert _says_revoked(report), report
    with TestClient(create_app(context), raise_server_exceptions=False) as client:
        answer = client.post("/v1/verify", files={"file": ("doc.pdf", revoked_after["b-t"], "application/pdf")})
    assert answer.status_code == 200
    assert _says_revoked(answer.json())
    assert context.verification.verifier().verify(revoked_after["a-t"]).result == PASSED  # the other partition


def test_partition_crls_are_served_at_the_url_certificates_carry(
    context: Context, partitioned: dict[str, str], revoked_after: dict[str, bytes]
) -> None:
    with TestClient(create_app(context), raise_server_exceptions=False) as client:
        for scope in partitioned.values():
            answer = client.get(f"/v1/cas/{CA}/crl/{scope}")
            assert answer.status_code == 200 and answer.headers["content-type"] == "application/pkix-crl"
            assert answer.content == context.ca.current_crl(CA, scope)
        for unknown in ("p999", "k7-p1", "p0", "p-1"):
            refused = client.get(f"/v1/cas/{CA}/crl/{unknown}")
            assert refused.status_code == 404 and refused.json()["code"] == "unknown_crl_scope", unknown


def test_offline_with_the_partition_crl_says_revoked(
    context: Context, partitioned: dict[str, str], revoked_after: dict[str, bytes]
) -> None:
    report = _offline(context, revoked_after["b-t"], [_crl(context, partitioned["part-b"])])
    assert _says_revoked(report), report


def test_only_another_partitions_crl_is_not_passed(
    context: Context, partitioned: dict[str, str], revoked_after: dict[str, bytes]
) -> None:
    for lists in ([_crl(context, partitioned["part-a"])], [_crl(context, partitioned["part-a"]), _crl(context, "")]):
        report = _offline(context, revoked_after["b-t"], lists)
        assert report["result"] == INDETERMINATE, report
        assert _revocation(report) == (INDETERMINATE, "REVOCATION_UNKNOWN")
    # and a good certificate is not passed on another partition's list either, only on its own
    good = _offline(context, revoked_after["a-t"], [_crl(context, partitioned["part-b"])])
    assert good["result"] == INDETERMINATE, good
    assert _offline(context, revoked_after["a-t"], [_crl(context, partitioned["part-a"])])["result"] == PASSED


def test_cli_verify_of_a_b_lt_document_embedding_the_partition_crl(
    context: Context, partitioned: dict[str, str], revoked_after: dict[str, bytes], tmp_path: Path
) -> None:
    from api.cli import app

    dss = PdfFileReader(io.BytesIO(revoked_after["b-lt"])).root["/DSS"]
    embedded = [crl.CertificateList.load(ref.get_object().data) for ref in dss["/CRLs"]]
    points = {
        listing.issuing_distribution_point_value["distribution_point"].chosen[0].native
        for listing in embedded
        if listing.issuing_distribution_point_value is not None
    }
    assert f"{context.ca.public_url}/v1/cas/{CA}/crl/{partitioned['part-b']}" in points
    assert f"{context.ca.public_url}/v1/cas/{CA}/crl/{partitioned['part-a']}" not in points  # not every partition

    (tmp_path / "doc.pdf").write_bytes(revoked_after["b-lt"])
    (tmp_path / "list.json").write_text(json.dumps(context.verification.trust_list()))
    (tmp_path / "root.pem").write_bytes(pem(context.ca.ca_certificate("cn-root-sm2").dump()))
    home = tmp_path / "home"
    home.mkdir()
    result = CliRunner().invoke(
        app,
        ["verify", str(tmp_path / "doc.pdf"), "--trust-list", str(tmp_path / "list.json"),
         "--root", str(tmp_path / "root.pem"), "--json"],
        env={"TRUSTSEAL_HOME": str(home)},
    )  # fmt: skip
    assert result.exit_code == 3, result.output
    assert _says_revoked(json.loads(result.output[result.output.index("{") :]))


def test_the_fast_path_reads_a_partition_list_and_leaves_the_rest_to_the_full_path(
    context: Context, partitioned: dict[str, str], revoked_after: dict[str, bytes]
) -> None:
    """verify/pdf_fast.py takes a list whose issuingDistributionPoint names the certificate's distribution
    point, skips another partition's (tests/conftest.py checks its report against the full path's), and
    declines when no list in scope is at hand or one lists the certificate."""
    verifier = context.verification.verifier().pdf
    assert verifier.verify(revoked_after["a-t"]).result == PASSED and verifier.fast_declined == ""
    assert verifier.verify(revoked_after["b-t"]).result != PASSED and verifier.fast_declined
    every = [*_roots_crls(context), _crl(context, partitioned["part-b"]), _crl(context, "")]
    offline = Verifier(_trust(context), Sources(fetch=False, revocation_lookup=lambda certs: (every, []))).pdf
    assert offline.verify(revoked_after["a-t"]).result == INDETERMINATE and offline.fast_declined


def test_a_revocation_listed_after_the_public_url_changed_is_still_seen(context: Context, keystore: Any) -> None:
    """The lists' issuing distribution point spells the service's *current* public URL; certificates carry
    the one they were issued under. After a move (a new host, a DR site) the partition list naming a
    revocation no longer matches its certificate's distribution point: it is not taken as complete for it
    (pyhanko), but its entry still revokes it (serials are unique per issuer). A review found a document
    sealed before a reported key compromise verifying PASSED once the URL had changed."""
    from ca.authority import CertificateAuthorityService
    from policies.profiles import default_profiles
    from store.models import Certificate

    before = context.ca.partitions.size
    context.ca.partitions.size = 1
    try:
        scope = _seal(context, "moved-url")
        pdf = context.signing.seal_pdf(
            make_pdf(["moved"]), seal_id="moved-url", caller=CALLER, placement=Placement(), level="B-LT"
        ).pdf
    finally:
        context.ca.partitions.size = before
    assert split_scope(scope)[1] > 0  # a partition: its list carries an IDP
    moved = CertificateAuthorityService(context.db, keystore, default_profiles(), "https://trust.example.gov.cn")
    compromised = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)  # before the sealing
    with moved._crl_mutex, moved.db.session() as session:
        row = session.get(Certificate, context.seals.get("moved-url").certificate_serial)
        assert row is not None
        moved.revoke_in_session(session, row, "key_compromise", "test", None, compromised)
    lists = [crl.CertificateList.load(der) for der in moved.current_crls(CA)]
    idp_urls = {
        listing.issuing_distribution_point_value["distribution_point"].native[0]
        for listing in lists
        if listing.issuing_distribution_point_value is not None
    }
    assert f"https://trust.example.gov.cn/v1/cas/{CA}/crl/{scope}" in idp_urls  # re-issued by the moved service
    report = _offline(context, pdf, lists)
    assert report["result"] != PASSED, report
    assert _revocation(report)[0] == INDETERMINATE
    # and the service finds the certificate's list by its path, whatever the host it names
    leaf_dp = (
        x509.Certificate.load(
            next(c.der for c in [context.ca.get_certificate(context.seals.get("moved-url").certificate_serial)])
        )
        .crl_distribution_points[0]["distribution_point"]
        .native[0]
    )
    assert not leaf_dp.startswith("https://trust.example.gov.cn/")
    assert moved.crl_at(leaf_dp) is not None
