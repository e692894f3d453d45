from ca.authority import CertificateAuthorityService
from tests.fixtures import ORG_SUBJECT, make_csr


def test_issue_and_revoke(ca_service: CertificateAuthorityService, tmp_path) -> None:  # type: ignore[no-untyped-def]
    issued = ca_service.issue(make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT), "org-seal", "cn-370000-sm2")
    assert len(issued.chain) == 2
    row = ca_service.revoke(issued.serial, "keyCompromise")
    assert row.status == "revoked"
