"""A CA key whose stored public key was swapped on disk is refused at the next signature (503
`key_tampered`), even though a signing handle was cached: nothing is issued, nothing recorded."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.context import Context
from gm import sm2
from keys.local import LocalKeystore
from store.models import Certificate, Event
from tests.fixtures import ORG_SUBJECT, make_csr

CA = "cn-370000-sm2"


def _counts(context: Context) -> tuple[int, int]:
    with context.db.session() as session:
        return (session.scalar(select(func.count()).select_from(Certificate)) or 0,
                session.scalar(select(func.count()).select_from(Event)) or 0)  # fmt: skip


def test_a_swapped_ca_public_key_stops_issuance(
    client: TestClient, context: Context, officer: dict[str, str], tmp_path: Path
) -> None:
    keystore = getattr(context.custody, "inner", context.custody)  # behind ledger/key_events.py's wrapper
    assert isinstance(keystore, LocalKeystore)
    body = {"csr_pem": make_csr(tmp_path, algorithm="sm2", subject=ORG_SUBJECT).decode(), "profile": "org-seal",
            "ca": CA}  # fmt: skip
    assert client.post("/v1/certificates", json=body, headers=officer).status_code == 201  # handle now cached
    path = keystore.root / f"{CA}.key.json"
    original = path.read_text()
    data = json.loads(original)
    data["versions"][-1]["public_key"] = base64.b64encode(sm2.SM2PrivateKey.generate().public_key.spki_der()).decode()
    path.write_text(json.dumps(data))
    before = _counts(context)
    try:
        response = client.post("/v1/certificates", json=body, headers=officer)
        assert response.status_code == 503 and response.json()["code"] == "key_tampered", response.text
        assert _counts(context) == before
    finally:
        path.write_text(original)
    assert client.post("/v1/certificates", json=body, headers=officer).status_code == 201
