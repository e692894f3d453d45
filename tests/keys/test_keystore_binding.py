"""The local keystore binds each wrapped key to every field of its entry (format 2), and migrates
format-1 keystores, written here byte for byte the way the previous version wrote them."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest

from gm import sm2
from keys import material
from keys.custody import CustodyError, KeyAlgorithm, KeyTampered
from keys.local import LocalKeystore
from keys.wrapping import derive_kek, unwrap, wrap
from tests.keys.unwrap import stored_binding

PASSPHRASE = "binding"


def _store(root: Path) -> LocalKeystore:
    return LocalKeystore(root, passphrase=PASSPHRASE, scrypt_n=2**10)


def _edit(path: Path, number: int, **fields: Any) -> None:
    data = json.loads(path.read_text())
    entry = next(e for e in data["versions"] if e["version"] == number)
    entry.update(fields)
    path.write_text(json.dumps(data))


def test_swapped_public_key_is_refused(tmp_path: Path) -> None:
    """A CA asked to certify `cn-root-sm2`'s new key must never read someone else's public key."""
    store = _store(tmp_path)
    store.create("ca-key", KeyAlgorithm.SM2)
    attacker = base64.b64encode(sm2.SM2PrivateKey.generate().public_key.spki_der()).decode()
    _edit(tmp_path / "ca-key.key.json", 1, public_key=attacker)
    for view in (store, _store(tmp_path)):  # this process (file changed under it) and a fresh one
        with pytest.raises(KeyTampered, match="public key, enabled flag"):
            view.get("ca-key")
        with pytest.raises(KeyTampered):
            view.signer("ca-key@1")
        with pytest.raises(KeyTampered):
            view.versions("ca-key")


def test_flipped_enabled_flag_is_refused(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.create("seal-key", KeyAlgorithm.SM2)
    store.rotate("seal-key")
    store.disable("seal-key", 1)  # a legitimate disable rewraps under the new flag
    assert [v.enabled for v in _store(tmp_path).versions("seal-key")] == [False, True]
    path = tmp_path / "seal-key.key.json"
    _edit(path, 1, enabled=True)  # an attacker brings the retired key back
    with pytest.raises(KeyTampered):
        _store(tmp_path).signer("seal-key@1")
    with pytest.raises(KeyTampered):
        _store(tmp_path).get("seal-key")
    _edit(path, 1, enabled=False)  # put back: the file opens again
    _edit(path, 2, enabled=False)  # and the other way round: a live key switched off by hand
    with pytest.raises(KeyTampered):
        _store(tmp_path).get("seal-key@2")


@pytest.mark.parametrize(
    "change",
    [{"version": 3}, {"created_at": "2020-01-01T00:00:00+00:00"}, {"enabled": 1}],
    ids=["version", "created_at", "enabled-as-int"],
)
def test_every_bound_field(tmp_path: Path, change: dict[str, Any]) -> None:
    store = _store(tmp_path)
    store.create("k", KeyAlgorithm.P256)
    _edit(tmp_path / "k.key.json", 1, **change)
    with pytest.raises(KeyTampered):
        _store(tmp_path).versions("k")


def test_mac_keys_are_bound_too(tmp_path: Path) -> None:
    store = _store(tmp_path)
    store.create("pii", KeyAlgorithm.HMAC_SM3)
    store.rotate("pii")
    store.disable("pii", 1)
    _edit(tmp_path / "pii.key.json", 1, enabled=True)
    with pytest.raises(KeyTampered):
        _store(tmp_path).mac("pii@1")


def _format1(root: Path, keys: dict[str, str]) -> dict[str, bytes]:
    """A keystore as the previous version wrote it: header format 1, check value under AD b"check",
    each private key wrapped under AD `trustseal-key|name|version|algorithm`. Returns the secrets."""
    root.mkdir(mode=0o700)
    salt = os.urandom(16)
    kek = derive_kek(PASSPHRASE, salt, 2**10, 8, 1)
    header = {"format": 1, "kdf": "scrypt", "salt": base64.b64encode(salt).decode(), "n": 2**10, "r": 8, "p": 1}
    header["check"] = base64.b64encode(wrap(kek, b"trustseal keystore v1", b"check")).decode()
    (root / "keystore.json").write_text(json.dumps(header, indent=1))
    secrets: dict[str, bytes] = {}
    for name, algorithm in keys.items():
        versions = []
        for number, enabled in ((1, False), (2, True)):
            secret = material.generate(algorithm)
            secrets[f"{name}@{number}"] = secret.secret_bytes()
            aad = f"trustseal-key|{name}|{number}|{algorithm}".encode()
            versions.append(
                {
                    "version": number,
                    "created_at": "2026-11-01T00:00:00+00:00",
                    "enabled": enabled,
                    "public_key": base64.b64encode(secret.public_key_der()).decode(),
                    "wrapped": base64.b64encode(wrap(kek, secret.secret_bytes(), aad)).decode(),
                }
            )
        (root / f"{name}.key.json").write_text(
            json.dumps({"name": name, "algorithm": algorithm, "versions": versions}, indent=1)
        )
    return secrets


def test_format1_keystore_is_migrated_on_open(tmp_path: Path) -> None:
    root = tmp_path / "ks"
    secrets = _format1(root, {"cn-root-sm2": "sm2", "tsa-p256": "p256", "pii-key": "hmac-sm3"})
    store = _store(root)
    header = json.loads((root / "keystore.json").read_text())
    assert header["format"] == 2
    kek = derive_kek(PASSPHRASE, base64.b64decode(header["salt"]), 2**10, 8, 1)
    for name, algorithm in (("cn-root-sm2", "sm2"), ("tsa-p256", "p256"), ("pii-key", "hmac-sm3")):
        data = json.loads((root / f"{name}.key.json").read_text())
        assert data["format"] == 2
        for entry in data["versions"]:  # the same private key, now under the format-2 binding
            wrapped = base64.b64decode(entry["wrapped"])
            assert unwrap(kek, wrapped, stored_binding(name, algorithm, entry)) == secrets[f"{name}@{entry['version']}"]
        assert [v.enabled for v in store.versions(name)] == [False, True]
    signature = store.signer("cn-root-sm2").sign(b"after the migration")
    assert sm2.SM2PublicKey.from_spki(store.get("cn-root-sm2").public_key_der).verify(signature, b"after the migration")
    _edit(root / "cn-root-sm2.key.json", 1, enabled=True)  # and the flag is bound from now on
    with pytest.raises(KeyTampered):
        _store(root).signer("cn-root-sm2@1")


def test_format1_keystore_with_a_swapped_public_key_is_not_migrated(tmp_path: Path) -> None:
    root = tmp_path / "ks"
    _format1(root, {"cn-root-sm2": "sm2"})
    other = base64.b64encode(sm2.SM2PrivateKey.generate().public_key.spki_der()).decode()
    _edit(root / "cn-root-sm2.key.json", 2, public_key=other)
    before = {p.name: p.read_bytes() for p in root.iterdir()}
    with pytest.raises(KeyTampered, match="not the key's own"):
        _store(root)
    assert json.loads((root / "keystore.json").read_text())["format"] == 1
    assert {p.name: p.read_bytes() for p in root.iterdir() if p.name != ".lock"} == before


def test_no_downgrade_to_format1(tmp_path: Path) -> None:
    root = tmp_path / "ks"
    _store(root).create("k", KeyAlgorithm.SM2)
    header = json.loads((root / "keystore.json").read_text())
    header["format"] = 1  # relabelled: the check value is bound to format 2
    (root / "keystore.json").write_text(json.dumps(header))
    with pytest.raises(CustodyError):
        _store(root)
    header["format"] = 2
    (root / "keystore.json").write_text(json.dumps(header))
    path = root / "k.key.json"
    data = json.loads(path.read_text())
    data["format"] = 1  # a key file written in the old format into a migrated keystore
    path.write_text(json.dumps(data))
    with pytest.raises(KeyTampered, match="not in format 2"):
        _store(root).get("k")
