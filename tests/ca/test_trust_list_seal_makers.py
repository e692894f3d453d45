"""Seal makers on the trust list (DESIGN.md): per region, `seal_makers` lists the maker certificates of
that region's CAs with status and history; every region has the key (empty if it has no maker); a new
list (sequence + 1) is published when that set changes (a new maker, a revoked maker certificate, a
withdrawn CA), and not otherwise."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from asn1crypto import pem, x509

from ca.trust_list import TrustListPublisher
from ca.withdrawal import withdraw_ca
from gm import oids
from seal.service import SealRequest, SealService


def _regions(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {region["code"]: region for region in document["regions"]}


def _cert(entry: dict[str, Any]) -> x509.Certificate:
    return x509.Certificate.load(pem.unarmor(entry["certificate"].encode())[2])


def test_each_regions_makers_are_listed_with_the_same_region(seal_service: SealService) -> None:
    document = TrustListPublisher(seal_service.ca).current()
    regions = _regions(document)
    assert all(isinstance(region["seal_makers"], list) for region in regions.values())  # one shape everywhere
    assert regions["100000"]["seal_makers"] == []  # no seals made under a national CA here
    for code in ("370000", "530000"):
        makers = regions[code]["seal_makers"]
        assert {m["name"] for m in makers} == {f"cn-{code}-sm2 seal maker", f"cn-{code}-p256 seal maker"}
        region_cas = {ca["name"]: x509.Certificate.load(pem.unarmor(ca["certificate"].encode())[2])
                      for ca in regions[code]["cas"]}  # fmt: skip
        for maker in makers:
            cert = _cert(maker)
            assert maker["status"] == "granted"
            assert maker["history"] == [{"status": "granted", "from": cert.not_valid_before.isoformat()}]
            assert cert.extended_key_usage_value.native == [oids.EKU_SEAL_MAKER]
            issuer = region_cas[maker["name"].removesuffix(" seal maker")]
            assert cert.issuer == issuer.subject  # issued by a CA of the same region
            assert set(maker) == {"name", "certificate", "status", "history"}
    # each maker is the one that made that region's demo seal
    with seal_service.db.session() as session:
        from store.models import Seal

        seal = session.get(Seal, "demo-370000-sm2")
        assert seal is not None
    listed = {_cert(m).serial_number for m in regions["370000"]["seal_makers"]}
    assert int(seal.maker_certificate_serial, 16) in listed


def test_a_new_maker_publishes_a_new_list_and_nothing_else_does(seal_service: SealService) -> None:
    publisher = TrustListPublisher(seal_service.ca)
    first = publisher.current()
    assert publisher.current()["sequence"] == first["sequence"]  # nothing changed: same list
    seal_service.create(
        SealRequest(name="全国测试", organisation_name="全国测试", organisation_uscc="91350100M000100Y43",
                    ca="cn-100000-sm2", seal_id="national-maker")
    )  # fmt: skip
    second = publisher.current()
    assert second["sequence"] == first["sequence"] + 1
    national = _regions(second)["100000"]["seal_makers"]
    assert [m["name"] for m in national] == ["cn-100000-sm2 seal maker"]
    seal_service.create(
        SealRequest(name="全国测试二", organisation_name="全国测试", organisation_uscc="91350100M000100Y43",
                    ca="cn-100000-sm2", seal_id="national-maker-2")
    )  # fmt: skip
    assert publisher.current()["sequence"] == second["sequence"]  # same maker: the set did not change


def test_a_revoked_maker_certificate_is_withdrawn_on_a_new_list(seal_service: SealService) -> None:
    publisher = TrustListPublisher(seal_service.ca)
    before = publisher.current()
    maker = seal_service.maker("cn-530000-p256")
    revoked = seal_service.ca.revoke(maker.certificate_serial, "keyCompromise")
    after = publisher.current()
    assert after["sequence"] == before["sequence"] + 1
    entry = next(m for m in _regions(after)["530000"]["seal_makers"] if _cert(m).serial_number == int(
        maker.certificate_serial, 16))  # fmt: skip
    assert entry["status"] == "withdrawn"
    assert entry["history"][-1] == {"status": "withdrawn", "from": revoked.revoked_at.isoformat()}  # type: ignore[union-attr]


def test_a_withdrawn_cas_makers_are_withdrawn_from_the_same_moment(seal_service: SealService) -> None:
    publisher = TrustListPublisher(seal_service.ca)
    before = publisher.current()
    result = withdraw_ca(seal_service.ca, "cn-530000-sm2", reason="caCompromise", publisher=publisher)
    after = publisher.current()
    assert after["sequence"] == before["sequence"] + 1  # published by the withdrawal itself
    entry = next(m for m in _regions(after)["530000"]["seal_makers"] if m["name"] == "cn-530000-sm2 seal maker")
    assert entry["status"] == "withdrawn"
    assert datetime.fromisoformat(entry["history"][-1]["from"]) == result.withdrawn_at


def test_a_recertified_maker_keeps_its_old_certificate_listed(seal_service: SealService) -> None:
    """Seals made by a maker certificate from before the EKU keep a listed maker after re-certification."""
    from store.models import SealMaker

    ca_name = "cn-370000-p256"
    old = seal_service.maker(ca_name)
    seal_service.create(  # a seal made by the old certificate
        SealRequest(name="旧章", organisation_name="旧章", organisation_uscc="91350100M000100Y43", ca=ca_name)
    )
    replacement = seal_service.ca.issue_for_key(
        seal_service.custody.get(old.key_ref).public_key_der,
        {"country_name": "CN", "organization_name": "trustseal", "common_name": f"{ca_name} seal maker"},
        "seal-maker",
        ca_name,
    )
    with seal_service.db.session() as session:
        row = session.get(SealMaker, ca_name)
        assert row is not None
        row.certificate_serial, row.certificate_der = replacement.serial, replacement.der
    listed = {_cert(m).serial_number for m in _regions(TrustListPublisher(seal_service.ca).current())["370000"][
        "seal_makers"]}  # fmt: skip
    assert {int(old.certificate_serial, 16), int(replacement.serial, 16)} <= listed
