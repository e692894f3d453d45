"""The Vault / OpenBao keystore accepts only a `derived`, non-exportable AEAD Transit key: a real
OpenBao dev server shows why (a non-derived key ignores the context that binds a ciphertext to its key)."""

from __future__ import annotations

import base64
import secrets

import hvac
import pytest

from keys.custody import CustodyError, KeyAlgorithm
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
