"""build_crl DER-assembles each revoked entry (ca/revocation.py `entry_der`: asn1crypto's construction was
nearly all of a 10⁵-entry CRL's time, bench/bench_crl.py); its bytes must stay exactly those of the plain
asn1crypto construction, entry extensions, times after 2050 and the partition IDP included."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import crl as asn1_crl
from asn1crypto import x509
from hypothesis import given, settings
from hypothesis import strategies as st

from ca import revocation as rev
from ca.certificates import signature_algorithm, to_time
from keys.custody import KeyAlgorithm
from tests.fixtures import openssl

NOW = datetime(2026, 12, 2, 8, 0, 0, tzinfo=UTC)


class _Fixed:
    """A stand-in signer: the comparison is of the to-be-signed bytes, not of a signature."""

    algorithm = KeyAlgorithm.SM2

    def sign(self, data: bytes) -> bytes:
        return b"\x30\x06\x02\x01\x01\x02\x01\x01"


def _issuer(tmp: Path) -> x509.Certificate:
    der = openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                  "-subj", "/CN=crl test", "-keyout", str(tmp / "k.pem"), "-outform", "DER").stdout  # fmt: skip
    return x509.Certificate.load(der)


def _plain(issuer: x509.Certificate, entries: list[rev.RevokedEntry], point: str | None = None) -> bytes:
    """The same CRL built in one asn1crypto construction, as the code did before."""
    items = []
    for e in entries:
        item: dict[str, object] = {"user_certificate": e.serial, "revocation_date": to_time(e.revoked_at)}
        extensions: list[dict[str, object]] = []
        if e.reason != "unspecified":
            extensions.append({"extn_id": "crl_reason", "extn_value": e.reason})
        if e.invalidity_date is not None:
            extensions.append({"extn_id": "invalidity_date", "extn_value": e.invalidity_date.replace(microsecond=0)})
        if extensions:
            item["crl_entry_extensions"] = extensions
        items.append(item)
    algorithm = signature_algorithm(KeyAlgorithm.SM2)
    fields: dict[str, object] = {
        "version": "v2",
        "signature": algorithm,
        "issuer": issuer.subject,
        "this_update": to_time(NOW),
        "next_update": to_time(NOW + timedelta(days=1)),
        "crl_extensions": [
            {"extn_id": "crl_number", "extn_value": 3},
            {"extn_id": "authority_key_identifier", "extn_value": {"key_identifier": issuer.key_identifier}},
        ],
    }
    if point is not None:
        uri = x509.GeneralName(name="uniform_resource_identifier", value=point)
        fields["crl_extensions"].append(  # type: ignore[attr-defined]
            {"extn_id": "issuing_distribution_point", "critical": True,
             "extn_value": {"distribution_point": {"full_name": [uri]}}}
        )  # fmt: skip
    if items:
        fields["revoked_certificates"] = items
    tbs = asn1_crl.TbsCertList(fields)
    return asn1_crl.CertificateList(
        {"tbs_cert_list": tbs, "signature_algorithm": algorithm, "signature": _Fixed().sign(b"")}
    ).dump()


MOMENTS = st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2080, 12, 31), timezones=st.just(UTC))
entry = st.builds(
    rev.RevokedEntry,
    serial=st.integers(min_value=1, max_value=2**159),
    revoked_at=st.one_of(st.just(NOW), MOMENTS),  # UTCTime before 2050, GeneralizedTime from then on
    reason=st.sampled_from(rev.REASONS),
    invalidity_date=st.one_of(st.none(), st.just(NOW - timedelta(days=3, microseconds=5)), MOMENTS),
)


def test_entries_encode_exactly_as_before(tmp_path: Path) -> None:
    issuer = _issuer(tmp_path)

    @settings(max_examples=60, deadline=None)
    @given(st.lists(entry, max_size=30), st.one_of(st.none(), st.just("http://127.0.0.1:8000/v1/cas/x/crl/p3")))
    def check(entries: list[rev.RevokedEntry], point: str | None) -> None:
        built = rev.build_crl(
            issuer=issuer, signer=_Fixed(), number=3, this_update=NOW,  # type: ignore[arg-type]
            next_update=NOW + timedelta(days=1), revoked=entries, distribution_point=point,
        ).dump()  # fmt: skip
        assert built == _plain(issuer, entries, point)

    check()
