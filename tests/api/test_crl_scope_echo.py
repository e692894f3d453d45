"""Unknown CRL scopes and CA names on the public CA endpoints are refused without reflecting what was
sent (review finding 5: a 60 KB scope came back whole in the problem detail)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from ca.errors import SHOWN_CHARS

HUGE = "k" + "9" * 60_000


def test_a_huge_unknown_scope_or_ca_name_is_not_echoed(client: TestClient) -> None:
    for path, code in (
        (f"/v1/cas/cn-370000-p256/crl/{HUGE}", "unknown_crl_scope"),
        (f"/v1/cas/cn-370000-p256/certificate/{HUGE}", "unknown_crl_scope"),
        (f"/v1/cas/{HUGE}/crl", "unknown_ca"),
    ):
        response = client.get(path)
        assert response.status_code == 404, response.text[:300]
        problem = response.json()
        assert problem["code"] == code
        assert len(response.content) < 1_000 and len(problem["detail"]) < 2 * SHOWN_CHARS + 60, problem["detail"]
        assert "60001 characters" in problem["detail"]
    short = client.get("/v1/cas/cn-370000-p256/crl/k999").json()
    assert short["code"] == "unknown_crl_scope" and "'k999'" in short["detail"]
