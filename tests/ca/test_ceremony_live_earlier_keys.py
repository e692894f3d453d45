"""`move_offline` refuses a rolled-over root whose earlier key still has unexpired certificates (review
finding 3): offline, only the current key's CRL is refreshed, so the earlier key's CRL — covering the CAs
and the link it certified before the rollover — would go stale. 409 `ca_has_live_earlier_keys`, nothing
changed, the key still online."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from api.context import Context
from ca.ceremony_home import CeremonyHome, LiveEarlierKeys, move_offline
from ca.rollover import roll_over
from keys.custody import KeyAlgorithm
from tests.fixtures import table_snapshot


def test_a_rolled_over_root_with_live_earlier_keys_does_not_move_offline(context: Context, tmp_path: Path) -> None:
    name = f"tmp-root-{secrets.token_hex(3)}-p256"
    context.ca.create_ca(
        name,
        algorithm=KeyAlgorithm.P256,
        subject={"country_name": "CN", "organization_name": "trustseal test", "common_name": f"{name} Root"},
        ca_profile="root-ca",
        actor="test",
    )
    roll_over(context.ca, name, actor="test")  # the old key signed a link and its OCSP signer: both unexpired
    raw = getattr(context.custody, "inner", context.custody)
    home = CeremonyHome.open(tmp_path / "home", "ceremony-" + secrets.token_hex(8), create=True, online=None)
    before = table_snapshot(context.db)
    versions = [v.ref for v in raw.versions(name)]
    with pytest.raises(LiveEarlierKeys) as refused:
        move_offline(context.ca, raw, name, home, "test-ceremony", context.verification.publisher)
    assert refused.value.code == "ca_has_live_earlier_keys" and refused.value.status == 409
    assert f"{name}@1" in refused.value.detail
    assert table_snapshot(context.db) == before
    assert [v.ref for v in raw.versions(name)] == versions and not context.ca.snapshot().get(name).offline
    assert name not in home.keystore.names()
