"""The Vault / OpenBao keystore accepts only a `derived`, non-exportable AEAD Transit key: a real
OpenBao dev server shows why (a non-derived key ignores the context that binds a ciphertext to its key).
And that context binds each KV entry's every field, so an edited entry fails to decrypt."""

from __future__ import annotations

import base64
import secrets
from typing import Any

import hvac
import pytest

from gm import sm2
from keys import material
from keys.custody import CustodyError, KeyAlgorithm, KeyTampered
from keys.vault import VaultKeystore
from tests.conftest import Bao

pytestmark = pytest.mark.vault


def _client(bao: Bao) -> hvac.Client:
    return hvac.Client(url=bao.addr, token=bao.token)


def _context(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_a_non_derived_key_ignores_the_context(openbao: Bao) -> None:
    """Why the check matters: under a non-derived key, the root's wrapped key decrypts under a seal's context."""
    client = _client(openbao)
    name = f"plain-{secrets.token_hex(4)}"
    client.secrets.transit.create_key(name=name, key_type="aes256-gcm96")
    sealed = client.secrets.transit.encrypt_data(
        name=name, plaintext=_context("root key"), context=_context("trustseal-key|cn-root-sm2|1|sm2")
    )["data"]["ciphertext"]
    opened = client.secrets.transit.decrypt_data(
        name=name, ciphertext=sealed, context=_context("trustseal-key|some-seal|1|sm2")
    )["data"]["plaintext"]
    assert base64.b64decode(opened) == b"root key"
    with pytest.raises(CustodyError, match="is not derived"):
        VaultKeystore(client, wrapping_key=name, prefix=f"t/{secrets.token_hex(4)}")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"key_type": "aes256-gcm96", "derived": True, "exportable": True}, "exportable"),
        ({"key_type": "ecdsa-p256"}, "not an AEAD cipher"),
    ],
    ids=["exportable", "not-aead"],
)
def test_other_unfit_transit_keys_are_refused(openbao: Bao, options: dict[str, object], message: str) -> None:
    client = _client(openbao)
    name = f"unfit-{secrets.token_hex(4)}"
    client.secrets.transit.create_key(name=name, **options)
    with pytest.raises(CustodyError, match=message):
        VaultKeystore(client, wrapping_key=name, prefix=f"t/{secrets.token_hex(4)}")


def test_the_key_it_creates_is_derived_and_context_bound(openbao: Bao) -> None:
    client = _client(openbao)
    name = f"fresh-{secrets.token_hex(4)}"
    store = VaultKeystore(client, wrapping_key=name, prefix=f"t/{secrets.token_hex(4)}")
    config = client.secrets.transit.read_key(name=name)["data"]
    assert config["derived"] is True and config["exportable"] is False and config["type"] == "aes256-gcm96"
    store.create("k", KeyAlgorithm.SM2)
    assert store.signer("k").sign(b"x")
    VaultKeystore(client, wrapping_key=name, prefix=store.prefix)  # a second process accepts it


def _store(client: hvac.Client) -> VaultKeystore:
    return VaultKeystore(client, prefix=f"bind/{secrets.token_hex(4)}")


def _kv(store: VaultKeystore, name: str) -> dict[str, Any]:
    response = store.client.secrets.kv.v2.read_secret_version(
        path=f"{store.prefix}/{name}", mount_point=store.kv_mount, raise_on_deleted_version=True
    )
    data: dict[str, Any] = response["data"]["data"]
    return data


def _put(store: VaultKeystore, name: str, data: dict[str, Any]) -> None:
    """An attacker with write access to the KV mount (not to Transit)."""
    store.client.secrets.kv.v2.create_or_update_secret(path=f"{store.prefix}/{name}", secret=data,
                                                       mount_point=store.kv_mount)  # fmt: skip


def test_kv_entries_are_bound_to_their_public_key_and_flag(openbao: Bao) -> None:
    store = _store(_client(openbao))
    store.create("ca", KeyAlgorithm.SM2)
    store.rotate("ca")
    store.disable("ca", 1)  # rewrapped under the new flag
    assert [v.enabled for v in store.versions("ca")] == [False, True]
    data = _kv(store, "ca")
    data["versions"][0]["enabled"] = True  # a retired key brought back
    _put(store, "ca", data)
    for view in (store, VaultKeystore(store.client, prefix=store.prefix)):
        with pytest.raises(KeyTampered, match="public key, enabled flag"):
            view.signer("ca@1")
        with pytest.raises(KeyTampered):
            view.get("ca")
    data["versions"][0]["enabled"] = False
    data["versions"][1]["public_key"] = base64.b64encode(sm2.SM2PrivateKey.generate().public_key.spki_der()).decode()
    _put(store, "ca", data)
    with pytest.raises(KeyTampered):
        store.get("ca@2")


def _format1(store: VaultKeystore, name: str, algorithm: str) -> bytes:
    """A secret as the previous version wrote it: no format, context `trustseal-key|name|version|alg`."""
    secret = material.generate(algorithm)
    wrapped = store.client.secrets.transit.encrypt_data(
        name=store.wrapping_key,
        plaintext=base64.b64encode(secret.secret_bytes()).decode(),
        context=_context(f"trustseal-key|{name}|1|{algorithm}"),
    )["data"]["ciphertext"]
    entry = {"version": 1, "created_at": "2026-11-01T00:00:00+00:00", "enabled": True,
             "public_key": base64.b64encode(secret.public_key_der()).decode(), "wrapped": wrapped}  # fmt: skip
    _put(store, name, {"name": name, "algorithm": algorithm, "versions": [entry]})
    return secret.secret_bytes()


def test_format1_secrets_are_migrated_when_read(openbao: Bao) -> None:
    store = _store(_client(openbao))
    scalar = _format1(store, "old-ca", "sm2")
    handle = store.signer("old-ca")
    assert handle._material.secret_bytes() == scalar  # test-only peek: the same key, migrated
    data = _kv(store, "old-ca")
    assert data["format"] == 2
    signature = handle.sign(b"migrated")
    assert sm2.SM2PublicKey.from_spki(store.get("old-ca").public_key_der).verify(signature, b"migrated")
    data["versions"][0]["enabled"] = False  # bound from now on
    _put(store, "old-ca", data)
    with pytest.raises(KeyTampered):
        store.versions("old-ca")


def test_format1_secret_with_a_swapped_public_key_is_not_migrated(openbao: Bao) -> None:
    store = _store(_client(openbao))
    _format1(store, "old-ca", "sm2")
    data = _kv(store, "old-ca")
    data["versions"][0]["public_key"] = base64.b64encode(sm2.SM2PrivateKey.generate().public_key.spki_der()).decode()
    _put(store, "old-ca", data)
    with pytest.raises(KeyTampered, match="not the key's own"):
        store.get("old-ca")
    assert _kv(store, "old-ca") == data
