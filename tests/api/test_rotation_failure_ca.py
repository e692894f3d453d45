"""A CA rollover or OCSP-signer rotation that fails after custody made its key versions (ca/rollover.py, both
under keys/rotation.py `provisional_version`), and the approvals sweep after a `key.rotate` of a CA whose run
died there: no version is left enabled but uncertified, neither of the CA key nor of `<ca>.ocsp`, so what
each bare name resolves to is still the certified version in use."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

import ca.rollover as rollover
from api.context import Context
from api.keys import rotate
from api.operations import sweep
from keys.custody import KeyAlgorithm
from tests.api.test_approvals_sweep import NOW, _row, _stuck


def _ca(context: Context) -> str:
    name = f"rf-{secrets.token_hex(3)}-p256"
    context.ca.create_ca(
        name,
        algorithm=KeyAlgorithm.P256,
        subject={"country_name": "CN", "organization_name": "trustseal", "common_name": name},
        ca_profile="regional-ca",
        parent="cn-root-p256",
        region_code="440000",
    )
    return name


def _enabled(context: Context, name: str) -> list[int]:
    return [v.version for v in context.custody.versions(name) if v.enabled]


def _boom(*_: Any, **__: Any) -> Any:
    raise RuntimeError("database gone")


def test_a_rollover_whose_draft_fails_leaves_no_enabled_uncertified_version(
    context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = _ca(context)
    certified = context.custody.get(ca)
    monkeypatch.setattr(rollover, "_draft", _boom)
    with pytest.raises(RuntimeError):
        rotate(context, {"key": ca}, "token:officer-a")

    assert len(context.custody.versions(ca)) == 2 and len(context.custody.versions(f"{ca}.ocsp")) == 2  # made
    assert _enabled(context, ca) == [1] and _enabled(context, f"{ca}.ocsp") == [1]
    assert context.custody.get(ca).ref == certified.ref


def test_an_ocsp_signer_rotation_whose_certification_fails_leaves_no_enabled_uncertified_version(
    context: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = _ca(context)
    certified = context.custody.get(f"{ca}.ocsp")
    monkeypatch.setattr(context.ca, "provision_ocsp_signer", _boom)
    with pytest.raises(RuntimeError):
        rotate(context, {"key": f"{ca}.ocsp"}, "token:officer-a")

    assert len(context.custody.versions(f"{ca}.ocsp")) == 2
    assert _enabled(context, f"{ca}.ocsp") == [1]
    assert context.custody.get(f"{ca}.ocsp").ref == certified.ref


def test_the_sweep_disables_both_versions_an_interrupted_ca_rollover_made(context: Context) -> None:
    ca = _ca(context)
    approval_id = _stuck(context, "key.rotate", {"key": ca}, NOW)
    raw = getattr(context.custody, "inner", context.custody)
    made, made_ocsp = raw.rotate(ca), raw.rotate(f"{ca}.ocsp")  # the run died before the switch committed

    assert sweep(context, NOW)[approval_id] == "failed"
    assert (_row(context, approval_id).error or {})["code"] == "interrupted"
    assert made.version not in _enabled(context, ca) and made_ocsp.version not in _enabled(context, f"{ca}.ocsp")
    assert context.custody.get(ca).version == 1 and context.custody.get(f"{ca}.ocsp").version == 1
