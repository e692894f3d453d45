"""The name policy over the API (issue 12): every name the issue saw issued is refused with its code,
from real CSRs made by the OpenSSL CLI, and a refusal writes nothing (no certificate, no event, no CRL).
Who may name which organisation: officers any valid USCC, an issuer token only its seals' USCCs."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.auth import create_token
from api.context import Context
from api.problems import PROBLEM_JSON
from policies.uscc import check_character
from seal.service import SealRequest
from store.models import CRL, Certificate, Event
from tests.fixtures import make_csr

CA = "cn-370000-sm2"
OWN_USCC = "11370000MB00000015"  # the organisation whose seal the issuer applies
BANK_USCC = "91110000100000000" + check_character("91110000100000000")  # someone else's, valid
RLO = "\u202e"


@pytest.fixture(scope="module")
def issuers(context: Context) -> dict[str, dict[str, str]]:
    """`bound`: an issuer named by a seal of OWN_USCC; `stranger`: an issuer no seal names."""
    context.seals.create(
        SealRequest(
            name="济南市市场监督管理局",
            organisation_name="济南市市场监督管理局",
            organisation_uscc=OWN_USCC,
            ca=CA,
            allowed_callers=("names-bound-issuer",),
            seal_id="names-policy-seal",
        ),
        actor="test",
    )
    return {
        "bound": {"Authorization": f"Bearer {create_token(context.db, 'issuer', 'names-bound-issuer')}"},
        "stranger": {"Authorization": f"Bearer {create_token(context.db, 'issuer', 'names-stranger')}"},
    }


def _counts(context: Context) -> tuple[int, int, int]:
    with context.db.session() as session:
        return tuple(  # type: ignore[return-value]
            session.scalar(select(func.count()).select_from(table)) or 0 for table in (Certificate, Event, CRL)
        )


def _request(
    client: TestClient, headers: dict[str, str], tmp_path: Path, profile: str, subject: str, san: str | None
) -> object:
    extra = ["-utf8"] + (["-addext", f"subjectAltName={san}"] if san else [])
    csr = make_csr(tmp_path, algorithm="sm2", subject=subject, extra=extra)
    return client.post(
        "/v1/certificates", json={"csr_pem": csr.decode(), "profile": profile, "ca": CA}, headers=headers
    )


def _refused(response: object, status: int, code: str) -> None:
    from httpx import Response

    assert isinstance(response, Response)
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_JSON)
    assert response.json()["code"] == code
    assert RLO not in response.text  # the offending character is described, never echoed


PERSON = "/C=CN/CN=Zhang San"
SERVER = "/C=CN/O=Platform"
CLIENT = "/C=CN/O=Bank/CN=bank-gateway"

REFUSED = [
    # what the issue saw issued
    ("tls-server", SERVER, "DNS:*", "wildcard_not_allowed"),
    ("tls-server", SERVER, "DNS:*.gov.cn", "wildcard_not_allowed"),
    ("tls-server", SERVER, "IP:0.0.0.0", "ip_not_allowed"),
    ("tls-server", SERVER, "URI:javascript:alert(document.domain)", "san_type_not_allowed"),
    ("tls-client", CLIENT, "URI:javascript:alert(document.domain)", "uri_not_allowed"),
    ("person", PERSON, "IP:10.1.2.3", "san_type_not_allowed"),
    ("person", PERSON, "IP:202.96.134.133", "san_type_not_allowed"),
    ("person", f"/C=CN/CN=invoice{RLO}fdp.exe", "email:zhang.san@example.cn", "name_character_forbidden"),
    # neighbours of those
    ("tls-server", SERVER, "DNS:*.com", "wildcard_not_allowed"),
    ("tls-server", SERVER, "DNS:*.github.io", "wildcard_not_allowed"),
    ("tls-server", SERVER, "DNS:www*.example.gov.cn", "wildcard_not_allowed"),
    ("tls-client", CLIENT, "DNS:*.example.cn", "wildcard_not_allowed"),
    ("tls-server", SERVER, "DNS:gov.cn", "dns_name_invalid"),
    ("tls-server", SERVER, "DNS:WWW.example.cn", "dns_name_invalid"),
    ("tls-server", SERVER, "DNS:intranet.local", "dns_name_invalid"),
    ("tls-server", SERVER, "DNS:bad_label.example.cn", "dns_name_invalid"),
    ("tls-server", SERVER, "DNS:xn--zz.example.cn", "dns_name_invalid"),
    ("tls-server", SERVER, "DNS:a..example.cn", "dns_name_invalid"),
    ("tls-server", SERVER, f"DNS:www{RLO}.example.cn", "name_character_forbidden"),
    ("tls-server", SERVER, "IP:127.0.0.1", "ip_not_allowed"),
    ("tls-server", SERVER, "IP:192.168.1.10", "ip_not_allowed"),
    ("tls-server", SERVER, "IP:224.0.0.251", "ip_not_allowed"),
    ("tls-server", SERVER, "IP:::", "ip_not_allowed"),
    ("tls-server", SERVER, "IP:::ffff:10.0.0.1", "ip_not_allowed"),
    ("tls-server", SERVER, "RID:1.2.3.4", "san_type_not_allowed"),
    ("tls-server", SERVER, "otherName:1.3.6.1.4.1.311.20.2.3;UTF8:admin@example.cn", "san_type_not_allowed"),
    ("tls-server", "/C=CN/CN=*.gov.cn", "DNS:www.example.gov.cn", "common_name_not_in_san"),
    ("tls-client", CLIENT, "URI:http://gw.example.cn/", "uri_not_allowed"),
    ("tls-client", CLIENT, "URI:https://admin@gw.example.cn/", "uri_not_allowed"),
    ("tls-client", CLIENT, "URI:https://gw.example.cn/%E2%80%AEfdp.exe", "name_character_forbidden"),
    ("person", PERSON, "DNS:zhang.example.cn", "san_type_not_allowed"),
    ("person", PERSON, "email:zhang san@example.cn", "email_invalid"),
    ("person", PERSON, "email:zhang@gov.cn", "email_invalid"),
    ("person", f"/C=CN/O=Jinan{RLO}moc.example/CN=Zhang San", None, "name_character_forbidden"),
    ("person", "/C=CN/CN=Zhang\u200bSan", None, "name_character_forbidden"),
    ("person", "/C=CN/CN=Zhang\u2066San\u2069", None, "name_character_forbidden"),
    ("person", "/C=CN/CN=Zhang\u200fSan", None, "name_character_forbidden"),
]


@pytest.mark.parametrize(
    ("profile", "subject", "san", "code"), REFUSED, ids=[f"{r[0]}:{r[2] or r[1]}" for r in REFUSED]
)
def test_names_the_issue_lists_are_refused_and_nothing_is_written(
    client: TestClient,
    context: Context,
    officer: dict[str, str],
    tmp_path: Path,
    profile: str,
    subject: str,
    san: str | None,
    code: str,
) -> None:
    before = _counts(context)
    _refused(_request(client, officer, tmp_path, profile, subject, san), 400, code)
    assert _counts(context) == before


ACCEPTED = [
    ("tls-server", "/C=CN/CN=*.example.gov.cn", "DNS:*.example.gov.cn,DNS:example.gov.cn,IP:202.96.134.133"),
    ("tls-server", SERVER, "DNS:xn--55qx5d.xn--fiqs8s,IP:2400:da00::6666"),  # 公司.中国 as an A-label
    ("tls-client", CLIENT, "DNS:gw.bank.example.cn,URI:https://gw.bank.example.cn:8443/api"),
    ("person", "/C=CN/CN=张三/serialNumber=370102199001011234", "email:zhang.san@example.cn"),
]


@pytest.mark.parametrize(("profile", "subject", "san"), ACCEPTED, ids=[f"{a[0]}:{a[2]}" for a in ACCEPTED])
def test_good_names_are_issued_as_asked(
    client: TestClient, officer: dict[str, str], tmp_path: Path, profile: str, subject: str, san: str
) -> None:
    response = _request(client, officer, tmp_path, profile, subject, san)
    assert response.status_code == 201, response.text  # type: ignore[attr-defined]


def test_an_issuer_names_only_its_own_organisation(
    client: TestClient, context: Context, officer: dict[str, str], issuers: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    bank = f"/C=CN/O=Some Bank/organizationIdentifier={BANK_USCC}/CN=Some Bank Seal"
    own = f"/C=CN/O=Jinan Market Regulation Bureau/organizationIdentifier={OWN_USCC}/CN=Jinan Bureau Seal"
    before = _counts(context)
    _refused(_request(client, issuers["bound"], tmp_path, "org-seal", bank, None), 403, "uscc_not_permitted")
    _refused(_request(client, issuers["stranger"], tmp_path, "org-seal", own, None), 403, "uscc_not_permitted")
    _refused(_request(client, issuers["bound"], tmp_path, "person", PERSON, None), 403, "uscc_not_permitted")
    _refused(
        _request(client, issuers["bound"], tmp_path, "tls-server", SERVER, "DNS:www.example.gov.cn"),
        403,
        "uscc_not_permitted",
    )
    assert _counts(context) == before
    mine = _request(client, issuers["bound"], tmp_path, "org-seal", own, None)
    assert mine.status_code == 201, mine.text  # type: ignore[attr-defined]
    client_cert = _request(client, issuers["bound"], tmp_path, "tls-client", own, "DNS:gw.example.cn")
    assert client_cert.status_code == 201, client_cert.text  # type: ignore[attr-defined]
    # an officer vets organisations: any USCC with a correct check character
    assert _request(client, officer, tmp_path, "org-seal", bank, None).status_code == 201  # type: ignore[attr-defined]
    wrong_check = bank.replace(BANK_USCC, BANK_USCC[:-1] + ("0" if BANK_USCC[-1] != "0" else "1"))
    _refused(_request(client, officer, tmp_path, "org-seal", wrong_check, None), 400, "subject_not_allowed")


def test_a_revoked_seal_binds_its_issuer_no_longer(
    client: TestClient, context: Context, issuers: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    uscc = "91370100" + "MA3C00002"
    uscc += check_character(uscc)
    context.seals.create(
        SealRequest(name="临时", organisation_name="临时公司", organisation_uscc=uscc, ca=CA,
                    allowed_callers=("names-bound-issuer",), seal_id="names-policy-revoked"),
        actor="test",
    )  # fmt: skip
    subject = f"/C=CN/O=Temp Co/organizationIdentifier={uscc}/CN=Temp Co Seal"
    assert _request(client, issuers["bound"], tmp_path, "org-seal", subject, None).status_code == 201  # type: ignore[attr-defined]
    context.seals.transition("names-policy-revoked", "revoked", "test", actor="test")
    _refused(_request(client, issuers["bound"], tmp_path, "org-seal", subject, None), 403, "uscc_not_permitted")
