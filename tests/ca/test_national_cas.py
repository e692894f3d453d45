"""The national issuing CAs `cn-100000-sm2` / `cn-100000-p256` (DESIGN.md): under the roots, region code
100000, made by `trustseal init` and added by `init --if-needed` to a home made before them. National
services get their certificates there, not from a region: the TSA units (tried before: withdrawing the
Shandong CA broke every region's SM2 timestamps) and the OCSP responders of the national CAs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from asn1crypto import x509
from typer.testing import CliRunner

from api.cli import app
from api.context import open_context
from api.settings import Settings
from ca.authority import CertificateAuthorityService
from ca.hierarchy import FAMILIES, REGIONS, national_name, regional_name, root_name
from seal.service import SealService
from signing.tsa import ISSUING_CA, TimestampAuthority
from store.models import TimestampUnit


@pytest.mark.parametrize("family", ["sm2", "p256"])
def test_national_issuing_ca_under_the_root(ca_service: CertificateAuthorityService, family: str) -> None:
    with ca_service.db.session() as session:
        row = ca_service.get_ca(session, f"cn-100000-{family}")
        assert (row.parent, row.region_code, row.status) == (f"cn-root-{family}", "100000", "active")
        ocsp_der = row.ocsp_certificate_der
    cert = ca_service.ca_certificate(f"cn-100000-{family}")
    root = ca_service.ca_certificate(f"cn-root-{family}")
    assert cert.issuer == root.subject and cert.ca and cert.max_path_length == 0
    assert ocsp_der is not None  # its own delegated responder (RFC 6960 §4.2.2.2), not a region's
    assert x509.Certificate.load(ocsp_der).issuer == cert.subject


@pytest.mark.parametrize("family", ["sm2", "p256"])
def test_tsa_units_are_certified_by_the_national_ca(seal_service: SealService, family: str) -> None:
    tsa = TimestampAuthority(seal_service.db, seal_service.custody, seal_service.ca)
    unit = tsa.unit(family)
    national = seal_service.ca.ca_certificate(f"cn-100000-{family}")
    assert ISSUING_CA[family] == f"cn-100000-{family}"
    assert unit.certificate.issuer == national.subject
    assert unit.chain[0] == national.dump() and len(unit.chain) == 2  # national CA, root
    assert unit.certificate.extended_key_usage_value.native == ["time_stamping"]


def test_a_tsa_unit_certified_by_a_region_is_recertified_for_the_same_key(seal_service: SealService) -> None:
    """A home from before the national CAs has its SM2 unit under cn-370000-sm2."""
    ca = seal_service.ca
    key = seal_service.custody.get("tsa.sm2") if "tsa.sm2" in seal_service.custody.names() else None
    if key is None:
        TimestampAuthority(seal_service.db, seal_service.custody, ca).unit("sm2")
        key = seal_service.custody.get("tsa.sm2")
    old = ca.issue_for_key(
        key.public_key_der,
        {"country_name": "CN", "organization_name": "trustseal", "common_name": "trustseal TSA SM2"},
        "tsa",
        "cn-370000-sm2",
    )
    with ca.db.session() as session:
        row = session.get(TimestampUnit, "sm2")
        assert row is not None
        row.ca_name, row.certificate_serial, row.certificate_der = "cn-370000-sm2", old.serial, old.der

    unit = TimestampAuthority(seal_service.db, seal_service.custody, ca).unit("sm2")
    assert unit.certificate.issuer == ca.ca_certificate("cn-100000-sm2").subject
    assert unit.certificate.public_key.dump() == key.public_key_der and unit.certificate_der != old.der
    with ca.db.session() as session:
        row = session.get(TimestampUnit, "sm2")
        assert row is not None and row.ca_name == "cn-100000-sm2" and row.certificate_der == unit.certificate_der


def test_init_if_needed_adds_the_national_cas_to_an_older_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = Settings.from_env(home)
    context = open_context(settings, create=True)
    try:  # what `init` made before this change: roots and regions only
        for family in FAMILIES:
            subject = {"country_name": "CN", "organization_name": "trustseal demo"}
            context.ca.create_ca(
                root_name(family), algorithm=family, subject={**subject, "common_name": f"Root {family}"},
                ca_profile="root-ca",
            )  # fmt: skip
            for region in REGIONS:
                context.ca.create_ca(
                    regional_name(region, family), algorithm=family, ca_profile="regional-ca",
                    subject={**subject, "common_name": f"{region.name} {family}"}, parent=root_name(family),
                    region_code=region.code, region_name=region.name,
                )  # fmt: skip
    finally:
        context.close()
    settings.demo_tokens_file.write_text(json.dumps({"admin": "ts_old"}))
    runner = CliRunner()
    first = runner.invoke(app, ["init", "--if-needed"], env={"TRUSTSEAL_HOME": str(home)})
    assert first.exit_code == 0, first.output
    for family in FAMILIES:
        assert f"created CA {national_name(family)}" in first.output
    assert json.loads(settings.demo_tokens_file.read_text()) == {"admin": "ts_old"}  # no new tokens
    again = runner.invoke(app, ["init", "--if-needed"], env={"TRUSTSEAL_HOME": str(home)})
    assert again.exit_code == 0 and "created" not in again.output, again.output
