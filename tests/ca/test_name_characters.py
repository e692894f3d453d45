"""Names the CA certifies without a profile obey the character rule too (issue 12): another hierarchy's
root with a right-to-left override in its subject is not cross-certified, and no CA is created with one."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from ca.authority import CertificateAuthorityService
from ca.errors import NameNotAllowed
from keys.custody import KeyNotFound
from store.models import Certificate, CertificateAuthority, Event
from tests.fixtures import openssl

RLO = "\u202e"


def _counts(service: CertificateAuthorityService) -> tuple[int, ...]:
    with service.db.session() as session:
        return tuple(
            session.scalar(select(func.count()).select_from(table)) or 0
            for table in (Certificate, CertificateAuthority, Event)
        )


def test_a_foreign_root_with_a_bidi_override_is_not_cross_certified(
    ca_service: CertificateAuthorityService, tmp_path: Path
) -> None:
    subject = f"/C=CN/O=Foreign{RLO}toor/CN=Foreign Root"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "r.key",
            "-utf8", "-subj", subject, "-addext", "basicConstraints=critical,CA:TRUE", "-outform", "DER",
            "-out", "r.der", "-days", "30", cwd=tmp_path)  # fmt: skip
    before = _counts(ca_service)
    with pytest.raises(NameNotAllowed) as refused:
        ca_service.cross_certify("cn-root-p256", (tmp_path / "r.der").read_bytes())
    assert refused.value.code == "name_character_forbidden" and RLO not in refused.value.detail
    assert _counts(ca_service) == before


def test_no_ca_is_created_with_a_control_character(ca_service: CertificateAuthorityService) -> None:
    before = _counts(ca_service)
    with pytest.raises(NameNotAllowed) as refused:
        ca_service.create_ca(
            "cn-379901-p256",
            algorithm="p256",  # type: ignore[arg-type]
            subject={"country_name": "CN", "organization_name": "Test", "common_name": "Region\u200bCA"},
            ca_profile="regional-ca",
            parent="cn-root-p256",
        )
    assert refused.value.code == "name_character_forbidden"
    assert _counts(ca_service) == before
    with pytest.raises(KeyNotFound):  # no key was made for it either
        ca_service.custody.get("cn-379901-p256")
