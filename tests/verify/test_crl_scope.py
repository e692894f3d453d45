"""Which certificates a CRL speaks about (RFC 5280 §5.2.5): verify/crl_scope.py `covers` (the full path's
own readers of CRL entries) and verify/x509_fast.py (the fast path), on lists with and without an
issuingDistributionPoint, against certificates whose distribution point names it or another."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asn1crypto import crl, x509

from ca import certificates as certs
from verify import x509_fast
from verify.crl_scope import covers

URL = "http://127.0.0.1:8000/v1/cas/cn-370000-sm2/crl/p2"
OTHER = "http://127.0.0.1:8000/v1/cas/cn-370000-sm2/crl/p1"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
RELATIVE = {"type": "common_name", "value": x509.DirectoryString(name="utf8_string", value="p2")}


def _uri(url: str) -> x509.GeneralName:
    return x509.GeneralName(name="uniform_resource_identifier", value=url)


def _cert(point: str | None, ca: bool = False) -> x509.Certificate:
    extensions: list[Any] = []
    if point is not None:
        points = x509.CRLDistributionPoints([{"distribution_point": {"full_name": [_uri(point)]}}])
        extensions.append(certs.extension("crl_distribution_points", points))
    if ca:
        extensions.append(certs.extension("basic_constraints", x509.BasicConstraints({"ca": True}), critical=True))
    tbs = x509.TbsCertificate({
        "version": "v3", "serial_number": 5, "signature": {"algorithm": "sha256_ecdsa"},
        "issuer": x509.Name.build({"common_name": "CA"}),
        "validity": {"not_before": certs.to_time(NOW), "not_after": certs.to_time(NOW + timedelta(days=1))},
        "subject": x509.Name.build({"common_name": "leaf"}),
        "subject_public_key_info": {"algorithm": {"algorithm": "ec", "parameters": ("named", "secp256r1")},
                                    "public_key": b"\x04" + bytes(64)},
        "extensions": extensions or None,
    })  # fmt: skip
    return x509.Certificate({"tbs_certificate": tbs, "signature_algorithm": {"algorithm": "sha256_ecdsa"},
                             "signature_value": b"\x00" * 8})  # fmt: skip


def _crl(idp: dict[str, Any] | None, critical: bool = True, delta: bool = False) -> crl.CertificateList:
    extensions: list[dict[str, Any]] = [{"extn_id": "crl_number", "extn_value": 1}]
    if idp is not None:
        extensions.append({"extn_id": "issuing_distribution_point", "critical": critical, "extn_value": idp})
    if delta:
        extensions.append({"extn_id": "delta_crl_indicator", "critical": True, "extn_value": 1})
    tbs = crl.TbsCertList({
        "version": "v2", "signature": {"algorithm": "sha256_ecdsa"}, "issuer": x509.Name.build({"common_name": "CA"}),
        "this_update": certs.to_time(NOW), "next_update": certs.to_time(NOW + timedelta(days=1)),
        "revoked_certificates": [{"user_certificate": 5, "revocation_date": certs.to_time(NOW)}],
        "crl_extensions": extensions,
    })  # fmt: skip
    listing = crl.CertificateList({"tbs_cert_list": tbs, "signature_algorithm": {"algorithm": "sha256_ecdsa"},
                                   "signature": b"\x00" * 8})  # fmt: skip
    return crl.CertificateList.load(listing.dump())


def _point(url: str) -> dict[str, Any]:
    return {"distribution_point": {"full_name": [_uri(url)]}}


def _fast_covers(listing: crl.CertificateList, cert: x509.Certificate) -> bool:
    """The fast path's reading: a list in scope, or not (x509_fast.Unsupported: declined)."""
    view = x509_fast.crl(listing.dump())
    points = x509_fast.certificate(cert.dump()).crl_points
    return view.scope is None or any(view.scope & names for names in points)


@pytest.mark.parametrize(
    ("idp", "point", "expected"),
    [
        (None, URL, True),  # no IDP: a complete list for every certificate of its issuer
        (_point(URL), URL, True),
        (_point(URL), OTHER, False),  # another partition's list
        (_point(URL), None, False),  # a certificate naming no distribution point
    ],
)
def test_both_readers_agree_on_partition_lists(idp: dict[str, Any] | None, point: str | None, expected: bool) -> None:
    listing, cert = _crl(idp), _cert(point)
    assert covers(listing, cert) is expected
    assert _fast_covers(listing, cert) is expected


@pytest.mark.parametrize(
    "idp",
    [
        {**_point(URL), "only_contains_user_certs": True},
        {**_point(URL), "indirect_crl": True},
        {**_point(URL), "only_some_reasons": {"key_compromise"}},
        {"only_contains_user_certs": True},
        {"distribution_point": {"name_relative_to_crl_issuer": [RELATIVE]}},
    ],
)
def test_other_idp_shapes_are_left_to_the_full_path(idp: dict[str, Any]) -> None:
    with pytest.raises(x509_fast.Unsupported):
        x509_fast.crl(_crl(idp).dump())


def test_flags_and_deltas_narrow_what_covers_says() -> None:
    user, ca = _cert(URL), _cert(URL, ca=True)
    only_users = _crl({**_point(URL), "only_contains_user_certs": True})
    assert covers(only_users, user) and not covers(only_users, ca)
    only_cas = _crl({"only_contains_ca_certs": True})
    assert covers(only_cas, ca) and not covers(only_cas, user)
    assert not covers(_crl({**_point(URL), "indirect_crl": True}), user)
    assert not covers(_crl({**_point(URL), "only_some_reasons": {"key_compromise"}}), user)
    assert not covers(_crl(None, delta=True), user)
    with pytest.raises(x509_fast.Unsupported):
        x509_fast.crl(_crl(None, delta=True).dump())
