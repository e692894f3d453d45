"""CRL partitions (issue 12): at a small partition size several partitions appear; each certificate's
distribution point names its partition, whose CRL carries a critical issuingDistributionPoint with exactly
that URL and lists only its own revoked certificates; a revocation re-issues only its certificate's list;
infrastructure stays on the base list; another process continues the open partition. OpenSSL 3 checks
the IDP against the certificate's distribution point (P-256: OpenSSL cannot check SM2 CRLs, DESIGN.md)."""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from asn1crypto import crl, x509
from sqlalchemy import select

from api.settings import Settings, SettingsError
from ca.authority import CertificateAuthorityService, IssuedCertificate
from ca.crl import partition_scope, scope_url, split_scope
from ca.errors import UnknownCRLScope
from keys.custody import KeyAlgorithm
from store.models import Certificate, Event
from tests.fixtures import ORG_SUBJECT, PUBLIC_URL, make_csr, openssl, pem

CA = "cn-370000-p256"
SIZE = 3


@pytest.fixture(scope="module")
def partitioned(ca_service: CertificateAuthorityService) -> Iterator[CertificateAuthorityService]:
    before = ca_service.partitions.size
    ca_service.partitions.size = SIZE
    yield ca_service
    ca_service.partitions.size = before


@pytest.fixture(scope="module")
def csrs(tmp_path_factory: pytest.TempPathFactory) -> list[bytes]:
    directory = tmp_path_factory.mktemp("csrs")
    return [make_csr(directory, algorithm="p256", subject=ORG_SUBJECT) for _ in range(4)]


@pytest.fixture(scope="module")
def issued(partitioned: CertificateAuthorityService, csrs: list[bytes]) -> list[IssuedCertificate]:
    return [partitioned.issue(csrs[n % len(csrs)], "org-seal", CA) for n in range(3 * SIZE + 1)]


def _dp(cert: x509.Certificate) -> str:
    points = cert.crl_distribution_points
    assert len(points) == 1
    url: str = points[0].url
    return url


def _scope(url: str) -> str:
    base = f"{PUBLIC_URL}/v1/cas/{CA}/crl"
    assert url.startswith(base)
    return url[len(base) + 1 :]


def _idp_url(listing: crl.CertificateList) -> str | None:
    idp = listing.issuing_distribution_point_value
    if idp is None:
        return None
    names = idp["distribution_point"].chosen
    assert len(names) == 1 and names[0].name == "uniform_resource_identifier"
    value: str = names[0].native
    return value


def _serials(listing: crl.CertificateList) -> set[int]:
    return {entry["user_certificate"].native for entry in listing["tbs_cert_list"]["revoked_certificates"] or []}


def _write(directory: Path, name: str, data: bytes) -> str:
    path = directory / name
    path.write_bytes(data)
    return str(path)


def test_scope_names_round_trip() -> None:
    for key in ("", "k2", "k17"):
        assert split_scope(key) == (key, 0)
        for number in (1, 2, 30):
            assert split_scope(partition_scope(key, number)) == (key, number)
    assert partition_scope("", 3) == "p3" and partition_scope("k2", 7) == "k2-p7"
    assert split_scope("p0") == ("p0", 0) and split_scope("k2-p") == ("k2-p", 0)  # not partitions


def test_certificates_fill_partitions_in_turn(
    partitioned: CertificateAuthorityService, issued: list[IssuedCertificate]
) -> None:
    scopes = [_scope(_dp(item.certificate)) for item in issued]
    numbers = [split_scope(s)[1] for s in scopes]
    assert numbers == sorted(numbers), "a later certificate never goes back to an earlier partition"
    assert {"p1", "p2", "p3"} <= set(scopes)
    counts = Counter(scopes)
    assert counts["p1"] == counts["p2"] == SIZE  # one process, one writer: the bound is exact
    with partitioned.db.session() as session:
        for item, scope in zip(issued, scopes, strict=True):
            row = session.get(Certificate, item.serial)
            assert row is not None and row.crl_scope == scope
        # the base list counts what it already held (the CA's OCSP signer): it took fewer subscribers
        in_base = session.scalar(
            select(Certificate.serial).where(Certificate.issuer_ca == CA, Certificate.crl_scope.is_(None))
        )
        assert in_base is not None


def test_each_partition_crl_names_its_url_and_lists_only_its_own(
    partitioned: CertificateAuthorityService, issued: list[IssuedCertificate]
) -> None:
    by_scope = {_scope(_dp(item.certificate)): item for item in issued}
    victim = by_scope["p2"]
    numbers_before = {s: crl.CertificateList.load(partitioned.current_crl(CA, s)).crl_number_value.native
                      for s in ("", "p1", "p2", "p3")}  # fmt: skip
    with partitioned.db.session() as session:
        last_event = session.scalar(select(Event.id).order_by(Event.id.desc()).limit(1))
    partitioned.revoke(victim.serial, "keyCompromise")
    with partitioned.db.session() as session:
        published = session.scalars(select(Event).where(Event.type == "crl.published", Event.id > last_event)).all()
    assert [e.payload["scope"] for e in published] == ["p2"], "only the revoked certificate's list is re-issued"

    lists = {s: crl.CertificateList.load(partitioned.current_crl(CA, s)) for s in ("", "p1", "p2", "p3")}
    for scope, listing in lists.items():
        assert _idp_url(listing) == scope_url(PUBLIC_URL, CA, scope)  # the base list too, once partitions exist
        extension = next(e for e in listing["tbs_cert_list"]["crl_extensions"]
                         if e["extn_id"].native == "issuing_distribution_point")  # fmt: skip
        assert extension["critical"].native is True
        grew = listing.crl_number_value.native > numbers_before[scope]
        assert grew == (scope == "p2")
    assert _serials(lists["p2"]) == {victim.certificate.serial_number}
    assert not _serials(lists["p1"]) and not _serials(lists[""]) and not _serials(lists["p3"])


def test_revoking_a_base_list_certificate_lists_it_there_only(
    partitioned: CertificateAuthorityService, issued: list[IssuedCertificate]
) -> None:
    first = next(item for item in issued if _scope(_dp(item.certificate)) == "")
    partitioned.revoke(first.serial, "superseded")
    base = crl.CertificateList.load(partitioned.current_crl(CA))
    assert first.certificate.serial_number in _serials(base)
    assert first.certificate.serial_number not in _serials(crl.CertificateList.load(partitioned.current_crl(CA, "p1")))


def test_openssl_follows_the_idp(
    partitioned: CertificateAuthorityService, issued: list[IssuedCertificate], tmp_path: Path
) -> None:
    by_scope: dict[str, list[IssuedCertificate]] = {}
    for item in issued:
        by_scope.setdefault(_scope(_dp(item.certificate)), []).append(item)
    revoked_one, good_one = by_scope["p2"][-1], by_scope["p2"][0]  # the last one was revoked above
    part = partitioned.current_crl(CA, "p2")
    text = openssl("crl", "-inform", "DER", "-noout", "-text", input=part).stdout.decode()
    assert "X509v3 Issuing Distribution Point: critical" in text
    assert f"URI:{PUBLIC_URL}/v1/cas/{CA}/crl/p2" in text

    root = _write(tmp_path, "root.pem", pem(partitioned.ca_certificate("cn-root-p256").dump()))
    regional = _write(tmp_path, "ca.pem", pem(partitioned.ca_certificate(CA).dump()))
    part_file = _write(tmp_path, "p2.pem", pem(part, "X509 CRL"))
    other_file = _write(tmp_path, "p1.pem", pem(partitioned.current_crl(CA, "p1"), "X509 CRL"))

    def verify(leaf: IssuedCertificate, crl_file: str) -> tuple[int, str]:
        cert = _write(tmp_path, f"{leaf.serial}.pem", pem(leaf.der))
        result = openssl("verify", "-crl_check", "-CRLfile", crl_file, "-CAfile", root, "-untrusted", regional,
                         cert, check=False)  # fmt: skip
        return result.returncode, (result.stdout + result.stderr).decode()

    code, out = verify(good_one, part_file)
    assert code == 0, out
    code, out = verify(revoked_one, part_file)
    assert code != 0 and "certificate revoked" in out
    # only another partition's list: OpenSSL refuses it for this certificate (X509_V_ERR_DIFFERENT_CRL_SCOPE)
    code, out = verify(good_one, other_file)
    assert code != 0 and "different CRL scope" in out, out


def test_infrastructure_stays_on_the_base_list(partitioned: CertificateAuthorityService) -> None:
    key = partitioned.custody.create(f"test-partition-maker-{secrets.token_hex(4)}", KeyAlgorithm.P256)
    subject = {"country_name": "CN", "organization_name": "trustseal", "common_name": "partition maker"}
    maker = partitioned.issue_for_key(key.public_key_der, subject, "seal-maker", CA)
    assert _scope(_dp(maker.certificate)) == ""
    with partitioned.db.session() as session:
        row = session.get(Certificate, maker.serial)
        assert row is not None and row.crl_scope == ""


def test_another_process_continues_the_open_partition(
    partitioned: CertificateAuthorityService, issued: list[IssuedCertificate], csrs: list[bytes]
) -> None:
    other = CertificateAuthorityService(
        partitioned.db, partitioned.custody, partitioned.profiles, PUBLIC_URL, crl_partition_size=SIZE
    )
    more = [other.issue(csrs[n % len(csrs)], "org-seal", CA) for n in range(SIZE)]
    last = _scope(_dp(issued[-1].certificate))
    assert _scope(_dp(more[0].certificate)) == last  # the open partition, read from the database
    with other.db.session() as session:
        query = select(Certificate.crl_scope).where(Certificate.issuer_ca == CA, Certificate.profile == "org-seal")
        counts = Counter(session.scalars(query))
    assert all(n <= SIZE for scope, n in counts.items() if scope), counts
    newest = _scope(_dp(more[-1].certificate))
    assert split_scope(newest)[1] == split_scope(last)[1] + 1
    assert crl.CertificateList.load(other.current_crl(CA, newest))  # opened with its first CRL


def test_scheduler_and_reads_cover_every_partition(
    partitioned: CertificateAuthorityService, issued: list[IssuedCertificate]
) -> None:
    assert len(issued) > 3 * SIZE  # p1…p3 exist, whichever tests ran before on this worker
    numbers = partitioned.refresh_crls()
    assert {CA, f"{CA}/p1", f"{CA}/p2", f"{CA}/p3"} <= set(numbers)
    every = partitioned.current_crls(CA)
    bases = partitioned.current_crls(CA, with_partitions=False)
    assert len(bases) == 1 and len(every) >= 4
    assert partitioned.crl_at(f"{PUBLIC_URL}/v1/cas/{CA}/crl/p1") == partitioned.current_crl(CA, "p1")
    assert partitioned.crl_at(f"{PUBLIC_URL}/v1/cas/{CA}/crl/p999") is None
    # by path, whatever the host: a certificate issued before the public URL changed names the old one
    assert partitioned.crl_at(f"http://elsewhere.example/v1/cas/{CA}/crl/p1") == partitioned.current_crl(CA, "p1")
    assert partitioned.crl_at(f"{PUBLIC_URL}/v1/cas/{CA}/certificate") is None
    assert partitioned.crl_at("http://elsewhere.example/other/crl") is None
    for unknown in ("p999", "k9-p1", "q1"):
        with pytest.raises(UnknownCRLScope):
            partitioned.current_crl(CA, unknown)


def test_partition_size_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TRUSTSEAL_CRL_PARTITION_SIZE", raising=False)
    assert Settings.from_env(tmp_path).crl_partition_size == 50_000
    monkeypatch.setenv("TRUSTSEAL_CRL_PARTITION_SIZE", "0")
    assert Settings.from_env(tmp_path).crl_partition_size == 0
    for bad in ("-1", "many", "1.5"):
        monkeypatch.setenv("TRUSTSEAL_CRL_PARTITION_SIZE", bad)
        with pytest.raises(SettingsError):
            Settings.from_env(tmp_path)


def test_a_rolled_over_key_partitions_on_its_own_and_the_old_keys_lists_stay_live(
    partitioned: CertificateAuthorityService, issued: list[IssuedCertificate], csrs: list[bytes]
) -> None:
    """After a rollover the new key starts on its base list `k<version>` and opens `k<version>-p1` …; the old
    key's partitions keep being refreshed (its certificates still carry their URLs) and stay revocable."""
    from ca.rollover import roll_over

    other_ca = "cn-530000-p256"
    old = [partitioned.issue(csrs[n % len(csrs)], "org-seal", other_ca) for n in range(SIZE + 1)]
    old_scope = _scope_of(old[-1], other_ca)
    assert old_scope == "p1"
    result = roll_over(partitioned, other_ca, actor="test")
    new = [partitioned.issue(csrs[n % len(csrs)], "org-seal", other_ca) for n in range(2 * SIZE)]
    scopes = [_scope_of(item, other_ca) for item in new]
    key = result.crl_scope
    assert scopes[0] == key and f"{key}-p1" in scopes, scopes
    in_partition = next(item for item in new if _scope_of(item, other_ca) == f"{key}-p1")
    assert _ca_issuers(in_partition.certificate) == partitioned.issuer_url(other_ca, key)  # the key's certificate
    assert _ca_issuers(old[-1].certificate) == partitioned.issuer_url(other_ca)
    listing = crl.CertificateList.load(partitioned.current_crl(other_ca, f"{key}-p1"))
    assert _idp_url(listing) == scope_url(PUBLIC_URL, other_ca, f"{key}-p1")
    assert {f"{other_ca}/p1", f"{other_ca}/{key}-p1"} <= set(partitioned.refresh_crls())
    partitioned.revoke(old[-1].serial, "keyCompromise")  # signed by the old key, listed by its old partition
    assert old[-1].certificate.serial_number in _serials(
        crl.CertificateList.load(partitioned.current_crl(other_ca, "p1"))
    )


def _scope_of(item: IssuedCertificate, ca_name: str) -> str:
    base = f"{PUBLIC_URL}/v1/cas/{ca_name}/crl"
    return _dp(item.certificate)[len(base) + 1 :]


def _ca_issuers(cert: x509.Certificate) -> str:
    found = [d["access_location"].native for d in cert.authority_information_access_value
             if d["access_method"].native == "ca_issuers"]  # fmt: skip
    assert len(found) == 1
    url: str = found[0]
    return url
